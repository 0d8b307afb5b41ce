-- mlsh.builder.program — building ML programs (Model.mlProgram) the way coremltools lays them out.
--
--   local p = program.new{opset = "iOS17", precision = "fp16", spec = nil, metadata = {...}}
--   local f = p:func("main")
--   local x = f:input("x", "fp32", {1, 3, 224, 224})        -- {shapes = {...}} / {range = {...}} / "image"
--   local w = f:const("w", array)                             -- weight.bin when >= 10 elements
--   local y = f:op("conv", {x = x, weight = w, strides = {1, 1}, pad_type = "same"})
--   f:output("y", y)                                          -- casts back to fp32 at the boundary
--   p:save("x.mlpackage")
--
-- Values are built as Lua tables and serialized by p:build(), so names can still change (an
-- output renames the value it returns, as coremltools does) and a failed op leaves nothing behind.
local optable = require "mlsh.optable"
local spec = require "mlsh.spec"
local mil = require "mlsh.builder.mil"
local infer = require "mlsh.builder.infer"
local features = require "mlsh.builder.features"

local fail, guard = features.fail, features.guard

local M = {}

local IO_DTYPES = { fp32 = true, fp16 = true, int32 = true, int8 = true }

-- ---- values -----------------------------------------------------------------------------------------
local Value = {}
Value.__index = Value
M.Value = Value

function Value:__tostring()
  return string.format("%s%s %s", self.kind == "state" and "state " or "", self.dtype .. infer.fmt_shape(self.shape), self.name)
end

local function is_value(v) return getmetatable(v) == Value end
M.is_value = is_value

