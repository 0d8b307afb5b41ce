-- mlsh.json — the one JSON encoder every command uses, and the decoder of the C core (core/json.c).
-- encode(v [, indent]) writes objects with sorted keys so output is stable; json.null stands for
-- null, json.array(t)/json.object(t) mark tables whose emptiness would otherwise be ambiguous.
local M = {}

M.null = setmetatable({}, { __tostring = function() return "null" end, __name = "json.null" })
local array_mt = { __name = "json.array" }
local object_mt = { __name = "json.object" }
function M.array(t) return setmetatable(t or {}, array_mt) end
function M.object(t) return setmetatable(t or {}, object_mt) end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return escapes[c] or string.format("\\u%04x", c:byte()) end) .. '"'
end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == array_mt then return true end
  if mt == object_mt then return false end
  local n = #t
  if n == 0 then return next(t) == nil end
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

local function number(v)
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if v == math.floor(v) and math.abs(v) < 2^53 then return string.format("%d", v) .. ".0" end
  -- the shortest form that reads back as the same double
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", v)
    if tonumber(s) == v or digits == 17 then return (s:gsub(",", ".")) end
  end
end

local function encode(v, out, indent, depth, seen)
  local t = type(v)
  if v == nil or v == M.null then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then out[#out + 1] = number(v)
  elseif t == "string" then out[#out + 1] = quote(v)
  elseif t == "table" then
    if seen[v] then error("json: cycle in table", 0) end
    seen[v] = true
    local nl = indent and ("\n" .. string.rep(indent, depth + 1)) or ""
    local close = indent and ("\n" .. string.rep(indent, depth)) or ""
    if is_array(v) then
      if #v == 0 then out[#out + 1] = "[]" else
        out[#out + 1] = "["
        for i = 1, #v do
          out[#out + 1] = (i > 1 and "," or "") .. nl
          encode(v[i], out, indent, depth + 1, seen)
        end
        out[#out + 1] = close .. "]"
      end
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      if #keys == 0 then out[#out + 1] = "{}" else
        out[#out + 1] = "{"
        for i, k in ipairs(keys) do
          local val = v[k]
          if val == nil then val = v[tonumber(k)] end
          out[#out + 1] = (i > 1 and "," or "") .. nl .. quote(k) .. (indent and ": " or ":")
          encode(val, out, indent, depth + 1, seen)
        end
        out[#out + 1] = close .. "}"
      end
    end
    seen[v] = nil
  elseif t == "userdata" then
    out[#out + 1] = quote(tostring(v))
  else
    error("json: cannot encode a " .. t, 0)
  end
end

function M.encode(v, indent)
  local out = {}
  encode(v, out, indent == true and "  " or indent, 0, {})
  return table.concat(out)
end

-- Decoder: the C reader (core/json.c, through core/lua_json.c): strict JSON -> Lua, null ->
-- json.null, arrays and objects marked, nesting capped at 64. Raises "json: line L: reason".
function M.decode(s)
  if type(s) ~= "string" then error("json: expected a string, got " .. type(s), 2) end
  local v, err = require("mlsh.core").json.decode(s, M.null, array_mt, object_mt)
  if err then error("json: " .. err, 0) end
  return v
end

return M
