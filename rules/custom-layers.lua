-- Playbook 1c (load errors) and 2b: a NeuralNetwork custom layer needs the app to ship an
-- MLCustomLayer class of that name (else the model fails to load) and never runs on the ANE.
return {
  id = "custom-layers",
  title = "custom layers (app must implement them; CPU/GPU only)",
  categories = { "load", "deploy", "ane" },
  severity = "warning",
  pattern = "1c",
  fix = "ship an MLCustomLayer implementation for each class name in the app, or replace the layer with "
    .. "built-in layers/ops (then it can also run on the Neural Engine)",
  applies = function(m) return m.neural_network ~= nil end,
  check = function(m, ctx)
    for _, l in ipairs(ctx:layers("custom")) do
      local class = l.params and l.params.className or "?"
      ctx:report {
        message = string.format("layer '%s' is a custom layer (class %s): the model loads only if the app "
          .. "provides that class, and it never runs on the Neural Engine", l.name, class),
        location = { layer = l.name, value = class },
        evidence = { class = class, description = l.params and l.params.description or nil },
      }
    end
  end,
}
