-- mlsh.builder.nn — building NeuralNetwork models (.mlmodel), the pre-ML-program format.
--
--   local nn = B.neural_network{precision = "fp32" | "fp16", spec = nil, exact_rank = true, seed = 0}
--   local x = nn:input("image", "fp32", {1, 3, 64, 64})        -- or "image" with {width, height, ...}
--   local y = nn:convolution(x, {out = 16, k = 3, stride = 2, padding = "same", dilation = 1, groups = 1})
--   y = nn:activation(nn:batchnorm(y), "ReLU")
--   nn:output("probs", nn:softmax(nn:inner_product(nn:flatten(nn:pooling(y, {global = true})), {out = 10})))
--   nn:save("x.mlmodel")
--
-- Layers: convolution (dilation, groups), inner_product, batchnorm, activation, pooling, add,
-- multiply, concat, softmax, reshape, flatten, lstm, gru, gather, embedding, custom. Weights are
-- given (an mlsh.Array or a list) or generated (He-normal from a seed derived from the layer name),
-- and stored as floatValue (fp32) or float16Value (fp16). exact_rank = true (default) maps array
-- inputs with their exact rank (spec >= 4, like coremltools converters); false keeps the legacy
-- rank-5 mapping for spec 1..3 models. Fields mlsh's schema subset leaves undeclared (reshape
-- targetShape, pooling padding, add alpha, ...) are written through mlsh.builder.wire.
local core = require "mlsh.core"
local features = require "mlsh.builder.features"
local random = require "mlsh.builder.random"
local wire = require "mlsh.builder.wire"

local P = core.proto
local fail, guard = features.fail, features.guard

local M = {}

local NN = {}
NN.__index = NN
M.NN = NN

local Blob = {}
Blob.__index = Blob
function Blob:__tostring()
  return string.format("blob %s%s", self.name, self.shape and features.shape_str(self.shape) or "[?]")
end
local function is_blob(b) return getmetatable(b) == Blob end

local INPUT_DTYPES = { fp32 = true, fp64 = true, int32 = true, fp16 = true }

function M.new(o)
  o = o or {}
  return guard("neural_network", function()
    local precision = o.precision or "fp32"
    if precision ~= "fp16" and precision ~= "fp32" then fail("precision (of the stored weights) must be \"fp16\" or \"fp32\", got %s", tostring(precision)) end
    return setmetatable({ precision = precision, requested_spec = o.spec, exact_rank = o.exact_rank ~= false,
      seed = o.seed or 0, metadata = o.metadata, inputs = {}, outputs = {}, layers = {}, names = {}, counters = {} }, NN)
  end)
end

-- ---- plumbing --------------------------------------------------------------------------------------------
local function check_name(what, name)
  if type(name) ~= "string" or name == "" then fail("bad %s name '%s'", what, tostring(name)) end
end

function NN:_claim(name, what)
  if self.names[name] then fail("%s name '%s' is already used", what, name) end
  self.names[name] = true
end

function NN:_blob(name, shape)
  self:_claim(name, "blob")
  return setmetatable({ name = name, shape = shape, nn = self }, Blob)
end

function NN:_check_blob(b, what)
  if not is_blob(b) then fail("%s: expected a blob returned by this builder, got %s", what, type(b)) end
  if b.nn ~= self then fail("%s: blob '%s' belongs to another neural network (undefined here)", what, b.name) end
  return b
end

-- Weights: given (Array / list) or generated from a seed derived from the layer name.
function NN:_weights(given, shape, layer, tag, std)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  if given ~= nil then
    local count = type(given) == "userdata" and #given or (type(given) == "table" and #given) or nil
    if count ~= n then fail("%s: %s holds %s values, the layer needs %d", layer, tag, tostring(count), n) end
    return given
  end
  if std == 0 then return random.zeros(shape) end
  return random.normal { seed = random.derive(self.seed, layer .. "." .. tag), shape = shape, std = std }
end

local function set_weights(wp, values, fp16)
  if type(values) ~= "userdata" then values = core.array.new(values) end
  if fp16 then wp.float16Value = values:encode("fp16") else wp.floatValue = values:totable() end
