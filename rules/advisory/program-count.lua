-- Advisory (playbook 3a/1b): a process can keep only about 128 Neural Engine programs loaded; a model
-- with more functions (or an app loading more models / functions than that) has programs evicted,
-- reloaded or sent off the Neural Engine.
local LIMIT = 128

return {
  id = "advisory-program-count",
  title = "more than ~128 functions (Neural Engine programs) in one model",
  categories = { "load", "performance", "ane" },
  severity = "warning",
  pattern = "1b",
  scope = "model",
  evidence = { "https://arxiv.org/abs/2606.22283" },
  affected = { chip = "all Neural Engine generations", spec = "9+ (multifunction)" },
  fix = "keep the number of functions (and models loaded at once) well under 128: merge shapes with enumerated "
    .. "shapes, or split the work over separate processes",
  check = function(m, ctx)
    local n = 0
    for _, entry in ipairs(require("mlsh.rules").each_model(m)) do
      local fns = entry.model.program and entry.model:functions() or {}
      n = n + math.max(#fns, entry.model.program and 1 or 0)
    end
    if n > LIMIT then
      ctx:report { message = string.format("%d functions/programs in one model (> ~%d per process)", n, LIMIT),
                   evidence = { programs = n } }
    end
  end,
}
