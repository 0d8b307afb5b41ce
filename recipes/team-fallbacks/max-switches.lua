-- An example team rule: our latency budget tolerates at most 2 predicted device switches.
-- Rules read like the playbook: what pattern, what we see, what to do.
local LIMIT = 2

return {
  id = "team-max-switches",
  title = "more predicted device switches than the team budget",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  scope = "model",
  check = function(m, ctx)
    local p = ctx:placement()
    if #p.transitions <= LIMIT then return end
    local first = p.transitions[1]
    ctx:report {
      message = string.format("%d predicted device switches (team budget %d); first: %s -> %s after '%s'",
        #p.transitions, LIMIT, first.from, first.to, first.after),
      location = { ["function"] = first["function"], op = first.before },
      evidence = { transitions = #p.transitions, limit = LIMIT },
    }
  end,
}
