-- mlsh.engine.checklist — checklists whose items check themselves against the model where the file can
-- answer (pass / fail with evidence) and are asked (or reported unknown) where it cannot.
--
--   local checklist = require "mlsh.engine.checklist"
--   local set = checklist.discover()                  -- rules/checklists/ of the install, MLSH_CHECKLISTS, dirs
--   local r = checklist.run(set.by_id.production, ctx, { answers = { ["accuracy-test"] = "pass" } })
--   r.items = {{id, text, status = "pass"|"fail"|"unknown", evidence, by = "check"|"answer"|nil, fix}}
--   checklist.result_json(r)                          -- the `mlsh checklist --format json` document
--
-- A checklist file returns {id, title, items = {{id, text, check?, ask?, fix?}}}; check(model, ctx)
-- returns "pass" | "fail" | nil (cannot tell) and the evidence. ctx is mlsh.playbook's context.
local playbook = require "mlsh.engine.playbook"
local sandbox = require "mlsh.sandbox"

local M = {}

M.STATUSES = { "pass", "fail", "unknown" }

local LIST_FIELDS = {
  id = { required = true, what = "a string of letters, digits, '-', '_' or '.'" },
  title = { required = true, what = "a non-empty string" },
  items = { required = true, what = "a non-empty list of {id, text, check?, ask?, fix?}" },
  description = { what = "a string" },
}
local ITEM_FIELDS = {
  id = { required = true, what = "an item id" },
  text = { required = true, what = "what the item requires, as a sentence" },
  check = { what = "a function(model, ctx) -> \"pass\" | \"fail\" | nil, evidence" },
  ask = { what = "the question asked when the check cannot tell" },
  fix = { what = "what to do when the item fails" },
}

local contract = require "mlsh.engine.contract"
local nonempty, fields_ok = contract.nonempty_string, contract.check_fields

-- Validate a checklist table; returns the normalized checklist or nil, message.
function M.validate(t, where)
  where = where or "checklist"
  if type(t) ~= "table" then return nil, string.format("%s: a checklist must be a table, got %s", where, type(t)) end
  local label = type(t.id) == "string" and string.format("%s: checklist '%s'", where, t.id) or where
  local function bad(fmt, ...) return nil, label .. ": " .. string.format(fmt, ...) end
  local ok, err = fields_ok(t, LIST_FIELDS, bad, "")
  if not ok then return nil, err end
  if type(t.id) ~= "string" or not t.id:match(playbook.ID_PATTERN) then
    return bad("field 'id' must be %s, got %s", LIST_FIELDS.id.what, type(t.id))
  end
  if not nonempty(t.title) then return bad("field 'title' must be a non-empty string") end
  if t.description ~= nil and type(t.description) ~= "string" then return bad("field 'description' must be a string") end
  if type(t.items) ~= "table" or #t.items == 0 then return bad("field 'items' must be %s", LIST_FIELDS.items.what) end
  local items, seen = {}, {}
  for i, it in ipairs(t.items) do
    if type(it) ~= "table" then return bad("items[%d] must be a table, got %s", i, type(it)) end
    if type(it.id) ~= "string" or not it.id:match(playbook.ID_PATTERN) then
      return bad("items[%d]: field 'id' must be a word (letters, digits, '-', '_', '.'), got %s", i,
        type(it.id) == "string" and ("'" .. it.id .. "'") or type(it.id))
    end
    local iw = string.format("item '%s': ", it.id)
    local iok, ierr = fields_ok(it, ITEM_FIELDS, bad, iw)
    if not iok then return nil, ierr end
    if seen[it.id] then return bad("%sduplicate item id", iw) end
    seen[it.id] = true
    if not nonempty(it.text) then return bad("%sfield 'text' must be a non-empty string", iw) end
    if it.check ~= nil and type(it.check) ~= "function" then return bad("%sfield 'check' must be %s", iw, ITEM_FIELDS.check.what) end
    if it.ask ~= nil and not nonempty(it.ask) then return bad("%sfield 'ask' must be a non-empty string", iw) end
    if it.fix ~= nil and not nonempty(it.fix) then return bad("%sfield 'fix' must be a non-empty string", iw) end
    if it.check == nil and it.ask == nil then
      return bad("%sneeds a check function, an ask question, or both", iw)
    end
    items[i] = { id = it.id, text = it.text, check = it.check, ask = it.ask, fix = it.fix }
  end
  return { id = t.id, title = t.title, description = t.description, items = items, by_item = seen, source = where }
end

function M.load_file(path) return playbook.load_with(path, M.validate, "checklist") end

function M.discover(opts) return playbook.discover_kind("checklists", M.load_file, opts) end

-- Answers for a checklist: {["item-id"] = "pass" | "fail" | "yes" | "no" | true | false}.
local ANSWER_STATUS = { pass = "pass", yes = "pass", ["true"] = "pass", fail = "fail", no = "fail", ["false"] = "fail",
                        unknown = "unknown", skip = "unknown" }
function M.answer_status(v)
  if type(v) == "boolean" then return v and "pass" or "fail" end
  return ANSWER_STATUS[tostring(v):lower()]
end

