-- mlsh.compress.emit — the constexpr ops coremltools writes for each compression form, as MIL
-- Operation messages (coremltools' load.py translate_constexpr and the optimize passes):
--   form 7 (iOS16/iOS17 opsets): constexpr_lut_to_dense / constexpr_affine_dequantize /
--     constexpr_sparse_to_dense with every parameter an attribute; indices and masks packed into
--     uint8 vectors (LSB first), the output `shape` a uint32 vector.
--   form 9 (iOS18): constexpr_lut_to_dense (per-group LUT of rank+2), constexpr_blockwise_shift_scale,
--     constexpr_sparse_to_dense (uint1 mask), and the joint chains constexpr_lut_to_sparse /
--     constexpr_sparse_blockwise_shift_scale -> constexpr_sparse_to_dense; parameters are inputs,
--     holding their Value, or naming the output of the previous constexpr op.
-- Names follow coremltools: <const>_palettized, _quantized, _sparsified, _palettized_pcs,
-- <const>_sparsified_nonzero_data_0_palettized (outputs _0 mask, _1 values).
-- A parameter goes to weight.bin under coremltools' rule (>= 10 elements of fp16/fp32/(u)int8, sub-byte
-- types included; int16/int32/uint16/uint32 too from spec 9), otherwise it is an immediate.
local core = require "mlsh.core"
local mil = require "mlsh.builder.mil"

local M = {}
local P = core.proto

M.BLOB_DTYPES = { fp16 = true, fp32 = true, uint8 = true, int8 = true, int4 = true, uint1 = true, uint2 = true,
                  uint3 = true, uint4 = true, uint6 = true }
M.BLOB_DTYPES_SPEC9 = { int16 = true, uint16 = true, int32 = true, uint32 = true }

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- ctx = {sink = {add = function(dtype, bytes, n) -> file, offset end}, spec = spec version}
local function use_blob(ctx, dtype, n)
  if n < mil.MIN_BLOB_ELEMENTS then return false end
  return M.BLOB_DTYPES[dtype] or (ctx.spec >= 9 and M.BLOB_DTYPES_SPEC9[dtype]) or false
end

-- Fill Value v: type, then an immediate (bytes or the typed field coremltools uses) or a blob.
local function fill_value(ctx, v, dtype, shape, bytes, data)
  local n = numel(shape)
  mil.tensor_type(v:mutable("type"), dtype, shape)
  if use_blob(ctx, dtype, n) then
    local file, offset = ctx.sink.add(dtype, bytes, n)
    local bf = v:mutable("blobFileValue")
    bf.fileName, bf.offset = file, offset
    return v
  end
  local tv = v:mutable("immediateValue"):mutable("tensor")
  local field = mil.tensor_field(dtype)
  if field == "bytes" then
    tv:mutable("bytes").values = bytes
  else
    local list = {}
    for i = 1, n do list[i] = math.tointeger(data[i]) or data[i] end
    tv:mutable(field).values = list
  end
  return v
end
M.fill_value = fill_value

-- A parameter description: {key, dtype, shape, bytes, data} (data: an Array/list for typed
-- immediates) or {key, ref = name} (iOS18: the output of another constexpr op).
local function new_op(ctx, op_type, name, params, outputs, form)
  local o = P.new("CoreML.Specification.MILSpec.Operation")
  o.type = op_type
  if form >= 9 then
    for _, p in ipairs(params) do
      local e = o:add("inputs")
      e.key = p.key
      local b = e:mutable("value"):add("arguments")
      if p.ref then b.name = p.ref else fill_value(ctx, b:mutable("value"), p.dtype, p.shape, p.bytes, p.data) end
    end
  end
  for _, out in ipairs(outputs) do
    local nv = o:add("outputs")
    nv.name = out.name
    mil.tensor_type(nv:mutable("type"), out.dtype, out.shape)
  end
  local a = o:add("attributes")
  a.key = "name"
  mil.string_value(a:mutable("value"), name)
  if form < 9 then
    for _, p in ipairs(params) do
      local e = o:add("attributes")
      e.key = p.key
      fill_value(ctx, e:mutable("value"), p.dtype, p.shape, p.bytes, p.data)
    end
  end
  return o
end
M.new_op = new_op

