-- Advisory (playbook 2b): Apple's Neural Engine authoring rules: pooling strides of 2 or 4; other
-- values (3, 5 ...) introduce overhead. Stride 1 (no downsampling) is not reported: the source's
-- "other values" are downsampling strides.
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
local POOLS = { avg_pool = true, max_pool = true, l2_pool = true }

return {
  id = "advisory-pool-stride",
  title = "pooling stride other than 2 or 4",
  categories = { "performance", "ane" },
  severity = "info",
  pattern = "2b",
  evidence = { APPLE .. "neural_engine_rules.md#L227-L239" },
  affected = { chip = "all Neural Engine generations" },
  fix = "use pooling stride 2 or 4 (a different stride changes the model's output size: retrain or fine-tune)",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    for _, op in ipairs(ctx:ops(POOLS)) do
      local s = op:arg("strides")
      for _, x in ipairs(type(s) == "table" and s or { s }) do
        if type(x) == "number" and x > 1 and x ~= 2 and x ~= 4 then
          ctx:report { message = string.format("%s '%s' has strides [%s]", op.type, op.name, table.concat(s, ", ")),
                       location = { ["function"] = op["function"], op = op.name } }
          break
        end
      end
    end
  end,
}
