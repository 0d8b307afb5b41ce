-- compress_spec.lua — the compression kernels against plain Lua references.
-- Quantization, pruning, uniform/unique palettization and packing must match bit for bit;
-- optimal k-means must reach the SNR of an O(k*n^2) dynamic programme written here.
local core = require "mlsh.core"
local C = core.compress
local A = core.array

-- ---------- reference arithmetic ----------

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

local function rne(v) -- round half to even, any sign
  if v ~= v or v == math.huge or v == -math.huge then return v end
  local a = math.abs(v)
  local f = math.floor(a)
  local d = a - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
  return v < 0 and -f or f
end

local function f16(x) -- double -> nearest fp16 value (ties to even), computed independently of C
  if x ~= x or x == 0 or x == math.huge or x == -math.huge then return x end
  local a = math.abs(x)
  if a >= 65520 then return x > 0 and math.huge or -math.huge end
  local e = math.floor(math.log(a, 2))
  while 2.0 ^ e > a do e = e - 1 end
  while 2.0 ^ (e + 1) <= a do e = e + 1 end
  if e < -14 then e = -14 end
  local q = 2.0 ^ (e - 10)
  local r = rne(a / q) * q
  return x < 0 and -r or r
end

-- numpy op in the weight dtype: float32 result, then fp16 for fp16 weights
local function R(wd, v) if wd == "fp16" then return f16(f32(v)) end return f32(v) end
local function Rd(wd, v) if wd == "fp16" then return f16(v) end return f32(v) end -- float64 -> dtype cast

local function randn(n, std, wd, seed)
  local a = C.randn(n, { seed = seed or 1, std = std or 1, weight_dtype = wd or "fp32" })
  return a:totable()
end

local function tolist(a) return type(a) == "table" and a or a:totable() end

local function unravel(i, shape) -- 0-based linear index -> 0-based multi-index
  local idx = {}
  for d = #shape, 1, -1 do
    idx[d] = i % shape[d]
    i = i // shape[d]
  end
  return idx
end

