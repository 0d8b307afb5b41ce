-- mlsh.builder.mil — writing MIL messages (MILSpec.Value, ValueType, Operation pieces) from plain
-- Lua descriptions, encoded the way coremltools' backend (load.py / helper.py) encodes them.
local core = require "mlsh.core"

local M = {}

-- MIL dtype name -> MILSpec.DataType enum name.
M.DATA_TYPE = {
  bool = "BOOL", string = "STRING", fp16 = "FLOAT16", fp32 = "FLOAT32", fp64 = "FLOAT64", bf16 = "BFLOAT16",
  int4 = "INT4", int8 = "INT8", int16 = "INT16", int32 = "INT32", int64 = "INT64",
  uint1 = "UINT1", uint2 = "UINT2", uint3 = "UINT3", uint4 = "UINT4", uint6 = "UINT6",
  uint8 = "UINT8", uint16 = "UINT16", uint32 = "UINT32", uint64 = "UINT64",
}

M.FLOAT = { fp16 = true, fp32 = true, fp64 = true, bf16 = true }
M.INTEGER = { int4 = true, int8 = true, int16 = true, int32 = true, int64 = true, uint1 = true, uint2 = true,
  uint3 = true, uint4 = true, uint6 = true, uint8 = true, uint16 = true, uint32 = true, uint64 = true }

-- TensorValue field coremltools uses for an immediate of each dtype (helper.py _tensor_field_by_type).
local FIELD = {
  fp32 = "floats", fp64 = "doubles", bool = "bools", string = "strings", int64 = "longInts", uint64 = "longInts",
  int16 = "ints", uint16 = "ints", int32 = "ints",
}
function M.tensor_field(dtype) return FIELD[dtype] or "bytes" end

-- Which consts go to weight.bin (load.py should_use_weight_file): >= 10 elements of these dtypes.
local BLOB_DTYPES = { fp16 = true, fp32 = true, uint8 = true, int8 = true }
local BLOB_DTYPES_SPEC9 = { int16 = true, uint16 = true, int32 = true, uint32 = true }
M.MIN_BLOB_ELEMENTS = 10
function M.use_weight_file(dtype, count, spec_version)
  if count < M.MIN_BLOB_ELEMENTS then return false end
  return BLOB_DTYPES[dtype] or (spec_version >= 9 and BLOB_DTYPES_SPEC9[dtype]) or false
end

M.IDENTIFIER = "^[A-Za-z_][A-Za-z0-9_@]*$"
function M.valid_name(s) return type(s) == "string" and s:match(M.IDENTIFIER) ~= nil end

function M.count(shape)
  local n = 1
  for _, d in ipairs(shape) do
    if d < 0 then return nil end
    n = n * d
  end
  return n
end

-- Fill a ValueType message with a tensor type; negative dimensions are written as unknown.
function M.tensor_type(vt, dtype, shape)
  local t = vt:mutable("tensorType")
  t.dataType = assert(M.DATA_TYPE[dtype], dtype)
  t.rank = #shape
  for _, d in ipairs(shape) do
    local dim = t:add("dimensions")
    if d < 0 then dim:mutable("unknown") else dim:mutable("constant").size = d end
  end
  return t
end

function M.state_type(vt, dtype, shape)
  M.tensor_type(vt:mutable("stateType"):mutable("wrappedType"), dtype, shape)
end

local function as_list(data)
  if type(data) == "userdata" then return data:totable() end
  if type(data) ~= "table" then return { data } end
  return data
end
M.as_list = as_list

-- Bytes of data (an mlsh.Array or a Lua list of numbers/booleans) encoded as dtype.
function M.encode(data, dtype)
  if dtype == "bool" then
    local t = {}
    for i, b in ipairs(as_list(data)) do t[i] = (b == true or b == 1) and 1 or 0 end
    data = t
    dtype = "uint8"
  end
  if type(data) ~= "userdata" then data = core.array.new(as_list(data)) end
  return data:encode(dtype)
end

-- Fill Value message v with an immediate tensor.
function M.immediate(v, dtype, shape, data)
  M.tensor_type(v:mutable("type"), dtype, shape)
  local tv = v:mutable("immediateValue"):mutable("tensor")
  local field = M.tensor_field(dtype)
  if field == "bytes" then
    tv:mutable("bytes").values = M.encode(data, dtype)
  else
    local list = as_list(data)
    if field == "bools" then
      local t = {}
      for i, b in ipairs(list) do t[i] = b == true or b == 1 end
      list = t
    elseif field == "ints" or field == "longInts" then
      local t = {}
      for i, x in ipairs(list) do t[i] = math.tointeger(x) or error("value " .. tostring(x) .. " is not an integer", 0) end
      list = t
    elseif field == "strings" then
      local t = {}
      for i, x in ipairs(list) do t[i] = tostring(x) end
      list = t
    end
    tv:mutable(field).values = list
  end
  return v
end

function M.blob(v, dtype, shape, file, offset)
  M.tensor_type(v:mutable("type"), dtype, shape)
  local bf = v:mutable("blobFileValue")
  bf.fileName, bf.offset = file, offset
  return v
end

-- A string scalar Value (the `name` attribute every op carries, string params).
function M.string_value(v, s) return M.immediate(v, "string", {}, { s }) end

-- Program.attributes buildInfo: a dict<string, string> like coremltools writes.
function M.build_info(v, pairs_list)
  local vt = v:mutable("type"):mutable("dictionaryType")
  M.tensor_type(vt:mutable("keyType"), "string", {})
  M.tensor_type(vt:mutable("valueType"), "string", {})
  local dict = v:mutable("immediateValue"):mutable("dictionary")
  for _, kv in ipairs(pairs_list) do
    local e = dict:add("values")
    M.string_value(e:mutable("key"), kv[1])
    M.string_value(e:mutable("value"), kv[2])
  end
  return v
end

return M
