-- mlsh.facts.sizes — what loading a model's weights costs now and under each compression scheme
-- (the size table of the memory playbooks). Methods of the facts object (mlsh.facts).
local spec = require "mlsh.spec"

local M = {}
local methods = {}
M.methods = methods

local GiB, MiB, KiB = 1024 ^ 3, 1024 ^ 2, 1024
function M.fmt_bytes(b)
  b = b or 0
  if b >= GiB then return string.format("%.2f GiB", b / GiB) end
  if b >= MiB then return string.format("%.1f MiB", b / MiB) end
  if b >= KiB then return string.format("%.1f KiB", b / KiB) end
  return string.format("%d B", math.floor(b))
end

local numel = require("mlsh.model.constexpr_values").numel -- nil for an unknown (negative) dim


-- Dense weights (what compression would act on): {name, count, rank, dtype}. ML programs: const
-- outputs and the final outputs of constexpr chains; NeuralNetworks: the weight params.
function methods:dense_weights()
  return self:cached("dense", function()
    local out = {}
    local m = self.model
    if not m then return out end
    if self:is_program() then
      local consumed = {}
      for _, op in ipairs(m:ops()) do
        local ok, ins = pcall(op.inputs, op)
        for _, e in ipairs(ok and ins or {}) do
          if e.name then consumed[e.name] = op end
        end
      end
      for _, op in ipairs(m:ops()) do
        local o = op.outputs[1]
        if o and (op.type == "const" or op.type:match("^constexpr_")) then
          local nxt = consumed[o.name]
          if not (nxt and nxt.type:match("^constexpr_")) and (o.dtype == "fp16" or o.dtype == "fp32") then
            local n = numel(o.shape)
            if n and n >= 10 then out[#out + 1] = { name = o.name, count = n, rank = #(o.shape or {}), dtype = o.dtype } end
          end
        end
      end
    else
      for _, w in ipairs(self:weights()) do
        out[#out + 1] = { name = w.name, count = w.count or 0, rank = 2, dtype = w.dtype or "fp32" }
      end
    end
    return out
  end)
end

-- Compressors act on weights with more than 2048 elements and rank >= 2 (coremltools' default).
M.WEIGHT_THRESHOLD = 2048
M.SIZE_SCHEMES = {
  { id = "fp16", label = "fp16 (no compression)", bits = 16, lut = 0, spec = 6,
    how = "ct.convert(..., compute_precision=ct.precision.FLOAT16)" },
  { id = "palettize-8", label = "8-bit palettization", bits = 8, lut = 256, spec = 7,
    how = "cto.palettize_weights(m, OptimizationConfig(OpPalettizerConfig(nbits=8)))" },
  { id = "palettize-6", label = "6-bit palettization", bits = 6, lut = 64, spec = 7,
    how = "cto.palettize_weights(m, OptimizationConfig(OpPalettizerConfig(nbits=6)))" },
  { id = "palettize-4", label = "4-bit palettization", bits = 4, lut = 16, spec = 7,
    how = "cto.palettize_weights(m, OptimizationConfig(OpPalettizerConfig(nbits=4)))" },
  { id = "int8", label = "int8 linear quantization", bits = 8, lut = 0, spec = 7,
    how = "cto.linear_quantize_weights(m, OptimizationConfig(OpLinearQuantizerConfig(dtype='int8')))" },
  { id = "prune-50", label = "50% pruning (fp16 + bit mask)", bits = 16, keep = 0.5, spec = 7,
    how = "cto.prune_weights(m, OptimizationConfig(OpMagnitudePrunerConfig(target_sparsity=0.5)))" },
  { id = "prune-75", label = "75% pruning (fp16 + bit mask)", bits = 16, keep = 0.25, spec = 7,
    how = "cto.prune_weights(m, OptimizationConfig(OpMagnitudePrunerConfig(target_sparsity=0.75)))" },
  { id = "prune-50-palettize-4", label = "50% pruning + 4-bit palettization", bits = 4, keep = 0.5, lut = 16, spec = 9,
    how = "prune_weights then palettize_weights(..., joint_compression=True)" },
}

-- Rows {id, label, bytes, size, min_target, how} for the current weights: what loading needs under
-- each scheme (compressible weights re-encoded, the rest kept as they are).
function methods:size_table()
  local dense = self:dense_weights()
  local fixed, comp = 0, {}
  for _, w in ipairs(dense) do
    if w.count > M.WEIGHT_THRESHOLD and w.rank >= 2 then comp[#comp + 1] = w
    else fixed = fixed + w.count * (w.dtype == "fp32" and 4 or 2) end
  end
  local rows = {}
  local stored = self:weight_bytes()
  rows[#rows + 1] = { id = "stored", label = "as stored now", bytes = stored, size = M.fmt_bytes(stored), min_target = "-", how = "" }
  for _, s in ipairs(M.SIZE_SCHEMES) do
    local bytes = fixed
    for _, w in ipairs(comp) do
      local keep = s.keep or 1
      local b = math.ceil(w.count * keep * s.bits / 8) + (s.lut or 0) * 2
      if s.keep then b = b + math.ceil(w.count / 8) end
      bytes = bytes + b
    end
    rows[#rows + 1] = { id = s.id, label = s.label, bytes = bytes, size = M.fmt_bytes(bytes),
                        min_target = spec.target_name(s.spec) or ("spec " .. s.spec), how = s.how }
  end
  return rows
end

function methods:size_lines()
  local lines = {}
  for _, r in ipairs(self:size_table()) do
    lines[#lines + 1] = string.format("%-36s %10s  %s", r.label, r.size, r.min_target ~= "-" and ("(" .. r.min_target .. "+)") or "")
  end
  return lines
end

return M
