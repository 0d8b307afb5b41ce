-- mlsh.surgery.delta — what `mlsh check` says before and after a repair: the findings (by rule) and
-- the predicted ANE coverage (mlsh.placement, compute units ALL).
--   local s = delta.snapshot(m)              -- {findings = {rule = count}, ane_coverage = {ops, work}}
--   local d = delta.compare(before, after)   -- {before, after, gone = {rule...}, new = {rule...}}
--   delta.to_json(d), delta.text(d) -> lines
local rules = require "mlsh.engine.rules"
local placement = require "mlsh.placement.coreml"

local M = {}

local set_cache
local function rule_set()
  if not set_cache then set_cache = rules.discover({}) end
  return set_cache
end

-- opts.calibrated = false: placement's first stage only (mlsh fix --static).
function M.snapshot(m, opts)
  local set = rule_set()
  local p = placement.simulate(m, { compute_units = "ALL", fallbacks = set.fallbacks,
                                    calibrated = opts and opts.calibrated })
  local found = {}
  for _, f in ipairs(rules.run(m, set, { compute_units = "ALL", placement = p })) do
    found[f.rule] = (found[f.rule] or 0) + 1
  end
  return { findings = found, ane_coverage = { ops = p.ane_coverage.ops, work = p.ane_coverage.work } }
end

local function sorted(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

function M.compare(before, after)
  local gone, new = {}, {}
  for k in pairs(before.findings) do if not after.findings[k] then gone[#gone + 1] = k end end
  for k in pairs(after.findings) do if not before.findings[k] then new[#new + 1] = k end end
  table.sort(gone)
  table.sort(new)
  return { before = before, after = after, gone = gone, new = new }
end

local function r4(x) return math.floor(x * 10000 + 0.5) / 10000 end

function M.to_json(d)
  local json = require "mlsh.json"
  local function snap(s)
    return { findings = json.array(sorted(s.findings)), ane_coverage = { ops = r4(s.ane_coverage.ops), work = r4(s.ane_coverage.work) } }
  end
  return { before = snap(d.before), after = snap(d.after), gone = json.array(d.gone), new = json.array(d.new) }
end

local function pct(x) return string.format("%.0f%%", 100 * x) end

function M.text(d)
  local b, a = d.before.ane_coverage, d.after.ane_coverage
  return {
    string.format("check: findings gone: %s; new: %s", #d.gone > 0 and table.concat(d.gone, ", ") or "none",
      #d.new > 0 and table.concat(d.new, ", ") or "none"),
    string.format("check: predicted ANE coverage %s -> %s of ops, %s -> %s of work", pct(b.ops), pct(a.ops), pct(b.work), pct(a.work)),
  }
end

return M
