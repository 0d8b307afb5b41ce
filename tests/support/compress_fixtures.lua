-- Fixtures for the compression specs, built with mlsh's own builder (nothing outside the repo):
--   CF.base(path, {opset, precision, gather})  a small fp16 ML program whose weights exercise the
--       selection rules: conv1_weight [32,16,3,3] (conv), fc1_weight [96,32], proj [96,40] (matmul
--       y: output axis -1), fc2_weight [100,40] (100 channels: no group of 16 fits), head_weight
--       [10,100] (1000 elements: under the 2048 threshold), rank-1 biases.
--   CF.constexpr_model(path, {opset, weights = {{name, dtype, shape, values}}, replace = fn})
--       one const per weight sent to an output; replace(ctx, emit, w) returns the Operation
--       messages standing in for const w (output named as the const) - hand-made constexpr ops.
local B = require "mlsh.builder"
local writer = require "mlsh.model.writer"
local emit = require "mlsh.compress.emit"
local compress = require "mlsh.compress"
local F = require "fixtures"

local CF = {}
CF.tmpdir = F.tmpdir

function CF.base(path, o)
  o = o or {}
  local L = B.layers
  local p = B.program { opset = o.opset or "iOS16", precision = o.precision or "fp16" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 16, 8, 8 })
  local y = L.conv(f, x, { name = "conv1", out = 32, k = 3, bias = true })
  y = L.relu(f, y)
  y = L.global_avg_pool(f, y)
  y = L.linear(f, y, { name = "fc1", out = 96 })
  y = L.relu(f, y)
  local w = f:const("proj", B.random.normal { seed = 7, shape = { 96, 40 }, std = 0.1 })
  y = f:op("matmul", { x = y, y = w })
  y = L.linear(f, y, { name = "fc2", out = 100 })
  y = L.linear(f, y, { name = "head", out = 10 })
  if o.gather then
    local ids = f:input("ids", "int32", { 1, 4 })
    local e = L.embedding(f, ids, { name = "emb", vocab = 64, dim = 40 })
    f:output("emb_out", e)
  end
  f:output("logits", y)
  p:save(path)
  return path
end

function CF.constexpr_model(path, o)
  local p = B.program { opset = o.opset or "iOS16", precision = "fp32" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 4 })
  f:output("y", B.layers.relu(f, x))
  for _, w in ipairs(o.weights) do
    local c = f:const(w.name, B.tensor(w.dtype or "fp32", w.values or B.zeros(w.shape):totable(), w.shape))
    f:output(w.name .. "_out", c)
  end
  local spec, read_blob = p:build()
  local new_blobs = {}
  local ctx = { spec = spec.specificationVersion, sink = { add = function(dtype, bytes, n)
    new_blobs[#new_blobs + 1] = { dtype = dtype, bytes = bytes, n = n }
    return "@mlsh/compress/new", #new_blobs
  end } }
  local by_name = {}
  for _, w in ipairs(o.weights) do by_name[w.name] = w end
  for _, fe in ipairs(spec.mlProgram.functions) do
    for _, be in ipairs(fe.value.block_specializations) do
      local list = {}
      for _, op in ipairs(be.value.operations) do
        local out = op.outputs[1] and op.outputs[1].name
        local w = op.type == "const" and by_name[out]
        if w then
          for _, nop in ipairs(o.replace(ctx, emit, w)) do list[#list + 1] = nop end
        else
          list[#list + 1] = op
        end
      end
      be.value.operations = list
    end
  end
  writer.save(spec, compress.sequence_blobs(spec, read_blob, new_blobs), path)
  return path
end

return CF
