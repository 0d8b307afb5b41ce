-- mlsh.onnx.shape — type and shape inference on an mlsh.onnx.ir graph, for the common ops:
-- elementwise with broadcasting, MatMul/Gemm, Conv/ConvTranspose/pooling, Reshape with a constant
-- shape, Flatten, Transpose, Concat, Split, Slice/Gather with constant indices, Unsqueeze/Squeeze,
-- Shape/Size, ConstantOfShape/Expand/Tile/Range, reductions and ArgMax, Softmax, normalizations,
-- Cast, Pad, Resize, TopK, Where, DepthToSpace, LSTM/GRU…
-- Dims are integers, strings (symbolic, kept when an op passes them through or broadcasts equal
-- symbols) or false (unknown). What cannot be derived stays unknown: nothing is guessed. A stored
-- value_info fills what inference leaves unknown.
--   shape.infer(ir)   fills ir.types[name] = {elem, shape} for every node output it can
local types = require "mlsh.onnx.types"
local irlib = require "mlsh.onnx.ir"

local M = {}

local function attr(node, name, default)
  local a = node.attrs[name]
  if a == nil or a.value == nil then return default end
  return a.value
end

local function copy(t)
  if not t then return nil end
  local o = {}
  for i, v in ipairs(t) do o[i] = v end
  return o
end

local function is_int(d) return math.type(d) == "integer" end

-- Broadcast two dims (ONNX rules; a known dim > 1 wins over a symbol, equal symbols stay).
local function bdim(a, b)
  if a == b then return a end
  if a == 1 then return b end
  if b == 1 then return a end
  if is_int(a) and is_int(b) then return false end -- incompatible: unknown rather than an error
  if is_int(a) and a > 1 then return a end
  if is_int(b) and b > 1 then return b end
  return false
end

