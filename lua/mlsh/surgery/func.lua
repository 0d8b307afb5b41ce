-- mlsh.surgery.func — editing one ML program function (the IR of mlsh.surgery.ir).
--
--   local f = editor:func("main")
--   for _, op in ipairs(f:ops()) do ... end          f:find("conv_0")   f:producer("x")   f:uses("x")
--   f:insert{type = "relu", name = "r", inputs = {x = "y"}} [, {before = op | after = op}]  -> op
--   f:replace(op, spec) -> new op       f:remove(op [, {reroute = {old = new}}])
--   f:rename("old", "new")              f:replace_uses("old", "new" [, {except = op}])
--   f:set_dtype("v", "fp16")            f:set_shape("v", {1, 128})
--   f:const("w", data, {dtype =, shape =, before = op}) -> name     f:const_data("w") -> {dtype, shape, data}
--   f:add_input(name, dtype, shape) / f:remove_input(name) / f:add_output(value) / f:remove_output(name)
--   f:infer(op) -> output types from mlsh.builder.infer's rules (nil when the op has no rule)
-- Edits change the IR only; the editor validates and writes (mlsh.surgery). Errors are one line naming
-- the function and the op or value.
local core = require "mlsh.core"
local mil = require "mlsh.builder.mil"
local infer = require "mlsh.builder.infer"
local types = require "mlsh.types"
local ir = require "mlsh.surgery.ir"

local P = core.proto
local F = {}
F.__index = F

local M = { Func = F }

M.BLOB_FILE = "@surgery/new"

function M.new(editor, fn)
  return setmetatable({ editor = editor, fn = fn, name = fn.name, _ver = 0 }, F)
end

function F:fail(fmt, ...) error("function " .. self.name .. ": " .. string.format(fmt, ...), 0) end
function F:touch() self._ver = self._ver + 1 end

-- ---- walking ---------------------------------------------------------------------------------------
function F:ops() return self.fn.block.ops end
function F:inputs() return self.fn.inputs end
function F:outputs() return self.fn.block.outputs end
function F:opset() return self.fn.opset end

-- fn(op, block, depth) for every op, nested blocks included, in order.
function F:each_op(fn)
  local function walk(block, depth)
    for _, op in ipairs(block.ops) do
      fn(op, block, depth)
      for _, b in ipairs(op.blocks) do walk(b, depth + 1) end
    end
  end
  walk(self.fn.block, 0)
end

-- name -> {type = value type, op = producer | nil (function input), block}
function F:symbols()
  if self._sym and self._sym_ver == self._ver then return self._sym end
  local s = {}
  for _, v in ipairs(self.fn.inputs) do s[v.name] = { type = v } end
  local function walk(block)
    for _, v in ipairs(block.inputs) do s[v.name] = { type = v, block = block } end
    for _, op in ipairs(block.ops) do
      for _, b in ipairs(op.blocks) do walk(b) end
      for _, v in ipairs(op.outputs) do s[v.name] = { type = v, op = op, block = block } end
    end
  end
  walk(self.fn.block)
  self._sym, self._sym_ver = s, self._ver
  return s
end

function F:type_of(name)
  local e = self:symbols()[name]
  return e and e.type
end
function F:producer(name)
  local e = self:symbols()[name]
  return e and e.op
end

-- Uses of a value: {op =, param =, index =} per argument, {output = i, block =} per block output.
function F:use_map()
  if self._uses and self._uses_ver == self._ver then return self._uses end
  local u = {}
  local function add(n, e)
    u[n] = u[n] or {}
    table.insert(u[n], e)
  end
  local function walk(block)
    for _, op in ipairs(block.ops) do
      for _, p in ipairs(op.inputs) do
        for i, a in ipairs(p.args) do if a.name then add(a.name, { op = op, param = p.param, index = i }) end end
      end
      for _, b in ipairs(op.blocks) do walk(b) end
    end
    for i, n in ipairs(block.outputs) do add(n, { output = i, block = block }) end
  end
  walk(self.fn.block)
  self._uses, self._uses_ver = u, self._ver
  return u
