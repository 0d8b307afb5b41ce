-- mlsh.onnx.info — `mlsh info` for ONNX models: one JSON-ready table and a text summary.
-- Fixed keys (a contract): format ir_version opsets producer{name,version} node_count op_histogram
-- node_count_including_subgraphs inputs outputs [{name, dtype, shape}] initializers{count, bytes}
-- constants{count, bytes} subgraphs{count, max_depth}. Extra keys: path, kind/elem of non-tensor
-- features, model_version, domain, graph_name, metadata, op_histogram_including_subgraphs,
-- initializers.{dtypes, external, sparse_count}, subgraphs.owner_ops, functions, value_info_count,
-- external_data{files, missing_files}.
-- Nothing here reads a tensor payload: byte counts come from lengths recorded at load time.
local core = require "mlsh.core"
local json = require "mlsh.json"
local types = require "mlsh.onnx.types"
local graphs = require "mlsh.onnx.graph"

local M = {}
local null, array, object = json.null, json.array, json.object

local function shape_json(shape)
  if not shape then return null end
  local out = array({})
  for i, d in ipairs(shape) do out[i] = d == false and null or d end
  return out
end

local function type_json(t)
  if not t then return { kind = "unknown" } end
  if t.kind == "tensor" or t.kind == "sparse_tensor" then
    return { kind = t.kind, dtype = t.elem and types.dtype_name(t.elem) or null, shape = shape_json(t.shape) }
  end
  local o = { kind = t.kind }
  if t.inner then o.elem = type_json(t.inner) end
  if t.key then o.key = types.dtype_name(t.key) end
  return o
end

local function feature_json(vi)
  local t = vi.type
  local o = { name = vi.name, dtype = null, shape = null, kind = t and t.kind or "unknown" }
  if t and (t.kind == "tensor" or t.kind == "sparse_tensor") then
    o.dtype = t.elem and types.dtype_name(t.elem) or null
    o.shape = shape_json(t.shape)
  elseif t and t.inner then
    o.elem = type_json(t.inner)
  end
  return o
end

-- What a Constant node holds: (tensor bytes or nil, bytes of the scalar/list forms). The facts
-- tools count only the `value` tensors, so those are `constants.count/bytes`; the value_float /
-- value_ints / value_string… forms are reported apart as `constants.other_bytes`.
local function constant_bytes(node)
  local tensor_bytes, other = nil, 0
  for _, name in ipairs(node.attr_order) do
    local a = node.attrs[name]
    if name == "value" and a.type == "TENSOR" then tensor_bytes = (tensor_bytes or 0) + (a.value.bytes or 0)
    elseif name == "value_float" then other = other + 4
    elseif name == "value_int" then other = other + 8
    elseif name == "value_floats" then other = other + 4 * #a.value
    elseif name == "value_ints" then other = other + 8 * #a.value
    elseif name == "value_string" then other = other + #a.value
    elseif name == "value_strings" then for _, str in ipairs(a.value) do other = other + #str end
    elseif name == "sparse_value" and a.value then
      local v = a.value:has("values") and a.value.values
      if v then other = other + (require("mlsh.onnx.tensor").from_proto(v).bytes or 0) end
    end
  end
  return tensor_bytes, other
end

-- Node counts and op histogram through every subgraph, Constant-node payloads, subgraph owners.
local function node_stats(g, o)
  local all_hist, all_count = object({}), 0
  local const_count, const_bytes, const_nodes, const_other = 0, 0, 0, 0
  local owners = object({})
  graphs.walk(g, function(n)
    all_count = all_count + 1
    local k = graphs.key(n)
    all_hist[k] = (all_hist[k] or 0) + 1
    if n.op == "Constant" and n.domain == "" then
      const_nodes = const_nodes + 1
      local tb, other = constant_bytes(n)
      if tb then const_count, const_bytes = const_count + 1, const_bytes + tb end
      const_other = const_other + other
    end
    if #n.subgraphs > 0 then owners[k] = (owners[k] or 0) + #n.subgraphs end
  end)
  o.node_count_including_subgraphs = all_count
  o.op_histogram_including_subgraphs = all_hist
  return { count = const_count, bytes = const_bytes, nodes = const_nodes, other_bytes = const_other }, owners
end