function M.broadcast(shapes)
  local rank = 0
  for _, s in ipairs(shapes) do
    if not s then return nil end
    if #s > rank then rank = #s end
  end
  local out = {}
  for i = 1, rank do
    local d = 1
    for _, s in ipairs(shapes) do
      local x = s[i - (rank - #s)]
      if x ~= nil then d = bdim(d, x) end
    end
    out[i] = d
  end
  return out
end

local function norm_axis(a, r) if a < 0 then a = a + r end return a end

-- Integer list of a constant input (or nil).
local function const_ints(ctx, name)
  if not name or name == "" then return nil end
  local v = ctx.values(name)
  if not v then return nil end
  for _, x in ipairs(v) do if math.type(x) ~= "integer" then return nil end end
  return v
end

local function numel_or_nil(shape)
  local n = 1
  for _, d in ipairs(shape) do
    if not is_int(d) then return nil end
    n = n * d
  end
  return n
end

-- Output spatial size of a conv/pool window.
local function window_out(inp, k, s, pb, pe, d, ceil, auto_pad)
  if not is_int(inp) then return false end
  if auto_pad == "SAME_UPPER" or auto_pad == "SAME_LOWER" then return (inp + s - 1) // s end
  local eff = (k - 1) * d + 1
  if auto_pad == "VALID" then return (inp - eff) // s + 1 end
  local num = inp + pb + pe - eff
  if ceil then return -((-num) // s) + 1 end
  return num // s + 1
end

local rules = {}
M.rules = rules

local function same_as_input(node, ctx)
  local t = ctx.type(node.inputs[1])
  return { t and { elem = t.elem, shape = copy(t.shape) } }
end

for _, op in ipairs({ "Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Exp", "Log", "Abs", "Neg", "Reciprocal", "Floor",
  "Ceil",
  "Round", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Softplus",
    "Softsign",
  "Elu", "Selu", "Celu", "LeakyRelu", "HardSigmoid", "HardSwish", "Mish", "ThresholdedRelu", "Shrink", "Sign", "Clip",
  "Identity", "Softmax", "LogSoftmax", "Hardmax", "LRN", "InstanceNormalization", "GroupNormalization", "Gelu",
  "QuickGelu", "FastGelu", "BiasGelu", "CumSum", "Trilu", "ScatterElements", "ScatterND", "Scatter", "PRelu",
  "MeanVarianceNormalization", "Dropout", "LpNormalization", "BitwiseNot", "ReverseSequence" }) do
  rules[op] = same_as_input
end

rules.Dropout = function(node, ctx)
  local t = ctx.type(node.inputs[1])
  if not t then return {} end
  return { { elem = t.elem, shape = copy(t.shape) }, { elem = types.BOOL, shape = copy(t.shape) } }
end
rules.Not = function(node, ctx)
  local t = ctx.type(node.inputs[1])
  return { t and { elem = types.BOOL, shape = copy(t.shape) } }
end
for _, op in ipairs({ "IsNaN", "IsInf" }) do rules[op] = rules.Not end

local function elementwise(out_bool)
  return function(node, ctx)
    local shapes, elem = {}, nil
    for i, name in ipairs(node.inputs) do
      if name ~= "" then
        local t = ctx.type(name)
        shapes[#shapes + 1] = t and t.shape or false
        if i == 1 and t then elem = t.elem end
      end
    end
    for _, s in ipairs(shapes) do if s == false then shapes = nil break end end
    return { { elem = out_bool and types.BOOL or elem, shape = shapes and M.broadcast(shapes) or nil } }
  end
end
for _, op in ipairs({ "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "BitShift",
  "BitwiseAnd", "BitwiseOr", "BitwiseXor" }) do rules[op] = elementwise(false) end
for _, op in ipairs({ "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor" }) do
  rules[op] = elementwise(true)
end
rules.Where = function(node, ctx)
  local c, x, y = ctx.type(node.inputs[1]), ctx.type(node.inputs[2]), ctx.type(node.inputs[3])
  local shape = c and x and y and c.shape and x.shape and y.shape and M.broadcast({ c.shape, x.shape, y.shape }) or nil
  return { { elem = (x and x.elem) or (y and y.elem), shape = shape } }
end

rules.Cast = function(node, ctx)
  local t = ctx.type(node.inputs[1])
  return { { elem = attr(node, "to", nil), shape = t and copy(t.shape) } }
end
rules.CastLike = function(node, ctx)
  local t, like = ctx.type(node.inputs[1]), ctx.type(node.inputs[2])
  return { { elem = like and like.elem, shape = t and copy(t.shape) } }
end

rules.MatMul = function(node, ctx)
  local a, b = ctx.type(node.inputs[1]), ctx.type(node.inputs[2])
  if not a or not b then return { { elem = a and a.elem } } end
  local elem = a.elem
  if not a.shape or not b.shape or #a.shape == 0 or #b.shape == 0 then return { { elem = elem } } end
  local sa, sb = copy(a.shape), copy(b.shape)
  local a1, b1 = #sa == 1, #sb == 1
  if a1 then table.insert(sa, 1, 1) end
  if b1 then sb[#sb + 1] = 1 end
  local ba, bb = {}, {}
  for i = 1, #sa - 2 do ba[i] = sa[i] end
  for i = 1, #sb - 2 do bb[i] = sb[i] end
  local out = M.broadcast({ ba, bb })
  out[#out + 1] = sa[#sa - 1]
  out[#out + 1] = sb[#sb]
  if a1 then table.remove(out, #out - 1) end
  if b1 then table.remove(out, #out) end
  return { { elem = elem, shape = out } }
end
rules.FusedMatMul = rules.MatMul

rules.Gemm = function(node, ctx)
  local a, b = ctx.type(node.inputs[1]), ctx.type(node.inputs[2])
  local elem = a and a.elem
  if not a or not b or not a.shape or not b.shape or #a.shape ~= 2 or #b.shape ~= 2 then return { { elem = elem } } end
  local m = attr(node, "transA", 0) == 1 and a.shape[2] or a.shape[1]
  local n = attr(node, "transB", 0) == 1 and b.shape[1] or b.shape[2]
  return { { elem = elem, shape = { m, n } } }
end

local function conv_like(node, ctx, pool)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape or #x.shape < 3 then return { { elem = x and x.elem } } end
  local sp = #x.shape - 2
  local w = not pool and ctx.type(node.inputs[2]) or nil
  local kernel = attr(node, "kernel_shape", nil)
  if not kernel and w and w.shape then
    kernel = {}
    for i = 3, #w.shape do kernel[#kernel + 1] = w.shape[i] end
  end
  local out = { x.shape[1] }
  if pool then out[2] = x.shape[2]
  else out[2] = w and w.shape and w.shape[1] or false end
  local strides = attr(node, "strides", {})
  local dil = attr(node, "dilations", {})
  local pads = attr(node, "pads", {})
  local auto = attr(node, "auto_pad", "NOTSET")
  local ceil = attr(node, "ceil_mode", 0) == 1
  for i = 1, sp do
    local k = kernel and kernel[i]
    if not is_int(k) then out[#out + 1] = false
    else
      out[#out + 1] = window_out(x.shape[i + 2], k, strides[i] or 1, pads[i] or 0, pads[i + sp] or 0, dil[i] or 1,
        ceil, auto)
    end
  end
  return out
end
rules.Conv = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  local out = conv_like(node, ctx, false)
  if out[1] and type(out[1]) == "table" then return out end
  return { { elem = x and x.elem, shape = out } }
end
rules.FusedConv = rules.Conv
for _, op in ipairs({ "MaxPool", "AveragePool", "LpPool" }) do
  rules[op] = function(node, ctx)
    local x = ctx.type(node.inputs[1])
    local out = conv_like(node, ctx, true)
    if out[1] and type(out[1]) == "table" then return out end
    local res = { { elem = x and x.elem, shape = out } }
    if op == "MaxPool" and node.outputs[2] then res[2] = { elem = types.INT64, shape = copy(out) } end
    return res
  end
end
for _, op in ipairs({ "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool" }) do
  rules[op] = function(node, ctx)
    local x = ctx.type(node.inputs[1])
    if not x or not x.shape then return { { elem = x and x.elem } } end
    local out = { x.shape[1], x.shape[2] }
    for _ = 3, #x.shape do out[#out + 1] = 1 end
    return { { elem = x.elem, shape = out } }
  end
end
rules.ConvTranspose = function(node, ctx)
  local x, w = ctx.type(node.inputs[1]), ctx.type(node.inputs[2])
  if not x or not x.shape or not w or not w.shape or #x.shape < 3 then return { { elem = x and x.elem } } end
  local sp = #x.shape - 2
  local group = attr(node, "group", 1)
  local out = { x.shape[1], is_int(w.shape[2]) and w.shape[2] * group or false }
  local out_shape = attr(node, "output_shape", nil)
  local strides, dil, pads = attr(node, "strides", {}), attr(node, "dilations", {}), attr(node, "pads", {})
  local opad = attr(node, "output_padding", {})
  for i = 1, sp do
    if out_shape and out_shape[i] then out[#out + 1] = out_shape[#out_shape - sp + i]
    else
      local inp, k = x.shape[i + 2], w.shape[i + 2]
      if is_int(inp) and is_int(k) then
        out[#out + 1] = (strides[i] or 1) * (inp - 1) + (opad[i] or 0) + ((k - 1) * (dil[i] or 1) + 1) - (pads[i]
          or 0) - (pads[i + sp] or 0)
      else out[#out + 1] = false end
    end
  end
  return { { elem = x.elem, shape = out } }
end

rules.BatchNormalization = function(node, ctx)
  local res = same_as_input(node, ctx)
  return res
end
rules.LayerNormalization = function(node, ctx)
  local t = ctx.type(node.inputs[1])
  if not t then return {} end
  local res = { { elem = t.elem, shape = copy(t.shape) } }
  if t.shape and (node.outputs[2] or node.outputs[3]) then
    local axis = norm_axis(attr(node, "axis", -1), #t.shape)
    local s = {}
    for i, d in ipairs(t.shape) do s[i] = (i - 1) < axis and d or 1 end
    res[2] = { elem = types.FLOAT, shape = s }
    res[3] = { elem = types.FLOAT, shape = copy(s) }
  end
  return res
end
rules.SkipLayerNormalization = same_as_input

rules.Reshape = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  local shape = const_ints(ctx, node.inputs[2])
  if not shape then
    local st = ctx.type(node.inputs[2])
    if st and st.shape and #st.shape == 1 and is_int(st.shape[1]) then
      local out = {}
      for i = 1, st.shape[1] do out[i] = false end
      return { { elem = x and x.elem, shape = out } }
    end
    return { { elem = x and x.elem } }
  end
  local in_dims = x and x.shape or {}
  local out = {}
  local neg
  local allowzero = attr(node, "allowzero", 0) == 1
  local known = 1
  for i, d in ipairs(shape) do
    if d == 0 and not allowzero then d = in_dims[i]; if d == nil then d = false end end
    if d == -1 then neg = i; out[i] = false
    else out[i] = d; if is_int(d) then known = known * d else known = nil end end
  end
  if neg and x and x.shape and known and known > 0 then
    local total = numel_or_nil(x.shape)
    if total then out[neg] = total // known
    else
      -- a symbol the new shape does not split: the -1 takes over the only non-fixed input dim
      local sym, syms = nil, 0
      local fixed_in = 1
      for _, d in ipairs(x.shape) do if is_int(d) then fixed_in = fixed_in * d else sym = d; syms = syms + 1 end end
      if syms == 1 and sym and fixed_in == known then out[neg] = sym end
    end
  end
  return { { elem = x and x.elem, shape = out } }
end

rules.Flatten = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = x and x.elem } } end
  local axis = norm_axis(attr(node, "axis", 1), #x.shape)
  local a, b = 1, 1
  for i, d in ipairs(x.shape) do
    if i <= axis then a = (a and is_int(d)) and a * d or false
    else b = (b and is_int(d)) and b * d or false end
  end
  if #x.shape == 1 and axis == 1 then return { { elem = x.elem, shape = { x.shape[1], 1 } } } end
  return { { elem = x.elem, shape = { a, b } } }
end

rules.Transpose = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = x and x.elem } } end
  local perm = attr(node, "perm", nil)
  local out = {}
  local r = #x.shape
  for i = 1, r do
    local p = perm and perm[i] or (r - i)
    out[i] = x.shape[p + 1]
    if out[i] == nil then return { { elem = x.elem } } end
  end
  return { { elem = x.elem, shape = out } }
end

rules.Concat = function(node, ctx)
  local first
  local shapes = {}
  for _, name in ipairs(node.inputs) do
    if name ~= "" then
      local t = ctx.type(name)
      if not t or not t.shape then return { { elem = first and first.elem or (t and t.elem) } } end
      first = first or t
      shapes[#shapes + 1] = t.shape
    end
  end
  if not first then return {} end
  local r = #first.shape
  local axis = norm_axis(attr(node, "axis", 0), r)
  local out = {}
  for i = 1, r do
    if i == axis + 1 then
      local sum = 0
      for _, s in ipairs(shapes) do
        if is_int(s[i]) and sum then sum = sum + s[i] else sum = false end
      end
      out[i] = sum
    else
      local d = shapes[1][i]
      for k = 2, #shapes do if shapes[k][i] ~= d then d = is_int(shapes[k][i]) and shapes[k][i] or d end end
      out[i] = d
    end
  end
  return { { elem = first.elem, shape = out } }
end

rules.Split = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  local nout = #node.outputs
  if not x or not x.shape then
    local res = {}
    for i = 1, nout do res[i] = { elem = x and x.elem } end
    return res
  end
  local axis = norm_axis(attr(node, "axis", 0), #x.shape)
  local split = const_ints(ctx, node.inputs[2]) or attr(node, "split", nil)
  local d = x.shape[axis + 1]
  local res = {}
  for i = 1, nout do
    local s = copy(x.shape)
    if split then s[axis + 1] = split[i] or false
    elseif is_int(d) then
      local chunk = -((-d) // nout)
      s[axis + 1] = (i < nout) and chunk or (d - chunk * (nout - 1))
    else s[axis + 1] = false end
    res[i] = { elem = x.elem, shape = s }
  end
  return res
end

rules.Slice = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = x and x.elem } } end
  local starts, ends, axes, steps
  if ctx.opset >= 10 then
    starts, ends = const_ints(ctx, node.inputs[2]), const_ints(ctx, node.inputs[3])
    axes, steps = const_ints(ctx, node.inputs[4]), const_ints(ctx, node.inputs[5])
    if (node.inputs[4] and node.inputs[4] ~= "" and not axes) then starts = nil end
    if (node.inputs[5] and node.inputs[5] ~= "" and not steps) then starts = nil end
  else
    starts, ends, axes = attr(node, "starts", nil), attr(node, "ends", nil), attr(node, "axes", nil)
  end
  local out = copy(x.shape)
  local r = #out
  if not starts or not ends then
    -- axes known: only those dims become unknown
    if axes then for _, a in ipairs(axes) do out[norm_axis(a, r) + 1] = false end
    else for i = 1, r do out[i] = false end end
    return { { elem = x.elem, shape = out } }
  end
  for k = 1, #starts do
    local a = norm_axis(axes and axes[k] or (k - 1), r) + 1
    local d = out[a]
    local step = steps and steps[k] or 1
    if not is_int(d) or step == 0 then
      -- the slice stays within one unknown dim; a full slice keeps it
      local s, e = starts[k], ends[k]
      if not (s == 0 and step == 1 and e >= 2 ^ 31 - 1) then out[a] = false end
    else
      local s, e = starts[k], ends[k]
      if s < 0 then s = s + d end
      if e < 0 then e = e + d end
      if step > 0 then
        s = math.max(0, math.min(s, d)); e = math.max(0, math.min(e, d))
        out[a] = math.max(0, (e - s + step - 1) // step)
      else
        s = math.max(-1, math.min(s, d - 1)); e = math.max(-1, math.min(e, d - 1))
        out[a] = math.max(0, (s - e + (-step) - 1) // (-step))
      end
    end
  end
  return { { elem = x.elem, shape = out } }
end

rules.Gather = function(node, ctx)
  local x, idx = ctx.type(node.inputs[1]), ctx.type(node.inputs[2])
  if not x or not x.shape or not idx or not idx.shape then return { { elem = x and x.elem } } end
  local r = #x.shape
  local axis = norm_axis(attr(node, "axis", 0), r)
  local out = {}
  for i = 1, axis do out[#out + 1] = x.shape[i] end
  for _, d in ipairs(idx.shape) do out[#out + 1] = d end
  for i = axis + 2, r do out[#out + 1] = x.shape[i] end
  return { { elem = x.elem, shape = out } }
end
rules.GatherElements = function(node, ctx)
  local x, idx = ctx.type(node.inputs[1]), ctx.type(node.inputs[2])
  return { { elem = x and x.elem, shape = idx and copy(idx.shape) } }
end
rules.GatherND = function(node, ctx)
  local x, idx = ctx.type(node.inputs[1]), ctx.type(node.inputs[2])
  if not x or not x.shape or not idx or not idx.shape or #idx.shape == 0 then return { { elem = x and x.elem } } end
  local last = idx.shape[#idx.shape]
  if not is_int(last) then return { { elem = x.elem } } end
  local b = attr(node, "batch_dims", 0)
  local out = {}
  for i = 1, #idx.shape - 1 do out[#out + 1] = idx.shape[i] end
  for i = b + last + 1, #x.shape do out[#out + 1] = x.shape[i] end
  return { { elem = x.elem, shape = out } }
end

local function unsqueeze_axes(node, ctx)
  if ctx.opset >= 13 then return const_ints(ctx, node.inputs[2]) end
  return attr(node, "axes", nil)
end
rules.Unsqueeze = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  local axes = unsqueeze_axes(node, ctx)
  if not x or not x.shape or not axes then return { { elem = x and x.elem } } end
  local r = #x.shape + #axes
  local set = {}
  for _, a in ipairs(axes) do set[norm_axis(a, r)] = true end
  local out, k = {}, 1
  for i = 0, r - 1 do
    if set[i] then out[#out + 1] = 1 else out[#out + 1] = x.shape[k]; k = k + 1 end
  end
  return { { elem = x.elem, shape = out } }
end
rules.Squeeze = function(node, ctx)
  local x = ctx.type(node.inputs[1])
  if not x or not x.shape then return { { elem = x and x.elem } } end
  local axes = ctx.opset >= 13 and const_ints(ctx, node.inputs[2]) or attr(node, "axes", nil)
  if ctx.opset >= 13 and node.inputs[2] and node.inputs[2] ~= "" and not axes then return { { elem = x.elem } } end
  local out = {}
  if axes then
    local set = {}
    for _, a in ipairs(axes) do set[norm_axis(a, #x.shape)] = true end
    for i, d in ipairs(x.shape) do if not set[i - 1] then out[#out + 1] = d end end
  else
    for _, d in ipairs(x.shape) do
      if not is_int(d) then return { { elem = x.elem } } end
      if d ~= 1 then out[#out + 1] = d end
    end
  end
  return { { elem = x.elem, shape = out } }
end

require("mlsh.onnx.shape_more").install(rules, { attr = attr, copy = copy, is_int = is_int, norm_axis = norm_axis,
  const_ints = const_ints, broadcast = M.broadcast })


-- Merge an inferred type with what was known (value_info): known dims fill unknown ones.
local function merge(old, new)
  if not new then return old end
  if not old then return new end
  local elem = new.elem or old.elem
  if not new.shape then return { elem = elem, shape = old.shape } end
  if not old.shape or #old.shape ~= #new.shape then return { elem = elem, shape = new.shape } end
  local s = {}
  for i, d in ipairs(new.shape) do
    if d == false or (type(d) == "string" and is_int(old.shape[i])) then s[i] = old.shape[i] else s[i] = d end
  end
  return { elem = elem, shape = s }
end
M.merge = merge

-- Infer every node output of ir (in node order). Returns the number of outputs typed.
function M.infer(ir)
  local opset = ir.opset[""] or 13
  local ctx = { opset = opset }
  function ctx.type(name)
    if not name or name == "" then return nil end
    return ir:type_of(name)
  end
  function ctx.values(name)
    if not name or name == "" then return nil end
    return ir:values(name)
  end
  -- the output types of a subgraph (an If branch), inferred inside it with this graph as its scope
  function ctx.subgraph_outputs(g)
    local sub = irlib.from_graph(g, ir.model, { opset = ir.opset, ir_version = ir.ir_version, parent = ir })
    for _, n in ipairs(sub.nodes) do
      local a = n.op == "Constant" and n.attrs.value
      local t = a and a.value
      if type(t) == "table" and t.dims then sub.types[n.outputs[1]] = { elem = t.dtype, shape = copy(t.dims) } end
    end
    M.infer(sub)
    local out = {}
    for i, vi in ipairs(g.outputs) do out[i] = sub:type_of(vi.name) end
    return out
  end
  local typed = 0
  for _, node in ipairs(ir.nodes) do
    local rule = rules[node.op]
    local res
    if rule then
      local ok, r = pcall(rule, node, ctx)
      if ok then res = r end
    end
    for i, o in ipairs(node.outputs) do
      if o ~= "" then
        local inferred = res and res[i]
        if inferred and inferred.elem == nil and inferred.shape == nil then inferred = nil end
        local merged = merge(ir.types[o], inferred)
        if merged then ir.types[o] = merged; typed = typed + 1 end
      end
    end
  end
  return typed
end

return M
