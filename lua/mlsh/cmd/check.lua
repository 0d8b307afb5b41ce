-- mlsh check MODEL... — run the rules over a model, explain its required spec and simulate where its
-- ops run. Exit status: 0 clean, 1 when any finding is an error, 2 on bad input (usage, unknown
-- target or compute units, bad --select, missing rules folder, unreadable model).
-- Formats: text (coloured on a terminal unless NO_COLOR), json (the contract), markdown, sarif.
local mlsh = require "mlsh"
local json = mlsh.json
local spec = require "mlsh.spec"
local rules = require "mlsh.rules"
local placement = require "mlsh.placement"
local required_spec = require "mlsh.required_spec"

local C = {
  summary = "rules, required spec and ANE placement (--format json for one JSON object)",
  usage = "mlsh check [--target iOS17] [--compute-units all|cpu_and_ne|cpu_and_gpu|cpu_only] [--format text|json|markdown|sarif]\n"
    .. "                  [--rules DIR]... [--no-builtin] [--select EXPR] [--memory-budget SIZE] [--device CHIP|DEVICE]\n"
    .. "                  [--calibrated]\n"
    .. "                  [--list-rules] MODEL...",
}

local function fail(msg)
  io.stderr:write("mlsh check: ", msg, "\n")
  return 2
end

-- "iOS16" / "macOS13" / "coremltools.target.iOS17" / "7" (a spec number) -> spec, name | nil, msg
function C.parse_target(s)
  local n
  if s:match("^%d+$") then
    n = math.tointeger(tonumber(s))
    local ok, err = spec.resolve(n)
    if not ok then return nil, "unknown target '" .. s .. "': " .. err end
  else
    n = spec.from_target(s)
    if not n then
      local ok, r = pcall(spec.resolve, s)
      n = ok and r or nil
    end
    if not n then
      return nil, string.format("unknown target '%s' (examples: iOS16, macOS13, tvOS17, watchOS10, visionOS1, or a spec number %d..%d)",
        s, spec.MIN, spec.MAX)
    end
  end
  return n, spec.target_name(n) or ("spec" .. n)
end

