-- The rules engine (loading, validation, environments, selection, running) and every built-in
-- rule: each fires on a fixture that has its problem and is silent on the fixed twin.
local mlsh = require "mlsh"
local rules = require "mlsh.engine.rules"
local R = require "rule_fixtures"

local GOOD_RULE = [[
return {
  id = "%s", title = "a test rule", categories = { "performance", "ane" }, severity = "warning", pattern = "2b",
  check = function(m, ctx) ctx:report { message = "seen " .. tostring(m.model_type) } end,
}
]]

local function builtin()
  local set = assert(rules.discover({ env = "" }))
  return set
end

local function run_rule(id, path, opts)
  local set = builtin()
  local pick = assert(rules.selector(id, set))
  local m = mlsh.load(path)
  opts = opts or {}
  opts.select = pick
  local findings = rules.run(m, set, opts)
  m:close()
  return findings
end

describe("rules engine", function()
  local fx
  setup(function() fx = R.shared() end)

  describe("validation", function()
    local function base()
      return { id = "x", title = "t", categories = { "ane" }, severity = "info", pattern = "2b", check = function() end }
    end
    it("accepts a complete rule and normalizes it", function()
      local r = assert(rules.validate(base(), "f.lua"))
      assert.equal("each", r.scope)
      assert.equal("f.lua", r.source)
    end)
    it("names the missing field", function()
      local t = base()
      t.severity = nil
      local r, err = rules.validate(t, "team/x.lua")
      assert.is_nil(r)
      assert.equal("team/x.lua: rule 'x': missing field 'severity' (one of error, warning, info)", err)
    end)
    it("suggests the field a typo meant", function()
      local t = base()
      t.sevrity = "info"
      local _, err = rules.validate(t, "f.lua")
      assert.matches("unknown field 'sevrity' %(did you mean 'severity'%?%)", err)
    end)
    it("rejects bad values precisely", function()
      local cases = {
        { "severity", "fatal", "field 'severity' must be one of error, warning, info, got 'fatal'" },
        { "pattern", "6z", "field 'pattern' must be one of 1a" },
        { "categories", {}, "field 'categories' must be a non%-empty list" },
        { "categories", { "has space" }, "categories%[1%] must be a word" },
        { "check", "nope", "field 'check' must be a function" },
        { "applies", 3, "field 'applies' must be a function" },
        { "id", "bad id!", "field 'id' must be" },
        { "scope", "all", "field 'scope' must be" },
      }
      for _, c in ipairs(cases) do
        local t = base()
        t[c[1]] = c[2]
        local r, err = rules.validate(t, "f.lua")
        assert.is_nil(r, c[1])
        assert.matches(c[3], err)
      end
      local _, err = rules.validate("nope", "f.lua")
      assert.equal("f.lua: a rule must be a table, got string", err)
    end)
    it("allows pattern = false for rules outside the playbook", function()
      local t = base()
      t.pattern = false
      assert.is_nil(assert(rules.validate(t)).pattern)
    end)
  end)

  describe("loading", function()
    it("loads a folder and reports broken files without stopping", function()
      local d = R.rules_dir({
        ["a.lua"] = GOOD_RULE:format("team-a"),
        ["b.lua"] = "return { id = 'team-b', title = 't', categories = {'ane'}, pattern = '2b', check = function() end }",
        ["c.lua"] = "return {",
        ["d.lua"] = "local x = 1",
        ["e.lua"] = "error('boom at load')",
        ["notes.txt"] = "ignored",
      })
      local res = rules.load_dir(d)
      assert.equal(1, #res.rules)
      assert.equal("team-a", res.rules[1].id)
      assert.equal(4, #res.errors)
      local msgs = {}
      for _, e in ipairs(res.errors) do msgs[e.file:match("[^/]+$")] = e.message end
      assert.matches("missing field 'severity'", msgs["b.lua"])
      assert.matches("c.lua:1:", msgs["c.lua"])
      assert.matches("returned nothing", msgs["d.lua"])
      assert.matches("boom at load", msgs["e.lua"])
    end)
    it("runs each file in its own environment", function()
      local d = R.rules_dir({
        ["a.lua"] = "shared_state = 'from a'; string.upper = nil; return { id = 'env-a', title = 't', categories = {'ane'}, "
          .. "severity = 'info', pattern = false, check = function(m, ctx) ctx:report{ message = tostring(shared_state) } end }",
        ["b.lua"] = "return { id = 'env-b', title = 't', categories = {'ane'}, severity = 'info', pattern = false, "
          .. "check = function(m, ctx) ctx:report{ message = tostring(shared_state) .. ' ' .. tostring(string.upper ~= nil) } end }",
      })
      local set = assert(rules.discover({ builtin = false, env = "", dirs = { d } }))
      local m = mlsh.load(fx.fp16)
      local f = rules.run(m, set, {})
      m:close()
      assert.equal("from a", f[1].message)
      assert.equal("nil true", f[2].message)
      assert.is_nil(rawget(_G, "shared_state"))
      assert.is_function(string.upper)
    end)
    it("discovers installed rules, MLSH_RULES folders and --rules folders; later ids replace earlier", function()
      local d1 = R.rules_dir({ ["x.lua"] = GOOD_RULE:format("team-x") })
      local d2 = R.rules_dir({ ["y.lua"] = GOOD_RULE:format("fp32-compute") })
      local set = assert(rules.discover({ env = d1, dirs = { d2 } }))
      local ids = {}
      for _, r in ipairs(set.rules) do ids[r.id] = r.source end
      assert.truthy(ids["team-x"])
      assert.truthy(ids["deployment-target"])
      assert.equal(d2 .. "/y.lua", ids["fp32-compute"])
      assert.matches("replaces", set.notes[1])
    end)
    it("refuses a rules folder that does not exist", function()
      local set, err = rules.discover({ env = "", dirs = { "/nonexistent/rules" } })
      assert.is_nil(set)
      assert.equal("--rules: /nonexistent/rules: no such directory", err)
      set, err = rules.discover({ env = "/nope/a:/nope/b" })
      assert.is_nil(set)
      assert.matches("^MLSH_RULES: /nope/a", err)
    end)
    it("validates fallback{} declarations", function()
      local d = R.rules_dir({
        ["ok.lua"] = "fallback { op = 'topk', device = 'CPU', reason = 'measured', os = '>=17' }",
        ["bad.lua"] = "fallback { op = 'topk', device = 'TPU', reason = 'x' }",
        ["typo.lua"] = "fallback { op = 'topk', device = 'CPU', reasn = 'x' }",
      })
      local res = rules.load_dir(d)
      assert.equal(1, #res.fallbacks)
      assert.same({ "topk" }, res.fallbacks[1].ops)
      assert.equal(">=17", res.fallbacks[1].os)
      local msgs = {}
      for _, e in ipairs(res.errors) do msgs[e.file:match("[^/]+$")] = e.message end
      assert.matches("field 'device' must be ANE, GPU or CPU, got 'TPU'", msgs["bad.lua"])
      assert.matches("unknown field 'reasn' %(did you mean 'reason'%?%)", msgs["typo.lua"])
    end)
  end)

  describe("selection expressions", function()
    local set
    setup(function() set = builtin() end)
    local function selected(expr)
      local pick = assert(rules.selector(expr, set))
      local out = {}
      for _, r in ipairs(set.rules) do
        if pick(r) then out[#out + 1] = r.id end
      end
      return out
    end
    it("selects by id, category, severity and pattern with and/or/not and parentheses", function()
      assert.same({ "fp32-compute" }, selected("fp32-compute"))
      for _, id in ipairs(selected("ane")) do assert.truthy(id ~= "deployment-target") end
      assert.same({ "deployment-target" }, selected("1a and error"))
      assert.same({ "deployment-target", "spec-lowerable" }, selected("1a"))
      local no_slow = selected("ane and not slow")
      assert.same(selected("ane"), no_slow)
      assert.same({ "custom-layers", "deployment-target", "layout-limits", "op-not-in-opset", "weights-memory" },
        selected("load and (error or 1c)"))
      assert.same({ "dilated-conv", "fp32-compute" }, selected("dilated-conv, fp32-compute"))
      assert.same({ "spec-lowerable" }, selected("spec-*"))
      assert.equal(#set.rules, #selected(""))
    end)
    it("reports bad expressions with their position", function()
      local cases = {
        { "ane and", "expected a name, 'not' or '%(' at the end" },
        { "(ane", "expected '%)'" },
        { "ane anee", "unexpected 'anee' at position 5" },
        { "anee", "unknown rule id or category 'anee' %(did you mean 'ane'%?%)" },
        { "nothing-*", "'nothing%-%*' matches no rule id" },
        { "ane & gpu", "unexpected '&' at position 5" },
      }
      for _, c in ipairs(cases) do
        local f, err = rules.selector(c[1], set)
        assert.is_nil(f, c[1])
        assert.matches(c[2], err)
        assert.matches("^%-%-select", err)
      end
    end)
  end)

  describe("running", function()
    it("turns a raising rule into an error finding and still runs the others", function()
      local d = R.rules_dir({
        ["a.lua"] = "return { id = 'boom', title = 't', categories = {'ane'}, severity = 'info', pattern = false, "
          .. "check = function() error('kaput') end }",
        ["b.lua"] = GOOD_RULE:format("after-boom"),
        ["c.lua"] = "return { id = 'boom-applies', title = 't', categories = {'ane'}, severity = 'info', pattern = false, "
          .. "applies = function() error('no') end, check = function() end }",
        ["d.lua"] = "return { id = 'malformed', title = 't', categories = {'ane'}, severity = 'info', pattern = false, "
          .. "check = function(m, ctx) ctx:report{ msg = 'x' }; return { { message = 'ok', location = { where = 1 } } } end }",
      })
      local set = assert(rules.discover({ builtin = false, env = "", dirs = { d } }))
      local m = mlsh.load(fx.fp16)
      local f = rules.run(m, set, {})
      m:close()
      local by = {}
      for _, x in ipairs(f) do
        by[x.rule] = by[x.rule] or {}
        table.insert(by[x.rule], x)
      end
      assert.equal("error", by.boom[1].severity)
      assert.matches("rule boom raised: .*kaput", by.boom[1].message)
      assert.matches("raised in applies%(%)", by["boom-applies"][1].message)
      assert.equal("seen mlProgram", by["after-boom"][1].message)
      assert.equal(2, #by.malformed)
      assert.matches("needs a message", by.malformed[1].message)
      assert.matches("unknown location key 'where'", by.malformed[2].message)
      assert.equal("error", f[1].severity, "errors sort first")
    end)
    it("runs scope=each rules on pipeline sub-models with the model in the location", function()
      local d = R.rules_dir({ ["a.lua"] = [[
        return { id = 'per-model', title = 't', categories = {'ane'}, severity = 'info', pattern = false,
                 applies = function(m) return m.neural_network ~= nil end,
                 check = function(m, ctx) ctx:report{ message = #m:layers() .. ' layers' } end }]] })
      local set = assert(rules.discover({ builtin = false, env = "", dirs = { d } }))
      local m = mlsh.load(fx.pipeline)
      local f = rules.run(m, set, {})
      m:close()
      assert.equal(2, #f)
      assert.equal("first", f[1].location.model)
      assert.equal("second", f[2].location.model)
    end)
    it("serializes findings with the contract keys", function()
      local f = run_rule("dilated-conv", fx.dilated_prog)
      local j = rules.findings_json(f)[1]
      assert.same({ "categories", "evidence", "fix", "location", "message", "pattern", "rule", "severity", "title" },
        (function() local k = {} for x in pairs(j) do k[#k + 1] = x end table.sort(k) return k end)())
      assert.equal("dilated-conv", j.rule)
      assert.equal("2b", j.pattern)
      assert.equal("conv2", j.location.op)
      assert.equal("main", j.location["function"])
    end)
  end)

  describe("built-in rules", function()
    for _, pair in ipairs(R.PAIRS) do
      it(pair.rule .. " fires on " .. pair.bad .. " and is silent on " .. pair.good, function()
        local opts = { calibrated = false } -- tiny fixtures: the placement rules against the first stage
        if pair.args == "--target iOS16" then opts.target = 7 end
        local bad = run_rule(pair.rule, fx[pair.bad], opts)
        assert.is_true(#bad > 0, "no finding on " .. pair.bad)
        for _, f in ipairs(bad) do
          assert.equal(pair.rule, f.rule)
          assert.is_nil(f.rule_error, f.message)
          assert.is_string(f.fix, "every built-in finding has a fix")
        end
        local opts2 = { calibrated = false }
        if pair.args == "--target iOS16" then opts2.target = 7 end
        local good = run_rule(pair.rule, fx[pair.good], opts2)
        assert.same({}, good, pair.good .. ": " .. (good[1] and good[1].message or ""))
      end)
    end
    it("weights-memory gives the compression size table and picks a scheme that fits", function()
      local f = run_rule("weights-memory", fx.huge_weights)[1]
      assert.equal("error", f.severity)
      assert.equal(4 * 1024 ^ 3, f.evidence.bytes)
      local sizes = {}
      for _, r in ipairs(f.evidence.sizes) do sizes[r.scheme] = r.bytes end
      assert.equal(2 * 1024 ^ 3, sizes.fp16)
      assert.equal(1024 ^ 3 // 2 + 32, sizes["4-bit palettization"])
      assert.matches("palettize_weights%(nbits=6%)", f.fix)
      -- a smaller budget makes the 4-bit twin fire too, as a warning first
      local w = run_rule("weights-memory", fx.huge_weights_palettized, { options = { memory_budget = 800 * 1024 ^ 2 } })
      assert.equal("warning", w[1].severity)
    end)
    it("deployment-target names the blockers or says nothing needs the newer spec", function()
      local f = run_rule("deployment-target", fx.spec8_prog, { target = 7 })[1]
      assert.equal("1a", f.pattern)
      assert.equal("error", f.severity)
      assert.is_true(f.evidence.lowering_possible)
      assert.matches("nothing in it needs the newer spec", f.message)
      assert.matches("minimum_deployment_target=ct.target.iOS16", f.fix)
      local g = run_rule("deployment-target", fx.stateful, { target = 8 })[1]
      assert.is_false(g.evidence.lowering_possible)
      assert.matches("state features", g.message)
      assert.matches("raise the deployment target to iOS18", g.fix)
      assert.same({}, run_rule("deployment-target", fx.spec8_prog, {}), "no target, no finding")
    end)
    it("dilated-conv, gather-embedding, training-ops and image-preprocessing read both formats", function()
      assert.equal(1, #run_rule("dilated-conv", fx.nn_dilated))
      assert.equal(1, #run_rule("gather-embedding", fx.gather_prog))
      assert.equal(1, #run_rule("training-ops", fx.nn_random))
      assert.equal(1, #run_rule("image-preprocessing", fx.prog_image_raw))
      assert.same({}, run_rule("image-preprocessing", fx.prog_image_scaled))
    end)
    it("layout-limits catches rank > 5; op-not-in-opset reports unknown op types as info", function()
      local f = run_rule("layout-limits", fx.rank6)
      assert.equal(2, #f)
      assert.matches("rank 6 > 5", f[1].message)
      local u = run_rule("op-not-in-opset", fx.unknown_op)
      assert.equal(1, #u)
      assert.equal("info", u[1].severity)
      assert.equal("5a", u[1].pattern)
      assert.matches("mlsh_mystery_op", u[1].message)
    end)
    it("every built-in rule runs on every fixture without raising", function()
      local set = builtin()
      for name, path in pairs(fx) do
        if name ~= "dir" and name ~= "not_model" then
          local m = mlsh.load(path)
          for _, t in ipairs({ 4, 7, 9 }) do
            for _, f in ipairs(rules.run(m, set, { target = t })) do
              assert.is_nil(f.rule_error, name .. ": " .. f.message)
            end
          end
          m:close()
        end
      end
    end)
  end)
end)
