-- Playbook 2b: the Neural Engine maps the last axis to its "width" and processes it in 64-byte
-- chunks; a large tensor whose last axis is 1 is padded 32x (fp16). Put the long axis last:
-- the ANE layout is (B, C, 1, S).
local MIN_ELEMENTS = 4096

local function elements(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do
    if d < 0 then return 0 end
    n = n * d
  end
  return n
end

local function bad(shape)
  return shape and #shape >= 2 and shape[#shape] == 1 and elements(shape) >= MIN_ELEMENTS
end

return {
  id = "last-axis-one",
  title = "large tensors with a last axis of size 1 (32x padding on the Neural Engine)",
  categories = { "performance", "ane", "memory" },
  severity = "info",
  pattern = "2b",
  fix = "move the long axis last (ANE layout (B, C, 1, S)): transpose or reshape at conversion",
  check = function(m, ctx)
    for _, role in ipairs({ "input", "output" }) do
      for _, f in ipairs(role == "input" and m:inputs() or m:outputs()) do
        if f.kind == "multiArray" and bad(f.shape) then
          ctx:report { message = string.format("%s '%s' has shape [%s]: its last axis is 1, so the Neural Engine "
            .. "pads every element to 64 bytes", role, f.name, table.concat(f.shape, ", ")),
            location = { value = f.name }, evidence = { shape = f.shape } }
        end
      end
    end
    local count, first = 0, nil
    for _, op in ipairs(ctx:ops()) do
      if op.type ~= "const" and not op.type:match("^constexpr_") then
        local o = op.outputs[1]
        if o and bad(o.shape) then
          count = count + 1
          first = first or op
        end
      end
    end
    if first then
      ctx:report { message = string.format("%d op output(s) are large with a last axis of 1 (first: %s '%s' [%s])",
        count, first.type, first.name, table.concat(first.outputs[1].shape, ", ")),
        location = { ["function"] = first["function"], op = first.name }, evidence = { count = count } }
    end
  end,
}
