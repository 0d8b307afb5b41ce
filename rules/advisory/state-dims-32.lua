-- Advisory (playbook 1b, compute plan failure): a stateful model whose state's last dimension is
-- not a multiple of 32 fails on the Neural Engine (CPU and GPU run it): width 270 fails, 256 works.
return {
  id = "advisory-state-dims-32",
  title = "model state whose last dimension is not a multiple of 32 (fails on the Neural Engine)",
  categories = { "load", "ane" },
  severity = "warning",
  pattern = "1b",
  evidence = { "https://github.com/apple/coremltools/issues/2631" },
  affected = { os = "macOS 15.2 (Xcode 16.3)", spec = "9+ (states)", coremltools = "9.0", chip = "M4" },
  fix = "pad the state's last dimension to a multiple of 32 (e.g. 270 -> 288) and slice inside the model",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local seen = {}
    local fns = m:functions()
    for _, fn in ipairs(#fns > 0 and fns or { {} }) do
      for _, s in ipairs(m:states(fn.name)) do
        local shape = s.shape or {}
        local last = shape[#shape]
        if last and last > 0 and last % 32 ~= 0 and not seen[s.name] then
          seen[s.name] = true
          ctx:report { message = string.format("state '%s' has shape [%s]: last dimension %d is not a multiple of 32",
            s.name, table.concat(shape, ", "), last), location = { value = s.name }, evidence = { shape = shape } }
        end
      end
    end
  end,
}
