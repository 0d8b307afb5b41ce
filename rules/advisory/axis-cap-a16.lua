-- Advisory (playbook 2c, slow on a specific device): a tensor axis over 16384 is beyond the Neural
-- Engine's extent cap up to A15 / M3 (65536 from A16 / M4); on older chips those ops leave the
-- Neural Engine. With --device A16 or newer the rule stays quiet.
local CAP_OLD, CAP_NEW = 16384, 65536

return {
  id = "advisory-axis-cap",
  title = "tensor axis over 16384 (Neural Engine cap before A16)",
  categories = { "performance", "ane" },
  severity = "info",
  pattern = "2c",
  evidence = { "https://github.com/sbryngelson/ANEForge/blob/067717ab376f025cb4965eea9a9f42cc2480a686/docs/capabilities.md",
               "https://github.com/apple/coremltools/issues/1003" },
  affected = { chip = "A13-A15 / M1-M3 (cap 16384); A16+ / M4-M5 cap 65536" },
  fix = "split or reshape so that no axis exceeds 16384 (e.g. chunk the sequence), or require an A16/M4 class device",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local dev = ctx:placement().device
    if dev and (dev.family == "A16" or not dev.ane) then return end
    local count, first, big = 0, nil, 0
    for _, op in ipairs(ctx:ops()) do
      if op.type ~= "const" and not op.type:match("^constexpr_") then
        for _, o in ipairs(op.outputs) do
          for _, d in ipairs(o.shape or {}) do
            if d > CAP_OLD then
              count, first = count + 1, first or op
              if d > big then big = d end
              break
            end
          end
        end
      end
    end
    if first then
      ctx:report { message = string.format("%d op output(s) have an axis over %d (largest %d%s; first %s '%s')", count,
        CAP_OLD, big, big > CAP_NEW and ", over the A16 cap too" or "", first.type, first.name),
        location = { ["function"] = first["function"], op = first.name }, evidence = { largest = big } }
    end
  end,
}
