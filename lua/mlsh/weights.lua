-- mlsh.weights — every weight of a model as a Weight object: where it lives and what it is.
-- ML programs: const ops (blob-file or immediate tensors) and constexpr_* ops' blob inputs.
-- Neural networks: every WeightParams in a layer's parameters. Nothing is read until :values().
local core = require "mlsh.core"
local types = require "mlsh.types"

local M = {}
local Weight = {}
Weight.__index = Weight
M.Weight = Weight

local function nbytes(dtype, n)
  local bits = ({ fp16 = 16, fp32 = 32, fp64 = 64, bf16 = 16, int8 = 8, uint8 = 8, int16 = 16, uint16 = 16,
                  int32 = 32, uint32 = 32, int64 = 64, uint64 = 64, int4 = 4, uint4 = 4, uint1 = 1, uint2 = 2,
                  uint3 = 3, uint6 = 6, bool = 8 })[dtype]
  if not bits or not n then return nil end
  return (n * bits + 7) // 8
end
M.nbytes = nbytes

-- Dense float values (an mlsh.Array shaped like the weight).
function Weight:values()
  local a, err
  if self.storage == "blob" then
    a, err = self.root:_blob_values(self.file, self.offset, self.count, self.dtype)
  elseif self.storage == "immediate" then
    local v = self.value_msg
    local tv = v.immediateValue.tensor
    local kind = tv:which("floats")
    if kind == "bytes" then a = core.array.decode(tv.bytes.values, self.dtype, self.count)
    elseif kind then a = tv[kind]:array("values")
    else err = "immediate value holds no tensor" end
  elseif self.storage == "nn" then
    a, err = self.decode()
  end
  if not a then error(err, 2) end
  if self.shape and #self.shape > 0 and #a == self.count and #self.shape <= 8 then pcall(a.reshape, a, self.shape) end
  return a
end

-- The weight.bin metadata record (blob weights only).
function Weight:blob()
  if self.storage ~= "blob" then return nil, "weight is not stored in a weight file" end
  return self.root:_blob(self.file, self.offset)
end

function Weight:__tostring()
  return string.format("Weight(%s %s %s, %s)", self.name, self.dtype or "?", types.type_string(self), self.storage)
end

local function mil_weight(root, op, param, v, fn)
  local t = types.value_type(v.type)
  local n = types.count(t.shape)
  local w = setmetatable({ name = op.outputs[1] and op.outputs[1].name or op.name, op = op.name, op_type = op.type,
    param = param, ["function"] = fn, dtype = t.dtype, shape = t.shape, count = n, root = root }, Weight)
  if v:has("blobFileValue") then
    w.storage, w.file, w.offset = "blob", v.blobFileValue.fileName, v.blobFileValue.offset
    w.bytes = nbytes(t.dtype, n)
  else
    w.storage, w.value_msg = "immediate", v
    w.bytes = nbytes(t.dtype, n)
  end
  return w
end

-- Weights with at least this many elements count as weights; smaller immediates are parameters.
M.MIN_IMMEDIATE_ELEMENTS = 10

