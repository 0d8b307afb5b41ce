-- mlsh.facts.compression — the compression facts of a model: which weights are palettized,
-- quantized or pruned (and how), and how far the compressed weights are from an original model's.
-- Methods of the facts object (mlsh.facts); what a chain is (constexpr.describe) and its values
-- (constexpr.dense) are mlsh.model.constexpr's, the error metrics the C kernel's
-- (core.compress.metrics).
local core = require "mlsh.core"
local types = require "mlsh.types"
local constexpr = require "mlsh.model.constexpr"

local M = {}
local methods = {}
M.methods = methods

local BITS = constexpr.BITS

-- {dtype, shape, value_msg, name} of a constexpr parameter: an attribute (iOS16/17) or an input (iOS18).
local function param(op, name)
  local v = op.msg:get("attributes", name)
  if v then
    local t = types.value_type(v.type)
    return { dtype = t.dtype, shape = t.shape or {}, value_msg = v }
  end
  local ok, inputs = pcall(op.inputs, op)
  for _, e in ipairs(ok and inputs or {}) do
    if e.param == name then return { dtype = e.dtype, shape = e.shape or {}, value_msg = e.value_msg, name = e.name } end
  end
  return nil
end
M.param = param

local numel = constexpr.numel

local function entry(op, out, fields)
  local e = { op = op.name, name = out.name, ["function"] = op["function"] }
  for k, v in pairs(fields) do e[k] = v end
  return e
end

