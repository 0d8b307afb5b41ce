-- mlsh.surgery.dce — dead-code removal: ops of the main block none of whose outputs is used (by an
-- op, a nested block or the function's outputs) are removed, last first, so chains die at once.
-- Ops with side effects (states) or nested blocks are kept.
--   dce.run(f) -> number of ops removed
local M = {}

M.KEEP = { write_state = true, read_state = false }

function M.run(f)
  local counts = {}
  for name, list in pairs(f:use_map()) do counts[name] = #list end
  local ops = f:ops()
  local removed = 0
  for i = #ops, 1, -1 do
    local op = ops[i]
    local used = M.KEEP[op.type] or #op.blocks > 0
    for _, v in ipairs(op.outputs) do
      if (counts[v.name] or 0) > 0 then used = true end
    end
    if not used then
      for _, p in ipairs(op.inputs) do
        for _, a in ipairs(p.args) do
          if a.name then counts[a.name] = (counts[a.name] or 1) - 1 end
        end
      end
      table.remove(ops, i)
      removed = removed + 1
      if f.editor then f.editor:log("dce", f.name, op, "removed (its outputs are unused)") end
    end
  end
  if removed > 0 then f:touch() end
  return removed
end

return M
