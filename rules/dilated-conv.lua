-- Playbook 2b: dilated convolutions are known problematic on the Neural Engine (they go to the GPU
-- or the CPU, splitting the ANE run around each one).
local FIXES = require("mlsh.placement.coreml").FIXES -- one wording for the rule and the cut-makers
local function max_of(v)
  local m = 1
  for _, x in ipairs(type(v) == "table" and v or { v }) do
    if type(x) == "number" and x > m then m = x end
  end
  return m
end

return {
  id = "dilated-conv",
  title = "dilated convolutions (not on the Neural Engine)",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  fix = FIXES.max_dilation,
  applies = function(m) return m.program ~= nil or m.neural_network ~= nil end,
  check = function(m, ctx)
    local hits, worst, first = 0, 1, nil
    for _, op in ipairs(ctx:ops({ conv = true, conv_transpose = true })) do
      local ok, d = pcall(op.arg, op, "dilations")
      local dm = ok and max_of(d) or 1
      if dm > 1 then
        hits, worst = hits + 1, math.max(worst, dm)
        first = first or { ["function"] = op["function"], op = op.name }
      end
    end
    for _, l in ipairs(ctx:layers("convolution")) do
      local dm = max_of(l.params and l.params.dilationFactor or {})
      if dm > 1 then
        hits, worst = hits + 1, math.max(worst, dm)
        first = first or { layer = l.name }
      end
    end
    if hits == 0 then return end
    ctx:report {
      message = string.format("%d dilated convolution(s) (dilation up to %d): the Neural Engine does not run "
        .. "dilated convolutions well; each one splits the ANE run", hits, worst),
      location = first,
      evidence = { count = hits, max_dilation = worst },
    }
  end,
}
