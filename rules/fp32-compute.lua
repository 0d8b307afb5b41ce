-- Playbook 2b (all predictions slow): an ML program whose ops compute in fp32 cannot run on the
-- Neural Engine (it computes in fp16 only), so Core ML places it on the GPU or the CPU.
-- Boundary casts (fp32 I/O around an fp16 body) are not counted: they are the normal fp16 layout.
local FIXES = require("mlsh.placement.coreml").FIXES -- one wording for the rule and the cut-makers
local optable = require "mlsh.optable"

local function is_compute(op, entries)
  if entries[op.type] == nil then entries[op.type] = optable.get(op.type) or false end -- get() copies: once per type
  local e = entries[op.type]
  if e and e.eligibility.ANE.status == "n/a" then return false end -- const / constexpr_*
  return op.type ~= "cast" and not op.type:match("^constexpr_") and op.type ~= "const"
end

return {
  id = "fp32-compute",
  title = "ML program computes in fp32 (no Neural Engine)",
  categories = { "performance", "ane", "accuracy" },
  severity = "warning",
  pattern = "2b",
  fix = "on the file: mlsh fix MODEL --fp16 -o OUT; at conversion: " .. FIXES.dtype,
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local total, fp32, first = 0, 0, nil
    local entries = {}
    for _, op in ipairs(ctx:ops(function(op) return is_compute(op, entries) end)) do
      total = total + 1
      local out = op.outputs[1]
      if out and out.dtype == "fp32" then
        fp32 = fp32 + 1
        first = first or op
      end
    end
    if fp32 == 0 then return end
    ctx:report {
      message = string.format("%d of %d compute ops compute in fp32: the Neural Engine computes only in fp16, "
        .. "so they run on the GPU or the CPU", fp32, total),
      location = { ["function"] = first["function"], op = first.name },
      evidence = { fp32_ops = fp32, compute_ops = total, first = first.type },
    }
  end,
}
