-- mlsh.onnx.passes — ONNX Runtime's level-1 ("basic") graph optimizations, which run before the
-- execution providers partition the graph (onnxruntime/core/optimizer/graph_transformer_utils.cc,
-- TransformerLevel::Level1), modelled on an mlsh.onnx.ir graph so node counts match what the
-- CoreML EP sees:
--   * at load, Constant nodes become initializers (onnxruntime Graph does this itself);
--   * rewrite rules: EliminateIdentity, EliminateDropout, CastElimination, EliminateSlice,
--     ExpandElimination, PreShapeNodeElimination (a Cast only Shape reads), NoopElimination
--     (x+0, x-0, x*1, x/1), DivMulFusion, FuseReluClip, NotWhereFusion, GemmTransposeFusion,
--     ConvAddFusion / ConvMulFusion / ConvBNFusion, PadFusion;
--   * ConstantSharing + CommonSubexpressionElimination;
--   * ConstantFolding (every deterministic node whose inputs are all constant initializers;
--     Shape once its input shape is fully known; DequantizeLinear kept for QDQ units);
--   * MatMulAddFusion (2-D MatMul + bias Add -> Gemm) and ReshapeFusion (a Reshape whose target
--     is built from its own input's Shape becomes a Reshape with a constant target).
-- The transformers repeat until nothing changes (ONNX Runtime runs level 1 up to 10 rounds).
-- TransposeOptimizer is modelled only where it removes nodes (mlsh.onnx.transpose_opt). Not
-- modelled: UnsqueezeElimination (constant folding covers the usual case), GemmSumFusion,
-- MatmulBNFusion, LabelEncoderFusion, the QDQ transformers and GeluFusion/LayerNormFusion.
-- ConstantFolding inlines an If with a constant condition (mlsh.onnx.if_inline).
-- Returns per-pass counts of removed nodes.
local shape = require "mlsh.onnx.shape"
local types = require "mlsh.onnx.types"
local irlib = require "mlsh.onnx.ir"
local transpose_opt = require "mlsh.onnx.transpose_opt"
local passes_fold = require "mlsh.onnx.passes_fold"
local opsets = require "mlsh.onnx.opsets"

local M = {}

local attr = irlib.attr

-- ---- Constant nodes -> initializers ----------------------------------------------------------------
local function constant_value(node)
  for _, name in ipairs(node.attr_order) do
    local a = node.attrs[name]
    local v = a.value
    if name == "value" and a.type == "TENSOR" then
      return { elem = v.dtype, dims = irlib.copy_list(v.dims), tensor = v, external = v.storage == "external" }
    elseif name == "value_float" then return { elem = types.FLOAT, dims = {}, values = { v } }
    elseif name == "value_floats" then return { elem = types.FLOAT, dims = { #v }, values = v }
    elseif name == "value_int" then return { elem = types.INT64, dims = {}, values = { v } }
    elseif name == "value_ints" then return { elem = types.INT64, dims = { #v }, values = v }
    elseif name == "value_string" then return { elem = 8, dims = {}, values = { v } }
    elseif name == "value_strings" then return { elem = 8, dims = { #v }, values = v }
    elseif name == "sparse_value" then return { elem = nil, dims = nil } end
  end
  return nil
end

function M.constants_to_initializers(ir)
  local n = 0
  for _, node in ipairs(ir.nodes) do
    if node.op == "Constant" and node.domain == "" and node.outputs[1] then
      local c = constant_value(node)
      if c then
        c.name = node.outputs[1]
        c.from_constant_node = true
        ir.consts[c.name] = c
        if c.elem then ir.types[c.name] = { elem = c.elem, shape = c.dims and irlib.copy_list(c.dims) } end
        node.removed = true
        n = n + 1
      end
    end
  end
  ir:compact()
  return n
end

-- ---- helpers -----------------------------------------------------------------------------------------
local function is_const(ir, name) return name ~= "" and ir:const(name) ~= nil end

local function scalar_value(ir, name)
  local v = ir:values(name, 64)
  if not v or #v == 0 then return nil end
  local first = v[1]
  for _, x in ipairs(v) do if x ~= first then return nil end end
  return first
end

local function same_shape(a, b)
  if not a or not b or #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] or a[i] == false then return false end end
  return true
end

-- Remove `node`, making its consumers read `replacement` instead of its (single) output.
-- Refused when the output is a graph output or read inside a subgraph.
local function bypass(_, node, replacement, ctx)
  local out = node.outputs[1]
  if ctx.graph_outputs[out] or ctx.sub_reads[out] then return false end
  for _, c in ipairs(ctx.consumers[out] or {}) do
    for i, x in ipairs(c.inputs) do if x == out then c.inputs[i] = replacement end end
  end
  local list = ctx.consumers[replacement] or {}
  for _, c in ipairs(ctx.consumers[out] or {}) do list[#list + 1] = c end
  ctx.consumers[replacement] = list
  ctx.consumers[out] = nil
  node.removed = true
  return true
end

local function single_consumer(ctx, name)
  local l = ctx.consumers[name]
  if not l or #l ~= 1 or ctx.graph_outputs[name] or ctx.sub_reads[name] then return nil end
  return l[1]
end

local function context(ir)
  local consumers, sub_reads = ir:consumers()
  return { consumers = consumers, sub_reads = sub_reads, graph_outputs = ir:output_set(), producers = ir:producers() }
end

-- ---- rewrite rules -----------------------------------------------------------------------------------
local rules = {}

-- EliminateIdentity (identity_elimination.cc): bypassed, or, when its output is a graph output
-- nothing else reads, folded into its producer (which then writes the graph output itself) if the
-- producer's value is not a graph output and feeds nothing but this Identity.
local function identity_to_output(ir, node, ctx)
  local x, out = node.inputs[1], node.outputs[1]
  local p = ctx.producers[x]
  if #node.outputs ~= 1 or not ctx.graph_outputs[out] or (ctx.consumers[out]
    and #ctx.consumers[out] > 0) then return nil end
  if not p or ctx.graph_outputs[x] or ctx.sub_reads[x] or #(ctx.consumers[x] or {}) ~= 1 then return nil end
  for i, o in ipairs(p.outputs) do if o == x then p.outputs[i] = out end end
  ir.types[out] = ir.types[out] or ir.types[x]
  ctx.producers[out] = p
  ctx.consumers[x] = nil
  node.removed = true
  return "EliminateIdentity"
end

rules.Identity = function(ir, node, ctx)
  if node.inputs[1] == "" then return nil end
  if ctx.graph_outputs[node.outputs[1]] then return identity_to_output(ir, node, ctx) end
  return bypass(ir, node, node.inputs[1], ctx) and "EliminateIdentity"
end

rules.Dropout = function(ir, node, ctx)
  local mask = node.outputs[2]
  if mask and mask ~= "" and (ctx.consumers[mask] or ctx.graph_outputs[mask]) then return nil end
  local training = node.inputs[3]
  if training and training ~= "" then
    local v = scalar_value(ir, training)
    if v ~= 0 then return nil end
  end
  return bypass(ir, node, node.inputs[1], ctx) and "EliminateDropout"
end

rules.Cast = function(ir, node, ctx)
  local t = ir:type_of(node.inputs[1])
  local to = attr(node, "to", nil)
  if t and t.elem and t.elem == to then
    return bypass(ir, node, node.inputs[1], ctx) and "CastElimination"
  end
  -- PreShapeNodeElimination: a Cast read only by Shape nodes changes nothing they see
  local cons = ctx.consumers[node.outputs[1]]
  if cons and #cons > 0 and not ctx.graph_outputs[node.outputs[1]] then
    for _, c in ipairs(cons) do if c.op ~= "Shape" then return nil end end
    return bypass(ir, node, node.inputs[1], ctx) and "PreShapeNodeElimination"
  end
  return nil
end

rules.Slice = function(ir, node, ctx)
  local x = ir:type_of(node.inputs[1])
  local starts, ends = ir:values(node.inputs[2] or ""), ir:values(node.inputs[3] or "")
  if not x or not x.shape or not starts or not ends then return nil end
  local axes = node.inputs[4] and node.inputs[4] ~= "" and ir:values(node.inputs[4]) or nil
  local steps = node.inputs[5] and node.inputs[5] ~= "" and ir:values(node.inputs[5]) or nil
  if (node.inputs[4] and node.inputs[4] ~= "" and not axes) or (node.inputs[5] and node.inputs[5] ~= ""
    and not steps) then return nil end
  for k = 1, #starts do
    local a = axes and axes[k] or (k - 1)
    if a < 0 then a = a + #x.shape end
    local d = x.shape[a + 1]
    if starts[k] ~= 0 or (steps and steps[k] ~= 1) then return nil end
    if not (ends[k] >= 2 ^ 31 - 1 or (math.type(d) == "integer" and ends[k] >= d)) then return nil end
  end
  return bypass(ir, node, node.inputs[1], ctx) and "EliminateSlice"
end

rules.Expand = function(ir, node, ctx)
  local x, y = ir:type_of(node.inputs[1]), ir:type_of(node.outputs[1])
  if x and y and same_shape(x.shape, y.shape) then
    return bypass(ir, node, node.inputs[1], ctx) and "ExpandElimination"
  end
  return nil
end

-- NoopElimination (noop_elimination.cc SatisfyCondition): exactly one input a constant initializer
-- (at input 1 for Sub and Div) of at most one element and of rank <= the other input's; its value
-- 0 for Add/Sub, 1 for Mul/Div (an empty one always qualifies); then CanRemoveNode.
local NOOP = { Add = 0, Sub = 0, Mul = 1, Div = 1 }
local function noop(ir, node, ctx)
  local c0, c1 = is_const(ir, node.inputs[1]), is_const(ir, node.inputs[2] or "")
  if c0 == c1 then return nil end
  if (node.op == "Sub" or node.op == "Div") and not c1 then return nil end
  local ci = c0 and 1 or 2
  local c, other = ir:const(node.inputs[ci]), node.inputs[3 - ci]
  local ot = ir:type_of(other)
  if not c.dims or not ot or not ot.shape or #c.dims > #ot.shape then return nil end
  local n = types.numel(c.dims)
  if not n or n > 1 then return nil end
  if n == 1 then
    local v = ir:values(node.inputs[ci], 1)
    if not v or v[1] ~= NOOP[node.op] then return nil end
  end
  return bypass(ir, node, other, ctx) and "NoopElimination"
end
rules.Add, rules.Sub, rules.Mul = noop, noop, noop

rules.Div = function(ir, node, ctx)
  local r = noop(ir, node, ctx)
  if r then return r end
  -- DivMulFusion: Mul(y, Div(1, x)) -> Div(y, x)
  if is_const(ir, node.inputs[1]) and scalar_value(ir, node.inputs[1]) == 1 then
    local mul = single_consumer(ctx, node.outputs[1])
    if mul and mul.op == "Mul" and mul.domain == "" then
      local other = mul.inputs[1] == node.outputs[1] and mul.inputs[2] or mul.inputs[1]
      mul.op = "Div"
      mul.inputs = { other, node.inputs[2] }
      node.removed = true
      return "DivMulFusion"
    end
  end
  return nil
end

rules.Relu = function(_, node, ctx)
  local clip = single_consumer(ctx, node.outputs[1])
  if clip and clip.op == "Clip" and clip.domain == "" then
    clip.inputs[1] = node.inputs[1]
    node.removed = true
    return "FuseReluClip"
  end
  return nil
end

rules.Not = function(_, node, ctx)
  local cons = ctx.consumers[node.outputs[1]]
  if not cons or #cons == 0 or ctx.graph_outputs[node.outputs[1]] or ctx.sub_reads[node.outputs[1]] then return nil end
  for _, c in ipairs(cons) do
    if c.op ~= "Where" or c.inputs[1] ~= node.outputs[1] then return nil end
  end
  for _, c in ipairs(cons) do
    c.inputs = { node.inputs[1], c.inputs[3], c.inputs[2] }
  end
  node.removed = true
  return "NotWhereFusion"
end

rules.Transpose = function(_, node, ctx)
  local gemm = single_consumer(ctx, node.outputs[1])
  local perm = attr(node, "perm", nil)
  if gemm and gemm.op == "Gemm" and gemm.domain == "" and (not perm or (#perm == 2 and perm[1] == 1
    and perm[2] == 0)) then
    local slot = gemm.inputs[1] == node.outputs[1] and 1 or (gemm.inputs[2] == node.outputs[1] and 2) or nil
    if not slot then return nil end
    gemm.inputs[slot] = node.inputs[1]
    local key = slot == 1 and "transA" or "transB"
    local attrs = {}
    for k, v in pairs(gemm.attrs) do attrs[k] = v end
    attrs[key] = { name = key, type = "INT", value = 1 - attr(gemm, key, 0) }
    gemm.attrs = attrs
    local order = irlib.copy_list(gemm.attr_order)
    local seen = false
    for _, k in ipairs(order) do if k == key then seen = true end end
    if not seen then order[#order + 1] = key end
    gemm.attr_order = order
    node.removed = true
    return "GemmTransposeFusion"
  end
  return nil
end

-- Conv followed by a constant Add / Mul / BatchNormalization folds into the Conv's weights.
-- ConvAddFusion / ConvMulFusion / ConvBNFusion (conv_add_fusion.cc, conv_mul_fusion.cc,
-- conv_bn_fusion.cc SatisfyCondition + Apply): Conv-1/11 with one output edge into Add/Mul-7/13/14 or
-- BatchNormalization-7/9/14/15 with one input edge; the weight (rank > 2, floating point), a bias
-- and the follower's other inputs constant, at input index 1 for Add/Mul; the Add/Mul constant of
-- the weight's rank (axis 1) or one less (axis 0) holding C = W.dims[0] on that axis and 1
-- elsewhere (Mul also takes a rank-0 scalar); BN's four inputs 1-D of C; a bias 1-D of C.
local FUSE_OPSETS = { Add = { 7, 13, 14 }, Mul = { 7, 13, 14 }, BatchNormalization = { 7, 9, 14, 15 } }
local function since_in(ir, node, list)
  local v = opsets.since(node.op, ir.opset[""])
  if not v then return true end
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

local function channel_const_ok(c, w, scalar_ok)
  local d, r = c.dims, #w.dims
  if #d == 0 then return scalar_ok end
  local axis
  if #d == r then axis = 2 elseif #d == r - 1 then axis = 1 else return false end
  if d[axis] ~= w.dims[1] then return false end
  for i, x in ipairs(d) do if i ~= axis and x ~= 1 then return false end end
  return true
end

local function conv_fusion_ok(ir, node, nxt)
  local w = ir:const(node.inputs[2])
  if not w or not w.dims or #w.dims <= 2 or not types.is_float(w.elem) then return false end
  local b = node.inputs[3] and node.inputs[3] ~= "" and ir:const(node.inputs[3])
  if node.inputs[3] and node.inputs[3] ~= "" and (not b or not b.dims or #b.dims ~= 1
    or b.dims[1] ~= w.dims[1]) then return false end
  if nxt.op == "BatchNormalization" then
    if #nxt.outputs > 1 then for k = 2, #nxt.outputs do if nxt.outputs[k] ~= "" then return false end end end
    for k = 2, 5 do
      local c = ir:const(nxt.inputs[k] or "")
      if not c or not c.dims or #c.dims ~= 1 or c.dims[1] ~= w.dims[1] or c.elem ~= w.elem then return false end
    end
    return true
  end
  local c = ir:const(nxt.inputs[2] or "")
  if not c or not c.dims or c.elem ~= w.elem then return false end
  return channel_const_ok(c, w, nxt.op == "Mul")
end

local function conv_fusion(ir, node, ctx)
  if not since_in(ir, node, { 1, 11 }) then return nil end
  for _, o in ipairs(node.outputs) do if ctx.graph_outputs[o] then return nil end end
  local nxt = single_consumer(ctx, node.outputs[1])
  if not nxt or nxt.domain ~= "" or not FUSE_OPSETS[nxt.op] or not since_in(ir, nxt,
    FUSE_OPSETS[nxt.op]) then return nil end
  local edges = 0
  for _, i in ipairs(nxt.inputs) do if i ~= "" and ctx.producers[i] then edges = edges + 1 end end
  if edges ~= 1 or nxt.inputs[1] ~= node.outputs[1] then return nil end
  if not conv_fusion_ok(ir, node, nxt) then return nil end
  local fused = nxt.op == "Add" and "ConvAddFusion" or nxt.op == "Mul" and "ConvMulFusion" or "ConvBNFusion"
  -- the fused conv produces the follower's output; Add and BatchNormalization leave it a bias
  if fused ~= "ConvMulFusion" and (not node.inputs[3] or node.inputs[3] == "") then
    local w = ir:const(node.inputs[2])
    local bias = ir:fresh(node.outputs[1] .. "_bias")
    ir:add_const(bias, w.elem, { (w.dims and w.dims[1]) or 1 }, nil)
    node.inputs[3] = bias
  end
  local out = nxt.outputs[1]
  node.outputs = { out }
  nxt.removed = true
  ctx.producers[out] = node
  return fused
end
rules.Conv = conv_fusion

rules.Pad = function(ir, node, ctx)
  local nxt = single_consumer(ctx, node.outputs[1])
  if not nxt or nxt.domain ~= "" then return nil end
  if nxt.op ~= "Conv" and nxt.op ~= "AveragePool" and nxt.op ~= "MaxPool" then return nil end
  if attr(node, "mode", "constant") ~= "constant" then return nil end
  local pads = (ir.opset[""] or 13) >= 11 and ir:values(node.inputs[2] or "") or attr(node, "pads", nil)
  if not pads then return nil end
  local half = #pads // 2
  if half < 2 or (pads[1] ~= 0 or pads[2] ~= 0 or pads[half + 1] ~= 0 or pads[half + 2] ~= 0) then return nil end
  for _, p in ipairs(pads) do if p < 0 then return nil end end
  if node.inputs[3] and node.inputs[3] ~= "" then
    if scalar_value(ir, node.inputs[3]) ~= 0 then return nil end
  end
  if nxt.op == "AveragePool" and attr(nxt, "count_include_pad", 0) == 0 then return nil end
  local ap = attr(nxt, "auto_pad", "NOTSET")
  if ap ~= "NOTSET" then return nil end
  nxt.inputs[1] = node.inputs[1]
  node.removed = true
  return "PadFusion"
end

M.cse, M.fold = passes_fold.cse, passes_fold.fold

-- ---- MatMul + Add -> Gemm (2-D inputs) ---------------------------------------------------------------
function M.matmul_add(ir)
  local any = false
  for _, node in ipairs(ir.nodes) do
    if node.op == "MatMul" then
      local a = ir:type_of(node.inputs[1])
      if a and a.shape and #a.shape == 2 then any = true break end
    end
  end
  if not any then return 0 end
  local ctx = context(ir)
  local n = 0
  for _, node in ipairs(ir.nodes) do
    if node.op == "MatMul" and node.domain == "" and not node.removed then
      local a, b = ir:type_of(node.inputs[1]), ir:type_of(node.inputs[2])
      local add = single_consumer(ctx, node.outputs[1])
      if add and add.op == "Add" and add.domain == "" and a and b and a.shape and b.shape and #a.shape == 2
        and #b.shape == 2 then
        local bias = add.inputs[1] == node.outputs[1] and add.inputs[2] or add.inputs[1]
        local bt = ir:type_of(bias)
        local N = b.shape[2]
        local ok = bt and bt.shape and ((#bt.shape == 1 and bt.shape[1] == N) or (#bt.shape == 2 and bt.shape[1] == 1
          and bt.shape[2] == N))
        if ok then
          add.op = "Gemm"
          add.inputs = { node.inputs[1], node.inputs[2], bias }
          add.attrs, add.attr_order = {}, {}
          node.removed = true
          n = n + 1
        end
      end
    end
  end
  ir:compact()
  return n
end

-- ---- ReshapeFusion --------------------------------------------------------------------------------------
-- Reshape(x, Concat(parts)) where every part is a constant or Unsqueeze(Gather(Shape(x), i)) at
-- position i (that dim is copied, written 0) becomes Reshape(x, constant).
function M.reshape_fusion(ir)
  local any = false
  for _, node in ipairs(ir.nodes) do
    if node.op == "Reshape" and not is_const(ir, node.inputs[2]) then any = true break end
  end
  if not any then return 0 end
  local ctx = context(ir)
  local n = 0
  local prod = ctx.producers
  local cons = ctx.consumers
  for _, node in ipairs(ir.nodes) do
    if node.op == "Reshape" and node.domain == "" and not node.removed and not is_const(ir, node.inputs[2]) then
      local concat = prod[node.inputs[2]]
      if concat and concat.op == "Concat" and not concat.removed then
        local target, chain, ok = {}, {}, true
        for pos, part in ipairs(concat.inputs) do
          local v = ir:values(part)
          if v then
            if #v ~= 1 then ok = false break end
            target[#target + 1] = v[1]
          else
            local uns = prod[part]
            local gather = uns and (uns.op == "Unsqueeze" and prod[uns.inputs[1]] or (uns.op == "Gather" and uns
              or nil))
            local shp = gather and gather.op == "Gather" and prod[gather.inputs[1]]
            local idx = gather and ir:values(gather.inputs[2] or "")
            if not (shp and shp.op == "Shape" and shp.inputs[1] == node.inputs[1] and idx and #idx == 1
              and (idx[1] == pos - 1)) then
              ok = false
              break
            end
            target[#target + 1] = 0
            chain[#chain + 1] = uns
            if gather ~= uns then chain[#chain + 1] = gather end
            chain[#chain + 1] = shp
          end
        end
        local negs = 0
        for _, d in ipairs(target) do if d == -1 then negs = negs + 1 end end
        if ok and negs <= 1 and #target > 0 then
          local name = ir:fresh(node.inputs[2])
          ir:add_const(name, types.INT64, { #target }, target)
          local old = node.inputs[2]
          node.inputs[2] = name
          -- the shape chain goes when nothing else reads it
          local function drop(x)
            if x.removed then return end
            for _, o in ipairs(x.outputs) do
              if (cons[o] and #cons[o] > 0) or ctx.graph_outputs[o] then return end
            end
            x.removed = true
            n = n + 1
            for _, i in ipairs(x.inputs) do
              local l = cons[i]
              if l then
                for k = #l, 1, -1 do if l[k] == x then table.remove(l, k) end end
              end
            end
          end
          local l = cons[old]
          if l then for k = #l, 1, -1 do if l[k] == node then table.remove(l, k) end end end
          drop(concat)
          for _, x in ipairs(chain) do drop(x) end
        end
      end
    end
  end
  ir:compact()
  return n
end

-- ---- the level-1 pipeline ------------------------------------------------------------------------------
function M.rewrite(ir, stats)
  local ctx = context(ir)
  local changed = 0
  for _, node in ipairs(ir.nodes) do
    if not node.removed and node.domain == "" then
      local rule = rules[node.op]
      if rule then
        local name = rule(ir, node, ctx)
        if name then
          stats[name] = (stats[name] or 0) + 1
          changed = changed + 1
        end
      end
    end
  end
  ir:compact()
  return changed
end

-- SessionOptions::max_num_graph_transformation_steps (framework/session_options.h): 10 rounds
M.MAX_STEPS = 10

-- `pre(ir)` (optional) runs once Constant nodes are initializers, before any optimization
-- (counterfactual rewrites hook in there).
function M.run(ir, pre)
  local stats = { nodes_stored = #ir.nodes }
  stats.ConstantNodesToInitializers = M.constants_to_initializers(ir)
  if pre then pre(ir) end
  for _ = 1, M.MAX_STEPS do
    shape.infer(ir)
    local changed = M.rewrite(ir, stats)
    local c = passes_fold.cse(ir)
    stats.CommonSubexpressionElimination = (stats.CommonSubexpressionElimination or 0) + c
    if changed + c > 0 then shape.infer(ir) end
    local f = passes_fold.fold(ir, M.constants_to_initializers)
    stats.ConstantFolding = (stats.ConstantFolding or 0) + f
    local ma = M.matmul_add(ir)
    stats.MatMulAddFusion = (stats.MatMulAddFusion or 0) + ma
    local rf = M.reshape_fusion(ir)
    stats.ReshapeFusion = (stats.ReshapeFusion or 0) + rf
    local tp = transpose_opt.run(ir)
    stats.TransposeOptimizer = (stats.TransposeOptimizer or 0) + tp
    if changed + c + f + ma + rf + tp == 0 then break end
  end
  ir:toposort()
  shape.infer(ir)
  stats.nodes_optimized = #ir.nodes
  return stats
end

return M
