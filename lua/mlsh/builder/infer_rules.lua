-- mlsh.builder.infer_rules — the output type rules of MIL ops (mlsh.builder.infer's outputs()):
-- R[op](ctx) -> {{dtype, shape}}, with the shape helpers they share. See mlsh.builder.infer for
-- the context a rule gets.
local mil = require "mlsh.builder.mil"

local M = {}

local UNARY = { "relu", "relu6", "sigmoid", "tanh", "silu", "softplus", "softsign", "exp", "exp2", "log", "sqrt",
  "rsqrt", "abs", "erf", "square", "sign", "ceil", "floor", "round", "cos", "sin", "tan", "acos", "asin", "atan",
  "cosh", "sinh", "atanh", "identity", "inverse", "sigmoid_hard", "logical_not" }
local BINARY = { "add", "sub", "mul", "real_div", "pow", "maximum", "minimum", "floor_div", "mod" }
local COMPARE = { "equal", "not_equal", "greater", "greater_equal", "less", "less_equal",
  "logical_and", "logical_or", "logical_xor" }
local REDUCE = { "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1_norm",
  "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp", "reduce_sum_square" }
M.UNARY, M.BINARY, M.COMPARE, M.REDUCE = UNARY, BINARY, COMPARE, REDUCE

-- ---- shape helpers: mlsh.builder.infer_shape ---------------------------------------------------------
local helpers = require "mlsh.builder.infer_shape"
local copy, fmt_shape, axis_of, need = helpers.copy, helpers.fmt_shape, helpers.axis_of, helpers.need
local const_list, const_scalar, same_dtype = helpers.const_list, helpers.const_scalar, helpers.same_dtype
local want_float, broadcast, spatial_out = helpers.want_float, helpers.broadcast, helpers.spatial_out

local R = {}

local function same_as_x(ctx)
  local x = need(ctx, "x")
  return { { dtype = x.dtype, shape = copy(x.shape) } }
end
for _, op in ipairs(UNARY) do R[op] = same_as_x end
for _, op in ipairs({ "leaky_relu", "elu", "clip", "gelu", "cumsum", "prelu" }) do
  R[op] = function(ctx)
    want_float(ctx, "x")
    for _, p in ipairs({ "alpha", "beta" }) do same_dtype(ctx, "x", p) end
    return same_as_x(ctx)
  end
end
R.logical_not = same_as_x

for _, op in ipairs(BINARY) do
  R[op] = function(ctx)
    local x, y = need(ctx, "x"), need(ctx, "y")
    same_dtype(ctx, "x", "y")
    return { { dtype = x.dtype, shape = broadcast(ctx, x.shape, y.shape) } }
  end
end
for _, op in ipairs(COMPARE) do
  R[op] = function(ctx)
    local x, y = need(ctx, "x"), need(ctx, "y")
    same_dtype(ctx, "x", "y")
    return { { dtype = "bool", shape = broadcast(ctx, x.shape, y.shape) } }
  end
end

function R.softmax(ctx)
  local x = need(ctx, "x")
  want_float(ctx, "x")
  axis_of(ctx, const_scalar(ctx, "axis", -1), #x.shape)
  return same_as_x(ctx)
end

function R.layer_norm(ctx)
  local x = need(ctx, "x")
  want_float(ctx, "x")
  local axes = const_list(ctx, "axes") or {}
  local norm = {}
  for i, a in ipairs(axes) do norm[i] = x.shape[axis_of(ctx, a, #x.shape, "axes entry")] end
  for _, p in ipairs({ "gamma", "beta" }) do
    local g = ctx:arg(p)
    if g then
      same_dtype(ctx, "x", p)
      if #g.shape ~= #norm then ctx:fail("%s has shape %s; the normalized axes have shape %s", p, fmt_shape(g.shape), fmt_shape(norm)) end
      for i, d in ipairs(norm) do
        if d >= 0 and g.shape[i] ~= d then ctx:fail("%s has shape %s; the normalized axes have shape %s", p, fmt_shape(g.shape), fmt_shape(norm)) end
      end
    end
  end
  same_dtype(ctx, "x", "epsilon")
  return same_as_x(ctx)
end

local function channel_params(ctx, params)
  local x = need(ctx, "x")
  want_float(ctx, "x")
  if #x.shape < 3 then ctx:fail("x must have rank >= 3 (N, C, ...), got %s", fmt_shape(x.shape)) end
  local c = x.shape[2]
  for _, p in ipairs(params) do
    local a = ctx:arg(p)
    if a then
      same_dtype(ctx, "x", p)
      if c >= 0 and (#a.shape ~= 1 or a.shape[1] ~= c) then ctx:fail("%s has shape %s; x has %d channels", p, fmt_shape(a.shape), c) end
    end
  end
  same_dtype(ctx, "x", "epsilon")
  return same_as_x(ctx)
end
function R.batch_norm(ctx) return channel_params(ctx, { "mean", "variance", "gamma", "beta" }) end
function R.instance_norm(ctx) return channel_params(ctx, { "gamma", "beta" }) end
function R.l2_norm(ctx) want_float(ctx, "x") return same_as_x(ctx) end

function R.linear(ctx)
  local x, w = need(ctx, "x"), need(ctx, "weight")
  same_dtype(ctx, "x", "weight")
  same_dtype(ctx, "x", "bias")
  if #w.shape ~= 2 then ctx:fail("weight must be [out, in], got %s", fmt_shape(w.shape)) end
  local din = x.shape[#x.shape]
  if din and din >= 0 and din ~= w.shape[2] then
    ctx:fail("x has %d input features (last dim of %s) but weight %s expects %d", din, fmt_shape(x.shape), fmt_shape(w.shape), w.shape[2])
  end
  local b = ctx:arg("bias")
  if b and (#b.shape ~= 1 or b.shape[1] ~= w.shape[1]) then ctx:fail("bias has shape %s; weight has %d outputs", fmt_shape(b.shape), w.shape[1]) end
  local out = copy(x.shape)
  out[#out] = w.shape[1]
  return { { dtype = x.dtype, shape = out } }
end

function R.matmul(ctx)
  local x, y = need(ctx, "x"), need(ctx, "y")
  same_dtype(ctx, "x", "y")
  local a, b = copy(x.shape), copy(y.shape)
  if #a < 1 or #b < 1 then ctx:fail("matmul needs rank >= 1 operands") end
  local xa, ya = #a == 1, #b == 1
  if xa then table.insert(a, 1, 1) end
  if ya then b[#b + 1] = 1 end
  if const_scalar(ctx, "transpose_x", false) then a[#a], a[#a - 1] = a[#a - 1], a[#a] end
  if const_scalar(ctx, "transpose_y", false) then b[#b], b[#b - 1] = b[#b - 1], b[#b] end
  local k1, k2 = a[#a], b[#b - 1]
  if k1 >= 0 and k2 >= 0 and k1 ~= k2 then
    ctx:fail("inner dimensions differ: x %s, y %s (after transposes: %d vs %d)", fmt_shape(x.shape), fmt_shape(y.shape), k1, k2)
  end
  local ba, bb = {}, {}
  for i = 1, #a - 2 do ba[i] = a[i] end
  for i = 1, #b - 2 do bb[i] = b[i] end
  local out = broadcast(ctx, ba, bb, "x batch", "y batch")
  if not xa then out[#out + 1] = a[#a - 1] end
  if not ya then out[#out + 1] = b[#b] end
  return { { dtype = x.dtype, shape = out } }
end

function R.conv(ctx)
  local x, w = need(ctx, "x"), need(ctx, "weight")
  same_dtype(ctx, "x", "weight")
  same_dtype(ctx, "x", "bias")
  local nsp = #w.shape - 2
  if nsp < 1 or nsp > 3 then ctx:fail("weight must be [C_out, C_in/groups, k...] with 1 to 3 spatial dims, got %s", fmt_shape(w.shape)) end
  if #x.shape ~= nsp + 2 then ctx:fail("x %s does not match a %dD weight %s", fmt_shape(x.shape), nsp, fmt_shape(w.shape)) end
  local groups = const_scalar(ctx, "groups", 1)
  local cin = x.shape[2]
  if cin >= 0 and cin ~= w.shape[2] * groups then
    ctx:fail("x has %d channels but weight %s with groups %d expects %d", cin, fmt_shape(w.shape), groups, w.shape[2] * groups)
  end
  if w.shape[1] % groups ~= 0 then ctx:fail("%d output channels are not divisible by groups %d", w.shape[1], groups) end
  local b = ctx:arg("bias")
  if b and (#b.shape ~= 1 or b.shape[1] ~= w.shape[1]) then ctx:fail("bias has shape %s; weight has %d output channels", fmt_shape(b.shape), w.shape[1]) end
  local kernel = {}
  for i = 1, nsp do kernel[i] = w.shape[2 + i] end
  local out = { x.shape[1], w.shape[1] }
  for _, d in ipairs(spatial_out(ctx, x, kernel)) do out[#out + 1] = d end
  return { { dtype = x.dtype, shape = out } }
end

local function pool(ctx)
  local x = need(ctx, "x")
  want_float(ctx, "x")
  local kernel = const_list(ctx, "kernel_sizes", true)
  if #x.shape ~= #kernel + 2 then ctx:fail("x %s does not match %d kernel sizes", fmt_shape(x.shape), #kernel) end
  local out = { x.shape[1], x.shape[2] }
  for _, d in ipairs(spatial_out(ctx, x, kernel)) do out[#out + 1] = d end
  return { { dtype = x.dtype, shape = out } }
end
R.max_pool, R.avg_pool, R.l2_pool = pool, pool, pool

local function reduce_shape(ctx, x, axes, keep)
  local drop = {}
  if axes == nil then for i = 1, #x.shape do drop[i] = true end
  else for _, a in ipairs(axes) do drop[axis_of(ctx, a, #x.shape, "axes entry")] = true end end
  local out = {}
  for i, d in ipairs(x.shape) do
    if not drop[i] then out[#out + 1] = d elseif keep then out[#out + 1] = 1 end
  end
  return out
end
for _, op in ipairs(REDUCE) do
  R[op] = function(ctx)
    local x = need(ctx, "x")
    return { { dtype = x.dtype, shape = reduce_shape(ctx, x, const_list(ctx, "axes"), const_scalar(ctx, "keep_dims", false)) } }
  end
end
for _, op in ipairs({ "reduce_argmax", "reduce_argmin" }) do
  R[op] = function(ctx)
    local x = need(ctx, "x")
    return { { dtype = "int32", shape = reduce_shape(ctx, x, { const_scalar(ctx, "axis", -1) }, const_scalar(ctx, "keep_dims", false)) } }
  end
end

function R.reshape(ctx)
  local x = need(ctx, "x")
  local target = const_list(ctx, "shape")
  if not target then
    local s = ctx:arg("shape")
    if s and #s.shape == 1 and s.shape[1] >= 0 then
      local out = {}
      for i = 1, s.shape[1] do out[i] = -1 end
      return { { dtype = x.dtype, shape = out } }
    end
    ctx:fail("the target shape must be a constant or a rank-1 tensor of known length")
  end
  local out, infer_at, known = {}, nil, 1
  for i, t in ipairs(target) do
    local d = math.tointeger(t) or ctx:fail("shape entry %s is not an integer", tostring(t))
    if d == -1 then
      if infer_at then ctx:fail("shape %s has more than one -1", fmt_shape(target)) end
      infer_at = i
    else
      if d == 0 then d = x.shape[i] or ctx:fail("shape entry %d is 0 (copy) but x has rank %d", i, #x.shape) end
      if d < -1 then ctx:fail("shape entry %d is negative", d) end
      known = (known and d >= 0) and known * d or nil
    end
    out[i] = d
  end
  local total = mil.count(x.shape)
  if infer_at then
    if total and known and known > 0 then
      if total % known ~= 0 then ctx:fail("cannot reshape %s into %s", fmt_shape(x.shape), fmt_shape(target)) end
      out[infer_at] = total // known
    else
      out[infer_at] = -1
    end
  elseif total and known and total ~= known then
    ctx:fail("cannot reshape %s (%d elements) into %s (%d elements)", fmt_shape(x.shape), total, fmt_shape(out), known)
  end
  return { { dtype = x.dtype, shape = out } }
end

function R.transpose(ctx)
  local x = need(ctx, "x")
  local perm = const_list(ctx, "perm", true)
  if #perm ~= #x.shape then ctx:fail("perm %s does not match rank %d", fmt_shape(perm), #x.shape) end
  local out, seen = {}, {}
  for i, p in ipairs(perm) do
    local a = axis_of(ctx, p, #x.shape, "perm entry")
    if seen[a] then ctx:fail("perm %s repeats an axis", fmt_shape(perm)) end
    seen[a] = true
    out[i] = x.shape[a]
  end
  return { { dtype = x.dtype, shape = out } }
end

function R.concat(ctx)
  local vals = ctx:args("values")
  if #vals == 0 then ctx:fail("concat needs at least one value") end
  local first = vals[1]
  local axis = axis_of(ctx, const_scalar(ctx, "axis") or ctx:fail("missing input 'axis'"), #first.shape)
  local out = copy(first.shape)
  for i = 2, #vals do
    local v = vals[i]
    if v.dtype ~= first.dtype then ctx:fail("type mismatch: values[1] is %s but values[%d] is %s", first.dtype, i, v.dtype) end
    if #v.shape ~= #first.shape then ctx:fail("values[%d] %s has a different rank from values[1] %s", i, fmt_shape(v.shape), fmt_shape(first.shape)) end
    for d = 1, #out do
      if d == axis then
        out[d] = (out[d] >= 0 and v.shape[d] >= 0) and out[d] + v.shape[d] or -1
      elseif out[d] >= 0 and v.shape[d] >= 0 and out[d] ~= v.shape[d] then
        ctx:fail("values[%d] %s and values[1] %s differ outside axis %d", i, fmt_shape(v.shape), fmt_shape(first.shape), axis - 1)
      end
    end
  end
  return { { dtype = first.dtype, shape = out } }
end

function R.split(ctx)
  local x = need(ctx, "x")
  local axis = axis_of(ctx, const_scalar(ctx, "axis", 0), #x.shape)
  local sizes = const_list(ctx, "split_sizes")
  if not sizes then
    local n = const_scalar(ctx, "num_splits") or ctx:fail("give num_splits or split_sizes")
    local len = x.shape[axis]
    if len >= 0 and len % n ~= 0 then ctx:fail("axis length %d is not divisible by num_splits %d", len, n) end
    sizes = {}
    for i = 1, n do sizes[i] = len >= 0 and len // n or -1 end
  end
  local outs = {}
  for i, s in ipairs(sizes) do
    local shape = copy(x.shape)
    shape[axis] = s
    outs[i] = { dtype = x.dtype, shape = shape }
  end
  return outs
end

local INDEX_DTYPES = { int8 = true, int16 = true, int32 = true, int64 = true, uint8 = true, uint16 = true, uint32 = true }
function R.gather(ctx)
  local x, idx = need(ctx, "x"), need(ctx, "indices")
  if not INDEX_DTYPES[idx.dtype] then ctx:fail("indices must be integers, got %s", idx.dtype) end
  local axis = axis_of(ctx, const_scalar(ctx, "axis", 0), #x.shape)
  local bd = const_scalar(ctx, "batch_dims", 0)
  local out = {}
  for i = 1, axis - 1 do out[#out + 1] = x.shape[i] end
  for i = bd + 1, #idx.shape do out[#out + 1] = idx.shape[i] end
  for i = axis + 1, #x.shape do out[#out + 1] = x.shape[i] end
  return { { dtype = x.dtype, shape = out } }
end

function R.gather_along_axis(ctx)
  local x, idx = need(ctx, "x"), need(ctx, "indices")
  if not INDEX_DTYPES[idx.dtype] then ctx:fail("indices must be integers, got %s", idx.dtype) end
  return { { dtype = x.dtype, shape = copy(idx.shape) } }
end

function R.expand_dims(ctx)
  local x = need(ctx, "x")
  local axes = const_list(ctx, "axes", true)
  local rank = #x.shape + #axes
  local at = {}
  for _, a in ipairs(axes) do at[axis_of(ctx, a, rank, "axes entry")] = true end
  local out, j = {}, 1
  for i = 1, rank do
    if at[i] then out[i] = 1 else out[i] = x.shape[j]; j = j + 1 end
  end
  return { { dtype = x.dtype, shape = out } }
end

function R.squeeze(ctx)
  local x = need(ctx, "x")
  local axes = const_list(ctx, "axes")
  local drop = {}
  if axes then
    for _, a in ipairs(axes) do
      local i = axis_of(ctx, a, #x.shape, "axes entry")
      if x.shape[i] ~= 1 then ctx:fail("cannot squeeze axis %d of size %d", a, x.shape[i]) end
      drop[i] = true
    end
  else
    for i, d in ipairs(x.shape) do drop[i] = d == 1 end
  end
  local out = {}
  for i, d in ipairs(x.shape) do if not drop[i] then out[#out + 1] = d end end
  return { { dtype = x.dtype, shape = out } }
end

function R.flatten2d(ctx)
  local x = need(ctx, "x")
  local axis = const_scalar(ctx, "axis", 1)
  if axis < 0 then axis = axis + #x.shape end
  local a, b = 1, 1
  for i, d in ipairs(x.shape) do
    if i <= axis then a = (a >= 0 and d >= 0) and a * d or -1 else b = (b >= 0 and d >= 0) and b * d or -1 end
  end
  return { { dtype = x.dtype, shape = { a, b } } }
end

function R.slice_by_size(ctx)
  local x = need(ctx, "x")
  local size = const_list(ctx, "size", true)
  local begin = const_list(ctx, "begin") or {}
  if #size ~= #x.shape then ctx:fail("size %s does not match rank %d", fmt_shape(size), #x.shape) end
  local out = {}
  for i, s in ipairs(size) do
    if s == -1 then out[i] = (x.shape[i] >= 0 and begin[i]) and x.shape[i] - begin[i] or -1 else out[i] = s end
  end
  return { { dtype = x.dtype, shape = out } }
end

function R.slice_by_index(ctx)
  local x = need(ctx, "x")
  local begin, stop = const_list(ctx, "begin", true), const_list(ctx, "end", true)
  local stride = const_list(ctx, "stride") or {}
  local bm, em, sm = const_list(ctx, "begin_mask") or {}, const_list(ctx, "end_mask") or {}, const_list(ctx, "squeeze_mask") or {}
  if #begin ~= #x.shape or #stop ~= #x.shape then ctx:fail("begin/end must have one entry per dimension of %s", fmt_shape(x.shape)) end
  local out = {}
  for i, len in ipairs(x.shape) do
    local s = stride[i] or 1
    if sm[i] == true then -- luacheck: ignore 542
      -- dimension removed
    elseif len < 0 then
      out[#out + 1] = -1
    else
      local b = bm[i] == true and (s > 0 and 0 or len - 1) or begin[i]
      local e = em[i] == true and (s > 0 and len or -len - 1) or stop[i]
      if b < 0 then b = b + len end
      if e < 0 then e = e + len end
      b = math.max(0, math.min(b, len))
      e = math.max(-1, math.min(e, len))
      local n = s > 0 and (e - b + s - 1) // s or (b - e + (-s) - 1) // (-s)
      out[#out + 1] = math.max(0, n)
    end
  end
  return { { dtype = x.dtype, shape = out } }
end

function R.cast(ctx)
  local x = need(ctx, "x")
  local dt = const_scalar(ctx, "dtype") or ctx:fail("missing input 'dtype'")
  if not mil.DATA_TYPE[dt] then ctx:fail("unknown dtype '%s'", tostring(dt)) end
  return { { dtype = dt, shape = copy(x.shape) } }
end

function R.shape(ctx)
  local x = need(ctx, "x")
  return { { dtype = "int32", shape = { #x.shape } } }
end

function R.one_hot(ctx)
  local idx = need(ctx, "indices")
  if not INDEX_DTYPES[idx.dtype] then ctx:fail("indices must be integers, got %s", idx.dtype) end
  local n = const_scalar(ctx, "one_hot_vector_size") or -1
  local rank = #idx.shape + 1
  local axis = axis_of(ctx, const_scalar(ctx, "axis", -1), rank)
  local out, j = {}, 1
  for i = 1, rank do
    if i == axis then out[i] = n else out[i] = idx.shape[j]; j = j + 1 end
  end
  local on = ctx:arg("on_value")
  return { { dtype = on and on.dtype or "fp32", shape = out } }
end

function R.select(ctx)
  local c, a, b = need(ctx, "cond"), need(ctx, "a"), need(ctx, "b")
  same_dtype(ctx, "a", "b")
  local s = broadcast(ctx, broadcast(ctx, c.shape, a.shape, "cond", "a"), b.shape, "cond/a", "b")
  return { { dtype = a.dtype, shape = s } }
end

function R.pad(ctx)
  local x = need(ctx, "x")
  local pad = const_list(ctx, "pad", true)
  if #pad % 2 ~= 0 or #pad // 2 > #x.shape then ctx:fail("pad must hold begin/end pairs for the last dimensions, got %d entries", #pad) end
  local out = copy(x.shape)
  local k = #pad // 2
  for i = 1, k do
    local d = #x.shape - k + i
    out[d] = out[d] >= 0 and out[d] + pad[2 * i - 1] + pad[2 * i] or -1
  end
  return { { dtype = x.dtype, shape = out } }
end

function R.tile(ctx)
  local x = need(ctx, "x")
  local reps = const_list(ctx, "reps", true)
  if #reps ~= #x.shape then ctx:fail("reps %s does not match rank %d", fmt_shape(reps), #x.shape) end
  local out = {}
  for i, d in ipairs(x.shape) do out[i] = d >= 0 and d * reps[i] or -1 end
  return { { dtype = x.dtype, shape = out } }
end

function R.range_1d(ctx)
  local s, e, st = const_scalar(ctx, "start"), const_scalar(ctx, "end"), const_scalar(ctx, "step")
  local start = need(ctx, "start")
  local n = -1
  if s and e and st then n = math.max(0, math.ceil((e - s) / st)) end
  return { { dtype = start.dtype, shape = { n } } }
end

local function recurrent(ctx, gates)
  local x = need(ctx, "x")
  local wih, whh = need(ctx, "weight_ih"), need(ctx, "weight_hh")
  same_dtype(ctx, "x", "weight_ih")
  same_dtype(ctx, "x", "weight_hh")
  if #x.shape ~= 3 then ctx:fail("x must be [seq, batch, input], got %s", fmt_shape(x.shape)) end
  local dirs = const_scalar(ctx, "direction", "forward") == "bidirectional" and 2 or 1
  local h = whh.shape[2]
  if #wih.shape ~= 2 or wih.shape[1] ~= gates * h then
    ctx:fail("weight_ih must be [%d*hidden, input]; got %s with hidden %d", gates, fmt_shape(wih.shape), h)
  end
  if x.shape[3] >= 0 and wih.shape[2] ~= x.shape[3] then
    ctx:fail("x has %d input features but weight_ih %s expects %d", x.shape[3], fmt_shape(wih.shape), wih.shape[2])
  end
  local seq = const_scalar(ctx, "output_sequence", false) and x.shape[1] or 1
  local b = x.shape[2]
  local outs = {
    { dtype = x.dtype, shape = { seq, b, dirs * h } },
    { dtype = x.dtype, shape = { b, dirs * h } },
  }
  return outs
end
function R.lstm(ctx)
  local outs = recurrent(ctx, 4)
  outs[3] = { dtype = outs[2].dtype, shape = copy(outs[2].shape) } -- the cell state, shaped like h
  return outs
end
function R.gru(ctx) return (recurrent(ctx, 3)) end

function R.read_state(ctx)
  local s = need(ctx, "input")
  if s.kind ~= "state" then ctx:fail("input must be a state (declared with f:state), got a tensor") end
  return { { dtype = s.dtype, shape = copy(s.shape) } }
end

function R.write_state(ctx)
  local s, d = need(ctx, "input"), need(ctx, "data")
  if s.kind ~= "state" then ctx:fail("input must be a state (declared with f:state), got a tensor") end
  if s.dtype ~= d.dtype then ctx:fail("type mismatch: state is %s but data is %s", s.dtype, d.dtype) end
  for i, n in ipairs(s.shape) do
    if d.shape[i] ~= n or #d.shape ~= #s.shape then ctx:fail("data %s does not match the state's shape %s", fmt_shape(d.shape), fmt_shape(s.shape)) end
  end
  return {}
end

function R.scaled_dot_product_attention(ctx)
  local q, k, v = need(ctx, "query"), need(ctx, "key"), need(ctx, "value")
  same_dtype(ctx, "query", "key")
  same_dtype(ctx, "query", "value")
  if #q.shape < 3 then ctx:fail("query must have rank >= 3, got %s", fmt_shape(q.shape)) end
  if q.shape[#q.shape] >= 0 and k.shape[#k.shape] >= 0 and q.shape[#q.shape] ~= k.shape[#k.shape] then
    ctx:fail("query %s and key %s differ in the embedding dimension", fmt_shape(q.shape), fmt_shape(k.shape))
  end
  local out = copy(q.shape)
  out[#out] = v.shape[#v.shape]
  return { { dtype = q.dtype, shape = out } }
end

function R.upsample_nearest_neighbor(ctx)
  local x = need(ctx, "x")
  local sh, sw = const_scalar(ctx, "scale_factor_height", 1), const_scalar(ctx, "scale_factor_width", 1)
  local out = copy(x.shape)
  local n = #out
  out[n - 1] = out[n - 1] >= 0 and math.floor(out[n - 1] * sh) or -1
  out[n] = out[n] >= 0 and math.floor(out[n] * sw) or -1
  return { { dtype = x.dtype, shape = out } }
end

function R.topk(ctx)
  local x = need(ctx, "x")
  local axis = axis_of(ctx, const_scalar(ctx, "axis", -1), #x.shape)
  local out = copy(x.shape)
  out[axis] = const_scalar(ctx, "k", 1)
  return { { dtype = x.dtype, shape = out }, { dtype = "int32", shape = copy(out) } }
end

function R.argsort(ctx)
  local x = need(ctx, "x")
  return { { dtype = "int32", shape = copy(x.shape) } }
end

M.R = R
M.fmt_shape = fmt_shape
return M
