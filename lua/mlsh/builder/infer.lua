-- mlsh.builder.infer — what the builder knows about MIL ops: parameter order, the defaults
-- coremltools writes out, which literal parameters are floats, and output type rules.
--
--   infer.signature(op) -> ordered parameter names | nil      infer.defaults(op, opset_spec, args)
--   infer.float_param(op, param) -> bool                      infer.outputs(ctx) -> {{dtype, shape}} | nil
--
-- A rule gets a context: ctx.op, ctx:arg(p) -> {dtype, shape, data} | nil (data only for consts),
-- ctx:args(p) (variadic), ctx:data(p), ctx:fail(fmt, ...). Shapes use -1 for unknown dimensions.
-- Ops without a rule return nil: the caller must then be told the type (never guessed).
local rules = require "mlsh.builder.infer_rules"

local M = {}

-- ---- signatures (MIL op definitions; coremltools serializes inputs in this order) ----------------
local SIG = {
  conv = { "x", "weight", "bias", "strides", "pad_type", "pad", "dilations", "groups" },
  conv_transpose = { "x", "weight", "bias", "pad", "output_shape", "pad_type", "strides", "dilations", "groups" },
  linear = { "x", "weight", "bias" },
  matmul = { "x", "y", "transpose_x", "transpose_y" },
  max_pool = { "x", "kernel_sizes", "strides", "pad_type", "pad", "ceil_mode" },
  avg_pool = { "x", "kernel_sizes", "strides", "pad_type", "pad", "exclude_padding_from_average", "ceil_mode" },
  l2_pool = { "x", "kernel_sizes", "strides", "pad_type", "pad", "ceil_mode" },
  softmax = { "x", "axis" },
  layer_norm = { "x", "axes", "gamma", "beta", "epsilon" },
  batch_norm = { "x", "mean", "variance", "gamma", "beta", "epsilon" },
  instance_norm = { "x", "gamma", "beta", "epsilon" },
  l2_norm = { "x", "axes", "epsilon" },
  reshape = { "x", "shape" },
  transpose = { "x", "perm" },
  concat = { "values", "axis", "interleave" },
  split = { "x", "num_splits", "split_sizes", "axis" },
  gather = { "x", "indices", "axis", "batch_dims", "validate_indices" },
  gather_along_axis = { "x", "indices", "axis", "validate_indices" },
  expand_dims = { "x", "axes" },
  squeeze = { "x", "axes" },
  flatten2d = { "x", "axis" },
  slice_by_index = { "x", "begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask" },
  slice_by_size = { "x", "begin", "size" },
  cast = { "x", "dtype" },
  shape = { "x" },
  one_hot = { "indices", "one_hot_vector_size", "axis", "on_value", "off_value" },
  select = { "cond", "a", "b" },
  pad = { "x", "pad", "mode", "constant_val" },
  tile = { "x", "reps" },
  range_1d = { "start", "end", "step" },
  lstm = { "x", "initial_h", "initial_c", "weight_ih", "weight_hh", "bias", "peephole", "output_sequence",
    "direction", "recurrent_activation", "cell_activation", "activation", "clip" },
  gru = { "x", "initial_h", "weight_ih", "weight_hh", "bias", "direction", "output_sequence",
    "recurrent_activation", "activation" },
  read_state = { "input" },
  write_state = { "input", "data" },
  scaled_dot_product_attention = { "query", "key", "value", "attn_mask" },
  upsample_nearest_neighbor = { "x", "scale_factor_height", "scale_factor_width" },
  gelu = { "x", "mode" },
  leaky_relu = { "x", "alpha" },
  elu = { "x", "alpha" },
  clip = { "x", "alpha", "beta" },
  prelu = { "x", "alpha" },
  cumsum = { "x", "axis", "exclusive", "reverse" },
  topk = { "x", "k", "axis", "ascending" },
  argsort = { "x", "axis", "ascending" },
  reduce_argmax = { "x", "axis", "keep_dims" },
  reduce_argmin = { "x", "axis", "keep_dims" },
}
local UNARY, BINARY, COMPARE, REDUCE = rules.UNARY, rules.BINARY, rules.COMPARE, rules.REDUCE
for _, op in ipairs(UNARY) do SIG[op] = SIG[op] or { "x" } end
for _, op in ipairs(BINARY) do SIG[op] = { "x", "y" } end
for _, op in ipairs(COMPARE) do SIG[op] = { "x", "y" } end
for _, op in ipairs(REDUCE) do SIG[op] = { "x", "axes", "keep_dims" } end

function M.signature(op) return SIG[op] end

