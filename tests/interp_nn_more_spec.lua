-- interp_nn_more_spec.lua — the rarer NeuralNetwork layers on the interpreter (nn_lower_more.c,
-- nn_dyn.c): gelu, getShape, range/fill/broadcastTo (static, dynamic, like), scatterND, dot, crop (one
-- and two inputs), resizeBilinear, cropResize, sliceDynamic, DEFAULT-mode bilinear upsample, sequenceRepeat, 3-D
-- convolution (and deconvolution) and pooling, meanImage preprocessing and int8RawValue weights. Layers are built
-- with nn:raw and wire-encoded parameters; expected values come from naive loops here.
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

local function one(kind, shape, params, xv)
  local nn = B.neural_network {}
  local x = nn:input("x", "fp32", shape)
  nn:output("y", nn:raw(kind, x, { params = params }))
  return run(save(nn), { x = tensor(xv, shape) }).y
end

local function packed_floats(field, vals)
  local parts = {}
  for i, v in ipairs(vals) do parts[i] = string.pack("<f", v) end
  return wire.bytes(field, table.concat(parts))
end

local function sint(field, v) return wire.uint(field, v) end

-- bilinear sample of plane p (H x W, 0-based rows) at fractional (fy, fx), clamped
local function bilinear(p, H, W, fy, fx)
  fy = math.min(math.max(fy, 0), H - 1)
  fx = math.min(math.max(fx, 0), W - 1)
  local y0, x0 = math.floor(fy), math.floor(fx)
  local y1, x1 = math.min(y0 + 1, H - 1), math.min(x0 + 1, W - 1)
  local dy, dx = fy - y0, fx - x0
  local function at(y, x) return p[y * W + x + 1] end
  return (1 - dy) * ((1 - dx) * at(y0, x0) + dx * at(y0, x1)) + dy * ((1 - dx) * at(y1, x0) + dx * at(y1, x1))
end

