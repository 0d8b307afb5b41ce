-- mlsh.required_spec — the minimum specificationVersion a model's content needs, and for each bump
-- the op or feature that forces it: the answer to "why does my model need iOS 17?".
--
--   local rs = require "mlsh.required_spec"
--   local r = rs.explain(m)        -- also m:required_spec()
--   r.version    minimum spec the content needs (>= 1)
--   r.declared   the model's specificationVersion
--   r.reasons    {{spec, what, kind, feature?, op?, layer?, ["function"]?, model?, count, lowering?}, ...}
--                every reason above spec 1, highest spec first; `lowering` says what going below it costs
--   r.soft       reasons that do not gate loading (on-device update only), same shape
--   r.opsets     {function name = "CoreML7"} for ML programs; r.notes: things the tables did not know
--   rs.lowering(m, target) -> {target, declared, required, blockers = {reasons above target},
--                              losses = {{what, op?, ["function"]?}}, possible = bool}
--
-- The function opset string is deliberately not a reason: it is the container's label (like the
-- spec number itself), set by the converter's minimum_deployment_target. Only what the program
-- contains counts: ops introduced after iOS15, op versions whose new features are used (int8/int16
-- tensors, mixed weight dtypes, iOS18 constexpr signatures), I/O dtypes, states, functions...
-- On-device update (isUpdatable) is reported in `soft`: older runtimes ignore the field and still
-- predict, so it does not raise the version (real spec-1 files carry it).
local spec = require "mlsh.spec"
local optable = require "mlsh.optable"
local types = require "mlsh.types"

local M = {}

local ARRAY_ENUM = {}
for enum, short in pairs(types.ARRAY_DTYPES) do ARRAY_ENUM[short] = enum end

-- What lowering below a reason costs, by feature id / reason kind.
M.LOWERING = {
  ml_program = "re-convert to a neuralnetwork (convert_to='neuralnetwork'); ML-program-only ops and fp16 typing are lost",
  fp16_multiarray = "fp16 inputs/outputs become fp32 (casts at the model boundary)",
  int8_multiarray = "int8 inputs/outputs become int32/fp32",
  grayscale_float16_image = "the fp16 grayscale image becomes an 8-bit grayscale image",
  compression = "weights are stored decompressed (the model grows to its fp16 size)",
  ios18_compression = "int4 / per-block / grouped or 3-bit palettized weights must be re-compressed with iOS16 schemes (8-bit per-channel, per-tensor LUT) or stored decompressed",
  states = "states become explicit inputs and outputs (copied on every prediction)",
  multiple_functions = "each function becomes a separate model (weights are no longer shared)",
  empty_inputs = "the model needs at least one input",
  multiple_enumerated_inputs = "only one input may keep EnumeratedShapes",
  weight_dtype_16_32 = "int16/uint16/int32/uint32 weights are stored as fp16/fp32",
  flexible_shapes = "inputs get one fixed shape",
  op = "the op is not available: the converter must decompose it into older ops or it cannot be lowered",
  op_version = "the older op version lacks this feature (cast/compute through fp16 instead)",
  layer = "the layer is not available: replace it by older layers",
  model_type = "this model type does not exist before that spec",
  custom_layer = "custom layers cannot be expressed earlier",
  fp16_weights = "weights are stored as fp32",
  quantized_weights = "weights are stored as fp32",
  nd_array = "inputs use the legacy rank-5 mapping",
  categorical_sequences = "sequence features become arrays",
}

local function feature_reason(id, what_suffix, extra)
  local f = spec.feature(id)
  if not f then return nil end
  local r = { spec = f.min_spec, what = f.text .. (what_suffix or ""), kind = "feature", feature = id,
              key = "feature:" .. id }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local Acc = {}
Acc.__index = Acc
local function new_acc() return setmetatable({ list = {}, by_key = {}, soft = {}, notes = {}, note_set = {} }, Acc) end

