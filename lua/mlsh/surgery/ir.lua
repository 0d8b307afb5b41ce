-- mlsh.surgery.ir — an ML program function as editable Lua tables, read from and written back to
-- MILSpec messages.
--
--   local fn = ir.decode(name, fn_msg)     -- {name, opset, inputs, block, block_key, msg}
--   ir.encode(fn, fn_msg)                  -- rewrites fn_msg's inputs, opset and that block in place
--
-- A value type is {dtype, shape, kind = "tensor"|"state"|..., vt = the original ValueType message}:
-- tensors whose dtype and shape are unchanged keep their original message (symbolic dimensions
-- survive); others are written from dtype/shape (-1 = unknown dimension).
-- An op is {type, name, inputs = {{param, args = {{name = v} | {value = Value msg}}}},
-- outputs = {value types with .name}, attrs = {{key, value = Value msg}}, blocks = {block}}.
-- A block is {inputs = {value types with .name}, ops = {op...}, outputs = {names}}.
-- Messages held here point into a message the caller keeps alive and never edits (the editor keeps a
-- private copy of the source spec for that).
local types = require "mlsh.types"
local mil = require "mlsh.builder.mil"

local M = {}

local function shape_key(shape)
  local t = {}
  for i, d in ipairs(shape or {}) do t[i] = tostring(d) end
  return table.concat(t, ",")
end
M.shape_key = shape_key

function M.copy_shape(s)
  local o = {}
  for i, d in ipairs(s or {}) do o[i] = d end
  return o
end

-- A value type from a NamedValueType message.
local function value_of(nv)
  local t = types.value_type(nv.type)
  local v = { name = nv.name, dtype = t.dtype, shape = t.shape or {}, kind = t.kind, vt = nv.type }
  v._sig = tostring(t.dtype) .. "|" .. shape_key(t.shape) .. "|" .. t.kind
  return v
end
M.value_of = value_of

local function op_name(msg)
  local v = msg:get("attributes", "name")
  if v then
    local s = types.value(v)
    if type(s) == "table" then s = s[1] end
    if type(s) == "string" then return s end
  end
  return msg.outputs[1] and msg.outputs[1].name or ""
end

local decode_block

local function decode_op(msg)
  local op = { type = msg.type, inputs = {}, outputs = {}, attrs = {}, blocks = {} }
  op.name = op_name(msg)
  op._orig_name = op.name
  for _, e in ipairs(msg.inputs) do
    local p = { param = e.key, args = {} }
    for _, b in ipairs(e.value and e.value.arguments or {}) do
      if b:which("name") == "name" then p.args[#p.args + 1] = { name = b.name }
      else p.args[#p.args + 1] = { value = b.value } end
    end
    op.inputs[#op.inputs + 1] = p
  end
  for _, nv in ipairs(msg.outputs) do op.outputs[#op.outputs + 1] = value_of(nv) end
  for _, e in ipairs(msg.attributes) do op.attrs[#op.attrs + 1] = { key = e.key, value = e.value } end
  for _, b in ipairs(msg.blocks) do op.blocks[#op.blocks + 1] = decode_block(b) end
  return op
end
M.decode_op = decode_op

decode_block = function(msg)
  local b = { inputs = {}, ops = {}, outputs = {} }
  for _, nv in ipairs(msg.inputs) do b.inputs[#b.inputs + 1] = value_of(nv) end
  for _, o in ipairs(msg.operations) do b.ops[#b.ops + 1] = decode_op(o) end
  for i, n in ipairs(msg.outputs) do b.outputs[i] = n end
  return b
end

function M.decode(name, fmsg)
  local fn = { name = name, opset = fmsg.opset, inputs = {}, msg = fmsg }
  for _, nv in ipairs(fmsg.inputs) do fn.inputs[#fn.inputs + 1] = value_of(nv) end
  local blocks, keys = fmsg:map("block_specializations")
  fn.block_key = blocks[fmsg.opset] and fmsg.opset or keys[1]
  fn.block = fn.block_key and decode_block(blocks[fn.block_key]) or { inputs = {}, ops = {}, outputs = {} }
  fn.other_blocks = #keys - 1
  return fn
end

-- ---- encoding ---------------------------------------------------------------------------------------
local function write_type(nv, v)
  local sig = tostring(v.dtype) .. "|" .. shape_key(v.shape) .. "|" .. tostring(v.kind)
  if v.vt and sig == v._sig then
    nv.type = v.vt
    return
  end
  local vt_msg = nv:mutable("type")
  if v.kind == "state" then mil.state_type(vt_msg, v.dtype, v.shape)
  elseif v.kind == "tensor" or v.kind == nil then mil.tensor_type(vt_msg, v.dtype, v.shape)
  else error(string.format("value '%s': cannot change a %s type", v.name, tostring(v.kind)), 0) end
end

local function write_named(nv, v)
  nv.name = v.name
  write_type(nv, v)
end

local encode_block

local function encode_op(msg, op)
  msg.type = op.type
  for _, p in ipairs(op.inputs) do
    local e = msg:add("inputs")
    e.key = p.param
    local arg = e:mutable("value")
    for _, a in ipairs(p.args) do
      local b = arg:add("arguments")
      if a.name then b.name = a.name else b.value = a.value end
    end
  end
  for _, v in ipairs(op.outputs) do write_named(msg:add("outputs"), v) end
  local named = false
  for _, a in ipairs(op.attrs) do
    local e = msg:add("attributes")
    e.key = a.key
    if a.key == "name" then
      named = true
      if op.name == op._orig_name and a.value then e.value = a.value
      else mil.string_value(e:mutable("value"), op.name) end
    else
      e.value = a.value
    end
  end
  if not named then
    local e = msg:add("attributes")
    e.key = "name"
    mil.string_value(e:mutable("value"), op.name)
  end
  for _, b in ipairs(op.blocks) do encode_block(msg:add("blocks"), b) end
end

encode_block = function(msg, b)
  for _, v in ipairs(b.inputs) do write_named(msg:add("inputs"), v) end
  for _, op in ipairs(b.ops) do encode_op(msg:add("operations"), op) end
  msg.outputs = b.outputs
end

-- Write fn into fn_msg (a copy of the function's original message): inputs, opset and the edited
-- block specialization; other specializations are kept as they were.
function M.encode(fn, fmsg)
  fmsg:clear("inputs")
  for _, v in ipairs(fn.inputs) do write_named(fmsg:add("inputs"), v) end
  local old_opset = fmsg.opset
  fmsg.opset = fn.opset
  local order, kept = {}, {}
  for _, e in ipairs(fmsg.block_specializations) do
    order[#order + 1] = e.key
    if e.key ~= fn.block_key then kept[e.key] = e.value:copy() end
  end
  fmsg:clear("block_specializations")
  local new_key = (fn.block_key == old_opset) and fn.opset or fn.block_key
  local done = false
  local function emit_edited()
    local e = fmsg:add("block_specializations")
    e.key = new_key
    encode_block(e:mutable("value"), fn.block)
    done = true
  end
  for _, key in ipairs(order) do
    if key == fn.block_key and not done then emit_edited()
    elseif kept[key] then
      local ne = fmsg:add("block_specializations")
      ne.key = key
      ne.value = kept[key]
    end
  end
  if not done then emit_edited() end
end

return M
