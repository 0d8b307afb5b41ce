-- A JSON Schema (draft 2020-12) validator for the subset the committed schemas use: type, const,
-- enum, minimum, maximum, minLength, minItems, uniqueItems, items, required, properties,
-- additionalProperties (boolean or schema), $ref to "#/…" pointers. Annotations ($schema, $id,
-- title, description, $defs) are skipped; any other keyword is an error, so a schema can never
-- be half-checked silently. Values are decoded by mlsh.json (arrays and objects keep their kind).
--   local ok, errs = require("json_schema").validate(schema, value)   -- errs: {"path: message"}
local json = require "mlsh.json"

local S = {}

local ANNOTATIONS = { ["$schema"] = true, ["$id"] = true, title = true, description = true, ["$defs"] = true }

local function kind_of(v)
  if v == json.null then return "null" end
  local t = type(v)
  if t == "table" then
    local mt = getmetatable(v)
    local name = mt and mt.__name
    if name == "json.array" then return "array" end
    if name == "json.object" then return "object" end
    return (#v > 0 or next(v) == nil) and "array" or "object"
  end
  if t == "number" then return math.type(v) == "integer" and "integer" or (v == math.floor(v) and "integer" or "number") end
  return t -- string, boolean
end

local function type_ok(want, v)
  local k = kind_of(v)
  if want == k then return true end
  return want == "number" and k == "integer"
end

local function same(a, b) return json.encode(a) == json.encode(b) end

local function resolve(root, ref)
  if ref:sub(1, 2) ~= "#/" then error("json_schema: only local $ref are supported: " .. ref) end
  local node = root
  for part in ref:sub(3):gmatch("[^/]+") do
    node = node[part]
    if node == nil then error("json_schema: unresolved $ref " .. ref) end
  end
  return node
end

local check

local KEYWORDS = {}
function KEYWORDS.type(s, v, path, errs)
  local list = type(s.type) == "table" and s.type or { s.type }
  for _, t in ipairs(list) do if type_ok(t, v) then return end end
  errs[#errs + 1] = string.format("%s: expected %s, got %s", path, table.concat(list, "|"), kind_of(v))
end
function KEYWORDS.const(s, v, path, errs)
  if not same(s.const, v) then errs[#errs + 1] = path .. ": expected " .. json.encode(s.const) end
end
function KEYWORDS.enum(s, v, path, errs)
  for _, x in ipairs(s.enum) do if same(x, v) then return end end
  errs[#errs + 1] = path .. ": " .. json.encode(v) .. " not in " .. json.encode(s.enum)
end
function KEYWORDS.minimum(s, v, path, errs)
  if type(v) == "number" and v < s.minimum then errs[#errs + 1] = string.format("%s: %s < minimum %s", path, v, s.minimum) end
end
function KEYWORDS.maximum(s, v, path, errs)
  if type(v) == "number" and v > s.maximum then errs[#errs + 1] = string.format("%s: %s > maximum %s", path, v, s.maximum) end
end
function KEYWORDS.minLength(s, v, path, errs)
  if type(v) == "string" and utf8.len(v) < s.minLength then errs[#errs + 1] = path .. ": shorter than " .. s.minLength end
end
function KEYWORDS.minItems(s, v, path, errs)
  if kind_of(v) == "array" and #v < s.minItems then errs[#errs + 1] = path .. ": fewer than " .. s.minItems .. " items" end
end
function KEYWORDS.uniqueItems(s, v, path, errs)
  if not s.uniqueItems or kind_of(v) ~= "array" then return end
  local seen = {}
  for i, x in ipairs(v) do
    local k = json.encode(x)
    if seen[k] then errs[#errs + 1] = string.format("%s: item %d repeats item %d", path, i, seen[k]) end
    seen[k] = seen[k] or i
  end
end
function KEYWORDS.items(s, v, path, errs, root)
  if kind_of(v) ~= "array" then return end
  for i, x in ipairs(v) do check(s.items, x, path .. "[" .. i .. "]", errs, root) end
end
function KEYWORDS.required(s, v, path, errs)
  if kind_of(v) ~= "object" then return end
  for _, k in ipairs(s.required) do
    if v[k] == nil then errs[#errs + 1] = path .. ": missing required key '" .. k .. "'" end
  end
end
function KEYWORDS.properties(s, v, path, errs, root)
  if kind_of(v) ~= "object" then return end
  for k, sub in pairs(s.properties) do
    if v[k] ~= nil then check(sub, v[k], path .. "." .. k, errs, root) end
  end
end
function KEYWORDS.additionalProperties(s, v, path, errs, root)
  if kind_of(v) ~= "object" then return end
  local ap = s.additionalProperties
  for k, x in pairs(v) do
    if not (s.properties and s.properties[k]) then
      if ap == false then errs[#errs + 1] = path .. ": unexpected key '" .. k .. "'"
      elseif type(ap) == "table" then check(ap, x, path .. "." .. k, errs, root) end
    end
  end
end
KEYWORDS["$ref"] = function(s, v, path, errs, root) check(resolve(root, s["$ref"]), v, path, errs, root) end

function check(schema, v, path, errs, root)
  if schema == true then return end
  if schema == false then errs[#errs + 1] = path .. ": no value allowed" return end
  for k in pairs(schema) do
    if not KEYWORDS[k] and not ANNOTATIONS[k] then error("json_schema: unsupported keyword '" .. k .. "' at " .. path) end
  end
  for k in pairs(schema) do
    if KEYWORDS[k] then KEYWORDS[k](schema, v, path, errs, root) end
  end
end

function S.validate(schema, value)
  local errs = {}
  check(schema, value, "$", errs, schema)
  table.sort(errs)
  return #errs == 0, errs
end

return S
