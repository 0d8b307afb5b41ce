-- Playbook 1c (load errors): Core ML rejects tensors of rank > 5 in many paths and fails to load
-- models with an input dimension above 16384 (likely the Metal texture width); 0-sized dims are
-- rejected too (ORT's Core ML EP hard-codes all three).
local MAX_RANK, MAX_DIM = 5, 16384

return {
  id = "layout-limits",
  title = "tensor rank or dimension beyond Core ML's limits",
  categories = { "load" },
  severity = "error",
  pattern = "1c",
  fix = "reshape to rank <= 5 (rank <= 4 for the Neural Engine) and split inputs so that no dimension "
    .. "exceeds 16384",
  check = function(m, ctx)
    for _, role in ipairs({ "input", "output" }) do
      for _, f in ipairs(role == "input" and m:inputs() or m:outputs()) do
        local shape = f.shape or {}
        if #shape > MAX_RANK then
          ctx:report { message = string.format("%s '%s' has rank %d > %d", role, f.name, #shape, MAX_RANK),
                       location = { value = f.name }, evidence = { shape = shape } }
        end
        local dims = {}
        for _, d in ipairs(shape) do dims[#dims + 1] = d end
        for _, r in ipairs(f.flexibility and f.flexibility.ranges or {}) do dims[#dims + 1] = r[2] end
        for _, s in ipairs(f.flexibility and f.flexibility.shapes or {}) do
          for _, d in ipairs(s) do dims[#dims + 1] = d end
        end
        local big, zero = nil, false
        for _, d in ipairs(dims) do
          if d > MAX_DIM and (not big or d > big) then big = d end
        end
        for _, d in ipairs(shape) do
          if d == 0 then zero = true end
        end
        if big and role == "input" then
          ctx:report { message = string.format("%s '%s' has a dimension of %d > %d: Core ML fails to load models "
            .. "with an input dimension above that", role, f.name, big, MAX_DIM), location = { value = f.name }, evidence = { shape = shape } }
        end
        if zero and f.kind == "multiArray" then
          ctx:report { message = string.format("%s '%s' has a 0-sized dimension", role, f.name),
                       location = { value = f.name }, evidence = { shape = shape } }
        end
      end
    end
    local worst
    local count = 0
    for _, op in ipairs(ctx:ops()) do
      if op.type ~= "const" and not op.type:match("^constexpr_") then
        for _, o in ipairs(op.outputs) do
          if o.shape and #o.shape > MAX_RANK then
            count = count + 1
            worst = worst or { op = op, rank = #o.shape }
          end
        end
      end
    end
    if worst then
      ctx:report { message = string.format("%d op output(s) have rank > %d (first: %s '%s', rank %d)", count, MAX_RANK,
        worst.op.type, worst.op.name, worst.rank), location = { ["function"] = worst.op["function"], op = worst.op.name },
        evidence = { count = count } }
    end
  end,
}
