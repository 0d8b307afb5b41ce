-- mlsh.onnx.ort_1_20 — the CoreML EP's op builders as of ONNX Runtime v1.20.0 (tag commit
-- c4fb724e), read from onnxruntime/core/providers/coreml/builders/ (op_builder_factory.cc for the
-- registered op types, impl/<name>_op_builder.cc for each builder's SupportsMLProgram,
-- Get{Min,Max}SupportedOpSet, HasSupportedInputsImpl and IsOpSupportedImpl). Each entry:
--   ml = SupportsMLProgram(), min/max = opset range (BaseOpBuilder default 1..21),
--   allow_empty = constructed with allow_empty_tensor_as_input, dtype = HasSupportedInputsImpl
--   override, check = IsOpSupportedImpl, src/dtype_src = "file Class::Function" cited.
-- Reasons repeat ONNX Runtime's own log messages so a refusal names the same cause.
-- The partitioning of this release has no boundary-dtype filter (coreml_execution_provider.cc
-- GetCapability calls utils::CreateSupportedPartitions directly): EDGE_FILTER = false.
local H = require "mlsh.onnx.coreml_helpers"
local types = require "mlsh.onnx.types"
local opsets = require "mlsh.onnx.opsets"

local M = {}
M.VERSION = "1.20"
M.MAX_OPSET = 21
M.EDGE_FILTER = false
M.SOURCE = {
  tag = "v1.20.0 (c4fb724e810bb496165b9015c77f402727392933)",
  factory = "builders/op_builder_factory.cc CreateOpBuilderRegistrations",
  capability = "coreml_execution_provider.cc CoreMLExecutionProvider::GetCapability",
}
-- base_op_builder.cc Float16Ops: ops whose input 0 may be fp16 in an ML program
M.FLOAT16_OPS = {}
for _, op in ipairs({ "Add", "Mul", "Sub", "Div", "Pow", "Sqrt", "Reciprocal", "Sigmoid", "Tanh", "Relu", "LeakyRelu",
  "Concat", "GridSample", "GlobalAveragePool", "Clip", "DepthToSpace", "Resize", "Slice", "Conv", "ConvTranspose",
  "GlobalMaxPool", "Gemm", "MatMul", "AveragePool", "MaxPool", "Reshape", "Split", "Transpose" }) do
  M.FLOAT16_OPS[op] = true
end

local attr, shape, static_shape, const, present = H.attr, H.shape, H.static_shape, H.const, H.present
local B = {}
M.BUILDERS = B
local function reg(ops, file, class, spec)
  for _, op in ipairs(ops) do
    local s = { src = "builders/impl/" .. file .. " " .. class .. "::IsOpSupportedImpl",
                dtype_src = "builders/impl/" .. file .. " " .. class .. "::HasSupportedInputsImpl" }
    for k, v in pairs(spec) do s[k] = v end
    B[op] = s
  end
end

local function axis_of(a, rank) if a < 0 then return a + rank end return a end

-- ---- activation_op_builder.cc ----------------------------------------------------------------------
-- IsPReluOpSupported (NeuralNetwork only; the ML program path refuses PRelu)
local function prelu_ok(ctx, node)
  local ir = ctx.ir
  local x = shape(ir, node.inputs[1])
  if not x then return false, "NodeArg [" .. node.inputs[1] .. "] has no shape info" end
  local r = #x
  if r ~= 3 and r ~= 4 then return false, "PRelu 'X' input must have 3 or 4 dimensions, it has " .. r
    .. " dimensions" end
  if x[r - 2] == -1 then return false, "PRelu 'X' input must have a known third from last dimension." end
  if not const(ir, node.inputs[2]) then return false, "PRelu 'slope' input must be a constant initializer tensor" end
  local s = static_shape(ir, node.inputs[2])
  if not s then return false, "NodeArg [" .. node.inputs[2] .. "] has shape with dynamic dimension" end
  local per_channel = #s == 3 and s[2] == 1 and s[3] == 1
  local single = H.product(s) == 1
  if not per_channel and not single then
    return false, "PRelu 'slope' input must either have shape [C, 1, 1] or have a single value"
  end
  if single and x[r - 2] == 1 then return false, "PRelu single 'slope' value in CoreML weight is not supported" end
  return true
end
reg({ "Sigmoid", "Tanh", "Relu", "PRelu", "LeakyRelu" }, "activation_op_builder.cc", "ActivationOpBuilder",
  { ml = true, min = 6, check = function(ctx, node)
    if node.op ~= "PRelu" then return true end
    if ctx.ml then return false, "PRelu is not supported in an ML program by this release (ActivationOpBuilder)" end
    return prelu_ok(ctx, node)
  end })

