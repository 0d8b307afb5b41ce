-- mlsh.spec — Core ML specificationVersion tables (C core: core/spec.c, binding core/lua_spec.c).
--
-- Spec versions are integers 1..10. Lookups that fail because of the value (unknown target string,
-- spec out of range) return nil plus a message; arguments of the wrong type raise an error.
--
--   spec.info(v)              v = spec number or any string spec.resolve accepts ->
--                             {spec, ios, macos, tvos, watchos, visionos, os_note, coreml, opset,
--                              mil_tag, mil_tag_verified, ct_target, mlprogram, target, features}
--                             (OS versions are strings like "16" / "10.13.2"; absent where the table
--                             has none: visionos exists only for 7 ("1.0", observed) and 10; opset
--                             only from 4; mil_tag only from 6)
--   spec.all()                list of spec.info(1..10)
--   spec.from_target(s)       "iOS16" / "iOS 16" / "ios16.4" / "macOS10_15" / "tvOS16" / "watchOS9" /
--                             "visionOS1" / "coremltools.target.iOS17" -> newest spec that OS runs
--   spec.target_name(n [, platform])  7 -> "iOS16"; (4, "macOS") -> "macOS10_15"; (2) -> "iOS11_2"
--   spec.opset_spec(s)        "CoreML7" -> 8          spec.opset_name(n)   8 -> "CoreML7"
--   spec.mil_tag_spec(s)      "ios17" -> 8            spec.mil_tag(n)      8 -> "ios17"
--   spec.coreml_spec(s)       Core ML version "7" / "1.2" / "Core ML 6" -> spec
--   spec.resolve(v)           integer 1..10 as is, or any string above -> spec
--   spec.nn_layer(name|field) {name, field, min_spec, bumps = {{id, text, value?, values?, min_spec, ref?}}}
--   spec.nn_layers()          layer type names in NeuralNetwork.proto order
--   spec.nn_layer_min_spec(name|field [, props])
--                             minimum spec of a layer type; props (optional) describes the layer so
--                             conditional bumps apply: {n_inputs = 2}, {int8_dynamic_quantize = true},
--                             {mode = "PIXEL_SHUFFLE"}, {squeeze_masks = true}, ... (a bump with a value
--                             matches props[id] == value, with values when props[id] is one of them,
--                             otherwise when props[id] is truthy)
--   spec.features()           list of {id, min_spec, text, ref};  spec.feature(id) -> one of them
--   spec.feature_min_spec(id) "fp16_multiarray" -> 7, "int8_multiarray" -> 10, "states" -> 9, ...
--   spec.array_dtype(v) / spec.colorspace(v) / spec.model_type(v)
--                             v = enum name or value -> {name, value, min_spec, note?}
--   spec.array_dtype_min_spec(v) / spec.colorspace_min_spec(v) / spec.model_type_min_spec(v) -> n
--   spec.MIN, spec.MAX, spec.MIN_NEURALNETWORK (4), spec.MIN_MLPROGRAM (6)
local core = require("mlsh.core").spec

local spec = {
  MIN = core.MIN,
  MAX = core.MAX,
  MIN_NEURALNETWORK = core.MIN_NEURALNETWORK,
  MIN_MLPROGRAM = core.MIN_MLPROGRAM,
}

local function argerror(fname, n, expected, v)
  -- level 4: argerror <- check_* <- the API function <- its caller
  error(string.format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, type(v)), 4)
end

local function check_string(fname, n, v)
  if type(v) ~= "string" then argerror(fname, n, "string", v) end
end

local function check_integer(fname, n, v)
  if math.type(v) ~= "integer" then argerror(fname, n, "integer", v) end
end

local function check_table(fname, n, v)
  if type(v) ~= "table" then argerror(fname, n, "table", v) end
end

local function check_name_or_int(fname, n, v)
  if type(v) ~= "string" and math.type(v) ~= "integer" then argerror(fname, n, "string or integer", v) end
end

function spec.resolve(v)
  if math.type(v) == "integer" then
    if v < core.MIN or v > core.MAX then
      return nil, string.format("spec version %d is outside %d..%d", v, core.MIN, core.MAX)
    end
    return v
  end
  check_name_or_int("resolve", 1, v)
  return core.resolve(v)
end

function spec.info(v)
  check_name_or_int("info", 1, v)
  local n, err = spec.resolve(v)
  if not n then return nil, err end
  return core.info(n)
