-- mlsh.engine.check — the `mlsh check` pipeline on one loaded model: facts (required spec,
-- placement) -> rules -> the report table in the JSON contract's shape, plus the raw parts for the
-- renderers. An ONNX model is checked through the CoreML EP prediction instead. Used by cmd/check
-- and by mlsh.diff (so a diff's findings are exactly check's).
local json = require "mlsh.json"
local rules = require "mlsh.engine.rules"
local placement = require "mlsh.placement.coreml"
local required_spec = require "mlsh.required_spec"
local facts = require "mlsh.facts"

local M = {}

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
  local report = { path = m.path, model_type = "onnx", spec_version = json.null, target = json.null,
                   findings = rules.findings_json(findings), summary = summary, required_spec = json.null, placement = json.null,
                   ep = ep.to_json(r) }
  return report, { findings = findings, summary = summary, model = m, ep = r, onnx = true }
end

-- Check one loaded model; returns the report table (JSON shape) and the raw parts.
function M.model(m, o, set, select)
  if m.format == "onnx" then return check_onnx(m, o) end
  local f = facts.new(m, { compute_units = o.compute_units, target = o.target, fallbacks = set.fallbacks,
                           device = o.device, calibrated = o.calibrated })
  local required, p = f:required_spec(), f:placement()
  local findings = rules.run(m, set, { target = o.target, compute_units = o.compute_units, select = select,
    options = { memory_budget = o.memory_budget }, facts = f, device = o.device })
  for _, e in ipairs(rule_error_findings(set)) do table.insert(findings, 1, e) end
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

return M
