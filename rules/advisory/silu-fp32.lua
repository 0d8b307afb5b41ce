-- Advisory (playbook 2b): Apple's common issues: silu lowered through fp32 casts
-- (cast -> f32, swish in f32, cast -> f16) gives three ops the Neural Engine cannot run. Fires on a
-- silu that computes in fp32 in a program that otherwise computes in fp16, naming the casts around
-- it when they are there.
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
return {
  id = "advisory-silu-fp32",
  title = "silu computed in fp32 between casts in an fp16 program",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  evidence = { APPLE .. "common_issues.md#L49-L52", APPLE .. "neural_engine_rules.md#L121-L134" },
  affected = { chip = "all Neural Engine generations" },
  fix = "compute silu in fp16: x * sigmoid(x) in the source model (Apple's fix), or keep silu out of the fp32 "
    .. "op selection at conversion; on the file: mlsh fix MODEL --fp16 -o OUT",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    for _, fn in ipairs(m:functions()) do
      local producer, has_fp16 = {}, false
      for _, op in ipairs(fn.all_ops) do
        for _, o in ipairs(op.outputs) do producer[o.name] = op end
        local out = op.outputs[1]
        if op.type ~= "const" and op.type ~= "cast" and out and out.dtype == "fp16" then has_fp16 = true end
      end
      for _, op in ipairs(fn.all_ops) do
        local out = op.outputs[1]
        if has_fp16 and op.type == "silu" and out and out.dtype == "fp32" then
          local cast_in
          for _, e in ipairs(op:inputs()) do
            local p = e.name and producer[e.name]
            if p and p.type == "cast" then cast_in = p end
          end
          local cast_out
          for _, c in ipairs(fn.all_ops) do
            if c.type == "cast" and c.outputs[1] and c.outputs[1].dtype == "fp16" then
              for _, e in ipairs(c:inputs()) do if e.name == out.name then cast_out = c end end
            end
          end
          ctx:report { message = string.format("silu '%s' computes in fp32%s%s", op.name,
              cast_in and string.format(" after cast '%s'", cast_in.name) or "",
              cast_out and string.format(" and before cast '%s' back to fp16", cast_out.name) or ""),
            location = { ["function"] = fn.name, op = op.name } }
        end
      end
    end
  end,
}
