-- mlsh.onnx.model — the user API of ONNX models, installed as core.model.formats.onnx so an ONNX
-- mlsh.Model answers the same calls as a Core ML one (m:inputs(), m:functions(), m:ops(),
-- m:weights(), m:info(), m:summary()) plus ONNX-specific ones:
--   m.ir_version m.opsets ({domain -> version}, "" = ai.onnx) m.producer ({name, version})
--   m.graph (the main graph as mlsh.onnx.graph tables) m:graph_functions() (model-local functions)
--   m:tensor(name) (an initializer of the main graph)
-- Loading this module is enough: formats are looked up per model by the core.
local core = require "mlsh.core"
local types = require "mlsh.onnx.types"
local graphs = require "mlsh.onnx.graph"

local M = {}
local methods, props = {}, {}
core.model.formats.onnx = { methods = methods, props = props }

local function cached(m, key, fn)
  local c = m:_cache()
  if c[key] == nil then c[key] = fn() end
  return c[key]
end

-- ---- properties ----------------------------------------------------------------------------------
function props.spec(m) return m:_spec() end
function props.format() return "onnx" end
function props.path(m) return m:_path() end
function props.spec_version() return nil end
function props.model_type() return "onnx" end
function props.is_updatable() return false end
function props.program() return nil end
function props.neural_network() return nil end
function props.default_function() return "main" end
function props.ir_version(m) return m:_spec().ir_version end

function props.opsets(m)
  return cached(m, "opsets", function()
    local out = {}
    for _, o in ipairs(m:_spec().opset_import) do
      local d = o.domain
      if d == "ai.onnx" then d = "" end
      out[d] = o.version
    end
    return out
  end)
end

function props.producer(m)
  local s = m:_spec()
  return { name = s.producer_name, version = s.producer_version }
end

function props.metadata(m)
  local s = m:_spec()
  local user = {}
  for _, kv in ipairs(s.metadata_props) do user[kv.key] = kv.value end
  return { author = "", license = "", short_description = s.doc_string, version = tostring(s.model_version),
           user_defined = user }
end

function props.graph(m) return cached(m, "graph", function() return graphs.from_model(m:_spec()) end) end

-- ---- features ------------------------------------------------------------------------------------
local function feature(vi)
  local t = vi.type or { kind = "unknown" }
  local f = { name = vi.name, kind = t.kind, optional = false }
  if t.kind == "tensor" or t.kind == "sparse_tensor" then
    f.dtype = types.dtype_name(t.elem)
    f.shape = t.shape
  end
  f.type = t
  return f
end
M.feature = feature

