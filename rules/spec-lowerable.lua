-- Playbook 1a, preventive: the model declares a newer spec than anything in it needs, so it shuts
-- out older OS versions for no reason ("why does my model need iOS 17?" - it does not).
local required_spec = require "mlsh.required_spec"
local spec = require "mlsh.spec"
-- the targets `mlsh fix --retarget` lowers a model to on the file
local RETARGET = { iOS15 = true, iOS16 = true, iOS17 = true }

return {
  id = "spec-lowerable",
  title = "declared spec higher than the model needs",
  categories = { "deploy" },
  severity = "info",
  pattern = "1a",
  scope = "model",
  check = function(m, ctx)
    local r = ctx:required_spec()
    local declared = m.spec_version
    if not declared or declared <= r.version or declared > spec.MAX then return end
    local low = required_spec.lowering(m, r.version, r)
    local need = spec.target_name(r.version) or ("spec " .. r.version)
    local losses = {}
    for i, l in ipairs(low.losses) do
      if i <= 3 then losses[#losses + 1] = l.what end
    end
    ctx:report {
      message = string.format("the model declares spec %d (%s) but nothing in it needs more than spec %d (%s)%s",
        declared, spec.target_name(declared) or "?", r.version, need,
        r.reasons[1] and (": the highest need is " .. r.reasons[1].what) or ""),
      fix = string.format("if older OS versions matter, %sre-convert with minimum_deployment_target=ct.target.%s%s",
        RETARGET[need] and ("on the file: mlsh fix MODEL --retarget " .. need .. " -o OUT; at conversion: ") or "",
        need, #losses > 0 and (" (uses older op versions: " .. table.concat(losses, "; ") .. ")") or ""),
      evidence = { declared = declared, required = r.version },
    }
  end,
}
