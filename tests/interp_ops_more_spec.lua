-- interp_ops_more_spec.lua — the interpreter's quantize/dequantize, random, layout (space/batch,
-- sliding_windows, reshape_like, reverse_sequence), detection (crop_resize, NMS, resample,
-- affine, resize) and general einsum kernels. Expected values come from naive loops written here
-- or hand computation, never from the interpreter. Models are built with mlsh.builder.
local B = require "mlsh.builder"
local IH = require "interp_helpers"

local values, tensor, build, run, close = IH.values, IH.tensor, IH.build, IH.run, IH.close

-- Round half to even (numpy's around), for the quantize reference.
local function round_even(v)
  local f = math.floor(v)
  local d = v - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

local function run_err(path, inputs)
  local ok, err = pcall(run, path, inputs)
  assert.is_false(ok)
  return tostring(err)
end

describe("quantize / dequantize (iOS17)", function()
  it("quantize rounds half to even, adds the zero point and clips, per tensor and per axis", function()
    local X = { -3, -0.25, 0.25, 0.75, 1.25, 100, -100, 2.5 }
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 2, 4 })
      f:output("q", f:op("quantize", { input = x, scale = 0.5, zero_point = B.tensor("int8", 3), output_dtype = "int8" },
        { dtype = "int8", shape = { 2, 4 } }))
      local u = f:op("quantize", { input = x, scale = B.tensor("fp32", { 0.5, 2 }), zero_point = B.tensor("uint8", { 10, 0 }),
        axis = 0, output_dtype = "uint8" }, { dtype = "uint8", shape = { 2, 4 } })
      f:output("u", f:op("cast", { x = u, dtype = "int32" }))
    end)
    local outs = run(path, { x = tensor(X, { 2, 4 }) })
    local wq, wu = {}, {}
    for i, v in ipairs(X) do
      wq[i] = math.max(-128, math.min(127, round_even(v / 0.5) + 3))
      local row = (i - 1) // 4
      wu[i] = math.max(0, math.min(255, round_even(v / (row == 0 and 0.5 or 2)) + (row == 0 and 10 or 0)))
    end
    assert.are.equal("int8", outs.q:dtype())
    close(outs.q, wq, 1e-6)
    close(outs.u, wu, 0)
  end)

  it("dequantize is scale * (input - zero_point) in the scale's dtype, per axis", function()
    local Q = { -128, -1, 0, 5, 127, 3 }
    local path = build("iOS17", function(f)
      local x = f:input("x", "int8", { 2, 3 })
      f:output("y", f:op("dequantize", { input = x, scale = B.tensor("fp32", { 0.1, 0.2, 0.4 }), zero_point = B.tensor("int8", { 1, 0, -2 }),
        axis = 1 }, { dtype = "fp32", shape = { 2, 3 } }))
      f:output("z", f:op("dequantize", { input = x, scale = B.tensor("fp16", 0.5) }, { dtype = "fp16", shape = { 2, 3 } }))
    end)
    local outs = run(path, { x = tensor(Q, { 2, 3 }, "int8") }, { precision = "model" })
    local S, Z, wy, wz = { 0.1, 0.2, 0.4 }, { 1, 0, -2 }, {}, {}
    for i, q in ipairs(Q) do
      local col = (i - 1) % 3 + 1
      wy[i] = S[col] * (q - Z[col])
      wz[i] = 0.5 * q
    end
    close(outs.y, wy, 1e-6)
    close(outs.z, wz, 0)
  end)

  it("refuses a vector scale that does not match the axis", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "int8", { 2, 3 })
      f:output("y", f:op("dequantize", { input = x, scale = B.tensor("fp32", { 0.1, 0.2 }), axis = 1 }, { dtype = "fp32", shape = { 2, 3 }, check = false }))
    end)
    assert.matches("scale has 2 values, input dimension 1 has 3", run_err(path, { x = tensor({ 1, 2, 3, 4, 5, 6 }, { 2, 3 }, "int8") }))
  end)
end)