-- Required parameters (the rest are optional in the MIL definitions).
local REQUIRED = {
  conv = { "x", "weight" }, linear = { "x", "weight" }, matmul = { "x", "y" }, reshape = { "x", "shape" },
  transpose = { "x", "perm" }, concat = { "values", "axis" }, gather = { "x", "indices" },
  max_pool = { "x", "kernel_sizes" }, avg_pool = { "x", "kernel_sizes" }, l2_pool = { "x", "kernel_sizes" },
  layer_norm = { "x" }, batch_norm = { "x", "mean", "variance" }, cast = { "x", "dtype" },
  expand_dims = { "x", "axes" }, one_hot = { "indices", "one_hot_vector_size" }, select = { "cond", "a", "b" },
  lstm = { "x", "weight_ih", "weight_hh" }, gru = { "x", "weight_ih", "weight_hh" }, read_state = { "input" },
  write_state = { "input", "data" }, scaled_dot_product_attention = { "query", "key", "value" },
  slice_by_index = { "x", "begin", "end" }, slice_by_size = { "x", "begin", "size" },
  split = { "x" }, tile = { "x", "reps" }, pad = { "x", "pad" },
}
function M.required(op)
  if REQUIRED[op] then return REQUIRED[op] end
  if SIG[op] and SIG[op][1] == "x" then return { "x" } end
  return {}
end

-- ---- literal parameter dtypes -------------------------------------------------------------------
-- Literal numbers for these parameters take the dtype of the op's float data (x), so that
-- `mul(x, 2)` multiplies an fp16 tensor by an fp16 scalar as coremltools writes it.
local FLOAT_PARAMS = {
  x = true, y = true, weight = true, bias = true, gamma = true, beta = true, mean = true, variance = true,
  epsilon = true, alpha = true, on_value = true, off_value = true, constant_val = true, a = true, b = true,
  data = true, initial_h = true, initial_c = true, weight_ih = true, weight_hh = true, peephole = true,
  clip = true, query = true, key = true, value = true, scale_factor_height = true, scale_factor_width = true,
}
-- ... except where a parameter of that name holds indices.
local NOT_FLOAT = { gather = { indices = true }, gather_along_axis = { indices = true } }
function M.float_param(op, param)
  if NOT_FLOAT[op] and NOT_FLOAT[op][param] then return false end
  return FLOAT_PARAMS[param] == true
end

-- ---- defaults coremltools materializes -------------------------------------------------------------
local function ones(n) local t = {} for i = 1, n do t[i] = 1 end return t end
local function zeros(n) local t = {} for i = 1, n do t[i] = 0 end return t end

-- Returns {param = literal} to add when absent. spatial = number of spatial dims of x (or nil).
function M.defaults(op, opset_spec, has, spatial)
  local d = {}
  if op == "conv" then
    d.strides, d.dilations, d.groups, d.pad_type = ones(spatial), ones(spatial), 1, "valid"
  elseif op == "max_pool" or op == "avg_pool" or op == "l2_pool" then
    d.strides, d.pad_type, d.ceil_mode = ones(spatial), "valid", false
    if op == "avg_pool" then d.exclude_padding_from_average = false end
  elseif op == "matmul" then d.transpose_x, d.transpose_y = false, false
  elseif op == "softmax" then d.axis = -1
  elseif op == "concat" then d.interleave = false
  elseif op == "gather" or op == "gather_along_axis" then
    d.axis = 0
    if op == "gather" and opset_spec >= 7 then d.batch_dims = 0 end
    if opset_spec >= 8 then d.validate_indices = false end
  elseif op == "gelu" then d.mode = "EXACT"
  elseif op == "layer_norm" or op == "batch_norm" or op == "instance_norm" then d.epsilon = 1e-5
  elseif op:match("^reduce_") then d.keep_dims = false
  elseif op == "lstm" then
    d.output_sequence, d.direction = false, "forward"
    d.recurrent_activation, d.cell_activation, d.activation = "sigmoid", "tanh", "tanh"
  elseif op == "gru" then
    d.output_sequence, d.direction, d.recurrent_activation, d.activation = false, "forward", "sigmoid", "tanh"
  elseif op == "one_hot" then d.axis, d.on_value, d.off_value = -1, 1, 0
  elseif op == "leaky_relu" then d.alpha = 0.01
  elseif op == "elu" then d.alpha = 1
  end
  -- an explicit pad means custom padding; pad is needed exactly when pad_type is custom
  if (op == "conv" or op:match("_pool$")) and has.pad ~= nil and has.pad_type == nil then d.pad_type = "custom" end
  if (op == "conv" or op:match("_pool$")) and has.pad_type == "custom" then d.pad = zeros(2 * spatial) end
  for k in pairs(d) do if has[k] ~= nil then d[k] = nil end end
  return d
end

-- ---- output type rules: mlsh.builder.infer_rules ----------------------------------------------------
local R = rules.R
M.fmt_shape, M.broadcast = rules.fmt_shape, rules.broadcast

-- Output types of an op, or nil when there is no rule for it.
function M.outputs(ctx)
  local rule = R[ctx.op]
  if not rule then return nil end
  return rule(ctx)
end

function M.has_rule(op) return R[op] ~= nil end

return M
