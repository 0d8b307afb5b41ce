-- mlsh.model.weights — every weight of a model as a Weight object: where it lives and what it is.
-- Two views:
--   m:weights()    the stored tensors: const ops (blob-file or immediate tensors) and constexpr_*
--                  ops' blob parameters (`name.param`, values as stored: indices, scales, ...);
--                  neural networks: every WeightParams in a layer's parameters.
--   m:inventory()  the logical weights an op consumes: uncompressed consts and the final ops of
--                  constexpr chains (named by their output), with `compression` (what form),
--                  `consumers`, `parts` (the stored tensors behind them), and `w:values()` giving
--                  the dense, decompressed values. `mlsh weights` prints this view.
-- Nothing is read until :values().
local core = require "mlsh.core"
local types = require "mlsh.types"
-- the decompressor, loaded when a compressed weight is first looked into (info needs none of it)
local constexpr = setmetatable({}, { __index = function(t, k)
  local cx = require "mlsh.model.constexpr"
  setmetatable(t, { __index = cx })
  return cx[k]
end })
-- (the op-type test alone does not need it)
local function is_constexpr(op) return op and type(op.type) == "string" and op.type:match("^constexpr_") ~= nil end

local M = {}
local Weight = {}
Weight.__index = Weight
M.Weight = Weight

local nbytes = types.nbytes
M.nbytes = nbytes

-- Dense float values (an mlsh.Array shaped like the weight); inventory entries of compressed
-- weights decompress their constexpr chain.
function Weight:values()
  local a, err
  if self.constexpr_op then
    return constexpr.dense(self.root, self.constexpr_op)
  elseif self.storage == "blob" then
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

-- Statistics of the (decompressed) values: {count, min, max, mean, std, sparsity, ...}. A weight
-- in a weight file is streamed through the C core (decoded once, no array allocated).
function Weight:stats()
  if self.storage == "blob" and not self.constexpr_op then
    local st, err = self.root:_blob_stats(self.file, self.offset, self.count, self.dtype)
    if not st then error(err, 2) end
    return st
  end
  return self:values():stats()
end

-- The weight.bin metadata record (blob weights only).
function Weight:blob()
  if self.constexpr_op then return nil, "a compressed weight is stored in several parts (see w.parts)" end
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

local function list_array(list)
  local t = {}
  for i = 1, #list do t[i] = list[i] end
  return core.array.new(t)