describe("random ops", function()
  local function model(seed_a, seed_b)
    return build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1 })
      f:output("u", f:op("random_uniform", { shape = { 20000 }, low = -2.0, high = 3.0, seed = seed_a }, { dtype = "fp32", shape = { 20000 } }))
      f:output("n", f:op("random_normal", { shape = { 100, 200 }, mean = 1.0, stddev = 2.0, seed = seed_b }, { dtype = "fp32", shape = { 100, 200 } }))
      f:output("b", f:op("random_bernoulli", { shape = { 20000 }, prob = 0.25, seed = seed_a }, { dtype = "fp32", shape = { 20000 } }))
      local logits = f:const("logits", B.tensor("fp32", { 0, math.log(3), -100, 0, 0, 0 }, { 2, 3 }))
      f:output("c", f:op("random_categorical", { x = logits, size = 4000, seed = seed_b }, { dtype = "fp32", shape = { 2, 4000 } }))
      f:output("y", f:op("relu", { x = x }))
    end)
  end

  local function moments(t)
    local a, s, ss = t:array(), 0, 0
    for i = 1, #a do s = s + a[i]; ss = ss + a[i] * a[i] end
    local m = s / #a
    return m, math.sqrt(ss / #a - m * m), a
  end

  it("draw the declared shape from the right distributions, the same values for the same seed", function()
    local p1, p2 = model(7, 11), model(8, 12)
    local o1 = run(p1, { x = tensor({ 1 }, { 1 }) })
    local again = run(p1, { x = tensor({ 1 }, { 1 }) })
    local o2 = run(p2, { x = tensor({ 1 }, { 1 }) })
    local mu, su, ua = moments(o1.u)
    for i = 1, #ua do assert.is_true(ua[i] >= -2 and ua[i] < 3) end
    assert.is_true(math.abs(mu - 0.5) < 0.05 and math.abs(su - 5 / math.sqrt(12)) < 0.05, mu .. " " .. su)
    local mn, sn = moments(o1.n)
    assert.are.same({ 100, 200 }, o1.n:shape())
    assert.is_true(math.abs(mn - 1) < 0.05 and math.abs(sn - 2) < 0.05, mn .. " " .. sn)
    local mb, _, ba = moments(o1.b)
    for i = 1, #ba do assert.is_true(ba[i] == 0 or ba[i] == 1) end
    assert.is_true(math.abs(mb - 0.25) < 0.02, tostring(mb))
    -- categorical: row 1 has probabilities 1/4, 3/4, ~0; row 2 uniform over 3
    local ca, counts = o1.c:array(), { { 0, 0, 0 }, { 0, 0, 0 } }
    for i = 1, #ca do
      local row = (i - 1) // 4000 + 1
      counts[row][ca[i] + 1] = counts[row][ca[i] + 1] + 1
    end
    assert.is_true(math.abs(counts[1][1] / 4000 - 0.25) < 0.03 and counts[1][3] == 0, table.concat(counts[1], ","))
    for k = 1, 3 do assert.is_true(math.abs(counts[2][k] / 4000 - 1 / 3) < 0.03) end
    -- deterministic per seed, different across seeds
    close(again.u, o1.u:array(), 0)
    close(again.n, o1.n:array(), 0)
    assert.has_error(function() close(o2.u, o1.u:array(), 0) end)
  end)

  it("categorical reads probabilities in probs mode; fp16 outputs hold fp16 values", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1 })
      local p = f:const("p", B.tensor("fp32", { 0.5, 0.5, 0 }, { 1, 3 }))
      f:output("c", f:op("random_categorical", { x = p, mode = "probs", size = 2000, seed = 3 }, { dtype = "fp32", shape = { 1, 2000 } }))
      local n = f:op("random_normal", { shape = { 64 }, mean = B.tensor("fp16", 0), stddev = B.tensor("fp16", 1), seed = 4 },
        { dtype = "fp16", shape = { 64 } })
      f:output("n", f:op("cast", { x = n, dtype = "fp32" }))
      f:output("y", f:op("relu", { x = x }))
    end)
    local outs = run(path, { x = tensor({ 1 }, { 1 }) }, { precision = "model" })
    local a = outs.c:array()
    local zeros, ones = 0, 0
    for i = 1, #a do
      assert.is_true(a[i] == 0 or a[i] == 1, "category 2 has probability 0")
      if a[i] == 0 then zeros = zeros + 1 else ones = ones + 1 end
    end
    assert.is_true(math.abs(zeros - ones) < 200, zeros .. " vs " .. ones)
    local n = outs.n:array()
    for i = 1, #n do
      local h = tensor({ n[i] }, { 1 }, "fp16"):array()[1] -- the nearest fp16 value
      assert.are.equal(h, n[i])
    end
  end)

  it("refuses a probability outside [0, 1]", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1 })
      f:output("b", f:op("random_bernoulli", { shape = { 4 }, prob = 1.5 }, { dtype = "fp32", shape = { 4 } }))
      f:output("y", f:op("relu", { x = x }))
    end)
    assert.matches("prob %(1.5%) is outside %[0, 1%]", run_err(path, { x = tensor({ 1 }, { 1 }) }))
  end)
end)