end

function spec.all()
  local out = {}
  for n = core.MIN, core.MAX do out[#out + 1] = core.info(n) end
  return out
end

function spec.from_target(s)
  check_string("from_target", 1, s)
  return core.from_target(s)
end

function spec.target_name(n, platform)
  check_integer("target_name", 1, n)
  if platform ~= nil then check_string("target_name", 2, platform) end
  return core.target_name(n, platform)
end

function spec.opset_spec(s)
  check_string("opset_spec", 1, s)
  return core.from_opset(s)
end

local function info_field(fname, n, field, what)
  check_integer(fname, 1, n)
  local info, err = core.info(n)
  if not info then return nil, err end
  if info[field] == nil then return nil, string.format("spec %d has no %s", n, what) end
  return info[field]
end

function spec.opset_name(n) return info_field("opset_name", n, "opset", "MIL opset (opsets start at spec 4)") end

function spec.mil_tag_spec(s)
  check_string("mil_tag_spec", 1, s)
  return core.from_mil_tag(s)
end

function spec.mil_tag(n) return info_field("mil_tag", n, "mil_tag", "model.mil tag (ML programs start at spec 6)") end

function spec.coreml_spec(s)
  check_string("coreml_spec", 1, s)
  return core.from_coreml(s)
end

function spec.nn_layer(v)
  check_name_or_int("nn_layer", 1, v)
  return core.nn_layer(v)
end

function spec.nn_layers() return core.nn_layers() end

-- Does a bump (or any {id, value?, values?} condition) match a props table?
local function bump_matches(b, props)
  local p = props[b.id]
  if p == nil or p == false then return false end
  if b.value ~= nil then return p == b.value end
  if b.values then
    for _, x in ipairs(b.values) do
      if p == x then return true end
    end
    return false
  end
  return true
end
spec._bump_matches = bump_matches -- shared with mlsh.optable

-- A layer's minimum spec n raised by the bumps {min_spec, ...} whose conditions props meet: the one
-- place both spec.nn_layer_min_spec and mlsh.optable.layer_min_spec (with overrides) compute it.
function spec.bumped(n, bumps, props)
  if props then
    for _, b in ipairs(bumps or {}) do
      if b.min_spec > n and bump_matches(b, props) then n = b.min_spec end
    end
  end
  return n
end

function spec.nn_layer_min_spec(v, props)
  check_name_or_int("nn_layer_min_spec", 1, v)
  if props ~= nil then check_table("nn_layer_min_spec", 2, props) end
  local layer, err = core.nn_layer(v)
  if not layer then return nil, err end
  return spec.bumped(layer.min_spec, layer.bumps, props)
end

function spec.features() return core.features() end

function spec.feature(id)
  check_string("feature", 1, id)
  return core.feature(id)
end

function spec.feature_min_spec(id)
  check_string("feature_min_spec", 1, id)
  local f, err = core.feature(id)
  if not f then return nil, err end
  return f.min_spec
end

for _, kind in ipairs({"array_dtype", "colorspace", "model_type"}) do
  spec[kind] = function(v)
    check_name_or_int(kind, 1, v)
    return core[kind](v)
  end
  spec[kind .. "_min_spec"] = function(v)
    check_name_or_int(kind .. "_min_spec", 1, v)
    local e, err = core[kind](v)
    if not e then return nil, err end
    return e.min_spec
  end
end

function spec.enums(kind)
  check_string("enums", 1, kind)
  return core.enums(kind)
end

-- "iOS16" / "macOS13" / "coremltools.target.iOS17" / "7" (a spec number) -> spec, name | nil, msg
function spec.parse_target(s)
  local n
  if s:match("^%d+$") then
    n = math.tointeger(tonumber(s))
    local ok, err = spec.resolve(n)
    if not ok then return nil, "unknown target '" .. s .. "': " .. err end
  else
    n = spec.from_target(s)
    if not n then
      local ok, r = pcall(spec.resolve, s)
      n = ok and r or nil
    end
    if not n then
      return nil, string.format("unknown target '%s' (examples: iOS16, macOS13, tvOS17, watchOS10, visionOS1, or a spec number %d..%d)",
        s, spec.MIN, spec.MAX)
    end
  end
  return n, spec.target_name(n) or ("spec" .. n)
end

return spec
