-- mlsh.surgery.retarget — lower a model's spec version and its functions' opsets to a deployment
-- target when nothing in it needs the newer ones (mlsh.required_spec's reasons). Where something
-- does, it refuses and lists those reasons. Op versions that change on the way down are logged
-- (required_spec.lowering's `losses`): their newer features are, by the same analysis, unused.
--   retarget.run(editor, model, "iOS16") -> {changed = n} | nil, reason
local spec = require "mlsh.spec"
local required_spec = require "mlsh.required_spec"

local M = {}

M.TARGETS = { iOS15 = true, iOS16 = true, iOS17 = true, iOS18 = true }

function M.run(e, m, target)
  if not M.TARGETS[target] then
    return nil, string.format("--retarget %s: expected iOS15, iOS16 or iOS17", tostring(target))
  end
  local n = spec.from_target(target)
  if not e:is_program() then return nil, "--retarget: only ML programs are retargeted (this is a " .. tostring(m.model_type) .. ")" end
  local declared = e.spec.specificationVersion
  local opset_name = spec.opset_name(n)
  local higher = {}
  for _, name in ipairs(e:function_names()) do
    local fmsg = e.src.mlProgram:get("functions", name)
    local s = spec.opset_spec(fmsg.opset)
    if s and s > n then higher[#higher + 1] = name end
  end
  if declared <= n and #higher == 0 then return { changed = 0 } end
  local low = required_spec.lowering(m, n)
  if not low.possible then
    local list = {}
    for _, r in ipairs(low.blockers) do
      list[#list + 1] = string.format("%s (needs spec %d%s)", r.what, r.spec, r.op and (", op " .. r.op) or "")
    end
    return nil, string.format("--retarget %s: the model needs spec %d (%s): %s", target, low.required,
      spec.target_name(low.required) or "?", table.concat(list, "; "))
  end
  local changed = 0
  if declared > n then
    e.spec.specificationVersion = n
    e.spec_version = n
    e:log("retarget", nil, { name = "model", type = "spec" }, string.format("specificationVersion %d -> %d (%s)", declared, n, target))
    changed = changed + 1
  end
  for _, name in ipairs(higher) do
    local f = e:func(name)
    local old = f.fn.opset
    f.fn.opset = opset_name
    e:log("retarget", name, { name = name, type = "function" }, string.format("opset %s -> %s", old, opset_name))
    changed = changed + 1
  end
  for _, l in ipairs(low.losses) do
    e:log("retarget", l["function"], { name = l.op, type = l.op }, l.what)
  end
  return { changed = changed }
end

return M
