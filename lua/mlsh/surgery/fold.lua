-- mlsh.surgery.fold — constant folding and shape propagation over a function's main block.
--   fold.run(f [, {max_elements = 1024}]) -> number of ops replaced by consts
--     An op whose inputs are all consts (and `shape` of a value whose shape is static) is evaluated
--     here, in double precision rounded to the op's declared output dtype (one IEEE op, so the result
--     is what the device computes), and replaced by a const with the same name and output. Small
--     tensors only: folding is for shape/index plumbing, not for weights.
--   fold.propagate(f) -> number of dimensions that became known (mlsh.builder.infer's rules)
local mil = require "mlsh.builder.mil"

local M = {}
M.MAX_ELEMENTS = 1024
M.MAX_INPUT = 4096

local function count(shape) return mil.count(shape) or 0 end
local function strides(shape)
  local s, acc = {}, 1
  for i = #shape, 1, -1 do s[i] = acc acc = acc * shape[i] end
  return s
end
local function unflat(i, shape) -- 0-based flat -> 0-based index list
  local idx = {}
  for d = #shape, 1, -1 do
    local n = shape[d]
    idx[d] = n > 0 and i % n or 0
    i = n > 0 and i // n or 0
  end
  return idx
end
local function flat(idx, st)
  local k = 0
  for d = 1, #idx do k = k + idx[d] * st[d] end
  return k
end
local function norm_axis(a, rank) return (a < 0 and a + rank or a) + 1 end

local INT = { int8 = true, int16 = true, int32 = true, int64 = true, uint8 = true, uint16 = true, uint32 = true, uint64 = true }
local function as_dtype(x, dtype)
  if dtype == "bool" then return x ~= 0 and x ~= false end
  if type(x) == "boolean" then x = x and 1 or 0 end
  if INT[dtype] then
    local t = x < 0 and math.ceil(x) or math.floor(x)
    return math.tointeger(t) or t
  end
  return x + 0.0
end

-- ---- elementwise ---------------------------------------------------------------------------------------
local function bshape(a, b)
  local n = math.max(#a, #b)
  local out = {}
  for i = 1, n do
    local da, db = a[i - n + #a] or 1, b[i - n + #b] or 1
    if da ~= db and da ~= 1 and db ~= 1 then return nil end
    out[i] = math.max(da, db)
    if da == 0 or db == 0 then out[i] = 0 end
  end
  return out
end

local function broadcast(a, b, fn)
  local shape = bshape(a.shape, b.shape)
  if not shape then return nil end
  local sa, sb = strides(a.shape), strides(b.shape)
  local out = {}
  for i = 0, count(shape) - 1 do
    local idx = unflat(i, shape)
    local ka, kb = 0, 0
    for d = 1, #shape do
      local da = d - #shape + #a.shape
      local db = d - #shape + #b.shape
      if da >= 1 and a.shape[da] ~= 1 then ka = ka + idx[d] * sa[da] end
      if db >= 1 and b.shape[db] ~= 1 then kb = kb + idx[d] * sb[db] end
    end
    out[i + 1] = fn(a.data[ka + 1], b.data[kb + 1])
  end
  return out, shape
end

local function num(x) if type(x) == "boolean" then return x and 1 or 0 end return x end
local BIN = {
  add = function(x, y) return x + y end, sub = function(x, y) return x - y end, mul = function(x, y) return x * y end,
  real_div = function(x, y) return x / y end,
  floor_div = function(x, y) return math.floor(x / y) end,
  mod = function(x, y) return x - math.floor(x / y) * y end,
  maximum = math.max, minimum = math.min, pow = function(x, y) return x ^ y end,
  equal = function(x, y) return x == y end, not_equal = function(x, y) return x ~= y end,
  less = function(x, y) return x < y end, less_equal = function(x, y) return x <= y end,
  greater = function(x, y) return x > y end, greater_equal = function(x, y) return x >= y end,
  logical_and = function(x, y) return x ~= 0 and y ~= 0 end, logical_or = function(x, y) return x ~= 0 or y ~= 0 end,
}

local EVAL = {}
for name, fn in pairs(BIN) do
  EVAL[name] = function(get)
    local a, b = get("x"), get("y")
    if not a or not b then return nil end
    return broadcast(a, b, function(x, y) return fn(num(x), num(y)) end)
  end
end

function EVAL.identity(get) local x = get("x") return x and x.data, x and x.shape end
function EVAL.cast(get) local x = get("x") return x and x.data, x and x.shape end
-- data unchanged, shape from the op's (inferred) output type
local function same_data(get, _, out) local x = get("x") return x and x.data, out.shape end
EVAL.reshape, EVAL.squeeze, EVAL.expand_dims, EVAL.flatten2d = same_data, same_data, same_data, same_data

function EVAL.shape(_, f, _, op)
  local t = f:type_of(op.inputs[1].args[1].name or "")
  if not t or not count(t.shape) or t.kind ~= "tensor" then return nil end
  for _, d in ipairs(t.shape) do if d < 0 then return nil end end
  return t.shape, { #t.shape }
end

function EVAL.concat(get, f, _, op)
  local args = f.arg(op, "values")
  local parts = {}
  for _, a in ipairs(args) do
    local c = a.name and f:const_data(a.name, M.MAX_INPUT)
    if not c then return nil end
    parts[#parts + 1] = { shape = c.shape, data = type(c.data) == "table" and c.data or c.data:totable() }
  end
  local axis = get("axis")
  if not axis then return nil end
  local rank = #parts[1].shape
  local ax = norm_axis(axis.data[1], rank)
  local shape = {}
  for i, d in ipairs(parts[1].shape) do shape[i] = d end
  shape[ax] = 0
  for _, p in ipairs(parts) do shape[ax] = shape[ax] + p.shape[ax] end
  local outer, out = 1, {}
  for d = 1, ax - 1 do outer = outer * shape[d] end
  for o = 0, outer - 1 do
    for _, p in ipairs(parts) do
      local inner = count(p.shape) // math.max(outer, 1)
      for k = 1, inner do out[#out + 1] = p.data[o * inner + k] end
    end
  end
  return out, shape
end

function EVAL.gather(get)
  local x, ind, axis = get("x"), get("indices"), get("axis")
  if not x or not ind then return nil end
  local bd = get("batch_dims")
  if bd and bd.data[1] ~= 0 then return nil end
  local ax = norm_axis(axis and axis.data[1] or 0, #x.shape)
  local shape = {}
  for d = 1, ax - 1 do shape[#shape + 1] = x.shape[d] end
  for _, d in ipairs(ind.shape) do shape[#shape + 1] = d end
  for d = ax + 1, #x.shape do shape[#shape + 1] = x.shape[d] end
  local st = strides(x.shape)
  local out = {}
  for i = 0, count(shape) - 1 do
    local idx = unflat(i, shape)
    local src = {}
    for d = 1, ax - 1 do src[d] = idx[d] end
    local ii = {}
    for d = 1, #ind.shape do ii[d] = idx[ax - 1 + d] end
    local k = math.tointeger(ind.data[flat(ii, strides(ind.shape)) + 1])
    if not k then return nil end
    if k < 0 then k = k + x.shape[ax] end
    if k < 0 or k >= x.shape[ax] then return nil end
    src[ax] = k
    for d = ax + 1, #x.shape do src[d] = idx[#ind.shape + d - 1] end
    out[i + 1] = x.data[flat(src, st) + 1]
  end
  return out, shape
end

local function slice(x, begin, size_or_end, stride, is_end, masks)
  local shape, starts, steps = {}, {}, {}
  for d = 1, #x.shape do
    local n = x.shape[d]
    local s = stride and stride[d] or 1
    local b = begin[d]
    local e = size_or_end[d]
    if masks and masks.begin and masks.begin[d] then b = s > 0 and 0 or n - 1 end
    if b < 0 then b = b + n end
    local len
    if is_end then
      if masks and masks["end"] and masks["end"][d] then e = s > 0 and n or -n - 1 end
      if e < 0 then e = e + n end
      e = math.max(-1, math.min(e, n))
      b = math.max(0, math.min(b, n - (s > 0 and 0 or 1)))
      len = s > 0 and math.max(0, (e - b + s - 1) // s) or math.max(0, (b - e + (-s) - 1) // (-s))
    else
      len = e == -1 and n - b or e
    end
    shape[d], starts[d], steps[d] = len, b, s
  end
  local st = strides(x.shape)
  local out = {}
  for i = 0, count(shape) - 1 do
    local idx = unflat(i, shape)
    for d = 1, #idx do idx[d] = starts[d] + idx[d] * steps[d] end
    out[i + 1] = x.data[flat(idx, st) + 1]
  end
  return out, shape
end

local function bools(c)
  if not c then return nil end
  local t = {}
  for i, v in ipairs(c.data) do t[i] = v == true or v == 1 end
  return t
end

function EVAL.slice_by_size(get)
  local x, b, s = get("x"), get("begin"), get("size")
  if not x or not b or not s then return nil end
  return slice(x, b.data, s.data, nil, false)
end

function EVAL.slice_by_index(get, _, out)
  local x, b, e = get("x"), get("begin"), get("end")
  if not x or not b or not e then return nil end
  local st = get("stride")
  local data, shape = slice(x, b.data, e.data, st and st.data, true,
    { begin = bools(get("begin_mask")), ["end"] = bools(get("end_mask")) })
  local sq = bools(get("squeeze_mask"))
  if sq then
    local s2 = {}
    for d, n in ipairs(shape) do if not sq[d] then s2[#s2 + 1] = n end end
    shape = s2
  end
  if #shape ~= #out.shape then return nil end
  return data, shape
end

function EVAL.range_1d(get)
  local s, e, st = get("start"), get("end"), get("step")
  if not s or not e or not st then return nil end
  local a, b, c = s.data[1], e.data[1], st.data[1]
  if c == 0 then return nil end
  local out = {}
  local v = a
  while (c > 0 and v < b) or (c < 0 and v > b) do
    out[#out + 1] = v
    v = v + c
    if #out > M.MAX_ELEMENTS then return nil end
  end
  return out, { #out }
end

function EVAL.transpose(get)
  local x, perm = get("x"), get("perm")
  if not x or not perm then return nil end
  local shape = {}
  for i, p in ipairs(perm.data) do shape[i] = x.shape[norm_axis(p, #x.shape)] end
  local st = strides(x.shape)
  local out = {}
  for i = 0, count(shape) - 1 do
    local idx = unflat(i, shape)
    local src = {}
    for d, p in ipairs(perm.data) do src[norm_axis(p, #x.shape)] = idx[d] end
    out[i + 1] = x.data[flat(src, st) + 1]
  end
  return out, shape
end

function EVAL.fill(get)
  local s, v = get("shape"), get("value")
  if not s then return nil end
  local out = {}
  local n = count(s.data)
  if n > M.MAX_ELEMENTS then return nil end
  for i = 1, n do out[i] = v and v.data[1] or 0.0 end
  return out, s.data
end

local function reducer(init, fn)
  return function(get, _, out)
    local x = get("x")
    if not x then return nil end
    local axes = get("axes")
    local rank = #x.shape
    local red = {}
    if axes then for _, a in ipairs(axes.data) do red[norm_axis(a, rank)] = true end
    else for d = 1, rank do red[d] = true end end
    local kshape = {}
    for d = 1, rank do kshape[d] = red[d] and 1 or x.shape[d] end
    local acc = {}
    local ks = strides(kshape)
    for i = 0, count(x.shape) - 1 do
      local idx = unflat(i, x.shape)
      for d = 1, rank do if red[d] then idx[d] = 0 end end
      local k = flat(idx, ks) + 1
      acc[k] = acc[k] == nil and fn(init, x.data[i + 1]) or fn(acc[k], x.data[i + 1])
    end
    for k = 1, count(kshape) do if acc[k] == nil then acc[k] = init end end
    return acc, out.shape
  end
end
EVAL.reduce_prod = reducer(1, function(a, b) return a * b end)
EVAL.reduce_sum = reducer(0, function(a, b) return a + b end)
EVAL.reduce_max = reducer(-math.huge, math.max)
EVAL.reduce_min = reducer(math.huge, math.min)
M.EVAL = EVAL

-- ---- the pass ----------------------------------------------------------------------------------------------
local function getter(f, op)
  return function(param)
    local n = f.arg_name(op, param)
    if not n then return nil end
    local c = f:const_data(n, M.MAX_INPUT)
    if not c then return nil end
    if type(c.data) ~= "table" then c.data = c.data:totable() end
    if #c.shape == 0 then c.shape = {} end
    return c
  end
end

local function all_const_inputs(f, op)
  if op.type == "shape" then return true end
  for _, p in ipairs(op.inputs) do
    for _, a in ipairs(p.args) do
      if a.name then
        local prod = f:producer(a.name)
        if not prod or prod.type ~= "const" then return false end
      end
    end
  end
  return true
end

local function try_fold(f, op, max)
  local ev = EVAL[op.type]
  if not ev or #op.outputs ~= 1 or #op.blocks > 0 or not all_const_inputs(f, op) then return false end
  local out = op.outputs[1]
  if out.kind ~= "tensor" or not mil.DATA_TYPE[out.dtype] or out.dtype == "string" then return false end
  local inferred = f:infer(op)
  local target = { dtype = out.dtype, shape = (inferred and inferred[1] and inferred[1].shape) or out.shape }
  local ok, data, shape = pcall(ev, getter(f, op), f, target, op)
  if not ok or not data or not shape then return false end
  if count(shape) ~= #data or #data > max then return false end
  for _, d in ipairs(shape) do if d < 0 then return false end end
  for i, x in ipairs(data) do data[i] = as_dtype(x, out.dtype) end
  local value = f:make_value(out.dtype, shape, data)
  local i = f:index_of(op)
  local name_attr = { key = "name" }
  local const = { type = "const", name = op.name, inputs = {}, blocks = {},
                  outputs = { { name = out.name, dtype = out.dtype, shape = shape, kind = "tensor" } },
                  attrs = { name_attr, { key = "val", value = value } } }
  f.fn.block.ops[i] = const
  f:touch()
  return true
end

function M.run(f, o)
  o = o or {}
  local max = o.max_elements or M.MAX_ELEMENTS
  local n, changed = 0, true
  while changed do
    changed = false
    for _, op in ipairs(f:ops()) do
      if op.type ~= "const" and try_fold(f, op, max) then
        n = n + 1
        changed = true
        if f.editor then f.editor:log(o.pass or "fold", f.name, op, "folded to a const " .. mil.count(f:type_of(op.outputs[1].name).shape) .. " element(s)") end
      end
    end
    if changed then M.propagate(f) end
  end
  return n
end

-- Fill unknown dimensions of op outputs from the inference rules (never contradicting a known one).
function M.propagate(f)
  local n = 0
  for _, op in ipairs(f:ops()) do
    local inferred = f:infer(op)
    for k, t in ipairs(inferred or {}) do
      local d = op.outputs[k]
      if d and d.kind == "tensor" and t.dtype == d.dtype and t.shape and #t.shape == #d.shape then
        for i, x in ipairs(t.shape) do
          if d.shape[i] < 0 and x >= 0 then d.shape[i] = x n = n + 1 end
        end
      end
    end
  end
  return n
end

return M
