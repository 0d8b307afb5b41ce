-- mlsh.model.constexpr_values — reading constexpr parameters: attributes (iOS16/17) or inputs
-- (iOS18), their values (Val): as the C decompressor's sources (Val:source(): the stored bytes,
-- borrowed from the weight file's mmap, or an Array), as arrays, or as one-byte codes (masks, for
-- describing). Used by the op evaluators (mlsh.model.constexpr_ops).
local core = require "mlsh.core"
local types = require "mlsh.types"

local M = {}

M.BITS = types.BITS -- the C core's dtype table
local UNSIGNED_CODES = { uint1 = true, uint2 = true, uint3 = true, uint4 = true, uint6 = true, uint8 = true }

-- The ops this module evaluates (every constexpr op of the iOS16..iOS18 opsets).
M.OPS = {
  constexpr_affine_dequantize = true, constexpr_cast = true, constexpr_lut_to_dense = true,
  constexpr_sparse_to_dense = true, constexpr_blockwise_shift_scale = true, constexpr_lut_to_sparse = true,
  constexpr_sparse_blockwise_shift_scale = true,
}
function M.is_constexpr(op) return op and type(op.type) == "string" and op.type:match("^constexpr_") ~= nil end

local function fail(op, fmt, ...)
  error(string.format("%s '%s': " .. fmt, op.type, op.name, ...), 0)
end

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do
    if d < 0 then return nil end
    n = n * d
  end
  return n
end
M.numel = numel

-- Row-major strides (1-based dims).
local function strides(shape)
  local s, acc = {}, 1
  for i = #shape, 1, -1 do
    s[i] = acc
    acc = acc * shape[i]
  end
  return s
end

-- ---- parameters --------------------------------------------------------------------------------------

-- {dtype, shape, value_msg = Value | ref = name, where = "attribute"|"input"} of parameter `name`,
-- or nil when the op has none.
function M.param(op, name)
  local v = op.msg:get("attributes", name)
  if v then
    local t = types.value_type(v.type)
    return { dtype = t.dtype, shape = t.shape or {}, value_msg = v, where = "attribute" }
  end
  for _, e in ipairs(op:inputs()) do
    if e.param == name then
      return { dtype = e.dtype, shape = e.shape or {}, value_msg = e.value_msg, ref = e.name, where = "input" }
    end
  end
  return nil
end

-- A stored Value as a source of core.constexpr (see core/lua_constexpr.c): s gets the weight
-- file's blob (read by C from the mmap), the immediate bytes, or an Array of the literal numbers.
local function value_source(root, v, s)
  if v:has("blobFileValue") then
    local bf = v.blobFileValue
    s.model, s.file, s.offset = root, bf.fileName, bf.offset
    return s
  end
  local tv = v.immediateValue and v.immediateValue.tensor
  local kind = tv and tv:which("floats")
  if kind == "bytes" then s.bytes = tv.bytes.values
  elseif kind then s.array, s.dtype = tv[kind]:array("values"), "fp32"
  else error("value holds no tensor", 0) end
  return s
end

-- A "value" is {dtype, shape, n, array = Array?, msg = Value?, root = Model?}: a stored Value
-- (read lazily) or a producer's output.
local Val = {}
Val.__index = Val

function Val:get_array()
  if not self.array then
    local a, err = core.constexpr.cast(value_source(self.root, self.msg, { dtype = self.dtype, shape = { self.n } }), "fp32")
    if not a then error(err, 0) end
    self.array = a
  end
  return self.array
end

-- The value as a source of core.constexpr: its stored bytes read as `dtype` (default: its own) and
-- `shape` (default: its own), or its Array (computed by a producer op).
function Val:source(dtype, shape)
  local s = { dtype = dtype or self.dtype, shape = shape or self.shape }
  if self.msg then return value_source(self.root, self.msg, s) end
  if dtype and dtype ~= self.dtype then
    s.bytes = self:get_array():encode(self.dtype)
  else
    s.array, s.dtype = self:get_array(), "fp32"
  end
  return s
end

local function new_val(t) return setmetatable(t, Val) end

-- ctx: {root = model userdata (weight files), cache = {[op] = outputs}, eval = the evaluator of a
-- producer op (mlsh.model.constexpr_ops.eval)}

-- The value of parameter `name` of op, following references to const and constexpr producers.
local function fetch(ctx, op, name, required)
  local p = M.param(op, name)
  if not p then
    if required then fail(op, "has no parameter '%s'", name) end
    return nil
  end
  if p.value_msg then
    return new_val{ dtype = p.dtype, shape = p.shape, n = numel(p.shape) or 1, msg = p.value_msg, root = ctx.root }
  end
  local producer = p.ref and op._producers and op._producers[p.ref]
  if not producer then fail(op, "parameter '%s' names '%s', which no op produces", name, tostring(p.ref)) end
  if producer.type == "const" then
    local v = producer.msg:get("attributes", "val")
    if not v then fail(op, "const '%s' has no val", producer.name) end
    local t = types.value_type(v.type)
    return new_val{ dtype = t.dtype, shape = t.shape or {}, n = numel(t.shape) or 1, msg = v, root = ctx.root }
  end
  if not M.is_constexpr(producer) then
    fail(op, "parameter '%s' comes from %s '%s', not from a constant", name, producer.type, producer.name)
  end
  local outs = ctx.eval(ctx, producer)
  for j, o in ipairs(producer.outputs) do
    if o.name == p.ref then return outs[j] end
  end
  fail(op, "parameter '%s': '%s' is not an output of '%s'", name, p.ref, producer.name)
end

local function scalar(ctx, op, name, default)
  local v = fetch(ctx, op, name)
  if not v then return default end
  local a = v:get_array()
  return #a > 0 and math.tointeger(a[1]) or (#a > 0 and a[1]) or default
end

-- An Array from core.constexpr, or the op's error; shaped like the output when the sizes agree.
local function shaped(op, a, err, shape)
  if not a then fail(op, "%s", err) end
  if shape and #shape > 0 and #shape <= 8 and numel(shape) == #a then pcall(a.reshape, a, shape) end
  return a
end

local function out_type(op, j)
  local o = op.outputs[j or 1]
  if not o then fail(op, "has no output") end
  local n = numel(o.shape)
  if not n then fail(op, "output '%s' has an unknown shape", o.name) end
  return o.dtype, o.shape, n
end

M.UNSIGNED_CODES = UNSIGNED_CODES
M.Val = Val
M.fail = fail
M.fetch = fetch
M.shaped = shaped
M.new_val = new_val
M.out_type = out_type
M.scalar = scalar
M.strides = strides
return M
