-- mlsh.cli.repl — the interactive shell (lua.c's behaviour: an expression prints its value, a
-- statement runs, incomplete input continues on the next line, errors print and the loop goes
-- on, Ctrl-C interrupts a long call). Models and ops print as readable summaries.
local core = require "mlsh.core"
local mlsh = require "mlsh"

local M = {}
M.PROMPT, M.PROMPT2 = "mlsh> ", ">> "
M.HISTORY_MAX = 1000

local function history_path()
  local home = os.getenv("HOME")
  return home and (home .. "/.mlsh_history") or nil
end

-- A compact, depth-limited rendering of any Lua value.
function M.render(v, depth, seen)
  depth, seen = depth or 0, seen or {}
  local t = type(v)
  if t == "string" then return depth == 0 and v or string.format("%q", v) end
  if t ~= "table" and t ~= "userdata" then return tostring(v) end
  local mt = getmetatable(v)
  if t == "userdata" then
    if mt and mt.__name == "mlsh.Model" then
      local ok, s = pcall(function() return v:summary() end)
      return ok and s or tostring(v)
    end
    return tostring(v)
  end
  if mt and mt.__tostring then return tostring(v) end
  if seen[v] then return "{...}" end
  if depth >= 3 then return "{...}" end
  seen[v] = true
  local parts, n = {}, 0
  for i, x in ipairs(v) do
    n = i
    if i > 20 then parts[#parts + 1] = string.format("... (%d more)", #v - 20) break end
    parts[#parts + 1] = M.render(x, depth + 1, seen)
  end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do
    if i > 30 then parts[#parts + 1] = "..." break end
    local ks = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or ("[" .. M.render(k, depth + 1, seen) .. "]")
    parts[#parts + 1] = ks .. " = " .. M.render(v[k], depth + 1, seen)
  end
  seen[v] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- The globals the REPL adds for convenience.
function M.environment()
  local env = setmetatable({}, { __index = _G })
  env.mlsh = mlsh
  env.json = mlsh.json
  env.open = mlsh.load
  env.info = function(m) print(m:summary()) end
  env.diagnose = function(m, symptom, opts) return require("mlsh.engine.playbook").interactive(m, symptom, opts) end
  env.checklist = function(name, m, opts) return require("mlsh.engine.checklist").interactive(name, m, opts) end
  env.help = function(topic)
    local ok, h = pcall(require, "mlsh.cli.help")
    if ok and h then return h.show(topic) end
    print("mlsh " .. mlsh.version .. ": open(path) loads a model; try m:inputs(), m:functions(), m:ops(), m:weights();")
    print("subcommands from the REPL: mlsh.cli(\"info\", path). Docs: docs/api.md")
  end
  -- mlsh.cli("info", path): the command line's entry, handed over by mlsh.cli.main (M.main)
  env.mlsh.cli = function(...)
    if not M.main then error("mlsh.cli: the REPL was not started by the mlsh command line", 2) end
    return M.main({ [0] = "mlsh", ... })
  end
  return env
end

-- Candidates for tab completion: globals and fields, methods after ':', paths inside strings.
function M.complete(env, text, line)
  local out = {}
  -- a dot command at the start of the line (.open, .check ...)
  if line:match("^%s*%.[%w_]*$") then
    local ok, dot = pcall(require, "mlsh.cli.dotcmd")
    for _, name in ipairs(ok and dot.names() or {}) do
      if name:sub(1, #text) == text then out[#out + 1] = name end
    end
    return out
  end
  local quote = line:match("[\"']([^\"']*)$")
  if quote then
    local dir, base = quote:match("^(.*/)([^/]*)$")
    dir, base = dir or "", base or quote
    -- readline replaces only `text`, the word after its last break character ('/' and '-' are
    -- break characters): a candidate starts where `text` starts inside the quoted path
    local keep = #quote - #text
    -- listed by the C fs binding: nothing typed here reaches a shell
    for _, e in ipairs(core.fs.list(dir == "" and "." or dir) or {}) do
      local name = e.dir and (e.name .. "/") or e.name
      if name:sub(1, #base) == base then out[#out + 1] = (dir .. name):sub(keep + 1) end
    end
    return out
  end
  local prefix, sep, partial = text:match("^(.-)([%.:])([%w_]*)$")
  local listed = {} -- a name shadowed along the __index chain (env over _G) is proposed once
  local function add_keys(t, pre, want)
    local seen = {}
    while t and not seen[t] do
      seen[t] = true
      if type(t) == "table" then
        for k in pairs(t) do
          -- _private members stay hidden unless asked for by their leading underscore
          if type(k) == "string" and k:sub(1, #want) == want and (k:sub(1, 1) ~= "_" or want:sub(1, 1) == "_")
              and not listed[pre .. k] then
            listed[pre .. k] = true
            out[#out + 1] = pre .. k
          end
        end
      end
      local mt = getmetatable(t)
      t = mt and type(mt.__index) == "table" and mt.__index or nil
    end
  end
  if prefix then
    local chunk = load("return " .. prefix, "=complete", "t", env)
    local ok, obj = pcall(chunk or function() end)
    if ok and obj ~= nil then
      local mt = getmetatable(obj)
      if type(obj) == "table" then add_keys(obj, prefix .. sep, partial) end
      if mt and mt.__name == "mlsh.Model" then
        local okf, format = pcall(core.model.format, obj)
        local api = require("mlsh.model").api(okf and format or "mlpackage")
        add_keys(api.methods, prefix .. sep, partial)
        if sep == "." then add_keys(api.props, prefix .. sep, partial) end
      elseif mt and type(mt.__index) == "table" then add_keys(mt.__index, prefix .. sep, partial)
      elseif mt and mt.__methods then add_keys(mt.__methods, prefix .. sep, partial) end
    end
  else
    add_keys(env, "", text)
    for _, kw in ipairs({ "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in",
      "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }) do
      if kw:sub(1, #text) == text then out[#out + 1] = kw end
    end
  end
  table.sort(out)
  return out
end

local function incomplete(err) return err and err:sub(-5) == "<eof>" end

-- Compile a line: first as an expression (return-first, as lua.c), then as a statement.
function M.compile(src, env)
  local chunk = load("return " .. src, "=stdin", "t", env)
  if chunk then return chunk end
  return load(src, "=stdin", "t", env)
end

function M.run(opts)
  opts = opts or {}
  local env = opts.env or M.environment()
  local repl = core.repl
  local hist = history_path()
  if hist then repl.load_history(hist) end
  repl.set_completer(function(text, line) return M.complete(env, text, line) end)
  if repl.isatty(0) then
    print("mlsh " .. mlsh.version .. " — Core ML analysis shell. help() for help, Ctrl-D to quit.")
  end
  while true do
    local line = repl.readline(M.PROMPT)
    if not line then break end
    local src = line
    local chunk, err = M.compile(src, env)
    while not chunk and incomplete(err) do
      local more = repl.readline(M.PROMPT2)
      if not more then break end
      src = src .. "\n" .. more
      chunk, err = M.compile(src, env)
    end
    if src:match("%S") then repl.add_history(src) end
    if src:match("^%s*%.") then
      local ok, cmds = pcall(require, "mlsh.cli.dotcmd")
      if ok then cmds.run(src, env) else print("dot commands are not available") end
    elseif not chunk then
      io.stderr:write(err, "\n")
    else
      local res = table.pack(repl.pcall(chunk))
      if not res[1] then
        io.stderr:write(tostring(res[2]), "\n")
      elseif res.n > 1 then
        local parts = {}
        for i = 2, res.n do parts[#parts + 1] = M.render(res[i]) end
        print(table.concat(parts, "\t"))
      end
    end
  end
  if hist then repl.save_history(hist, M.HISTORY_MAX) end
  if repl.isatty(0) then io.write("\n") end
  return 0
end

return M