-- The records of one compression chain, from mlsh.model.constexpr's description of its final op
-- (the one classifier of compressed weights): one stage per record list.
local STAGE = {}
function STAGE.palettized(c, add, op, out, count, d)
  local groups = 1
  if d.axis and d.group_size and d.group_size > 0 then groups = math.max(1, (out.shape[d.axis + 1] or 0) // d.group_size) end
  add(c.palettized, "palettization", entry(op, out, { nbits = d.nbits, granularity = d.granularity, groups = groups,
    vector = d.vector_size or 1, per_channel_scale = d.per_channel_scale or nil, count = count, type = op.type }))
end
function STAGE.quantized(c, add, op, out, count, d)
  if d.dtype == "fp16" or d.dtype == "fp32" then return end -- a scale over float data is not a quantization
  add(c.quantized, "quantization", entry(op, out, { dtype = d.dtype, bits = BITS[d.dtype or ""] or 8,
    granularity = d.granularity, block_size = d.block_size, count = count, type = op.type }))
end
function STAGE.sparse(c, add, op, out, count, d)
  add(c.sparse, "pruning", entry(op, out, { count = count, sparsity = d.sparsity, type = op.type }))
end
function STAGE.joint(c, add, op, out, count, d)
  for _, st in ipairs(d.stages) do
    local f = STAGE[st.kind]
    if f then f(c, add, op, out, count, st) end
  end
end

-- The final ops of the compression chains: constexpr ops no other constexpr op reads.
local function final_constexpr_ops(m)
  local consumed, list = {}, {}
  for _, op in ipairs(m:ops()) do
    local ok, ins = pcall(op.inputs, op)
    if constexpr.is_constexpr(op) then
      for _, e in ipairs(ok and ins or {}) do
        if e.name then consumed[e.name] = true end
      end
    end
  end
  for _, op in ipairs(m:ops()) do
    local out = op.outputs[1]
    if constexpr.is_constexpr(op) and out and not consumed[out.name] then list[#list + 1] = op end
  end
  return list
end

-- Activation quantization: quantize/dequantize ops (W8A8).
local ACTIVATION = { quantize = true, dequantize = true }

-- NeuralNetwork quantized weights (coremltools 4-6 quantization_utils).
local function nn_quantized(m, add, c)
  for _, l in ipairs(m:layers()) do
    local p = l.params
    local okf, fields = pcall(function() return p and p:fields() end)
    for _, f in ipairs(okf and fields or {}) do
      if f.message == "CoreML.Specification.WeightParams" and not f.repeated and p:has(f.name) and p[f.name]:has("quantization") then
        local q = p[f.name].quantization
        local bits = q.numberOfBits
        if q:which("linearQuantization") == "lookupTableQuantization" then
          add(c.palettized, "palettization", { layer = l.name, name = l.name .. "." .. f.name, nbits = bits,
            granularity = "per_tensor", groups = 1, vector = 1, type = "nn" })
        else
          local nscale = #q.linearQuantization.scale
          add(c.quantized, "quantization", { layer = l.name, name = l.name .. "." .. f.name, dtype = "uint" .. bits,
            bits = bits, granularity = nscale > 1 and "per_channel" or "per_tensor", type = "nn" })
        end
      end
    end
  end
end

-- Classify the ML program's compression chains (by mlsh.model.constexpr.describe) and activation
-- quantization, and NeuralNetwork quantized weights. Returns {palettized, quantized, sparse, activation, kinds = {palettization = n, ...}, any}.
function methods:compression()
  return self:cached("compression", function()
    local c = { palettized = {}, quantized = {}, sparse = {}, activation = {},
                kinds = { palettization = 0, quantization = 0, pruning = 0, activation = 0 } }
    local m = self.model
    if not m then c.any = false return c end
    local function add(list, kind, e)
      list[#list + 1] = e
      c.kinds[kind] = c.kinds[kind] + 1
    end
    for _, op in ipairs(final_constexpr_ops(m)) do
      local ok, d = pcall(constexpr.describe, m, op)
      if not ok then ok, d = pcall(constexpr.describe, nil, op) end
      local f = ok and STAGE[d.kind]
      if f then
        local out = op.outputs[1]
        f(c, add, op, out, numel(out.shape), d)
      end
    end
    for _, op in ipairs(m:ops()) do
      if ACTIVATION[op.type] then
        add(c.activation, "activation", { op = op.name, type = op.type, ["function"] = op["function"] })
      end
    end
    nn_quantized(m, add, c)
    c.any = c.kinds.palettization + c.kinds.quantization + c.kinds.pruning + c.kinds.activation > 0
    return c
  end)
end

-- ---- comparing with an original ------------------------------------------------------------------

-- Elements compared per weight: larger weights are compared on an evenly strided sample, so a
-- billion-parameter model is measured in seconds (the SNR of a large sample is the SNR).
M.SAMPLE_ELEMENTS = 256 * 1024

-- Float values of a compression op's output (the final op of a chain) at elements 1, 1 + stride,
-- 1 + 2*stride ... (all of them with stride 1), as an mlsh.Array; or nil, why. ctx: a facts
-- object (its model) or the model itself.
function M.decompress(ctx, op, stride)
  stride = stride or 1
  local m = ctx.model or ctx
  local ok, dense = pcall(constexpr.dense, m, op)
  if not ok then return nil, tostring(dense) end
  if stride == 1 then return dense end
  local n = #dense
  local out = core.array.new((n + stride - 1) // stride)
  local j = 0
  for i = 1, n, stride do
    j = j + 1
    out[j] = dense[i]
  end
  return out
end

-- SNR and friends of a reconstruction: {snr_db, mse, max_abs_err, cosine, n} (core/compress/metrics.c).
function M.metrics(original, reconstructed) return core.compress.metrics(original, reconstructed) end

-- Every op output consumed by another op: {value name -> consumer}.
local function consumers(m)
  local consumed = {}
  for _, op in ipairs(m:ops()) do
    local ok, ins = pcall(op.inputs, op)
    for _, e in ipairs(ok and ins or {}) do
      if e.name then consumed[e.name] = op end
    end
  end
  return consumed
end

-- Compare the final op of one compression chain with the original weight w: a row or a skip.
local function compare_one(self, op, out, w, res)
  local stride = math.max(1, -(-w.count // M.SAMPLE_ELEMENTS))
  local dense, err = M.decompress(self, op, stride)
  local okv, orig = pcall(w.values, w)
  if not (dense and okv) then
    res.skipped[#res.skipped + 1] = { name = out.name, why = dense and tostring(orig) or err }
    return
  end
  if stride > 1 then
    local sample = core.array.new(#dense)
    local k = 0
    for i = 1, w.count, stride do
      k = k + 1
      sample[k] = orig[i]
    end
    orig = sample
  end
  local mt = M.metrics(orig, dense)
  res.rows[#res.rows + 1] = { name = out.name, op = op.name, type = op.type, ["function"] = op["function"],
    snr_db = mt.snr_db, cosine = mt.cosine, max_abs_err = mt.max_abs_err, count = w.count,
    sampled = stride > 1 and #dense or nil }
end

local function compare_all(self)
  local originals = {}
  for _, w in ipairs(self.original:weights()) do
    if (w.param == "val" or w.storage == "nn") and (w.dtype == "fp16" or w.dtype == "fp32") then originals[w.name] = w end
  end
  local res = { rows = {}, skipped = {} }
  local consumed = consumers(self.model)
  for _, op in ipairs(self.model:ops()) do
    local out = op.outputs[1]
    local next_op = out and consumed[out.name]
    local final = not (next_op and next_op.type:match("^constexpr_"))
    if op.type:match("^constexpr_") and op.type ~= "constexpr_cast" and final then
      local w = originals[out.name]
      if not w then
        res.skipped[#res.skipped + 1] = { name = out.name, why = "no weight '" .. out.name .. "' in the original" }
      elseif w.count ~= numel(out.shape) then
        res.skipped[#res.skipped + 1] = { name = out.name, why = "sizes differ" }
      else
        compare_one(self, op, out, w, res)
      end
    end
  end
  table.sort(res.rows, function(x, y) return x.snr_db < y.snr_db end)
  if #res.rows == 0 then
    self:note("compare with --original: nothing matched" .. (res.skipped[1] and (" (" .. res.skipped[1].why .. ")") or ""))
    return false
  end
  return res
end

-- Compare every decompressible weight with the same-named weight of the original. Returns
-- {rows = {{name, op, type, snr_db, cosine, max_abs_err, count}} sorted worst first, skipped = {...}}
-- or nil, why (no original given, nothing compressed, nothing matched).
function methods:compare()
  if not self.original then return nil, "no --original model given" end
  if not self.model then return nil, "no model" end
  local res = self:cached("compare", function() return compare_all(self) end)
  if not res then return nil, "no compressed weight matched a weight of the original" end
  return res
end

-- Is the reconstruction error concentrated in a few weights? "few" when the worst weight's SNR is
-- 6 dB or more below the median (or under 10 dB), "everywhere" otherwise; nil without a comparison.
M.OUTLIER_DB, M.POOR_DB = 6, 10
function methods:error_spread()
  local cmp, why = self:compare()
  if not cmp then return nil, why end
  local rows = cmp.rows
  local function fmt(r) return string.format("%s %.1f dB", r.name, r.snr_db) end
  if #rows < 2 then
    if rows[1].snr_db < M.POOR_DB then return "few", "only " .. fmt(rows[1]) .. " compared; it is poor" end
    return nil, "only one weight compared (" .. fmt(rows[1]) .. "): no spread to judge"
  end
  local median = rows[(#rows + 1) // 2].snr_db
  local worst = rows[1]
  local list = {}
  for i = 1, math.min(3, #rows) do list[#list + 1] = fmt(rows[i]) end
  local ev = string.format("SNR vs --original, worst first: %s; median %.1f dB over %d weights", table.concat(list, ", "),
    median, #rows)
  if worst.snr_db <= median - M.OUTLIER_DB or (worst.snr_db < M.POOR_DB and median >= M.POOR_DB) then return "few", ev end
  return "everywhere", ev
end


return M
