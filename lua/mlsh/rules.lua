-- mlsh.rules — the rules engine: discovery, loading and validation, per-rule environments,
-- selection expressions, running, findings. The contract is in docs/rules.md.
--
--   local rules = require "mlsh.rules"
--   local set = rules.discover{ dirs = {"team/rules"} }   -- installed rules/, MLSH_RULES, dirs (later wins)
--   -- set = {rules = {...}, fallbacks = {...}, errors = {{file, message}}, notes = {...}}
--   local pick, err = rules.selector("ane and not slow", set)   -- nil, err on a bad expression
--   local findings = rules.run(m, set, { target = 7, compute_units = "ALL", select = pick, options = {...} })
--   rules.load_file(path) -> {rules, fallbacks} | nil, err;  rules.validate(t, where) -> rule | nil, err
--   rules.findings_json(findings) -> the `findings` array of mlsh check --format json
--
-- A rule file runs in its own environment (fresh copies of string/table/math, `require`, `mlsh`,
-- `fallback`, `print` to stderr) and returns one rule table. Its check(model, ctx) reports findings
-- with ctx:report{...} (or returns a list of them). A rule whose applies/check raises, or that
-- reports a malformed finding, becomes an error finding of that rule; the other rules still run.
local spec = require "mlsh.spec"

local M = {}

M.SEVERITIES = { "error", "warning", "info" }
M.SEVERITY_RANK = { error = 1, warning = 2, info = 3 }
M.PATTERNS = { "1a", "1b", "1c", "2a", "2b", "2c", "3a", "3b", "4a", "4b", "4c", "5a", "5b" }
M.CATEGORIES = { "load", "performance", "memory", "accuracy", "conversion", "deploy", "ane", "slow" }
M.PATTERN_TITLES = {
  ["1a"] = "unsupported model version (spec > deployment target)", ["1b"] = "compute plan failure",
  ["1c"] = "other load errors", ["2a"] = "first load slow", ["2b"] = "all predictions slow",
  ["2c"] = "slow on a specific device", ["3a"] = "memory growth with concurrent predictions",
  ["3b"] = "out of memory at load", ["4a"] = "accuracy after palettization", ["4b"] = "accuracy after quantization",
  ["4c"] = "accuracy after pruning", ["5a"] = "conversion: unsupported op", ["5b"] = "wrong output",
}
M.LOCATION_KEYS = { "function", "op", "layer", "value", "model" }

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
local SEVERITY_SET, PATTERN_SET = set_of(M.SEVERITIES), set_of(M.PATTERNS)
local LOCATION_SET = set_of(M.LOCATION_KEYS)

