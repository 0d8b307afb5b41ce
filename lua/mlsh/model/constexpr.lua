-- mlsh.model.constexpr — decompression of Core ML compressed weights: evaluates constexpr_* ops (and
-- chains of them) to dense mlsh.Array values, exactly as Core ML computes them (reference:
-- coremltools' ops/defs/iOS16/constexpr_ops.py and iOS18/compression.py), and describes what
-- compression a chain is.
--
--   local cx = require "mlsh.model.constexpr"
--   local a = cx.dense(m, op)          -- op: an Op of m:ops() (the final op of a chain); Array in the
--                                      -- op's output dtype (fp16 outputs are rounded to fp16)
--   local outs = cx.eval(m, op)        -- every output: {dtype, shape, array = Array} (masks as 0/1)
--   local d = cx.describe(m, op)       -- {kind = "palettized"|"quantized"|"sparse"|"joint", ...}
--   cx.param(op, name)                 -- {dtype, shape, value_msg | ref} of a parameter
--   cx.chain(op)                       -- the constexpr ops feeding op, producers first, op last
--
-- Both serialisations are read: iOS16/iOS17 ops keep their parameters as attributes (packed uint8
-- indices and masks plus a `shape`), iOS18 ops take them as inputs (typed sub-byte tensors, inputs
-- that name another constexpr's output). Sub-byte data is LSB-first, row-major (SubByteTypes.cpp).
--
-- The values are computed in C (core.constexpr over core/constexpr.c, the decompressor the
-- interpreter uses too); this module and constexpr_ops only find each op's parameters, follow
-- chains and describe what a chain is.
local ops = require "mlsh.model.constexpr_ops"

local M = {}

M.BITS, M.OPS, M.is_constexpr, M.numel, M.param = ops.BITS, ops.OPS, ops.is_constexpr, ops.numel, ops.param
M.context = ops.context
local UNSIGNED_CODES, context, count_ones, eval = ops.UNSIGNED_CODES, ops.context, ops.count_ones, ops.eval
local fetch, mask_codes, numel, scalar, strides = ops.fetch, ops.mask_codes, ops.numel, ops.scalar, ops.strides

-- Every output of op: list of {dtype, shape, n, array}; :get_array() on each.
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

-- The stages of a description: palettized (a LUT op), quantized (a scale op), sparse (a mask op).
local function palettized(ctx, lop, out_shape)
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
local function quantized(ctx, qop)
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
local function sparse(ctx, sop, out_shape)
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

-- What each final op of a chain is.
local DESCRIBE = {
  constexpr_lut_to_dense = function(ctx, op, out_shape) return palettized(ctx, op, out_shape) end,
  constexpr_affine_dequantize = function(ctx, op) return quantized(ctx, op) end,
  constexpr_blockwise_shift_scale = function(ctx, op, out_shape)
    local from = producer(op, "data")
    if from and from.type == "constexpr_lut_to_dense" then
      local d = palettized(ctx, from, out_shape)
      d.per_channel_scale = true
      return d
    end
    return quantized(ctx, op)
  end,
  constexpr_sparse_to_dense = function(ctx, op, out_shape)
    local d = sparse(ctx, op, out_shape)
    local from = producer(op, "nonzero_data")
    local inner
    if from and from.type == "constexpr_lut_to_sparse" then inner = palettized(ctx, from, out_shape)
    elseif from and from.type == "constexpr_sparse_blockwise_shift_scale" then inner = quantized(ctx, from) end
    if inner then return { kind = "joint", stages = { d, inner }, sparsity = d.sparsity, nnz = d.nnz, n_m = d.n_m } end
    return d
  end,
  constexpr_cast = function() return { kind = "cast" } end,
}

-- The lowest spec of a chain: 9 when an op takes inputs (iOS18 form) or is iOS18-only, else 7.
local IOS18_ONLY = { constexpr_blockwise_shift_scale = true, constexpr_lut_to_sparse = true,
                     constexpr_sparse_blockwise_shift_scale = true }
local function chain_spec(chain)
  local types_list, min_spec = {}, 7
  for i, o in ipairs(chain) do
    types_list[i] = o.type
    local has_inputs = false
    for _, e in ipairs(o:inputs()) do if e.param ~= "name" then has_inputs = true end end
    if has_inputs or IOS18_ONLY[o.type] then min_spec = 9 end
  end
  return types_list, min_spec
end

-- What compression op (the final op of a chain) is: a table with kind and the parameters of each
-- stage, plus min_spec (7 for the iOS16 forms, 9 for the iOS18 ones) and chain (op types).
--   palettized {nbits, granularity, group_size, axis, vector_size, per_channel_scale, lut_dtype}
--   quantized  {dtype, symmetric, granularity, axis, block_size}
--   sparse     {sparsity, nnz, n_m = {n, m, dim}?}
--   joint      {stages = {sparse, palettized | quantized}, sparsity, ...}
-- `m` (optional) allows reading values (sparsity, symmetric, n:m); without it those stay nil.
function M.describe(m, op, cache)
  local types_list, min_spec = chain_spec(M.chain(op))
  local ctx = m and context(m, cache) or nil
  local out_shape = op.outputs[1] and op.outputs[1].shape or {}
  local f = DESCRIBE[op.type]
  local d = f and f(ctx, op, out_shape) or { kind = "unknown" }
  d.chain = types_list
  d.min_spec = min_spec
  if d.kind == "palettized" and (d.granularity ~= "per_tensor" or d.nbits == 3 or d.per_channel_scale or (d.vector_size or 1) > 1) then
    d.min_spec = 9
  end
  d.form = SPEC_OF.input == d.min_spec and "iOS18" or "iOS16"
  return d
end

return M
