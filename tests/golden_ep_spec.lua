-- `mlsh ep --json` golden outputs (tests/golden/ep/*.txt), kept apart from golden_cli_spec.lua
-- because the ONNX EP predictor is being rewritten: its owner regenerates these files with
-- MLSH_UPDATE_GOLDEN=1 when the prediction changes on purpose.
local F = require "fixtures"
local B = require "onnx_builder"
local G = require "golden"

-- Small ONNX graphs: one the EP takes whole, one it splits, one with an fp16 island, one dynamic.
local MODELS = {
  whole = function(m)
    m:input("x", "FLOAT", { 1, 8 })
    m:init("w", "FLOAT", { 8, 4 }, F.seq(32))
    m:node("MatMul", { "x", "w" }, { "a" })
    m:node("Relu", { "a" }, { "y" })
    m:output("y", "FLOAT", { 1, 4 })
  end,
  split = function(m)
    m:input("x", "FLOAT", { 1, 8 })
    m:node("Relu", { "x" }, { "a" })
    m:node("Hardmax", { "a" }, { "b" }, { axis = 1 })
    m:node("Relu", { "b" }, { "y" })
    m:output("y", "FLOAT", { 1, 8 })
  end,
  fp16 = function(m)
    m:input("x", "FLOAT16", { 1, 8 })
    m:node("Relu", { "x" }, { "a" })
    m:node("Sigmoid", { "a" }, { "y" })
    m:output("y", "FLOAT16", { 1, 8 })
  end,
  dynamic = function(m)
    m:input("x", "FLOAT", { "batch", 8 })
    m:node("Relu", { "x" }, { "a" })
    m:node("Softmax", { "a" }, { "y" }, { axis = -1 })
    m:output("y", "FLOAT", { "batch", 8 })
  end,
}
local OPTIONS = {
  default = "",
  mlprogram = "--model-format mlprogram",
  static = "--model-format mlprogram --require-static-input-shapes 1",
  cpu_and_ne = "--compute-units CPUAndNeuralEngine",
}

describe("golden ep --json", function()
  local dir, paths = nil, {}
  setup(function()
    dir = F.shared().dir .. "/golden-ep"
    require("mlsh.core").fs.mkdir_p(dir)
    for name, build in pairs(MODELS) do
      local m = B.model({ opset = 17 })
      build(m)
      paths[name] = m:save(dir .. "/" .. name .. ".onnx")
    end
  end)
  local mnames, onames = {}, {}
  for k in pairs(MODELS) do mnames[#mnames + 1] = k end
  for k in pairs(OPTIONS) do onames[#onames + 1] = k end
  table.sort(mnames)
  table.sort(onames)
  for _, mn in ipairs(mnames) do
    for _, on in ipairs(onames) do
      it("is unchanged: " .. mn .. " " .. on, function()
        local out, err, code = G.run("ep --json " .. OPTIONS[on] .. " " .. F.q(paths[mn]), { [dir] = "<onnx>" })
        assert.truthy(code == 0 or code == 1, err)
        assert.equal(G.compare("ep", mn .. "_" .. on, out), out)
      end)
    end
  end
end)
