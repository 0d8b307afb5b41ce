-- Advisory (playbook 2b): the Neural Engine reads the last axis in 64-byte aligned chunks. A large
-- fp16 tensor whose last axis is short and not 64-byte aligned is padded: a singleton last axis costs
-- 32x memory, a last axis of 7 about 4.6x. Reported when padding at least doubles the tensor
-- (last-axis-one already covers the singleton case on model I/O).
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
local MIN_ELEMENTS = 4096
local BYTES = { fp16 = 2, fp32 = 4, int8 = 1, uint8 = 1, int16 = 2, int32 = 4 }

local function elements(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do
    if d < 0 then return 0 end
    n = n * d
  end
  return n
end

return {
  id = "advisory-last-axis-unaligned",
  title = "large tensors with a short, unaligned last axis (Neural Engine padding >= 2x)",
  categories = { "performance", "memory", "ane" },
  severity = "info",
  pattern = "2b",
  evidence = { APPLE .. "neural_engine_rules.md#L21-L31",
               "https://machinelearning.apple.com/research/neural-engine-transformers" },
  affected = { chip = "all Neural Engine generations" },
  fix = "put the long axis last (ANE layout (B, C, 1, S)) or pad the last axis to a multiple of 64 bytes",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local count, first, worst = 0, nil, 0
    for _, op in ipairs(ctx:ops()) do
      if op.type ~= "const" and not op.type:match("^constexpr_") then
        local o = op.outputs[1]
        local b = o and BYTES[o.dtype or ""]
        if b and o.shape and #o.shape >= 2 and elements(o.shape) >= MIN_ELEMENTS then
          local last = o.shape[#o.shape] * b
          local padded = math.ceil(last / 64) * 64
          if last > 0 and padded >= 2 * last then
            count, first = count + 1, first or op
            if padded / last > worst then worst = padded / last end
          end
        end
      end
    end
    if first then
      ctx:report { message = string.format("%d op output(s) have a short unaligned last axis (up to %.1fx padding; "
        .. "first %s '%s' [%s])", count, worst, first.type, first.name, table.concat(first.outputs[1].shape, ", ")),
        location = { ["function"] = first["function"], op = first.name }, evidence = { count = count } }
    end
  end,
}