-- An explicitly typed literal: B.tensor("int32", {1, 2}, {2}) (shape defaults to {#values}; a
-- scalar is B.tensor("fp16", 0.5)).
local Typed = {}
Typed.__index = Typed
function M.tensor(dtype, data, shape)
  if not mil.DATA_TYPE[dtype] then error("tensor: unknown dtype '" .. tostring(dtype) .. "'", 2) end
  if shape == nil then
    if type(data) == "userdata" then shape = data:shape()
    elseif type(data) == "table" then shape = { #data }
    else shape = {} end
  end
  return setmetatable({ dtype = dtype, data = data, shape = shape }, Typed)
end
local function is_typed(v) return getmetatable(v) == Typed end

-- ---- literal helpers -------------------------------------------------------------------------------
local function all_integers(list)
  for _, v in ipairs(list) do if math.type(v) ~= "integer" then return false end end
  return true
end

-- dtype, shape, data of a Lua literal (number, boolean, string or flat list of one of them).
local function literal_type(lit, float_dtype, is_float_param)
  if is_typed(lit) then return lit.dtype, lit.shape, lit.data end
  local t = type(lit)
  if t == "boolean" then return "bool", {}, { lit } end
  if t == "string" then return "string", {}, { lit } end
  if t == "number" then
    if is_float_param or math.type(lit) ~= "integer" then return float_dtype, {}, { lit } end
    return "int32", {}, { lit }
  end
  if t == "userdata" then return float_dtype, lit:shape(), lit end
  if t == "table" then
    local first = lit[1]
    if type(first) == "boolean" then return "bool", { #lit }, lit end
    if type(first) == "string" then return "string", { #lit }, lit end
    if first == nil or type(first) == "number" then
      if is_float_param or not all_integers(lit) then return float_dtype, { #lit }, lit end
      return "int32", { #lit }, lit
    end
  end
  fail("cannot make a constant of %s", tostring(lit))
end

-- ---- functions ---------------------------------------------------------------------------------------
local Function = {}
Function.__index = Function
M.Function = Function

local function check_name(what, name)
  if not mil.valid_name(name) then
    fail("bad %s name '%s': MIL names match [A-Za-z_][A-Za-z0-9_@]*", what, tostring(name))
  end
end

function Function:_claim(name, what)
  if self.names[name] then fail("%s name '%s' is already used in function '%s'", what, name, self.name) end
  self.names[name] = true
  self._journal[#self._journal + 1] = { names = name }
end

-- A fresh name from base (base, base_1, base_2, ...).
function Function:_fresh(base)
  local name, k = base, 0
  while self.names[name] do
    k = k + 1
    name = base .. "_" .. k
  end
  self:_claim(name, "value")
  return name
end

function Function:_counter(kind)
  local n = self.counters[kind] or 0
  self.counters[kind] = n + 1
  self._journal[#self._journal + 1] = { counter = kind, was = n }
  return n
end

function Function:_value(fields)
  fields.fn = self
  fields.kind = fields.kind or "tensor"
  return setmetatable(fields, Value)
end

function Function:_emit(op)
  self.ops[#self.ops + 1] = op
  self._journal[#self._journal + 1] = { op = true }
end

-- Everything an API call changes goes through the journal, so a failing call can be undone whole.
function Function:_transaction(where, fn, ...)
  local mark = #self._journal
  local r = table.pack(pcall(fn, self, ...))
  if r[1] then return table.unpack(r, 2, r.n) end
  for i = #self._journal, mark + 1, -1 do
    local j = self._journal[i]
    if j.names then self.names[j.names] = nil
    elseif j.counter then self.counters[j.counter] = j.was
    elseif j.op then self.ops[#self.ops] = nil
    elseif j.undo then j.undo() end
    self._journal[i] = nil
  end
  return guard(where, error, r[2], 0)
end

function Function:_undoable(undo) self._journal[#self._journal + 1] = { undo = undo } end

local function compute_dtype(self) return self.program.precision end

-- ---- inputs ------------------------------------------------------------------------------------------
local function add_input(self, name, dtype, shape_decl)
  check_name("input", name)
  if dtype == "image" then return self:_image_input(name, shape_decl or {}) end
  if not IO_DTYPES[dtype] then fail("input '%s': dtype must be fp32, fp16, int32 or int8, got %s", name, tostring(dtype)) end
  local s = features.parse_shape(name, shape_decl)
  if s.flex and s.flex.kind == "range" then
    for i, r in ipairs(s.flex.ranges) do
      if r[2] == -1 then fail("input '%s': range %d is unbounded; ML programs need an upper bound (coremltools refuses it too)", name, i) end
    end
  end
  self:_claim(name, "input")
  local v = self:_value({ name = name, dtype = dtype, shape = s.dims, is_input = true })
  v.boundary = mil.FLOAT[dtype] and dtype ~= compute_dtype(self)
  self.inputs[#self.inputs + 1] = { name = name, kind = "array", dtype = dtype, shape = s.shape, flex = s.flex, dims = s.dims, value = v }
  self:_undoable(function() self.inputs[#self.inputs] = nil end)
  return v
end

function Function:input(name, dtype, shape_decl)
  return self:_transaction("function " .. self.name, add_input, name, dtype, shape_decl)
end

-- Image input: MIL sees fp32 [1, C, H, W] (fp16 for GRAYSCALE_FLOAT16); scale and bias become the
-- mul/add preprocessing ops coremltools emits (`<name>__scaled__`, `<name>__biased__`).
function Function:_image_input(name, o)
  local color = o.color or "RGB"
  if not features.COLOR_SPACE[color] then fail("input '%s': color must be RGB, BGR, GRAYSCALE or GRAYSCALE_FLOAT16, got %s", name, tostring(color)) end
  if math.type(o.width) ~= "integer" or math.type(o.height) ~= "integer" or o.width < 1 or o.height < 1 then
    fail("input '%s': an image needs integer width and height", name)
  end
  local channels = (color == "RGB" or color == "BGR") and 3 or 1
  local dtype = color == "GRAYSCALE_FLOAT16" and "fp16" or "fp32"
  self:_claim(name, "input")
  local v = self:_value({ name = name, dtype = dtype, shape = { 1, channels, o.height, o.width }, is_input = true })
  self.inputs[#self.inputs + 1] = { name = name, kind = "image", dtype = dtype, width = o.width, height = o.height, color = color, value = v }
  self:_undoable(function() self.inputs[#self.inputs] = nil end)
  local out = v
  local scale, bias = o.scale or 1, o.bias or 0
  if scale ~= 1 then
    out = self:_op_body("mul", { x = out, y = mil.FLOAT[dtype] and M.tensor(dtype, scale) or scale }, { name = name .. "__scaled__", io = true })
  end
  local nonzero = type(bias) == "table" and next(bias) ~= nil or (type(bias) == "number" and bias ~= 0)
  if nonzero then
    local b
    if type(bias) == "table" then
      if #bias ~= channels then fail("input '%s': bias has %d values for %d channels", name, #bias, channels) end
      b = M.tensor(dtype, bias, { 1, channels, 1, 1 })
    else
      b = M.tensor(dtype, bias)
    end
    out = self:_op_body("add", { x = out, y = b }, { name = name .. "__biased__", io = true })
  end
  out.boundary = dtype ~= compute_dtype(self)
  return out
end

-- ---- states (iOS18) ---------------------------------------------------------------------------------
local function add_state(self, name, dtype, shape)
  check_name("state", name)
  if self.program.opset_spec < 9 then fail("state '%s': states need opset iOS18; this program uses %s", name, self.program.opset) end
  if dtype ~= "fp16" then fail("state '%s': Core ML states are fp16 (got %s)", name, tostring(dtype)) end
  local s = features.parse_shape(name, shape)
  if s.flex then fail("state '%s': states have a fixed shape", name) end
  self:_claim(name, "state")
  local v = self:_value({ name = name, dtype = dtype, shape = s.shape, kind = "state", is_input = true })
  self.inputs[#self.inputs + 1] = { name = name, kind = "state", dtype = dtype, shape = s.shape, dims = s.shape, value = v }
  self:_undoable(function() self.inputs[#self.inputs] = nil end)
  return v
end

function Function:state(name, dtype, shape)
  return self:_transaction("function " .. self.name, add_state, name, dtype, shape)
end

-- write_state + read_state, the pair coremltools emits for coreml_update_state; returns the new value.
function Function:update_state(state, data)
  return self:_transaction("function " .. self.name, function()
    local k = self:_counter("update_state")
    local base = "update_state_" .. k
    self:_op_body("write_state", { input = state, data = data }, { name = base .. "_write_state" })
    return self:_op_body("read_state", { input = state }, { name = base })
  end)
end

-- ---- consts ------------------------------------------------------------------------------------------
-- f:const(name, data [, {dtype =, shape =, check = false}])
function Function:_const(name, data, o)
  o = o or {}
  local program = self.program
  local dtype, shape
  if is_typed(data) then
    dtype, shape, data = data.dtype, data.shape, data.data
  elseif type(data) == "userdata" then
    dtype, shape = compute_dtype(self), data:shape()
  elseif type(data) == "number" or type(data) == "boolean" or type(data) == "string" or type(data) == "table" then
    dtype, shape, data = literal_type(data, compute_dtype(self), false)
  else
    fail("const '%s': data must be an mlsh.Array, a number, a list or builder.tensor(...), got %s", tostring(name), type(data))
  end
  dtype = o.dtype or dtype
  shape = o.shape or shape
  if not mil.DATA_TYPE[dtype] then fail("const '%s': unknown dtype '%s'", tostring(name), tostring(dtype)) end
  local n = #shape == 0 and 1 or mil.count(shape)
  local have = type(data) == "userdata" and #data or (type(data) == "table" and #data or 1)
  if o.check ~= false then
    if not n then fail("const '%s': shape %s has unknown dimensions", name, infer.fmt_shape(shape)) end
    if have ~= n then fail("const '%s': %d values do not fill shape %s (%d elements)", name, have, infer.fmt_shape(shape), n) end
  end
  -- coremltools names fp32 weights it stores as fp16 `<name>_to_fp16`
  local var = name
  if program.precision == "fp16" and dtype == "fp16" and not o.dtype and not o.keep_name then var = name .. "_to_fp16" end
  check_name("const", var)
  self:_claim(var, "const")
  local v = self:_value({ name = var, dtype = dtype, shape = shape, data = data })
  local op = { type = "const", name = var, inputs = {}, outputs = { v }, const = { dtype = dtype, shape = shape, data = data } }
  v.producer = op
  self:_emit(op)
  return v
end

function Function:const(name, data, o)
  return self:_transaction("function " .. self.name, function()
    if type(name) ~= "string" then fail("const: the first argument is the name, got %s", type(name)) end
    check_name("const", name)
    return self:_const(name, data, o)
  end)
end

-- ---- ops ---------------------------------------------------------------------------------------------
-- The cast coremltools puts between an fp32 model input and fp16 compute (and back, for outputs).
function Function:_cast(v, dtype, out_name)
  local k = self:_counter("cast")
  local dconst = self:_const_literal(v.name .. "_to_" .. dtype .. "_dtype_0", dtype)
  local name = out_name or self:_fresh(v.name .. "_to_" .. dtype)
  if out_name then self:_claim(out_name, "output") end
  local out = self:_value({ name = name, dtype = dtype, shape = v.shape })
  local op = { type = "cast", name = "cast_" .. k, inputs = { { param = "x", values = { v } }, { param = "dtype", values = { dconst } } }, outputs = { out } }
  out.producer = op
  self:_emit(op)
  return out
end

-- A small const for a literal parameter (named by the caller, `<op>_<param>_0`).
function Function:_const_literal(name, lit, float_dtype, is_float_param)
  local dtype, shape, data = literal_type(lit, float_dtype or compute_dtype(self), is_float_param)
  name = self:_fresh(name)
  local v = self:_value({ name = name, dtype = dtype, shape = shape, data = data })
  local op = { type = "const", name = name, inputs = {}, outputs = { v }, const = { dtype = dtype, shape = shape, data = data } }
  v.producer = op
  self:_emit(op)
  return v
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function param_order(op_type, args)
  local sig = infer.signature(op_type)
  if not sig then return sorted_keys(args) end
  local order, seen = {}, {}
  for _, p in ipairs(sig) do
    if args[p] ~= nil then order[#order + 1] = p; seen[p] = true end
  end
  for _, p in ipairs(sorted_keys(args)) do if not seen[p] then order[#order + 1] = p end end
  return order
end

-- A list of Values (variadic input such as concat's values)?
local function value_list(x)
  if type(x) ~= "table" or is_value(x) or is_typed(x) or x[1] == nil then return nil end
  for _, v in ipairs(x) do if not is_value(v) then return nil end end
  return x
end

function Function:_bind_value(v, op_type, check, io)
  if check and v.fn ~= self then
    if v.fn and v.fn.program == self.program then
      fail("value '%s' belongs to function '%s', not '%s' (undefined here)", v.name, v.fn.name, self.name)
    end
    fail("value '%s' is not defined in this program", v.name)
  end
  if v.boundary and not io and op_type ~= "cast" and v.fn == self then
    -- fp32 model input feeding fp16 compute (or the reverse): one cast per input, reused
    local cached = self.casts[v]
    if not cached then
      cached = self:_cast(v, compute_dtype(self))
      self.casts[v] = cached
      self:_undoable(function() self.casts[v] = nil end)
    end
    return cached
  end
  return v
end

-- Check an op call (op name, named arguments, parameters the op has, required inputs); returns
-- the op's base name and a fail function that names the op.
local function check_op_call(self, op_type, args, o, check)
  local program = self.program
  if type(op_type) ~= "string" then fail("op: the first argument is the MIL op name, got %s", type(op_type)) end
  if type(args) ~= "table" then fail("op %s: arguments must be a table", op_type) end
  for k in pairs(args) do
    if type(k) ~= "string" then fail("op %s: arguments are named, as in {x = value}; got a positional argument", op_type) end
  end
  if check then
    if not optable.exists(op_type) then fail("unknown MIL op '%s'", op_type) end
    local e, msg = optable.get(op_type, program.opset)
    if not e then fail("%s", msg) end
  end
  if o.name ~= nil then check_name("op", o.name) end
  local base = o.name or (op_type .. "_" .. self:_counter(op_type))
  local label = string.format("%s '%s'", op_type, base)
  local function op_fail(fmt, ...) fail("%s: " .. fmt, label, ...) end

  local sig = infer.signature(op_type)
  if check and sig then
    local known = {}
    for _, p in ipairs(sig) do known[p] = true end
    for _, p in ipairs(sorted_keys(args)) do
      if not known[p] then op_fail("unknown parameter '%s' (parameters: %s)", tostring(p), table.concat(sig, ", ")) end
    end
    for _, p in ipairs(infer.required(op_type)) do
      if args[p] == nil then op_fail("missing input '%s'", p) end
    end
  end

  return base, op_fail
end

-- Bind the arguments: values as they are, literals (and the defaults coremltools writes out) as
-- `<op>_<param>_0` consts. Returns bound {param -> {values}} and the parameter order.
local function bind_args(self, op_type, args, o, check, base)
  local program = self.program
  -- Values first: they decide the dtype literal float parameters take.
  local bound, literals = {}, {}
  local order = param_order(op_type, args)
  for _, p in ipairs(order) do
    local a = args[p]
    if is_value(a) then
      bound[p] = { self:_bind_value(a, op_type, check, o.io) }
    elseif value_list(a) then
      local vs = {}
      for i, v in ipairs(a) do vs[i] = self:_bind_value(v, op_type, check, o.io) end
      bound[p] = vs
    else
      literals[p] = a
    end
  end
  local float_ref = compute_dtype(self)
  for _, p in ipairs({ "x", "query", "a", "values" }) do
    local b = bound[p] and bound[p][1]
    if b and mil.FLOAT[b.dtype] then float_ref = b.dtype break end
  end

  -- defaults coremltools writes out, then literals as `<op>_<param>_0` consts
  local has = {}
  for p, a in pairs(args) do
    if is_value(a) then has[p] = a.data ~= nil and (type(a.data) == "table" or type(a.data) == "userdata") and a.data[1] or a.data or true
    else has[p] = a end
  end
  local spatial
  local x = bound.x and bound.x[1]
  if x and (op_type == "conv" or op_type:match("_pool$")) then spatial = math.max(1, #x.shape - 2) end
  for p, d in pairs(infer.defaults(op_type, program.opset_spec, has, spatial or 2)) do
    literals[p] = d
  end
  local all = {}
  for p in pairs(bound) do all[p] = true end
  for p in pairs(literals) do all[p] = true end
  order = param_order(op_type, all)
  local const_base = base
  for _, p in ipairs(order) do
    if literals[p] ~= nil then
      bound[p] = { self:_const_literal(const_base .. "_" .. p .. "_0", literals[p], float_ref, infer.float_param(op_type, p)) }
    end
  end

  return bound, order
end

-- The output types: inferred, or given (and then checked against the rule when there is one).
local function output_types(op_type, bound, o, check, op_fail)
  local ctx = { op = op_type }
  function ctx.arg(_, p) return bound[p] and bound[p][1] end
  function ctx.args(_, p) return bound[p] or {} end
  function ctx.data(_, p) local v = bound[p] and bound[p][1] return v and v.data and mil.as_list(v.data) end
  function ctx.fail(_, fmt, ...) op_fail(fmt, ...) end
  local given
  if o.outputs then given = o.outputs
  elseif o.dtype or o.shape then
    if not (o.dtype and o.shape) then op_fail("give both dtype and shape for the output") end
    given = { { dtype = o.dtype, shape = o.shape } }
  end
  local outs
  if check or not given then
    outs = infer.outputs(ctx)
    if not outs and not given then
      op_fail("cannot infer the output type of MIL op '%s'; give it: f:op(\"%s\", args, {dtype = ..., shape = ...})", op_type, op_type)
    end
  end
  if given then
    for i, g in ipairs(given) do
      if not mil.DATA_TYPE[g.dtype] then op_fail("output %d: unknown dtype '%s'", i, tostring(g.dtype)) end
      local r = outs and outs[i]
      if check and r and (r.dtype ~= g.dtype or infer.fmt_shape(r.shape) ~= infer.fmt_shape(g.shape)) then
        op_fail("output %d was given as %s%s but the op produces %s%s", i, g.dtype, infer.fmt_shape(g.shape), r.dtype, infer.fmt_shape(r.shape))
      end
    end
    outs = given
  end

  return outs
end

function Function:_op_body(op_type, args, o)
  local program = self.program
  local check = o.check ~= false
  local base, op_fail = check_op_call(self, op_type, args, o, check)
  local bound, order = bind_args(self, op_type, args, o, check, base)
  local outs = output_types(op_type, bound, o, check, op_fail)
  -- names: coremltools suffixes fp16 compute outputs with _cast_fp16
  local suffix = (not o.name and not o.io and op_type ~= "cast" and program.precision == "fp16" and outs[1] and outs[1].dtype == "fp16") and "_cast_fp16" or ""
  local op_name = base .. suffix
  local values = {}
  for i, t in ipairs(outs) do
    local vname = #outs == 1 and op_name or (base .. "_" .. (i - 1) .. suffix)
    if #outs == 1 then self:_claim(vname, "op output") else vname = self:_fresh(vname) end
    values[i] = self:_value({ name = vname, dtype = t.dtype, shape = t.shape })
  end
  local inputs = {}
  for _, p in ipairs(order) do inputs[#inputs + 1] = { param = p, values = bound[p] } end
  local op = { type = op_type, name = op_name, inputs = inputs, outputs = values }
  for _, v in ipairs(values) do v.producer = op end
  self:_emit(op)
  return table.unpack(values)
end

-- f:op(type, args [, {name =, dtype =, shape =, outputs = {{dtype, shape}...}, check = false}])
function Function:op(op_type, args, o)
  return self:_transaction("function " .. self.name, self._op_body, op_type, args, o or {})
end

-- ---- outputs ------------------------------------------------------------------------------------------
local function add_output(self, name, v, o)
  o = o or {}
  check_name("output", name)
  if not is_value(v) then fail("output '%s': expected a value returned by the builder, got %s", name, type(v)) end
  if o.check ~= false and v.fn ~= self then
    fail("output '%s': value '%s' belongs to %s, not function '%s' (undefined here)", name, v.name,
      v.fn and ("function '" .. v.fn.name .. "'") or "another program", self.name)
  end
  if v.kind == "state" then fail("output '%s': a state is not an output; read it with read_state", name) end
  for _, out in ipairs(self.outputs) do
    if out.name == name then fail("output '%s' is declared twice", name) end
  end
  local dtype = o.dtype or (mil.FLOAT[v.dtype] and "fp32" or v.dtype)
  if not IO_DTYPES[dtype] then fail("output '%s': outputs are fp32, fp16, int32 or int8 arrays; cast %s first", name, v.dtype) end
  local out
  if v.dtype ~= dtype then
    if not (mil.FLOAT[v.dtype] and mil.FLOAT[dtype]) then fail("output '%s': cannot present %s as %s; cast it first", name, v.dtype, dtype) end
    out = self:_cast(v, dtype, name)
  elseif v.fn == self and v.producer and v.producer.type ~= "const" and not v.is_input and not v.output and v.name ~= name then
    -- like coremltools: the value producing an output takes the output's name
    self:_claim(name, "output")
    local old = v.name
    self.names[old] = nil
    v.name = name
    self:_undoable(function() v.name = old; self.names[old] = true end)
    out = v
  elseif v.fn == self and v.name == name and not v.is_input and not v.output then
    out = v
  else
    self:_claim(name, "output")
    local copy = self:_value({ name = name, dtype = v.dtype, shape = v.shape })
    local op = { type = "identity", name = name, inputs = { { param = "x", values = { v } } }, outputs = { copy } }
    copy.producer = op
    self:_emit(op)
    out = copy
  end
  out.output = true
  self.outputs[#self.outputs + 1] = { name = name, dtype = dtype, value = out, description = o.description }
  self:_undoable(function() self.outputs[#self.outputs] = nil; out.output = nil end)
  return out
end

function Function:output(name, v, o)
  return self:_transaction("function " .. self.name, add_output, name, v, o)
end

-- ---- programs -----------------------------------------------------------------------------------------
local Program = {}
Program.__index = Program
M.Program = Program

function M.new(o)
  o = o or {}
  return guard("program", function()
    local opset, n = optable.opset(o.opset or "iOS15")
    if not opset then fail("%s", n) end
    local precision = o.precision or "fp16"
    if precision ~= "fp16" and precision ~= "fp32" then fail("precision must be \"fp16\" or \"fp32\", got %s", tostring(precision)) end
    return setmetatable({
      opset = opset, opset_spec = n, opset_tag = assert(spec.opset_name(n)), precision = precision,
      functions = {}, by_name = {}, requested_spec = o.spec, metadata = o.metadata, default = o.default, seed = o.seed,
    }, Program)
  end)
end

function Program:func(name)
  name = name or "main"
  return guard("program", function()
    check_name("function", name)
    if self.by_name[name] then fail("function '%s' already exists", name) end
    local f = setmetatable({ program = self, name = name, inputs = {}, outputs = {}, ops = {}, names = {},
      counters = {}, casts = {}, _journal = {} }, Function)
    self.functions[#self.functions + 1] = f
    self.by_name[name] = f
    return f
  end)
end

function Program:default_function(name)
  self.default = name
  return self
end


-- ---- serialization: mlsh.builder.program_write --------------------------------------------------------
require("mlsh.builder.program_write").install(Program)

return M
