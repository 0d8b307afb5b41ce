-- mlsh.model.compiled — compiled .mlmodelc folders. Their spec is not shipped, so mlsh rebuilds the
-- part it can from what is there: metadata.json (spec version, I/O schema, model type) and the
-- model.mil text (the ML program, parsed by core.miltext) or model.espresso.net (layer types).
local core = require "mlsh.core"
local json = require "mlsh.json"

local M = {}

local DTYPES = { Float16 = "FLOAT16", Float32 = "FLOAT32", Double = "DOUBLE", Int32 = "INT32", Int8 = "INT8" }
local KINDS = { MultiArray = "multiArrayType", Image = "imageType", Double = "doubleType", Int64 = "int64Type",
                String = "stringType", Dictionary = "dictionaryType", Sequence = "sequenceType", State = "stateType" }

local function add_features(list_owner, field, schema)
  for _, s in ipairs(schema or {}) do
    local fd = list_owner:add(field)
    fd.name = tostring(s.name or "")
    fd.shortDescription = type(s.shortDescription) == "string" and s.shortDescription or ""
    local t = fd:mutable("type")
    t.isOptional = s.isOptional == "1"
    local kind = KINDS[s.type] or "multiArrayType"
    if kind == "multiArrayType" or kind == "stateType" then
      local arr = kind == "stateType" and t:mutable("stateType"):mutable("arrayType") or t:mutable("multiArrayType")
      local shape = {}
      for d in tostring(s.shape or ""):gmatch("%d+") do shape[#shape + 1] = math.tointeger(tonumber(d)) end
      arr.shape = shape
      if DTYPES[s.dataType] then arr.dataType = DTYPES[s.dataType] end
    else
      t:mutable(kind)
    end
  end
end

function M.attach_spec(m)
  local spec, rec = core.proto.new("CoreML.Specification.Model"), nil
  local meta_text = m:_read("metadata.json")
  local meta
  if meta_text then
    local ok, parsed = pcall(json.decode, meta_text)
    if not ok then return nil, m:_path() .. "/metadata.json: " .. tostring(parsed) end
    meta = parsed[1] or parsed
    spec.specificationVersion = math.tointeger(tonumber(meta.specificationVersion)) or 0
    spec.isUpdatable = meta.isUpdatable == "1"
    local d = spec:mutable("description")
    add_features(d, "input", meta.inputSchema)
    add_features(d, "output", meta.outputSchema)
    add_features(d, "state", meta.stateSchema)
    local md = d:mutable("metadata")
    if type(meta.author) == "string" then md.author = meta.author end
    if type(meta.license) == "string" then md.license = meta.license end
    if type(meta.shortDescription) == "string" then md.shortDescription = meta.shortDescription end
    if type(meta.version) == "string" then md.versionString = meta.version end
    if type(meta.userDefinedMetadata) == "table" then
      local keys = {}
      for k in pairs(meta.userDefinedMetadata) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local e = md:add("userDefined")
        e.key, e.value = k, tostring(meta.userDefinedMetadata[k])
      end
    end
  end
  local mil = m:_read("model.mil")
  if mil then
    if not core.miltext then return nil, m:_path() .. "/model.mil: this mlsh cannot read MIL text" end
    local bytes, err = core.miltext.parse(mil)
    if not bytes then return nil, m:_path() .. "/model.mil: " .. tostring(err) end
    local prog = assert(core.proto.decode("CoreML.Specification.MILSpec.Program", bytes))
    spec.mlProgram = prog
  else
    local net = m:_read("model.espresso.net")
    if net then
      local espresso = require "mlsh.espresso"
      local ok, parsed = pcall(json.decode, net)
      if not ok then return nil, m:_path() .. "/model.espresso.net: " .. tostring(parsed) end
      rec = espresso.build(spec, parsed)
    elseif not meta then
      return nil, m:_path() .. ": compiled model has neither metadata.json, model.mil nor model.espresso.net"
    end
  end
  m:_set_spec(spec)
  if rec then return require("mlsh.espresso").finish(m, rec) end
  return true
end

return M