-- Initializer counts, bytes, dtypes and external files (also through subgraphs).
local function initializer_stats(m, g, o)
  local bytes, dtypes, external = 0, object({}), 0
  local files, file_set, missing = array({}), {}, array({})
  for _, t in ipairs(g.init_order) do
    bytes = bytes + (t.bytes or 0)
    local dn = types.onnx_name(t.dtype)
    dtypes[dn] = (dtypes[dn] or 0) + 1
    if t.storage == "external" then
      external = external + 1
      local loc = t.external.location or "?"
      if not file_set[loc] then
        file_set[loc] = true
        local size = core.onnx.size(m, loc)
        if size then files[#files + 1] = { path = loc, bytes = size }
        else missing[#missing + 1] = loc end
      end
    end
  end
  local init_count, all_bytes = 0, 0
  local function add_inits(sub)
    for _, t in ipairs(sub.init_order) do init_count, all_bytes = init_count + 1, all_bytes + (t.bytes or 0) end
    for _, n in ipairs(sub.nodes) do
      for _, sg in ipairs(n.subgraphs) do add_inits(sg.graph) end
    end
  end
  add_inits(g)
  o.initializers = { count = #g.init_order, bytes = bytes, dtypes = dtypes, external = external,
                     sparse_count = g.sparse_initializers, count_including_subgraphs = init_count,
                     bytes_including_subgraphs = all_bytes }
  if external > 0 then o.external_data = { files = files, missing_files = missing } end
end

function M.build(m)
  local s = m.spec
  local g = m.graph
  local o = { format = "onnx", path = m.path, ir_version = s:has("ir_version") and s.ir_version or null }
  o.opsets = object({})
  for d, v in pairs(m.opsets) do o.opsets[d] = v end
  o.producer = { name = s.producer_name, version = s.producer_version }
  o.domain, o.model_version, o.graph_name = s.domain, s.model_version, g.name or ""
  o.doc_string_len = #s.doc_string
  local md = object({})
  for _, kv in ipairs(s.metadata_props) do md[kv.key] = kv.value end
  o.metadata = md

  o.node_count = #g.nodes
  o.op_histogram = object({})
  for _, n in ipairs(g.nodes) do
    local k = graphs.key(n)
    o.op_histogram[k] = (o.op_histogram[k] or 0) + 1
  end
  local constants, owners = node_stats(g, o)

  o.inputs = array({})
  for _, vi in ipairs(g.inputs) do
    if not g.initializers[vi.name] then o.inputs[#o.inputs + 1] = feature_json(vi) end
  end
  o.outputs = array({})
  for i, vi in ipairs(g.outputs) do o.outputs[i] = feature_json(vi) end
  local count = 0
  for _ in pairs(g.value_info) do count = count + 1 end
  o.value_info_count = count

  initializer_stats(m, g, o)
  o.constants = constants
  local sc, sd = graphs.subgraph_stats(g)
  o.subgraphs = { count = sc, max_depth = sd, owner_ops = owners }

  o.functions = array({})
  for i, fg in ipairs(m:graph_functions()) do
    o.functions[i] = { name = fg.name, domain = fg.domain, node_count = #fg.nodes }
  end
  return o
end

function M.text(m)
  local o = M.build(m)
  local human, hist_str = require("mlsh.info").human_bytes, require("mlsh.info").hist_str
  local lines = {}
  local function add(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
  add("%s (onnx)", m.path)
  local ops = {}
  for d, v in pairs(o.opsets) do ops[#ops + 1] = (d == "" and "ai.onnx" or d) .. " " .. v end
  table.sort(ops)
  add("  IR version %s, opsets %s, made by %s %s", tostring(o.ir_version), table.concat(ops, ", "),
    o.producer.name ~= "" and o.producer.name or "?", o.producer.version)
  for _, kind in ipairs({ "inputs", "outputs" }) do
    for _, f in ipairs(o[kind]) do
      local t
      if f.kind == "tensor" then
        local dims = {}
        for i, d in ipairs(f.shape ~= null and f.shape or {}) do dims[i] = d == null and "?" or tostring(d) end
        t = string.format("%s[%s]", f.dtype ~= null and f.dtype or "?", f.shape == null and "?" or table.concat(dims,
          "x"))
      else
        t = f.kind
      end
      add("  %-7s %s: %s", kind:sub(1, -2), f.name, t)
    end
  end
  add("  graph %s: %d nodes (%s)", o.graph_name ~= "" and o.graph_name or "main", o.node_count,
    hist_str(o.op_histogram))
  if o.subgraphs.count > 0 then
    add("  %d subgraphs (max depth %d), %d nodes including them", o.subgraphs.count, o.subgraphs.max_depth,
      o.node_count_including_subgraphs)
  end
  add("  initializers: %d tensors, %s%s", o.initializers.count, human(o.initializers.bytes),
    o.initializers.external > 0 and string.format(" (%d in external data)", o.initializers.external) or "")
  if o.constants.nodes > 0 then
    add("  constants: %d Constant nodes, %d tensors of %s", o.constants.nodes, o.constants.count,
      human(o.constants.bytes))
  end
  for _, p in ipairs(o.external_data and o.external_data.missing_files or {}) do
    add("  warning: external data file %s is missing", p)
  end
  for _, f in ipairs(o.functions) do add("  function %s%s: %d nodes", f.domain ~= "" and (f.domain .. "::") or "",
    f.name, f.node_count) end
  return table.concat(lines, "\n")
end

return M
