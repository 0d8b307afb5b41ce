-- Benchmark: `mlsh ep` and `mlsh info --json` on a BERT-base-sized ONNX file (~440 MB: 12 layers,
-- hidden 768, FFN 3072, vocabulary 30522, dynamic batch and sequence), laid out as a PyTorch
-- export lays it out: Constant nodes, Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains,
-- LayerNorm and exact GELU decomposed. The file is built once with the test builder
-- (tests/support/onnx_builder.lua) under build/bench/. Initializers are never read by either
-- command, so time and peak RSS must not depend on the weights.
-- Run: ./mlsh bench/onnx_bench.lua [runs]   (make bench runs it too)
local core = require "mlsh.core"
local home = require "mlsh.home"
package.path = home .. "/tests/support/?.lua;" .. package.path
local B = require "onnx_builder"

local RUNS = tonumber(arg and arg[1]) or 5
local dir = home .. "/build/bench"
assert(core.fs.mkdir_p(dir))
local path = dir .. "/bert_base_like.onnx"

local H, FF, VOCAB, LAYERS, HEADS = 768, 3072, 30522, 12, 12

-- A payload of n fp32 values without building a Lua table of them.
local function weights(n)
  local pair = string.pack("<ff", 0.01, -0.02)
  return { raw = string.rep(pair, n // 2) .. (n % 2 == 1 and string.pack("<f", 0.01) or "") }
end

local function build()
  local b = B.model { opset = 14, producer = "pytorch", producer_version = "2.1" }
  b:input("input_ids", "INT64", { "batch", "sequence" })
  b:input("attention_mask", "INT64", { "batch", "sequence" })
  local k = 0
  local function name(base) k = k + 1 return string.format("/%s_%d", base, k) end
  local function const(dtype, dims, values)
    local n = name("Constant")
    b:const(n, dtype, dims, values)
    return n
  end
  local function node(op, inputs, attrs)
    local out = name(op)
    b:node(op, inputs, { out }, attrs)
    return out
  end
  local function layer_norm(x, w, bias)
    local mean = node("ReduceMean", { x }, { axes = { -1 } })
    local d = node("Sub", { x, mean })
    local sq = node("Pow", { d, const("FLOAT", {}, { 2 }) })
    local var = node("ReduceMean", { sq }, { axes = { -1 } })
    local std = node("Sqrt", { node("Add", { var, const("FLOAT", {}, { 1e-12 }) }) })
    return node("Add", { node("Mul", { node("Div", { d, std }), w }), bias })
  end
  local function heads(x, perm)
    local shp = node("Shape", { x })
    local b0 = node("Gather", { shp, const("INT64", {}, { 0 }) }, { axis = 0 })
    local b1 = node("Gather", { shp, const("INT64", {}, { 1 }) }, { axis = 0 })
    local u0 = node("Unsqueeze", { b0, const("INT64", { 1 }, { 0 }) })
    local u1 = node("Unsqueeze", { b1, const("INT64", { 1 }, { 0 }) })
    local target = node("Concat", { u0, u1, const("INT64", { 1 }, { HEADS }), const("INT64", { 1 }, { H // HEADS }) }, { axis = 0 })
    return node("Transpose", { node("Reshape", { x, target }) }, { perm = perm })
  end
  local function init(n, dims)
    local count = 1
    for _, d in ipairs(dims) do count = count * d end
    b:init(n, "FLOAT", dims, weights(count))
    return n
  end
  -- embeddings and the attention mask
  local word = node("Gather", { init("emb.word.weight", { VOCAB, H }), "input_ids" }, { axis = 0 })
  local pos_ids = const("INT64", { 1, 512 }, (function() local t = {} for i = 1, 512 do t[i] = i - 1 end return t end)())
  local seq_len = node("Gather", { node("Shape", { "input_ids" }), const("INT64", {}, { 1 }) }, { axis = 0 })
  local pos = node("Slice", { pos_ids, const("INT64", { 1 }, { 0 }), node("Unsqueeze", { seq_len, const("INT64", { 1 }, { 0 }) }),
    const("INT64", { 1 }, { 1 }) })
  local emb = node("Add", { word, node("Gather", { init("emb.pos.weight", { 512, H }), pos }, { axis = 0 }) })
  local h = layer_norm(emb, init("emb.norm.weight", { H }), init("emb.norm.bias", { H }))
  local m1 = node("Unsqueeze", { "attention_mask", const("INT64", { 1 }, { 1 }) })
  local m2 = node("Cast", { node("Unsqueeze", { m1, const("INT64", { 1 }, { 2 }) }) }, { to = 1 })
  local mask = node("Mul", { node("Sub", { const("FLOAT", {}, { 1 }), m2 }), const("FLOAT", {}, { -10000 }) })
  for l = 0, LAYERS - 1 do
    local p = "layers." .. l .. "."
    local function linear(x, n, i, o)
      return node("Add", { init(p .. n .. ".bias", { o }), node("MatMul", { x, init(p .. n .. ".weight", { i, o }) }) })
    end
    local q = heads(linear(h, "q", H, H), { 0, 2, 1, 3 })
    local kk = heads(linear(h, "k", H, H), { 0, 2, 3, 1 })
    local v = heads(linear(h, "v", H, H), { 0, 2, 1, 3 })
    local scores = node("Add", { node("Div", { node("MatMul", { q, kk }), const("FLOAT", {}, { 8 }) }), mask })
    local ctx = node("Transpose", { node("MatMul", { node("Softmax", { scores }, { axis = -1 }), v }) }, { perm = { 0, 2, 1, 3 } })
    local shp = node("Shape", { ctx })
    local t0 = node("Unsqueeze", { node("Gather", { shp, const("INT64", {}, { 0 }) }, { axis = 0 }), const("INT64", { 1 }, { 0 }) })
    local t1 = node("Unsqueeze", { node("Gather", { shp, const("INT64", {}, { 1 }) }, { axis = 0 }), const("INT64", { 1 }, { 0 }) })
    local merged = node("Reshape", { ctx, node("Concat", { t0, t1, const("INT64", { 1 }, { H }) }, { axis = 0 }) })
    local att = node("Add", { linear(merged, "o", H, H), h })
    h = layer_norm(att, init(p .. "att.norm.weight", { H }), init(p .. "att.norm.bias", { H }))
    local inter = linear(h, "i", H, FF)
    local erf = node("Erf", { node("Div", { inter, const("FLOAT", {}, { math.sqrt(2) }) }) })
    local gelu = node("Mul", { node("Mul", { inter, node("Add", { erf, const("FLOAT", {}, { 1 }) }) }), const("FLOAT", {}, { 0.5 }) })
    local out = node("Add", { linear(gelu, "o2", FF, H), h })
    h = layer_norm(out, init(p .. "ffn.norm.weight", { H }), init(p .. "ffn.norm.bias", { H }))
  end
  b:node("Identity", { h }, { "last_hidden_state" })
  b:output("last_hidden_state", "FLOAT", { "batch", "sequence", H })
  b:save(path)
end

local f = io.open(path, "rb")
if f then f:close() else
  io.write("building ", path, " … ")
  io.flush()
  build()
  print("done")
end
local size = core.fs.size(path)

local function measure(args)
  local times, rss = {}, 0
  for i = 1, RUNS do
    local cmd = string.format("a=$(date +%%s%%N); /usr/bin/time -f '%%M' %s/mlsh %s %s 2>&1 >/dev/null; b=$(date +%%s%%N); "
      .. "echo $(( (b - a) / 1000 ))", home, args, path)
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    local kb, us = out:match("(%d+)%s+(%d+)%s*$")
    times[i] = tonumber(us) / 1000
    rss = math.max(rss, tonumber(kb) or 0)
  end
  table.sort(times)
  return times[1], times[(#times + 1) // 2], rss / 1024
end

print(string.format("%s: %.1f MB", path, size / 1e6))
print(string.format("%-34s %9s %9s %12s", "command", "best ms", "median ms", "peak RSS MB"))
local worst = 0
for _, c in ipairs({ "ep", "ep --json --model-format mlprogram", "ep --table-only", "info --json" }) do
  local best, median, rss = measure(c)
  worst = math.max(worst, median)
  print(string.format("%-34s %9.1f %9.1f %12.1f", "mlsh " .. c, best, median, rss))
end
print(string.format("targets: end to end < 200 ms, peak RSS < 64 MB (worst median %.1f ms)", worst))
