-- Advisory (playbook 2b): two or more large (global-attention) SDPAs in one function make the Neural
-- Engine compile fail ("live input tensor not used in network") and the whole model silently falls
-- back to the CPU. "Large" here: fp16 with at least 2^21 query elements, the size from which fused
-- SDPA reaches the Neural Engine at all (vx-lang/Vx#437).
local MIN_ELEMS = 2097152

local function elems(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do if d > 0 then n = n * d end end
  return n
end

return {
  id = "advisory-two-large-sdpa",
  title = "two or more large SDPAs in one function (Neural Engine compile fails, silent CPU fallback)",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  evidence = { "https://github.com/kasper0406/stablehlo-coreml/pull/89", "https://github.com/vx-lang/Vx/issues/437" },
  affected = { os = "macOS 26.5, 26.6", coremltools = "9.0", spec = "9+ (iOS18 SDPA op)" },
  fix = "keep at most one large fused SDPA per function: split the model into functions/chunks, or leave the "
    .. "global-attention sites unfused (matmul/softmax/matmul)",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local by_fn, order = {}, {}
    for _, op in ipairs(ctx:ops("scaled_dot_product_attention")) do
      local q = op:inputs()[1]
      for _, e in ipairs(op:inputs()) do if e.param == "query" then q = e end end
      if q and q.dtype == "fp16" and elems(q.shape) >= MIN_ELEMS then
        local f = op["function"] or "main"
        if not by_fn[f] then by_fn[f] = {}; order[#order + 1] = f end
        table.insert(by_fn[f], op.name)
      end
    end
    for _, f in ipairs(order) do
      local list = by_fn[f]
      if #list >= 2 then
        ctx:report { message = string.format("function %s has %d large fp16 SDPAs (%s)", f, #list,
          table.concat(list, ", ")), location = { ["function"] = f, op = list[2] }, evidence = { count = #list } }
      end
    end
  end,
}
