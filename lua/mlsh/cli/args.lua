-- mlsh.cli.args — what the commands share to read their arguments: targets, sizes, options, the
-- answers of --answers/--answer. Used by cmd/*; the library never parses command lines.
--   args.parse_target("iOS17") -> 8, "iOS17" | nil, msg      (mlsh.spec.parse_target)
--   args.parse_size("2G") -> bytes | nil
--   args.parse_options(argv, {values=, multi=, flags=}) -> o (o.paths) | nil, msg
--   args.resolve_common(o) -> true | nil, msg                 (target, compute units, memory budget)
--   args.collect_answers(o, loader) -> answers | nil, msg
--   args.usage_error(name, C, msg) -> 2                      ("mlsh NAME: msg" and C.usage on stderr)
--   args.parsed(name, C, args) -> o | nil, 2                  (C.parse under pcall: {usage = msg} errors)
local spec = require "mlsh.spec"

local M = {}

M.parse_target = spec.parse_target

-- "2G", "512M", "1.5GiB", "1000000" -> bytes | nil
function M.parse_size(s)
  local num, unit = tostring(s):match("^%s*([%d%.]+)%s*([KkMmGgTt]?)[iI]?[bB]?%s*$")
  num = tonumber(num)
  if not num then return nil end
  local mult = ({ [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3, t = 1024 ^ 4 })[unit:lower()]
  return math.floor(num * mult)
end

-- "mlsh NAME: msg" and the command's usage on stderr; the exit status of a usage error.
function M.usage_error(name, C, msg)
  io.stderr:write("mlsh ", name, ": ", msg, "\nusage: ", C.usage, "\n")
  return 2
end

-- C.parse(args) for commands whose parser raises {usage = msg}: o, or nil and the exit status after
-- the usage error is printed. Any other error is re-raised.
function M.parsed(name, C, args)
  local ok, o = pcall(C.parse, args)
  if ok then return o end
  if type(o) == "table" and o.usage then return nil, M.usage_error(name, C, o.usage) end
  error(o, 0)
end

M.FORMATS = { text = true, json = true, markdown = true, sarif = true }

-- A small option parser shared by check, diagnose, checklist and graph. opts.values: {["--opt"] = key};
-- opts.multi: keys that collect a list; opts.flags: {["--flag"] = key}. Returns o (o.paths: the
-- positional arguments) or nil, message.
function M.parse_options(args, opts)
  local o = { paths = {} }
  for _, k in pairs(opts.multi or {}) do o[k] = {} end
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    local key = opts.values[name]
    if key then
      if value == nil then
        value = args[i + 1]
        if value == nil then return nil, name .. " needs a value" end
        i = i + 1
      end
      if type(o[key]) == "table" then table.insert(o[key], value) else o[key] = value end
    elseif opts.flags and opts.flags[a] then
      local k, v = opts.flags[a][1], opts.flags[a][2]
      o[k] = v
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option " .. a
    else
      o.paths[#o.paths + 1] = a
    end
    i = i + 1
  end
  if o.format and not M.FORMATS[o.format] then
    return nil, "unknown --format '" .. o.format .. "' (text, json, markdown or sarif)"
  end
  return o
end

-- The options of a command that takes one model: -h/--help, parse_options(args, opts), exactly
-- one positional path (o.path). Returns o, or nil and the exit status (0 after the usage for
-- --help, 2 after a usage error).
function M.one_model(name, C, args, opts)
  for _, a in ipairs(args) do
    if a == "-h" or a == "--help" then print("usage: " .. C.usage) return nil, 0 end
  end
  local o, err = M.parse_options(args, opts)
  if not o then return nil, M.usage_error(name, C, err) end
  if #o.paths > 1 then return nil, M.usage_error(name, C, "one model at a time") end
  if #o.paths == 0 then return nil, M.usage_error(name, C, "no model given") end
  o.path = o.paths[1]
  return o
end

-- --static / --no-calibrated (placement's first stage only) and --calibrated (the default).
M.PLACEMENT_FLAGS = { ["--static"] = { "calibrated", false }, ["--no-calibrated"] = { "calibrated", false },
                      ["--calibrated"] = { "calibrated", true } }

-- Target, compute units and memory budget as mlsh check reads them. Returns true or nil, message.
function M.resolve_common(o)
  if o.target then
    local n, name = M.parse_target(o.target)
    if not n then return nil, name end
    o.target, o.target_name = n, name
  end
  if o.compute_units then
    local cu, err = require("mlsh.placement.coreml").compute_units(o.compute_units)
    if not cu then return nil, err end
    o.compute_units = cu
  end
  if o.memory_budget then
    local b = M.parse_size(o.memory_budget)
    if not b then return nil, "bad --memory-budget '" .. o.memory_budget .. "' (e.g. 2G, 512M, bytes)" end
    o.memory_budget = b
  end
  return true
end

-- Answers from --answers FILE and --answer ID=VALUE (the latter win). Returns the table or nil, message.
function M.collect_answers(o, loader)
  local answers = {}
  if o.answers_file then
    local t, err = loader(o.answers_file)
    if not t then return nil, err end
    for k, v in pairs(t) do answers[k] = v end
  end
  for _, kv in ipairs(o.answer or {}) do
    local k, v = kv:match("^%s*([^=%s]+)%s*=%s*(.-)%s*$")
    if not k or v == "" then return nil, "--answer takes ID=ANSWER, got '" .. kv .. "'" end
    answers[k] = v
  end
  return answers
end

return M
