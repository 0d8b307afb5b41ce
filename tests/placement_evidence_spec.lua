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

-- The calibrated stage is the library's default; F.simulate opts out of it explicitly unless a test
-- says calibrated = true (the chip column and state conditions are tested on tiny fixtures).
local sim = F.simulate

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

  it("moves ops walled on every chip off the ANE even without a device", function()
    local p = B.program { opset = "iOS17", precision = "fp16" }
    local f = p:func("main")
    local y = f:op("relu", { x = f:input("x", "fp32", { 1, 64 }) })
    y = f:op("band_part", { x = y, lower = 0, upper = 0 }, { dtype = "fp16", shape = { 1, 64 } })
    f:output("y", f:op("relu", { x = y }))
    local r = sim(p:save(DIR .. "/band.mlpackage"))
    local o = by_type(r, "band_part")
    assert.are_not.equal("ANE", o.device)
    assert.equal("walled", o.why)
    assert.matches("not ANE on any chip: band_part is unsupported on every generation", o.reason)
    assert.matches("no Neural Engine generation runs this op", r.cut_makers[1].fix)
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
    local function run(args) -- a tiny model: the chip column alone (--static; calibration would move it all to the CPU)
      local out = F.run("check --static --format json " .. args .. " " .. F.q(path))
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

-- conv on a normal tensor -> sin, and a conv whose last axis is 20000 (over the 16384 cap of
-- A13-A15, within the 65536 of A16+): both are heavy enough that calibration keeps them.
local function sin_and_wide(path)
  local p = B.program { opset = "iOS17", precision = "fp16" }
  local f = p:func("main")
  local x = f:input("x", "fp16", { 1, 64, 128, 128 })
  local w = f:const("w", B.random.normal { seed = 2, shape = { 64, 64, 3, 3 }, std = 0.05 })
  f:output("s", f:op("sin", { x = f:op("conv", { x = x, weight = w, pad_type = "same" }) }), { dtype = "fp16" })
  local x2 = f:input("wide", "fp16", { 1, 64, 8, 20000 })
  local w2 = f:const("w2", B.random.normal { seed = 3, shape = { 64, 64, 3, 3 }, std = 0.05 })
  f:output("c", f:op("relu", { x = f:op("conv", { x = x2, weight = w2, pad_type = "same" }) }), { dtype = "fp16" })
  return p:save(path)
end

describe("placement per chip: the add direction (a newer family takes an op the first stage kept off)", function()
  local path
  setup(function() path = sin_and_wide(DIR .. "/sin_wide.mlpackage") end)

  local function ops_of(p, typ)
    local out = {}
    for _, o in ipairs(p.ops) do if o.type == typ then out[#out + 1] = o end end
    return out
  end

  it("an axis of 20000 leaves the ANE through A15 and reaches it from A16 (ANEForge capabilities.md)", function()
    for _, calibrated in ipairs({ false, true }) do
      local a14 = sim(path, { device = "A14", calibrated = calibrated })
      local m4 = sim(path, { device = "M4", calibrated = calibrated })
      local wide14, wide4 = ops_of(a14, "conv")[2], ops_of(m4, "conv")[2]
      assert.are_not.equal("ANE", wide14.device)
      assert.equal("ANE", wide4.device)
      assert.equal("chip_add", wide4.why)
      assert.matches("a dimension of 20000 is within the A16%+ extent cap of 65536", wide4.reason)
      assert.matches("ANEForge docs/capabilities.md", wide4.reason, nil, true)
      -- and the other direction: sin leaves the ANE on A14, stays on it on M4
      assert.are_not.equal("ANE", ops_of(a14, "sin")[1].device)
      assert.equal("ANE", ops_of(m4, "sin")[1].device)
      assert.equal("ANE", ops_of(a14, "conv")[1].device)
    end
    assert.are_not.equal("ANE", ops_of(sim(path, { device = "A15", calibrated = false }), "conv")[2].device)
  end)

  it("without a device keeps the first stage and gives both ranges", function()
    local p = sim(path, { calibrated = false })
    assert.are_not.equal("ANE", ops_of(p, "conv")[2].device)
    local texts = {}
    for _, r in ipairs(p.chip_range) do texts[#texts + 1] = r.type .. ": " .. r.text .. " [" .. r.source .. "]" end
    local joined = table.concat(texts, "\n")
    assert.matches("sin: ANE on A15%+, CPU on A13%-A14 %[sbryngelson/ANEForge docs/op%-catalog.md", joined)
    assert.matches("conv: ANE on A16%+, %u+ on A13%-A15 %[sbryngelson/ANEForge docs/capabilities.md", joined)
    assert.matches("relu: ANE on A16%+, %u+ on A13%-A15", joined)
  end)

  it("mlsh check --device A14 and --device M4 differ in both directions", function()
    local function run(args)
      return require("mlsh.json").decode((F.run("check --format json " .. args .. " " .. F.q(path))))
    end
    local a, b = run("--device A14"), run("--device M4")
    local function devices(doc)
      local out = {}
      for _, o in ipairs(doc.placement.ops) do out[#out + 1] = o.type .. "=" .. o.device end
      return table.concat(out, " ")
    end
    assert.matches("sin=CPU", devices(a))
    assert.matches("sin=ANE", devices(b))
    local wide_a, wide_b
    for _, o in ipairs(a.placement.ops) do if o.type == "relu" then wide_a = o end end
    for _, o in ipairs(b.placement.ops) do if o.type == "relu" then wide_b = o end end
    assert.are_not.equal("ANE", wide_a.device)
    assert.equal("ANE", wide_b.device)
    assert.matches("ANEForge", wide_b.reason)
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
    assert.matches("function main %(default", table.concat(r.notes, "\n"))
    assert.is_true(by.main.default)
    assert.is_false(by.trig.default)
    -- calibration runs per function: the tiny rule judges each function on its own
    local c = sim(path, { calibrated = true, device = "M4" })
    local fired = {}
    for _, x in ipairs(c.calibration) do fired[x["function"]] = x.rule end
    assert.equal("tiny", fired.main)
    assert.equal("tiny", fired.trig)
  end)
end)

-- ---- published MLComputePlan observations ---------------------------------------------------------
-- Each observation builds the model its source describes, runs the calibrated simulator and compares
-- mlsh's prediction with what the source measured. docs/placement.md's observation table is written
-- from these rows (MLSH_UPDATE_DOCS=1 rewrites it; otherwise the test fails when it is stale). A row
-- marked `disagrees` pins a known disagreement: mlsh's prediction differs from the source's and the
-- table says so; if mlsh starts to agree, the test fails so the table is updated, never the other way.

local function fp16_matmul(dir, n, name)
  local p = B.program { opset = "iOS17", precision = "fp16" }
  local f = p:func("main")
  local a, b = f:input("a", "fp32", { n, n }), f:input("b", "fp32", { n, n })
  f:output("c", f:op("matmul", { x = a, y = b }))
  return p:save(dir .. "/" .. name .. ".mlpackage")
end

local function sdpa_model(dir, name, shape, precision, count)
  local p = B.program { opset = "iOS18", precision = precision }
  local f = p:func("main")
  local io = precision == "fp16" and "fp16" or "fp32"
  local q = f:input("q", io, shape)
  local k, v = f:input("k", io, shape), f:input("v", io, shape)
  local y = q
  for _ = 1, count do y = f:op("scaled_dot_product_attention", { query = y, key = k, value = v }) end
  f:output("y", y, { dtype = io })
  return p:save(dir .. "/" .. name .. ".mlpackage")
end

local function decode_linear(dir, name, k)
  local p = B.program { opset = "iOS17", precision = "fp16" }
  local f = p:func("main")
  local x = f:input("x", "fp16", { 1, k })
  local w = f:const("w", B.random.normal { seed = 3, shape = { 64, k }, std = 0.02 })
  f:output("y", f:op("linear", { x = x, weight = w }), { dtype = "fp16" })
  return p:save(dir .. "/" .. name .. ".mlpackage")
end

-- conv backbone, then topk and the expand_dims/tile/gather_along_axis that consume its indices
local function detector(dir)
  local p = B.program { opset = "iOS17", precision = "fp16" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 64, 64, 64 })
  local w = f:const("w", B.random.normal { seed = 5, shape = { 64, 64, 3, 3 }, std = 0.05 })
  local y = f:op("conv", { x = x, weight = w, pad_type = "same" })
  local feat = f:op("reshape", { x = y, shape = { 1, 1, 64, 4096 } })
  local feat2 = f:op("tile", { x = feat, reps = { 1, 2, 1, 1 } })
  local vals, idx = f:op("topk", { x = f:op("reshape", { x = y, shape = { 1, 64, 4096 } }), k = 100, axis = -1 })
  local e = f:op("expand_dims", { x = idx, axes = { 1 } })
  local t = f:op("tile", { x = e, reps = { 1, 2, 1, 1 } })
  f:output("scores", vals)
  f:output("boxes", f:op("gather_along_axis", { x = feat2, indices = t, axis = -1 }))
  return p:save(dir .. "/detector.mlpackage")
end

-- embedding gather, cast, reshape and a linear, the op mix of an ExecuTorch LLM partition
local function llm_slice(dir)
  local p = B.program { opset = "iOS18", precision = "fp16" }
  local f = p:func("main")
  local ids = f:input("ids", "int32", { 1, 512 })
  local table_ = f:const("emb", B.random.normal { seed = 7, shape = { 512, 256 }, std = 0.02 })
  local h = f:op("gather", { x = table_, indices = ids, axis = 0 })
  h = f:op("reshape", { x = h, shape = { 512, 256 } })
  for i = 1, 4 do
    local w = f:const("w" .. i, B.random.normal { seed = 10 + i, shape = { 256, 256 }, std = 0.02 })
    h = f:op("linear", { x = h, weight = w })
  end
  f:output("h", h)
  return p:save(dir .. "/llm_slice.mlpackage")
end

-- image preprocessing (scale/bias) in front of a conv stack, as in MobilenetEdgeTPU
local function edgetpu_like(dir)
  local p = B.program { opset = "iOS17", precision = "fp16" }
  local f = p:func("main")
  local x = f:input("image", "image", { width = 224, height = 224, color = "RGB", scale = 1 / 127.5, bias = -1 })
  local w1 = f:const("w1", B.random.normal { seed = 21, shape = { 32, 3, 3, 3 }, std = 0.1 })
  local y = f:op("relu", { x = f:op("conv", { x = x, weight = w1, strides = { 2, 2 }, pad_type = "same" }) })
  local w2 = f:const("w2", B.random.normal { seed = 22, shape = { 64, 32, 3, 3 }, std = 0.05 })
  y = f:op("relu", { x = f:op("conv", { x = y, weight = w2, pad_type = "same" }) })
  f:output("features", y)
  return p:save(dir .. "/edgetpu_like.mlpackage")
end

local function all_on(p)
  local seen = {}
  for _, o in ipairs(p.ops) do seen[o.device] = true end
  local list = {}
  for _, d in ipairs({ "ANE", "GPU", "CPU" }) do if seen[d] then list[#list + 1] = d end end
  return "every op on " .. table.concat(list, "+")
end

-- A vocoder-like conv stack in the ANE layout (B, C, 1, S), fp16, static shapes: upsampling by
-- conv_transpose and residual conv + leaky_relu blocks (FluidInference/FluidAudio#887: convolutions
-- with static shapes and channels-first activations stay on the ANE; Kokoro's vocoder 99%, WeSpeaker 93%)
local function conv_vocoder(dir)
  local p = B.program { opset = "iOS17", precision = "fp16" }
  local f = p:func("main")
  local x = f:input("mel", "fp16", { 1, 128, 1, 200 })
  local seed = 40
  local function w(shape)
    seed = seed + 1
    return f:const("w" .. seed, B.random.normal { seed = seed, shape = shape, std = 0.02 })
  end
  local h = f:op("conv", { x = x, weight = w({ 256, 128, 1, 7 }), pad_type = "same" })
  local c, len = 256, 200
  for _ = 1, 2 do
    len = (len - 1) * 2 + 4 -- valid conv_transpose, stride 2, kernel 4
    h = f:op("conv_transpose", { x = f:op("leaky_relu", { x = h, alpha = 0.1 }), weight = w({ c, c // 2, 1, 4 }),
      strides = { 1, 2 }, pad_type = "valid" }, { dtype = "fp16", shape = { 1, c // 2, 1, len } })
    c = c // 2
    for _ = 1, 2 do
      local r = f:op("conv", { x = f:op("leaky_relu", { x = h, alpha = 0.1 }), weight = w({ c, c, 1, 3 }), pad_type = "same" })
      h = f:op("add", { x = h, y = r })
    end
  end
  f:output("audio", f:op("tanh", { x = f:op("conv", { x = h, weight = w({ 1, c, 1, 7 }), pad_type = "same" }) }),
    { dtype = "fp16" })
  return p:save(dir .. "/conv_vocoder.mlpackage")
end

local function ane_share(p)
  local n, ane = 0, 0
  for _, o in ipairs(p.ops) do
    n = n + 1
    if o.device == "ANE" then ane = ane + 1 end
  end
  local share = n > 0 and ane / n or 0
  return share >= 0.93 and ">= 93% of ops on the ANE" or string.format("%.0f%% of ops on the ANE", 100 * share)
end

local function off_ane(p)
  local set, list = {}, {}
  for _, o in ipairs(p.ops) do
    if o.device ~= "ANE" and not (o.node and o.node.io_cast) and not set[o.type] then
      set[o.type] = true
      list[#list + 1] = o.type
    end
  end
  table.sort(list)
  return #list == 0 and "nothing off the ANE" or ("off the ANE: " .. table.concat(list, ", "))
end

local function device_of(typ)
  return function(p) return typ .. " on " .. by_type(p, typ).device end
end

local OBSERVATIONS = {
  { id = "vx-4x4", source = "vx-lang/Vx#436",
    observation = "4x4 matmul (fp16 program, fp32 I/O): every op incl. the casts on the CPU, ALL and CPU_AND_NE",
    build = function(d) return fp16_matmul(d, 4, "mm4") end, opts = { device = "M4" },
    expect = "every op on CPU", predict = all_on },
  { id = "vx-affine", source = "vx-lang/Vx#436",
    observation = "a tiny affine model runs entirely on the CPU",
    build = function(d)
      local p = B.program { opset = "iOS17", precision = "fp16" }
      local f = p:func("main")
      local x = f:input("x", "fp32", { 1, 4 })
      local w = f:const("w", B.random.normal { seed = 2, shape = { 4, 4 } })
      f:output("y", f:op("linear", { x = x, weight = w, bias = f:const("b", B.random.normal { seed = 4, shape = { 4 } }) }))
      return p:save(d .. "/affine.mlpackage")
    end, opts = { device = "M4" }, expect = "every op on CPU", predict = all_on },
  { id = "vx-384", source = "vx-lang/Vx#435",
    observation = "fp16 matmul 384x384 and below: the CPU",
    build = function(d) return fp16_matmul(d, 384, "mm384") end, opts = { device = "M4" },
    expect = "every op on CPU", predict = all_on },
  { id = "vx-512", source = "vx-lang/Vx#435",
    observation = "fp16 matmul 512x512: matmul and its casts on the Neural Engine",
    build = function(d) return fp16_matmul(d, 512, "mm512") end, opts = { device = "M4" },
    expect = "every op on ANE", predict = all_on },
  { id = "vx-sdpa-2m", source = "vx-lang/Vx#437",
    observation = "fp16 SDPA 1x16x2048x64 (2,097,152 elements per Q/K/V): the Neural Engine",
    build = function(d) return sdpa_model(d, "sdpa2m", { 1, 16, 2048, 64 }, "fp16", 1) end,
    expect = "scaled_dot_product_attention on ANE", predict = device_of("scaled_dot_product_attention") },
  { id = "vx-sdpa-1m", source = "vx-lang/Vx#437",
    observation = "fp16 SDPA 1x16x1024x64 (1,048,576 elements): the CPU",
    build = function(d) return sdpa_model(d, "sdpa1m", { 1, 16, 1024, 64 }, "fp16", 1) end,
    expect = "scaled_dot_product_attention on CPU", predict = device_of("scaled_dot_product_attention") },
  { id = "vx-sdpa-fp32", source = "vx-lang/Vx#437",
    observation = "fp32 SDPA 1x32x1024x128: the CPU (no fp32 attention on the Neural Engine)",
    build = function(d) return sdpa_model(d, "sdpa32", { 1, 32, 1024, 128 }, "fp32", 1) end,
    expect = "scaled_dot_product_attention on CPU", predict = device_of("scaled_dot_product_attention") },
  { id = "two-sdpa", source = "kasper0406/stablehlo-coreml#89",
    observation = "two large SDPAs in one function: ANE compile fails, the model silently runs on the CPU",
    build = function(d) return sdpa_model(d, "sdpa_x2", { 1, 16, 2048, 64 }, "fp16", 2) end,
    opts = { compute_units = "CPU_AND_NE" }, expect = "every op on CPU", predict = all_on },
  { id = "larql-8192", source = "chrishayuk/larql#312",
    observation = "decode-shaped fp16 projection, reduction depth k = 8192 (in 4992..16384): the Neural Engine",
    build = function(d) return decode_linear(d, "dec8192", 8192) end,
    expect = "linear on ANE", predict = device_of("linear") },
  { id = "larql-4096", source = "chrishayuk/larql#312",
    observation = "decode-shaped fp16 projection, k = 4096 (below ~4992): not preferred on the Neural Engine",
    build = function(d) return decode_linear(d, "dec4096", 4096) end,
    expect = "linear on CPU", predict = device_of("linear") },
  { id = "rf-detr", source = "roboflow/rf-detr#1495",
    observation = "detector, CPU_AND_NE, M3 Pro: only topk and the expand_dims/tile/gather_along_axis on its indices leave the ANE",
    build = detector, opts = { compute_units = "CPU_AND_NE", device = "M3" },
    expect = "off the ANE: expand_dims, gather_along_axis, tile, topk", predict = off_ane,
    check = function(p)
      local tiles = {}
      for _, o in ipairs(p.ops) do if o.type == "tile" then tiles[#tiles + 1] = o.device end end
      return table.concat(tiles, ",") == "ANE,CPU" -- the feature tile stays, the index tile leaves
    end },
  { id = "executorch", source = "pytorch/executorch#19252",
    observation = "412/480 ops on the ANE; cast, gather, reshape and constexpr_blockwise_shift_scale off it",
    build = llm_slice, opts = { compute_units = "CPU_AND_NE" },
    expect = "off the ANE: cast, constexpr_blockwise_shift_scale, gather, reshape", predict = off_ane,
    disagrees = "agrees on gather and on the reshape fed by it; mlsh never places constexpr_* ops (it treats them as "
      .. "materialised at load) and has no rule sending casts off the ANE; the slice cannot carry blockwise weights "
      .. "(mlsh.builder does not write constexpr_blockwise_shift_scale)" },
  { id = "edgetpu", source = "freedomtan/coreml_modelc_profling (README)",
    observation = "MobilenetEdgeTPU: the input mul/add/cast on the CPU, conv/relu on the ANE",
    build = edgetpu_like, expect = "off the ANE: add, cast, mul", predict = off_ane },
  { id = "fluidaudio", source = "FluidInference/FluidAudio#887",
    observation = "conv audio models with static shapes and channels-first activations: 99% (Kokoro vocoder) and "
      .. "93% (WeSpeaker) of ops on the ANE; built: a vocoder-like conv_transpose/conv stack",
    build = conv_vocoder, expect = ">= 93% of ops on the ANE", predict = ane_share },
}

local function render(rows)
  local out = { "| observation | source | source's prediction | mlsh predicts | agreement |", "|---|---|---|---|---|" }
  for _, r in ipairs(rows) do
    out[#out + 1] = string.format("| %s | %s | %s | %s | %s |", r.observation, r.source, r.expect, r.got, r.agreement)
  end
  return table.concat(out, "\n") .. "\n"
end

describe("published observations (calibrated placement)", function()
  local rows = {}
  local dir = F.tmpdir()
  for _, obs in ipairs(OBSERVATIONS) do
    it(obs.id .. " [" .. obs.source .. "]", function()
      local row = { observation = obs.observation, source = obs.source, expect = obs.expect }
      rows[#rows + 1] = row
      if obs.not_built then
        row.got, row.agreement = "-", "not tested: " .. obs.not_built
        return
      end
      local opts = { calibrated = true }
      for k, v in pairs(obs.opts or {}) do opts[k] = v end
      local p = sim(obs.build(dir), opts)
      row.got = obs.predict(p)
      local agree = row.got == obs.expect and (not obs.check or obs.check(p))
      if obs.disagrees then
        row.agreement = "**disagrees**: " .. obs.disagrees
        assert.is_false(agree, obs.id .. " now agrees: update the observation table")
      else
        row.agreement = "agrees"
        assert.equal(obs.expect, row.got)
        if obs.check then assert.is_true(obs.check(p)) end
      end
    end)
  end

  it("docs/placement.md's observation table is generated from these rows", function()
    local home = os.getenv("MLSH_HOME") or "."
    local path = home .. "/docs/placement.md"
    local doc = assert(F.read(path))
    local b, e = "<!-- observations:begin (generated by tests/placement_evidence_spec.lua) -->\n", "<!-- observations:end -->"
    local i, j = doc:find(b, 1, true)
    local k = doc:find(e, 1, true)
    assert.is_truthy(i and k, "docs/placement.md lacks the observation markers")
    local want = render(rows)
    if os.getenv("MLSH_UPDATE_DOCS") == "1" then
      F.write(path, doc:sub(1, j) .. want .. doc:sub(k))
      doc = assert(F.read(path))
      i, j = doc:find(b, 1, true)
      k = doc:find(e, 1, true)
    end
    assert.equal(want, doc:sub(j + 1, k - 1), "stale table: run the spec with MLSH_UPDATE_DOCS=1")
  end)
end)

describe("calibration rules without a published observation", function()
  local dir = F.tmpdir()

  it("switch cost: a short, light ANE run between CPU ops joins them", function()
    local p = B.program { opset = "iOS17", precision = "fp16" }
    local f = p:func("main")
    local x = f:input("x", "fp32", { 1, 64, 64, 64 })
    local w = f:const("w", B.random.normal { seed = 5, shape = { 64, 64, 3, 3 }, std = 0.05 })
    local y = f:op("conv", { x = x, weight = w, pad_type = "same" })
    local v = f:op("topk", { x = f:op("reshape", { x = y, shape = { 1, 64, 4096 } }), k = 100, axis = -1 })
    local s = f:op("add", { x = v, y = v })
    local v2 = f:op("topk", { x = s, k = 10, axis = -1 })
    f:output("y", v2)
    local path = p:save(dir .. "/switch.mlpackage")
    local first = sim(path, { compute_units = "CPU_AND_NE" })
    assert.equal("ANE", by_type(first, "add").device)
    local cal = sim(path, { compute_units = "CPU_AND_NE", calibrated = true })
    local add = by_type(cal, "add")
    assert.equal("CPU", add.device)
    assert.matches("costs two switches", add.reason)
    assert.equal("ANE", by_type(cal, "conv").device)
    local rules_fired = {}
    for _, c in ipairs(cal.calibration) do rules_fired[c.rule] = true end
    assert.is_true(rules_fired["switch-cost"])
    assert.is_true(#cal.transitions < #first.transitions)
  end)

  it("tiny: fires only when the work is known (not on range shapes, whose FLOPs are a guess)", function()
    local function small(name, decl)
      local p = B.program { opset = "iOS17", precision = "fp16" }
      local f = p:func("main")
      f:output("y", f:op("relu", { x = f:input("x", "fp16", decl) }), { dtype = "fp16" })
      local r = sim(p:save(dir .. "/" .. name .. ".mlpackage"), { calibrated = true })
      local rules_fired = {}
      for _, c in ipairs(r.calibration) do rules_fired[c.rule] = true end
      return rules_fired, by_type(r, "relu").device
    end
    local fired_static, dev_static = small("tiny_static", { 1, 64 })
    assert.is_true(fired_static.tiny)
    assert.equal("CPU", dev_static)
    local fired_range = small("tiny_range", { range = { { 1, 1 }, { 1, 64 } }, default = { 1, 64 } })
    assert.is_nil(fired_range.tiny)
  end)

  it("reduction depth: a light classifier head between ANE ops stays there (switch cost), a trailing one leaves", function()
    local function head(name, softmax)
      local p = B.program { opset = "iOS17", precision = "fp16" }
      local f = p:func("main")
      local x = f:input("x", "fp16", { 1, 64, 64, 64 })
      local w = f:const("w", B.random.normal { seed = 8, shape = { 64, 64, 3, 3 }, std = 0.05 })
      local y = f:op("relu", { x = f:op("conv", { x = x, weight = w, pad_type = "same" }) })
      y = f:op("reshape", { x = f:op("reduce_mean", { x = y, axes = { 2, 3 }, keep_dims = true }), shape = { 1, 64 } })
      local fc = f:const("fc", B.random.normal { seed = 9, shape = { 10, 64 }, std = 0.05 })
      y = f:op("linear", { x = y, weight = fc })
      if softmax then y = f:op("softmax", { x = y, axis = -1 }) end
      f:output("y", y, { dtype = "fp16" })
      return sim(p:save(dir .. "/" .. name .. ".mlpackage"), { calibrated = true })
    end
    local kept = by_type(head("head_softmax", true), "linear")
    assert.equal("ANE", kept.device)
    assert.matches("not worth two switches", kept.reason)
    local last = by_type(head("head_last", false), "linear")
    assert.equal("CPU", last.device)
    assert.matches("reduction depth 64 outside", last.reason)
  end)

  it("mlsh check calibrates by default and lists the rules that fired, with their sources; --static opts out", function()
    local path = fp16_matmul(dir, 4, "cli_mm4")
    local J = require "mlsh.json"
    for _, args in ipairs({ "", "--calibrated " }) do
      local out, err, code = F.run("check " .. args .. "--format json " .. F.q(path))
      assert.truthy(code == 0 or code == 1, err)
      local doc = J.decode(out)
      assert.equal("reduction-depth", doc.placement.calibration[1].rule)
      assert.equal("chrishayuk/larql#312", doc.placement.calibration[1].source)
      for _, o in ipairs(doc.placement.ops) do assert.equal("CPU", o.device) end
    end
    for _, flag in ipairs({ "--static", "--no-calibrated" }) do
      local plain = J.decode((F.run("check " .. flag .. " --format json " .. F.q(path))))
      assert.is_nil(plain.placement.calibration)
      local on_ane = 0
      for _, o in ipairs(plain.placement.ops) do if o.device == "ANE" then on_ane = on_ane + 1 end end
      assert.is_true(on_ane > 0, flag .. ": the first stage puts the fp16 matmul on the ANE")
    end
    assert.matches("calibrated %(tiny, function main%)", (F.run("check " .. F.q(path))))
    assert.not_matches("calibrated %(", (F.run("check --static " .. F.q(path))))
  end)

  it("is the library's default too: m:placement() calibrates; {calibrated = false} / {static = true} opt out", function()
    local path = fp16_matmul(dir, 4, "lib_mm4")
    local m = mlsh.load(path)
    local default, off, static = m:placement(), m:placement({ calibrated = false }), m:placement({ static = true })
    m:close()
    assert.equal("reduction-depth", default.calibration[1].rule) -- Vx#436: a 4x4 matmul runs on the CPU
    for _, o in ipairs(default.ops) do assert.equal("CPU", o.device) end
    for _, p in ipairs({ off, static }) do
      assert.is_nil(p.calibration)
      local on_ane = 0
      for _, o in ipairs(p.ops) do if o.device == "ANE" then on_ane = on_ane + 1 end end
      assert.is_true(on_ane > 0, "the first stage puts the fp16 matmul on the ANE")
    end
  end)

  it("plans the functions of a multifunction model separately", function()
    local p = B.program { opset = "iOS18", precision = "fp16" }
    local f = p:func("main")
    local a, b = f:input("a", "fp16", { 512, 512 }), f:input("b", "fp16", { 512, 512 })
    f:output("c", f:op("matmul", { x = a, y = b }), { dtype = "fp16" })
    local g = p:func("attn")
    local shape = { 1, 16, 2048, 64 }
    local q, k, v = g:input("q", "fp16", shape), g:input("k", "fp16", shape), g:input("v", "fp16", shape)
    local y = g:op("scaled_dot_product_attention", { query = q, key = k, value = v })
    y = g:op("scaled_dot_product_attention", { query = y, key = k, value = v })
    g:output("y", y, { dtype = "fp16" })
    local r = sim(p:save(dir .. "/two_functions.mlpackage"), { calibrated = true })
    local by = {}
    for _, fn in ipairs(require("mlsh.placement.evidence").functions(r)) do by[fn.name] = fn end
    assert.equal(1, by.main.ANE)
    assert.equal(0, by.attn.ANE)
    assert.equal("two-large-sdpa", r.calibration[1].rule)
    assert.equal("attn", r.calibration[1]["function"])
  end)
end)

describe("reduction depth with int8 weights (chrishayuk/larql#312: preferred from ~4096 int8, ~4992 fp16)", function()
  it("keeps a k = 4500 decode projection on the ANE with int8 weights and not with fp16 ones", function()
    local R = require "rule_fixtures"
    local dir = F.tmpdir()
    local K = 4500
    local function model(name, weight_ops)
      local ops = {}
      for _, o in ipairs(weight_ops) do ops[#ops + 1] = o end
      ops[#ops + 1] = { type = "linear", name = "linear_0", inputs = { x = "x", weight = "W" }, out = { "y", "fp16", { 1, 64 } } }
      return F.write_package(dir .. "/" .. name .. ".mlpackage", R.program({ spec = 7, opset = "CoreML6",
        inputs = { { name = "x", dtype = "fp16", shape = { 1, K } } },
        outputs = { { name = "y", dtype = "fp16", shape = { 1, 64 } } }, ops = ops }), nil)
    end
    local int8 = model("dec_int8", { { type = "constexpr_affine_dequantize", name = "W_q",
      attrs = { quantized_data = R.blob("int8", { 64, K }, 64), zero_point = R.value("int8", {}, 0),
                scale = R.value("fp16", {}, 0.01), axis = R.value("int32", {}, 0) }, out = { "W", "fp16", { 64, K } } } })
    local fp16 = model("dec_fp16", { R.const("W", R.blob("fp16", { 64, K }, 64), "fp16", { 64, K }) })
    assert.equal("ANE", by_type(sim(int8, { calibrated = true }), "linear").device)
    local o = by_type(sim(fp16, { calibrated = true }), "linear")
    assert.equal("CPU", o.device)
    assert.matches("reduction depth 4500 outside 4992%.%.16384", o.reason)
  end)
end)
