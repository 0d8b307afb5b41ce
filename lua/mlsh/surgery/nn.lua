-- mlsh.surgery.nn — editing NeuralNetwork(-Classifier/-Regressor) layers.
--   local n = editor:nn()                      -- nil, reason for other model types
--   n:layers() -> list of NeuralNetworkLayer messages (edit them in place)
--   n:find(name)  n:index_of(layer)  n:producer(blob)  n:consumers(blob)
--   n:insert(layer [, {before = l | after = l}])         layer: a message or {name, input, output, activation = "ReLU"}
--   n:remove(layer [, {reroute = {blob = other}}])       n:replace(layer, new)    n:rename_blob(old, new)
--   n:fp16_weights() -> number of weight tensors stored as float16Value instead of floatValue
--   n:problems() -> layer inputs no earlier layer or model input provides, model outputs no layer
--   produces, duplicate layer names (those the original already had are not reported)
-- The editor writes the layers back in e:build(); e:validate() includes n:problems().
local core = require "mlsh.core"

local P = core.proto
local M = {}
local N = {}
N.__index = N

local NN_TYPES = { "neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor" }

function M.open(e)
  for _, t in ipairs(NN_TYPES) do
    if e.spec:has(t) then
      local msg = e.spec[t]
      local layers = {}
      -- (a layer's `copy` is a field - the copy layer - so messages are copied through their encoding)
      for i, l in ipairs(msg.layers) do layers[i] = P.decode("CoreML.Specification.NeuralNetworkLayer", l:encode()) end
      return setmetatable({ editor = e, field = t, list = layers }, N)
    end
  end
  return nil, "not a neural network"
end

function N.fail(_, fmt, ...) error("neural network: " .. string.format(fmt, ...), 0) end
function N:layers() return self.list end

function N:find(name)
  for _, l in ipairs(self.list) do if l.name == name then return l end end
  return nil
end

function N:index_of(layer)
  for i, l in ipairs(self.list) do if l == layer or rawequal(l, layer) then return i end end
  return nil
end

function N:producer(blob)
  local found
  for _, l in ipairs(self.list) do
    for _, o in ipairs(l.output) do if o == blob then found = l end end
  end
  return found
end

function N:consumers(blob)
  local out = {}
  for _, l in ipairs(self.list) do
    for _, i in ipairs(l.input) do if i == blob then out[#out + 1] = l break end end
  end
  return out
end

local ACTIVATIONS = { ReLU = true, sigmoid = true, tanh = true, linear = true, softsign = true, softplus = true }

local function layer_of(spec)
  if type(spec) == "userdata" then return P.decode("CoreML.Specification.NeuralNetworkLayer", spec:encode()) end
  local l = P.new("CoreML.Specification.NeuralNetworkLayer")
  l.name = spec.name
  l.input = spec.input
  l.output = spec.output
  if spec.activation then
    if not ACTIVATIONS[spec.activation] then error("insert: activation must be one of ReLU, sigmoid, tanh, linear, softsign, softplus", 0) end
    l:mutable("activation"):mutable(spec.activation)
  end
  return l
end

function N:insert(spec, where)
  where = where or {}
  local l = layer_of(spec)
  if self:find(l.name) then self:fail("insert: a layer named '%s' exists", l.name) end
  local at = #self.list + 1
  if where.before then at = self:index_of(where.before) or self:fail("insert: anchor layer not found") end
  if where.after then at = (self:index_of(where.after) or self:fail("insert: anchor layer not found")) + 1 end
  table.insert(self.list, at, l)
  return l
end

function N:rename_blob(old, new)
  for _, l in ipairs(self.list) do
    local ins, outs = l.input, l.output
    for i, b in ipairs(ins) do if b == old then ins[i] = new end end
    for i, b in ipairs(outs) do if b == old then outs[i] = new end end
    l.input, l.output = ins, outs
  end
  local d = self.editor.spec:mutable("description")
  for _, field in ipairs({ "input", "output" }) do
    for _, fd in ipairs(d[field]) do if fd.name == old then fd.name = new end end
  end
end

function N:remove(layer, o)
  o = o or {}
  local i = self:index_of(layer) or self:fail("remove: layer not found")
  for _, b in ipairs(layer.output) do
    local users = self:consumers(b)
    local outputs = false
    for _, fd in ipairs(self.editor.spec.description.output) do if fd.name == b then outputs = true end end
    if #users > 1 or (#users == 1 and users[1] ~= layer) or outputs then
      local to = o.reroute and o.reroute[b]
      if not to then self:fail("remove: layer '%s' output '%s' is still used", layer.name, b) end
      table.remove(self.list, i)
      if outputs then
        -- the model output keeps its name: the replacement's producer writes it
        local p = self:producer(to)
        if not p then self:fail("remove: '%s' cannot replace model output '%s' (no layer produces it)", to, b) end
        self:rename_blob(to, b)
        return
      end
      for _, u in ipairs(users) do
        local ins = u.input
        for k, x in ipairs(ins) do if x == b then ins[k] = to end end
        u.input = ins
      end
      return
    end
  end
  table.remove(self.list, i)
end

function N:replace(layer, spec)
  local i = self:index_of(layer) or self:fail("replace: layer not found")
  local l = layer_of(spec)
  self.list[i] = l
  return l
end

-- Every WeightParams under msg: fn(wp).
local function each_weight(msg, fn)
  for _, name in ipairs(msg:present()) do
    local v = msg[name]
    if type(v) == "userdata" then
      if v:typename() == "CoreML.Specification.WeightParams" then fn(v) else each_weight(v, fn) end
    elseif type(v) == "table" then
      for _, x in ipairs(v) do
        if type(x) == "userdata" then
          if x:typename() == "CoreML.Specification.WeightParams" then fn(x) else each_weight(x, fn) end
        end
      end
    end
  end
end

-- Refuses (nil, reason) when a finite weight is beyond the fp16 range, as coremltools does.
function N:fp16_weights()
  local bad
  for _, l in ipairs(self.list) do
    each_weight(l, function(wp)
      if wp:count("floatValue") > 0 and not bad then
        local st = wp:array("floatValue"):stats()
        local big = math.max(math.abs(st.min), math.abs(st.max))
        if big > 65504 and big ~= math.huge then bad = string.format("layer '%s' has a weight of magnitude %g, beyond the fp16 range (+-65504)", l.name, big) end
      end
    end)
  end
  if bad then return nil, bad end
  local n = 0
  for _, l in ipairs(self.list) do
    each_weight(l, function(wp)
      local count = wp:count("floatValue")
      if count > 0 then
        local a = wp:array("floatValue")
        wp.float16Value = a:encode("fp16")
        wp:clear("floatValue")
        n = n + 1
        self.editor:log("fp16", nil, { name = l.name, type = "layer" }, string.format("weight fp32 -> fp16 (%d -> %d bytes)", 4 * count, 2 * count))
      end
    end)
  end
  if n > 0 and self.editor.spec.specificationVersion < 2 then
    self.editor.spec.specificationVersion = 2
    self.editor:log("fp16", nil, { name = "model", type = "spec" }, "specificationVersion -> 2 (fp16 weights)")
  end
  return n
end

local function problems_of(list, spec)
  local out, have, names = {}, {}, {}
  for _, fd in ipairs(spec.description.input) do have[fd.name] = true end
  for _, l in ipairs(list) do
    if names[l.name] then out[#out + 1] = string.format("layer name '%s' is used twice", l.name) end
    names[l.name] = true
    for _, b in ipairs(l.input) do
      if not have[b] then out[#out + 1] = string.format("layer '%s' input '%s' is not produced by an earlier layer or a model input", l.name, b) end
    end
    for _, b in ipairs(l.output) do have[b] = true end
  end
  for _, fd in ipairs(spec.description.output) do
    if not have[fd.name] then out[#out + 1] = string.format("model output '%s' is produced by no layer (dangling output)", fd.name) end
  end
  return out
end

function N:problems()
  local base = {}
  local src = self.editor.src[self.field]
  for _, p in ipairs(problems_of(src.layers, self.editor.src)) do base[p] = true end
  local out = {}
  for _, p in ipairs(problems_of(self.list, self.editor.spec)) do
    if not base[p] then out[#out + 1] = "neural network: " .. p end
  end
  return out
end

-- Write the layers into spec (a copy the editor builds).
function N:write(spec)
  spec:mutable(self.field).layers = self.list
end

return M
