-- mlsh.onnx.types — ONNX element types and TypeProto values as plain Lua tables.
-- A value type is {kind = "tensor"|"sparse_tensor"|"sequence"|"map"|"optional"|"opaque",
-- elem = ONNX DataType number (tensors), shape = list of dims | nil (unknown rank),
-- inner = value type (sequence/optional elements, map values), key = DataType (maps)}.
-- A dim is an integer, a string (symbolic dim_param), or false (unknown).
local M = {}

-- ONNX TensorProto.DataType numbers -> names as ONNX spells them.
M.ONNX_NAMES = {
  [0] = "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL",
  "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
  "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2",
}
M.BY_NAME = {}
for n, name in pairs(M.ONNX_NAMES) do M.BY_NAME[name] = n end

-- mlsh's dtype names (as `mlsh info` prints them); others are the lowercase ONNX name.
local SHORT = {
  FLOAT = "fp32", FLOAT16 = "fp16", BFLOAT16 = "bf16", DOUBLE = "fp64", INT8 = "int8", INT16 = "int16",
  INT32 = "int32", INT64 = "int64", UINT8 = "uint8", UINT16 = "uint16", UINT32 = "uint32", UINT64 = "uint64",
  BOOL = "bool", STRING = "string",
}

-- Bits per element (0: variable, as strings).
local BITS = {
  [1] = 32, [2] = 8, [3] = 8, [4] = 16, [5] = 16, [6] = 32, [7] = 64, [8] = 0, [9] = 8, [10] = 16, [11] = 64,
  [12] = 32, [13] = 64, [14] = 64, [15] = 128, [16] = 16, [17] = 8, [18] = 8, [19] = 8, [20] = 8, [21] = 4,
  [22] = 4, [23] = 4, [24] = 8, [25] = 2, [26] = 2,
}

-- The names mlsh.core.array.decode understands, for the types it can turn into float32.
local DECODE = {
  [1] = "fp32", [2] = "uint8", [3] = "int8", [4] = "uint16", [5] = "int16", [6] = "int32", [7] = "int64",
  [9] = "bool", [10] = "fp16", [11] = "fp64", [12] = "uint32", [13] = "uint64", [16] = "bf16",
  [17] = "fp8e4m3fn", [19] = "fp8e5m2", [21] = "uint4", [22] = "int4", [25] = "uint2",
}

M.FLOAT, M.UINT8, M.INT8, M.INT32, M.INT64, M.BOOL, M.FLOAT16, M.DOUBLE, M.BFLOAT16 = 1, 2, 3, 6, 7, 9, 10, 11, 16

function M.dtype_name(n)
  if n == nil then return nil end
  local name = M.ONNX_NAMES[n]
  if not name then return "dtype_" .. tostring(n) end
  return SHORT[name] or name:lower()
end

function M.onnx_name(n) return M.ONNX_NAMES[n] or ("dtype_" .. tostring(n)) end
function M.bits(n) return BITS[n] end
function M.decode_name(n) return DECODE[n] end
function M.is_float(n) return n == 1 or n == 10 or n == 11 or n == 16 end
function M.is_int(n) return n == 2 or n == 3 or n == 4 or n == 5 or n == 6 or n == 7 or n == 12 or n == 13 end

-- Bytes n elements take (sub-byte types packed, rounded up); nil for strings.
function M.nbytes(n, count)
  local b = BITS[n]
  if not b or b == 0 then return nil end
  return (count * b + 7) // 8
end

-- TensorShapeProto Message -> list of dims.
function M.shape_of(sp)
  local dims = {}
  for i, d in ipairs(sp.dim) do
    local which = d:which("dim_value")
    if which == "dim_value" then dims[i] = d.dim_value
    elseif which == "dim_param" then dims[i] = d.dim_param
    else dims[i] = false end
  end
  return dims
end

-- TypeProto Message -> value type table (nil when absent).
function M.type_of(tp)
  if not tp then return nil end
  local which = tp:which("tensor_type")
  if which == "tensor_type" or which == "sparse_tensor_type" then
    local t = tp[which]
    return { kind = which == "tensor_type" and "tensor" or "sparse_tensor", elem = t:has("elem_type") and t.elem_type
      or nil,
             shape = t:has("shape") and M.shape_of(t.shape) or nil }
  elseif which == "sequence_type" then
    return { kind = "sequence", inner = M.type_of(tp.sequence_type.elem_type) }
  elseif which == "optional_type" then
    return { kind = "optional", inner = M.type_of(tp.optional_type.elem_type) }
  elseif which == "map_type" then
    return { kind = "map", key = tp.map_type.key_type, inner = M.type_of(tp.map_type.value_type) }
  elseif which == "opaque_type" then
    return { kind = "opaque", domain = tp.opaque_type.domain, name = tp.opaque_type.name }
  end
  return { kind = "unknown" }
end

-- Whether every dim is a known positive integer (ONNX Runtime's "fixed size tensor").
function M.is_static(shape)
  if not shape then return false end
  for _, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d <= 0 then return false end
  end
  return true
end

function M.numel(shape)
  local n = 1
  for _, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d < 0 then return nil end
    n = n * d
  end
  return n
end

function M.shape_string(shape)
  if not shape then return "?" end
  local parts = {}
  for i, d in ipairs(shape) do parts[i] = d == false and "?" or tostring(d) end
  return "[" .. table.concat(parts, ",") .. "]"
end

function M.type_string(vt)
  if not vt then return "?" end
  if vt.kind == "tensor" or vt.kind == "sparse_tensor" then
    return (vt.kind == "sparse_tensor" and "sparse " or "") .. (M.dtype_name(vt.elem) or "?")
      .. M.shape_string(vt.shape)
  elseif vt.kind == "map" then
    return "map(" .. (M.dtype_name(vt.key) or "?") .. "," .. M.type_string(vt.inner) .. ")"
  elseif vt.kind == "opaque" then
    return "opaque(" .. tostring(vt.domain) .. "." .. tostring(vt.name) .. ")"
  end
  return vt.kind .. "(" .. M.type_string(vt.inner) .. ")"
end

return M
