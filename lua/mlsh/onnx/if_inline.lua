-- mlsh.onnx.if_inline — ConstantFolding's handling of an `If` whose condition is a constant
-- initializer (onnxruntime/core/optimizer/constant_folding.cc ConstantFoldIfNode ->
-- core/graph/graph.cc Graph::InlineIfSubgraph, v1.20.0): the chosen branch's nodes replace the If.
-- As ORT does it: unique_id = GenerateNodeName("_if_then_branch" | "_if_else_branch"); the branch's
-- initializers (its Constant nodes included) and values are renamed unique_id .. "_" .. name
-- (GenerateNodeArgName), except the branch outputs, which become the If's outputs; the branch's
-- nodes are added in its GraphViewer order, named GenerateNodeName(unique_id .. "_" .. op_type)
-- (a taken name gets "_token_<n>", n from the graph's one counter); outer-scope names keep theirs.
--   if_inline.run(ir, node, to_initializers) -> true when the If was replaced
-- `to_initializers(sub_ir)` turns a branch's Constant nodes into initializers (mlsh.onnx.passes).
local irlib = require "mlsh.onnx.ir"
local partition = require "mlsh.onnx.partition"

local M = {}

local function node_name_taken(ir, name)
  if ir.generated_names[name] then return true end
  for _, n in ipairs(ir.nodes) do if not n.removed and n.name == name then return true end end
  return false
end

-- Graph::GenerateNodeName / GenerateNodeArgName: the base if free, else base_token_<counter>.
local function generate(ir, base, taken)
  ir.generated_names = ir.generated_names or {}
  ir.name_counter = ir.name_counter or 0
  local name = base
  while taken(ir, name) do
    name = base .. "_token_" .. ir.name_counter
    ir.name_counter = ir.name_counter + 1
  end
  ir.generated_names[name] = true
  return name
end
local function arg_taken(ir, name)
  return ir.generated_names[name] or ir.types[name] ~= nil or ir:const(name) ~= nil
end

-- A copy of subgraph g whose reads of outer names are renamed by map (nested subgraphs too).
local function rename_outer(g, map)
  local copy = {}
  for k, v in pairs(g) do copy[k] = v end
  local defined = {}
  for _, vi in ipairs(g.inputs) do defined[vi.name] = true end
  for name in pairs(g.initializers) do defined[name] = true end
  copy.nodes = {}
  for i, n in ipairs(g.nodes) do
    local nn = {}
    for k, v in pairs(n) do nn[k] = v end
    nn.inputs = {}
    for j, x in ipairs(n.inputs) do nn.inputs[j] = (not defined[x] and map[x]) or x end
    nn.subgraphs = {}
    for j, sg in ipairs(n.subgraphs or {}) do
      nn.subgraphs[j] = { attr = sg.attr, graph = rename_outer(sg.graph, map) }
    end
    for _, o in ipairs(n.outputs) do defined[o] = true end
    copy.nodes[i] = nn
  end
  return copy
end

-- The branch's nodes in GraphViewer order (reverse DFS from its leaves, by node index).
local function branch_order(sub)
  local index = {}
  for i, n in ipairs(sub.nodes) do index[n] = i end
  local links = partition.links({ nodes = sub.nodes, inputs = sub.inputs, initializers = sub.consts })
  local order = partition.ort_order(sub.nodes, links, index)
  if #order ~= #sub.nodes then return sub.nodes end
  return order
end

local function condition(ir, name)
  local v = name and name ~= "" and ir:const(name) and ir:values(name)
  if not v or #v ~= 1 then return nil end
  local c = v[1]
  if type(c) == "boolean" then return c end
  return c ~= 0
end

function M.run(ir, node, to_initializers)
  local cond = condition(ir, node.inputs[1])
  if cond == nil then return false end
  local want = cond and "then_branch" or "else_branch"
  local branch
  for _, sg in ipairs(node.subgraphs) do if sg.attr == want then branch = sg.graph end end
  if not branch then return false end
  local sub = irlib.from_graph(branch, ir.model, { opset = ir.opset, ir_version = ir.ir_version, parent = ir })
  to_initializers(sub)
  local unique = generate(ir, "_if_" .. want, node_name_taken)
  local map = {}
  for i, vi in ipairs(branch.outputs) do map[vi.name] = node.outputs[i] end
  local names = {}
  for name in pairs(sub.consts) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local c = sub.consts[name]
    local new = map[name] or generate(ir, unique .. "_" .. name, arg_taken)
    map[name] = new
    local cc = {}
    for k, v in pairs(c) do cc[k] = v end
    cc.name = new
    ir.consts[new] = cc
    ir.types[new] = sub.types[name] or ir.types[new]
  end
  ir.created_seq = ir.created_seq or 0
  local added = {}
  for _, n in ipairs(branch_order(sub)) do
    local ins, outs = {}, {}
    for j, x in ipairs(n.inputs) do ins[j] = (x ~= "" and map[x]) or x end
    for j, o in ipairs(n.outputs) do
      if o ~= "" and not map[o] then map[o] = generate(ir, unique .. "_" .. o, arg_taken) end
      outs[j] = o ~= "" and map[o] or ""
      if o ~= "" and sub.types[o] and not ir.types[outs[j]] then ir.types[outs[j]] = sub.types[o] end
    end
    ir.created_seq = ir.created_seq + 1
    local nn = { op = n.op, domain = n.domain, attrs = n.attrs, attr_order = n.attr_order, inputs = ins, outputs = outs,
                 name = generate(ir, unique .. "_" .. n.op, node_name_taken), created = ir.created_seq, subgraphs = {} }
    for j, sg in ipairs(n.subgraphs or {}) do
      nn.subgraphs[j] = { attr = sg.attr, graph = rename_outer(sg.graph, map) }
    end
    added[#added + 1] = nn
  end
  node.removed = true
  return true, added
end

return M
