-- mlsh.engine.rules — the rules engine: discovery, loading and validation, per-rule environments,
-- selection expressions, running, findings. The contract is in docs/rules.md.
--
--   local rules = require "mlsh.engine.rules"
--   local set = rules.discover{ dirs = {"team/rules"} }   -- installed rules/, MLSH_RULES, dirs (later wins)
--   -- set = {rules = {...}, fallbacks = {...}, errors = {{file, message}}, notes = {...}}
--   local pick, err = rules.selector("ane and not slow", set)   -- nil, err on a bad expression
--   local findings = rules.run(m, set, { target = 7, compute_units = "ALL", select = pick, options = {...} })
--   rules.load_file(path) -> {rules, fallbacks} | nil, err;  rules.validate(t, where) -> rule | nil, err
--   rules.findings_json(findings) -> the `findings` array of mlsh check --format json
--
-- A rule file runs in its own environment (fresh copies of string/table/math, `require`, `mlsh`,
-- `fallback`, `print` to stderr) and returns one rule table. Its check(model, ctx) reports findings
-- with ctx:report{...} (or returns a list of them). A rule whose applies/check raises, or that
-- reports a malformed finding, becomes an error finding of that rule; the other rules still run.
local spec = require "mlsh.spec"
local sandbox = require "mlsh.sandbox"

local M = {}

M.SEVERITIES = { "error", "warning", "info" }
M.SEVERITY_RANK = { error = 1, warning = 2, info = 3 }
M.PATTERNS = { "1a", "1b", "1c", "2a", "2b", "2c", "3a", "3b", "4a", "4b", "4c", "5a", "5b" }
M.CATEGORIES = { "load", "performance", "memory", "accuracy", "conversion", "deploy", "ane", "slow" }
M.PATTERN_TITLES = {
  ["1a"] = "unsupported model version (spec > deployment target)", ["1b"] = "compute plan failure",
  ["1c"] = "other load errors", ["2a"] = "first load slow", ["2b"] = "all predictions slow",
  ["2c"] = "slow on a specific device", ["3a"] = "memory growth with concurrent predictions",
  ["3b"] = "out of memory at load", ["4a"] = "accuracy after palettization", ["4b"] = "accuracy after quantization",
  ["4c"] = "accuracy after pruning", ["5a"] = "conversion: unsupported op", ["5b"] = "wrong output",
}
M.LOCATION_KEYS = { "function", "op", "layer", "value", "model" }

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
local SEVERITY_SET, PATTERN_SET = set_of(M.SEVERITIES), set_of(M.PATTERNS)
local LOCATION_SET = set_of(M.LOCATION_KEYS)

