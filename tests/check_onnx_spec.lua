-- `mlsh check MODEL.onnx`: the CoreML EP prediction as findings (issue: ONNX / EP predictor).
local json = require "mlsh.json"
local F = require "fixtures"
local B = require "onnx_builder"

describe("mlsh check on ONNX models", function()
  local path
  setup(function()
    local dir = F.shared().dir
    local m = B.model({ opset = 17 })
    m:input("x", "FLOAT", { 1, 8 })
    m:node("Relu", { "x" }, { "a" })
    m:node("Hardmax", { "a" }, { "b" }, { axis = 1 })
    m:node("Relu", { "b" }, { "y" })
    m:output("y", "FLOAT", { 1, 8 })
    path = dir .. "/split.onnx"
    m:save(path)
  end)

  it("reports the partitions the EP would cut and the node it cannot take", function()
    local out, err, code = F.run("check --format json " .. F.q(path))
    assert.equal(0, code, err)
    local o = json.decode(out)
    assert.equal("onnx", o.model_type)
    assert.equal(2, #o.ep.partitions)
    local rules = {}
    for _, f in ipairs(o.findings) do rules[f.rule] = f end
    assert.equal("2b", rules["onnx-coreml-ep"].pattern)
    assert.truthy(rules["onnx-coreml-ep-node"].message:find("Hardmax", 1, true))
    assert.equal(json.null, o.placement)
  end)

  it("prints the EP summary in text", function()
    local out, err, code = F.run("check " .. F.q(path))
    assert.equal(0, code, err)
    assert.truthy(out:find("2 partitions", 1, true), out)
    assert.truthy(out:find("onnx-coreml-ep", 1, true), out)
  end)
end)
