-- Advisory (playbook 1c): Apple's Neural Engine authoring rules: rank <= 5. layout-limits checks the
-- model's inputs and outputs; this rule checks every intermediate tensor.
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
return {
  id = "advisory-rank-over-5",
  title = "intermediate tensors of rank > 5",
  categories = { "load", "ane" },
  severity = "warning",
  pattern = "1b",
  evidence = { APPLE .. "neural_engine_rules.md#L7",
               "https://github.com/apple/coremltools/issues/832" },
  affected = { chip = "all", os = "all" },
  fix = "reshape to rank <= 5 (rank 4, (B, C, 1, S), for the Neural Engine); merge leading batch axes",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    for _, op in ipairs(ctx:ops()) do
      if op.type ~= "const" then
        for _, o in ipairs(op.outputs) do
          if o.shape and #o.shape > 5 then
            ctx:report { message = string.format("%s '%s' produces a rank-%d tensor", op.type, op.name, #o.shape),
                         location = { ["function"] = op["function"], op = op.name } }
            break
          end
        end
      end
    end
  end,
}
