-- interp_nn_spec.lua — NeuralNetwork, tree ensemble and GLM models on the interpreter. Models are
-- built with mlsh.builder (trees and GLMs through the generic Message binding and wire-encoded
-- fields); every expected value comes from a naive loop in this file, never from the interpreter.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local B = require "mlsh.builder"
local wire = require "mlsh.builder.wire"
local F = require "fixtures"
local IH = require "interp_helpers"

local P = core.proto
local dir = F.tmpdir()
local values, tensor, close = IH.values, IH.tensor, IH.close
local n = 0
local function tanh(v) local e = math.exp(2 * v) return (e - 1) / (e + 1) end
local function path(ext) n = n + 1 return string.format("%s/nn%d.%s", dir, n, ext or "mlmodel") end

local function run(p, inputs, opts)
  local m = mlsh.load(p)
  local outs, info = m:run(inputs, opts or { precision = "fp32" })
  m:close()
  return outs, info
end

-- naive references --------------------------------------------------------------------------------
local function conv_ref(x, C, H, W, w, b, O, k, pad)
  local Ho, Wo, y = H + 2 * pad - k + 1, W + 2 * pad - k + 1, {}
  for o = 0, O - 1 do
    for i = 0, Ho - 1 do
      for j = 0, Wo - 1 do
        local s = b[o + 1]
        for c = 0, C - 1 do
          for u = 0, k - 1 do
            for v = 0, k - 1 do
              local ii, jj = i + u - pad, j + v - pad
              if ii >= 0 and ii < H and jj >= 0 and jj < W then
                s = s + w[((o * C + c) * k + u) * k + v + 1] * x[(c * H + ii) * W + jj + 1]
              end
            end
          end
        end
        y[(o * Ho + i) * Wo + j + 1] = s
      end
    end
  end
  return y, Ho, Wo
end

