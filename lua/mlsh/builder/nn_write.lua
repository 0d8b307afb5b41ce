-- mlsh.builder.nn_write — a NeuralNetwork under construction to a spec: the specification version
-- its layers and I/O need, NN:build() and NN:save(path), installed on mlsh.builder.nn's NN by
-- install(NN, api).
local core = require "mlsh.core"
local spec = require "mlsh.spec"
local features = require "mlsh.builder.features"

local M = {}
local P = core.proto
local fail, guard = features.fail, features.guard

local Methods = {}

-- ---- spec version and serialization ---------------------------------------------------------------------
local WEIGHTED = { convolution = true, innerProduct = true, batchnorm = true, embedding = true,
  uniDirectionalLSTM = true, gru = true }

local function needed_spec(self)
  local led = features.ledger()
  led:add("neural_network", spec.MIN, "NeuralNetwork model")
  if self.exact_rank then led:feature("nd_array", "exact-rank input mapping") end
  if self.precision == "fp16" then
    for _, l in ipairs(self.layers) do
      if WEIGHTED[l.type] or l.props.weights then led:feature("fp16_weights", "weights stored fp16") break end
    end
  end
  for _, i in ipairs(self.inputs) do
    if i.flex then led:feature("flexible_shapes", "input " .. i.name) end
    if i.dtype == "fp16" then led:feature("fp16_multiarray", "input " .. i.name) end
  end
  for _, o in ipairs(self.outputs) do
    if o.dtype == "fp16" then led:feature("fp16_multiarray", "output " .. o.name) end
  end
  for _, l in ipairs(self.layers) do
    local n = spec.nn_layer_min_spec(l.type, { n_inputs = #l.inputs }) or 1
    if l.type == "custom" then led:feature("custom_layer", "layer " .. l.name)
    elseif n > 1 then led:add("layer_" .. l.type, n, "NeuralNetwork layer " .. l.type, "layer " .. l.name) end
    if n >= 4 and not self.exact_rank then
      fail("layer '%s' (%s) is an exact-rank layer (spec %d); it cannot be used with exact_rank = false", l.name, l.type, n)
    end
  end
  return features.choose_spec(self.requested_spec, led)
end
Methods.spec_version_raw = needed_spec

Methods.build = function(self) return guard("", Methods._build, self) end
function Methods._build(self)
  if #self.outputs == 0 then fail("the network has no outputs (declare them with nn:output)") end
  if #self.inputs == 0 then fail("the network has no inputs") end
  local spec_version, reasons = needed_spec(self)
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = spec_version
  local d = m:mutable("description")
  for _, i in ipairs(self.inputs) do features.describe(d, "input", i) end
  for _, o in ipairs(self.outputs) do
    local known = o.shape ~= nil
    for _, x in ipairs(o.shape or {}) do if x < 0 then known = false end end
    features.describe(d, "output", { name = o.name, kind = "array", dtype = o.dtype, shape = known and o.shape or nil })
  end
  features.metadata(d, self.metadata)
  local net = m:mutable("neuralNetwork")
  local fp16 = self.precision == "fp16"
  for _, l in ipairs(self.layers) do
    local msg = net:add("layers")
    msg.name = l.name
    local ins, outs = {}, {}
    for i, b in ipairs(l.inputs) do ins[i] = b.name end
    for i, b in ipairs(l.outputs) do outs[i] = b.name end
    msg.input, msg.output = ins, outs
    l.fill(msg, fp16)
  end
  for _, i in ipairs(self.inputs) do
    if i.kind == "image" and ((i.scale and i.scale ~= 1) or i.bias) then
      local pre = net:add("preprocessing")
      pre.featureName = i.name
      local sc = pre:mutable("scaler")
      sc.channelScale = i.scale or 1
      local b = i.bias or 0
      if type(b) == "number" then b = { b, b, b } end
      if i.color == "GRAYSCALE" then sc.grayBias = b[1]
      elseif i.color == "BGR" then sc.blueBias, sc.greenBias, sc.redBias = b[1], b[2], b[3]
      else sc.redBias, sc.greenBias, sc.blueBias = b[1], b[2], b[3] end
    end
  end
  if self.exact_rank then
    net.arrayInputShapeMapping = "EXACT_ARRAY_MAPPING"
    net.imageInputShapeMapping = "RANK4_IMAGE_MAPPING"
  end
  return m, nil, reasons
end

-- nn:save(path) -> path; errors raise "path: reason".
function Methods:save(path, opts)
  local ok, m = pcall(self.build, self)
  if not ok then error(tostring(path) .. ": " .. tostring(m):gsub("^[^:]+:%d+: ", ""), 0) end
  return features.save(m, nil, path, opts)
end


function M.install(NN, api)
  NN.spec_version = api(Methods.spec_version_raw)
  for k, f in pairs(Methods) do
    if k ~= "spec_version_raw" then NN[k] = f end
  end
end

return M
