-- Advisory (playbook 2b): Apple's authoring rules: "any Python float literal or fp32 op creates an
-- f32 buffer that Neural Engine cannot execute". In a program that otherwise computes in fp16, an
-- fp32 constant feeding a compute op (not a cast) is such a literal: the op it feeds, and the casts
-- around it, leave the Neural Engine. Ops that take a model input directly (the image scale/bias
-- coremltools inserts in front of the fp16 body, the fp32 boundary layout) are not counted: those
-- constants are the converter's, not the author's literals.
-- Apple's authoring rules (apple/coreai-models @ 86b363dc), cited with line anchors
local APPLE = "https://github.com/apple/coreai-models/blob/86b363dca67cf276c1a5c96eea5e4b57e3a0643c/skills/skills/model-authoring/references/"
local function fp16_compute(fn)
  for _, op in ipairs(fn.all_ops) do
    local out = op.outputs[1]
    if op.type ~= "const" and op.type ~= "cast" and not op.type:match("^constexpr_") and out and out.dtype == "fp16" then
      return true
    end
  end
  return false
end

return {
  id = "advisory-fp32-literal",
  title = "fp32 constants feeding compute in an fp16 program",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  evidence = { APPLE .. "neural_engine_rules.md#L121-L134",
                APPLE .. "common_issues.md#L5",
                APPLE .. "common_issues.md#L130-L134" },
  affected = { chip = "all Neural Engine generations" },
  fix = "make the constant fp16 (torch.tensor(1.0, dtype=x.dtype) instead of a Python float); on the file: "
    .. "mlsh fix MODEL --fp16 -o OUT",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    for _, fn in ipairs(m:functions()) do
      if fp16_compute(fn) then
        local fp32_const, boundary = {}, {}
        for _, i in ipairs(fn.inputs or {}) do boundary[i.name] = true end
        for _, op in ipairs(fn.all_ops) do
          local at_boundary = false
          for _, e in ipairs(op:inputs()) do if e.name and boundary[e.name] then at_boundary = true end end
          local out = op.outputs[1]
          if at_boundary and op.type ~= "cast" then -- the fp32 region in front of the body stays the boundary
            for _, o in ipairs(op.outputs) do boundary[o.name] = true end
          end
          if op.type == "const" and out and out.dtype == "fp32" then
            fp32_const[out.name] = op.name
          elseif op.type ~= "const" and op.type ~= "cast" and not op.type:match("^constexpr_") and not at_boundary then
            for _, e in ipairs(op:inputs()) do
              local c = e.name and fp32_const[e.name]
              if c then
                fp32_const[e.name] = nil -- one finding per constant: its first consumer
                ctx:report { message = string.format("fp32 constant '%s' feeds %s '%s' (%s) in a program that "
                  .. "computes in fp16", c, op.type, op.name, e.param or "?"),
                  location = { ["function"] = fn.name, op = op.name } }
              end
            end
          end
        end
      end
    end
  end,
}
