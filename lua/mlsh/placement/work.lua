-- mlsh.placement.work — a rough estimate of each op's work: FLOPs and bytes moved.
-- The numbers only rank ops against each other (ANE coverage "by work", which op pushes the most
-- work off the ANE); they are not a latency model. Unknown dimensions (-1) count as 1, so a
-- flexible-shape model gets a lower bound. work = flops + bytes: compute-bound and memory-bound
-- ops both weigh in, neither needs a device model.
local M = {}

-- bytes per element, from the C core's dtype table (types.BITS)
local DTYPE_BYTES = {}
for name, bits in pairs(require("mlsh.types").BITS) do DTYPE_BYTES[name] = bits % 8 == 0 and bits // 8 or bits / 8 end
M.DTYPE_BYTES = DTYPE_BYTES

-- Element count of a shape; unknown dims count as 1 (lower bound).
local function elems(shape)
  if not shape then return 1 end
  local n = 1
  for _, d in ipairs(shape) do
    if d > 0 then n = n * d end
  end
  return n
end
M.elems = elems

local function bytes_of(t)
  if not t or not t.shape then return 0 end
  return elems(t.shape) * (DTYPE_BYTES[t.dtype] or 4)
end

local function product(list, from)
  local n = 1
  for i = from or 1, #list do
    if list[i] and list[i] > 0 then n = n * list[i] end
  end
  return n
end

-- FLOPs per output element of the common heavy ops, from the weight / operand shapes.
local HEAVY = {}
function HEAVY.conv(node)
  local w = node.by_param.weight
  if w and w.shape and #w.shape >= 3 then return 2 * product(w.shape, 2) end
  return 2
end
HEAVY.conv_quantized = HEAVY.conv
function HEAVY.linear(node)
  local w = node.by_param.weight
  if w and w.shape and #w.shape >= 2 then return 2 * math.max(w.shape[#w.shape], 1) end
  return 2
end
function HEAVY.matmul(node)
  local x = node.by_param.x
  if x and x.shape and #x.shape >= 1 then
    local tx = node.params.transpose_x
    local k = tx and x.shape[#x.shape - 1] or x.shape[#x.shape]
    return 2 * math.max(k or 1, 1)
  end
  return 2
end
local PER_ELEMENT = { batch_norm = 5, layer_norm = 8, instance_norm = 8, l2_norm = 4, local_response_norm = 8,
                      softmax = 5, gelu = 8, silu = 4, sigmoid = 4, tanh = 4, erf = 4, exp = 4, log = 4 }

-- {flops, bytes} of a MIL node (tensors: {role = "in"|"out", const, dtype, shape, param}).
function M.mil(node)
  local bytes, out_elems, in_elems = 0, 0, 0
  for _, t in ipairs(node.tensors) do
    bytes = bytes + bytes_of(t)
    if t.role == "out" then out_elems = out_elems + elems(t.shape)
    elseif not t.const then in_elems = math.max(in_elems, elems(t.shape)) end
  end
  local typ, flops = node.type
  if HEAVY[typ] then
    flops = out_elems * HEAVY[typ](node)
  elseif typ == "conv_transpose" then
    local w = node.by_param.weight
    flops = in_elems * 2 * ((w and w.shape and #w.shape >= 3) and product(w.shape, 2) or 1)
  elseif typ == "einsum" then
    flops = 2 * math.max(in_elems, out_elems) * 8
  elseif typ == "scaled_dot_product_attention" then
    local q, k = node.by_param.query, node.by_param.key
    if q and k and q.shape and k.shape and #q.shape >= 2 and #k.shape >= 2 then
      flops = 4 * elems(q.shape) * math.max(k.shape[#k.shape - 1], 1)
    else
      flops = 4 * out_elems
    end
  elseif typ == "lstm" or typ == "gru" or typ == "rnn" then
    local x = node.by_param.x
    local steps = (x and x.shape and x.shape[1] and x.shape[1] > 0) and x.shape[1] or 1
    local wsum = 0
    for _, t in ipairs(node.tensors) do
      if t.const and t.role == "in" and t.shape and #t.shape >= 2 then wsum = wsum + elems(t.shape) end
    end
    flops = 2 * steps * math.max(wsum, 1)
  elseif typ == "max_pool" or typ == "avg_pool" or typ == "l2_pool" then
    flops = out_elems * product(node.params.kernel or {})
  else
    flops = out_elems * (PER_ELEMENT[typ] or 1)
  end
  return math.floor(flops), math.floor(bytes)
end

-- {flops, bytes} of a NeuralNetwork layer. NeuralNetwork layers carry no shapes, so this is
-- weights-based: 2 FLOPs per weight (one multiply-add per position), at least 1.
function M.nn(node)
  local wbytes, wcount = 0, 0
  for _, w in ipairs(node.weights or {}) do
    wbytes = wbytes + (w.bytes or 0)
    wcount = wcount + (w.count or 0)
  end
  return math.max(2 * wcount, 1), wbytes
end

return M
