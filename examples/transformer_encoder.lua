-- A small transformer encoder (BERT-like: 512-token vocabulary, 2 layers, 4 heads, width 64, a
-- 2-class head over the mean token) in a "deploys well" build and five "deploys badly" twins.
--
--   transformer_encoder_good.mlpackage        fp16, opset iOS17, static sequence of 128 tokens;
--                                             tokens embedded by one_hot + linear (no dynamic gather)
--   transformer_encoder_gather.mlpackage      the usual gather embedding (a dynamic gather)
--   transformer_encoder_lstm.mlpackage        the second encoder layer replaced by an LSTM
--   transformer_encoder_enumerated.mlpackage  sequence length one of 64, 128, 256 (enumerated shapes)
--   transformer_encoder_range.mlpackage       sequence length anywhere in 1..256 (range shapes)
--   transformer_encoder_fp32.mlpackage        fp32 compute precision
--
-- Usage: mlsh examples/transformer_encoder.lua [out_dir]   (make examples writes build/examples)
local B = require "mlsh.builder"
local L, Bk = B.layers, B.blocks

local out = arg and arg[1] or "build/examples"
assert(require("mlsh.core").fs.mkdir_p(out))

local VOCAB, DIM, HEADS, FFN, LAYERS, SEQ, MAX_SEQ, CLASSES = 512, 64, 4, 256, 2, 128, 256, 2

local function meta(variant)
  return { author = "mlsh examples", license = "MIT", version = "1.0",
    short_description = "Small transformer encoder built by examples/transformer_encoder.lua (" .. variant .. ")",
    user_defined = { ["mlsh.example.variant"] = variant } }
end

-- v = {name, precision, gather, lstm, shapes = "enumerated" | "range"}
local function program(v)
  local p = B.program { opset = "iOS17", precision = v.precision or "fp16", seed = 11, metadata = meta(v.name) }
  local f = p:func("main")
  local decl = { 1, SEQ }
  if v.shapes == "enumerated" then decl = { shapes = { { 1, 64 }, { 1, 128 }, { 1, 256 } }, default = { 1, SEQ } }
  elseif v.shapes == "range" then decl = { range = { { 1, 1 }, { 1, MAX_SEQ } }, default = { 1, SEQ } } end
  local ids = f:input("input_ids", "int32", decl)

  local x
  if v.gather then x = L.embedding(f, ids, { name = "tok", vocab = VOCAB, dim = DIM })
  else x = L.one_hot_embedding(f, ids, { name = "tok", vocab = VOCAB, dim = DIM }) end

  -- learned positions: a static add when the length is fixed, else the first n rows of a table
  if v.shapes then
    local table_ = L.weight(f, {}, "pos_weight", nil, { MAX_SEQ, DIM }, 0.02)
    local n = f:op("gather", { x = f:op("shape", { x = ids }), indices = 1, axis = 0 })
    local rows = f:op("range_1d", { start = 0, ["end"] = n, step = 1 })
    x = f:op("add", { x = x, y = f:op("gather", { x = table_, indices = rows, axis = 0 }) })
  else
    x = f:op("add", { x = x, y = L.weight(f, {}, "pos_weight", nil, { 1, SEQ, DIM }, 0.02) })
  end
  x = L.layer_norm(f, x, { name = "emb_ln" })

  for i = 1, LAYERS do
    if v.lstm and i == LAYERS then
      -- [batch, seq, dim] -> [seq, batch, dim] for the lstm op, and back
      local t = f:op("transpose", { x = x, perm = { 1, 0, 2 } })
      local y = L.lstm(f, t, { name = "layers_" .. (i - 1) .. "_lstm", hidden = DIM, output_sequence = true })
      y = f:op("transpose", { x = y, perm = { 1, 0, 2 } })
      x = L.layer_norm(f, f:op("add", { x = x, y = y }), { name = "layers_" .. (i - 1) .. "_ln" })
    else
      x = Bk.transformer_encoder_layer(f, x, { name = "layers_" .. (i - 1), heads = HEADS, ffn = FFN })
    end
  end

  local pooled = f:op("reduce_mean", { x = x, axes = { 1 }, keep_dims = false })
  f:output("logits", L.linear(f, pooled, { name = "head", out = CLASSES }))
  f:output("hidden", x)
  return p
end

local written = {
  program { name = "good" }:save(out .. "/transformer_encoder_good.mlpackage"),
  program { name = "gather", gather = true }:save(out .. "/transformer_encoder_gather.mlpackage"),
  program { name = "lstm", lstm = true }:save(out .. "/transformer_encoder_lstm.mlpackage"),
  program { name = "enumerated", shapes = "enumerated" }:save(out .. "/transformer_encoder_enumerated.mlpackage"),
  program { name = "range", shapes = "range" }:save(out .. "/transformer_encoder_range.mlpackage"),
  program { name = "fp32", precision = "fp32" }:save(out .. "/transformer_encoder_fp32.mlpackage"),
}
for _, path in ipairs(written) do print(path) end