end

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
  if not ({ [1] = true, [2] = true, [3] = true, [4] = true, [6] = true, [8] = true })[bits] then
    return nil, "unsupported " .. tostring(bits) .. "-bit quantized weights"
  end
  -- NeuralNetwork codes are packed most significant bit first (not MIL's sub-byte order)
  local n = #raw * 8 // bits
  local carr, cerr = core.constexpr.nn_codes(raw, bits, n)
  if not carr then return nil, cerr end
  local codes = { dtype = "fp32", shape = { n }, array = carr }
  local which = q:which("linearQuantization")
  -- the values are computed by the C decompressor (core/constexpr.c), as for constexpr ops
  if which == "linearQuantization" then
    local lq = q.linearQuantization
    return core.constexpr.nn_linear(codes, list_array(lq.scale), list_array(lq.bias), "fp32")
  elseif which == "lookupTableQuantization" then
    -- a code past the end of the table reads 0: the table padded to 2^bits entries
    local lut, t = q.lookupTableQuantization.floatValue, {}
    for c = 1, 1 << bits do t[c] = lut[c] or 0 end
    return core.constexpr.lut(codes, { dtype = "fp32", shape = { #t }, array = core.array.new(t) }, nil, "fp32")
  end
  return nil, "unknown quantization kind"
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

-- What a NeuralNetwork WeightParams' quantization is (coremltools 3-6 quantization_utils).
local function nn_qinfo(wp)
  local q = wp.quantization
  if not q then return nil end
  local bits = q.numberOfBits
  if q:which("linearQuantization") == "lookupTableQuantization" then
    return { kind = "palettized", nbits = bits, granularity = "per_tensor", per_channel_scale = false, min_spec = 3,
             form = "neuralnetwork" }
  end
  local ns = q:has("linearQuantization") and #q.linearQuantization.scale or 1
  return { kind = "quantized", dtype = "uint" .. tostring(bits), symmetric = false, min_spec = 3, form = "neuralnetwork",
           granularity = ns > 1 and "per_channel" or "per_tensor", axis = ns > 1 and 0 or nil }
end

local function nn_weight(root, layer, field, wp, out)
  local dtype, n, bytes = params_info(wp)
  if n == 0 then return end
  out[#out + 1] = setmetatable({ name = layer.name .. "." .. field, layer = layer.name, layer_type = layer.type,
    param = field, dtype = dtype, shape = { n }, count = n, bytes = bytes, storage = "nn", root = root,
    quantized = wp.quantization ~= nil, qinfo = nn_qinfo(wp), decode = function() return decode_params(wp) end }, Weight)
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

-- ---- the inventory: logical weights --------------------------------------------------------------

-- Bytes a parameter Value takes as stored.
local function value_bytes(v)
  local t = types.value_type(v.type)
  local n = types.count(t.shape)
  if v:has("blobFileValue") then return nbytes(t.dtype, n) or 0, true end
  local tv = v:has("immediateValue") and v.immediateValue.tensor
  local kind = tv and tv:which("floats")
  if kind == "bytes" then return #tv.bytes.values, false end
  return nbytes(t.dtype, n) or 0, false
end

M.value_nbytes = function(v) return (value_bytes(v)) end

-- Every stored Value of a chain (constexpr params and the consts it reads): bytes, any in a blob.
local function chain_storage(chain)
  local bytes, blob, seen = 0, false, {}
  local function add(v)
    if seen[v] then return end
    seen[v] = true
    local b, isblob = value_bytes(v)
    bytes = bytes + b
    blob = blob or isblob
  end
  for _, op in ipairs(chain) do
    local attrs, keys = op.msg:map("attributes")
    for _, k in ipairs(keys) do
      if k ~= "name" then add(attrs[k]) end
    end
    for _, e in ipairs(op:inputs()) do
      if e.value_msg then add(e.value_msg)
      elseif e.name then
        local p = op._producers and op._producers[e.name]
        if p and p.type == "const" then
          local v = p.msg:get("attributes", "val")
          if v then add(v) end
        end
      end
    end
  end
  return bytes, blob
end

-- the element types a weight is stored densely in (their widths: types.BITS)
local DENSE = { fp16 = true, fp32 = true, fp64 = true, bf16 = true, int8 = true, uint8 = true, int16 = true, uint16 = true,
                int32 = true, uint32 = true, int64 = true, uint64 = true }

local function users_of(fn)
  local users = {}
  for _, op in ipairs(fn.all_ops) do
    for _, e in ipairs(op:inputs()) do
      if e.name then
        users[e.name] = users[e.name] or {}
        table.insert(users[e.name], { op = op.name, type = op.type, param = e.param, op_ref = op })
      end
    end
  end
  return users
end
M.users_of = users_of

local function only_constexpr(list)
  if not list or #list == 0 then return false end
  for _, u in ipairs(list) do
    if not is_constexpr(u.op_ref) then return false end
  end
  return true
end

local OS_OF = { [3] = "iOS12", [6] = "iOS15", [7] = "iOS16", [8] = "iOS17", [9] = "iOS18" }
M.OS_OF = OS_OF

local function inventory_mil(m, root, out, storage_by_op)
  for _, fn in ipairs(m:functions()) do
    local users = users_of(fn)
    local outputs = {}
    for _, o in ipairs(fn.outputs or {}) do outputs[o] = true end
    for _, op in ipairs(fn.all_ops) do
      local o = op.outputs[1]
      local n = o and types.count(o.shape)
      local consumers = o and users[o.name] or {}
      if o and n and o.dtype ~= "string" and o.dtype ~= "bool" and not only_constexpr(consumers) then
        local e
        if op.type == "const" and n >= M.MIN_IMMEDIATE_ELEMENTS then
          local sw = storage_by_op[fn.name .. "\0" .. op.name]
          if sw then
            e = setmetatable({}, Weight)
            for k, v in pairs(sw) do e[k] = v end
            e.parts = { sw }
          end
        elseif is_constexpr(op) and op.type ~= "constexpr_lut_to_sparse" and op.type ~= "constexpr_sparse_blockwise_shift_scale" then
          local chain = constexpr.chain(op)
          local bytes, blob = chain_storage(chain)
          local parts = {}
          for _, c in ipairs(chain) do
            for _, w in ipairs(storage_by_op[fn.name .. "\0" .. c.name .. "\0*"] or {}) do parts[#parts + 1] = w end
            for _, p in ipairs(constexpr.producers_of(c)) do
              local sw = p.op.type == "const" and storage_by_op[fn.name .. "\0" .. p.op.name]
              if sw then parts[#parts + 1] = sw end
            end
          end
          e = setmetatable({ name = o.name, op = op.name, op_type = op.type, ["function"] = fn.name, dtype = o.dtype,
            shape = o.shape, count = n, root = root, storage = blob and "blob" or "immediate", bytes = bytes,
            constexpr_op = op, chain = chain, parts = parts }, Weight)
          local ok, d = pcall(constexpr.describe, root, op)
          if not ok then ok, d = pcall(constexpr.describe, nil, op) end
          e.compression = ok and d or { kind = "unknown", error = tostring(d) }
          e.min_spec = e.compression.min_spec
        end
        if e then
          e.consumers = {}
          for i, u in ipairs(consumers) do e.consumers[i] = { op = u.op, type = u.type, param = u.param } end
          e.block_output = outputs[o.name] or nil
          e.depth = op.depth
          e.dense_bytes = DENSE[e.dtype] and nbytes(e.dtype, n) or e.bytes
          e.os = e.min_spec and OS_OF[e.min_spec] or nil
          out[#out + 1] = e
        end
      end
    end
  end
end

-- NeuralNetwork weights: the stored ones, with the quantization they carry (spec 3).
local function inventory_nn(ws, out)
  for _, w in ipairs(ws) do
    if w.storage == "nn" then
      local e = setmetatable({}, Weight)
      for k, v in pairs(w) do e[k] = v end
      e.parts = { w }
      e.consumers = { { op = w.layer, type = w.layer_type, param = w.param } }
      e.dense_bytes = (w.count or 0) * 4
      if w.quantized and w.qinfo then
        -- the layer sees float32 values; the stored codes keep their own dtype
        e.compression = w.qinfo
        e.min_spec, e.os = 3, OS_OF[3]
        e.stored_dtype, e.dtype = w.dtype, "fp32"
      end
      out[#out + 1] = e
    end
  end
end

-- Why a weight of a compressed model was left uncompressed, in coremltools' terms (compression-
-- math §0): rank <= 1, at most `threshold` elements, no consumer, not a float; or the settings the
-- other weights were compressed with do not fit its shape.
M.DEFAULT_THRESHOLD = 2048
function M.uncompressed_reason(e, compressed, threshold)
  threshold = threshold or M.DEFAULT_THRESHOLD
  if e.compression then return nil end
  if e.dtype ~= "fp16" and e.dtype ~= "fp32" then return "not a float weight (" .. tostring(e.dtype) .. ")" end
  if #(e.shape or {}) <= 1 then return "rank " .. #(e.shape or {}) .. " (coremltools skips rank <= 1 consts)" end
  if (e.count or 0) <= threshold then
    return string.format("below the weight threshold (%d <= %d elements)", e.count or 0, threshold)
  end
  if not e.consumers or #e.consumers == 0 then return "no op consumes it" end
  local ok, sel = pcall(require, "mlsh.compress.select")
  local axis = ok and sel.output_axis(e) or 0
  for _, c in ipairs(compressed or {}) do
    local d = c.compression or {}
    local stage = d.kind == "joint" and d.stages and d.stages[2] or d
    if axis and stage.granularity == "per_grouped_channel" and stage.group_size then
      local C = e.shape[axis + 1]
      if C and C % stage.group_size ~= 0 then
        return string.format("its %d output channels are not a multiple of the group size %d (skipped)", C, stage.group_size)
      end
    end
    if stage.granularity == "per_block" and stage.block_size and axis then
      local ia = ok and sel.input_axis(e, axis) or 1
      local D = ia and e.shape[ia + 1]
      if D and D % stage.block_size ~= 0 then
        return string.format("its input dimension %d is not a multiple of the block size %d (skipped)", D, stage.block_size)
      end
    end
  end
  if axis == nil then return "its consumers disagree on the channel axis (coremltools skips it)" end
  return "eligible but left uncompressed (excluded by the settings)"
end

-- The inventory (see the header). opts.threshold: the weight threshold assumed for the flags.
function M.inventory(m, root, opts)
  opts = opts or {}
  local storage_by_op = {}
  local stored = m:weights()
  if m.format == "onnx" then
    -- ONNX initializers are dense tensors: the stored view is the inventory
    local out = {}
    for i, w in ipairs(stored) do out[i] = w end
    return out
  end
  for _, w in ipairs(stored) do
    if w.op and w["function"] then
      if w.param == "val" then storage_by_op[w["function"] .. "\0" .. w.op] = w end
      local key = w["function"] .. "\0" .. w.op .. "\0*"
      storage_by_op[key] = storage_by_op[key] or {}
      table.insert(storage_by_op[key], w)
    end
  end
  local out = {}
  inventory_mil(m, root, out, storage_by_op)
  inventory_nn(stored, out)
  local compressed = {}
  for _, e in ipairs(out) do
    if e.compression then compressed[#compressed + 1] = e end
  end
  if #compressed > 0 then
    for _, e in ipairs(out) do
      if not e.compression then e.uncompressed_reason = M.uncompressed_reason(e, compressed, opts.threshold) end
    end
  end
  return out
end

-- What a model's compression is, from its ops alone (no weight data read, so `mlsh info` stays
-- fast): nil for a model without constexpr ops, else {count, kinds = {palettized = n, ...},
-- min_spec, forms = {"iOS16" | "iOS18", ...}}.
function M.compression_summary(m)
  local out = { count = 0, kinds = {}, min_spec = 0, forms = {} }
  local seen_form = {}
  for _, fn in ipairs(m:functions()) do
    local users = users_of(fn)
    for _, op in ipairs(fn.all_ops) do
      local o = op.outputs[1]
      if is_constexpr(op) and o and not only_constexpr(users[o.name]) then
        local ok, d = pcall(constexpr.describe, nil, op)
        if ok then
          out.count = out.count + 1
          out.kinds[d.kind] = (out.kinds[d.kind] or 0) + 1
          out.min_spec = math.max(out.min_spec, d.min_spec or 0)
          if d.form and not seen_form[d.form] then
            seen_form[d.form] = true
            out.forms[#out.forms + 1] = d.form
          end
        end
      end
    end
  end
  if out.count == 0 then return nil end
  return out
end

return M
