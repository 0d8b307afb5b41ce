-- Checklists: the contract a checklist file must meet, each item's automatic check on a passing and
-- a failing fixture (items the file cannot answer stay unknown and take answers), misbehaving
-- checks, and the interactive run.
local json = require "mlsh.json"
local mlsh = require "mlsh"
local checklist = require "mlsh.engine.checklist"
local playbook = require "mlsh.engine.playbook"
local P = require "playbook_fixtures"

local function valid()
  return { id = "tiny", title = "Tiny", items = {
    { id = "a", text = "A holds", check = function() return "pass", "yes" end },
    { id = "b", text = "B holds", ask = "Does B hold?" },
  } }
end

local function run(name, path, opts)
  opts = opts or {}
  local set = assert(checklist.discover({}))
  local m = assert(mlsh.try_load(path))
  -- the fixtures are tiny: the items are tested against placement's first stage (calibrated = false)
  local ctx = playbook.context(m, { path = path, target = opts.target, memory_budget = opts.budget, calibrated = false })
  local r = checklist.run(set.by_id[name], ctx, { answers = opts.answers })
  local by = {}
  for _, it in ipairs(r.items) do by[it.id] = it end
  return by, r
end

describe("checklist contract", function()
  local function rejects(mutate, pattern)
    local t = valid()
    mutate(t)
    local c, err = checklist.validate(t, "c.lua")
    assert.is_nil(c, "accepted: " .. pattern)
    assert.matches(pattern, err)
  end
  it("accepts the minimal checklist and rejects broken ones precisely", function()
    assert.is_not_nil(checklist.validate(valid(), "c.lua"))
    rejects(function(t) t.items = nil end, "c.lua: checklist 'tiny': missing field 'items'")
    rejects(function(t) t.itemz = {} end, "unknown field 'itemz' %(did you mean 'items'%?%)")
    rejects(function(t) t.items[1].chek = t.items[1].check end, "item 'a': unknown field 'chek' %(did you mean 'check'%?%)")
    rejects(function(t) t.items[2].ask = nil end, "item 'b': needs a check function, an ask question, or both")
    rejects(function(t) t.items[2].id = "a" end, "item 'a': duplicate item id")
    rejects(function(t) t.items[1].check = "pass" end, "item 'a': field 'check' must be a function")
    rejects(function(t) t.items[1].text = "" end, "field 'text' must be a non%-empty string")
    rejects(function(t) t.items = {} end, "field 'items' must be a non%-empty list")
  end)

  it("loads folders, reporting broken files", function()
    local F = require "fixtures"
    local dir = F.tmpdir()
    F.write(dir .. "/broken.lua", "return { id = 'broken', title = 'B' }")
    F.write(dir .. "/mine.lua", "return { id = 'mine', title = 'Mine', items = { { id = 'x', text = 'x', ask = 'x?' } } }")
    local set = assert(checklist.discover({ dirs = { dir } }))
    assert.is_not_nil(set.by_id.mine)
    assert.is_not_nil(set.by_id.production)
    assert.matches("broken.lua: checklist 'broken': missing field 'items'", set.errors[1].message)
    local none, err = checklist.discover({ dirs = { "/nonexistent/checklists" } })
    assert.is_nil(none)
    assert.matches("%-%-checklists: /nonexistent/checklists: no such directory", err)
  end)

  it("turns a raising or invalid check into unknown, with a note", function()
    local t = valid()
    t.items[1].check = function() error("kaput") end
    t.items[2].check = function() return "maybe" end
    local c = assert(checklist.validate(t, "c.lua"))
    local ctx = playbook.context(assert(mlsh.try_load(P.shared().complete)), {})
    local r = checklist.run(c, ctx)
    assert.equal("unknown", r.items[1].status)
    assert.equal("unknown", r.items[2].status)
    assert.matches("check of item 'a' in checklist 'tiny' raised: .*kaput", r.notes[1])
    assert.matches("returned 'maybe' %(pass, fail or nil%)", r.notes[2])
  end)

  it("validates answers", function()
    local set = assert(checklist.discover({}))
    local ok, err = checklist.check_answers(set.by_id.production, { ["acuracy-test"] = "yes" }, "a.lua")
    assert.is_nil(ok)
    assert.equal("a.lua: checklist 'production' has no item 'acuracy-test' (did you mean 'accuracy-test'?)", err)
    ok, err = checklist.check_answers(set.by_id.production, { ["accuracy-test"] = "perhaps" }, "a.lua")
    assert.is_nil(ok)
    assert.matches("must be pass/fail %(yes/no%), got 'perhaps'", err)
    assert.is_true(checklist.check_answers(set.by_id.production, { ["accuracy-test"] = true, profiling = "no" }))
  end)
end)

