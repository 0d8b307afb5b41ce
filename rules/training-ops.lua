-- Playbook 5b (wrong output, eval mode): training-only ops left in the inference graph - dropout
-- and random ops make predictions non-deterministic (the model was exported in train mode).
local MIL_RANDOM = { random_bernoulli = true, random_categorical = true, random_normal = true, random_uniform = true,
                     dropout = true }
local NN_RANDOM = { randomNormalLike = true, randomNormalStatic = true, randomNormalDynamic = true,
                    randomUniformLike = true, randomUniformStatic = true, randomUniformDynamic = true,
                    randomBernoulliLike = true, randomBernoulliStatic = true, randomBernoulliDynamic = true,
                    categoricalDistribution = true }

local function dropout_named(name) return type(name) == "string" and name:lower():find("dropout", 1, true) ~= nil end

return {
  id = "training-ops",
  title = "training-only ops left in (dropout, random ops)",
  categories = { "accuracy", "conversion" },
  severity = "warning",
  pattern = "5b",
  fix = "export in eval mode (model.eval() before torch.jit.trace / torch.export) so dropout and random "
    .. "sampling are removed; keep random ops only if the model is meant to sample",
  applies = function(m) return m.program ~= nil or m.neural_network ~= nil end,
  check = function(m, ctx)
    local hits = {}
    for _, op in ipairs(ctx:ops(function(op) return MIL_RANDOM[op.type] or (dropout_named(op.name) and op.type ~= "const") end)) do
      hits[#hits + 1] = { loc = { ["function"] = op["function"], op = op.name }, what = op.type .. " " .. op.name }
    end
    for _, l in ipairs(ctx:layers(function(l) return NN_RANDOM[l.type] or dropout_named(l.name) end)) do
      hits[#hits + 1] = { loc = { layer = l.name }, what = l.type .. " " .. l.name }
    end
    if #hits == 0 then return end
    local names = {}
    for i, h in ipairs(hits) do
      if i <= 3 then names[#names + 1] = h.what end
    end
    ctx:report {
      message = string.format("%d training-only/random op(s) in the inference graph (%s): outputs change from "
        .. "one prediction to the next", #hits, table.concat(names, ", ")),
      location = hits[1].loc,
      evidence = { count = #hits },
    }
  end,
}