-- "2G", "512M", "1.5GiB", "1000000" -> bytes | nil
function C.parse_size(s)
  local num, unit = tostring(s):match("^%s*([%d%.]+)%s*([KkMmGgTt]?)[iI]?[bB]?%s*$")
  num = tonumber(num)
  if not num then return nil end
  local mult = ({ [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3, t = 1024 ^ 4 })[unit:lower()]
  return math.floor(num * mult)
end

C.FORMATS = { text = true, json = true, markdown = true, sarif = true }

local VALUE_OPTIONS = { ["--target"] = "target", ["--compute-units"] = "compute_units", ["--format"] = "format",
                        ["--rules"] = "rules", ["--select"] = "select", ["--memory-budget"] = "memory_budget",
                        ["--device"] = "device" }

function C.parse_args(args)
  local o = { rules = {}, paths = {}, format = "text" }
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
    elseif a == "--calibrated" then o.calibrated = true
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

local function rule_error_findings(set)
  local out = {}
  for _, e in ipairs(set.errors) do
    out[#out + 1] = { rule = "rule-load", severity = "error", pattern = nil, categories = { "load" },
                      title = "rule file failed to load", message = e.message,
                      fix = "fix the rule file (see docs/rules.md) or remove it from the rules folder",
                      location = { value = e.file } }
  end
  return out
end

-- An ONNX model is checked for what it meets on its way to Core ML: ONNX Runtime's CoreML EP.
-- Findings: a graph cut into several partitions (2b), nodes the EP cannot take (info, by op).
local function check_onnx(m, o)
  local ep = require "mlsh.onnx.ep"
  local r = ep.run(m, { model_format = o.model_format or "mlprogram" })
  local findings = {}
  local function add(f)
    f.categories = f.categories or { "performance", "ane", "conversion" }
    f.location = f.location or {}
    f.evidence = f.evidence or {}
    findings[#findings + 1] = f
  end
  if r.supported_nodes == 0 then
    add { rule = "onnx-coreml-ep", severity = "warning", pattern = "2b",
          message = string.format("the CoreML EP takes none of the %d nodes: everything runs on the CPU EP", r.nodes),
          fix = "see `mlsh ep` for each node's reason; try the other model format or fixed input shapes" }
  elseif #r.partitions > 1 then
    local cuts = {}
    for i, c in ipairs(r.cut_makers) do
      if i > 3 then break end
      cuts[#cuts + 1] = string.format("%s (%d)", c.op, c.partitions_caused)
    end
    add { rule = "onnx-coreml-ep", severity = "warning", pattern = "2b",
          message = string.format("the CoreML EP cuts the graph into %d partitions (%d/%d nodes on CoreML); every hop "
            .. "costs a transfer. Cut-makers: %s", #r.partitions, r.supported_nodes, r.nodes, table.concat(cuts, ", ")),
          fix = "freeze dynamic dims (mlsh ep --freeze-all 1 --save), rewrite Erf-GELU to tanh, or replace the cut-making ops",
          evidence = { partitions = #r.partitions, supported_nodes = r.supported_nodes, nodes = r.nodes, verdict = r.verdict } }
  end
  local by_op = {}
  for _, u in ipairs(r.unsupported) do
    local e = by_op[u.op]
    if not e then
      e = { count = 0, reason = u.reason, node = u.name or u.node }
      by_op[u.op] = e
    end
    e.count = e.count + 1
  end
  local ops = {}
  for op in pairs(by_op) do ops[#ops + 1] = op end
  table.sort(ops)
  for _, op in ipairs(ops) do
    local e = by_op[op]
    add { rule = "onnx-coreml-ep-node", severity = "info", pattern = "5a",
          message = string.format("%d x %s not taken by the CoreML EP: %s", e.count, op, tostring(e.reason)),
          fix = "see `mlsh ep` for the node-by-node reasons", location = { op = tostring(e.node) } }
  end
  local summary = { error = 0, warning = 0, info = 0 }
  for _, f in ipairs(findings) do summary[f.severity] = summary[f.severity] + 1 end
  local fj = json.array({})
  for i, f in ipairs(findings) do
    fj[i] = { rule = f.rule, severity = f.severity, pattern = f.pattern, categories = json.array(f.categories),
              message = f.message, fix = f.fix, location = json.object(f.location), evidence = f.evidence }
  end
  local report = { path = m.path, model_type = "onnx", spec_version = json.null, target = json.null,
                   findings = fj, summary = summary, required_spec = json.null, placement = json.null,
                   ep = ep.to_json(r) }
  local text = { require("mlsh.cmd.ep").text_report(r, { path = m.path }) }
  for _, f in ipairs(findings) do
    text[#text + 1] = string.format("  %-7s [%s] %s: %s", f.severity, f.pattern, f.rule, f.message)
  end
  return report, { findings = findings, summary = summary, model = m, text = table.concat(text, "\n") .. "\n", onnx = true }
end

-- Check one loaded model; returns the report table (JSON shape) and the raw parts.
function C.check_model(m, o, set, select)
  if m.format == "onnx" then return check_onnx(m, o) end
  local required = required_spec.explain(m)
  local p = placement.simulate(m, { compute_units = o.compute_units, target = o.target, fallbacks = set.fallbacks,
                                    device = o.device, calibrated = o.calibrated })
  local findings = rules.run(m, set, { target = o.target, compute_units = o.compute_units, select = select,
    options = { memory_budget = o.memory_budget }, placement = p, required = required, device = o.device })
  for _, f in ipairs(rule_error_findings(set)) do table.insert(findings, 1, f) end
  local summary = rules.summary(findings)
  local report = {
    path = m.path, model_type = m.model_type or json.null, spec_version = m.spec_version or json.null,
    target = o.target and { name = o.target_name, spec = o.target } or json.null,
    compute_units = p.compute_units,
    findings = rules.findings_json(findings),
    summary = summary,
    required_spec = required_spec.to_json(required),
    placement = placement.to_json(p),
    rules = { count = #set.rules, dirs = json.array(set.dirs), notes = json.array(set.notes) },
  }
  return report, { findings = findings, required = required, placement = p, summary = summary, model = m }
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
    if ok and o.format == "text" and parts.onnx then
      -- already rendered
    elseif ok and o.format == "text" then
      local rok, text = pcall(function() return require("mlsh.report_text").render(parts, o) end)
      if rok then parts.text = text else ok, report = false, text end
    elseif ok and o.format ~= "json" then
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