end
function F:uses(name) return self:use_map()[name] or {} end

function F:find(name)
  local found
  self:each_op(function(op)
    if found then return end
    if op.name == name then found = op return end
    for _, v in ipairs(op.outputs) do if v.name == name then found = op end end
  end)
  return found
end

function F:index_of(op)
  for i, o in ipairs(self.fn.block.ops) do if o == op then return i end end
  return nil
end

function F:fresh(base)
  local s = self:symbols()
  local names = {}
  self:each_op(function(op) names[op.name] = true end)
  if not s[base] and not names[base] then return base end
  local k = 1
  while s[base .. "_" .. k] or names[base .. "_" .. k] do k = k + 1 end
  return base .. "_" .. k
end

-- The argument list bound to param (nil when absent).
function F.arg(op, param)
  for _, p in ipairs(op.inputs) do if p.param == param then return p.args end end
  return nil
end
function F.arg_name(op, param)
  local a = F.arg(op, param)
  return a and a[1] and a[1].name
end

-- ---- const values ------------------------------------------------------------------------------------
function F:value_data(v, limit)
  local t = types.value_type(v.type)
  local n = types.count(t.shape)
  if not n then return nil end
  if limit and n > limit then return nil end
  local data
  if v:has("immediateValue") then
    local x = types.value(v)
    if type(x) ~= "table" then x = { x } end
    data = x
  elseif v:has("blobFileValue") then
    local dtype, bytes, cnt = self.editor.read_blob(v.blobFileValue.fileName, v.blobFileValue.offset, v)
    data = core.array.decode(bytes, dtype, cnt)
  else
    return nil
  end
  return { dtype = t.dtype, shape = t.shape, data = data, count = n }
end

-- {dtype, shape, data} of a const op's output (data: Lua list or mlsh.Array); nil for anything else.
function F:const_data(name, limit)
  local op = self:producer(name)
  if not op or op.type ~= "const" then return nil end
  for _, a in ipairs(op.attrs) do
    if a.key == "val" then return self:value_data(a.value, limit) end
  end
  return nil
end

-- A MILSpec Value holding data as dtype/shape: weight-file sized data goes to the editor's blob store.
function F:make_value(dtype, shape, data)
  local v = P.new("CoreML.Specification.MILSpec.Value")
  local n = #shape == 0 and 1 or (mil.count(shape) or 0)
  if mil.use_weight_file(dtype, n, self.editor.spec_version or 6) then
    local bytes = type(data) == "string" and data or mil.encode(data, dtype)
    local key = self.editor:add_blob(dtype, bytes, n)
    mil.blob(v, dtype, shape, M.BLOB_FILE, key)
  else
    if type(data) == "string" then data = core.array.decode(data, dtype, n) end
    mil.immediate(v, dtype, shape, data)
  end
  return v
end

local function new_op(type_, name)
  return { type = type_, name = name, _orig_name = nil, inputs = {}, outputs = {}, attrs = {}, blocks = {} }
end

