-- mlsh.model.coreml — the user API over a loaded model: features, functions, ops, layers, pipelines,
-- weights. It installs methods and property getters on the mlsh.Model metatable (core.model),
-- and the same functions serve pipeline sub-models (plain tables wrapping a spec Message).
local core = require "mlsh.core"
local types = require "mlsh.types"

local M = {}
-- The one method table of Core ML models (every container format but ONNX): methods[k] is m:k(),
-- props[k](m) is m.k. A new Model method goes here (function methods.name(m, ...) ... end).
local methods, props = {}, {}
for k, f in pairs(core.model.raw) do methods[k] = f end
M.methods, M.props = methods, props
M.api = { methods = methods, props = props }

-- A "view" is anything with :spec() and :root() (the Model userdata that owns weight files).
local SubModel = {}
SubModel.__index = function(self, k)
  local p = props[k]
  if p then return p(self) end
  return SubModel[k] or methods[k]
end
local function submodel(spec, root, path)
  return setmetatable({ _spec_msg = spec, _root = root, _where = path }, SubModel)
end

local function spec_of(m)
  if getmetatable(m) == SubModel then return m._spec_msg end
  return m:_spec()
end
local function root_of(m)
  if getmetatable(m) == SubModel then return m._root end
  return m
end
local function cache_of(m)
  if getmetatable(m) == SubModel then
    rawset(m, "_c", rawget(m, "_c") or {})
    return rawget(m, "_c")
  end
  return m:_cache()
end
local function cached(m, key, fn)
  local c = cache_of(m)
  if c[key] == nil then c[key] = fn() end
  return c[key]
end

-- ---- model-level properties ----------------------------------------------------------------------
M.TYPE_FIELD_MIN = 200 -- Model.Type oneof members have field numbers >= 200

function props.spec(m) return spec_of(m) end
function props.format(m) return getmetatable(m) == SubModel and "submodel" or m:_format() end
function props.path(m) return getmetatable(m) == SubModel and m._where or m:_path() end
function props.spec_version(m) return spec_of(m).specificationVersion end
function props.is_updatable(m) return spec_of(m).isUpdatable end

function props.model_type(m)
  local s = spec_of(m)
  for _, name in ipairs(s:present()) do
    local f = nil
    for _, fd in ipairs(cached(m, "fields", function() return s:fields() end)) do
      if fd.name == name then f = fd end
    end
    if f and f.number >= M.TYPE_FIELD_MIN then return name end
  end
  -- a Type member this schema does not name still reports its field number
  for _, u in ipairs(s:unknown()) do
    if u.number >= M.TYPE_FIELD_MIN and u.wire == 2 then return "field_" .. u.number end
  end
  return nil
end

function props.program(m)
  local s = spec_of(m)
  return s:has("mlProgram") and s.mlProgram or nil
end

function props.metadata(m)
  local d = spec_of(m).description
  local md = d and d.metadata
  local user = {}
  if md then
    local map = md:map("userDefined")
    for k, v in pairs(map) do user[k] = v end
  end
  return {
    author = md and md.author or "", license = md and md.license or "",
    short_description = md and md.shortDescription or "", version = md and md.versionString or "",
    user_defined = user,
  }
end

function props.default_function(m)
  local d = spec_of(m).description
  local name = d and d.defaultFunctionName or ""
  if name ~= "" then return name end
  local fns = m:functions()
  return fns[1] and fns[1].name or nil
end

-- ---- features ------------------------------------------------------------------------------------
local function feature_list(list)
  local out = {}
  for i, fd in ipairs(list or {}) do out[i] = types.feature(fd) end
  return out
end

-- The description of function `fname` (multi-function models), else the model's own.
local function description_for(m, fname)
  local d = spec_of(m).description
  if not d then return nil end
  if fname then
    for _, fd in ipairs(d.functions) do
      if fd.name == fname then return fd, true end
    end
  end
  return d, false
end

function methods.inputs(m, fname)
  local d, isfn = description_for(m, fname)
  if not d then return {} end
  return feature_list(isfn and d.input or d.input)
end
function methods.outputs(m, fname)
  local d = description_for(m, fname)
  return d and feature_list(d.output) or {}
end
function methods.states(m, fname)
  local d = description_for(m, fname)
  return d and feature_list(d.state) or {}
end
function methods.training_inputs(m)
  local d = spec_of(m).description
  return d and feature_list(d.trainingInput) or {}
end

-- ---- ML program functions and ops ----------------------------------------------------------------
local Op = {}
Op.__index = Op
M.Op = Op

