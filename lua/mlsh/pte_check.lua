-- mlsh.pte_check — `mlsh check X.pte`: the usual rules, required spec and placement on every Core
-- ML delegate of an ExecuTorch program, plus what only the program shows:
--   pte-target      the delegate needs a newer Core ML than --target (the runtime's "Unknown opset
--                   'CoreML7'" load failure), or its min_deployment_target compile spec does;
--   pte-graph-break more than one Core ML delegate in a method: CPU <-> Core ML hops, with the
--                   operators that run between them;
--   pte-compile-spec compile specs that contradict the payload (model_type, precision, compute
--                   units that the placement cannot use, a min_deployment_target below the spec).
-- check(p, o, set, select, C) -> report (JSON), parts {findings, summary, text, rendered = true}
local json = require "mlsh.json"
local spec = require "mlsh.spec"
local rules = require "mlsh.engine.rules"

local M = {}

local CU = { all = "ALL", cpu_only = "CPU_ONLY", cpu_and_gpu = "CPU_AND_GPU", cpu_and_ne = "CPU_AND_NE" }
M.COMPUTE_UNITS = CU

local function finding(rule, severity, message, fix, location, evidence)
  return { rule = rule, severity = severity, pattern = "pte", categories = { "executorch", "deployment" },
           title = rule, message = message, fix = fix, location = location or {}, evidence = evidence }
end

local function spec_name(n)
  local ok, name = pcall(spec.target_name, n)
  return string.format("spec %d (%s)", n, ok and name or "?")
end

-- Highest opset a model's functions use, as a spec version (nil for non-programs).
local function opset_spec(m)
  local best, name
  for _, fn in ipairs(m:functions() or {}) do
    local ok, n = pcall(spec.opset_spec, tostring(fn.opset))
    if ok and n and (not best or n > best) then best, name = n, fn.opset end
  end
  return best, name
end

local function target_findings(d, m, o, out)
  if not o.target then return end
  local loc = { method = d.method, delegate = d.index }
  local need, opset = opset_spec(m)
  local have = m.spec_version
  if need and need > o.target then
    out[#out + 1] = finding("pte-target", "error", string.format("%s delegate %d uses opset %s (%s): the ExecuTorch runtime on %s "
      .. "fails to load it (\"Unknown opset '%s'\")", d.method, d.index, opset, spec_name(need), o.target_name, opset),
      "lower with a min_deployment_target of " .. (o.target_name or o.target) .. " or raise the target", loc)
  elseif have and have > o.target then
    out[#out + 1] = finding("pte-target", "error", string.format("%s delegate %d is a %s model but the target is %s",
      d.method, d.index, spec_name(have), o.target_name), "re-export with minimum_deployment_target = " .. tostring(o.target_name), loc)
  end
  local mdt = math.tointeger(tonumber(d.compile_specs.min_deployment_target or ""))
  if mdt and mdt > o.target then
    out[#out + 1] = finding("pte-target", "error", string.format("%s delegate %d was lowered with min_deployment_target %s, above the target %s",
      d.method, d.index, spec_name(mdt), o.target_name), "lower again with the target's deployment version", loc)
  end
end

-- fp16 vs fp32 op outputs of the payload
local function precision_of(m)
  local n16, n32 = 0, 0
  for _, op in ipairs(m:ops() or {}) do
    if op.type ~= "const" then
      for _, v in ipairs(op.outputs or {}) do
        if v.dtype == "fp16" then n16 = n16 + 1 elseif v.dtype == "fp32" then n32 = n32 + 1 end
      end
    end
  end
  return n16, n32
end

local function spec_findings(d, m, placement, out)
  local cs, loc = d.compile_specs, { method = d.method, delegate = d.index }
  local mt = cs.model_type
  local fmt = m.format
  if (mt == "model" and fmt == "mlmodelc") or (mt == "compiled_model" and fmt == "mlpackage") then
    out[#out + 1] = finding("pte-compile-spec", "error", string.format("%s delegate %d: model_type=%s but the payload holds an %s",
      d.method, d.index, mt, fmt), "the runtime looks for model.mlmodelc first; re-lower so the spec and payload agree", loc)
  end
  local prec = cs.model_compute_precision
  if prec == "float16" or prec == "float32" then
    local n16, n32 = precision_of(m)
    if prec == "float16" and n16 == 0 and n32 > 0 then
      out[#out + 1] = finding("pte-compile-spec", "warning", string.format("%s delegate %d: model_compute_precision=float16 but "
        .. "none of the payload's %d op outputs is fp16", d.method, d.index, n32), "check the lowering: the ANE runs fp16 only", loc)
    elseif prec == "float32" and n16 > 0 then
      out[#out + 1] = finding("pte-compile-spec", "warning", string.format("%s delegate %d: model_compute_precision=float32 but "
        .. "%d op outputs of the payload are fp16", d.method, d.index, n16), "re-lower with the precision you meant", loc)
    end
  end
  local cu = cs.compute_units
  if cu and not CU[cu] then
    out[#out + 1] = finding("pte-compile-spec", "error", string.format("%s delegate %d: unknown compute_units '%s'", d.method,
      d.index, cu), "use all, cpu_only, cpu_and_gpu or cpu_and_ne", loc)
  elseif (cu == "cpu_and_ne" or cu == "all") and placement and #placement.ops > 0 and placement.ane_coverage.ops == 0 then
    out[#out + 1] = finding("pte-compile-spec", "warning", string.format("%s delegate %d: compute_units=%s asks for the Neural Engine "
      .. "but no op of the payload is predicted to run there", d.method, d.index, cu), "see the placement below", loc)
  end
  local mdt = math.tointeger(tonumber(cs.min_deployment_target or ""))
  if mdt and m.spec_version and m.spec_version > mdt then
    out[#out + 1] = finding("pte-compile-spec", "warning", string.format("%s delegate %d: min_deployment_target %s but the payload "
      .. "is a %s model", d.method, d.index, spec_name(mdt), spec_name(m.spec_version)), "the payload will not load below its spec", loc)
  end
