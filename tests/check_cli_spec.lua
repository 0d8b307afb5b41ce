-- mlsh check on the command line: exit status, the JSON contract, options, team rule folders,
-- error paths, golden JSON of built fixtures, and the ane-readiness recipe.
-- MLSH_UPDATE_GOLDEN=1 rewrites tests/golden/*.json from the current output.
local json = require "mlsh.json"
local F = require "fixtures"
local R = require "rule_fixtures"

local HOME = os.getenv("MLSH_HOME") or "."
local BIN = os.getenv("MLSH_BIN") or "./mlsh"

-- Run mlsh with optional environment assignments; returns stdout, stderr, exit status.
local function run(args, env)
  local errf = os.tmpname()
  local prefix = ""
  for k, v in pairs(env or {}) do prefix = prefix .. k .. "=" .. F.q(v) .. " " end
  local p = io.popen(string.format("%s%s %s 2>%s", prefix ~= "" and ("env " .. prefix) or "", BIN, args, errf))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = F.read(errf)
  os.remove(errf)
  return out, err, code
end

local function check_json(args, env)
  local out, err, code = run("check --format json " .. args, env)
  local ok, obj = pcall(json.decode, out)
  assert(ok, "not JSON: " .. out .. err)
  return obj, code, err
end

local function rules_of(obj)
  local out = {}
  for _, f in ipairs(obj.findings) do out[f.rule] = (out[f.rule] or 0) + 1 end
  return out
end

describe("mlsh check", function()
  local fx
  setup(function() fx = R.shared() end)

  describe("exit status", function()
    it("is 0 without error findings", function()
      local _, _, code = run("check " .. F.q(fx.fp16))
      assert.equal(0, code)
    end)
    it("is 1 when a finding is an error", function()
      local obj, code = check_json("--target iOS16 " .. F.q(fx.spec8_prog))
      assert.equal(1, code)
      assert.equal(1, obj.summary.error)
      assert.equal("deployment-target", obj.findings[1].rule)
      assert.equal("1a", obj.findings[1].pattern)
    end)
    it("is 2 on bad input, with one line on stderr", function()
      local cases = {
        { "check --target iOS99 " .. F.q(fx.fp16), "unknown target 'iOS99'" },
        { "check --compute-units tpu " .. F.q(fx.fp16), "unknown compute units 'tpu'" },
        { "check --select 'ane and' " .. F.q(fx.fp16), "expected a name" },
        { "check --select nosuchrule " .. F.q(fx.fp16), "unknown rule id or category 'nosuchrule'" },
        { "check --format xml " .. F.q(fx.fp16), "unknown %-%-format 'xml'" },
        { "check --bogus " .. F.q(fx.fp16), "unknown option %-%-bogus" },
        { "check --rules /nonexistent/rules " .. F.q(fx.fp16), "%-%-rules: /nonexistent/rules: no such directory" },
        { "check --memory-budget lots " .. F.q(fx.fp16), "bad %-%-memory%-budget" },
        { "check " .. F.q(fx.not_model), "not a Core ML model" },
        { "check /nonexistent/model.mlmodel", "nonexistent" },
        { "check", "no model given" },
        { "check --target", "%-%-target needs a value" },
      }
      for _, c in ipairs(cases) do
        local out, err, code = run(c[1])
        assert.equal(2, code, c[1] .. ": " .. err)
        assert.equal("", out, c[1])
        assert.matches(c[2], err, 1, false)
      end
      local _, err = run("check --compute-units tpu " .. F.q(fx.fp16))
      assert.matches("^mlsh check: unknown compute units 'tpu' %(all, cpu_and_ne, cpu_and_gpu, cpu_only%)\n$", err)
    end)
    it("is 2 for unreadable models in JSON mode too, printing nothing on stdout", function()
      local out, _, code = run("check --format json " .. F.q(fx.not_model))
      assert.equal(2, code)
      assert.equal("", out)
    end)
  end)

  describe("JSON", function()
    it("has the contract keys", function()
      local obj = check_json("--static " .. F.q(fx.dilated_prog)) -- a tiny fixture: the first stage's placement
      for _, k in ipairs({ "findings", "required_spec", "placement" }) do assert.is_not_nil(obj[k], k) end
      for _, f in ipairs(obj.findings) do
        for _, k in ipairs({ "rule", "severity", "categories", "message", "location" }) do assert.is_not_nil(f[k], k) end
        assert.truthy(f.severity == "error" or f.severity == "warning" or f.severity == "info")
        assert.truthy(f.pattern == json.null or f.pattern:match("^[1-5][abc]$"))
        assert.truthy(f.fix == json.null or type(f.fix) == "string")
      end
      assert.equal(6, obj.required_spec.version)
      for _, r in ipairs(obj.required_spec.reasons) do
        assert.is_number(r.spec)
        assert.is_string(r.what)
      end
      local p = obj.placement
      assert.equal("ALL", p.compute_units)
      for _, o in ipairs(p.ops) do
        for _, k in ipairs({ "function", "op", "type", "device", "reason" }) do assert.is_not_nil(o[k], k) end
      end
      for _, s in ipairs(p.segments) do
        for _, k in ipairs({ "device", "first", "last", "count" }) do assert.is_not_nil(s[k], k) end
      end
      assert.is_number(p.ane_coverage.ops)
      assert.is_number(p.ane_coverage.work)
      assert.equal("GPU", p.segments[2].device)
    end)
    it("follows --compute-units and --target", function()
      local obj = check_json("--static --compute-units cpu_and_ne --target iOS17 " .. F.q(fx.dilated_prog))
      assert.equal("CPU_AND_NE", obj.placement.compute_units)
      assert.equal("CPU", obj.placement.segments[2].device)
      assert.same({ name = "iOS17", spec = 8 }, obj.target)
      obj = check_json("--compute-units cpu_only " .. F.q(fx.dilated_prog))
      assert.equal(0, obj.placement.ane_coverage.ops)
      assert.is_nil(rules_of(obj)["ane-coverage"])
    end)
    it("--select keeps only the selected rules", function()
      local obj = check_json("--select 'ane and not dilated-conv' " .. F.q(fx.dilated_prog))
      local r = rules_of(obj)
      assert.is_nil(r["dilated-conv"])
      assert.equal(1, r["ane-coverage"])
      obj = check_json("--select dilated-conv " .. F.q(fx.dilated_prog))
      assert.same({ ["dilated-conv"] = 1 }, rules_of(obj))
    end)
    it("--memory-budget reaches the weights-memory rule", function()
      local obj = check_json("--select weights-memory --memory-budget 100M " .. F.q(fx.huge_weights_palettized))
      assert.equal(1, rules_of(obj)["weights-memory"])
      assert.equal(100 * 1024 * 1024, obj.findings[1].evidence.budget)
    end)
  end)

  describe("team rule folders", function()
    it("adds --rules folders and MLSH_RULES folders", function()
      local d1 = R.rules_dir({ ["a.lua"] = [[return { id = 'team-a', title = 't', categories = {'deploy'},
        severity = 'info', pattern = false, check = function(m, ctx) ctx:report{ message = 'a' } end }]] })
      local d2 = R.rules_dir({ ["b.lua"] = [[return { id = 'team-b', title = 't', categories = {'deploy'},
        severity = 'info', pattern = false, check = function(m, ctx) ctx:report{ message = 'b' } end }]] })
      local obj = check_json("--rules " .. F.q(d1) .. " " .. F.q(fx.fp16), { MLSH_RULES = d2 })
      local r = rules_of(obj)
      assert.equal(1, r["team-a"])
      assert.equal(1, r["team-b"])
      assert.is_true(obj.rules.count > 15)
    end)
    it("reports a rule file missing fields as an error finding; the other rules still run", function()
      local d = R.rules_dir({
        ["broken.lua"] = "return { id = 'broken', title = 't', categories = {'ane'}, pattern = '2b', check = function() end }",
        ["raises.lua"] = "return { id = 'raises', title = 't', categories = {'ane'}, severity = 'info', pattern = false, "
          .. "check = function() error('kaput') end }",
      })
      local obj, code, err = check_json("--rules " .. F.q(d) .. " " .. F.q(fx.dilated_prog))
      assert.equal(1, code)
      assert.matches("broken.lua: rule 'broken': missing field 'severity'", err)
      local r = rules_of(obj)
      assert.equal(1, r["rule-load"])
      assert.equal(1, r.raises)
      assert.equal(1, r["dilated-conv"], "built-in rules still run")
      for _, f in ipairs(obj.findings) do
        if f.rule == "raises" then
          assert.equal("error", f.severity)
          assert.matches("kaput", f.message)
        end
      end
    end)
    it("applies fallback{} files to the placement", function()
      local d = R.rules_dir({ ["fb.lua"] = "fallback { op = 'relu', device = 'CPU', reason = 'team says relu is slow' }" })
      local obj = check_json("--rules " .. F.q(d) .. " " .. F.q(fx.fp16))
      local relu
      for _, o in ipairs(obj.placement.ops) do
        if o.type == "relu" then relu = o end
      end
      assert.equal("CPU", relu.device)
      assert.matches("team says relu is slow", relu.reason)
    end)
    it("--no-builtin runs only the given folders; --list-rules lists them", function()
      local d = R.rules_dir({ ["a.lua"] = [[return { id = 'only-me', title = 'the only rule', categories = {'deploy'},
        severity = 'info', pattern = false, check = function() end }]] })
      local out, _, code = run("check --no-builtin --list-rules --rules " .. F.q(d))
      assert.equal(0, code)
      assert.matches("^only%-me%s+info", out)
      assert.equal(1, select(2, out:gsub("\n", "")))
      out = run("check --list-rules --select 1a")
      assert.matches("deployment%-target", out)
      assert.matches("spec%-lowerable", out)
      assert.is_nil(out:find("fp32-compute", 1, true))
    end)
  end)

  describe("text", function()
    it("prints findings, required spec and placement", function()
      local out, _, code = run("check --static --target iOS16 " .. F.q(fx.spec8_prog))
      assert.equal(1, code)
      assert.matches("findings: 1 error%(s%)", out)
      assert.matches("error   %[1a%] deployment%-target", out)
      assert.matches("required spec: spec 6 %(iOS15%); declared spec 8 %(iOS17%)", out)
      assert.matches("placement %(ALL%): ANE 4", out)
    end)
  end)

  describe("golden JSON", function()
    local GOLDEN = {
      { name = "dilated_conv", fixture = "dilated_prog", args = "" },
      { name = "nn_gather_cpu_and_ne", fixture = "nn_gather", args = "--compute-units cpu_and_ne" },
      { name = "spec8_target_ios16", fixture = "spec8_prog", args = "--target iOS16" },
      { name = "nn_custom", fixture = "nn_custom", args = "" },
      { name = "stateful_target_ios17", fixture = "stateful", args = "--target iOS17" },
    }
    local function normalize(s)
      s = s:gsub(fx.dir:gsub("%p", "%%%0"), "<fixtures>")
      if HOME:sub(1, 1) == "/" then s = s:gsub(HOME:gsub("%p", "%%%0"), "<home>") end
      return s
    end
    for _, g in ipairs(GOLDEN) do
      it("is stable for " .. g.name, function()
        -- tiny fixtures for static rules: the placement's first stage only (--static)
        local out, err, code = run("check --static --format json " .. g.args .. " " .. F.q(fx[g.fixture]))
        assert.truthy(code == 0 or code == 1, err)
        out = normalize(out)
        local path = HOME .. "/tests/golden/check_" .. g.name .. ".json"
        if os.getenv("MLSH_UPDATE_GOLDEN") == "1" then F.write(path, out) end
        local f = io.open(path, "rb")
        assert.is_not_nil(f, "missing golden file " .. path .. " (run with MLSH_UPDATE_GOLDEN=1)")
        local want = f:read("a")
        f:close()
        assert.equal(want, out)
      end)
    end
  end)

  describe("recipes/ane-readiness.lua", function()
    it("prints the per-op table, segments, coverage and fixes", function()
      local out, err, code = run(F.q(HOME .. "/recipes/ane-readiness.lua") .. " " .. F.q(fx.dilated_prog) .. " --static")
      assert.equal(0, code, err)
      assert.matches("ANE readiness: ", out)
      assert.matches("\n2%s+ANE%s+conv%s+conv1%s+ANE: every condition holds", out)
      assert.matches("GPU%s+conv%s+conv2%s+not ANE: dilation 2", out)
      assert.matches("segments:\n  ANE x", out)
      assert.matches("coverage: ANE 88%% of ops", out)
      assert.matches("top fixes:\n  1%. replace dilated convolutions", out)
    end)
    it("uses team fallbacks and refuses bad input", function()
      local out, _, code = run(F.q(HOME .. "/recipes/ane-readiness.lua") .. " --target iOS17 --rules "
        .. F.q(HOME .. "/recipes/team-fallbacks") .. " " .. F.q(fx.topk_prog))
      assert.equal(0, code)
      assert.matches("CPU%s+topk%s+topk_0%s+team fallback", out)
      local _, err2, code2 = run(F.q(HOME .. "/recipes/ane-readiness.lua") .. " --compute-units x " .. F.q(fx.fp16))
      assert.equal(2, code2)
      assert.matches("unknown compute units", err2)
      local _, _, code3 = run(F.q(HOME .. "/recipes/ane-readiness.lua"))
      assert.equal(2, code3)
    end)
  end)
end)
