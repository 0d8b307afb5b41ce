-- mlsh.builder.wire — protobuf wire encoding for the few NeuralNetwork fields mlsh's own schema
-- subset (core/proto/coreml.proto) leaves undeclared (reshape targetShape, pooling padding, add
-- alpha, ...). The builder encodes them here and merges them into a Message by decoding
-- `msg:encode() .. extra`: protobuf merges concatenated messages, and fields the schema does not
-- name are kept as unknown fields and written back unchanged.
local P = require("mlsh.core").proto

local M = {}

local function varint(n)
  local out = {}
  repeat
    local b = n & 0x7f
    n = n >> 7 -- logical shift: negative int64 values take ten bytes, as protobuf wants
    if n ~= 0 then b = b | 0x80 end
    out[#out + 1] = string.char(b)
  until n == 0
  return table.concat(out)
end
M.varint = varint

local function key(field, wire_type) return varint((field << 3) | wire_type) end

-- proto3 leaves default values out; so do these.
function M.uint(field, n)
  if not n or n == 0 then return "" end
  return key(field, 0) .. varint(n)
end
M.enum = M.uint

function M.bool(field, b) return b and (key(field, 0) .. "\1") or "" end

function M.float(field, x)
  if not x or x == 0 then return "" end
  return key(field, 5) .. string.pack("<f", x)
end

function M.bytes(field, s) return key(field, 2) .. varint(#s) .. s end

-- A sub-message (already encoded); present even when empty, so oneof members stay selected.
M.message = M.bytes

function M.packed_varints(field, list)
  if not list or #list == 0 then return "" end
  local parts = {}
  for i, v in ipairs(list) do parts[i] = varint(v) end
  return M.bytes(field, table.concat(parts))
end

-- Merge extra encoded fields into a Message of type typename (msg may be nil): a new Message.
function M.merge(typename, msg, extra)
  local bytes = (msg and msg:encode() or "") .. (extra or "")
  local out, err = P.decode(typename, bytes)
  if not out then error("wire.merge: " .. tostring(err), 2) end
  return out
end

return M
