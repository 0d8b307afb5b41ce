-- mlsh.model.constexpr — decompression of Core ML compressed weights: evaluates constexpr_* ops (and
-- chains of them) to dense mlsh.Array values, exactly as Core ML computes them (reference:
-- coremltools' ops/defs/iOS16/constexpr_ops.py and iOS18/compression.py), and describes what
-- compression a chain is.
--
--   local cx = require "mlsh.model.constexpr"
--   local a = cx.dense(m, op)          -- op: an Op of m:ops() (the final op of a chain); Array in the
--                                      -- op's output dtype (fp16 outputs are rounded to fp16)
--   local outs = cx.eval(m, op)        -- every output: {dtype, shape, array = Array} (masks as codes)
--   local d = cx.describe(m, op)       -- {kind = "palettized"|"quantized"|"sparse"|"joint", ...}
--   cx.param(op, name)                 -- {dtype, shape, value_msg | ref} of a parameter
--   cx.chain(op)                       -- the constexpr ops feeding op, producers first, op last
--
-- Both serialisations are read: iOS16/iOS17 ops keep their parameters as attributes (packed uint8
-- indices and masks plus a `shape`), iOS18 ops take them as inputs (typed sub-byte tensors, inputs
-- that name another constexpr's output). Sub-byte data is LSB-first, row-major (SubByteTypes.cpp).
--
-- Speed: the element loops are plain Lua, except LUT lookups and 0/1 masks, which run through
-- string.gsub/find over one-byte-per-code strings (C speed): palettized weights decompress at tens
-- of millions of elements per second, affine ones at a few million.
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

-- ctx: {root = model userdata (weight files), cache = {[op] = outputs}}
local eval

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
  local outs = eval(ctx, producer)
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
local CHARS = {}
for k = 0, 255 do CHARS[k] = string.char(k) end

local function lut_map(lut, base, size)
  local map = {}
  for k = 0, size - 1 do map[CHARS[k]] = string.pack("<f", lut[base + k + 1]) end
  return map
end

-- codes (one byte each) through one LUT per run -> float32 bytes. A code with no LUT entry is left
-- as one byte by gsub, which the length check catches.
local function lut_lookup(op, codes, lut, groups_of_run, nruns, size)
  local maps, parts = {}, {}
  for r = 0, nruns - 1 do
    local i0, len, g = groups_of_run(r)
    local map = maps[g]
    if not map then
      map = lut_map(lut, g * size, size)
      maps[g] = map
    end
    local piece = (codes:sub(i0 + 1, i0 + len):gsub(".", map))
    if #piece ~= 4 * len then
      for i = i0 + 1, i0 + len do
        if codes:byte(i) >= size then fail(op, "index %d is outside the LUT of %d entries", codes:byte(i), size) end
      end
    end
    parts[#parts + 1] = piece
  end
  return table.concat(parts)
end

-- Raw integer codes of a quantized tensor, one byte each (two's complement for signed types), and
-- the offset that turns a byte into its value; nil when the data is not stored as codes.
local CODE_TYPES = { int8 = true, uint8 = true, int4 = true, uint4 = true, uint1 = true, uint2 = true, uint3 = true, uint6 = true }
local function raw_codes(v)
  local bits = CODE_TYPES[v.dtype] and M.BITS[v.dtype]
  if not bits then return nil end
  if v.codes then return v.codes, bits, v.dtype:sub(1, 1) == "i" end
  if not v.msg then return nil end
  local bytes = value_bytes(v.root, v.msg)
  if not bytes or #bytes * 8 < v.n * bits then return nil end
  local c = bits == 8 and (#bytes == v.n and bytes or bytes:sub(1, v.n)) or core.compress.unpack(bytes, bits, v.n)
  return c, bits, v.dtype:sub(1, 1) == "i"
end

-- scale * (code - offset) per run of equal (scale, offset), as float32 bytes. Long runs go through
-- a gsub map of every code (C speed); short ones through string.byte / string.pack.
local PACK_FMT = {}
local function affine_bytes(codes, bits, signed, nruns, run, s_of, o_of)
  local full, half = 1 << bits, 1 << (bits - 1)
  local ncodes = 1 << bits
  local parts = {}
  for r = 0, nruns - 1 do
    local i0, len, p = run(r)
    local sc, o = s_of(p), o_of(p)
    if len >= 256 then
      local map = {}
      for c = 0, ncodes - 1 do
        local v = (signed and c >= half) and (c - full) or c
        map[CHARS[c]] = string.pack("<f", sc * (v - o))
      end
      parts[#parts + 1] = (codes:sub(i0 + 1, i0 + len):gsub(".", map))
    else
      local vals = { codes:byte(i0 + 1, i0 + len) }
      for t = 1, len do
        local c = vals[t]
        if signed and c >= half then c = c - full end
        vals[t] = sc * (c - o)
      end
      local fmt = PACK_FMT[len]
      if not fmt then
        fmt = "<" .. string.rep("f", len)
        PACK_FMT[len] = fmt
      end
      parts[#parts + 1] = string.pack(fmt, table.unpack(vals))
    end
  end
  return table.concat(parts)
end

-- ---- the ops ------------------------------------------------------------------------------------------
local OPS = {}

-- iOS16: out = scale * (quantized_data - zero_point), scale/zero_point scalar or along `axis`.
function OPS.constexpr_affine_dequantize(ctx, op)
  local dtype, shape, n = out_type(op)
  local qv = fetch(ctx, op, "quantized_data", true)
  local q = qv:get_array()
  local zp = fetch(ctx, op, "zero_point", true):get_array()
  local sc = fetch(ctx, op, "scale", true):get_array()
  local axis = scalar(ctx, op, "axis", 0)
  if axis < 0 then axis = axis + #shape end
  if #q ~= n then fail(op, "quantized_data holds %d values, the output %d", #q, n) end
  local pshape = {}
  for d = 1, #shape do pshape[d] = 1 end
  local ns = math.max(#sc, #zp)
  if ns > 1 then
    if axis < 0 or axis >= #shape or shape[axis + 1] ~= ns then
      fail(op, "%d scales/zero points do not match axis %d of shape [%s]", ns, axis, table.concat(shape, ","))
    end
    pshape[axis + 1] = ns
  end
  for _, v in ipairs({ sc, zp }) do
    if #v ~= 1 and #v ~= ns then fail(op, "scale and zero_point lengths differ (%d, %d)", #sc, #zp) end
  end
  local nruns, run = block_runs(op, shape, pshape, "scale")
  local s_of = function(p) return sc[#sc == 1 and 1 or p + 1] end
  local o_of = function(p) return zp[#zp == 1 and 1 or p + 1] end
  local codes, bits, signed = raw_codes(qv)
  if codes and #codes == n then
    return { finish(core.array.decode(affine_bytes(codes, bits, signed, nruns, run, s_of, o_of), "fp32", n), dtype, shape) }
  end
  local out = core.array.new(n)
  for r = 0, nruns - 1 do
    local i0, len, p = run(r)
    local s, z = s_of(p), o_of(p)
    for i = i0 + 1, i0 + len do out[i] = s * (q[i] - z) end
  end
  return { finish(out, dtype, shape) }
end

function OPS.constexpr_cast(ctx, op)
  local dtype, shape = out_type(op)
  local a = fetch(ctx, op, "source_val", true):get_array()
  return { finish(core.array.decode(a:encode("fp32"), "fp32", #a), dtype, shape) }
end

-- Vector LUTs (VECTOR_SIZE V > 1): index i of the indices tensor (shape ishape) expands to V
-- consecutive values along vector_axis `va` (1-based) of the output. Calls put(o, i, v) for every
-- output position o (1-based) with its index position i (1-based) and component v (0-based).
local function vector_positions(ishape, va, V, put)
  local K = #ishape
  local oshape = { table.unpack(ishape) }
  oshape[va] = oshape[va] * V
  local ost = strides(oshape)
  local idx = {}
  for d = 1, K do idx[d] = 0 end
  for i = 1, numel(ishape) do
    local obase = 0
    for d = 1, K do obase = obase + (d == va and idx[d] * V or idx[d]) * ost[d] end
    for v = 0, V - 1 do put(obase + v * ost[va] + 1, i, v, idx) end
    for d = K, 1, -1 do -- odometer
      idx[d] = idx[d] + 1
      if idx[d] < ishape[d] then break end
      idx[d] = 0
    end
  end
  return oshape
end

local function vector_lookup(op, codes, ishape, lut, lshape, va)
  local K = #ishape
  local size, V = lshape[K + 1], lshape[K + 2]
  local bsz = {}
  for d = 1, K do
    if lshape[d] < 1 or ishape[d] % lshape[d] ~= 0 then fail(op, "lut dimension %d does not divide indices", d - 1) end
    bsz[d] = ishape[d] // lshape[d]
  end
  local lst = strides({ table.unpack(lshape, 1, K) })
  local out = core.array.new(numel(ishape) * V)
  local oshape = vector_positions(ishape, va, V, function(o, i, v, idx)
    local g = 0
    for d = 1, K do g = g + (idx[d] // bsz[d]) * lst[d] end
    local c = codes:byte(i)
    if c >= size then fail(op, "index %d is outside the LUT of %d entries", c, size) end
    out[o] = lut[(g * size + c) * V + v + 1]
  end)
  return out, oshape
end

-- Dense lookup: {array} for the indices tensor (iOS18 layout).
local function lut_dense(ctx, op, codes, ishape, lutv, vaxis_name)
  local lshape = lutv.shape
  local K = #ishape
  if #lshape ~= K + 2 then fail(op, "lut has rank %d, indices rank %d (needs rank + 2)", #lshape, K) end
  local size, V = lshape[K + 1], lshape[K + 2]
  local lut = lutv:get_array()
  if V == 1 then
    local gshape = { table.unpack(lshape, 1, K) }
    local nruns, run = block_runs(op, ishape, gshape, "lut")
    local bytes = lut_lookup(op, codes, lut, run, nruns, size)
    return core.array.decode(bytes, "fp32", numel(ishape))
  end
  local va = scalar(ctx, op, vaxis_name or "vector_axis", nil)
  if not va then fail(op, "vector LUT (vector size %d) without vector_axis", V) end
  if va < 0 then va = va + K end
  return vector_lookup(op, codes, ishape, lut, lshape, va + 1)
end

function OPS.constexpr_lut_to_dense(ctx, op)
  local dtype, shape, n = out_type(op)
  local lutv = fetch(ctx, op, "lut", true)
  local iv = fetch(ctx, op, "indices", true)
  if #lutv.shape <= 1 then
    -- iOS16: 1-D LUT of 2^nbits entries, indices packed into uint8 bytes, output shape given.
    local size = lutv.n
    local nbits = ({ [2] = 1, [4] = 2, [16] = 4, [64] = 6, [256] = 8, [8] = 3 })[size]
    if not nbits then fail(op, "LUT of %d entries (iOS16 LUTs have 2, 4, 16, 64 or 256)", size) end
    local bytes = iv.msg and value_bytes(ctx.root, iv.msg) or iv:get_array():encode("uint8")
    if #bytes * 8 < n * nbits then fail(op, "indices hold %d bytes, %d %d-bit indices need %d", #bytes, n, nbits, (n * nbits + 7) // 8) end
    local codes = core.compress.unpack(bytes, nbits, n)
    local out = core.array.decode(lut_lookup(op, codes, lutv:get_array(), function() return 0, n, 0 end, 1, size), "fp32", n)
    return { finish(out, dtype, shape) }
  end
  local bits = M.BITS[iv.dtype]
  if not bits or not UNSIGNED_CODES[iv.dtype] then fail(op, "indices of type %s (expected uint1..uint8)", tostring(iv.dtype)) end
  local out = lut_dense(ctx, op, iv:get_codes(), iv.shape, lutv)
  if #out ~= n then fail(op, "decompresses to %d values, the output has %d", #out, n) end
  return { finish(out, dtype, shape) }
end

-- 0/1 codes of a mask (iOS16: packed uint8 bytes; iOS18: uint1 tensor or a producer's output).
local function mask_codes(ctx, op, mv, n)
  if mv.dtype == "uint8" and #mv.shape <= 1 and mv.msg and mv.n ~= n then
    local bytes = value_bytes(ctx.root, mv.msg)
    if #bytes * 8 < n then fail(op, "mask holds %d bytes, %d elements need %d", #bytes, n, (n + 7) // 8) end
    return core.compress.unpack(bytes, 1, n)
  end
  local c = mv:get_codes()
  if #c ~= n then fail(op, "mask has %d elements, the output %d", #c, n) end
  -- uint1 codes are 0/1 already; a mask stored one element per byte may hold any nonzero value
  if mv.dtype ~= "uint1" and c:find("[\2-\255]") then c = c:gsub("[\2-\255]", "\1") end
  return c
end

-- Dense Array from a 0/1 mask string and the nonzero values (an Array, in order). The output
-- starts zeroed; only the runs of ones are written, and no per-element strings are made.
local count_ones
local function scatter(op, mask, nz, n)
  local ones = count_ones(mask)
  if ones ~= #nz then fail(op, "mask selects %d elements, nonzero_data holds %d", ones, #nz) end
  local out = core.array.new(n)
  local pos, j, find = 1, 0, string.find
  while true do
    local s, e = find(mask, "\1+", pos)
    if not s then break end
    for i = s, e do
      j = j + 1
      out[i] = nz[j]
    end
    pos = e + 1
  end
  return out
end

-- Ones in a 0/1 string: summed by the Array statistics in C, a chunk at a time.
local COUNT_CHUNK = 1 << 20
function count_ones(mask)
  local n = #mask
  if n < 4096 then
    local _, k = mask:gsub("\1", "")
    return k
  end
  local k = 0
  for i = 1, n, COUNT_CHUNK do
    local piece = mask:sub(i, i + COUNT_CHUNK - 1)
    k = k + core.array.decode(piece, "uint8", #piece):stats().sum
  end
  return math.tointeger(k) or k
end

function OPS.constexpr_sparse_to_dense(ctx, op)
  local dtype, shape, n = out_type(op)
  local mask = mask_codes(ctx, op, fetch(ctx, op, "mask", true), n)
  local nz = fetch(ctx, op, "nonzero_data", true):get_array()
  return { finish(scatter(op, mask, nz, n), dtype, shape) }
end

-- iOS18: out = scale[block] * (data - offset[block]).
local function shift_scale(op, data, shape, sc, off, sshape, positions)
  local n = numel(shape)
  if off and #off ~= #sc then fail(op, "offset has %d values, scale %d", #off, #sc) end
  local nruns, run = block_runs(op, shape, sshape, "scale")
  if positions then
    -- sparse: data holds the values of the mask's nonzero positions, in order
    local out = core.array.new(#data)
    local j = 0
    for r = 0, nruns - 1 do
      local i0, len, p = run(r)
      local k = count_ones(positions:sub(i0 + 1, i0 + len))
      local s, o = sc[p + 1], off and off[p + 1] or 0
      for i = j + 1, j + k do out[i] = s * (data[i] - o) end
      j = j + k
    end
    if j ~= #data then fail(op, "mask selects %d elements, nonzero_data holds %d", j, #data) end
    return out
  end
  if #data ~= n then fail(op, "data holds %d values, the output %d", #data, n) end
  local out = core.array.new(n)
  for r = 0, nruns - 1 do
    local i0, len, p = run(r)
    local s, o = sc[p + 1], off and off[p + 1] or 0
    if o == 0 then
      for i = i0 + 1, i0 + len do out[i] = s * data[i] end
    else
      for i = i0 + 1, i0 + len do out[i] = s * (data[i] - o) end
    end
  end
  return out
end

function OPS.constexpr_blockwise_shift_scale(ctx, op)
  local dtype, shape = out_type(op)
  local dv = fetch(ctx, op, "data", true)
  local sv = fetch(ctx, op, "scale", true)
  local ov = fetch(ctx, op, "offset")
  local sc, off = sv:get_array(), ov and ov:get_array()
  local codes, bits, signed = raw_codes(dv)
  local n = numel(dv.shape)
  if codes and #codes == n then
    if off and #off ~= #sc then fail(op, "offset has %d values, scale %d", #off, #sc) end
    local nruns, run = block_runs(op, dv.shape, sv.shape, "scale")
    local bytes = affine_bytes(codes, bits, signed, nruns, run, function(p) return sc[p + 1] end,
      function(p) return off and off[p + 1] or 0 end)
    return { finish(core.array.decode(bytes, "fp32", n), dtype, shape) }
  end
  local out = shift_scale(op, dv:get_array(), dv.shape, sc, off, sv.shape)
  return { finish(out, dtype, shape) }
end

-- iOS18: (mask, nonzero values): the LUT of each nonzero index is chosen by its dense position.
function OPS.constexpr_lut_to_sparse(ctx, op)
  local mdtype, mshape = out_type(op, 1)
  local ndtype = out_type(op, 2)
  local mv = fetch(ctx, op, "indices_mask", true)
  local nzv = fetch(ctx, op, "indices_nonzero_data", true)
  local lutv = fetch(ctx, op, "lut", true)
  local ishape = mv.shape
  local K, n = #ishape, mv.n
  local mask = mask_codes(ctx, op, mv, n)
  local codes = nzv:get_codes()
  local lshape = lutv.shape
  if #lshape ~= K + 2 then fail(op, "lut has rank %d, indices_mask rank %d (needs rank + 2)", #lshape, K) end
  local size, V = lshape[K + 1], lshape[K + 2]
  local lut = lutv:get_array()
  if count_ones(mask) ~= #codes then fail(op, "indices_mask selects %d elements, indices_nonzero_data holds %d", count_ones(mask), #codes) end
  if V == 1 then
    local nruns, run = block_runs(op, ishape, { table.unpack(lshape, 1, K) }, "lut")
    local j = 0
    local function runs_nz(r) -- the run of nonzero codes inside dense run r
      local i0, len, g = run(r)
      local k = count_ones(mask:sub(i0 + 1, i0 + len))
      local s = j
      j = j + k
      return s, k, g
    end
    local bytes = lut_lookup(op, codes, lut, runs_nz, nruns, size)
    local out_nz = finish(core.array.decode(bytes, "fp32", #codes), ndtype)
    return { { codes = mask, dtype = mdtype, shape = mshape, n = n }, out_nz }
  end
  -- vector LUT: expand to a full index tensor, look up densely, keep the (expanded) mask positions
  local parts, j = {}, 0
  for i = 1, n do
    if mask:byte(i) == 1 then
      j = j + 1
      parts[i] = codes:sub(j, j)
    else
      parts[i] = "\0"
    end
  end
  local dense, oshape = lut_dense(ctx, op, table.concat(parts), ishape, lutv)
  local va = scalar(ctx, op, "vector_axis", 0)
  if va < 0 then va = va + K end
  local em = {}
  vector_positions(ishape, va + 1, V, function(o, i) em[o] = mask:sub(i, i) end)
  local ecodes = table.concat(em)
  local vals = {}
  for i = 1, #ecodes do
    if ecodes:byte(i) == 1 then vals[#vals + 1] = dense[i] end
  end
  return { { codes = ecodes, dtype = mdtype, shape = oshape, n = #ecodes }, finish(core.array.new(vals), ndtype) }
end

-- iOS18: (mask, dequantized nonzero values), each with the scale/offset of its dense position.
function OPS.constexpr_sparse_blockwise_shift_scale(ctx, op)
  local mdtype, mshape = out_type(op, 1)
  local ndtype = out_type(op, 2)
  local mv = fetch(ctx, op, "data_mask", true)
  local nzv = fetch(ctx, op, "nonzero_data", true)
  local sv = fetch(ctx, op, "scale", true)
  local ov = fetch(ctx, op, "offset")
  local mask = mask_codes(ctx, op, mv, mv.n)
  local out = shift_scale(op, nzv:get_array(), mv.shape, sv:get_array(), ov and ov:get_array(), sv.shape, mask)
  return { { codes = mask, dtype = mdtype, shape = mshape, n = mv.n }, finish(out, ndtype) }
end

-- Outputs of a constexpr op: a list of Val (array and/or codes), cached per ctx.
eval = function(ctx, op)
  ctx.cache = ctx.cache or {}
  local hit = ctx.cache[op]
  if hit then return hit end
  local f = OPS[op.type]
  if not f then fail(op, "is not a constexpr op mlsh can evaluate") end
  local raw = f(ctx, op)
  local outs = {}
  for j, o in ipairs(op.outputs) do
    local r = raw[j]
    if getmetatable(r) == nil and type(r) == "table" then
      outs[j] = new_val{ dtype = r.dtype or o.dtype, shape = r.shape or o.shape, n = r.n, codes = r.codes, array = r.array }
    else
      outs[j] = new_val{ dtype = o.dtype, shape = o.shape, n = r and #r or 0, array = r }
    end
  end
  ctx.cache[op] = outs
  return outs
end

local function context(m, cache) return { root = m, cache = cache or {} } end
M.context = context

-- Every output of op: list of {dtype, shape, n, array?, codes?}; :get_array() on each.
function M.eval(m, op, cache) return eval(context(m, cache), op) end

-- The dense values of op's first output (an Array, shaped).
function M.dense(m, op, cache)
  local outs = eval(context(m, cache), op)
  local a = outs[1]:get_array()
  local shape = op.outputs[1].shape
  if shape and #shape > 0 and #shape <= 8 and numel(shape) == #a then pcall(a.reshape, a, shape) end
  return a
end

-- ---- chains and descriptions --------------------------------------------------------------------------

local function producers_of(op)
  local list = {}
  for _, e in ipairs(op:inputs()) do
    local p = e.name and op._producers and op._producers[e.name]
    if p and (M.is_constexpr(p) or p.type == "const") then list[#list + 1] = { param = e.param, op = p } end
  end
  return list
end
M.producers_of = producers_of

-- The constexpr ops (and consts) feeding op, producers first, op last.
function M.chain(op)
  local out, seen = {}, {}
  local function visit(o)
    if seen[o] then return end
    seen[o] = true
    for _, p in ipairs(producers_of(o)) do
      if M.is_constexpr(p.op) then visit(p.op) end
    end
    out[#out + 1] = o
  end
  visit(op)
  return out
end

local function producer(op, name)
  local p = M.param(op, name)
  local q = p and p.ref and op._producers and op._producers[p.ref]
  return q
end

-- Groups and group size of a LUT (rank K+2 layout): granularity, axis, group_size.
local function lut_layout(ishape, lshape)
  local K = #ishape
  if #lshape <= 1 then return "per_tensor" end
  local axes = {}
  for d = 1, K do
    if (lshape[d] or 1) > 1 then axes[#axes + 1] = d end
  end
  if #axes == 0 then return "per_tensor" end
  if #axes == 1 then
    local d = axes[1]
    local gs = ishape[d] // lshape[d]
    return gs == 1 and "per_channel" or "per_grouped_channel", d - 1, gs
  end
  return "per_block", nil, nil
end

local function scale_layout(dshape, sshape)
  local axes = {}
  for d = 1, #dshape do
    if (sshape[d] or 1) > 1 then axes[#axes + 1] = d end
  end
  if #axes == 0 then return "per_tensor" end
  local block, axis, bsz = nil, nil, nil
  for _, d in ipairs(axes) do
    if sshape[d] == dshape[d] then axis = axis or (d - 1)
    else block, bsz = d - 1, dshape[d] // sshape[d] end
  end
  if block then return "per_block", axis, bsz, block end
  if #axes == 1 then return "per_channel", axes[1] - 1 end
  return "per_block", axis, 1
end

local function nbits_of(lutv_shape, idx_dtype)
  local size = lutv_shape[#lutv_shape <= 1 and 1 or #lutv_shape - 1]
  if idx_dtype and UNSIGNED_CODES[idx_dtype] and #lutv_shape > 1 then return M.BITS[idx_dtype] end
  local b = 0
  while (1 << b) < (size or 1) do b = b + 1 end
  return b
end

-- Zero-point values -> symmetric? (signed: none or all 0; unsigned: all 2^(n-1) - 1)
local function symmetric_of(dtype, off)
  if not off then return true end
  local bits = M.BITS[dtype] or 8
  local want = dtype:match("^u") and ((1 << (bits - 1)) - 1) or 0
  local s = off:stats()
  return s.min == want and s.max == want
end

-- n:m structure of a 0/1 mask string over shape: {n, m, dim} or nil. Checks groups of m
-- consecutive elements along dim 1 (coremltools' default) then dim 0, for m = 2..32.
M.NM_CANDIDATES = { 2, 4, 8, 16, 32 }
function M.detect_n_m(mask, shape)
  local rank = #shape
  if rank < 2 then return nil end
  local n = #mask
  local zeros = n - count_ones(mask)
  for _, dim in ipairs({ 1, 0 }) do
    local C = shape[dim + 1]
    local st = strides(shape)
    local stride = st[dim + 1]
    for _, m in ipairs(M.NM_CANDIDATES) do
      if C % m == 0 and m <= C // 2 and (zeros * m) % n == 0 then
        local nz = zeros * m // n
        if nz > 0 and nz < m then
          local ok = true
          -- visit groups: every element with (index along dim) % m == 0 starts one
          local outer = n // (C * stride)
          for o = 0, outer - 1 do
            if not ok then break end
            for c0 = 0, C - 1, m do
              if not ok then break end
              for inner = 0, stride - 1 do
                local base = o * C * stride + c0 * stride + inner
                local z = 0
                for k = 0, m - 1 do
                  if mask:byte(base + k * stride + 1) == 0 then z = z + 1 end
                end
                if z ~= nz then ok = false break end
              end
            end
          end
          if ok then return { n = nz, m = m, dim = dim } end
        end
      end
    end
  end
  return nil
end

local SPEC_OF = { attribute = 7, input = 9 }

-- What compression op (the final op of a chain) is: a table with kind and the parameters of each
-- stage, plus min_spec (7 for the iOS16 forms, 9 for the iOS18 ones) and chain (op types).
--   palettized {nbits, granularity, group_size, axis, vector_size, per_channel_scale, lut_dtype}
--   quantized  {dtype, symmetric, granularity, axis, block_size}
--   sparse     {sparsity, nnz, n_m = {n, m, dim}?}
--   joint      {stages = {sparse, palettized | quantized}, sparsity, ...}
-- `m` (optional) allows reading values (sparsity, symmetric, n:m); without it those stay nil.
function M.describe(m, op, cache)
  local chain = M.chain(op)
  local types_list = {}
  local min_spec = 7
  for i, o in ipairs(chain) do
    types_list[i] = o.type
    local has_inputs = false
    for _, e in ipairs(o:inputs()) do if e.param ~= "name" then has_inputs = true end end
    if has_inputs or o.type == "constexpr_blockwise_shift_scale" or o.type == "constexpr_lut_to_sparse"
        or o.type == "constexpr_sparse_blockwise_shift_scale" then min_spec = 9 end
  end
  local ctx = m and context(m, cache) or nil
  local out_shape = op.outputs[1] and op.outputs[1].shape or {}

  local function palettized(lop)
    local lp = M.param(lop, "lut") or { shape = {} }
    local ip = M.param(lop, "indices") or M.param(lop, "indices_mask") or { shape = out_shape }
    local ishape = (#lp.shape <= 1) and out_shape or ip.shape
    local idx_dtype = (M.param(lop, "indices_nonzero_data") or ip).dtype
    local g, axis, gs = lut_layout(ishape, lp.shape)
    local V = #lp.shape > 1 and lp.shape[#lp.shape] or 1
    local d = { kind = "palettized", nbits = nbits_of(lp.shape, idx_dtype), granularity = g, axis = axis,
                group_size = gs, vector_size = V, per_channel_scale = false, lut_dtype = lp.dtype }
    local lq = producer(lop, "lut")
    if lq and lq.type == "constexpr_blockwise_shift_scale" then
      local dp = M.param(lq, "data") or {}
      d.lut_quantized = { dtype = dp.dtype }
      if ctx then
        local ov = fetch(ctx, lq, "offset")
        d.lut_quantized.symmetric = symmetric_of(dp.dtype or "int8", ov and ov:get_array())
      end
    end
    return d
  end
  local function quantized(qop)
    local dp = M.param(qop, "quantized_data") or M.param(qop, "data") or M.param(qop, "nonzero_data") or {}
    local sp = M.param(qop, "scale") or { shape = {} }
    local d = { kind = "quantized", dtype = dp.dtype }
    if qop.type == "constexpr_affine_dequantize" then
      local ns = numel(sp.shape) or 1
      d.granularity = ns > 1 and "per_channel" or "per_tensor"
      d.axis = ns > 1 and (ctx and scalar(ctx, qop, "axis", 0) or qop:attr("axis")) or nil
      if ctx then d.symmetric = symmetric_of(dp.dtype or "int8", fetch(ctx, qop, "zero_point", true):get_array()) end
    else
      local dshape = (qop.type == "constexpr_sparse_blockwise_shift_scale") and (M.param(qop, "data_mask") or {}).shape or dp.shape
      local g, axis, bsz, baxis = scale_layout(dshape or {}, sp.shape)
      d.granularity, d.axis, d.block_size, d.block_axis = g, axis, bsz, baxis
      if ctx then
        local ov = fetch(ctx, qop, "offset")
        d.symmetric = symmetric_of(dp.dtype or "int8", ov and ov:get_array())
      else
        d.symmetric = M.param(qop, "offset") == nil or nil
      end
    end
    return d
  end
  local function sparse(sop)
    local d = { kind = "sparse" }
    if ctx then
      local n = numel(out_shape) or 0
      local mv = fetch(ctx, sop, "mask", true)
      local mask = mask_codes(ctx, sop, mv, n)
      d.nnz = count_ones(mask)
      d.sparsity = n > 0 and (n - d.nnz) / n or 0
      d.n_m = M.detect_n_m(mask, out_shape)
    end
    return d
  end

  local d
  local t = op.type
  if t == "constexpr_lut_to_dense" then
    d = palettized(op)
  elseif t == "constexpr_affine_dequantize" then
    d = quantized(op)
  elseif t == "constexpr_blockwise_shift_scale" then
    local from = producer(op, "data")
    if from and from.type == "constexpr_lut_to_dense" then
      d = palettized(from)
      d.per_channel_scale = true
    else
      d = quantized(op)
    end
  elseif t == "constexpr_sparse_to_dense" then
    d = sparse(op)
    local from = producer(op, "nonzero_data")
    local inner
    if from and from.type == "constexpr_lut_to_sparse" then inner = palettized(from)
    elseif from and from.type == "constexpr_sparse_blockwise_shift_scale" then inner = quantized(from) end
    if inner then
      d = { kind = "joint", stages = { d, inner }, sparsity = d.sparsity, nnz = d.nnz, n_m = d.n_m }
    end
  elseif t == "constexpr_cast" then
    d = { kind = "cast" }
  else
    d = { kind = "unknown" }
  end
  d.chain = types_list
  d.min_spec = min_spec
  if d.kind == "palettized" and (d.granularity ~= "per_tensor" or d.nbits == 3 or d.per_channel_scale or (d.vector_size or 1) > 1) then
    d.min_spec = 9
  end
  d.form = SPEC_OF.input == d.min_spec and "iOS18" or "iOS16"
  return d
end

return M
