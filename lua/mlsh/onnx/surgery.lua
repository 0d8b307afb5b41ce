-- mlsh.onnx.surgery — write a changed copy of an ONNX model; the input file is never touched.
--   surgery.save(model, out_path, {freeze = {{name, value}}, freeze_all = n, gelu_tanh = bool})
--     -> out_path, {frozen = {…}, gelu = n} | nil, err
--   surgery.materialize(model, spec) puts payloads the loader left in the mapped file back into a
--     ModelProto copy (and drops the mlsh_elided_* fields), so it encodes to a complete model.
-- Freezing replaces a dim_param (by name, by "input:axis", or every dynamic input dim) with a
-- dim_value in graph inputs, outputs and value_info, subgraphs included, the way ONNX Runtime's
-- make_dynamic_shape_fixed does. The GELU rewrite replaces each Erf-GELU of the main graph by the
-- tanh form (mlsh.onnx.gelu), new constants as initializers. The file is written atomically.
local core = require "mlsh.core"
local gelu = require "mlsh.onnx.gelu"
local types = require "mlsh.onnx.types"

local M = {}
local P = core.proto

-- Every TensorProto message below a message, with a visitor.
local function each_tensor(msg, fn, depth)
  depth = depth or 0
  if depth > 80 then return end
  local tn = msg:typename()
  if tn == "onnx.TensorProto" then fn(msg) return end
  if tn == "onnx.ModelProto" then
    if msg:has("graph") then each_tensor(msg.graph, fn, depth + 1) end
    for _, f in ipairs(msg.functions) do each_tensor(f, fn, depth + 1) end
    for _, t in ipairs(msg.training_info) do
      if t:has("initialization") then each_tensor(t.initialization, fn, depth + 1) end
      if t:has("algorithm") then each_tensor(t.algorithm, fn, depth + 1) end
    end
  elseif tn == "onnx.GraphProto" then
    for _, t in ipairs(msg.initializer) do fn(t) end
    for _, s in ipairs(msg.sparse_initializer) do each_tensor(s, fn, depth + 1) end
    for _, n in ipairs(msg.node) do each_tensor(n, fn, depth + 1) end
  elseif tn == "onnx.FunctionProto" then
    for _, n in ipairs(msg.node) do each_tensor(n, fn, depth + 1) end
    for _, a in ipairs(msg.attribute_proto) do each_tensor(a, fn, depth + 1) end
  elseif tn == "onnx.NodeProto" then
    for _, a in ipairs(msg.attribute) do each_tensor(a, fn, depth + 1) end
  elseif tn == "onnx.AttributeProto" then
    if msg:has("t") then fn(msg.t) end
    for _, t in ipairs(msg.tensors) do fn(t) end
    if msg:has("g") then each_tensor(msg.g, fn, depth + 1) end
    for _, g in ipairs(msg.graphs) do each_tensor(g, fn, depth + 1) end
    if msg:has("sparse_tensor") then each_tensor(msg.sparse_tensor, fn, depth + 1) end
    for _, s in ipairs(msg.sparse_tensors) do each_tensor(s, fn, depth + 1) end
  elseif tn == "onnx.SparseTensorProto" then
    if msg:has("values") then fn(msg.values) end
    if msg:has("indices") then fn(msg.indices) end
  end
end

function M.materialize(model, spec)
  local err
  each_tensor(spec, function(t)
    if err or not t:has("mlsh_elided_length") then return end
    local bytes, e = core.onnx.bytes(model, nil, t.mlsh_elided_offset, t.mlsh_elided_length)
    if not bytes then err = e return end
    -- float_data / double_data payloads are little-endian like raw_data, which takes precedence
    t.raw_data = bytes
    t:clear("mlsh_elided_field")
    t:clear("mlsh_elided_offset")
    t:clear("mlsh_elided_length")
  end)
  if err then return nil, err end
  return spec
end

-- ---- freezing ------------------------------------------------------------------------------------------
local function each_value_info(g, fn, depth)
  depth = depth or 0
  if depth > 80 then return end
  for _, list in ipairs({ g.input, g.output, g.value_info }) do
    for _, vi in ipairs(list) do fn(vi, g) end
  end
  for _, n in ipairs(g.node) do
    for _, a in ipairs(n.attribute) do
      if a:has("g") then each_value_info(a.g, fn, depth + 1) end
      for _, sg in ipairs(a.graphs) do each_value_info(sg, fn, depth + 1) end
    end
  end
end

local function tensor_dims(vi)
  local tp = vi:has("type") and vi.type
  if not tp or tp:which("tensor_type") ~= "tensor_type" then return nil end
  local tt = tp.tensor_type
  return tt:has("shape") and tt.shape.dim or nil
end

