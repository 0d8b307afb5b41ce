-- mlsh.report.markdown — Markdown reports of `mlsh check`, `mlsh diagnose` and `mlsh checklist`,
-- for pull-request comments and CI summaries (GitHub's $GITHUB_STEP_SUMMARY).
--
--   markdown.check(reports, o)   reports = {{report = <check JSON table>, parts = {findings, required, placement, model}}}
--   markdown.diagnose(result)    result of mlsh.playbook.diagnose
--   markdown.checklist(result)   result of mlsh.checklist.run
local spec = require "mlsh.spec"

local M = {}

-- A table cell: no pipes or newlines may break the row.
local function cell(s)
  s = tostring(s == nil and "" or s)
  return (s:gsub("|", "\\|"):gsub("\r?\n", "<br>"))
end
M.cell = cell

local function code(s) return "`" .. tostring(s):gsub("`", "'") .. "`" end

local function spec_label(n)
  if not n then return "?" end
  local name = spec.target_name(n)
  return name and string.format("spec %d (%s)", n, name) or ("spec " .. n)
end

local function location(loc)
  local parts = {}
  for _, k in ipairs({ "model", "function", "op", "layer", "value" }) do
    if loc and loc[k] then parts[#parts + 1] = k .. " " .. code(loc[k]) end
  end
  return table.concat(parts, ", ")
end

local function pct(x) return string.format("%.0f%%", (x or 0) * 100) end

local function fence(lang, body)
  local ticks = "```"
  while body:find(ticks, 1, true) do ticks = ticks .. "`" end
  return ticks .. lang .. "\n" .. body .. "\n" .. ticks
end

-- The findings table (shared by check and diagnose).
function M.findings(findings, out)
  local s = { error = 0, warning = 0, info = 0 }
  for _, f in ipairs(findings) do s[f.severity] = s[f.severity] + 1 end
  out[#out + 1] = string.format("### Findings: %d error(s), %d warning(s), %d info", s.error, s.warning, s.info)
  out[#out + 1] = ""
  if #findings == 0 then
    out[#out + 1] = "No findings."
    out[#out + 1] = ""
    return
  end
  out[#out + 1] = "| severity | pattern | rule | message | location | fix |"
  out[#out + 1] = "|---|---|---|---|---|---|"
  for _, f in ipairs(findings) do
    out[#out + 1] = string.format("| %s | %s | %s | %s | %s | %s |", f.severity == "error" and "**error**" or f.severity,
      f.pattern or "–", code(f.rule), cell(f.message), cell(location(f.location)), cell(f.fix or ""))
  end
  out[#out + 1] = ""
end

function M.check(reports, o)
  local out = {}
  for _, r in ipairs(reports) do
    local parts = r.parts
    local m = parts.model
    out[#out + 1] = "## mlsh check: " .. code(m.path)
    out[#out + 1] = ""
    out[#out + 1] = string.format("%s, %s%s", m.model_type or "?", spec_label(m.spec_version),
      o and o.target and string.format("; target %s (spec %d)", o.target_name, o.target) or "")
    out[#out + 1] = ""
    M.findings(parts.findings, out)
    local req = parts.required
    out[#out + 1] = string.format("### Required spec: %s (declared %s)", spec_label(req.version), spec_label(req.declared))
    out[#out + 1] = ""
    for i, x in ipairs(req.reasons) do
      if i > 10 then out[#out + 1] = string.format("- … %d more", #req.reasons - 10) break end
      out[#out + 1] = string.format("- spec %d: %s%s", x.spec, cell(x.what), x.count > 1 and (" (×" .. x.count .. ")") or "")
    end
    out[#out + 1] = ""
    local p = parts.placement
    local counts = { ANE = 0, GPU = 0, CPU = 0 }
    for _, op in ipairs(p.ops) do counts[op.device] = counts[op.device] + 1 end
    out[#out + 1] = string.format("### Placement (%s): ANE coverage %s of ops, %s of work", p.compute_units,
      pct(p.ane_coverage.ops), pct(p.ane_coverage.work))
    out[#out + 1] = ""
    out[#out + 1] = string.format("ANE %d, GPU %d, CPU %d of %d ops; %d segment(s), %d switch(es).", counts.ANE, counts.GPU,
      counts.CPU, #p.ops, #p.segments, #p.transitions)
    out[#out + 1] = ""
    if #p.cut_makers > 0 then
      out[#out + 1] = "| cut-maker | ops | switches | work | why | fix |"
      out[#out + 1] = "|---|---|---|---|---|---|"
      for i, c in ipairs(p.cut_makers) do
        if i > 8 then break end
        out[#out + 1] = string.format("| %s | %d | %d | %s | %s | %s |", code(c.type), c.count, c.transitions,
          pct(c.work_share), cell(c.reason), cell(c.fix))
      end
      out[#out + 1] = ""
    end
  end
  return table.concat(out, "\n")
end

function M.diagnose(r)
  local pb, ctx = r.playbook, r.ctx
  local out = {}
  out[#out + 1] = "## mlsh diagnose: " .. pb.title
  out[#out + 1] = ""
  out[#out + 1] = string.format("Symptom %s: %s", code(r.symptom), pb.symptom)
  if ctx.path then out[#out + 1] = "Model: " .. code(ctx.path) end
  if ctx.target then out[#out + 1] = string.format("Target: %s (spec %d)", ctx.target_name, ctx.target) end
  if ctx.load_error then out[#out + 1] = "The model could not be read: " .. ctx.load_error end
  out[#out + 1] = ""
  if pb.pressure then
    out[#out + 1] = "> **Wrong approach.** " .. pb.pressure.wrong
    out[#out + 1] = ">"
    out[#out + 1] = "> **Right approach.** " .. pb.pressure.right
    out[#out + 1] = ""
    if #pb.pressure.checks > 0 then
      out[#out + 1] = fence("sh", table.concat(pb.pressure.checks, "\n"))
      out[#out + 1] = ""
    end
  end
  out[#out + 1] = "### Path"
  out[#out + 1] = ""
  for i, s in ipairs(r.steps) do
    out[#out + 1] = string.format("%d. %s → **%s** (%s%s)", i, s.question, s.answer_text,
      s.by == "check" and "checked" or "answered", s.evidence and (": " .. s.evidence) or "")
  end
  if #r.steps == 0 then out[#out + 1] = "(no question decided yet)" end
  out[#out + 1] = ""
  local leaf = r.leaf
  if leaf then
    out[#out + 1] = string.format("### Diagnosis [%s] %s", leaf.pattern or "–", leaf.title)
    out[#out + 1] = ""
    out[#out + 1] = "**Cause.** " .. leaf.cause
    out[#out + 1] = ""
    if r.facts and #r.facts > 0 then
      out[#out + 1] = "**The model shows:**"
      out[#out + 1] = ""
      for _, f in ipairs(r.facts) do out[#out + 1] = "- " .. f end
      out[#out + 1] = ""
    end
    out[#out + 1] = "**Steps:**"
    out[#out + 1] = ""
    for i, s in ipairs(leaf.steps) do out[#out + 1] = string.format("%d. %s", i, s) end
    out[#out + 1] = ""
    out[#out + 1] = "**Fix.** " .. leaf.fix
    out[#out + 1] = ""
    for _, lang in ipairs({ "python", "swift" }) do
      if leaf.snippet[lang] then
        out[#out + 1] = fence(lang, leaf.snippet[lang])
        out[#out + 1] = ""
      end
    end
    out[#out + 1] = "**Trade-off.** " .. leaf.tradeoff
    out[#out + 1] = ""
  else
    out[#out + 1] = "### Open questions"
    out[#out + 1] = ""
    for _, n in ipairs(r.needs) do
      out[#out + 1] = string.format("- %s %s", code(n.id), n.question)
      for _, a in ipairs(n.answers) do out[#out + 1] = string.format("  - %s: %s", code(a.id), a.text) end
    end
    out[#out + 1] = ""
  end
  if r.findings then M.findings(r.findings, out) end
  if r.notes and #r.notes > 0 then
    out[#out + 1] = "### Notes"
    out[#out + 1] = ""
    for _, n in ipairs(r.notes) do out[#out + 1] = "- " .. n end
    out[#out + 1] = ""
  end
  return table.concat(out, "\n")
end

local STATUS = { pass = "✅ pass", fail = "❌ **fail**", unknown = "❔ unknown" }

function M.checklist(r)
  local ctx = r.ctx
  local out = {}
  out[#out + 1] = "## " .. r.checklist.title
  out[#out + 1] = ""
  if ctx.path then out[#out + 1] = "Model: " .. code(ctx.path) end
  out[#out + 1] = string.format("%d pass, %d fail, %d unknown", r.summary.pass, r.summary.fail, r.summary.unknown)
  out[#out + 1] = ""
  out[#out + 1] = "| status | item | evidence |"
  out[#out + 1] = "|---|---|---|"
  for _, it in ipairs(r.items) do
    local ev = it.evidence or ""
    if it.status == "fail" and it.fix then ev = ev .. (ev ~= "" and "<br>" or "") .. "fix: " .. it.fix end
    if it.status == "unknown" and it.ask then ev = ev .. (ev ~= "" and "<br>" or "") .. "ask: " .. it.ask end
    out[#out + 1] = string.format("| %s | %s (%s) | %s |", STATUS[it.status], cell(it.text), code(it.id), cell(ev))
  end
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

return M
