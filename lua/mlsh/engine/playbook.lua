-- mlsh.engine.playbook — the diagnostic decision trees: loading and validating playbook files, the check
-- context they (and the checklists) run against, walking a tree with automatic checks and answers,
-- and the interactive walk of the REPL's diagnose(). The contract is in docs/playbooks.md.
--
--   local playbook = require "mlsh.engine.playbook"
--   local set = playbook.discover{ dirs = {...} }     -- rules/playbooks/ of the install, MLSH_PLAYBOOKS, dirs
--   local pb = set.by_id["slow-inference"]
--   local ctx = playbook.context(m, { target = 8, compute_units = "ALL", original = m0 })
--   local r = playbook.walk(pb, ctx, { answers = { ["which-predictions"] = "all" } })
--   r.leaf (nil when a question stays open: r.needs), r.path, r.steps, r.findings
--   playbook.result_json(r)    -- the `mlsh diagnose --format json` document
--
-- A playbook file returns {id, title, symptom, patterns, start, nodes, rules?, pressure?}. A node is a
-- question {id, ask, answers = {{id, text, next}}, check?, why?, model_optional?} or a leaf
-- {id, pattern, title, cause, steps, fix, snippet = {python?, swift?}, tradeoff, facts?}. A check
-- is function(m, ctx) -> answer id, evidence (nil when the file cannot tell). An answer given by the
-- engineer wins over a check (they may have measured on a device); the disagreement is noted.
local rules = require "mlsh.engine.rules"
local sandbox = require "mlsh.sandbox"
local context = require "mlsh.engine.context"
local compression = require "mlsh.facts.compression"
local sizes = require "mlsh.facts.sizes"

local M = {}

M.ID_PATTERN = "^[%w][%w_.%-]*$" -- (mlsh.engine.playbook_contract.ID_PATTERN)

-- ---- small helpers ---------------------------------------------------------------------------------

local contract = require "mlsh.engine.contract"
local playbook_contract = require "mlsh.engine.playbook_contract"
M.suggest = contract.suggest

local sorted_keys = contract.sorted_keys


-- "pass" and what is compressed when any weight is; nil otherwise (checklists share this check).
function M.compressed_weights(ctx)
  local c = ctx:compression()
  if not c.any then return nil end
  return "pass", string.format("%d palettized, %d quantized, %d pruned weight(s)", c.kinds.palettization,
    c.kinds.quantization, c.kinds.pruning)
end

local function pct(x) return string.format("%.0f%%", (x or 0) * 100) end
M.pct = pct

-- ---- validation: mlsh.engine.playbook_contract ----------------------------------------------------

M.validate = playbook_contract.validate

-- ---- loading ---------------------------------------------------------------------------------------

-- The environment a playbook (or checklist) file runs in is a rule file's (its own globals, a
-- reduced os, print to stderr, the --safe sandbox when on), without `fallback`, which only rule
-- folders declare.
function M.environment(where)
  local env = require("mlsh.engine.rules").environment(where)
  env.fallback = nil
  return env
end

-- Load one file with `validate(table, path)`; returns the validated table or nil, message.
function M.load_with(path, validate, what)
  local env = M.environment(path)
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  local ok, res = require("mlsh.engine.rules").guarded_call(what .. " file " .. path, chunk)
  if not ok then
    res = tostring(res)
    return nil, res:find(path, 1, true) and res or (path .. ": " .. res)
  end
  if res == nil then return nil, path .. ": returned nothing (a " .. what .. " file returns a " .. what .. " table)" end
  return validate(res, path)
end

function M.load_file(path) return M.load_with(path, M.validate, "playbook") end

local list_lua = rules.list_lua
M.list_lua = list_lua