local function collect_mil(m, root, out)
  for _, fn in ipairs(m:functions()) do
    for _, op in ipairs(fn.all_ops) do
      local attrs, keys = op.msg:map("attributes")
      for _, k in ipairs(keys) do
        local v = attrs[k]
        if k ~= "name" and (v:has("blobFileValue") or (op.type == "const" and k == "val" and
            (types.count(types.value_type(v.type).shape) or 0) >= M.MIN_IMMEDIATE_ELEMENTS)) then
          local w = mil_weight(root, op, k, v, fn.name)
          if k ~= "val" then w.name = w.name .. "." .. k end
          out[#out + 1] = w
        end
      end
      if op.type:match("^constexpr_") then
        for _, e in ipairs(op:inputs()) do
          if e.value_msg and e.value_msg:has("blobFileValue") then
            local w = mil_weight(root, op, e.param, e.value_msg, fn.name)
            w.name = w.name .. "." .. e.param
            out[#out + 1] = w
          end
        end
      end
    end
  end
end

-- ---- neural network WeightParams -------------------------------------------------------------------
local WEIGHT_FIELDS = { "weights", "bias", "gamma", "beta", "mean", "variance" }
local LSTM_FIELDS = {
  "inputGateWeightMatrix", "forgetGateWeightMatrix", "blockInputWeightMatrix", "outputGateWeightMatrix",
  "inputGateRecursionMatrix", "forgetGateRecursionMatrix", "blockInputRecursionMatrix", "outputGateRecursionMatrix",
  "inputGateBiasVector", "forgetGateBiasVector", "blockInputBiasVector", "outputGateBiasVector",
  "inputGatePeepholeVector", "forgetGatePeepholeVector", "outputGatePeepholeVector" }
local GRU_FIELDS = { "updateGateWeightMatrix", "resetGateWeightMatrix", "outputGateWeightMatrix",
  "updateGateRecursionMatrix", "resetGateRecursionMatrix", "outputGateRecursionMatrix",
  "updateGateBiasVector", "resetGateBiasVector", "outputGateBiasVector", "weightMatrix", "recursionMatrix", "biasVector" }

-- Dense values of a WeightParams: float, fp16, or quantized raw bytes (linear or lookup table).
local function decode_params(wp)
  local nf = wp:count("floatValue")
  if nf > 0 then return wp:array("floatValue") end
  local h = wp:bytes("float16Value")
  if #h > 0 then return core.array.decode(h, "fp16", #h // 2) end
  local raw = wp:bytes("rawValue")
  if #raw == 0 then raw = wp:bytes("int8RawValue") end
  if #raw == 0 then return core.array.new(0) end
  local q = wp.quantization
  if not q then return nil, "raw weight bytes without quantization parameters" end
  local bits = q.numberOfBits
  local dt = ({ [1] = "uint1", [2] = "uint2", [3] = "uint3", [4] = "uint4", [6] = "uint6", [8] = "uint8" })[bits]
  if not dt then return nil, "unsupported " .. tostring(bits) .. "-bit quantized weights" end
  local n = #raw * 8 // bits
  local codes = core.array.decode(raw, dt, n)
  local which = q:which("linearQuantization")
  local out = core.array.new(n)
  if which == "linearQuantization" then
    local scale, bias = q.linearQuantization.scale, q.linearQuantization.bias
    local per = (#scale > 1) and n // #scale or n
    for i = 1, n do
      local c = (i - 1) // per + 1
      out[i] = (scale[c] or scale[1] or 1) * codes[i] + (bias[c] or bias[1] or 0)
    end
  elseif which == "lookupTableQuantization" then
    local lut = q.lookupTableQuantization.floatValue
    for i = 1, n do out[i] = lut[codes[i] + 1] or 0 end
  else
    return nil, "unknown quantization kind"
  end
  return out
end

local function params_info(wp)
  local nf = wp:count("floatValue")
  if nf > 0 then return "fp32", nf, nf * 4 end
  local h = #wp:bytes("float16Value")
  if h > 0 then return "fp16", h // 2, h end
  local raw = #wp:bytes("rawValue")
  if raw == 0 then raw = #wp:bytes("int8RawValue") end
  if raw > 0 then
    local q = wp.quantization
    local bits = q and q.numberOfBits or 8
    return "uint" .. bits, raw * 8 // math.max(bits, 1), raw
  end
  return nil, 0, 0
end

local function nn_weight(root, layer, field, wp, out)
  local dtype, n, bytes = params_info(wp)
  if n == 0 then return end
  out[#out + 1] = setmetatable({ name = layer.name .. "." .. field, layer = layer.name, layer_type = layer.type,
    param = field, dtype = dtype, shape = { n }, count = n, bytes = bytes, storage = "nn", root = root,
    quantized = wp.quantization ~= nil, decode = function() return decode_params(wp) end }, Weight)
end

local function collect_nn(m, root, out)
  for _, layer in ipairs(m:layers()) do
    local p = layer.params
    if p then
      for _, f in ipairs(p:fields()) do
        if f.message == "CoreML.Specification.WeightParams" and p:has(f.name) then
          if f.repeated then
            for i, wp in ipairs(p[f.name]) do nn_weight(root, layer, f.name .. "[" .. i .. "]", wp, out) end
          else
            nn_weight(root, layer, f.name, p[f.name], out)
          end
        elseif f.message == "CoreML.Specification.LSTMWeightParams" and p:has(f.name) then
          local list = f.repeated and p[f.name] or { p[f.name] }
          for i, lw in ipairs(list) do
            for _, g in ipairs(LSTM_FIELDS) do
              if lw:has(g) then nn_weight(root, layer, (f.repeated and ("dir" .. i .. ".") or "") .. g, lw[g], out) end
            end
          end
        end
      end
    end
  end
end
M.WEIGHT_FIELDS, M.GRU_FIELDS = WEIGHT_FIELDS, GRU_FIELDS

function M.collect(m, root)
  local out = {}
  collect_mil(m, root, out)
  collect_nn(m, root, out)
  for _, sub in ipairs((m:submodels())) do
    for _, w in ipairs(sub:weights()) do out[#out + 1] = w end
  end
  return out
end

return M
