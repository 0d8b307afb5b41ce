-- mlsh.model.constexpr_ops — the evaluators of the constexpr_* ops (one function per op type in
-- OPS) and eval(ctx, op), cached per ctx. Each evaluator only finds the op's parameters (attributes
-- or inputs, following producers) and checks what the op declares; the values are computed by the
-- C decompressor (core.constexpr: core/constexpr.c, the one the interpreter uses too), rounded to
-- the output dtype there. The public API over them is mlsh.model.constexpr (eval, dense, chain,
-- describe).
local core = require "mlsh.core"

local M = {}
local values = require "mlsh.model.constexpr_values"
M.BITS, M.OPS, M.is_constexpr, M.numel, M.param =
  values.BITS, values.OPS, values.is_constexpr, values.numel, values.param
local UNSIGNED_CODES, fail, fetch, shaped, new_val =
  values.UNSIGNED_CODES, values.fail, values.fetch, values.shaped, values.new_val
local out_type, scalar, strides = values.out_type, values.scalar, values.strides
local C = core.constexpr

local OPS = {}

-- iOS16: out = scale * (quantized_data - zero_point), scale/zero_point scalar or along `axis`.
function OPS.constexpr_affine_dequantize(ctx, op)
  local dtype, shape, n = out_type(op)
  local qv = fetch(ctx, op, "quantized_data", true)
  local zp = fetch(ctx, op, "zero_point", true)
  local sc = fetch(ctx, op, "scale", true)
  if qv.n ~= n then fail(op, "quantized_data holds %d values, the output %d", qv.n, n) end
  local a, err = C.affine(qv:source(nil, shape), zp:source(), sc:source(), scalar(ctx, op, "axis", 0), dtype)
  return { shaped(op, a, err, shape) }
end

function OPS.constexpr_cast(ctx, op)
  local dtype, shape = out_type(op)
  local a, err = C.cast(fetch(ctx, op, "source_val", true):source(), dtype)
  return { shaped(op, a, err, shape) }
end

-- The iOS16 index width of a 1-D LUT of `size` entries.
local NBITS16 = { [2] = 1, [4] = 2, [8] = 3, [16] = 4, [64] = 6, [256] = 8 }

-- vector_axis of an op whose LUT has vectors of V > 1 values (nil for scalar LUTs).
local function vector_axis(ctx, op, lshape)
  local V = lshape[#lshape]
  if #lshape < 2 or V <= 1 then return nil end
  local va = scalar(ctx, op, "vector_axis", nil)
  if not va then fail(op, "vector LUT (vector size %d) without vector_axis", V) end
  return va
end

function OPS.constexpr_lut_to_dense(ctx, op)
  local dtype, shape, n = out_type(op)
  local lutv = fetch(ctx, op, "lut", true)
  local iv = fetch(ctx, op, "indices", true)
  local a, err
  if #lutv.shape <= 1 then
    -- iOS16: 1-D LUT of 2^nbits entries, indices packed into uint8 bytes, output shape given.
    local nbits = NBITS16[lutv.n]
    if not nbits then fail(op, "LUT of %d entries (iOS16 LUTs have 2, 4, 16, 64 or 256)", lutv.n) end
    a, err = C.lut(iv:source("uint" .. nbits, { n }), lutv:source(), nil, dtype)
  else
    if not UNSIGNED_CODES[iv.dtype] then fail(op, "indices of type %s (expected uint1..uint8)", tostring(iv.dtype)) end
    a, err = C.lut(iv:source(), lutv:source(), vector_axis(ctx, op, lutv.shape), dtype)
    if a and #a ~= n then fail(op, "decompresses to %d values, the output has %d", #a, n) end
  end
  return { shaped(op, a, err, shape) }
end

-- A mask as a source of n elements (iOS16: bits packed into uint8 bytes; iOS18: a uint1 tensor
-- or a producer's output), shaped like the output.
local function mask_source(op, mv, n, shape)
  if mv.dtype == "uint8" and #mv.shape <= 1 and mv.msg and mv.n ~= n then return mv:source("uint1", shape) end
  if mv.n ~= n then fail(op, "mask has %d elements, the output %d", mv.n, n) end
  return mv:source(nil, shape)
end

-- 0/1 codes of a mask, one byte each (for describing: sparsity, n:m), read by the C decoder.
local function mask_codes(_, op, mv, n)
  local a, err = C.cast(mask_source(op, mv, n, { n }), "fp32")
  if not a then fail(op, "%s", err) end
  local c = a:encode("uint8")
  -- uint1 codes are 0/1 already; a mask stored one element per byte may hold any nonzero value
  if mv.dtype ~= "uint1" and c:find("[\2-\255]") then c = c:gsub("[\2-\255]", "\1") end
  return c
end

-- Ones in a 0/1 string: summed by the Array statistics in C, a chunk at a time.
local COUNT_CHUNK = 1 << 20
local function count_ones(mask)
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
  local mask = mask_source(op, fetch(ctx, op, "mask", true), n, shape)
  local a, err = C.sparse(mask, fetch(ctx, op, "nonzero_data", true):source(), dtype)
  return { shaped(op, a, err, shape) }
end

-- iOS18: out = scale[block] * (data - offset[block]).
function OPS.constexpr_blockwise_shift_scale(ctx, op)
  local dtype, shape = out_type(op)
  local ov = fetch(ctx, op, "offset")
  local a, err = C.shift_scale(fetch(ctx, op, "data", true):source(), fetch(ctx, op, "scale", true):source(),
    ov and ov:source(), dtype)
  return { shaped(op, a, err, shape) }
end

-- iOS18: (mask, nonzero values): the LUT of each nonzero index is chosen by its dense position;
-- a vector LUT expands the mask along vector_axis too.
function OPS.constexpr_lut_to_sparse(ctx, op)
  local mdtype, mshape = out_type(op, 1)
  local ndtype = out_type(op, 2)
  local mv = fetch(ctx, op, "indices_mask", true)
  local nzv = fetch(ctx, op, "indices_nonzero_data", true)
  local lutv = fetch(ctx, op, "lut", true)
  local va = vector_axis(ctx, op, lutv.shape)
  local mask, nz = C.lut_to_sparse(mv:source(), nzv:source(), lutv:source(), va, ndtype)
  if not mask then fail(op, "%s", nz) end
  local ms = va and mask:shape() or mshape
  return { { array = mask, dtype = mdtype, shape = ms, n = #mask }, nz }
end

-- iOS18: (mask, dequantized nonzero values), each with the scale/offset of its dense position.
function OPS.constexpr_sparse_blockwise_shift_scale(ctx, op)
  local mdtype, mshape = out_type(op, 1)
  local ndtype = out_type(op, 2)
  local mv = fetch(ctx, op, "data_mask", true)
  local ov = fetch(ctx, op, "offset")
  local mask, nz = C.sparse_shift_scale(mv:source(), fetch(ctx, op, "nonzero_data", true):source(),
    fetch(ctx, op, "scale", true):source(), ov and ov:source(), ndtype)
  if not mask then fail(op, "%s", nz) end
  return { { array = mask, dtype = mdtype, shape = mshape, n = #mask }, nz }
end

-- Outputs of a constexpr op: a list of Val (each with its array), cached per ctx.
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
      outs[j] = new_val{ dtype = r.dtype or o.dtype, shape = r.shape or o.shape, n = r.n, array = r.array }
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
M.count_ones = count_ones
M.eval = eval
M.fetch = fetch
M.mask_codes = mask_codes
M.scalar = scalar
M.strides = strides
return M
