-- mlsh.builder.features — the parts both builders share: model inputs (shapes, enumerated shapes,
-- ranges, images, states) as FeatureDescriptions, metadata, the spec-version ledger ("reasons"),
-- error reporting that points at the recipe line, and deterministic saving through mlsh.writer.
local spec = require "mlsh.spec"

local M = {}

-- ---- errors ----------------------------------------------------------------------------------------
-- Builder errors are raised as tables {msg = ...} inside the builder and turned into one line
-- "recipe.lua:12: <msg>" at the API boundary, naming the first caller outside the builder.
local function is_builder_source(src)
  return src:find("mlsh/builder", 1, true) ~= nil or src:find("mlsh%.builder") ~= nil
end

function M.blame()
  for level = 3, 40 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and not is_builder_source(info.source) then
      return string.format("%s:%d: ", info.short_src, info.currentline or 0)
    end
  end
  return ""
end

function M.fail(fmt, ...)
  error({ msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt }, 0)
end

-- Run fn(...) and re-raise builder failures as "where: msg" strings (other errors unchanged).
function M.guard(where, fn, ...)
  local r = table.pack(pcall(fn, ...))
  if r[1] then return table.unpack(r, 2, r.n) end
  local e = r[2]
  if type(e) == "table" and e.msg then error(M.blame() .. (where ~= "" and (where .. ": ") or "") .. e.msg, 0) end
  error(e, 0)
end

-- ---- input declarations ------------------------------------------------------------------------------
local function is_int_list(t)
  if type(t) ~= "table" then return false end
  for _, d in ipairs(t) do if math.type(d) ~= "integer" then return false end end
  return true
end

local function shape_str(s)
  local t = {}
  for i, d in ipairs(s) do t[i] = d < 0 and "?" or tostring(d) end
  return "[" .. table.concat(t, ",") .. "]"
end
M.shape_str = shape_str

-- Normalize the third argument of :input(name, dtype, x) into
-- {shape = default shape, flex = nil | {kind = "enumerated", shapes} | {kind = "range", ranges}, dims = shape
-- with -1 where the size varies}.
function M.parse_shape(name, x)
  if type(x) == "table" and x[1] ~= nil and is_int_list(x) then
    for _, d in ipairs(x) do if d <= 0 then M.fail("input '%s': dimensions must be positive, got %s", name, shape_str(x)) end end
    return { shape = x, dims = x }
  end
  if type(x) ~= "table" then M.fail("input '%s': give a shape {d1, d2, ...}, {shapes = {...}} or {range = {{lo, hi}, ...}}", name) end
  if x.shapes then
    local shapes = x.shapes
    if #shapes < 1 then M.fail("input '%s': enumerated shapes need at least one shape", name) end
    local rank = #shapes[1]
    local dims = {}
    for i = 1, rank do dims[i] = shapes[1][i] end
    for k, s in ipairs(shapes) do
      if not is_int_list(s) or #s ~= rank then M.fail("input '%s': enumerated shape %d is not a rank-%d list of integers", name, k, rank) end
      for i, d in ipairs(s) do
        if d <= 0 then M.fail("input '%s': dimensions must be positive, got %s", name, shape_str(s)) end
        if dims[i] ~= d then dims[i] = -1 end
      end
    end
    local default = x.default or shapes[1]
    local found = false
    for _, s in ipairs(shapes) do if table.concat(s, ",") == table.concat(default, ",") then found = true end end
    if not found then M.fail("input '%s': the default shape %s is not one of the enumerated shapes", name, shape_str(default)) end
    return { shape = default, dims = dims, flex = { kind = "enumerated", shapes = shapes } }
  elseif x.range then
    local ranges, dims, default = x.range, {}, {}
    for i, r in ipairs(ranges) do
      local lo, hi = r[1], r[2]
      if math.type(lo) ~= "integer" or math.type(hi) ~= "integer" or lo < 1 or (hi ~= -1 and hi < lo) then
        M.fail("input '%s': range %d must be {lo, hi} with 1 <= lo <= hi (hi = -1: unbounded), got {%s, %s}", name, i, tostring(lo), tostring(hi))
      end
      dims[i] = (lo == hi) and lo or -1
      default[i] = lo
    end
    if x.default then
      if #x.default ~= #ranges then M.fail("input '%s': the default shape %s does not match %d ranges", name, shape_str(x.default), #ranges) end
      for i, d in ipairs(x.default) do
        local r = ranges[i]
        if d < r[1] or (r[2] ~= -1 and d > r[2]) then M.fail("input '%s': default dimension %d (%d) is outside its range", name, i, d) end
      end
      default = x.default
    end
    return { shape = default, dims = dims, flex = { kind = "range", ranges = ranges } }
  elseif x.shape then
    return M.parse_shape(name, x.shape)
  end
  M.fail("input '%s': give a shape {d1, d2, ...}, {shapes = {...}} or {range = {{lo, hi}, ...}}", name)
end

local ARRAY_DATA_TYPE = { fp32 = "FLOAT32", fp64 = "DOUBLE", fp16 = "FLOAT16", int32 = "INT32", int8 = "INT8" }
M.ARRAY_DATA_TYPE = ARRAY_DATA_TYPE
local COLOR_SPACE = { RGB = "RGB", BGR = "BGR", GRAYSCALE = "GRAYSCALE", GRAYSCALE_FLOAT16 = "GRAYSCALE_FLOAT16" }
M.COLOR_SPACE = COLOR_SPACE

