-- mlsh.cli.main — the mlsh command line: one entry point for the REPL, scripts, -e and subcommands.
--   mlsh                      interactive REPL
--   mlsh FILE.lua [args...]   run a script (the global `arg` holds its arguments, as in lua)
--   mlsh -e CODE [-i]         run code (several -e allowed; -i enters the REPL afterwards)
--   mlsh COMMAND [args...]    a subcommand: lua/mlsh/cmd/COMMAND.lua
-- Scripts, -e code and the REPL see the API as the global `mlsh` (the table require "mlsh" returns).
-- Exit status: 0 ok, 1 findings or a model that cannot be read, 2 bad usage.
local M = {}

M.COMMANDS = { "info", "check", "diagnose", "checklist", "graph", "ep", "save", "weights", "compress", "decompress", "compare",
  "diff", "report", "plan", "run", "fix", "split", "extract" } -- listed in help; any lua/mlsh/cmd/<name>.lua is also found by name

local function stderr(fmt, ...) io.stderr:write(string.format(fmt, ...), "\n") end

function M.usage()
  local lines = {
    "usage: mlsh [options] [script.lua [args...]]",
    "       mlsh COMMAND [args...]",
    "options:",
    "  -e CODE     run CODE (may repeat)",
    "  -i          enter the REPL after -e or a script",
    "  --safe      sandbox rule folders and the script (no io/os.execute/load/debug, budgets)",
    "  -v, --version",
    "  -h, --help",
    "commands:",
  }
  for _, name in ipairs(M.COMMANDS) do
    local ok, cmd = pcall(require, "mlsh.cmd." .. name)
    lines[#lines + 1] = string.format("  %-12s %s", name, ok and cmd.summary or "")
  end
  return table.concat(lines, "\n")
end

local function find_command(name)
  if not name:match("^[%w_-]+$") then return nil end
  local modname = "mlsh.cmd." .. name:gsub("-", "_")
  local ok, cmd = pcall(require, modname)
  if ok then return cmd end
  if not tostring(cmd):find("module '" .. modname .. "' not found", 1, true) then error(cmd, 0) end
  return nil
end

-- Run a chunk (file or string) with `arg` set; returns the exit status.
local function run_chunk(chunk, name, args)
  if not chunk then
    stderr("mlsh: %s", name)
    return 2
  end
  _G.arg = args
  -- the API is there already, as a shell hands its scripts (require "mlsh" gives the same table);
  -- a --safe script has its own environment, where `mlsh` is the read-only view
  _G.mlsh = require "mlsh"
  local repl = require("mlsh.core").repl
  local res = table.pack(repl.pcall(chunk, table.unpack(args)))
  if not res[1] then
    stderr("mlsh: %s", tostring(res[2]))
    return 1
  end
  if math.type(res[2]) == "integer" then return res[2] end
  return 0
end

-- The environment of a script run with --safe (mlsh.sandbox.script_env).
function M.safe_script_env(path, args) return require("mlsh.sandbox").script_env(path, args) end

function M.main(argv)
  local i, interactive, ran = 1, false, false
  while argv[i] do
    local a = argv[i]
    if a == "-h" or a == "--help" or a == "help" then
      print(M.usage())
      return 0
    elseif a == "-v" or a == "--version" then
      print("mlsh " .. require("mlsh").version .. " (" .. _VERSION .. ")")
      return 0
    elseif a == "-e" then
      local code = argv[i + 1]
      if not code then stderr("mlsh: -e needs an argument") return 2 end
      local chunk, err = load(code, "=(command line)", "t")
      local rc = run_chunk(chunk, err, { [0] = "-e" })
      if rc ~= 0 then return rc end
      ran = true
      i = i + 2
    elseif a == "-i" then
      interactive = true
      i = i + 1
    elseif a == "--safe" then
      require("mlsh.sandbox").set_safe(true)
      i = i + 1
    elseif a == "--" then
      i = i + 1
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      stderr("mlsh: unknown option %s\n%s", a, M.usage())
      return 2
    else
      break
    end
  end
  local first = argv[i]
  if first then
    local cmd = not first:find("[/.]") and find_command(first)
    if cmd then
      local args = {}
      for j = i + 1, #argv do args[#args + 1] = argv[j] end
      return cmd.run(args) or 0
    end
    local args = { [0] = first }
    for j = i + 1, #argv do args[#args + 1] = argv[j] end
    local chunk, err
    if first == "-" then chunk, err = load(io.read("a"), "=stdin", "t")
    else
      local f = io.open(first, "r")
      if not f then
        stderr("mlsh: %s: no such script or command (try mlsh --help)", first)
        return 2
      end
      f:close()
      local sandbox = require "mlsh.sandbox"
      if sandbox.safe then
        chunk, err = loadfile(first, "t", sandbox.script_env(first, args))
        if chunk then
          local inner = chunk
          chunk = function(...)
            local res = table.pack(sandbox.guarded_call("script " .. first, inner, ...))
            if not res[1] then error(res[2], 0) end
            return table.unpack(res, 2, res.n)
          end
        end
      else
        chunk, err = loadfile(first, "t")
      end
    end
    local rc = run_chunk(chunk, err, args)
    if rc ~= 0 or not interactive then return rc end
  elseif ran and not interactive then
    return 0
  end
  local repl = require "mlsh.cli.repl"
  repl.main = M.main -- mlsh.cli(...) in the REPL runs a command line
  return repl.run()
end

return M
