-- mlsh.onnx.transpose_opt — the part of ONNX Runtime's level-1 TransposeOptimizer
-- (onnxruntime/core/optimizer/transpose_optimization/onnx_transpose_optimization.cc, run last in
-- graph_transformer_utils.cc GenerateTransformers Level1) that changes node counts: a Transpose
-- pushed down through ops that only need their axis renumbered, until it meets a Transpose with
-- the inverse permutation, where both disappear. Modelled: chains of single-consumer unary
-- elementwise ops and Softmax/LogSoftmax/Hardmax (opset >= 13, whose axis is remapped, as
-- HandleSoftHardMax does). Pushes that only move a Transpose are not modelled.
--   n = transpose_opt.run(ir) -> number of Transpose pairs removed
local irlib = require "mlsh.onnx.ir"

local M = {}

local UNARY = {}
for _, op in ipairs({ "Abs", "Ceil", "Cos", "Erf", "Exp", "Floor", "Log", "Neg", "Not", "Reciprocal", "Relu", "Round",
  "Sigmoid", "Sign", "Sin", "Sqrt", "Tan", "Tanh", "Elu", "LeakyRelu", "Selu", "Softplus", "Softsign", "HardSigmoid",
  "Celu", "ThresholdedRelu", "Identity", "Cast", "Acos", "Asin", "Atan", "Cosh", "Sinh", "Acosh", "Asinh", "Atanh" }) do
  UNARY[op] = true
end
local SOFTMAX = { Softmax = true, LogSoftmax = true, Hardmax = true }

local function perm_of(node, rank)
  local p = irlib.attr(node, "perm", nil)
  if p then return p end
  if not rank then return nil end
  local r = {}
  for i = 1, rank do r[i] = rank - i end
  return r
end

local function is_inverse(p, q)
  if #p ~= #q then return false end
  for i = 1, #p do
    local qi = q[i] + 1
    if p[qi] ~= i - 1 then return false end
  end
  return true
end

local function only_consumer(ctx, name)
  local l = ctx.consumers[name]
  if not l or #l ~= 1 or ctx.outputs[name] or ctx.sub_reads[name] then return nil end
  return l[1]
end

-- Follow the single-consumer chain from Transpose t; returns the chain and the closing Transpose.
local function chain_from(_, ctx, t, opset)
  local chain, cur = {}, t
  while true do
    local nxt = only_consumer(ctx, cur.outputs[1])
    if not nxt or nxt.domain ~= "" or #nxt.outputs ~= 1 then return nil end
    if nxt.op == "Transpose" then return chain, nxt end
    if not (UNARY[nxt.op] or (SOFTMAX[nxt.op] and opset >= 13)) then return nil end
    if nxt.inputs[1] ~= cur.outputs[1] then return nil end
    chain[#chain + 1] = nxt
    cur = nxt
  end
end

local function cancel(ir, ctx, t, opset)
  local chain, t2 = chain_from(ir, ctx, t, opset)
  if not chain then return false end
  local x = ir:type_of(t.inputs[1])
  local rank = x and x.shape and #x.shape
  local p, q = perm_of(t, rank), perm_of(t2, rank)
  if not p or not q or not is_inverse(p, q) then return false end
  for _, n in ipairs(chain) do
    if SOFTMAX[n.op] then
      local r = #p
      local a = irlib.attr(n, "axis", -1)
      if a < 0 then a = a + r end
      local attrs = {}
      for k, v in pairs(n.attrs) do attrs[k] = v end
      attrs.axis = { name = "axis", type = "INT", value = p[a + 1] }
      if not n.attrs.axis then
        n.attr_order = irlib.copy_list(n.attr_order)
        n.attr_order[#n.attr_order + 1] = "axis"
      end
      n.attrs = attrs
    end
  end
  -- the chain now reads T1's input and the closing Transpose's readers read the chain's end
  local first = chain[1] or t2
  for i, v in ipairs(first.inputs) do if v == t.outputs[1] then first.inputs[i] = t.inputs[1] end end
  local last_out = #chain > 0 and chain[#chain].outputs[1] or t.inputs[1]
  local out = t2.outputs[1]
  if ctx.outputs[out] then
    if #chain == 0 then return false end
    chain[#chain].outputs[1] = out
  else
    for _, c in ipairs(ctx.consumers[out] or {}) do
      for i, v in ipairs(c.inputs) do if v == out then c.inputs[i] = last_out end end
    end
  end
  t.removed, t2.removed = true, true
  return true
end

function M.run(ir)
  local consumers, sub_reads = ir:consumers()
  local ctx = { consumers = consumers, sub_reads = sub_reads or {}, outputs = ir:output_set() }
  local opset = ir.opset[""] or 13
  local n = 0
  for _, t in ipairs(ir.nodes) do
    if not t.removed and t.op == "Transpose" and t.domain == "" and cancel(ir, ctx, t, opset) then
      n = n + 1
      ir:compact()
      consumers, sub_reads = ir:consumers()
      ctx.consumers, ctx.sub_reads = consumers, sub_reads or {}
    end
  end
  return n
end

return M
