-- interp_fused_spec.lua — a conv or linear followed by the activation that is its output's only
-- reader runs as one kernel (the activation applied in the GEMM / depthwise store). Checked
-- against naive loops written here, and byte for byte against the same program run with a kept
-- trace (which runs every op on its own); the non-finite and fp16-range reports still name the
-- conv whose own values were out of range, even when the activation clamps them.
local IH = require "interp_helpers"
local core = require "mlsh.core"
local mlsh = require "mlsh"

local values, tensor, build, close = IH.values, IH.tensor, IH.build, IH.close
local C, HW, CO = 16, 9, 24

local function const(f, name, vals, shape) return f:const(name, core.array.new(vals), { shape = shape }) end
local function scaled(n, seed, s)
  local t = values(n, seed)
  for i = 1, n do t[i] = t[i] * s end
  return t
end

local X, W1, B1 = values(C * HW * HW, 1), scaled(CO * C, 2, 0.5), values(CO, 3)
local WD, BD = values(CO * 9, 4), values(CO, 5)
local W3, B3 = scaled(8 * C * 9, 6, 0.3), values(8, 7)
local Y, WL, BL = values(5 * 40, 8), scaled(37 * 40, 9, 0.3), values(37, 10)
local Z, WZ, BZ = values(4 * 37 * 37, 11), values(4 * 9, 12), values(4, 13) -- a wide, odd stride-2 depthwise

