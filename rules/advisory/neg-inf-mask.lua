-- Advisory (playbook 5b, wrong output): -inf constants (attention masks) are not safe on the Neural
-- Engine, which computes in fp16 and does not propagate inf/NaN the way the CPU does; Apple's
-- authoring rules ask for a large finite negative value instead (-40000 in fp16).
local function has_neg_inf(v)
  if type(v) == "number" then return v == -math.huge end
  if type(v) ~= "table" then return false end
  for _, x in ipairs(v) do if x == -math.huge then return true end end
  return false
end

return {
  id = "advisory-neg-inf-mask",
  title = "-inf constants (masks) in the model",
  categories = { "accuracy", "ane" },
  severity = "warning",
  pattern = "5b",
  evidence = { "https://github.com/apple/coreai-models/blob/main/skills/skills/model-authoring/references/neural_engine_rules.md" },
  affected = { chip = "all Neural Engine generations", compute_units = "CPU_AND_NE, ALL" },
  fix = "on the file: mlsh fix MODEL --mask-fill -1e4 -o OUT; at conversion: use a large finite negative value "
    .. "(-40000 in fp16, well inside its range) instead of -inf in masks",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local seen = {}
    for _, w in ipairs(m:weights()) do
      if (w.dtype == "fp16" or w.dtype == "fp32") and w.op and not seen[w.op] then
        local ok, st = pcall(function() return w:values():stats() end)
        if ok and st and st.min == -math.huge then
          seen[w.op] = true
          ctx:report { message = string.format("constant '%s' holds -inf", w.op), location = { ["function"] = w["function"], op = w.op } }
        end
      end
    end
    for _, op in ipairs(ctx:ops("const")) do
      if not seen[op.name] and has_neg_inf(op:attr("val")) then
        seen[op.name] = true
        ctx:report { message = string.format("constant '%s' holds -inf", op.name),
                     location = { ["function"] = op["function"], op = op.name } }
      end
    end
  end,
}
