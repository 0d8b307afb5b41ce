-- interp_nn_layers_spec.lua — more NeuralNetwork layers on the interpreter, built with
-- mlsh.builder (nn:raw from mlsh.builder.nn_raw for the layers the builder has no method for):
-- deconvolution, pooling padding kinds, slice, permute, unary, reduce, padding, upsample, split,
-- loadConstant, the ND layers, batchedMatMul, quantized weights, image preprocessing and a
-- classifier. Expected values come from naive loops here, never from the interpreter.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local B = require "mlsh.builder"
require "mlsh.builder.nn_raw"
local wire = require "mlsh.builder.wire"
local F = require "fixtures"
local IH = require "interp_helpers"

local P = core.proto
local dir = F.tmpdir()
local values, tensor, close = IH.values, IH.tensor, IH.close
local n = 0

local save, run = IH.save_nn, IH.run

local function one(kind, shape, params, typename, xv, o)
  local nn = B.neural_network(o or {})
  local x = nn:input("x", "fp32", shape)
  nn:output("y", nn:raw(kind, x, { params = params, type = typename }))
  return run(save(nn), { x = tensor(xv, shape) }).y
end

local function wp(vals) local w = P.new("CoreML.Specification.WeightParams") w.floatValue = vals return w end
local function packed_floats(field, vals)
  local parts = {}
  for i, v in ipairs(vals) do parts[i] = string.pack("<f", v) end
  return wire.bytes(field, table.concat(parts))
end

