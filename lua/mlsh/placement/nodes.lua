-- mlsh.placement.nodes — the common view placement works on: MIL ops, NeuralNetwork layers and
-- non-neural models as nodes {type, dtype, shapes, entry (the op table row), work ...} in runs
-- ("seqs") per function or sub-model, with the op-table lookups cached.
local optable = require "mlsh.optable"
local work = require "mlsh.placement.work"

local M = {}

-- ---- nodes: a common view of MIL ops, NN layers and non-neural models -----------------------------

local FLOAT = { fp16 = true, fp32 = true, fp64 = true, bf16 = true }

local function flex_kind(features)
  local kind = "static"
  for _, f in ipairs(features) do
    local fl = f.flexibility
    if fl and fl.kind == "range" then
      for _, r in ipairs(fl.ranges or {}) do
        if r[1] ~= r[2] then return "range" end
      end
    elseif fl and fl.kind == "enumerated" then
      kind = "enumerated"
    end
  end
  return kind
end
M.flex_kind = flex_kind

local function is_const_producer(p)
  return p and (p.type == "const" or p.type:match("^constexpr_")) and true or false
end

-- Decoded op argument or nil; never raises (a malformed immediate must not stop the simulation).
local function arg_of(op, name)
  local ok, v = pcall(op.arg, op, name)
  if ok then return v end
  return nil
end

