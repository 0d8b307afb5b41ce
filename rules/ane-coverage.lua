-- Playbook 2b / 2c: the placement simulator predicts how much of the model runs on the Neural
-- Engine and what cuts it into segments. Reported when less than 80% of the estimated work is on
-- the ANE or an op sits between two ANE segments (two device switches); the cut-makers are ranked.
-- A warning when less than half the work is on the ANE or there are more than 4 switches.
local THRESHOLD = 0.8

local function pct(x) return string.format("%.0f%%", x * 100) end

return {
  id = "ane-coverage",
  title = "predicted Neural Engine coverage and the ops that cut it",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  scope = "model",
  check = function(m, ctx)
    if ctx.compute_units == "CPU_ONLY" or ctx.compute_units == "CPU_AND_GPU" then return end
    local p = ctx:placement()
    if #p.ops == 0 then return end
    local neural = false
    for _, o in ipairs(p.ops) do
      if o.kind ~= "model" then neural = true end
    end
    if not neural then return end
    local cov = p.ane_coverage
    local between = 0
    for _, c in ipairs(p.cut_makers) do
      if c.between_ane then between = between + 1 end
    end
    if cov.work >= THRESHOLD and between == 0 then return end
    local top = {}
    for i, c in ipairs(p.cut_makers) do
      if i > 3 then break end
      top[#top + 1] = string.format("%s x%d (%s, %d switch%s)", c.type, c.count, c.why, c.transitions,
        c.transitions == 1 and "" or "es")
    end
    local first = p.cut_makers[1]
    ctx:report {
      severity = (cov.work < 0.5 or #p.transitions > 4) and "warning" or "info",
      message = string.format("predicted ANE coverage (%s): %s of ops, %s of estimated work; %d segment(s), "
        .. "%d device switch(es)%s", p.compute_units, pct(cov.ops), pct(cov.work), #p.segments, #p.transitions,
        #top > 0 and ("; cut by: " .. table.concat(top, ", ")) or ""),
      fix = first and first.fix or nil,
      location = first and (first.kind == "nn" and { layer = first.ops[1], model = first.model }
        or { ["function"] = first["function"], op = first.ops[1], model = first.model }) or nil,
      evidence = { ane_coverage = cov, segments = #p.segments, transitions = #p.transitions },
    }
  end,
}
