-- mlsh.report.sarif — SARIF 2.1.0 logs of `mlsh check`, `mlsh diagnose` and `mlsh checklist`, for
-- code-scanning tools (GitHub code scanning, Azure DevOps, VS Code's SARIF viewer).
--
--   sarif.check(reports, o, set)   reports as mlsh check builds them; set = the rule set (rule metadata)
--   sarif.diagnose(result)         result of mlsh.playbook.diagnose
--   sarif.checklist(result)        result of mlsh.checklist.run
-- Each returns a Lua table for mlsh.json.encode.
--
-- Rule ids are stable: a rule's id (`fp32-compute`), `diagnose/<symptom>/<leaf>` for a diagnosis,
-- `checklist/<checklist>/<item>` for a checklist item. Levels: error/warning/note from the severity.
-- A location is the model file (artifactLocation.uri, relative paths kept relative so the log is
-- portable; region.startLine 1 because code scanning needs a line even for binary files) plus a
-- logical location naming the op / layer / input and its function or sub-model.
local json = require "mlsh.json"

local M = {}

M.SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
M.VERSION = "2.1.0"
local LEVEL = { error = "error", warning = "warning", info = "note" }
M.LEVEL = LEVEL

-- A URI reference for a file path: relative paths stay relative, absolute ones become file:// URIs;
-- characters outside RFC 3986's unreserved set and '/' are percent-encoded.
function M.uri(path)
  path = tostring(path or "")
  local enc = path:gsub("[^%w%-%._~/]", function(c) return string.format("%%%02X", c:byte()) end)
  if path:sub(1, 1) == "/" then return "file://" .. enc end
  return enc
end

-- FNV-1a 32-bit: a stable fingerprint so code scanning matches a result across runs.
function M.fingerprint(...)
  local h = 2166136261
  for _, part in ipairs({ ... }) do
    for i = 1, #tostring(part) do
      h = ((h ~ tostring(part):byte(i)) * 16777619) & 0xffffffff
    end
    h = ((h ~ 0) * 16777619) & 0xffffffff
  end
  return string.format("%08x", h)
end

-- "fp32-compute" -> "Fp32Compute" (reportingDescriptor.name is an identifier-like label).
local function pascal(id)
  return (tostring(id):gsub("[^%w]+(%w?)", function(c) return c:upper() end):gsub("^%l", string.upper))
end

local function tool(rule_list)
  local version = require("mlsh").version
  return { driver = { name = "mlsh", version = version, semanticVersion = version,
    fullName = "mlsh, an analysis shell for Core ML models", rules = json.array(rule_list) } }
end

local function log(runs)
  return { ["$schema"] = M.SCHEMA, version = M.VERSION, runs = json.array(runs) }
end

-- The logical location of a finding: op (or layer / input) inside its function and sub-model.
local function logical(loc)
  loc = loc or {}
  local name, kind
  if loc.op then name, kind = loc.op, "member"
  elseif loc.layer then name, kind = loc.layer, "member"
  elseif loc.value then name, kind = loc.value, "variable"
  elseif loc["function"] then name, kind = loc["function"], "function"
  elseif loc.model then name, kind = loc.model, "module" end
  if not name then return nil end
  local qual = {}
  for _, k in ipairs({ "model", "function" }) do
    if loc[k] and loc[k] ~= name then qual[#qual + 1] = loc[k] end
  end
  qual[#qual + 1] = name
  return { name = tostring(name), fullyQualifiedName = table.concat(qual, "/"), kind = kind }
end

local function location(path, loc)
  local l = { physicalLocation = { artifactLocation = { uri = M.uri(path) }, region = { startLine = 1 } } }
  local lg = logical(loc)
  if lg then l.logicalLocations = json.array({ lg }) end
  return l
end

-- reportingDescriptor for a rule of the rule set (or a pseudo-rule like rule-load).
local function rule_descriptor(r)
  local tags = {}
  for _, c in ipairs(r.categories or {}) do tags[#tags + 1] = c end
  if r.pattern then tags[#tags + 1] = "pattern-" .. r.pattern end
  local d = {
    id = r.id, name = pascal(r.id),
    shortDescription = { text = r.title },
    fullDescription = { text = r.description or r.title },
    defaultConfiguration = { level = LEVEL[r.severity] or "warning" },
    properties = { tags = json.array(tags), pattern = r.pattern or json.null },
  }
  if r.fix then d.help = { text = r.fix } end
  if r.evidence then -- advisory rules: the first source is the help page, all of them in properties
    d.helpUri = r.evidence[1]
    d.properties.evidence = json.array(r.evidence)
    if r.affected then d.properties.affected = r.affected end
  end
  return d
end

local function finding_result(f, path, index_of)
  local props = { pattern = f.pattern or json.null, categories = json.array(f.categories or {}) }
  if f.fix then props.fix = f.fix end
  if f.sources then props.evidence = json.array(f.sources) end
  local loc = f.location or {}
  return {
    ruleId = f.rule, ruleIndex = index_of[f.rule], level = LEVEL[f.severity] or "warning", kind = "fail",
    message = { text = f.message .. (f.fix and (" Fix: " .. f.fix) or "") },
    locations = json.array({ location(path, loc) }),
    partialFingerprints = { ["mlshFinding/v1"] = M.fingerprint(f.rule, loc.model or "", loc["function"] or "",
      loc.op or loc.layer or loc.value or "", f.message) },
    properties = props,
  }
end

-- Rule descriptors of a rule set, plus pseudo-rules the findings use (rule-load, rule errors).
local function rules_for(set, findings)
  local list, index_of = {}, {}
  local function add(d)
    if index_of[d.id] == nil then
      list[#list + 1] = d
      index_of[d.id] = #list - 1
    end
  end
  for _, r in ipairs(set and set.rules or {}) do add(rule_descriptor(r)) end
  for _, f in ipairs(findings) do
    if index_of[f.rule] == nil then
      add(rule_descriptor({ id = f.rule, title = f.title or f.rule, categories = f.categories, severity = f.severity,
        pattern = f.pattern, fix = f.fix }))
    end
  end
  return list, index_of
end

function M.check(reports, o, set)
  local all = {}
  for _, r in ipairs(reports) do
    for _, f in ipairs(r.parts.findings) do all[#all + 1] = f end
  end
  local list, index_of = rules_for(set, all)
  local results = json.array({})
  local artifacts = json.array({})
  for _, r in ipairs(reports) do
    local path = r.parts.model.path
    artifacts[#artifacts + 1] = { location = { uri = M.uri(path) }, roles = json.array({ "analysisTarget" }) }
    for _, f in ipairs(r.parts.findings) do results[#results + 1] = finding_result(f, path, index_of) end
  end
  local run = { tool = tool(list), results = results, artifacts = artifacts,
    invocations = json.array({ { executionSuccessful = true } }),
    properties = { target = o and o.target_name or json.null, compute_units = o and o.compute_units or json.null } }
  return log({ run })
end

local function leaf_rule_id(pb, leaf) return "diagnose/" .. pb.id .. "/" .. leaf.id end

function M.diagnose(r)
  local pb, ctx = r.playbook, r.ctx
  local findings = r.findings or {}
  local set = ctx.model and ctx:rule_set() or nil
  local list, index_of = rules_for(set, findings)
  -- every leaf of the playbook is a rule, so ids and indices do not depend on the path taken
  for _, n in ipairs(pb.nodes) do
    if n.kind == "leaf" then
      local id = leaf_rule_id(pb, n)
      list[#list + 1] = {
        id = id, name = pascal(pb.id .. "-" .. n.id), shortDescription = { text = n.title },
        fullDescription = { text = n.cause }, help = { text = n.fix },
        defaultConfiguration = { level = "warning" },
        properties = { tags = json.array({ "diagnose", pb.id, n.pattern and ("pattern-" .. n.pattern) or "pressure" }),
                       pattern = n.pattern or json.null, tradeoff = n.tradeoff },
      }
      index_of[id] = #list - 1
    end
  end
  local open_id = "diagnose/" .. pb.id .. "/open-question"
  list[#list + 1] = { id = open_id, name = pascal(pb.id .. "-open-question"),
    shortDescription = { text = "a question the model file cannot answer" },
    defaultConfiguration = { level = "note" } }
  index_of[open_id] = #list - 1
  local path = ctx.path or "."
  local results = json.array({})
  if r.leaf then
    local leaf = r.leaf
    local id = leaf_rule_id(pb, leaf)
    local trail = {}
    for _, s in ipairs(r.steps) do trail[#trail + 1] = s.node .. "=" .. s.answer end
    results[#results + 1] = {
      ruleId = id, ruleIndex = index_of[id], level = "warning", kind = "fail",
      message = { text = string.format("%s: %s Fix: %s", leaf.title, leaf.cause, leaf.fix) },
      locations = json.array({ location(path, nil) }),
      partialFingerprints = { ["mlshDiagnosis/v1"] = M.fingerprint(id, path) },
      properties = { pattern = leaf.pattern or json.null, path = json.array(r.path), answers = table.concat(trail, " "),
                     facts = json.array(r.facts or {}), steps = json.array(leaf.steps), tradeoff = leaf.tradeoff,
                     python = leaf.snippet.python or json.null, swift = leaf.snippet.swift or json.null },
    }
  else
    for _, n in ipairs(r.needs) do
      local answers = {}
      for _, a in ipairs(n.answers) do answers[#answers + 1] = a.id end
      results[#results + 1] = {
        ruleId = open_id, ruleIndex = index_of[open_id], level = "none", kind = "open",
        message = { text = string.format("%s (answer %s with one of: %s)", n.question, n.id, table.concat(answers, ", ")) },
        locations = json.array({ location(path, nil) }),
        partialFingerprints = { ["mlshQuestion/v1"] = M.fingerprint(pb.id, n.id, path) },
      }
    end
  end
  for _, f in ipairs(findings) do results[#results + 1] = finding_result(f, path, index_of) end
  local run = { tool = tool(list), results = results,
    artifacts = json.array({ { location = { uri = M.uri(path) }, roles = json.array({ "analysisTarget" }) } }),
    invocations = json.array({ { executionSuccessful = true } }),
    properties = { symptom = pb.id, notes = json.array(r.notes or {}) } }
  return log({ run })
end

local KIND = { pass = "pass", fail = "fail", unknown = "open" }

function M.checklist(r)
  local list_, ctx = r.checklist, r.ctx
  local rules_list, index_of = {}, {}
  for _, it in ipairs(list_.items) do
    local id = "checklist/" .. list_.id .. "/" .. it.id
    local d = { id = id, name = pascal(list_.id .. "-" .. it.id), shortDescription = { text = it.text },
      defaultConfiguration = { level = "error" },
      properties = { tags = json.array({ "checklist", list_.id }) } }
    if it.fix then d.help = { text = it.fix } end
    rules_list[#rules_list + 1] = d
    index_of[id] = #rules_list - 1
  end
  local path = ctx.path or "."
  local results = json.array({})
  for _, it in ipairs(r.items) do
    local id = "checklist/" .. list_.id .. "/" .. it.id
    local text = it.text .. ": " .. it.status .. (it.evidence and (" (" .. it.evidence .. ")") or "")
    if it.status == "fail" and it.fix then text = text .. ". Fix: " .. it.fix end
    results[#results + 1] = {
      ruleId = id, ruleIndex = index_of[id], kind = KIND[it.status],
      -- SARIF: a level other than "none" requires kind "fail"
      level = it.status == "fail" and "error" or "none",
      message = { text = text },
      locations = json.array({ location(path, nil) }),
      partialFingerprints = { ["mlshChecklist/v1"] = M.fingerprint(id, path) },
      properties = { status = it.status, by = it.by or json.null },
    }
  end
  local run = { tool = tool(rules_list), results = results,
    artifacts = json.array({ { location = { uri = M.uri(path) }, roles = json.array({ "analysisTarget" }) } }),
    invocations = json.array({ { executionSuccessful = true } }),
    properties = { checklist = list_.id, summary = r.summary, notes = json.array(r.notes or {}) } }
  return log({ run })
end

return M
