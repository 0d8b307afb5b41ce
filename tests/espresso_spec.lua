-- Compiled NeuralNetwork models (.mlmodelc with model.espresso.*; core/espresso.c, mlsh.espresso)
-- on a self-written bundle: layers, shapes, weights read in place, and what cannot be recovered.
local F = require "fixtures"
local X = require "pte_fixtures"
local mlsh = require "mlsh"
local json = require "mlsh.json"

local HOME = os.getenv("MLSH_HOME") or "."
local dir = HOME .. "/build/test-espresso"
local good, bad

setup(function()
  require("mlsh.core").fs.remove_tree(dir)
  good = X.espresso_mlmodelc(dir .. "/net.mlmodelc")
  bad = X.espresso_mlmodelc(dir .. "/short.mlmodelc", { truncate = 3 })
end)

describe("compiled NeuralNetwork .mlmodelc", function()
  it("refuses to save the partial spec (mlsh save exits 1, one line, nothing written)", function()
    local out = dir .. "/resaved.mlmodel"
    local o, err, code = F.run("save " .. F.q(good) .. " " .. F.q(out))
    assert.equal(1, code, o)
    assert.matches("^mlsh: .-net%.mlmodelc: a compiled NeuralNetwork %(model%.espresso%.%*%) cannot be saved: "
      .. "its spec is a partial reconstruction %(lost: coremldata%.bin", err)
    assert.equal(1, select(2, err:gsub("\n", "")))
    assert.is_nil(io.open(out, "rb"))
  end)

  it("maps espresso layers onto m:layers()", function()
    local m = assert(mlsh.try_load(good))
    assert.equal("neuralNetwork", m.model_type)
    assert.equal(4, m.spec_version)
    local got = {}
    for i, l in ipairs(m:layers()) do got[i] = l.name .. ":" .. l.type .. ":" .. table.concat(l.inputs, ",") .. ">" .. table.concat(l.outputs, ",") end
    assert.same({ "conv1:convolution:data>conv1_out", "relu1:activation:conv1_out>relu1_out",
                  "odd:espresso:espresso_private_op:relu1_out>odd_out", "prob:softmax:odd_out>prob" }, got)
    assert.same({ n = 1, k = 2, h = 1, w = 1 }, m:layers()[4].output_shapes[1])
    m:close()
  end)

  it("reads the weights in place from model.espresso.weights", function()
    local m = assert(mlsh.try_load(good))
    local w = {}
    for _, x in ipairs(m:weights()) do w[x.name] = x end
    local vals = w["conv1.weights"]:values()
    for i, v in ipairs(X.ESPRESSO.conv_w) do assert.equal(v, vals[i]) end
    local b = w["conv1.biases"]:values()
    assert.same(X.ESPRESSO.conv_b, { b[1], b[2] })
    -- blob offsets: after the 8-byte count and two 16-byte records, bias blob first
    assert.equal(40, w["conv1.biases"].offset)
    assert.equal(48, w["conv1.weights"].offset)
    m:close()
  end)

  it("info, check and weights work, and info says what could not be recovered", function()
    local out, err, code = F.run("info " .. F.q(good))
    assert.equal(0, code, err)
    assert.matches("4 layers %(activation 1, convolution 1, espresso:espresso_private_op 1, softmax 1%)", out)
    assert.matches("not recovered from the compiled model: coremldata%.bin", out)
    assert.matches("layer types with no NeuralNetwork equivalent: espresso_private_op", out)
    out, err, code = F.run("weights --json " .. F.q(good))
    assert.equal(0, code, err)
    assert.equal(2, #json.decode(out).weights)
    out, err, code = F.run("check --format json " .. F.q(good))
    assert.equal(0, code, err)
    assert.equal("neuralNetwork", json.decode(out).model_type)
  end)

  it("refuses a weight file whose blobs run past its end, naming it", function()
    local out, err, code = F.run("info " .. F.q(bad))
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find(bad .. "/model.espresso.weights: blob 1 (key 3, 32 bytes at 48) runs past the end of the file", 1, true), err)
  end)
end)
