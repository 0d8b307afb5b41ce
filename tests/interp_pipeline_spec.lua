-- interp_pipeline_spec.lua — pipeline, pipelineClassifier and pipelineRegressor models on the
-- interpreter: sklearn-style chains (featureVectorizer, scaler, imputer, normalizer, oneHotEncoder,
-- arrayFeatureExtractor, GLM, NeuralNetwork) built here, the feature-engineering messages
-- wire-encoded (mlsh's schema subset leaves them opaque). Every expected value comes from a naive
-- loop in this file, never from the interpreter; error paths included.
local core = require "mlsh.core"
local B = require "mlsh.builder"
local wire = require "mlsh.builder.wire"
local F = require "fixtures"
local IH = require "interp_helpers"

local P = core.proto
local dir = F.tmpdir()
local tensor, close, run = IH.tensor, IH.close, IH.run
local n = 0

local function dbl(field, x) return string.char((field << 3) | 1) .. string.pack("<d", x) end
local function dbls(field, xs)
  local t = {}
  for i, x in ipairs(xs) do t[i] = dbl(field, x) end
  return table.concat(t)
end
local function opaque(bytes) return wire.merge("CoreML.Specification.Opaque", nil, bytes) end

local function save(m)
  n = n + 1
  local p = string.format("%s/pipe%d.mlmodel", dir, n)
  assert(core.fs.write_atomic(p, m:encode()))
  return p
end

-- A feature description: "double", "int64", or {dtype, shape} for a multiarray.
local function feature(d, field, name, kind)
  local f = d:add(field)
  f.name = name
  local t = f:mutable("type")
  if kind == "double" then t:mutable("doubleType")
  elseif kind == "int64" then t:mutable("int64Type")
  else
    local a = t:mutable("multiArrayType")
    a.shape = kind[2]
    a.dataType = kind[1]
  end
end

-- A sub-model: ins/outs are {{name, kind}...}; set(model) fills its type.
local function sub(ins, outs, set)
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = 1
  local d = m:mutable("description")
  for _, f in ipairs(ins) do feature(d, "input", f[1], f[2]) end
  for _, f in ipairs(outs) do feature(d, "output", f[1], f[2]) end
  set(m, d)
  return m
end

local function pipeline(kind, ins, outs, models)
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = 1
  local d = m:mutable("description")
  for _, f in ipairs(ins) do feature(d, "input", f[1], f[2]) end
  for _, f in ipairs(outs) do feature(d, "output", f[1], f[2]) end
  local pipe = kind == "pipeline" and m:mutable("pipeline") or m:mutable(kind):mutable("pipeline")
  for _, s in ipairs(models) do pipe:add("models", s) end
  return m, d
end

local function vectorizer(cols, out)
  local ins, parts = {}, {}
  for i, c in ipairs(cols) do
    ins[i] = { c[1], c[3] or "double" }
    parts[i] = wire.message(1, wire.bytes(1, c[1]) .. wire.uint(2, c[2]))
  end
  return sub(ins, { { out, { "DOUBLE", { 0 } } } }, function(m) m.featureVectorizer = opaque(table.concat(parts)) end)
end

local function scaler(x, y, shift, scale, dtype)
  return sub({ { x, { "DOUBLE", { #shift } } } }, { { y, { dtype or "DOUBLE", { #shift } } } },
    function(m) m.scaler = opaque(dbls(1, shift) .. dbls(2, scale)) end)
end

local function glm_regressor(x, y, w, off, transform)
  return sub({ { x, { "DOUBLE", { #w } } } }, { { y, "double" } }, function(m, d)
    d.predictedFeatureName = y
    local g = P.new("CoreML.Specification.GLMRegressor")
    g:add("weights").value = w
    g.offset = { off }
    m.glmRegressor = wire.merge("CoreML.Specification.GLMRegressor", g, wire.enum(3, transform or 0))
  end)
end

local function dvals(...) return tensor({ ... }, { 1 }, "fp64") end

describe("pipelines on the interpreter", function()
  it("featureVectorizer -> scaler -> GLM classifier (softmax over a reference class)", function()
    local shift, scale = { -1, 0.5, 2 }, { 0.5, 2, -1 }
    local W, off = { { 1, -1, 0.5 }, { -0.5, 2, 1 } }, { 0.1, -0.2 }
    local glm = sub({ { "scaled", { "DOUBLE", { 3 } } } }, { { "label", "int64" }, { "probs", { "DOUBLE", { 3 } } } }, function(m, d)
      d.predictedFeatureName, d.predictedProbabilitiesName = "label", "probs"
      local g = m:mutable("glmClassifier")
      for j = 1, 2 do g:add("weights").value = W[j] end
      g.offset = off
      g:mutable("int64ClassLabels").vector = { 10, 20, 30 }
    end)
    local m, d = pipeline("pipelineClassifier", { { "a", "double" }, { "b", "double" }, { "c", "double" } },
      { { "label", "int64" }, { "probs", { "DOUBLE", { 3 } } } },
      { vectorizer({ { "a", 1 }, { "b", 1 }, { "c", 1 } }, "vec"), scaler("vec", "scaled", shift, scale), glm })
    d.predictedFeatureName, d.predictedProbabilitiesName = "label", "probs"
    local p = save(m)
    for _, xs in ipairs({ { 0.3, -1.2, 2.5 }, { -2, 0.75, 0 } }) do
      local s = {}
      for i = 1, 3 do s[i] = scale[i] * (xs[i] + shift[i]) end
      local z = { 0 }
      for j = 1, 2 do
        local v = off[j]
        for i = 1, 3 do v = v + W[j][i] * s[i] end
        z[j + 1] = v
      end
      local mx = math.max(z[1], z[2], z[3])
      local e, sum = {}, 0
      for j = 1, 3 do e[j] = math.exp(z[j] - mx) sum = sum + e[j] end
      local want, best = {}, 1
      for j = 1, 3 do want[j] = e[j] / sum if want[j] > want[best] then best = j end end
      local outs = run(p, { a = dvals(xs[1]), b = dvals(xs[2]), c = dvals(xs[3]) })
      close(outs.probs, want, 1e-5)
      assert.are.equal(({ 10, 20, 30 })[best], outs.label:array()[1])
    end
  end)

  it("imputer -> normalizer (L2) -> arrayFeatureExtractor -> GLM regressor (logit)", function()
    local imputed = { 1.5, -2, 0.25, 4 }
    local imp = sub({ { "x", { "DOUBLE", { 4 } } } }, { { "filled", { "DOUBLE", { 4 } } } },
      function(m) m.imputer = opaque(wire.message(4, dbls(1, imputed))) end)
    local norm = sub({ { "filled", { "DOUBLE", { 4 } } } }, { { "unit", { "DOUBLE", { 4 } } } },
      function(m) m.normalizer = opaque(wire.enum(1, 2)) end)
    local ext = sub({ { "unit", { "DOUBLE", { 4 } } } }, { { "picked", { "DOUBLE", { 2 } } } },
      function(m) m.arrayFeatureExtractor = opaque(wire.packed_varints(1, { 3, 0 })) end)
    local m = pipeline("pipelineRegressor", { { "x", { "DOUBLE", { 4 } } } }, { { "y", "double" } },
      { imp, norm, ext, glm_regressor("picked", "y", { 2, -3 }, 0.5, 1) })
    local p = save(m)
    local x = { 0 / 0, 3, 0 / 0, -1 }
    local f = {}
    for i = 1, 4 do f[i] = x[i] ~= x[i] and imputed[i] or x[i] end
    local nrm = 0
    for i = 1, 4 do nrm = nrm + f[i] * f[i] end
    nrm = math.sqrt(nrm)
    local z = 2 * f[4] / nrm - 3 * f[1] / nrm + 0.5
    local outs = run(p, { x = tensor(x, { 4 }, "fp64") })
    close(outs.y, { 1 / (1 + math.exp(-z)) }, 1e-5)
  end)

  it("oneHotEncoder (int64 categories) beside a double, in a plain pipeline; unknown categories", function()
    local cats = { 3, 7, 11 }
    local function ohe(ignore)
      return sub({ { "k", "int64" } }, { { "hot", { "DOUBLE", { 3 } } } }, function(m)
        m.oneHotEncoder = opaque(wire.message(2, wire.packed_varints(1, cats)) .. wire.enum(11, ignore and 1 or 0))
      end)
    end
    local function model(ignore)
      return save(pipeline("pipeline", { { "k", "int64" }, { "v", "double" } }, { { "y", "double" } },
        { ohe(ignore), vectorizer({ { "hot", 3, { "DOUBLE", { 3 } } }, { "v", 1 } }, "vec"), glm_regressor("vec", "y", { 1, 10, 100, 0.5 }, -1) }))
    end
    local strict, lenient = model(false), model(true)
    local w = { 1, 10, 100 }
    for i, c in ipairs(cats) do
      local outs = run(strict, { k = tensor({ c }, { 1 }, "int64"), v = dvals(4) })
      close(outs.y, { w[i] + 0.5 * 4 - 1 }, 1e-6)
    end
    local outs = run(lenient, { k = tensor({ 5 }, { 1 }, "int64"), v = dvals(4) })
    close(outs.y, { 0.5 * 4 - 1 }, 1e-6)
    local ok, err = pcall(run, strict, { k = tensor({ 5 }, { 1 }, "int64"), v = dvals(4) })
    assert.is_false(ok)
    assert.matches("category 5 is not one of the encoder's 3 categories", tostring(err))
  end)

  it("scaler -> NeuralNetwork (innerProduct, ReLU): the double array is cast for the network", function()
    local shift, scale = { 0.5, -0.5, 1, 0 }, { 2, 1, -1, 0.5 }
    local Wt, b = IH.values(8, 3), { 0.25, -0.75 }
    local nn = B.neural_network {}
    local xs = nn:input("xs", "fp32", { 1, 4 })
    nn:output("out", nn:activation(nn:inner_product(xs, { out = 2, weights = Wt, bias_values = b }), "ReLU"))
    local net = nn:build()
    local sc = sub({ { "x", { "DOUBLE", { 1, 4 } } } }, { { "xs", { "DOUBLE", { 1, 4 } } } },
      function(m) m.scaler = opaque(dbls(1, shift) .. dbls(2, scale)) end)
    local p = save(pipeline("pipeline", { { "x", { "DOUBLE", { 1, 4 } } } }, { { "out", { "FLOAT32", { 1, 2 } } } }, { sc, net }))
    local x = { 1, 2, -3, 0.5 }
    local s, want = {}, {}
    for i = 1, 4 do s[i] = scale[i] * (x[i] + shift[i]) end
    for o = 1, 2 do
      local v = b[o]
      for i = 1, 4 do v = v + Wt[(o - 1) * 4 + i] * s[i] end
      want[o] = math.max(v, 0)
    end
    local outs = run(p, { x = tensor(x, { 1, 4 }, "fp64") })
    close(outs.out, want, 1e-5)
    local out, err, code = F.run("run " .. F.q(p) .. " --random 2 --json")
    assert.are.equal(0, code, err)
    assert.matches('"out"', out)
  end)

  it("an image input flows to a NeuralNetwork sub-model with its scale and bias, then a GLM", function()
    local nn = B.neural_network {}
    local img = nn:input("img", "image", { width = 2, height = 1, color = "RGB", scale = 0.5, bias = { 1, 2, 3 } })
    nn:output("flat", nn:flatten(nn:activation(img, "ReLU")))
    local net = nn:build()
    local m = pipeline("pipelineRegressor", {}, { { "y", "double" } },
      { net, glm_regressor("flat", "y", { 1, -1, 2, -2, 3, -3 }, 0.5) })
    local f = m.description:add("input")
    f.name = "img"
    local it_ = f:mutable("type"):mutable("imageType")
    it_.width, it_.height, it_.colorSpace = 2, 1, "RGB"
    local p = save(m)
    local px = { 10, 20, 30, 40, 50, 60 } -- HWC: (r, g, b) per pixel
    local chw = { 10 * 0.5 + 1, 40 * 0.5 + 1, 20 * 0.5 + 2, 50 * 0.5 + 2, 30 * 0.5 + 3, 60 * 0.5 + 3 }
    local w, want = { 1, -1, 2, -2, 3, -3 }, 0.5
    for i = 1, 6 do want = want + w[i] * chw[i] end
    close(run(p, { img = tensor(px, { 1, 2, 3 }, "uint8") }).y, { want }, 1e-5)
  end)

  it("a nested pipeline runs as a sub-model", function()
    local inner = pipeline("pipeline", { { "a", "double" }, { "b", "double" } }, { { "vec", { "DOUBLE", { 2 } } } },
      { vectorizer({ { "a", 1 }, { "b", 1 } }, "vec") })
    local p = save(pipeline("pipelineRegressor", { { "a", "double" }, { "b", "double" } }, { { "y", "double" } },
      { inner, glm_regressor("vec", "y", { 3, -2 }, 1) }))
    close(run(p, { a = dvals(2), b = dvals(5) }).y, { 3 * 2 - 2 * 5 + 1 }, 1e-6)
  end)
end)

describe("bad pipelines", function()
  it("a sub-model reading a value no one produced names the model and the input", function()
    local p = save(pipeline("pipelineRegressor", { { "a", "double" } }, { { "y", "double" } },
      { vectorizer({ { "a", 1 } }, "vec"), glm_regressor("nope", "y", { 1 }, 0) }))
    local _, err, code = F.run("run " .. F.q(p) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("pipeline model 2 %(glmRegressor%): input 'nope' is neither a pipeline input nor an output of an earlier model\n$", err)
  end)

  it("a sub-model's internal values stay hidden from the models after it", function()
    local nn = B.neural_network {}
    local x = nn:input("x", "fp32", { 1, 2 })
    local h = nn:inner_product(x, { out = 2, weights = { 1, 0, 0, 1 }, name = "hidden_layer" })
    nn:output("out", nn:activation(h, "ReLU"))
    local net = nn:build()
    local hidden = net.neuralNetwork.layers[1].output[1]
    local p = save(pipeline("pipelineRegressor", { { "x", { "FLOAT32", { 1, 2 } } } }, { { "y", "double" } },
      { net, glm_regressor(hidden, "y", { 1, 1 }, 0) }))
    local _, err, code = F.run("run " .. F.q(p) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("pipeline model 2 %(glmRegressor%): input '" .. hidden:gsub("%p", "%%%0") .. "' is neither", err)
  end)

  it("dictVectorizer and string categories are refused as unsupported; a missing input is named", function()
    local dv = sub({ { "a", "double" } }, { { "vec", { "DOUBLE", { 2 } } } },
      function(m) m.dictVectorizer = opaque(wire.message(2, wire.packed_varints(1, { 1, 2 }))) end)
    local p = save(pipeline("pipelineRegressor", { { "a", "double" } }, { { "y", "double" } }, { dv, glm_regressor("vec", "y", { 1, 1 }, 0) }))
    local _, err, code = F.run("run " .. F.q(p) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("pipeline model 1 %(dictVectorizer%): [^\n]*is not supported by the interpreter\n$", err)
    local so = sub({ { "k", "int64" } }, { { "hot", { "DOUBLE", { 2 } } } },
      function(m) m.oneHotEncoder = opaque(wire.message(1, wire.bytes(1, "x") .. wire.bytes(1, "y"))) end)
    p = save(pipeline("pipeline", { { "k", "int64" } }, { { "hot", { "DOUBLE", { 2 } } } }, { so }))
    _, err, code = F.run("run " .. F.q(p) .. " --random 1")
    assert.are.equal(1, code)
    assert.matches("oneHotEncoder with string categories is not supported by the interpreter\n$", err)
    p = save(pipeline("pipelineRegressor", { { "a", "double" }, { "b", "double" } }, { { "y", "double" } },
      { vectorizer({ { "a", 1 }, { "b", 1 } }, "vec"), glm_regressor("vec", "y", { 1, 1 }, 0) }))
    local ok, e2 = pcall(run, p, { a = dvals(1) })
    assert.is_false(ok)
    assert.matches("'b'", tostring(e2))
  end)

  it("an extract index past the array and a featureVectorizer column of the wrong size fail at run time", function()
    local ext = sub({ { "x", { "DOUBLE", { 3 } } } }, { { "y", "double" } },
      function(m) m.arrayFeatureExtractor = opaque(wire.uint(1, 9)) end)
    local p = save(pipeline("pipeline", { { "x", { "DOUBLE", { 3 } } } }, { { "y", "double" } }, { ext }))
    local ok, err = pcall(run, p, { x = tensor({ 1, 2, 3 }, { 3 }, "fp64") })
    assert.is_false(ok)
    assert.matches("extractIndex 9 is outside the input's 3 values", tostring(err))
    p = save(pipeline("pipeline", { { "x", { "DOUBLE", { 3 } } } }, { { "vec", { "DOUBLE", { 2 } } } },
      { vectorizer({ { "x", 2, { "DOUBLE", { 3 } } } }, "vec") }))
    ok, err = pcall(run, p, { x = tensor({ 1, 2, 3 }, { 3 }, "fp64") })
    assert.is_false(ok)
    assert.matches("column 0 holds 3 values, inputDimensions says 2", tostring(err))
  end)
end)