-- out[co][oh][ow] = b[co] + sum x[ci][ih][iw] w[co][ci'][kh][kw]; groups, stride, dilation, "same" padding
local function conv(x, cin, n, w, b, cout, k, stride, groups, dil)
  dil = dil or 1
  local out_n = (n + stride - 1) // stride
  local pb = math.max((out_n - 1) * stride + (k - 1) * dil + 1 - n, 0) // 2
  local cg, og, out = cin // groups, cout // groups, {}
  for co = 0, cout - 1 do
    local g = co // og
    for oh = 0, out_n - 1 do
      for ow = 0, out_n - 1 do
        local acc = b[co + 1]
        for c = 0, cg - 1 do
          for kh = 0, k - 1 do
            for kw = 0, k - 1 do
              local ih, iw = oh * stride - pb + kh * dil, ow * stride - pb + kw * dil
              if ih >= 0 and ih < n and iw >= 0 and iw < n then
                acc = acc + x[((g * cg + c) * n + ih) * n + iw + 1] * w[((co * cg + c) * k + kh) * k + kw + 1]
              end
            end
          end
        end
        out[#out + 1] = acc
      end
    end
  end
  return out
end

local R = require "ref_math"
local map, erf = R.map, R.erf
local function clamp(lo, hi) return function(v) return math.min(math.max(v, lo), hi) end end

local function model()
  return build("iOS17", function(f)
    local x = f:input("x", "fp32", { 1, C, HW, HW })
    local a = f:op("relu6", { x = f:op("conv", { x = x, weight = const(f, "w1", W1, { CO, C, 1, 1 }), bias = const(f, "b1", B1, { CO }),
      pad_type = "valid" }) })
    f:output("a", a)
    f:output("d", f:op("clip", { x = f:op("conv", { x = a, weight = const(f, "wd", WD, { CO, 1, 3, 3 }), bias = const(f, "bd", BD, { CO }),
      strides = { 2, 2 }, pad_type = "same", groups = CO }), alpha = -0.5, beta = 0.75 }))
    f:output("r", f:op("relu", { x = f:op("conv", { x = x, weight = const(f, "w3", W3, { 8, C, 3, 3 }), bias = const(f, "b3", B3, { 8 }),
      pad_type = "same" }) }))
    f:output("dz", f:op("relu", { x = f:op("conv", { x = f:input("z", "fp32", { 1, 4, 37, 37 }), weight = const(f, "wz", WZ, { 4, 1, 3, 3 }),
      bias = const(f, "bz", BZ, { 4 }), strides = { 2, 2 }, pad_type = "same", groups = 4 }) }))
    f:output("dd", f:op("relu6", { x = f:op("conv", { x = f:input("z2", "fp32", { 1, 4, 37, 37 }), weight = const(f, "wz2", WZ, { 4, 1, 3, 3 }),
      bias = const(f, "bz2", BZ, { 4 }), dilations = { 2, 2 }, pad_type = "same", groups = 4 }) }))
    local y = f:input("y", "fp32", { 5, 40 })
    local function lin(n) return f:op("linear", { x = y, weight = const(f, "wl" .. n, WL, { 37, 40 }), bias = const(f, "bl" .. n, BL, { 37 }) }) end
    f:output("g", f:op("gelu", { x = lin(1), mode = "EXACT" }))
    f:output("s", f:op("silu", { x = lin(2) }))
  end)
end

local function run(path, inputs, keep)
  local m = mlsh.load(path)
  local outs, info = m:run(inputs, { precision = "fp32", keep = keep })
  m:close()
  return outs, info
end

describe("conv / linear with the following activation fused", function()
  local path = model()
  local ins = function() return { x = tensor(X, { 1, C, HW, HW }), y = tensor(Y, { 5, 40 }), z = tensor(Z, { 1, 4, 37, 37 }), z2 = tensor(Z, { 1, 4, 37, 37 }) } end

  it("matches naive loops", function()
    local outs = run(path, ins())
    local a = map(conv(X, C, HW, W1, B1, CO, 1, 1, 1), clamp(0, 6))
    close(outs.a, a, 1e-5)
    close(outs.d, map(conv(a, CO, HW, WD, BD, CO, 3, 2, CO), clamp(-0.5, 0.75)), 1e-5)
    close(outs.r, map(conv(X, C, HW, W3, B3, 8, 3, 1, 1), function(v) return math.max(v, 0) end), 1e-5)
    close(outs.dz, map(conv(Z, 4, 37, WZ, BZ, 4, 3, 2, 4), function(v) return math.max(v, 0) end), 1e-5)
    close(outs.dd, map(conv(Z, 4, 37, WZ, BZ, 4, 3, 1, 4, 2), clamp(0, 6)), 1e-5)
    local l = R.linear(Y, WL, BL, 5, 37, 40)
    close(outs.g, map(l, function(v) return 0.5 * v * (1 + erf(v / math.sqrt(2))) end), 1e-5)
    close(outs.s, map(l, function(v) return v / (1 + math.exp(-v)) end), 1e-5)
  end)

  it("writes the same values as the ops run one by one (kept trace)", function()
    local fused = run(path, ins())
    local single, info = run(path, ins(), true)
    local types = {}
    for _, e in ipairs(info.trace) do types[e.type] = (types[e.type] or 0) + 1 end
    assert.are.equal(5, types.conv)
    assert.are.equal(2, types.relu6)
    assert.are.equal(1, types.gelu)
    for _, name in ipairs({ "a", "d", "r", "dz", "dd", "g", "s" }) do
      assert.is_true(single[name]:array():encode("fp32") == fused[name]:array():encode("fp32"), name)
    end
  end)

  -- 9 x 9 = 81 columns: full 32-wide tiles and a partial one; 8 x 8 = 64: full tiles only
  local function clamped(wscale, hw)
    return build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, C, hw, hw })
      f:output("a", f:op("relu6", { x = f:op("conv", { x = x, weight = const(f, "w", map(W1, function(v) return math.abs(v) * wscale end),
        { CO, C, 1, 1 }), pad_type = "valid" }) }))
    end)
  end

  for _, hw in ipairs({ HW, 8 }) do
    local XP = map(values(C * hw * hw, 1), math.abs)
    for _, keep in ipairs({ false, true }) do
      local tag = string.format(" (%dx%d%s)", hw, hw, keep and ", unfused" or "")
      it("reports the conv's own non-finite values" .. tag, function()
        local outs, info = run(clamped(1e38, hw), { x = tensor(XP, { 1, C, hw, hw }) }, keep)
        assert.is_true(math.max(table.unpack(outs.a:array())) <= 6)
        assert.are.equal("conv", info.nonfinite and info.nonfinite.type)
      end)
      it("reports the conv's own values beyond fp16" .. tag, function()
        local _, info = run(clamped(1e5, hw), { x = tensor(XP, { 1, C, hw, hw }) }, keep)
        assert.is_nil(info.nonfinite)
        assert.are.equal("conv", info.fp16_overflow and info.fp16_overflow.type)
      end)
    end
  end
end)