local function shape_param(shape)
  local a = core.array.new(#shape)
  for i, d in ipairs(shape) do a[i] = d end
  return { key = "shape", dtype = "uint32", shape = { #shape }, bytes = a:encode("uint32") }
end

-- w = {name (const op name), dtype, shape}; r = the kernel's result. Each emitter returns the list
-- of Operation messages (in order) and the name of the final output.

function M.palettize(ctx, w, r, form)
  local out = w.name .. "_palettized"
  local ops = {}
  if form < 9 then
    ops[1] = new_op(ctx, "constexpr_lut_to_dense", out, {
      { key = "indices", dtype = "uint8", shape = { #r.indices }, bytes = r.indices },
      { key = "lut", dtype = w.dtype, shape = { #r.lut }, bytes = r.lut:encode(w.dtype), data = r.lut },
      shape_param(w.shape),
    }, { { name = out, dtype = w.dtype, shape = w.shape } }, form)
    return ops, out
  end
  ops[1] = new_op(ctx, "constexpr_lut_to_dense", out, {
    { key = "indices", dtype = "uint" .. r.nbits, shape = w.shape, bytes = r.indices },
    { key = "lut", dtype = w.dtype, shape = r.lut_shape, bytes = r.lut:encode(w.dtype), data = r.lut },
  }, { { name = out, dtype = w.dtype, shape = w.shape } }, form)
  if r.scale then
    local pcs = out .. "_pcs"
    ops[2] = new_op(ctx, "constexpr_blockwise_shift_scale", pcs, {
      { key = "data", ref = out },
      { key = "scale", dtype = w.dtype, shape = r.scale:shape(), bytes = r.scale:encode(w.dtype), data = r.scale },
    }, { { name = pcs, dtype = w.dtype, shape = w.shape } }, form)
    out = pcs
  end
  return ops, out
end

-- squeeze(scale) for the iOS16 op: the per-channel vector (or a scalar) and its axis.
local function squeeze(shape)
  local axis, len = 0, 1
  for d, s in ipairs(shape) do
    if s > 1 then
      axis, len = d - 1, s
    end
  end
  return len > 1 and { len } or {}, axis
end

function M.quantize(ctx, w, r, form)
  local out = w.name .. "_quantized"
  local ns = #r.scale
  if form < 9 then
    local qshape, axis = squeeze(r.scale_shape)
    local zp = r.zero_point or core.array.new(ns)
    local ops = { new_op(ctx, "constexpr_affine_dequantize", out, {
      { key = "quantized_data", dtype = r.dtype, shape = w.shape, bytes = r.data },
      { key = "zero_point", dtype = r.dtype, shape = qshape, bytes = zp:encode(r.dtype), data = zp },
      { key = "scale", dtype = w.dtype, shape = qshape, bytes = r.scale:encode(w.dtype), data = r.scale },
      { key = "axis", dtype = "int32", shape = {}, bytes = core.array.new({ axis }):encode("int32"), data = { axis } },
    }, { { name = out, dtype = w.dtype, shape = w.shape } }, form) }
    return ops, out
  end
  local params = {
    { key = "data", dtype = r.dtype, shape = w.shape, bytes = r.data },
    { key = "scale", dtype = w.dtype, shape = r.scale_shape, bytes = r.scale:encode(w.dtype), data = r.scale },
  }
  if r.zero_point then
    params[3] = { key = "offset", dtype = r.dtype, shape = r.scale_shape, bytes = r.zero_point:encode(r.dtype), data = r.zero_point }
  end
  return { new_op(ctx, "constexpr_blockwise_shift_scale", out, params, { { name = out, dtype = w.dtype, shape = w.shape } }, form) }, out
end

function M.prune(ctx, w, r, form)
  local out = w.name .. "_sparsified"
  -- the kernel's nonzero_bytes when stored in this dtype (the Array is made only when needed)
  local direct = r.nonzero_dtype == w.dtype and r.nnz >= mil.MIN_BLOB_ELEMENTS
  local nz = { key = "nonzero_data", dtype = w.dtype, shape = { r.nnz }, bytes = direct and r.nonzero_bytes or r.nonzero:encode(w.dtype),
               data = not direct and r.nonzero or nil }
  if form < 9 then
    return { new_op(ctx, "constexpr_sparse_to_dense", out, {
      nz, { key = "mask", dtype = "uint8", shape = { #r.mask }, bytes = r.mask }, shape_param(w.shape),
    }, { { name = out, dtype = w.dtype, shape = w.shape } }, form) }, out
  end
  return { new_op(ctx, "constexpr_sparse_to_dense", out, {
    nz, { key = "mask", dtype = "uint1", shape = w.shape, bytes = r.mask },
  }, { { name = out, dtype = w.dtype, shape = w.shape } }, form) }, out
end

-- Joint (iOS18 only): the sparse op over the kept codes, then sparse_to_dense.
local function joint(ctx, w, first_type, suffix, params, form)
  local out = w.name .. "_sparsified"
  local first = out .. "_nonzero_data_0_" .. suffix
  local nnz = params.nnz
  local a = new_op(ctx, first_type, first, params, {
    { name = first .. "_0", dtype = "uint1", shape = w.shape },
    { name = first .. "_1", dtype = w.dtype, shape = { nnz } },
  }, form)
  local b = new_op(ctx, "constexpr_sparse_to_dense", out, {
    { key = "nonzero_data", ref = first .. "_1" }, { key = "mask", ref = first .. "_0" },
  }, { { name = out, dtype = w.dtype, shape = w.shape } }, form)
  return { a, b }, out
end

function M.prune_palettize(ctx, w, r, form)
  local params = {
    { key = "indices_mask", dtype = "uint1", shape = w.shape, bytes = r.mask },
    { key = "indices_nonzero_data", dtype = "uint" .. r.nbits, shape = { r.nnz }, bytes = r.indices },
    { key = "lut", dtype = w.dtype, shape = r.lut_shape, bytes = r.lut:encode(w.dtype), data = r.lut },
    nnz = r.nnz,
  }
  return joint(ctx, w, "constexpr_lut_to_sparse", "palettized", params, form)
end

function M.prune_quantize(ctx, w, r, form)
  local params = {
    { key = "data_mask", dtype = "uint1", shape = w.shape, bytes = r.mask },
    { key = "nonzero_data", dtype = r.dtype, shape = { r.nnz }, bytes = r.data },
    { key = "scale", dtype = w.dtype, shape = r.scale_shape, bytes = r.scale:encode(w.dtype), data = r.scale },
    nnz = r.nnz,
  }
  if r.zero_point then
    params[4] = { key = "offset", dtype = r.dtype, shape = r.scale_shape, bytes = r.zero_point:encode(r.dtype), data = r.zero_point }
  end
  return joint(ctx, w, "constexpr_sparse_blockwise_shift_scale", "quantized", params, form)
end

return M
