-- mlsh.builder.layers — one MIL op together with the weights it needs, for ML-program functions.
-- Every function takes the builder function f first and returns the op's output value(s).
--
--   L.linear(f, x, {out = 64, bias = true, name = "fc", seed = 1, weight = Array})
--   L.conv(f, x, {out = 32, k = 3, stride = 1, pad = "same" | "valid" | {t, b, l, r}, dilation = 1, groups = 1, bias = true})
--   L.batch_norm(f, x, {epsilon = 1e-5})          L.layer_norm(f, x, {axes = {-1}, epsilon = 1e-5})
--   L.relu / relu6 / gelu / sigmoid / silu / tanh (f, x)      L.softmax(f, x, axis)
--   L.global_avg_pool(f, x)  (NCHW -> NC)           L.max_pool(f, x, {k = 2, stride = 2})
--   L.embedding(f, ids, {vocab, dim})  (a gather from a [vocab, dim] table)
--   L.one_hot_embedding(f, ids, {vocab, dim})  (one_hot then linear: no dynamic gather)
--   L.lstm(f, x, {hidden, output_sequence = true}) -> output, h, c  (x is [seq, batch, input])
--
-- Weights are named after the layer (`<name>_weight`, `<name>_bias`, stored `_to_fp16` at fp16
-- precision) and drawn from seeds derived from the layer name, so recipes stay reproducible
-- without passing seeds around; `seed = n` picks another stream.
local random = require "mlsh.builder.random"

local L = {}

-- A layer name: given, or `<kind>_<k>` counted per function.
local function layer_name(f, kind, o)
  if o.name then return o.name end
  local key = "layer:" .. kind
  local n = f.counters[key] or 0
  f.counters[key] = n + 1
  return kind .. "_" .. n
end
L.layer_name = layer_name

local function seed_for(f, o, tag)
  local base = o.seed or f.program.seed or 0
  return random.derive(base, tag)
end

-- A generated (or given) weight const.
local function weight(f, o, name, given, shape, std)
  if given ~= nil then return f:const(name, given) end
  if std == 0 then return f:const(name, random.zeros(shape)) end
  if std == "ones" then return f:const(name, random.ones(shape)) end
  return f:const(name, random.normal { seed = seed_for(f, o, name), shape = shape, std = std })
end
L.weight = weight

