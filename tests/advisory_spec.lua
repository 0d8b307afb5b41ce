-- Advisory rules (rules/advisory/*.lua): known platform bugs and limits, each with evidence links
-- and affected ranges. Every rule fires on a model that has the problem and stays silent on its
-- fixed twin; the evidence shows in text, SARIF (helpUri) and JSON (findings[].sources/affected).
local mlsh = require "mlsh"
local rules = require "mlsh.rules"
local json = require "mlsh.json"
local F = require "fixtures"
local A = require "advisory_fixtures"

local HOME = os.getenv("MLSH_HOME") or "."

local function advisory_ids()
  local res = rules.load_dir(HOME .. "/rules/advisory")
  assert.same({}, res.errors)
  local ids = {}
  for _, r in ipairs(res.rules) do ids[#ids + 1] = r.id end
  table.sort(ids)
  return ids, res.rules
end

local function findings_of(id, path, opts)
  local set = assert(rules.discover({ env = "" }))
  local m = mlsh.load(path)
  local o = { select = assert(rules.selector(id, set)) }
  for k, v in pairs(opts or {}) do o[k] = v end
  local out = rules.run(m, set, o)
  m:close()
  local mine = {}
  for _, f in ipairs(out) do
    assert.is_nil(f.rule_error, f.message)
    if f.rule == id then mine[#mine + 1] = f end
  end
  return mine
end

describe("advisory rules", function()
  local fx
  setup(function() fx = A.shared() end)

  it("are built-in, each with evidence URLs, affected ranges and a fix", function()
    local ids, list = advisory_ids()
    assert.equal(20, #ids)
    for _, r in ipairs(list) do
      assert.is_true(#r.evidence > 0, r.id)
      for _, e in ipairs(r.evidence) do assert.matches("^https://", e, nil, false, r.id) end
      assert.is_table(r.affected, r.id)
      assert.is_string(r.fix, r.id)
      assert.matches("^advisory%-", r.id)
    end
    local set = assert(rules.discover({ env = "" }))
    local have = {}
    for _, r in ipairs(set.rules) do have[r.id] = true end
    for _, id in ipairs(ids) do assert.is_true(have[id], id) end
  end)

  it("every rule has a fixture that fires it and one that does not", function()
    local ids = advisory_ids()
    for _, id in ipairs(ids) do assert.is_table(fx[id], "no fixtures for " .. id) end
  end)

  for _, id in ipairs((advisory_ids())) do
    it(id .. " fires on its fixture and not on the fixed twin", function()
      local pair = fx[id]
      local bad = findings_of(id, pair.fires, pair.opts)
      assert.is_true(#bad >= 1, id .. " did not fire on " .. pair.fires)
      assert.is_string(bad[1].message)
      assert.is_table(bad[1].sources)
      local good = findings_of(id, pair.quiet, pair.opts)
      assert.same({}, good, id .. " fired on " .. pair.quiet)
    end)
  end

  it("advisory-axis-cap stays quiet for an A16-class device", function()
    local set = assert(rules.discover({ env = "" }))
    local m = mlsh.load(fx["advisory-axis-cap"].fires)
    local function count(device)
      local out = rules.run(m, set, { select = assert(rules.selector("advisory-axis-cap", set)), device = device })
      return #out
    end
    assert.equal(1, count("A15"))
    assert.equal(0, count("M4"))
    m:close()
  end)

  it("shows the evidence in JSON, text and SARIF", function()
    local path = fx["advisory-conv-stride-factors"].fires
    local out, err, code = F.run("check --format json --select advisory-conv-stride-factors " .. F.q(path))
    assert.truthy(code == 0 or code == 1, err)
    local doc = json.decode(out)
    local f = doc.findings[1]
    assert.equal("advisory-conv-stride-factors", f.rule)
    assert.matches("neural_engine_rules", f.sources[1])
    assert.equal("all Neural Engine generations", f.affected.chip)
    local text = F.run("check --select advisory-conv-stride-factors " .. F.q(path))
    assert.matches("evidence: https://github.com/apple/coreai%-models", text)
    local sarif = json.decode((F.run("check --format sarif --select advisory-conv-stride-factors " .. F.q(path))))
    local run = sarif.runs[1]
    local desc
    for _, d in ipairs(run.tool.driver.rules) do if d.id == "advisory-conv-stride-factors" then desc = d end end
    assert.matches("^https://github.com/apple/coreai%-models", desc.helpUri)
    assert.is_table(desc.properties.evidence)
    assert.is_table(run.results[1].properties.evidence)
    -- rules without evidence keep their JSON shape
    local plain = json.decode((F.run("check --format json --select fp32-compute " .. F.q(path))))
    for _, x in ipairs(plain.findings) do assert.is_nil(x.sources) end
  end)

  -- Apple's authoring rules added this session: each shows its evidence (the file at a commit,
  -- with line anchors) in JSON, text and SARIF
  for _, id in ipairs({ "advisory-compute-dtype", "advisory-fp32-literal", "advisory-silu-fp32",
                        "advisory-pool-stride" }) do
    it(id .. " shows its evidence in JSON, text and SARIF", function()
      local path = fx[id].fires
      local doc = json.decode((F.run("check --format json --select " .. id .. " " .. F.q(path))))
      assert.equal(id, doc.findings[1].rule)
      local src = doc.findings[1].sources[1]
      assert.matches("^https://github.com/apple/coreai%-models/blob/86b363dc%x+/skills/skills/model%-authoring/"
        .. "references/[%w_]+%.md#L%d+", src)
      assert.matches("evidence: " .. src:gsub("%p", "%%%0"), (F.run("check --select " .. id .. " " .. F.q(path))))
      local sarif = json.decode((F.run("check --format sarif --select " .. id .. " " .. F.q(path))))
      local desc
      for _, d in ipairs(sarif.runs[1].tool.driver.rules) do if d.id == id then desc = d end end
      assert.equal(src, desc.helpUri)
    end)
  end

  it("advisory-fp32-literal leaves the converter's image scale/bias at the model input alone", function()
    local p = require("mlsh.builder").program { opset = "iOS17", precision = "fp16" }
    local f = p:func("main")
    local x = f:input("image", "image", { width = 32, height = 32, color = "RGB", scale = 1 / 255, bias = -0.5 })
    f:output("y", f:op("relu", { x = x }), { dtype = "fp16" })
    local path = p:save(F.tmpdir() .. "/image_pre.mlpackage")
    assert.same({}, findings_of("advisory-fp32-literal", path))
  end)

  it("validates evidence and affected", function()
    local base = { id = "x", title = "t", categories = { "ane" }, severity = "info", pattern = "2b", check = function() end }
    local function with(k, v)
      local t = {}
      for a, b in pairs(base) do t[a] = b end
      t[k] = v
      return t
    end
    assert.is_not_nil(rules.validate(with("evidence", { "https://example.com/a" })))
    local r, e = rules.validate(with("evidence", {}))
    assert.is_nil(r)
    assert.matches("field 'evidence' must be", e)
    r, e = rules.validate(with("evidence", { "coremltools#2114" }))
    assert.is_nil(r)
    assert.matches("evidence%[1%] must be a URL", e)
    r, e = rules.validate(with("affected", { planet = "mars" }))
    assert.is_nil(r)
    assert.matches("affected%.planet", e)
  end)
end)
