-- mlsh.model.constexpr_values — reading constexpr parameters: attributes (iOS16/17) or inputs
-- (iOS18), their values as arrays or sub-byte codes (Val), and the block layouts of scales and
-- LUTs. Used by the op evaluators (mlsh.model.constexpr_ops).
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

-- Raw stored bytes of a Value (blob data or immediate bytes).
local function value_bytes(root, v)
  if v:has("blobFileValue") then
    local bf = v.blobFileValue
    local b, err = root:_blob_bytes(bf.fileName, bf.offset)
    if not b then error(err, 0) end
    return b
  end
  local tv = v.immediateValue and v.immediateValue.tensor
  local kind = tv and tv:which("floats")
  if kind == "bytes" then return tv.bytes.values end
  return nil
end

-- A Value as an Array of n elements of dtype.
local function value_array(root, v, dtype, n)
  if v:has("blobFileValue") then
    local bf = v.blobFileValue
    local a, err = root:_blob_values(bf.fileName, bf.offset, n, dtype)
    if not a then error(err, 0) end
    return a
  end
  local tv = v.immediateValue and v.immediateValue.tensor
  local kind = tv and tv:which("floats")
  if kind == "bytes" then return core.array.decode(tv.bytes.values, dtype, n) end
  if kind then return tv[kind]:array("values") end
  error("value holds no tensor", 0)
end

-- A "value" is {dtype, shape, n, array = Array?, codes = string?} where codes hold one byte per
-- element (unsigned code types and masks), filled lazily from the stored Value.
local Val = {}
Val.__index = Val

function Val:get_array()
  if not self.array then
    if self.codes then self.array = core.array.decode(self.codes, "uint8", self.n)
    else self.array = value_array(self.root, self.msg, self.dtype, self.n) end
  end
  return self.array
end

function Val:get_codes()
  if not self.codes then
    if self.msg and UNSIGNED_CODES[self.dtype] then
      local bytes = value_bytes(self.root, self.msg)
      local bits = M.BITS[self.dtype]
      if bytes and bits == 8 then
        if #bytes < self.n then error(string.format("%s data holds %d bytes, needs %d", self.dtype, #bytes, self.n), 0) end
        self.codes = #bytes == self.n and bytes or bytes:sub(1, self.n)
      elseif bytes then
        self.codes = core.compress.unpack(bytes, bits, self.n)
      end
    end
    if not self.codes then
      local a = self:get_array()
      local s = a:stats()
      if s.count > 0 and (s.min < 0 or s.max > 255) then error("values outside 0..255 used as codes", 0) end
      self.codes = a:encode("uint8")
    end
  end
  return self.codes
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

-- Round to the output dtype, as Core ML materialises it.
local function finish(a, dtype, shape)
  if dtype == "fp16" then a = core.array.decode(a:encode("fp16"), "fp16", #a) end
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

-- ---- block layouts ------------------------------------------------------------------------------------
-- A parameter of shape pshape (same rank as shape, each dim dividing it) applies per block. Blocks
-- are visited as "runs": maximal stretches of consecutive elements (row-major) sharing one block.
-- run(r) -> 0-based first element, length, 0-based flat index into the parameter.
local function block_runs(op, shape, pshape, what)
  local rank = #shape
  if #pshape ~= rank then fail(op, "%s has rank %d, the data rank %d", what, #pshape, rank) end
  local bsz = {}
  local last = 0
  for d = 1, rank do
    local g = pshape[d]
    if g < 1 or shape[d] % g ~= 0 then
      fail(op, "%s dimension %d (%d) does not divide the data dimension (%d)", what, d - 1, g, shape[d])
    end
    bsz[d] = shape[d] // g
    if g > 1 then last = d end
  end
  local n = numel(shape)
  if last == 0 then return 1, function() return 0, n, 0 end end
  local run = bsz[last]
  for d = last + 1, rank do run = run * shape[d] end
  local st, pst = strides(shape), strides(pshape)
  local nruns = n // run
  return nruns, function(r)
    local i0 = r * run
    local rem, p = i0, 0
    for d = 1, last do
      local idx = rem // st[d]
      rem = rem % st[d]
      p = p + (idx // bsz[d]) * pst[d]
    end
    return i0, run, p
  end
end
M.block_runs = block_runs

-- gsub maps from one-byte codes to the 4-byte float32 encoding of LUT entries.
M.UNSIGNED_CODES = UNSIGNED_CODES
M.Val = Val
M.fail = fail
M.fetch = fetch
M.finish = finish
M.new_val = new_val
M.out_type = out_type
M.scalar = scalar
M.strides = strides
M.value_bytes = value_bytes
return M