local function fill_array(arr, dtype, shape, flex)
  arr.shape = shape
  arr.dataType = ARRAY_DATA_TYPE[dtype]
  if flex and flex.kind == "enumerated" then
    local es = arr:mutable("enumeratedShapes")
    for _, s in ipairs(flex.shapes) do es:add("shapes").shape = s end
  elseif flex and flex.kind == "range" then
    local sr = arr:mutable("shapeRange")
    for _, r in ipairs(flex.ranges) do
      local x = sr:add("sizeRanges")
      x.lowerBound, x.upperBound = r[1], r[2]
    end
  end
end

-- Append a FeatureDescription to owner[field] for a feature record:
-- {name, kind = "array"|"image"|"state", dtype, shape, flex, width, height, color, description}
function M.describe(owner, field, f)
  local fd = owner:add(field)
  fd.name = f.name
  if f.description then fd.shortDescription = f.description end
  local ft = fd:mutable("type")
  if f.kind == "image" then
    local im = ft:mutable("imageType")
    im.width, im.height, im.colorSpace = f.width, f.height, COLOR_SPACE[f.color]
  elseif f.kind == "state" then
    fill_array(ft:mutable("stateType"):mutable("arrayType"), f.dtype, f.shape)
  else
    local arr = ft:mutable("multiArrayType")
    if f.shape then fill_array(arr, f.dtype, f.shape, f.flex) else arr.dataType = ARRAY_DATA_TYPE[f.dtype] end
  end
  return fd
end

-- metadata = {author, license, short_description, version, user_defined = {k = v}}
function M.metadata(desc, meta)
  if not meta then return end
  local md = desc:mutable("metadata")
  if meta.short_description then md.shortDescription = meta.short_description end
  if meta.version then md.versionString = meta.version end
  if meta.author then md.author = meta.author end
  if meta.license then md.license = meta.license end
  local keys = {}
  for k in pairs(meta.user_defined or {}) do keys[#keys + 1] = k end
  table.sort(keys) -- deterministic files
  for _, k in ipairs(keys) do
    local e = md:add("userDefined")
    e.key, e.value = k, tostring(meta.user_defined[k])
  end
end

-- ---- the spec-version ledger -------------------------------------------------------------------------
-- Every reason the content needs a spec version: {id, min_spec, text, where}. The model's version is
-- the largest min_spec; the list explains it.
local Ledger = {}
Ledger.__index = Ledger

function M.ledger() return setmetatable({ list = {}, seen = {} }, Ledger) end

function Ledger:feature(id, where)
  local f = assert(spec.feature(id), id)
  self:add(id, f.min_spec, f.text, where)
end

function Ledger:add(id, min_spec, text, where)
  local key = id .. "\0" .. tostring(where)
  if self.seen[key] then return end
  self.seen[key] = true
  self.list[#self.list + 1] = { id = id, min_spec = min_spec, text = text, where = where }
end

function Ledger:result()
  local list = self.list
  table.sort(list, function(a, b)
    if a.min_spec ~= b.min_spec then return a.min_spec > b.min_spec end
    if a.id ~= b.id then return a.id < b.id end
    return tostring(a.where) < tostring(b.where)
  end)
  return list[1] and list[1].min_spec or spec.MIN, list
end

-- Check an explicit spec request against the ledger; returns the spec version to write.
function M.choose_spec(requested, ledger)
  local need, reasons = ledger:result()
  if requested == nil then return need, reasons end
  local n, err = spec.resolve(requested)
  if not n then M.fail("spec: %s", err) end
  if n < need then
    local top = reasons[1]
    M.fail("spec %d was asked for, but the content needs %d (%s%s)", n, need, top.text, top.where and (": " .. top.where) or "")
  end
  return n, reasons
end

-- ---- deterministic saving -----------------------------------------------------------------------------
-- writer.save names the two Manifest.json items with random UUIDs. For byte-identical rebuilds the
-- builder derives them from the model bytes instead, by standing in for writer.uuid during its call.
local function uuid_from(hash, k)
  local stream = require("mlsh.builder.random").stream(hash + k)
  local hex = {}
  for i = 1, 16 do
    local b = math.floor(stream() * 256)
    if i == 7 then b = (b & 0x0f) | 0x40 end
    if i == 9 then b = (b & 0x3f) | 0x80 end
    hex[i] = string.format("%02X", b)
  end
  local h = table.concat(hex)
  return string.format("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
end
M.uuid_from = uuid_from

function M.save(model, read_blob, path, opts)
  if type(path) ~= "string" then error("save: expected a path string, got " .. type(path), 3) end
  local writer = require "mlsh.model.writer"
  local hash = require("mlsh.builder.random").fnv1a(model:encode())
  local k = 0
  local original = writer.uuid
  writer.uuid = function()
    k = k + 1
    return uuid_from(hash, k)
  end
  local ok, err = pcall(writer.save, model, read_blob, path, opts or {})
  writer.uuid = original
  if not ok then error(err, 0) end
  return path
end

return M