function Acc:add(r, soft)
  if not r or not r.spec or r.spec <= 1 then return end
  local key = r.key or (r.kind .. ":" .. r.what)
  local e = self.by_key[key]
  if e then
    e.count = e.count + 1
    return
  end
  r.key, r.count = nil, 1
  r.lowering = r.lowering or M.LOWERING[r.feature or ""] or M.LOWERING[r.kind]
  self.by_key[key] = r
  table.insert(soft and self.soft or self.list, r)
end

function Acc:note(s)
  if not self.note_set[s] then
    self.note_set[s] = true
    self.notes[#self.notes + 1] = s
  end
end

-- ---- features (inputs, outputs, states) ------------------------------------------------------------

local function check_features(acc, list, role, fname)
  for _, f in ipairs(list) do
    local where = string.format(" (%s '%s'%s)", role, f.name, fname and (" of " .. fname) or "")
    local extra = { value = f.name, ["function"] = fname }
    if f.dtype and ARRAY_ENUM[f.dtype] then
      local s = spec.array_dtype_min_spec(ARRAY_ENUM[f.dtype])
      if s == 7 then acc:add(feature_reason("fp16_multiarray", where, extra))
      elseif s == 10 then acc:add(feature_reason("int8_multiarray", where, extra))
      elseif s and s > 1 then acc:add({ spec = s, what = f.dtype .. " multiarray" .. where, kind = "feature" }) end
    end
    if f.kind == "image" and f.color_space == "grayscale_fp16" then
      acc:add(feature_reason("grayscale_float16_image", where, extra))
    end
    if f.flexibility then acc:add(feature_reason("flexible_shapes", where, extra)) end
    if f.kind == "sequence" then acc:add(feature_reason("categorical_sequences", where, extra)) end
    if f.kind == "state" then acc:add(feature_reason("states", where, extra)) end
  end
end

-- ---- ML program ops --------------------------------------------------------------------------------

local SMALL_INTS = { int8 = true, uint8 = true, int16 = true, uint16 = true }
local GATHERS = { gather = true, gather_along_axis = true, gather_nd = true }

local function input_map(op)
  local ok, inputs = pcall(op.inputs, op)
  local by = {}
  for _, e in ipairs(ok and inputs or {}) do by[e.param] = by[e.param] or e end
  return by, ok and inputs or {}
end

local function has_revision(e, s)
  for _, rs in ipairs(e.revision_specs or {}) do
    if rs == s then return true end
  end
  return false
end

-- Op versions newer than the op's introduction, when the model uses what they added.
local function op_version_reasons(acc, op, e, fname)
  local by, inputs = input_map(op)
  local function add(s, text)
    local opset = spec.target_name(s)
    acc:add({ spec = s, what = string.format("op %s: %s (%s version)", op.type, text, opset), kind = "op_version",
              op = op.name, ["function"] = fname, key = "opv:" .. op.type .. ":" .. text })
  end
  if has_revision(e, 7) and GATHERS[op.type] then
    local idx = by.indices
    if idx and (idx.dtype == "int16" or idx.dtype == "uint16") then add(7, "int16/uint16 indices") end
  end
  if has_revision(e, 8) then
    if op.type == "cast" then
      local okd, dt = pcall(op.arg, op, "dtype")
      if not okd then dt = nil end
      local x = by.x
      if (type(dt) == "string" and SMALL_INTS[dt]) or (x and SMALL_INTS[x.dtype or ""]) then
        add(8, "int8/uint8/int16/uint16 cast")
      end
    elseif GATHERS[op.type] then
      local x, idx = by.x, by.indices
      if (x and SMALL_INTS[x.dtype or ""]) or (idx and (idx.dtype == "int8" or idx.dtype == "uint8")) then
        add(8, "8/16-bit integer data or int8/uint8 indices")
      end
    elseif op.type == "reduce_argmax" or op.type == "reduce_argmin" then
      local oko, od = pcall(op.arg, op, "output_dtype")
      if not oko then od = nil end
      if type(od) == "string" and od ~= "int32" then add(8, od .. " output") end
    else
      local x = by.x
      for _, inp in ipairs(inputs) do
        if inp.param ~= "x" and inp.dtype then
          if SMALL_INTS[inp.dtype] and (not x or x.dtype ~= inp.dtype) then
            add(8, inp.dtype .. " " .. inp.param)
            break
          end
          if x and x.dtype and x.dtype ~= inp.dtype and (x.dtype == "fp16" or x.dtype == "fp32")
              and (inp.dtype == "fp16" or inp.dtype == "fp32") then
            add(8, inp.param .. " dtype differs from x")
            break
          end
        end
      end
    end
  end
  if has_revision(e, 9) and op.type:match("^constexpr_") and #inputs > 0 then
    -- iOS18 constexpr ops take their parameters as inputs (iOS16/17 ones as attributes)
    add(9, "parameters as inputs (new signature: per-block / grouped / sub-byte)")
  end
end

local function check_program(acc, m)
  local fns = m:functions()
  local entries = {} -- optable.get copies its entry: once per op type
  local function entry_of(t)
    if entries[t] == nil then entries[t] = optable.get(t) or false end
    return entries[t] or nil
  end
  local d = m.spec.description
  local multi = d and #d.functions > 0
  if multi or #fns > 1 then
    acc:add(feature_reason("multiple_functions", string.format(" (%d functions)", math.max(#fns, d and #d.functions or 0))))
  end
  local opsets = {}
  for _, fn in ipairs(fns) do
    opsets[fn.name] = fn.opset
    local fname = (#fns > 1) and fn.name or nil
    local inputs = multi and m:inputs(fn.name) or m:inputs()
    if #fn.inputs == 0 and #inputs == 0 then
      acc:add(feature_reason("empty_inputs", " (function " .. fn.name .. ")", { ["function"] = fn.name }))
    end
    local enumerated = 0
    for _, f in ipairs(inputs) do
      if f.flexibility and f.flexibility.kind == "enumerated" then enumerated = enumerated + 1 end
    end
    if enumerated > 1 then
      acc:add(feature_reason("multiple_enumerated_inputs", string.format(" (%d inputs)", enumerated)))
    end
    for _, op in ipairs(fn.all_ops) do
      local e = entry_of(op.type)
      if not e then
        acc:note(string.format("op '%s' is not in mlsh's tables: its minimum spec is unknown (not counted)", op.type))
      else
        if e.introduced_spec > spec.MIN_MLPROGRAM then
          local id = nil
          if op.type:match("^constexpr_") then id = e.introduced_spec >= 9 and "ios18_compression" or "compression" end
          acc:add({ spec = e.introduced_spec, what = string.format("op %s (new in %s)", op.type, e.introduced),
                    kind = "op", op = op.name, ["function"] = fname or fn.name, feature = id, key = "op:" .. op.type })
        end
        op_version_reasons(acc, op, e, fname or fn.name)
      end
    end
  end
  for _, w in ipairs(m:weights()) do
    if w.storage == "blob" and (w.dtype == "int16" or w.dtype == "uint16" or w.dtype == "int32" or w.dtype == "uint32") then
      acc:add(feature_reason("weight_dtype_16_32", " (" .. w.name .. ": " .. w.dtype .. ")", { value = w.name }))
    end
  end
  return opsets
end

-- ---- NeuralNetwork layers --------------------------------------------------------------------------

local function field(msg, name)
  if not msg then return nil end
  local ok, v = pcall(function() return msg[name] end)
  if ok then return v end
  return nil
end

local function layer_props(layer)
  local p = layer.params
  local props = { n_inputs = #(layer.inputs or {}) }
  props.int8_dynamic_quantize = field(p, "int8DynamicQuantize") or nil
  local mode = field(p, "mode")
  if type(mode) == "string" then props.mode = mode end
  props.interleave = field(p, "interleave") or nil
  local sq = field(p, "squeezeMasks")
  if type(sq) == "table" and #sq > 0 then
    for _, b in ipairs(sq) do
      if b then props.squeeze_masks = true end
    end
  end
  local lum = field(p, "linearUpsampleMode")
  if type(lum) == "string" and lum ~= "DEFAULT" then props.linear_upsample_mode = lum end
  local fsf = field(p, "fractionalScalingFactor")
  if type(fsf) == "table" and #fsf > 0 then props.fractional_scaling_factor = true end
  return props
end

local function check_nn(acc, m)
  local nn = m.neural_network
  for _, layer in ipairs(m:layers()) do
    local props = layer_props(layer)
    local entry = optable.layer(layer.type)
    if not entry then
      acc:note(string.format("layer type '%s' is not in mlsh's tables: its minimum spec is unknown", layer.type))
    else
      local base = entry.min_spec
      local s = optable.layer_min_spec(layer.type, props) or base
      if base > 1 then
        local id = layer.type == "custom" and "custom_layer" or nil
        acc:add({ spec = base, what = string.format("layer %s (spec %d)", layer.type, base), kind = "layer",
                  layer = layer.name, feature = id, key = "layer:" .. layer.type })
      end
      if s > base then
        for _, b in ipairs(entry.bumps or {}) do
          if b.min_spec == s and spec._bump_matches(b, props) then
            acc:add({ spec = s, what = string.format("layer %s: %s", layer.type, b.text), kind = "layer",
                      layer = layer.name, key = "bump:" .. layer.type .. ":" .. b.id })
          end
        end
      end
    end
    if layer.is_updatable then
      acc:add(feature_reason("updatable", " (layer " .. layer.name .. ")", { layer = layer.name, kind = "update_only",
        key = "updatable_layer" }), true)
    end
  end
  for _, w in ipairs(m:weights()) do
    if w.storage == "nn" then
      if w.quantized then
        acc:add(feature_reason("quantized_weights", " (" .. w.name .. ")", { layer = w.layer }))
      elseif w.dtype == "fp16" then
        acc:add(feature_reason("fp16_weights", " (" .. w.name .. ")", { layer = w.layer }))
      end
    end
  end
  if nn then
    local am, im = field(nn, "arrayInputShapeMapping"), field(nn, "imageInputShapeMapping")
    if am == "EXACT_ARRAY_MAPPING" then acc:add(feature_reason("nd_array", " (arrayInputShapeMapping EXACT_ARRAY_MAPPING)")) end
    if im == "RANK4_IMAGE_MAPPING" then acc:add(feature_reason("nd_array", " (imageInputShapeMapping RANK4_IMAGE_MAPPING)")) end
  end
end

-- ---- the whole model -------------------------------------------------------------------------------

local function sort_reasons(list)
  table.sort(list, function(a, b)
    if a.spec ~= b.spec then return a.spec > b.spec end
    return a.what < b.what
  end)
  return list
end

local function explain_into(acc, m, label)
  local mt = m.model_type
  if mt then
    local s = spec.model_type_min_spec(mt)
    if s then
      local id = mt == "mlProgram" and "ml_program" or nil
      acc:add({ spec = s, what = mt == "mlProgram" and "ML program (Model.mlProgram)" or ("model type " .. mt),
                kind = "model_type", feature = id, key = "type:" .. mt })
    else
      acc:note(string.format("model type '%s' is not in mlsh's tables: its minimum spec is unknown", mt))
    end
  end
  check_features(acc, m:inputs(), "input")
  check_features(acc, m:outputs(), "output")
  check_features(acc, m:states(), "state")
  local d = m.spec.description
  if d and #d.functions > 0 then
    for _, fd in ipairs(d.functions) do
      check_features(acc, m:inputs(fd.name), "input", fd.name)
      check_features(acc, m:outputs(fd.name), "output", fd.name)
      check_features(acc, m:states(fd.name), "state", fd.name)
    end
  end
  local opsets = {}
  if m.program then opsets = check_program(acc, m) end
  if m.neural_network then check_nn(acc, m) end
  if m.is_updatable then
    acc:add(feature_reason("updatable", "", { kind = "update_only", key = "updatable" }), true)
  end
  local subs, names = m:submodels()
  for i, sub in ipairs(subs) do
    local name = (names and names[i] and names[i] ~= "") and names[i] or ("pipeline[" .. i .. "]")
    local sub_label = label and (label .. "/" .. name) or name
    local sacc = new_acc()
    explain_into(sacc, sub, sub_label)
    for _, r in ipairs(sacc.list) do
      r.model = r.model or sub_label
      r.what = string.format("pipeline model '%s': %s", sub_label, r.what)
      acc:add(r)
    end
    for _, r in ipairs(sacc.soft) do
      r.model = r.model or sub_label
      r.what = string.format("pipeline model '%s': %s", sub_label, r.what)
      acc:add(r, true)
    end
    for _, n in ipairs(sacc.notes) do acc:note(n) end
  end
  return opsets
end

function M.explain(m)
  local acc = new_acc()
  local opsets = explain_into(acc, m, nil)
  local version = 1
  for _, r in ipairs(acc.list) do
    if r.spec > version then version = r.spec end
  end
  return { version = version, declared = m.spec_version, reasons = sort_reasons(acc.list),
           soft = sort_reasons(acc.soft), opsets = opsets, notes = acc.notes }
end

-- What lowering the model to `target` (a spec number) would take: the reasons above it block,
-- and the op versions newer than the target's opset that the program uses are lost.
function M.lowering(m, target, explained)
  local r = explained or M.explain(m)
  local out = { target = target, declared = r.declared, required = r.version, blockers = {}, losses = {} }
  for _, reason in ipairs(r.reasons) do
    if reason.spec > target then out.blockers[#out.blockers + 1] = reason end
  end
  if target >= spec.MIN_MLPROGRAM then
    local seen = {}
    for _, fn in ipairs(m:functions()) do
      local have = spec.opset_spec(fn.opset)
      if have and have > target then
        for _, op in ipairs(fn.all_ops) do
          local e = not seen[op.type] and optable.get(op.type)
          if e then
            seen[op.type] = true
            local now = optable.version_at(op.type, have)
            local _, now_spec = optable.version_at(op.type, have)
            local later, later_spec = optable.version_at(op.type, target)
            if now and later and now_spec > later_spec then
              local notes = {}
              for _, rs in ipairs(e.revisions) do
                local s = spec.from_target(rs)
                if s > later_spec and s <= now_spec and e.revision_notes[rs] then notes[#notes + 1] = e.revision_notes[rs] end
              end
              out.losses[#out.losses + 1] = { op = op.type, ["function"] = fn.name,
                what = string.format("%s: %s version -> %s version%s", op.type, now, later,
                  #notes > 0 and (" (loses: " .. table.concat(notes, "; ") .. ")") or "") }
            end
          end
        end
      end
    end
  end
  table.sort(out.losses, function(a, b) return a.what < b.what end)
  out.possible = #out.blockers == 0
  return out
end

-- The JSON shape (mlsh check's `required_spec` key).
function M.to_json(r)
  local json = require "mlsh.json"
  local function list(rs)
    local out = json.array({})
    for i, x in ipairs(rs) do
      out[i] = { spec = x.spec, what = x.what, kind = x.kind, count = x.count, feature = x.feature or json.null,
                 op = x.op, layer = x.layer, ["function"] = x["function"], model = x.model, value = x.value,
                 lowering = x.lowering }
    end
    return out
  end
  local opsets = json.object({})
  for k, v in pairs(r.opsets or {}) do opsets[k] = v end
  return { version = r.version, declared = r.declared or json.null, reasons = list(r.reasons), soft = list(r.soft),
           opsets = opsets, notes = json.array(r.notes) }
end

return M
