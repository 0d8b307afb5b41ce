-- ONNX test models built by mlsh's own protobuf binding (core.proto with core/proto/onnx.proto),
-- so the ONNX specs need nothing outside the repository.
--   local B = require "onnx_builder"
--   local b = B.model{opset = 17}                       -- ir = 8, producer = "mlsh-tests"
--   b:input("x", "FLOAT", {1, "seq", 64})               -- dims: integer | string (dim_param) | false (unknown)
--   b:init("w", "FLOAT", {64, 64}, values)              -- raw_data; opts {typed=true} | {external="w.bin"}
--   b:node("MatMul", {"x", "w"}, {"y"}, {attr = v}, {domain=, name=})
--   b:const("c", "INT64", {2}, {1, 2})                  -- a Constant node
--   b:output("y", "FLOAT", {1, "seq", 64})
--   b:save(path) -> path (writes external files beside it), b:bytes(), b.msg (the ModelProto)
-- Attributes: integers -> INT, floats -> FLOAT, strings -> STRING, lists -> INTS/FLOATS/STRINGS
-- (B.floats{…} forces FLOATS, B.ints{} an empty INTS), B.tensor(dtype, dims, values) -> TENSOR,
-- a graph builder (B.graph()) -> GRAPH.
local core = require "mlsh.core"
local P = core.proto

local B = {}

B.DTYPE = {
  FLOAT = 1, UINT8 = 2, INT8 = 3, UINT16 = 4, INT16 = 5, INT32 = 6, INT64 = 7, STRING = 8, BOOL = 9,
  FLOAT16 = 10, DOUBLE = 11, UINT32 = 12, UINT64 = 13, BFLOAT16 = 16,
}
local PACK = { [1] = "<f", [2] = "<B", [3] = "<b", [4] = "<I2", [5] = "<i2", [6] = "<i4", [7] = "<i8", [9] = "<B",
               [11] = "<d", [12] = "<I4", [13] = "<I8" }

local function dtype_num(d)
  if type(d) == "number" then return d end
  return assert(B.DTYPE[d], "unknown dtype " .. tostring(d))
end

-- Values -> raw_data bytes (little-endian, as ONNX stores them).
function B.pack(dtype, values)
  dtype = dtype_num(dtype)
  if dtype == 10 then return core.array.new(values):encode("fp16") end
  if dtype == 16 then
    local parts = {}
    for i, v in ipairs(values) do
      local bits = string.unpack("<I4", string.pack("<f", v))
      parts[i] = string.pack("<I2", bits >> 16)
    end
    return table.concat(parts)
  end
  local fmt = assert(PACK[dtype], "cannot pack dtype " .. dtype)
  local parts = {}
  for i, v in ipairs(values) do
    if dtype == 9 then v = (v == true or v == 1) and 1 or 0 end
    if fmt ~= "<f" and fmt ~= "<d" then v = math.tointeger(v) or error("integer value expected, got " .. tostring(v)) end
    parts[i] = string.pack(fmt, v)
  end
  return table.concat(parts)
end

local function numel(dims)
  local n = 1
  for _, d in ipairs(dims) do n = n * d end
  return n
end

-- Fill a TensorProto message. `values` is a list, or {raw = bytes}, or nil (zeros).
function B.fill_tensor(t, name, dtype, dims, values, opts)
  opts = opts or {}
  dtype = dtype_num(dtype)
  if name then t.name = name end
  t.data_type = dtype
  t.dims = dims
  if dtype == 8 then t.string_data = values or {} return t end
  if type(values) == "table" and values.raw then
    t.raw_data = values.raw
  elseif opts.typed then
    values = values or {}
    if dtype == 1 then t.float_data = values
    elseif dtype == 11 then t.double_data = values
    elseif dtype == 7 then t.int64_data = values
    elseif dtype == 12 or dtype == 13 then t.uint64_data = values
    elseif dtype == 10 then
      local bits = {}
      local raw = core.array.new(values):encode("fp16")
      for i = 1, #values do bits[i] = string.unpack("<I2", raw, 2 * i - 1) end
      t.int32_data = bits
    else
      local ints = {}
      for i, v in ipairs(values) do ints[i] = dtype == 9 and ((v == true or v == 1) and 1 or 0) or v end
      t.int32_data = ints
    end
  else
    if not values then
      local zeros = {}
      for i = 1, numel(dims) do zeros[i] = 0 end
      values = zeros
    end
    t.raw_data = B.pack(dtype, values)
  end
  return t
