-- mlsh.compress.target — the spec-version policy of compression, as coremltools applies it
-- (coreml-versions.md §2): a function's opset decides the form written (iOS16/iOS17 opsets take
-- the iOS16 constexpr ops with parameters as attributes; iOS18 takes the iOS18 ops with inputs),
-- the spec is raised only as far as the forms need, and settings that exist only in iOS18 are
-- refused for older programs with the target they need.
local spec = require "mlsh.spec"

local M = {}

M.IOS16, M.IOS18 = 7, 9

-- The first reason a setting needs iOS18, or nil when the iOS16 forms can express it.
function M.ios18_reason(s)
  if not s then return nil end
  if s.prune and s.palettize then return "joint compression (pruning + palettization)" end
  if s.prune and s.quantize then return "joint compression (pruning + quantization)" end
  local p, q = s.palettize, s.quantize
  if p then
    if p.granularity == "per_grouped_channel" then return "per-grouped-channel palettization" end
    if p.nbits == 3 then return "3-bit palettization (iOS16 LUTs have 2, 4, 16, 64 or 256 entries)" end
    if p.per_channel_scale then return "palettization with per-channel scale" end
  end
  if q then
    if q.granularity == "per_block" then return "per-block quantization" end
    if q.dtype == "int4" or q.dtype == "uint4" then return q.dtype .. " quantization" end
  end
  return nil
end

-- Every setting of a policy with where it comes from.
local function settings_of(policy)
  local out = {}
  if policy.global then out[#out + 1] = { s = policy.global, where = "" } end
  for _, kind in ipairs({ "op_type", "op_name" }) do
    local keys = {}
    for k in pairs(policy[kind]) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      if policy[kind][k] then out[#out + 1] = { s = policy[kind][k], where = string.format(" (%s %s)", kind, k) } end
    end
  end
  return out
end

local function usage_error(msg) error({ usage = true, msg = msg }, 0) end
M.usage_error = usage_error

-- Plan the forms for model m under policy: {spec_before, spec_after, functions = {[name] =
-- {opset, opset_spec, form = 7|9, relabel = "CoreML6"?}}, notes = {...}}. Raises {usage=true, msg}
-- when the model cannot take the policy.
function M.plan(m, policy)
  local sv = m.spec_version
  if m.format == "onnx" then
    usage_error(string.format("compression needs a Core ML ML program; %s is an ONNX model: convert it with coremltools first",
      m.path or "the model"))
  end
  if m.model_type ~= "mlProgram" then
    usage_error(string.format("compression needs an ML program; %s is a %s model (spec %s): re-convert it with convert_to=\"mlprogram\"",
      m.path or "the model", tostring(m.model_type), tostring(sv)))
  end
  local plan = { spec_before = sv, spec_after = sv, functions = {}, notes = {} }
  local list = settings_of(policy)
  local ios18
  for _, x in ipairs(list) do
    local r = M.ios18_reason(x.s)
    if r then ios18 = { reason = r, where = x.where } break end
  end
  for _, fn in ipairs(m:functions()) do
    local ospec = spec.opset_spec(fn.opset) or sv
    local f = { opset = fn.opset, opset_spec = ospec, form = ospec >= M.IOS18 and M.IOS18 or M.IOS16 }
    if ios18 and ospec < M.IOS18 then
      usage_error(string.format("%s%s needs iOS18 (spec 9); the model is spec %d%s: re-convert with minimum_deployment_target=iOS18",
        ios18.reason, ios18.where, math.min(sv, ospec),
        #m:functions() > 1 and (" (function " .. fn.name .. " has opset " .. fn.opset .. ")") or ""))
    end
    if ospec < M.IOS16 then
      -- constexpr ops exist from iOS16: relabel the program iOS16 when every op keeps its meaning
      local changed = {}
      local optable = require "mlsh.optable" -- only here: the op table costs start-up time
      for _, op in ipairs(fn.all_ops) do
        local e = optable.get(op.type)
        if e then
          for _, r in ipairs(e.revision_specs or {}) do
            if r == M.IOS16 and not changed[op.type] then
              changed[op.type] = true
              changed[#changed + 1] = op.type
            end
          end
        end
      end
      if #changed > 0 then
        usage_error(string.format("compression ops need iOS16 (spec 7); the model is spec %d and uses %s, "
          .. "whose iOS16 version differs: re-convert with minimum_deployment_target=iOS16",
          sv, table.concat(changed, ", ")))
      end
      f.relabel = spec.opset_name(M.IOS16)
      plan.notes[#plan.notes + 1] = string.format("function %s: opset %s -> %s (constexpr ops need iOS16; every op it uses is the same in iOS16)",
        fn.name, fn.opset, f.relabel)
    end
    plan.functions[fn.name] = f
    plan.spec_after = math.max(plan.spec_after, f.relabel and M.IOS16 or sv)
  end
  if plan.spec_after ~= sv then
    plan.notes[#plan.notes + 1] = string.format("spec %d -> %d (%s)", sv, plan.spec_after, spec.target_name(plan.spec_after))
  end
  return plan
end

return M
