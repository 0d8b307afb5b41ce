-- mlsh.sandbox — where code other people wrote runs: the environments of rule, playbook and
-- checklist files and of scripts run with --safe, the read-only views of modules and models
-- handed to them, and guarded calls under instruction and memory budgets (core/lua_sandbox.c).
--   sandbox.safe / sandbox.set_safe(on)        the --safe switch (also $MLSH_SAFE=1)
--   sandbox.environment(where)                 a fresh global table for one file
--   sandbox.script_env(path, args)             the environment of a script run with --safe
--   sandbox.guarded_call(label, f, ...)        pcall, under the budgets in safe mode
--   sandbox.read_only(m [, owned])             a model that cannot be saved, closed or changed
--   sandbox.safe_require(name)                 require, limited to SAFE_MODULES, read-only views
local core = require "mlsh.core"

local M = {}

local function shallow(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local SAFE_GLOBALS = { "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring",
                       "type", "xpcall", "rawequal", "rawget", "rawlen", "rawset", "setmetatable", "getmetatable",
                       "_VERSION" }

-- ---- safe mode (--safe, mlsh.safe()): rules from folders other teams wrote ------------------------
-- Rule code then gets no io/os.execute/package.loadlib/load/debug (it never does) and in addition:
-- `require` only of the read-only analysis modules below, `mlsh` without the core, the writers or
-- the builder, models behind a read-only proxy (no save/close), at most SAFE_INSTRUCTIONS Lua
-- instructions and SAFE_MEMORY bytes of new memory per rule call (the memory budget needs the
-- mlsh program's allocator; under a plain lua5.4 it is not enforced).
M.safe = os.getenv("MLSH_SAFE") == "1"
M.SAFE_INSTRUCTIONS = math.tointeger(tonumber(os.getenv("MLSH_SAFE_INSTRUCTIONS") or "")) or 200000000
M.SAFE_MEMORY = (math.tointeger(tonumber(os.getenv("MLSH_SAFE_MEMORY_MB") or "")) or 256) << 20
M.SAFE_MODULES = { ["mlsh.json"] = true, ["mlsh.types"] = true, ["mlsh.spec"] = true, ["mlsh.optable"] = true,
                   ["mlsh.placement.coreml"] = true, ["mlsh.required_spec"] = true, ["mlsh.engine.rules"] = true,
                   ["mlsh.report.text"] = true, ["mlsh.info"] = true, ["mlsh.cmd.check"] = true,
                   ["mlsh.cmd.info"] = true, ["mlsh.engine.playbook"] = true, ["mlsh.engine.checklist"] = true,
                   ["mlsh.facts"] = true }

function M.set_safe(on) M.safe = on and true or false end

-- The module name under its current name (rule files may use the names of before the folders).
local function canonical(name) return require("mlsh").LEGACY_MODULES[name] or name end

-- The engine as sandboxed code sees it: everything but the switch that turns the sandbox off.
local function engine_view(engine)
  return setmetatable({}, {
    __index = function(_, k)
      if k == "set_safe" then error("safe mode: set_safe is not available to sandboxed code", 2) end
      return engine[k]
    end,
    __newindex = function() error("safe mode: the rules engine is read-only to sandboxed code", 2) end,
  })
end

-- Sandboxed code gets read-only views of modules, so it cannot patch the engine it runs under.
local views = {}
function M.safe_require(name)
  local real = canonical(name)
  if not M.SAFE_MODULES[real] then error("safe mode: module '" .. tostring(name) .. "' is not available to rules", 2) end
  if not views[real] then
    local mod = require(real)
    if real == "mlsh.engine.rules" then views[real] = engine_view(mod)
    else
      views[real] = type(mod) ~= "table" and mod or setmetatable({}, {
        __index = mod,
        __newindex = function() error("safe mode: module '" .. name .. "' is read-only to sandboxed code", 2) end,
      })
    end
  end
  return views[real]
end
local safe_require = M.safe_require

function M.safe_mlsh()
  local mlsh = require "mlsh"
  return { version = mlsh.version, json = safe_require "mlsh.json", types = safe_require "mlsh.types",
           spec = safe_require "mlsh.spec", optable = safe_require "mlsh.optable" }
end

-- Model methods that change files or the model itself are not reachable from safe rules.
local BLOCKED = { save = true, close = true, _set_spec = true, _read = true }
local proxies = setmetatable({}, { __mode = "k" })
-- owned: the sandboxed code loaded this model itself, so it may close it.
function M.read_only(m, owned)
  if proxies[m] then return proxies[m] end
  local p = setmetatable({}, {
    __index = function(_, k)
      if BLOCKED[k] and not (owned and k == "close") then
        error("safe mode: " .. tostring(k) .. " is not available to rules", 2)
      end
      local v = m[k]
      if type(v) == "function" then return function(self, ...) return v(self == _ and m or self, ...) end end
      return v
    end,
    __newindex = function() error("safe mode: models are read-only to rules", 2) end,
    __tostring = function() return tostring(m) end,
  })
  proxies[m] = p
  return p
end

-- Call f(...) under the safe-mode budgets; returns pcall-style results.
function M.guarded_call(label, f, ...)
  if not M.safe then return pcall(f, ...) end
  local sandbox = core.sandbox
  local co = coroutine.create(f)
  local used = sandbox and sandbox.available() and sandbox.memory()
  debug.sethook(co, function()
    error(string.format("%s exceeded its budget of %d instructions", label, M.SAFE_INSTRUCTIONS), 0)
  end, "", M.SAFE_INSTRUCTIONS)
  if used then sandbox.set_memory_limit(used + M.SAFE_MEMORY) end
  -- no allocation here until the limit is lifted: the rule may have used up its budget
  local ok, r1, r2, r3 = coroutine.resume(co, ...)
  if used then sandbox.set_memory_limit(nil) end
  if coroutine.status(co) == "suspended" then return false, label .. " yielded, which rules may not do" end
  if not ok and r1 == "not enough memory" then
    co = nil -- luacheck: ignore 311 (drop the coroutine so the collector can free what it holds)
    collectgarbage()
    return false, string.format("%s exceeded its memory budget of %d MiB", label, M.SAFE_MEMORY >> 20)
  end
  return ok, r1, r2, r3
end

-- A fresh environment per file of sandboxable code (rule, playbook, checklist files): no file sees
-- another's globals. print goes to stderr, prefixed with `where`.
function M.environment(where)
  local env = {}
  for _, k in ipairs(SAFE_GLOBALS) do env[k] = _G[k] end
  env.string, env.table, env.math, env.utf8 = shallow(string), shallow(table), shallow(math), shallow(utf8)
  env.string.dump = nil -- no bytecode out of a rule, and no `load` to bring it back
  env.os = { time = os.time, clock = os.clock, date = os.date, getenv = os.getenv }
  env.require = M.safe and safe_require or require
  env.mlsh = M.safe and M.safe_mlsh() or require "mlsh"
  -- stdout belongs to the command (one JSON object): rule diagnostics go to stderr
  env.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    io.stderr:write(where, ": ", table.concat(parts, "\t"), "\n")
  end
  env._G = env
  return env
end


-- The environment of a script run with --safe: the sandbox, plus print/io.write to stdout,
-- `arg`, and mlsh.load/try_load that hand out read-only models.
function M.script_env(path, args)
  local mlsh = require "mlsh"
  local env = M.environment(path)
  env.print, env.arg = print, args
  local function writer(f) return { write = function(self, ...) f:write(...) return self end } end
  env.io = { write = function(...) return io.stdout:write(...) end, stdout = writer(io.stdout), stderr = writer(io.stderr) }
  env.mlsh.load = function(p) return M.read_only(mlsh.load(p), true) end
  env.mlsh.try_load = function(p)
    local m, err = mlsh.try_load(p)
    return m and M.read_only(m, true) or nil, err
  end
  local base_require = env.require
  env.require = function(name)
    if name == "mlsh" then return env.mlsh end
    return base_require(name)
  end
  return env
end

return M
