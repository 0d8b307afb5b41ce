-- mlsh.onnx.ort_1_20_more — the rest of ONNX Runtime v1.20.0's CoreML op builders (see
-- mlsh.onnx.ort_1_20 for the format): Gemm/MatMul, GridSample, Pad, Reshape, Resize, Shape,
-- Slice, Softmax, Split, Squeeze. Sources: onnxruntime/core/providers/coreml/builders/impl/
-- <name>_op_builder.cc at tag v1.20.0, as cited on each entry.
--   the module is a function (M, BUILDERS, reg) -> M that mlsh.onnx.ort_1_20 calls
local H = require "mlsh.onnx.coreml_helpers"
local opsets = require "mlsh.onnx.opsets"

local attr, shape, static_shape, const, values, present = H.attr, H.shape, H.static_shape, H.const, H.values, H.present

local function no_shape(name) return false, "NodeArg [" .. name .. "] has no shape info" end
local function dynamic(name) return false, "NodeArg [" .. name .. "] has shape with dynamic dimension" end
local function axis_of(a, rank) if a < 0 then return a + rank end return a end
local function since(ir, node) return opsets.since(node.op, ir.opset[""]) end

-- ---- gemm_op_builder.cc (Gemm and MatMul) ------------------------------------------------------------
local function gemm_c_ok(ir, node, b)
  if not const(ir, node.inputs[3]) then return false, "C of Gemm must be a constant initializer" end
  local c = shape(ir, node.inputs[3])
  if not c then return no_shape(node.inputs[3]) end
  local n = attr(node, "transB", 0) ~= 0 and b[1] or b[2]
  local ok = #c == 0 or (#c == 1 and (c[1] == 1 or c[1] == n)) or (#c == 2 and c[1] == 1 and c[2] == n)
  if not ok then
    return false, "Shape of C Gemm input must be {}, {1}, {N}, or {1, N}. N:" .. tostring(n) .. " C shape:"
      .. H.shape_string(c)
  end
  return true
end

