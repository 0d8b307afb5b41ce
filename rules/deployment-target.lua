-- Playbook 1a (unsupported model version): the model's specificationVersion is newer than the
-- deployment target, so Core ML on that OS refuses to load it. Says what needs the newer spec
-- (the blockers) and what re-converting for the target would lose.
local required_spec = require "mlsh.required_spec"
local spec = require "mlsh.spec"
-- the targets `mlsh fix --retarget` lowers a model to on the file
local RETARGET = { iOS15 = true, iOS16 = true, iOS17 = true }

local function list(items, n)
  local out = {}
  for i, x in ipairs(items) do
    if i > n then out[#out + 1] = string.format("... %d more", #items - n) break end
    out[#out + 1] = x
  end
  return table.concat(out, "; ")
end

return {
  id = "deployment-target",
  title = "model spec newer than the deployment target",
  categories = { "load", "deploy" },
  severity = "error",
  pattern = "1a",
  scope = "model",
  check = function(m, ctx)
    local declared = m.spec_version
    if not ctx.target or not declared or declared <= ctx.target then return end
    local low = required_spec.lowering(m, ctx.target, ctx:required_spec())
    local declared_name = spec.target_name(declared) or ("spec " .. declared)
    local blockers, losses = {}, {}
    for _, r in ipairs(low.blockers) do blockers[#blockers + 1] = string.format("%s (spec %d)", r.what, r.spec) end
    for _, l in ipairs(low.losses) do losses[#losses + 1] = l.what end
    local fix
    if low.possible then
      fix = string.format("nothing in the model needs more than %s: %sre-convert with minimum_deployment_target="
        .. "ct.target.%s%s", spec.target_name(math.max(low.required, 1)) or "?", RETARGET[ctx.target_name]
        and ("on the file: mlsh fix MODEL --retarget " .. ctx.target_name .. " -o OUT; at conversion: ") or "",
        ctx.target_name, #losses > 0 and (" (lowering uses older op versions: " .. list(losses, 4) .. ")") or "")
    else
      fix = string.format("raise the deployment target to %s, or remove what needs it: %s",
        spec.target_name(low.required) or ("spec " .. low.required), list(blockers, 4))
    end
    ctx:report {
      message = string.format("the model is spec %d (%s) but the deployment target %s runs at most spec %d: "
        .. "Core ML there will refuse to load it%s", declared, declared_name, ctx.target_name, ctx.target,
        #blockers > 0 and ("; needs the newer spec: " .. list(blockers, 3)) or "; nothing in it needs the newer spec"),
      fix = fix,
      evidence = { declared = declared, target = ctx.target, required = low.required, blockers = blockers,
                   losses = losses, lowering_possible = low.possible },
    }
  end,
}
