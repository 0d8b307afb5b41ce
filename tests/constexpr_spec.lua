-- constexpr_spec.lua — mlsh.constexpr against plain-Lua references of the decompression math
-- (coreml-versions.md §4), on hand-made constexpr ops in both serialisations: iOS16 attributes
-- (packed uint8 indices/masks + shape) and iOS18 inputs (typed sub-byte tensors, chains).
local mlsh = require "mlsh"
local core = require "mlsh.core"
local cx = require "mlsh.model.constexpr"
local CF = require "compress_fixtures"

local A = core.array
local dir = CF.tmpdir()
local n_model = 0

local function enc(list, dtype) return A.new(list):encode(dtype) end

-- Build a model whose const `w` (shape, fp32) is replaced by the ops make(ctx, emit, w) returns.
local function model(opset, shape, make)
  n_model = n_model + 1
  local path = string.format("%s/cx%d.mlpackage", dir, n_model)
  CF.constexpr_model(path, { opset = opset, weights = { { name = "w", shape = shape } }, replace = make })
  local m = mlsh.load(path)
  for _, op in ipairs(m:ops()) do
    if op.outputs[1] and op.outputs[1].name == "w" then return m, op end
  end
  error("no op produces w")
end

local function same(got, want, tol)
  assert.are.equal(#want, #got, "length")
  for i = 1, #want do
    if math.abs(got[i] - want[i]) > (tol or 0) then
      error(string.format("element %d is %.9g, expected %.9g", i, got[i], want[i]), 2)
    end
  end
end

local function lcg(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return s % n
  end
end

local function out(w, dtype) return { { name = w.name, dtype = dtype or "fp32", shape = w.shape } } end

describe("constexpr decompression (iOS16 attribute form)", function()
  it("constexpr_lut_to_dense: packed 2-bit indices through a 4-entry LUT", function()
    local rnd, codes = lcg(1), {}
    for i = 1, 24 do codes[i] = rnd(4) end
    local lut = { -1, -0.5, 0.25, 1 }
    local m, op = model("iOS16", { 4, 6 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_lut_to_dense", w.name, {
        { key = "indices", dtype = "uint8", shape = { 6 }, bytes = core.compress.pack(codes, 2) },
        { key = "lut", dtype = "fp32", shape = { 4 }, bytes = enc(lut, "fp32"), data = lut },
        { key = "shape", dtype = "uint32", shape = { 2 }, bytes = enc({ 4, 6 }, "uint32") },
      }, out(w), 7) }
    end)
    local want = {}
    for i = 1, 24 do want[i] = lut[codes[i] + 1] end
    local a = cx.dense(m, op)
    same(a, want)
    assert.same({ 4, 6 }, a:shape())
    local d = cx.describe(m, op)
    assert.same({ "palettized", 2, "per_tensor", 7, "iOS16" }, { d.kind, d.nbits, d.granularity, d.min_spec, d.form })
  end)

  it("constexpr_affine_dequantize: per-channel along axis 1, and scalar parameters", function()
    local q, zp, sc = {}, { 1, -2, 0, 3, 0, -1 }, { 0.5, 0.25, 2, 1, 0.125, 4 }
    local rnd = lcg(2)
    for i = 1, 24 do q[i] = rnd(256) - 128 end
    local m, op = model("iOS16", { 4, 6 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_affine_dequantize", w.name, {
        { key = "quantized_data", dtype = "int8", shape = { 4, 6 }, bytes = enc(q, "int8") },
        { key = "zero_point", dtype = "int8", shape = { 6 }, bytes = enc(zp, "int8") },
        { key = "scale", dtype = "fp32", shape = { 6 }, bytes = enc(sc, "fp32"), data = sc },
        { key = "axis", dtype = "int32", shape = {}, bytes = enc({ 1 }, "int32"), data = { 1 } },
      }, out(w), 7) }
    end)
    local want = {}
    for i = 1, 24 do
      local c = (i - 1) % 6 + 1
      want[i] = sc[c] * (q[i] - zp[c])
    end
    same(cx.dense(m, op), want)
    local d = cx.describe(m, op)
    assert.same({ "quantized", "int8", "per_channel", 1, false }, { d.kind, d.dtype, d.granularity, d.axis, d.symmetric })

    local u = {}
    for i = 1, 24 do u[i] = rnd(256) end
    local m2, op2 = model("iOS16", { 4, 6 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_affine_dequantize", w.name, {
        { key = "quantized_data", dtype = "uint8", shape = { 4, 6 }, bytes = enc(u, "uint8") },
        { key = "zero_point", dtype = "uint8", shape = {}, bytes = enc({ 127 }, "uint8") },
        { key = "scale", dtype = "fp32", shape = {}, bytes = enc({ 0.5 }, "fp32"), data = { 0.5 } },
        { key = "axis", dtype = "int32", shape = {}, bytes = enc({ 0 }, "int32"), data = { 0 } },
      }, out(w), 7) }
    end)
    for i = 1, 24 do want[i] = 0.5 * (u[i] - 127) end
    same(cx.dense(m2, op2), want)
    local d2 = cx.describe(m2, op2)
    assert.same({ "uint8", "per_tensor", true }, { d2.dtype, d2.granularity, d2.symmetric })
  end)

  it("constexpr_sparse_to_dense: a packed bit mask (LSB first) and the nonzero values in order", function()
    local rnd, mask, nz, want = lcg(3), {}, {}, {}
    for i = 1, 30 do
      mask[i] = rnd(3) == 0 and 0 or 1
      if mask[i] == 1 then
        nz[#nz + 1] = (i - 15) / 8
        want[i] = nz[#nz]
      else
        want[i] = 0
      end
    end
    local m, op = model("iOS16", { 5, 6 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_sparse_to_dense", w.name, {
        { key = "nonzero_data", dtype = "fp32", shape = { #nz }, bytes = enc(nz, "fp32"), data = nz },
        { key = "mask", dtype = "uint8", shape = { 4 }, bytes = core.compress.pack(mask, 1) },
        { key = "shape", dtype = "uint32", shape = { 2 }, bytes = enc({ 5, 6 }, "uint32") },
      }, out(w), 7) }
    end)
    same(cx.dense(m, op), want)
    local d = cx.describe(m, op)
    assert.are.equal("sparse", d.kind)
    assert.are.equal(#nz, d.nnz)
    assert.truthy(math.abs(d.sparsity - (30 - #nz) / 30) < 1e-12)
  end)

  it("rounds fp16 outputs to fp16 and casts with constexpr_cast", function()
    local src = { 0.1, 0.2, 0.3, 1 / 3, 1e-3, -2.5, 7, 8, 9, 10, 11, 12 }
    local m, op = model("iOS16", { 3, 4 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_cast", w.name, {
        { key = "source_val", dtype = "fp16", shape = { 3, 4 }, bytes = enc(src, "fp16") },
        { key = "output_dtype", dtype = "string", shape = {}, bytes = "", data = { "fp32" } },
      }, out(w), 7) }
    end)
    local want = A.decode(enc(src, "fp16"), "fp16", 12)
    same(cx.dense(m, op), want:totable())
    assert.are.equal("cast", cx.describe(m, op).kind)
  end)
end)

describe("constexpr decompression (iOS18 input form)", function()
  it("constexpr_lut_to_dense with one LUT per block of 3 columns (uint3 indices)", function()
    local rnd, codes = lcg(4), {}
    for i = 1, 24 do codes[i] = rnd(8) end
    local lut = {}
    for g = 0, 1 do for k = 0, 7 do lut[#lut + 1] = g * 100 + k end end
    local m, op = model("iOS18", { 4, 6 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_lut_to_dense", w.name, {
        { key = "indices", dtype = "uint3", shape = { 4, 6 }, bytes = core.compress.pack(codes, 3) },
        { key = "lut", dtype = "fp32", shape = { 1, 2, 8, 1 }, bytes = enc(lut, "fp32"), data = lut },
      }, out(w), 9) }
    end)
    local want = {}
    for i = 1, 24 do
      local col = (i - 1) % 6
      want[i] = (col // 3) * 100 + codes[i]
    end
    same(cx.dense(m, op), want)
    local d = cx.describe(m, op)
    assert.same({ "palettized", 3, "per_grouped_channel", 1, 3, 9, "iOS18" },
      { d.kind, d.nbits, d.granularity, d.axis, d.group_size, d.min_spec, d.form })
  end)

  it("vector LUTs expand each index along vector_axis", function()
    local codes = { 0, 1, 2, 3, 3, 0 } -- indices [2,3]
    local lut = { 10, 11, 20, 21, 30, 31, 40, 41 } -- 4 entries of 2
    local m, op = model("iOS18", { 4, 3 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_lut_to_dense", w.name, {
        { key = "indices", dtype = "uint2", shape = { 2, 3 }, bytes = core.compress.pack(codes, 2) },
        { key = "lut", dtype = "fp32", shape = { 1, 1, 4, 2 }, bytes = enc(lut, "fp32"), data = lut },
        { key = "vector_axis", dtype = "int32", shape = {}, bytes = enc({ 0 }, "int32"), data = { 0 } },
      }, out(w), 9) }
    end)
    -- out[2i + v][j] = lut[code(i, j)][v]
    local want = {}
    for i = 0, 1 do
      for v = 0, 1 do
        for j = 0, 2 do want[#want + 1] = lut[codes[i * 3 + j + 1] * 2 + v + 1] end
      end
    end
    same(cx.dense(m, op), want)
    assert.are.equal(2, cx.describe(m, op).vector_size)
  end)

  it("constexpr_blockwise_shift_scale: int4 data, 2x3 blocks of scale and offset", function()
    local rnd, data = lcg(5), {}
    for i = 1, 24 do data[i] = rnd(16) - 8 end
    local sc, off = { 0.5, 1, 2, 4, 8, 16 }, { 1, -1, 0, 2, -3, 7 }
    local m, op = model("iOS18", { 4, 6 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_blockwise_shift_scale", w.name, {
        { key = "data", dtype = "int4", shape = { 4, 6 }, bytes = enc(data, "int4") },
        { key = "scale", dtype = "fp32", shape = { 2, 3 }, bytes = enc(sc, "fp32"), data = sc },
        { key = "offset", dtype = "int4", shape = { 2, 3 }, bytes = enc(off, "int4") },
      }, out(w), 9) }
    end)
    local want = {}
    for i = 1, 24 do
      local r, c = (i - 1) // 6, (i - 1) % 6
      local b = (r // 2) * 3 + c // 2 + 1
      want[i] = sc[b] * (data[i] - off[b])
    end
    same(cx.dense(m, op), want)
    local d = cx.describe(m, op)
    assert.same({ "quantized", "int4", "per_block", false }, { d.kind, d.dtype, d.granularity, d.symmetric })
  end)

  it("constexpr_sparse_to_dense with a uint1 mask tensor", function()
    local mask, nz, want = {}, {}, {}
    for i = 1, 24 do
      mask[i] = (i % 4 == 0 or i % 5 == 0) and 1 or 0
      if mask[i] == 1 then nz[#nz + 1] = i; want[i] = i else want[i] = 0 end
    end
    local m, op = model("iOS18", { 4, 6 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_sparse_to_dense", w.name, {
        { key = "nonzero_data", dtype = "fp32", shape = { #nz }, bytes = enc(nz, "fp32"), data = nz },
        { key = "mask", dtype = "uint1", shape = { 4, 6 }, bytes = core.compress.pack(mask, 1) },
      }, out(w), 9) }
    end)
    same(cx.dense(m, op), want)
  end)

  it("joint chains: lut_to_sparse -> sparse_to_dense with a LUT per pair of rows", function()
    local rnd, mask, codes, want = lcg(6), {}, {}, {}
    local lut = { -3, -1, 1, 3, -30, -10, 10, 30 } -- groups along axis 0: rows 0-1 and 2-3
    for i = 1, 24 do
      mask[i] = rnd(2)
      if mask[i] == 1 then
        codes[#codes + 1] = rnd(4)
        local g = ((i - 1) // 6) // 2
        want[i] = lut[g * 4 + codes[#codes] + 1]
      else
        want[i] = 0
      end
    end
    local m, op = model("iOS18", { 4, 6 }, function(ctx, emit, w)
      local first = w.name .. "_sparse"
      return {
        emit.new_op(ctx, "constexpr_lut_to_sparse", first, {
          { key = "indices_mask", dtype = "uint1", shape = { 4, 6 }, bytes = core.compress.pack(mask, 1) },
          { key = "indices_nonzero_data", dtype = "uint2", shape = { #codes }, bytes = core.compress.pack(codes, 2) },
          { key = "lut", dtype = "fp32", shape = { 2, 1, 4, 1 }, bytes = enc(lut, "fp32"), data = lut },
        }, { { name = first .. "_0", dtype = "uint1", shape = { 4, 6 } }, { name = first .. "_1", dtype = "fp32", shape = { #codes } } }, 9),
        emit.new_op(ctx, "constexpr_sparse_to_dense", w.name, {
          { key = "nonzero_data", ref = first .. "_1" }, { key = "mask", ref = first .. "_0" },
        }, out(w), 9),
      }
    end)
    same(cx.dense(m, op), want)
    local d = cx.describe(m, op)
    assert.are.equal("joint", d.kind)
    assert.same({ "sparse", "palettized" }, { d.stages[1].kind, d.stages[2].kind })
    assert.same({ "constexpr_lut_to_sparse", "constexpr_sparse_to_dense" }, d.chain)
    assert.are.equal("per_grouped_channel", d.stages[2].granularity)
  end)

  it("joint chains: sparse_blockwise_shift_scale uses the block of each value's dense position", function()
    local mask, data, want = {}, {}, {}
    local sc = { 1, 10, 100, 1000 }
    for i = 1, 24 do
      mask[i] = i % 3 == 0 and 0 or 1
      if mask[i] == 1 then
        data[#data + 1] = (i % 7) - 3
        want[i] = sc[(i - 1) // 6 + 1] * data[#data]
      else
        want[i] = 0
      end
    end
    local m, op = model("iOS18", { 4, 6 }, function(ctx, emit, w)
      local first = w.name .. "_q"
      return {
        emit.new_op(ctx, "constexpr_sparse_blockwise_shift_scale", first, {
          { key = "data_mask", dtype = "uint1", shape = { 4, 6 }, bytes = core.compress.pack(mask, 1) },
          { key = "nonzero_data", dtype = "int8", shape = { #data }, bytes = enc(data, "int8") },
          { key = "scale", dtype = "fp32", shape = { 4, 1 }, bytes = enc(sc, "fp32"), data = sc },
        }, { { name = first .. "_0", dtype = "uint1", shape = { 4, 6 } }, { name = first .. "_1", dtype = "fp32", shape = { #data } } }, 9),
        emit.new_op(ctx, "constexpr_sparse_to_dense", w.name, {
          { key = "nonzero_data", ref = first .. "_1" }, { key = "mask", ref = first .. "_0" },
        }, out(w), 9),
      }
    end)
    same(cx.dense(m, op), want)
    local d = cx.describe(m, op)
    assert.same({ "joint", "quantized", "per_channel", true }, { d.kind, d.stages[2].kind, d.stages[2].granularity, d.stages[2].symmetric })
  end)

  it("palettization with a per-channel scale: lut_to_dense -> blockwise_shift_scale", function()
    local codes = { 0, 1, 1, 0, 1, 0 }
    local m, op = model("iOS18", { 2, 3 }, function(ctx, emit, w)
      local l = w.name .. "_lut"
      return {
        emit.new_op(ctx, "constexpr_lut_to_dense", l, {
          { key = "indices", dtype = "uint1", shape = { 2, 3 }, bytes = core.compress.pack(codes, 1) },
          { key = "lut", dtype = "fp32", shape = { 1, 1, 2, 1 }, bytes = enc({ -1, 1 }, "fp32"), data = { -1, 1 } },
        }, { { name = l, dtype = "fp32", shape = { 2, 3 } } }, 9),
        emit.new_op(ctx, "constexpr_blockwise_shift_scale", w.name, {
          { key = "data", ref = l },
          { key = "scale", dtype = "fp32", shape = { 1, 3 }, bytes = enc({ 2, 3, 4 }, "fp32"), data = { 2, 3, 4 } },
        }, out(w), 9),
      }
    end)
    same(cx.dense(m, op), { -2, 3, 4, -2, 3, -4 })
    local d = cx.describe(m, op)
    assert.same({ "palettized", 1, true }, { d.kind, d.nbits, d.per_channel_scale })
  end)

  it("detects n:m structure of a mask", function()
    local mask = {}
    for r = 0, 3 do
      for c = 0, 7 do mask[#mask + 1] = (c % 4 < 2) and "\0" or "\1" end
    end
    local nm = cx.detect_n_m(table.concat(mask), { 4, 8 })
    assert.same({ 2, 4, 1 }, { nm.n, nm.m, nm.dim })
    local rnd, rmask = lcg(9), {}
    for i = 1, 32 do rmask[i] = rnd(2) == 0 and "\0" or "\1" end
    rmask[1], rmask[2] = "\1", "\1"
    assert.is_nil(cx.detect_n_m(table.concat(rmask), { 4, 8 }))
  end)
end)

describe("constexpr errors", function()
  local function err_of(m, op)
    local ok, e = pcall(cx.dense, m, op)
    assert.is_false(ok)
    return tostring(e)
  end

  it("names an index outside the LUT", function()
    local m, op = model("iOS18", { 2, 4 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_lut_to_dense", w.name, {
        { key = "indices", dtype = "uint4", shape = { 2, 4 }, bytes = core.compress.pack({ 0, 1, 2, 9, 0, 0, 0, 0 }, 4) },
        { key = "lut", dtype = "fp32", shape = { 1, 1, 4, 1 }, bytes = enc({ 1, 2, 3, 4 }, "fp32"), data = { 1, 2, 3, 4 } },
      }, out(w), 9) }
    end)
    assert.truthy(err_of(m, op):find("index 9 is outside the LUT of 4 entries", 1, true))
  end)

  it("refuses a mask that selects more elements than nonzero_data holds", function()
    local m, op = model("iOS18", { 2, 4 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_sparse_to_dense", w.name, {
        { key = "nonzero_data", dtype = "fp32", shape = { 2 }, bytes = enc({ 1, 2 }, "fp32"), data = { 1, 2 } },
        { key = "mask", dtype = "uint1", shape = { 2, 4 }, bytes = core.compress.pack({ 1, 1, 1, 0, 0, 0, 0, 0 }, 1) },
      }, out(w), 9) }
    end)
    assert.truthy(err_of(m, op):find("mask selects 3 elements, nonzero_data holds 2", 1, true))
  end)

  it("refuses scales whose shape does not divide the data", function()
    local m, op = model("iOS18", { 2, 4 }, function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_blockwise_shift_scale", w.name, {
        { key = "data", dtype = "int8", shape = { 2, 4 }, bytes = enc({ 1, 2, 3, 4, 5, 6, 7, 8 }, "int8") },
        { key = "scale", dtype = "fp32", shape = { 1, 3 }, bytes = enc({ 1, 2, 3 }, "fp32"), data = { 1, 2, 3 } },
      }, out(w), 9) }
    end)
    assert.truthy(err_of(m, op):find("does not divide", 1, true))
  end)
end)