local function gemm_ok(ctx, node)
  local ir, op = ctx.ir, node.op
  local a = shape(ir, node.inputs[1])
  if not a then return no_shape(node.inputs[1]) end
  local b = shape(ir, node.inputs[2])
  if not b then return no_shape(node.inputs[2]) end
  if not const(ir, node.inputs[2]) and not (ctx.ml and op == "MatMul") then
    return false, op .. " B input must be a constant initializer"
  end
  if op == "MatMul" then
    if ctx.ml then
      if (#a == 1 and #b > 1) or (#a > 1 and #b == 1) then
        return false, "Skipping due to bug in CoreML ML Program when one of the inputs is 1D."
      end
    else
      if #a ~= 2 or #b ~= 2 then return false, "a and b inputs must be 2D. " end
      if #node.inputs > 2 then return false, "MatMul with C input is not supported" end
    end
    return true
  end
  if not (attr(node, "transA", 0) == 0 and attr(node, "alpha", 1.0) == 1.0 and attr(node, "beta", 1.0) == 1.0) then
    return false, "Only support for transA == 0, alpha == 1.0 and beta == 1.0 is currently implemented."
  end
  if #node.inputs == 3 then return gemm_c_ok(ir, node, b) end
  return true
end

-- ---- pad_op_builder.cc -------------------------------------------------------------------------------------
local function pad_ok(ctx, node)
  local ir = ctx.ir
  local x = shape(ir, node.inputs[1])
  if not x then return no_shape(node.inputs[1]) end
  if #x < 2 then return false, "Pad requires input shape to be at least 2d, input is " .. #x .. "d shape" end
  if H.product(x) == 0 then
    return false, "Cases that input data being empty due to a dimension with value of 0 is not supported"
  end
  local mode = attr(node, "mode", "constant")
  if mode ~= "constant" then return false, "Only `constant` mode Pad is currently supported for now, mode: " .. mode end
  if #node.inputs < 3 then return false, "`constant_value` input is required for constant mode Pad op." end
  if not const(ir, node.inputs[3]) then return false, "constant_value must be a constant initializer." end
  if not const(ir, node.inputs[2]) then return false, "pads must be a constant initializer." end
  local pads = values(ir, node.inputs[2]) or {}
  for i, p in ipairs(pads) do
    if p < 0 then return false, "Negative pad value is not supported: pads[" .. (i - 1) .. "] = " .. p end
  end
  local axes
  if #node.inputs > 3 then
    if not const(ir, node.inputs[4]) then return false,
      "if provided, `axes` input is required to a constant initializer" end
    axes = values(ir, node.inputs[4])
  end
  if not axes then
    axes = {}
    for i = 1, #x do axes[i] = i - 1 end
  end
  local n = #axes
  for i, a in ipairs(axes) do
    if axis_of(a, #x) < #x - 2 and ((pads[i] or 0) ~= 0 or (pads[i + n] or 0) ~= 0) then
      return false, "CoreML only supports padding on last two dimensions."
    end
  end
  return true
end

-- ---- reshape_op_builder.cc ---------------------------------------------------------------------------------
local function reshape_ok(ctx, node)
  local ir = ctx.ir
  if not const(ir, node.inputs[2]) then return false, "New shape of reshape must be a constant initializer" end
  local c = const(ir, node.inputs[2])
  local new = values(ir, node.inputs[2])
  if (c.dims and H.product(c.dims) == 0) or (new and #new == 0) then return false,
    "New shape of reshape cannot be empty" end
  local x = shape(ir, node.inputs[1])
  if not x then return no_shape(node.inputs[1]) end
  if not H.is_static(x) then return dynamic(node.inputs[1]) end
  if #x == 0 then return false, "Reshape does not support empty input shape" end
  local n = new and #new or (c.dims and H.product(c.dims)) or 0
  local shapes = ". Input shape: " .. H.shape_string(x) .. ", new shape: " .. H.shape_string(new or {})
  if n > 5 then return false, "Reshape does not support new shape with rank greater than 5" .. shapes end
  if attr(node, "allowzero", 0) == 1 then
    for _, d in ipairs(new or {}) do
      if d == 0 then
        return false, "Reshape does not support new shape with 0 as dimension when allowzero is enabled" .. shapes
      end
    end
  end
  return true
end

-- ---- resize_op_builder.cc ----------------------------------------------------------------------------------
local function resize_axes(node, rank)
  local axes = attr(node, "axes", nil)
  local out = {}
  if not axes or #axes == 0 then
    for i = 1, rank do out[i] = i - 1 end
  else
    for i, a in ipairs(axes) do out[i] = axis_of(a, rank) end
  end
  return out
end

local function reciprocal_is_factor(n, scale)
  if not (scale > 0 and scale < 1) then return false end
  local f = 1.0 / scale
  local r = math.floor(f + 0.5)
  return math.abs(f - r) < 1e-4 and n % r == 0
end

local function resize_scales(ctx, node, x, axes)
  local r = #x
  if x[r - 1] == -1 or x[r] == -1 then return false,
    "Resize with 'scales' requires the H and W dimensions to have fixed values" end
  if not const(ctx.ir, node.inputs[3]) then return false, "Resize 'scales' input must be a constant initializer" end
  local s = values(ctx.ir, node.inputs[3]) or {}
  for i, a in ipairs(axes) do
    if a < r - 2 and s[i] ~= nil and s[i] ~= 1.0 then
      return false, "Resize only supports resizing the last two axes. Scale of axis " .. a .. " is " .. s[i]
    end
  end
  local sh, sw = s[#s - 1], s[#s]
  if not sh or not sw then return true, s end
  if sh >= 1 and sw >= 1 then
    if sh ~= math.floor(sh + 0.5) then return false, "Resize: scale_h: " .. sh .. " is not a whole number" end
    if sw ~= math.floor(sw + 0.5) then return false, "Resize: scale_w: " .. sw .. " is not a whole number" end
  elseif sh <= 1 and sw <= 1 then
    if not ctx.ml then return false, "Resize: downsampling is not supported." end
    if not reciprocal_is_factor(x[r - 1], sh) then
      return false, "Resize: downsampling scale " .. sh .. " is not a factor of input height: " .. x[r - 1]
    end
    if not reciprocal_is_factor(x[r], sw) then
      return false, "Resize: downsampling scale " .. sw .. " is not a factor of input width: " .. x[r]
    end
  else
    return false, "Resize: scale_h: " .. sh .. " and scale_w: " .. sw .. " must both be >= 1 or <= 1"
  end
  return true, s
end

local function resize_sizes(ctx, node, x, axes)
  local r = #x
  if not const(ctx.ir, node.inputs[4]) then return false, "Resize 'sizes' input must be a constant initializer" end
  local s = values(ctx.ir, node.inputs[4]) or {}
  for i, a in ipairs(axes) do
    if a < r - 2 and s[i] ~= nil and x[i] ~= s[i] then
      return false, "Resize only supports resizing the last two axes."
    end
  end
  if not ctx.ml then
    if not H.is_static(x) then return false, "Resize input shape with dynamic dimensions is not supported." end
    local oh, ow = s[#s - 1], s[#s]
    if oh and oh % x[r - 1] ~= 0 then return false, "Resize: output_size_h: " .. oh
      .. " is not a multiple of input_size_h: " .. x[r - 1] end
    if ow and ow % x[r] ~= 0 then return false, "Resize: output_size_w: " .. ow
      .. " is not a multiple of input_size_w: " .. x[r] end
  end
  return true, s
end

local function resize_coord(ctx, node, x, mode, using_sizes, vals)
  local ctm = attr(node, "coordinate_transformation_mode", "half_pixel")
  if not ctx.ml then
    if ctm ~= "asymmetric" then return false, "Resize only supports 'asymmetric' coordinate_transformation_mode. Got: "
      .. ctm end
    return true
  end
  if mode == "nearest" then
    if ctm ~= "asymmetric" then
      return false, "Resize with 'mode' of 'nearest' requires 'coordinate_transformation_mode' of 'asymmetric' . Got: "
        .. ctm
    end
    return true
  end
  if ctm == "pytorch_half_pixel" then
    local r, n = #x, #vals
    local ho, wo = vals[n - 1], vals[n]
    if not using_sizes and ho and wo then
      ho, wo = math.floor(x[r - 1] * ho + 0.5), math.floor(x[r] * wo + 0.5)
    end
    if ho and wo and ho > 1 and wo > 1 then ctm = "half_pixel" end
  end
  if ctm == "half_pixel" or ctm == "align_corners" or (using_sizes and ctm == "asymmetric") then return true end
  return false, "Resize with 'mode' of 'linear' requires 'coordinate_transformation_mode' of 'half_pixel', or "
    .. "'align_corners', or 'asymmetric' with 'sizes' input. Got: " .. ctm
end

local function resize_ok(ctx, node)
  local x = shape(ctx.ir, node.inputs[1])
  if not x then return false, "Resize: input shape was not known" end
  for _, d in ipairs(x) do
    if d == 0 then return false, "Resize input shape has with dimension values of 0 which is not supported." end
  end
  if ctx.ml and (#x < 3 or #x > 5) then return false, "Resize only supports 3D to 5D input. Got: " .. #x .. "D" end
  if not ctx.ml and #x ~= 4 then return false, "Resize only support 4d shape. Got: " .. #x .. "D" end
  if attr(node, "antialias", 0) ~= 0 then return false, "Resize does not support antialias" end
  local mode = attr(node, "mode", "nearest")
  if mode ~= "linear" and mode ~= "nearest" then return false, "Resize unsupported input mode: " .. mode end
  if mode == "nearest" then
    local nm = attr(node, "nearest_mode", "round_prefer_floor")
    if nm ~= "floor" then return false, "Resize only supports 'floor' nearest_mode. Got: " .. nm end
  end
  if attr(node, "exclude_outside", 0) ~= 0 then return false, "Resize does not support 'exclude_outside'" end
  local kar = attr(node, "keep_aspect_ratio_policy", "stretch")
  if kar ~= "stretch" then return false, "Resize only supports keep_aspect_ratio_policy of 'stretch'. Got " .. kar end
  local using_sizes = #node.inputs >= 4 and present(node.inputs[4])
  local using_scales = not using_sizes and #node.inputs >= 3 and present(node.inputs[3])
  if not using_scales and not using_sizes then return false, "Resize requires 'scales' or 'sizes' input" end
  local axes = resize_axes(node, #x)
  local ok, v
  if using_scales then ok, v = resize_scales(ctx, node, x, axes) else ok, v = resize_sizes(ctx, node, x, axes) end
  if not ok then return false, v end
  return resize_coord(ctx, node, x, mode, using_sizes, v)
end

-- ---- slice_op_builder.cc: PrepareSliceComputeMetadata (cpu/tensor/slice.cc) + no empty range ----------------
local INT64_MAX, INT64_MIN = math.maxinteger, math.mininteger
local function clamp(v, lo, hi) if v < lo then return lo elseif v > hi then return hi end return v end

local function slice_ranges(ir, node, x)
  local starts, ends = values(ir, node.inputs[2]), values(ir, node.inputs[3])
  if not starts or not ends then return true end
  local axes = present(node.inputs[4]) and values(ir, node.inputs[4]) or nil
  local steps = present(node.inputs[5]) and values(ir, node.inputs[5]) or nil
  if #starts ~= #ends or (axes and #axes ~= #starts) or (steps and #steps ~= #starts) then
    return false, "PrepareSliceComputeMetadata failed: starts, ends, axes and steps lengths differ"
  end
  local seen = {}
  for i = 1, #starts do
    local a = axes and axes[i] or (i - 1)
    if a < 0 then a = a + #x end
    if a < 0 or a >= #x then return false,
      "PrepareSliceComputeMetadata failed:'axes' has an axis outside of the tensor dimension count" end
    if seen[a] then return false, "PrepareSliceComputeMetadata failed:'axes' has duplicates" end
    seen[a] = true
    local dim, step = x[a + 1], steps and steps[i] or 1
    if step == 0 then return false, "PrepareSliceComputeMetadata failed:'step' value cannot be 0" end
    local s, e = math.tointeger(starts[i]) or INT64_MIN, math.tointeger(ends[i]) or INT64_MAX
    if s < 0 then s = s + dim end
    if e < 0 and e > INT64_MIN then e = e + dim end
    if step < 0 then s, e = clamp(s, 0, dim - 1), clamp(e, -1, dim - 1) else s, e = clamp(s, 0, dim), clamp(e, 0,
      dim) end
    if (step > 0 and s >= e) or (step < 0 and s <= e) then
      return false, string.format("Empty range is not supported: [%d, %d) with step %d", s, e, step)
    end
  end
  return true
end

local function slice_ok(ctx, node)
  local ir = ctx.ir
  local x = static_shape(ir, node.inputs[1])
  if not x then
    if not shape(ir, node.inputs[1]) then return no_shape(node.inputs[1]) end
    return dynamic(node.inputs[1])
  end
  local what = { "'starts'", "'ends'", "'axes'", "'steps'" }
  for k = 2, 5 do
    if (k <= 3 or present(node.inputs[k])) and not const(ir, node.inputs[k]) then
      return false, what[k - 1] .. " (NodeArg name: '" .. tostring(node.inputs[k])
        .. "') is not a constant initializer tensor"
    end
  end
  return slice_ranges(ir, node, x)
end

-- ---- split_op_builder.cc ---------------------------------------------------------------------------------
local function split_ok(ctx, node)
  local ir = ctx.ir
  local x = shape(ir, node.inputs[1])
  if not x then return no_shape(node.inputs[1]) end
  local at = x[axis_of(attr(node, "axis", 0), #x) + 1] or -1
  if #node.inputs > 1 and present(node.inputs[2]) then
    if not const(ir, node.inputs[2]) then return false, "CoreML 'splits' input must be a constant initializer." end
    -- split_shape.dim_size() < 2: the rank of the 'split' tensor, so a 1-D 'split' is always refused
    local s = shape(ir, node.inputs[2]) or {}
    if #s < 2 then return false, "CoreML Split must produce at least 2 outputs." end
    return true
  end
  if (since(ir, node) or 13) >= 18 then
    local n = attr(node, "num_outputs", nil)
    if not n then return false, "No 'num_outputs' provided. For split 18+, num_outputs is a required attribute." end
    if n < 2 then return false, "Invalid num_outputs. The value cannot be lower than 2." end
    if n ~= #node.outputs or n > at then return false, "Invalid num_outputs provided." end
  end
  return true
end

return function(M, _, reg)
  reg({ "Gemm", "MatMul" }, "gemm_op_builder.cc", "GemmOpBuilder", { ml = true, check = gemm_ok })
  reg({ "GridSample" }, "gridsample_op_builder.cc", "GridSampleOpBuilder", { ml = true, check = function(ctx, node)
    if not ctx.ml then return false, "GridSample is not supported." end
    local x = shape(ctx.ir, node.inputs[1])
    if not x then return false, "GridSample: failed to get input shape" end
    if #x ~= 4 then return false, "GridSample only supports 4D input. Got:" .. #x .. "D" end
    local mode = attr(node, "mode", "linear")
    if mode == "linear" then mode = "bilinear" end
    if mode ~= "bilinear" and mode ~= "zeros" then return false, "GridSample does not support mode of " .. mode end
    if mode == "bilinear" and attr(node, "padding_mode", "zeros") == "reflection" and attr(node, "align_corners",
      0) == 0 then
      return false, "GridSample does not support mode:bilinear padding_mode:reflection align_corners:0"
    end
    return true
  end })
  reg({ "Pad" }, "pad_op_builder.cc", "PadOpBuilder", { ml = false, min = 11, check = pad_ok })
  reg({ "Reshape" }, "reshape_op_builder.cc", "ReshapeOpBuilder", { ml = true, min = 5, check = reshape_ok })
  reg({ "Resize" }, "resize_op_builder.cc", "ResizeOpBuilder", { ml = true, min = 11, allow_empty = true,
    check = resize_ok })
  reg({ "Shape" }, "shape_op_builder.cc", "ShapeOpBuilder", { ml = false, check = function(_, node)
    if attr(node, "start", 0) ~= 0 then return false,
      "Shape does not support 'start' attribute with value other than 0" end
    if node.attrs["end"] then return false, "Shape does not support 'end' attribute" end
    return true
  end })
  reg({ "Slice" }, "slice_op_builder.cc", "SliceOpBuilder", { ml = true, min = 10, check = slice_ok,
    dtype = function(ctx, node)
      local e = H.elem(ctx.ir, node.inputs[1])
      if not e then return false, "[Slice] Get Input type failed" end
      if ctx.ml and e == 10 then return true end
      if e ~= 1 and e ~= 7 then return false, "[Slice] Input type: [" .. e .. "] is not supported" end
      return true
    end })
  reg({ "Softmax" }, "softmax_op_builder.cc", "SoftmaxOpBuilder", { ml = false, check = function(ctx, node)
    local x = static_shape(ctx.ir, node.inputs[1])
    if not x then return dynamic(node.inputs[1]) end
    if H.product(x) == 0 then return false, "Empty input data is not supported." end
    return true
  end })
  reg({ "Split" }, "split_op_builder.cc", "SplitOpBuilder", { ml = true, min = 13, check = split_ok })
  reg({ "Squeeze" }, "squeeze_op_builder.cc", "SqueezeOpBuilder", { ml = false, check = function(ctx, node)
    if (since(ctx.ir, node) or 13) > 12 and #node.inputs > 1 and not const(ctx.ir, node.inputs[2]) then
      return false, "Input axes of Squeeze must be known"
    end
    return true
  end })
  return M
end
