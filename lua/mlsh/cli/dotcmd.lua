-- mlsh.cli.dotcmd — SQLite-style dot commands for the common actions in the REPL: a line starting
-- with '.' is a command, not Lua. The REPL calls run(line, env); env is the REPL's global table.
--
--   .open PATH [NAME]    load a model into NAME (default m)     .check [OPTIONS]   mlsh check on it
--   .diagnose [SYMPTOM]  interactive diagnosis of it             .checklist NAME    a checklist on it
--   .graph FILE          its graph (.dot or .svg)                .info              its summary
--   .rules  .symptoms  .checklists  .models  .help  .quit
local M = {}

-- Which variable holds the "current" model per REPL environment (the last .open, else m).
local current = setmetatable({}, { __mode = "k" })

-- Split a command line into words; "double" and 'single' quotes group, backslash escapes.
function M.words(line)
  local out, cur, i, quote = {}, nil, 1, nil
  while i <= #line do
    local c = line:sub(i, i)
    if quote then
      if c == quote then quote = nil
      elseif c == "\\" and quote == '"' and i < #line then i = i + 1; cur = cur .. line:sub(i, i)
      else cur = cur .. c end
    elseif c == '"' or c == "'" then
      quote, cur = c, cur or ""
    elseif c:match("%s") then
      if cur then out[#out + 1] = cur; cur = nil end
    elseif c == "\\" and i < #line then
      i = i + 1
      cur = (cur or "") .. line:sub(i, i)
    else
      cur = (cur or "") .. c
    end
    i = i + 1
  end
  if quote then return nil, "unterminated quote" end
  if cur then out[#out + 1] = cur end
  return out
end

local function is_model(v)
  local mt = getmetatable(v)
  return type(v) == "userdata" and mt and mt.__name == "mlsh.Model"
end

local function model_of(env)
  local name = current[env] or "m"
  local v = rawget(env, name)
  if is_model(v) then return v, name end
  if is_model(rawget(env, "m")) then return rawget(env, "m"), "m" end
  return nil, "no model open: .open PATH (or m = open(PATH))"
end

local function err(msg) io.stderr:write(msg, "\n") end

M.COMMANDS = {}
local ORDER = {}
local function command(name, usage, text, fn)
  M.COMMANDS[name] = { name = name, usage = usage, text = text, run = fn }
  ORDER[#ORDER + 1] = name
end

command("help", ".help", "list the dot commands", function()
  print("dot commands (a line starting with '.'; everything else is Lua):")
  for _, name in ipairs(ORDER) do
    local c = M.COMMANDS[name]
    print(string.format("  %-28s %s", c.usage, c.text))
  end
  print("help() for the Lua API, help(\"topic\") for a function, rule, playbook or checklist")
end)
M.COMMANDS.commands = M.COMMANDS.help

command("open", ".open PATH [NAME]", "load a model into NAME (default m)", function(args, env)
  local path, name = args[1], args[2] or "m"
  if not path then return err(".open needs a path") end
  if not name:match("^[%a_][%w_]*$") then return err(".open: '" .. name .. "' is not a Lua name") end
  local m, e = require("mlsh").try_load(path)
  if not m then return err(e) end
  rawset(env, name, m)
  current[env] = name
  print(string.format("%s = %s, spec %s, %s", name, m.path, tostring(m.spec_version), tostring(m.model_type)))
end)

command("info", ".info [NAME]", "the summary of the current model (or NAME)", function(args, env)
  local m, e
  if args[1] then
    m = rawget(env, args[1])
    if not is_model(m) then return err(".info: '" .. args[1] .. "' is not a model") end
  else
    m, e = model_of(env)
    if not m then return err(e) end
  end
  print(m:summary())
end)

command("check", ".check [OPTIONS]", "mlsh check on the current model (options as mlsh check)", function(args, env)
  local m, e = model_of(env)
  local has_path = false
  for _, a in ipairs(args) do
    if a:sub(1, 1) ~= "-" then has_path = true end
  end
  if not has_path then
    if not m then return err(e) end
    args[#args + 1] = m.path
  end
  local rc = require("mlsh.cmd.check").run(args)
  if rc ~= 0 then print("(exit status " .. rc .. ")") end
end)

command("diagnose", ".diagnose [SYMPTOM]", "walk a symptom's playbook for the current model", function(args, env)
  local m = model_of(env)
  local ok, e = pcall(require("mlsh.engine.playbook").interactive, m, args[1])
  if not ok then err(tostring(e)) end
end)

command("checklist", ".checklist NAME", "run a checklist (diagnostic, conversion, production) on the current model", function(args, env)
  local m, e = model_of(env)
  if not m then return err(e) end
  local ok, e2 = pcall(require("mlsh.engine.checklist").interactive, args[1] or "production", m)
  if not ok then err(tostring(e2)) end
end)

command("graph", ".graph FILE", "write the current model's graph coloured by device (.dot or .svg)", function(args, env)
  local m, e = model_of(env)
  if not m then return err(e) end
  if not args[1] then return err(".graph needs an output file (.dot or .svg)") end
  local ok, res, msg = pcall(require("mlsh.graph").write, m, args[1], {})
  if not ok then return err(tostring(res)) end
  if not res then return err(msg) end
  print("wrote " .. args[1])
end)

command("rules", ".rules", "list the rules mlsh check runs", function()
  require("mlsh.cmd.check").run({ "--list-rules" })
end)

command("symptoms", ".symptoms", "list the diagnose symptoms (playbooks)", function()
  require("mlsh.cmd.diagnose").run({ "--list" })
end)
M.COMMANDS.playbooks = M.COMMANDS.symptoms

command("checklists", ".checklists", "list the checklists", function()
  require("mlsh.cmd.checklist").run({ "--list" })
end)

command("models", ".models", "list the variables holding models", function(_, env)
  local names = {}
  for k, v in pairs(env) do
    if type(k) == "string" and is_model(v) then names[#names + 1] = k end
  end
  table.sort(names)
  if #names == 0 then print("no models open") end
  for _, k in ipairs(names) do
    local v = rawget(env, k)
    print(string.format("%s%-10s %s", current[env] == k and "*" or " ", k, v.path))
  end
end)

command("quit", ".quit", "leave the REPL (also .exit, Ctrl-D)", function()
  local core = require "mlsh.core"
  local home = os.getenv("HOME")
  if home and core.repl.save_history then
    pcall(core.repl.save_history, home .. "/.mlsh_history", require("mlsh.cli.repl").HISTORY_MAX)
  end
  io.stdout:flush()
  os.exit(0, true)
end)
M.COMMANDS.exit = M.COMMANDS.quit

-- The command names (for completion and help).
function M.names()
  local out = {}
  for name in pairs(M.COMMANDS) do out[#out + 1] = "." .. name end
  table.sort(out)
  return out
end

-- Run one dot-command line in a REPL environment.
function M.run(line, env)
  local words, werr = M.words((line:gsub("^%s*%.", "")))
  if not words then return err("." .. werr) end
  local name = table.remove(words, 1)
  if not name then return M.COMMANDS.help.run({}, env) end
  local c = M.COMMANDS[name]
  if not c then
    local names = {}
    for k in pairs(M.COMMANDS) do names[#names + 1] = k end
    table.sort(names)
    return err(string.format("unknown command .%s%s (.help lists them)", name,
      require("mlsh.engine.playbook").suggest(name, names):gsub("'(%w)", "'.%1")))
  end
  local ok, e = pcall(c.run, words, env or {})
  if not ok then err(tostring(e)) end
end

return M
