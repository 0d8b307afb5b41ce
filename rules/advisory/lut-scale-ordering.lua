-- Advisory (playbook 1c): joint palettization with a per-channel scale, written as a
-- constexpr_blockwise_shift_scale applied to the output of constexpr_lut_to_dense (what
-- palettize_weights(enable_per_channel_scale=True) emits), fails MPSGraph verification when loaded
-- for the Neural Engine on macOS 26; CPU and GPU accept it. Folding the scale into the LUT entries
-- (scale the LUT, then look up) is the same values and loads everywhere.
return {
  id = "advisory-lut-scale-ordering",
  title = "per-channel scale applied after a LUT lookup (fails to load on the Neural Engine)",
  categories = { "load", "ane" },
  severity = "warning",
  pattern = "1b",
  evidence = { "https://github.com/apple/coremltools/pull/2688" },
  affected = { os = "macOS 26", spec = "9+ (iOS18 constexpr ops)", coremltools = "8.0b2 .. 9.x",
               compute_units = "CPU_AND_NE, ALL" },
  fix = "fold the per-channel scale into the LUT entries (scale the lookup table, then look up) instead of "
    .. "scaling the dense weight after the lookup",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    for _, fn in ipairs(m:functions()) do
      local lut_out = {}
      for _, op in ipairs(fn.all_ops) do
        if op.type == "constexpr_lut_to_dense" then
          for _, o in ipairs(op.outputs) do lut_out[o.name] = op.name end
        elseif op.type == "constexpr_blockwise_shift_scale" then
          for _, e in ipairs(op:inputs()) do
            if e.param == "data" and e.name and lut_out[e.name] then
              ctx:report { message = string.format("%s '%s' scales the output of constexpr_lut_to_dense '%s'",
                op.type, op.name, lut_out[e.name]), location = { ["function"] = fn.name, op = op.name } }
            end
          end
        end
      end
    end
  end,
}
