-- Advisory (playbook 2b): Apple's Neural Engine authoring rules list fp16, int8 and int16 as the
-- Neural Engine's data types ("fp32 falls back to GPU/CPU"). This rule reports compute ops whose
-- result is another type (int32, uint8, fp64 ...); fp32 compute is the fp32-compute rule's, and
-- bool results of comparisons and the int32 indices of argmax/argsort/shape/non_zero (int32 by the
-- op's definition) are not counted.
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
local ALLOWED = { fp16 = true, int8 = true, int16 = true, fp32 = true, bool = true, string = true }
local INDEX_OPS = { reduce_argmax = true, reduce_argmin = true, argsort = true, shape = true, non_zero = true,
                    topk = true }

return {
  id = "advisory-compute-dtype",
  title = "ops computing in a type other than fp16 / int8 / int16 (not on the Neural Engine)",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  evidence = { APPLE .. "neural_engine_rules.md#L5-L9" },
  affected = { chip = "all Neural Engine generations" },
  fix = "compute in fp16 (or int8/int16): cast integer index arithmetic to fp16 where exact (|x| <= 2048), move "
    .. "shape/index computation out of the model, or fold it into constants at conversion",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local count, first, types = 0, nil, {}
    for _, op in ipairs(ctx:ops(function(o) return o.type ~= "const" and not o.type:match("^constexpr_") end)) do
      local out = op.outputs[1]
      local dt = out and out.dtype
      if dt and not ALLOWED[dt] and not INDEX_OPS[op.type] then
        count, first = count + 1, first or op
        types[dt] = (types[dt] or 0) + 1
      end
    end
    if count == 0 then return end
    local list = {}
    for dt, n in pairs(types) do list[#list + 1] = dt end
    table.sort(list)
    if #list > 1 then
      for i, dt in ipairs(list) do list[i] = string.format("%s (%d)", dt, types[dt]) end
    end
    ctx:report {
      message = string.format("%d op%s in %s (first: %s '%s'): the Neural Engine runs fp16, int8 and int16 "
        .. "only", count, count == 1 and " computes" or "s compute", table.concat(list, ", "), first.type, first.name),
      location = { ["function"] = first["function"], op = first.name },
      evidence = { ops = count, first = first.type },
    }
  end,
}
