-- mlsh.plan — a compute plan in the shape of coremltools' MLComputePlan, from mlsh's placement
-- prediction, for every function of a Core ML model (Apple's covers only the default one).
--   local plan = require "mlsh.plan"
--   local t = plan.build(m, { compute_units = "ALL", target = nil, fallbacks = nil, device = nil })
--   t.functions[name].operations[i] = {name, operator_name, index, outputs, preferred_compute_device,
--       supported_compute_devices, estimated_cost = {weight}, reasons, why}
--   plan.to_json(t) -> the `mlsh plan --json` object (docs/plan.md, docs/plan.schema.json)
-- Keys follow MLComputePlanDeviceUsage (preferred_compute_device, supported_compute_devices) and
-- MLComputePlanCost (weight). Devices are "ANE", "GPU", "CPU". Weights are the op's share of the
-- function's estimated work (flops + bytes moved) and sum to 1 per function; a function without
-- estimated work shares it equally. const/constexpr ops are not listed (no device usage).
local mlsh = require "mlsh"
local json = mlsh.json

local M = { FORMAT = "mlsh.compute_plan", VERSION = 1, DEVICES = { "ANE", "GPU", "CPU" } }

local function contains(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

-- The units an op may run on, under the compute units: the ANE/GPU when mlsh's tables say it is
-- (or may be) eligible, the CPU always (Core ML's fallback), and the preferred one in any case.
local function supported(o, allowed, ctx)
  local out, notes = {}, {}
  local verdict = mlsh.placement.verdict
  for _, u in ipairs(M.DEVICES) do
    if contains(allowed, u) then
      local ok_unit
      if u == "CPU" or u == o.device then ok_unit = true
      elseif verdict and o.node then
        local ok, v, _, text = pcall(verdict, o.node, u, ctx)
        ok_unit = ok and (v == "yes" or v == "maybe")
        if ok and not ok_unit and text then notes[#notes + 1] = "not " .. u .. ": " .. text end
      end
      if ok_unit then out[#out + 1] = u end
    end
  end
  return out, notes
end

local function fn_key(o)
  local fn = o["function"] or "main"
  return o.model and (o.model .. "/" .. fn) or fn
end

function M.build(m, opts)
  opts = opts or {}
  if m.format == "onnx" then
    error(m.path .. ": a compute plan is for Core ML models (for ONNX, `mlsh ep` predicts the CoreML EP partitions)", 0)
  end
  local cu, err = mlsh.placement.compute_units(opts.compute_units)
  if not cu then error(err, 0) end
  local p = m:placement({ compute_units = cu, target = opts.target, fallbacks = opts.fallbacks, device = opts.device,
                          calibrated = opts.calibrated })
  local allowed = mlsh.placement.UNITS[cu]
  local target = opts.target or m.spec_version
  local info = type(target) == "number" and require("mlsh.spec").info(math.tointeger(target) or 0) or nil
  local ctx = { compute_units = cu, target = target, os = info and tonumber((info.ios or ""):match("^%d+%.?%d*")),
                fallbacks = opts.fallbacks, device = opts.device, model = m }
  local t = { model = m.path, model_type = m.model_type, spec_version = m.spec_version, compute_units = cu,
              functions = {}, order = {} }
  local work = {}
  for _, o in ipairs(p.ops) do
    local k = fn_key(o)
    local f = t.functions[k]
    if not f then
      f = { name = k, operations = {} }
      t.functions[k] = f
      t.order[#t.order + 1] = k
      work[k] = 0
    end
    work[k] = work[k] + (o.work or 0)
    local sup, notes = supported(o, allowed, ctx)
    local reasons = { o.reason }
    for _, n in ipairs(notes) do if not o.reason:find(n, 1, true) then reasons[#reasons + 1] = n end end
    local outs = {}
    local node = o.node
    for i, x in ipairs(node and node.outputs or {}) do outs[i] = type(x) == "table" and x.name or tostring(x) end
    f.operations[#f.operations + 1] = { name = o.op, operator_name = o.type, index = #f.operations + 1,
      preferred_compute_device = o.device, supported_compute_devices = sup, reasons = reasons, why = o.why,
      work = o.work or 0, outputs = outs }
  end
  for k, f in pairs(t.functions) do
    local total, n = work[k], #f.operations
    for _, op in ipairs(f.operations) do
      op.estimated_cost = { weight = total > 0 and op.work / total or 1 / n }
    end
  end
  return t
end

function M.to_json(t)
  local fns = json.object({})
  for _, k in ipairs(t.order) do
    local f = t.functions[k]
    local ops = json.array({})
    local counts = { ANE = 0, GPU = 0, CPU = 0 }
    for i, op in ipairs(f.operations) do
      counts[op.preferred_compute_device] = counts[op.preferred_compute_device] + 1
      ops[i] = { name = op.name, operator_name = op.operator_name, index = op.index,
                 preferred_compute_device = op.preferred_compute_device,
                 supported_compute_devices = json.array(op.supported_compute_devices),
                 estimated_cost = { weight = op.estimated_cost.weight }, reasons = json.array(op.reasons), why = op.why }
    end
    fns[k] = { operations = ops, device_counts = counts }
  end
  return { format = M.FORMAT, version = M.VERSION, model = t.model, model_type = t.model_type or json.null,
           spec_version = t.spec_version or json.null, compute_units = t.compute_units, functions = fns,
           function_order = json.array(t.order),
           source = "mlsh placement prediction (a heuristic; MLComputePlan on a device is the ground truth)" }
end

function M.text(t)
  local out = { string.format("%s: compute plan (%s), %d function%s", t.model, t.compute_units, #t.order,
    #t.order == 1 and "" or "s") }
  for _, k in ipairs(t.order) do
    local f = t.functions[k]
    out[#out + 1] = string.format("function %s: %d ops", k, #f.operations)
    for _, op in ipairs(f.operations) do
      out[#out + 1] = string.format("  %-32s %-20s %-4s %-12s %6.2f%%  %s", op.name, op.operator_name,
        op.preferred_compute_device, table.concat(op.supported_compute_devices, ","), op.estimated_cost.weight * 100,
        op.reasons[1] or "")
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return M
