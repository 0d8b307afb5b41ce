-- Surgery: a new .onnx with frozen dims and/or Erf-GELU rewritten to the tanh form; the input is
-- never touched, payloads left in the mapped file are written out whole, and the result
-- re-analyses as predicted.
require "mlsh.onnx.model"
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"
local B = require "onnx_builder"
local ep = require "mlsh.onnx.ep"
local surgery = require "mlsh.onnx.surgery"

local function seq(n)
  local t = {}
  for i = 1, n do t[i] = ((i * 13) % 11 - 5) * 0.0625 end
  return t
end

describe("ONNX surgery", function()
  local dir, src
  setup(function()
    dir = F.tmpdir()
    -- a dynamic-batch MLP with an exact GELU, a weight big enough to stay in the mapped file,
    -- a Constant node holding the 0.5
    local b = B.model { opset = 14 }
    b:input("x", "FLOAT", { "batch", 64 })
    b:init("w1", "FLOAT", { 64, 64 }, seq(64 * 64))
    b:init("w2", "FLOAT", { 64, 8 }, seq(64 * 8))
    b:init("sqrt2", "FLOAT", {}, { math.sqrt(2) })
    b:init("one", "FLOAT", {}, { 1 })
    b:const("half", "FLOAT", {}, { 0.5 })
    b:node("MatMul", { "x", "w1" }, { "h" })
    b:node("Mul", { "h", "half" }, { "hh" })
    b:node("Div", { "h", "sqrt2" }, { "d" })
    b:node("Erf", { "d" }, { "e" })
    b:node("Add", { "e", "one" }, { "a" })
    b:node("Mul", { "hh", "a" }, { "g" })
    b:node("MatMul", { "g", "w2" }, { "y" })
    b:output("y", "FLOAT", { "batch", 8 })
    src = b:save(dir .. "/mlp.onnx")
  end)
  teardown(function() core.fs.remove_tree(dir) end)

  it("rewrites Erf-GELU to the tanh form; the new model re-analyses as the counterfactual said", function()
    local before = F.sha(src)
    local m <close> = mlsh.load(src)
    local r = ep.run(m, { model_format = "neuralnetwork", freeze_all = 1 })
    local predicted
    for _, c in ipairs(r.counterfactuals) do if c.json.kind == "gelu_tanh" then predicted = c.json end end
    assert.is_not_nil(predicted)
    local out = dir .. "/mlp_tanh.onnx"
    local path, report = surgery.save(m, out, { gelu_tanh = true, freeze_all = 1 })
    assert.equal(out, path)
    assert.equal(1, report.gelu)
    assert.equal(before, F.sha(src))
    local m2 <close> = mlsh.load(out)
    local hist = m2:op_histogram()
    assert.is_nil(hist.Erf)
    assert.equal(1, hist.Tanh)
    assert.equal(1, hist.Pow)
    assert.same({ 1, 64 }, m2:inputs()[1].shape)
    local r2 = ep.run(m2, { model_format = "neuralnetwork" })
    assert.equal(predicted.partitions, #r2.partitions)
    assert.equal(predicted.supported_nodes, r2.supported_nodes)
    assert.equal(predicted.nodes, r2.nodes)
    -- the big weight came back whole from the mapped file
    local w = m2:weights()[1]
    assert.equal("w1", w.name)
    local a = w:values()
    local want = seq(64 * 64)
    assert.equal(64 * 64, #a)
    assert.equal(want[1], a[1])
    assert.equal(want[4096], a[4096])
    assert.is_true(#F.read(out) > 64 * 64 * 4) -- the payload is in the file, not a reference to it
  end)

  it("freezes dims by name and by input:axis, everywhere they appear", function()
    local m <close> = mlsh.load(src)
    local out = dir .. "/mlp_b4.onnx"
    local _, report = surgery.save(m, out, { freeze = { { name = "batch", value = 4 } } })
    assert.same({ batch = 4 }, report.frozen)
    local m2 <close> = mlsh.load(out)
    assert.same({ 4, 64 }, m2:inputs()[1].shape)
    assert.same({ 4, 8 }, m2:outputs()[1].shape)
    local out2 = dir .. "/mlp_x0.onnx"
    surgery.save(m, out2, { freeze = { { name = "x:0", value = 2 } } })
    local m3 <close> = mlsh.load(out2)
    assert.same({ 2, 8 }, m3:outputs()[1].shape)
  end)

  it("refuses to overwrite the input and reports unknown names", function()
    local m <close> = mlsh.load(src)
    local before = F.sha(src)
    local ok, err = surgery.save(m, src, { gelu_tanh = true })
    assert.is_nil(ok)
    assert.truthy(err:find("refusing to overwrite", 1, true))
    assert.has_error(function() surgery.save(m, dir .. "/x.onnx", { freeze = { { name = "nope", value = 1 } } }) end)
    assert.equal(before, F.sha(src))
  end)

  it("writes from the command line with --save", function()
    local out = dir .. "/cli.onnx"
    local o, err, code = F.run("ep --json --model-format neuralnetwork --freeze batch=1 --gelu-tanh --save "
      .. F.q(out) .. " " .. F.q(src))
    assert.equal(0, code, err)
    local res = json.decode(o)
    assert.equal(out, res.saved)
    local again
    again, err, code = F.run("ep --json --model-format neuralnetwork " .. F.q(out))
    assert.equal(0, code, err)
    local res2 = json.decode(again)
    assert.equal(1, #res2.partitions)
    local _, err2, code2 = F.run("ep --gelu-tanh " .. F.q(src))
    assert.equal(2, code2)
    assert.truthy(err2:find("--save", 1, true))
  end)
end)
