-- A MobileNet-like image classifier (224x224 RGB in, 100 class probabilities out) in a "deploys
-- well" build and five "deploys badly" twins that each differ from it in one way.
--
--   mobilenet_like_good.mlpackage      fp16 ML program, opset iOS17, static 1x3x224x224 input
--   mobilenet_like_fp32.mlpackage      fp32 compute precision (cannot run on the Neural Engine)
--   mobilenet_like_dilated.mlpackage   one depthwise conv dilated 2 (dilated convs leave the ANE)
--   mobilenet_like_flexible.mlpackage  input height and width range over 64..512 (range shapes)
--   mobilenet_like_nn.mlmodel          the same network as a NeuralNetwork (the legacy format)
--   mobilenet_like_ios18.mlpackage     a state (iOS18-only, spec 9) in a model for an iOS16 app
--
-- Usage: mlsh examples/mobilenet_like.lua [out_dir]   (make examples writes build/examples)
local B = require "mlsh.builder"
local L, Bk = B.layers, B.blocks

local out = arg and arg[1] or "build/examples"
assert(require("mlsh.core").fs.mkdir_p(out))

local CLASSES = 100
-- depthwise-separable blocks after the stem: {output channels, stride}
local BLOCKS = { { 64, 1 }, { 128, 2 }, { 128, 1 }, { 256, 2 }, { 256, 1 }, { 512, 2 } }
local META = {
  author = "mlsh examples", license = "MIT", version = "1.0",
  short_description = "MobileNet-like classifier built by examples/mobilenet_like.lua",
}

local function meta(variant, extra)
  local m = { author = META.author, license = META.license, version = META.version,
    short_description = META.short_description .. " (" .. variant .. ")", user_defined = { ["mlsh.example.variant"] = variant } }
  for k, v in pairs(extra or {}) do m.user_defined[k] = v end
  return m
end

-- The ML-program variants. v = {name, precision, opset, dilated, flexible, state, app_target}
local function program(v)
  local p = B.program { opset = v.opset or "iOS17", precision = v.precision or "fp16", seed = 7,
    metadata = meta(v.name, v.app_target and { ["mlsh.example.app_target"] = v.app_target }) }
  local f = p:func("main")
  local shape = { 1, 3, 224, 224 }
  if v.flexible then shape = { range = { { 1, 1 }, { 3, 3 }, { 64, 512 }, { 64, 512 } }, default = shape } end
  local x = f:input("image", "fp32", shape)
  local y = Bk.conv_bn_relu(f, x, { name = "stem", out = 32, k = 3, stride = 2 })
  for i, b in ipairs(BLOCKS) do
    local dilation = (v.dilated and i == 3) and 2 or 1
    y = Bk.depthwise_separable(f, y, { name = "block" .. i, out = b[1], stride = b[2], dilation = dilation })
  end
  y = L.global_avg_pool(f, y)
  y = L.linear(f, y, { name = "classifier", out = CLASSES })
  local probs = L.softmax(f, y)
  if v.state then
    -- a running average of the predictions kept in the model (Core ML states: iOS18 and later)
    local avg = f:state("running_probs", "fp16", { 1, CLASSES })
    local old = f:op("read_state", { input = avg })
    local blended = f:op("add", { x = f:op("mul", { x = old, y = 0.9 }), y = f:op("mul", { x = probs, y = 0.1 }) })
    f:output("smoothed_probs", f:update_state(avg, blended))
  end
  f:output("probs", probs)
  return p
end

-- The NeuralNetwork twin: same layers, weights stored fp16.
local function neural_network()
  local nn = B.neural_network { precision = "fp16", seed = 7, metadata = meta("nn") }
  local x = nn:input("image", "fp32", { 1, 3, 224, 224 })
  local function conv_bn_relu(t, o)
    o.padding = "same"
    o.bias = false
    return nn:activation(nn:batchnorm(nn:convolution(t, o)), "ReLU")
  end
  local y = conv_bn_relu(x, { name = "stem_conv", out = 32, k = 3, stride = 2 })
  for i, b in ipairs(BLOCKS) do
    local c = y.shape[2]
    y = conv_bn_relu(y, { name = "block" .. i .. "_dw", out = c, k = 3, stride = b[2], groups = c })
    y = conv_bn_relu(y, { name = "block" .. i .. "_pw", out = b[1], k = 1 })
  end
  y = nn:flatten(nn:pooling(y, { type = "AVERAGE", global = true }))
  y = nn:inner_product(y, { name = "classifier", out = CLASSES })
  nn:output("probs", nn:softmax(y))
  return nn
end

local written = {
  program { name = "good" }:save(out .. "/mobilenet_like_good.mlpackage"),
  program { name = "fp32", precision = "fp32" }:save(out .. "/mobilenet_like_fp32.mlpackage"),
  program { name = "dilated", dilated = true }:save(out .. "/mobilenet_like_dilated.mlpackage"),
  program { name = "flexible", flexible = true }:save(out .. "/mobilenet_like_flexible.mlpackage"),
  neural_network():save(out .. "/mobilenet_like_nn.mlmodel"),
  program { name = "ios18", opset = "iOS18", state = true, app_target = "iOS16" }:save(out .. "/mobilenet_like_ios18.mlpackage"),
}
for _, path in ipairs(written) do print(path) end
