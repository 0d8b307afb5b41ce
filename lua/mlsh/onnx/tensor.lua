-- mlsh.onnx.tensor — TensorProto as a Tensor object that knows where its bytes are without
-- reading them: inline raw_data, a payload left in the mapped .onnx file by the decoder
-- (mlsh_elided_*), an external-data file beside the model, or a typed field (float_data…).
--   t.name t.dtype (ONNX number) t.dims t.numel t.bytes t.storage ("raw"|"mapped"|"external"|"typed")
--   t.external = {location, offset, length}    t:values_array(model) -> mlsh.Array (reads on request)
--   t:values(model [, max]) -> exact Lua numbers (integers stay integers), nil when over max
--   t:raw(model) -> the little-endian payload bytes (nil, err for typed fields it cannot rebuild)
local core = require "mlsh.core"
local types = require "mlsh.onnx.types"

local M = {}
local Tensor = {}
Tensor.__index = Tensor
M.Tensor = Tensor

local TYPED_FIELD = { -- the typed field ONNX stores each data type in
  [1] = "float_data", [14] = "float_data", [2] = "int32_data", [3] = "int32_data", [4] = "int32_data",
  [5] = "int32_data", [6] = "int32_data", [9] = "int32_data", [10] = "int32_data", [16] = "int32_data",
  [17] = "int32_data", [18] = "int32_data", [19] = "int32_data", [20] = "int32_data", [21] = "int32_data",
  [22] = "int32_data", [23] = "int32_data", [24] = "int32_data", [25] = "int32_data", [26] = "int32_data",
  [7] = "int64_data", [8] = "string_data", [11] = "double_data", [15] = "double_data",
  [12] = "uint64_data", [13] = "uint64_data",
}
local ELIDED_FIELD = { [9] = "raw_data", [4] = "float_data", [10] = "double_data" }

-- string.unpack formats for exact decoding of small payloads
local UNPACK = { [1] = "<f", [2] = "<B", [3] = "<b", [4] = "<I2", [5] = "<i2", [6] = "<i4", [7] = "<i8", [9] = "<B",
                 [11] = "<d", [12] = "<I4", [13] = "<i8" }

function M.from_proto(msg)
  local t = setmetatable({ msg = msg, name = msg.name, dtype = msg.data_type, dims = msg.dims }, Tensor)
  t.numel = 1
  for _, d in ipairs(t.dims) do t.numel = t.numel * d end
  if msg.data_location == "EXTERNAL" then
    t.storage = "external"
    local ext = {}
    for _, kv in ipairs(msg.external_data) do ext[kv.key] = kv.value end
    t.external = { location = ext.location, offset = tonumber(ext.offset) or 0, length = tonumber(ext.length),
                   checksum = ext.checksum }
    t.bytes = t.external.length or types.nbytes(t.dtype, t.numel)
  elseif msg:has("mlsh_elided_length") then
    t.storage = "mapped"
    t.field = ELIDED_FIELD[msg.mlsh_elided_field] or "raw_data"
    t.offset, t.length = msg.mlsh_elided_offset, msg.mlsh_elided_length
    t.bytes = t.field == "raw_data" and t.length or types.nbytes(t.dtype, t.numel)
  elseif msg:has("raw_data") then
    t.storage = "raw"
    t.field = "raw_data"
    t.bytes = #msg.raw_data
  else
    t.storage = "typed"
    t.field = TYPED_FIELD[t.dtype]
    if t.dtype == 8 then
      local n = 0
      for _, s in ipairs(msg.string_data) do n = n + #s end
      t.bytes = n
    else
      t.bytes = types.nbytes(t.dtype, t.numel) or 0
    end
  end
  return t
end

-- The payload bytes in raw_data layout.
function Tensor:raw(model)
  if self.storage == "raw" then return self.msg.raw_data end
  if self.storage == "mapped" then return core.onnx.bytes(model, nil, self.offset, self.length) end
  if self.storage == "external" then
    local e = self.external
    if not e.location then return nil, (self.name or "?") .. ": external tensor without a location" end
    return core.onnx.bytes(model, e.location, e.offset, e.length)
  end
  return nil, "typed-field tensor"
end

-- Where the payload is, as (file|nil, offset, length) for core.onnx.values; nil for inline/typed.
local function place(self)
  if self.storage == "mapped" then return nil, self.offset, self.length end
  if self.storage == "external" then return self.external.location, self.external.offset, self.external.length end
end

function Tensor:values_array(model)
  local dec = types.decode_name(self.dtype)
  local shape = #self.dims > 0 and self.dims or nil
  if self.storage == "typed" then
    local f = self.field
    if not f or f == "string_data" then return nil, "cannot decode " .. types.onnx_name(self.dtype) .. " values" end
    if self.dtype == 10 or self.dtype == 16 then
      -- 16-bit floats stored as their bit patterns in int32_data
      local bits = self.msg:array(f)
      local raw = bits:encode("uint16")
      return core.array.decode(raw, self.dtype == 10 and "fp16" or "bf16", self.numel, shape)
    end
    local a = self.msg:array(f)
    if #a ~= self.numel then return a end
    if shape then a = a:reshape(shape) end
    return a
  end
  if not dec then return nil, "cannot decode " .. types.onnx_name(self.dtype) .. " values" end
  if self.field == "float_data" then dec = "fp32" elseif self.field == "double_data" then dec = "fp64" end
  if self.storage == "raw" then
    local raw = self.msg.raw_data
    local need = types.nbytes(self.dtype, self.numel)
    if need > #raw then return nil, string.format("%s: raw_data holds %d bytes, %d needed", self.name, #raw, need) end
    return core.array.decode(raw, dec, self.numel, shape)
  end
  local file, off, len = place(self)
  if self.storage == "external" and not file then return nil, (self.name or "?")
    .. ": external tensor without a location" end
  return core.onnx.values(model, file, off, len, dec, self.numel, shape)
end

-- Exact values as a Lua list (integers for integer types, booleans as 0/1), or nil when the tensor
-- holds more than `max` elements (default 4096) or cannot be decoded.
function Tensor:values(model, max)
  max = max or 4096
  if self.numel > max then return nil end
  if self._values then return self._values end
  local out = {}
  if self.storage == "typed" then
    local f = self.field
    if not f or f == "string_data" then
      if f == "string_data" then out = self.msg.string_data; self._values = out; return out end
      return nil
    end
    if self.dtype == 10 or self.dtype == 16 then
      local a = self:values_array(model)
      if not a then return nil end
      out = a:totable()
    else
      out = self.msg[f]
      if self.dtype == 9 then for i, v in ipairs(out) do out[i] = v ~= 0 and 1 or 0 end end
    end
  else
    local raw = self:raw(model)
    if not raw then return nil end
    local fmt = UNPACK[self.dtype]
    if self.field == "float_data" then fmt = "<f" elseif self.field == "double_data" then fmt = "<d" end
    if fmt then
      local size = string.packsize(fmt)
      if #raw < size * self.numel then return nil end
      local pos = 1
      for i = 1, self.numel do out[i], pos = string.unpack(fmt, raw, pos) end
    else
      local a = self:values_array(model)
      if not a then return nil end
      out = a:totable()
    end
  end
  if #out ~= self.numel then return nil end
  self._values = out
  return out
end

return M
