-- interp_kernels_spec.lua — the interpreter's fast paths at sizes that reach every branch:
-- depthwise conv (1-D/2-D/3-D, bias, batch, strides, dilations, rows wide enough for the 32-,
-- 8- and masked-column steps), GEMM edges (M, N not multiples of the 6x16 tile, K above the
-- 256 block) through matmul and linear, fp16 rounding of long tensors (the vector path) and the
-- non-finite / fp16-range scan. Expected values come from naive loops written here.
local IH = require "interp_helpers"
local core = require "mlsh.core"
local R = require "ref_math"

local values, tensor, build, run, close = IH.values, IH.tensor, IH.build, IH.run, IH.close

-- fp32 value of a Lua number (what the tensor holds)
local function f32(v) return (string.unpack("<f", string.pack("<f", v))) end

-- naive depthwise conv over (D, H, W) with per-dim stride/dilation/pad-begin; bias per channel
local function naive_dw(X, Wt, bias, N, C, inp, k, st, dl, pb, out)
  local want = {}
  for n = 0, N - 1 do
    for c = 0, C - 1 do
      for od = 0, out[1] - 1 do
        for oh = 0, out[2] - 1 do
          for ow = 0, out[3] - 1 do
            local acc = bias and bias[c + 1] or 0
            for kd = 0, k[1] - 1 do
              for kh = 0, k[2] - 1 do
                for kw = 0, k[3] - 1 do
                  local id, ih = od * st[1] - pb[1] + kd * dl[1], oh * st[2] - pb[2] + kh * dl[2]
                  local iw = ow * st[3] - pb[3] + kw * dl[3]
                  if id >= 0 and id < inp[1] and ih >= 0 and ih < inp[2] and iw >= 0 and iw < inp[3] then
                    local xi = (((n * C + c) * inp[1] + id) * inp[2] + ih) * inp[3] + iw
                    local wi = ((c * k[1] + kd) * k[2] + kh) * k[3] + kw
                    acc = acc + X[xi + 1] * Wt[wi + 1]
                  end
                end
              end
            end
            want[#want + 1] = acc
          end
        end
      end
    end
  end
  return want
end

describe("depthwise conv", function()
  -- S spatial dims given as full (D, H, W) with leading 1s; pad = begin/end per used dim
  for _, case in ipairs({
    { name = "2-D, wide rows, bias, batch 2", N = 2, C = 3, inp = { 1, 5, 45 }, k = { 1, 3, 3 }, st = { 1, 1, 2 }, dl = { 1, 2, 1 },
      pad = { 2, 1, 1, 0 }, bias = true },
    { name = "2-D, stride 1, 7 columns", N = 1, C = 4, inp = { 1, 7, 7 }, k = { 1, 3, 3 }, st = { 1, 1, 1 }, dl = { 1, 1, 1 },
      pad = { 1, 1, 1, 1 }, bias = true },
    { name = "1-D, stride 3, dilation 2", N = 1, C = 2, inp = { 1, 1, 70 }, k = { 1, 1, 5 }, st = { 1, 1, 3 }, dl = { 1, 1, 2 },
      pad = { 3, 2 }, bias = false },
    { name = "3-D, strides 2", N = 1, C = 2, inp = { 4, 5, 19 }, k = { 2, 3, 3 }, st = { 2, 2, 2 }, dl = { 1, 1, 1 },
      pad = { 0, 1, 1, 1, 1, 1 }, bias = true },
    -- the AVX-512 direct path's shapes: 4 + 1 vector groups, blocks of interior rows, edges
    { name = "2-D, 20 x 70, 3x3, stride 1", N = 1, C = 3, inp = { 1, 20, 70 }, k = { 1, 3, 3 }, st = { 1, 1, 1 },
      dl = { 1, 1, 1 }, pad = { 1, 1, 1, 1 }, bias = true },
    { name = "2-D, 30 x 37, 5x5, strides 2, column dilation 2", N = 1, C = 2, inp = { 1, 30, 37 }, k = { 1, 5, 5 },
      st = { 1, 2, 2 }, dl = { 1, 1, 2 }, pad = { 2, 1, 3, 0 }, bias = true },
    { name = "2-D, 19 x 12, row stride 2, no pad", N = 2, C = 2, inp = { 1, 19, 12 }, k = { 1, 3, 3 }, st = { 1, 2, 1 },
      dl = { 1, 1, 1 }, pad = { 0, 0, 0, 0 }, bias = false },
    { name = "2-D, 9 x 40, stride 2, 2x4 kernel, row dilation 3", N = 1, C = 2, inp = { 1, 9, 40 }, k = { 1, 2, 4 },
      st = { 1, 2, 2 }, dl = { 1, 3, 1 }, pad = { 1, 2, 3, 3 }, bias = true },
    { name = "2-D flat run: 9 x 12, 3x5 kernel, row dilation 2, uneven pads", N = 2, C = 3, inp = { 1, 9, 12 },
      k = { 1, 3, 5 }, st = { 1, 1, 1 }, dl = { 1, 2, 1 }, pad = { 1, 3, 3, 1 }, bias = true },
    { name = "2-D, kernel row 17 wide (the scratch path)", N = 1, C = 2, inp = { 1, 4, 40 }, k = { 1, 3, 17 },
      st = { 1, 1, 1 }, dl = { 1, 1, 1 }, pad = { 1, 1, 8, 8 }, bias = true },
  }) do
    it(case.name, function()
      local S = #case.pad // 2
      local first = 4 - S
      local kn = case.k[1] * case.k[2] * case.k[3]
      local Wt, bias = values(case.C * kn, 31), case.bias and values(case.C, 32) or nil
      local xshape, wshape, st, dl = { case.N, case.C }, { case.C, 1 }, {}, {}
      for d = first, 3 do
        xshape[#xshape + 1], wshape[#wshape + 1] = case.inp[d], case.k[d]
        st[#st + 1], dl[#dl + 1] = case.st[d], case.dl[d]
      end
      local path = build("iOS17", function(f)
        local x = f:input("x", "fp32", xshape)
        local args = { x = x, weight = f:const("w", core.array.new(Wt), { shape = wshape }), strides = st, dilations = dl,
          groups = case.C, pad_type = "custom", pad = case.pad }
        if bias then args.bias = f:const("b", core.array.new(bias), { shape = { case.C } }) end
        f:output("y", f:op("conv", args))
      end)
      local nx = case.N * case.C * case.inp[1] * case.inp[2] * case.inp[3]
      local X = values(nx, 33)
      local pb, out = { 0, 0, 0 }, { 1, 1, 1 }
      for d = first, 3 do
        local i = d - first
        pb[d] = case.pad[2 * i + 1]
        local span = case.inp[d] + case.pad[2 * i + 1] + case.pad[2 * i + 2] - ((case.k[d] - 1) * case.dl[d] + 1)
        out[d] = span // case.st[d] + 1
      end
      local outs = run(path, { x = tensor(X, xshape) })
      local want = naive_dw(X, Wt, bias, case.N, case.C, case.inp, case.k, case.st, case.dl, pb, out)
      close(outs.y, want, 1e-5)
    end)
  end
end)

describe("GEMM edges", function()
  -- grouped conv through GEMM (1x1 without im2col, 3x3 with), bias added inside the GEMM;
  -- 37 x 41 = 1517 output positions: more than one run of im2col columns (runs end mid-row);
  -- strides 2 with dilation and uneven pads: the im2col's border columns
  -- { k, N, Cin, Cout, G, H, W, stride, dilation, pads (top, bottom, left, right) }
  for _, case in ipairs({ { 1, 2, 4, 14, 2, 5, 9, 1, 1, { 0, 0, 0, 0 } }, { 3, 2, 4, 14, 2, 5, 9, 1, 1, { 1, 1, 1, 1 } },
    { 3, 1, 3, 5, 1, 37, 41, 1, 1, { 1, 1, 1, 1 } }, { 3, 1, 3, 4, 1, 40, 53, 2, 2, { 2, 0, 3, 1 } } }) do
    local k, N, Cin, Cout, G, H, Wd, st, dl, pads = table.unpack(case)
    it((G > 1 and "grouped " or "") .. k .. "x" .. k .. " conv with bias, " .. H .. " x " .. Wd .. ", stride " .. st
      .. ", dilation " .. dl, function()
      local cg, og = Cin // G, Cout // G
      local Wt, bias = values(Cout * cg * k * k, 61), values(Cout, 62)
      local path = build("iOS17", function(f)
        f:output("y", f:op("conv", { x = f:input("x", "fp32", { N, Cin, H, Wd }), groups = G, pad_type = "custom",
          pad = pads, strides = { st, st }, dilations = { dl, dl },
          weight = f:const("w", core.array.new(Wt), { shape = { Cout, cg, k, k } }),
          bias = f:const("b", core.array.new(bias), { shape = { Cout } }) }))
      end)
      local X = values(N * Cin * H * Wd, 63)
      local outs = run(path, { x = tensor(X, { N, Cin, H, Wd }) })
      local OH = (H + pads[1] + pads[2] - (k - 1) * dl - 1) // st + 1
      local OW = (Wd + pads[3] + pads[4] - (k - 1) * dl - 1) // st + 1
      local want = {}
      for n = 0, N - 1 do
        for oc = 0, Cout - 1 do
          for oh = 0, OH - 1 do
            for ow = 0, OW - 1 do
              local acc = bias[oc + 1]
              for ic = 0, cg - 1 do
                for kh = 0, k - 1 do
                  for kw = 0, k - 1 do
                    local ih, iw, c = oh * st - pads[1] + kh * dl, ow * st - pads[3] + kw * dl, (oc // og) * cg + ic
                    if ih >= 0 and ih < H and iw >= 0 and iw < Wd then
                      acc = acc + X[((n * Cin + c) * H + ih) * Wd + iw + 1] * Wt[((oc * cg + ic) * k + kh) * k + kw + 1]
                    end
                  end
                end
              end
              want[#want + 1] = acc
            end
          end
        end
      end
      close(outs.y, want, 1e-5)
    end)
  end

  it("matmul with M, N off the tile and K above one block", function()
    local M, K, N = 13, 300, 37
    local path = build("iOS17", function(f)
      f:output("y", f:op("matmul", { x = f:input("a", "fp32", { M, K }), y = f:input("b", "fp32", { K, N }) }))
    end)
    local A, Bv = values(M * K, 41), values(K * N, 42)
    local outs = run(path, { a = tensor(A, { M, K }), b = tensor(Bv, { K, N }) })
    close(outs.y, R.matmul(A, Bv, M, N, K), 1e-4)
  end)

  it("linear adds the bias once per output", function()
    local M, K, N = 7, 33, 19
    local Wt, bias = values(N * K, 43), values(N, 44)
    local path = build("iOS17", function(f)
      f:output("y", f:op("linear", { x = f:input("x", "fp32", { M, K }), weight = f:const("w", core.array.new(Wt), { shape = { N, K } }),
        bias = f:const("b", core.array.new(bias), { shape = { N } }) }))
    end)
    local X = values(M * K, 45)
    local outs = run(path, { x = tensor(X, { M, K }) })
    close(outs.y, R.linear(X, Wt, bias, M, N, K), 1e-5)
  end)
end)

-- fp16 round-to-nearest-even by scaling: the step is 2^(e-10) for |x| in [2^e, 2^(e+1)), e >= -14,
-- and 2^-24 below 2^-14; results above 65504 are inf
local function round16(v)
  if v ~= v or v == math.huge or v == -math.huge then return v end
  local a = math.abs(v)
  if a == 0 then return v end
  local e = -14
  while a >= 2.0 ^ (e + 1) do e = e + 1 end
  local step = 2.0 ^ (e - 10)
  local r = a / step
  local fl = math.floor(r)
  local d = r - fl
  if d > 0.5 or (d == 0.5 and fl % 2 == 1) then fl = fl + 1 end
  local res = fl * step
  if res > 65504 then res = math.huge end
  return v < 0 and -res or res
end

describe("fp16 rounding and value checks on long tensors", function()
  local n = 67
  local path = build("iOS17", function(f)
    f:output("y", f:op("mul", { x = f:input("x", "fp32", { n }), y = 1.0 }, { name = "same" }))
  end)

  it("rounds every element as a naive round-to-nearest-even does", function()
    local X, want = {}, {}
    local specials = { 1 + 2 ^ -11, 1 + 3 * 2 ^ -11, 65504, 65519.99, 65520, -70000, 2 ^ -24, 2 ^ -25, 3 * 2 ^ -26,
      2 ^ -14 - 2 ^ -25, 6.1e-5, -0.0, 0.333333 }
    for i = 1, n do
      local v = specials[i] or (values(1, i)[1] * 2.0 ^ ((i % 40) - 24))
      X[i] = f32(v)
      want[i] = round16(X[i])
    end
    local outs = run(path, { x = tensor(X, { n }) }, { precision = "fp16" })
    local y = outs.y:array()
    for i = 1, n do
      if y[i] ~= want[i] then error(string.format("element %d (%.9g): got %.9g, want %.9g", i, X[i], y[i], want[i])) end
    end
  end)

  it("finds a NaN or a value above 65504 in any lane", function()
    for _, at in ipairs({ 1, 6, 64, 67 }) do
      local X = values(n, 50 + at)
      X[at] = 70000
      local _, info = run(path, { x = tensor(X, { n }) }, { precision = "fp32" })
      assert.are.same({ op = "same", type = "mul" }, info.fp16_overflow)
      assert.is_nil(info.nonfinite)
      X[at] = 0 / 0
      _, info = run(path, { x = tensor(X, { n }) }, { precision = "fp32" })
      assert.are.same({ op = "same", type = "mul" }, info.nonfinite)
      assert.is_nil(info.fp16_overflow) -- NaN is not "beyond the fp16 range"
    end
  end)
end)

describe("reductions over trailing axes (the row path)", function()
  -- [2, 3, 5, 7] fp32 reduced over {2, 3} (a global pool) and {3}; one row holds a NaN
  local shape, X = { 2, 3, 5, 7 }, values(2 * 3 * 5 * 7, 41)
  X[38] = 0 / 0
  local function naive(kind, inner)
    local out = {}
    for r = 0, #X // inner - 1 do
      local a = (kind == "reduce_max" and -math.huge) or (kind == "reduce_min" and math.huge) or 0
      for i = 1, inner do
        local v = X[r * inner + i]
        if kind == "reduce_max" then if v ~= v or v > a then a = v end
        elseif kind == "reduce_min" then if v ~= v or v < a then a = v end
        elseif kind == "reduce_sum_square" or kind == "reduce_l2_norm" then a = a + v * v
        else a = a + v end
        if a ~= a then break end
      end
      if kind == "reduce_mean" then a = a / inner elseif kind == "reduce_l2_norm" then a = math.sqrt(a) end
      out[#out + 1] = a
    end
    return out
  end
  for _, kind in ipairs({ "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_sum_square", "reduce_l2_norm" }) do
    for _, axes in ipairs({ { 2, 3 }, { -1 } }) do
      it(kind .. " over " .. table.concat(axes, ","), function()
        local path = build("iOS17", function(f)
          f:output("y", f:op(kind, { x = f:input("x", "fp32", shape), axes = axes, keep_dims = #axes == 1 }))
        end)
        local got_all = run(path, { x = tensor(X, shape) }).y:array()
        local want = naive(kind, #axes == 2 and 35 or 7)
        assert.are.equal(#want, #got_all)
        for i, w in ipairs(want) do
          local got = got_all[i]
          if w ~= w then assert.is_true(got ~= got, "element " .. i .. " should be NaN")
          else assert.is_true(math.abs(got - w) <= 1e-5 * math.max(1, math.abs(w)), ("element %d: got %.9g, want %.9g"):format(i, got, w)) end
        end
      end)
    end
  end
end)