local function op_name(msg)
  local attrs = msg:map("attributes")
  local v = attrs.name
  if v then
    local val = types.value(v)
    if type(val) == "string" then return val end
    if type(val) == "table" and type(val[1]) == "string" then return val[1] end
  end
  local outs = msg.outputs
  return outs[1] and outs[1].name or ""
end

local function build_ops(block, fn, symbols, depth, out_all)
  local ops = {}
  for _, nv in ipairs(block.inputs) do symbols[nv.name] = types.value_type(nv.type) end
  for i, msg in ipairs(block.operations) do
    local op = setmetatable({ msg = msg, type = msg.type, index = i, ["function"] = fn.name, depth = depth }, Op)
    op.name = op_name(msg)
    op.outputs = {}
    for j, nv in ipairs(msg.outputs) do
      local t = types.value_type(nv.type)
      symbols[nv.name] = t
      op.outputs[j] = { name = nv.name, dtype = t.dtype, shape = t.shape, kind = t.kind }
    end
    op._symbols = symbols
    ops[#ops + 1] = op
    out_all[#out_all + 1] = op
    op.blocks = {}
    for k, b in ipairs(msg.blocks) do
      op.blocks[k] = { inputs = b.inputs, outputs = b.outputs, ops = build_ops(b, fn, symbols, depth + 1, out_all) }
    end
  end
  return ops
end

-- Inputs as a list of {param=, name=|value=, dtype=, shape=}; a parameter bound to several values
-- (e.g. concat's `values`) gives one entry per binding.
function Op:inputs()
  if self._inputs then return self._inputs end
  local list = {}
  local inputs, keys = self.msg:map("inputs")
  for _, param in ipairs(keys) do
    for _, b in ipairs(inputs[param].arguments) do
      local e = { param = param }
      local which = b:which("name")
      if which == "name" then
        e.name = b.name
        local t = self._symbols[b.name]
        if t then e.dtype, e.shape = t.dtype, t.shape end
      elseif which == "value" then
        local t = types.value_type(b.value.type)
        e.dtype, e.shape, e.value_msg = t.dtype, t.shape, b.value
        if b.value:has("immediateValue") then e.value = types.value(b.value) end
      end
      list[#list + 1] = e
    end
  end
  self._inputs = list
  return list
end

-- The first binding of a named parameter (input or attribute), decoded when it is an immediate.
function Op:arg(param)
  for _, e in ipairs(self:inputs()) do
    if e.param == param then
      if e.value ~= nil then return e.value end
      if e.name then
        local producer = self._producers and self._producers[e.name]
        if producer and producer.type == "const" then return producer:attr("val") end
        return nil, e.name
      end
    end
  end
  return self:attr(param)
end

function Op:attr(name)
  local v = self.msg:get("attributes", name)
  if v and v:has("immediateValue") then return types.value(v) end
  return nil
end

function Op:attributes()
  local out = {}
  local attrs, keys = self.msg:map("attributes")
  for _, k in ipairs(keys) do
    local v = attrs[k]
    if v:has("immediateValue") then out[k] = types.value(v)
    elseif v:has("blobFileValue") then out[k] = { blob = v.blobFileValue.fileName, offset = v.blobFileValue.offset } end
  end
  return out
end

function Op:__tostring()
  local outs = {}
  for i, o in ipairs(self.outputs) do outs[i] = o.name .. ":" .. types.type_string(o) end
  return string.format("%s %s -> %s", self.type, self.name, table.concat(outs, ", "))
end

function methods.functions(m)
  return cached(m, "functions", function()
    local prog = props.program(m)
    if not prog then return {} end
    local fns, keys = prog:map("functions")
    local out = {}
    for _, name in ipairs(keys) do
      local fmsg = fns[name]
      local fn = { name = name, opset = fmsg.opset, msg = fmsg, inputs = {} }
      for i, nv in ipairs(fmsg.inputs) do
        local t = types.value_type(nv.type)
        fn.inputs[i] = { name = nv.name, dtype = t.dtype, shape = t.shape, kind = t.kind }
      end
      local blocks, bkeys = fmsg:map("block_specializations")
      fn.block_keys = bkeys
      local block = blocks[fmsg.opset] or blocks[bkeys[1]]
      fn.all_ops = {}
      local symbols = {}
      for _, i in ipairs(fn.inputs) do symbols[i.name] = i end
      fn.ops = block and build_ops(block, fn, symbols, 0, fn.all_ops) or {}
      fn.outputs = block and block.outputs or {}
      local producers = {}
      for _, op in ipairs(fn.all_ops) do
        for _, o in ipairs(op.outputs) do producers[o.name] = op end
        op._producers = producers
      end
      fn.producers = producers
      out[#out + 1] = fn
    end
    -- the default function first, as Core ML runs it; the rest keep file order
    local d = spec_of(m).description
    local default = d and d.defaultFunctionName or ""
    for i, fn in ipairs(out) do
      if fn.name == default and i > 1 then table.insert(out, 1, table.remove(out, i)) break end
    end
    return out
  end)
end

function methods.find_function(m, name)
  for _, fn in ipairs(m:functions()) do
    if fn.name == name then return fn end
  end
  return nil
end

-- Every op of every function (nested blocks included), or of one function.
function methods.ops(m, fname)
  local out = {}
  for _, fn in ipairs(m:functions()) do
    if not fname or fn.name == fname then
      for _, op in ipairs(fn.all_ops) do out[#out + 1] = op end
    end
  end
  return out
end

function methods.op_histogram(m, fname)
  local h = {}
  for _, op in ipairs(m:ops(fname)) do h[op.type] = (h[op.type] or 0) + 1 end
  return h
end

-- ---- neural networks -----------------------------------------------------------------------------
local NN_TYPES = { neuralNetwork = true, neuralNetworkClassifier = true, neuralNetworkRegressor = true }

function props.neural_network(m)
  local t = props.model_type(m)
  return NN_TYPES[t] and spec_of(m)[t] or nil
end

function methods.layers(m)
  return cached(m, "layers", function()
    local nn = props.neural_network(m)
    if not nn then return {} end
    local out = {}
    for i, l in ipairs(nn.layers) do
      local which = nil
      for _, name in ipairs(l:present()) do
        if name ~= "name" and name ~= "input" and name ~= "output" and name ~= "inputTensor"
          and name ~= "outputTensor" and name ~= "isUpdatable" then which = name end
      end
      if not which then
        for _, u in ipairs(l:unknown()) do
          if u.number >= 100 and u.wire == 2 then which = "field_" .. u.number end
        end
      end
      out[i] = { index = i, name = l.name, type = which or "unknown", inputs = l.input, outputs = l.output,
                 msg = l, params = which and l:has(which) and l[which] or nil, is_updatable = l.isUpdatable }
    end
    return out
  end)
end

function methods.layer_histogram(m)
  local h = {}
  for _, l in ipairs(m:layers()) do h[l.type] = (h[l.type] or 0) + 1 end
  return h
end

-- ---- pipelines -----------------------------------------------------------------------------------
function methods.submodels(m)
  local s = spec_of(m)
  local t = props.model_type(m)
  local pipe = (t == "pipeline" and s.pipeline) or ((t == "pipelineClassifier" or t == "pipelineRegressor") and s[t].pipeline)
  if not pipe then return {} end
  local out = {}
  for i, sub in ipairs(pipe.models) do
    out[i] = submodel(sub, root_of(m), string.format("%s/pipeline[%d]", props.path(m), i))
  end
  return out, pipe.names
end

-- ---- weights -------------------------------------------------------------------------------------
M.weights = require "mlsh.model.weights"
function methods.weights(m) return cached(m, "weights", function() return M.weights.collect(m, root_of(m)) end) end
-- m:inventory([opts]): weights grouped for the weights command (mlsh.model.weights)
function methods.inventory(m, opts) return M.weights.inventory(m, root_of(m), opts) end

-- ---- analyses, loaded when first asked for -------------------------------------------------------
function methods.info(m) return require("mlsh.info").build(m) end
function methods.summary(m) return require("mlsh.info").text(m) end
-- m:save(path [, {in_place = true}])
function methods.save(m, path, opts) return require("mlsh.model.writer").save_model(m, path, opts) end
-- m:required_spec(): the minimum specification version and why (mlsh.required_spec)
function methods.required_spec(m) return require("mlsh.required_spec").explain(m) end
-- m:placement([opts]): where Core ML would run each op (mlsh.placement.coreml)
function methods.placement(m, opts) return require("mlsh.placement.coreml").simulate(m, opts) end
-- m:run(inputs [, opts]): execute an ML program function with the C interpreter (mlsh.run)
function methods.run(m, inputs, opts) return require("mlsh.run").run(m, inputs, opts) end

M.submodel = submodel
M.SubModel = SubModel
return M
