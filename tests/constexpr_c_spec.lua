-- constexpr_c_spec.lua — the C decompressor (core.constexpr over core/constexpr.c) against naive
-- references written here: one plain loop per op of the decompression math (coremltools'
-- iOS16/constexpr_ops.py and iOS18/compression.py; ../shared/reference/compression-math.md), in
-- double precision rounded once to float32 (and to fp16 for fp16 outputs), compared bit for bit.
-- Inputs are random codes packed with the compress API (core.compress.pack), given as bytes, as
-- Arrays and as blobs of a weight file; then malformed inputs (sizes, shapes, offsets, indices).
local mlsh = require "mlsh"
local core = require "mlsh.core"
local cx = require "mlsh.model.constexpr"
local CF = require "compress_fixtures"

local C = core.constexpr
local A = core.array
local pack = core.compress.pack

local function lcg(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return s % n
  end
end

-- ---- the reference's own rounding ------------------------------------------------------------------
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

-- Nearest fp16 value (ties to even), from the definition: 10 fraction bits, exponents -14..15.
local function f16(x)
  x = f32(x)
  if x ~= x or x == 0 or x == math.huge or x == -math.huge then return x end
  local ax = math.abs(x)
  local e = math.floor(math.log(ax, 2))
  while 2.0 ^ e > ax do e = e - 1 end
  while 2.0 ^ (e + 1) <= ax do e = e + 1 end
  local q = 2.0 ^ (math.max(e, -14) - 10)
  local r = ax / q
  local fl = math.floor(r)
  local d = r - fl
  if d > 0.5 or (d == 0.5 and fl % 2 == 1) then fl = fl + 1 end
  local v = fl * q
  if v >= 65520 then v = math.huge end
  return x < 0 and -v or v
end

local function round_to(dtype) return dtype == "fp16" and f16 or f32 end

-- Bit-exact comparison of an Array with a list of reference values.
local function same(got, want, what)
  assert.are.equal(#want, #got, (what or "") .. ": length")
  for i = 1, #want do
    local g, w = string.pack("<f", got[i]), string.pack("<f", want[i])
    if g ~= w then error(string.format("%s: element %d is %.9g, expected %.9g", what or "", i, got[i], want[i]), 2) end
  end
end

local function src(dtype, shape, list) return { dtype = dtype, shape = shape, bytes = A.new(list):encode(dtype) } end
local function arr(shape, list) return { dtype = "fp32", shape = shape, array = A.new(list) } end
local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end
-- Row-major multi-index (0-based) of flat index i (0-based).
local function index_of(shape, i)
  local idx = {}
  for d = #shape, 1, -1 do
    idx[d] = i % shape[d]
    i = i // shape[d]
  end
  return idx
end
-- Flat index of the block of idx when pshape tiles shape.
local function block_of(shape, pshape, idx)
  local p = 0
  for d = 1, #shape do p = p * pshape[d] + idx[d] // (shape[d] // pshape[d]) end
  return p
end
local function codes(rnd, n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = lo + rnd(hi - lo + 1) end
  return t
end
local function floats(rnd, n, scale)
  local t = {}
  for i = 1, n do t[i] = f32((rnd(2001) - 1000) / 1000 * (scale or 1)) end
  return t
end
-- Two's-complement nibbles/bytes of signed codes, for packing sub-byte types.
local function unsigned(list, bits)
  local t = {}
  for i, v in ipairs(list) do t[i] = v < 0 and v + (1 << bits) or v end
  return t
end

describe("core.constexpr against naive references", function()
  it("affine_dequantize: int8/uint8, per-channel along any axis, scalars, fp16 output", function()
    local rnd = lcg(11)
    local shape = { 3, 4, 5 }
    local n = numel(shape)
    for _, case in ipairs({ { "int8", -128, 127, 1 }, { "uint8", 0, 255, 2 }, { "int8", -128, 127, -1 }, { "uint8", 0, 255, 0 } }) do
      local dtype, lo, hi, axis = case[1], case[2], case[3], case[4]
      local ax = axis < 0 and axis + #shape or axis
      local q = codes(rnd, n, lo, hi)
      local ns = shape[ax + 1]
      local zp, sc = codes(rnd, ns, lo, hi), floats(rnd, ns, 0.1)
      for _, out_dtype in ipairs({ "fp32", "fp16" }) do
        local a, err = C.affine(src(dtype, shape, q), src(dtype, { ns }, zp), arr({ ns }, sc), axis, out_dtype)
        assert.is_nil(err)
        local want, r = {}, round_to(out_dtype)
        for i = 1, n do
          local c = index_of(shape, i - 1)[ax + 1] + 1
          want[i] = r(sc[c] * (q[i] - zp[c]))
        end
        same(a, want, dtype .. " axis " .. axis .. " " .. out_dtype)
        assert.same(shape, a:shape())
      end
    end
    local q = codes(rnd, 6, 0, 255)
    local a = C.affine(src("uint8", { 2, 3 }, q), src("uint8", {}, { 127 }), arr({}, { 0.5 }), 0, "fp32")
    local want = {}
    for i = 1, 6 do want[i] = f32(0.5 * (q[i] - 127)) end
    same(a, want, "scalar")
  end)

  it("blockwise_shift_scale: int4/uint4/int8/uint8, per-tensor, per-channel, per-block, with and without offset", function()
    local rnd = lcg(12)
    local shape = { 4, 8 }
    local n = numel(shape)
    local ranges = { int4 = { -8, 7 }, uint4 = { 0, 15 }, int8 = { -128, 127 }, uint8 = { 0, 255 } }
    for _, dtype in ipairs({ "int4", "uint4", "int8", "uint8" }) do
      local lo, hi = ranges[dtype][1], ranges[dtype][2]
      local bits = dtype:match("4") and 4 or 8
      for _, sshape in ipairs({ { 1, 1 }, { 4, 1 }, { 1, 8 }, { 4, 2 }, { 2, 4 } }) do
        for _, with_offset in ipairs({ false, true }) do
          local data = codes(rnd, n, lo, hi)
          local ns = numel(sshape)
          local sc = floats(rnd, ns, 0.05)
          local off = with_offset and codes(rnd, ns, lo, hi) or nil
          local dsrc = { dtype = dtype, shape = shape, bytes = pack(unsigned(data, bits), bits) }
          local osrc = off and { dtype = dtype, shape = sshape, bytes = pack(unsigned(off, bits), bits) } or nil
          for _, out_dtype in ipairs({ "fp32", "fp16" }) do
            local a, err = C.shift_scale(dsrc, arr(sshape, sc), osrc, out_dtype)
            assert.is_nil(err)
            local want, r = {}, round_to(out_dtype)
            for i = 1, n do
              local p = block_of(shape, sshape, index_of(shape, i - 1)) + 1
              want[i] = r(sc[p] * (data[i] - (off and off[p] or 0)))
            end
            same(a, want, string.format("%s scale [%s] offset %s %s", dtype, table.concat(sshape, ","), tostring(with_offset), out_dtype))
          end
        end
      end
    end
  end)

  it("blockwise_shift_scale with fractional offsets computes in double, rounded once", function()
    local rnd = lcg(21)
    local data = codes(rnd, 256, -128, 127)
    local sc, off = floats(rnd, 16, 0.37), floats(rnd, 16, 3.3)
    for _, odt in ipairs({ "fp32", "fp16" }) do
      local a = C.shift_scale(src("int8", { 16, 16 }, data), arr({ 16, 1 }, sc), src(odt, { 16, 1 }, off), "fp32")
      local want = {}
      for i = 1, 256 do
        local r = (i - 1) // 16 + 1
        local o = odt == "fp16" and f16(off[r]) or off[r]
        want[i] = f32(sc[r] * (data[i] - o))
      end
      same(a, want, odt .. " offset")
    end
  end)

  it("lut_to_dense, iOS16: 1-D LUTs of 2..256 entries, indices packed LSB first", function()
    local rnd = lcg(13)
    for _, nbits in ipairs({ 1, 2, 3, 4, 6, 8 }) do
      local size, n = 1 << nbits, 37
      local idx, lut = codes(rnd, n, 0, size - 1), floats(rnd, size)
      local bytes = pack(idx, nbits)
      -- the stored parameter is a uint8 byte stream; the caller reads it as nbits-wide codes
      local a, err = C.lut({ dtype = "uint" .. nbits, shape = { n }, bytes = bytes }, arr({ size }, lut), nil, "fp32")
      assert.is_nil(err)
      local want = {}
      for i = 1, n do want[i] = lut[idx[i] + 1] end
      same(a, want, nbits .. "-bit")
    end
  end)

  it("lut_to_dense, iOS18: per-tensor, per-grouped-channel on either axis, uint3 indices, fp16 output", function()
    local rnd = lcg(14)
    local shape = { 6, 4 }
    local n = numel(shape)
    for _, case in ipairs({ { 3, { 1, 1 } }, { 4, { 3, 1 } }, { 2, { 1, 2 } }, { 4, { 6, 1 } }, { 1, { 2, 4 } } }) do
      local nbits, g = case[1], case[2]
      local size = 1 << nbits
      local idx = codes(rnd, n, 0, size - 1)
      local lut = floats(rnd, numel(g) * size)
      local lshape = { g[1], g[2], size, 1 }
      for _, out_dtype in ipairs({ "fp32", "fp16" }) do
        local a, err = C.lut({ dtype = "uint" .. nbits, shape = shape, bytes = pack(idx, nbits) }, arr(lshape, lut), nil, out_dtype)
        assert.is_nil(err)
        local want, r = {}, round_to(out_dtype)
        for i = 1, n do
          local p = block_of(shape, g, index_of(shape, i - 1))
          want[i] = r(lut[p * size + idx[i] + 1])
        end
        same(a, want, string.format("%d-bit groups [%s] %s", nbits, table.concat(g, ","), out_dtype))
        assert.same(shape, a:shape())
      end
    end
  end)

  it("lut_to_dense, iOS18 vector palettization: V values per index along vector_axis", function()
    local rnd = lcg(15)
    local ishape = { 3, 4 }
    for _, case in ipairs({ { 0, 2, { 1, 1 } }, { 1, 2, { 1, 1 } }, { -1, 4, { 3, 1 } }, { 0, 2, { 1, 2 } } }) do
      local va, V, g = case[1], case[2], case[3]
      local size = 4
      local idx = codes(rnd, numel(ishape), 0, size - 1)
      local lut = floats(rnd, numel(g) * size * V)
      local a, err = C.lut({ dtype = "uint2", shape = ishape, bytes = pack(idx, 2) }, arr({ g[1], g[2], size, V }, lut), va, "fp32")
      assert.is_nil(err)
      local axis = (va < 0 and va + 2 or va) + 1
      local oshape = { ishape[1], ishape[2] }
      oshape[axis] = oshape[axis] * V
      local want = {}
      for i = 0, numel(ishape) - 1 do
        local ix = index_of(ishape, i)
        local p = block_of(ishape, g, ix)
        for v = 0, V - 1 do
          local o = { ix[1], ix[2] }
          o[axis] = o[axis] * V + v
          want[o[1] * oshape[2] + o[2] + 1] = lut[(p * size + idx[i + 1]) * V + v + 1]
        end
      end
      same(a, want, string.format("va %d V %d", va, V))
      assert.same(oshape, a:shape())
    end
  end)

  it("sparse_to_dense: a packed uint1 mask and a one-byte-per-element mask of any nonzero value", function()
    local rnd = lcg(16)
    local n = 45
    local mask = codes(rnd, n, 0, 1)
    local nz, want = {}, {}
    for i = 1, n do
      if mask[i] == 1 then nz[#nz + 1] = f32(i / 7); want[i] = nz[#nz] else want[i] = 0 end
    end
    same(C.sparse({ dtype = "uint1", shape = { 5, 9 }, bytes = pack(mask, 1) }, arr({ #nz }, nz), "fp32"), want, "uint1")
    local m8 = {}
    for i = 1, n do m8[i] = mask[i] * 5 end
    local want16 = {}
    for i = 1, n do want16[i] = f16(want[i]) end
    same(C.sparse(src("uint8", { 5, 9 }, m8), arr({ #nz }, nz), "fp16"), want16, "uint8 mask, fp16")
  end)

  it("constexpr_cast: fp16 -> fp32 as stored, fp32 -> fp16 rounded to nearest even", function()
    local v = { 1 / 3, 65519, 65520, -2.5e-8, 1e-7, 0.1 }
    local want = {}
    for i, x in ipairs(v) do want[i] = f16(x) end
    same(C.cast(arr({ 6 }, v), "fp16"), want, "to fp16")
    same(C.cast(src("fp16", { 6 }, v), "fp32"), want, "from fp16")
  end)

  it("sparse_blockwise_shift_scale and lut_to_sparse, and the sparse_to_dense chains over them", function()
    local rnd = lcg(17)
    local shape = { 4, 6 }
    local n = numel(shape)
    local mask = codes(rnd, n, 0, 1)
    local k = 0
    for i = 1, n do k = k + mask[i] end
    local msrc = { dtype = "uint1", shape = shape, bytes = pack(mask, 1) }
    -- quantized nonzero values, per-channel scale and offset
    local q = codes(rnd, k, -128, 127)
    local sc, off = floats(rnd, 4, 0.1), codes(rnd, 4, -3, 3)
    local om, onz = C.sparse_shift_scale(msrc, src("int8", { k }, q), arr({ 4, 1 }, sc), src("int8", { 4, 1 }, off), "fp16")
    local want_nz, want_dense, j = {}, {}, 0
    for i = 1, n do
      if mask[i] == 1 then
        j = j + 1
        local r = index_of(shape, i - 1)[1] + 1
        want_nz[j] = f16(sc[r] * (q[j] - off[r]))
        want_dense[i] = want_nz[j]
      else
        want_dense[i] = 0
      end
    end
    same(om, mask, "mask out")
    same(onz, want_nz, "quantized nonzero values")
    local dense = C.sparse({ dtype = "uint1", shape = shape, array = om }, { dtype = "fp16", shape = { k }, array = onz }, "fp32")
    same(dense, want_dense, "sparse + quantized chain")
    -- palettized nonzero values: grouped LUTs (V = 1) then vectors (V = 2 along axis 1)
    local idx = codes(rnd, k, 0, 3)
    local lut = floats(rnd, 2 * 4)
    local lm, lnz = C.lut_to_sparse(msrc, src("uint2", { k }, idx), arr({ 2, 1, 4, 1 }, lut), nil, "fp32")
    local want_l, want_ld = {}, {}
    j = 0
    for i = 1, n do
      if mask[i] == 1 then
        j = j + 1
        local g = index_of(shape, i - 1)[1] // 2
        want_l[j] = lut[g * 4 + idx[j] + 1]
        want_ld[i] = want_l[j]
      else
        want_ld[i] = 0
      end
    end
    same(lm, mask, "lut_to_sparse mask")
    same(lnz, want_l, "lut_to_sparse values")
    same(C.sparse({ dtype = "uint1", shape = shape, array = lm }, { dtype = "fp32", shape = { k }, array = lnz }, "fp32"), want_ld, "sparse + palettized chain")
    local vlut = floats(rnd, 4 * 2)
    local vm, vnz = C.lut_to_sparse(msrc, src("uint2", { k }, idx), arr({ 1, 1, 4, 2 }, vlut), 1, "fp32")
    assert.same({ 4, 12 }, vm:shape())
    local want_vm, want_vnz = {}, {}
    for i = 1, n do
      local ix = index_of(shape, i - 1)
      for v = 0, 1 do want_vm[ix[1] * 12 + ix[2] * 2 + v + 1] = mask[i] end
    end
    -- nonzero values in dense output order
    j = 0
    local dense_v = {}
    for i = 1, n do
      local ix = index_of(shape, i - 1)
      if mask[i] == 1 then j = j + 1 end
      for v = 0, 1 do
        dense_v[ix[1] * 12 + ix[2] * 2 + v + 1] = mask[i] == 1 and vlut[idx[j] * 2 + v + 1] or 0
      end
    end
    for o = 1, #want_vm do
      if want_vm[o] == 1 then want_vnz[#want_vnz + 1] = dense_v[o] end
    end
    same(vm, want_vm, "vector mask")
    same(vnz, want_vnz, "vector values")
  end)

  it("lut_to_dense over a quantized LUT (blockwise_shift_scale -> lut_to_dense chain)", function()
    local rnd = lcg(18)
    local lq = codes(rnd, 2 * 16, -128, 127)
    local lsc = floats(rnd, 2, 0.01)
    local lut = C.shift_scale(src("int8", { 2, 1, 16, 1 }, lq), arr({ 2, 1, 1, 1 }, lsc), nil, "fp16")
    local idx = codes(rnd, 8 * 3, 0, 15)
    local a = C.lut({ dtype = "uint4", shape = { 8, 3 }, bytes = pack(idx, 4) }, { dtype = "fp16", shape = { 2, 1, 16, 1 }, array = lut }, nil, "fp16")
    local want = {}
    for i = 1, 24 do
      local g = (i - 1) // 3 // 4
      want[i] = f16(f16(lsc[g + 1] * lq[g * 16 + idx[i] + 1]))
    end
    same(a, want)
  end)

  it("nn_linear: NeuralNetwork linearQuantization, scale * q + bias per output channel", function()
    local rnd = lcg(20)
    for _, case in ipairs({ { 4, 4 }, { 1, 1 }, { 3, 0 }, { 0, 2 }, { 5, 5 } }) do
      local ns, nb = case[1], case[2]
      local n = 22 -- 22 // 5 = 4 per channel leaves two values past the last channel: they read [1]
      local q = codes(rnd, n, 0, 255)
      local sc, bias = floats(rnd, ns, 0.1), floats(rnd, nb, 2)
      local a, err = C.nn_linear(src("uint8", { n }, q), A.new(sc), A.new(bias), "fp32")
      assert.is_nil(err)
      local per = ns > 1 and n // ns or n
      local want = {}
      for i = 1, n do
        local c = (i - 1) // per + 1
        local s = ns == 0 and 1 or (sc[c] or sc[1])
        local b = nb == 0 and 0 or (bias[c] or bias[1])
        want[i] = f32(s * q[i] + b)
      end
      same(a, want, string.format("%d scales, %d biases", ns, nb))
    end
    local _, err = C.nn_linear(src("uint8", { 2 }, { 1, 2 }), A.new({ 1, 2, 3 }), A.new({}), "fp32")
    assert.truthy(err and err:find("3 scales for 2 quantized values", 1, true), tostring(err))
  end)

  it("reads blobs of a weight file from the mmap (model, file, offset)", function()
    local dir = CF.tmpdir()
    local rnd = lcg(19)
    local data = codes(rnd, 64, -8, 7)
    local sc = floats(rnd, 8, 0.1)
    local path = dir .. "/blob.mlpackage"
    CF.constexpr_model(path, { opset = "iOS18", weights = { { name = "w", shape = { 8, 8 } } }, replace = function(ctx, emit, w)
      return { emit.new_op(ctx, "constexpr_blockwise_shift_scale", w.name, {
        { key = "data", dtype = "int4", shape = { 8, 8 }, bytes = pack(unsigned(data, 4), 4) },
        { key = "scale", dtype = "fp32", shape = { 8, 1 }, bytes = A.new(sc):encode("fp32"), data = sc },
      }, { { name = w.name, dtype = "fp32", shape = w.shape } }, 9) }
    end })
    local m = mlsh.load(path)
    local op
    for _, o in ipairs(m:ops()) do if o.type == "constexpr_blockwise_shift_scale" then op = o end end
    local bf = cx.param(op, "data").value_msg.blobFileValue
    assert.truthy(bf, "data is a blob")
    local s = { dtype = "int4", shape = { 8, 8 }, model = m, file = bf.fileName, offset = bf.offset }
    local a, err = C.shift_scale(s, arr({ 8, 1 }, sc), nil, "fp32")
    assert.is_nil(err)
    local want = {}
    for i = 1, 64 do want[i] = f32(sc[(i - 1) // 8 + 1] * data[i]) end
    same(a, want, "blob")
    same(cx.dense(m, op), want, "through mlsh.model.constexpr")
    -- a bad offset or file: an error naming the weight file, no crash
    local _, e1 = C.shift_scale({ dtype = "int4", shape = { 8, 8 }, model = m, file = bf.fileName, offset = bf.offset + 3 }, arr({ 8, 1 }, sc), nil, "fp32")
    assert.truthy(e1 and e1:find("weight.bin", 1, true), tostring(e1))
    local _, e2 = C.shift_scale({ dtype = "int4", shape = { 8, 8 }, model = m, file = bf.fileName, offset = -64 }, arr({ 8, 1 }, sc), nil, "fp32")
    assert.truthy(e2 and e2:find("negative blob offset", 1, true), tostring(e2))
    local _, e3 = C.shift_scale({ dtype = "int4", shape = { 8, 8 }, model = m, file = bf.fileName, offset = 1 << 40 }, arr({ 8, 1 }, sc), nil, "fp32")
    assert.truthy(e3, "offset past the end")
    local _, e4 = C.shift_scale({ dtype = "int4", shape = { 64, 64 }, model = m, file = bf.fileName, offset = bf.offset }, arr({ 64, 1 }, floats(rnd, 64)), nil, "fp32")
    assert.truthy(e4 and e4:find("holds 32 bytes, 4096 int4 values need 2048", 1, true), tostring(e4))
    local _, e5 = C.shift_scale({ dtype = "int4", shape = { 8, 8 }, model = m, file = "@model_path/weights/nope.bin", offset = 64 }, arr({ 8, 1 }, sc), nil, "fp32")
    assert.truthy(e5, "a file the package does not hold")
    m:close()
  end)
end)

describe("core.constexpr refuses malformed inputs with a message", function()
  local function err(ok_or_nil, msg)
    assert.is_nil(ok_or_nil)
    assert.is_string(msg)
    return msg
  end
  local function has(msg, s) assert.truthy(msg:find(s, 1, true), msg) end

  it("sizes: bytes too short, an Array that is not its shape, huge and negative shapes", function()
    has(err(C.shift_scale(src("int8", { 2 }, { 1, 2 }), { dtype = "fp32", shape = { 4 }, bytes = "\0\0\0\0" }, nil, "fp32")),
      "scale holds 4 bytes, 4 fp32 values need 16")
    has(err(C.sparse({ dtype = "uint1", shape = { 100 }, bytes = "\255" }, arr({ 8 }, { 1, 1, 1, 1, 1, 1, 1, 1 }), "fp32")),
      "mask holds 1 bytes, 100 uint1 values need 13")
    has(err(C.cast({ dtype = "fp32", shape = { 3 }, array = A.new({ 1, 2 }) }, "fp32")), "holds 2 values, its shape 3")
    has(err(C.cast({ dtype = "int8", shape = { 1 << 40, 1 << 40 }, bytes = "" }, "fp32")), "bad shape")
    has(err(C.cast({ dtype = "int8", shape = { -1 }, bytes = "" }, "fp32")), "bad shape")
    has(err(C.cast({ dtype = "int8", shape = { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, bytes = "\0" }, "fp32")), "rank 9")
    has(err(C.cast({ dtype = "complex", shape = { 1 }, bytes = "\0" }, "fp32")), "unknown dtype")
  end)

  it("shapes: scales that do not divide, LUT ranks, vector axes, zero points that do not match", function()
    has(err(C.shift_scale(src("int8", { 2, 4 }, { 1, 2, 3, 4, 5, 6, 7, 8 }), arr({ 1, 3 }, { 1, 2, 3 }), nil, "fp32")), "does not divide")
    has(err(C.shift_scale(src("int8", { 2, 4 }, { 1, 2, 3, 4, 5, 6, 7, 8 }), arr({ 2 }, { 1, 2 }), nil, "fp32")), "scale has rank 1, the data rank 2")
    has(err(C.shift_scale(src("int8", { 2, 2 }, { 1, 2, 3, 4 }), arr({ 2, 1 }, { 1, 2 }), src("int8", { 1, 1 }, { 0 }), "fp32")), "offset has 1 values, scale 2")
    has(err(C.lut(src("uint2", { 2, 2 }, { 0, 1, 2, 3 }), arr({ 4, 1 }, { 1, 2, 3, 4 }), nil, "fp32")), "needs rank + 2")
    has(err(C.lut(src("uint2", { 2, 2 }, { 0, 1, 2, 3 }), arr({ 1, 1, 4, 2 }, { 1, 2, 3, 4, 5, 6, 7, 8 }), 5, "fp32")), "vector_axis 5 is outside rank 2")
    has(err(C.lut(src("uint2", { 2, 2 }, { 0, 1, 2, 3 }), arr({ 1, 1, 0, 1 }, {}), nil, "fp32")), "lut of 0 entries")
    has(err(C.affine(src("int8", { 2, 3 }, { 1, 2, 3, 4, 5, 6 }), src("int8", { 2 }, { 0, 0 }), arr({ 2 }, { 1, 1 }), 1, "fp32")), "do not match axis 1")
    has(err(C.affine(src("int8", { 2, 3 }, { 1, 2, 3, 4, 5, 6 }), src("int8", { 3 }, { 0, 0, 0 }), arr({ 2 }, { 1, 1 }), 1, "fp32")), "lengths differ")
    has(err(C.lut_to_sparse(src("uint1", { 4 }, { 1, 0, 1, 1 }), src("uint2", { 3 }, { 0, 1, 2 }), arr({ 4, 1 }, { 1, 2, 3, 4 }), nil, "fp32")), "needs rank + 2")
  end)

  it("values: indices outside the LUT, masks that select more or fewer than the nonzero data", function()
    has(err(C.lut(src("uint4", { 4 }, { 0, 1, 9, 2 }), arr({ 1, 4, 1 }, { 1, 2, 3, 4 }), nil, "fp32")), "index 9 is outside the LUT of 4 entries")
    has(err(C.sparse(src("uint1", { 4 }, { 1, 1, 1, 0 }), arr({ 2 }, { 1, 2 }), "fp32")), "mask selects 3 elements, nonzero_data holds 2")
    has(err(C.sparse(src("uint1", { 4 }, { 1, 0, 0, 0 }), arr({ 2 }, { 1, 2 }), "fp32")), "mask selects 1 elements, nonzero_data holds 2")
    has(err(C.sparse_shift_scale(src("uint1", { 4 }, { 1, 1, 1, 0 }), src("int8", { 2 }, { 1, 2 }), arr({ 1 }, { 1 }), nil, "fp32")),
      "mask selects 3 elements, nonzero_data holds 2")
    has(err(C.lut_to_sparse(src("uint1", { 4 }, { 1, 1, 1, 0 }), src("uint2", { 2 }, { 1, 2 }), arr({ 1, 4, 1 }, { 1, 2, 3, 4 }), nil, "fp32")),
      "indices_mask selects 3 elements, indices_nonzero_data holds 2")
  end)

  it("wrong argument types raise a Lua error (no crash)", function()
    assert.has_error(function() C.cast("nope", "fp32") end)
    assert.has_error(function() C.cast(arr({ 1 }, { 1 }), "fp99") end)
    assert.has_error(function() C.cast({ dtype = "fp32", shape = { 1 } }, "fp32") end)
    assert.has_error(function() C.cast({ dtype = "fp32", shape = { 1 }, model = {}, file = "x", offset = 0 }, "fp32") end)
    assert.has_error(function() C.affine(arr({ 1 }, { 1 }), arr({ 1 }, { 1 }), arr({ 1 }, { 1 }), "x", "fp32") end)
    assert.has_error(function() C.cast({ dtype = "fp32", shape = "1", array = A.new({ 1 }) }, "fp32") end)
  end)
end)
