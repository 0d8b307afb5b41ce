-- The playbook engine and the built-in playbooks: the contract a playbook file must meet (precise
-- errors), every path of every tree driven by scripted answers on built fixtures, the automatic
-- checks picking branches from what the model shows, answers files, open questions, compression
-- facts, decompression and --original comparisons, and the interactive walk.
local json = require "mlsh.json"
local mlsh = require "mlsh"
local playbook = require "mlsh.engine.playbook"
local P = require "playbook_fixtures"

local SYMPTOMS = { "load-failure", "slow-inference", "high-memory", "accuracy-after-compression", "conversion-failure",
                   "works-in-simulator-not-device", "ship-now" }

-- A minimal valid playbook table, to break one field at a time.
local function valid()
  return {
    id = "tiny", title = "Tiny", symptom = "a tiny symptom", patterns = { "2b" }, start = "q",
    nodes = {
      { id = "q", ask = "Is it?", answers = { { id = "yes", text = "yes", next = "leaf-a" }, { id = "no", text = "no", next = "leaf-b" } } },
      { id = "leaf-a", pattern = "2b", title = "A", cause = "because", steps = { "look" }, fix = "fix it",
        snippet = { python = "print(1)" }, tradeoff = "none" },
      { id = "leaf-b", pattern = false, title = "B", cause = "because", steps = { "look" }, fix = "fix it",
        snippet = { swift = "print(1)" }, tradeoff = "none" },
    },
  }
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return c
end

