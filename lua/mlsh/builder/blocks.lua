-- mlsh.builder.blocks — the few compositions realistic models are made of, for ML-program functions.
--
--   Bk.conv_bn_relu(f, x, {out, k = 3, stride = 1, groups = 1, dilation = 1, relu6 = false, name})
--   Bk.depthwise_separable(f, x, {out, stride = 1, dilation = 1, name})   -- MobileNet v1 block
--   Bk.attention(f, x, {heads, name})                                     -- x is [batch, seq, dim]
--   Bk.transformer_encoder_layer(f, x, {heads, ffn, name})                -- post-LN, like BERT
--
-- Each returns the block's output value; weights are named `<name>_<part>_...` and seeded from
-- their names (see mlsh.builder.layers).
local L = require "mlsh.builder.layers"

local Bk = {}

function Bk.conv_bn_relu(f, x, o)
  o = o or {}
  local name = L.layer_name(f, "block", o)
  local y = L.conv(f, x, { name = name .. "_conv", out = o.out, k = o.k or 3, stride = o.stride, groups = o.groups,
    dilation = o.dilation, pad = o.pad, seed = o.seed })
  y = L.batch_norm(f, y, { name = name .. "_bn", seed = o.seed })
  if o.relu6 then return L.relu6(f, y) end
  return L.relu(f, y)
end

function Bk.depthwise_separable(f, x, o)
  o = o or {}
  local name = L.layer_name(f, "dw_block", o)
  local c = x.shape[2]
  local y = Bk.conv_bn_relu(f, x, { name = name .. "_dw", out = c, k = 3, stride = o.stride, groups = c,
    dilation = o.dilation, seed = o.seed, relu6 = o.relu6 })
  return Bk.conv_bn_relu(f, y, { name = name .. "_pw", out = o.out, k = 1, seed = o.seed, relu6 = o.relu6 })
end

-- Multi-head self-attention with explicit reshape/transpose/matmul, as PyTorch exports it.
function Bk.attention(f, x, o)
  o = o or {}
  local name = L.layer_name(f, "attn", o)
  local b, s, d = x.shape[1], x.shape[2], x.shape[3]
  local heads = o.heads or 4
  if d % heads ~= 0 then error(string.format("attention: dim %d is not divisible by %d heads", d, heads), 2) end
  local hd = d // heads
  local function split_heads(t)
    -- [b, s, d] -> [b, heads, s, hd]; an unknown sequence length stays -1 in the target shape
    local r = f:op("reshape", { x = t, shape = { b, s < 0 and -1 or s, heads, hd } })
    return f:op("transpose", { x = r, perm = { 0, 2, 1, 3 } })
  end
  local q = split_heads(L.linear(f, x, { name = name .. "_q", out = d, seed = o.seed }))
  local k = split_heads(L.linear(f, x, { name = name .. "_k", out = d, seed = o.seed }))
  local v = split_heads(L.linear(f, x, { name = name .. "_v", out = d, seed = o.seed }))
  local scores = f:op("matmul", { x = q, y = k, transpose_x = false, transpose_y = true })
  scores = f:op("mul", { x = scores, y = 1 / math.sqrt(hd) })
  local probs = L.softmax(f, scores, -1)
  local ctx = f:op("matmul", { x = probs, y = v, transpose_x = false, transpose_y = false })
  ctx = f:op("transpose", { x = ctx, perm = { 0, 2, 1, 3 } })
  ctx = f:op("reshape", { x = ctx, shape = { b, s < 0 and -1 or s, d } })
  return L.linear(f, ctx, { name = name .. "_o", out = d, seed = o.seed })
end

function Bk.feed_forward(f, x, o)
  o = o or {}
  local name = L.layer_name(f, "ffn", o)
  local d = x.shape[#x.shape]
  local h = L.linear(f, x, { name = name .. "_f1", out = o.ffn or 4 * d, seed = o.seed })
  h = L.gelu(f, h)
  return L.linear(f, h, { name = name .. "_f2", out = d, seed = o.seed })
end

function Bk.transformer_encoder_layer(f, x, o)
  o = o or {}
  local name = L.layer_name(f, "layer", o)
  local a = Bk.attention(f, x, { name = name .. "_attn", heads = o.heads, seed = o.seed })
  x = L.layer_norm(f, f:op("add", { x = x, y = a }), { name = name .. "_ln1", seed = o.seed })
  local h = Bk.feed_forward(f, x, { name = name .. "_ffn", ffn = o.ffn, seed = o.seed })
  return L.layer_norm(f, f:op("add", { x = x, y = h }), { name = name .. "_ln2", seed = o.seed })
end

return Bk