describe("NeuralNetwork layers (rarer ones)", function()
  it("gelu (tanh approximation), getShape, rangeStatic and fillStatic", function()
    local xv = values(6, 1)
    local y = one("gelu", { 2, 3 }, wire.enum(1, 1), xv)
    local want = {}
    for i, v in ipairs(xv) do
      local t = math.exp(2 * math.sqrt(2 / math.pi) * (v + 0.044715 * v ^ 3))
      want[i] = 0.5 * v * (1 + (t - 1) / (t + 1))
    end
    close(y, want, 1e-5)
    close(one("getShape", { 2, 3, 4 }, "", values(24, 2)), { 2, 3, 4 }, 0)
    local nn = B.neural_network {}
    nn:input("x", "fp32", { 1 })
    nn:output("r", nn:raw("rangeStatic", {}, { params = wire.float(1, 2) .. wire.float(2, -1) .. wire.float(3, 0.75) }))
    nn:output("f", nn:raw("fillStatic", {}, { params = wire.float(1, 2.5) .. wire.packed_varints(2, { 2, 3 }) }))
    local outs = run(save(nn), { x = tensor({ 0 }, { 1 }) })
    close(outs.r, { -1, -0.25, 0.5, 1.25 }, 1e-6)
    close(outs.f, { 2.5, 2.5, 2.5, 2.5, 2.5, 2.5 }, 0)
    assert.are.same({ 2, 3 }, outs.f:shape())
  end)

  it("broadcastToStatic and scatterND (add)", function()
    local y = one("broadcastToStatic", { 1, 3 }, wire.packed_varints(1, { 2, 3 }), { 1, 2, 3 })
    close(y, { 1, 2, 3, 1, 2, 3 }, 0)
    local nn = B.neural_network {}
    local d = nn:input("d", "fp32", { 3, 2 })
    local i = nn:input("i", "fp32", { 2, 1 })
    local u = nn:input("u", "fp32", { 2, 2 })
    nn:output("y", nn:raw("scatterND", { d, i, u }, { params = wire.enum(1, 1) }))
    local outs = run(save(nn), { d = tensor({ 1, 2, 3, 4, 5, 6 }, { 3, 2 }), i = tensor({ 2, 0 }, { 2, 1 }),
      u = tensor({ 10, 20, 30, 40 }, { 2, 2 }) })
    close(outs.y, { 1 + 30, 2 + 40, 3, 4, 5 + 10, 6 + 20 }, 0)
    -- scatter (axis 1, max): data[:, i[k]] = max(data[:, i[k]], u[:, k])
    nn = B.neural_network {}
    d = nn:input("d", "fp32", { 2, 3 })
    i = nn:input("i", "fp32", { 2 })
    u = nn:input("u", "fp32", { 2, 2 })
    nn:output("y", nn:raw("scatter", { d, i, u }, { params = wire.uint(1, 1) .. wire.enum(2, 5) }))
    outs = run(save(nn), { d = tensor({ 1, 2, 3, 4, 5, 6 }, { 2, 3 }), i = tensor({ 2, 0 }, { 2 }),
      u = tensor({ 10, 0, -1, 9 }, { 2, 2 }) })
    close(outs.y, { 1, 2, 10, 9, 5, 6 }, 0)
  end)

  it("the dynamic and -Like forms: fillLike, fillDynamic, broadcastToLike / Dynamic, rangeDynamic", function()
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, 3 })
    local r = nn:input("r", "fp32", { 2, 3 })
    local s = nn:input("s", "fp32", { 2 })
    local e = nn:input("e", "fp32", { 1 })
    nn:output("fl", nn:raw("fillLike", r, { params = wire.float(1, -2) }))
    nn:output("fd", nn:raw("fillDynamic", s, { params = wire.float(1, 7) }))
    nn:output("bl", nn:raw("broadcastToLike", { x, r }))
    nn:output("bd", nn:raw("broadcastToDynamic", { x, s }))
    nn:output("rd", nn:raw("rangeDynamic", e, { params = wire.float(2, 1) .. wire.float(3, 2) }))
    local outs = run(save(nn), { x = tensor({ 1, 2, 3 }, { 1, 3 }), r = tensor(values(6, 11), { 2, 3 }),
      s = tensor({ 2, 3 }, { 2 }), e = tensor({ 8 }, { 1 }) })
    close(outs.fl, { -2, -2, -2, -2, -2, -2 }, 0)
    close(outs.fd, { 7, 7, 7, 7, 7, 7 }, 0)
    assert.are.same({ 2, 3 }, outs.fd:shape())
    close(outs.bl, { 1, 2, 3, 1, 2, 3 }, 0)
    close(outs.bd, { 1, 2, 3, 1, 2, 3 }, 0)
    close(outs.rd, { 1, 3, 5, 7 }, 0)
  end)

  it("dot: plain and cosine similarity over the channel axis", function()
    local a, b = values(4, 3), values(4, 4)
    for _, cos in ipairs({ false, true }) do
      local nn = B.neural_network {}
      local x = nn:input("a", "fp32", { 1, 4, 1, 1 })
      local z = nn:input("b", "fp32", { 1, 4, 1, 1 })
      nn:output("y", nn:raw("dot", { x, z }, { params = wire.bool(1, cos) }))
      local s, na, nb = 0, 0, 0
      for k = 1, 4 do s, na, nb = s + a[k] * b[k], na + a[k] ^ 2, nb + b[k] ^ 2 end
      local outs = run(save(nn), { a = tensor(a, { 1, 4, 1, 1 }), b = tensor(b, { 1, 4, 1, 1 }) })
      close(outs.y, { cos and s / math.sqrt(na * nb) or s }, 1e-5)
    end
  end)

  it("crop: by border amounts, and to a second input's size at an offset; a crop that does not fit fails", function()
    local xv = values(2 * 4 * 5, 5)
    local amounts = wire.message(10, wire.uint(1, 1) .. wire.uint(2, 2)) .. wire.message(10, wire.uint(2, 1))
    local y = one("crop", { 1, 2, 4, 5 }, wire.message(1, amounts), xv)
    local want = {}
    for c = 0, 1 do for h = 1, 1 do for w = 0, 3 do want[#want + 1] = xv[(c * 4 + h) * 5 + w + 1] end end end
    close(y, want, 1e-6)
    local function two(off)
      local nn = B.neural_network {}
      local x = nn:input("x", "fp32", { 1, 2, 4, 5 })
      local r = nn:input("r", "fp32", { 1, 2, 2, 3 })
      nn:output("y", nn:raw("crop", { x, r }, { params = wire.packed_varints(5, off) }))
      return save(nn)
    end
    local outs = run(two({ 1, 2 }), { x = tensor(xv, { 1, 2, 4, 5 }), r = tensor(values(12, 6), { 1, 2, 2, 3 }) })
    want = {}
    for c = 0, 1 do for h = 1, 2 do for w = 2, 4 do want[#want + 1] = xv[(c * 4 + h) * 5 + w + 1] end end end
    close(outs.y, want, 1e-6)
    local ok, err = pcall(run, two({ 3, 0 }), { x = tensor(xv, { 1, 2, 4, 5 }), r = tensor(values(12, 6), { 1, 2, 2, 3 }) })
    assert.is_false(ok)
    assert.matches("a 2x3 crop at offset %[3, 0%] does not fit a 4x5 input", tostring(err))
  end)

  it("resizeBilinear (strict align endpoints, upsample mode, ROI align) and bilinear upsample in DEFAULT mode", function()
    local H, W, xv = 3, 4, values(12, 7)
    local function ref(OH, OW, map)
      local out = {}
      for h = 0, OH - 1 do for w = 0, OW - 1 do out[#out + 1] = bilinear(xv, H, W, map(h, H, OH), map(w, W, OW)) end end
      return out
    end
    local strict = function(d, i, o) return o > 1 and d * (i - 1) / (o - 1) or 0 end
    local upsample = function(d, i, o) return d * i / o end
    local y = one("resizeBilinear", { 1, 1, H, W }, wire.packed_varints(1, { 5, 7 }), xv)
    close(y, ref(5, 7, strict), 1e-5)
    y = one("resizeBilinear", { 1, 1, H, W }, wire.packed_varints(1, { 5, 7 }) .. wire.message(2, wire.enum(1, 2)), xv)
    close(y, ref(5, 7, upsample), 1e-5)
    -- NN upsample DEFAULT: spacing (Xin - Xin/Xout) / (Xout - 1) = Xin / Xout
    y = one("upsample", { 1, 1, H, W }, wire.packed_varints(1, { 2, 3 }) .. wire.enum(5, 1), xv)
    close(y, ref(6, 12, function(d, i, o) return d * (i - i / o) / (o - 1) end), 1e-5)
    -- ROI_ALIGN_MODE: spacing = max(1, X - 1) / N, points 0.5 * spacing + i * spacing (clamped to X - 1)
    local roi = function(d, i, o)
      local sp = math.max(1, i - 1) / o
      return math.min(i - 1, 0.5 * sp + d * sp)
    end
    for _, ts in ipairs({ { 5, 7 }, { 2, 3 } }) do
      y = one("resizeBilinear", { 1, 1, H, W }, wire.packed_varints(1, ts) .. wire.message(2, wire.enum(1, 3)), xv)
      close(y, ref(ts[1], ts[2], roi), 1e-5)
      assert.are.same({ 1, 1, ts[1], ts[2] }, y:shape())
    end
    local _, err, code = F.run("run " .. F.q((function()
      local nn = B.neural_network {}
      local x = nn:input("x", "fp32", { 1, 1, H, W })
      nn:output("y", nn:raw("resizeBilinear", x, { params = wire.packed_varints(1, { 5, 7 }) .. wire.message(2, wire.enum(1, 7)) }))
      return save(nn)
    end)()) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("unknown sampling mode 7\n$", err)
  end)

  it("cropResize: one box on the image, strict endpoints; the box in width-first centre-size form", function()
    local H, W, xv = 4, 5, values(20, 12)
    local function model(box_mode)
      local nn = B.neural_network {}
      local x = nn:input("x", "fp32", { 1, 1, 1, H, W })
      local r = nn:input("r", "fp32", { 1, 1, 4, 1, 1 })
      nn:output("y", nn:raw("cropResize", { x, r }, { params = wire.packed_varints(1, { 3, 4 }) .. wire.message(3, "") ..
        wire.message(4, wire.enum(1, box_mode)) .. wire.float(5, 1) }))
      return save(nn)
    end
    local want = {}
    for i = 0, 2 do for j = 0, 3 do want[#want + 1] = bilinear(xv, H, W, 0.5 + i * 2 / 2, 1 + j * 2.5 / 3) end end
    local y = run(model(0), { x = tensor(xv, { 1, 1, 1, H, W }), r = tensor({ 0.5, 1, 2.5, 3.5 }, { 1, 1, 4, 1, 1 }) }).y
    close(y, want, 1e-5)
    assert.are.same({ 1, 1, 1, 3, 4 }, y:shape())
    -- CENTER_SIZE_WIDTH_FIRST: (cx, cy, w, h) = (2.25, 1.5, 2.5, 2) is the same box
    y = run(model(3), { x = tensor(xv, { 1, 1, 1, H, W }), r = tensor({ 2.25, 1.5, 2.5, 2 }, { 1, 1, 4, 1, 1 }) }).y
    close(y, want, 1e-5)
  end)

  it("sliceDynamic: begin from an input, end and strides from the layer; masks of the wrong length fail", function()
    local xv = values(12, 13)
    local function model(masks)
      local nn = B.neural_network {}
      local x = nn:input("x", "fp32", { 3, 4 })
      local b = nn:input("b", "fp32", { 2 })
      nn:output("y", nn:raw("sliceDynamic", { x, b }, { params = wire.packed_varints(3, { 3, 0 }) .. wire.packed_varints(4, masks) ..
        wire.packed_varints(5, { 1, 2 }) }))
      return save(nn)
    end
    local y = run(model({ 0, 1 }), { x = tensor(xv, { 3, 4 }), b = tensor({ 1, 1 }, { 2 }) }).y
    local want = {}
    for r = 1, 2 do for c = 1, 3, 2 do want[#want + 1] = xv[r * 4 + c + 1] end end
    close(y, want, 1e-6)
    assert.are.same({ 2, 2 }, y:shape())
    local ok, err = pcall(run, model({ 0, 1, 1 }), { x = tensor(xv, { 3, 4 }), b = tensor({ 1, 1 }, { 2 }) })
    assert.is_false(ok)
    assert.matches("end_mask has 3 values for an input of rank 2", tostring(err))
  end)

  it("sequenceRepeat tiles along the first axis", function()
    local xv = values(6, 8)
    local y = one("sequenceRepeat", { 1, 1, 3, 2, 1 }, wire.uint(1, 3), xv)
    local want = {}
    for _ = 1, 3 do for i = 1, 6 do want[#want + 1] = xv[i] end end
    close(y, want, 1e-6)
    assert.are.same({ 3, 1, 3, 2, 1 }, y:shape())
  end)

  it("convolution3d (custom padding, bias) and pooling3d / globalPooling3d", function()
    local C, O, D, H, W = 2, 2, 3, 4, 4
    local xv, wv, bv = values(C * D * H * W, 9), values(O * C * 8, 10), { 0.5, -0.25 }
    local params = sint(1, O) .. sint(2, C) .. sint(10, 1) .. sint(20, 2) .. sint(21, 2) .. sint(22, 2) ..
      sint(31, 1) .. sint(32, 2) .. sint(33, 1) .. sint(40, 1) .. sint(41, 1) .. sint(42, 1) .. wire.bool(50, true) ..
      wire.message(60, packed_floats(1, wv)) .. wire.message(61, packed_floats(1, bv)) .. sint(84, 1)
    local y = one("convolution3d", { 1, C, D, H, W }, params, xv)
    -- output: D' = 2, H' = (4 - 2) / 2 + 1 = 2, W' = 4 + 1 - 2 + 1 = 4 (one column of padding on the left)
    local want = {}
    for o = 0, O - 1 do for d = 0, 1 do for h = 0, 1 do for w = 0, 3 do
      local s = bv[o + 1]
      for c = 0, C - 1 do for a = 0, 1 do for b = 0, 1 do for e = 0, 1 do
        local iw = w + e - 1
        if iw >= 0 and iw < W then
          s = s + wv[(((o * C + c) * 2 + a) * 2 + b) * 2 + e + 1] * xv[((c * D + d + a) * H + 2 * h + b) * W + iw + 1]
        end
      end end end end
      want[#want + 1] = s
    end end end end
    close(y, want, 1e-5)
    assert.are.same({ 1, O, 2, 2, 4 }, y:shape())
    local pool = one("pooling3d", { 1, C, D, H, W }, wire.enum(1, 0) .. sint(2, 1) .. sint(3, 2) .. sint(4, 2) .. sint(5, 1) ..
      sint(6, 2) .. sint(7, 2) .. wire.enum(15, 1), xv)
    want = {}
    for c = 0, C - 1 do for d = 0, D - 1 do for h = 0, 1 do for w = 0, 1 do
      local m = -math.huge
      for b = 0, 1 do for e = 0, 1 do m = math.max(m, xv[((c * D + d) * H + 2 * h + b) * W + 2 * w + e + 1]) end end
      want[#want + 1] = m
    end end end end
    close(pool, want, 1e-6)
    local g = one("globalPooling3d", { 1, C, D, H, W }, wire.enum(1, 1), xv)
    want = {}
    for c = 0, C - 1 do
      local s = 0
      for i = 1, D * H * W do s = s + xv[c * D * H * W + i] end
      want[c + 1] = s / (D * H * W)
    end
    close(g, want, 1e-5)
  end)

  it("convolution3d with isDeconvolution: grouped conv_transpose, custom padding, outputShape", function()
    local C, O, G, D, H, W = 2, 4, 2, 2, 2, 2
    local xv, wv, bv = values(C * D * H * W, 21), values(C * (O // G) * 8, 22), { 0.5, -0.25, 1, 0 }
    -- naive transposed convolution: weights [C, O / G, 2, 2, 2], strides (1, 2, 1), pads {front, back, top, bottom, left, right}
    local function deconv(pads, OD, OH, OW)
      local y = {}
      for i = 1, O * OD * OH * OW do y[i] = bv[(i - 1) // (OD * OH * OW) + 1] end
      for c = 0, C - 1 do
        local g = c // (C // G)
        for oo = 0, O // G - 1 do for d = 0, D - 1 do for h = 0, H - 1 do for w = 0, W - 1 do
          for a = 0, 1 do for b = 0, 1 do for e = 0, 1 do
            local od, oh, ow = d + a - pads[1], 2 * h + b - pads[3], w + e - pads[5]
            if od >= 0 and od < OD and oh >= 0 and oh < OH and ow >= 0 and ow < OW then
              local o = g * (O // G) + oo
              local yi = ((o * OD + od) * OH + oh) * OW + ow + 1
              y[yi] = y[yi] + xv[((c * D + d) * H + h) * W + w + 1] * wv[(((c * (O // G) + oo) * 2 + a) * 2 + b) * 2 + e + 1]
            end
          end end end
        end end end end
      end
      return y
    end
    local base = sint(1, O) .. sint(2, C) .. sint(10, G) .. sint(20, 2) .. sint(21, 2) .. sint(22, 2) .. sint(31, 1) ..
      sint(32, 2) .. sint(33, 1) .. wire.bool(50, true) .. wire.message(60, packed_floats(1, wv)) ..
      wire.message(61, packed_floats(1, bv)) .. wire.bool(86, true)
    -- custom padding: top 1, right 1 → D' = 3, H' = (2 - 1) * 2 + 2 - 1 = 3, W' = 3 - 1 = 2
    local y = one("convolution3d", { 1, C, D, H, W }, base .. sint(82, 1) .. sint(85, 1), xv)
    assert.are.same({ 1, O, 3, 3, 2 }, y:shape())
    close(y, deconv({ 0, 0, 1, 0, 0, 0 }, 3, 3, 2), 1e-5)
    -- valid padding with outputShape [3, 5, 3]: one more row than the full output (bias only)
    y = one("convolution3d", { 1, C, D, H, W }, base .. wire.enum(70, 1) .. wire.packed_varints(87, { 3, 5, 3 }), xv)
    assert.are.same({ 1, O, 3, 5, 3 }, y:shape())
    close(y, deconv({ 0, 0, 0, 0, 0, 0 }, 3, 5, 3), 1e-5)
    local ok, err = pcall(one, "convolution3d", { 1, C, D, H, W }, base .. wire.packed_varints(87, { 3, 5 }), xv)
    assert.is_false(ok)
    assert.matches("outputShape has 2 values", tostring(err))
  end)

  it("meanImage preprocessing subtracts the mean image; a wrong-sized mean is refused", function()
    local function model(mean)
      local nn = B.neural_network {}
      local x = nn:input("img", "image", { width = 2, height = 1, color = "RGB" })
      nn:output("y", nn:activation(x, "ReLU"))
      local m = nn:build()
      local pre = m.neuralNetwork:add("preprocessing")
      pre.featureName = "img"
      pre.meanImage = wire.merge("CoreML.Specification.Opaque", nil, packed_floats(1, mean))
      n = n + 1
      local p = string.format("%s/mean%d.mlmodel", dir, n)
      assert(core.fs.write_atomic(p, m:encode()))
      return p
    end
    local mean = { 1, 2, 3, 4, 5, 6 } -- [C=3, H=1, W=2]
    local px = { 10, 20, 30, 40, 50, 60 } -- HWC
    local y = run(model(mean), { img = tensor(px, { 1, 2, 3 }, "uint8") }).y
    close(y, { 10 - 1, 40 - 2, 20 - 3, 50 - 4, 30 - 5, 60 - 6 }, 1e-6)
    local _, err, code = F.run("run " .. F.q(model({ 1, 2, 3 })) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("input 'img': the mean image has 3 values, 3x1x2 expected", err)
  end)

  it("int8RawValue innerProduct weights: int8 x scale; more than one scale is refused", function()
    local function model(scales)
      local q = P.new("CoreML.Specification.WeightParams")
      q.int8RawValue = string.char(2, 0xFE, 0x7F, 0x80) -- 2, -2, 127, -128
      local qp = q:mutable("quantization")
      qp.numberOfBits = 8
      qp:mutable("linearQuantization").scale = scales
      local p = P.new("CoreML.Specification.InnerProductLayerParams")
      p.inputChannels, p.outputChannels = 2, 2
      p.weights = q
      local nn = B.neural_network {}
      local x = nn:input("x", "fp32", { 1, 2 })
      nn:output("y", nn:raw("innerProduct", x, { params = p }))
      return save(nn)
    end
    local y = run(model({ 0.5 }), { x = tensor({ 1, 2 }, { 1, 2 }) }).y
    close(y, { 2 * 0.5 * 1 - 2 * 0.5 * 2, 127 * 0.5 * 1 - 128 * 0.5 * 2 }, 1e-6)
    local _, err, code = F.run("run " .. F.q(model({ 0.5, 1 })) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("int8RawValue needs linear quantization with one scale and no bias", err)
  end)
end)