describe("NeuralNetwork models", function()
  it("conv (same) -> batchnorm -> ReLU -> max pool -> flatten -> innerProduct -> softmax", function()
    local C, H, W, O, K = 2, 6, 6, 3, 4
    local w, b = values(O * C * 9, 3), values(O, 4)
    local gamma, beta, mean, var = { 1.5, 0.5, 2 }, { 0.1, -0.2, 0.3 }, { 0.05, -0.1, 0.2 }, { 1.2, 0.8, 2.5 }
    local fw, fb = values(K * O * 9, 5), values(K, 6)
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, C, H, W })
    local y = nn:convolution(x, { out = O, k = 3, padding = "same", weights = w, bias_values = b })
    y = nn:batchnorm(y, { gamma = gamma, beta = beta, mean = mean, variance = var, epsilon = 1e-3 })
    y = nn:pooling(nn:activation(y, "ReLU"), { type = "MAX", k = 2, stride = 2 })
    y = nn:inner_product(nn:flatten(y), { out = K, weights = fw, bias_values = fb })
    nn:output("probs", nn:softmax(y))
    local p = path()
    nn:save(p)
    local xv = values(C * H * W, 7)
    -- reference
    local cv = conv_ref(xv, C, H, W, w, b, O, 3, 1)
    for o = 0, O - 1 do
      for i = 1, H * W do
        local v = (cv[o * H * W + i] - mean[o + 1]) / math.sqrt(var[o + 1] + 1e-3) * gamma[o + 1] + beta[o + 1]
        cv[o * H * W + i] = math.max(v, 0)
      end
    end
    local pooled = {}
    for o = 0, O - 1 do
      for i = 0, 2 do
        for j = 0, 2 do
          local m = -math.huge
          for u = 0, 1 do for v = 0, 1 do m = math.max(m, cv[(o * H + 2 * i + u) * W + 2 * j + v + 1]) end end
          pooled[(o * 3 + i) * 3 + j + 1] = m
        end
      end
    end
    local logits, mx = {}, -math.huge
    for k = 0, K - 1 do
      local s = fb[k + 1]
      for i = 1, #pooled do s = s + fw[k * #pooled + i] * pooled[i] end
      logits[k + 1] = s
      mx = math.max(mx, s)
    end
    local sum, want = 0, {}
    for k = 1, K do want[k] = math.exp(logits[k] - mx) sum = sum + want[k] end
    for k = 1, K do want[k] = want[k] / sum end
    local outs = run(p, { x = tensor(xv, { 1, C, H, W }) })
    assert.are.same({ 1, K, 1, 1 }, outs.probs:shape())
    close(outs.probs, want, 1e-5)
  end)

  local acts = {
    { "sigmoid", function(v) return 1 / (1 + math.exp(-v)) end },
    { "tanh", tanh },
    { "softsign", function(v) return v / (1 + math.abs(v)) end },
    { "softplus", function(v) return math.log(1 + math.exp(v)) end },
    { { leakyReLU = 0.3 }, function(v) return v >= 0 and v or 0.3 * v end },
    { { ELU = 0.7 }, function(v) return v >= 0 and v or 0.7 * (math.exp(v) - 1) end },
    { { thresholdedReLU = 0.25 }, function(v) return v > 0.25 and v or 0 end },
  }
  for _, a in ipairs(acts) do
    local label = type(a[1]) == "table" and next(a[1]) or a[1]
    it("activation " .. label, function()
      local nn = B.neural_network {}
      local x = nn:input("x", "fp32", { 1, 2, 3, 3 })
      nn:output("y", nn:activation(x, a[1]))
      local p = path()
      nn:save(p)
      local xv = values(18, 11)
      local want = {}
      for i, v in ipairs(xv) do want[i] = a[2](v * 3) end
      for i = 1, #xv do xv[i] = xv[i] * 3 end
      close(run(p, { x = tensor(xv, { 1, 2, 3, 3 }) }).y, want, 1e-5)
    end)
  end

  it("add, multiply, concat over C, embedding", function()
    local nn = B.neural_network {}
    local a = nn:input("a", "fp32", { 1, 2, 2, 2 })
    local b = nn:input("b", "fp32", { 1, 2, 2, 2 })
    nn:output("s", nn:add(a, b))
    nn:output("m", nn:multiply(a, b))
    nn:output("c", nn:concat({ a, b }))
    local p = path()
    nn:save(p)
    local av, bv = values(8, 21), values(8, 22)
    local outs = run(p, { a = tensor(av, { 1, 2, 2, 2 }), b = tensor(bv, { 1, 2, 2, 2 }) })
    local s, m, c = {}, {}, {}
    for i = 1, 8 do s[i], m[i], c[i], c[8 + i] = av[i] + bv[i], av[i] * bv[i], av[i], bv[i] end
    close(outs.s, s, 1e-6)
    close(outs.m, m, 1e-6)
    assert.are.same({ 1, 4, 2, 2 }, outs.c:shape())
    close(outs.c, c, 1e-6)
  end)

  it("embedding: rows of the [D, V] table, rank-5 legacy mapping", function()
    local nn = B.neural_network { exact_rank = false }
    local x = nn:input("ids", "fp32", { 1, 1, 1 })
    local wt = values(3 * 5, 31)
    nn:output("e", nn:embedding(x, { vocab = 5, dim = 3, weights = wt }))
    local p = path()
    nn:save(p)
    local outs = run(p, { ids = tensor({ 4 }, { 1, 1, 1 }) })
    close(outs.e, { wt[0 * 5 + 5], wt[1 * 5 + 5], wt[2 * 5 + 5] }, 1e-6)
  end)

  it("an unsupported layer fails before running, naming it (mlsh run exit 1)", function()
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, 2, 2, 2 })
    nn:output("y", nn:custom(x, { class = "MySwish", name = "sw" }))
    local p = path()
    nn:save(p)
    local _, err, code = F.run("run " .. F.q(p) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches(p:gsub("%p", "%%%0") .. ": layer sw %(type custom%) is not supported by the interpreter", err)
  end)

  it("--list-ops lists the NeuralNetwork layers in their own section", function()
    local out, _, code = F.run("run --list-ops")
    assert.are.equal(0, code)
    assert.matches("\nconv\n", out)
    assert.matches("NeuralNetwork layers:\n", out)
    assert.matches("\ninnerProduct\n", out)
    assert.matches("treeEnsembleClassifier", out)
  end)