local function same_list(got, want, what)
  got = tolist(got)
  assert.are.equal(#want, #got, (what or "") .. ": length")
  for i = 1, #want do
    local g, w = got[i], want[i]
    if not (g == w or (g ~= g and w ~= w)) then
      error(string.format("%s: element %d is %.17g, expected %.17g", what or "list", i, g, w), 2)
    end
  end
end

local function pack_ref(codes, bits) -- LSB-first, like np.packbits(bitorder="little") for bits=1
  local bytes, acc, nacc = {}, 0, 0
  for _, c in ipairs(codes) do
    acc = acc | (c << nacc)
    nacc = nacc + bits
    while nacc >= 8 do
      bytes[#bytes + 1] = string.char(acc & 0xff)
      acc = acc >> 8
      nacc = nacc - 8
    end
  end
  if nacc > 0 then bytes[#bytes + 1] = string.char(acc & 0xff) end
  return table.concat(bytes)
end

local function bytes_of(s) local t = {} for i = 1, #s do t[i] = s:byte(i) end return t end

-- ---------- reference quantizer (coremltools quantize_weight_by_dtype) ----------

local QR = {
  int8 = { bits = 8, signed = true }, uint8 = { bits = 8, signed = false },
  int4 = { bits = 4, signed = true }, uint4 = { bits = 4, signed = false },
}

local function ref_quantize(vals, shape, block, dtype, symmetric, wd)
  local d = QR[dtype]
  local full = 1 << d.bits
  local qmin, qmax
  if d.signed then qmin, qmax = -full // 2 + (symmetric and 1 or 0), full // 2 - 1
  else qmin, qmax = 0, full - 1 - (symmetric and 1 or 0) end
  local sshape, sstride, ns = {}, {}, 1
  for a = 1, #shape do sshape[a] = block[a] > 0 and shape[a] // block[a] or 1 end
  for a = #shape, 1, -1 do sstride[a] = ns; ns = ns * sshape[a] end
  local function sidx(i)
    local idx, s = unravel(i, shape), 0
    for a = 1, #shape do if block[a] > 0 then s = s + (idx[a] // block[a]) * sstride[a] end end
    return s + 1
  end
  local w, mn, mx = {}, {}, {}
  for i = 1, #vals do
    w[i] = Rd(wd, vals[i])
    local s = sidx(i - 1)
    mn[s] = math.min(mn[s] or math.huge, w[i])
    mx[s] = math.max(mx[s] or -math.huge, w[i])
  end
  local scale, zf, zs = {}, {}, {}
  local has_zp = not (symmetric and d.signed)
  for s = 1, ns do
    local lo, hi
    if symmetric then
      local a = math.max(math.abs(mn[s]), math.abs(mx[s])); lo, hi = -a, a
    else lo, hi = math.min(0, mn[s]), math.max(0, mx[s]) end
    local range = R(wd, hi - lo)
    scale[s] = R(wd, range / (qmax - qmin))
    if has_zp then
      local z
      if symmetric then z = qmax // 2
      else
        local num = R(wd, R(wd, qmin * hi) - R(wd, qmax * lo))
        z = rne(R(wd, num / range))
        if z == z then z = math.max(qmin, math.min(qmax, z)) end
      end
      zf[s] = z
      zs[s] = (z == z) and z or 0
    else zf[s], zs[s] = 0, 0 end
  end
  local codes, recon = {}, {}
  for i = 1, #vals do
    local s = sidx(i - 1)
    local r = rne(R(wd, w[i] / scale[s])) + zf[s]
    local q = r
    if r ~= r then q = 0 else q = math.max(qmin, math.min(qmax, r)) end
    codes[i] = q
    recon[i] = R(wd, (q - zs[s]) * scale[s])
  end
  return { codes = codes, scale = scale, zero_point = has_zp and zs or nil, recon = recon, qmin = qmin, qmax = qmax,
    scale_shape = sshape }
end

-- ---------- reference k-means (O(k n^2) DP on weighted distinct values) ----------

local function distinct(vals)
  local cnt = {}
  for _, v in ipairs(vals) do
    if v == 0 then v = 0.0 end
    cnt[v] = (cnt[v] or 0) + 1
  end
  local xs = {}
  for v in pairs(cnt) do xs[#xs + 1] = v end
  table.sort(xs)
  local ws = {}
  for i, v in ipairs(xs) do ws[i] = cnt[v] end
  return xs, ws
end

local function ref_kmeans_sse(vals, k)
  local x, w = distinct(vals)
  local n = #x
  if k >= n then return 0 end
  local D = {}
  for i = 0, n do D[i] = {} end
  D[0][0] = 0
  for i = 1, n do D[i][0] = math.huge end
  for c = 1, k do
    D[0][c] = 0
    for i = 1, n do
      local best, W, S, Q = D[i][c - 1], 0, 0, 0
      for j = i, 1, -1 do
        W = W + w[j]; S = S + w[j] * x[j]; Q = Q + w[j] * x[j] * x[j]
        local v = D[j - 1][c - 1] + (Q - S * S / W)
        if v < best then best = v end
      end
      D[i][c] = best
    end
  end
  return math.max(D[n][k], 0)
end

local function sum_sq(vals) local s = 0 for _, v in ipairs(vals) do s = s + v * v end return s end

-- ---------- reference percentile (NumPy 1.x linear) and pruning ----------

local function ref_threshold(scores, sparsity, wd)
  local q = sparsity * 100.0
  if q == 100.0 then return math.huge end
  if q == 0.0 then return -1 end
  local s = {}
  for i, v in ipairs(scores) do s[i] = math.abs(v) end
  table.sort(s)
  local n = #s
  local vi = (n - 1) * (q / 100.0)
  local lo, hi, gamma
  if vi >= n - 1 then lo, hi, gamma = n - 1, n - 1, 0 else lo = math.floor(vi); hi = lo + 1; gamma = vi - lo end
  local a, b = s[lo + 1], s[hi + 1]
  local diff = R(wd, b - a)
  local t = gamma >= 0.5 and (b - diff * (1 - gamma)) or (a + diff * gamma)
  return Rd(wd, t)
end

local function ref_prune_by_scores(w, scores, thr)
  local out = {}
  for i, v in ipairs(w) do
    if thr == math.huge or math.abs(scores[i]) <= thr then out[i] = 0 else out[i] = v end
  end
  return out
end

-- [outer, C, inner] around an axis
local function axis_view(shape, axis)
  local outer, inner = 1, 1
  for a = 1, axis do outer = outer * shape[a] end
  for a = axis + 2, #shape do inner = inner * shape[a] end
  return outer, shape[axis + 1], inner
end

local function ref_block_scores(w, shape, dim, bs, wd)
  local outer, Cn, inner = axis_view(shape, dim)
  local sc = {}
  for o = 0, outer - 1 do
    for c0 = 0, Cn - 1, bs do
      for i = 0, inner - 1 do
        local acc
        for ch = c0, math.min(c0 + bs, Cn) - 1 do
          local v = w[(o * Cn + ch) * inner + i + 1]
          local sq = R(wd, v * v)
          acc = acc and R(wd, acc + sq) or sq
        end
        acc = R(wd, math.sqrt(acc))
        for ch = c0, math.min(c0 + bs, Cn) - 1 do sc[(o * Cn + ch) * inner + i + 1] = acc end
      end
    end
  end
  return sc
end

local function ref_nm(w, shape, dim, n, m)
  local outer, Cn, inner = axis_view(shape, dim)
  local out = {}
  for i, v in ipairs(w) do out[i] = v end
  for o = 0, outer - 1 do
    for i = 0, inner - 1 do
      for g0 = 0, Cn - 1, m do
        local items = {}
        for f = 0, m - 1 do
          local ch = g0 + f
          local mag = ch < Cn and math.abs(w[(o * Cn + ch) * inner + i + 1]) or 0
          items[#items + 1] = { mag = mag, pos = f }
        end
        table.sort(items, function(p, q) if p.mag ~= q.mag then return p.mag < q.mag end return p.pos < q.pos end)
        for k = 1, n do
          local ch = g0 + items[k].pos
          if ch < Cn then out[(o * Cn + ch) * inner + i + 1] = 0 end
        end
      end
    end
  end
  return out
end

local function mask_of(vals) local m = {} for i, v in ipairs(vals) do m[i] = v ~= 0 and 1 or 0 end return m end

-- ---------- tests ----------

describe("compress.pack / unpack", function()
  it("packs every sub-byte width LSB-first and round-trips", function()
    math.randomseed(7)
    for _, bits in ipairs({ 1, 2, 3, 4, 6, 8 }) do
      for _, n in ipairs({ 1, 7, 8, 37, 64 }) do
        local codes = {}
        for i = 1, n do codes[i] = math.random(0, (1 << bits) - 1) end
        local packed = C.pack(codes, bits)
        assert.are.equal(pack_ref(codes, bits), packed, "bits " .. bits .. " n " .. n)
        assert.are.equal((n * bits + 7) // 8, #packed)
        same_list(bytes_of(C.unpack(packed, bits, n)), codes, "unpack " .. bits)
        local s = {}
        for i = 1, n do s[i] = string.char(codes[i]) end
        assert.are.equal(packed, C.pack(table.concat(s), bits))
      end
    end
  end)

  it("refuses codes that do not fit and short buffers", function()
    assert.has_error(function() C.pack({ 0, 4 }, 2) end, "compress.pack: code 2 (value 4) does not fit in 2 bits")
    assert.has_error(function() C.pack({ 1 }, 0) end, "compress.pack: nbits must be 1..8 (got 0)")
    assert.has_error(function() C.unpack("\1", 4, 3) end, "compress.unpack: 1 bytes cannot hold 3 codes of 4 bits")
  end)
end)

describe("compress.quantize", function()
  it("matches hand-computed coremltools values", function()
    local r = C.quantize({ -1, 0.5, 0.25, 1 }, { granularity = "per_tensor" })
    same_list(r.codes, { -127, 64, 32, 127 }, "int8 symmetric")
    assert.are.equal(f32(1 / 127), r.scale[1])
    assert.is_nil(r.zero_point)
    assert.are.equal(-127, r.qmin)
    r = C.quantize({ -1, 0.5, 0.25, 1 }, { dtype = "uint8", granularity = "per_tensor" })
    same_list(r.codes, { 0, 191, 159, 254 }, "uint8 symmetric")
    assert.are.equal(127, r.zero_point[1])
    r = C.quantize({ 0, 1, 2, 3 }, { dtype = "uint8", symmetric = false, granularity = "per_tensor" })
    same_list(r.codes, { 0, 85, 170, 255 }, "uint8 affine")
    assert.are.equal(0, r.zero_point[1])
    -- round half to even after w/scale, with scale exactly 1
    r = C.quantize({ 127, 0.5, 1.5, 2.5, -2.5, -0.5 }, { granularity = "per_tensor" })
    same_list(r.codes, { 127, 0, 2, 2, -2, 0 }, "half to even")
    r = C.quantize({ -7, 3.5, 1 }, { dtype = "int4", granularity = "per_tensor" })
    same_list(r.codes, { -7, 4, 1 }, "int4")
    assert.are.equal("\x49\x01", r.data)
    assert.are.equal(2 + 4, r.nbytes) -- 3 nibbles + one fp32 scale
  end)

  local cases = {
    { shape = { 6, 8 }, opts = { granularity = "per_tensor" }, block = { 0, 0 } },
    { shape = { 6, 8 }, opts = { granularity = "per_channel" }, block = { 1, 0 } },
    { shape = { 6, 8 }, opts = { granularity = "per_channel", axis = 1 }, block = { 0, 1 } },
    { shape = { 6, 8 }, opts = { granularity = "per_channel", axis = -1 }, block = { 0, 1 } },
    { shape = { 6, 8 }, opts = { granularity = "per_block", block_size = 4 }, block = { 1, 4 } },
    { shape = { 8, 6 }, opts = { granularity = "per_block", axis = 1, block_size = 2 }, block = { 2, 1 } },
    { shape = { 4, 6, 8 }, opts = { block_sizes = { 1, 0, 4 } }, block = { 1, 0, 4 } },
  }
  for _, dtype in ipairs({ "int8", "uint8", "int4", "uint4" }) do
    for _, sym in ipairs({ true, false }) do
      for _, wd in ipairs({ "fp32", "fp16" }) do
        it(string.format("is bit-exact: %s %s %s", dtype, sym and "symmetric" or "affine", wd), function()
          for ci, case in ipairs(cases) do
            local n = 1
            for _, d in ipairs(case.shape) do n = n * d end
            local vals = randn(n, 0.05, "fp32", ci)
            vals[3] = 0.5 * vals[3] + 0.01 -- shift some mass so affine zero points are not trivial
            local a = A.new(vals, case.shape)
            local opts = { dtype = dtype, symmetric = sym, weight_dtype = wd }
            for k, v in pairs(case.opts) do opts[k] = v end
            local r = C.quantize(a, opts)
            local ref = ref_quantize(vals, case.shape, case.block, dtype, sym, wd)
            local what = dtype .. " case " .. ci
            same_list(r.codes, ref.codes, what .. " codes")
            same_list(r.scale, ref.scale, what .. " scale")
            same_list(r.scale:shape(), ref.scale_shape, what .. " scale shape")
            if ref.zero_point then same_list(r.zero_point, ref.zero_point, what .. " zp") else assert.is_nil(r.zero_point) end
            same_list(r.reconstructed, ref.recon, what .. " recon")
            same_list(r.block_sizes, case.block, what .. " block sizes")
            -- data holds the codes in the dtype's own encoding
            same_list(A.decode(r.data, dtype, n), ref.codes, what .. " data")
          end
        end)
      end
    end
  end

  it("handles all-zero blocks like numpy on x86 (0/0 -> code 0) and fp16 overflow", function()
    local r = C.quantize(A.new({ 0, 0, 0, 0, 1, -2, 3, 4 }, { 2, 4 }), { dtype = "uint8", symmetric = false })
    -- second row: lo -2, hi 4, scale 6/255, zp round(510/6) = 85; 1/scale = 42.5 -> 42 (half to even)
    same_list(r.codes, { 0, 0, 0, 0, 127, 0, 213, 255 }, "codes")
    same_list(r.zero_point, { 0, 85 }, "zp")
    same_list(r.reconstructed:totable(4), { 0, 0, 0, 0 }, "zero block")
    local ref = ref_quantize({ 0, 0, 0, 0, 1, -2, 3, 4 }, { 2, 4 }, { 1, 0 }, "uint8", false, "fp32")
    same_list(r.codes, ref.codes, "vs reference")
    -- tiny block in fp16: scale underflows to 0, w/scale overflows to inf and clips
    local t = { 1e-6, -1e-6, 0, 2e-6 }
    r = C.quantize(t, { granularity = "per_tensor", weight_dtype = "fp16" })
    ref = ref_quantize(t, { 4 }, { 0 }, "int8", true, "fp16")
    same_list(r.codes, ref.codes, "fp16 tiny")
    same_list(r.scale, ref.scale, "fp16 tiny scale")
  end)

  it("refuses bad arguments", function()
    local a = A.new({ 1, 2, 3, 4, 5, 6 }, { 2, 3 })
    assert.has_error(function() C.quantize(a, { dtype = "int2" }) end,
      "compress.quantize: unknown dtype 'int2' (expected int8, uint8, int4, uint4)")
    assert.has_error(function() C.quantize(a, { granularity = "per_block", block_size = 2 }) end,
      "compress.quantize: block size 2 does not divide dimension 3 of axis 1")
    assert.has_error(function() C.quantize(a, { granularity = "per_row" }) end,
      "compress.quantize: unknown granularity 'per_row' (expected per_channel, per_tensor, per_block)")
    assert.has_error(function() C.quantize({ 1, 2 }, { granularity = "per_block" }) end,
      "compress.quantize: per_block needs a tensor of rank >= 2")
    assert.has_error(function() C.quantize(a, { block_sizes = { 1 } }) end,
      "compress.quantize: block_sizes needs one entry per axis (2)")
    assert.has_error(function() C.quantize(a, { axis = 2 }) end, "compress.quantize: axis 2 is out of range for rank 2")
    assert.has_error(function() C.quantize(a, { block_size = 3 }) end,
      "compress.quantize: block_size needs granularity per_block")
    assert.has_error(function() C.quantize({}, {}) end, "compress.quantize: empty array")
    assert.has_error(function() C.quantize({ 1, 0 / 0 }, {}) end, "compress.quantize: input holds NaN or infinity")
    assert.has_error(function() C.quantize({ 1, math.huge }, {}) end, "compress.quantize: input holds NaN or infinity")
    assert.has_error(function() C.quantize(a, { symetric = true }) end, "compress.quantize: unknown option 'symetric'")
    assert.has_error(function() C.quantize(a, { shape = { 4, 2 } }) end, "compress.quantize: shape holds 8 elements, array has 6")
    assert.has_error(function() C.quantize(a, { weight_dtype = "bf16" }) end,
      "compress.quantize: unknown weight_dtype 'bf16' (expected fp32, fp16)")
  end)
end)

describe("compress.palettize", function()
  it("kmeans reaches the optimal SSE (per tensor)", function()
    math.randomseed(11)
    for trial = 1, 12 do
      local n = 20 + trial * 7
      local vals = {}
      for i = 1, n do vals[i] = f32(math.floor(math.random() * 40) / 7 - 3 + (trial % 3) * math.random() * 0.01) end
      for _, nbits in ipairs({ 1, 2, 3 }) do
        local r = C.palettize(vals, { nbits = nbits, mode = "kmeans" })
        local sse = ref_kmeans_sse(vals, 1 << nbits)
        local m = C.metrics(vals, r.reconstructed)
        if sse == 0 then
          assert.are.equal(math.huge, m.snr_db)
        else
          local want = 10 * math.log(sum_sq(vals) / sse, 10)
          assert.is_true(math.abs(m.snr_db - want) < 1e-6,
            string.format("trial %d nbits %d: snr %.9f, optimal %.9f", trial, nbits, m.snr_db, want))
        end
        assert.is_true(r.exact)
      end
    end
  end)

  it("kmeans is optimal per channel group, on either axis", function()
    local shape = { 8, 12 }
    local vals = randn(96, 1, "fp16", 5)
    for _, axis in ipairs({ 0, 1 }) do
      local G = axis == 0 and 4 or 3
      local r = C.palettize(A.new(vals, shape), { nbits = 2, granularity = "per_grouped_channel", group_size = G, axis = axis })
      local groups = shape[axis + 1] // G
      assert.are.equal(groups, r.groups)
      same_list(r.lut:shape(), { groups, 4 }, "lut shape")
      local lut_shape = { 1, 1, 4, 1 }
      lut_shape[axis + 1] = groups
      same_list(r.lut_shape, lut_shape, "lut_shape")
      local outer, Cn, inner = axis_view(shape, axis)
      local rec, lut = r.reconstructed:totable(), r.lut:totable()
      for g = 0, groups - 1 do
        local member, sse = {}, 0
        for i = 1, #vals do
          local idx = unravel(i - 1, shape)
          if idx[axis + 1] // G == g then
            member[#member + 1] = vals[i]
            sse = sse + (vals[i] - rec[i]) ^ 2
            local code = r.codes:byte(i)
            assert.are.equal(lut[g * 4 + code + 1], rec[i], "recon is lut[code]")
          end
        end
        local want = ref_kmeans_sse(member, 4)
        assert.is_true(math.abs(sse - want) <= 1e-6 * want, string.format("axis %d group %d: %.12g vs %.12g", axis, g, sse, want))
        for k = 1, 3 do assert.is_true(lut[g * 4 + k] < lut[g * 4 + k + 1], "lut ascending") end
      end
      assert.are.equal(Cn * outer * inner, #vals)
    end
  end)

  it("gives the same LUT and codes through the fp16 histogram and the sort path", function()
    local a = C.randn({ 64, 256 }, { seed = 3, std = 0.02, weight_dtype = "fp16" })
    for _, nbits in ipairs({ 4, 8 }) do
      for _, gran in ipairs({ "per_tensor", "per_grouped_channel" }) do
        local o = { nbits = nbits, granularity = gran, weight_dtype = "fp16" }
        if gran ~= "per_tensor" then o.group_size = 16 end
        local h = C.palettize(a, o)
        o.distinct = "sort"
        local s = C.palettize(a, o)
        assert.are.equal(h.lut:encode("fp32"), s.lut:encode("fp32"))
        assert.are.equal(h.codes, s.codes)
        assert.are.equal(h.indices, s.indices)
      end
    end
  end)

  it("reaches the Lloyd-Max SNR on Gaussian weights and packs its indices", function()
    local a = C.randn(200000, { seed = 9, std = 0.02, weight_dtype = "fp16" })
    local r = C.palettize(a, { nbits = 4, weight_dtype = "fp16" })
    local snr = C.metrics(a, r.reconstructed).snr_db
    assert.is_true(snr > 20.1 and snr < 20.35, "4-bit SNR " .. snr)
    assert.are.equal(100000, #r.indices)
    assert.are.equal(C.pack(r.codes, 4), r.indices)
    assert.are.equal(100000 + 16 * 2, r.nbytes)
    local r8 = C.palettize(a, { nbits = 8, weight_dtype = "fp16" })
    assert.is_true(C.metrics(a, r8.reconstructed).snr_db > 40)
    for _, v in ipairs(r8.lut:totable()) do assert.are.equal(f16(v), v, "fp16 LUT") end
  end)

  it("uniform mode is bit-exact with coremltools' formula", function()
    for _, wd in ipairs({ "fp32", "fp16" }) do
      for _, nbits in ipairs({ 2, 3, 6 }) do
        local vals = randn(40, 0.3, "fp32", nbits)
        local r = C.palettize(vals, { nbits = nbits, mode = "uniform", weight_dtype = wd })
        local w = {}
        for i, v in ipairs(vals) do w[i] = Rd(wd, v) end
        local mn, mx = math.huge, -math.huge
        for _, v in ipairs(w) do mn = math.min(mn, v); mx = math.max(mx, v) end
        local K = (1 << nbits) - 1
        local range = R(wd, mx - mn)
        local scale = R(wd, range / K)
        local lut = {}
        for k = 0, K do lut[k + 1] = Rd(wd, k * scale + mn) end
        local codes, rec = {}, {}
        for i, v in ipairs(w) do
          local t = rne(R(wd, R(wd, R(wd, v - mn) / range) * K))
          codes[i] = t
          rec[i] = lut[t + 1]
        end
        same_list(r.lut, lut, "uniform lut " .. wd)
        same_list(bytes_of(r.codes), codes, "uniform codes " .. wd)
        same_list(r.reconstructed, rec, "uniform recon " .. wd)
      end
    end
  end)

  it("unique mode lists the distinct values and picks nbits", function()
    local vals = { 3, -1, 0.5, 3, -0.0, 0, 0.5, 7, -1 }
    local r = C.palettize(vals, { mode = "unique" })
    assert.are.equal(3, r.nbits) -- 5 distinct values (-0 == 0)
    same_list(r.lut, { -1, 0, 0.5, 3, 7, 0, 0, 0 }, "lut")
    same_list(bytes_of(r.codes), { 3, 0, 2, 3, 1, 1, 2, 4, 0 }, "codes")
    same_list(r.reconstructed, { 3, -1, 0.5, 3, 0, 0, 0.5, 7, -1 }, "recon")
    -- grouped: nbits is the widest any group needs
    r = C.palettize(A.new({ 1, 1, 2, 2, 1, 2, 3, 4 }, { 4, 2 }), { mode = "unique", granularity = "per_grouped_channel", group_size = 2 })
    assert.are.equal(2, r.nbits)
    same_list(r.lut, { 1, 2, 0, 0, 1, 2, 3, 4 }, "grouped lut")
  end)

  it("per-channel scale divides by max|w| over the channel axis and scales back", function()
    local shape = { 4, 6 }
    for _, wd in ipairs({ "fp32", "fp16" }) do
      local vals = randn(24, 0.1, "fp32", 21)
      for j = 0, 5 do vals[3 * 6 + j + 1] = vals[3 * 6 + j + 1] * 10 end
      vals[2] = 0; vals[8] = 0; vals[14] = 0; vals[20] = 0 -- column 1 all zero: scale 1
      local r = C.palettize(A.new(vals, shape), { nbits = 3, mode = "uniform", per_channel_scale = true, weight_dtype = wd })
      same_list(r.scale:shape(), { 1, 6 }, "scale shape")
      local s = {}
      for j = 0, 5 do
        local m = 0
        for i = 0, 3 do m = math.max(m, math.abs(Rd(wd, vals[i * 6 + j + 1]))) end
        s[j + 1] = m == 0 and 1 or m
      end
      same_list(r.scale, s, "scale " .. wd)
      local w = {}
      for i, v in ipairs(vals) do w[i] = R(wd, Rd(wd, v) / s[(i - 1) % 6 + 1]) end
      local mn, mx = math.huge, -math.huge
      for _, v in ipairs(w) do mn = math.min(mn, v); mx = math.max(mx, v) end
      local range, K = R(wd, mx - mn), 7
      local scale = R(wd, range / K)
      local rec = {}
      for i, v in ipairs(w) do
        local t = rne(R(wd, R(wd, R(wd, v - mn) / range) * K))
        rec[i] = R(wd, Rd(wd, t * scale + mn) * s[(i - 1) % 6 + 1])
      end
      same_list(r.reconstructed, rec, "pcs recon " .. wd)
    end
  end)

  it("falls back to a refined approximation when n*k is too large for the exact DP", function()
    local a = C.randn(140000, { seed = 4, std = 1 }) -- fp32: ~all distinct; 140000*256 > 2^25 cells
    local r = C.palettize(a, { nbits = 8 })
    assert.is_false(r.exact)
    assert.is_true(C.metrics(a, r.reconstructed).snr_db > 40)
    local r4 = C.palettize(a, { nbits = 4 })
    assert.is_true(r4.exact)
    assert.is_true(math.abs(C.metrics(a, r4.reconstructed).snr_db - 20.22) < 0.1)
  end)

  it("refuses bad arguments", function()
    local a = A.new({ 1, 2, 3, 4, 5, 6, 7, 8 }, { 4, 2 })
    assert.has_error(function() C.palettize(a, { nbits = 5 }) end,
      "compress.palettize: nbits must be one of 1, 2, 3, 4, 6, 8 (got 5)")
    assert.has_error(function() C.palettize(a, { mode = "kmedoids" }) end,
      "compress.palettize: unknown mode 'kmedoids' (expected kmeans, uniform, unique)")
    assert.has_error(function() C.palettize(a, { granularity = "per_grouped_channel", group_size = 3 }) end,
      "compress.palettize: group_size 3 does not divide the 4 channels of axis 0")
    assert.has_error(function() C.palettize(a, { group_size = 2 }) end,
      "compress.palettize: group_size needs granularity per_grouped_channel")
    assert.has_error(function() C.palettize(A.new(0), {}) end, "compress.palettize: empty array")
    assert.has_error(function() C.palettize(a, { mode = "unique", nbits = 4 }) end,
      "compress.palettize: nbits must not be given with mode unique (it is chosen)")
    local many = {}
    for i = 1, 300 do many[i] = i end
    assert.has_error(function() C.palettize(many, { mode = "unique" }) end,
      "compress.palettize: more than 256 distinct values in a group (mode unique needs <= 256)")
    assert.has_error(function() C.palettize({ 1, 0 / 0, 2 }, {}) end, "compress.palettize: input holds NaN or infinity")
    assert.has_error(function() C.palettize({ 1, -math.huge }, { per_channel_scale = true }) end,
      "compress.palettize: input holds NaN or infinity")
    assert.has_error(function() C.palettize(a, { nbit = 4 }) end, "compress.palettize: unknown option 'nbit'")
    assert.has_error(function() C.palettize(a, { axis = -3 }) end, "compress.palettize: axis -3 is out of range for rank 2")
    assert.has_error(function() C.palettize(a, { nbits = "4" }) end, "compress.palettize: option 'nbits' must be an integer")
  end)
end)

describe("compress.prune", function()
  it("threshold mode compares |w| with the threshold cast to the weight dtype", function()
    local vals = { 0.1, -0.05, 0.00001, 0, -0.2, 0.05 }
    local r = C.prune(vals, { mode = "threshold", threshold = 0.05 })
    same_list(r.reconstructed, { f32(0.1), 0, 0, 0, f32(-0.2), 0 }, "fp32")
    assert.are.equal(4 / 6, r.sparsity)
    -- the default 1e-12 is 0 in fp16: only exact zeros go
    r = C.prune(vals, { mode = "threshold", weight_dtype = "fp16" })
    assert.are.equal(0, r.threshold)
    assert.are.equal(5, r.nnz)
  end)

  it("magnitude mode follows numpy's percentile and prunes ties", function()
    for _, wd in ipairs({ "fp32", "fp16" }) do
      for trial, sp in ipairs({ 0.1, 0.3, 0.5, 0.75, 0.9, 0.37 }) do
        local vals = randn(101 + trial * 13, 0.02, "fp32", trial)
        local w = {}
        for i, v in ipairs(vals) do w[i] = Rd(wd, v) end
        local r = C.prune(vals, { sparsity = sp, weight_dtype = wd })
        local thr = ref_threshold(w, sp, wd)
        local want = ref_prune_by_scores(w, w, thr)
        same_list(r.reconstructed, want, string.format("%s sparsity %g", wd, sp))
        assert.are.equal(thr, r.threshold)
      end
    end
    -- ties at the threshold are all pruned, so the result is sparser than asked
    local r = C.prune({ 1, 1, 1, 1, 2, 3, 4, 5 }, { sparsity = 0.25 })
    same_list(r.reconstructed, { 0, 0, 0, 0, 2, 3, 4, 5 }, "ties")
    assert.are.equal(0.5, r.sparsity)
    r = C.prune({ 1, -2, 3 }, { sparsity = 1 })
    same_list(r.reconstructed, { 0, 0, 0 }, "sparsity 1")
    r = C.prune({ 1, -2, 0, 3 }, { sparsity = 0 })
    same_list(r.reconstructed, { 1, -2, 0, 3 }, "sparsity 0")
    assert.are.equal(0.25, r.sparsity)
  end)

  it("emits the uint1 mask, byte mask and non-zeros in row-major order", function()
    local vals = randn(45, 1, "fp32", 31)
    local r = C.prune(vals, { sparsity = 0.6 })
    local want = ref_prune_by_scores(vals, vals, ref_threshold(vals, 0.6, "fp32"))
    local m = mask_of(want)
    assert.are.equal(pack_ref(m, 1), r.mask)
    same_list(bytes_of(r.mask_bytes), m, "byte mask")
    local nz = {}
    for _, v in ipairs(want) do if v ~= 0 then nz[#nz + 1] = v end end
    same_list(r.nonzero, nz, "nonzero")
    assert.are.equal(#nz, r.nnz)
    assert.are.equal(6 + #nz * 4, r.nbytes)
  end)

  it("gives the non-zeros stored in the weight dtype (nonzero_bytes) and the Array when read", function()
    for _, wd in ipairs({ "fp32", "fp16" }) do
      local vals = randn(1000, 1, wd, 33)
      local r = C.prune(vals, { sparsity = 0.5, weight_dtype = wd })
      local nz = {}
      for i = 1, #vals do
        if r.mask:byte((i - 1) // 8 + 1) >> ((i - 1) % 8) & 1 == 1 then nz[#nz + 1] = r.reconstructed[i] end
      end
      assert.are.equal(wd, r.nonzero_dtype)
      assert.are.equal(#nz, r.nnz)
      local want = {}
      for i, v in ipairs(nz) do want[i] = string.pack("<f", v) end
      -- fp32 by hand; fp16 as the Array encoder (the path emit took before) writes it
      local bytes = wd == "fp32" and table.concat(want) or require("mlsh.core").array.new(nz):encode("fp16")
      assert.are.equal(#nz * (wd == "fp16" and 2 or 4), #r.nonzero_bytes)
      assert.are.equal(bytes, r.nonzero_bytes)
      same_list(r.nonzero, nz, "nonzero " .. wd)
    end
  end)

  it("block mode scores runs of channels by their L2 norm (dim 0 and 1, padding)", function()
    for _, wd in ipairs({ "fp32", "fp16" }) do
      for _, case in ipairs({
        { shape = { 8, 6 }, dim = 0, bs = 2 }, { shape = { 6, 8 }, dim = 1, bs = 4 },
        { shape = { 7, 5 }, dim = 0, bs = 3 }, { shape = { 4, 7, 3 }, dim = 1, bs = 3 },
      }) do
        local n = 1
        for _, d in ipairs(case.shape) do n = n * d end
        local vals = randn(n, 0.01, "fp32", n)
        local w = {}
        for i, v in ipairs(vals) do w[i] = Rd(wd, v) end
        local r = C.prune(A.new(vals, case.shape), { sparsity = 0.5, block_size = case.bs, dim = case.dim, weight_dtype = wd })
        local sc = ref_block_scores(w, case.shape, case.dim, case.bs, wd)
        local want = ref_prune_by_scores(w, sc, ref_threshold(sc, 0.5, wd))
        same_list(r.reconstructed, want, string.format("%s dim %d block %d", wd, case.dim, case.bs))
      end
    end
  end)

  it("n:m mode prunes the n smallest of every m along dim (stable ties, padding)", function()
    for _, case in ipairs({
      { shape = { 4, 10 }, dim = 1, n = 2, m = 4 }, { shape = { 9, 3 }, dim = 0, n = 2, m = 4 },
      { shape = { 3, 16 }, dim = 1, n = 3, m = 8 }, { shape = { 2, 3, 12 }, dim = 1, n = 1, m = 1 },
      { shape = { 2, 140 }, dim = 1, n = 40, m = 70 },
    }) do
      local n = 1
      for _, d in ipairs(case.shape) do n = n * d end
      local vals = randn(n, 1, "fp16", n)
      for i = 1, n, 5 do vals[i] = 0.5 end -- ties
      for i = 2, n, 7 do vals[i] = -0.5 end
      local r = C.prune(A.new(vals, case.shape), { n_m = { case.n, case.m }, dim = case.dim })
      local want = ref_nm(vals, case.shape, case.dim, case.n, case.m)
      same_list(r.reconstructed, want, string.format("%d:%d dim %d", case.n, case.m, case.dim))
      assert.is_nil(r.threshold)
    end
  end)

  it("refuses bad arguments and settings coremltools skips", function()
    local a = A.new(randn(24, 1), { 4, 6 })
    assert.has_error(function() C.prune(a, { sparsity = 1.5 }) end, "compress.prune: sparsity must be in [0, 1] (got 1.5)")
    assert.has_error(function() C.prune(a, { sparsity = 0.5, n_m = { 2, 4 } }) end,
      "compress.prune: magnitude pruning takes exactly one of sparsity and n_m")
    assert.has_error(function() C.prune(a, {}) end, "compress.prune: magnitude pruning takes exactly one of sparsity and n_m")
    assert.has_error(function() C.prune(a, { n_m = { 5, 4 } }) end, "compress.prune: n_m must be integers with 0 <= n <= m, m >= 1")
    assert.has_error(function() C.prune(a, { n_m = { 2, 4 } }) end,
      "compress.prune: m=4 is more than half of the 6 channels of dim 1 (coremltools skips this tensor)")
    assert.has_error(function() C.prune(a, { sparsity = 0.5, block_size = 3 }) end,
      "compress.prune: block_size 3 is more than half of the 4 channels of dim 0 (coremltools skips this tensor)")
    assert.has_error(function() C.prune(a, { sparsity = 0.5, block_size = 1 }) end,
      "compress.prune: block_size must be an integer > 1 (got 1)")
    assert.has_error(function() C.prune(a, { mode = "threshold", sparsity = 0.5 }) end,
      "compress.prune: mode threshold takes only threshold")
    assert.has_error(function() C.prune(a, { sparsity = 0.5, threshold = 0.1 }) end,
      "compress.prune: threshold needs mode threshold")
    assert.has_error(function() C.prune(a, { n_m = { 1, 2 }, dim = 2 }) end, "compress.prune: dim must be 0 or 1 (got 2)")
    assert.has_error(function() C.prune({ 1, 2, 3, 4 }, { n_m = { 1, 2 } }) end,
      "compress.prune: structured pruning needs a tensor of rank >= 2")
    assert.has_error(function() C.prune(a, { mode = "random", sparsity = 0.5 }) end,
      "compress.prune: unknown mode 'random' (expected magnitude, threshold)")
    assert.has_error(function() C.prune({}, { sparsity = 0.5 }) end, "compress.prune: empty array")
    assert.has_error(function() C.prune({ 0 / 0, 1 }, { sparsity = 0.5 }) end, "compress.prune: input holds NaN or infinity")
  end)
end)

describe("compress joint modes", function()
  it("prune_palettize clusters the dense pruned tensor and keeps codes of non-zeros", function()
    local a = A.new(randn(256, 0.02, "fp16", 41), { 16, 16 })
    local r = C.prune_palettize(a, { sparsity = 0.5, weight_dtype = "fp16" }, { nbits = 2 })
    local p = C.prune(a, { sparsity = 0.5, weight_dtype = "fp16" })
    local q = C.palettize(p.reconstructed, { nbits = 2, weight_dtype = "fp16" })
    assert.are.equal(p.mask, r.mask)
    assert.are.equal(p.nnz, #r.codes)
    same_list(r.lut, q.lut:totable(), "lut of the dense pruned tensor")
    local rec, qrec, kept = r.reconstructed:totable(), q.reconstructed:totable(), {}
    for i = 1, 256 do
      if p.mask_bytes:byte(i) == 1 then
        kept[#kept + 1] = q.codes:byte(i)
        assert.are.equal(qrec[i], rec[i])
      else
        assert.are.equal(0, rec[i])
      end
    end
    same_list(bytes_of(r.codes), kept, "kept codes")
    assert.are.equal(C.pack(r.codes, 2), r.indices)
    assert.are.equal(32 + (p.nnz * 2 + 7) // 8 + 4 * 2, r.nbytes)
  end)

  it("prune_quantize quantizes the dense pruned tensor and keeps codes of non-zeros", function()
    local a = A.new(randn(96, 0.02, "fp32", 43), { 8, 12 })
    local r = C.prune_quantize(a, { n_m = { 2, 4 } }, { dtype = "int4", granularity = "per_block", block_size = 4 })
    local p = C.prune(a, { n_m = { 2, 4 } })
    local q = C.quantize(p.reconstructed, { dtype = "int4", granularity = "per_block", block_size = 4 })
    same_list(r.scale, q.scale:totable(), "scale")
    local kept, qc, rec, qrec = {}, q.codes:totable(), r.reconstructed:totable(), q.reconstructed:totable()
    for i = 1, 96 do
      if p.mask_bytes:byte(i) == 1 then
        kept[#kept + 1] = qc[i]
        assert.are.equal(qrec[i], rec[i])
      else
        assert.are.equal(0, rec[i])
      end
    end
    same_list(r.codes, kept, "kept codes")
    same_list(A.decode(r.data, "int4", #kept), kept, "data")
    assert.are.equal(0.5, r.sparsity)
  end)
end)

describe("compress result tables", function()
  it("unpack codes and mask_bytes on first access and keep them", function()
    local p = C.palettize({ 1, 2, 3, 4, 5, 6, 7, 8, 9 }, { nbits = 2 })
    local listed = {}
    for k in pairs(p) do listed[k] = true end
    assert.is_nil(listed.codes)
    assert.are.equal(9, p.ncodes)
    assert.are.equal(C.unpack(p.indices, 2, 9), p.codes)
    assert.is_true(rawget(p, "codes") ~= nil)
    local q = C.quantize(A.new({ -1, 0.5, 0.25, 1, 0, 2 }, { 2, 3 }), { dtype = "int4" })
    same_list(q.codes:shape(), { 2, 3 }, "codes keep the tensor shape")
    assert.are.equal(q.codes, q.codes)
    local r = C.prune({ 3, 0, -1, 2 }, { sparsity = 0.5 })
    assert.are.equal("\1\0\0\1", r.mask_bytes)
    assert.is_nil(r.no_such_field)
  end)
end)

describe("compress.metrics", function()
  it("matches a direct computation", function()
    local x = { 1, -2, 3, 0.5, 0 }
    local y = { 1.1, -2, 2.5, 0, 0 }
    local m = C.metrics(x, y, { weight_dtype = "fp16", nbytes = 4 })
    local xx, ee, xy, yy, ae, mx = 0, 0, 0, 0, 0, 0
    for i = 1, 5 do
      local a, b = f32(x[i]), f32(y[i])
      xx = xx + a * a; yy = yy + b * b; xy = xy + a * b
      ee = ee + (a - b) ^ 2; ae = ae + math.abs(a - b); mx = math.max(mx, math.abs(a - b))
    end
    assert.is_true(math.abs(m.snr_db - 10 * math.log(xx / ee, 10)) < 1e-12)
    assert.is_true(math.abs(m.psnr_db - 10 * math.log(9 / (ee / 5), 10)) < 1e-12)
    assert.is_true(math.abs(m.cosine - xy / math.sqrt(xx * yy)) < 1e-12)
    assert.is_true(math.abs(m.mean_abs_err - ae / 5) < 1e-12)
    assert.are.equal(mx, m.max_abs_err)
    assert.are.equal(0.4, m.sparsity)
    assert.are.equal(10, m.bytes_before)
    assert.are.equal(2.5, m.ratio)
    assert.are.equal(6.4, m.bits_per_weight)
    local same = C.metrics(x, x)
    assert.are.equal(math.huge, same.snr_db)
    assert.are.equal(1, same.cosine)
    assert.has_error(function() C.metrics({ 1, 2 }, { 1 }) end, "compress.metrics: arrays differ in length (2 vs 1)")
    assert.has_error(function() C.metrics({}, {}) end, "compress.metrics: empty array")
  end)
  it("sums each 64K chunk in element order and combines the chunks in order (bit-exact)", function()
    -- 8 whole chunks (the AVX-512 path takes them together, AVX two groups of 4), 4 more (AVX),
    -- one more and a tail, zeros
    local CH = 1 << 16
    local n = 13 * CH + 1234
    local x = C.randn(n, { seed = 3, std = 0.02, weight_dtype = "fp16" })
    local y = C.quantize(x, { dtype = "int4", granularity = "per_tensor" }).reconstructed
    x[10] = 0; y[10] = 0; y[CH + 7] = 0
    local S = { xx = 0, yy = 0, xy = 0, ee = 0, ae = 0, maxe = 0, maxxx = 0, zeros = 0 }
    for c0 = 1, n, CH do
      local p = { xx = 0, yy = 0, xy = 0, ee = 0, ae = 0, maxe = 0, maxxx = 0, zeros = 0 }
      for i = c0, math.min(n, c0 + CH - 1) do
        local a, b = x[i], y[i]
        local e = a - b
        local ae = math.abs(e)
        p.xx = p.xx + a * a; p.yy = p.yy + b * b; p.xy = p.xy + a * b; p.ee = p.ee + e * e; p.ae = p.ae + ae
        if ae > p.maxe or ae ~= ae then p.maxe = ae end
        if a * a > p.maxxx then p.maxxx = a * a end
        if b == 0 then p.zeros = p.zeros + 1 end
      end
      for _, k in ipairs({ "xx", "yy", "xy", "ee", "ae", "zeros" }) do S[k] = S[k] + p[k] end
      if p.maxe > S.maxe or p.maxe ~= p.maxe then S.maxe = p.maxe end
      if p.maxxx > S.maxxx then S.maxxx = p.maxxx end
    end
    for _, th in ipairs({ 1, 2 }) do
      local m = C.metrics(x, y, { threads = th })
      assert.are.equal(S.ee / n, m.mse)
      assert.are.equal(10 * math.log(S.xx / S.ee, 10), m.snr_db)
      assert.are.equal(S.xy / math.sqrt(S.xx * S.yy), m.cosine)
      assert.are.equal(S.ae / n, m.mean_abs_err)
      assert.are.equal(S.zeros / n, m.sparsity)
      assert.are.equal(S.maxe, m.max_abs_err)
      assert.are.equal(10 * math.log(S.maxxx / (S.ee / n), 10), m.psnr_db)
      assert.are.equal(S.xx, m.signal)
      assert.is_nil(m.sum_sq)
      local ss = 0
      for i = 1, n do ss = ss + x[i] * x[i] end -- one run in element order
      assert.are.equal(ss, C.metrics(x, y, { threads = th, signal = true }).sum_sq)
      assert.are.equal(x:stats().sum_sq, C.metrics(x, y, { threads = th, signal = true }).sum_sq)
    end
    x[3 * CH + 5] = 0 / 0 -- a NaN in a vector-path chunk is the max error
    y[9 * CH + 5] = 0 / 0
    local m = C.metrics(x, y, { signal = true })
    assert.is_true(m.max_abs_err ~= m.max_abs_err)
    assert.are.equal(x:stats().sum_sq, m.sum_sq) -- NaNs are left out, as stats() leaves them
  end)
end)

describe("compress.reserve", function()
  it("hints heap address space without growing the resident set; bad sizes are refused", function()
    local function rss()
      local f = io.open("/proc/self/status", "r")
      if not f then return nil end
      local t = f:read("a")
      f:close()
      return tonumber(t:match("VmRSS:%s*(%d+)"))
    end
    local before = rss()
    assert.is_true(C.reserve(256 << 20))
    local after = rss()
    if before and after then assert.is_true(after - before < 16 * 1024, ("VmRSS %d -> %d KiB"):format(before, after)) end
    local a = C.randn(1 << 20, { seed = 1 }) -- memory from the reserved range works as any other
    assert.are.equal(1 << 20, #a)
    assert.has_error(function() C.reserve(-1) end)
    assert.has_error(function() C.reserve("x") end)
  end)
  it("prefault fills heap pages on a thread of its own without touching what is allocated meanwhile", function()
    C.reserve(64 << 20)
    local h = C.prefault(16 << 20)
    -- allocated and written while the pages are being faulted in
    local parts = {}
    for i = 1, 8 do parts[i] = string.rep(string.char(64 + i), (1 << 20) + i) end
    if h then h:wait(); h:wait() end -- joined once; a second wait does nothing
    for i = 1, 8 do
      assert.are.equal((1 << 20) + i, #parts[i])
      assert.are.equal(string.rep(string.char(64 + i), (1 << 20) + i), parts[i])
    end
    assert.is_nil(C.prefault(0)) -- nothing to fault: no thread
    assert.has_error(function() C.prefault(-1) end)
  end)
end)

describe("compress threads", function()
  it("gives identical results for 1 and 2 threads", function()
    local a = C.randn({ 512, 1024 }, { seed = 17, std = 0.02, weight_dtype = "fp16" })
    local function run(th)
      local out = {}
      local p = C.palettize(a, { nbits = 4, weight_dtype = "fp16", threads = th })
      out[#out + 1] = p.indices .. p.lut:encode("fp32")
      p = C.palettize(a, { nbits = 3, granularity = "per_grouped_channel", group_size = 32, weight_dtype = "fp16", threads = th })
      out[#out + 1] = p.indices .. p.lut:encode("fp32")
      local q = C.quantize(a, { dtype = "int4", granularity = "per_block", weight_dtype = "fp16", threads = th })
      out[#out + 1] = q.data .. q.scale:encode("fp32") .. q.reconstructed:encode("fp32")
      local r = C.prune(a, { sparsity = 0.5, weight_dtype = "fp16", threads = th })
      out[#out + 1] = r.mask .. r.nonzero:encode("fp32")
      local m = C.metrics(a, q.reconstructed, { threads = th })
      out[#out + 1] = string.format("%.17g %.17g", m.snr_db, m.cosine)
      local g = C.randn(100001, { seed = 5, threads = th })
      out[#out + 1] = g:encode("fp32")
      return out
    end
    local one, two = run(1), run(2)
    for i = 1, #one do assert.are.equal(one[i], two[i], "output " .. i) end
  end)
end)