end

-- A tensor attribute value.
function B.tensor(dtype, dims, values, opts)
  return { __tensor = true, dtype = dtype, dims = dims, values = values, opts = opts }
end
function B.floats(list) return { __floats = true, list = list } end
function B.ints(list) return { __ints = true, list = list or {} } end
function B.strings(list) return { __strings = true, list = list } end

local Graph = {}
Graph.__index = Graph

local function set_type(vi, dtype, shape)
  local tt = vi:mutable("type"):mutable("tensor_type")
  tt.elem_type = dtype_num(dtype)
  if shape then
    local sp = tt:mutable("shape")
    for _, d in ipairs(shape) do
      local dim = sp:add("dim")
      if math.type(d) == "integer" then dim.dim_value = d
      elseif type(d) == "string" then dim.dim_param = d end
    end
  end
end

function B.graph(name)
  local g = setmetatable({ msg = P.new("onnx.GraphProto"), externals = {}, counter = 0 }, Graph)
  g.msg.name = name or "g"
  return g
end

function Graph:input(name, dtype, shape)
  local vi = self.msg:add("input")
  vi.name = name
  set_type(vi, dtype, shape)
  return self
end
-- A graph input with a non-tensor type: kind = "sequence"|"optional", inner tensor dtype.
function Graph:typed_input(name, kind, dtype, shape)
  local vi = self.msg:add("input")
  vi.name = name
  local tp = vi:mutable("type")
  local inner = tp:mutable(kind .. "_type"):mutable("elem_type")
  local tt = inner:mutable("tensor_type")
  tt.elem_type = dtype_num(dtype)
  if shape then
    local sp = tt:mutable("shape")
    for _, d in ipairs(shape) do sp:add("dim").dim_value = d end
  end
  return self
end
function Graph:output(name, dtype, shape)
  local vi = self.msg:add("output")
  vi.name = name
  if dtype then set_type(vi, dtype, shape) end
  return self
end
function Graph:value_info(name, dtype, shape)
  local vi = self.msg:add("value_info")
  vi.name = name
  set_type(vi, dtype, shape)
  return self
end