-- Field name -> description (for messages); `required` fields must be present.
local RULE_FIELDS = {
  id = { required = true, what = "a string of letters, digits, '-', '_' or '.'" },
  title = { required = true, what = "a string" },
  categories = { required = true, what = "a non-empty list of category names" },
  severity = { required = true, what = "one of error, warning, info" },
  pattern = { required = true, what = "a playbook pattern 1a..5b, or false when none applies" },
  check = { required = true, what = "a function(model, ctx)" },
  applies = { what = "a function(model) -> boolean" },
  description = { what = "a string" },
  fix = { what = "a string (default fix for the rule's findings)" },
  references = { what = "a list of strings" },
  scope = { what = "\"model\" (the model as given) or \"each\" (also every pipeline sub-model)" },
  evidence = { what = "a non-empty list of links (URLs) to the sources the rule rests on" },
  affected = { what = "a table of affected ranges: os, spec, coremltools, chip (strings)" },
}
local AFFECTED_KEYS = { os = true, spec = true, coremltools = true, chip = true, compute_units = true }
local FIELD_NAMES = {}
for k in pairs(RULE_FIELDS) do FIELD_NAMES[#FIELD_NAMES + 1] = k end
table.sort(FIELD_NAMES)

local suggest = require("mlsh.contract").suggest

-- Validate a rule table; returns the rule (normalized copy) or nil, message.
function M.validate(t, where)
  where = where or "rule"
  if type(t) ~= "table" then
    return nil, string.format("%s: a rule must be a table, got %s", where, type(t))
  end
  local label = type(t.id) == "string" and string.format("%s: rule '%s'", where, t.id) or where
  local function bad(fmt, ...) return nil, label .. ": " .. string.format(fmt, ...) end
  for k in pairs(t) do
    if type(k) ~= "string" or not RULE_FIELDS[k] then
      return bad("unknown field '%s'%s", tostring(k), type(k) == "string" and suggest(k, FIELD_NAMES) or "")
    end
  end
  for _, k in ipairs(FIELD_NAMES) do
    if RULE_FIELDS[k].required and t[k] == nil then
      return bad("missing field '%s' (%s)", k, RULE_FIELDS[k].what)
    end
  end
  if type(t.id) ~= "string" or not t.id:match("^[%w][%w_.%-]*$") then
    return bad("field 'id' must be %s, got %s", RULE_FIELDS.id.what, type(t.id) == "string" and ("'" .. t.id .. "'") or type(t.id))
  end
  if type(t.title) ~= "string" or t.title == "" then return bad("field 'title' must be a non-empty string") end
  if type(t.categories) ~= "table" or #t.categories == 0 then
    return bad("field 'categories' must be %s, got %s", RULE_FIELDS.categories.what, type(t.categories))
  end
  for i, c in ipairs(t.categories) do
    if type(c) ~= "string" or not c:match("^[%w_%-]+$") then
      return bad("categories[%d] must be a word (letters, digits, '-', '_'), got %s", i, type(c) == "string" and ("'" .. c .. "'") or type(c))
    end
  end
  if not SEVERITY_SET[t.severity] then
    return bad("field 'severity' must be one of error, warning, info, got %s",
      type(t.severity) == "string" and ("'" .. t.severity .. "'") or type(t.severity))
  end
  if t.pattern ~= false and not PATTERN_SET[t.pattern] then
    return bad("field 'pattern' must be one of %s or false, got %s", table.concat(M.PATTERNS, " "),
      type(t.pattern) == "string" and ("'" .. t.pattern .. "'") or tostring(t.pattern))
  end
  if type(t.check) ~= "function" then return bad("field 'check' must be a function(model, ctx), got %s", type(t.check)) end
  if t.applies ~= nil and type(t.applies) ~= "function" then
    return bad("field 'applies' must be a function(model), got %s", type(t.applies))
  end
  for _, k in ipairs({ "description", "fix" }) do
    if t[k] ~= nil and type(t[k]) ~= "string" then return bad("field '%s' must be a string, got %s", k, type(t[k])) end
  end
  if t.references ~= nil and type(t.references) ~= "table" then return bad("field 'references' must be a list of strings") end
  if t.evidence ~= nil then
    if type(t.evidence) ~= "table" or #t.evidence == 0 then return bad("field 'evidence' must be %s", RULE_FIELDS.evidence.what) end
    for i, e in ipairs(t.evidence) do
      if type(e) ~= "string" or not e:match("^https?://") then return bad("evidence[%d] must be a URL (http:// or https://)", i) end
    end
  end
  if t.affected ~= nil then
    if type(t.affected) ~= "table" then return bad("field 'affected' must be %s", RULE_FIELDS.affected.what) end
    for k, v in pairs(t.affected) do
      if not AFFECTED_KEYS[k] or type(v) ~= "string" then
        return bad("affected.%s: keys os, spec, coremltools, chip, compute_units with string values", tostring(k))
      end
    end
  end
  if t.scope ~= nil and t.scope ~= "model" and t.scope ~= "each" then
    return bad("field 'scope' must be \"model\" or \"each\", got %s", tostring(t.scope))
  end
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  r.pattern = t.pattern or nil
  r.scope = t.scope or "each"
  r.categories = {}
  for i, c in ipairs(t.categories) do r.categories[i] = c end
  r.source = where
  return r
end

-- ---- fallbacks -------------------------------------------------------------------------------------

local FALLBACK_FIELDS = { op = true, device = true, when = true, reason = true, os = true }
local DEVICES = { ANE = true, GPU = true, CPU = true }

function M.validate_fallback(t, where)
  where = where or "fallback"
  local function bad(fmt, ...) return nil, where .. ": fallback: " .. string.format(fmt, ...) end
  if type(t) ~= "table" then return bad("expects a table, got %s", type(t)) end
  for k in pairs(t) do
    if not FALLBACK_FIELDS[k] then
      return bad("unknown field '%s'%s", tostring(k), type(k) == "string" and suggest(k, { "op", "device", "when", "reason", "os" }) or "")
    end
  end
  local ops = {}
  if type(t.op) == "string" and t.op ~= "" then ops = { t.op }
  elseif type(t.op) == "table" and #t.op > 0 then
    for i, o in ipairs(t.op) do
      if type(o) ~= "string" then return bad("op[%d] must be an op type string", i) end
      ops[i] = o
    end
  else
    return bad("field 'op' must be an op or layer type (or a list of them), got %s", type(t.op))
  end
  if not DEVICES[t.device] then
    return bad("field 'device' must be ANE, GPU or CPU, got %s", type(t.device) == "string" and ("'" .. t.device .. "'") or type(t.device))
  end
  if type(t.reason) ~= "string" or t.reason == "" then return bad("field 'reason' must be a non-empty string") end
  if t.when ~= nil and type(t.when) ~= "function" then return bad("field 'when' must be a function(op, ctx)") end
  if t.os ~= nil and (type(t.os) ~= "string" and type(t.os) ~= "number"
      or not tostring(t.os):match("^%s*[<>=]*%s*%d+[%.%d]*%s*$")) then
    return bad("field 'os' must look like \">=17\", \"<18\" or \"17\" (iOS version), got %s", tostring(t.os))
  end
  return { ops = ops, device = t.device, when = t.when, reason = t.reason, os = t.os and tostring(t.os) or nil,
           source = where }
end

-- ---- environments and loading ---------------------------------------------------------------------

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
                   ["mlsh.placement"] = true, ["mlsh.required_spec"] = true, ["mlsh.rules"] = true,
                   ["mlsh.report_text"] = true, ["mlsh.info"] = true, ["mlsh.cmd.check"] = true,
                   ["mlsh.cmd.info"] = true, ["mlsh.playbook"] = true, ["mlsh.checklist"] = true }