local function channels(x, what)
  local c = x.shape[#x.shape]
  if not c or c < 0 then error(what .. ": the input's last dimension is unknown", 3) end
  return c
end

function L.linear(f, x, o)
  o = o or {}
  local name = layer_name(f, "linear", o)
  local cin = channels(x, "linear")
  if math.type(o.out) ~= "integer" then error("linear: give {out = number of outputs}", 2) end
  local w = weight(f, o, name .. "_weight", o.weight, { o.out, cin }, math.sqrt(1 / cin))
  local args = { x = x, weight = w }
  if o.bias ~= false then args.bias = weight(f, o, name .. "_bias", o.bias_values, { o.out }, 0) end
  return f:op("linear", args, { name = o.op_name })
end

function L.conv(f, x, o)
  o = o or {}
  local name = layer_name(f, "conv", o)
  local cin = x.shape[2]
  if not cin or cin < 0 then error("conv: the input's channel count is unknown", 2) end
  local groups = o.groups or 1
  local k = o.k or 3
  local kh, kw = type(k) == "table" and k[1] or k, type(k) == "table" and k[2] or k
  local stride, dil = o.stride or 1, o.dilation or 1
  local w = weight(f, o, name .. "_weight", o.weight, { o.out, cin // groups, kh, kw }, math.sqrt(2 / (cin // groups * kh * kw)))
  local args = { x = x, weight = w, strides = { stride, stride }, dilations = { dil, dil }, groups = groups }
  local pad = o.pad or "same"
  if type(pad) == "table" then args.pad_type, args.pad = "custom", pad else args.pad_type = pad end
  if o.bias then args.bias = weight(f, o, name .. "_bias", o.bias_values, { o.out }, 0) end
  return f:op("conv", args, { name = o.op_name })
end

function L.batch_norm(f, x, o)
  o = o or {}
  local name = layer_name(f, "bn", o)
  local c = x.shape[2]
  local gamma = weight(f, o, name .. "_weight", o.gamma, { c }, "ones")
  local beta = weight(f, o, name .. "_bias", o.beta, { c }, 0)
  local mean = weight(f, o, name .. "_running_mean", o.mean, { c }, 0)
  local var = weight(f, o, name .. "_running_var", o.variance, { c }, "ones")
  return f:op("batch_norm", { x = x, mean = mean, variance = var, gamma = gamma, beta = beta, epsilon = o.epsilon or 1e-5 }, { name = o.op_name })
end

function L.layer_norm(f, x, o)
  o = o or {}
  local name = layer_name(f, "ln", o)
  local c = channels(x, "layer_norm")
  local gamma = weight(f, o, name .. "_weight", o.gamma, { c }, "ones")
  local beta = weight(f, o, name .. "_bias", o.beta, { c }, 0)
  return f:op("layer_norm", { x = x, axes = o.axes or { -1 }, gamma = gamma, beta = beta, epsilon = o.epsilon or 1e-5 }, { name = o.op_name })
end

for _, act in ipairs({ "relu", "relu6", "sigmoid", "silu", "tanh" }) do
  L[act] = function(f, x, o) return f:op(act, { x = x }, o) end
end
function L.gelu(f, x, o) return f:op("gelu", { x = x, mode = "EXACT" }, o) end
function L.softmax(f, x, axis, o) return f:op("softmax", { x = x, axis = axis or -1 }, o) end

function L.global_avg_pool(f, x, o)
  return f:op("reduce_mean", { x = x, axes = { -2, -1 }, keep_dims = false }, o)
end

function L.max_pool(f, x, o)
  o = o or {}
  local k, s = o.k or 2, o.stride or 2
  return f:op("max_pool", { x = x, kernel_sizes = { k, k }, strides = { s, s }, pad_type = o.pad or "valid" }, { name = o.op_name })
end

-- The standard embedding: a gather of token rows from a [vocab, dim] table (a dynamic gather).
function L.embedding(f, ids, o)
  o = o or {}
  local name = layer_name(f, "embedding", o)
  local tbl = weight(f, o, name .. "_weight", o.weight, { o.vocab, o.dim }, 1)
  return f:op("gather", { x = tbl, indices = ids, axis = 0 }, { name = o.op_name })
end

-- The same lookup as one_hot + linear: static shapes and a matmul, no gather.
function L.one_hot_embedding(f, ids, o)
  o = o or {}
  local name = layer_name(f, "embedding", o)
  local hot = f:op("one_hot", { indices = ids, one_hot_vector_size = o.vocab, axis = -1, on_value = 1, off_value = 0 })
  local tbl = weight(f, o, name .. "_weight", o.weight, { o.dim, o.vocab }, 1)
  return f:op("linear", { x = hot, weight = tbl }, { name = o.op_name })
end

-- coremltools keeps lstm in fp32 before iOS17 (the iOS15 op has no fp16 variant): at fp16
-- precision and an older opset the layer casts x to fp32, uses fp32 weights and casts back.
function L.lstm(f, x, o)
  o = o or {}
  local name = layer_name(f, "lstm", o)
  local h = o.hidden
  if math.type(h) ~= "integer" then error("lstm: give {hidden = size}", 2) end
  local cin = channels(x, "lstm")
  local batch = x.shape[2]
  local std = math.sqrt(1 / h)
  local fp32_island = f.program.precision == "fp16" and f.program.opset_spec < 8
  local wopts = { seed = o.seed }
  local function w(tag, shape, s)
    local data = s == 0 and random.zeros(shape) or random.normal { seed = seed_for(f, wopts, name .. tag), shape = shape, std = s }
    return f:const(name .. tag, fp32_island and require("mlsh.builder.program").tensor("fp32", data, shape) or data)
  end
  local wih = w("_weight_ih", { 4 * h, cin }, std)
  local whh = w("_weight_hh", { 4 * h, h }, std)
  local b = w("_bias", { 4 * h }, 0)
  local h0 = w("_h0", { batch, h }, 0)
  local c0 = w("_c0", { batch, h }, 0)
  local input = fp32_island and f:op("cast", { x = x, dtype = "fp32" }) or x
  local y, hn, cn = f:op("lstm", { x = input, initial_h = h0, initial_c = c0, weight_ih = wih, weight_hh = whh, bias = b,
    output_sequence = o.output_sequence ~= false }, { name = o.op_name })
  if fp32_island then
    y = f:op("cast", { x = y, dtype = "fp16" })
    hn = f:op("cast", { x = hn, dtype = "fp16" })
    cn = f:op("cast", { x = cn, dtype = "fp16" })
  end
  return y, hn, cn
end

return L
