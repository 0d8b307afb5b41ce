-- mlsh.onnx.eval — exact evaluation of small constant subgraphs (shape arithmetic above all:
-- Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains), as ONNX Runtime's constant folding
-- computes them. A tensor is {elem = DataType, dims = {…}, values = flat row-major list}; integer
-- types hold Lua integers, bool holds 0/1. eval.run(node, inputs, opset) -> {tensor…} | nil when
-- the op is not covered or the result would exceed MAX elements (the caller then only knows the
-- output is constant, not its value).
local types = require "mlsh.onnx.types"

local M = {}
M.MAX = 65536

local function numel(dims)
  local n = 1
  for _, d in ipairs(dims) do n = n * d end
  return n
end

local function attr(node, name, default)
  local a = node.attrs[name]
  if a == nil or a.value == nil then return default end
  return a.value
end

local function strides(dims)
  local s, acc = {}, 1
  for i = #dims, 1, -1 do s[i] = acc; acc = acc * dims[i] end
  return s
end

local function norm_axis(a, rank) if a < 0 then a = a + rank end return a end

local function is_int_type(elem) return types.is_int(elem) or elem == types.BOOL end

local function trunc(x) if x >= 0 then return math.floor(x) end return -math.floor(-x) end

-- Broadcast n-ary elementwise op.
local function broadcast(ts, out_elem, fn)
  local rank = 0
  for _, t in ipairs(ts) do if #t.dims > rank then rank = #t.dims end end
  local out = {}
  for i = 1, rank do
    local d = 1
    for _, t in ipairs(ts) do
      local td = t.dims[i - (rank - #t.dims)]
      if td and td ~= 1 then
        if d ~= 1 and d ~= td then return nil end
        d = td
      end
    end
    out[i] = d
  end
  local n = numel(out)
  if n > M.MAX then return nil end
  local ostr = strides(out)
  local tstr = {}
  for k, t in ipairs(ts) do
    local s = strides(t.dims)
    local full = {}
    for i = 1, rank do
      local j = i - (rank - #t.dims)
      full[i] = (j >= 1 and t.dims[j] ~= 1) and s[j] or 0
    end
    tstr[k] = full
  end
  local vals = {}
  local args = {}
  for flat = 0, n - 1 do
    local rem = flat
    local offs = {}
    for k = 1, #ts do offs[k] = 0 end
    for i = 1, rank do
      local idx = rem // ostr[i]
      rem = rem % ostr[i]
      for k = 1, #ts do offs[k] = offs[k] + idx * tstr[k][i] end
    end
    for k, t in ipairs(ts) do args[k] = t.values[offs[k] + 1] end
    local v = fn(table.unpack(args, 1, #ts))
    if v == nil then return nil end
    vals[flat + 1] = v
  end
  return { elem = out_elem, dims = out, values = vals }
end

local function cast_value(v, elem)
  if elem == types.BOOL then return (v ~= 0) and 1 or 0 end
  if types.is_int(elem) then
    if v ~= v or v == math.huge or v == -math.huge then return nil end
    return math.tointeger(trunc(v)) or nil
  end
  return v + 0.0
end

local BIN = {
  Add = function(a, b) return a + b end,
  Sub = function(a, b) return a - b end,
  Mul = function(a, b) return a * b end,
  Pow = function(a, b) return a ^ b end,
  Max = math.max, Min = math.min,
}
local CMP = {
  Equal = function(a, b) return a == b and 1 or 0 end,
  Less = function(a, b) return a < b and 1 or 0 end,
  Greater = function(a, b) return a > b and 1 or 0 end,
  LessOrEqual = function(a, b) return a <= b and 1 or 0 end,
  GreaterOrEqual = function(a, b) return a >= b and 1 or 0 end,
  And = function(a, b) return (a ~= 0 and b ~= 0) and 1 or 0 end,
  Or = function(a, b) return (a ~= 0 or b ~= 0) and 1 or 0 end,
  Xor = function(a, b) return ((a ~= 0) ~= (b ~= 0)) and 1 or 0 end,
}
local UN = {
  Neg = function(a) return -a end, Abs = math.abs, Floor = math.floor, Ceil = math.ceil,
  Sqrt = function(a) return a >= 0 and math.sqrt(a) or nil end, Exp = math.exp,
  Reciprocal = function(a) return a ~= 0 and 1 / a or nil end, Sign = function(a) return a > 0 and 1 or a < 0 and -1
    or 0 end,
  Relu = function(a) return a > 0 and a or 0 * a end, Identity = function(a) return a end,
}

-- The integer list held by a 1-D (or scalar) tensor.
local function ints(t)
  if not t then return nil end
  for _, v in ipairs(t.values) do if math.type(v) ~= "integer" then return nil end end
  return t.values
end

local function gather(data, idx, axis)
  local r = #data.dims
  axis = norm_axis(axis, r)
  if axis < 0 or axis >= r then return nil end
  local out_dims = {}
  for i = 1, axis do out_dims[#out_dims + 1] = data.dims[i] end
  for _, d in ipairs(idx.dims) do out_dims[#out_dims + 1] = d end
  for i = axis + 2, r do out_dims[#out_dims + 1] = data.dims[i] end
  if numel(out_dims) > M.MAX then return nil end
  local outer, inner = 1, 1
  for i = 1, axis do outer = outer * data.dims[i] end
  for i = axis + 2, r do inner = inner * data.dims[i] end
  local dim = data.dims[axis + 1]
  local vals = {}
  for o = 0, outer - 1 do
    for _, ix in ipairs(idx.values) do
      if math.type(ix) ~= "integer" then return nil end
      if ix < 0 then ix = ix + dim end
      if ix < 0 or ix >= dim then return nil end
      for k = 0, inner - 1 do vals[#vals + 1] = data.values[(o * dim + ix) * inner + k + 1] end
    end
  end
  return { elem = data.elem, dims = out_dims, values = vals }
end

local function slice(data, starts, ends, axes, steps)
  local r = #data.dims
  local lo, hi, st = {}, {}, {}
  for i = 1, r do lo[i], hi[i], st[i] = 0, data.dims[i], 1 end
  for k = 1, #starts do
    local a = norm_axis(axes and axes[k] or (k - 1), r) + 1
    if a < 1 or a > r then return nil end
    local d = data.dims[a]
    local step = steps and steps[k] or 1
    if step == 0 then return nil end
    local s, e = starts[k], ends[k]
    if s < 0 then s = s + d end
    if e < 0 then e = e + d end
    if step > 0 then
      s = math.max(0, math.min(s, d))
      e = math.max(0, math.min(e, d))
    else
      s = math.max(-1, math.min(s, d - 1))
      e = math.max(-1, math.min(e, d - 1))
    end
    lo[a], hi[a], st[a] = s, e, step
  end
  local out_dims = {}
  for i = 1, r do
    local n
    if st[i] > 0 then n = math.max(0, (hi[i] - lo[i] + st[i] - 1) // st[i])
    else n = math.max(0, (lo[i] - hi[i] + (-st[i]) - 1) // (-st[i])) end
    out_dims[i] = n
  end
  local total = numel(out_dims)
  if total > M.MAX then return nil end
  local istr = strides(data.dims)
  local ostr = strides(out_dims)
  local vals = {}
  for flat = 0, total - 1 do
    local rem, off = flat, 0
    for i = 1, r do
      local idx = rem // ostr[i]
      rem = rem % ostr[i]
      off = off + (lo[i] + idx * st[i]) * istr[i]
    end
    vals[flat + 1] = data.values[off + 1]
  end
  return { elem = data.elem, dims = out_dims, values = vals }
end

local function transpose(data, perm)
  local r = #data.dims
  if not perm or #perm == 0 then
    perm = {}
    for i = 1, r do perm[i] = r - i end
  end
  local out_dims = {}
  for i = 1, r do out_dims[i] = data.dims[perm[i] + 1] end
  local istr, ostr = strides(data.dims), strides(out_dims)
  local vals = {}
  for flat = 0, numel(out_dims) - 1 do
    local rem, off = flat, 0
    for i = 1, r do
      local idx = rem // ostr[i]
      rem = rem % ostr[i]
      off = off + idx * istr[perm[i] + 1]
    end
    vals[flat + 1] = data.values[off + 1]
  end
  return { elem = data.elem, dims = out_dims, values = vals }
end

-- Reshape target dims (0 copies, -1 infers) -> dims or nil.
function M.reshape_dims(in_dims, shape, allowzero)
  local out, neg, known = {}, nil, 1
  for i, d in ipairs(shape) do
    if d == 0 and not allowzero then d = in_dims[i]; if d == nil then return nil end end
    if d == -1 then
      if neg then return nil end
      neg = i
      out[i] = -1
    else
      out[i] = d
      if type(d) == "number" then known = known * d end
    end
  end
  if neg then
    local total = 1
    for _, d in ipairs(in_dims) do
      if math.type(d) ~= "integer" then return out, true end
      total = total * d
    end
    if known == 0 or total % known ~= 0 then return nil end
    out[neg] = total // known
  end
  return out
end

-- ---- one handler per op type: OPS[op](node, ins, opset) -> {result…} | nil ----------------------------
local OPS = {}

local function binary(fn)
  return function(node, ins)
    local a, b = ins[1], ins[2]
    if not (a and b) then return nil end
    if node.op == "Pow" and is_int_type(a.elem) then return nil end
    local r = broadcast({ a, b }, a.elem, fn)
    if r and is_int_type(a.elem) then for i, v in ipairs(r.values) do r.values[i] = math.tointeger(v) or v end end
    return r and { r }
  end
end
for op, fn in pairs(BIN) do OPS[op] = binary(fn) end

-- Max, Min and Sum take any number of inputs
local function variadic(fn)
  return function(_, ins)
    local acc = ins[1]
    if not acc then return nil end
    for k = 2, #ins do
      acc = broadcast({ acc, ins[k] }, acc.elem, fn)
      if not acc then return nil end
    end
    return { acc }
  end
end
OPS.Max, OPS.Min, OPS.Sum = variadic(BIN.Max), variadic(BIN.Min), variadic(BIN.Add)

OPS.Div = function(_, ins)
  local a, b = ins[1], ins[2]
  if not (a and b) then return nil end
  local int = is_int_type(a.elem)
  local r = broadcast({ a, b }, a.elem, function(x, y)
    if int then
      if y == 0 then return nil end
      return math.tointeger(trunc(x / y))
    end
    return x / y
  end)
  return r and { r }
end

OPS.Mod = function(node, ins)
  local a, b = ins[1], ins[2]
  if not (a and b) then return nil end
  local fmod = attr(node, "fmod", 0) == 1
  local r = broadcast({ a, b }, a.elem, function(x, y)
    if y == 0 then return nil end
    if fmod then return math.fmod(x, y) end
    return x - math.floor(x / y) * y
  end)
  return r and { r }
end

for op, fn in pairs(CMP) do
  OPS[op] = function(_, ins)
    if not (ins[1] and ins[2]) then return nil end
    local r = broadcast({ ins[1], ins[2] }, types.BOOL, fn)
    return r and { r }
  end
end

for op, fn in pairs(UN) do
  OPS[op] = function(_, ins)
    local a = ins[1]
    if not a then return nil end
    local r = broadcast({ a }, a.elem, fn)
    return r and { r }
  end
end
OPS.Identity = function(_, ins) return { ins[1] } end

OPS.Not = function(_, ins)
  if not ins[1] then return nil end
  local r = broadcast({ ins[1] }, types.BOOL, function(x) return x == 0 and 1 or 0 end)
  return r and { r }
end

OPS.Where = function(_, ins)
  local c, x, y = ins[1], ins[2], ins[3]
  if not (c and x and y) then return nil end
  local r = broadcast({ c, x, y }, x.elem, function(k, p, q) if k ~= 0 then return p end return q end)
  return r and { r }
end

OPS.Cast = function(node, ins)
  local a, to = ins[1], attr(node, "to", nil)
  if not a or not to or to == 8 then return nil end
  local vals = {}
  for i, v in ipairs(a.values) do
    vals[i] = cast_value(v, to)
    if vals[i] == nil then return nil end
  end
  return { { elem = to, dims = a.dims, values = vals } }
end

OPS.Shape = function(node, ins)
  local a = ins[1]
  if not a then return nil end
  local r = #a.dims
  local s, e = attr(node, "start", 0), attr(node, "end", r)
  s, e = norm_axis(s, r), norm_axis(e, r)
  s, e = math.max(0, math.min(s, r)), math.max(0, math.min(e, r))
  local vals = {}
  for i = s + 1, e do vals[#vals + 1] = a.dims[i] end
  return { { elem = types.INT64, dims = { #vals }, values = vals } }
end

OPS.Size = function(_, ins)
  if not ins[1] then return nil end
  return { { elem = types.INT64, dims = {}, values = { numel(ins[1].dims) } } }
end

OPS.Gather = function(node, ins)
  if not (ins[1] and ins[2]) then return nil end
  local r = gather(ins[1], ins[2], attr(node, "axis", 0))
  return r and { r }
end

OPS.Unsqueeze = function(node, ins, opset)
  local a = ins[1]
  if not a then return nil end
  local axes = (opset or 13) >= 13 and ints(ins[2]) or attr(node, "axes", nil)
  if not axes then return nil end
  local r = #a.dims + #axes
  local set = {}
  for _, x in ipairs(axes) do set[norm_axis(x, r)] = true end
  local dims, k = {}, 1
  for i = 0, r - 1 do
    if set[i] then dims[#dims + 1] = 1 else dims[#dims + 1] = a.dims[k]; k = k + 1 end
  end
  return { { elem = a.elem, dims = dims, values = a.values } }
end

OPS.Squeeze = function(node, ins, opset)
  local a, b = ins[1], ins[2]
  if not a then return nil end
  local axes = (opset or 13) >= 13 and (b and ints(b)) or attr(node, "axes", nil)
  local set = {}
  if axes then for _, x in ipairs(axes) do set[norm_axis(x, #a.dims)] = true end end
  local dims = {}
  for i, d in ipairs(a.dims) do
    if not ((axes and set[i - 1]) or (not axes and d == 1)) then dims[#dims + 1] = d end
  end
  return { { elem = a.elem, dims = dims, values = a.values } }
end

OPS.Concat = function(node, ins)
  local first = ins[1]
  if not first then return nil end
  local r = #first.dims
  local axis = norm_axis(attr(node, "axis", 0), r)
  if axis < 0 or axis >= r then return nil end
  local outer, dims = 1, {}
  for i = 1, r do dims[i] = first.dims[i] end
  dims[axis + 1] = 0
  for i = 1, axis do outer = outer * first.dims[i] end
  local parts = {}
  for _, t in ipairs(ins) do
    if not t or #t.dims ~= r then return nil end
    dims[axis + 1] = dims[axis + 1] + t.dims[axis + 1]
    local inner = 1
    for i = axis + 1, r do inner = inner * t.dims[i] end
    parts[#parts + 1] = { t = t, inner = inner }
  end
  if numel(dims) > M.MAX then return nil end
  local vals = {}
  for o = 0, outer - 1 do
    for _, p in ipairs(parts) do
      for k = 1, p.inner do vals[#vals + 1] = p.t.values[o * p.inner + k] end
    end
  end
  return { { elem = first.elem, dims = dims, values = vals } }
end

OPS.Slice = function(node, ins, opset)
  local a = ins[1]
  if not a then return nil end
  local starts, ends, axes, steps
  if (opset or 13) >= 10 then
    starts, ends = ints(ins[2]), ints(ins[3])
    axes, steps = ins[4] and ints(ins[4]), ins[5] and ints(ins[5])
    if (ins[4] and not axes) or (ins[5] and not steps) then return nil end
  else
    starts, ends, axes = attr(node, "starts", nil), attr(node, "ends", nil), attr(node, "axes", nil)
  end
  if not starts or not ends then return nil end
  local r = slice(a, starts, ends, axes, steps)
  return r and { r }
end

OPS.Reshape = function(node, ins)
  local a, shape = ins[1], ints(ins[2])
  if not a or not shape then return nil end
  local dims = M.reshape_dims(a.dims, shape, attr(node, "allowzero", 0) == 1)
  if not dims or numel(dims) ~= #a.values then return nil end
  return { { elem = a.elem, dims = dims, values = a.values } }
end

OPS.Flatten = function(node, ins)
  local a = ins[1]
  if not a then return nil end
  local axis = norm_axis(attr(node, "axis", 1), #a.dims)
  local d0, d1 = 1, 1
  for i, d in ipairs(a.dims) do if i <= axis then d0 = d0 * d else d1 = d1 * d end end
  return { { elem = a.elem, dims = { d0, d1 }, values = a.values } }
end

OPS.Transpose = function(node, ins)
  if not ins[1] then return nil end
  return { transpose(ins[1], attr(node, "perm", nil)) }
end

OPS.ConstantOfShape = function(node, ins)
  local shape = ints(ins[1])
  if not shape then return nil end
  local n = numel(shape)
  if n > M.MAX or n < 0 then return nil end
  local v, elem = 0.0, types.FLOAT
  local t = attr(node, "value", nil)
  if t then
    elem = t.dtype
    local vals = t:values(nil, 1)
    if not vals then return nil end
    v = vals[1]
  end
  local vals = {}
  for i = 1, n do vals[i] = v end
  return { { elem = elem, dims = shape, values = vals } }
end

OPS.Expand = function(_, ins)
  local a, shape = ins[1], ints(ins[2])
  if not a or not shape then return nil end
  local zeros = setmetatable({}, { __index = function() return 0 end })
  local r = broadcast({ a, { elem = a.elem, dims = shape, values = zeros } }, a.elem, function(x) return x end)
  return r and { r }
end

OPS.Range = function(_, ins)
  local a, b, c = ins[1], ins[2], ins[3]
  if not (a and b and c) then return nil end
  local s, l, d = a.values[1], b.values[1], c.values[1]
  if d == 0 then return nil end
  local n = math.max(math.ceil((l - s) / d), 0)
  if n > M.MAX then return nil end
  local vals = {}
  for i = 0, n - 1 do vals[i + 1] = s + i * d end
  return { { elem = a.elem, dims = { n }, values = vals } }
end

-- whole-vector reductions (shape arithmetic)
local REDUCE = { ReduceProd = function(x, y) return x * y end, ReduceSum = function(x, y) return x + y end,
                 ReduceMax = math.max, ReduceMin = math.min }
for op, fn in pairs(REDUCE) do
  OPS[op] = function(node, ins)
    local a, b = ins[1], ins[2]
    if not a then return nil end
    local axes = attr(node, "axes", nil)
    if b then axes = ints(b) end
    if axes and #axes > 0 and #a.dims ~= 1 then return nil end
    local acc
    for _, v in ipairs(a.values) do
      if acc == nil then acc = v else acc = fn(acc, v) end
    end
    if acc == nil then return nil end
    local dims = {}
    if attr(node, "keepdims", 1) == 1 then for i = 1, #a.dims do dims[i] = 1 end end
    return { { elem = a.elem, dims = dims, values = { acc } } }
  end
end

OPS.Tile = function(_, ins)
  local a, reps = ins[1], ints(ins[2])
  if not a or not reps or #reps ~= #a.dims or #a.dims ~= 1 then return nil end
  local vals = {}
  for _ = 1, reps[1] do for _, v in ipairs(a.values) do vals[#vals + 1] = v end end
  if #vals > M.MAX then return nil end
  return { { elem = a.elem, dims = { #vals }, values = vals } }
end

M.OPS = OPS

-- Evaluate node on constant inputs; nil when not covered.
function M.run(node, ins, opset)
  if node.domain ~= "" then return nil end
  local f = OPS[node.op]
  if not f then return nil end
  return f(node, ins, opset)
end

return M