function M.set_safe(on) M.safe = on and true or false end

-- The engine as sandboxed code sees it: everything but the switch that turns the sandbox off.
local engine_view = setmetatable({}, {
  __index = function(_, k)
    if k == "set_safe" then error("safe mode: set_safe is not available to sandboxed code", 2) end
    return M[k]
  end,
  __newindex = function() error("safe mode: the rules engine is read-only to sandboxed code", 2) end,
})

-- Sandboxed code gets read-only views of modules, so it cannot patch the engine it runs under.
local views = {}
function M.safe_require(name)
  if not M.SAFE_MODULES[name] then error("safe mode: module '" .. tostring(name) .. "' is not available to rules", 2) end
  if name == "mlsh.rules" then return engine_view end
  if not views[name] then
    local mod = require(name)
    views[name] = type(mod) ~= "table" and mod or setmetatable({}, {
      __index = mod,
      __newindex = function() error("safe mode: module '" .. name .. "' is read-only to sandboxed code", 2) end,
    })
  end
  return views[name]
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
  local sandbox = require("mlsh.core").sandbox
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
    co = nil
    collectgarbage()
    return false, string.format("%s exceeded its memory budget of %d MiB", label, M.SAFE_MEMORY >> 20)
  end
  return ok, r1, r2, r3
end

-- A fresh environment per rule file: no rule sees another's globals. on_fallback receives the
-- fallback{} declarations (playbook and checklist files reuse this environment without it).
function M.environment(where, on_fallback)
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
  env.fallback = function(t)
    local fb, err = M.validate_fallback(t, where)
    if not fb then error(err, 2) end
    on_fallback(fb)
    return fb
  end
  env._G = env
  return env
end