-- Apply freeze specs to a GraphProto message; returns {name -> value} actually applied.
function M.freeze_proto(g, freeze, freeze_all)
  local symbols, applied = {}, {}
  local inits = {}
  for _, t in ipairs(g.initializer) do inits[t.name] = true end
  for _, f in ipairs(freeze or {}) do
    local input, axis = f.name:match("^(.+):(%d+)$")
    if input then
      local found = false
      for _, vi in ipairs(g.input) do
        local dims = vi.name == input and tensor_dims(vi)
        if dims then
          local d = dims[tonumber(axis) + 1]
          if not d then return nil, "--freeze " .. f.name .. ": input " .. input .. " has no axis " .. axis end
          if d:which("dim_param") == "dim_param" then symbols[d.dim_param] = f.value end
          d.dim_value = f.value
          found = true
        end
      end
      if not found then return nil, "--freeze " .. f.name .. ": no input named " .. input end
      applied[f.name] = f.value
    else
      symbols[f.name] = f.value
    end
  end
  if freeze_all then
    for _, vi in ipairs(g.input) do
      local dims = not inits[vi.name] and tensor_dims(vi)
      for i, d in ipairs(dims or {}) do
        if d:which("dim_value") ~= "dim_value" or d.dim_value < 1 then
          if d:which("dim_param") == "dim_param" then symbols[d.dim_param] = freeze_all end
          d.dim_value = freeze_all
          applied[vi.name .. ":" .. (i - 1)] = freeze_all
        end
      end
    end
  end
  local used = {}
  each_value_info(g, function(vi)
    for _, d in ipairs(tensor_dims(vi) or {}) do
      if d:which("dim_param") == "dim_param" and symbols[d.dim_param] then
        used[d.dim_param] = true
        d.dim_value = symbols[d.dim_param]
      end
    end
  end)
  for _, f in ipairs(freeze or {}) do
    if not f.name:find(":%d+$") then
      if not used[f.name] then return nil, "--freeze " .. f.name .. ": no dim is named " .. f.name end
      applied[f.name] = f.value
    end
  end
  return applied
end

-- ---- GELU rewrite on messages -----------------------------------------------------------------------
local function const_tensor(name, elem, value)
  local t = P.new("onnx.TensorProto")
  t.name = name
  t.data_type = elem
  if elem == types.FLOAT16 then t.raw_data = core.array.new({ value }):encode("fp16")
  elseif elem == types.DOUBLE then t.raw_data = string.pack("<d", value)
  else t.data_type = types.FLOAT; t.raw_data = string.pack("<f", value) end
  return t
end

function M.gelu_proto(g_msg, graph, model)
  local matches = gelu.find(graph, gelu.stored_values(graph, model))
  if #matches == 0 then return 0 end
  local by_last, skip = {}, {}
  for _, mt in ipairs(matches) do
    by_last[mt.last] = mt
    for _, n in ipairs(mt.nodes) do skip[n] = true end
  end
  local elem_of = function(x)
    local t = graph.value_info[x]
    if t and t.elem then return t.elem end
    for _, vi in ipairs(graph.inputs) do if vi.name == x and vi.type then return vi.type.elem end end
    return types.FLOAT
  end
  local new_nodes, new_inits = {}, {}
  local counter = 0
  local function fresh(base)
    counter = counter + 1
    return string.format("%s__gelu_tanh_%d", base, counter)
  end
  for i, n in ipairs(graph.nodes) do
    local msg = g_msg.node[i]
    if not skip[n] then
      new_nodes[#new_nodes + 1] = msg
    elseif by_last[n] then
      local mt = by_last[n]
      local elem = elem_of(mt.x)
      local names = { x = mt.x, y = mt.y }
      local function name_of(sym)
        if names[sym] then return names[sym] end
        local v = sym:match("^c:(.*)$")
        names[sym] = fresh(mt.y)
        if v then new_inits[#new_inits + 1] = const_tensor(names[sym], elem, tonumber(v)) end
        return names[sym]
      end
      for _, spec in ipairs(gelu.TANH_NODES) do
        local nm = P.new("onnx.NodeProto")
        nm.op_type = spec[1]
        local ins = {}
        for k, s in ipairs(spec[2]) do ins[k] = name_of(s) end
        nm.input = ins
        nm.output = { name_of(spec[3]) }
        nm.name = fresh((n.name ~= "" and n.name or mt.y) .. "_" .. spec[1])
        new_nodes[#new_nodes + 1] = nm
      end
    end
  end
  g_msg.node = new_nodes
  for _, t in ipairs(new_inits) do
    local slot = g_msg:add("initializer")
    slot.name, slot.data_type, slot.raw_data = t.name, t.data_type, t.raw_data
  end
  return #matches
end

function M.save(model, out_path, opts)
  opts = opts or {}
  if out_path == model.path then return nil, out_path .. ": refusing to overwrite the input model" end
  local spec = model.spec:copy()
  local ok, err = M.materialize(model, spec)
  if not ok then return nil, err end
  core.onnx.mark_bytes_present(spec) -- before anything copies a sub-message through its encoding
  local report = {}
  if spec:has("graph") then
    local g = spec.graph
    if opts.freeze or opts.freeze_all then
      local applied, e = M.freeze_proto(g, opts.freeze, opts.freeze_all)
      if not applied then error("usage: " .. e, 0) end
      report.frozen = applied
    end
    if opts.gelu_tanh then report.gelu = M.gelu_proto(g, model.graph, model) end
  end
  core.onnx.mark_bytes_present(spec)
  local wrote, werr = core.fs.write_atomic(out_path, spec:encode())
  if not wrote then return nil, werr end
  return out_path, report
end

return M