describe("NeuralNetwork layers (more)", function()
  it("deconvolution 2x2 stride 2", function()
    local c = P.new("CoreML.Specification.ConvolutionLayerParams")
    c.outputChannels, c.kernelChannels, c.nGroups = 1, 1, 1
    c.kernelSize, c.stride, c.isDeconvolution, c.hasBias = { 2, 2 }, { 2, 2 }, true, true
    c:mutable("valid"):mutable("paddingAmounts")
    local w = { 1, 2, 3, 4 }
    c.weights, c.bias = wp(w), wp({ 0.5 })
    local xv = { 1, -1, 2, 0.5 }
    local y = one("convolution", { 1, 1, 2, 2 }, c, nil, xv)
    local want = {}
    for i = 0, 1 do for j = 0, 1 do for u = 0, 1 do for v = 0, 1 do
      want[(2 * i + u) * 4 + 2 * j + v + 1] = xv[i * 2 + j + 1] * w[u * 2 + v + 1] + 0.5
    end end end end
    assert.are.same({ 1, 1, 4, 4 }, y:shape())
    close(y, want, 1e-6)
  end)

  it("max pooling with includeLastPixel (the last partial window counts)", function()
    local p = P.new("CoreML.Specification.PoolingLayerParams")
    p.type, p.kernelSize, p.stride = "MAX", { 2, 2 }, { 2, 2 }
    p = wire.merge("CoreML.Specification.PoolingLayerParams", p, wire.message(32, wire.packed_varints(10, { 0, 0 })))
    local xv = values(9, 51)
    local y = one("pooling", { 1, 1, 3, 3 }, p, nil, xv)
    local want = {}
    for i = 0, 1 do for j = 0, 1 do
      local m = -math.huge
      for u = 0, 1 do for v = 0, 1 do
        local a, b = 2 * i + u, 2 * j + v
        if a < 3 and b < 3 then m = math.max(m, xv[a * 3 + b + 1]) end
      end end
      want[i * 2 + j + 1] = m
    end end
    close(y, want, 1e-6)
  end)

  it("slice along W from 1 to -1 (exclusive)", function()
    local xv = values(2 * 2 * 4, 52)
    local y = one("slice", { 1, 2, 2, 4 }, wire.uint(1, 1) .. wire.uint(2, -1) .. wire.uint(3, 1) .. wire.enum(4, 2), nil, xv)
    local want = {}
    for r = 0, 3 do for k = 1, 2 do want[#want + 1] = xv[r * 4 + k + 1] end end
    assert.are.same({ 1, 2, 2, 2 }, y:shape())
    close(y, want, 1e-6)
  end)

  it("permute (0, 2, 3, 1) on a rank-5 legacy blob keeps the batch axis", function()
    local xv = values(2 * 3 * 4, 53)
    local y = one("permute", { 2, 3, 4 }, wire.packed_varints(1, { 0, 2, 3, 1 }), nil, xv, { exact_rank = false })
    assert.are.same({ 1, 1, 3, 4, 2 }, y:shape())
    local want = {}
    for h = 0, 2 do for w = 0, 3 do for c = 0, 1 do want[#want + 1] = xv[(c * 3 + h) * 4 + w + 1] end end end
    close(y, want, 1e-6)
  end)

  it("unary POWER after shift and scale; THRESHOLD", function()
    local xv = values(8, 54)
    local y = one("unary", { 1, 2, 2, 2 }, wire.enum(1, 3) .. wire.float(2, 2) .. wire.float(4, 1) .. wire.float(5, 2), nil, xv)
    local want = {}
    for i, v in ipairs(xv) do want[i] = (2 * v + 1) ^ 2 end
    close(y, want, 1e-5)
    y = one("unary", { 1, 2, 2, 2 }, wire.enum(1, 7) .. wire.float(2, 0.1), nil, xv)
    for i, v in ipairs(xv) do want[i] = math.max(v, 0.1) end
    close(y, want, 1e-6)
  end)

  it("reduce SUM over HW and ARGMAX over C", function()
    local xv = values(2 * 2 * 3, 55)
    local y = one("reduce", { 1, 2, 2, 3 }, wire.enum(1, 0) .. wire.enum(3, 1), nil, xv)
    local want = { 0, 0 }
    for c = 0, 1 do for i = 1, 6 do want[c + 1] = want[c + 1] + xv[c * 6 + i] end end
    assert.are.same({ 1, 2, 1, 1 }, y:shape())
    close(y, want, 1e-5)
    y = one("reduce", { 1, 2, 2, 3 }, wire.enum(1, 9) .. wire.enum(3, 2), nil, xv)
    for i = 1, 6 do want[i] = xv[6 + i] > xv[i] and 1 or 0 end
    close(y, want, 1e-6)
  end)

  it("padding: reflection by (1, 1) rows and (2, 0) columns", function()
    local xv = values(9, 56)
    local amounts = wire.message(10, wire.message(10, wire.uint(1, 1) .. wire.uint(2, 1)) .. wire.message(10, wire.uint(1, 2)))
    local y = one("padding", { 1, 1, 3, 3 }, wire.message(2, "") .. amounts, nil, xv)
    assert.are.same({ 1, 1, 5, 5 }, y:shape())
    local function refl(i, nn) if i < 0 then return -i end if i >= nn then return 2 * (nn - 1) - i end return i end
    local want = {}
    for i = 0, 4 do for j = 0, 4 do want[#want + 1] = xv[refl(i - 1, 3) * 3 + refl(j - 2, 3) + 1] end end
    close(y, want, 1e-6)
  end)

  it("upsample nearest x2 and split over C", function()
    local xv = values(4, 57)
    local y = one("upsample", { 1, 1, 2, 2 }, wire.packed_varints(1, { 2, 2 }), nil, xv)
    local want = {}
    for i = 0, 3 do for j = 0, 3 do want[#want + 1] = xv[(i // 2) * 2 + j // 2 + 1] end end
    close(y, want, 1e-6)
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, 4, 1, 1 })
    local a, b = nn:raw("split", x, { params = wire.uint(1, 2), outputs = { "a", "b" } })
    nn:output("a", a)
    nn:output("b", b)
    local outs = run(save(nn), { x = tensor({ 1, 2, 3, 4 }, { 1, 4, 1, 1 }) })
    close(outs.a, { 1, 2 }, 0)
    close(outs.b, { 3, 4 }, 0)
  end)

  it("loadConstant added to the input; addBroadcastable; softmaxND; transpose", function()
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, 1, 2, 2 })
    local k = nn:raw("loadConstant", {}, { params = wire.packed_varints(1, { 1, 2, 2 }) .. wire.message(2, packed_floats(1, { 1, 2, 3, 4 })) })
    nn:output("s", nn:add(x, k))
    local t = nn:raw("transpose", x, { params = wire.packed_varints(1, { 0, 1, 3, 2 }) })
    nn:output("t", t)
    nn:output("b", nn:raw("addBroadcastable", { x, t }))
    nn:output("m", nn:raw("softmaxND", x, { params = wire.uint(1, -1) }))
    local xv = { 0.5, -1, 2, 0.25 }
    local outs = run(save(nn), { x = tensor(xv, { 1, 1, 2, 2 }) })
    close(outs.s, { 1.5, 1, 5, 4.25 }, 1e-6)
    close(outs.t, { 0.5, 2, -1, 0.25 }, 0)
    close(outs.b, { 1, 1, 1, 0.5 }, 1e-6)
    local e1, e2 = math.exp(0.5), math.exp(-1)
    local e3, e4 = math.exp(2), math.exp(0.25)
    close(outs.m, { e1 / (e1 + e2), e2 / (e1 + e2), e3 / (e3 + e4), e4 / (e3 + e4) }, 1e-6)
  end)

  it("batchedMatMul with a weight matrix and bias", function()
    local bm = P.new("CoreML.Specification.BatchedMatMulLayerParams")
    bm.weightMatrixFirstDimension, bm.weightMatrixSecondDimension, bm.hasBias = 3, 2, true
    local w, b = values(6, 58), { 0.5, -0.5 }
    bm.weights, bm.bias = wp(w), wp(b)
    local xv = values(6, 59)
    local y = one("batchedMatmul", { 2, 3 }, bm, nil, xv)
    local want = {}
    for r = 0, 1 do for c = 0, 1 do
      local s = b[c + 1]
      for k = 0, 2 do s = s + xv[r * 3 + k + 1] * w[k * 2 + c + 1] end
      want[#want + 1] = s
    end end
    close(y, want, 1e-5)
  end)

  it("8- and 4-bit linear quantized innerProduct weights dequantize (MSB-first packing); 5-bit ones are a clear error", function()
    local function ip(nbits, raw)
      local q = P.new("CoreML.Specification.WeightParams")
      q.rawValue = raw
      local qp = q:mutable("quantization")
      qp.numberOfBits = nbits
      local lq = qp:mutable("linearQuantization")
      lq.scale, lq.bias = { 0.5, 0.25 }, { -1, 1 }
      local p = P.new("CoreML.Specification.InnerProductLayerParams")
      p.inputChannels, p.outputChannels = 2, 2
      p.weights = q
      local nn = B.neural_network {}
      local x = nn:input("x", "fp32", { 1, 2 })
      nn:output("y", nn:raw("innerProduct", x, { params = p }))
      return save(nn)
    end
    local path = ip(8, string.char(2, 4, 8, 16))
    local y = run(path, { x = tensor({ 1, 2 }, { 1, 2 }) }).y
    -- rows: [2*0.5-1, 4*0.5-1] = [0, 1]; [8*0.25+1, 16*0.25+1] = [3, 5]
    close(y, { 0 * 1 + 1 * 2, 3 * 1 + 5 * 2 }, 1e-6)
    -- 4-bit codes are packed most significant bit first (coremltools'
    -- _convert_array_to_nbit_quantized_bytes): 0x21, 0x43 -> codes 2, 1, 4, 3
    -- rows: [2*0.5-1, 1*0.5-1] = [0, -0.5]; [4*0.25+1, 3*0.25+1] = [2, 1.75]
    local four = ip(4, string.char(0x21, 0x43))
    close(run(four, { x = tensor({ 1, 2 }, { 1, 2 }) }).y, { 0 * 1 - 0.5 * 2, 2 * 1 + 1.75 * 2 }, 1e-6)
    -- the same codes through mlsh.model.weights (w:values()) agree
    local m = mlsh.load(four)
    local vals = {}
    for _, w in ipairs(m:weights()) do
      if w.values then
        local a = w:values()
        for i = 1, #a do vals[#vals + 1] = a[i] end
        if #vals == 4 then break end
        vals = {}
      end
    end
    assert.are.same({ 0, -0.5, 2, 1.75 }, vals)
    local bad = ip(5, string.char(0x21, 0x43))
    local _, err, code = F.run("run " .. F.q(bad) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("5%-bit quantized weights are not supported", err)
  end)

  it("image input: the model's scale and per-channel bias (BGR order) before the first layer", function()
    local nn = B.neural_network {}
    local x = nn:input("img", "image", { width = 2, height = 1, color = "BGR", scale = 0.5, bias = { 1, 2, 3 } })
    nn:output("y", nn:activation(x, "ReLU"))
    local p = save(nn)
    local px = { 10, 20, 30, 40, 50, 60 } -- HWC, R G B per pixel
    local y = run(p, { img = tensor(px, { 1, 2, 3 }, "uint8") }).y
    -- channels in BGR order: blue first, bias (b, g, r) = (1, 2, 3)
    close(y, { 30 * 0.5 + 1, 60 * 0.5 + 1, 20 * 0.5 + 2, 50 * 0.5 + 2, 10 * 0.5 + 3, 40 * 0.5 + 3 }, 1e-6)
  end)

  it("lrn, l2normalize and mvn (within each channel)", function()
    local C, HW = 3, 4
    local xv = values(C * HW, 60)
    local y = one("lrn", { 1, C, 2, 2 }, wire.float(1, 0.5) .. wire.float(2, 0.75) .. wire.uint(3, 3) .. wire.float(4, 2), nil, xv)
    local want = {}
    for c = 0, C - 1 do for i = 1, HW do
      local s = 0
      for j = c - 1, c + 1 do if j >= 0 and j < C then s = s + xv[j * HW + i] ^ 2 end end
      want[c * HW + i] = xv[c * HW + i] / (2 + 0.5 / 3 * s) ^ 0.75
    end end
    close(y, want, 1e-5)
    y = one("l2normalize", { 1, C, 2, 2 }, "", nil, xv)
    local ss = 0
    for _, v in ipairs(xv) do ss = ss + v * v end
    for i, v in ipairs(xv) do want[i] = v / math.sqrt(ss + 1e-6) end
    close(y, want, 1e-5)
    y = one("mvn", { 1, C, 2, 2 }, wire.bool(2, true) .. wire.float(3, 1e-3), nil, xv)
    for c = 0, C - 1 do
      local m, v = 0, 0
      for i = 1, HW do m = m + xv[c * HW + i] / HW end
      for i = 1, HW do v = v + (xv[c * HW + i] - m) ^ 2 / HW end
      for i = 1, HW do want[c * HW + i] = (xv[c * HW + i] - m) / math.sqrt(v + 1e-3) end
    end
    close(y, want, 1e-4)
  end)

  it("ND: argMax, tile, cumSum, reverse, topK, constantPad, layerNormalization", function()
    local xv = { 3, -1, 4, 1, 5, -9 }
    local y = one("argMax", { 2, 3 }, wire.uint(1, 1) .. wire.bool(2, true), nil, xv)
    assert.are.same({ 2 }, y:shape())
    close(y, { 2, 1 }, 0)
    y = one("tile", { 2, 3 }, wire.packed_varints(1, { 1, 2 }), nil, xv)
    close(y, { 3, -1, 4, 3, -1, 4, 1, 5, -9, 1, 5, -9 }, 0)
    y = one("cumSum", { 2, 3 }, wire.uint(1, 1), nil, xv)
    close(y, { 3, 2, 6, 1, 6, -3 }, 1e-6)
    y = one("reverse", { 2, 3 }, wire.packed_varints(1, { 0, 1 }), nil, xv)
    close(y, { 4, -1, 3, -9, 5, 1 }, 0)
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 2, 3 })
    local v, i = nn:raw("topK", x, { params = wire.uint(1, 1) .. wire.uint(2, 2), outputs = { "v", "i" } })
    nn:output("v", v)
    nn:output("i", i)
    local outs = run(save(nn), { x = tensor(xv, { 2, 3 }) })
    close(outs.v, { 4, 3, 5, 1 }, 0)
    close(outs.i, { 2, 0, 1, 0 }, 0)
    y = one("constantPad", { 2, 3 }, wire.float(1, 7) .. wire.packed_varints(2, { 0, 1, 1, 0 }), nil, xv)
    assert.are.same({ 3, 4 }, y:shape())
    close(y, { 7, 3, -1, 4, 7, 1, 5, -9, 7, 7, 7, 7 }, 0)
    local g = P.new("CoreML.Specification.WeightParams")
    g.floatValue = { 1, 2, 0.5 }
    local bt = P.new("CoreML.Specification.WeightParams")
    bt.floatValue = { 0, 0.1, -0.1 }
    y = one("layerNormalization", { 2, 3 }, wire.packed_varints(1, { 3 }) .. wire.float(2, 1e-5) .. wire.message(3, g:encode()) .. wire.message(4, bt:encode()), nil, xv)
    local want = {}
    for r = 0, 1 do
      local m, var = 0, 0
      for k = 1, 3 do m = m + xv[r * 3 + k] / 3 end
      for k = 1, 3 do var = var + (xv[r * 3 + k] - m) ^ 2 / 3 end
      for k = 1, 3 do want[r * 3 + k] = (xv[r * 3 + k] - m) / math.sqrt(var + 1e-5) * g.floatValue[k] + bt.floatValue[k] end
    end
    close(y, want, 1e-5)
  end)

  it("a NeuralNetworkClassifier gives the label and the probability vector", function()
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, 3 })
    nn:output("probs", nn:raw("softmaxND", x, { params = wire.uint(1, -1) }))
    local m = nn:build()
    local bytes = m.neuralNetwork:encode() .. wire.message(100, wire.bytes(1, "cat") .. wire.bytes(1, "dog") .. wire.bytes(1, "bird"))
    m.neuralNetworkClassifier = P.decode("CoreML.Specification.NeuralNetworkClassifier", bytes)
    local d = m.description
    d:add("output").name = "label"
    d.predictedFeatureName, d.predictedProbabilitiesName = "label", "probs"
    n = n + 1
    local p = string.format("%s/l%d.mlmodel", dir, n)
    assert(core.fs.write_atomic(p, m:encode()))
    local outs = run(p, { x = tensor({ 0.1, 2.0, -1 }, { 1, 3 }) })
    assert.are.same({ "dog" }, outs.label:labels())
    local e = { math.exp(0.1), math.exp(2), math.exp(-1) }
    local s = e[1] + e[2] + e[3]
    assert.are.same({ 3 }, outs.probs:shape())
    close(outs.probs, { e[1] / s, e[2] / s, e[3] / s }, 1e-6)
    local cmp = mlsh.compare(outs, outs) -- the string label is left out, the probabilities compared
    assert.are.equal(1, #cmp)
    assert.are.equal("probs", cmp[1].name)
    assert.are.equal(1, cmp[1].top1)
  end)
end)
