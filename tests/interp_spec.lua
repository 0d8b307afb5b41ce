-- interp_spec.lua — the ML program interpreter (core/interp) through m:run and `mlsh run`.
-- Expected values come from naive loops written here (conv, matmul, pooling, layer norm,
-- softmax) or by hand, never from the interpreter. Models are built with mlsh.builder.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local B = require "mlsh.builder"
local F = require "fixtures"
local CF = require "compress_fixtures"

local interp = core.interp
local dir = F.tmpdir()
local n_models = 0

-- Deterministic pseudo-random values in [-1, 1).
local function values(n, seed)
  local t, s = {}, seed or 1
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    t[i] = s / 1073741824 - 1
  end
  return t
end

local function tensor(vals, shape, dtype) return assert(interp.tensor(core.array.new(vals), dtype or "fp32", shape)) end

local function build(opset, fn, precision)
  local p = B.program { opset = opset or "iOS17", precision = precision or "fp32" }
  local f = p:func("main")
  fn(f, p)
  n_models = n_models + 1
  local path = string.format("%s/m%d.mlpackage", dir, n_models)
  p:save(path)
  return path
end

local function run(path, inputs, opts)
  local m = mlsh.load(path)
  local outs, info = m:run(inputs, opts or { precision = "fp32" })
  m:close()
  return outs, info
end

local function close(got, want, tol)
  local a = got:array()
  assert.are.equal(#want, #a)
  for i = 1, #want do
    if math.abs(a[i] - want[i]) > tol * (1 + math.abs(want[i])) then
      error(string.format("element %d: got %.7g, want %.7g", i, a[i], want[i]), 2)
    end
  end
end

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

describe("compressed weights", function()
  -- The C decompressor (constexpr ops materialised by the interpreter) against the Lua one
  -- (`mlsh decompress` rewrites every constexpr chain as a plain const): same outputs.
  local policies = {
    { "iOS16", { quantize = { dtype = "int8" } } },
    { "iOS16", { palettize = { nbits = 4 } } },
    { "iOS16", { prune = { sparsity = 0.5 } } },
    { "iOS18", { quantize = { dtype = "int4", granularity = "per_block", block_size = 16 } } },
    { "iOS18", { palettize = { nbits = 2, granularity = "per_grouped_channel", group_size = 16 } } },
    { "iOS18", { prune = { sparsity = 0.5 }, palettize = { nbits = 2 } } },
    { "iOS18", { prune = { sparsity = 0.5 }, quantize = { dtype = "int8" } } },
  }
  for k, pc in ipairs(policies) do
    it(string.format("%s %s", pc[1], json.encode(pc[2])), function()
      local compress = require "mlsh.compress"
      local base = CF.base(string.format("%s/base%d.mlpackage", dir, k), { opset = pc[1] })
      local m = mlsh.load(base)
      local cpath = string.format("%s/c%d.mlpackage", dir, k)
      compress.save(m, cpath, pc[2])
      m:close()
      local dpath = string.format("%s/d%d.mlpackage", dir, k)
      local _, err, code = F.run(string.format("decompress %s -o %s --quiet", F.q(cpath), F.q(dpath)))
      assert.are.equal(0, code, err)
      local x = tensor(values(16 * 64, 40 + k), { 1, 16, 8, 8 })
      -- model precision: fp16 weights and compute on both sides (mlsh decompress stores fp16)
      local a = run(cpath, { x = x }, { precision = "model" })
      local b = run(dpath, { x = x }, { precision = "model" })
      local cmp = mlsh.compare(b, a)
      assert.are.equal("logits", cmp[1].name)
      assert.is_true(cmp[1].snr > 100, "SNR " .. tostring(cmp[1].snr))
    end)
  end
end)

describe("states", function()
  it("read_state / write_state: the new state comes back", function()
    local path = build("iOS18", function(f)
      local x = f:input("x", "fp16", { 1, 4 })
      local s = f:state("acc", "fp16", { 1, 4 })
      local y = f:op("add", { x = f:op("read_state", { input = s }), y = x })
      f:update_state(s, y)
      f:output("y", y, { dtype = "fp16" })
    end, "fp16")
    local m = mlsh.load(path)
    local outs, info = m:run({ x = tensor({ 1, 2, 3, 4 }, { 1, 4 }, "fp16"), acc = tensor({ 10, 20, 30, 40 }, { 1, 4 }, "fp16") })
    m:close()
    close(outs.y, { 11, 22, 33, 44 }, 0)
    close(info.states.acc, { 11, 22, 33, 44 }, 0)
  end)
end)

describe("errors", function()
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", { 1, 3 })
    f:output("y", f:op("relu", { x = x }))
  end)

  it("names the input, what was expected and what was given", function()
    local m = mlsh.load(path)
    local ok, e = pcall(m.run, m, { x = tensor({ 1, 2 }, { 1, 2 }) })
    assert.is_false(ok)
    assert.matches("input 'x': expected fp32%[1,3%], given fp32%[1,2%]", e)
    _, e = pcall(m.run, m, { x = tensor({ 1, 2, 3 }, { 1, 3 }, "int32") })
    assert.matches("input 'x': expected fp32%[1,3%], given int32%[1,3%]", e)
    _, e = pcall(m.run, m, {})
    assert.matches("input 'x' is missing %(expected fp32%[1,3%]", e)
    _, e = pcall(m.run, m, { x = tensor({ 1, 2, 3 }, { 1, 3 }), z = tensor({ 1 }, { 1 }) })
    assert.matches("the program has no input 'z'", e)
    m:close()
  end)

  it("refuses an unsupported op before running, naming op, type and function", function()
    local bad = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 3 })
      f:output("y", f:op("non_maximum_suppression", { boxes = x, scores = x, iou_threshold = 0.5, score_threshold = 0.1, max_boxes = 1 },
        { outputs = { { dtype = "fp32", shape = { 1, 1, 4 } }, { dtype = "fp32", shape = { 1, 1, 1 } }, { dtype = "int32", shape = { 1, 1 } }, { dtype = "int32", shape = { 1 } } }, name = "nms", check = false }))
    end)
    local out, err, code = F.run("run " .. F.q(bad) .. " --random 1")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^mlsh run: " .. bad:gsub("%p", "%%%0") .. ": op nms %(type non_maximum_suppression, function main%) is not supported by the interpreter\n$", err)
  end)

  it("refuses a tensor above --memory-budget before allocating it", function()
    local out, err, code = F.run("run " .. F.q(path) .. " --random 1 --memory-budget 4")
    assert.are.equal(1, code)
    assert.matches("larger than the memory budget", err)
    assert.are.equal("", out)
  end)