end)

-- ---- tree ensembles and GLMs (fields mlsh's schema subset leaves undeclared go through wire) ----
local function dbl(field, x) return string.char((field << 3) | 1) .. string.pack("<d", x) end

local function describe_inputs(m, names)
  local d = m:mutable("description")
  for _, nm in ipairs(names) do
    local f = d:add("input")
    f.name = nm
    f:mutable("type"):mutable("doubleType")
  end
  return d
end

-- tree 0: x0 <= 0.5 ? 1.0 : (x1 < 2 ? 2.0 : 3.0)   tree 1: leaf 10 (both on dimension 0)
local function tree_params(dims, base)
  local spec = {
    { 0, 0, 0, 0, 0.5, 1, 2 }, { 0, 1, 6, 0, 0, 0, 0, 1.0 }, { 0, 2, 1, 1, 2.0, 3, 4 },
    { 0, 3, 6, 0, 0, 0, 0, 2.0 }, { 0, 4, 6, 0, 0, 0, 0, 3.0 }, { 1, 0, 6, 0, 0, 0, 0, 10.0 },
  }
  local parts = {}
  for _, s in ipairs(spec) do
    local extra = wire.uint(3, s[3]) .. wire.uint(10, s[4]) .. (s[5] ~= 0 and dbl(11, s[5]) or "") .. wire.uint(12, s[6]) .. wire.uint(13, s[7])
    if s[3] == 6 then extra = extra .. wire.message(20, wire.uint(1, 0) .. dbl(2, s[8])) end
    parts[#parts + 1] = wire.message(1, wire.uint(1, s[1]) .. wire.uint(2, s[2]) .. extra)
  end
  parts[#parts + 1] = wire.uint(2, dims) .. dbl(3, base)
  return wire.merge("CoreML.Specification.TreeEnsembleParameters", nil, table.concat(parts))
end

describe("tree ensembles and GLMs", function()
  it("tree ensemble regressor: branch rules, base value, leaves summed", function()
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = 1
    local d = describe_inputs(m, { "x0", "x1" })
    local o = d:add("output")
    o.name = "y"
    o:mutable("type"):mutable("doubleType")
    d.predictedFeatureName = "y"
    m:mutable("treeEnsembleRegressor").treeEnsemble = tree_params(1, 0.5)
    local p = path()
    assert(core.fs.write_atomic(p, m:encode()))
    local function ref(x0, x1) return 0.5 + 10 + (x0 <= 0.5 and 1 or (x1 < 2 and 2 or 3)) end
    for _, xs in ipairs({ { 0.5, 0 }, { 0.7, 1.5 }, { 0.7, 2 } }) do
      local outs = run(p, { x0 = tensor({ xs[1] }, { 1 }, "fp64"), x1 = tensor({ xs[2] }, { 1 }, "fp64") })
      close(outs.y, { ref(xs[1], xs[2]) }, 1e-6)
    end
  end)

  it("GLM classifier (one row, logit): [1 - p, p] and the label", function()
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = 1
    local d = describe_inputs(m, { "a", "b" })
    for _, nm in ipairs({ "label", "probs" }) do d:add("output").name = nm end
    d.predictedFeatureName, d.predictedProbabilitiesName = "label", "probs"
    local g = m:mutable("glmClassifier")
    g:add("weights").value = { 0.5, -2 }
    g.offset = { 0.25 }
    g:mutable("stringClassLabels").vector = { "no", "yes" }
    local p = path()
    assert(core.fs.write_atomic(p, m:encode()))
    local z = 0.5 * 1.0 - 2 * -0.5 + 0.25
    local pr = 1 / (1 + math.exp(-z))
    local outs = run(p, { a = tensor({ 1.0 }, { 1 }, "fp64"), b = tensor({ -0.5 }, { 1 }, "fp64") })
    close(outs.probs, { 1 - pr, pr }, 1e-6)
    assert.are.same({ "yes" }, outs.label:labels())
    local out, err, code = F.run("run " .. F.q(p) .. " --random 3 --json -o " .. F.q(dir .. "/glm_out"))
    assert.are.equal(0, code, err)
    assert.matches('"labels"', out)
    assert.is_truthy(io.open(dir .. "/glm_out/probs.npy", "rb"))
    assert.is_nil(io.open(dir .. "/glm_out/label.npy", "rb"))
  end)

  it("GLM regressor with a wire-encoded logit transform", function()
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = 1
    local d = describe_inputs(m, { "a" })
    d:add("output").name = "y"
    local g = P.new("CoreML.Specification.GLMRegressor")
    g:add("weights").value = { 3 }
    g.offset = { -1 }
    m.glmRegressor = wire.merge("CoreML.Specification.GLMRegressor", g, wire.enum(3, 1))
    local p = path()
    assert(core.fs.write_atomic(p, m:encode()))
    local outs = run(p, { a = tensor({ 0.5 }, { 1 }, "fp64") })
    close(outs.y, { 1 / (1 + math.exp(-(3 * 0.5 - 1))) }, 1e-6)
  end)
end)

-- ---- recurrent layers: weights read back from the saved spec, reference loops here ----------------
local function floats(wp) return wp.floatValue end
local function sig(v) return 1 / (1 + math.exp(-v)) end
local function mv(W, x, rows, cols, off)
  local y = {}
  for r = 1, rows do
    local s = 0
    for k = 1, cols do s = s + W[(r - 1) * cols + k] * x[(off or 0) + k] end
    y[r] = s
  end
  return y
end

describe("recurrent layers", function()
  it("uniDirectionalLSTM with sequence output", function()
    local S, C, H = 3, 2, 3
    local nn = B.neural_network { exact_rank = false }
    local x = nn:input("x", "fp32", { C })
    local y, h, c = nn:lstm(nn:reshape(x, { 1, C, 1, 1 }), { hidden = H, sequence_output = true, ["in"] = C, outputs = { "y", "h", "c" } })
    local _ = c
    nn:output("yo", y)
    nn:output("ho", h)
    local p = path()
    nn:save(p)
    local m = mlsh.load(p)
    local l = m:_spec().neuralNetwork.layers[2].uniDirectionalLSTM.weightParams
    local W, R = {}, {}
    for _, g in ipairs({ "inputGate", "forgetGate", "blockInput", "outputGate" }) do
      W[#W + 1], R[#R + 1] = floats(l[g .. "WeightMatrix"]), floats(l[g .. "RecursionMatrix"])
    end
    m:close()
    -- one step (the input reshaped to Seq 1): y = h
    local xv = values(C, 41)
    local hv, cv = { 0, 0, 0 }, { 0, 0, 0 }
    local gi, gf, gz, go = mv(W[1], xv, H, C), mv(W[2], xv, H, C), mv(W[3], xv, H, C), mv(W[4], xv, H, C)
    local ri, rf, rz, ro = mv(R[1], hv, H, H), mv(R[2], hv, H, H), mv(R[3], hv, H, H), mv(R[4], hv, H, H)
    local want = {}
    for j = 1, H do
      local i_, f_, z_ = sig(gi[j] + ri[j]), sig(gf[j] + rf[j]), tanh(gz[j] + rz[j])
      cv[j] = cv[j] * f_ + i_ * z_
      want[j] = sig(go[j] + ro[j]) * tanh(cv[j])
    end
    local outs = run(p, { x = tensor(xv, { C }) })
    close(outs.yo, want, 1e-5)
    close(outs.ho, want, 1e-5)
    local _ = S
  end)

  it("gru over a sequence of 3 (exact-rank [Seq, Batch, C, 1, 1] input)", function()
    local S, C, H = 3, 2, 2
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { S, 1, C, 1, 1 })
    local y = nn:gru(x, { hidden = H, sequence_output = true, ["in"] = C, outputs = { "y", "h" } })
    nn:output("yo", y)
    local p = path()
    nn:save(p)
    local m = mlsh.load(p)
    local g = m:_spec().neuralNetwork.layers[1].gru
    local Wz, Wr, Wo = floats(g.updateGateWeightMatrix), floats(g.resetGateWeightMatrix), floats(g.outputGateWeightMatrix)
    local Rz, Rr, Ro = floats(g.updateGateRecursionMatrix), floats(g.resetGateRecursionMatrix), floats(g.outputGateRecursionMatrix)
    m:close()
    local xv = values(S * C, 43)
    local h, want = { 0, 0 }, {}
    for t = 0, S - 1 do
      local z, r = mv(Wz, xv, H, C, t * C), mv(Wr, xv, H, C, t * C)
      local rz, rr = mv(Rz, h, H, H), mv(Rr, h, H, H)
      local rh = {}
      for j = 1, H do z[j], r[j] = sig(z[j] + rz[j]), sig(r[j] + rr[j]) rh[j] = r[j] * h[j] end
      local o, ro = mv(Wo, xv, H, C, t * C), mv(Ro, rh, H, H)
      local nh = {}
      for j = 1, H do nh[j] = (1 - z[j]) * tanh(o[j] + ro[j]) + z[j] * h[j] end
      h = nh
      for j = 1, H do want[t * H + j] = h[j] end
    end
    local outs = run(p, { x = tensor(xv, { S, 1, C, 1, 1 }) })
    assert.are.same({ S, 1, H, 1, 1 }, outs.yo:shape())
    close(outs.yo, want, 1e-5)
  end)
end)

describe("bad NeuralNetwork / tree models", function()
  it("a layer reading an undefined blob, and a weight count mismatch, are one-line errors", function()
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, 4 })
    nn:output("y", nn:inner_product(x, { out = 2, name = "fc" }))
    local m = nn:build()
    m.neuralNetwork.layers[1].input = { "nope" }
    local p = path()
    assert(core.fs.write_atomic(p, m:encode()))
    local _, err, code = F.run("run " .. F.q(p) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("layer fc: input 'nope' is not produced by any earlier layer or model input\n$", err)
    m.neuralNetwork.layers[1].input = { "x" }
    m.neuralNetwork.layers[1].innerProduct.weights.floatValue = { 1, 2, 3 }
    assert(core.fs.write_atomic(p, m:encode()))
    _, err, code = F.run("run " .. F.q(p) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("layer fc: weights: 3 values, 8 expected\n$", err)
  end)

  it("a tree branch to a missing node is refused at load", function()
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = 1
    local d = describe_inputs(m, { "x0" })
    d:add("output").name = "y"
    local node = wire.message(1, wire.uint(1, 0) .. wire.uint(2, 0) .. wire.uint(3, 0) .. wire.uint(12, 7) .. wire.uint(13, 8))
    m:mutable("treeEnsembleRegressor").treeEnsemble = wire.merge("CoreML.Specification.TreeEnsembleParameters", nil, node)
    local p = path()
    assert(core.fs.write_atomic(p, m:encode()))
    local _, err, code = F.run("run " .. F.q(p) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("a branch points to a node that does not exist", err)
  end)

  it("mutated models never crash the interpreter: a run succeeds or raises a message", function()
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, 2, 4, 4 })
    local y = nn:convolution(x, { out = 3, k = 3, padding = "same" })
    y = nn:pooling(nn:activation(y, { leakyReLU = 0.1 }), { type = "AVERAGE", k = 2, stride = 2 })
    nn:output("y", nn:softmax(nn:inner_product(nn:flatten(y), { out = 4 })))
    local p = path()
    nn:save(p)
    local f = assert(io.open(p, "rb"))
    local bytes = f:read("a")
    f:close()
    local seed = 12345
    for k = 1, 40 do
      local b = { bytes:byte(1, -1) }
      for _ = 1, 3 do
        seed = (seed * 1103515245 + 12345) % 2147483648
        local pos = 1 + seed % #b
        b[pos] = (b[pos] + 1 + seed // 65536 % 255) % 256
      end
      local q = string.format("%s/mut%d.mlmodel", dir, k)
      local g = assert(io.open(q, "wb"))
      g:write(string.char(table.unpack(b)))
      g:close()
      local m = mlsh.try_load(q)
      if m then
        local ok, err = pcall(m.run, m, nil, { random = 1, precision = "fp32" })
        assert.is_true(ok or type(err) == "string")
        m:close()
      end
    end
  end)
end)
