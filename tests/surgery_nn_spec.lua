-- mlsh.surgery's NeuralNetwork layer editing, on a 4-layer model written by the fixtures
-- (conv1 data->c1, relu1 c1->r1, flatten r1->f1, fc f1->out).
local mlsh = require "mlsh"
local S = require "mlsh.surgery"
local F = require "fixtures"

local function layer_list(m)
  local t = {}
  for _, l in ipairs(m:layers()) do t[#t + 1] = l.name .. ":" .. l.type end
  return table.concat(t, " ")
end

describe("surgery: neural network layers", function()
  local dir, src
  setup(function()
    dir = F.tmpdir()
    src = dir .. "/nn.mlmodel"
    F.write(src, F.nn_model():encode())
  end)
  teardown(function() mlsh.core.fs.remove_tree(dir) end)

  it("inserts a layer and reroutes a blob", function()
    local e = S.edit(mlsh.load(src))
    local n = assert(e:nn())
    local relu = n:find("relu1")
    n:insert({ name = "sig", input = { "r1" }, output = { "s1" }, activation = "sigmoid" }, { after = relu })
    local flat = n:find("flatten")
    flat.input = { "s1" }
    assert.same({}, e:validate())
    e:save(dir .. "/ins.mlmodel")
    local m = mlsh.load(dir .. "/ins.mlmodel")
    assert.equal("conv1:convolution relu1:activation sig:activation flatten:flatten fc:innerProduct", layer_list(m))
    assert.same({ "s1" }, m:layers()[4].inputs)
  end)

  it("removes a layer, rerouting its consumers", function()
    local e = S.edit(mlsh.load(src))
    local n = e:nn()
    assert.has_error(function() n:remove(n:find("relu1")) end, "neural network: remove: layer 'relu1' output 'r1' is still used")
    n:remove(n:find("relu1"), { reroute = { r1 = "c1" } })
    e:save(dir .. "/rm.mlmodel")
    local m = mlsh.load(dir .. "/rm.mlmodel")
    assert.equal("conv1:convolution flatten:flatten fc:innerProduct", layer_list(m))
    assert.same({ "c1" }, m:layers()[2].inputs)
  end)

  it("renames blobs, model outputs included", function()
    local e = S.edit(mlsh.load(src))
    e:nn():rename_blob("out", "logits")
    e:save(dir .. "/ren.mlmodel")
    local m = mlsh.load(dir .. "/ren.mlmodel")
    assert.equal("logits", m:outputs()[1].name)
    assert.same({ "logits" }, m:layers()[4].outputs)
  end)

  it("refuses undefined inputs, dangling outputs and duplicate names", function()
    local cases = {
      { function(n) n:find("fc").input = { "nowhere" } end, "layer 'fc' input 'nowhere' is not produced" },
      { function(n) n:find("fc").output = { "other" } end, "model output 'out' is produced by no layer" },
      { function(n) n:find("relu1").name = "conv1" end, "layer name 'conv1' is used twice" },
    }
    for _, c in ipairs(cases) do
      local e = S.edit(mlsh.load(src))
      c[1](e:nn())
      local problems = table.concat(e:validate(), "\n")
      assert.matches(c[2], problems, 1, true)
      local ok, err = pcall(e.save, e, dir .. "/bad.mlmodel")
      assert.is_false(ok)
      assert.matches("invalid model", err)
    end
    assert.is_nil(mlsh.core.fs.exists(dir .. "/bad.mlmodel"))
  end)

  it("stores fp32 weights as fp16 (mlsh fix --fp16 on a neural network)", function()
    local _, err, code = F.run("fix " .. F.q(src) .. " -o " .. F.q(dir .. "/h.mlmodel") .. " --fp16")
    assert.equal(0, code, err)
    local a, b = mlsh.load(src), mlsh.load(dir .. "/h.mlmodel")
    local wa, wb = a:weights(), b:weights()
    assert.equal(#wa, #wb)
    for i, w in ipairs(wa) do
      assert.equal("fp16", wb[i].dtype)
      assert.equal(w.bytes // 2, wb[i].bytes)
      local x, y = w:values():totable(), wb[i]:values():totable()
      for k = 1, #x do
        -- fp16 keeps 11 significant bits: relative error <= 2^-11 (normal range)
        assert.is_true(math.abs(x[k] - y[k]) <= math.abs(x[k]) * 2 ^ -11 + 2 ^ -24, w.name)
      end
    end
    assert.is_true(b.spec_version >= 2)
  end)
end)
