-- mlsh diagnose and mlsh checklist on the command line: the JSON contracts, answers files, no
-- prompts, exit status as mlsh check, and every bad-input path (exit 2, nothing on stdout).
local json = require "mlsh.json"
local F = require "fixtures"
local P = require "playbook_fixtures"

local BIN = os.getenv("MLSH_BIN") or "./mlsh"

local function run(args, env)
  local errf = os.tmpname()
  -- stdin from /dev/null: a command that prompted would see end of input, not hang
  local p = io.popen(string.format("%s%s %s 2>%s </dev/null", env and ("env " .. env .. " ") or "", BIN, args, errf))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = F.read(errf)
  os.remove(errf)
  return out, err, code
end

local function run_json(args, env)
  local out, err, code = run(args, env)
  local ok, doc = pcall(json.decode, out)
  assert(ok, "not JSON: " .. out .. err)
  return doc, code, err
end

describe("mlsh diagnose", function()
  local fx, R
  setup(function()
    fx = P.shared()
    R = fx.rules
  end)

  it("--list prints the seven symptoms (text and JSON)", function()
    local out, _, code = run("diagnose --list")
    assert.equal(0, code)
    for _, id in ipairs({ "load-failure", "slow-inference", "high-memory", "accuracy-after-compression", "conversion-failure",
                          "works-in-simulator-not-device", "ship-now" }) do
      assert.matches("\n?" .. id:gsub("%-", "%%-") .. "%s", out)
    end
    local doc = run_json("diagnose --list --format json")
    assert.equal(7, #doc.symptoms)
    assert.is_true(doc.symptoms[5].pressure)
  end)

  it("prints the contract JSON with a leaf when the answers suffice", function()
    local answers = P.scratch("answers.lua", 'return { ["which-predictions"] = "all" }')
    local doc, code = run_json("diagnose --format json --symptom slow-inference --answers " .. F.q(answers) .. " " .. F.q(R.fp32))
    assert.equal(0, code)
    assert.equal("slow-inference", doc.symptom)
    assert.same({ "which-predictions", "precision", "fp32-compute" }, doc.path)
    assert.equal("2b", doc.leaf.pattern)
    assert.is_string(doc.leaf.cause)
    assert.is_string(doc.leaf.fix)
    assert.same({}, doc.needs)
    assert.is_true(#doc.findings >= 1)
    assert.equal("fp32-compute", doc.findings[2].rule)
  end)

  it("never prompts: open questions come back as needs with a null leaf", function()
    local doc, code = run_json("diagnose --json --symptom accuracy-after-compression " .. F.q(fx.pal6_outliers))
    assert.equal(0, code)
    assert.equal(json.null, doc.leaf)
    assert.same({ "compression-kind", "palette-bits", "palette-spread" }, doc.path)
    assert.equal("palette-spread", doc.needs[1].id)
    assert.matches("%-%-original", doc.needs[1].unknown)
    -- --original answers it from the weights
    doc = run_json("diagnose --json --symptom accuracy-after-compression --original " .. F.q(fx.orig_outliers) .. " "
      .. F.q(fx.pal6_outliers))
    assert.equal("palette-sensitive-layers", doc.leaf.id)
    assert.matches("W3 %d+%.%d dB", doc.steps[3].evidence)
  end)

  it("--answer ID=ANSWER adds to (and overrides) the answers file", function()
    local answers = P.scratch("answers.lua", 'return { ["which-predictions"] = "first" }')
    local doc = run_json("diagnose --json --symptom slow-inference --answers " .. F.q(answers)
      .. " --answer which-predictions=device --answer device-kind=os-version " .. F.q(R.fp16))
    assert.equal("os-version", doc.leaf.id)
  end)

  it("exits 1 on an error finding, 0 otherwise", function()
    local doc, code = run_json("diagnose --json --symptom load-failure --target iOS16 " .. F.q(fx.spec8_complete))
    assert.equal(1, code)
    assert.equal("unsupported-version", doc.leaf.id)
    assert.equal("deployment-target", doc.findings[1].rule)
    assert.same({ name = "iOS16", spec = 7 }, doc.target)
    local _
    _, code = run_json("diagnose --json --symptom load-failure --target iOS17 " .. F.q(fx.spec8_complete))
    assert.equal(0, code)
  end)

  it("diagnoses an unreadable model for load-failure (exit 1) and refuses it elsewhere (exit 2)", function()
    local doc, code = run_json("diagnose --json --symptom load-failure " .. F.q(R.not_model))
    assert.equal(1, code)
    assert.equal("corrupt-file", doc.leaf.id)
    assert.matches("not a Core ML model", doc.load_error)
    local out, err
    out, err, code = run("diagnose --json --symptom slow-inference " .. F.q(R.not_model))
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("not a Core ML model", err)
  end)

  it("runs without a model: every question is open", function()
    local doc, code = run_json("diagnose --json --symptom conversion-failure")
    assert.equal(0, code)
    assert.equal(json.null, doc.model)
    assert.equal("failure-kind", doc.needs[1].id)
  end)

  it("prints the pressure scenarios' wrong and right approach", function()
    local out = run("diagnose --symptom ship-now " .. F.q(R.fp16))
    assert.matches("wrong approach: Ship the first conversion untouched", out)
    assert.matches("right approach: Ship now, but first clear", out)
    assert.matches("mlsh checklist production MODEL", out)
    local doc = run_json("diagnose --json --symptom works-in-simulator-not-device " .. F.q(R.fp16))
    assert.is_string(doc.pressure.wrong)
    assert.is_string(doc.pressure.right)
    assert.is_true(#doc.pressure.checks > 0)
  end)

  it("is 2 on bad input, with the reason on stderr and nothing on stdout", function()
    local broken_answers = P.scratch("answers.lua", "return { ")
    local table_answers = P.scratch("answers.lua", "return 'all'")
    local unknown_q = P.scratch("answers.lua", 'return { ["which-prediction"] = "all" }')
    local unknown_a = P.scratch("answers.lua", 'return { ["which-predictions"] = "everything" }')
    local m = F.q(R.fp16)
    local cases = {
      { "diagnose " .. m, "no %-%-symptom given %(mlsh diagnose %-%-list shows them%)" },
      { "diagnose --symptom slow " .. m, "unknown symptom 'slow'" },
      { "diagnose --symptom slow-inferenc " .. m, "unknown symptom 'slow%-inferenc' %(did you mean 'slow%-inference'%?%)" },
      { "diagnose --symptom slow-inference --answers " .. F.q(broken_answers) .. " " .. m, "answers.lua:1:" },
      { "diagnose --symptom slow-inference --answers " .. F.q(table_answers) .. " " .. m, "an answers file returns a table" },
      { "diagnose --symptom slow-inference --answers /nonexistent/a.lua " .. m, "/nonexistent/a.lua" },
      { "diagnose --symptom slow-inference --answers " .. F.q(unknown_q) .. " " .. m,
        "has no question 'which%-prediction' %(did you mean 'which%-predictions'%?%)" },
      { "diagnose --symptom slow-inference --answers " .. F.q(unknown_a) .. " " .. m,
        "'everything' is not an answer to 'which%-predictions' %(one of: first, all, device%)" },
      { "diagnose --symptom slow-inference --answer which-predictions " .. m, "%-%-answer takes ID=ANSWER" },
      { "diagnose --symptom slow-inference --target iOS99 " .. m, "unknown target 'iOS99'" },
      { "diagnose --symptom slow-inference --compute-units tpu " .. m, "unknown compute units 'tpu'" },
      { "diagnose --symptom slow-inference --format xml " .. m, "unknown %-%-format 'xml' %(text, json, markdown or sarif%)" },
      { "diagnose --symptom slow-inference --bogus " .. m, "unknown option %-%-bogus" },
      { "diagnose --symptom slow-inference --original /nonexistent.mlpackage " .. m, "nonexistent" },
      { "diagnose --symptom slow-inference --playbooks /nonexistent/pb " .. m, "%-%-playbooks: /nonexistent/pb: no such directory" },
      { "diagnose --symptom slow-inference " .. m .. " " .. m, "one model at a time" },
      { "diagnose --symptom", "%-%-symptom needs a value" },
    }
    for _, c in ipairs(cases) do
      local out, err, code = run(c[1])
      assert.equal(2, code, c[1] .. ": " .. err)
      assert.equal("", out, c[1])
      assert.matches(c[2], err)
    end
  end)

  it("reports a playbook file that breaks the contract precisely, and still runs the others", function()
    local _, dir = P.scratch("broken.lua", [[return { id = "team-slow", title = "T", symptom = "s", patterns = { "2b" },
      start = "q", nodes = { { id = "q", ask = "?", answers = { { id = "a", text = "a", next = "nowhere" } } } } }]])
    local out, err, code = run("diagnose --symptom team-slow --playbooks " .. F.q(dir) .. " " .. F.q(R.fp16))
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("broken.lua: playbook 'team%-slow': node 'q' answer 'a' goes to unknown node 'nowhere'", err)
    assert.matches("unknown symptom 'team%-slow'", err)
    local doc
    doc, code, err = run_json("diagnose --json --symptom slow-inference --answer which-predictions=all --playbooks " .. F.q(dir)
      .. " " .. F.q(R.fp32))
    assert.equal(0, code)
    assert.equal("fp32-compute", doc.leaf.id)
    assert.matches("broken.lua", err)
    out, err, code = run("diagnose --list --playbooks " .. F.q(dir))
    assert.equal(1, code, "a broken playbook makes --list exit 1")
    assert.matches("slow%-inference", out)
    -- a rule selection that does not parse is the playbook's fault, reported before any model is read
    local _, dir2 = P.scratch("team.lua", [[return { id = "team-x", title = "T", symptom = "s", patterns = {}, rules = "ane and",
      start = "l", nodes = { { id = "l", pattern = false, title = "L", cause = "c", steps = { "s" }, fix = "f",
      snippet = { python = "x" }, tradeoff = "t" } } }]])
    out, err, code = run("diagnose --symptom team-x --playbooks " .. F.q(dir2) .. " " .. F.q(R.fp16))
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("team%.lua: playbook 'team%-x': field 'rules': %-%-select \"ane and\": expected a name", err)
  end)

  it("runs a team playbook from --playbooks", function()
    local _, dir = P.scratch("team.lua", [[return { id = "team-check", title = "Team", symptom = "our symptom", patterns = {},
      start = "fp16", nodes = {
        { id = "fp16", ask = "fp16?", check = function(m, ctx) return ctx:finding("fp32-compute") and "no" or "yes", "from the rule" end,
          answers = { { id = "yes", text = "yes", next = "ok" }, { id = "no", text = "no", next = "bad" } } },
        { id = "ok", pattern = false, title = "OK", cause = "fine", steps = { "none" }, fix = "nothing", snippet = { python = "pass" }, tradeoff = "none" },
        { id = "bad", pattern = "2b", title = "Bad", cause = "fp32", steps = { "convert" }, fix = "fp16", snippet = { python = "pass" }, tradeoff = "none" },
      } }]])
    local doc = run_json("diagnose --json --symptom team-check --playbooks " .. F.q(dir) .. " " .. F.q(R.fp32))
    assert.equal("bad", doc.leaf.id)
    assert.equal("from the rule", doc.steps[1].evidence)
  end)
end)

describe("mlsh checklist", function()
  local fx, R
  setup(function()
    fx = P.shared()
    R = fx.rules
  end)

  it("prints {checklist, items: [{id, text, status, evidence}]} and exits 1 on a failed item", function()
    local doc, code = run_json("checklist production --format json --target iOS16 " .. F.q(R.dropout_prog))
    assert.equal(1, code)
    assert.equal("production", doc.checklist)
    local by = {}
    for _, it in ipairs(doc.items) do
      by[it.id] = it
      assert.is_truthy(it.status == "pass" or it.status == "fail" or it.status == "unknown")
    end
    assert.equal("fail", by["eval-mode"].status)
    assert.matches("random_bernoulli", by["eval-mode"].evidence)
    assert.equal("pass", by["deployment-target"].status)
    assert.equal("unknown", by["accuracy-test"].status)
  end)

  it("exits 0 when nothing fails; unknowns are reported, not asked", function()
    local out, err, code = run("checklist diagnostic --static --target iOS16 " .. F.q(fx.complete))
    assert.equal(0, code, out .. err)
    assert.matches("%[ %?%? %] Tried %.cpuOnly", out)
    assert.matches("%d+ pass, 0 fail, %d+ unknown", out)
  end)

  it("takes answers for the unknown items", function()
    local answers = P.scratch("answers.lua", 'return { ["accuracy-test"] = "yes", profiling = false }')
    local doc, code = run_json("checklist production --json --answers " .. F.q(answers) .. " --answer fallbacks=yes " .. F.q(R.fp16))
    assert.equal(1, code, "profiling answered no fails the checklist")
    local by = {}
    for _, it in ipairs(doc.items) do by[it.id] = it end
    assert.equal("pass", by["accuracy-test"].status)
    assert.equal("answer", by["accuracy-test"].by)
    assert.equal("fail", by.profiling.status)
    assert.equal("pass", by.fallbacks.status)
  end)

  it("--list shows the three checklists", function()
    local out, _, code = run("checklist --list")
    assert.equal(0, code)
    assert.matches("conversion%s+8 items", out)
    assert.matches("diagnostic%s+11 items", out)
    assert.matches("production%s+10 items", out)
  end)

  it("is 2 on bad input", function()
    local bad_answers = P.scratch("answers.lua", "return { [1] = 'yes' }")
    local m = F.q(R.fp16)
    local cases = {
      { "checklist", "no checklist given" },
      { "checklist productoin " .. m, "unknown checklist 'productoin' %(did you mean 'production'%?%)" },
      { "checklist production", "no model given" },
      { "checklist production " .. F.q(R.not_model), "not a Core ML model" },
      { "checklist production --answers " .. F.q(bad_answers) .. " " .. m, "keys must be item ids" },
      { "checklist production --answer acuracy-test=yes " .. m, "has no item 'acuracy%-test' %(did you mean 'accuracy%-test'%?%)" },
      { "checklist production --answer accuracy-test=perhaps " .. m, "must be pass/fail" },
      { "checklist production --format yaml " .. m, "unknown %-%-format 'yaml'" },
      { "checklist production --checklists /nonexistent " .. m, "no such directory" },
    }
    for _, c in ipairs(cases) do
      local out, err, code = run(c[1])
      assert.equal(2, code, c[1] .. ": " .. err)
      assert.equal("", out, c[1])
      assert.matches(c[2], err)
    end
  end)
end)

describe("mlsh check --format", function()
  it("accepts markdown and sarif and still refuses unknown formats", function()
    local R = P.shared().rules
    local out, _, code = run("check --format markdown " .. F.q(R.fp16))
    assert.equal(0, code)
    assert.matches("^## mlsh check", out)
    local doc = run_json("check --format sarif " .. F.q(R.fp16))
    assert.equal("2.1.0", doc.version)
    local err
    out, err, code = run("check --format yaml " .. F.q(R.fp16))
    assert.equal(2, code)
    assert.matches("unknown %-%-format 'yaml' %(text, json, markdown or sarif%)", err)
  end)
end)
