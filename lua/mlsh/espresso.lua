-- mlsh.espresso — compiled NeuralNetwork models (.mlmodelc with model.espresso.*): the layer view
-- m:layers() gives for a .mlmodel, rebuilt as far as Espresso's own layer types allow.
--   model.espresso.net     JSON {format_version, storage, layers = [{type, name, bottom, top,
--                          blob_* = weight key, ...}]}; bottom/top are comma-separated names
--   model.espresso.shape   JSON {layer_shapes = {name = {n, k, h, w}}}
--   model.espresso.weights u64 count, (u64 key, u64 size) x count, the blobs (core/espresso.c)
-- coremldata.bin stays opaque. What could not be recovered is listed in m:_cache().espresso.lost.
-- The net/shape files may be lzfse-compressed on Apple's own models: those are refused by name.
local core = require "mlsh.core"
local json = require "mlsh.json"

local M = {}

-- Espresso layer type -> NeuralNetworkLayer oneof member (only where the meaning is the same kind).
M.TYPES = {
  convolution = "convolution", deconvolution = "convolution", inner_product = "innerProduct", pool = "pooling",
  activation = "activation", batchnorm = "batchnorm", softmax = "softmax", concat = "concat", lrn = "lrn",
  reshape = "reshape", flatten = "flatten", transpose = "transpose", upsample = "upsample", crop = "crop",
  padding = "padding", scale = "scale", l2_normalize = "l2normalize", load_constant = "loadConstant",
  unary = "unary", dot = "dot", embedding = "embedding", split = "split", slice = "slice", reduce = "reduce",
  elementwise = "add", general_concat = "concat", softmax_nd = "softmaxND", instancenorm_1d = "mvn",
}

local function names(v)
  if type(v) == "table" then
    local out = {}
    for i, x in ipairs(v) do out[i] = tostring(x) end
    return out
  end
  local out = {}
  for s in tostring(v or ""):gmatch("[^,]+") do out[#out + 1] = s end
  return out
end

local function read_json(m, rel)
  local text = m:_read(rel)
  if not text then return nil end
  if text:sub(1, 4) == "bvx2" or text:sub(1, 1) ~= "{" and not text:find("^%s*{") then
    return nil, m:_path() .. "/" .. rel .. ": not plain JSON (lzfse-compressed espresso files are not supported)"
  end
  local ok, parsed = pcall(json.decode, text)
  if not ok then return nil, m:_path() .. "/" .. rel .. ": " .. tostring(parsed) end
  return parsed
end

-- The blob references of a layer: every blob_* field holding a key.
local function blob_refs(l)
  local refs = {}
  for k, v in pairs(l) do
    if type(k) == "string" and k:match("^blob_") and math.tointeger(v) then refs[#refs + 1] = { field = k:sub(6), key = math.tointeger(v) } end
  end
  table.sort(refs, function(a, b) return a.field < b.field end)
  return refs
end

-- Fill spec.neuralNetwork from the parsed net; returns the espresso record for the cache.
function M.build(spec, net)
  local nn = spec:mutable("neuralNetwork")
  local rec = { layers = {}, lost = { "coremldata.bin (opaque: the original spec's exact layer parameters)" }, blobs = {} }
  local unmapped = {}
  for i, l in ipairs(net.layers or {}) do
    local layer = nn:add("layers")
    layer.name = tostring(l.name or ("layer_" .. i))
    layer.input = names(l.bottom)
    layer.output = names(l.top)
    local t = tostring(l.type or "?")
    local member = M.TYPES[t]
    if not member or not pcall(layer.mutable, layer, member) then unmapped[t] = (unmapped[t] or 0) + 1 end
    rec.layers[i] = { type = t, refs = blob_refs(l) }
  end
  local kinds = {}
  for t in pairs(unmapped) do kinds[#kinds + 1] = t end
  table.sort(kinds)
  if #kinds > 0 then rec.lost[#rec.lost + 1] = "layer types with no NeuralNetwork equivalent: " .. table.concat(kinds, ", ") end
  rec.lost[#rec.lost + 1] = "layer parameters (kernel sizes, strides, modes) beyond the type"
  rec.lost[#rec.lost + 1] = "weight dtypes (espresso blobs are read as fp32 when their size allows)"
  return rec
end

-- Weights: one per blob reference, sized from the weights table, read in place.
local function weights(m, rec, layers)
  local Weight = require("mlsh.model.weights").Weight
  local idx, err = core.espresso.index(m)
  if not idx then return nil, err end
  local by_key = {}
  for _, b in ipairs(idx.blobs) do by_key[b.key] = b end
  local out = {}
  for i, lr in ipairs(rec.layers) do
    local layer = layers[i]
    for _, r in ipairs(lr.refs) do
      local b = by_key[r.key]
      if not b then return nil, string.format("%s/model.espresso.net: layer %s names weight blob %d, absent from model.espresso.weights",
        m:_path(), layer.name, r.key) end
      local fp32 = b.size % 4 == 0
      local n = fp32 and b.size // 4 or b.size // 2
      out[#out + 1] = setmetatable({ name = layer.name .. "." .. r.field, layer = layer.name, layer_type = layer.type,
        param = r.field, dtype = fp32 and "fp32" or "fp16", shape = { n }, count = n, bytes = b.size, storage = "nn",
        file = "model.espresso.weights", offset = b.offset, root = m, blob_key = r.key,
        decode = function() return core.espresso.values(m, "model.espresso.weights", b.offset, n, fp32 and "fp32" or "fp16") end },
        Weight)
    end
  end
  rec.blobs = idx.blobs
  return out
end

-- After the spec is set: espresso types on unmapped layers, output shapes, weights in the cache.
function M.finish(m, rec)
  local layers = m:layers()
  local shapes = read_json(m, "model.espresso.shape")
  local ls = type(shapes) == "table" and shapes.layer_shapes or {}
  for i, l in ipairs(layers) do
    local lr = rec.layers[i]
    if lr then
      l.espresso_type = lr.type
      if l.type == "unknown" then l.type = "espresso:" .. lr.type end
      local os = {}
      for k, o in ipairs(l.outputs) do
        local s = ls[o]
        if type(s) == "table" then os[k] = { n = s.n, k = s.k, h = s.h, w = s.w } end
      end
      l.output_shapes = os
    end
  end
  if not shapes then rec.lost[#rec.lost + 1] = "blob shapes (no model.espresso.shape)" end
  local c = m:_cache()
  c.espresso = rec
  local refs = 0
  for _, lr in ipairs(rec.layers) do refs = refs + #lr.refs end
  if refs > 0 then
    local w, err = weights(m, rec, layers)
    if not w then return nil, err end
    c.weights = w
  end
  return true
end

return M
