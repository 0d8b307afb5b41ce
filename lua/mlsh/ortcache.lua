-- mlsh.ortcache — ONNX Runtime's CoreML EP cache folder (ModelCacheDirectory): what the EP really
-- built from an ONNX model. One partition set per cache key: the ONNX path from model.txt and each
-- compiled Core ML model, opened like any .mlmodelc (layout: docs/containers.md; partly from
-- third-party observations).
--   local c = assert(require("mlsh.ortcache").open(dir))
--   c:partitions() -> {{key, onnx_path, dir, models = {path...}}}
--   c:models() -> {{key, index (0-based within the key), path}}; c:select(N | "key:N") -> Model
--   c:info() / c:summary() / c:close()
local core = require "mlsh.core"
local json = require "mlsh.json"

local M = {}
local Cache = {}
Cache.__index = Cache

function M.is_cache(path)
  local list = core.ortcache.scan(path)
  return list ~= nil and #list > 0
end

function M.open(path)
  local list, err = core.ortcache.scan(path)
  if not list then return nil, err end
  if #list == 0 then return nil, path .. ": not an ONNX Runtime Core ML cache folder (no model.txt)" end
  return setmetatable({ path = path, format = "ort_coreml_cache", _list = list, _models = {} }, Cache)
end

function Cache:partitions() return self._list end

function Cache:models()
  local out = {}
  for _, e in ipairs(self._list) do
    for i, p in ipairs(e.models) do out[#out + 1] = { key = e.key, index = i - 1, path = p } end
  end
  return out
end

-- Open one compiled model (cached until close).
function Cache:model(path)
  if self._models[path] then return self._models[path] end
  local m, err = require("mlsh").try_load(path)
  if not m then return nil, err end
  self._models[path] = m
  return m
end

function Cache:detach(m)
  for k, v in pairs(self._models) do if v == m then self._models[k] = nil end end
end

function Cache:close()
  for _, m in pairs(self._models) do m:close() end
  self._models = {}
end

function Cache:select(sel)
  local list = self:models()
  if #list == 0 then return nil, self.path .. ": the cache holds no compiled model" end
  if sel == nil then
    if #list > 1 then
      return nil, string.format("%s: %d cached models; choose one with --delegate N (0..%d) or KEY:N", self.path, #list, #list - 1)
    end
    return self:model(list[1].path)
  end
  local key, n = tostring(sel):match("^(.-):(%d+)$")
  for i, e in ipairs(list) do
    if (key and e.key == key and e.index == tonumber(n)) or (not key and i - 1 == math.tointeger(tonumber(sel))) then
      return self:model(e.path)
    end
  end
  return nil, string.format("%s: no cached model %s (%d models)", self.path, tostring(sel), #list)
end

function Cache:info()
  local parts = json.array({})
  for _, e in ipairs(self._list) do
    local models = json.array({})
    for _, p in ipairs(e.models) do
      local m, err = self:model(p)
      if not m then error(err, 0) end
      models[#models + 1] = { path = p, model = m:info() }
    end
    parts[#parts + 1] = { key = e.key, onnx_path = e.onnx_path, models = models }
  end
  return { format = "ort_coreml_cache", partitions = parts }
end

function Cache:summary()
  local lines = { string.format("%s (ONNX Runtime Core ML cache, %d key(s))", self.path, #self._list) }
  for _, e in ipairs(self._list) do
    lines[#lines + 1] = string.format("  key %s: ONNX model %s, %d compiled model(s)", e.key, e.onnx_path, #e.models)
    for i, p in ipairs(e.models) do
      local m, err = self:model(p)
      if not m then error(err, 0) end
      lines[#lines + 1] = string.format("    [%d] %s (%s)", i - 1, p, m.format)
      lines[#lines + 1] = (m:summary():gsub("^[^\n]*\n", ""):gsub("([^\n]+)", "    %1"))
    end
  end
  return table.concat(lines, "\n")
end

return M
