-- mlsh.report.text — the one text reporter: the human reports of `mlsh check`, `mlsh diagnose` and
-- `mlsh checklist` (the JSON forms are the contracts; these are for reading). Colour through
-- opts.paint (mlsh.term.painter); plain without it.
--   text.findings(findings, out, paint) text.required(r, out, max) text.placement(p, out, opts)
--   text.render(parts, o) -> string                  (one model's check report: findings first,
--                                                      then the required spec and the placement)
--   text.diagnose(result, {paint = p}) -> string     (result of mlsh.playbook.diagnose/walk)
--   text.checklist(result, {paint = p}) -> string    (result of mlsh.checklist.run)
--   text.check(reports, o) -> string                  (reports of mlsh check: {{report, parts}})
local spec = require "mlsh.spec"
local term = require "mlsh.term"

local PLAIN = term.painter(false)

local M = {}

-- ---- mlsh check -------------------------------------------------------------------------------------

local function pct(x) return string.format("%.0f%%", (x or 0) * 100) end

local function spec_label(n)
  if not n then return "?" end
  local name = spec.target_name(n)
  return name and string.format("spec %d (%s)", n, name) or ("spec " .. n)
end

local function location(loc)
  local parts = {}
  for _, k in ipairs({ "model", "function", "op", "layer", "value" }) do
    if loc[k] then parts[#parts + 1] = k .. " " .. loc[k] end
  end
  return table.concat(parts, ", ")
end

-- The findings block (shared with recipes and mlsh diagnose).
function M.findings(findings, out, paint)
  paint = paint or PLAIN
  local s = { error = 0, warning = 0, info = 0 }
  for _, f in ipairs(findings) do s[f.severity] = s[f.severity] + 1 end
  out[#out + 1] = string.format("findings: %s, %s, %d info", paint.word(s.error > 0 and "error" or "",
    string.format("%d error(s)", s.error)), paint.word(s.warning > 0 and "warning" or "",
    string.format("%d warning(s)", s.warning)), s.info)
  for _, f in ipairs(findings) do
    out[#out + 1] = string.format("  %s [%s] %s: %s", paint.word(f.severity, string.format("%-7s", f.severity)),
      f.pattern or "-", paint.bold(f.rule), f.message)
    local loc = location(f.location or {})
    if loc ~= "" then out[#out + 1] = "          at " .. loc end
    if f.fix then out[#out + 1] = "          " .. paint.green("fix:") .. " " .. f.fix end
    if f.sources then out[#out + 1] = "          evidence: " .. table.concat(f.sources, " ") end
  end
end

function M.required(r, out, max)
  out[#out + 1] = string.format("required spec: %s; declared %s", spec_label(r.version), spec_label(r.declared))
  for i, x in ipairs(r.reasons) do
    if max and i > max then
      out[#out + 1] = string.format("  ... %d more", #r.reasons - max)
      break
    end
    out[#out + 1] = string.format("  spec %-2d %s%s", x.spec, x.what, x.count > 1 and (" (x" .. x.count .. ")") or "")
  end
  for _, x in ipairs(r.soft) do
    out[#out + 1] = string.format("  (spec %d %s: on-device update only)", x.spec, x.what)
  end
  for _, n in ipairs(r.notes) do out[#out + 1] = "  note: " .. n end
end

function M.placement(p, out, opts)
  opts = opts or {}
  local paint = opts.paint or PLAIN
  local counts = { ANE = 0, GPU = 0, CPU = 0 }
  for _, o in ipairs(p.ops) do counts[o.device] = counts[o.device] + 1 end
  out[#out + 1] = string.format("placement (%s): ANE %d, GPU %d, CPU %d of %d ops; ANE coverage %s of ops, %s of work; "
    .. "%d segment(s), %d switch(es)", p.compute_units, counts.ANE, counts.GPU, counts.CPU, #p.ops,
    pct(p.ane_coverage.ops), pct(p.ane_coverage.work), #p.segments, #p.transitions)
  local max_segs = opts.max_segments or 12
  for i, s in ipairs(p.segments) do
    if i > max_segs then
      out[#out + 1] = string.format("  ... %d more segments", #p.segments - max_segs)
      break
    end
    local where = s["function"] or s.model
    out[#out + 1] = string.format("  %s x%-4d %s%s", paint.word(s.device, string.format("%-3s", s.device)), s.count,
      s.count == 1 and s.first or (s.first .. " .. " .. s.last), where and ("  [" .. where .. "]") or "")
  end
  local costly = 0
  for _, t in ipairs(p.transitions) do
    if t.cost == "costly" then costly = costly + 1 end
  end
  if costly > 0 then out[#out + 1] = string.format("  %d ANE<->GPU switch(es) (costly)", costly) end
  local max_cuts = opts.max_cuts or 5
  if #p.cut_makers > 0 then out[#out + 1] = "  cut-makers:" end
  for i, c in ipairs(p.cut_makers) do
    if i > max_cuts then break end
    out[#out + 1] = string.format("    %s x%d: %d switch(es), %s of work; %s", c.type, c.count, c.transitions,
      pct(c.work_share), c.reason)
    out[#out + 1] = "      fix: " .. c.fix
  end
  for _, n in ipairs(p.notes) do out[#out + 1] = "  note: " .. n end
end

-- parts = {findings, required, placement, model}; o = parsed options (target, target_name, paint)
function M.render(parts, o)
  local out = {}
  local m = parts.model
  local paint = o and o.paint or PLAIN
  out[#out + 1] = string.format("%s: %s, %s%s", paint.bold(m.path), m.model_type or "?", spec_label(m.spec_version),
    o and o.target and string.format("; target %s (spec %d)", o.target_name, o.target) or "")
  M.findings(parts.findings, out, paint)
  M.required(parts.required, out, 8)
  M.placement(parts.placement, out, { paint = paint })
  return table.concat(out, "\n") .. "\n"
end


-- ---- mlsh diagnose / checklist ----------------------------------------------------------------------

local function indent_block(s, prefix)
  local out = {}
  for line in (s .. "\n"):gmatch("(.-)\n") do out[#out + 1] = prefix .. line end
  return table.concat(out, "\n")
end
M.indent_block = indent_block

function M.diagnose(r, opts)
  opts = opts or {}
  local paint = opts.paint or term.painter(false)
  local pb, ctx = r.playbook, r.ctx
  local out = {}
  out[#out + 1] = string.format("%s %s: %s%s", paint.bold("diagnose"), r.symptom, pb.title,
    ctx.path and ("  (" .. ctx.path .. ")") or "")
  if ctx.target then out[#out + 1] = string.format("target %s (spec %d)", ctx.target_name, ctx.target) end
  if ctx.load_error then out[#out + 1] = paint.red("the model could not be read: ") .. ctx.load_error end
  if pb.pressure then
    out[#out + 1] = paint.red("wrong approach: ") .. pb.pressure.wrong
    out[#out + 1] = paint.green("right approach: ") .. pb.pressure.right
    if #pb.pressure.checks > 0 then
      out[#out + 1] = "checks mlsh runs for this:"
      for _, c in ipairs(pb.pressure.checks) do out[#out + 1] = "  " .. c end
    end
  end
  out[#out + 1] = "path:" .. (#r.steps == 0 and " (no question decided yet)" or "")
  for i, s in ipairs(r.steps) do
    local how = s.by == "check" and paint.cyan("checked") or paint.yellow("answered")
    out[#out + 1] = string.format("  %d. %s → %s  [%s]", i, s.question, paint.bold(s.answer_text), how)
    if s.evidence then out[#out + 1] = "       " .. paint.dim(s.evidence) end
    if s.check_answer then
      out[#out + 1] = "       " .. paint.yellow(string.format("the model suggests '%s'%s", s.check_answer,
        s.check_evidence and (": " .. s.check_evidence) or ""))
    end
  end
  local leaf = r.leaf
  if leaf then
    out[#out + 1] = string.format("%s [%s] %s: %s", paint.bold("diagnosis"), leaf.pattern or "-", leaf.id,
      paint.bold(leaf.title))
    out[#out + 1] = "  cause: " .. leaf.cause
    if r.facts and #r.facts > 0 then
      out[#out + 1] = "  the model shows:"
      for _, f in ipairs(r.facts) do out[#out + 1] = "    - " .. f end
    end
    out[#out + 1] = "  steps:"
    for i, s in ipairs(leaf.steps) do out[#out + 1] = string.format("    %d. %s", i, s) end
    out[#out + 1] = "  " .. paint.green("fix:") .. " " .. leaf.fix
    for _, lang in ipairs({ "python", "swift" }) do
      if leaf.snippet[lang] then
        out[#out + 1] = "  " .. lang .. ":"
        out[#out + 1] = paint.dim(indent_block(leaf.snippet[lang], "      "))
      end
    end
    out[#out + 1] = "  trade-off: " .. leaf.tradeoff
  else
    out[#out + 1] = paint.yellow(string.format("no diagnosis yet: %d open question(s) the model cannot answer", #r.needs))
    for i, n in ipairs(r.needs) do
      out[#out + 1] = string.format("  %s: %s%s", n.id, n.question, i == 1 and "  (asked first)" or "")
      if n.unknown then out[#out + 1] = "      " .. paint.dim(n.unknown) end
      for _, a in ipairs(n.answers) do out[#out + 1] = string.format("      %-14s %s", a.id, a.text) end
    end
    out[#out + 1] = "  answer with --answers FILE (a Lua file returning {[\"question-id\"] = \"answer-id\"}) or --answer ID=ANSWER"
  end
  if r.findings then
    M.findings(r.findings, out, paint)
  end
  for _, n in ipairs(r.notes or {}) do out[#out + 1] = paint.dim("note: " .. n) end
  return table.concat(out, "\n") .. "\n"
end

local MARK = { pass = "pass", fail = "FAIL", unknown = " ?? " }

function M.checklist(r, opts)
  opts = opts or {}
  local paint = opts.paint or term.painter(false)
  local ctx = r.ctx
  local out = {}
  out[#out + 1] = string.format("%s: %s%s", paint.bold(r.checklist.id), r.checklist.title,
    ctx.path and ("  (" .. ctx.path .. ")") or "")
  for _, it in ipairs(r.items) do
    out[#out + 1] = string.format("  [%s] %s%s", paint.word(it.status, MARK[it.status]), it.text,
      it.by == "answer" and paint.dim("  (answered)") or "")
    if it.evidence then out[#out + 1] = "         " .. paint.dim(it.evidence) end
    if it.status == "fail" and it.fix then out[#out + 1] = "         " .. paint.green("fix:") .. " " .. it.fix end
    if it.status == "unknown" and it.ask then out[#out + 1] = "         ask: " .. it.ask .. "  (--answer " .. it.id .. "=yes|no)" end
  end
  out[#out + 1] = string.format("%d pass, %s, %s", r.summary.pass,
    paint.word(r.summary.fail > 0 and "fail" or "", r.summary.fail .. " fail"),
    paint.word(r.summary.unknown > 0 and "unknown" or "", r.summary.unknown .. " unknown"))
  for _, n in ipairs(r.notes or {}) do out[#out + 1] = paint.dim("note: " .. n) end
  return table.concat(out, "\n") .. "\n"
end

function M.check(reports, o)
  local parts = {}
  for i, r in ipairs(reports) do parts[i] = M.render(r.parts, o) end
  return table.concat(parts, "\n")
end

return M
