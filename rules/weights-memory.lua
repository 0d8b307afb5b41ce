-- Playbook 3b (out of memory at load): the weights alone approach or exceed what an app can hold
-- on the device. Gives the size under each compression scheme (coremltools.optimize.coreml) so the
-- fix can be picked from a table. Budget: ctx.options.memory_budget (bytes; mlsh check
-- --memory-budget), default 2 GiB (a typical per-app limit on a 4 GB iPhone).
local spec = require "mlsh.spec"

local GiB, MiB = 1024 ^ 3, 1024 ^ 2
local DEFAULT_BUDGET = 2 * GiB
-- Compressors only touch weights with more than 2048 elements (weight_threshold) and rank >= 2.
local THRESHOLD = 2048

-- scheme, bits per element, per-tensor overhead in bytes (LUT or scales), minimum target
local SCHEMES = {
  { name = "fp16", how = "compute_precision=FLOAT16", bits = 16, overhead = function() return 0 end, spec = 6 },
  { name = "int8 per-channel", how = "linear_quantize_weights(dtype=int8)", bits = 8,
    overhead = function(w) return 2 * ((w.shape and w.shape[1]) or 1) end, spec = 7 },
  { name = "6-bit palettization", how = "palettize_weights(nbits=6)", bits = 6, overhead = function() return 64 * 2 end, spec = 7 },
  { name = "4-bit palettization", how = "palettize_weights(nbits=4)", bits = 4, overhead = function() return 16 * 2 end, spec = 7 },
  { name = "int4 per-block(32)", how = "linear_quantize_weights(dtype=int4, granularity=per_block)", bits = 4.5,
    overhead = function() return 0 end, spec = 9 },
  { name = "3-bit palettization", how = "palettize_weights(nbits=3)", bits = 3, overhead = function() return 8 * 2 end, spec = 9 },
  { name = "2-bit palettization", how = "palettize_weights(nbits=2)", bits = 2, overhead = function() return 4 * 2 end, spec = 7 },
}

local function size(b)
  if b >= GiB then return string.format("%.2f GiB", b / GiB) end
  if b >= MiB then return string.format("%.1f MiB", b / MiB) end
  return string.format("%.0f KiB", b / 1024)
end

local function eligible(w)
  return (w.count or 0) > THRESHOLD and (w.storage == "nn" or (w.shape and #w.shape >= 2))
    and (w.dtype == "fp32" or w.dtype == "fp16")
end

return {
  id = "weights-memory",
  title = "weights too large for device memory",
  categories = { "memory", "load" },
  severity = "error",
  pattern = "3b",
  scope = "model",
  check = function(m, ctx)
    local budget = tonumber(ctx.options.memory_budget) or DEFAULT_BUDGET
    local total, fixed, compressible = 0, 0, {}
    for _, w in ipairs(m:weights()) do
      local b = w.bytes or 0
      total = total + b
      if eligible(w) then compressible[#compressible + 1] = w else fixed = fixed + b end
    end
    if total <= budget / 2 then return end
    local table_rows, pick = {}, nil
    for _, s in ipairs(SCHEMES) do
      local bytes = fixed
      for _, w in ipairs(compressible) do
        bytes = bytes + math.ceil(w.count * s.bits / 8) + s.overhead(w)
      end
      table_rows[#table_rows + 1] = { scheme = s.name, bytes = math.floor(bytes), size = size(bytes),
                                      min_target = spec.target_name(s.spec), how = s.how }
      if not pick and bytes <= budget / 2 and bytes < total then pick = { s = s, bytes = bytes } end
    end
    local over = total > budget
    local rows = {}
    for _, r in ipairs(table_rows) do rows[#rows + 1] = string.format("%s %s (%s+)", r.scheme, r.size, r.min_target) end
    ctx:report {
      severity = over and "error" or "warning",
      message = string.format("weights take %s, %s the %s memory budget: loading may be killed for memory "
        .. "(sizes after compression: %s)", size(total), over and "over" or "more than half of", size(budget),
        table.concat(rows, ", ")),
      fix = pick and string.format("compress with coremltools.optimize.coreml.%s: about %s (needs %s or later)",
          pick.s.how, size(pick.bytes), spec.target_name(pick.s.spec))
        or "split the model (e.g. per function or per stage) or stream the weights; no compression scheme fits the budget",
      evidence = { bytes = total, budget = budget, compressible_weights = #compressible, sizes = table_rows },
    }
  end,
}
