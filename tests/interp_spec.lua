-- interp_spec.lua — the ML program interpreter (core/interp): .npy I/O, kernels and numerics.
-- Expected values come from naive loops written here (conv, matmul, pooling, layer norm,
-- softmax, gru, attention), Lua's math library or hand computation, never from the interpreter.
-- Models are built with mlsh.builder (tests/support/interp_helpers.lua).
local core = require "mlsh.core"
local IH = require "interp_helpers"

local interp = core.interp
local values, tensor, build, run, close = IH.values, IH.tensor, IH.build, IH.run, IH.close

describe("npy", function()
  local function header(dict)
    local h = dict .. string.rep(" ", 64 - 10 - #dict - 1) .. "\n"
    return "\147NUMPY\1\0" .. string.pack("<I2", #h) .. h
  end

  it("reads little- and big-endian data written by hand", function()
    local t = assert(interp.npy_parse(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }") .. string.pack("<ff", 1.5, -2)))
    assert.are.equal("fp32", t:dtype())
    assert.are.same({ 2 }, t:shape())
    assert.are.same({ 1.5, -2 }, { t:array()[1], t:array()[2] })
    local b = assert(interp.npy_parse(header("{'descr': '>i2', 'fortran_order': False, 'shape': (1, 3), }") .. string.pack(">i2i2i2", -3, 258, 7)))
    assert.are.equal("int16", b:dtype())
    assert.are.same({ 1, 3 }, b:shape())
    assert.are.same({ -3, 258, 7 }, { b:array()[1], b:array()[2], b:array()[3] })
    local h = assert(interp.npy_parse(header("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }") .. "\0\60\0\192"))
    assert.are.same({ 1, -2 }, { h:array()[1], h:array()[2] })       -- 0x3C00 = 1.0, 0xC000 = -2.0
    local bo = assert(interp.npy_parse(header("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }") .. "\1\0\1"))
    assert.are.equal("bool", bo:dtype())
    local u = assert(interp.npy_parse(header("{'descr': '<u4', 'fortran_order': False, 'shape': (), }") .. string.pack("<I4", 4000000000)))
    assert.are.same({}, u:shape())
    assert.are.equal(4000000000, u:array()[1] // 1)
  end)

  it("refuses Fortran order, object arrays, bad magic and truncated data", function()
    local _, e1 = interp.npy_parse(header("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }") .. string.pack("<ff", 1, 2), "a.npy")
    assert.matches("a.npy: Fortran%-order", e1)
    local _, e2 = interp.npy_parse(header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }") .. "xxxxxxxx", "b.npy")
    assert.matches("b.npy: object arrays", e2)
    local _, e3 = interp.npy_parse(header("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }") .. string.rep("\0", 16), "c.npy")
    assert.matches("c.npy: truncated .npy data: 32 bytes needed, 16 present", e3)
    local _, e4 = interp.npy_parse("PK\3\4 not numpy", "d.npy")
    assert.matches("d.npy: not a .npy file", e4)
    local _, e5 = interp.npy_parse(header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }") .. string.rep("\0", 8), "e.npy")
    assert.matches("unsupported .npy dtype '<c8'", e5)
  end)

  it("writes what it reads, in every dtype", function()
    for _, dt in ipairs({ "fp16", "fp32", "fp64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "bool" }) do
      local t = tensor({ 0, 1, 2, 3, 4, 5 }, { 2, 3 }, dt)
      local r = assert(interp.npy_parse(t:npy()))
      assert.are.equal(dt, r:dtype())
      assert.are.same({ 2, 3 }, r:shape())
      local want = dt == "bool" and { 0, 1, 1, 1, 1, 1 } or { 0, 1, 2, 3, 4, 5 }
      for i = 1, 6 do assert.are.equal(want[i], r:array()[i]) end
    end
    -- the header a numpy reader needs: magic, version 1.0, dict, 64-byte aligned data
    local bytes = tensor({ 1, 2 }, { 2 }, "fp32"):npy()
    assert.are.equal("\147NUMPY\1\0", bytes:sub(1, 8))
    assert.truthy(bytes:find("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 1, true))
    assert.are.equal(128 + 8, #bytes) -- 10 + 58-byte dict + newline, padded to 128
    assert.are.equal("\n", bytes:sub(128, 128))
    assert.are.equal(1.0, (string.unpack("<f", bytes, 129)))
  end)
end)

describe("interpreter kernels against naive loops", function()
  it("linear, relu and softmax", function()
    local W, bias = values(15, 3), values(3, 4)
    local path = build("iOS16", function(f)
      local x = f:input("x", "fp32", { 2, 5 })
      local w = f:const("w", core.array.new(W), { shape = { 3, 5 } })
      local b = f:const("b", core.array.new(bias))
      local y = f:op("linear", { x = x, weight = w, bias = b })
      f:output("y", f:op("softmax", { x = f:op("relu", { x = y }), axis = -1 }))
    end)
    local X = values(10, 5)
    local outs = run(path, { x = tensor(X, { 2, 5 }) })
    local want = {}
    for r = 0, 1 do
      local row, s = {}, 0
      for j = 0, 2 do
        local acc = bias[j + 1]
        for k = 0, 4 do acc = acc + X[r * 5 + k + 1] * W[j * 5 + k + 1] end
        row[j + 1] = math.exp(math.max(acc, 0))
        s = s + row[j + 1]
      end
      for j = 1, 3 do want[#want + 1] = row[j] / s end
    end
    close(outs.y, want, 1e-5)
  end)

  -- naive grouped 2-D conv with custom padding {top, bottom, left, right}
  local function naive_conv(X, Wt, Cin, Cout, G, H, Wd, K, st, dl, pad)
    local OH = (H + pad[1] + pad[2] - ((K - 1) * dl[1] + 1)) // st[1] + 1
    local OW = (Wd + pad[3] + pad[4] - ((K - 1) * dl[2] + 1)) // st[2] + 1
    local want = {}
    for oc = 0, Cout - 1 do
      local g = oc // (Cout // G)
      for oh = 0, OH - 1 do
        for ow = 0, OW - 1 do
          local acc = 0
          for ic = 0, Cin // G - 1 do
            for kh = 0, K - 1 do
              for kw = 0, K - 1 do
                local ih, iw = oh * st[1] - pad[1] + kh * dl[1], ow * st[2] - pad[3] + kw * dl[2]
                if ih >= 0 and ih < H and iw >= 0 and iw < Wd then
                  local c = g * (Cin // G) + ic
                  acc = acc + X[(c * H + ih) * Wd + iw + 1] * Wt[((oc * (Cin // G) + ic) * K + kh) * K + kw + 1]
                end
              end
            end
          end
          want[#want + 1] = acc
        end
      end
    end
    return want, OH, OW
  end

  for _, case in ipairs({
    { name = "grouped, strided, dilated", Cin = 4, Cout = 6, G = 2, H = 7, W = 6, K = 3, st = { 2, 1 }, dl = { 1, 2 }, pad = { 1, 0, 2, 1 } },
    { name = "depthwise, strided, dilated", Cin = 5, Cout = 5, G = 5, H = 9, W = 8, K = 3, st = { 2, 2 }, dl = { 2, 1 }, pad = { 2, 1, 1, 1 } },
    { name = "depthwise, stride 1", Cin = 3, Cout = 3, G = 3, H = 6, W = 7, K = 3, st = { 1, 1 }, dl = { 1, 1 }, pad = { 1, 1, 1, 1 } },
    { name = "dense, im2col", Cin = 3, Cout = 4, G = 1, H = 5, W = 5, K = 2, st = { 1, 2 }, dl = { 1, 1 }, pad = { 0, 1, 0, 0 } },
  }) do
    it("conv (" .. case.name .. ", custom padding)", function()
      local Wt = values(case.Cout * (case.Cin // case.G) * case.K * case.K, 11)
      local path = build("iOS17", function(f)
        local x = f:input("x", "fp32", { 1, case.Cin, case.H, case.W })
        local w = f:const("w", core.array.new(Wt), { shape = { case.Cout, case.Cin // case.G, case.K, case.K } })
        f:output("y", f:op("conv", { x = x, weight = w, strides = case.st, dilations = case.dl, groups = case.G,
          pad_type = "custom", pad = case.pad }))
      end)
      local X = values(case.Cin * case.H * case.W, 12)
      local outs = run(path, { x = tensor(X, { 1, case.Cin, case.H, case.W }) })
      local want, OH, OW = naive_conv(X, Wt, case.Cin, case.Cout, case.G, case.H, case.W, case.K, case.st, case.dl, case.pad)
      assert.are.same({ 1, case.Cout, OH, OW }, outs.y:shape())
      close(outs.y, want, 1e-5)
    end)
  end

  it("conv_transpose against scatter-add", function()
    local Cin, Cout, H, K, S = 2, 3, 3, 3, 2
    local Wt = values(Cin * Cout * K * K, 21)
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, Cin, H, H })
      local w = f:const("w", core.array.new(Wt), { shape = { Cin, Cout, K, K } })
      f:output("y", f:op("conv_transpose", { x = x, weight = w, strides = { S, S }, pad_type = "custom", pad = { 1, 1, 1, 1 } },
        { dtype = "fp32", shape = { 1, Cout, 5, 5 } }))
    end)
    local X = values(Cin * H * H, 22)
    local outs = run(path, { x = tensor(X, { 1, Cin, H, H }) })
    local O = (H - 1) * S + K - 2
    local want = {}
    for i = 1, Cout * O * O do want[i] = 0 end
    for ic = 0, Cin - 1 do
      for ih = 0, H - 1 do
        for iw = 0, H - 1 do
          for oc = 0, Cout - 1 do
            for kh = 0, K - 1 do
              for kw = 0, K - 1 do
                local oh, ow = ih * S - 1 + kh, iw * S - 1 + kw
                if oh >= 0 and oh < O and ow >= 0 and ow < O then
                  local k = (oc * O + oh) * O + ow + 1
                  want[k] = want[k] + X[(ic * H + ih) * H + iw + 1] * Wt[((ic * Cout + oc) * K + kh) * K + kw + 1]
                end
              end
            end
          end
        end
      end
    end
    close(outs.y, want, 1e-5)
  end)

  it("max and average pooling with ceil_mode and excluded padding (hand-computed)", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 1, 3, 3 })
      f:output("mx", f:op("max_pool", { x = x, kernel_sizes = { 2, 2 }, strides = { 2, 2 }, pad_type = "valid", ceil_mode = true }))
      f:output("av", f:op("avg_pool", { x = x, kernel_sizes = { 2, 2 }, strides = { 2, 2 }, pad_type = "custom", pad = { 1, 1, 1, 1 },
        exclude_padding_from_average = true, ceil_mode = false }))
    end)
    local outs = run(path, { x = tensor({ 1, 2, 3, 4, 5, 6, 7, 8, 9 }, { 1, 1, 3, 3 }) })
    -- windows of 2 at stride 2 over 3 (ceil): rows {0,1},{2}; cols {0,1},{2}
    close(outs.mx, { 5, 6, 8, 9 }, 0)
    -- padded 5x5, windows rows {-1,0},{1,2}: averages of the in-image elements only
    -- {1}, {2, 3}, {4, 7}, {5, 6, 8, 9}
    close(outs.av, { 1, 2.5, 5.5, 7 }, 1e-6)
  end)

  it("batched matmul with transposes and broadcasting, layer_norm, reduce_mean", function()
    local path = build("iOS17", function(f)
      local a = f:input("a", "fp32", { 2, 3, 4 })
      local b = f:input("b", "fp32", { 5, 4 })
      local y = f:op("matmul", { x = a, y = b, transpose_y = true })
      f:output("mm", y)
      f:output("ln", f:op("layer_norm", { x = y, axes = { -1 }, epsilon = 1e-5 }))
      f:output("rm", f:op("reduce_mean", { x = y, axes = { 1 }, keep_dims = false }))
    end)
    local A, Bv = values(24, 31), values(20, 32)
    local outs = run(path, { a = tensor(A, { 2, 3, 4 }), b = tensor(Bv, { 5, 4 }) })
    local mm = {}
    for bt = 0, 1 do
      for i = 0, 2 do
        for j = 0, 4 do
          local acc = 0
          for k = 0, 3 do acc = acc + A[(bt * 3 + i) * 4 + k + 1] * Bv[j * 4 + k + 1] end
          mm[#mm + 1] = acc
        end
      end
    end
    close(outs.mm, mm, 1e-5)
    local ln = {}
    for r = 0, 5 do
      local s, ss = 0, 0
      for j = 1, 5 do s = s + mm[r * 5 + j] end
      local mean = s / 5
      for j = 1, 5 do ss = ss + (mm[r * 5 + j] - mean) ^ 2 end
      for j = 1, 5 do ln[#ln + 1] = (mm[r * 5 + j] - mean) / math.sqrt(ss / 5 + 1e-5) end
    end
    close(outs.ln, ln, 1e-4)
    local rm = {}
    for bt = 0, 1 do
      for j = 0, 4 do rm[#rm + 1] = (mm[(bt * 3) * 5 + j + 1] + mm[(bt * 3 + 1) * 5 + j + 1] + mm[(bt * 3 + 2) * 5 + j + 1]) / 3 end
    end
    close(outs.rm, rm, 1e-5)
  end)

  it("index plumbing: gather, topk, cumsum, select, pad (hand-computed)", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 2, 4 })
      local ids = f:input("ids", "int32", { 3 })
      f:output("g", f:op("gather", { x = x, indices = ids, axis = 1 }))
      local v, i = f:op("topk", { x = x, k = 2, axis = -1 })
      f:output("tv", v)
      f:output("ti", i)
      f:output("cs", f:op("cumsum", { x = x, axis = 1, exclusive = false, reverse = true }))
      f:output("pd", f:op("pad", { x = x, pad = { 0, 0, 1, 2 }, mode = "reflect" }))
    end)
    local X = { 3, 1, 4, 1, 5, 9, 2, 6 }
    local outs = run(path, { x = tensor(X, { 2, 4 }), ids = tensor({ 3, 0, -1 }, { 3 }, "int32") })
    close(outs.g, { 1, 3, 1, 6, 5, 6 }, 0)
    close(outs.tv, { 4, 3, 9, 6 }, 0)
    assert.are.equal("int32", outs.ti:dtype())
    close(outs.ti, { 2, 0, 1, 3 }, 0)
    close(outs.cs, { 9, 6, 5, 1, 22, 17, 8, 6 }, 0)
    close(outs.pd, { 1, 3, 1, 4, 1, 4, 1, 9, 5, 9, 2, 6, 2, 9 }, 0)
  end)
end)

describe("numerics", function()
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", { 1, 4 })
    local y = f:op("mul", { x = x, y = 30000.0 }, { name = "big" })
    local z = f:op("real_div", { x = y, y = x }, { name = "ratio" })
    f:output("y", y)
    f:output("z", z)
  end)

  it("reports the first op with non-finite values and, in fp32, the first beyond the fp16 range", function()
    local outs, info = run(path, { x = tensor({ 1, 2, 0, 3 }, { 1, 4 }) }, { precision = "fp32" })
    assert.are.same({ op = "ratio", type = "real_div" }, info.nonfinite)        -- 0/0
    assert.are.same({ op = "big", type = "mul" }, info.fp16_overflow)          -- 60000 < 65504 < 90000
    close(outs.y, { 30000, 60000, 0, 90000 }, 0)
  end)

  it("--precision fp16 rounds every op to fp16 (ties to even) and overflows to inf", function()
    local outs, info = run(path, { x = tensor({ 1.0009765625 + 2 ^ -11, 2, 0.5, 3 }, { 1, 4 }) }, { precision = "fp16" })
    local y = outs.y:array()
    -- x[1] = 1 + 2^-10 + 2^-11 is halfway between 1 + 2^-10 (odd mantissa) and 1 + 2^-9 (even):
    -- it rounds to 1.001953125; times 30000 = 30058.59, and fp16 steps by 16 there: 30064
    assert.are.equal(30064, y[1])
    assert.are.equal(60000, y[2])    -- exactly representable (a multiple of 32)
    assert.are.equal(math.huge, y[4]) -- 90000 > 65504
    assert.are.same({ op = "big", type = "mul" }, info.nonfinite)
    assert.is_nil(info.fp16_overflow) -- reported in fp32 runs only
  end)
end)

describe("more kernels against naive loops", function()
  it("einsum, scatter_along_axis and scaled_dot_product_attention", function()
    local path = build("iOS18", function(f)
      local a = f:input("a", "fp32", { 2, 3, 4 })
      local b = f:input("b", "fp32", { 2, 4, 5 })
      f:output("es", f:op("einsum", { values = { a, b }, equation = "bij,bjk->bik" }, { dtype = "fp32", shape = { 2, 3, 5 } }))
      local q = f:input("q", "fp32", { 1, 3, 4 })
      local k = f:input("k", "fp32", { 1, 5, 4 })
      local v = f:input("v", "fp32", { 1, 5, 2 })
      f:output("at", f:op("scaled_dot_product_attention", { query = q, key = k, value = v }))
      local ids = f:input("ids", "int32", { 2, 2 })
      local ids3 = f:op("expand_dims", { x = ids, axes = { 2 } }, { dtype = "int32", shape = { 2, 2, 1 } })
      f:output("sc", f:op("scatter_along_axis", { data = f:op("mul", { x = a, y = 0.0 }), indices = ids3,
        updates = f:op("slice_by_size", { x = a, begin = { 0, 0, 0 }, size = { 2, 2, 1 } }), axis = 1, mode = "add" }, { dtype = "fp32", shape = { 2, 3, 4 } }))
    end)
    local A, Bv, Q, K, V = values(24, 51), values(40, 52), values(12, 53), values(20, 54), values(10, 55)
    local outs = run(path, { a = tensor(A, { 2, 3, 4 }), b = tensor(Bv, { 2, 4, 5 }), q = tensor(Q, { 1, 3, 4 }), k = tensor(K, { 1, 5, 4 }),
      v = tensor(V, { 1, 5, 2 }), ids = tensor({ 2, 2, 0, 1 }, { 2, 2 }, "int32") })
    local es = {}
    for bt = 0, 1 do for i = 0, 2 do for kk = 0, 4 do
      local acc = 0
      for j = 0, 3 do acc = acc + A[(bt * 3 + i) * 4 + j + 1] * Bv[(bt * 4 + j) * 5 + kk + 1] end
      es[#es + 1] = acc
    end end end
    close(outs.es, es, 1e-5)
    local at = {}
    for i = 0, 2 do
      local w, s = {}, 0
      for j = 0, 4 do
        local d = 0
        for e = 0, 3 do d = d + Q[i * 4 + e + 1] * K[j * 4 + e + 1] end
        w[j + 1] = math.exp(d / 2)
        s = s + w[j + 1]
      end
      for e = 0, 1 do
        local acc = 0
        for j = 0, 4 do acc = acc + w[j + 1] / s * V[j * 2 + e + 1] end
        at[#at + 1] = acc
      end
    end
    close(outs.at, at, 1e-5)
    -- updates a[b, 0..1, 0] added at rows ids[b, :] of column 0: batch 0 adds both to row 2
    local sc = {}
    for i = 1, 24 do sc[i] = 0 end
    sc[2 * 4 + 1] = A[1] + A[5]
    sc[12 + 0 * 4 + 1] = A[13]
    sc[12 + 1 * 4 + 1] = A[17]
    close(outs.sc, sc, 1e-6)
  end)

  it("gru against its iOS15 equations", function()
    local T, Bt, I, H = 3, 1, 2, 2
    local Wi, Wh, Bs = values(3 * H * I, 61), values(3 * H * H, 62), values(3 * H, 63)
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { T, Bt, I })
      local h0 = f:input("h0", "fp32", { Bt, H })
      local y, h = f:op("gru", { x = x, initial_h = h0, weight_ih = f:const("wi", core.array.new(Wi), { shape = { 3 * H, I } }),
        weight_hh = f:const("wh", core.array.new(Wh), { shape = { 3 * H, H } }), bias = f:const("bs", core.array.new(Bs)), output_sequence = true })
      f:output("y", y)
      f:output("h", h)
    end)
    local X, H0 = values(T * I, 64), values(H, 65)
    local outs = run(path, { x = tensor(X, { T, Bt, I }), h0 = tensor(H0, { Bt, H }) })
    local sig = function(v) return 1 / (1 + math.exp(-v)) end
    local h, ys = { H0[1], H0[2] }, {}
    for t = 0, T - 1 do
      local function gate(g, j)
        local a = Bs[g * H + j + 1]
        for i = 0, I - 1 do a = a + Wi[(g * H + j) * I + i + 1] * X[t * I + i + 1] end
        local r = 0
        for i = 0, H - 1 do r = r + Wh[(g * H + j) * H + i + 1] * h[i + 1] end
        return a, r
      end
      local nh = {}
      for j = 0, H - 1 do
        local ar, hr = gate(0, j)
        local ao, ho = gate(1, j)
        local az, hz = gate(2, j)
        local r, z = sig(ar + hr), sig(az + hz)
        local e2 = math.exp(2 * (ao + r * ho)) -- tanh (math.tanh is a 5.3 compat extra)
        local o = (e2 - 1) / (e2 + 1)
        nh[j + 1] = (1 - z) * o + z * h[j + 1]
      end
      h = nh
      ys[#ys + 1], ys[#ys + 2] = h[1], h[2]
    end
    close(outs.y, ys, 1e-5)
    close(outs.h, h, 1e-5)
  end)
end)

describe("elementwise ops against Lua math", function()
  local erf = function(x) -- Abramowitz-Stegun 7.1.26 is too coarse; integrate the series instead
    local s, term, n = 0, x, 0
    repeat
      local t = term / (2 * n + 1)
      s = s + t
      n = n + 1
      term = -term * x * x / n
    until math.abs(t) < 1e-12 or n > 200
    return 2 / math.sqrt(math.pi) * s
  end
  local sig = function(v) return 1 / (1 + math.exp(-v)) end
  local unary = {
    abs = math.abs, ceil = math.ceil, floor = math.floor, exp = math.exp, sqrt = function(v) return math.sqrt(math.abs(v)) end,
    sin = math.sin, cos = math.cos, tanh = function(v) return (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end,
    sigmoid = sig, relu = function(v) return math.max(v, 0) end, square = function(v) return v * v end,
    silu = function(v) return v * sig(v) end, erf = erf, softsign = function(v) return v / (1 + math.abs(v)) end,
    sign = function(v) return v > 0 and 1 or (v < 0 and -1 or 0) end,
    gelu = function(v) return 0.5 * v * (1 + erf(v / math.sqrt(2))) end,
    elu = function(v) return v > 0 and v or (math.exp(v) - 1) end,
    leaky_relu = function(v) return v >= 0 and v or 0.01 * v end,
    softplus = function(v) return math.log(1 + math.exp(v)) end,
  }
  local names = {}
  for k in pairs(unary) do names[#names + 1] = k end
  table.sort(names)
  local X = { -2.5, -1, -0.3, 0, 0.4, 1.5, 3 }
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", { 7 })
    for _, n in ipairs(names) do
      local arg = n == "sqrt" and f:op("abs", { x = x }) or x
      f:output(n, f:op(n, { x = arg }))
    end
    local y = f:input("y", "fp32", { 2, 1 })
    local z = f:op("reshape", { x = x, shape = { 1, 7 } })
    f:output("add_b", f:op("add", { x = z, y = y }))
    f:output("pow_b", f:op("pow", { x = f:op("abs", { x = z }), y = y }))
    f:output("max_b", f:op("maximum", { x = z, y = y }))
    f:output("ge_b", f:op("cast", { x = f:op("greater_equal", { x = z, y = y }), dtype = "int32" }))
    f:output("fdiv_b", f:op("floor_div", { x = z, y = y }))
    f:output("mod_b", f:op("mod", { x = z, y = y }))
  end)
  local outs = run(path, { x = tensor(X, { 7 }), y = tensor({ 2, -0.75 }, { 2, 1 }) })
  for _, n in ipairs(names) do
    it(n, function()
      local want = {}
      for i, v in ipairs(X) do want[i] = unary[n](v) end
      close(outs[n], want, 2e-6)
    end)
  end
  it("binary ops broadcast [1,7] against [2,1]", function()
    local Y = { 2, -0.75 }
    local add, pw, mx, ge, fd, md = {}, {}, {}, {}, {}, {}
    for r = 1, 2 do
      for _, v in ipairs(X) do
        local y = Y[r]
        add[#add + 1], pw[#pw + 1], mx[#mx + 1] = v + y, math.abs(v) ^ y, math.max(v, y)
        ge[#ge + 1], fd[#fd + 1], md[#md + 1] = v >= y and 1 or 0, math.floor(v / y), v - math.floor(v / y) * y
      end
    end
    assert.are.same({ 2, 7 }, outs.add_b:shape())
    close(outs.add_b, add, 1e-7)
    -- 0^-0.75 is inf in both
    local p = outs.pow_b:array()
    for i = 1, #pw do
      if pw[i] == math.huge then assert.are.equal(math.huge, p[i]) else assert.is_true(math.abs(p[i] - pw[i]) <= 1e-5 * (1 + pw[i]), i) end
    end
    close(outs.max_b, mx, 1e-7) -- inputs are fp32, the reference double
    assert.are.equal("int32", outs.ge_b:dtype())
    close(outs.ge_b, ge, 0)
    close(outs.fdiv_b, fd, 1e-6)
    close(outs.mod_b, md, 1e-6)
  end)
end)
