-- mlsh.model.constexpr_ops — the evaluators of the constexpr_* ops (one function per op type in
-- OPS), the parameter readers they share and eval(ctx, op), cached per ctx. The public API over
-- them is mlsh.model.constexpr (eval, dense, chain, describe).
local core = require "mlsh.core"

local M = {}
local values = require "mlsh.model.constexpr_values"
M.BITS, M.OPS, M.is_constexpr, M.numel, M.param, M.block_runs =
  values.BITS, values.OPS, values.is_constexpr, values.numel, values.param, values.block_runs
local UNSIGNED_CODES, block_runs, fail, fetch, finish, new_val =
  values.UNSIGNED_CODES, values.block_runs, values.fail, values.fetch, values.finish, values.new_val
local numel, out_type, scalar, strides, value_bytes =
  values.numel, values.out_type, values.scalar, values.strides, values.value_bytes

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
local function eval(ctx, op)
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

local function context(m, cache) return { root = m, cache = cache or {}, eval = eval } end
M.context = context


M.UNSIGNED_CODES = UNSIGNED_CODES
M.context = context
M.count_ones = count_ones
M.eval = eval
M.fetch = fetch
M.mask_codes = mask_codes
M.scalar = scalar
M.strides = strides
return M
