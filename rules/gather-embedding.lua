-- Playbook 2b: gather / embedding lookups are known problematic on the Neural Engine; Core ML
-- runs them on the CPU, which splits the model into segments (ANE<->CPU hops at every lookup).
local FIXES = require("mlsh.placement.coreml").FIXES -- one wording for the rule and the cut-makers
local MIL = { gather = true, gather_nd = true, gather_along_axis = true }
local NN = { gather = true, gatherND = true, gatherAlongAxis = true, embedding = true, embeddingND = true }

return {
  id = "gather-embedding",
  title = "gather / embedding lookups (not on the Neural Engine)",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  fix = FIXES.gather,
  applies = function(m) return m.program ~= nil or m.neural_network ~= nil end,
  check = function(m, ctx)
    local hits = {}
    for _, op in ipairs(ctx:ops(MIL)) do
      hits[#hits + 1] = { loc = { ["function"] = op["function"], op = op.name }, type = op.type }
    end
    for _, l in ipairs(ctx:layers(NN)) do hits[#hits + 1] = { loc = { layer = l.name }, type = l.type } end
    if #hits == 0 then return end
    local types, seen = {}, {}
    for _, h in ipairs(hits) do
      if not seen[h.type] then seen[h.type] = true; types[#types + 1] = h.type end
    end
    ctx:report {
      message = string.format("%d gather/embedding op(s) (%s): the Neural Engine is unlikely to run them; each "
        .. "one placed between ANE ops costs two device switches", #hits, table.concat(types, ", ")),
      location = hits[1].loc,
      evidence = { count = #hits, types = types },
    }
  end,
}