-- Insert a const op (before `o.before`, else at the top); returns the value name.
function F:const(name, data, o)
  o = o or {}
  local dtype = o.dtype or "fp32"
  local shape = o.shape
  if not shape then
    if type(data) == "userdata" then shape = data:shape()
    elseif type(data) == "table" then shape = { #data }
    else shape = {} end
  end
  if not mil.DATA_TYPE[dtype] then self:fail("const '%s': unknown dtype '%s'", name, tostring(dtype)) end
  name = self:fresh(name)
  local op = new_op("const", name)
  op.attrs[1] = { key = "name" }
  op.attrs[2] = { key = "val", value = self:make_value(dtype, shape, data) }
  op.outputs[1] = { name = name, dtype = dtype, shape = ir.copy_shape(shape), kind = "tensor" }
  local at = o.before and self:index_of(o.before) or 1
  table.insert(self.fn.block.ops, at, op)
  self:touch()
  return name, op
end

-- ---- inserting ops -----------------------------------------------------------------------------------
-- Parameters whose string arguments are literals (everything else names values).
M.STRING_PARAMS = { mode = true, pad_type = true, dtype = true, direction = true, activation = true,
  recurrent_activation = true, cell_activation = true, sampling_mode = true, padding_mode = true,
  coordinates_mode = true, box_coordinate_mode = true, sort = true, target_size_height = false }

local function is_typed(x) return type(x) == "table" and x.const_dtype ~= nil end
function M.tensor(dtype, data, shape) return { const_dtype = dtype, data = data, shape = shape } end

-- dtype/shape/data of a literal argument.
local function literal(x, float_dtype)
  if is_typed(x) then
    local shape = x.shape or (type(x.data) == "table" and { #x.data } or {})
    return x.const_dtype, shape, x.data
  end
  local t = type(x)
  if t == "boolean" then return "bool", {}, { x } end
  if t == "string" then return "string", {}, { x } end
  if t == "number" then return math.type(x) == "integer" and "int32" or float_dtype, {}, { x } end
  if t == "table" then
    local first = x[1]
    if type(first) == "boolean" then return "bool", { #x }, x end
    if type(first) == "string" then return "string", { #x }, x end
    for _, v in ipairs(x) do
      if math.type(v) ~= "integer" then return float_dtype, { #x }, x end
    end
    return "int32", { #x }, x
  end
  return nil
end

local function param_order(type_, inputs)
  local sig = infer.signature(type_) or {}
  local order, seen = {}, {}
  for _, p in ipairs(sig) do
    if inputs[p] ~= nil then order[#order + 1] = p seen[p] = true end
  end
  local rest = {}
  for k in pairs(inputs) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do order[#order + 1] = k end
  return order
end

-- Bind spec.inputs to op (value names stay names; literals become const ops placed before `anchor`).
function F:_bind(op, inputs, anchor_index)
  local order = param_order(op.type, inputs)
  local consts = {}
  local xname = type(inputs.x) == "string" and inputs.x or nil
  local xt = xname and self:type_of(xname)
  local float_dtype = xt and mil.FLOAT[xt.dtype] and xt.dtype or "fp32"
  for _, param in ipairs(order) do
    local x = inputs[param]
    local p = { param = param, args = {} }
    local list = (type(x) == "table" and not is_typed(x) and type(x[1]) == "string" and not M.STRING_PARAMS[param]) and x or { x }
    for _, v in ipairs(list) do
      if type(v) == "string" and not M.STRING_PARAMS[param] and not self:type_of(v) then
        self:fail("%s '%s': input '%s' names undefined value '%s'", op.type, op.name, param, v)
      end
      if type(v) == "string" and not M.STRING_PARAMS[param] then
        p.args[#p.args + 1] = { name = v }
      else
        local dtype, shape, data = literal(v, float_dtype)
        if not dtype then self:fail("%s '%s': cannot use %s as input '%s'", op.type, op.name, type(v), param) end
        consts[#consts + 1] = { name = op.name .. "_" .. param .. "_0", dtype = dtype, shape = shape, data = data, p = p }
        p.args[#p.args + 1] = { name = false }
      end
    end
    op.inputs[#op.inputs + 1] = p
  end
  local at = anchor_index
  for _, c in ipairs(consts) do
    local cname, cop = self:const(c.name, c.data, { dtype = c.dtype, shape = c.shape })
    -- self:const inserted at the top; move it before the anchor
    table.remove(self.fn.block.ops, self:index_of(cop))
    table.insert(self.fn.block.ops, at, cop)
    at = at + 1
    for _, a in ipairs(c.p.args) do
      if a.name == false then a.name = cname break end
    end
  end
  return at
end

-- Output types of op from the builder's rules, given the current types and small const data.
function F:infer(op)
  if not infer.has_rule(op.type) then return nil end
  local bound = {}
  for _, p in ipairs(op.inputs) do
    local list = {}
    for _, a in ipairs(p.args) do
      local t
      if a.name then
        local vt = self:type_of(a.name)
        if vt then
          t = { dtype = vt.dtype, shape = vt.shape, name = a.name }
          local c = self:const_data(a.name, 4096)
          if c then t.data = c.data end
        end
      elseif a.value then
        local vt = types.value_type(a.value.type)
        t = { dtype = vt.dtype, shape = vt.shape, data = types.value(a.value) }
      end
      list[#list + 1] = t or { dtype = "?", shape = {} }
    end
    bound[p.param] = list
  end
  local ctx = { op = op.type }
  function ctx.arg(_, p) return bound[p] and bound[p][1] end
  function ctx.args(_, p) return bound[p] or {} end
  function ctx.data(_, p) local v = bound[p] and bound[p][1] return v and v.data and mil.as_list(v.data) end
  function ctx.fail(_, fmt, ...) error({ infer = string.format(fmt, ...) }) end
  local ok, outs = pcall(infer.outputs, ctx)
  if not ok then
    if type(outs) == "table" and outs.infer then return nil, outs.infer end
    return nil, tostring(outs)
  end
  return outs
end

-- spec = {type, name, inputs = {param = value name | {names} | literal}, outputs = {{name, dtype, shape}}}
-- placed before/after an op (default: at the end of the main block). Returns the op.
function F:insert(spec, where)
  where = where or {}
  if type(spec.type) ~= "string" then self:fail("insert: op needs a type") end
  local name = spec.name or self:fresh(spec.type)
  if self:find(name) and not where._replacing then self:fail("insert: an op or value named '%s' exists", name) end
  local op = new_op(spec.type, name)
  op.attrs[1] = { key = "name" }
  local at
  if where.before then at = self:index_of(where.before)
  elseif where.after then at = self:index_of(where.after) and self:index_of(where.after) + 1
  else at = #self.fn.block.ops + 1 end
  if not at then self:fail("insert '%s': the anchor op is not in the main block", name) end
  at = self:_bind(op, spec.inputs or {}, at)
  local outs = spec.outputs
  if not outs then
    local inferred, why = self:infer(op)
    if not inferred then
      self:fail("%s '%s': cannot infer the output type (%s); give outputs = {{name, dtype, shape}}", op.type, name, why or "no rule")
    end
    outs = inferred
  end
  for i, o in ipairs(outs) do
    local oname = o.name or (where.output_names and where.output_names[i]) or (i == 1 and name or (name .. "_" .. (i - 1)))
    op.outputs[i] = { name = oname, dtype = o.dtype, shape = ir.copy_shape(o.shape), kind = o.kind or "tensor" }
  end
  table.insert(self.fn.block.ops, at, op)
  self:touch()
  return op
end

-- Point every use of `old` at `new` (op arguments and block outputs), except in o.except.
function F:replace_uses(old, new, o)
  o = o or {}
  for _, u in ipairs(self:uses(old)) do
    if u.op and u.op ~= o.except then
      F.arg(u.op, u.param)[u.index].name = new
    elseif u.output and not o.keep_outputs then
      u.block.outputs[u.output] = new
    end
  end
  self:touch()
end

-- Remove op; its outputs must be unused unless o.reroute maps each used output to a replacement.
function F:remove(op, o)
  o = o or {}
  local i = self:index_of(op)
  if not i then self:fail("remove: op '%s' is not in the main block", op.name) end
  for _, v in ipairs(op.outputs) do
    local users = self:uses(v.name)
    if #users > 0 then
      local to = o.reroute and o.reroute[v.name]
      if not to then self:fail("remove: %s '%s' output '%s' is still used (%d uses)", op.type, op.name, v.name, #users) end
      self:replace_uses(v.name, to)
    end
  end
  table.remove(self.fn.block.ops, i)
  self:touch()
end

-- Replace op by a new one built from spec at the same place. Unnamed outputs take the old op's output
-- names (uses stay as they are); otherwise old output k's uses move to new output k.
function F:replace(op, spec)
  local i = self:index_of(op)
  if not i then self:fail("replace: op '%s' is not in the main block", op.name) end
  local olds = op.outputs
  table.remove(self.fn.block.ops, i)
  self:touch()
  spec.name = spec.name or op.name
  local names = {}
  for k, v in ipairs(olds) do names[k] = v.name end
  local ok, new = pcall(self.insert, self, spec, { before = self.fn.block.ops[i], _replacing = true, output_names = names })
  if not ok then
    table.insert(self.fn.block.ops, i, op)
    self:touch()
    error(new, 0)
  end
  for k, v in ipairs(olds) do
    local nv = new.outputs[k]
    if nv and nv.name ~= v.name then self:replace_uses(v.name, nv.name, { except = new }) end
  end
  return new
end

-- Rename a value everywhere (definition, uses, block outputs, function inputs, I/O descriptions).
function F:rename(old, new)
  if old == new then return end
  if not mil.valid_name(new) then self:fail("rename: '%s' is not a valid MIL identifier", new) end
  local s = self:symbols()
  if not s[old] then self:fail("rename: no value named '%s'", old) end
  if s[new] then self:fail("rename: a value named '%s' already exists", new) end
  s[old].type.name = new
  for _, u in ipairs(self:uses(old)) do
    if u.op then F.arg(u.op, u.param)[u.index].name = new else u.block.outputs[u.output] = new end
  end
  self.editor:rename_feature(self.name, old, new)
  self:touch()
end

function F:set_dtype(name, dtype)
  local t = self:type_of(name) or self:fail("set_dtype: no value named '%s'", name)
  if not mil.DATA_TYPE[dtype] then self:fail("set_dtype: unknown dtype '%s'", tostring(dtype)) end
  t.dtype = dtype
  self:touch()
end

function F:set_shape(name, shape)
  local t = self:type_of(name) or self:fail("set_shape: no value named '%s'", name)
  t.shape = ir.copy_shape(shape)
  self:touch()
end

-- ---- function I/O ------------------------------------------------------------------------------------
function F:add_input(name, dtype, shape, o)
  if self:type_of(name) then self:fail("add_input: a value named '%s' exists", name) end
  if not mil.valid_name(name) then self:fail("add_input: '%s' is not a valid MIL identifier", name) end
  table.insert(self.fn.inputs, { name = name, dtype = dtype, shape = ir.copy_shape(shape), kind = "tensor" })
  self.editor:describe(self.name, "input", { name = name, dtype = dtype, shape = shape, feature = o and o.feature })
  self:touch()
end

function F:remove_input(name)
  for i, v in ipairs(self.fn.inputs) do
    if v.name == name then
      if #self:uses(name) > 0 then self:fail("remove_input: input '%s' is still used", name) end
      table.remove(self.fn.inputs, i)
      self.editor:undescribe(self.name, "input", name)
      self:touch()
      return
    end
  end
  self:fail("remove_input: no input named '%s'", name)
end

function F:add_output(name, o)
  local t = self:type_of(name) or self:fail("add_output: no value named '%s'", name)
  for _, n in ipairs(self.fn.block.outputs) do
    if n == name then self:fail("add_output: '%s' is already an output", name) end
  end
  table.insert(self.fn.block.outputs, name)
  self.editor:describe(self.name, "output", { name = name, dtype = t.dtype, shape = t.shape, feature = o and o.feature })
  self:touch()
end

function F:remove_output(name)
  for i, n in ipairs(self.fn.block.outputs) do
    if n == name then
      table.remove(self.fn.block.outputs, i)
      self.editor:undescribe(self.name, "output", name)
      self:touch()
      return
    end
  end
  self:fail("remove_output: no output named '%s'", name)
end

return M
