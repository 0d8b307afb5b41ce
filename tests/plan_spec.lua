-- mlsh plan: the compute-plan JSON validates against docs/plan.schema.json (checked with the
-- test-support validator, which is itself tested to reject bad documents), weights sum to 1 per
-- function, every function of a multi-function model is present, devices follow what each built
-- variant must give (fp16 ops on the ANE, fp32 ops never, compute units respected), and errors.
local json = require "mlsh.json"
local F = require "fixtures"
local B = require "mlsh.builder"
local schema_v = require "json_schema"

local HOME = os.getenv("MLSH_HOME") or "."
local dir, fp16, fp32, multi, schema

local function build(path, precision, functions)
  local L = B.layers
  local p = B.program { opset = functions and "iOS18" or "iOS16", precision = precision, seed = 5 }
  for _, fname in ipairs(functions or { "main" }) do
    local f = p:func(fname)
    local x = f:input("x", "fp32", { 1, 32 })
    local y = L.linear(f, x, { name = fname .. "_fc1", out = 64 })
    y = L.relu(f, y)
    y = L.linear(f, y, { name = fname .. "_fc2", out = 8 })
    f:output("y", y)
  end
  p:save(path)
  return path
end

local function plan(args)
  local out, err, code = F.run("plan --json " .. args)
  assert(code == 0, err)
  return json.decode(out), out
end

