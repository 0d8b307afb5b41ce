-- Advisory (playbook 3b): weight files over about 1 GB are a risk on iOS: the weight file must be
-- mmapped and the Neural Engine plan built within the app's memory; reports show 0.95-1 GB models
-- failing to compile on device (error -14), "Unable to mmap" weight.bin on older iPhones, and wrong
-- results near the iOS18 size limits.
local LIMIT = 1024 * 1024 * 1024

return {
  id = "advisory-package-size-ios",
  title = "weights over 1 GB for an iOS deployment",
  categories = { "memory", "load", "deploy" },
  severity = "warning",
  pattern = "3b",
  scope = "model",
  evidence = { "https://github.com/apple/coremltools/issues/2554", "https://github.com/ggml-org/whisper.cpp/issues/2456",
               "https://github.com/getdictus/dictus-ios/issues/20" },
  affected = { os = "iOS / iPadOS (all versions; macOS has more headroom)" },
  fix = "compress the weights (mlsh compress: palettize or quantize) or split the model into chunks under 1 GB "
    .. "each; test on the smallest-memory device you support",
  check = function(m, ctx)
    if ctx.target_name and not ctx.target_name:match("^iOS") and not ctx.target_name:match("^iPadOS") then return end
    local total = 0
    for _, w in ipairs(m:weights()) do total = total + (w.bytes or 0) end
    if total > LIMIT then
      ctx:report { message = string.format("weights total %.2f GB (> 1 GB)%s", total / 1e9,
        ctx.target_name and (" for target " .. ctx.target_name) or ""), evidence = { bytes = total } }
    end
  end,
}
