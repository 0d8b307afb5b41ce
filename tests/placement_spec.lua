-- The compute-unit placement simulator: devices per op with reasons, segments, transitions,
-- coverage, cut-makers, team fallbacks, defaults for ops the tables do not know.
local mlsh = require "mlsh"
local F = require "fixtures"
local placement = require "mlsh.placement.coreml"
local optable = require "mlsh.optable"
local R = require "rule_fixtures"

local function devices(p)
  local out = {}
  for i, o in ipairs(p.ops) do out[i] = o.device end
  return out
end

local function by_op(p, name)
  for _, o in ipairs(p.ops) do
    if o.op == name then return o end
  end
end

-- This spec tests the first stage on tiny fixtures: F.simulate opts out of the calibrated default explicitly
-- (tests/placement_evidence_spec.lua tests the second stage).
local sim = F.simulate

describe("placement simulator", function()
  local fx
  setup(function() fx = R.shared() end)

  it("parses compute units and rejects unknown ones", function()
    assert.equal("ALL", placement.compute_units(nil))
    assert.equal("CPU_AND_NE", placement.compute_units("cpu_and_ne"))
    assert.equal("CPU_AND_NE", placement.compute_units("cpuAndNeuralEngine"))
    assert.equal("CPU_AND_GPU", placement.compute_units("cpu-and-gpu"))
    assert.equal("CPU_ONLY", placement.compute_units("CPU_ONLY"))
    local n, err = placement.compute_units("tpu")
    assert.is_nil(n)
    assert.matches("unknown compute units 'tpu'", err)
    assert.has_error(function() sim(fx.fp16, { compute_units = "tpu" }) end)
  end)

  it("puts an fp16 body on the ANE, I/O casts with it", function()
    local p = sim(fx.fp16)
    assert.same({ "ANE", "ANE", "ANE", "ANE" }, devices(p))
    assert.equal("cast", p.ops[1].type)
    assert.matches("conversion of a model input/output", p.ops[1].reason)
    assert.same({ ops = 1, work = 1 }, p.ane_coverage)
    assert.equal(1, #p.segments)
    assert.same({}, p.transitions)
    assert.same({}, p.cut_makers)
  end)

  it("follows the compute units", function()
    assert.same({ "GPU", "GPU", "GPU", "GPU" }, devices(sim(fx.fp16, { compute_units = "CPU_AND_GPU" })))
    local cpu = sim(fx.fp16, { compute_units = "CPU_ONLY" })
    assert.same({ "CPU", "CPU", "CPU", "CPU" }, devices(cpu))
    assert.equal("compute units CPU_ONLY", cpu.ops[1].reason)
    assert.same({ ops = 0, work = 0 }, cpu.ane_coverage)
    assert.same({ "ANE", "ANE", "ANE", "ANE" }, devices(sim(fx.fp16, { compute_units = "CPU_AND_NE" })))
  end)

  it("sends fp32 compute to the GPU (ALL) or the CPU (CPU_AND_NE), with the reason", function()
    local p = sim(fx.fp32)
    assert.same({ "GPU", "GPU" }, devices(p))
    assert.matches("not ANE: computes in fp32: compute dtype is fp16", p.ops[1].reason)
    assert.equal("dtype", p.ops[1].why)
    assert.same({ "CPU", "CPU" }, devices(sim(fx.fp32, { compute_units = "CPU_AND_NE" })))
  end)

  it("cuts the ANE run around a dilated conv and ranks it first", function()
    local p = sim(fx.dilated_prog)
    assert.equal("GPU", by_op(p, "conv2").device)
    assert.equal("ANE", by_op(p, "conv1").device)
    assert.equal("ANE", by_op(p, "conv3").device)
    assert.equal(3, #p.segments)
    assert.same({ "ANE", "GPU", "ANE" }, { p.segments[1].device, p.segments[2].device, p.segments[3].device })
    assert.equal(1, p.segments[2].count)
    assert.equal("conv2", p.segments[2].first)
    assert.equal(2, #p.transitions)
    assert.equal("ANE-GPU", p.transitions[1].kind)
    assert.equal("costly", p.transitions[1].cost)
    local c = p.cut_makers[1]
    assert.equal("conv", c.type)
    assert.equal("max_dilation", c.why)
    assert.equal(2, c.transitions)
    assert.is_true(c.between_ane)
    assert.matches("dilated", c.fix)
    -- CPU_AND_NE: the same cut lands on the CPU (a cheap switch)
    local ne = sim(fx.dilated_prog, { compute_units = "CPU_AND_NE" })
    assert.equal("CPU", by_op(ne, "conv2").device)
    assert.equal("cheap", ne.transitions[1].cost)
    -- coverage by ops and by work
    assert.near(7 / 8, p.ane_coverage.ops, 1e-9)
    assert.is_true(p.ane_coverage.work < p.ane_coverage.ops, "the dilated conv is heavier than the average op")
  end)

  it("puts a light op that cannot run on the ANE on the CPU between ANE ops", function()
    local p = sim(fx.gather_prog)
    local g = by_op(p, "gather_0")
    assert.equal("CPU", g.device)
    assert.matches("gather is unlikely to run on the ANE", g.reason)
    assert.equal("ANE-CPU", p.transitions[1].kind)
    assert.equal("cheap", p.transitions[1].cost)
  end)

  it("keeps range-shaped NeuralNetwork layers off the ANE and enumerated ones on it", function()
    local range = sim(fx.nn_range)
    assert.equal("GPU", range.ops[1].device)
    assert.equal("shapes", range.ops[1].why)
    assert.is_nil(range.ops[1]["function"])
    assert.equal("convolution", range.ops[1].type)
    local enum = sim(fx.nn_enumerated)
    for _, o in ipairs(enum.ops) do assert.equal("ANE", o.device) end
  end)

  it("places NeuralNetwork custom, LSTM and ND layers off the ANE", function()
    assert.equal("CPU", by_op(sim(fx.nn_custom), "swish").device)
    assert.equal("CPU", by_op(sim(fx.nn_lstm), "lstm1").device)
    assert.equal("CPU", by_op(sim(fx.nn_nd), "add_bc").device)
    assert.equal("GPU", by_op(sim(fx.nn_dilated), "conv1").device)
  end)

  it("gives ops the tables do not know a stated default", function()
    local p = sim(fx.unknown_op)
    local u = by_op(p, "mystery_0")
    assert.equal("CPU", u.device)
    assert.equal("unknown_op", u.why)
    assert.matches("'mlsh_mystery_op' is not in mlsh's tables", u.reason)
  end)

  it("runs non-neural models and pipelines on the CPU, one sequence per sub-model", function()
    local p = sim(fx.pipeline)
    assert.equal(2, #p.segments)
    assert.equal("first", p.segments[1].model)
    assert.equal("second", p.segments[2].model)
    assert.same({}, p.transitions, "sub-models are separate sequences")
  end)

  describe("team fallbacks", function()
    local function fb(t)
      local rules = require "mlsh.engine.rules"
      return assert(rules.validate_fallback(t, "team/test.lua"))
    end
    it("override the tables when op, os and when match", function()
      local f = fb { op = "linear", device = "GPU", reason = "measured", os = ">=16",
                     when = function(op, ctx) return op.name == "linear_0" and ctx.node.compute_dtype == "fp16" end }
      local p = sim(fx.fp16, { fallbacks = { f } })
      local o = by_op(p, "linear_0")
      assert.equal("GPU", o.device)
      assert.equal("fallback", o.why)
      assert.equal("team fallback (team/test.lua): measured", o.reason)
      -- the os constraint is checked against the target (iOS15 < 16: no override)
      assert.equal("ANE", by_op(sim(fx.fp16, { fallbacks = { f }, target = 6 }), "linear_0").device)
      -- a device outside the compute units becomes the CPU
      local ne = sim(fx.fp16, { fallbacks = { f }, compute_units = "CPU_AND_NE" })
      assert.equal("CPU", by_op(ne, "linear_0").device)
      assert.matches("GPU not in CPU_AND_NE", by_op(ne, "linear_0").reason)
    end)
    it("skip a fallback whose when() raises, with a note", function()
      local f = fb { op = "relu", device = "CPU", reason = "x", when = function() error("bad predicate") end }
      local p = sim(fx.fp16, { fallbacks = { f } })
      assert.equal("ANE", by_op(p, "relu_0").device)
      assert.matches("raised: .*bad predicate", p.notes[1])
    end)
    it("the recipe folder moves topk to the CPU from iOS17", function()
      local rules = require "mlsh.engine.rules"
      local res = rules.load_dir((os.getenv("MLSH_HOME") or ".") .. "/recipes/team-fallbacks")
      assert.same({}, res.errors)
      assert.equal(2, #res.fallbacks)
      local p17 = sim(fx.topk_prog, { fallbacks = res.fallbacks, target = 8 })
      local t = by_op(p17, "topk_0")
      assert.equal("CPU", t.device)
      assert.matches("^team fallback", t.reason)
      local p16 = sim(fx.topk_prog, { fallbacks = res.fallbacks })
      assert.is_nil(by_op(p16, "topk_0").reason:match("^team fallback"))
    end)
  end)

  it("honours table overrides made through mlsh.optable", function()
    optable.override("gather", { eligibility = { ANE = { status = "yes", conditions = {} } } })
    local ok, p = pcall(sim, fx.gather_prog)
    optable.reset("gather")
    assert.is_true(ok, tostring(p))
    assert.equal("ANE", by_op(p, "gather_0").device)
  end)

  it("is a model method and serializes to the check JSON shape", function()
    local m = mlsh.load(fx.dilated_prog)
    local p = m:placement({ compute_units = "all", static = true }) -- the first stage (opt-out spelled as static)
    m:close()
    local j = placement.to_json(p)
    assert.equal("ALL", j.compute_units)
    for _, o in ipairs(j.ops) do
      assert.truthy(o.device == "ANE" or o.device == "GPU" or o.device == "CPU")
      assert.is_string(o.reason)
      assert.is_string(o.type)
      assert.equal("main", o["function"])
    end
    assert.same({ "count", "device", "first", "function", "last", "model" },
      (function() local k = {} for x in pairs(j.segments[1]) do k[#k + 1] = x end table.sort(k) return k end)())
    assert.is_true(j.ane_coverage.ops >= 0 and j.ane_coverage.ops <= 1)
    assert.is_true(j.ane_coverage.work >= 0 and j.ane_coverage.work <= 1)
  end)

  it("estimates work from shapes (conv FLOPs dominate elementwise ops)", function()
    local p = sim(fx.undilated_prog)
    local conv, relu = by_op(p, "conv2"), by_op(p, "relu2")
    assert.equal(2 * 8 * 32 * 32 * 8 * 3 * 3, conv.flops)
    assert.equal(8 * 32 * 32, relu.flops)
    assert.equal(2 * (8 * 32 * 32 * 2), relu.bytes)
  end)
end)
