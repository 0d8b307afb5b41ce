-- mlsh check MODEL... — run the rules over a model, explain its required spec and simulate where its
-- ops run. Exit status: 0 clean, 1 when any finding is an error, 2 on bad input (usage, unknown
-- target or compute units, bad --select, missing rules folder, unreadable model).
-- Formats: text (coloured on a terminal unless NO_COLOR), json (the contract), markdown, sarif.
local mlsh = require "mlsh"
local json = mlsh.json
local rules = require "mlsh.engine.rules"
local placement = require "mlsh.placement.coreml"
local check = require "mlsh.engine.check"
local argparse = require "mlsh.cli.args"

local C = {
  summary = "rules, required spec and ANE placement (--format json for one JSON object)",
  usage = "mlsh check [--target iOS17] [--compute-units all|cpu_and_ne|cpu_and_gpu|cpu_only] [--format text|json|markdown|sarif]\n"
    .. "                  [--rules DIR]... [--no-builtin] [--select EXPR] [--memory-budget SIZE] [--device CHIP|DEVICE]\n"
    .. "                  [--static]\n"
    .. "                  [--list-rules] MODEL...",
}

local function fail(msg)
  io.stderr:write("mlsh check: ", msg, "\n")
  return 2
end

C.parse_target, C.parse_size = argparse.parse_target, argparse.parse_size -- (also as cmd.check's, as before)

C.FORMATS = { text = true, json = true, markdown = true, sarif = true }

local VALUE_OPTIONS = { ["--target"] = "target", ["--compute-units"] = "compute_units", ["--format"] = "format",
                        ["--rules"] = "rules", ["--select"] = "select", ["--memory-budget"] = "memory_budget",
                        ["--device"] = "device" }

function C.parse_args(args)
  local o = { rules = {}, paths = {}, format = "text", calibrated = true } -- placement's second stage by default
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    if VALUE_OPTIONS[name] then
      if value == nil then
        value = args[i + 1]
        if value == nil then return nil, name .. " needs a value" end
        i = i + 1
      end
      local key = VALUE_OPTIONS[name]
      if key == "rules" then o.rules[#o.rules + 1] = value else o[key] = value end
    elseif a == "--json" then o.format = "json"
    elseif a == "--no-builtin" then o.no_builtin = true
    elseif a == "--calibrated" then o.calibrated = true -- the default (kept for scripts that pass it)
    elseif a == "--static" or a == "--no-calibrated" then o.calibrated = false
    elseif a == "--list-rules" then o.list = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then return nil, "unknown option " .. a
    else o.paths[#o.paths + 1] = a end
    i = i + 1
  end
  if not C.FORMATS[o.format] then
    return nil, "unknown --format '" .. o.format .. "' (text, json, markdown or sarif)"
  end
  return o
end

-- Check one loaded model (the pipeline lives in mlsh.engine.check); an ONNX report comes rendered.
function C.check_model(m, o, set, select)
  if m.format == "pte" then return require("mlsh.pte_check").check(m, o, set, select, C) end
  local report, parts = check.model(m, o, set, select)
  if parts.onnx then
    local text = { require("mlsh.cmd.ep").text_report(parts.ep, { path = m.path }) }
    for _, f in ipairs(parts.findings) do
      text[#text + 1] = string.format("  %-7s [%s] %s: %s", f.severity, f.pattern, f.rule, f.message)
    end
    parts.text = table.concat(text, "\n") .. "\n"
  end
  return report, parts
end

local function list_rules(set, select)
  for _, r in ipairs(set.rules) do
    if not select or select(r) then
      print(string.format("%-22s %-7s %-4s %-32s %s", r.id, r.severity, r.pattern or "-", table.concat(r.categories, ","), r.title))
    end
  end
  for _, e in ipairs(set.errors) do io.stderr:write("mlsh check: ", e.message, "\n") end
  return #set.errors > 0 and 1 or 0
end

function C.run(args)
  local o, err = C.parse_args(args)
  if not o then return fail(err .. "\nusage: " .. C.usage) end
  if o.help then print("usage: " .. C.usage) return 0 end
  if o.target then
    local n, name = C.parse_target(o.target)
    if not n then return fail(name) end
    o.target, o.target_name = n, name
  end
  o.compute_units_given = o.compute_units ~= nil
  local cu, cerr = placement.compute_units(o.compute_units)
  if not cu then return fail(cerr) end
  o.compute_units = cu
  if o.device then
    local d, derr = require("mlsh.chips").resolve(o.device)
    if not d then return fail(derr) end
  end
  if o.format == "text" then o.paint = require("mlsh.term").for_stream(1) end
  if o.memory_budget then
    local b = C.parse_size(o.memory_budget)
    if not b then return fail("bad --memory-budget '" .. o.memory_budget .. "' (e.g. 2G, 512M, bytes)") end
    o.memory_budget = b
  end
  local set, derr = rules.discover({ dirs = o.rules, builtin = not o.no_builtin })
  if not set then return fail(derr) end
  local select, serr = rules.selector(o.select, set)
  if not select then return fail(serr) end
  if o.list then return list_rules(set, select) end
  if #o.paths == 0 then return fail("no model given\nusage: " .. C.usage) end
  for _, e in ipairs(set.errors) do io.stderr:write("mlsh check: ", e.message, "\n") end
  local reports, rc = {}, 0
  for _, path in ipairs(o.paths) do
    local m, lerr = mlsh.try_load(path)
    if not m then
      io.stderr:write("mlsh: ", lerr, "\n")
      return 2
    end
    local ok, report, parts = pcall(C.check_model, m, o, set, select)
    local rendered = ok and (parts.onnx or parts.rendered) -- an ONNX or .pte report comes rendered
    if ok and o.format == "text" and not rendered then
      local rok, text = pcall(function() return require("mlsh.report.text").render(parts, o) end)
      if rok then parts.text = text else ok, report = false, text end
    elseif ok and o.format ~= "json" and o.format ~= "text" then
      -- markdown and SARIF read the model's path only; render after the loop
      parts.model = { path = m.path, model_type = m.model_type, spec_version = m.spec_version }
    end
    m:close()
    if not ok then
      local e = tostring(report)
      io.stderr:write("mlsh: ", e:find(path, 1, true) and e or (path .. ": " .. e), "\n")
      return 2
    end
    if parts.summary.error > 0 then rc = 1 end
    reports[#reports + 1] = { report = report, parts = parts }
  end
  if o.format == "json" then
    if #reports == 1 then print(json.encode(reports[1].report, true))
    else
      local list = json.array({})
      for i, r in ipairs(reports) do list[i] = r.report end
      print(json.encode({ models = list }, true))
    end
  elseif o.format == "sarif" then
    print(json.encode(require("mlsh.report.sarif").check(reports, o, set), true))
  elseif o.format == "markdown" then
    io.write(require("mlsh.report.markdown").check(reports, o))
  else
    for i, r in ipairs(reports) do
      if i > 1 then print() end
      io.write(r.parts.text)
    end
  end
  return rc
end

return C
