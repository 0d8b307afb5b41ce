-- Advisory (playbook 5b, wrong output): -inf constants (attention masks) are not safe on the Neural
-- Engine, which computes in fp16 and does not propagate inf/NaN the way the CPU does; Apple's
-- authoring rules ask for a large finite negative value instead (-40000 in fp16).
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
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
  evidence = { APPLE .. "neural_engine_rules.md#L357-L370", APPLE .. "common_issues.md#L102-L105" },
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
