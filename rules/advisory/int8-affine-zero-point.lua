-- Advisory (playbook 5b, wrong output): constexpr_affine_dequantize with signed int8 data and a zero
-- point of 0 (what linear_quantize_weights(mode="linear_symmetric") writes) gives wrong results on
-- the GPU and the Neural Engine; the CPU is right. coremltools re-encodes it as uint8 with zero point
-- 127, which is the same values: (int8 - 0) * s == (uint8 - 127) * s.
local function all_zero(v)
  if type(v) == "number" then return v == 0 end
  if type(v) ~= "table" then return false end
  for _, x in ipairs(v) do if x ~= 0 then return false end end
  return true
end

return {
  id = "advisory-int8-affine-zero-point",
  title = "signed int8 constexpr_affine_dequantize with zero point 0 (wrong results on GPU/ANE)",
  categories = { "accuracy", "ane", "deploy" },
  severity = "warning",
  pattern = "4b",
  evidence = { "https://github.com/apple/coremltools/issues/2114", "https://github.com/apple/coremltools/pull/2675",
               "https://github.com/apple/coremltools/pull/2677" },
  affected = { coremltools = "7.1 .. 9.x (linear_symmetric, dtype int8)", compute_units = "CPU_AND_GPU, CPU_AND_NE, ALL" },
  fix = "re-encode the weights as uint8 with zero_point 127 (the same values), or quantize with dtype=np.uint8 / "
    .. "mode=\"linear\"; CPU_ONLY is correct meanwhile",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local types = require "mlsh.types"
    -- zero points of 10+ elements live in the weight file (coremltools per-channel form)
    local stored = {}
    for _, w in ipairs(m:weights()) do
      if w.param == "zero_point" and w.op then stored[w.op] = w end
    end
    local function zero_point(op)
      local v = op:arg("zero_point")
      if v ~= nil or not stored[op.name] then return v end
      local ok, st = pcall(function() return stored[op.name]:values():stats() end)
      return ok and st and st.min == 0 and st.max == 0 and 0 or nil
    end
    for _, op in ipairs(ctx:ops("constexpr_affine_dequantize")) do
      local v = op.msg:get("attributes", "quantized_data")
      local dtype = v and types.value_type(v.type).dtype
      for _, e in ipairs(op:inputs()) do if e.param == "quantized_data" then dtype = e.dtype end end
      if dtype == "int8" and all_zero(zero_point(op)) then
        ctx:report { message = string.format("%s '%s' dequantizes signed int8 with zero point 0", op.type, op.name),
                     location = { ["function"] = op["function"], op = op.name } }
      end
    end
  end,
}