describe("layout ops", function()
  it("space_to_batch and batch_to_space follow TF's block order and invert each other", function()
    local N, C, H, W, BH, BW = 1, 2, 2, 4, 2, 2
    local pad = { 1, 1, 0, 0 }
    local X = values(N * C * H * W, 3)
    local PH, PW = H + pad[1] + pad[2], W + pad[3] + pad[4]
    local OH, OW = PH // BH, PW // BW
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { N, C, H, W })
      local s = f:op("space_to_batch", { x = x, block_shape = { BH, BW }, paddings = B.tensor("int32", pad, { 2, 2 }) },
        { dtype = "fp32", shape = { N * BH * BW, C, OH, OW } })
      f:output("s", s)
      f:output("b", f:op("batch_to_space", { x = s, block_shape = { BH, BW }, crops = B.tensor("int32", pad, { 2, 2 }) },
        { dtype = "fp32", shape = { N, C, H, W } }))
    end)
    local outs = run(path, { x = tensor(X, { N, C, H, W }) })
    local want = {}
    for bh = 0, BH - 1 do
      for bw = 0, BW - 1 do
        for n = 0, N - 1 do
          for c = 0, C - 1 do
            for h = 0, OH - 1 do
              for w = 0, OW - 1 do
                local ih, iw = h * BH + bh - pad[1], w * BW + bw - pad[3]
                local v = 0
                if ih >= 0 and ih < H and iw >= 0 and iw < W then v = X[((n * C + c) * H + ih) * W + iw + 1] end
                want[#want + 1] = v
              end
            end
          end
        end
      end
    end
    close(outs.s, want, 1e-6)
    close(outs.b, X, 1e-6)
  end)

  it("sliding_windows, reshape_like and reverse_sequence", function()
    local X = values(2 * 5 * 2, 4)
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 2, 5, 2 })
      f:output("w", f:op("sliding_windows", { x = x, axis = 1, size = 2, stride = 2 }, { dtype = "fp32", shape = { 2, 2, 2, 2 } }))
      local r1 = f:const("r1", B.tensor("fp32", { 0, 0, 0, 0 }, { 4, 1 }))
      local r2 = f:const("r2", B.tensor("fp32", { 0, 0, 0, 0, 0 }, { 1, 5 }))
      f:output("r", f:op("reshape_like", { x = x, ref_tensors = { r1, r2 }, begins = { 0, 1 }, ends = { 1, 0 }, end_masks = { false, true } },
        { dtype = "fp32", shape = { 4, 5 } }))
      f:output("q", f:op("reverse_sequence", { x = x, lengths = { 3, 5 }, seq_axis = 1, batch_axis = 0 }, { dtype = "fp32", shape = { 2, 5, 2 } }))
    end)
    local outs = run(path, { x = tensor(X, { 2, 5, 2 }) })
    local ww = {}
    for b = 0, 1 do
      for win = 0, 1 do
        for s = 0, 1 do
          for k = 0, 1 do ww[#ww + 1] = X[(b * 5 + win * 2 + s) * 2 + k + 1] end
        end
      end
    end
    close(outs.w, ww, 1e-6)
    assert.are.same({ 4, 5 }, outs.r:shape())
    close(outs.r, X, 1e-6)
    local L, wq = { 3, 5 }, {}
    for b = 0, 1 do
      for s = 0, 4 do
        local src = s < L[b + 1] and L[b + 1] - 1 - s or s
        for k = 0, 1 do wq[#wq + 1] = X[(b * 5 + src) * 2 + k + 1] end
      end
    end
    close(outs.q, wq, 1e-6)
  end)

  it("refuses a padded size the block does not divide", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 1, 3, 4 })
      f:output("s", f:op("space_to_batch", { x = x, block_shape = { 2, 2 }, paddings = B.tensor("int32", { 0, 0, 0, 0 }, { 2, 2 }) },
        { dtype = "fp32", shape = { 4, 1, 1, 2 } }))
    end)
    assert.matches("padded spatial size 3x4 is not divisible", run_err(path, { x = tensor(values(12), { 1, 1, 3, 4 }) }))
  end)
end)