-- ---- unary_op_builder.cc, transpose_op_builder.cc: no conditions of their own ---------------------------
reg({ "Reciprocal", "Sqrt" }, "unary_op_builder.cc", "UnaryOpBuilder", { ml = true })
reg({ "Transpose" }, "transpose_op_builder.cc", "TransposeOpBuilder", { ml = true })

-- ---- binary_op_builder.cc: only input 0's dtype is checked; Pow needs equal input dtypes -------------------
reg({ "Add", "Div", "Mul", "Pow", "Sub" }, "binary_op_builder.cc", "BinaryOpBuilder", { ml = true, min = 7,
  dtype = function(ctx, node)
    if node.op == "Pow" then
      local a, b = H.elem(ctx.ir, node.inputs[1]), H.elem(ctx.ir, node.inputs[2])
      if not a or not b or a ~= b then return false, "Pow inputs must have the same type" end
    end
    return H.input_dtype(ctx.ir, node, ctx.opts, 0, M.FLOAT16_OPS)
  end })

-- ---- pool_op_builder.cc ------------------------------------------------------------------------------------
reg({ "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "MaxPool" }, "pool_op_builder.cc", "PoolOpBuilder",
  { ml = true, check = function(ctx, node)
    local x = shape(ctx.ir, node.inputs[1])
    if not x then return false, "NodeArg [" .. node.inputs[1] .. "] has no shape info" end
    if #x ~= 4 then
      return false, node.op .. " only supports rank-4 tensor, input [" .. node.inputs[1] .. "] has actual dim count "
        .. #x
    end
    if node.op == "AveragePool" or node.op == "MaxPool" then
      if attr(node, "storage_order", 0) == 1 then return false, "storage_order == 1 is not supported" end
      if #attr(node, "kernel_shape", { 1, 1 }) ~= 2 then return false, "Only pooling 2d is supported" end
      if not ctx.ml and attr(node, "ceil_mode", 0) == 1 then return false,
        "ceil_mode == 1 is not supported for pooling" end
      local d = attr(node, "dilations", { 1, 1 })
      if #d ~= 2 or d[1] ~= 1 or d[2] ~= 1 then return false, "Dilations of pooling is not supported" end
      if #node.outputs ~= 1 then return false, "Argmax in maxpooling is not supported" end
    end
    return true
  end })

-- ---- reduction_op_builder.cc: NeuralNetwork only ----------------------------------------------------------
reg({ "ReduceMean", "ReduceSum" }, "reduction_op_builder.cc", "ReductionOpBuilder", { ml = false,
  check = function(ctx, node)
    local empty_axes = true
    if present(node.inputs[2]) then
      local c = const(ctx.ir, node.inputs[2])
      if not c then return false, "Axes of reduction must be a constant initializer" end
      -- initializers.at(axes)->int64_data_size() == 0: true whenever the values sit in raw_data
      empty_axes = not (c.tensor and c.tensor.field == "int64_data" and H.product(c.dims or {}) > 0)
    end
    if empty_axes and attr(node, "noop_with_empty_axes", 0) ~= 0 then
      return false, "CoreML doesn't support noop on empty axes for reduction layers"
    end
    return true
  end })

-- ---- argmax_op_builder.cc: NeuralNetwork only --------------------------------------------------------------
reg({ "ArgMax" }, "argmax_op_builder.cc", "ArgMaxOpBuilder", { ml = false, check = function(ctx, node)
  if attr(node, "select_last_index", 0) ~= 0 then return false, "select_last_index for ArgMax is not supported" end
  local edges = ctx.env.output_edges(node)
  if #edges > 1 then
    for _, c in ipairs(edges) do
      if c.op == "Cast" and attr(c, "to", 0) == types.INT32 then
        return false, "Argmax has both cast and other downstream nodes."
      end
    end
  end
  return true
end })

-- ---- batch_norm_op_builder.cc: NeuralNetwork only ----------------------------------------------------------
reg({ "BatchNormalization" }, "batch_norm_op_builder.cc", "BatchNormalizationOpBuilder", { ml = false, min = 7,
  check = function(ctx, node)
    if #node.outputs ~= 1 then return false,
      "Your onnx model may be in training mode, please export it in test mode." end
    local x = shape(ctx.ir, node.inputs[1])
    if not x then return false, "NodeArg [" .. node.inputs[1] .. "] has no shape info" end
    if #x ~= 4 then return false, "BN only support 4d shape for now, input is " .. #x .. "d shape" end
    if attr(node, "spatial", 1) ~= 1 then return false, "Non-spatial BN is not supported" end
    local what = { "Scale", "B", "Mean", "Var" }
    for k = 2, 5 do
      if not const(ctx.ir, node.inputs[k]) then return false, what[k - 1] .. " of BN must be a constant initializer" end
    end
    return true
  end })

-- ---- cast_op_builder.cc: NeuralNetwork only, the ArgMax -> Cast(int32) pattern ----------------------------
reg({ "Cast" }, "cast_op_builder.cc", "CastOpBuilder", { ml = false,
  dtype = function(ctx, node)
    local e = H.elem(ctx.ir, node.inputs[1])
    if not e then return false, "[Cast] Get Input type failed" end
    if e ~= types.INT64 then return false, "[Cast] Input type: [" .. e .. "] is not supported." end
    return true
  end,
  check = function(ctx, node)
    local prec = ctx.env.input_edges(node)[1]
    if not prec then return false, "Cast has no preceding nodes." end
    if prec.op ~= "ArgMax" then
      return false, "Cast's producing node is not ArgMax is not supported.Current producing node: [" .. prec.op .. "]"
    end
    if not ctx.env.supported(prec) then return false, "Cast's producing node [ArgMax] is not a supported op." end
    local to = attr(node, "to", 0)
    if to ~= types.INT32 then return false, "[Cast] Output type: [" .. to .. "] is not supported." end
    return true
  end })

-- ---- clip_op_builder.cc: GetClipMinMax (shared/utils/utils.cc) --------------------------------------------
reg({ "Clip" }, "clip_op_builder.cc", "ClipOpBuilder", { ml = true, check = function(ctx, node)
  local e = H.elem(ctx.ir, node.inputs[1])
  if not e then return false, "NodeArg [" .. node.inputs[1] .. "] has no input type" end
  local since = opsets.since(node.op, ctx.ir.opset[""])
  if since and since < 11 then return true end
  local names = { "Min", "Max" }
  for k = 2, 3 do
    if present(node.inputs[k]) then
      if not const(ctx.ir, node.inputs[k]) then return false, names[k - 1]
        .. " input of Clip must be a constant initializer" end
      if e ~= types.FLOAT and e ~= types.FLOAT16 then
        return false, "GetClipMinMax() only supports float and float16 as min and max inputs for now. The node ["
          .. (node.name or "") .. "] has input type: " .. e
      end
    end
  end
  return true
end })

-- ---- concat_op_builder.cc (dtype: input 0 only, the base rule) ---------------------------------------------
reg({ "Concat" }, "concat_op_builder.cc", "ConcatOpBuilder", { ml = true, check = function(ctx, node)
  if #node.inputs < 2 then return false, "Concat only support 2+ inputs, actual number of inputs: " .. #node.inputs end
  local x = shape(ctx.ir, node.inputs[1])
  if not x then return false, "NodeArg [" .. node.inputs[1] .. "] has no shape info" end
  if not ctx.ml then
    if #x ~= 4 then return false, "Concat only support 4d shape for now, input is " .. #x .. "d shape" end
    local axis = axis_of(attr(node, "axis", 1), #x)
    if #x ~= axis + 3 then return false, "Concat only support axis to be -3, actual axis: " .. axis
      .. ", actual rank: " .. #x end
  end
  return true
end })

-- ---- conv_op_builder.cc ----------------------------------------------------------------------------------
local function kernel_matches(node, wshape, nd)
  local k = attr(node, "kernel_shape", nil)
  if not k then return true end
  if #k ~= nd then return false end
  for i = 1, nd do if k[i] ~= (wshape[i + 2] == -1 and 0 or wshape[i + 2]) then return false end end
  return true
end
reg({ "Conv" }, "conv_op_builder.cc", "ConvOpBuilder", { ml = true, check = function(ctx, node)
  local ir, name = ctx.ir, node.name or ""
  if not ctx.ml and not const(ir, node.inputs[2]) then
    return false, "The weight of Conv [" .. name .. "] must be a constant initializer"
  end
  local w = shape(ir, node.inputs[2])
  local nd = w and #w or -1
  if nd ~= 3 and nd ~= 4 then
    return false, "Conv [" .. name .. "] is " .. (nd - 2) .. "D. Only 1D and 2D Conv are supported currently."
  end
  if #node.inputs > 2 and not const(ir, node.inputs[3]) then
    return false, "The bias of Conv [" .. name .. "] must be a constant initializer"
  end
  if not kernel_matches(node, w, nd - 2) then
    return false, "Conv [" .. name .. "] kernel_shape attribute does not match the weight shape"
  end
  return true
end })

reg({ "ConvTranspose" }, "convtranspose_op_builder.cc", "ConvTransposeOpBuilder", { ml = true, check = function(ctx,
  node)
  local ir = ctx.ir
  if not ctx.ml then return false, "ConvTranspose: ML Program required" end
  if not shape(ir, node.inputs[1]) then return false, "ConvTranspose: failed to get input shape" end
  if not const(ir, node.inputs[2]) then return false, "ConvTranspose: weight must be constant" end
  if #node.inputs > 2 and not const(ir, node.inputs[3]) then return false, "ConvTranspose: bias must be constant" end
  local w = shape(ir, node.inputs[2])
  if not w then return false, "ConvTranspose: failed to get weight shape" end
  local ap = attr(node, "auto_pad", "NOTSET")
  if ap == "SAME_LOWER" or ap == "SAME_UPPER" then
    return false, "ConvTranspose: support for SAME_LOWER/SAME_UPPER is not implemented yet"
  elseif ap == "NOTSET" then
    local pads = attr(node, "pads", {})
    for _, p in ipairs(pads) do
      if p ~= pads[1] then
        return false, "ConvTranspose: all pad values must be the same for CoreML to return consistent results"
      end
    end
  end
  if not kernel_matches(node, w, #w - 2) then return false,
    "ConvTranspose: kernel_shape attribute does not match the weight shape" end
  if attr(node, "output_shape", nil) then
    return false, "ConvTranspose: output_shape is not supported as the CoreML output is inconsistent"
  end
  for _, p in ipairs(attr(node, "output_padding", {})) do
    if p ~= 0 then return false, "ConvTranspose: output_padding is not supported" end
  end
  return true
end })

-- ---- depthtospace_op_builder.cc --------------------------------------------------------------------------
reg({ "DepthToSpace" }, "depthtospace_op_builder.cc", "DepthToSpaceOpBuilder", { ml = true, check = function(ctx, node)
  local x = shape(ctx.ir, node.inputs[1])
  if not x then return false, "DepthToSpace: no input shape" end
  local mode = attr(node, "mode", "DCR")
  if ctx.ml then
    if mode == "CRD" and not H.is_static(x) then return false, "DepthToSpace: CRD mode requires static shape" end
  elseif mode ~= "DCR" then
    return false, "DepthToSpace: " .. mode .. " mode is not supported"
  end
  return true
end })

-- ---- flatten_op_builder.cc, LRN_op_builder.cc: NeuralNetwork only ------------------------------------------
reg({ "Flatten" }, "flatten_op_builder.cc", "FlattenOpBuilder", { ml = false, check = function(ctx, node)
  local x = shape(ctx.ir, node.inputs[1])
  if not x then return false, "NodeArg [" .. node.inputs[1] .. "] has no shape info" end
  if #x == 0 then return false, "Flatten does not support empty input shape" end
  return true
end })
reg({ "LRN" }, "LRN_op_builder.cc", "LRNOpBuilder", { ml = false, check = function(ctx, node)
  local x = shape(ctx.ir, node.inputs[1])
  if not x then return false, "NodeArg [" .. node.inputs[1] .. "] has no shape info" end
  if #x == 0 then return false, "LRN does not support empty input shape" end
  if #x ~= 3 and #x ~= 4 then return false, "LRN only supports input rank equals to 3 or 4, input rank is " .. #x end
  return true
end })

-- ---- gather_op_builder.cc: NeuralNetwork only ------------------------------------------------------------
reg({ "Gather" }, "gather_op_builder.cc", "GatherOpBuilder", { ml = false,
  dtype = function(ctx, node)
    local e = H.elem(ctx.ir, node.inputs[1])
    if not e then return false, "[Gather] Get Input type failed" end
    if e ~= types.FLOAT and e ~= types.INT64 then return false, "[Gather] Input type: [" .. e
      .. "] is not supported for now" end
    return true
  end,
  check = function(ctx, node)
    local d, i = shape(ctx.ir, node.inputs[1]), shape(ctx.ir, node.inputs[2])
    if not d then return false, "Failed to get 'data' shape" end
    if not i then return false, "Failed to get 'indices' shape" end
    if #i == 0 then return false, "Gather does not support scalar 'indices'" end
    if #d + #i - 1 > 5 then return false, "Gather does not support output with rank greater than 5" end
    return true
  end })

return require("mlsh.onnx.ort_1_20_more")(M, B, reg)