end

local INSTR = { [1] = "kernel", [2] = "delegate" }

-- Per method: Core ML delegates called in order, and what runs between consecutive ones.
function M.graph_breaks(p)
  local out = {}
  local by_index = {}
  for _, d in ipairs(p:delegates()) do by_index[d.method_index .. "/" .. d.index] = d end
  for mi, m in ipairs(p:methods()) do
    local calls, between = {}, {}
    for _, ins in ipairs(m.instructions) do
      local kind = INSTR[ins.kind]
      if kind == "delegate" then
        local d = by_index[mi .. "/" .. ins.index]
        if d and d.is_coreml then
          if #calls > 0 then out[#out + 1] = { method = m.name, from = calls[#calls], to = d.index, between = between } end
          calls[#calls + 1] = d.index
          between = {}
        elseif d then
          between[#between + 1] = d.backend .. " delegate " .. d.index
        end
      elseif kind == "kernel" then
        local op = m.operators[ins.index + 1]
        between[#between + 1] = op and (op.overload ~= "" and op.name .. "." .. op.overload or op.name) or ("operator " .. ins.index)
      end
    end
  end
  return out
end

local function break_findings(p, out)
  for _, b in ipairs(M.graph_breaks(p)) do
    out[#out + 1] = finding("pte-graph-break", "warning", string.format("method %s: Core ML delegates %d and %d are split by %s; "
      .. "each hop copies tensors between the CPU and Core ML", b.method, b.from, b.to,
      #b.between > 0 and table.concat(b.between, ", ") or "nothing"),
      "make these operators lowerable to Core ML (or partition them away) so the method is one delegate",
      { method = b.method }, { between = b.between, from = b.from, to = b.to })
  end
end

function M.check(p, o, set, select, C)
  if o.format == "markdown" then
    error(p.path .. ": --format markdown covers one model; for a .pte use text, json or sarif (or --delegate with weights/graph)", 0)
  end
  local program_findings, delegates, all, texts = {}, json.array({}), {}, {}
  break_findings(p, program_findings)
  for _, d in ipairs(p:coreml_delegates()) do
    local m = assert(d:model())
    local dopts = setmetatable({}, { __index = o })
    if not o.compute_units_given and CU[d.compile_specs.compute_units or ""] then dopts.compute_units = CU[d.compile_specs.compute_units] end
    local report, parts = C.check_model(m, dopts, set, select)
    target_findings(d, m, o, program_findings)
    spec_findings(d, m, parts.placement, program_findings)
    delegates[#delegates + 1] = { method = d.method, index = d.index, location = d.location, report = report }
    for _, f in ipairs(parts.findings) do all[#all + 1] = f end
    if o.format == "text" then
      texts[#texts + 1] = string.format("-- %s delegate %d (%s, compute_units %s)\n", d.method, d.index, d.location,
        tostring(dopts.compute_units)) .. require("mlsh.report.text").render(parts, dopts)
    end
  end
  for _, f in ipairs(program_findings) do all[#all + 1] = f end
  local summary = rules.summary(all)
  local report = { path = p.path, format = "pte", findings = rules.findings_json(program_findings), delegates = delegates,
                   summary = summary }
  local text
  if o.format == "text" then
    local head = { string.format("%s: ExecuTorch program, %d Core ML delegate(s)", p.path, #delegates) }
    require("mlsh.report.text").findings(program_findings, head, o.paint)
    text = table.concat(head, "\n") .. "\n" .. table.concat(texts)
  end
  return report, { findings = all, summary = summary, text = text, rendered = true,
                   model = { path = p.path, model_type = "pte" } }
end

return M