function M.load_file(path)
  local fallbacks = {}
  local env = M.environment(path, function(fb) fallbacks[#fallbacks + 1] = fb end)
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  local ok, res = M.guarded_call("rule file " .. path, chunk)
  if not ok then
    res = tostring(res)
    return nil, res:find(path, 1, true) and res or (path .. ": " .. res)
  end
  local out = { rules = {}, fallbacks = fallbacks }
  if res == nil then
    if #fallbacks == 0 then
      return nil, path .. ": returned nothing (a rule file returns a rule table {id, title, categories, severity, "
        .. "pattern, check} or declares fallback{...})"
    end
    return out
  end
  local rule, verr = M.validate(res, path)
  if not rule then return nil, verr end
  out.rules[1] = rule
  return out
end

local function list_lua(dir)
  local p = io.popen("ls -1 -- '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  local files = {}
  for name in p:lines() do
    if name:match("%.lua$") then files[#files + 1] = name end
  end
  p:close()
  table.sort(files)
  return files
end

-- Load every *.lua of a folder (not recursive). Returns {rules, fallbacks, errors = {{file, message}}}.
function M.load_dir(dir)
  local out = { rules = {}, fallbacks = {}, errors = {} }
  for _, name in ipairs(list_lua(dir)) do
    local path = dir .. "/" .. name
    local res, err = M.load_file(path)
    if res then
      for _, r in ipairs(res.rules) do out.rules[#out.rules + 1] = r end
      for _, f in ipairs(res.fallbacks) do out.fallbacks[#out.fallbacks + 1] = f end
    else
      out.errors[#out.errors + 1] = { file = path, message = err }
    end
  end
  return out
end

-- The folder holding lua/ rules/ recipes/: mlsh.home inside the mlsh binary; under a plain lua5.4
-- (busted), $MLSH_HOME or the folder this module was loaded from.
function M.home()
  local ok, home = pcall(require, "mlsh.home")
  if ok and type(home) == "string" then return home end
  local env = os.getenv("MLSH_HOME")
  if env and env ~= "" then return env end
  local path = package.searchpath("mlsh.rules", package.path)
  return path and path:match("^(.*)/lua/mlsh/rules%.lua$") or nil
end

-- The folders to read, in order (a later rule with the same id replaces an earlier one):
-- the installed rules/ (unless builtin = false), $MLSH_RULES (colon-separated), then opts.dirs.
function M.dirs(opts)
  opts = opts or {}
  local dirs = {}
  if opts.builtin ~= false then
    local home = M.home()
    if home then
      dirs[#dirs + 1] = { path = home .. "/rules", builtin = true }
      dirs[#dirs + 1] = { path = home .. "/rules/advisory", builtin = true } -- known platform bugs and limits
    end
  end
  local env = opts.env ~= nil and opts.env or os.getenv("MLSH_RULES")
  if env and env ~= "" then
    for d in env:gmatch("[^:]+") do dirs[#dirs + 1] = { path = d, from = "MLSH_RULES" } end
  end
  for _, d in ipairs(opts.dirs or {}) do dirs[#dirs + 1] = { path = d, from = "--rules" } end
  return dirs
end

-- Discover rules. Returns the set, or nil, message when a named folder does not exist (bad input).
function M.discover(opts)
  local fs = require("mlsh.core").fs
  local set = { rules = {}, fallbacks = {}, errors = {}, notes = {}, dirs = {} }
  local by_id = {}
  for _, d in ipairs(M.dirs(opts)) do
    local kind = fs.exists(d.path)
    if kind ~= "dir" then
      if not d.builtin then
        return nil, string.format("%s: %s: %s", d.from, d.path, kind and "not a directory" or "no such directory")
      end
    else
      set.dirs[#set.dirs + 1] = d.path
      local res = M.load_dir(d.path)
      for _, r in ipairs(res.rules) do
        local prev = by_id[r.id]
        if prev then
          set.notes[#set.notes + 1] = string.format("rule '%s' from %s replaces the one from %s", r.id, r.source, prev.source)
          for i, x in ipairs(set.rules) do
            if x == prev then set.rules[i] = r end
          end
        else
          set.rules[#set.rules + 1] = r
        end
        by_id[r.id] = r
      end
      for _, f in ipairs(res.fallbacks) do set.fallbacks[#set.fallbacks + 1] = f end
      for _, e in ipairs(res.errors) do set.errors[#set.errors + 1] = e end
    end
  end
  table.sort(set.rules, function(a, b) return a.id < b.id end)
  return set
end

-- ---- selection expressions --------------------------------------------------------------------------
-- expr := term ("or" term)* ;  term := factor ("and" factor)* ;  factor := "not" factor | "(" expr ")" | NAME
-- NAME: a rule id (globs with *), a category, a severity (error/warning/info) or a pattern (1a..5b).
-- "," is a synonym for "or". Unknown names are errors (a typo must not silently select nothing).

local function tokenize(s)
  local toks, i = {}, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c:match("%s") then i = i + 1
    elseif c == "(" or c == ")" or c == "," then toks[#toks + 1] = { t = c, pos = i }; i = i + 1
    else
      local w = s:match("^[%w_%-%.%*]+", i)
      if not w then return nil, string.format("unexpected '%s' at position %d", c, i) end
      local lw = w:lower()
      if lw == "and" or lw == "or" or lw == "not" then toks[#toks + 1] = { t = lw, pos = i }
      else toks[#toks + 1] = { t = "name", v = w, pos = i } end
      i = i + #w
    end
  end
  return toks
end

local function glob_match(glob, s)
  local pat = "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return s:match(pat) ~= nil
end

-- Build a predicate over rules from an expression; `set` gives the vocabulary of known names.
function M.selector(expr, set)
  if expr == nil or expr:match("^%s*$") then return function() return true end end
  local toks, err = tokenize(expr)
  if not toks then return nil, "--select: " .. err end
  local known = {}
  for _, c in ipairs(M.CATEGORIES) do known[c] = true end
  for _, s in ipairs(M.SEVERITIES) do known[s] = true end
  for _, p in ipairs(M.PATTERNS) do known[p] = true end
  local ids = {}
  for _, r in ipairs(set and set.rules or {}) do
    known[r.id] = true
    ids[#ids + 1] = r.id
    for _, c in ipairs(r.categories) do known[c] = true end
  end
  local pos = 1
  local function peek() return toks[pos] end
  local function fail(msg)
    local t = toks[pos]
    error({ msg = string.format("--select \"%s\": %s%s", expr, msg, t and (" at position " .. t.pos) or " at the end") }, 0)
  end
  local parse_expr
  local function parse_factor()
    local t = peek()
    if not t then fail("expected a name, 'not' or '('") end
    if t.t == "not" then
      pos = pos + 1
      local f = parse_factor()
      return function(r) return not f(r) end
    elseif t.t == "(" then
      pos = pos + 1
      local e = parse_expr()
      if not peek() or peek().t ~= ")" then fail("expected ')'") end
      pos = pos + 1
      return e
    elseif t.t == "name" then
      pos = pos + 1
      local name = t.v
      if name:find("*", 1, true) then
        local any = false
        for _, id in ipairs(ids) do
          if glob_match(name, id) then any = true end
        end
        if not any then pos = pos - 1; fail("'" .. name .. "' matches no rule id") end
        return function(r) return glob_match(name, r.id) end
      end
      if not known[name] then
        local cands = {}
        for k in pairs(known) do cands[#cands + 1] = k end
        table.sort(cands)
        pos = pos - 1
        fail("unknown rule id or category '" .. name .. "'" .. suggest(name, cands))
      end
      return function(r)
        if r.id == name or r.severity == name or r.pattern == name then return true end
        for _, c in ipairs(r.categories) do
          if c == name then return true end
        end
        return false
      end
    end
    fail("unexpected '" .. t.t .. "'")
  end
  local function parse_term()
    local f = parse_factor()
    while peek() and peek().t == "and" do
      pos = pos + 1
      local a, b = f, parse_factor()
      f = function(r) return a(r) and b(r) end
    end
    return f
  end
  parse_expr = function()
    local f = parse_term()
    while peek() and (peek().t == "or" or peek().t == ",") do
      pos = pos + 1
      local a, b = f, parse_term()
      f = function(r) return a(r) or b(r) end
    end
    return f
  end
  local ok, res = pcall(function()
    local f = parse_expr()
    if peek() then fail("unexpected '" .. (peek().v or peek().t) .. "'") end
    return f
  end)
  if not ok then
    if type(res) == "table" and res.msg then return nil, res.msg end
    return nil, "--select: " .. tostring(res)
  end
  return res
end

-- ---- running ---------------------------------------------------------------------------------------

local PIPELINE_TYPES = { pipeline = true, pipelineClassifier = true, pipelineRegressor = true }

-- The model and, recursively, its pipeline sub-models: {{model, label}}; the root has label nil.
local function each_model(m, label, out)
  out = out or {}
  out[#out + 1] = { model = m, label = label }
  if PIPELINE_TYPES[m.model_type or ""] then
    local subs, names = m:submodels()
    for i, sub in ipairs(subs) do
      local name = (names and names[i] and names[i] ~= "") and names[i] or ("pipeline[" .. i .. "]")
      each_model(sub, label and (label .. "/" .. name) or name, out)
    end
  end
  return out
end
M.each_model = each_model

local function short_error(e)
  e = tostring(e)
  return (e:gsub("\n.*", ""))
end

-- Normalize a finding a rule reported; returns the finding or nil, why it is malformed.
local function normalize(rule, f, label)
  if type(f) ~= "table" then return nil, "a finding must be a table, got " .. type(f) end
  if type(f.message) ~= "string" or f.message == "" then return nil, "a finding needs a message (string)" end
  local sev = f.severity or rule.severity
  if not SEVERITY_SET[sev] then return nil, "finding severity must be error, warning or info, got " .. tostring(sev) end
  local pattern = f.pattern
  if pattern == nil then pattern = rule.pattern end
  if pattern ~= nil and pattern ~= false and not PATTERN_SET[pattern] then
    return nil, "finding pattern must be 1a..5b, got " .. tostring(pattern)
  end
  if f.fix ~= nil and type(f.fix) ~= "string" then return nil, "finding fix must be a string" end
  local loc = {}
  if f.location ~= nil then
    if type(f.location) ~= "table" then return nil, "finding location must be a table" end
    for k, v in pairs(f.location) do
      if not LOCATION_SET[k] then
        return nil, "unknown location key '" .. tostring(k) .. "' (function, op, layer, value, model)"
      end
      loc[k] = tostring(v)
    end
  end
  if label and not loc.model then loc.model = label end
  return { rule = rule.id, severity = sev, pattern = pattern or nil, categories = rule.categories,
           title = rule.title, message = f.message, fix = f.fix or rule.fix, location = loc, evidence = f.evidence,
           sources = rule.evidence, affected = rule.affected }
end

local function error_finding(rule, what, err, label)
  return { rule = rule.id, severity = "error", pattern = nil, categories = rule.categories, title = rule.title,
           message = string.format("rule %s %s: %s", rule.id, what, short_error(err)),
           fix = "fix or remove the rule (" .. tostring(rule.source) .. ")",
           location = label and { model = label } or {}, rule_error = true }
end

-- Run the selected rules over a model. opts: target (spec number), compute_units, select (predicate),
-- fallbacks (defaults to set.fallbacks), options (free table for rules, e.g. memory_budget),
-- placement / required (precomputed results to share). Returns the findings, sorted.
function M.run(m, set, opts)
  opts = opts or {}
  local findings = {}
  local shared = { placement = opts.placement, required = opts.required }
  local target_name = opts.target and spec.target_name(opts.target) or nil
  local models = each_model(m)
  for _, rule in ipairs(set.rules) do
    if not opts.select or opts.select(rule) then
      local scope = rule.scope == "model" and { models[1] } or models
      for _, entry in ipairs(scope) do
        local sub, label = entry.model, entry.label
        local ok, applies = true, true
        if M.safe then sub = M.read_only(sub) end
        if rule.applies then ok, applies = M.guarded_call("rule " .. rule.id, rule.applies, sub) end
        if not ok then
          findings[#findings + 1] = error_finding(rule, "raised in applies()", applies, label)
        elseif applies then
          local ctx = {
            target = opts.target, target_name = target_name, compute_units = opts.compute_units or "ALL",
            options = opts.options or {}, model_label = label, root = m,
          }
          local reported = {}
          function ctx.report(a, b)
            local f = (a == ctx) and b or a
            reported[#reported + 1] = f
          end
          function ctx.placement()
            if not shared.placement then
              shared.placement = require("mlsh.placement").simulate(m, { compute_units = ctx.compute_units,
                target = opts.target, fallbacks = opts.fallbacks or set.fallbacks, device = opts.device })
            end
            return shared.placement
          end
          function ctx.required_spec()
            if not shared.required then shared.required = require("mlsh.required_spec").explain(m) end
            return shared.required
          end
          function ctx.ops(_, pred)
            if type(_) ~= "table" or _ ~= ctx then pred = _ end
            local out = {}
            for _, op in ipairs(sub:ops()) do
              local keep = pred == nil or (type(pred) == "string" and op.type == pred)
                or (type(pred) == "table" and pred[op.type]) or (type(pred) == "function" and pred(op))
              if keep then out[#out + 1] = op end
            end
            return out
          end
          function ctx.layers(_, pred)
            if type(_) ~= "table" or _ ~= ctx then pred = _ end
            local out = {}
            for _, l in ipairs(sub:layers()) do
              local keep = pred == nil or (type(pred) == "string" and l.type == pred)
                or (type(pred) == "table" and pred[l.type]) or (type(pred) == "function" and pred(l))
              if keep then out[#out + 1] = l end
            end
            return out
          end
          local cok, res = M.guarded_call("rule " .. rule.id, rule.check, sub, ctx)
          if not cok then
            findings[#findings + 1] = error_finding(rule, "raised", res, label)
          else
            if type(res) == "table" then
              for _, f in ipairs(res) do reported[#reported + 1] = f end
            end
            for _, f in ipairs(reported) do
              local nf, err = normalize(rule, f, label)
              findings[#findings + 1] = nf or error_finding(rule, "reported a malformed finding", err, label)
            end
          end
        end
      end
    end
  end
  for i, f in ipairs(findings) do f._order = i end
  table.sort(findings, function(a, b)
    local ra, rb = M.SEVERITY_RANK[a.severity], M.SEVERITY_RANK[b.severity]
    if ra ~= rb then return ra < rb end
    if a.rule ~= b.rule then return a.rule < b.rule end
    return a._order < b._order
  end)
  for _, f in ipairs(findings) do f._order = nil end
  return findings, shared
end

-- Count findings by severity.
function M.summary(findings)
  local s = { error = 0, warning = 0, info = 0 }
  for _, f in ipairs(findings) do s[f.severity] = s[f.severity] + 1 end
  return s
end

-- Evidence is free-form; keep it JSON-safe (userdata and functions become strings).
local function json_safe(v, depth)
  local json = require "mlsh.json"
  depth = depth or 0
  local t = type(v)
  if t == "table" then
    if v == json.null then return v end
    if depth > 6 then return "..." end
    local out = {}
    for k, x in pairs(v) do out[type(k) == "number" and k or tostring(k)] = json_safe(x, depth + 1) end
    local mt = getmetatable(v)
    local name = type(mt) == "table" and mt.__name or nil
    if name == "json.array" then return json.array(out) end
    if name == "json.object" then return json.object(out) end
    return out
  elseif t == "function" or t == "userdata" or t == "thread" then
    return tostring(v)
  end
  return v
end

function M.findings_json(findings)
  local json = require "mlsh.json"
  local out = json.array({})
  for i, f in ipairs(findings) do
    out[i] = { rule = f.rule, severity = f.severity, pattern = f.pattern or json.null,
               categories = json.array(f.categories), title = f.title, message = f.message,
               fix = f.fix or json.null, location = json.object(f.location),
               evidence = f.evidence ~= nil and json_safe(f.evidence) or json.null }
    -- advisory rules name their sources and the affected ranges (absent for other rules)
    if f.sources then out[i].sources = json.array(f.sources) end
    if f.affected then out[i].affected = json.object(json_safe(f.affected)) end
  end
  return out
end

return M