-- Folders of `kind` ("playbooks" | "checklists"): the install's rules/<kind>, $MLSH_<KIND> (colon
-- separated), then opts.dirs; a later file with the same id replaces an earlier one.
function M.dirs_of(kind, opts)
  opts = opts or {}
  local dirs = {}
  local home = rules.home()
  if home and opts.builtin ~= false then dirs[#dirs + 1] = { path = home .. "/rules/" .. kind, builtin = true } end
  local env = opts.env ~= nil and opts.env or os.getenv("MLSH_" .. kind:upper())
  if env and env ~= "" then
    for d in env:gmatch("[^:]+") do dirs[#dirs + 1] = { path = d, from = "MLSH_" .. kind:upper() } end
  end
  for _, d in ipairs(opts.dirs or {}) do dirs[#dirs + 1] = { path = d, from = "--" .. kind } end
  return dirs
end

-- Discover every file of `kind` with `loader(path)`. Returns {list, by_id, errors = {{file, message}},
-- notes} or nil, message when a folder named by the user does not exist.
function M.discover_kind(kind, loader, opts)
  local fs = require("mlsh.core").fs
  local set = { list = {}, by_id = {}, errors = {}, notes = {} }
  for _, d in ipairs(M.dirs_of(kind, opts)) do
    local k = fs.exists(d.path)
    if k ~= "dir" then
      if not d.builtin then
        return nil, string.format("%s: %s: %s", d.from, d.path, k and "not a directory" or "no such directory")
      end
    else
      for _, name in ipairs(list_lua(d.path)) do
        local path = d.path .. "/" .. name
        local item, err = loader(path)
        if item then
          if set.by_id[item.id] then
            set.notes[#set.notes + 1] = string.format("%s '%s' from %s replaces the one from %s", kind:sub(1, -2),
              item.id, path, set.by_id[item.id].source)
          end
          set.by_id[item.id] = item
        else
          set.errors[#set.errors + 1] = { file = path, message = err }
        end
      end
    end
  end
  for _, id in ipairs(sorted_keys(set.by_id)) do set.list[#set.list + 1] = set.by_id[id] end
  return set
end

function M.discover(opts) return M.discover_kind("playbooks", M.load_file, opts) end

-- ---- answers -----------------------------------------------------------------------------------------

-- An answers file is Lua returning {["question-id"] = "answer-id", ...}; it runs with no globals.
function M.load_answers(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then
    return nil, (tostring(err):gsub("^cannot open ", ""))
  end
  local ok, res = pcall(chunk)
  if not ok then
    res = tostring(res)
    return nil, res:find(path, 1, true) and res or (path .. ": " .. res)
  end
  if type(res) ~= "table" then
    return nil, string.format("%s: an answers file returns a table {[\"question-id\"] = \"answer-id\"}, got %s", path, type(res))
  end
  for k, v in pairs(res) do
    if type(k) ~= "string" then return nil, string.format("%s: keys must be question ids (strings), got %s", path, type(k)) end
    if type(v) ~= "string" and type(v) ~= "boolean" then
      return nil, string.format("%s: the answer to '%s' must be a string, got %s", path, k, type(v))
    end
  end
  return res
end

-- Check answers against a playbook: every key a question, every value one of its answers.
function M.check_answers(pb, answers, where)
  where = where or "answers"
  local questions = {}
  for _, n in ipairs(pb.nodes) do
    if n.kind == "question" then questions[#questions + 1] = n.id end
  end
  table.sort(questions)
  for _, k in ipairs(sorted_keys(answers or {})) do
    local n = pb.by_id[k]
    if not n or n.kind ~= "question" then
      return nil, string.format("%s: playbook '%s' has no question '%s'%s", where, pb.id, k, M.suggest(k, questions))
    end
    local v = answers[k]
    if type(v) == "boolean" then v = v and "yes" or "no" end
    if not n.by_answer[v] then
      local ids = {}
      for _, a in ipairs(n.answers) do ids[#ids + 1] = a.id end
      return nil, string.format("%s: '%s' is not an answer to '%s' (one of: %s)%s", where, tostring(v), k,
        table.concat(ids, ", "), M.suggest(tostring(v), ids))
    end
  end
  return true
end

-- ---- the check context: the model's facts plus the rules' findings (mlsh.engine.context) ----------

M.context = context.new

-- The context and painter of an interactive run (playbook or checklist): m is a Model or a path
-- (a load error is a fact too, not a failure); opts.target a spec number or a name; the painter
-- colours when opts.color says so or, unset, when writing to a terminal.
function M.subject(m, opts, original)
  local mlsh = require "mlsh" -- (by name at call time: mlsh hands this module to scripts)
  local model, load_error, path = m, nil, nil
  if type(m) == "string" then
    path = m
    model, load_error = mlsh.try_load(m)
  end
  local target, target_name = opts.target, nil
  if type(target) == "string" then
    local n, name = require("mlsh.spec").parse_target(target)
    if not n then error(name, 3) end
    target, target_name = n, name
  end
  local ctx = M.context(model, { path = path, load_error = load_error, target = target, target_name = target_name,
    compute_units = opts.compute_units, original = original })
  local term = require "mlsh.term"
  local color = opts.color
  if color == nil then color = opts.output == nil and term.enabled(1) end
  return ctx, term.painter(color)
end

-- the facts' helpers, under the names playbook files use (pb.fmt_bytes, pb.decompress ...)
M.param, M.decompress, M.metrics = compression.param, compression.decompress, compression.metrics
M.SAMPLE_ELEMENTS, M.OUTLIER_DB, M.POOR_DB = compression.SAMPLE_ELEMENTS, compression.OUTLIER_DB, compression.POOR_DB
M.WEIGHT_THRESHOLD, M.SIZE_SCHEMES, M.fmt_bytes = sizes.WEIGHT_THRESHOLD, sizes.SIZE_SCHEMES, sizes.fmt_bytes

-- ---- walking -----------------------------------------------------------------------------------------

local function answer_by_id(node, id)
  for _, a in ipairs(node.answers) do
    if a.id == id then return a end
  end
  return nil
end

local function evidence_text(e)
  if e == nil then return nil end
  if type(e) == "table" then
    local parts = {}
    for _, x in ipairs(e) do parts[#parts + 1] = tostring(x) end
    return table.concat(parts, "; ")
  end
  return tostring(e)
end

-- Run a question's check: answer id and evidence, or nil and why it could not decide.
function M.run_check(pb, node, ctx)
  if not node.check then return nil, nil end
  local key = "check:" .. pb.id .. ":" .. node.id
  local c = ctx._cache[key]
  if c then return c.answer, c.evidence end
  local answer, evidence
  if not ctx.model and not node.model_optional then
    answer, evidence = nil, ctx.load_error and ("the model could not be read: " .. ctx.load_error) or "no model given"
  else
    local model = sandbox.safe and ctx.model and sandbox.read_only(ctx.model) or ctx.model
    local ok, a, e = sandbox.guarded_call("playbook check " .. tostring(node.id), node.check, model, ctx)
    if not ok then
      ctx:note(string.format("check of '%s' in playbook '%s' raised: %s", node.id, pb.id, (tostring(a):gsub("\n.*", ""))))
      answer, evidence = nil, nil
    elseif a ~= nil and not answer_by_id(node, a) then
      ctx:note(string.format("check of '%s' in playbook '%s' returned '%s', which is not one of its answers", node.id,
        pb.id, tostring(a)))
      answer, evidence = nil, nil
    else
      answer, evidence = a, evidence_text(e)
    end
  end
  ctx._cache[key] = { answer = answer, evidence = evidence }
  return answer, evidence
end

-- Decide a question: an answer given wins; else the check. Returns a step table or nil, why.
local function decide(pb, node, ctx, answers)
  local given = answers and answers[node.id]
  if type(given) == "boolean" then given = given and "yes" or "no" end
  local auto, evidence = M.run_check(pb, node, ctx)
  if given ~= nil then
    local a = answer_by_id(node, given)
    if a then
      local step = { node = node.id, question = node.ask, answer = a.id, answer_text = a.text, by = "answer",
                     next = a.next }
      if auto and auto ~= a.id then
        step.check_answer, step.check_evidence = auto, evidence
        ctx:note(string.format("'%s': you answered '%s'; the model suggests '%s'%s", node.id, a.id, auto,
          evidence and (" (" .. evidence .. ")") or ""))
      elseif auto then
        step.evidence = evidence
      end
      return step
    end
  end
  if auto then
    local a = answer_by_id(node, auto)
    return { node = node.id, question = node.ask, answer = a.id, answer_text = a.text, by = "check", evidence = evidence,
             next = a.next }
  end
  return nil, evidence
end

-- The open questions from `node` on: the questions nobody answered and no check decided, following
-- decided branches and every branch of an open question (the first one blocks the walk).
local function open_questions(pb, node, ctx, answers)
  local needs, seen, queue = {}, {}, { node }
  while #queue > 0 do
    local n = table.remove(queue, 1)
    if not seen[n.id] and n.kind == "question" then
      seen[n.id] = true
      local step, why = decide(pb, n, ctx, answers)
      if step then
        queue[#queue + 1] = pb.by_id[step.next]
      else
        needs[#needs + 1] = { id = n.id, question = n.ask, why = n.why, answers = n.answers, unknown = why }
        for _, a in ipairs(n.answers) do queue[#queue + 1] = pb.by_id[a.next] end
      end
    end
  end
  return needs
end

-- Walk a playbook. opts: answers ({question id = answer id}), ask (function(node, ctx, why) -> answer
-- id | nil, for interactive use). Returns the result table (see result_json).
function M.walk(pb, ctx, opts)
  opts = opts or {}
  local answers = opts.answers or {}
  local r = { playbook = pb, symptom = pb.id, path = {}, steps = {}, needs = {}, ctx = ctx }
  local node = pb.by_id[pb.start]
  local guard = 0
  while node do
    guard = guard + 1
    if guard > #pb.nodes + 1 then error("playbook '" .. pb.id .. "' walk did not end", 0) end
    r.path[#r.path + 1] = node.id
    if node.kind == "leaf" then
      r.leaf = node
      if node.facts and (ctx.model or ctx.load_error) then
        local ok, facts = pcall(node.facts, ctx.model, ctx)
        if ok and type(facts) == "table" then
          r.facts = {}
          for _, f in ipairs(facts) do r.facts[#r.facts + 1] = tostring(f) end
        elseif not ok and ctx.model then -- without a model, facts that need one have nothing to say
          ctx:note(string.format("facts of '%s' raised: %s", node.id, (tostring(facts):gsub("\n.*", ""))))
        end
      end
      break
    end
    local step, why = decide(pb, node, ctx, answers)
    if not step and opts.ask then
      local id = opts.ask(node, ctx, why)
      if id then
        local a = answer_by_id(node, id)
        if a then
          answers[node.id] = id
          step = { node = node.id, question = node.ask, answer = a.id, answer_text = a.text, by = "answer", next = a.next }
        end
      end
    end
    if not step then
      r.needs = open_questions(pb, node, ctx, answers)
      break
    end
    r.steps[#r.steps + 1] = step
    if opts.on_step then opts.on_step(step, node) end
    node = pb.by_id[step.next]
  end
  r.notes = ctx.notes
  return r
end

-- The rules whose findings a diagnosis reports: the playbook's `rules` expression over the rule set.
function M.findings_for(pb, ctx)
  if not ctx.model then return {} end
  local set = ctx:rule_set()
  local pick, err = rules.selector(pb.rules, set)
  if not pick then error(string.format("%s: playbook '%s': field 'rules': %s", pb.source or "?", pb.id, err), 0) end
  local out = {}
  local by_id = {}
  for _, r in ipairs(set.rules) do by_id[r.id] = r end
  for _, f in ipairs(ctx:all_findings()) do
    local r = by_id[f.rule]
    if not r or pick(r) then out[#out + 1] = f end
  end
  return out
end

-- Walk and attach the findings: the whole diagnosis.
function M.diagnose(pb, ctx, opts)
  local r = M.walk(pb, ctx, opts)
  r.findings = M.findings_for(pb, ctx)
  r.summary = rules.summary(r.findings)
  return r
end

-- ---- JSON --------------------------------------------------------------------------------------------

function M.leaf_json(leaf, facts)
  local json = require "mlsh.json"
  return { id = leaf.id, pattern = leaf.pattern or json.null, title = leaf.title, cause = leaf.cause,
           steps = json.array(leaf.steps), fix = leaf.fix,
           snippet = { python = leaf.snippet.python or json.null, swift = leaf.snippet.swift or json.null },
           tradeoff = leaf.tradeoff, facts = json.array(facts or {}) }
end

function M.result_json(r)
  local json = require "mlsh.json"
  local null = json.null
  local ctx, pb = r.ctx, r.playbook
  local steps = json.array({})
  for i, s in ipairs(r.steps) do
    steps[i] = { node = s.node, question = s.question, answer = s.answer, answer_text = s.answer_text, by = s.by,
                 evidence = s.evidence or null, check_answer = s.check_answer or null,
                 check_evidence = s.check_evidence or null }
  end
  local needs = json.array({})
  for i, n in ipairs(r.needs) do
    local answers = json.array({})
    for j, a in ipairs(n.answers) do answers[j] = { id = a.id, text = a.text } end
    needs[i] = { id = n.id, question = n.question, why = n.why or null, answers = answers, unknown = n.unknown or null }
  end
  return {
    symptom = r.symptom, title = pb.title, model = ctx.path or null,
    load_error = ctx.load_error or null,
    target = ctx.target and { name = ctx.target_name, spec = ctx.target } or null,
    compute_units = ctx.compute_units,
    path = json.array(r.path), steps = steps,
    leaf = r.leaf and M.leaf_json(r.leaf, r.facts) or null,
    needs = needs,
    findings = rules.findings_json(r.findings or {}),
    summary = r.summary or { error = 0, warning = 0, info = 0 },
    notes = json.array(r.notes or {}),
    pressure = pb.pressure and { wrong = pb.pressure.wrong, right = pb.pressure.right,
                                 checks = json.array(pb.pressure.checks) } or null,
  }
end

-- ---- interactive (REPL) --------------------------------------------------------------------------

-- Read one line (readline when available); nil at end of input.
local function default_input(prompt)
  local core = require "mlsh.core"
  if core.repl and core.repl.readline then return core.repl.readline(prompt) end
  io.write(prompt)
  io.flush()
  return io.read("l")
end

-- Ask a numbered question until a valid choice; returns the chosen index, or nil (quit / end of input).
function M.ask_choice(io_, title, choices, help)
  local out = io_.output
  out(title .. "\n")
  for i, c in ipairs(choices) do out(string.format("  %d. %s\n", i, c)) end
  while true do
    local line = io_.input(string.format("choose 1-%d (? for help, q to stop): ", #choices))
    if not line then return nil end
    line = line:match("^%s*(.-)%s*$")
    if line == "q" or line == "quit" then return nil end
    if line == "?" then
      out((help or "pick the number of the answer that fits") .. "\n")
    else
      local n = tonumber(line)
      if n and choices[n] then return math.tointeger(n) end
      for i, c in ipairs(choices) do
        if type(io_.ids) == "table" and io_.ids[i] == line then return i end
        if c == line then return i end
      end
      out("  not a choice: " .. line .. "\n")
    end
  end
end

-- The REPL's diagnose(m [, symptom [, opts]]): asks the symptom when not given, then only the
-- questions the checks cannot decide; prints the path, the findings and the fix. m: a Model, a path
-- or nil. opts: target ("iOS17" or a number), compute_units, original (Model or path), answers,
-- input (function(prompt) -> line), output (function(s)), color (bool).
function M.interactive(m, symptom, opts)
  opts = opts or {}
  local mlsh = require "mlsh"
  local out = opts.output or function(s) io.write(s) io.flush() end
  local io_ = { input = opts.input or default_input, output = out }
  local set, derr = M.discover({ dirs = opts.dirs })
  if not set then error(derr, 2) end
  if type(m) == "string" and symptom == nil and set.by_id[m] then m, symptom = nil, m end
  local pb
  if symptom then
    pb = set.by_id[symptom]
    if not pb then
      local ids = {}
      for _, p in ipairs(set.list) do ids[#ids + 1] = p.id end
      error(string.format("unknown symptom '%s'%s (one of: %s)", tostring(symptom), M.suggest(tostring(symptom), ids),
        table.concat(ids, ", ")), 2)
    end
  else
    local choices, ids = {}, {}
    for i, p in ipairs(set.list) do choices[i] = p.symptom .. "  [" .. p.id .. "]"; ids[i] = p.id end
    io_.ids = ids
    local i = M.ask_choice(io_, "What is the symptom?", choices)
    io_.ids = nil
    if not i then out("diagnosis stopped\n") return nil end
    pb = set.list[i]
  end
  local original = opts.original
  if type(original) == "string" then original = mlsh.load(original) end
  local ctx, paint = M.subject(m, opts, original)
  out(paint.bold(pb.title) .. " — " .. pb.symptom .. "\n")
  local qn = 0
  local r = M.walk(pb, ctx, {
    answers = opts.answers and (function()
      local c = {}
      for k, v in pairs(opts.answers) do c[k] = v end
      return c
    end)() or nil,
    on_step = function(step)
      if step.by == "check" then
        out(string.format("  %s %s → %s%s\n", paint.green("✓"), step.question, step.answer_text,
          step.evidence and paint.dim("  (" .. step.evidence .. ")") or ""))
      end
    end,
    ask = function(node, _, why)
      qn = qn + 1
      local choices, ids = {}, {}
      for i, a in ipairs(node.answers) do choices[i], ids[i] = a.text, a.id end
      io_.ids = ids
      local title = string.format("%s %s", paint.bold(qn .. "."), node.ask)
      if why and why ~= "" then title = title .. paint.dim("  (the model cannot tell: " .. why .. ")") end
      local i = M.ask_choice(io_, title, choices, node.why)
      io_.ids = nil
      return i and node.answers[i].id or nil
    end,
  })
  r.findings = M.findings_for(pb, ctx)
  r.summary = rules.summary(r.findings)
  out(require("mlsh.report.text").diagnose(r, { paint = paint }))
  return setmetatable(r, { __tostring = function(x)
    if x.leaf then return string.format("diagnosis %s: %s [%s]", x.symptom, x.leaf.id, x.leaf.pattern or "-") end
    return string.format("diagnosis %s: open (%d question(s))", x.symptom, #x.needs)
  end })
end

return M
