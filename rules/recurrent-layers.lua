-- Playbook 2b: LSTM / GRU / RNN run on the CPU (sometimes the GPU), not on the Neural Engine.
local FIXES = require("mlsh.placement.coreml").FIXES -- one wording for the rule and the cut-makers
local MIL = { lstm = true, gru = true, rnn = true }
local NN = { uniDirectionalLSTM = true, biDirectionalLSTM = true, gru = true, simpleRecurrent = true }

return {
  id = "recurrent-layers",
  title = "LSTM / GRU / RNN layers (CPU, not the Neural Engine)",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  fix = FIXES.recurrent,
  applies = function(m) return m.program ~= nil or m.neural_network ~= nil end,
  check = function(m, ctx)
    local hits = {}
    for _, op in ipairs(ctx:ops(MIL)) do hits[#hits + 1] = { ["function"] = op["function"], op = op.name, t = op.type } end
    for _, l in ipairs(ctx:layers(NN)) do hits[#hits + 1] = { layer = l.name, t = l.type } end
    if #hits == 0 then return end
    local first = hits[1]
    ctx:report {
      message = string.format("%d recurrent op(s) (first: %s): the Neural Engine does not run LSTM/GRU/RNN, "
        .. "they run on the CPU", #hits, first.t),
      location = { ["function"] = first["function"], op = first.op, layer = first.layer },
      evidence = { count = #hits },
    }
  end,
}
