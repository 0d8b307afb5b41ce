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
local spec = require "mlsh.spec"
local types = require "mlsh.types"

local M = {}

M.ID_PATTERN = "^[%w][%w_.%-]*$"

-- ---- small helpers ---------------------------------------------------------------------------------

local contract = require "mlsh.engine.contract"
M.suggest = contract.suggest

local sorted_keys = contract.sorted_keys

local function show(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  return type(v)
end

local GiB, MiB, KiB = 1024 ^ 3, 1024 ^ 2, 1024
-- "pass" and what is compressed when any weight is; nil otherwise (checklists share this check).
function M.compressed_weights(ctx)
  local c = ctx:compression()
  if not c.any then return nil end
  return "pass", string.format("%d palettized, %d quantized, %d pruned weight(s)", c.kinds.palettization,
    c.kinds.quantization, c.kinds.pruning)
end

function M.fmt_bytes(b)
  b = b or 0
  if b >= GiB then return string.format("%.2f GiB", b / GiB) end
  if b >= MiB then return string.format("%.1f MiB", b / MiB) end
  if b >= KiB then return string.format("%.1f KiB", b / KiB) end
  return string.format("%d B", math.floor(b))
end

local function pct(x) return string.format("%.0f%%", (x or 0) * 100) end
M.pct = pct

-- ---- validation ------------------------------------------------------------------------------------

local PATTERN_SET = {}
for _, p in ipairs(rules.PATTERNS) do PATTERN_SET[p] = true end

local PLAYBOOK_FIELDS = {
  id = { required = true, what = "a string of letters, digits, '-', '_' or '.' (the symptom id)" },
  title = { required = true, what = "a non-empty string" },
  symptom = { required = true, what = "a non-empty string: the symptom in the engineer's words" },
  patterns = { required = true, what = "a list of the patterns 1a..5b the tree diagnoses (may be empty)" },
  start = { required = true, what = "the id of the first node" },
  nodes = { required = true, what = "a non-empty list of question and leaf nodes" },
  rules = { what = "a --select expression: the rules whose findings the diagnosis reports" },
  pressure = { what = "{wrong, right, checks}: the wrong and the right approach under pressure" },
  description = { what = "a string" },
}
local QUESTION_FIELDS = {
  id = { required = true, what = "a node id" },
  ask = { required = true, what = "the question, as asked" },
  answers = { required = true, what = "a non-empty list of {id, text, next}" },
  check = { what = "a function(model, ctx) -> answer id, evidence" },
  why = { what = "a string: why the question matters" },
  model_optional = { what = "true when check runs without a readable model" },
}
local LEAF_FIELDS = {
  id = { required = true, what = "a node id" },
  pattern = { required = true, what = "a playbook pattern 1a..5b, or false" },
  title = { required = true, what = "a non-empty string" },
  cause = { required = true, what = "a non-empty string" },
  steps = { required = true, what = "a non-empty list of diagnosis steps (strings)" },
  fix = { required = true, what = "a non-empty string" },
  snippet = { required = true, what = "{python = \"...\", swift = \"...\"} (at least one)" },
  tradeoff = { required = true, what = "a non-empty string: what the fix costs" },
  facts = { what = "a function(model, ctx) -> list of strings the model shows about this cause" },
}
local ANSWER_FIELDS = { id = true, text = true, next = true }
local PRESSURE_FIELDS = { wrong = true, right = true, checks = true }

local nonempty_string, check_fields = contract.nonempty_string, contract.check_fields

local function validate_leaf(n, bad, where)
  local ok, err = check_fields(n, LEAF_FIELDS, bad, where)
  if not ok then return nil, err end
  if n.pattern ~= false and not PATTERN_SET[n.pattern] then
    return bad("%sfield 'pattern' must be one of 1a..5b or false, got %s", where, show(n.pattern))
  end
  for _, k in ipairs({ "title", "cause", "fix", "tradeoff" }) do
    if not nonempty_string(n[k]) then return bad("%sfield '%s' must be a non-empty string", where, k) end
  end
  if type(n.steps) ~= "table" or #n.steps == 0 then return bad("%sfield 'steps' must be a non-empty list of strings", where) end
  for i, s in ipairs(n.steps) do
    if not nonempty_string(s) then return bad("%ssteps[%d] must be a non-empty string", where, i) end
  end
  if type(n.snippet) ~= "table" then return bad("%sfield 'snippet' must be %s", where, LEAF_FIELDS.snippet.what) end
  for k, v in pairs(n.snippet) do
    if k ~= "python" and k ~= "swift" then
      return bad("%ssnippet: unknown language '%s' (python, swift)%s", where, tostring(k), M.suggest(tostring(k), { "python", "swift" }))
    end
    if not nonempty_string(v) then return bad("%ssnippet.%s must be a non-empty string", where, k) end
  end
  if not n.snippet.python and not n.snippet.swift then return bad("%ssnippet needs python or swift code", where) end
  if n.facts ~= nil and type(n.facts) ~= "function" then return bad("%sfield 'facts' must be a function(model, ctx)", where) end
  return { kind = "leaf", id = n.id, pattern = n.pattern or nil, title = n.title, cause = n.cause, steps = n.steps,
           fix = n.fix, snippet = n.snippet, tradeoff = n.tradeoff, facts = n.facts }
end

local function validate_question(n, bad, where)
  local ok, err = check_fields(n, QUESTION_FIELDS, bad, where)
  if not ok then return nil, err end
  if not nonempty_string(n.ask) then return bad("%sfield 'ask' must be a non-empty string", where) end
  if n.why ~= nil and not nonempty_string(n.why) then return bad("%sfield 'why' must be a non-empty string", where) end
  if n.check ~= nil and type(n.check) ~= "function" then return bad("%sfield 'check' must be a function(model, ctx)", where) end
  if n.model_optional ~= nil and type(n.model_optional) ~= "boolean" then
    return bad("%sfield 'model_optional' must be a boolean", where)
  end
  if type(n.answers) ~= "table" or #n.answers == 0 then
    return bad("%sfield 'answers' must be %s", where, QUESTION_FIELDS.answers.what)
  end
  local answers, seen = {}, {}
  for i, a in ipairs(n.answers) do
    local aw = string.format("%sanswers[%d]: ", where, i)
    if type(a) ~= "table" then return bad("%smust be a table {id, text, next}, got %s", aw, type(a)) end
    for k in pairs(a) do
      if not ANSWER_FIELDS[k] then
        return bad("%sunknown field '%s'%s", aw, tostring(k), M.suggest(tostring(k), { "id", "text", "next" }))
      end
    end
    if type(a.id) ~= "string" or not a.id:match(M.ID_PATTERN) then
      return bad("%sfield 'id' must be a word (letters, digits, '-', '_', '.'), got %s", aw, show(a.id))
    end
    if seen[a.id] then return bad("%sduplicate answer id '%s'", aw, a.id) end
    seen[a.id] = true
    if not nonempty_string(a.text) then return bad("%sfield 'text' must be a non-empty string", aw) end
    if type(a.next) ~= "string" then return bad("%sfield 'next' must be a node id, got %s", aw, show(a.next)) end
    answers[i] = { id = a.id, text = a.text, next = a.next }
  end
  return { kind = "question", id = n.id, ask = n.ask, why = n.why, check = n.check, answers = answers,
           by_answer = seen, model_optional = n.model_optional or false }
end

-- Validate a playbook table; returns the normalized playbook or nil, message.
function M.validate(t, where)
  where = where or "playbook"
  if type(t) ~= "table" then return nil, string.format("%s: a playbook must be a table, got %s", where, type(t)) end
  local label = type(t.id) == "string" and string.format("%s: playbook '%s'", where, t.id) or where
  local function bad(fmt, ...) return nil, label .. ": " .. string.format(fmt, ...) end
  local ok, err = check_fields(t, PLAYBOOK_FIELDS, bad, "")
  if not ok then return nil, err end
  if type(t.id) ~= "string" or not t.id:match(M.ID_PATTERN) then
    return bad("field 'id' must be %s, got %s", PLAYBOOK_FIELDS.id.what, show(t.id))
  end
  for _, k in ipairs({ "title", "symptom" }) do
    if not nonempty_string(t[k]) then return bad("field '%s' must be a non-empty string", k) end
  end
  if t.description ~= nil and type(t.description) ~= "string" then return bad("field 'description' must be a string") end
  if t.rules ~= nil and type(t.rules) ~= "string" then return bad("field 'rules' must be a --select expression string") end
  if type(t.patterns) ~= "table" then return bad("field 'patterns' must be %s", PLAYBOOK_FIELDS.patterns.what) end
  for i, p in ipairs(t.patterns) do
    if not PATTERN_SET[p] then return bad("patterns[%d] must be one of 1a..5b, got %s", i, show(p)) end
  end
  local pressure
  if t.pressure ~= nil then
    if type(t.pressure) ~= "table" then return bad("field 'pressure' must be %s", PLAYBOOK_FIELDS.pressure.what) end
    for k in pairs(t.pressure) do
      if not PRESSURE_FIELDS[k] then
        return bad("pressure: unknown field '%s'%s", tostring(k), M.suggest(tostring(k), { "wrong", "right", "checks" }))
      end
    end
    if not nonempty_string(t.pressure.wrong) or not nonempty_string(t.pressure.right) then
      return bad("pressure needs non-empty strings 'wrong' and 'right'")
    end
    local checks = t.pressure.checks or {}
    if type(checks) ~= "table" then return bad("pressure.checks must be a list of strings") end
    for i, c in ipairs(checks) do
      if not nonempty_string(c) then return bad("pressure.checks[%d] must be a non-empty string", i) end
    end
    pressure = { wrong = t.pressure.wrong, right = t.pressure.right, checks = checks }
  end
  if type(t.nodes) ~= "table" or #t.nodes == 0 then return bad("field 'nodes' must be %s", PLAYBOOK_FIELDS.nodes.what) end
  local nodes, by_id, ids = {}, {}, {}
  for i, n in ipairs(t.nodes) do
    if type(n) ~= "table" then return bad("nodes[%d] must be a table, got %s", i, type(n)) end
    if type(n.id) ~= "string" or not n.id:match(M.ID_PATTERN) then
      return bad("nodes[%d]: field 'id' must be a word (letters, digits, '-', '_', '.'), got %s", i, show(n.id))
    end
    if by_id[n.id] then return bad("nodes[%d]: duplicate node id '%s'", i, n.id) end
    local nw = string.format("node '%s': ", n.id)
    local node, nerr
    if n.ask ~= nil or n.answers ~= nil then
      node, nerr = validate_question(n, bad, nw)
    elseif n.cause ~= nil or n.fix ~= nil or n.pattern ~= nil then
      node, nerr = validate_leaf(n, bad, nw)
    else
      return bad("%sis neither a question (ask, answers) nor a leaf (pattern, cause, fix ...)", nw)
    end
    if not node then return nil, nerr end
    nodes[i], by_id[n.id], ids[#ids + 1] = node, node, n.id
  end
  table.sort(ids)
  if type(t.start) ~= "string" or not by_id[t.start] then
    return bad("field 'start' must name a node, got %s%s", show(t.start), type(t.start) == "string" and M.suggest(t.start, ids) or "")
  end
  for _, n in ipairs(nodes) do
    if n.kind == "question" then
      for _, a in ipairs(n.answers) do
        if not by_id[a.next] then
          return bad("node '%s' answer '%s' goes to unknown node '%s'%s", n.id, a.id, a.next, M.suggest(a.next, ids))
        end
      end
    end
  end
  -- every node reachable from start, and no cycles: a decision tree ends at leaves
  local state, order = {}, {}
  local function visit(id, trail)
    if state[id] == "active" then
      return bad("cycle: %s -> %s", table.concat(trail, " -> "), id)
    end
    if state[id] == "done" then return true end
    state[id] = "active"
    trail[#trail + 1] = id
    local n = by_id[id]
    if n.kind == "question" then
      for _, a in ipairs(n.answers) do
        local ok2, e2 = visit(a.next, trail)
        if not ok2 then return nil, e2 end
      end
    end
    trail[#trail] = nil
    state[id] = "done"
    order[#order + 1] = id
    return true
  end
  local vok, verr = visit(t.start, {})
  if not vok then return nil, verr end
  for _, n in ipairs(nodes) do
    if not state[n.id] then return bad("node '%s' is unreachable from start '%s'", n.id, t.start) end
  end
  local reached = {}
  for _, n in ipairs(nodes) do
    if n.kind == "leaf" and n.pattern then reached[n.pattern] = true end
  end
  for _, p in ipairs(t.patterns) do
    if not reached[p] then return bad("lists pattern '%s' but no leaf carries it", p) end
  end
  return { id = t.id, title = t.title, symptom = t.symptom, description = t.description, patterns = t.patterns,
           rules = t.rules, start = t.start, nodes = nodes, by_id = by_id, pressure = pressure, source = where }
end

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

-- ---- the check context (shared with mlsh.checklist) ------------------------------------------------

local Ctx = {}
Ctx.__index = Ctx

-- opts: path, load_error, target (spec number), target_name, compute_units (as given, or nil),
-- original (a model to compare with), memory_budget, device, rule_set, rules_dirs, builtin.
function M.context(m, opts)
  opts = opts or {}
  local cu = opts.compute_units
  if cu then
    local name, err = require("mlsh.placement.coreml").compute_units(cu)
    if not name then error(err, 2) end
    cu = name
  end
  return setmetatable({
    model = m, path = opts.path or (m and m.path) or nil, load_error = opts.load_error,
    target = opts.target, target_name = opts.target_name or (opts.target and spec.target_name(opts.target)) or nil,
    compute_units = cu or "ALL", compute_units_given = cu ~= nil, original = opts.original,
    original_path = opts.original_path or (opts.original and opts.original.path) or nil,
    options = { memory_budget = opts.memory_budget }, device = opts.device,
    given_rules = opts.rule_set, notes = {}, _cache = {},
  }, Ctx)
end

function Ctx:cached(key, fn)
  local c = self._cache
  if c[key] == nil then
    local v = fn()
    c[key] = v == nil and false or v
  end
  return c[key] or nil
end

function Ctx:note(msg)
  for _, n in ipairs(self.notes) do
    if n == msg then return end
  end
  self.notes[#self.notes + 1] = msg
end

function Ctx:rule_set()
  if not self.rule_set_value then
    local set = self.given_rules
    if not set then
      local err
      set, err = rules.discover({})
      if not set then error(err, 0) end
    end
    self.rule_set_value = set
  end
  return self.rule_set_value
end

function Ctx:placement()
  if not self.model then return nil end
  return self:cached("placement", function()
    return require("mlsh.placement.coreml").simulate(self.model, { compute_units = self.compute_units, target = self.target,
      fallbacks = self:rule_set().fallbacks, device = self.device })
  end)
end

function Ctx:required_spec()
  if not self.model then return nil end
  return self:cached("required", function() return require("mlsh.required_spec").explain(self.model) end)
end

-- Every rule's findings over the model (run once); filter: rule id, pattern, category or predicate.
function Ctx:all_findings()
  if not self.model then return {} end
  return self:cached("findings", function()
    local set = self:rule_set()
    local f = rules.run(self.model, set, { target = self.target, compute_units = self.compute_units,
      options = self.options, placement = self:placement(), required = self:required_spec(), device = self.device })
    return f
  end)
end

function Ctx:findings(filter)
  local out = {}
  for _, f in ipairs(self:all_findings()) do
    local keep = filter == nil or (type(filter) == "function" and filter(f))
    if type(filter) == "string" then
      keep = f.rule == filter or f.pattern == filter
      for _, c in ipairs(f.categories or {}) do
        if c == filter then keep = true end
      end
    end
    if keep then out[#out + 1] = f end
  end
  return out
end

function Ctx:finding(rule_id) return self:findings(function(f) return f.rule == rule_id end)[1] end

function Ctx:weights()
  if not self.model then return {} end
  return self:cached("weights", function()
    local ok, w = pcall(self.model.weights, self.model)
    return ok and w or {}
  end)
end

function Ctx:weight_bytes()
  local n = 0
  for _, w in ipairs(self:weights()) do n = n + (w.bytes or 0) end
  return n
end

function Ctx:is_program() return self.model ~= nil and self.model.model_type == "mlProgram" end
function Ctx:is_nn() return self.model ~= nil and self.model.neural_network ~= nil end

-- "coremltools 8.1" from the metadata the converter writes, or nil.
function Ctx:converter()
  if not self.model then return nil end
  local ok, md = pcall(function() return self.model.metadata end)
  local ud = ok and md and md.user_defined or {}
  local ver = ud["com.github.apple.coremltools.version"]
  local src = ud["com.github.apple.coremltools.source"]
  if not ver then return nil end
  return ver, src
end

local COMPUTE_SKIP = { const = true, cast = true }
-- Counts of ML program compute ops by output dtype: {fp16 = n, fp32 = n, total = n}.
function Ctx:compute_dtypes()
  return self:cached("compute_dtypes", function()
    local c = { fp16 = 0, fp32 = 0, total = 0 }
    if not self:is_program() then return c end
    for _, op in ipairs(self.model:ops()) do
      if not COMPUTE_SKIP[op.type] and not op.type:match("^constexpr_") and op.outputs[1] then
        local dt = op.outputs[1].dtype
        if dt == "fp16" or dt == "fp32" then
          c[dt] = c[dt] + 1
          c.total = c.total + 1
        end
      end
    end
    return c
  end)
end

-- Flexible inputs: {range = {names}, enumerated = {names}}.
function Ctx:flexible_inputs()
  local out = { range = {}, enumerated = {} }
  if not self.model then return out end
  for _, f in ipairs(self.model:inputs()) do
    local fl = f.flexibility
    if fl and fl.kind == "range" then out.range[#out.range + 1] = f.name
    elseif fl and fl.kind == "enumerated" then out.enumerated[#out.enumerated + 1] = f.name end
  end
  return out
end

-- ---- compression facts ---------------------------------------------------------------------------

local BITS = { uint1 = 1, uint2 = 2, uint3 = 3, uint4 = 4, uint6 = 6, uint8 = 8, int4 = 4, int8 = 8, uint16 = 16,
               int16 = 16 }

-- {dtype, shape, value_msg, name} of a constexpr parameter: an attribute (iOS16/17) or an input (iOS18).
local function param(op, name)
  local v = op.msg:get("attributes", name)
  if v then
    local t = types.value_type(v.type)
    return { dtype = t.dtype, shape = t.shape or {}, value_msg = v }
  end
  local ok, inputs = pcall(op.inputs, op)
  for _, e in ipairs(ok and inputs or {}) do
    if e.param == name then return { dtype = e.dtype, shape = e.shape or {}, value_msg = e.value_msg, name = e.name } end
  end
  return nil
end
M.param = param

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do
    if d < 0 then return nil end
    n = n * d
  end
  return n
end

local function producer_of(op, name)
  return name and op._producers and op._producers[name] or nil
end

-- Classify the ML program's constexpr ops and activation quantization, and NeuralNetwork quantized
-- weights. Returns {palettized, quantized, sparse, activation, kinds = {palettization = n, ...}, any}.
function Ctx:compression()
  return self:cached("compression", function()
    local c = { palettized = {}, quantized = {}, sparse = {}, activation = {},
                kinds = { palettization = 0, quantization = 0, pruning = 0, activation = 0 } }
    local m = self.model
    if not m then c.any = false return c end
    local function add(list, kind, e)
      list[#list + 1] = e
      c.kinds[kind] = c.kinds[kind] + 1
    end
    for _, op in ipairs(m:ops()) do
      local out = op.outputs[1] or {}
      local count = numel(out.shape)
      local t = op.type
      if t == "constexpr_lut_to_dense" or t == "constexpr_lut_to_sparse" then
        local lut = param(op, "lut") or {}
        local idx = param(op, "indices") or param(op, "indices_nonzero_data") or {}
        local ls = lut.shape or {}
        local nbits, groups, vector, granularity = nil, 1, 1, "per_tensor"
        if #ls <= 1 then
          local n = ls[1] or 0
          nbits = n > 0 and math.floor(math.log(n, 2) + 0.5) or nil
        else
          vector = ls[#ls]
          nbits = BITS[idx.dtype or ""] or math.floor(math.log(math.max(ls[#ls - 1], 1), 2) + 0.5)
          for i = 1, #ls - 2 do groups = groups * math.max(ls[i], 1) end
          if groups > 1 then granularity = "per_grouped_channel" end
        end
        add(c.palettized, "palettization", { op = op.name, name = out.name, ["function"] = op["function"], nbits = nbits,
          granularity = granularity, groups = groups, vector = vector, count = count, type = t })
        if t == "constexpr_lut_to_sparse" then
          add(c.sparse, "pruning", { op = op.name, name = out.name, ["function"] = op["function"], count = count, type = t })
        end
      elseif t == "constexpr_affine_dequantize" or t == "constexpr_blockwise_shift_scale"
          or t == "constexpr_sparse_blockwise_shift_scale" then
        local data = param(op, "quantized_data") or param(op, "data") or param(op, "nonzero_data") or {}
        local scale = param(op, "scale") or {}
        local from = producer_of(op, data.name)
        if from and from.type:match("^constexpr_lut") then
          -- palettization with per-channel scale: the lut op is already counted
          for _, p in ipairs(c.palettized) do
            if p.op == from.name then p.per_channel_scale = true end
          end
        elseif data.dtype == "fp16" or data.dtype == "fp32" then
          -- a scale over float data is not a quantization
        else
          local ds, ss = data.shape or {}, scale.shape or {}
          local granularity, block = "per_tensor", nil
          if (numel(ss) or 1) > 1 then
            granularity = "per_channel"
            if #ss == #ds then
              for i = 1, #ds do
                if ss[i] > 1 and ss[i] < ds[i] then granularity, block = "per_block", ds[i] // ss[i] end
              end
            end
          end
          add(c.quantized, "quantization", { op = op.name, name = out.name, ["function"] = op["function"],
            dtype = data.dtype, bits = BITS[data.dtype or ""] or 8, granularity = granularity, block_size = block,
            count = count, type = t })
        end
        if t == "constexpr_sparse_blockwise_shift_scale" then
          add(c.sparse, "pruning", { op = op.name, name = out.name, ["function"] = op["function"], count = count, type = t })
        end
      elseif t == "constexpr_sparse_to_dense" then
        local nz = param(op, "nonzero_data") or {}
        local mask = param(op, "mask") or {}
        local shape_p = param(op, "shape")
        local dense = count or (mask.dtype == "uint1" and numel(mask.shape)) or nil
        if not dense and shape_p and shape_p.value_msg then
          local v = types.value(shape_p.value_msg)
          if type(v) == "table" then dense = numel(v) end
        end
        local from = producer_of(op, nz.name)
        local nnz = numel(nz.shape)
        local sparsity = (dense and nnz and dense > 0) and (1 - nnz / dense) or nil
        local chained = from and from.type:match("^constexpr_") and true or false
        if not chained then
          add(c.sparse, "pruning", { op = op.name, name = out.name, ["function"] = op["function"], count = dense,
            sparsity = sparsity, type = t })
        else
          for _, s in ipairs(c.sparse) do
            if s.op == from.name then s.sparsity, s.name, s.count = sparsity, out.name, dense end
          end
        end
      elseif t == "quantize" or t == "dequantize" then
        add(c.activation, "activation", { op = op.name, type = t, ["function"] = op["function"] })
      end
    end
    -- NeuralNetwork quantized weights (coremltools 4-6 quantization_utils)
    for _, l in ipairs(m:layers()) do
      local p = l.params
      if p then
        local okf, fields = pcall(p.fields, p)
        for _, f in ipairs(okf and fields or {}) do
          if f.message == "CoreML.Specification.WeightParams" and not f.repeated and p:has(f.name) then
            local wp = p[f.name]
            if wp:has("quantization") then
              local q = wp.quantization
              local kind = q:which("linearQuantization")
              local bits = q.numberOfBits
              if kind == "lookupTableQuantization" then
                add(c.palettized, "palettization", { layer = l.name, name = l.name .. "." .. f.name, nbits = bits,
                  granularity = "per_tensor", groups = 1, vector = 1, type = "nn" })
              else
                local nscale = #q.linearQuantization.scale
                add(c.quantized, "quantization", { layer = l.name, name = l.name .. "." .. f.name, dtype = "uint" .. bits,
                  bits = bits, granularity = nscale > 1 and "per_channel" or "per_tensor", type = "nn" })
              end
            end
          end
        end
      end
    end
    c.any = c.kinds.palettization + c.kinds.quantization + c.kinds.pruning + c.kinds.activation > 0
    return c
  end)
end

-- ---- decompressing for comparison ----------------------------------------------------------------

-- The values of a constexpr parameter (an mlsh.Array or a Lua list), or nil, why.
local function param_values(ctx, op, name)
  local p = param(op, name)
  if not p then return nil, "no parameter '" .. name .. "'" end
  local function from_value(owner, key, v)
    if v:has("blobFileValue") then
      for _, w in ipairs(ctx:weights()) do
        if w.op == owner.name and w.param == key then return w:values() end
      end
      return nil, "weight " .. owner.name .. "." .. key .. " not found"
    end
    local x = types.value(v)
    if type(x) == "number" then return { x } end
    return x
  end
  if p.value_msg then return from_value(op, name, p.value_msg) end
  local prod = producer_of(op, p.name)
  if prod and prod.type == "const" then
    local v = prod.msg:get("attributes", "val")
    if v then return from_value(prod, "val", v) end
  end
  return nil, "parameter '" .. name .. "' comes from " .. (prod and prod.type or "an unknown value")
end

local function strides(shape)
  local s, acc = {}, 1
  for i = #shape, 1, -1 do
    s[i] = acc
    acc = acc * shape[i]
  end
  return s
end

-- Raw bytes of a uint8 parameter (an mlsh.Array of byte values, or a Lua list).
local function byte_string(v)
  if type(v) == "userdata" then return v:encode("uint8") end
  local raw = {}
  for i = 1, #v do raw[i] = string.char(math.floor(v[i]) & 0xFF) end
  return table.concat(raw)
end

-- `n` little-endian `bits`-wide codes (LSB first) from packed bytes, as a function i -> code.
local function code_reader(bytes, bits, n)
  local core = require "mlsh.core"
  if core.compress and core.compress.unpack then
    local codes = core.compress.unpack(bytes, bits, n)
    return function(i) return codes:byte(i) end
  end
  return function(i)
    local v, bitpos = 0, (i - 1) * bits
    for b = 0, bits - 1 do
      local byte = bytes:byte((bitpos + b) // 8 + 1) or 0
      v = v | (((byte >> ((bitpos + b) % 8)) & 1) << b)
    end
    return v
  end
end

-- Elements compared per weight: larger weights are compared on an evenly strided sample, so a
-- billion-parameter model is measured in seconds (the SNR of a large sample is the SNR).
M.SAMPLE_ELEMENTS = 256 * 1024

-- Float values of a compression op's output at elements 1, 1 + stride, 1 + 2*stride ... (all of
-- them with stride 1), as an mlsh.Array; or nil, why.
local function decompress(ctx, op, stride)
  local core = require "mlsh.core"
  stride = stride or 1
  local out = op.outputs[1]
  local n = out and numel(out.shape)
  if not n then return nil, "unknown output shape" end
  local shape = out.shape
  local dense = core.array.new((n + stride - 1) // stride)
  local t = op.type
  local function vals(name)
    local v, err = param_values(ctx, op, name)
    if not v then error(err, 0) end
    return v
  end
  local j = 0
  if t == "constexpr_lut_to_dense" then
    local lut = vals("lut")
    local lp = param(op, "lut")
    if #(lp.shape or {}) <= 1 then -- iOS16: packed uint8 indices, 1-D LUT
      local nbits = math.floor(math.log(#lut, 2) + 0.5)
      local code = code_reader(byte_string(vals("indices")), nbits, n)
      for i = 1, n, stride do
        j = j + 1
        dense[j] = lut[code(i) + 1]
      end
    else -- iOS18: per-block scalar LUTs
      local ls = lp.shape
      local k = #ls - 2
      if ls[#ls] ~= 1 then error("vector palettization is not decompressed", 0) end
      local idx = vals("indices")
      local st, size = strides(shape), ls[k + 1]
      local block = {}
      for d = 1, k do block[d] = shape[d] // math.max(ls[d], 1) end
      for i = 1, n, stride do
        local rem, lflat = i - 1, 0
        for d = 1, k do
          local id = rem // st[d]
          rem = rem % st[d]
          lflat = lflat * ls[d] + id // block[d]
        end
        j = j + 1
        dense[j] = lut[lflat * size + math.floor(idx[i]) + 1]
      end
    end
  elseif t == "constexpr_affine_dequantize" then
    local q, zp, sc = vals("quantized_data"), vals("zero_point"), vals("scale")
    local axis = op:arg("axis") or 0
    if axis < 0 then axis = axis + #shape end
    local st = strides(shape)
    for i = 1, n, stride do
      local ch = ((i - 1) // st[axis + 1]) % shape[axis + 1] + 1
      local s = #sc > 1 and sc[ch] or sc[1]
      local z = #zp > 1 and zp[ch] or zp[1] or 0
      j = j + 1
      dense[j] = s * (q[i] - z)
    end
  elseif t == "constexpr_blockwise_shift_scale" then
    local data, sc = vals("data"), vals("scale")
    local off = param(op, "offset") and vals("offset") or nil
    local ss = param(op, "scale").shape
    local st, sst = strides(shape), strides(ss)
    for i = 1, n, stride do
      local rem, sflat = i - 1, 0
      for d = 1, #shape do
        local id = rem // st[d]
        rem = rem % st[d]
        sflat = sflat + (id // (shape[d] // ss[d])) * sst[d]
      end
      j = j + 1
      dense[j] = sc[sflat + 1] * (data[i] - (off and off[sflat + 1] or 0))
    end
  elseif t == "constexpr_sparse_to_dense" then
    local nz = vals("nonzero_data")
    local mp = param(op, "mask")
    -- the k-th set bit takes the k-th nonzero value: walk every element, keep the sampled ones
    local is_set
    if mp.dtype == "uint1" then
      local mask = vals("mask")
      is_set = function(i) return mask[i] ~= 0 end
    else
      local bytes = byte_string(vals("mask"))
      is_set = function(i) return (bytes:byte((i - 1) // 8 + 1) >> ((i - 1) % 8)) & 1 == 1 end
    end
    local k = 0
    for i = 1, n do
      local set = is_set(i)
      if set then k = k + 1 end
      if (i - 1) % stride == 0 then
        j = j + 1
        dense[j] = set and nz[k] or 0
      end
    end
  else
    return nil, op.type .. " is not decompressed"
  end
  if stride == 1 then pcall(dense.reshape, dense, shape) end
  return dense
end
-- decompress(ctx, op [, stride]) -> mlsh.Array | nil, why
M.decompress = function(ctx, op, stride)
  local ok, a, err = pcall(decompress, ctx, op, stride)
  if not ok then return nil, tostring(a) end
  return a, err
end

-- SNR and friends of a reconstruction (core.compress.metrics when built, else the same formulas).
function M.metrics(original, reconstructed)
  local core = require "mlsh.core"
  if core.compress and core.compress.metrics then return core.compress.metrics(original, reconstructed) end
  local n = #original
  local sig, noise, maxe, dot, na, nb = 0, 0, 0, 0, 0, 0
  for i = 1, n do
    local x, y = original[i], reconstructed[i]
    local e = x - y
    sig, noise, maxe = sig + x * x, noise + e * e, math.max(maxe, math.abs(e))
    dot, na, nb = dot + x * y, na + x * x, nb + y * y
  end
  local snr = noise == 0 and math.huge or 10 * math.log(sig / noise, 10)
  return { snr_db = snr, mse = noise / math.max(n, 1), max_abs_err = maxe,
           cosine = (na > 0 and nb > 0) and dot / math.sqrt(na * nb) or 1, n = n }
end

-- Compare every decompressible weight with the same-named weight of ctx.original. Returns
-- {rows = {{name, op, type, snr_db, cosine, max_abs_err, count}} sorted worst first, skipped = {...}}
-- or nil, why (no original given, nothing compressed, nothing matched).
function Ctx:compare()
  if not self.original then return nil, "no --original model given" end
  if not self.model then return nil, "no model" end
  local res = self:cached("compare", function()
    local originals = {}
    for _, w in ipairs(self.original:weights()) do
      if (w.param == "val" or w.storage == "nn") and (w.dtype == "fp16" or w.dtype == "fp32") then originals[w.name] = w end
    end
    local res = { rows = {}, skipped = {} }
    local consumed = {}
    for _, op in ipairs(self.model:ops()) do
      local ok, ins = pcall(op.inputs, op)
      for _, e in ipairs(ok and ins or {}) do
        if e.name then consumed[e.name] = op end
      end
    end
    for _, op in ipairs(self.model:ops()) do
      local out = op.outputs[1]
      local next_op = out and consumed[out.name]
      local final = not (next_op and next_op.type:match("^constexpr_"))
      if op.type:match("^constexpr_") and op.type ~= "constexpr_cast" and final then
        local w = originals[out.name]
        if not w then
          res.skipped[#res.skipped + 1] = { name = out.name, why = "no weight '" .. out.name .. "' in the original" }
        elseif w.count ~= numel(out.shape) then
          res.skipped[#res.skipped + 1] = { name = out.name, why = "sizes differ" }
        else
          local stride = math.max(1, -(-w.count // M.SAMPLE_ELEMENTS))
          local dense, err = M.decompress(self, op, stride)
          local okv, orig = pcall(w.values, w)
          if okv and stride > 1 then
            local sample = require("mlsh.core").array.new(#dense)
            local k = 0
            for i = 1, w.count, stride do
              k = k + 1
              sample[k] = orig[i]
            end
            orig = sample
          end
          if dense and okv then
            local mt = M.metrics(orig, dense)
            res.rows[#res.rows + 1] = { name = out.name, op = op.name, type = op.type, ["function"] = op["function"],
              snr_db = mt.snr_db, cosine = mt.cosine, max_abs_err = mt.max_abs_err, count = w.count,
              sampled = stride > 1 and #dense or nil }
          else
            res.skipped[#res.skipped + 1] = { name = out.name, why = dense and tostring(orig) or err }
          end
        end
      end
    end
    table.sort(res.rows, function(a, b) return a.snr_db < b.snr_db end)
    if #res.rows == 0 then
      self:note("compare with --original: nothing matched" .. (res.skipped[1] and (" (" .. res.skipped[1].why .. ")") or ""))
      return false
    end
    return res
  end)
  if not res then return nil, "no compressed weight matched a weight of the original" end
  return res
end

-- Is the reconstruction error concentrated in a few weights? "few" when the worst weight's SNR is
-- 6 dB or more below the median (or under 10 dB), "everywhere" otherwise; nil without a comparison.
M.OUTLIER_DB, M.POOR_DB = 6, 10
function Ctx:error_spread()
  local cmp, why = self:compare()
  if not cmp then return nil, why end
  local rows = cmp.rows
  local function fmt(r) return string.format("%s %.1f dB", r.name, r.snr_db) end
  if #rows < 2 then
    if rows[1].snr_db < M.POOR_DB then return "few", "only " .. fmt(rows[1]) .. " compared; it is poor" end
    return nil, "only one weight compared (" .. fmt(rows[1]) .. "): no spread to judge"
  end
  local median = rows[(#rows + 1) // 2].snr_db
  local worst = rows[1]
  local list = {}
  for i = 1, math.min(3, #rows) do list[#list + 1] = fmt(rows[i]) end
  local ev = string.format("SNR vs --original, worst first: %s; median %.1f dB over %d weights", table.concat(list, ", "),
    median, #rows)
  if worst.snr_db <= median - M.OUTLIER_DB or (worst.snr_db < M.POOR_DB and median >= M.POOR_DB) then return "few", ev end
  return "everywhere", ev
end

-- ---- sizes -------------------------------------------------------------------------------------------

-- Dense weights (what compression would act on): {name, count, rank, dtype}. ML programs: const
-- outputs and the final outputs of constexpr chains; NeuralNetworks: the weight params.
function Ctx:dense_weights()
  return self:cached("dense", function()
    local out = {}
    local m = self.model
    if not m then return out end
    if self:is_program() then
      local consumed = {}
      for _, op in ipairs(m:ops()) do
        local ok, ins = pcall(op.inputs, op)
        for _, e in ipairs(ok and ins or {}) do
          if e.name then consumed[e.name] = op end
        end
      end
      for _, op in ipairs(m:ops()) do
        local o = op.outputs[1]
        if o and (op.type == "const" or op.type:match("^constexpr_")) then
          local nxt = consumed[o.name]
          if not (nxt and nxt.type:match("^constexpr_")) and (o.dtype == "fp16" or o.dtype == "fp32") then
            local n = numel(o.shape)
            if n and n >= 10 then out[#out + 1] = { name = o.name, count = n, rank = #(o.shape or {}), dtype = o.dtype } end
          end
        end
      end
    else
      for _, w in ipairs(self:weights()) do
        out[#out + 1] = { name = w.name, count = w.count or 0, rank = 2, dtype = w.dtype or "fp32" }
      end
    end
    return out
  end)
end

-- Compressors act on weights with more than 2048 elements and rank >= 2 (coremltools' default).
M.WEIGHT_THRESHOLD = 2048
M.SIZE_SCHEMES = {
  { id = "fp16", label = "fp16 (no compression)", bits = 16, lut = 0, spec = 6,
    how = "ct.convert(..., compute_precision=ct.precision.FLOAT16)" },
  { id = "palettize-8", label = "8-bit palettization", bits = 8, lut = 256, spec = 7,
    how = "cto.palettize_weights(m, OptimizationConfig(OpPalettizerConfig(nbits=8)))" },
  { id = "palettize-6", label = "6-bit palettization", bits = 6, lut = 64, spec = 7,
    how = "cto.palettize_weights(m, OptimizationConfig(OpPalettizerConfig(nbits=6)))" },
  { id = "palettize-4", label = "4-bit palettization", bits = 4, lut = 16, spec = 7,
    how = "cto.palettize_weights(m, OptimizationConfig(OpPalettizerConfig(nbits=4)))" },
  { id = "int8", label = "int8 linear quantization", bits = 8, lut = 0, spec = 7,
    how = "cto.linear_quantize_weights(m, OptimizationConfig(OpLinearQuantizerConfig(dtype='int8')))" },
  { id = "prune-50", label = "50% pruning (fp16 + bit mask)", bits = 16, keep = 0.5, spec = 7,
    how = "cto.prune_weights(m, OptimizationConfig(OpMagnitudePrunerConfig(target_sparsity=0.5)))" },
  { id = "prune-75", label = "75% pruning (fp16 + bit mask)", bits = 16, keep = 0.25, spec = 7,
    how = "cto.prune_weights(m, OptimizationConfig(OpMagnitudePrunerConfig(target_sparsity=0.75)))" },
  { id = "prune-50-palettize-4", label = "50% pruning + 4-bit palettization", bits = 4, keep = 0.5, lut = 16, spec = 9,
    how = "prune_weights then palettize_weights(..., joint_compression=True)" },
}

-- Rows {id, label, bytes, size, min_target, how} for the current weights: what loading needs under
-- each scheme (compressible weights re-encoded, the rest kept as they are).
function Ctx:size_table()
  local dense = self:dense_weights()
  local fixed, comp = 0, {}
  for _, w in ipairs(dense) do
    if w.count > M.WEIGHT_THRESHOLD and w.rank >= 2 then comp[#comp + 1] = w
    else fixed = fixed + w.count * (w.dtype == "fp32" and 4 or 2) end
  end
  local rows = {}
  local stored = self:weight_bytes()
  rows[#rows + 1] = { id = "stored", label = "as stored now", bytes = stored, size = M.fmt_bytes(stored), min_target = "-", how = "" }
  for _, s in ipairs(M.SIZE_SCHEMES) do
    local bytes = fixed
    for _, w in ipairs(comp) do
      local keep = s.keep or 1
      local b = math.ceil(w.count * keep * s.bits / 8) + (s.lut or 0) * 2
      if s.keep then b = b + math.ceil(w.count / 8) end
      bytes = bytes + b
    end
    rows[#rows + 1] = { id = s.id, label = s.label, bytes = bytes, size = M.fmt_bytes(bytes),
                        min_target = spec.target_name(s.spec) or ("spec " .. s.spec), how = s.how }
  end
  return rows
end

function Ctx:size_lines()
  local lines = {}
  for _, r in ipairs(self:size_table()) do
    lines[#lines + 1] = string.format("%-36s %10s  %s", r.label, r.size, r.min_target ~= "-" and ("(" .. r.min_target .. "+)") or "")
  end
  return lines
end

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
    local rules = require "mlsh.engine.rules"
    local model = rules.safe and ctx.model and rules.read_only(ctx.model) or ctx.model
    local ok, a, e = rules.guarded_call("playbook check " .. tostring(node.id), node.check, model, ctx)
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
  local model, load_error, path = m, nil, nil
  if type(m) == "string" then
    path = m
    model, load_error = mlsh.try_load(m)
  end
  local target, target_name = opts.target, nil
  if type(target) == "string" then
    local n, name = require("mlsh.spec").parse_target(target)
    if not n then error(name, 2) end
    target, target_name = n, name
  end
  local original = opts.original
  if type(original) == "string" then original = mlsh.load(original) end
  local ctx = M.context(model, { path = path, load_error = load_error, target = target, target_name = target_name,
    compute_units = opts.compute_units, original = original })
  local term = require "mlsh.term"
  local color = opts.color
  if color == nil then color = opts.output == nil and term.enabled(1) end
  local paint = term.painter(color)
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
