-- mlsh.report.text — the human reports of `mlsh diagnose` and `mlsh checklist` (and `mlsh check`,
-- through mlsh.report_text). Colour through opts.paint (mlsh.term.painter); plain without it.
--
--   text.diagnose(result, {paint = p}) -> string     (result of mlsh.playbook.diagnose/walk)
--   text.checklist(result, {paint = p}) -> string    (result of mlsh.checklist.run)
--   text.check(reports, o) -> string                  (reports of mlsh check: {{report, parts}})
local term = require "mlsh.term"
local report_text = require "mlsh.report_text"

local M = {}

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
    report_text.findings(r.findings, out, paint)
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
  for i, r in ipairs(reports) do parts[i] = report_text.render(r.parts, o) end
  return table.concat(parts, "\n")
end

return M