end)

describe("mlsh run", function()
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", { 2, 3 })
    f:output("y", f:op("mul", { x = x, y = 2.0 }))
  end)

  it("writes <output>.npy to -o and prints --json statistics", function()
    local xf = dir .. "/x.npy"
    assert(tensor({ 1, -2, 3, 0, 5, -6 }, { 2, 3 }):save(xf))
    local odir = dir .. "/out"
    local out, err, code = F.run(string.format("run %s --input x=%s -o %s --json", F.q(path), F.q(xf), F.q(odir)))
    assert.are.equal(0, code, err)
    local doc = json.decode(out)
    local y = doc.outputs.y
    assert.are.same({ 2, 3 }, y.shape)
    assert.are.equal("fp32", y.dtype)
    assert.are.same({ -12, 10, 1 / 3 }, { y.min, y.max, y.mean })
    assert.are.same({ 0, 0 }, { y.nan, y.inf })
    assert.is_number(doc.seconds)
    local t = assert(interp.npy_load(odir .. "/y.npy"))
    close(t, { 2, -4, 6, 0, 10, -12 }, 0)
  end)

  it("--trace writes every op's output and index.json", function()
    local tdir = dir .. "/trace"
    local _, err, code = F.run(string.format("run %s --random 3 --trace %s", F.q(path), F.q(tdir)))
    assert.are.equal(0, code, err)
    local f = io.open(tdir .. "/index.json")
    local doc = json.decode(f:read("a"))
    f:close()
    local last = doc.ops[#doc.ops]
    assert.are.equal("mul", last.type)
    assert.are.same({ 2, 3 }, last.outputs[1].shape)
    assert(interp.npy_load(tdir .. "/" .. last.outputs[1].file))
  end)

  it("--list-ops lists what the interpreter runs", function()
    local out, _, code = F.run("run --list-ops")
    assert.are.equal(0, code)
    for _, op in ipairs({ "conv", "linear", "lstm", "constexpr_lut_to_dense", "while_loop", "layer_norm" }) do
      assert.truthy(out:find("\n" .. op .. "\n", 1, true), op)
    end
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
      f:output("sc", f:op("scatter_along_axis", { data = f:op("mul", { x = a, y = 0.0 }), indices = f:op("expand_dims", { x = ids, axes = { 2 } }, { dtype = "int32", shape = { 2, 2, 1 } }),
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
        local o = math.tanh(ao + r * ho)
        nh[j + 1] = (1 - z) * o + z * h[j + 1]
      end
      h = nh
      ys[#ys + 1], ys[#ys + 2] = h[1], h[2]
    end
    close(outs.y, ys, 1e-5)
    close(outs.h, h, 1e-5)
  end)
end)

describe("mlsh compare --outputs", function()
  local base = CF.base(dir .. "/cmp_base.mlpackage", { opset = "iOS16" })
  local m = mlsh.load(base)
  local cpath = dir .. "/cmp_int8.mlpackage"
  require("mlsh.compress").save(m, cpath, { quantize = { dtype = "int8" } })
  m:close()

  it("reports output SNR, top-1 agreement and the first op below the threshold", function()
    local out, err, code = F.run(string.format("compare %s %s --outputs --random 2 --samples 2 --threshold 200 --json", F.q(base), F.q(cpath)))
    assert.are.equal(0, code, err)
    local doc = json.decode(out)
    assert.are.equal(2, doc.samples)
    local o = doc.outputs[1]
    assert.are.equal("logits", o.name)
    assert.is_true(o.snr_db > 20 and o.snr_db < 100, tostring(o.snr_db))
    assert.are.equal(1, o.top1_agreement)
    assert.are.equal("conv", doc.first_below.type) -- the first op with a quantized weight
    assert.is_true(#doc.ops >= 5)
  end)

  it("a model against itself is exact", function()
    local out, err, code = F.run(string.format("compare %s %s --outputs", F.q(base), F.q(base)))
    assert.are.equal(0, code, err)
    assert.matches("logits%s+SNR inf dB", out)
    assert.matches("every matched op at or above 30 dB", out)
  end)
end)

describe("image inputs", function()
  it("HWC uint8 pixels become [1, C, H, W] in the model's colour order, then its scale and bias apply", function()
    local path = build("iOS16", function(f)
      local x = f:input("image", "image", { width = 2, height = 2, color = "BGR", scale = 0.5, bias = { 1, 2, 3 } })
      f:output("y", f:op("relu", { x = x }))
    end)
    -- RGB pixels (r, g, b) at (0,0) (0,1) (1,0) (1,1)
    local px = { 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120 }
    local f = dir .. "/img.npy"
    assert(tensor(px, { 2, 2, 3 }, "uint8"):save(f))
    local out, err, code = F.run(string.format("run %s --input image=%s -o %s/img_out", F.q(path), F.q(f), F.q(dir)))
    assert.are.equal(0, code, err .. out)
    local y = assert(interp.npy_load(dir .. "/img_out/y.npy"))
    assert.are.same({ 1, 3, 2, 2 }, y:shape())
    -- channel 0 is blue: 0.5 * b + 1; channel 1 green: 0.5 * g + 2; channel 2 red: 0.5 * r + 3
    close(y, { 16, 31, 46, 61, 12, 27, 42, 57, 8, 23, 38, 53 }, 0)
  end)
end)

describe("nested blocks", function()
  -- while_loop doubling x three times, then cond(i > 0) choosing relu (true) or x - x (false).
  -- The builder has no block API, so the program is written with the protobuf binding.
  local P = core.proto
  local function ttype(vt, dtype, shape)
    local t = vt:mutable("tensorType")
    t.dataType, t.rank = dtype, #shape
    for _, d in ipairs(shape) do t:add("dimensions"):mutable("constant").size = d end
  end
  local function op(block, typ, inputs, outs)
    local o = block:add("operations")
    o.type = typ
    local a = o:add("attributes")
    a.key = "name"
    local v = a:mutable("value")
    ttype(v:mutable("type"), "STRING", {})
    v:mutable("immediateValue"):mutable("tensor"):mutable("strings").values = { outs[1][1] }
    for _, kv in ipairs(inputs) do
      local e = o:add("inputs")
      e.key = kv[1]
      local arg = e:mutable("value")
      for _, name in ipairs(type(kv[2]) == "table" and kv[2] or { kv[2] }) do arg:add("arguments").name = name end
    end
    for _, out in ipairs(outs) do
      local ov = o:add("outputs")
      ov.name = out[1]
      ttype(ov:mutable("type"), out[2], out[3])
    end
    return o
  end
  local function const_int(block, name, v)
    local o = op(block, "const", {}, { { name, "INT32", {} } })
    local e = o:add("attributes")
    e.key = "val"
    local val = e:mutable("value")
    ttype(val:mutable("type"), "INT32", {})
    val:mutable("immediateValue"):mutable("tensor"):mutable("ints").values = { v }
  end
  local function block_inputs(b, list)
    for _, it_ in ipairs(list) do
      local i = b:add("inputs")
      i.name = it_[1]
      ttype(i:mutable("type"), it_[2], it_[3])
    end
  end

  it("while_loop and cond run their blocks", function()
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = 7
    local d = m:mutable("description")
    F.array_feature(d, "input", "x", "FLOAT32", { 1, 3 })
    F.array_feature(d, "output", "y", "FLOAT32", { 1, 3 })
    local prog = m:mutable("mlProgram")
    prog.version = 1
    local fe = prog:add("functions")
    fe.key = "main"
    local fn = fe:mutable("value")
    fn.opset = "CoreML6"
    block_inputs(fn, { { "x", "FLOAT32", { 1, 3 } } })
    local be = fn:add("block_specializations")
    be.key = "CoreML6"
    local main = be:mutable("value")
    main.outputs = { "y" }
    const_int(main, "zero", 0)
    const_int(main, "one", 1)
    const_int(main, "three", 3)
    local w = op(main, "while_loop", { { "loop_vars", { "x", "zero" } } }, { { "xo", "FLOAT32", { 1, 3 } }, { "io", "INT32", {} } })
    local cb = w:add("blocks")
    block_inputs(cb, { { "xc", "FLOAT32", { 1, 3 } }, { "ic", "INT32", {} } })
    op(cb, "less", { { "x", "ic" }, { "y", "three" } }, { { "c", "BOOL", {} } })
    cb.outputs = { "c" }
    local bb = w:add("blocks")
    block_inputs(bb, { { "xb", "FLOAT32", { 1, 3 } }, { "ib", "INT32", {} } })
    op(bb, "add", { { "x", "xb" }, { "y", "xb" } }, { { "x2", "FLOAT32", { 1, 3 } } })
    op(bb, "add", { { "x", "ib" }, { "y", "one" } }, { { "i2", "INT32", {} } })
    bb.outputs = { "x2", "i2" }
    op(main, "greater", { { "x", "io" }, { "y", "zero" } }, { { "p", "BOOL", {} } })
    local cd = op(main, "cond", { { "pred", "p" } }, { { "y", "FLOAT32", { 1, 3 } } })
    local tb = cd:add("blocks")
    op(tb, "relu", { { "x", "xo" } }, { { "t1", "FLOAT32", { 1, 3 } } })
    tb.outputs = { "t1" }
    local fb = cd:add("blocks")
    op(fb, "sub", { { "x", "xo" }, { "y", "xo" } }, { { "f1", "FLOAT32", { 1, 3 } } })
    fb.outputs = { "f1" }
    local path = F.write_package(dir .. "/loop.mlpackage", m, core.blobfile.writer():bytes())
    local outs = run(path, { x = tensor({ 1, -2, 0.5 }, { 1, 3 }) })
    close(outs.y, { 8, 0, 4 }, 0)
  end)
end)

describe("flexible inputs", function()
  local path = build("iOS17", function(f)
    local x = f:input("x", "fp32", { range = { { 1, 1 }, { 2, 8 } }, default = { 1, 4 } })
    f:output("y", f:op("relu", { x = x }))
  end)

  it("--random uses the default shape, --shape another one", function()
    local out, err, code = F.run(string.format("run %s --random 1 --json", F.q(path)))
    assert.are.equal(0, code, err)
    assert.are.same({ 1, 4 }, json.decode(out).outputs.y.shape)
    out, err, code = F.run(string.format("run %s --random 1 --shape x=1x7 --json", F.q(path)))
    assert.are.equal(0, code, err)
    assert.are.same({ 1, 7 }, json.decode(out).outputs.y.shape)
  end)
end)

describe("multifunction programs", function()
  it("--function picks one; an unknown name lists the functions", function()
    local spec, wb = F.mlprogram { functions = { "first", "second" }, spec = 9, opset = "CoreML8" }
    local path = F.write_package(dir .. "/multi.mlpackage", spec, wb)
    local out, err, code = F.run(string.format("run %s --function second --random 1 --json", F.q(path)))
    assert.are.equal(0, code, err)
    local doc = json.decode(out)
    assert.are.equal("second", doc["function"])
    assert.are.same({ 1, 8 }, doc.outputs.y.shape)
    out, err, code = F.run(string.format("run %s --function third --random 1", F.q(path)))
    assert.are.equal(1, code)
    assert.matches("no function 'third' %(the program has: first, second%)", err)
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
