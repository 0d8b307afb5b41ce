-- Advisory (playbook 2b): Apple's Neural Engine authoring rules: a convolution with palettized
-- (LUT-compressed) weights runs on the Neural Engine only with strides <= 2.
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
return {
  id = "advisory-palettized-conv-stride",
  title = "palettized conv with a stride above 2",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  evidence = { APPLE .. "neural_engine_rules.md#L157" },
  affected = { chip = "all Neural Engine generations", spec = "7+ (constexpr_lut_to_dense)" },
  fix = "keep palettized convs at stride <= 2 (stride-1 conv + downsample), or leave this conv's weights uncompressed",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    for _, fn in ipairs(m:functions()) do
      local lut = {}
      for _, op in ipairs(fn.all_ops) do
        if op.type == "constexpr_lut_to_dense" then
          for _, o in ipairs(op.outputs) do lut[o.name] = true end
        elseif op.type == "conv" or op.type == "conv_transpose" then
          local w
          for _, e in ipairs(op:inputs()) do if e.param == "weight" then w = e.name end end
          local s = op:arg("strides")
          local big = 0
          for _, x in ipairs(type(s) == "table" and s or {}) do if x > big then big = x end end
          if w and lut[w] and big > 2 then
            ctx:report { message = string.format("%s '%s' has palettized weights and stride %d", op.type, op.name, big),
                         location = { ["function"] = fn.name, op = op.name } }
          end
        end
      end
    end
  end,
}
