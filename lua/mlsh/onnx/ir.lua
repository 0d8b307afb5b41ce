-- mlsh.onnx.ir — a mutable working copy of a graph for the optimization passes, shape inference
-- and the EP predictor (the loaded model is never changed).
--   ir = {nodes = {node…}, consts = {name -> const}, inputs, outputs, types = {name -> type},
--         opset = {domain -> version}, ir_version, parent = outer ir | nil, graph = source graph}
--   node  = {op, domain, name, inputs, outputs, attrs, attr_order, subgraphs, index (0-based index
--            in the stored graph, nil for nodes a pass created), src (the stored node)}
--   const = {name, elem, dims, values (exact Lua numbers; nil when not decoded), tensor (the
--            stored Tensor, if any), external = bool, folded = bool}
--   type  = {elem, shape}   (shape: list of integer | string | false, or nil for unknown rank)
-- A const is a *constant initializer* in ONNX Runtime's sense: an initializer that a graph input
-- cannot override (IR >= 4 lets a graph input of the same name override it).
local types = require "mlsh.onnx.types"

local M = {}
local IR = {}
IR.__index = IR
M.IR = IR

M.MAX_VALUES = 4096 -- constants with more elements keep their values unread

local function copy_list(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  return out
end
M.copy_list = copy_list

function M.new_node(op, inputs, outputs, attrs, extra)
  local n = { op = op, domain = "", name = "", inputs = inputs, outputs = outputs, attrs = {}, attr_order = {},
              subgraphs = {} }
  for k, v in pairs(attrs or {}) do
    n.attrs[k] = v
    n.attr_order[#n.attr_order + 1] = k
  end
  table.sort(n.attr_order)
  for k, v in pairs(extra or {}) do n[k] = v end
  return n
end

-- Attribute helpers: a.value of the named attribute, or the default.
function M.attr(node, name, default)
  local a = node.attrs[name]
  if a == nil or a.value == nil then return default end
  return a.value
end

-- Build the working copy of graph g (from mlsh.onnx.graph) for `model` (to read small payloads).
function M.from_graph(g, model, opts)
  opts = opts or {}
  local ir = setmetatable({ nodes = {}, consts = {}, types = {}, graph = g, model = model, parent = opts.parent,
                            opset = opts.opset or {}, ir_version = opts.ir_version or 8, counter = 0 }, IR)
  local overridable = {}
  if ir.ir_version >= 4 then
    for _, vi in ipairs(g.inputs) do overridable[vi.name] = true end
  end
  ir.inputs, ir.outputs = {}, {}
  for i, vi in ipairs(g.inputs) do
    if not (g.initializers[vi.name] and not overridable[vi.name]) then
      ir.inputs[#ir.inputs + 1] = { name = vi.name, type = vi.type, index = i }
    end
    if vi.type and vi.type.kind == "tensor" then
      ir.types[vi.name] = { elem = vi.type.elem, shape = vi.type.shape and copy_list(vi.type.shape) }
    end
  end
  for i, vi in ipairs(g.outputs) do ir.outputs[i] = { name = vi.name, type = vi.type } end
  for name, t in pairs(g.value_info) do
    if t.kind == "tensor" then ir.types[name] = { elem = t.elem, shape = t.shape and copy_list(t.shape) } end
  end
  for _, t in ipairs(g.init_order) do
    if not overridable[t.name] then
      ir.consts[t.name] = { name = t.name, elem = t.dtype, dims = copy_list(t.dims), tensor = t,
                            external = t.storage == "external" }
      ir.types[t.name] = { elem = t.dtype, shape = copy_list(t.dims) }
    end
  end
  for i, n in ipairs(g.nodes) do
    ir.nodes[i] = { op = n.op, domain = n.domain, name = n.name, inputs = copy_list(n.inputs),
      outputs = copy_list(n.outputs),
                    attrs = n.attrs, attr_order = n.attr_order, subgraphs = n.subgraphs, index = i - 1, src = n }
  end
  return ir
end

-- A copy that passes may change without touching this one (nodes, constants and types are
-- copied one level deep; attributes and tensors are shared, as nothing changes them in place).
function IR:clone()
  local c = setmetatable({}, IR)
  for k, v in pairs(self) do c[k] = v end
  c.nodes, c.consts, c.types = {}, {}, {}
  for i, n in ipairs(self.nodes) do
    local nn = {}
    for k, v in pairs(n) do nn[k] = v end
    nn.inputs, nn.outputs = copy_list(n.inputs), copy_list(n.outputs)
    c.nodes[i] = nn
  end
  for k, v in pairs(self.consts) do
    local cc = {}
    for kk, vv in pairs(v) do cc[kk] = vv end
    c.consts[k] = cc
  end
  for k, v in pairs(self.types) do c.types[k] = { elem = v.elem, shape = v.shape and copy_list(v.shape) } end
  c.inputs = {}
  for i, vi in ipairs(self.inputs) do c.inputs[i] = { name = vi.name, type = vi.type, index = vi.index } end
  return c
end

-- The constant initializer `name` (looking into enclosing graphs), or nil.
function IR:const(name)
  local ir = self
  while ir do
    local c = ir.consts[name]
    if c then return c end
    ir = ir.parent
  end
  return nil
end

-- Exact values of a constant (decoded on first use, small tensors only), or nil.
function IR:values(name, max)
  local c = self:const(name)
  if not c then return nil end
  if c.values == nil and c.tensor and not c.unreadable then
    local n = types.numel(c.dims) or math.huge
    if n <= (max or M.MAX_VALUES) then
      c.values = c.tensor:values(self.model, max or M.MAX_VALUES)
      if not c.values then c.unreadable = true end
    end
  end
  return c.values
end

function IR:type_of(name)
  local ir = self
  while ir do
    local t = ir.types[name]
    if t then return t end
    ir = ir.parent
  end
  return nil
end

function IR:add_const(name, elem, dims, values, extra)
  local c = { name = name, elem = elem, dims = dims, values = values, folded = true }
  for k, v in pairs(extra or {}) do c[k] = v end
  self.consts[name] = c
  self.types[name] = { elem = elem, shape = dims and copy_list(dims) or nil }
  return c
end

function IR:fresh(prefix)
  self.counter = self.counter + 1
  return string.format("%s__mlsh_%d", prefix or "v", self.counter)
end

-- Graph output names as a set.
function IR:output_set()
  local s = {}
  for _, o in ipairs(self.outputs) do s[o.name] = true end
  return s
end

-- Names read by nodes of the subgraphs of `node` that come from outside them.
local function implicit_reads(node, out)
  for _, sg in ipairs(node.subgraphs or {}) do
    local defined = {}
    local g = sg.graph
    for _, vi in ipairs(g.inputs) do defined[vi.name] = true end
    for name in pairs(g.initializers) do defined[name] = true end
    for _, n in ipairs(g.nodes) do
      for _, i in ipairs(n.inputs) do if i ~= "" and not defined[i] then out[i] = true end end
      implicit_reads(n, out)
      for _, o in ipairs(n.outputs) do defined[o] = true end
    end
  end
  return out
end
M.implicit_reads = implicit_reads

-- Consumers of every value: {name -> {node…}}, plus a set of names read by subgraphs.
function IR:consumers()
  local cons, sub = {}, {}
  for _, n in ipairs(self.nodes) do
    for _, i in ipairs(n.inputs) do
      if i ~= "" then
        local l = cons[i]
        if not l then l = {}; cons[i] = l end
        l[#l + 1] = n
      end
    end
    if n.subgraphs and #n.subgraphs > 0 then
      for name in pairs(implicit_reads(n, {})) do
        sub[name] = true
        local l = cons[name]
        if not l then l = {}; cons[name] = l end
        l[#l + 1] = n
      end
    end
  end
  return cons, sub
end

function IR:producers()
  local prod = {}
  for _, n in ipairs(self.nodes) do
    for _, o in ipairs(n.outputs) do if o ~= "" then prod[o] = n end end
  end
  return prod
end

-- Drop nodes marked removed; renumbering is not needed (nodes keep their stored index).
function IR:compact()
  local out = {}
  for _, n in ipairs(self.nodes) do if not n.removed then out[#out + 1] = n end end
  self.nodes = out
end

-- Replace every use of value `old` by `new` (node inputs and graph outputs are left alone when
-- keep_outputs; subgraph reads are not rewritten, so callers check them first).
function IR:rename_uses(old, new)
  for _, n in ipairs(self.nodes) do
    for i, x in ipairs(n.inputs) do if x == old then n.inputs[i] = new end end
  end
end

-- Re-sort nodes topologically (stable: stored order where possible), after passes inserted nodes.
function IR:toposort()
  local prod = self:producers()
  local indeg, users = {}, {}
  for _, n in ipairs(self.nodes) do
    local seen = {}
    indeg[n] = 0
    local reads = {}
    for _, i in ipairs(n.inputs) do reads[#reads + 1] = i end
    if n.subgraphs and #n.subgraphs > 0 then for name in pairs(implicit_reads(n,
      {})) do reads[#reads + 1] = name end end
    for _, i in ipairs(reads) do
      local p = prod[i]
      if p and p ~= n and not seen[p] then
        seen[p] = true
        indeg[n] = indeg[n] + 1
        users[p] = users[p] or {}
        users[p][#users[p] + 1] = n
      end
    end
  end
  local order, ready = {}, {}
  local pos = {}
  for i, n in ipairs(self.nodes) do pos[n] = i end
  for _, n in ipairs(self.nodes) do if indeg[n] == 0 then ready[#ready + 1] = n end end
  -- a small binary heap on stored position keeps the order stable
  local function push(n)
    ready[#ready + 1] = n
    local i = #ready
    while i > 1 do
      local p = i // 2
      if pos[ready[p]] <= pos[ready[i]] then break end
      ready[p], ready[i] = ready[i], ready[p]
      i = p
    end
  end
  local function pop()
    local top = ready[1]
    local last = table.remove(ready)
    if #ready > 0 then
      ready[1] = last
      local i = 1
      while true do
        local l, r, m = 2 * i, 2 * i + 1, i
        if l <= #ready and pos[ready[l]] < pos[ready[m]] then m = l end
        if r <= #ready and pos[ready[r]] < pos[ready[m]] then m = r end
        if m == i then break end
        ready[m], ready[i] = ready[i], ready[m]
        i = m
      end
    end
    return top
  end
  local heap = ready
  ready = {}
  for _, n in ipairs(heap) do push(n) end
  while #ready > 0 do
    local n = pop()
    order[#order + 1] = n
    for _, u in ipairs(users[n] or {}) do
      indeg[u] = indeg[u] - 1
      if indeg[u] == 0 then push(u) end
    end
  end
  if #order == #self.nodes then self.nodes = order end -- a cycle: leave the stored order
end

return M