describe("mlsh plan", function()
  setup(function()
    dir = F.tmpdir()
    fp16 = build(dir .. "/fp16.mlpackage", "fp16")
    fp32 = build(dir .. "/fp32.mlpackage", "fp32")
    multi = build(dir .. "/multi.mlpackage", "fp16", { "first", "second" })
    schema = json.decode(F.read(HOME .. "/docs/plan.schema.json"))
  end)
  teardown(function() require("mlsh.core").fs.remove_tree(dir) end)

  describe("the schema validator (test support)", function()
    it("rejects documents that break the schema", function()
      local good = plan(F.q(fp16))
      assert.is_true((schema_v.validate(schema, good)))
      local bad = json.decode(json.encode(good))
      local op = bad.functions.main.operations[1]
      op.preferred_compute_device = "TPU"
      op.estimated_cost.weight = 1.5
      op.extra = true
      bad.functions.main.operations[2].reasons = nil
      local ok, errs = schema_v.validate(schema, bad)
      assert.is_false(ok)
      local text = table.concat(errs, "\n")
      assert.matches('"TPU" not in', text)
      assert.matches("> maximum 1", text)
      assert.matches("unexpected key 'extra'", text)
      assert.matches("missing required key 'reasons'", text)
    end)
  end)

  for _, case in ipairs({ { "fp16", function() return fp16 end }, { "fp32", function() return fp32 end },
                          { "two-function", function() return multi end } }) do
    it("validates against docs/plan.schema.json (" .. case[1] .. ")", function()
      local p = plan(F.q(case[2]()))
      local ok, errs = schema_v.validate(schema, p)
      assert.is_true(ok, table.concat(errs, "\n"))
    end)
  end

  it("covers every function, each with weights summing to 1", function()
    local p = plan(F.q(multi))
    local names = {}
    for name, f in pairs(p.functions) do
      names[#names + 1] = name
      local sum = 0
      for _, op in ipairs(f.operations) do sum = sum + op.estimated_cost.weight end
      assert.near(1, sum, 1e-9)
    end
    table.sort(names)
    assert.same({ "first", "second" }, names)
  end)

  it("puts the fp16 build on the ANE and keeps the fp32 build off it (first stage)", function()
    local a, b = plan("--static " .. F.q(fp16)), plan("--static " .. F.q(fp32)) -- tiny: the static rules alone
    for _, op in ipairs(a.functions.main.operations) do
      if op.operator_name ~= "cast" then
        assert.equal("ANE", op.preferred_compute_device)
        assert.same({ "ANE", "GPU", "CPU" }, op.supported_compute_devices)
      end
    end
    for _, op in ipairs(b.functions.main.operations) do
      assert.are_not.equal("ANE", op.preferred_compute_device)
      for _, d in ipairs(op.supported_compute_devices) do assert.are_not.equal("ANE", d) end
      assert.matches("not ANE", op.reasons[1])
    end
  end)

  it("gives the linear layers the largest cost (64x32 and 8x64 matmuls against a relu)", function()
    local p = plan(F.q(fp32))
    local w = {}
    for _, op in ipairs(p.functions.main.operations) do w[op.name] = op.estimated_cost.weight end
    assert.is_true(w.linear_0 > w.relu_0)
    assert.is_true(w.linear_0 > w.linear_1) -- 2048 MACs against 512
  end)

  it("respects the compute units", function()
    local p = plan("--compute-units cpu_only " .. F.q(fp16))
    assert.equal("CPU_ONLY", p.compute_units)
    for _, op in ipairs(p.functions.main.operations) do
      assert.equal("CPU", op.preferred_compute_device)
      assert.same({ "CPU" }, op.supported_compute_devices)
    end
  end)

  it("agrees with check --format json's placement, op by op, by default and with --static", function()
    for _, flag in ipairs({ "", "--static " }) do
      local p = plan(flag .. F.q(fp16))
      local out = F.run("check " .. flag .. "--format json " .. F.q(fp16))
      local c = json.decode(out)
      local ops = p.functions.main.operations
      assert.equal(#c.placement.ops, #ops)
      for i, o in ipairs(c.placement.ops) do
        assert.equal(o.op, ops[i].name)
        assert.equal(o.device, ops[i].preferred_compute_device, flag .. o.op)
      end
    end
  end)

  -- plan and check share placement's default (the calibrated second stage): the same ANE share,
  -- and both change with --static. The fp16 build is tiny (two small linears, far under the
  -- 1.7e8-FLOP threshold Vx#436 observed): calibrated, nothing is on the ANE; the first stage puts
  -- every op there (fp16 linear/relu are ANE-eligible, and the two I/O casts go with the compute they
  -- feed, as Vx#435 observed for a matmul and its casts).
  it("agrees with check on the ANE share by default, and both change with --static", function()
    local function shares(flag)
      local p = plan(flag .. F.q(fp16))
      local ops = p.functions.main.operations
      local ane, casts = 0, 0
      for _, op in ipairs(ops) do
        if op.preferred_compute_device == "ANE" then ane = ane + 1 end
        if op.operator_name == "cast" then casts = casts + 1 end
      end
      local c = json.decode((F.run("check " .. flag .. "--format json " .. F.q(fp16))))
      return ane / #ops, c.placement.ane_coverage.ops, #ops, casts
    end
    local plan_default, check_default, n, casts = shares("")
    local plan_static, check_static = shares("--static ")
    assert.equal(2, casts)
    assert.near(plan_default, check_default, 1e-9)
    assert.near(plan_static, check_static, 1e-9)
    assert.equal(0, plan_default)
    assert.equal(1, plan_static)
    assert.is_true(n > casts)
    assert.are_not.equal(plan_default, plan_static)
  end)

  it("writes -o atomically and prints text without --json", function()
    local out, _, code = F.run("plan " .. F.q(fp16))
    assert.equal(0, code)
    assert.matches("function main: %d+ ops", out)
    local _, _, c2 = F.run("plan --json -o " .. F.q(dir .. "/p.json") .. " " .. F.q(fp16))
    assert.equal(0, c2)
    assert.is_table(json.decode(F.read(dir .. "/p.json")).functions.main)
  end)

  it("fails with one line and exit 2 on bad input", function()
    local OB = require "onnx_builder"
    local b = OB.model { opset = 17 }
    b:input("x", "FLOAT", { 1, 4 })
    b:node("Relu", { "x" }, { "y" })
    b:output("y", "FLOAT", { 1, 4 })
    local onnx = b:save(dir .. "/m.onnx")
    for _, c in ipairs({ { F.q(dir .. "/none.mlpackage"), "none.mlpackage" }, { "", "no model given" },
                         { "--compute-units tpu " .. F.q(fp16), "unknown compute units" },
                         { F.q(onnx), "for Core ML models" }, { "--bogus " .. F.q(fp16), "unknown option" },
                         { F.q(fp16) .. " " .. F.q(fp16), "one model at a time" }, { F.q(fp16) .. " --target", "%-%-target needs a value" } }) do
      local out, err, code = F.run("plan " .. c[1])
      assert.equal(2, code, c[1])
      assert.equal("", out)
      assert.matches(c[2], err)
    end
  end)
end)