local function numbers(v)
  if type(v) == "number" then return { v } end
  if type(v) ~= "table" then return nil end
  local out = {}
  for _, x in ipairs(v) do
    if type(x) == "number" then out[#out + 1] = x end
  end
  return #out > 0 and out or nil
end

local function max_of(list)
  local m
  for _, x in ipairs(list or {}) do
    if not m or x > m then m = x end
  end
  return m
end

-- The dtype an op computes in: fp32 if any non-const float tensor is fp32, else fp16 if any is,
-- else the first output's dtype (integer/bool plumbing).
local function compute_dtype(tensors)
  local seen, first_out = {}, nil
  for _, t in ipairs(tensors) do
    if not t.const and t.dtype then seen[t.dtype] = true end
    if t.role == "out" and not first_out then first_out = t.dtype end
  end
  if seen.fp32 or seen.fp64 then return seen.fp64 and not seen.fp32 and "fp64" or "fp32" end
  if seen.fp16 or seen.bf16 then return seen.fp16 and "fp16" or "bf16" end
  return first_out
end
M.compute_dtype_of = compute_dtype

-- Is x (C x H x W) broadcast against a C x 1 x 1 operand? (both non-const, shapes known)
local function channel_broadcast(a, b)
  if not (a and b and a.shape and b.shape and #a.shape >= 3 and #b.shape >= 3) then return false end
  local function hw(s) return (s[#s] or 1) * (s[#s - 1] or 1) end
  local function test(big, small)
    local c1, c2 = big.shape[#big.shape - 2], small.shape[#small.shape - 2]
    return hw(small.shape) == 1 and hw(big.shape) > 1 and c1 == c2 and c1 > 1
  end
  return test(a, b) or test(b, a)
end

local function mil_node(op, fn_name, fn_flex, where, entry, io_names)
  local node = { kind = "mil", ["function"] = fn_name, model = where, name = op.name, type = op.type, raw = op,
                 entry = entry, tensors = {}, by_param = {}, params = {} }
  local ok, inputs = pcall(op.inputs, op)
  for _, e in ipairs(ok and inputs or {}) do
    local producer = e.name and op._producers and op._producers[e.name]
    local t = { role = "in", param = e.param, dtype = e.dtype, shape = e.shape,
                const = e.value_msg ~= nil or is_const_producer(producer) }
    node.tensors[#node.tensors + 1] = t
    node.by_param[e.param] = node.by_param[e.param] or t
  end
  for _, o in ipairs(op.outputs or {}) do
    node.tensors[#node.tensors + 1] = { role = "out", dtype = o.dtype, shape = o.shape }
  end
  node.compute_dtype = compute_dtype(node.tensors)
  -- an fp32<->fp16 cast of a model input or output is the I/O conversion of an fp16 body: Core ML
  -- converts at the boundary of the unit that runs the body, so it follows its neighbour
  if op.type == "cast" and io_names then
    local x, out = node.by_param.x, op.outputs[1]
    local src = nil
    for _, e in ipairs(ok and inputs or {}) do
      if e.param == "x" then src = e.name end
    end
    local floats = x and out and FLOAT[x.dtype or ""] and FLOAT[out.dtype or ""]
    node.io_cast = floats and ((src and io_names[src]) or io_names[out.name]) and true or false
  end
  -- shape kind: every dim known -> static; else the function's flexibility (range/enumerated) or dynamic
  local all_known = true
  for _, t in ipairs(node.tensors) do
    if not t.const then
      for _, d in ipairs(t.shape or {}) do
        if d < 0 then all_known = false end
      end
    end
  end
  node.shape_kind = all_known and "static" or (fn_flex ~= "static" and fn_flex or "dynamic")
  -- parameters some conditions read
  local typ = op.type
  if typ == "conv" or typ == "conv_quantized" or typ == "conv_transpose" then
    node.params.dilations = numbers(arg_of(op, "dilations"))
  elseif typ == "max_pool" or typ == "avg_pool" or typ == "l2_pool" then
    node.params.kernel = numbers(arg_of(op, "kernel_sizes"))
    node.params.strides = numbers(arg_of(op, "strides"))
  elseif typ == "upsample_nearest_neighbor" or typ == "upsample_bilinear" then
    local h, w = arg_of(op, "scale_factor_height"), arg_of(op, "scale_factor_width")
    node.params.scale_factors = numbers({ type(h) == "number" and h or nil, type(w) == "number" and w or nil })
  elseif typ == "resize_bilinear" or typ == "resize_nearest_neighbor" or typ == "resize" then
    local x, out = node.by_param.x, op.outputs[1]
    if x and x.shape and out and out.shape and #x.shape >= 2 and #out.shape == #x.shape then
      local f = {}
      for i = #x.shape - 1, #x.shape do
        if x.shape[i] > 0 and out.shape[i] > 0 then f[#f + 1] = out.shape[i] / x.shape[i] end
      end
      node.params.scale_factors = #f > 0 and f or nil
    end
  elseif typ == "matmul" then
    node.params.transpose_x = arg_of(op, "transpose_x") == true
  end
  if entry and entry.category == "elementwise_binary" then
    local x, y = node.by_param.x, node.by_param.y
    node.channel_broadcast = x and y and not x.const and not y.const and channel_broadcast(x, y) or false
  end
  if entry and entry.category == "gather" then
    local x = node.by_param.x
    node.table_elems = x and x.shape and work.elems(x.shape) or nil
  end
  node.flops, node.bytes = work.mil(node)
  return node
end

local function nn_field(params, name)
  if not params then return nil end
  local ok, v = pcall(function() return params[name] end)
  if ok then return v end
  return nil
end

local function nn_node(layer, flex, where, weights_by_layer, entry)
  local node = { kind = "nn", name = layer.name, type = layer.type, raw = layer, model = where, entry = entry,
                 tensors = {}, by_param = {}, params = {}, shape_kind = flex,
                 weights = weights_by_layer[layer.name] }
  -- exact-rank layers may carry rank/shape hints
  for _, role in ipairs({ "inputTensor", "outputTensor" }) do
    local list = nn_field(layer.msg, role) or {}
    for _, t in ipairs(list) do
      local shape = {}
      local dims = t.dimValue or {}
      for i, d in ipairs(dims) do shape[i] = d end
      if #shape == 0 and (t.rank or 0) > 0 then
        for i = 1, t.rank do shape[i] = -1 end
      end
      node.tensors[#node.tensors + 1] = { role = role == "inputTensor" and "in" or "out", shape = shape }
    end
  end
  local p = layer.params
  if layer.type == "convolution" then
    node.params.dilations = numbers(nn_field(p, "dilationFactor"))
  elseif layer.type == "pooling" then
    if not nn_field(p, "globalPooling") then
      node.params.kernel = numbers(nn_field(p, "kernelSize"))
      node.params.strides = numbers(nn_field(p, "stride"))
    end
  elseif layer.type == "upsample" then
    node.params.scale_factors = numbers(nn_field(p, "scalingFactor")) or numbers(nn_field(p, "fractionalScalingFactor"))
  end
  node.flops, node.bytes = work.nn(node)
  return node
end

local NN_TYPES = { neuralNetwork = true, neuralNetworkClassifier = true, neuralNetworkRegressor = true }
local PIPELINE_TYPES = { pipeline = true, pipelineClassifier = true, pipelineRegressor = true }

-- Sequences of nodes, one per function / (sub-)model, in execution order.
-- optable.get copies its entry: look each type up once per simulation
local function lookup(cache, kind, typ)
  local key = kind .. ":" .. typ
  local e = cache[key]
  if e == nil then
    if kind == "mil" then e = optable.get(typ) else e = optable.layer(typ) end
    e = e or false
    cache[key] = e
  end
  return e or nil
end

local function collect(m, where, seqs, cache)
  local mt = m.model_type
  local fns = m:functions()
  if #fns > 0 then
    local multi = m.spec.description and #m.spec.description.functions > 0
    for _, fn in ipairs(fns) do
      local flex = flex_kind(multi and m:inputs(fn.name) or m:inputs())
      local seq = { ["function"] = fn.name, model = where, nodes = {} }
      local io_names = {}
      for _, i in ipairs(fn.inputs) do io_names[i.name] = true end
      for _, o in ipairs(fn.outputs or {}) do io_names[o] = true end
      for _, op in ipairs(fn.all_ops) do
        local e = lookup(cache, "mil", op.type)
        local is_const = (e and e.eligibility.ANE.status == "n/a") or (not e and op.type:match("^constexpr_"))
        if not is_const then seq.nodes[#seq.nodes + 1] = mil_node(op, fn.name, flex, where, e, io_names) end
      end
      seqs[#seqs + 1] = seq
    end
  elseif NN_TYPES[mt] then
    local flex = flex_kind(m:inputs())
    local wbl = {}
    for _, w in ipairs(m:weights()) do
      if w.layer then
        wbl[w.layer] = wbl[w.layer] or {}
        table.insert(wbl[w.layer], w)
      end
    end
    local seq = { model = where, nodes = {} }
    for _, layer in ipairs(m:layers()) do
      seq.nodes[#seq.nodes + 1] = nn_node(layer, flex, where, wbl, lookup(cache, "nn", layer.type))
    end
    seqs[#seqs + 1] = seq
  elseif PIPELINE_TYPES[mt] then
    local subs, names = m:submodels()
    for i, sub in ipairs(subs) do
      local label = (names and names[i] and names[i] ~= "") and names[i] or ("pipeline[" .. i .. "]")
      collect(sub, where and (where .. "/" .. label) or label, seqs, cache)
    end
  else
    -- trees, GLMs, SVMs, feature engineering...: one CPU step
    seqs[#seqs + 1] = { model = where, nodes = { { kind = "model", name = mt or "model", type = mt or "unknown",
      model = where, tensors = {}, by_param = {}, params = {}, flops = 1, bytes = 0 } } }
  end
  return seqs
end
M.collect_all = function(m) return collect(m, nil, {}, {}) end

M.collect, M.channel_broadcast, M.compute_dtype, M.max_of = collect, channel_broadcast, compute_dtype, max_of
return M
