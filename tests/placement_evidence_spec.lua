-- The placement simulator's second stage (mlsh.placement.evidence): per-chip eligibility from the
-- op table's chip column, the device table, the range across chips without --device, state-aware
-- conditions, and per-function plans. The calibration against published MLComputePlan
-- observations lives in placement_observations_spec.lua.
local mlsh = require "mlsh"
local B = require "mlsh.builder"
local F = require "fixtures"
local chips = require "mlsh.chips"
local optable = require "mlsh.optable"
local placement = require "mlsh.placement"

local DIR = F.tmpdir()

local function by_type(p, typ)
  for _, o in ipairs(p.ops) do
    if o.type == typ then return o end
  end
end

local function sim(path, opts)
  local m = mlsh.load(path)
  local p = placement.simulate(m, opts)
  m:close()
  return p
end

-- conv (fp16 kernel width kw) -> sin -> output
local function conv_sin(path, kw)
  local p = B.program { opset = "iOS17", precision = "fp16" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 8, 32, 64 })
  local w = f:const("w", B.random.normal { seed = 1, shape = { 8, 8, 1, kw }, std = 0.1 })
  local y = f:op("conv", { x = x, weight = w, pad_type = "same" })
  f:output("y", f:op("sin", { x = y }))
  return p:save(path)
end

describe("chip families", function()
  it("resolves chips, device names and 'no Neural Engine'", function()
    assert.equal("A15", chips.resolve("A15").family)
    assert.equal("A14", chips.resolve("M2").family)
    assert.equal("A14", chips.resolve("m2 max").family)
    assert.equal("A15", chips.resolve("iPhone14,2").family)
    assert.equal("iPhone14,2", chips.resolve("iPhone14,2").device)
    assert.equal("A16", chips.resolve("A17 Pro").family)
    assert.equal("A16", chips.resolve("M4").family)
    assert.equal("A16", chips.resolve("iPhone16,1").family)
    assert.equal("A13", chips.resolve("M1").family)
    assert.is_false(chips.resolve("intel").ane)
    assert.is_false(chips.resolve("simulator").ane)
    assert.equal("none", chips.resolve("A11").family)
    assert.matches("A13 facts", chips.resolve("A12").note)
    local d, err = chips.resolve("Z80")
    assert.is_nil(d)
    assert.matches("unknown device 'Z80'", err)
  end)

  it("writes family sets as ranges", function()
    assert.equal("A15+", chips.range({ "A15", "A16" }))
    assert.equal("A13-A14", chips.range({ "A14", "A13" }))
    assert.equal("A13", chips.range({ "A13" }))
    assert.equal("A16+", chips.range({ "A16" }))
    assert.equal("A13, A15+", chips.range({ "A13", "A15", "A16" }))
  end)
end)

describe("op table chip column", function()
  it("has a status per family and a source for every listed op", function()
    local fams = optable.chips()
    assert.same({ "A13", "A14", "A15", "A16" }, fams)
    local listed = 0
    for _, name in ipairs(optable.list()) do
      local c = optable.get(name).chips
      for _, f in ipairs(fams) do assert.is_string(c[f], name) end
      if c.A13 ~= "unknown" then
        listed = listed + 1
        assert.matches("ANEForge", c.ref, nil, true)
        assert.equal("community", c.source)
      end
    end
    assert.is_true(listed > 100)
  end)

  it("carries the facts issue 17 lists (ANEForge op catalog)", function()
    local function col(n) local c = optable.get(n).chips return { c.A13, c.A14, c.A15, c.A16 } end
    assert.same({ "walled", "native", "native", "native" }, col("topk"))
    assert.same({ "walled", "native", "native", "native" }, col("argsort"))
    assert.same({ "walled", "walled", "native", "native" }, col("sin"))
    assert.same({ "walled", "walled", "native", "native" }, col("cos"))
    for _, n in ipairs({ "crop_resize", "resample", "affine" }) do
      assert.same({ "walled", "native", "native", "native" }, col(n), n)
    end
    for _, n in ipairs({ "lstm", "gru", "rnn", "mod", "reduce_prod", "logical_and", "logical_or", "logical_xor" }) do
      assert.same({ "walled", "walled", "walled", "walled" }, col(n), n)
    end
    local kw = optable.get("conv").chips.conditions[1]
    assert.equal("max_kernel_width", kw.id)
    assert.same({ A13 = 13, A14 = 13, A15 = 13, A16 = 15 }, kw.values)
    local axis = optable.chip_conditions()[1]
    assert.same({ A13 = 16384, A14 = 16384, A15 = 16384, A16 = 65536 }, axis.values)
  end)
end)

