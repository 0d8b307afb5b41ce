-- mlsh.builder — build Core ML models from Lua: ML programs and neural networks, deterministically.
--
--   local B = require "mlsh.builder"
--   local p = B.program{opset = "iOS17", precision = "fp16"}      -- ML program (docs/builder.md)
--   local f = p:func("main")
--   local x = f:input("x", "fp32", {1, 3, 224, 224})
--   local y = B.blocks.conv_bn_relu(f, x, {out = 32, k = 3, stride = 2, seed = 1})
--   f:output("y", B.layers.global_avg_pool(f, y))
--   p:save("build/x.mlpackage")
--
--   local nn = B.neural_network{precision = "fp32"}                -- NeuralNetwork (.mlmodel)
--
-- Pieces: B.program / B.neural_network (model builders), B.random (seeded generators; also
-- B.zeros, B.ones, B.full, B.array), B.tensor(dtype, values, shape) (a typed literal),
-- B.layers (single MIL ops with their weights), B.blocks (conv-bn-relu, depthwise-separable,
-- attention, transformer encoder layer).
local program = require "mlsh.builder.program"
local random = require "mlsh.builder.random"

local B = {}

B.program = program.new
B.neural_network = require("mlsh.builder.nn").new
B.tensor = program.tensor
B.is_value = program.is_value
B.random = random
B.zeros, B.ones, B.full, B.array = random.zeros, random.ones, random.full, random.array
B.layers = require "mlsh.builder.layers"
B.blocks = require "mlsh.builder.blocks"

return B