function methods.inputs(m)
  local g = props.graph(m)
  local out = {}
  for _, vi in ipairs(g.inputs) do
    if not g.initializers[vi.name] then out[#out + 1] = feature(vi) end
  end
  return out
end
function methods.outputs(m)
  local out = {}
  for i, vi in ipairs(props.graph(m).outputs) do out[i] = feature(vi) end
  return out
end
function methods.states() return {} end
function methods.training_inputs() return {} end

-- ---- ops -----------------------------------------------------------------------------------------
local Op = {}
Op.__index = Op
M.Op = Op

-- The value type of `name` as seen from graph g (value_info, graph inputs/outputs, initializers).
local function value_type(g, name)
  while g do
    local t = g.value_info[name]
    if t then return t end
    for _, list in ipairs({ g.inputs, g.outputs }) do
      for _, vi in ipairs(list) do if vi.name == name then return vi.type end end
    end
    local init = g.initializers[name]
    if init then return { kind = "tensor", elem = init.dtype, shape = init.dims } end
    g = g.parent
  end
  return nil
end

local function op_of(node, fname)
  local op = setmetatable({ node = node, type = node.op, name = node.name, domain = node.domain,
                            index = node.index, depth = node.graph.depth, msg = node.msg, ["function"] = fname }, Op)
  op.outputs = {}
  for i, o in ipairs(node.outputs) do
    local t = value_type(node.graph, o)
    op.outputs[i] = { name = o, dtype = t and types.dtype_name(t.elem), shape = t and t.shape }
  end
  op.blocks = {}
  for i, sg in ipairs(node.subgraphs) do op.blocks[i] = { attr = sg.attr, graph = sg.graph } end
  return op
end

function Op:inputs()
  local list = {}
  for i, name in ipairs(self.node.inputs) do
    local e = { param = i - 1, name = name ~= "" and name or nil }
    if e.name then
      local t = value_type(self.node.graph, name)
      if t then e.dtype, e.shape = types.dtype_name(t.elem), t.shape end
    end
    list[i] = e
  end
  return list
end

function Op:attr(name)
  local a = self.node.attrs[name]
  return a and a.value
end
function Op:attributes()
  local out = {}
  for k, a in pairs(self.node.attrs) do out[k] = a.value end
  return out
end
function Op:arg(i)
  if type(i) == "number" then return self.node.inputs[i + 1] end
  return self:attr(i)
end
function Op:__tostring()
  return string.format("%s%s %s (%s) -> %s", self.domain ~= "" and (self.domain .. "::") or "", self.type, self.name,
    table.concat(self.node.inputs, ", "), table.concat(self.node.outputs, ", "))
end

local function function_of(name, g, opset)
  local fn = { name = name, opset = opset, graph = g, inputs = {}, outputs = {}, ops = {}, all_ops = {},
    block_keys = {} }
  for _, vi in ipairs(g.inputs) do
    if not g.initializers[vi.name] then fn.inputs[#fn.inputs + 1] = feature(vi) end
  end
  for i, vi in ipairs(g.outputs) do fn.outputs[i] = feature(vi) end
  for i, n in ipairs(g.nodes) do fn.ops[i] = op_of(n, name) end
  graphs.walk(g, function(n) fn.all_ops[#fn.all_ops + 1] = op_of(n, name) end)
  return fn
end

-- The main graph as function "main", then model-local functions (named domain::name when they
-- have a domain, since a call site names both).
function methods.functions(m)
  return cached(m, "functions", function()
    local out = { function_of("main", props.graph(m), props.opsets(m)[""]) }
    for _, g in ipairs(methods.graph_functions(m)) do
      local fn = function_of(g.domain ~= "" and (g.domain .. "::" .. g.name) or g.name, g, nil)
      fn.domain = g.domain
      out[#out + 1] = fn
    end
    return out
  end)
end

function methods.graph_functions(m)
  return cached(m, "graph_functions", function()
    local out = {}
    for i, fm in ipairs(m:_spec().functions) do out[i] = graphs.from_function(fm) end
    return out
  end)
end

function methods.find_function(m, name)
  for _, fn in ipairs(methods.functions(m)) do if fn.name == name then return fn end end
  return nil
end

function methods.ops(m, fname)
  local out = {}
  for _, fn in ipairs(methods.functions(m)) do
    if not fname or fn.name == fname then
      for _, op in ipairs(fn.all_ops) do out[#out + 1] = op end
    end
  end
  return out
end

function methods.op_histogram(m, fname)
  local h = {}
  for _, op in ipairs(methods.ops(m, fname or "main")) do
    local k = op.domain ~= "" and (op.domain .. "::" .. op.type) or op.type
    h[k] = (h[k] or 0) + 1
  end
  return h
end

function methods.layers() return {} end
function methods.layer_histogram() return {} end
function methods.submodels() return {}, {} end

-- ---- weights -------------------------------------------------------------------------------------
local Weight = {}
Weight.__index = Weight
M.Weight = Weight

function Weight:values() return self.tensor:values_array(self._model) end
function Weight:raw() return self.tensor:raw(self._model) end

function methods.weights(m)
  return cached(m, "weights", function()
    local out = {}
    for _, t in ipairs(props.graph(m).init_order) do
      local w = setmetatable({ tensor = t, _model = m, name = t.name, dtype = types.dtype_name(t.dtype), shape = t.dims,
                               count = t.numel, bytes = t.bytes, storage = t.storage, op_type = "initializer" }, Weight)
      if t.storage == "external" then w.file, w.offset = t.external.location, t.external.offset
      elseif t.storage == "mapped" then w.file, w.offset = m:_path(), t.offset end
      out[#out + 1] = w
    end
    return out
  end)
end

function methods.tensor(m, name) return props.graph(m).initializers[name] end

function methods.info(m) return require("mlsh.onnx.info").build(m) end
function methods.summary(m) return require("mlsh.onnx.info").text(m) end

M.methods, M.props = methods, props
return M
