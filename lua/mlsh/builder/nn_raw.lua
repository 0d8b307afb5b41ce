-- mlsh.builder.nn_raw — any NeuralNetwork layer, its parameters given as a Message or as encoded
-- protobuf bytes (wire.* helpers): for the layer types mlsh.builder.nn has no method for (slice,
-- permute, unary, reduce, padding, upsample, the ND layers, ...). Requiring this module adds
--   nn:raw(kind, inputs, {params = Message | bytes, type = "CoreML.Specification.X" (for bytes;
--          default LayerParams), name, outputs = n | {names}, shapes = {shape...}}) -> blob(s)
-- to the builder's NeuralNetwork objects.
local core = require "mlsh.core"
local nnb = require "mlsh.builder.nn"
local features = require "mlsh.builder.features"

local P = core.proto
local NN = nnb.NN

function NN:raw(kind, inputs, o)
  return features.guard("neural_network", function()
    o = o or {}
    if type(kind) ~= "string" or kind == "" then features.fail("raw: give the layer kind (its oneof field name)") end
    if getmetatable(inputs) ~= nil and inputs.nn then inputs = { inputs } end
    for _, b in ipairs(inputs) do self:_check_blob(b, "raw " .. kind) end
    local n = type(o.outputs) == "table" and #o.outputs or (o.outputs or 1)
    local shapes = {}
    for i = 1, n do shapes[i] = o.shapes and o.shapes[i] or false end
    local name = o.name or (kind .. "_" .. self:_next(kind))
    local params = o.params
    if type(params) == "string" or params == nil then
      local msg, err = P.decode(o.type or "CoreML.Specification.LayerParams", params or "")
      if not msg then features.fail("raw %s: %s", kind, tostring(err)) end
      params = msg
    end
    local outs = { self:_layer(kind, { name = name, outputs = type(o.outputs) == "table" and o.outputs or nil }, inputs, shapes,
      function(l) l[kind] = params end) }
    for _, b in ipairs(outs) do if b.shape == false then b.shape = nil end end
    return table.unpack(outs)
  end)
end

return nnb
