-- required_spec: the minimum spec a model's content needs and the op or feature behind each bump.
local mlsh = require "mlsh"
local rs = require "mlsh.required_spec"
local F = require "fixtures"
local R = require "rule_fixtures"

local function explain(path)
  local m = mlsh.load(path)
  local r = m:required_spec()
  m:close()
  return r
end

local function whats(r)
  local out = {}
  for i, x in ipairs(r.reasons) do out[i] = string.format("%d %s", x.spec, x.what) end
  return out
end

local function has(r, spec_n, pattern)
  for _, x in ipairs(r.reasons) do
    if x.spec == spec_n and x.what:find(pattern) then return x end
  end
  return nil
end

describe("required_spec", function()
  local fx, base
  setup(function()
    fx = R.shared()
    base = F.shared()
  end)

  it("an ML program with iOS15 ops and fp32 I/O needs spec 6, whatever it declares", function()
    local r = explain(fx.spec8_prog)
    assert.equal(6, r.version)
    assert.equal(8, r.declared)
    assert.same({ "6 ML program (Model.mlProgram)" }, whats(r))
    assert.same({ main = "CoreML7" }, r.opsets)
  end)

  it("fp16 inputs/outputs need spec 7 and name the feature", function()
    local r = explain(fx.fp16_io)
    assert.equal(7, r.version)
    local x = has(r, 7, "^FLOAT16 multiarray")
    assert.truthy(x)
    assert.equal("fp16_multiarray", x.feature)
    assert.equal(2, x.count, "input and output")
    assert.matches("casts", x.lowering)
  end)

  it("constexpr compression ops need spec 7", function()
    local r = explain(fx.huge_weights_palettized)
    assert.equal(7, r.version)
    local x = has(r, 7, "op constexpr_lut_to_dense %(new in iOS16%)")
    assert.truthy(x)
    assert.equal("op", x.kind)
    assert.equal("W_palettized", x.op)
    assert.equal("compression", x.feature)
  end)

  it("ops newer than the opset raise the requirement above the declared spec", function()
    local r = explain(fx.op_too_new)
    assert.equal(8, r.version)
    assert.equal(6, r.declared)
    assert.truthy(has(r, 8, "op resize %(new in iOS17%)"))
  end)

  it("states need spec 9 (iOS18)", function()
    local r = explain(fx.stateful)
    assert.equal(9, r.version)
    assert.equal("states", r.reasons[1].feature)
    assert.equal(9, r.reasons[1].spec)
  end)

  it("several functions need spec 9", function()
    local r = explain(base.multi)
    assert.equal(9, r.version)
    assert.truthy(has(r, 9, "several functions"))
  end)

  it("NeuralNetwork layers, weights and flexible shapes", function()
    assert.equal(2, explain(fx.nn_custom).version)
    assert.truthy(has(explain(fx.nn_custom), 2, "layer custom"))
    assert.equal(4, explain(fx.nn_nd).version)
    assert.truthy(has(explain(fx.nn_nd), 4, "layer addBroadcastable"))
    local q = explain(base.nn_quant)
    assert.equal(3, q.version)
    assert.truthy(has(q, 3, "quantized NeuralNetwork weights"))
    assert.equal(2, explain(base.nn_classifier).version, "fp16 weights")
    assert.truthy(has(explain(fx.nn_range), 3, "flexible input shapes"))
    assert.equal(1, explain(fx.nn_plain).version)
    assert.same({}, explain(fx.nn_plain).reasons)
  end)

  it("a pipeline needs the maximum over its sub-models, reasons prefixed with the sub-model", function()
    local r = explain(base.pipeline)
    assert.equal(2, r.version)
    assert.matches("^pipeline model 'second': fp16 NeuralNetwork weights", r.reasons[1].what)
    assert.equal("second", r.reasons[1].model)
  end)

  it("layer bumps apply from the layer's parameters", function()
    local m = R.nn {}
    m.neuralNetwork.layers[4].innerProduct.int8DynamicQuantize = true
    local d = F.tmpdir()
    F.write(d .. "/q.mlmodel", m:encode())
    local r = explain(d .. "/q.mlmodel")
    assert.equal(5, r.version)
    assert.truthy(has(r, 5, "int8DynamicQuantize"))
  end)

  it("on-device update is reported but does not raise the version", function()
    local m = R.nn {}
    m.isUpdatable = true
    m.specificationVersion = 1
    local d = F.tmpdir()
    F.write(d .. "/u.mlmodel", m:encode())
    local r = explain(d .. "/u.mlmodel")
    assert.equal(1, r.version)
    assert.equal(1, #r.soft)
    assert.equal(4, r.soft[1].spec)
    assert.equal("update_only", r.soft[1].kind)
  end)

  it("notes op types it does not know instead of guessing", function()
    local r = explain(fx.unknown_op)
    assert.equal(6, r.version)
    assert.matches("mlsh_mystery_op", r.notes[1])
  end)

  it("says what lowering to a target blocks and loses", function()
    local m = mlsh.load(fx.stateful)
    local low = rs.lowering(m, 8)
    m:close()
    assert.is_false(low.possible)
    assert.equal(9, low.required)
    local blocked = {}
    for _, b in ipairs(low.blockers) do blocked[#blocked + 1] = b.what end
    assert.truthy(table.concat(blocked, "|"):find("state features", 1, true))
    m = mlsh.load(fx.spec8_prog)
    low = rs.lowering(m, 6)
    m:close()
    assert.is_true(low.possible)
    local lost = {}
    for _, l in ipairs(low.losses) do lost[l.op] = l.what end
    assert.matches("linear: iOS17 version %-> iOS15 version", lost.linear)
  end)

  it("serializes with version, declared and reasons [{spec, what}]", function()
    local j = rs.to_json(explain(fx.stateful))
    assert.equal(9, j.version)
    assert.equal(9, j.declared)
    for _, x in ipairs(j.reasons) do
      assert.is_number(x.spec)
      assert.is_string(x.what)
    end
  end)
end)