-- Field name -> description (for messages); `required` fields must be present.
local RULE_FIELDS = {
  id = { required = true, what = "a string of letters, digits, '-', '_' or '.'" },
  title = { required = true, what = "a string" },
  categories = { required = true, what = "a non-empty list of category names" },
  severity = { required = true, what = "one of error, warning, info" },
  pattern = { required = true, what = "a playbook pattern 1a..5b, or false when none applies" },
  check = { required = true, what = "a function(model, ctx)" },
  applies = { what = "a function(model) -> boolean" },
  description = { what = "a string" },
  fix = { what = "a string (default fix for the rule's findings)" },
  references = { what = "a list of strings" },
  scope = { what = "\"model\" (the model as given) or \"each\" (also every pipeline sub-model)" },
  evidence = { what = "a non-empty list of links (URLs) to the sources the rule rests on" },
  affected = { what = "a table of affected ranges: os, spec, coremltools, chip (strings)" },
}
local AFFECTED_KEYS = { os = true, spec = true, coremltools = true, chip = true, compute_units = true }
local FIELD_NAMES = {}
for k in pairs(RULE_FIELDS) do FIELD_NAMES[#FIELD_NAMES + 1] = k end
table.sort(FIELD_NAMES)

local suggest = require("mlsh.engine.contract").suggest

-- Validate a rule table; returns the rule (normalized copy) or nil, message.
function M.validate(t, where)
  where = where or "rule"
  if type(t) ~= "table" then
    return nil, string.format("%s: a rule must be a table, got %s", where, type(t))
  end
  local label = type(t.id) == "string" and string.format("%s: rule '%s'", where, t.id) or where
  local function bad(fmt, ...) return nil, label .. ": " .. string.format(fmt, ...) end
  for k in pairs(t) do
    if type(k) ~= "string" or not RULE_FIELDS[k] then
      return bad("unknown field '%s'%s", tostring(k), type(k) == "string" and suggest(k, FIELD_NAMES) or "")
    end
  end
  for _, k in ipairs(FIELD_NAMES) do
    if RULE_FIELDS[k].required and t[k] == nil then
      return bad("missing field '%s' (%s)", k, RULE_FIELDS[k].what)
    end
  end
  if type(t.id) ~= "string" or not t.id:match("^[%w][%w_.%-]*$") then
    return bad("field 'id' must be %s, got %s", RULE_FIELDS.id.what, type(t.id) == "string" and ("'" .. t.id .. "'") or type(t.id))
  end
  if type(t.title) ~= "string" or t.title == "" then return bad("field 'title' must be a non-empty string") end
  if type(t.categories) ~= "table" or #t.categories == 0 then
    return bad("field 'categories' must be %s, got %s", RULE_FIELDS.categories.what, type(t.categories))
  end
  for i, c in ipairs(t.categories) do
    if type(c) ~= "string" or not c:match("^[%w_%-]+$") then
      return bad("categories[%d] must be a word (letters, digits, '-', '_'), got %s", i, type(c) == "string" and ("'" .. c .. "'") or type(c))
    end
  end
  if not SEVERITY_SET[t.severity] then
    return bad("field 'severity' must be one of error, warning, info, got %s",
      type(t.severity) == "string" and ("'" .. t.severity .. "'") or type(t.severity))
  end
  if t.pattern ~= false and not PATTERN_SET[t.pattern] then
    return bad("field 'pattern' must be one of %s or false, got %s", table.concat(M.PATTERNS, " "),
      type(t.pattern) == "string" and ("'" .. t.pattern .. "'") or tostring(t.pattern))
  end
  if type(t.check) ~= "function" then return bad("field 'check' must be a function(model, ctx), got %s", type(t.check)) end
  if t.applies ~= nil and type(t.applies) ~= "function" then
    return bad("field 'applies' must be a function(model), got %s", type(t.applies))
  end
  for _, k in ipairs({ "description", "fix" }) do
    if t[k] ~= nil and type(t[k]) ~= "string" then return bad("field '%s' must be a string, got %s", k, type(t[k])) end
  end
  if t.references ~= nil and type(t.references) ~= "table" then return bad("field 'references' must be a list of strings") end
  if t.evidence ~= nil then
    if type(t.evidence) ~= "table" or #t.evidence == 0 then return bad("field 'evidence' must be %s", RULE_FIELDS.evidence.what) end
    for i, e in ipairs(t.evidence) do
      if type(e) ~= "string" or not e:match("^https?://") then return bad("evidence[%d] must be a URL (http:// or https://)", i) end
    end
  end
  if t.affected ~= nil then
    if type(t.affected) ~= "table" then return bad("field 'affected' must be %s", RULE_FIELDS.affected.what) end
    for k, v in pairs(t.affected) do
      if not AFFECTED_KEYS[k] or type(v) ~= "string" then
        return bad("affected.%s: keys os, spec, coremltools, chip, compute_units with string values", tostring(k))
      end
    end
  end
  if t.scope ~= nil and t.scope ~= "model" and t.scope ~= "each" then
    return bad("field 'scope' must be \"model\" or \"each\", got %s", tostring(t.scope))
  end
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  r.pattern = t.pattern or nil
  r.scope = t.scope or "each"
  r.categories = {}
  for i, c in ipairs(t.categories) do r.categories[i] = c end
  r.source = where
  return r
end

-- ---- fallbacks -------------------------------------------------------------------------------------

local FALLBACK_FIELDS = { op = true, device = true, when = true, reason = true, os = true }
local DEVICES = { ANE = true, GPU = true, CPU = true }

function M.validate_fallback(t, where)
  where = where or "fallback"
  local function bad(fmt, ...) return nil, where .. ": fallback: " .. string.format(fmt, ...) end
  if type(t) ~= "table" then return bad("expects a table, got %s", type(t)) end
  for k in pairs(t) do
    if not FALLBACK_FIELDS[k] then
      return bad("unknown field '%s'%s", tostring(k), type(k) == "string" and suggest(k, { "op", "device", "when", "reason", "os" }) or "")
    end
  end
  local ops = {}
  if type(t.op) == "string" and t.op ~= "" then ops = { t.op }
  elseif type(t.op) == "table" and #t.op > 0 then
    for i, o in ipairs(t.op) do
      if type(o) ~= "string" then return bad("op[%d] must be an op type string", i) end
      ops[i] = o
    end
  else
    return bad("field 'op' must be an op or layer type (or a list of them), got %s", type(t.op))
  end
  if not DEVICES[t.device] then
    return bad("field 'device' must be ANE, GPU or CPU, got %s", type(t.device) == "string" and ("'" .. t.device .. "'") or type(t.device))
  end
  if type(t.reason) ~= "string" or t.reason == "" then return bad("field 'reason' must be a non-empty string") end
  if t.when ~= nil and type(t.when) ~= "function" then return bad("field 'when' must be a function(op, ctx)") end
  if t.os ~= nil and (type(t.os) ~= "string" and type(t.os) ~= "number"
      or not tostring(t.os):match("^%s*[<>=]*%s*%d+[%.%d]*%s*$")) then
    return bad("field 'os' must look like \">=17\", \"<18\" or \"17\" (iOS version), got %s", tostring(t.os))
  end
  return { ops = ops, device = t.device, when = t.when, reason = t.reason, os = t.os and tostring(t.os) or nil,
           source = where }
end

-- ---- environments and loading ---------------------------------------------------------------------

-- ---- environments: the sandbox (mlsh.sandbox) ----------------------------------------------------
-- Its switch and helpers answer under the rules engine's names too (rules.safe, rules.set_safe ...).
M.set_safe, M.guarded_call, M.read_only = sandbox.set_safe, sandbox.guarded_call, sandbox.read_only
M.safe_require, M.safe_mlsh = sandbox.safe_require, sandbox.safe_mlsh

-- A rule file's environment: the sandbox's, plus fallback{} (its declarations go to on_fallback).
function M.environment(where, on_fallback)
  local env = sandbox.environment(where)
  env.fallback = function(t)
    local fb, err = M.validate_fallback(t, where)
    if not fb then error(err, 2) end
    on_fallback(fb)
    return fb
  end
  return env
end

function M.load_file(path)
  local fallbacks = {}
  local env = M.environment(path, function(fb) fallbacks[#fallbacks + 1] = fb end)
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  local ok, res = sandbox.guarded_call("rule file " .. path, chunk)
  if not ok then
    res = tostring(res)
    return nil, res:find(path, 1, true) and res or (path .. ": " .. res)
  end
  local out = { rules = {}, fallbacks = fallbacks }
  if res == nil then
    if #fallbacks == 0 then
      return nil, path .. ": returned nothing (a rule file returns a rule table {id, title, categories, severity, "
        .. "pattern, check} or declares fallback{...})"
    end
    return out
  end
  local rule, verr = M.validate(res, path)
  if not rule then return nil, verr end
  out.rules[1] = rule
  return out
end

-- The *.lua files of a folder (not hidden ones), sorted; {} when it cannot be read.
local function list_lua(dir)
  local files = {}
  for _, e in ipairs(require("mlsh.core").fs.list(dir) or {}) do
    if not e.dir and e.name:match("%.lua$") and e.name:sub(1, 1) ~= "." then files[#files + 1] = e.name end
  end
  return files
end
M.list_lua = list_lua

-- Load every *.lua of a folder (not recursive). Returns {rules, fallbacks, errors = {{file, message}}}.
function M.load_dir(dir)
  local out = { rules = {}, fallbacks = {}, errors = {} }
  for _, name in ipairs(list_lua(dir)) do
    local path = dir .. "/" .. name
    local res, err = M.load_file(path)
    if res then
      for _, r in ipairs(res.rules) do out.rules[#out.rules + 1] = r end
      for _, f in ipairs(res.fallbacks) do out.fallbacks[#out.fallbacks + 1] = f end
    else
      out.errors[#out.errors + 1] = { file = path, message = err }
    end
  end
  return out
end

-- The folder holding lua/ rules/ recipes/: mlsh.home inside the mlsh binary; under a plain lua5.4
-- (busted), $MLSH_HOME or the folder this module was loaded from.
function M.home()
  local ok, home = pcall(require, "mlsh.home")
  if ok and type(home) == "string" then return home end
  local env = os.getenv("MLSH_HOME")
  if env and env ~= "" then return env end
  local path = package.searchpath("mlsh.engine.rules", package.path)
  return path and path:match("^(.*)/lua/mlsh/engine/rules%.lua$") or nil
end

-- The folders to read, in order (a later rule with the same id replaces an earlier one):
-- the installed rules/ (unless builtin = false), $MLSH_RULES (colon-separated), then opts.dirs.
function M.dirs(opts)
  opts = opts or {}
  local dirs = {}
  if opts.builtin ~= false then
    local home = M.home()
    if home then
      dirs[#dirs + 1] = { path = home .. "/rules", builtin = true }
      dirs[#dirs + 1] = { path = home .. "/rules/advisory", builtin = true } -- known platform bugs and limits
    end
  end
  local env = opts.env ~= nil and opts.env or os.getenv("MLSH_RULES")
  if env and env ~= "" then
    for d in env:gmatch("[^:]+") do dirs[#dirs + 1] = { path = d, from = "MLSH_RULES" } end
  end
  for _, d in ipairs(opts.dirs or {}) do dirs[#dirs + 1] = { path = d, from = "--rules" } end
  return dirs
end

-- Discover rules. Returns the set, or nil, message when a named folder does not exist (bad input).
function M.discover(opts)
  local fs = require("mlsh.core").fs
  local set = { rules = {}, fallbacks = {}, errors = {}, notes = {}, dirs = {} }
  local by_id = {}
  for _, d in ipairs(M.dirs(opts)) do
    local kind = fs.exists(d.path)
    if kind ~= "dir" then
      if not d.builtin then
        return nil, string.format("%s: %s: %s", d.from, d.path, kind and "not a directory" or "no such directory")
      end
    else
      set.dirs[#set.dirs + 1] = d.path
      local res = M.load_dir(d.path)
      for _, r in ipairs(res.rules) do
        local prev = by_id[r.id]
        if prev then
          set.notes[#set.notes + 1] = string.format("rule '%s' from %s replaces the one from %s", r.id, r.source, prev.source)
          for i, x in ipairs(set.rules) do
            if x == prev then set.rules[i] = r end
          end
        else
          set.rules[#set.rules + 1] = r
        end
        by_id[r.id] = r
      end
      for _, f in ipairs(res.fallbacks) do set.fallbacks[#set.fallbacks + 1] = f end
      for _, e in ipairs(res.errors) do set.errors[#set.errors + 1] = e end
    end
  end
  table.sort(set.rules, function(a, b) return a.id < b.id end)
  return set
end

-- ---- selection expressions: mlsh.engine.select -------------------------------------------------------
local select_lang = require "mlsh.engine.select"
select_lang.vocabulary(M)
M.selector = select_lang.selector

-- ---- running ---------------------------------------------------------------------------------------

local PIPELINE_TYPES = { pipeline = true, pipelineClassifier = true, pipelineRegressor = true }

-- The model and, recursively, its pipeline sub-models: {{model, label}}; the root has label nil.
local function each_model(m, label, out)
  out = out or {}
  out[#out + 1] = { model = m, label = label }
  if PIPELINE_TYPES[m.model_type or ""] then
    local subs, names = m:submodels()
    for i, sub in ipairs(subs) do
      local name = (names and names[i] and names[i] ~= "") and names[i] or ("pipeline[" .. i .. "]")
      each_model(sub, label and (label .. "/" .. name) or name, out)
    end
  end
  return out
end
M.each_model = each_model

local function short_error(e)
  e = tostring(e)
  return (e:gsub("\n.*", ""))
end

-- Normalize a finding a rule reported; returns the finding or nil, why it is malformed.
local function normalize(rule, f, label)
  if type(f) ~= "table" then return nil, "a finding must be a table, got " .. type(f) end
  if type(f.message) ~= "string" or f.message == "" then return nil, "a finding needs a message (string)" end
  local sev = f.severity or rule.severity
  if not SEVERITY_SET[sev] then return nil, "finding severity must be error, warning or info, got " .. tostring(sev) end
  local pattern = f.pattern
  if pattern == nil then pattern = rule.pattern end
  if pattern ~= nil and pattern ~= false and not PATTERN_SET[pattern] then
    return nil, "finding pattern must be 1a..5b, got " .. tostring(pattern)
  end
  if f.fix ~= nil and type(f.fix) ~= "string" then return nil, "finding fix must be a string" end
  local loc = {}
  if f.location ~= nil then
    if type(f.location) ~= "table" then return nil, "finding location must be a table" end
    for k, v in pairs(f.location) do
      if not LOCATION_SET[k] then
        return nil, "unknown location key '" .. tostring(k) .. "' (function, op, layer, value, model)"
      end
      loc[k] = tostring(v)
    end
  end
  if label and not loc.model then loc.model = label end
  return { rule = rule.id, severity = sev, pattern = pattern or nil, categories = rule.categories,
           title = rule.title, message = f.message, fix = f.fix or rule.fix, location = loc, evidence = f.evidence,
           sources = rule.evidence, affected = rule.affected }
end

local function error_finding(rule, what, err, label)
  return { rule = rule.id, severity = "error", pattern = nil, categories = rule.categories, title = rule.title,
           message = string.format("rule %s %s: %s", rule.id, what, short_error(err)),
           fix = "fix or remove the rule (" .. tostring(rule.source) .. ")",
           location = label and { model = label } or {}, rule_error = true }
end

-- The ctx a rule's check receives: the run's options, report(), and the model's facts (one
-- mlsh.facts object per run: placement and the required spec are computed once for all rules).
local function rule_context(opts, facts, sub, label, root, reported)
  local ctx = {
    target = opts.target, target_name = opts.target and spec.target_name(opts.target) or nil,
    compute_units = opts.compute_units or "ALL", options = opts.options or {}, model_label = label, root = root,
  }
  function ctx.report(a, b) reported[#reported + 1] = (a == ctx) and b or a end
  function ctx.placement() return facts:placement() end
  function ctx.required_spec() return facts:required_spec() end
  local function pick(list, first, pred)
    if type(first) ~= "table" or first ~= ctx then pred = first end
    local out = {}
    for _, x in ipairs(list) do
      local keep = pred == nil or (type(pred) == "string" and x.type == pred)
        or (type(pred) == "table" and pred[x.type]) or (type(pred) == "function" and pred(x))
      if keep then out[#out + 1] = x end
    end
    return out
  end
  function ctx.ops(first, pred) return pick(sub:ops(), first, pred) end
  function ctx.layers(first, pred) return pick(sub:layers(), first, pred) end
  return ctx
end

-- One rule over one (sub)model: its findings appended to `findings`.
local function run_rule(rule, entry, opts, facts, root, findings)
  local sub, label = entry.model, entry.label
  local ok, applies = true, true
  if sandbox.safe then sub = sandbox.read_only(sub) end
  if rule.applies then ok, applies = sandbox.guarded_call("rule " .. rule.id, rule.applies, sub) end
  if not ok then
    findings[#findings + 1] = error_finding(rule, "raised in applies()", applies, label)
    return
  end
  if not applies then return end
  local reported = {}
  local ctx = rule_context(opts, facts, sub, label, root, reported)
  local cok, res = sandbox.guarded_call("rule " .. rule.id, rule.check, sub, ctx)
  if not cok then
    findings[#findings + 1] = error_finding(rule, "raised", res, label)
    return
  end
  if type(res) == "table" then
    for _, f in ipairs(res) do reported[#reported + 1] = f end
  end
  for _, f in ipairs(reported) do
    local nf, err = normalize(rule, f, label)
    findings[#findings + 1] = nf or error_finding(rule, "reported a malformed finding", err, label)
  end
end

-- Run the selected rules over a model. opts: target (spec number), compute_units, select (predicate),
-- fallbacks (defaults to set.fallbacks), options (free table for rules, e.g. memory_budget), device,
-- calibrated (false: placement's first stage only),
-- placement / required (precomputed results to share), facts (an mlsh.facts object to read them
-- from). Returns the findings, sorted, and {placement, required} as far as the rules asked.
function M.run(m, set, opts)
  opts = opts or {}
  local facts = opts.facts or require("mlsh.facts").new(m, { compute_units = opts.compute_units or "ALL",
    target = opts.target, fallbacks = opts.fallbacks or set.fallbacks, device = opts.device,
    calibrated = opts.calibrated, placement = opts.placement, required = opts.required })
  local findings = {}
  local models = each_model(m)
  for _, rule in ipairs(set.rules) do
    if not opts.select or opts.select(rule) then
      for _, entry in ipairs(rule.scope == "model" and { models[1] } or models) do
        run_rule(rule, entry, opts, facts, m, findings)
      end
    end
  end
  for i, f in ipairs(findings) do f._order = i end
  table.sort(findings, function(a, b)
    local ra, rb = M.SEVERITY_RANK[a.severity], M.SEVERITY_RANK[b.severity]
    if ra ~= rb then return ra < rb end
    if a.rule ~= b.rule then return a.rule < b.rule end
    return a._order < b._order
  end)
  for _, f in ipairs(findings) do f._order = nil end
  return findings, { placement = facts._cache.placement or nil, required = facts._cache.required or nil }
end

-- Count findings by severity.
function M.summary(findings)
  local s = { error = 0, warning = 0, info = 0 }
  for _, f in ipairs(findings) do s[f.severity] = s[f.severity] + 1 end
  return s
end

-- Evidence is free-form; keep it JSON-safe (userdata and functions become strings).
local function json_safe(v, depth)
  local json = require "mlsh.json"
  depth = depth or 0
  local t = type(v)
  if t == "table" then
    if v == json.null then return v end
    if depth > 6 then return "..." end
    local out = {}
    for k, x in pairs(v) do out[type(k) == "number" and k or tostring(k)] = json_safe(x, depth + 1) end
    local mt = getmetatable(v)
    local name = type(mt) == "table" and mt.__name or nil
    if name == "json.array" then return json.array(out) end
    if name == "json.object" then return json.object(out) end
    return out
  elseif t == "function" or t == "userdata" or t == "thread" then
    return tostring(v)
  end
  return v
end

function M.findings_json(findings)
  local json = require "mlsh.json"
  local out = json.array({})
  for i, f in ipairs(findings) do
    out[i] = { rule = f.rule, severity = f.severity, pattern = f.pattern or json.null,
               categories = json.array(f.categories), title = f.title, message = f.message,
               fix = f.fix or json.null, location = json.object(f.location),
               evidence = f.evidence ~= nil and json_safe(f.evidence) or json.null }
    -- advisory rules name their sources and the affected ranges (absent for other rules)
    if f.sources then out[i].sources = json.array(f.sources) end
    if f.affected then out[i].affected = json.object(json_safe(f.affected)) end
  end
  return out
end

-- rules.safe: the sandbox's switch, read through (it changes with --safe / mlsh.safe()).
return setmetatable(M, { __index = function(_, k)
  if k == "safe" or k == "SAFE_INSTRUCTIONS" or k == "SAFE_MEMORY" or k == "SAFE_MODULES" then return sandbox[k] end
end })
