-- Advisory (playbook 2b): Apple's Neural Engine authoring rules: convolution strides (and
-- dilations) whose prime factors are only 2 and 3 (1, 2, 3, 4, 6, 8, 9 ...) map efficiently to the
-- Neural Engine; other values (5, 7 ...) "introduce overhead" (neural_engine_rules.md, Convolution
-- stride optimization; Dilated convolution factorization).
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
local function smooth(n)
  if n < 1 or n ~= math.floor(n) then return false end
  while n % 2 == 0 do n = n // 2 end
  while n % 3 == 0 do n = n // 3 end
  return n == 1
end

return {
  id = "advisory-conv-stride-factors",
  title = "conv stride or dilation with a prime factor other than 2 and 3",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  evidence = { APPLE .. "neural_engine_rules.md#L148-L158", APPLE .. "neural_engine_rules.md#L207-L223" },
  affected = { chip = "all Neural Engine generations" },
  fix = "use strides / dilations of the form 2^a * 3^b (e.g. stride 4 or 6 instead of 5), or a strided slice after "
    .. "a stride-1 conv",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    for _, op in ipairs(ctx:ops({ conv = true, conv_transpose = true, conv_quantized = true })) do
      for _, param in ipairs({ "strides", "dilations" }) do
        local v = op:arg(param)
        for _, x in ipairs(type(v) == "table" and v or { v }) do
          if type(x) == "number" and not smooth(x) then
            ctx:report { message = string.format("%s '%s' has %s [%s]", op.type, op.name, param,
              table.concat(v, ", ")), location = { ["function"] = op["function"], op = op.name } }
            break
          end
        end
      end
    end
  end,
}
