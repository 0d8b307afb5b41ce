-- mlsh.engine.playbook_contract — the contract of a playbook file (docs/playbooks.md): fields,
-- question and leaf nodes, and the decision tree they form. validate(t, where) returns the
-- normalized playbook or nil, "where: playbook 'id': what is wrong (did you mean ...)".
local rules = require "mlsh.engine.rules"
local contract = require "mlsh.engine.contract"

local M = {}

M.ID_PATTERN = "^[%w][%w_.%-]*$"

local function show(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  return type(v)
end

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
      return bad("%ssnippet: unknown language '%s' (python, swift)%s", where, tostring(k), contract.suggest(tostring(k), { "python", "swift" }))
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
        return bad("%sunknown field '%s'%s", aw, tostring(k), contract.suggest(tostring(k), { "id", "text", "next" }))
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

-- The pressure scenario {wrong, right, checks}: the table, nil when absent, or false, message.
local function validate_pressure(p, bad)
  if p == nil then return nil end
  if type(p) ~= "table" then return false, select(2, bad("field 'pressure' must be %s", PLAYBOOK_FIELDS.pressure.what)) end
  for k in pairs(p) do
    if not PRESSURE_FIELDS[k] then
      return false, select(2, bad("pressure: unknown field '%s'%s", tostring(k), contract.suggest(tostring(k), { "wrong", "right", "checks" })))
    end
  end
  if not nonempty_string(p.wrong) or not nonempty_string(p.right) then
    return false, select(2, bad("pressure needs non-empty strings 'wrong' and 'right'"))
  end
  local checks = p.checks or {}
  if type(checks) ~= "table" then return false, select(2, bad("pressure.checks must be a list of strings")) end
  for i, c in ipairs(checks) do
    if not nonempty_string(c) then return false, select(2, bad("pressure.checks[%d] must be a non-empty string", i)) end
  end
  return { wrong = p.wrong, right = p.right, checks = checks }
end

-- The nodes, each validated: nodes, by_id, sorted ids; or nil, message.
local function validate_nodes(list, bad)
  if type(list) ~= "table" or #list == 0 then return bad("field 'nodes' must be %s", PLAYBOOK_FIELDS.nodes.what) end
  local nodes, by_id, ids = {}, {}, {}
  for i, n in ipairs(list) do
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
  return nodes, by_id, ids
end

-- The tree: start names a node, answers lead to nodes, every node is reachable, no cycle, and
-- every listed pattern is carried by a leaf. true or nil, message.
local function validate_graph(t, nodes, by_id, ids, bad)
  if type(t.start) ~= "string" or not by_id[t.start] then
    return bad("field 'start' must name a node, got %s%s", show(t.start), type(t.start) == "string" and contract.suggest(t.start, ids) or "")
  end
  for _, n in ipairs(nodes) do
    if n.kind == "question" then
      for _, a in ipairs(n.answers) do
        if not by_id[a.next] then
          return bad("node '%s' answer '%s' goes to unknown node '%s'%s", n.id, a.id, a.next, contract.suggest(a.next, ids))
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
  return true
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
  local pressure, perr = validate_pressure(t.pressure, bad)
  if perr ~= nil or pressure == false then return nil, perr end
  local nodes, by_id, ids = validate_nodes(t.nodes, bad)
  if not nodes then return nil, by_id end
  local gok, gerr = validate_graph(t, nodes, by_id, ids, bad)
  if not gok then return nil, gerr end
  return { id = t.id, title = t.title, symptom = t.symptom, description = t.description, patterns = t.patterns,
           rules = t.rules, start = t.start, nodes = nodes, by_id = by_id, pressure = pressure, source = where }
end

return M
