-- Small models that show each container and model kind mlsh reads (make demo runs mlsh info on them):
--
--   cnn.mlmodel              NeuralNetwork: conv -> relu -> flatten -> innerProduct (legacy rank-5 mapping)
--   cnn_flex.mlmodel         the same with a range-flexible input (spec 3)
--   prog.mlpackage           ML program (iOS16, fp16 I/O): linear -> relu
--   prog.mlpackage.zip       the same package zipped
--   multi.mlpackage          two functions in one ML program (iOS18)
--   pipeline.mlmodel         a pipeline of two NeuralNetworks
--   stateful.mlpackage       an accumulator kept in a Core ML state (iOS18)
--   image_classifier.mlpackage  an RGB image input with scale and bias preprocessing (iOS15)
--
-- Usage: mlsh examples/small_models.lua [out_dir]   (make examples writes build/examples)
local B = require "mlsh.builder"
local L = B.layers
local P = require("mlsh.core").proto

local out = arg and arg[1] or "build/examples"
assert(require("mlsh.core").fs.mkdir_p(out))
local written = {}
local function save(model, name) written[#written + 1] = model:save(out .. "/" .. name) end

local META = { author = "mlsh examples", license = "MIT", version = "1.0" }

-- A NeuralNetwork in the legacy rank-5 layout: [3, 8, 8] in, 4 scores out.
local function cnn(o)
  o = o or {}
  local nn = B.neural_network { exact_rank = false, precision = o.precision, seed = o.seed or 1, metadata = META }
  local x = nn:input(o.input or "data", "fp32", o.flex or { 3, 8, 8 })
  local y = nn:convolution(x, { name = "conv1", out = 2, k = 3, padding = "same" })
  y = nn:activation(y, "ReLU", { name = "relu1" })
  y = nn:flatten(y, { name = "flatten" })
  y = nn:inner_product(y, { name = "fc", out = 4, ["in"] = 128 })
  nn:output(o.output or "out", y)
  return nn
end
save(cnn(), "cnn.mlmodel")
save(cnn { flex = { range = { { 3, 3 }, { 8, 64 }, { 8, -1 } }, default = { 3, 8, 8 } } }, "cnn_flex.mlmodel")

-- An ML program: x [1, 16] fp16 -> linear(8) -> relu -> y [1, 8] fp16.
local function linear_program(p, name, seed)
  local f = p:func(name)
  local x = f:input("x", "fp16", { 1, 16 })
  local y = L.relu(f, L.linear(f, x, { name = "fc", out = 8, seed = seed }))
  f:output("y", y, { dtype = "fp16" })
  return f
end

local prog = B.program { opset = "iOS16", precision = "fp16", metadata = META }
linear_program(prog, "main", 1)
save(prog, "prog.mlpackage")
save(prog, "prog.mlpackage.zip")

local multi = B.program { opset = "iOS18", precision = "fp16", metadata = META, default = "main_b" }
linear_program(multi, "main_a", 1)
linear_program(multi, "main_b", 2)
save(multi, "multi.mlpackage")

-- A pipeline: a feature extractor then a scorer, each a NeuralNetwork.
do
  local first = cnn { output = "features", seed = 1 }:build()
  local second_nn = B.neural_network { exact_rank = false, precision = "fp16", seed = 2 }
  local fx = second_nn:input("features", "fp32", { 4 })
  second_nn:output("out", second_nn:activation(fx, "sigmoid", { name = "squash" }))
  local second = second_nn:build()
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = math.max(first.specificationVersion, second.specificationVersion)
  local d = m:mutable("description")
  d:add("input", first.description.input[1])
  d:add("output", second.description.output[1])
  local md = d:mutable("metadata")
  md.author, md.license, md.versionString = META.author, META.license, META.version
  local pipe = m:mutable("pipeline")
  pipe:add("models", first)
  pipe:add("models", second)
  pipe.names = { "extractor", "scorer" }
  written[#written + 1] = require("mlsh.builder.features").save(m, nil, out .. "/pipeline.mlmodel")
end

-- A stateful accumulator: acc += linear(x); returns 2 * acc (like coremltools' stateful example).
do
  local p = B.program { opset = "iOS18", precision = "fp16", metadata = META }
  local f = p:func("main")
  local x = f:input("x", "fp16", { 1, 16 })
  local acc = f:state("acc", "fp16", { 1, 16 })
  local sum = f:op("add", { x = f:op("read_state", { input = acc }), y = L.linear(f, x, { name = "lin", out = 16 }) })
  local now = f:update_state(acc, sum)
  f:output("y", f:op("mul", { x = now, y = 2 }), { dtype = "fp16" })
  save(p, "stateful.mlpackage")
end

-- An image classifier with the preprocessing Core ML applies to pixel buffers.
do
  local p = B.program { opset = "iOS15", precision = "fp16", metadata = META }
  local f = p:func("main")
  local img = f:input("image", "image", { width = 64, height = 64, color = "RGB", scale = 1 / 255, bias = { -0.485, -0.456, -0.406 } })
  local y = B.blocks.conv_bn_relu(f, img, { name = "c1", out = 16, k = 3, stride = 2 })
  y = B.blocks.conv_bn_relu(f, y, { name = "c2", out = 32, k = 3, stride = 2 })
  y = L.linear(f, L.global_avg_pool(f, y), { name = "fc", out = 10 })
  f:output("probs", L.softmax(f, y))
  save(p, "image_classifier.mlpackage")
end

for _, path in ipairs(written) do print(path) end