-- A naive einsum over explicit letter equations (no ellipsis): every assignment of every label,
-- broadcasting dimensions of size 1.
local function ref_einsum(eq, ops)
  local lhs, rhs = eq:match("^(.-)%->(.*)$")
  local terms = {}
  for term in (lhs .. ","):gmatch("([^,]*),") do terms[#terms + 1] = term end
  local size, labels = {}, {}
  for k, term in ipairs(terms) do
    for d = 1, #term do
      local l = term:sub(d, d)
      if not size[l] then labels[#labels + 1] = l; size[l] = 1 end
      size[l] = math.max(size[l], ops[k].shape[d])
    end
  end
  local oshape, on = {}, 1
  for d = 1, #rhs do oshape[d] = size[rhs:sub(d, d)]; on = on * oshape[d] end
  local out = {}
  for i = 1, on do out[i] = 0 end
  local val = {}
  local function offset(term, shape)
    local off = 0
    for d = 1, #term do
      local v = shape[d] == 1 and 0 or val[term:sub(d, d)]
      off = off * shape[d] + v
    end
    return off + 1
  end
  local function rec(i)
    if i > #labels then
      local p = 1
      for k, term in ipairs(terms) do p = p * ops[k].data[offset(term, ops[k].shape)] end
      local o = offset(rhs, oshape)
      out[o] = out[o] + p
      return
    end
    for v = 0, size[labels[i]] - 1 do val[labels[i]] = v; rec(i + 1) end
  end
  rec(1)
  return out, oshape
end

describe("einsum, general", function()
  local function operand(shape, seed)
    local n = 1
    for _, d in ipairs(shape) do n = n * d end
    return { data = values(n, seed), shape = shape }
  end
  local cases = {
    { "bij,bjk->bik", { { 2, 3, 4 }, { 2, 4, 5 } } },
    { "bchq,bkhc->bkhq", { { 2, 3, 2, 4 }, { 2, 5, 2, 3 } } },   -- ANE attention scores
    { "bkhq,bchk->bchq", { { 1, 3, 2, 4 }, { 1, 5, 2, 3 } } },
    { "ij->ji", { { 3, 4 } } },
    { "ii->i", { { 3, 3 } } },
    { "i,j->ij", { { 3 }, { 4 } } },
    { "ij,ij->", { { 3, 4 }, { 3, 4 } } },
    { "ij,jk,kl->il", { { 2, 3 }, { 3, 4 }, { 4, 2 } } },
    { "bij,bjk->bik", { { 1, 3, 4 }, { 2, 4, 5 } } },              -- batch broadcast: direct sum
    { "Ab,bC->CA", { { 2, 3 }, { 3, 4 } } },
    { "abc->b", { { 2, 3, 4 } } },
  }
  it("matches a naive loop on equations converters emit and beyond", function()
    for ci, case in ipairs(cases) do
      local eq, shapes = case[1], case[2]
      local ops = {}
      for k, s in ipairs(shapes) do ops[k] = operand(s, ci * 10 + k) end
      local want, oshape = ref_einsum(eq, ops)
      local path = build("iOS17", function(f)
        local vs = {}
        for k, s in ipairs(shapes) do vs[k] = f:input("x" .. k, "fp32", s) end
        f:output("y", f:op("einsum", { values = vs, equation = eq }, { dtype = "fp32", shape = oshape }))
      end)
      local inputs = {}
      for k, s in ipairs(shapes) do inputs["x" .. k] = tensor(ops[k].data, s) end
      local ok, err = pcall(function() close(run(path, inputs).y, want, 1e-5) end)
      assert(ok, eq .. ": " .. tostring(err))
    end
  end)

  it("reads ellipses and implicit outputs as numpy does", function()
    local a, b = operand({ 2, 3, 4 }, 5), operand({ 4, 5 }, 6)
    local want = ref_einsum("bij,jk->bik", { a, b })
    local want_t = ref_einsum("bij->bji", { a })
    local path = build("iOS17", function(f)
      local x, y = f:input("a", "fp32", a.shape), f:input("b", "fp32", b.shape)
      f:output("e", f:op("einsum", { values = { x, y }, equation = "...ij,...jk->...ik" }, { dtype = "fp32", shape = { 2, 3, 5 } }))
      f:output("i", f:op("einsum", { values = { x }, equation = "...ij" }, { dtype = "fp32", shape = { 2, 3, 4 } }))
      f:output("t", f:op("einsum", { values = { x }, equation = "bij" }, { dtype = "fp32", shape = { 2, 3, 4 } }))
      f:output("s", f:op("einsum", { values = { x }, equation = "bji" }, { dtype = "fp32", shape = { 2, 4, 3 } }))
    end)
    local outs = run(path, { a = tensor(a.data, a.shape), b = tensor(b.data, b.shape) })
    close(outs.e, want, 1e-5)
    close(outs.i, a.data, 1e-6)
    close(outs.t, a.data, 1e-6)
    close(outs.s, want_t, 1e-6) -- implicit "bji" -> "bij" order of output labels: b, i, j read as (b, j, i) of x
  end)

  it("refuses an output subscript no operand has, and a rank the equation does not give", function()
    local p1 = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 3, 3 })
      f:output("y", f:op("einsum", { values = { x, x }, equation = "ij,jk->il" }, { dtype = "fp32", shape = { 3, 3 }, check = false }))
    end)
    assert.matches("output subscript is not an input subscript", run_err(p1, { x = tensor(values(9), { 3, 3 }) }))
    local p2 = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 2, 3 })
      f:output("y", f:op("einsum", { values = { x }, equation = "ijk->k" }, { dtype = "fp32", shape = { 3 }, check = false }))
    end)
    assert.matches("operand 0 has rank 2, the equation 3", run_err(p2, { x = tensor(values(6), { 2, 3 }) }))
  end)
end)
