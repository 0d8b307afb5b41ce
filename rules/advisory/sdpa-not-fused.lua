-- Advisory (playbook 2b): since iOS18 the torch converter emits the fused scaled_dot_product_attention
-- op only when torch's `scale` is None; any explicit scale (Hugging Face passes one always) gives the
-- matmul / scale / softmax / matmul decomposition instead.
local SCALE = { mul = true, real_div = true }

return {
  id = "advisory-sdpa-not-fused",
  title = "attention decomposed into matmul/softmax/matmul although the opset has fused SDPA",
  categories = { "performance", "conversion" },
  severity = "info",
  pattern = "2b",
  evidence = { "https://github.com/apple/coremltools/pull/2864" },
  affected = { spec = "9+ (iOS18 opset)", coremltools = "up to 9.x without PR 2864" },
  fix = "convert with scale=None when it is the default 1/sqrt(head_dim) (or a coremltools with PR 2864), or "
    .. "fold the scale into the query projection",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local spec = require "mlsh.spec"
    for _, fn in ipairs(m:functions()) do
      local ok, opset = pcall(spec.opset_spec, fn.opset or "")
      if not ok then opset = nil end
      local has_sdpa, producer, hits = false, {}, 0
      local first
      for _, op in ipairs(fn.all_ops) do
        for _, o in ipairs(op.outputs or {}) do producer[o.name] = op end
        if op.type == "scaled_dot_product_attention" then has_sdpa = true end
        if op.type == "softmax" then
          local x
          for _, e in ipairs(op:inputs()) do if e.param == "x" then x = e.name end end
          local p = x and producer[x]
          if p and SCALE[p.type] then
            local pin
            for _, e in ipairs(p:inputs()) do if e.param == "x" then pin = e.name end end
            p = pin and producer[pin] or p
          end
          if p and p.type == "matmul" then
            hits = hits + 1
            first = first or op
          end
        end
      end
      if hits > 0 and not has_sdpa and type(opset) == "number" and opset >= 9 then
        ctx:report { message = string.format("function %s (opset spec %d) has %d matmul -> softmax attention "
          .. "pattern(s) and no fused scaled_dot_product_attention", fn.name, opset, hits),
          location = { ["function"] = fn.name, op = first.name }, evidence = { patterns = hits } }
      end
    end
  end,
}