describe("placement per chip", function()
  local path
  setup(function()
    path = conv_sin(DIR .. "/conv15_sin.mlpackage", 15)
  end)

  it("moves ops walled on the given chip off the ANE, with the reason and its source", function()
    local a14 = sim(path, { device = "A14" })
    local m4 = sim(path, { device = "M4" })
    assert.equal("ANE", by_type(m4, "sin").device)
    assert.equal("ANE", by_type(m4, "conv").device)
    assert.are_not.equal("ANE", by_type(a14, "sin").device)
    assert.matches("sin is walled on A14/M2", by_type(a14, "sin").reason)
    assert.matches("ANEForge", by_type(a14, "sin").reason)
    -- kernel width 15: over the fp16 cap of 13 before A16, within 15 from A16
    assert.matches("kernel width 15 > 13 on A14/M2", by_type(a14, "conv").reason)
    assert.equal("chip", by_type(a14, "conv").why)
    local a15 = sim(path, { device = "iPhone14,2" })
    assert.equal("ANE", by_type(a15, "sin").device)
    assert.are_not.equal("ANE", by_type(a15, "conv").device)
    -- input/output casts follow the op they convert for
    assert.equal(by_type(a14, "conv").device, a14.ops[1].device)
  end)

  it("without a device keeps the first stage and reports the range across chips", function()
    local p = sim(path)
    assert.equal("ANE", by_type(p, "sin").device)
    local texts = {}
    for _, r in ipairs(p.chip_range) do texts[r.type] = r.text end
    assert.equal("ANE on A15+, CPU on A13-A14", texts.sin)
    assert.equal("ANE on A16+, GPU on A13-A15", texts.conv)
    local joined = table.concat(p.notes, "\n")
    assert.matches("ANE on A15%+, CPU on A13%-A14: sin %(1 op%)", joined)
    local j = placement.to_json(p)
    assert.equal(2, #j.chip_range)
    assert.is_nil(j.device)
  end)

  it("has no Neural Engine on Intel Macs and simulators", function()
    local p = sim(path, { device = "intel" })
    for _, o in ipairs(p.ops) do assert.are_not.equal("ANE", o.device) end
    assert.matches("no Neural Engine on intel", by_type(p, "conv").reason)
    assert.is_false(placement.to_json(p).device.neural_engine)
  end)

  it("refuses an unknown device", function()
    assert.has_error(function() sim(path, { device = "Z80" }) end)
  end)

  it("mlsh check --device A14 and --device M4 differ, with the reason and its source", function()
    local function run(args)
      local out = F.run("check --format json " .. args .. " " .. F.q(path))
      return require("mlsh.json").decode(out)
    end
    local a, b = run("--device A14"), run("--device M4")
    local function dev(doc, typ)
      for _, o in ipairs(doc.placement.ops) do if o.type == typ then return o end end
    end
    assert.equal("ANE", dev(b, "sin").device)
    assert.are_not.equal("ANE", dev(a, "sin").device)
    assert.matches("ANEForge", dev(a, "sin").reason)
    assert.equal("A14", a.placement.device.family)
    local _, err, code = F.run("check --device Z80 " .. F.q(path))
    assert.equal(2, code)
    assert.matches("unknown device 'Z80'", err)
  end)
end)

describe("state-aware conditions", function()
  local function stateful(path, width)
    local p = B.program { opset = "iOS18", precision = "fp16" }
    local f = p:func("main")
    local x = f:input("x", "fp16", { 1, width })
    local s = f:state("acc", "fp16", { 1, width })
    local r = f:op("read_state", { input = s })
    local y = f:op("add", { x = x, y = r })
    f:update_state(s, y)
    f:output("y", y, { dtype = "fp16" })
    return p:save(path)
  end

  it("keeps state ops off the ANE when the state's last dim is not a multiple of 32 (coremltools#2631)", function()
    local bad = sim(stateful(DIR .. "/state270.mlpackage", 270))
    local good = sim(stateful(DIR .. "/state256.mlpackage", 256))
    local r = by_type(bad, "read_state")
    assert.are_not.equal("ANE", r.device)
    assert.matches("coremltools#2631", r.reason)
    assert.equal("ANE", by_type(good, "read_state").device)
  end)
end)

describe("per-function plans", function()
  it("plans every function of a multifunction model", function()
    local p = B.program { opset = "iOS18", precision = "fp16" }
    for _, name in ipairs({ "main", "trig" }) do
      local f = p:func(name)
      local x = f:input("x", "fp16", { 1, 64 })
      local y = name == "trig" and f:op("sin", { x = x }) or f:op("relu", { x = x })
      f:output("y", y, { dtype = "fp16" })
    end
    local path = p:save(DIR .. "/multi.mlpackage")
    local r = sim(path, { device = "A14" })
    local fns = require("mlsh.placement.evidence").functions(r)
    assert.equal(2, #fns)
    local by = {}
    for _, f in ipairs(fns) do by[f.name] = f end
    assert.equal(1, by.main.ANE)
    assert.equal(0, by.trig.ANE)
    local j = placement.to_json(r)
    assert.equal(2, #j.functions)
    assert.matches("function trig: ANE 0", table.concat(r.notes, "\n"))
  end)
end)
