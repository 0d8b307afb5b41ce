-- mlsh.onnx.coreml_rules — whether ONNX Runtime's CoreML EP takes a node, following its op
-- builders (onnxruntime/core/providers/coreml/builders: op_builder_factory.cc, helper.cc,
-- impl/base_op_builder.cc and impl/*_op_builder.cc, as of ONNX Runtime ≈1.20–1.21) for both model
-- formats. The order is the EP's: builder registered for the op type (domain not checked) ->
-- MLProgram support of the builder -> opset range -> every input (shape known, rank <= 5, no dim
-- over 16384 or of 0, static when RequireStaticInputShapes) -> input dtypes -> external-data
-- initializers -> the builder's own conditions.
--   rules.check(ir, node, opts, env) -> ok, reason
-- opts.model_format "mlprogram"|"neuralnetwork", opts.require_static_input_shapes;
-- env.producers (value -> node), env.consumers (value -> {node}), env.supported(node) for the
-- patterns that look at a neighbour (ArgMax -> Cast).
local types = require "mlsh.onnx.types"
local opsets = require "mlsh.onnx.opsets"

local M = {}
local FLOAT, FLOAT16, INT32, INT64, BOOL = types.FLOAT, types.FLOAT16, types.INT32, types.INT64, types.BOOL

local function attr(node, name, default)
  local a = node.attrs[name]
  if a == nil or a.value == nil then return default end
  return a.value
end

local function dtname(e) return e and types.dtype_name(e) or "unknown" end

local function present(name) return name and name ~= "" end

-- Builders: ml = supports MLProgram; nn = supports NeuralNetwork; min/max opset; dtype = input
-- dtype check (default: input 0 fp32, or fp16 with MLProgram); check = builder conditions.
local B = {}
M.BUILDERS = B

local function reg(ops, spec)
  for _, op in ipairs(ops) do
    local s = {}
    for k, v in pairs(spec) do s[k] = v end
    B[op] = s
  end
end

local function const(ir, name) return present(name) and ir:const(name) or nil end

-- default dtype rule: fp32, or fp16 in an ML program
local function float_input(ir, node, opts, idx)
  local t = ir:type_of(node.inputs[idx or 1])
  local e = t and t.elem
  if e == FLOAT or (e == FLOAT16 and opts.model_format == "mlprogram") then return true end
  return false, string.format("input %d is %s (%s)", (idx or 1) - 1, dtname(e),
    opts.model_format == "mlprogram" and "fp32 or fp16 expected" or "fp32 expected in a NeuralNetwork model")
end
M.float_input = float_input

-- ---- activations, unary, binary ---------------------------------------------------------------------
reg({ "Sigmoid", "Tanh", "Relu", "LeakyRelu" }, { ml = true, nn = true, min = 6 })
reg({ "PRelu" }, { ml = true, nn = true, min = 6, check = function(ir, node, opts)
  local slope = const(ir, node.inputs[2])
  if not slope then return false, "slope must be a constant initializer" end
  local x = ir:type_of(node.inputs[1])
  if not x or not x.shape or #x.shape < 3 then return false, "input rank must be at least 3" end
  local dims = slope.dims or {}
  local n = types.numel(dims)
  local c = x.shape[#x.shape - 2]
  if n == 1 then return true end
  if #dims == 3 and dims[2] == 1 and dims[3] == 1 and (dims[1] == c or math.type(c) ~= "integer") then return true end
  return false, "slope must have shape [C,1,1] or one element"
end })
reg({ "Gelu" }, { ml = true, nn = false, min = 20 })
reg({ "Erf", "Round" }, { ml = true, nn = false })
reg({ "Reciprocal", "Sqrt" }, { ml = true, nn = true })

reg({ "Add", "Sub", "Mul", "Div" }, { ml = true, nn = true, dtype = function(ir, node, opts)
  local ok, why = float_input(ir, node, opts, 1)
  if not ok then return ok, why end
  return float_input(ir, node, opts, 2)
end })
reg({ "Max" }, { ml = true, nn = false })
reg({ "Pow" }, { ml = true, nn = true, dtype = function(ir, node)
  local a, b = ir:type_of(node.inputs[1]), ir:type_of(node.inputs[2])
  if a and b and a.elem == FLOAT and b.elem == FLOAT then return true end
  return false, string.format("Pow needs fp32 inputs (got %s, %s)", dtname(a and a.elem), dtname(b and b.elem))
end })

-- ---- pooling, reductions, normalization --------------------------------------------------------------
reg({ "AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool" }, { ml = true, nn = true, check = function(ir, node, opts)
  local x = ir:type_of(node.inputs[1])
  if not x or not x.shape or #x.shape ~= 4 then return false, "only 2-D pooling (4-D input) is supported" end
  if node.op == "AveragePool" or node.op == "MaxPool" then
    if attr(node, "storage_order", 0) == 1 then return false, "storage_order 1 is not supported" end
    local k = attr(node, "kernel_shape", {})
    if #k ~= 2 then return false, "kernel_shape must be 2-D" end
    if node.outputs[2] and node.outputs[2] ~= "" then return false, "the indices output is not supported" end
    for _, d in ipairs(attr(node, "dilations", {})) do
      if d ~= 1 then return false, "dilations are not supported" end
    end
    if attr(node, "ceil_mode", 0) == 1 and opts.model_format ~= "mlprogram" then
      return false, "ceil_mode 1 needs an ML program"
    end
  end
  return true
end })

local function reduction_check(ir, node, opts)
  if opts.model_format ~= "mlprogram" and node.op ~= "ReduceSum" and node.op ~= "ReduceMean" then
    return false, node.op .. " needs an ML program"
  end
  local empty = false
  if present(node.inputs[2]) then
    local c = const(ir, node.inputs[2])
    if not c then return false, "axes must be a constant initializer" end
    empty = c.dims and types.numel(c.dims) == 0
  end
  if empty and attr(node, "noop_with_empty_axes", 0) == 1 then
    return false, "noop_with_empty_axes with empty axes is not supported"
  end
  return true
end
reg({ "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd" }, { ml = true, nn = true, check = reduction_check })

reg({ "BatchNormalization" }, { ml = false, nn = true, check = function(ir, node)
  for k = 2, 5 do
    if not const(ir, node.inputs[k]) then return false, "scale, bias, mean and var must be constant initializers" end
  end
  if #node.outputs > 1 and present(node.outputs[2]) then return false, "training-mode outputs are not supported" end
  return true
end })
reg({ "GroupNormalization", "InstanceNormalization", "LayerNormalization" }, { ml = true, nn = false, check = function(ir, node)
  for k = 2, #node.outputs do
    if present(node.outputs[k]) then return false, "only the first output is supported" end
  end
  if not const(ir, node.inputs[2]) then return false, "scale must be a constant initializer" end
  if present(node.inputs[3]) and not const(ir, node.inputs[3]) then return false, "bias must be a constant initializer" end
  return true
end })
reg({ "LRN" }, { ml = false, nn = true })

-- ---- shape manipulation ---------------------------------------------------------------------------------
reg({ "ArgMax" }, { ml = true, nn = true, check = function(ir, node, opts, env)
  if attr(node, "select_last_index", 0) ~= 0 then return false, "select_last_index is not supported" end
  if opts.model_format == "mlprogram" then return true end
  local cons = env.consumers[node.outputs[1]] or {}
  if #cons > 1 then
    for _, c in ipairs(cons) do if c.op == "Cast" then return false, "ArgMax with several consumers including a Cast" end end
  end
  return true
end })

reg({ "Cast" }, { ml = true, nn = true,
  dtype = function(ir, node, opts)
    local t, o = ir:type_of(node.inputs[1]), ir:type_of(node.outputs[1])
    local ie, oe = t and t.elem, o and o.elem or attr(node, "to", nil)
    if opts.model_format == "mlprogram" then
      local ok_in = { [INT32] = true, [INT64] = true, [FLOAT] = true, [FLOAT16] = true, [BOOL] = true }
      if ok_in[ie] and ok_in[oe] then return true end
      return false, string.format("cast %s -> %s is not supported", dtname(ie), dtname(oe))
    end
    if ie ~= INT64 then return false, "only an int64 ArgMax result can be cast in a NeuralNetwork model" end
    return true
  end,
  check = function(ir, node, opts, env)
    local p = env.producers[node.inputs[1]]
    if not p then return false, "a Cast reading a graph input or initializer directly is not supported" end
    if opts.model_format == "mlprogram" then return true end
    if p.op ~= "ArgMax" then return false, "only ArgMax -> Cast(int32) is supported in a NeuralNetwork model" end
    if not env.supported(p) then return false, "the ArgMax before this Cast is not supported" end
    if attr(node, "to", nil) ~= INT32 then return false, "only a cast to int32 is supported in a NeuralNetwork model" end
    return true
  end })

reg({ "Clip" }, { ml = true, nn = true, check = function(ir, node)
  for k = 2, 3 do
    if present(node.inputs[k]) and not const(ir, node.inputs[k]) then return false, "min/max must be constant initializers" end
  end
  return true
end })

reg({ "Concat" }, { ml = true, nn = true,
  dtype = function(ir, node, opts)
    for i = 1, #node.inputs do
      local ok, why = float_input(ir, node, opts, i)
      if not ok then return ok, why end
    end
    return true
  end,
  check = function(ir, node, opts)
    if #node.inputs < 2 then return false, "Concat needs at least two inputs" end
    if opts.model_format ~= "mlprogram" then
      local x = ir:type_of(node.inputs[1])
      local r = x and x.shape and #x.shape or 0
      if r ~= 4 then return false, "only 4-D Concat is supported in a NeuralNetwork model" end
      local axis = attr(node, "axis", 1)
      if axis < 0 then axis = axis + r end
      if axis ~= 1 then return false, "only Concat on axis 1 is supported in a NeuralNetwork model" end
    end
    return true
  end })

reg({ "Conv" }, { ml = true, nn = true, check = function(ir, node, opts)
  local w = ir:type_of(node.inputs[2])
  local r = w and w.shape and #w.shape
  if r ~= 3 and r ~= 4 then return false, "only 1-D/2-D Conv is supported" end
  if opts.model_format ~= "mlprogram" and not const(ir, node.inputs[2]) then
    return false, "the weight must be a constant initializer in a NeuralNetwork model"
  end
  if present(node.inputs[3]) and not const(ir, node.inputs[3]) then return false, "the bias must be a constant initializer" end
  if opts.model_format == "mlprogram" and attr(node, "auto_pad", "NOTSET") == "SAME_LOWER" then
    return false, "auto_pad SAME_LOWER is not supported"
  end
  return true
end })
reg({ "ConvTranspose" }, { ml = true, nn = false, check = function(ir, node)
  if not const(ir, node.inputs[2]) then return false, "the weight must be a constant initializer" end
  if present(node.inputs[3]) and not const(ir, node.inputs[3]) then return false, "the bias must be a constant initializer" end
  local ap = attr(node, "auto_pad", "NOTSET")
  if ap == "SAME_UPPER" or ap == "SAME_LOWER" then return false, "auto_pad SAME_UPPER/SAME_LOWER is not supported" end
  if attr(node, "output_shape", nil) then return false, "output_shape is not supported" end
  for _, p in ipairs(attr(node, "output_padding", {})) do
    if p ~= 0 then return false, "output_padding must be 0" end
  end
  local k = attr(node, "kernel_shape", nil)
  local w = ir:type_of(node.inputs[2])
  if k and w and w.shape then
    for i, d in ipairs(k) do if w.shape[i + 2] ~= d then return false, "kernel_shape must match the weight" end end
  end
  return true
end })

reg({ "DepthToSpace" }, { ml = true, nn = true, check = function(ir, node, opts)
  local mode = attr(node, "mode", "DCR")
  if opts.model_format ~= "mlprogram" then
    if mode ~= "DCR" then return false, "only DCR mode is supported in a NeuralNetwork model" end
    return true
  end
  if mode == "CRD" then
    local x = ir:type_of(node.inputs[1])
    if not types.is_static(x and x.shape) then return false, "CRD mode needs a fixed input shape" end
  end
  return true
end })

reg({ "Flatten" }, { ml = false, nn = true, check = function(ir, node)
  local x = ir:type_of(node.inputs[1])
  if not x or not x.shape or #x.shape < 2 then return false, "input rank must be at least 2" end
  return true
end })

reg({ "Gather" }, { ml = false, nn = true,
  dtype = function(ir, node)
    local t = ir:type_of(node.inputs[1])
    if t and (t.elem == FLOAT or t.elem == INT64) then return true end
    return false, "data must be fp32 or int64 (got " .. dtname(t and t.elem) .. ")"
  end,
  check = function(ir, node)
    local x, idx = ir:type_of(node.inputs[1]), ir:type_of(node.inputs[2])
    if not idx or not idx.shape then return false, "indices shape unknown" end
    if #idx.shape == 0 then return false, "scalar indices are not supported" end
    if x and x.shape and #x.shape + #idx.shape - 1 > 5 then return false, "output rank would exceed 5" end
    return true
  end })

reg({ "Gemm", "MatMul" }, { ml = true, nn = true, check = function(ir, node, opts)
  local b = ir:type_of(node.inputs[2])
  if node.op == "Gemm" then
    if attr(node, "transA", 0) ~= 0 then return false, "transA is not supported" end
    if attr(node, "alpha", 1.0) ~= 1.0 or attr(node, "beta", 1.0) ~= 1.0 then return false, "alpha and beta must be 1" end
    if not const(ir, node.inputs[2]) then return false, "input B must be a constant initializer" end
    if present(node.inputs[3]) then
      if not const(ir, node.inputs[3]) then return false, "input C must be a constant initializer" end
      local c = ir:type_of(node.inputs[3])
      if c and c.shape and #c.shape > 2 then return false, "input C must be 1-D or 2-D" end
    end
    return true
  end
  if opts.model_format == "mlprogram" then return true end
  if not const(ir, node.inputs[2]) then return false, "input B must be a constant initializer in a NeuralNetwork model" end
  if not b or not b.shape or #b.shape ~= 2 then return false, "input B must be 2-D in a NeuralNetwork model" end
  return true
end })

reg({ "GridSample" }, { ml = true, nn = false, check = function(ir, node)
  local x = ir:type_of(node.inputs[1])
  if not x or not x.shape or #x.shape ~= 4 then return false, "only 4-D input is supported" end
  local mode = attr(node, "mode", "linear")
  if mode ~= "linear" and mode ~= "bilinear" and mode ~= "zeros" then return false, "mode " .. tostring(mode) .. " is not supported" end
  if (mode == "linear" or mode == "bilinear") and attr(node, "padding_mode", "zeros") == "reflection"
    and attr(node, "align_corners", 0) == 0 then
    return false, "linear + reflection padding without align_corners is not supported"
  end
  return true
end })

reg({ "Pad" }, { ml = false, nn = true, check = function(ir, node)
  if attr(node, "mode", "constant") ~= "constant" then return false, "only constant mode is supported" end
  local x = ir:type_of(node.inputs[1])
  if not x or not x.shape or #x.shape < 2 then return false, "input rank must be at least 2" end
  local pads_c = const(ir, node.inputs[2])
  if not pads_c then return false, "pads must be a constant initializer" end
  if present(node.inputs[3]) and not const(ir, node.inputs[3]) then return false, "constant_value must be a constant initializer" end
  if present(node.inputs[4]) and not const(ir, node.inputs[4]) then return false, "axes must be a constant initializer" end
  local pads = ir:values(node.inputs[2])
  if pads and not present(node.inputs[4]) then
    local r = #pads // 2
    for i = 1, r - 2 do
      if pads[i] ~= 0 or pads[i + r] ~= 0 then return false, "only the last two dims may be padded" end
    end
    for _, p in ipairs(pads) do if p < 0 then return false, "negative pads are not supported" end end
  end
  return true
end })

reg({ "Reshape" }, { ml = true, nn = true, check = function(ir, node, opts)
  if not const(ir, node.inputs[2]) then return false, "the new shape must be a constant initializer" end
  local shape = ir:values(node.inputs[2])
  if shape then
    if #shape == 0 then return false, "an empty new shape is not supported" end
    if #shape > 5 then return false, "a new shape of rank > 5 is not supported" end
    if attr(node, "allowzero", 0) == 1 then
      for _, d in ipairs(shape) do if d == 0 then return false, "0 in the new shape with allowzero is not supported" end end
    end
  end
  local x = ir:type_of(node.inputs[1])
  if not x or not x.shape or #x.shape == 0 then return false, "a scalar input is not supported" end
  if opts.model_format ~= "mlprogram" and not types.is_static(x.shape) then
    return false, "the input shape must be static in a NeuralNetwork model"
  end
  return true
end })

reg({ "Resize" }, { ml = true, nn = true, allow_empty = true, check = function(ir, node, opts)
  local x = ir:type_of(node.inputs[1])
  if not x or not x.shape or #x.shape ~= 4 then return false, "only 4-D input is supported" end
  local mode = attr(node, "mode", "nearest")
  if mode ~= "nearest" and mode ~= "linear" then return false, "mode " .. mode .. " is not supported" end
  if attr(node, "exclude_outside", 0) ~= 0 then return false, "exclude_outside is not supported" end
  if attr(node, "antialias", 0) ~= 0 then return false, "antialias is not supported" end
  local scales, sizes = node.inputs[3], node.inputs[4]
  if (ir.opset[""] or 13) < 11 then scales, sizes = node.inputs[2], nil end
  local have_scales = present(scales) and (ir:type_of(scales) == nil or not ir:type_of(scales).shape or
    (types.numel(ir:type_of(scales).shape) or 1) > 0)
  if have_scales and not const(ir, scales) then return false, "scales must be a constant initializer" end
  if present(sizes) and not const(ir, sizes) then return false, "sizes must be a constant initializer" end
  local ctm = attr(node, "coordinate_transformation_mode", "half_pixel")
  if opts.model_format ~= "mlprogram" then
    if mode == "nearest" and ctm ~= "asymmetric" then return false, "nearest needs coordinate_transformation_mode asymmetric" end
    if mode == "nearest" and attr(node, "nearest_mode", "round_prefer_floor") ~= "floor" then
      return false, "nearest needs nearest_mode floor"
    end
    if mode == "linear" and ctm ~= "asymmetric" and ctm ~= "align_corners" then
      return false, "linear needs coordinate_transformation_mode asymmetric or align_corners"
    end
  end
  local v = have_scales and ir:values(scales)
  if v and #v == 4 and (v[1] ~= 1 or v[2] ~= 1) then return false, "only the last two dims may be resized" end
  return true
end })

reg({ "Shape" }, { ml = true, nn = true, dtype = function() return true end, check = function(ir, node, opts)
  if opts.model_format ~= "mlprogram" and (attr(node, "start", 0) ~= 0 or node.attrs["end"]) then
    return false, "start/end are not supported in a NeuralNetwork model"
  end
  return true
end })

reg({ "Slice" }, { ml = true, nn = true,
  dtype = function(ir, node, opts)
    local t = ir:type_of(node.inputs[1])
    local e = t and t.elem
    if e == FLOAT or e == INT64 or (e == FLOAT16 and opts.model_format == "mlprogram") then return true end
    return false, "data is " .. dtname(e) .. " (fp32 or int64 expected)"
  end,
  check = function(ir, node)
    if (ir.opset[""] or 13) >= 10 then
      for k = 2, 5 do
        if present(node.inputs[k]) and not const(ir, node.inputs[k]) then
          return false, "starts/ends/axes/steps must be constant initializers"
        end
      end
    end
    local o = ir:type_of(node.outputs[1])
    if o and o.shape then
      for _, d in ipairs(o.shape) do if d == 0 then return false, "the slice is empty" end end
    end
    return true
  end })

reg({ "Split" }, { ml = true, nn = true, check = function(ir, node, opts)
  if present(node.inputs[2]) and not const(ir, node.inputs[2]) then return false, "split must be a constant initializer" end
  local x = ir:type_of(node.inputs[1])
  if not x or not x.shape then return false, "input shape unknown" end
  if opts.model_format ~= "mlprogram" and #node.outputs < 2 then return false, "Split needs at least two outputs" end
  return true
end })

reg({ "Softmax" }, { ml = true, nn = true })

reg({ "Squeeze", "Unsqueeze" }, { ml = true, nn = true, check = function(ir, node, opts)
  if node.op == "Unsqueeze" and opts.model_format ~= "mlprogram" then return false, "Unsqueeze needs an ML program" end
  local opset = ir.opset[""] or 13
  local naxes
  if opset >= 13 then
    if present(node.inputs[2]) then
      local c = const(ir, node.inputs[2])
      if not c then return false, "axes must be a constant initializer" end
      naxes = c.dims and types.numel(c.dims)
    end
  else
    local a = attr(node, "axes", nil)
    naxes = a and #a
  end
  if node.op == "Unsqueeze" then
    local x = ir:type_of(node.inputs[1])
    if x and x.shape and naxes and #x.shape + naxes > 5 then return false, "the output rank would exceed 5" end
  end
  return true
end })

reg({ "Transpose" }, { ml = true, nn = true })

-- ---- generic checks ---------------------------------------------------------------------------------------
local MAX_DIM, MAX_RANK = 16384, 5

-- IsInputSupported (helper.cc): shape known, dims <= 16384 and not 0, rank <= 5, static if asked.
local function input_ok(ir, name, opts, allow_empty)
  if not present(name) then return true end
  local t = ir:type_of(name)
  if not t or not t.shape then return false, "input " .. name .. " has no shape" end
  for _, d in ipairs(t.shape) do
    if math.type(d) == "integer" then
      if d > MAX_DIM then return false, string.format("input %s has a dim of %d (over %d)", name, d, MAX_DIM) end
      if d == 0 and not allow_empty then return false, "input " .. name .. " has a dim of 0" end
    elseif opts.require_static_input_shapes then
      return false, "input " .. name .. " has a dynamic shape " .. types.shape_string(t.shape) .. " (RequireStaticInputShapes)"
    end
  end
  if #t.shape > MAX_RANK then return false, string.format("input %s has rank %d (over %d)", name, #t.shape, MAX_RANK) end
  return true
end
M.input_ok = input_ok

function M.check(ir, node, opts, env)
  local b = B[node.op]
  if not b then return false, "no CoreML op builder for " .. node.op end
  local ml = opts.model_format == "mlprogram"
  if ml and not b.ml then return false, node.op .. " is not supported in an ML program (NeuralNetwork only)" end
  if not ml and not b.nn then return false, node.op .. " needs an ML program (MLProgram model format)" end
  if node.domain == "" then
    local since = opsets.since(node.op, ir.opset[""])
    local min, max = b.min or 1, b.max or 20
    if since and (since < min or since > max) then
      return false, string.format("%s opset %d is outside the builder's %d..%d", node.op, since, min, max)
    end
  end
  for _, name in ipairs(node.inputs) do
    local ok, why = input_ok(ir, name, opts, b.allow_empty)
    if not ok then return false, why end
  end
  local ok, why = (b.dtype or float_input)(ir, node, opts)
  if not ok then return false, why end
  for _, name in ipairs(node.inputs) do
    local c = present(name) and ir:const(name)
    if c and c.external then return false, "initializer " .. name .. " uses external data" end
  end
  if b.check then return b.check(ir, node, opts, env) end
  return true
end

-- The op types the EP registers for a format (for reports).
function M.registered(format)
  local out = {}
  for op, b in pairs(B) do
    if (format == "mlprogram" and b.ml) or (format ~= "mlprogram" and b.nn) then out[#out + 1] = op end
  end
  table.sort(out)
  return out
end

return M