end

-- A layer: {type, name, inputs = {blobs}, outputs = {blobs}, fill = function(layer_msg, fp16), props}
function NN:_layer(kind, o, inputs, out_shapes, fill, props)
  local name = o.name or (kind .. "_" .. self:_next(kind))
  check_name("layer", name)
  local outs = {}
  local n = math.max(#out_shapes, 1) -- {nil}: one output of unknown shape
  for i = 1, n do
    local bname = (o.outputs and o.outputs[i]) or (n == 1 and name or (name .. "_" .. (i - 1)))
    outs[i] = self:_blob(bname, out_shapes[i] or nil)
  end
  self.layers[#self.layers + 1] = { type = kind, name = name, inputs = inputs, outputs = outs, fill = fill, props = props or {} }
  return table.unpack(outs)
end

function NN:_next(kind)
  local n = self.counters[kind] or 0
  self.counters[kind] = n + 1
  return n
end

local function api(fn)
  return function(self, ...) return guard("neural_network", fn, self, ...) end
end

local function copy(t)
  if not t then return nil end
  local o = {}
  for i, v in ipairs(t) do o[i] = v end
  return o
end

local function chw(shape) -- the trailing C, H, W of a blob (nil when unknown)
  if not shape or #shape < 3 then return nil end
  local n = #shape
  return shape[n - 2], shape[n - 1], shape[n]
end

-- ---- inputs and outputs ------------------------------------------------------------------------------
NN.input = api(function(self, name, dtype, decl)
  check_name("input", name)
  if dtype == "image" then
    local o = decl or {}
    local color = o.color or "RGB"
    if not features.COLOR_SPACE[color] or color == "GRAYSCALE_FLOAT16" then fail("input '%s': color must be RGB, BGR or GRAYSCALE", name) end
    if math.type(o.width) ~= "integer" or math.type(o.height) ~= "integer" then fail("input '%s': an image needs integer width and height", name) end
    local c = color == "GRAYSCALE" and 1 or 3
    local b = self:_blob(name, self.exact_rank and { 1, c, o.height, o.width } or { c, o.height, o.width })
    self.inputs[#self.inputs + 1] = { name = name, kind = "image", width = o.width, height = o.height, color = color,
      scale = o.scale, bias = o.bias }
    return b
  end
  if not INPUT_DTYPES[dtype] then fail("input '%s': dtype must be fp32, fp64, int32 or fp16, got %s", name, tostring(dtype)) end
  local s = features.parse_shape(name, decl)
  if not self.exact_rank and #s.shape ~= 1 and #s.shape ~= 3 then
    fail("input '%s': with exact_rank = false (rank-5 mapping) array inputs have rank 1 or 3, got %s", name, features.shape_str(s.shape))
  end
  local b = self:_blob(name, s.dims)
  self.inputs[#self.inputs + 1] = { name = name, kind = "array", dtype = dtype, shape = s.shape, flex = s.flex }
  return b
end)

NN.output = api(function(self, name, b, o)
  o = o or {}
  check_name("output", name)
  self:_check_blob(b, "output '" .. name .. "'")
  for _, out in ipairs(self.outputs) do if out.name == name then fail("output '%s' is declared twice", name) end end
  for _, i in ipairs(self.inputs) do if i.name == b.name then fail("output '%s': an input cannot be an output directly", name) end end
  if b.name ~= name then
    self:_claim(name, "output")
    self.names[b.name] = nil
    b.name = name -- the producing layer writes the output's name
  end
  local dtype = o.dtype or "fp32"
  if not INPUT_DTYPES[dtype] then fail("output '%s': dtype must be fp32, fp64, int32 or fp16", name) end
  self.outputs[#self.outputs + 1] = { name = name, blob = b, dtype = dtype, shape = o.shape or b.shape }
  return b
end)

-- ---- layers ---------------------------------------------------------------------------------------------
local function pair(v, default)
  if v == nil then return { default, default } end
  if type(v) == "number" then return { v, v } end
  return { v[1], v[2] }
end

local function window(len, k, s, d, padding)
  if not len or len < 0 then return -1 end
  if padding == "same" then return (len + s - 1) // s end
  local eff = (k - 1) * d + 1
  if len < eff then fail("kernel %d (dilation %d) does not fit input size %d", k, d, len) end
  return (len - eff) // s + 1
end

-- convolution(x, {out, k | kernel = {kh, kw}, stride, dilation, groups, padding = "valid"|"same",
--                 bias = true, weights = Array, bias_values = Array, in = C_in (when x's shape is unknown)})
NN.convolution = api(function(self, x, o)
  self:_check_blob(x, "convolution")
  o = o or {}
  local c, h, w = chw(x.shape)
  c = o["in"] or c
  if not c or c < 0 then fail("convolution: the input's channel count is unknown; give {in = C}") end
  local k, stride, dil = pair(o.kernel or o.k, 3), pair(o.stride, 1), pair(o.dilation, 1)
  local groups, out = o.groups or 1, o.out
  if math.type(out) ~= "integer" or out < 1 then fail("convolution: give {out = number of output channels}") end
  if c % groups ~= 0 or out % groups ~= 0 then fail("convolution: channels %d -> %d are not divisible by groups %d", c, out, groups) end
  local padding = o.padding or "valid"
  if padding ~= "valid" and padding ~= "same" then fail("convolution: padding must be \"valid\" or \"same\"") end
  local name = o.name or ("conv_" .. self:_next("convolution"))
  local wshape = { out, c // groups, k[1], k[2] }
  local weights = self:_weights(o.weights, wshape, name, "weight", math.sqrt(2 / (c // groups * k[1] * k[2])))
  local has_bias = o.bias ~= false
  local bias = has_bias and self:_weights(o.bias_values, { out }, name, "bias", 0) or nil
  local shape
  if h then
    shape = copy(x.shape)
    shape[#shape - 2] = out
    shape[#shape - 1] = window(h, k[1], stride[1], dil[1], padding)
    shape[#shape] = window(w, k[2], stride[2], dil[2], padding)
  end
  return self:_layer("convolution", { name = name, outputs = o.outputs }, { x }, { shape }, function(l, fp16)
    local cp = l:mutable("convolution")
    cp.outputChannels, cp.kernelChannels, cp.nGroups = out, c // groups, groups
    cp.kernelSize, cp.stride, cp.dilationFactor = k, stride, dil
    if padding == "same" then cp:mutable("same") else cp:mutable("valid"):mutable("paddingAmounts") end
    cp.hasBias = has_bias
    set_weights(cp:mutable("weights"), weights, fp16)
    if bias then set_weights(cp:mutable("bias"), bias, fp16) end
  end, { dilated = dil[1] > 1 or dil[2] > 1, grouped = groups > 1 })
end)

-- inner_product(x, {out, bias = true, weights = Array [out, in], in = C_in})
NN.inner_product = api(function(self, x, o)
  self:_check_blob(x, "inner_product")
  o = o or {}
  local s, cin, shape = x.shape, o["in"], nil
  if s then
    local r = #s
    local function prod(i, j) local n = 1 for a = i, j do if s[a] < 0 then return nil end n = n * s[a] end return n end
    if r == 4 then cin = cin or prod(2, 4); shape = { s[1], o.out, 1, 1 }
    elseif r == 5 then cin = cin or prod(3, 5); shape = { s[1], s[2], o.out, 1, 1 }
    elseif r == 3 and not self.exact_rank then cin = cin or prod(1, 3); shape = { o.out, 1, 1 }
    else cin = cin or s[r]; shape = copy(s); shape[r] = o.out end
  end
  if math.type(o.out) ~= "integer" then fail("inner_product: give {out = number of outputs}") end
  if not cin or cin < 0 then fail("inner_product: the input size is unknown; give {in = C_in}") end
  local name = o.name or ("inner_product_" .. self:_next("innerProduct"))
  local weights = self:_weights(o.weights, { o.out, cin }, name, "weight", math.sqrt(1 / cin))
  local has_bias = o.bias ~= false
  local bias = has_bias and self:_weights(o.bias_values, { o.out }, name, "bias", 0) or nil
  return self:_layer("innerProduct", { name = name, outputs = o.outputs }, { x }, { shape }, function(l, fp16)
    local ip = l:mutable("innerProduct")
    ip.inputChannels, ip.outputChannels, ip.hasBias = cin, o.out, has_bias
    set_weights(ip:mutable("weights"), weights, fp16)
    if bias then set_weights(ip:mutable("bias"), bias, fp16) end
  end)
end)

-- batchnorm(x, {epsilon = 1e-5, gamma, beta, mean, variance})  (defaults: identity statistics)
NN.batchnorm = api(function(self, x, o)
  self:_check_blob(x, "batchnorm")
  o = o or {}
  local c = o.channels or select(1, chw(x.shape))
  if not c or c < 0 then fail("batchnorm: the channel count is unknown; give {channels = C}") end
  local name = o.name or ("batchnorm_" .. self:_next("batchnorm"))
  local gamma = o.gamma and self:_weights(o.gamma, { c }, name, "gamma") or random.ones({ c })
  local beta = self:_weights(o.beta, { c }, name, "beta", 0)
  local mean = self:_weights(o.mean, { c }, name, "mean", 0)
  local var = o.variance and self:_weights(o.variance, { c }, name, "variance") or random.ones({ c })
  return self:_layer("batchnorm", { name = name, outputs = o.outputs }, { x }, { copy(x.shape) }, function(l, fp16)
    local bn = l:mutable("batchnorm")
    bn.channels, bn.epsilon = c, o.epsilon or 1e-5
    set_weights(bn:mutable("gamma"), gamma, fp16)
    set_weights(bn:mutable("beta"), beta, fp16)
    set_weights(bn:mutable("mean"), mean, fp16)
    set_weights(bn:mutable("variance"), var, fp16)
  end)
end)

-- activation(x, "ReLU" | "sigmoid" | "tanh" | "linear" | "softsign" | "softplus" | {leakyReLU = alpha} | {ELU = alpha})
local SIMPLE_ACT = { ReLU = true, sigmoid = true, tanh = true, softsign = true, softplus = true, linear = true }
local ALPHA_ACT = { leakyReLU = true, ELU = true, thresholdedReLU = true }
NN.activation = api(function(self, x, kind, o)
  self:_check_blob(x, "activation")
  o = o or {}
  local which, alpha
  if type(kind) == "string" then which = kind
  elseif type(kind) == "table" then which, alpha = next(kind) end
  if not (SIMPLE_ACT[which] or ALPHA_ACT[which]) then
    fail("activation: unknown nonlinearity '%s' (ReLU, sigmoid, tanh, linear, softsign, softplus, {leakyReLU = a}, {ELU = a}, {thresholdedReLU = a})", tostring(which))
  end
  local name = o.name or ((which:lower()) .. "_" .. self:_next("activation"))
  return self:_layer("activation", { name = name, outputs = o.outputs }, { x }, { copy(x.shape) }, function(l)
    local act = l:mutable("activation")
    if alpha then act[which] = wire.merge("CoreML.Specification.Opaque", nil, wire.float(1, alpha))
    else act:mutable(which) end
  end)
end)

-- pooling(x, {type = "MAX"|"AVERAGE"|"L2", k = 2, stride = 2, padding = "valid"|"same", global = false})
NN.pooling = api(function(self, x, o)
  self:_check_blob(x, "pooling")
  o = o or {}
  local kind = o.type or "MAX"
  if kind ~= "MAX" and kind ~= "AVERAGE" and kind ~= "L2" then fail("pooling: type must be MAX, AVERAGE or L2") end
  local k, stride = pair(o.kernel or o.k, 2), pair(o.stride, o.global and 1 or 2)
  local padding = o.padding or "valid"
  local _, h, w = chw(x.shape)
  local shape
  if h then
    shape = copy(x.shape)
    if o.global then shape[#shape - 1], shape[#shape] = 1, 1
    else
      shape[#shape - 1] = window(h, k[1], stride[1], 1, padding)
      shape[#shape] = window(w, k[2], stride[2], 1, padding)
    end
  end
  local name = o.name or ("pool_" .. self:_next("pooling"))
  return self:_layer("pooling", { name = name, outputs = o.outputs }, { x }, { shape }, function(l)
    local p = P.new("CoreML.Specification.PoolingLayerParams")
    p.type = kind
    p.kernelSize = o.global and { 0, 0 } or k
    p.stride = stride
    p.avgPoolExcludePadding = true
    p.globalPooling = o.global == true
    -- PoolingPaddingType: valid = 30 (ValidPadding), same = 31 (SamePadding)
    local pad = padding == "same" and wire.message(31, "") or wire.message(30, "")
    l.pooling = wire.merge("CoreML.Specification.PoolingLayerParams", p, pad)
  end)
end)

local function elementwise(kind, field)
  return api(function(self, a, b, o)
    local blobs = is_blob(a) and { a, b } or a
    if type(blobs) ~= "table" or #blobs < 1 then fail("%s: give two blobs or a list of blobs", kind) end
    local shape
    for i, x in ipairs(blobs) do
      self:_check_blob(x, kind)
      if i == 1 then shape = copy(x.shape)
      elseif shape and x.shape then
        if #x.shape ~= #shape then shape = #x.shape > #shape and copy(x.shape) or shape end
      end
    end
    o = o or (not is_blob(a) and b) or {}
    local name = o.name or (kind .. "_" .. self:_next(field))
    return self:_layer(field, { name = name, outputs = o.outputs }, blobs, { shape }, function(l)
      l[field] = wire.merge("CoreML.Specification.LayerParams", nil, wire.float(1, o.alpha))
    end)
  end)
end
NN.add = elementwise("add", "add")
NN.multiply = elementwise("multiply", "multiply")

-- concat({a, b, ...}) along the channel axis (-3)
NN.concat = api(function(self, blobs, o)
  o = o or {}
  if type(blobs) ~= "table" or #blobs < 2 then fail("concat: give a list of at least two blobs") end
  local shape
  for i, x in ipairs(blobs) do
    self:_check_blob(x, "concat")
    if i == 1 then shape = copy(x.shape)
    elseif shape and x.shape and #x.shape == #shape and shape[#shape - 2] and shape[#shape - 2] >= 0 then
      local c = x.shape[#x.shape - 2]
      shape[#shape - 2] = c >= 0 and shape[#shape - 2] + c or -1
    else shape = nil end
  end
  local name = o.name or ("concat_" .. self:_next("concat"))
  return self:_layer("concat", { name = name, outputs = o.outputs }, blobs, { shape }, function(l)
    l:mutable("concat")
  end)
end)

NN.softmax = api(function(self, x, o)
  self:_check_blob(x, "softmax")
  o = o or {}
  local name = o.name or ("softmax_" .. self:_next("softmax"))
  return self:_layer("softmax", { name = name, outputs = o.outputs }, { x }, { copy(x.shape) }, function(l) l:mutable("softmax") end)
end)

-- reshape(x, {C, H, W}) (legacy reshape: the target is [C, H, W] or [Seq, C, H, W])
NN.reshape = api(function(self, x, target, o)
  self:_check_blob(x, "reshape")
  o = o or {}
  if type(target) ~= "table" or (#target ~= 3 and #target ~= 4) then fail("reshape: the target shape is {C, H, W} or {Seq, C, H, W}") end
  local shape
  if x.shape then
    shape = {}
    for i = 1, #x.shape - 3 do shape[i] = x.shape[i] end
    for i = #target - 2, #target do shape[#shape + 1] = target[i] end
  end
  local name = o.name or ("reshape_" .. self:_next("reshape"))
  return self:_layer("reshape", { name = name, outputs = o.outputs }, { x }, { shape }, function(l)
    l.reshape = wire.merge("CoreML.Specification.LayerParams", nil, wire.packed_varints(1, target))
  end)
end)

-- flatten(x): [.., C, H, W] -> [.., C*H*W, 1, 1] (channel-first order)
NN.flatten = api(function(self, x, o)
  self:_check_blob(x, "flatten")
  o = o or {}
  local shape
  local c, h, w = chw(x.shape)
  if c and c >= 0 and h >= 0 and w >= 0 then
    shape = copy(x.shape)
    shape[#shape - 2], shape[#shape - 1], shape[#shape] = c * h * w, 1, 1
  end
  local name = o.name or ("flatten_" .. self:_next("flatten"))
  return self:_layer("flatten", { name = name, outputs = o.outputs }, { x }, { shape }, function(l)
    l:mutable("flatten") -- mode CHANNEL_FIRST is the default (0)
  end)
end)

local function act_params(list, names)
  for _, n in ipairs(names) do list:add("activations"):mutable(n) end
end

-- lstm(x, {hidden, sequence_output = false, in = input size}): x is [Seq, Batch, C, 1, 1];
-- returns y, h, c.
NN.lstm = api(function(self, x, o)
  self:_check_blob(x, "lstm")
  o = o or {}
  local hsz = o.hidden
  if math.type(hsz) ~= "integer" then fail("lstm: give {hidden = size}") end
  local cin = o["in"] or (x.shape and select(1, chw(x.shape)))
  if not cin or cin < 0 then fail("lstm: the input size is unknown; give {in = C}") end
  local name = o.name or ("lstm_" .. self:_next("lstm"))
  local std = math.sqrt(1 / hsz)
  local W = {}
  for _, g in ipairs({ "inputGate", "forgetGate", "blockInput", "outputGate" }) do
    W[g .. "WeightMatrix"] = self:_weights(nil, { hsz, cin }, name, g .. "W", std)
    W[g .. "RecursionMatrix"] = self:_weights(nil, { hsz, hsz }, name, g .. "R", std)
    W[g .. "BiasVector"] = self:_weights(nil, { hsz }, name, g .. "b", 0)
  end
  local seq = x.shape and x.shape[1] or -1
  local y = { o.sequence_output and seq or 1, x.shape and x.shape[2] or 1, hsz, 1, 1 }
  local state = { 1, x.shape and x.shape[2] or 1, hsz, 1, 1 }
  return self:_layer("uniDirectionalLSTM", { name = name, outputs = o.outputs }, { x }, { y, state, copy(state) }, function(l, fp16)
    local p = l:mutable("uniDirectionalLSTM")
    p.inputVectorSize, p.outputVectorSize = cin, hsz
    act_params(p, { "sigmoid", "tanh", "tanh" })
    local lp = p:mutable("params")
    lp.sequenceOutput, lp.hasBiasVectors, lp.forgetBias = o.sequence_output == true, true, false
    local wp = p:mutable("weightParams")
    local keys = {}
    for k in pairs(W) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do set_weights(wp:mutable(k), W[k], fp16) end
  end)
end)

-- gru(x, {hidden, sequence_output = false, in}): returns y, h.
NN.gru = api(function(self, x, o)
  self:_check_blob(x, "gru")
  o = o or {}
  local hsz = o.hidden
  if math.type(hsz) ~= "integer" then fail("gru: give {hidden = size}") end
  local cin = o["in"] or (x.shape and select(1, chw(x.shape)))
  if not cin or cin < 0 then fail("gru: the input size is unknown; give {in = C}") end
  local name = o.name or ("gru_" .. self:_next("gru"))
  local std = math.sqrt(1 / hsz)
  local W = {}
  for _, g in ipairs({ "updateGate", "resetGate", "outputGate" }) do
    W[g .. "WeightMatrix"] = self:_weights(nil, { hsz, cin }, name, g .. "W", std)
    W[g .. "RecursionMatrix"] = self:_weights(nil, { hsz, hsz }, name, g .. "R", std)
    W[g .. "BiasVector"] = self:_weights(nil, { hsz }, name, g .. "b", 0)
  end
  local seq = x.shape and x.shape[1] or -1
  local y = { o.sequence_output and seq or 1, x.shape and x.shape[2] or 1, hsz, 1, 1 }
  local state = { 1, x.shape and x.shape[2] or 1, hsz, 1, 1 }
  return self:_layer("gru", { name = name, outputs = o.outputs }, { x }, { y, state }, function(l, fp16)
    local p = l:mutable("gru")
    p.inputVectorSize, p.outputVectorSize = cin, hsz
    act_params(p, { "sigmoid", "tanh" })
    p.sequenceOutput, p.hasBiasVectors = o.sequence_output == true, true
    local keys = {}
    for k in pairs(W) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do set_weights(p:mutable(k), W[k], fp16) end
  end)
end)

-- gather(params, indices, {axis = 0}) (an ND layer: spec 4)
NN.gather = api(function(self, params, indices, o)
  self:_check_blob(params, "gather")
  self:_check_blob(indices, "gather")
  o = o or {}
  local axis = o.axis or 0
  local shape
  if params.shape and indices.shape then
    local a = axis < 0 and axis + #params.shape or axis
    shape = {}
    for i = 1, a do shape[#shape + 1] = params.shape[i] end
    for _, d in ipairs(indices.shape) do shape[#shape + 1] = d end
    for i = a + 2, #params.shape do shape[#shape + 1] = params.shape[i] end
  end
  local name = o.name or ("gather_" .. self:_next("gather"))
  return self:_layer("gather", { name = name, outputs = o.outputs }, { params, indices }, { shape }, function(l)
    l:mutable("gather").axis = axis
  end)
end)

-- embedding(indices, {vocab, dim, bias = false, weights = Array [dim, vocab]}): indices [Seq, 1, 1, 1]
NN.embedding = api(function(self, x, o)
  self:_check_blob(x, "embedding")
  o = o or {}
  if math.type(o.vocab) ~= "integer" or math.type(o.dim) ~= "integer" then fail("embedding: give {vocab = V, dim = D}") end
  local name = o.name or ("embedding_" .. self:_next("embedding"))
  local weights = self:_weights(o.weights, { o.dim, o.vocab }, name, "weight", 1)
  local has_bias = o.bias == true
  local bias = has_bias and self:_weights(nil, { o.dim }, name, "bias", 0) or nil
  local shape
  if x.shape and #x.shape >= 4 then
    shape = copy(x.shape)
    shape[#shape - 2] = o.dim
  end
  return self:_layer("embedding", { name = name, outputs = o.outputs }, { x }, { shape }, function(l, fp16)
    local e = l:mutable("embedding")
    e.inputDim, e.outputChannels, e.hasBias = o.vocab, o.dim, has_bias
    set_weights(e:mutable("weights"), weights, fp16)
    if bias then set_weights(e:mutable("bias"), bias, fp16) end
  end)
end)

-- custom(inputs, {class = "MyLayer", description, params = {k = v}, weights = {Array...}, outputs = n | {names}, shapes})
NN.custom = api(function(self, inputs, o)
  o = o or {}
  if is_blob(inputs) then inputs = { inputs } end
  for _, b in ipairs(inputs) do self:_check_blob(b, "custom") end
  if type(o.class) ~= "string" or o.class == "" then fail("custom: give {class = \"ClassName\"} (the app's implementation)") end
  local n = type(o.outputs) == "table" and #o.outputs or (o.outputs or 1)
  local shapes = {}
  for i = 1, n do shapes[i] = o.shapes and o.shapes[i] or false end
  local name = o.name or ("custom_" .. self:_next("custom"))
  local outs = { self:_layer("custom", { name = name, outputs = type(o.outputs) == "table" and o.outputs or nil }, inputs, shapes, function(l, fp16)
    local c = l:mutable("custom")
    c.className = o.class
    if o.description then c.description = o.description end
    for _, w in ipairs(o.weights or {}) do set_weights(c:add("weights"), w, fp16) end
    local keys = {}
    for k in pairs(o.params or {}) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = o.params[k]
      local e = c:add("parameters")
      e.key = k
      local pv = e:mutable("value")
      if type(v) == "string" then pv.stringValue = v
      elseif type(v) == "boolean" then pv.boolValue = v
      elseif math.type(v) == "integer" then pv.longValue = v
      else pv.doubleValue = v end
    end
  end, { weights = o.weights ~= nil and #o.weights > 0 }) }
  for _, b in ipairs(outs) do if b.shape == false then b.shape = nil end end
  return table.unpack(outs)
end)

-- ---- spec version and serialization: mlsh.builder.nn_write --------------------------------------------
require("mlsh.builder.nn_write").install(NN, api)

return M
