-- Playbook 2b (all predictions slow, dynamic shapes): inputs with range (RangeDim) flexibility push
-- work off the Neural Engine and make Core ML re-plan for new shapes; EnumeratedShapes are the
-- ANE-friendly flexible form. An unbounded range is also rejected by coremltools for ML programs.
local FIXES = require("mlsh.placement.coreml").FIXES -- one wording for the rule and the cut-makers
return {
  id = "range-shapes",
  title = "flexible input shapes given as ranges instead of enumerated shapes",
  categories = { "performance", "ane" },
  severity = "warning",
  pattern = "2b",
  fix = "on the file: mlsh fix MODEL --fix-shape NAME=DIMS -o OUT (one static shape); at conversion: " .. FIXES.shapes,
  applies = function(m) return #m:inputs() > 0 end,
  check = function(m, ctx)
    for _, f in ipairs(m:inputs()) do
      local fl = f.flexibility
      if fl and fl.kind == "range" then
        local flexible, unbounded = {}, false
        for axis, r in ipairs(fl.ranges) do
          if r[1] ~= r[2] then
            flexible[#flexible + 1] = string.format("axis %d: %d..%s", axis - 1, r[1], r[2] < 0 and "unbounded" or tostring(r[2]))
            if r[2] < 0 then unbounded = true end
          end
        end
        if #flexible > 0 then
          ctx:report {
            message = string.format("input '%s' has range shapes (%s): flexible ranges tend to keep work off "
              .. "the Neural Engine%s", f.name, table.concat(flexible, ", "),
              unbounded and "; an unbounded upper bound is rejected by coremltools for ML programs" or ""),
            location = { value = f.name },
            evidence = { ranges = fl.ranges, unbounded = unbounded },
          }
        end
      end
    end
  end,
}