describe("built-in checklists", function()
  local fx, R
  setup(function()
    fx = P.shared()
    R = fx.rules
  end)

  it("are diagnostic, conversion and production, with the items the issue lists", function()
    local set = assert(checklist.discover({}))
    assert.same({}, set.errors)
    local ids = {}
    for _, c in ipairs(set.list) do ids[#ids + 1] = c.id end
    assert.same({ "conversion", "diagnostic", "production" }, ids)
    local function items(name)
      local out = {}
      for _, it in ipairs(set.by_id[name].items) do out[#out + 1] = it.id end
      return table.concat(out, " ")
    end
    assert.equal("eval-mode preprocessing ml-program deployment-target accuracy-test quantization profiling "
      .. "shape-variations memory fallbacks", items("production"))
    assert.equal("fresh-environment ane-friendly fp16-mlprogram sanity-predict profile full-ane quantize package",
      items("conversion"))
  end)

  -- {checklist, item, passing fixture, failing fixture, options}; nil fixture = the check cannot
  -- decide that way (asked items are below)
  local CASES = {
    { "production", "eval-mode", "fp16", "dropout_prog" },
    { "production", "preprocessing", "nn_image_scaled", "nn_image_raw" },
    { "production", "ml-program", "fp16", "nn_plain" },
    { "production", "deployment-target", "fp16", "spec8_prog", { target = 7 } },
    { "production", "quantization", "pal4", "huge_weights" },
    { "production", "shape-variations", "nn_enumerated", "nn_range" },
    { "production", "memory", "fp16", "huge_weights" },
    { "conversion", "fresh-environment", "orig_plain", "old_converter" },
    { "conversion", "ane-friendly", "fp16", "dilated_prog" },
    { "conversion", "fp16-mlprogram", "spec8_prog", "fp16" },
    { "conversion", "full-ane", "fp16", "dilated_prog" },
    { "conversion", "quantize", "pal4", "huge_weights" },
    { "conversion", "package", "orig_plain", "fp16" },
    { "diagnostic", "readable", "complete", "incomplete" },
    { "diagnostic", "spec-vs-target", "fp16", "spec8_prog", { target = 7 } },
    { "diagnostic", "load-blockers", "fp16", "wide_input" },
    { "diagnostic", "ane-coverage", "fp16", "dilated_prog" },
    { "diagnostic", "fp16", "fp16", "fp32" },
    { "diagnostic", "shapes", "fp16", "nn_range" },
    { "diagnostic", "memory", "fp16", "huge_weights" },
    { "diagnostic", "converter-version", "orig_plain", "fp16" },
  }
  for _, c in ipairs(CASES) do
    it(string.format("%s/%s passes on %s and fails on %s", c[1], c[2], c[3], c[4]), function()
      local good, bad = fx[c[3]] or R[c[3]], fx[c[4]] or R[c[4]]
      local items = run(c[1], good, c[5])
      assert.equal("pass", items[c[2]].status, items[c[2]].evidence)
      assert.equal("check", items[c[2]].by)
      assert.is_string(items[c[2]].evidence)
      items = run(c[1], bad, c[5])
      assert.equal("fail", items[c[2]].status, items[c[2]].evidence)
      assert.is_string(items[c[2]].evidence)
    end)
  end

  it("checks every item that has a check function on some fixture", function()
    local covered = {}
    for _, c in ipairs(CASES) do covered[c[1] .. "/" .. c[2]] = true end
    local set = assert(checklist.discover({}))
    for _, list in ipairs(set.list) do
      for _, it in ipairs(list.items) do
        -- checks that only ever return evidence (never a verdict) are the asked items below
        local evidence_only = { ["production/profiling"] = true, ["production/fallbacks"] = true, ["conversion/profile"] = true }
        if it.check and not evidence_only[list.id .. "/" .. it.id] then
          assert.is_true(covered[list.id .. "/" .. it.id] == true, list.id .. "/" .. it.id .. " has no pass/fail case")
        end
      end
    end
  end)

  it("reports what the file cannot show as unknown, and takes answers for it", function()
    local items, r = run("production", R.fp16)
    for _, id in ipairs({ "accuracy-test", "profiling", "fallbacks", "preprocessing", "deployment-target" }) do
      assert.equal("unknown", items[id].status, id)
    end
    assert.matches("predicted ANE coverage 100%% of ops", items.profiling.evidence)
    assert.matches("give %-%-target", items["deployment-target"].evidence)
    assert.is_true(r.summary.unknown >= 5)
    items = run("production", R.fp16, { answers = { ["accuracy-test"] = "yes", profiling = "no", ["eval-mode"] = "no" } })
    assert.equal("pass", items["accuracy-test"].status)
    assert.equal("answer", items["accuracy-test"].by)
    assert.equal("fail", items.profiling.status)
    -- a check's verdict wins over an answer, with a note
    local _, r2 = run("production", R.fp16, { answers = { ["eval-mode"] = "no" } })
    assert.equal("pass", r2.items[1].status)
    assert.matches("checklist item 'eval%-mode': answer 'fail' ignored, the model shows 'pass'", r2.notes[1])
    for _, id in ipairs({ "sanity-predict", "profile" }) do
      assert.equal("unknown", run("conversion", R.fp16)[id].status, id)
    end
    for _, id in ipairs({ "compute-units-isolated", "device-report", "on-device" }) do
      assert.equal("unknown", run("diagnostic", R.fp16)[id].status, id)
    end
  end)

  it("has the JSON shape {checklist, items: [{id, text, status, evidence}]}", function()
    local _, r = run("production", R.dropout_prog)
    local doc = json.decode(json.encode(checklist.result_json(r)))
    assert.equal("production", doc.checklist)
    for _, it in ipairs(doc.items) do
      assert.is_string(it.id)
      assert.is_string(it.text)
      assert.is_truthy(it.status == "pass" or it.status == "fail" or it.status == "unknown")
      assert.is_truthy(type(it.evidence) == "string" or it.evidence == json.null)
    end
    assert.equal("fail", doc.items[1].status)
    assert.equal(1, doc.summary.fail)
  end)

  it("runs interactively: asks the unknown items, y/n, Enter skips, q stops", function()
    local lines, i, out = { "y", "maybe", "n", "", "q" }, 0, {}
    local r = checklist.interactive("production", R.fp16, {
      input = function() i = i + 1 return lines[i] end, output = function(s) out[#out + 1] = s end })
    local text = table.concat(out)
    assert.matches("1%. Is input normalization done inside the model", text)
    assert.matches("answer y or n", text)
    local by = {}
    for _, it in ipairs(r.items) do by[it.id] = it end
    assert.equal("pass", by.preprocessing.status)
    assert.equal("fail", by["deployment-target"].status)
    assert.equal("unknown", by["accuracy-test"].status)
    assert.matches("checklist production: %d+ pass, 1 fail, %d+ unknown", tostring(r))
    assert.has_error(function() checklist.interactive("prod", R.fp16, { input = function() end, output = function() end }) end,
      "unknown checklist 'prod' (one of: conversion, diagnostic, production)")
  end)
end)
