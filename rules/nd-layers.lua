-- Playbook 2b: the broadcastable / "ND" NeuralNetwork layers of Core ML 3 (AddBroadcastable,
-- ConcatND, SplitND, LoadConstantND ...) are known problematic on the Neural Engine.
local FIXES = require("mlsh.placement.coreml").FIXES -- one wording for the rule and the cut-makers
local optable = require "mlsh.optable"

return {
  id = "nd-layers",
  title = "broadcastable / ND NeuralNetwork layers (not on the Neural Engine)",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  fix = FIXES.nn_nd,
  applies = function(m) return m.neural_network ~= nil end,
  check = function(m, ctx)
    local hits = ctx:layers(function(l)
      local e = optable.layer(l.type)
      return e ~= nil and e.category == "nn_nd"
    end)
    if #hits == 0 then return end
    local types, seen = {}, {}
    for _, l in ipairs(hits) do
      if not seen[l.type] then seen[l.type] = true; types[#types + 1] = l.type end
    end
    ctx:report {
      message = string.format("%d broadcastable/ND layer(s) (%s): the Neural Engine is unlikely to run them",
        #hits, table.concat(types, ", ")),
      location = { layer = hits[1].name },
      evidence = { count = #hits, types = types },
    }
  end,
}
