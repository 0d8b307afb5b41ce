-- mlsh.report_text — the human report of `mlsh check` (the JSON form is the contract; this one is
-- for reading): findings first (what to do), then the required spec and the placement summary.
-- `paint` (mlsh.term.painter) colours severities and devices; without it the text is plain.
local spec = require "mlsh.spec"
local term = require "mlsh.term"

local PLAIN = term.painter(false)

local M = {}

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

return M
