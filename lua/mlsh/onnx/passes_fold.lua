-- mlsh.onnx.passes_fold — two of ONNX Runtime's level-1 transformers on an mlsh.onnx.ir graph, used
-- by mlsh.onnx.passes: CommonSubexpressionElimination (common_subexpression_elimination.cc; after
-- ConstantSharing, which lets small equal initializers match by value) and ConstantFolding
-- (constant_folding.cc: deterministic nodes whose inputs are all constant initializers, Shape once
-- its input shape is known, with RemoveNodesWithOneOutputBottomUp on a folded Shape's producers).
--   n = passes_fold.cse(ir)      n = passes_fold.fold(ir)
local eval = require "mlsh.onnx.eval"
local types = require "mlsh.onnx.types"
local irlib = require "mlsh.onnx.ir"
local if_inline = require "mlsh.onnx.if_inline"
local partition = require "mlsh.onnx.partition"

local M = {}

local NONDETERMINISTIC = { RandomNormal = true, RandomUniform = true, RandomNormalLike = true,
                           RandomUniformLike = true, Multinomial = true }
-- ops whose outputs are sequences or optionals: ONNX Runtime folds tensors only
local NON_TENSOR = { SequenceConstruct = true, SequenceEmpty = true, SequenceInsert = true, SequenceErase = true,
                     SplitToSequence = true, Optional = true, OptionalGetElement = true, SequenceMap = true }

local function is_const(ir, name) return name ~= "" and ir:const(name) ~= nil end

local function context(ir)
  local consumers, sub_reads = ir:consumers()
  return { consumers = consumers, sub_reads = sub_reads, graph_outputs = ir:output_set(), producers = ir:producers() }
end

-- ---- common subexpressions ---------------------------------------------------------------------------
-- CommonSubexpressionElimination's AreEqual (common_subexpression_elimination.cc): a TENSOR
-- attribute matches another only as a one-element [1] float/fp16/int64 tensor held in raw_data
-- with the same value (ConstantOfShape's `value`); any other tensor makes its node distinct.
local SCALAR_ATTR_TYPES = { [types.FLOAT] = true, [types.FLOAT16] = true, [types.INT64] = true }
local function tensor_attr_key(ir, node, v)
  if SCALAR_ATTR_TYPES[v.dtype] and #v.dims == 1 and v.dims[1] == 1 and v.field == "raw_data" then
    local vals = v.values and v:values(ir.model, 1)
    if vals and vals[1] ~= nil then return "tensor:" .. v.dtype .. ":" .. tostring(vals[1]) end
  end
  return "tensor@" .. tostring(node)
end

local function attr_key(ir, node)
  local parts = {}
  for _, k in ipairs(node.attr_order) do
    local a = node.attrs[k]
    local v = a.value
    local s
    if type(v) == "table" and v.dtype and v.dims then s = tensor_attr_key(ir, node, v)
    elseif type(v) == "table" then
      local items = {}
      for i, x in ipairs(v) do items[i] = tostring(x) end
      s = "[" .. table.concat(items, ",") .. "]"
    else s = tostring(v) end
    parts[#parts + 1] = k .. "=" .. s
  end
  return table.concat(parts, ";")
end

local function const_key(ir, name)
  local c = ir:const(name)
  if not c or not c.dims then return name end
  local n = types.numel(c.dims)
  if not n or n > 8 then return name end
  local v = ir:values(name, 8)
  if not v then return name end
  local parts = {}
  for i, x in ipairs(v) do parts[i] = string.format("%.17g", x) end
  return "#" .. tostring(c.elem) .. "[" .. table.concat(c.dims, "x") .. "]" .. table.concat(parts, ",")
end

function M.cse(ir)
  local seen, removed, akeys = {}, 0, {}
  local keys = {}
  local function key_of(name)
    local k = keys[name]
    if not k then k = const_key(ir, name); keys[name] = k end
    return k
  end
  local alias = {}
  local outputs = ir:output_set()
  local sub_reads = {}
  for _, n in ipairs(ir.nodes) do
    if #n.subgraphs > 0 then sub_reads = select(2, ir:consumers()) break end
  end
  -- common_subexpression_elimination.cc walks GraphViewer's topological order: the first node of
  -- an equivalence class met in that order is the one kept
  local index = partition.node_indices(ir)
  local links = partition.links({ nodes = ir.nodes, inputs = ir.inputs, initializers = ir.consts })
  local order = partition.ort_order(ir.nodes, links, index)
  if #order ~= #ir.nodes then order = ir.nodes end
  for _, node in ipairs(order) do
    for i, x in ipairs(node.inputs) do if alias[x] then node.inputs[i] = alias[x] end end
    if not node.removed and #node.subgraphs == 0 and not NONDETERMINISTIC[node.op] and #node.outputs > 0 then
      local ins = {}
      for i, x in ipairs(node.inputs) do ins[i] = key_of(x) end
      -- attributes are compared only among nodes that already agree on op and inputs
      local key = node.domain .. "|" .. node.op .. "|" .. table.concat(ins, ",") .. "|" .. #node.outputs
      local bucket = seen[key]
      local first
      if bucket then
        akeys[node] = akeys[node] or attr_key(ir, node)
        for _, cand in ipairs(bucket) do
          akeys[cand] = akeys[cand] or attr_key(ir, cand)
          if akeys[cand] == akeys[node] then first = cand break end
        end
      end
      local mergeable = first ~= nil
      if mergeable then
        for _, o in ipairs(node.outputs) do
          if outputs[o] or sub_reads[o] then mergeable = false end
        end
      end
      if mergeable then
        for k, o in ipairs(node.outputs) do alias[o] = first.outputs[k] end
        node.removed = true
        removed = removed + 1
      elseif not first then
        bucket = bucket or {}
        bucket[#bucket + 1] = node
        seen[key] = bucket
      end
    end
  end
  ir:compact()
  return removed
end

-- ---- constant folding ---------------------------------------------------------------------------------
local function all_inputs_const(ir, node)
  for _, x in ipairs(node.inputs) do
    if x ~= "" and not is_const(ir, x) then return false end
  end
  return true
end

local function fold_node(ir, node, opset)
  if node.op == "Shape" and node.domain == "" then
    local t = ir:type_of(node.inputs[1])
    if not t or not t.shape then return false end
    for _, d in ipairs(t.shape) do if math.type(d) ~= "integer" then return false end end
    local res = eval.run(node, { { elem = t.elem, dims = t.shape, values = {} } }, opset)
    if not res then return false end
    ir:add_const(node.outputs[1], res[1].elem, res[1].dims, res[1].values)
    return true
  end
  if node.op == "If" and node.domain == "" then return false end -- M.fold inlines it (if_inline)
  if #node.subgraphs > 0 or NONDETERMINISTIC[node.op] or NON_TENSOR[node.op] then return false end
  if node.domain ~= "" and node.domain ~= "com.microsoft" then return false end -- no CPU kernel known
  if node.op == "DequantizeLinear" or node.op == "QuantizeLinear" then return false end -- QDQ units stay
  if not all_inputs_const(ir, node) then return false end
  local ins, known = {}, true
  for i, x in ipairs(node.inputs) do
    if x ~= "" then
      local c = ir:const(x)
      local v = ir:values(x)
      if v and c.dims then ins[i] = { elem = c.elem, dims = c.dims, values = v } else known = false end
    end
  end
  local res = known and eval.run(node, ins, opset) or nil
  for k, o in ipairs(node.outputs) do
    if o ~= "" then
      local r = res and res[k]
      local t = ir.types[o]
      if r then
        ir:add_const(o, r.elem, r.dims, r.values)
      else
        -- constant all the same: ONNX Runtime computes it; mlsh knows its type and shape only
        ir:add_const(o, t and t.elem, t and t.shape and irlib.copy_list(t.shape) or nil, nil)
        ir.types[o] = t
      end
    end
  end
  return true
end

-- Output edges of node p among live nodes (one per reading input slot; one for a subgraph read).
local function out_edges(p, cons, sub_reads)
  local n = 0
  for _, o in ipairs(p.outputs) do
    for _, c in ipairs(o ~= "" and cons[o] or {}) do
      if not c.removed then
        local slots = 0
        for _, i in ipairs(c.inputs) do if i == o then slots = slots + 1 end end
        n = n + ((slots == 0 and sub_reads[o]) and 1 or slots)
      end
    end
  end
  return n
end

-- graph_utils.cc RemoveNodesWithOneOutputBottomUp, called by ConstantFolding on the producers of a
-- folded node: the start node goes unless it has several output edges or writes a graph output;
-- then each ancestor left without output edges (and writing no graph output) goes too.
local function remove_bottom_up(ir, start, ctx)
  local queue, head = { start }, 1
  while head <= #queue do
    local cur = queue[head]
    head = head + 1
    local graph_out = false
    for _, o in ipairs(cur.outputs) do if ctx.graph_outputs[o] then graph_out = true end end
    local edges = out_edges(cur, ctx.consumers, ctx.sub_reads)
    if not cur.removed and edges <= 1 and not graph_out then
      for _, x in ipairs(cur.inputs) do
        local p = x ~= "" and not is_const(ir, x) and ctx.producers[x]
        if p and not p.removed then queue[#queue + 1] = p end
      end
      if cur == start or edges == 0 then cur.removed = true end
    end
  end
end

-- `to_initializers(sub_ir)` (mlsh.onnx.passes) prepares an If branch for inlining.
function M.fold(ir, to_initializers)
  local opset = ir.opset[""] or 13
  local n = 0
  local ctx
  local added = {}
  for _, node in ipairs(ir.nodes) do
    if not node.removed and node.op == "If" and node.domain == "" and to_initializers then
      local done, new = if_inline.run(ir, node, to_initializers)
      if done then
        for _, x in ipairs(new) do added[#added + 1] = x end
        n = n + 1
      end
    elseif not node.removed and fold_node(ir, node, opset) then
      if node.op == "Shape" then
        ctx = ctx or context(ir)
        local p = ctx.producers[node.inputs[1]]
        if p and not p.removed then remove_bottom_up(ir, p, ctx) end
      end
      node.removed = true
      n = n + 1
    end
  end
  for _, x in ipairs(added) do ir.nodes[#ir.nodes + 1] = x end
  ir:compact()
  return n
end

return M