-- Every root-to-leaf path of a playbook: {answers = {q = a}, leaf = id, path = {ids}}.
local function all_paths(pb)
  local out = {}
  local function walk(id, answers, path)
    local n = pb.by_id[id]
    path = { table.unpack(path) }
    path[#path + 1] = id
    if n.kind == "leaf" then
      out[#out + 1] = { answers = answers, leaf = id, path = path }
      return
    end
    for _, a in ipairs(n.answers) do
      local next_answers = copy(answers)
      next_answers[n.id] = a.id
      walk(a.next, next_answers, path)
    end
  end
  walk(pb.start, {}, {})
  return out
end

local function load(path)
  local m, err = mlsh.try_load(path)
  return m, err
end

describe("playbook contract", function()
  local function rejects(mutate, pattern)
    local t = valid()
    mutate(t)
    local pb, err = playbook.validate(t, "x.lua")
    assert.is_nil(pb, "accepted a broken playbook; expected: " .. pattern)
    assert.matches(pattern, err)
  end

  it("accepts the minimal playbook", function()
    local pb = assert(playbook.validate(valid(), "x.lua"))
    assert.equal("tiny", pb.id)
    assert.equal("question", pb.by_id.q.kind)
    assert.equal("leaf", pb.by_id["leaf-a"].kind)
  end)

  it("names the missing or unknown field", function()
    rejects(function(t) t.start = nil end, "x.lua: playbook 'tiny': missing field 'start'")
    rejects(function(t) t.symtom = "x" end, "unknown field 'symtom' %(did you mean 'symptom'%?%)")
    rejects(function(t) t.nodes[1].asks = "?" end, "node 'q': unknown field 'asks' %(did you mean 'ask'%?%)")
    rejects(function(t) t.nodes[2].snippet = nil end, "node 'leaf%-a': missing field 'snippet'")
    rejects(function(t) t.nodes[2].tradeoff = nil end, "node 'leaf%-a': missing field 'tradeoff'")
    rejects(function(t) t.nodes[1].answers[1].nxt = "leaf-a" end, "answers%[1%]: unknown field 'nxt' %(did you mean 'next'%?%)")
  end)

  it("checks types and values", function()
    rejects(function(t) t.id = "has space" end, "field 'id' must be")
    rejects(function(t) t.patterns = { "9z" } end, "patterns%[1%] must be one of 1a..5b, got '9z'")
    rejects(function(t) t.nodes[2].pattern = "6a" end, "node 'leaf%-a': field 'pattern' must be one of 1a..5b or false")
    rejects(function(t) t.nodes[2].steps = {} end, "field 'steps' must be a non%-empty list")
    rejects(function(t) t.nodes[2].snippet = { ruby = "puts 1" } end, "snippet: unknown language 'ruby'")
    rejects(function(t) t.nodes[2].snippet = {} end, "snippet needs python or swift code")
    rejects(function(t) t.nodes[1].check = "yes" end, "field 'check' must be a function")
    rejects(function(t) t.nodes[1].answers = {} end, "field 'answers' must be a non%-empty list")
    rejects(function(t) t.nodes[1].answers[2].id = "yes" end, "duplicate answer id 'yes'")
    rejects(function(t) t.nodes[3].id = "leaf-a" end, "nodes%[3%]: duplicate node id 'leaf%-a'")
    rejects(function(t) t.nodes[3] = { id = "odd" } end, "node 'odd': is neither a question")
    rejects(function(t) t.pressure = { wrong = "x" } end, "pressure needs non%-empty strings 'wrong' and 'right'")
    rejects(function(t) t.pressure = { wrong = "x", right = "y", check = {} } end, "pressure: unknown field 'check' %(did you mean 'checks'%?%)")
  end)

  it("checks the tree: start, branches, reachability, cycles, patterns", function()
    rejects(function(t) t.start = "qq" end, "field 'start' must name a node, got 'qq' %(did you mean 'q'%?%)")
    rejects(function(t) t.nodes[1].answers[1].next = "leaf-c" end, "node 'q' answer 'yes' goes to unknown node 'leaf%-c' %(did you mean 'leaf%-a'%?%)")
    rejects(function(t) t.nodes[1].answers[2].next = "leaf-a" end, "node 'leaf%-b' is unreachable from start 'q'")
    rejects(function(t)
      t.nodes[4] = { id = "q2", ask = "again?", answers = { { id = "back", text = "back", next = "q" } } }
      t.nodes[1].answers[2].next = "q2"
      t.nodes[3].id = "unused"
    end, "cycle: q %-> q2 %-> q")
    rejects(function(t) t.patterns = { "2b", "3a" } end, "lists pattern '3a' but no leaf carries it")
  end)

  it("loads files with precise errors and reports broken files in a folder", function()
    local dir = require("fixtures").tmpdir()
    local F = require "fixtures"
    F.write(dir .. "/syntax.lua", "return { id = ")
    F.write(dir .. "/raises.lua", "error('boom')")
    F.write(dir .. "/nothing.lua", "local x = 1")
    F.write(dir .. "/broken.lua", "return { id = 'broken', title = 't', symptom = 's', patterns = {}, nodes = {} }")
    F.write(dir .. "/ok.lua", "return " .. [[{ id = "ok-symptom", title = "T", symptom = "s", patterns = {}, start = "l",
      nodes = { { id = "l", pattern = false, title = "L", cause = "c", steps = {"s"}, fix = "f", snippet = { python = "x" }, tradeoff = "t" } } }]])
    local set = assert(playbook.discover({ dirs = { dir } }))
    assert.is_not_nil(set.by_id["ok-symptom"])
    assert.is_not_nil(set.by_id["slow-inference"], "built-in playbooks still load")
    local msgs = {}
    for _, e in ipairs(set.errors) do msgs[#msgs + 1] = e.message end
    local all = table.concat(msgs, "\n")
    assert.matches("syntax.lua:1:", all)
    assert.matches("raises.lua:1: boom", all)
    assert.matches("nothing.lua: returned nothing", all)
    assert.matches("broken.lua: playbook 'broken': missing field 'start'", all)
    local none, err = playbook.discover({ dirs = { "/nonexistent/playbooks" } })
    assert.is_nil(none)
    assert.matches("%-%-playbooks: /nonexistent/playbooks: no such directory", err)
  end)
end)

describe("built-in playbooks", function()
  local set
  setup(function() set = assert(playbook.discover({})) end)

  it("load without errors and cover every symptom id and pattern", function()
    assert.same({}, set.errors)
    local patterns = {}
    for _, id in ipairs(SYMPTOMS) do
      local pb = set.by_id[id]
      assert.is_not_nil(pb, id)
      for _, n in ipairs(pb.nodes) do
        if n.kind == "leaf" and n.pattern then patterns[n.pattern] = true end
      end
    end
    for _, p in ipairs(require("mlsh.engine.rules").PATTERNS) do assert.is_true(patterns[p] == true, "no leaf for pattern " .. p) end
    assert.is_not_nil(set.by_id["works-in-simulator-not-device"].pressure)
    assert.is_not_nil(set.by_id["ship-now"].pressure)
  end)

  it("every leaf carries a snippet, steps and a trade-off; pressure scenarios carry both approaches", function()
    for _, pb in ipairs(set.list) do
      for _, n in ipairs(pb.nodes) do
        if n.kind == "leaf" then
          assert.is_true(#n.steps > 0 and (n.snippet.python or n.snippet.swift) ~= nil and n.tradeoff ~= "", pb.id .. "/" .. n.id)
        end
      end
      if pb.pressure then
        assert.is_true(#pb.pressure.checks > 0, pb.id)
      end
    end
  end)

  -- every path of every tree, answers scripted, once without a model and once on a fixture whose
  -- checks may disagree (answers win, the disagreement is noted)
  it("reaches the expected leaf on every path with scripted answers", function()
    local fx = P.shared()
    local count = 0
    for _, id in ipairs(SYMPTOMS) do
      local pb = set.by_id[id]
      for _, case in ipairs(all_paths(pb)) do
        for _, path in ipairs({ false, fx.complete }) do
          local m = path and load(path) or nil
          local ctx = playbook.context(m, { path = path or nil, target = 8 })
          local r = playbook.diagnose(pb, ctx, { answers = copy(case.answers) })
          assert.is_not_nil(r.leaf, id .. ": no leaf for answers " .. json.encode(case.answers))
          assert.equal(case.leaf, r.leaf.id, id)
          assert.same(case.path, r.path)
          assert.same({}, r.needs)
          if m then m:close() end
          count = count + 1
        end
      end
    end
    assert.is_true(count >= 2 * 60, "paths driven: " .. count)
  end)
end)

describe("automatic checks pick the branch from the model", function()
  local fx, R, set
  setup(function()
    fx = P.shared()
    R = fx.rules
    set = assert(playbook.discover({}))
  end)

  local function diagnose(symptom, path, answers, opts)
    opts = opts or {}
    local m, err = load(path)
    local original = opts.original and assert(load(opts.original)) or nil
    local ctx = playbook.context(m, { path = path, load_error = err, target = opts.target, compute_units = opts.cu,
      original = original, memory_budget = opts.budget, calibrated = opts.calibrated })
    return playbook.diagnose(set.by_id[symptom], ctx, { answers = answers or {} })
  end

  -- {symptom, fixture, answers, opts, expected path}; every question on the path without an answer
  -- must have been decided by a check
  local CASES = {
    { "load-failure", "not_model", nil, nil, "readable>corrupt-file" },
    { "load-failure", "incomplete", nil, nil, "readable>incomplete-package" },
    { "load-failure", "truncated_weights", nil, nil, "readable>incomplete-package" },
    { "load-failure", "op_too_new", nil, nil, "readable>load-blockers>op-not-in-opset" },
    { "load-failure", "nn_custom", nil, nil, "readable>load-blockers>custom-layer" },
    { "load-failure", "wide_input", nil, nil, "readable>load-blockers>layout-limits" },
    { "load-failure", "spec8_complete", nil, { target = 7 }, "readable>load-blockers>spec-vs-os>unsupported-version" },
    { "slow-inference", "fp32", { ["which-predictions"] = "all" }, nil, "which-predictions>precision>fp32-compute" },
    { "slow-inference", "gather_prog", { ["which-predictions"] = "all" }, nil, "which-predictions>precision>ane-coverage>ane-cut" },
    { "slow-inference", "nn_range", { ["which-predictions"] = "all" }, { cu = "cpu_only" },
      "which-predictions>precision>ane-coverage>dynamic-shapes>range-shapes" },
    { "slow-inference", "big_fp16", { ["which-predictions"] = "all" }, nil,
      "which-predictions>precision>ane-coverage>dynamic-shapes>model-size>too-large-for-ane" },
    { "slow-inference", "fp16", { ["which-predictions"] = "all" }, { cu = "cpu_and_gpu" },
      "which-predictions>precision>ane-coverage>dynamic-shapes>model-size>compute-units>compute-units-cpu" },
    { "slow-inference", "w8a8", { ["which-predictions"] = "device" }, nil, "which-predictions>device-compression>int8-activations" },
    { "slow-inference", "q4_block", { ["which-predictions"] = "device" }, nil, "which-predictions>device-compression>int4-blocks" },
    { "high-memory", "huge_weights", nil, nil, "when>weights-size>compress-weights" },
    { "high-memory", "fp16", { when = "load" }, { budget = 400 }, "when>weights-size>compress-weights" },
    { "high-memory", "stateful", { when = "over-time", concurrency = "no" }, nil, "when>concurrency>instances>state-per-request" },
    { "accuracy-after-compression", "fp16", nil, nil, "compression-kind>not-compressed" },
    { "accuracy-after-compression", "pal2", nil, nil, "compression-kind>palette-bits>palette-too-few-bits" },
    { "accuracy-after-compression", "pal4", nil, nil, "compression-kind>palette-bits>palette-granularity" },
    { "accuracy-after-compression", "pal6_outliers", nil, { original = "orig_outliers" },
      "compression-kind>palette-bits>palette-spread>palette-sensitive-layers" },
    { "accuracy-after-compression", "pal6_plain", nil, { original = "orig_plain" },
      "compression-kind>palette-bits>palette-spread>palette-training-time" },
    { "accuracy-after-compression", "pal4_grouped", nil, { original = "orig_plain" },
      "compression-kind>palette-bits>palette-spread>palette-training-time" },
    { "accuracy-after-compression", "w8a8", { calibration = "few" }, nil,
      "compression-kind>activation-quant>calibration>more-calibration" },
    { "accuracy-after-compression", "q8_tensor", nil, nil, "compression-kind>activation-quant>quant-granularity>quant-per-tensor" },
    { "accuracy-after-compression", "q4_channel", nil, nil, "compression-kind>activation-quant>quant-granularity>quant-per-block" },
    { "accuracy-after-compression", "q8_outliers", nil, { original = "orig_outliers" },
      "compression-kind>activation-quant>quant-granularity>quant-spread>quant-sensitive-layers" },
    { "accuracy-after-compression", "q8_plain", nil, { original = "orig_plain" },
      "compression-kind>activation-quant>quant-granularity>quant-spread>quant-training-time" },
    { "accuracy-after-compression", "sparse80", nil, nil, "compression-kind>sparsity>too-sparse" },
    { "accuracy-after-compression", "sparse50_binary", nil, { original = "orig_binary" },
      "compression-kind>sparsity>prune-spread>prune-sensitive-layers" },
    { "accuracy-after-compression", "sparse50_plain", nil, { original = "orig_plain" },
      "compression-kind>sparsity>prune-spread>prune-fine-tune" },
    { "conversion-failure", "nn_image_raw", { ["failure-kind"] = "wrong-output" }, nil, "failure-kind>preprocessing>preprocessing-missing" },
    { "conversion-failure", "dropout_prog", { ["failure-kind"] = "wrong-output" }, nil,
      "failure-kind>preprocessing>eval-mode>train-mode-export" },
    { "conversion-failure", "fp32", { ["failure-kind"] = "wrong-output", layout = "mismatch" }, nil,
      "failure-kind>preprocessing>eval-mode>precision>layout>input-layout" },
    { "works-in-simulator-not-device", "spec8_complete", { ["device-symptom"] = "load-fails" }, { target = 7 },
      "device-symptom>device-os>device-os-too-old" },
    { "works-in-simulator-not-device", "wide_input", { ["device-symptom"] = "load-fails" }, { target = 8 },
      "device-symptom>device-os>device-blockers>device-load-blocker" },
    { "works-in-simulator-not-device", "fp16", { ["device-symptom"] = "load-fails" }, { target = 8 },
      "device-symptom>device-os>device-blockers>device-compute-plan" },
    { "works-in-simulator-not-device", "fp16", { ["device-symptom"] = "wrong-output" }, nil, "device-symptom>device-precision>device-fp16" },
    { "works-in-simulator-not-device", "fp32", { ["device-symptom"] = "wrong-output" }, nil, "device-symptom>device-precision>device-inputs" },
    { "works-in-simulator-not-device", "huge_weights", { ["device-symptom"] = "killed" }, nil,
      "device-symptom>device-memory>device-memory-weights" },
    { "works-in-simulator-not-device", "fp16", { ["device-symptom"] = "killed" }, nil, "device-symptom>device-memory>device-memory-runtime" },
    { "ship-now", "spec8_prog", nil, { target = 7 }, "blockers>blocker-load" },
    { "ship-now", "huge_weights", nil, nil, "blockers>blocker-memory" },
    { "ship-now", "dropout_prog", nil, nil, "blockers>correctness>fix-correctness" },
    { "ship-now", "nn_plain", nil, nil, "blockers>correctness>cheap-wins>take-cheap-wins" },
    { "ship-now", "fp16", { ["accuracy-test"] = "yes" }, nil, "blockers>correctness>cheap-wins>accuracy-test>ship-and-schedule" },
  }

  for _, c in ipairs(CASES) do
    it(string.format("%s on %s -> %s", c[1], c[2], c[5]:match("[^>]+$")), function()
      local path = fx[c[2]] or R[c[2]]
      assert.is_not_nil(path, c[2])
      local opts = c[4] and copy(c[4]) or {}
      if opts.original then opts.original = fx[opts.original] end
      local r = diagnose(c[1], path, c[3] and copy(c[3]) or nil, opts)
      assert.equal(c[5], table.concat(r.path, ">"))
      assert.is_not_nil(r.leaf)
      for _, s in ipairs(r.steps) do
        if not (c[3] and c[3][s.node]) then assert.equal("check", s.by, s.node .. " should be decided by a check") end
        if s.by == "check" then assert.is_string(s.evidence, s.node .. " has no evidence") end
      end
      assert.same({}, r.notes)
    end)
  end

  it("stops at the first question the file cannot answer and lists the open ones", function()
    local r = diagnose("slow-inference", R.fp16, nil, { calibrated = false }) -- a tiny fixture: the first stage
    assert.is_nil(r.leaf)
    assert.same({ "which-predictions" }, r.path)
    assert.equal("which-predictions", r.needs[1].id)
    local ids = {}
    for _, n in ipairs(r.needs) do ids[n.id] = true end
    -- under "all" the checks answer everything up to the compute units the app sets
    assert.is_true(ids["compute-units"] and ids["first-load"] and ids["device-kind"])
    assert.is_nil(ids.precision, "precision is decided by a check, never asked")
    -- without --target the OS question stays open for a readable, blocker-free model
    r = diagnose("load-failure", fx.complete, nil)
    assert.same({ "readable", "load-blockers", "spec-vs-os" }, r.path)
    assert.matches("give %-%-target", r.needs[1].unknown)
  end)

  it("lets an answer override a check and notes the disagreement", function()
    local r = diagnose("slow-inference", R.fp32, { ["which-predictions"] = "all", precision = "no" }, { cu = "cpu_only" })
    assert.equal("precision", r.steps[2].node)
    assert.equal("answer", r.steps[2].by)
    assert.equal("yes", r.steps[2].check_answer)
    assert.matches("'precision': you answered 'no'; the model suggests 'yes'", r.notes[1])
  end)

  it("asks what needs the original when none is given", function()
    local r = diagnose("accuracy-after-compression", fx.pal6_outliers, nil)
    assert.same({ "compression-kind", "palette-bits", "palette-spread" }, r.path)
    assert.matches("%-%-original", r.needs[1].unknown)
    r = diagnose("accuracy-after-compression", fx.joint, nil)
    assert.same({ "compression-kind" }, r.path)
    assert.matches("several schemes are applied %(palettization %+ pruning%)", r.needs[1].unknown)
  end)

  it("diagnoses an unreadable file only where the first question is about it", function()
    local r = diagnose("load-failure", R.not_model, nil)
    assert.equal("corrupt-file", r.leaf.id)
    assert.matches("not a Core ML model", r.facts[1])
    r = diagnose("slow-inference", R.not_model, { ["which-predictions"] = "all" })
    assert.is_nil(r.leaf)
    assert.matches("could not be read", r.needs[1].unknown)
  end)
end)

describe("checks that misbehave", function()
  local function pb_with(check)
    local t = valid()
    t.nodes[1].check = check
    return assert(playbook.validate(t, "x.lua"))
  end
  it("a check that raises leaves the question open, with a note", function()
    local fx = P.shared()
    local ctx = playbook.context(assert(load(fx.complete)), {})
    local r = playbook.walk(pb_with(function() error("kaput") end), ctx)
    assert.is_nil(r.leaf)
    assert.equal("q", r.needs[1].id)
    assert.matches("check of 'q' in playbook 'tiny' raised: .*kaput", r.notes[1])
  end)
  it("a check returning an unknown answer id is ignored, with a note", function()
    local fx = P.shared()
    local ctx = playbook.context(assert(load(fx.complete)), {})
    local r = playbook.walk(pb_with(function() return "maybe" end), ctx)
    assert.is_nil(r.leaf)
    assert.matches("returned 'maybe', which is not one of its answers", r.notes[1])
  end)
  it("a check is not run without a model unless model_optional", function()
    local called = false
    local r = playbook.walk(pb_with(function() called = true return "yes" end), playbook.context(nil, {}))
    assert.is_false(called)
    assert.equal("no model given", r.needs[1].unknown)
  end)
end)

describe("answers", function()
  local set
  setup(function() set = assert(playbook.discover({})) end)

  it("loads an answers file", function()
    local path = P.scratch("answers.lua", 'return { ["which-predictions"] = "all", precision = true }')
    local a = assert(playbook.load_answers(path))
    assert.equal("all", a["which-predictions"])
    assert.is_true(playbook.check_answers(set.by_id["slow-inference"], { ["which-predictions"] = "all", ["model-size"] = true }))
  end)

  it("refuses malformed answers files with the reason", function()
    local cases = {
      { "return { x = ", "answers.lua:1:" },
      { "return 42", "an answers file returns a table" },
      { "return { [1] = 'yes' }", "keys must be question ids" },
      { "return { q = {} }", "the answer to 'q' must be a string" },
      { "local t = {} return t.x.y", "answers.lua:1: attempt to index" },
      { "return os.exit(3)", "attempt to index a nil value" }, -- no globals: the file cannot run code
    }
    for _, c in ipairs(cases) do
      local path = P.scratch("answers.lua", c[1])
      local a, err = playbook.load_answers(path)
      assert.is_nil(a, c[1])
      assert.matches(c[2], err)
    end
    local a, err = playbook.load_answers("/nonexistent/answers.lua")
    assert.is_nil(a)
    assert.matches("/nonexistent/answers.lua", err)
  end)

  it("refuses unknown questions and answers, with suggestions", function()
    local pb = set.by_id["slow-inference"]
    local ok, err = playbook.check_answers(pb, { ["which-prediction"] = "all" }, "a.lua")
    assert.is_nil(ok)
    assert.equal("a.lua: playbook 'slow-inference' has no question 'which-prediction' (did you mean 'which-predictions'?)", err)
    ok, err = playbook.check_answers(pb, { ["which-predictions"] = "alll" }, "a.lua")
    assert.is_nil(ok)
    assert.equal("a.lua: 'alll' is not an answer to 'which-predictions' (one of: first, all, device) (did you mean 'all'?)", err)
    ok, err = playbook.check_answers(pb, { ["fp32-compute"] = "yes" }, "a.lua")
    assert.is_nil(ok)
    assert.matches("has no question 'fp32%-compute'", err)
  end)
end)

describe("result JSON", function()
  it("has the contract keys with a leaf, and null leaf with needs when open", function()
    local R = P.shared().rules
    local set = assert(playbook.discover({}))
    local m = assert(load(R.fp32))
    local ctx = playbook.context(m, { path = R.fp32 })
    local doc = json.decode(json.encode(playbook.result_json(playbook.diagnose(set.by_id["slow-inference"], ctx,
      { answers = { ["which-predictions"] = "all" } }))))
    assert.equal("slow-inference", doc.symptom)
    assert.same({ "which-predictions", "precision", "fp32-compute" }, doc.path)
    assert.equal("2b", doc.leaf.pattern)
    assert.is_string(doc.leaf.cause)
    assert.is_string(doc.leaf.fix)
    assert.is_string(doc.leaf.snippet.python)
    assert.equal(json.null, doc.leaf.snippet.swift)
    assert.same({}, doc.needs)
    assert.is_true(#doc.findings >= 1)
    for _, f in ipairs(doc.findings) do assert.is_string(f.rule) end
    assert.equal("check", doc.steps[2].by)
    doc = json.decode(json.encode(playbook.result_json(playbook.diagnose(set.by_id["slow-inference"],
      playbook.context(m, { path = R.fp32 }), {}))))
    assert.equal(json.null, doc.leaf)
    assert.equal("which-predictions", doc.needs[1].id)
    assert.equal("all", doc.needs[1].answers[2].id)
  end)
end)

describe("compression facts and --original", function()
  local fx
  setup(function() fx = P.shared() end)

  it("reads schemes, bits, granularity and sparsity from the constexpr ops", function()
    local function facts(name)
      return playbook.context(assert(load(fx[name])), {}):compression()
    end
    local c = facts("pal4")
    assert.equal(3, c.kinds.palettization)
    assert.equal(4, c.palettized[1].nbits)
    assert.equal("per_tensor", c.palettized[1].granularity)
    c = facts("pal4_grouped")
    assert.equal("per_grouped_channel", c.palettized[1].granularity)
    assert.equal(4, c.palettized[1].groups)
    c = facts("q8_tensor")
    assert.equal("per_tensor", c.quantized[1].granularity)
    assert.equal("int8", c.quantized[1].dtype)
    c = facts("q4_block")
    assert.equal("per_block", c.quantized[1].granularity)
    assert.equal(32, c.quantized[1].block_size)
    c = facts("q4_channel")
    assert.equal("per_channel", c.quantized[1].granularity)
    c = facts("sparse80")
    assert.is_true(math.abs(c.sparse[1].sparsity - 0.8) < 0.001)
    c = facts("w8a8")
    assert.equal(2, #c.activation)
    c = facts("orig_plain")
    assert.is_false(c.any)
    c = playbook.context(assert(load(fx.nn_quant)), {}):compression()
    assert.equal(1, c.kinds.quantization)
  end)

  it("decompresses every constexpr form exactly as it was written", function()
    for _, name in ipairs({ "pal2", "pal4", "pal4_grouped", "q8_tensor", "q8_plain", "q4_channel", "q4_block", "sparse80", "joint" }) do
      local m = assert(load(fx[name]))
      local ctx = playbook.context(m, {})
      local n = 0
      for _, op in ipairs(m:ops()) do
        local want = fx.expected[name][op.outputs[1].name]
        if op.type:match("^constexpr_") and want then
          -- Core ML computes in the op's output dtype: fp16 outputs hold fp16-rounded values
          if op.outputs[1].dtype == "fp16" then
            local core = require "mlsh.core"
            want = core.array.decode(core.array.new(want):encode("fp16"), "fp16"):totable()
          end
          local got = assert(playbook.decompress(ctx, op))
          assert.equal(#want, #got)
          for i = 1, #want do
            if got[i] ~= want[i] then error(string.format("%s %s[%d]: %g ~= %g", name, op.name, i, got[i], want[i])) end
          end
          -- a strided sample holds exactly every 7th element
          local sample = assert(playbook.decompress(ctx, op, 7))
          assert.equal((#want + 6) // 7, #sample)
          for k = 1, #sample do
            if sample[k] ~= want[(k - 1) * 7 + 1] then error(string.format("%s %s sample %d differs", name, op.name, k)) end
          end
          n = n + 1
        end
      end
      assert.is_true(n > 0, name)
    end
  end)

  it("measures each weight against the original and judges the spread", function()
    local ctx = playbook.context(assert(load(fx.pal6_outliers)), { original = assert(load(fx.orig_outliers)) })
    local cmp = assert(ctx:compare())
    assert.equal(3, #cmp.rows)
    assert.equal("W3", cmp.rows[1].name)
    assert.is_true(cmp.rows[1].snr_db < cmp.rows[2].snr_db - 6)
    assert.equal("few", (ctx:error_spread()))
    -- the metrics agree with a naive reference loop
    local orig = assert(load(fx.orig_outliers)):weights()[3]:values()
    local lut = playbook.context(assert(load(fx.pal6_outliers)), {})
    local op
    for _, o in ipairs(lut.model:ops()) do
      if o.outputs[1].name == "W3" then op = o end
    end
    local recon = assert(playbook.decompress(lut, op))
    local sig, noise = 0, 0
    for i = 1, #orig do
      sig, noise = sig + orig[i] * orig[i], noise + (orig[i] - recon[i]) ^ 2
    end
    assert.is_true(math.abs(playbook.metrics(orig, recon).snr_db - 10 * math.log(sig / noise, 10)) < 1e-3)
  end)

  it("compares large weights on a sample", function()
    local compression = require "mlsh.facts.compression"
    local saved = compression.SAMPLE_ELEMENTS
    local full = assert(playbook.context(assert(load(fx.q8_outliers)), { original = assert(load(fx.orig_outliers)) }):compare())
    assert.is_nil(full.rows[1].sampled)
    local ok, err = pcall(function()
      compression.SAMPLE_ELEMENTS = 1000
      local ctx = playbook.context(assert(load(fx.q8_outliers)), { original = assert(load(fx.orig_outliers)) })
      local cmp = assert(ctx:compare())
      assert.equal(820, cmp.rows[1].sampled)
      assert.equal("W3", cmp.rows[1].name)
      assert.equal("few", (ctx:error_spread()))
      assert.is_true(math.abs(cmp.rows[2].snr_db - full.rows[2].snr_db) < 3)
    end)
    compression.SAMPLE_ELEMENTS = saved
    assert(ok, err)
  end)

  it("explains why there is nothing to compare", function()
    local ctx = playbook.context(assert(load(fx.pal6_plain)), {})
    local cmp, why = ctx:compare()
    assert.is_nil(cmp)
    assert.equal("no --original model given", why)
    ctx = playbook.context(assert(load(fx.orig_plain)), { original = assert(load(fx.orig_plain)) })
    cmp, why = ctx:compare()
    assert.is_nil(cmp)
    assert.matches("no compressed weight matched", why)
  end)

  it("builds the size table for 8/6/4-bit palettization and pruning", function()
    local ctx = playbook.context(assert(load(fx.rules.huge_weights)), {})
    local rows = {}
    for _, r in ipairs(ctx:size_table()) do rows[r.id] = r end
    local n = 65536 * 16384
    assert.equal(n * 4, rows.stored.bytes)
    assert.equal(n * 2, rows.fp16.bytes)
    assert.equal(n + 512, rows["palettize-8"].bytes)
    assert.equal(n * 6 // 8 + 128, rows["palettize-6"].bytes)
    assert.equal(n // 2 + 32, rows["palettize-4"].bytes)
    assert.equal(n + n // 8, rows["prune-50"].bytes)
    assert.equal(n // 2 + n // 8, rows["prune-75"].bytes)
    assert.equal("iOS18", rows["prune-50-palettize-4"].min_target)
  end)
end)

describe("interactive diagnose", function()
  local function scripted(lines)
    local i, out = 0, {}
    return function()
      i = i + 1
      return lines[i]
    end, function(s) out[#out + 1] = s end, out
  end

  it("asks the symptom, then only what the checks cannot decide", function()
    local R = P.shared().rules
    local set = assert(playbook.discover({}))
    local idx
    for i, p in ipairs(set.list) do
      if p.id == "slow-inference" then idx = i end
    end
    local input, output, out = scripted({ tostring(idx), "?", "seven", "2" })
    local r = playbook.interactive(assert(load(R.fp32)), nil, { input = input, output = output })
    local text = table.concat(out)
    assert.matches("What is the symptom%?", text)
    assert.matches("1%. Which predictions are slow%?", text)
    assert.matches("a slow first prediction is model compilation", text, 1, true)
    assert.matches("not a choice: seven", text)
    assert.matches("✓ Does the model compute in fp32%? → yes", text)
    assert.matches("diagnosis %[2b%] fp32%-compute", text)
    assert.equal("fp32-compute", r.leaf.id)
    assert.equal("diagnosis slow-inference: fp32-compute [2b]", tostring(r))
    assert.is_nil(text:find("\27[", 1, true), "no colour when output is redirected")
  end)

  it("stops cleanly at end of input or q, and takes answer ids", function()
    local input, output, out = scripted({ "q" })
    local r = playbook.interactive(nil, "slow-inference", { input = input, output = output })
    assert.is_nil(r.leaf)
    assert.matches("open %(%d+ question", tostring(r))
    assert.matches("no diagnosis yet", table.concat(out))
    input, output = scripted({ "device", "none", "older-chip" })
    r = playbook.interactive(nil, "slow-inference", { input = input, output = output })
    assert.equal("older-chip", r.leaf.id)
    assert.has_error(function() playbook.interactive(nil, "slow-inferense", { input = input, output = output }) end,
      "unknown symptom 'slow-inferense' (did you mean 'slow-inference'?) (one of: accuracy-after-compression, "
        .. "conversion-failure, high-memory, load-failure, ship-now, slow-inference, works-in-simulator-not-device)")
  end)
end)
