-- mlsh.types — Core ML feature types and MIL value types as plain Lua tables.
-- Dtype names follow MIL: fp16 fp32 fp64 int8 int32 ...; unknown dimensions are -1.
local core = require "mlsh.core"
local M = {}

-- Element types, from the C core (core/dtype.c through core/lua_dtype.c): the one dtype table.
M.BITS = core.dtype.bits       -- name -> bit width ("fp16" -> 16, "uint6" -> 6, "bool" -> 8)
M.IS_FLOAT = core.dtype.float  -- name -> true for float types
-- Bytes that n packed elements of dtype take (nil for an unknown dtype or no n).
function M.nbytes(dtype, n)
  if not n or not M.BITS[dtype] then return nil end
  return core.dtype.nbytes(dtype, n)
end

local ARRAY_DTYPES = { FLOAT32 = "fp32", DOUBLE = "fp64", FLOAT16 = "fp16", INT32 = "int32", INT8 = "int8" }
M.ARRAY_DTYPES = ARRAY_DTYPES
local KINDS = {
  multiArrayType = "multiArray", imageType = "image", doubleType = "double", int64Type = "int64",
  stringType = "string", dictionaryType = "dictionary", sequenceType = "sequence", stateType = "state",
}
local COLOR = { GRAYSCALE = "grayscale", RGB = "rgb", BGR = "bgr", GRAYSCALE_FLOAT16 = "grayscale_fp16" }

local function array_fields(f, arr)
  f.dtype = ARRAY_DTYPES[arr.dataType] or (arr.dataType ~= "INVALID_ARRAY_DATA_TYPE" and tostring(arr.dataType)) or nil
  f.shape = arr.shape
  local flex = arr:which("enumeratedShapes") or arr:which("shapeRange")
  if flex == "enumeratedShapes" then
    local shapes = {}
    for i, s in ipairs(arr.enumeratedShapes.shapes) do shapes[i] = s.shape end
    f.flexibility = { kind = "enumerated", shapes = shapes }
  elseif flex == "shapeRange" then
    local ranges = {}
    for i, r in ipairs(arr.shapeRange.sizeRanges) do ranges[i] = { r.lowerBound, r.upperBound < 0 and -1 or r.upperBound } end
    f.flexibility = { kind = "range", ranges = ranges }
  end
end

-- FeatureDescription Message -> {name, kind, optional, dtype, shape, flexibility, ...}
function M.feature(fd)
  local t = fd.type
  local f = { name = fd.name, short_description = fd.shortDescription, optional = t and t.isOptional or false }
  local which = t and (t:which("multiArrayType")) or nil
  f.kind = KINDS[which] or which or "unknown"
  if which == "multiArrayType" then
    array_fields(f, t.multiArrayType)
  elseif which == "imageType" then
    local im = t.imageType
    f.width, f.height = im.width, im.height
    f.color_space = COLOR[im.colorSpace] or tostring(im.colorSpace)
    local flex = im:which("enumeratedSizes")
    if flex == "enumeratedSizes" then
      local shapes = {}
      for i, s in ipairs(im.enumeratedSizes.sizes) do shapes[i] = { s.height, s.width } end
      f.flexibility = { kind = "enumerated", shapes = shapes }
    elseif flex == "imageSizeRange" then
      local r = im.imageSizeRange
      local function rng(x) return x and { x.lowerBound, x.upperBound < 0 and -1 or x.upperBound } or { 0, -1 } end
      f.flexibility = { kind = "range", ranges = { rng(r.heightRange), rng(r.widthRange) } }
    end
  elseif which == "stateType" then
    local st = t.stateType
    if st:has("arrayType") then array_fields(f, st.arrayType) end
  elseif which == "dictionaryType" then
    f.key_kind = t.dictionaryType:which("int64KeyType") == "int64KeyType" and "int64" or "string"
  elseif which == "sequenceType" then
    f.element_kind = t.sequenceType:which("int64Type") == "int64Type" and "int64" or "string"
  end
  return f
end

local MIL_DTYPES = {
  BOOL = "bool", STRING = "string", FLOAT16 = "fp16", FLOAT32 = "fp32", FLOAT64 = "fp64", BFLOAT16 = "bf16",
  INT8 = "int8", INT16 = "int16", INT32 = "int32", INT64 = "int64", INT4 = "int4", UINT8 = "uint8",
  UINT16 = "uint16", UINT32 = "uint32", UINT64 = "uint64", UINT4 = "uint4", UINT2 = "uint2", UINT1 = "uint1",
  UINT6 = "uint6", UINT3 = "uint3", FLOAT8E4M3FN = "fp8e4m3fn", FLOAT8E5M2 = "fp8e5m2",
}
M.MIL_DTYPES = MIL_DTYPES

-- ValueType Message -> {kind="tensor"|"list"|"tuple"|"dict"|"state", dtype, rank, shape (-1 = unknown)}
function M.value_type(vt)
  if not vt then return { kind = "unknown" } end
  local which = vt:which("tensorType")
  if which == "tensorType" then
    local tt = vt.tensorType
    local shape = {}
    for i, d in ipairs(tt.dimensions) do
      shape[i] = d:which("constant") == "constant" and d.constant.size or -1
    end
    return { kind = "tensor", dtype = MIL_DTYPES[tt.dataType] or tostring(tt.dataType), rank = tt.rank, shape = shape }
  elseif which == "stateType" then
    local inner = M.value_type(vt.stateType.wrappedType)
    inner.kind = "state"
    return inner
  elseif which == "listType" then
    return { kind = "list", element = M.value_type(vt.listType.type) }
  elseif which == "tupleType" then
    return { kind = "tuple" }
  elseif which == "dictionaryType" then
    return { kind = "dict" }
  end
  return { kind = "unknown" }
end

function M.type_string(t)
  if not t or not t.dtype then return t and t.kind or "?" end
  local dims = {}
  for i, d in ipairs(t.shape or {}) do dims[i] = d < 0 and "?" or tostring(d) end
  return string.format("%s[%s]", t.dtype, table.concat(dims, ","))
end

-- Element count of a shape; nil when a dimension is unknown or the product would overflow (a
-- file can declare any shape: such a tensor is "unknown size", never a wrapped-around number).
local MAX_COUNT = 1 << 53
local function count(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do
    if math.type(d) ~= "integer" or d < 0 then return nil end
    if d > 0 and n > MAX_COUNT // d then return nil end
    n = n * d
  end
  return n
end
M.count = count

-- Decode an immediate MIL Value: scalars come back as numbers/strings/booleans, tensors of more
-- than one element (or rank >= 1) as Lua lists; blob values return nil (read them via weights).
function M.value(v)
  if not v:has("immediateValue") then return nil end
  local iv = v.immediateValue
  local which = iv:which("tensor")
  if which ~= "tensor" then
    if which == "list" or which == "tuple" then
      local out = {}
      for i, x in ipairs(iv[which].values) do out[i] = M.value(x) end
      return out
    end
    return nil
  end
  local t = M.value_type(v.type)
  local tv = iv.tensor
  local kind = tv:which("floats")
  local vals
  if kind == "bytes" then
    local raw = tv.bytes.values
    local dt = t.dtype
    if dt == "string" or not core.array then vals = { raw }
    else
      local n = count(t.shape) or 0
      local ok, a = pcall(core.array.decode, raw, dt, n)
      vals = ok and a:totable() or {}
    end
  elseif kind then
    vals = tv[kind].values
  else
    vals = {}
  end
  if t.rank == 0 or (t.shape and #t.shape == 0) then return vals[1] end
  return vals
end

return M