function M.check_answers(list, answers, where)
  where = where or "answers"
  local ids = {}
  for _, it in ipairs(list.items) do ids[#ids + 1] = it.id end
  local keys = {}
  for k in pairs(answers or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not list.by_item[k] then
      return nil, string.format("%s: checklist '%s' has no item '%s'%s", where, list.id, k, playbook.suggest(k, ids))
    end
    if not M.answer_status(answers[k]) then
      return nil, string.format("%s: the answer to '%s' must be pass/fail (yes/no), got '%s'", where, k, tostring(answers[k]))
    end
  end
  return true
end

-- Run one item's check: status, evidence.
local function run_item(list, it, ctx)
  if not it.check then return "unknown", "the model file cannot show this" end
  if not ctx.model then
    return "unknown", ctx.load_error and ("the model could not be read: " .. ctx.load_error) or "no model given"
  end
  local model = sandbox.safe and ctx.model and sandbox.read_only(ctx.model) or ctx.model
  local ok, status, evidence = sandbox.guarded_call("checklist item " .. tostring(it.id), it.check, model, ctx)
  if not ok then
    ctx:note(string.format("check of item '%s' in checklist '%s' raised: %s", it.id, list.id, (tostring(status):gsub("\n.*", ""))))
    return "unknown", "the check raised an error"
  end
  if status ~= nil and status ~= "pass" and status ~= "fail" then
    ctx:note(string.format("check of item '%s' in checklist '%s' returned '%s' (pass, fail or nil)", it.id, list.id,
      tostring(status)))
    return "unknown", "the check returned an invalid status"
  end
  if type(evidence) == "table" then evidence = table.concat(evidence, "; ") end
  return status or "unknown", evidence ~= nil and tostring(evidence) or nil
end

-- Run a checklist. opts: answers (for items the checks cannot decide; a check's verdict wins and a
-- disagreeing answer is noted), ask (function(item, evidence) -> "pass" | "fail" | nil).
function M.run(list, ctx, opts)
  opts = opts or {}
  local answers = opts.answers or {}
  local r = { checklist = list, ctx = ctx, items = {}, summary = { pass = 0, fail = 0, unknown = 0 } }
  for _, it in ipairs(list.items) do
    local status, evidence = run_item(list, it, ctx)
    local by = status ~= "unknown" and "check" or nil
    local given = answers[it.id] ~= nil and M.answer_status(answers[it.id]) or nil
    if given and given ~= "unknown" then
      if by == "check" and given ~= status then
        ctx:note(string.format("checklist item '%s': answer '%s' ignored, the model shows '%s' (%s)", it.id, given, status,
          evidence or ""))
      elseif by ~= "check" then
        status, by = given, "answer"
      end
    elseif status == "unknown" and opts.ask then
      local a = opts.ask(it, evidence)
      if a == "pass" or a == "fail" then status, by = a, "answer" end
    end
    r.items[#r.items + 1] = { id = it.id, text = it.text, status = status, evidence = evidence, by = by,
                              fix = it.fix, ask = it.ask }
    r.summary[status] = r.summary[status] + 1
  end
  r.notes = ctx.notes
  return r
end

function M.result_json(r)
  local json = require "mlsh.json"
  local null = json.null
  local items = json.array({})
  for i, it in ipairs(r.items) do
    items[i] = { id = it.id, text = it.text, status = it.status, evidence = it.evidence or null, by = it.by or null,
                 fix = it.fix or null, question = (it.status == "unknown" and it.ask) or null }
  end
  local ctx = r.ctx
  return { checklist = r.checklist.id, title = r.checklist.title, model = ctx.path or null,
           target = ctx.target and { name = ctx.target_name, spec = ctx.target } or null,
           items = items, summary = r.summary, notes = json.array(r.notes or {}) }
end

-- The REPL's checklist(name, m [, opts]): runs the checks, asks the items they cannot decide
-- (y/n/skip), prints the list. m: a Model or a path. opts: target, answers, input, output, color.
function M.interactive(name, m, opts)
  opts = opts or {}
  local out = opts.output or function(s) io.write(s) io.flush() end
  local input = opts.input or function(prompt)
    local core = require "mlsh.core"
    return core.repl.readline(prompt)
  end
  local set, derr = M.discover({ dirs = opts.dirs })
  if not set then error(derr, 2) end
  if type(name) ~= "string" then
    local ids = {}
    for _, c in ipairs(set.list) do ids[#ids + 1] = c.id end
    error("checklist(name, model): name is one of " .. table.concat(ids, ", "), 2)
  end
  local list = set.by_id[name]
  if not list then
    local ids = {}
    for _, c in ipairs(set.list) do ids[#ids + 1] = c.id end
    error(string.format("unknown checklist '%s'%s (one of: %s)", name, playbook.suggest(name, ids), table.concat(ids, ", ")), 2)
  end
  local ctx, paint = playbook.subject(m, opts)
  out(paint.bold(list.title) .. "\n")
  local asked = 0
  local r = M.run(list, ctx, {
    answers = opts.answers,
    ask = function(it, evidence)
      asked = asked + 1
      out(string.format("%s %s%s\n", paint.bold(asked .. "."), it.ask or it.text,
        evidence and paint.dim("  (" .. evidence .. ")") or ""))
      while true do
        local line = input("  y/n, Enter to skip, q to stop: ")
        if not line then return nil end
        line = line:match("^%s*(.-)%s*$"):lower()
        if line == "" or line == "s" or line == "skip" then return nil end
        if line == "q" then
          input = function() return nil end
          return nil
        end
        local st = M.answer_status(line) or (line == "y" and "pass") or (line == "n" and "fail") or nil
        if st == "pass" or st == "fail" then return st end
        out("  answer y or n\n")
      end
    end,
  })
  out(require("mlsh.report.text").checklist(r, { paint = paint }))
  return setmetatable(r, { __tostring = function(x)
    return string.format("checklist %s: %d pass, %d fail, %d unknown", x.checklist.id, x.summary.pass, x.summary.fail,
      x.summary.unknown)
  end })
end

return M
