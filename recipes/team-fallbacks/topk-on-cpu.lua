-- An example team rules folder (use it with `mlsh check --rules recipes/team-fallbacks MODEL` or
-- MLSH_RULES=recipes/team-fallbacks). A file may return a rule, declare fallback{} entries, or both.
--
-- fallback{} overrides mlsh's op tables in the placement simulator with what a team measured on
-- its devices (MLComputePlan / Xcode performance report): when `op` matches, `os` holds for the
-- deployment target (iOS version; the model's own spec when no --target) and `when(op, ctx)`
-- returns true, the op is placed on `device` with `reason`.
--   op      op or layer type, or a list of them
--   device  "ANE" | "GPU" | "CPU" (the CPU when the compute units exclude it)
--   when    optional function(op, ctx): op is the mlsh Op (or NeuralNetwork layer table); ctx has
--           node (shapes, dtypes), compute_units, target (spec), os (iOS version), function, model
--   os      optional ">=17", "<18", "17"
--   reason  required: shown in the per-op table and the cut-makers
fallback {
  op = "topk",
  device = "CPU",
  os = ">=17",
  when = function(op)
    local ok, k = pcall(op.arg, op, "k")
    return not ok or type(k) ~= "number" or k > 4
  end,
  reason = "measured with MLComputePlan (iOS17, A16): topk with k > 4 runs on the CPU",
}

fallback {
  op = { "argsort", "non_maximum_suppression" },
  device = "CPU",
  reason = "team measurement: sorting and NMS always run on the CPU",
}