-- An initializer; opts.external = "file.bin" puts its bytes in that file beside the model,
-- opts.typed = true stores a typed field instead of raw_data, opts.input = true also lists it as a graph input.
function Graph:init(name, dtype, dims, values, opts)
  opts = opts or {}
  local t = self.msg:add("initializer")
  B.fill_tensor(t, name, dtype, dims, values, opts)
  if opts.external then
    local raw = t.raw_data
    t:clear("raw_data")
    local file = opts.external
    local ext = self.externals[file] or { parts = {}, size = 0 }
    self.externals[file] = ext
    local offset = opts.offset or ext.size
    if offset > ext.size then ext.parts[#ext.parts + 1] = string.rep("\0", offset - ext.size); ext.size = offset end
    ext.parts[#ext.parts + 1] = raw
    ext.size = ext.size + #raw
    t.data_location = "EXTERNAL"
    local function kv(k, v) local e = t:add("external_data"); e.key, e.value = k, v end
    kv("location", file)
    kv("offset", tostring(offset))
    kv("length", tostring(opts.length or #raw))
  end
  if opts.input then
    local vi = self.msg:add("input")
    vi.name = name
    set_type(vi, dtype, dims)
  end
  return self
end

local function set_attr(a, name, v)
  a.name = name
  if type(v) == "table" and v.__tensor then
    B.fill_tensor(a:mutable("t"), nil, v.dtype, v.dims, v.values, v.opts)
    a.type = "TENSOR"
  elseif type(v) == "table" and getmetatable(v) == Graph then
    a.g = core.onnx.mark_bytes_present(v.msg) -- (assigning copies the message through its encoding)
    a.type = "GRAPH"
  elseif type(v) == "table" and v.__floats then a.floats = v.list; a.type = "FLOATS"
  elseif type(v) == "table" and v.__ints then a.ints = v.list; a.type = "INTS"
  elseif type(v) == "table" and v.__strings then a.strings = v.list; a.type = "STRINGS"
  elseif math.type(v) == "integer" then a.i = v; a.type = "INT"
  elseif type(v) == "number" then a.f = v; a.type = "FLOAT"
  elseif type(v) == "string" then a.s = v; a.type = "STRING"
  elseif type(v) == "table" then
    if #v == 0 or math.type(v[1]) == "integer" then a.ints = v; a.type = "INTS"
    elseif type(v[1]) == "number" then a.floats = v; a.type = "FLOATS"
    else a.strings = v; a.type = "STRINGS" end
  else
    error("cannot encode attribute " .. name)
  end
end

function Graph:node(op, inputs, outputs, attrs, opts)
  opts = opts or {}
  local n = self.msg:add("node")
  self.counter = self.counter + 1
  n.op_type = op
  n.name = opts.name or (op .. "_" .. self.counter)
  if opts.domain then n.domain = opts.domain end
  n.input = inputs or {}
  n.output = outputs or {}
  local names = {}
  for k in pairs(attrs or {}) do names[#names + 1] = k end
  table.sort(names) -- deterministic files
  for _, k in ipairs(names) do set_attr(n:add("attribute"), k, attrs[k]) end
  return self
end

function Graph:const(name, dtype, dims, values)
  return self:node("Constant", {}, { name }, { value = B.tensor(dtype, dims, values) })
end

-- ---- model -------------------------------------------------------------------------------------------
local Model = setmetatable({}, { __index = Graph })
Model.__index = function(self, k)
  local v = rawget(Model, k)
  if v ~= nil then return v end
  return Graph[k]
end

function B.model(opts)
  opts = opts or {}
  local m = P.new("onnx.ModelProto")
  m.ir_version = opts.ir or 8
  m.producer_name = opts.producer or "mlsh-tests"
  m.producer_version = opts.producer_version or "1"
  local os_ = m:add("opset_import")
  os_.domain = ""
  os_.version = opts.opset or 17
  for d, v in pairs(opts.opsets or {}) do
    local e = m:add("opset_import")
    e.domain, e.version = d, v
  end
  local g = B.graph(opts.name or "main")
  local self = setmetatable({ model_msg = m, msg = g.msg, externals = g.externals, counter = 0 }, Model)
  return self
end

function Model:metadata(k, v)
  local e = self.model_msg:add("metadata_props")
  e.key, e.value = k, v
  return self
end

-- A model-local function: name, domain, inputs, outputs, a graph builder for its nodes.
function Model:func(name, domain, inputs, outputs, body)
  local f = self.model_msg:add("functions")
  f.name, f.domain = name, domain
  f.input, f.output = inputs, outputs
  f.node = core.onnx.mark_bytes_present(body.msg).node
  local os_ = f:add("opset_import")
  os_.domain, os_.version = "", 17
  return self
end

function Model:proto()
  self.model_msg.graph = core.onnx.mark_bytes_present(self.msg)
  return self.model_msg
end

function Model:bytes() return core.onnx.mark_bytes_present(self:proto()):encode() end

function Model:save(path)
  local fs = core.fs
  assert(fs.write_atomic(path, self:bytes()))
  local dir = path:match("^(.*)/[^/]*$") or "."
  for file, ext in pairs(self.externals) do
    assert(fs.write_atomic(dir .. "/" .. file, table.concat(ext.parts)))
  end
  return path
end

return B
