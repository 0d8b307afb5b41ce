-- Playbook 1c (load errors) / 5a (unsupported op): an ML program op that does not exist in its
-- function's opset (the file was edited or written by a tool that ignored the target) will not
-- load; an op type mlsh's tables do not know is reported for review.
local optable = require "mlsh.optable"
local spec = require "mlsh.spec"

return {
  id = "op-not-in-opset",
  title = "ops that do not exist in the function's opset",
  categories = { "load", "conversion" },
  severity = "error",
  pattern = "1c",
  fix = "re-convert with a minimum_deployment_target whose opset has the op, or decompose it into older ops",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local unknown, entries = {}, {}
    for _, fn in ipairs(m:functions()) do
      local s = spec.opset_spec(fn.opset or "")
      local reported = {}
      for _, op in ipairs(fn.all_ops) do
        if entries[op.type] == nil then entries[op.type] = optable.get(op.type) or false end
        local e = entries[op.type] or nil
        if not e then
          unknown[op.type] = unknown[op.type] or { ["function"] = fn.name, op = op.name }
        elseif s and e.introduced_spec > s and not reported[op.type] then
          reported[op.type] = true
          ctx:report {
            message = string.format("op %s ('%s') is new in %s but function '%s' uses opset %s (%s)", op.type, op.name,
              e.introduced, fn.name, fn.opset, spec.target_name(s) or "?"),
            location = { ["function"] = fn.name, op = op.name },
            evidence = { op = op.type, introduced = e.introduced, opset = fn.opset },
          }
        end
      end
      if not s and fn.opset and fn.opset ~= "" then
        ctx:report { severity = "warning", message = string.format("function '%s' has an unknown opset '%s'", fn.name,
          fn.opset), location = { ["function"] = fn.name } }
      end
    end
    local types = {}
    for t in pairs(unknown) do types[#types + 1] = t end
    table.sort(types)
    for _, t in ipairs(types) do
      ctx:report {
        severity = "info", pattern = "5a",
        message = string.format("op type '%s' is not in mlsh's tables (a newer or custom op): its availability and "
          .. "placement are unknown", t),
        fix = "check the op against the coremltools version that wrote the model",
        location = unknown[t],
      }
    end
  end,
}
