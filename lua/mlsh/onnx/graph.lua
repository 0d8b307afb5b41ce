-- mlsh.onnx.graph — an ONNX GraphProto as plain Lua tables every analysis works on (info, shape
-- inference, optimization passes, the EP predictor), and back to a GraphProto for surgery.
--   graph = {name, nodes = {node…}, inputs = {{name, type}}, outputs = {{name, type}},
--            initializers = {name -> Tensor}, init_order = {Tensor…}, sparse_initializers = n,
--            value_info = {name -> type}, parent = graph|nil, depth = 0 for the main graph, msg}
--   node  = {index, op, domain ("" = ai.onnx), name, inputs = {names ("" = omitted)}, outputs = {names},
--            attrs = {name -> attr}, attr_order = {names}, subgraphs = {{attr, graph}}, msg}
--   attr  = {name, type ("INT", "FLOATS", "GRAPH"…), value, ref}   (value: number, string, list,
--            Tensor, graph, list of those, or the raw Message for sparse tensors / type protos)
local types = require "mlsh.onnx.types"
local tensor = require "mlsh.onnx.tensor"

local M = {}

-- AttributeProto.type is missing in files from old exporters: infer it from the field present.
local function attr_type(a)
  local t = a.type
  if t and t ~= "UNDEFINED" then return t end
  for _, probe in ipairs({ { "f", "FLOAT" }, { "i", "INT" }, { "s", "STRING" }, { "t", "TENSOR" }, { "g", "GRAPH" },
                           { "sparse_tensor", "SPARSE_TENSOR" }, { "tp", "TYPE_PROTO" } }) do
    if a:has(probe[1]) then return probe[2] end
  end
  for _, probe in ipairs({ { "floats", "FLOATS" }, { "ints", "INTS" }, { "strings", "STRINGS" }, { "tensors",
    "TENSORS" },
                           { "graphs", "GRAPHS" }, { "sparse_tensors", "SPARSE_TENSORS" }, { "type_protos",
                             "TYPE_PROTOS" } }) do
    if a:count(probe[1]) > 0 then return probe[2] end
  end
  return "UNDEFINED"
end

local build_graph -- forward

local function decode_attr(a, g)
  local at = { name = a.name, type = attr_type(a) }
  if a.ref_attr_name ~= "" then at.ref = a.ref_attr_name end
  local t = at.type
  if t == "FLOAT" then at.value = a.f
  elseif t == "INT" then at.value = a.i
  elseif t == "STRING" then at.value = a.s
  elseif t == "TENSOR" then at.value = tensor.from_proto(a.t)
  elseif t == "GRAPH" then at.value = build_graph(a.g, g)
  elseif t == "FLOATS" then at.value = a.floats
  elseif t == "INTS" then at.value = a.ints
  elseif t == "STRINGS" then at.value = a.strings
  elseif t == "TENSORS" then
    at.value = {}
    for i, tm in ipairs(a.tensors) do at.value[i] = tensor.from_proto(tm) end
  elseif t == "GRAPHS" then
    at.value = {}
    for i, gm in ipairs(a.graphs) do at.value[i] = build_graph(gm, g) end
  elseif t == "SPARSE_TENSOR" then at.value = a.sparse_tensor
  elseif t == "SPARSE_TENSORS" then at.value = a.sparse_tensors
  elseif t == "TYPE_PROTO" then at.value = a.tp
  elseif t == "TYPE_PROTOS" then at.value = a.type_protos end
  return at
end

function M.node_from_proto(nm, g, index)
  local node = { index = index, op = nm.op_type, domain = nm.domain, name = nm.name, inputs = nm.input,
                 outputs = nm.output, attrs = {}, attr_order = {}, subgraphs = {}, msg = nm, graph = g }
  if node.domain == "ai.onnx" then node.domain = "" end
  for _, a in ipairs(nm.attribute) do
    local at = decode_attr(a, g)
    node.attrs[at.name] = at
    node.attr_order[#node.attr_order + 1] = at.name
    if at.type == "GRAPH" then node.subgraphs[#node.subgraphs + 1] = { attr = at.name, graph = at.value }
    elseif at.type == "GRAPHS" then
      for _, sg in ipairs(at.value) do node.subgraphs[#node.subgraphs + 1] = { attr = at.name, graph = sg } end
    end
  end
  return node
end

local function value_infos(list)
  local out = {}
  for i, vi in ipairs(list) do out[i] = { name = vi.name, type = types.type_of(vi.type) } end
  return out
end

function build_graph(gm, parent)
  local g = { name = gm.name, parent = parent, depth = parent and parent.depth + 1 or 0, msg = gm, nodes = {},
              initializers = {}, init_order = {}, value_info = {} }
  g.inputs = value_infos(gm.input)
  g.outputs = value_infos(gm.output)
  for _, vi in ipairs(value_infos(gm.value_info)) do g.value_info[vi.name] = vi.type end
  for i, tm in ipairs(gm.initializer) do
    local t = tensor.from_proto(tm)
    g.init_order[i] = t
    g.initializers[t.name] = t
  end
  g.sparse_initializers = gm:count("sparse_initializer")
  for i, nm in ipairs(gm.node) do g.nodes[i] = M.node_from_proto(nm, g, i) end
  return g
end

-- The main graph of a ModelProto Message (an empty graph when the model has none).
function M.from_model(spec)
  if not spec:has("graph") then
    return { name = "", depth = 0, nodes = {}, inputs = {}, outputs = {}, initializers = {}, init_order = {},
             value_info = {}, sparse_initializers = 0 }
  end
  return build_graph(spec.graph, nil)
end

-- A model-local FunctionProto as a graph (inputs/outputs are names without types).
function M.from_function(fm)
  local g = { name = fm.name, domain = fm.domain, depth = 0, msg = fm, nodes = {}, initializers = {}, init_order = {},
              value_info = {}, sparse_initializers = 0, is_function = true }
  g.inputs, g.outputs = {}, {}
  for i, n in ipairs(fm.input) do g.inputs[i] = { name = n } end
  for i, n in ipairs(fm.output) do g.outputs[i] = { name = n } end
  for _, vi in ipairs(value_infos(fm.value_info)) do g.value_info[vi.name] = vi.type end
  for i, nm in ipairs(fm.node) do g.nodes[i] = M.node_from_proto(nm, g, i) end
  return g
end

-- Walk every node of g and its subgraphs: fn(node, graph, depth).
function M.walk(g, fn)
  for _, n in ipairs(g.nodes) do
    fn(n, g, g.depth)
    for _, sg in ipairs(n.subgraphs) do M.walk(sg.graph, fn) end
  end
end

-- Every subgraph below g: count and the deepest nesting (g itself is depth 0).
function M.subgraph_stats(g)
  local count, max_depth = 0, 0
  M.walk(g, function(n)
    for _, sg in ipairs(n.subgraphs) do
      count = count + 1
      local d = sg.graph.depth - g.depth
      if d > max_depth then max_depth = d end
    end
  end)
  return count, max_depth
end

function M.key(node)
  if node.domain == "" then return node.op end
  return node.domain .. "::" .. node.op
end

-- Whether a name is a value produced in g or its ancestors as an initializer.
function M.find_initializer(g, name)
  while g do
    local t = g.initializers[name]
    if t then return t end
    g = g.parent
  end
  return nil
end

return M
