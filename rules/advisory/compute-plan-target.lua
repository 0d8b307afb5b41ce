-- Advisory (playbook 1b): MLComputePlan's per-op device and cost (computeDeviceUsageForMLProgram-
-- Operation:, estimatedCostOfMLProgramOperation:) return nil for every op unless the model itself
-- targets a recent deployment (observed: iOS18 works, lower targets give an empty plan), whatever
-- the OS running the analysis.
return {
  id = "advisory-compute-plan-target",
  title = "deployment target too old for MLComputePlan's per-op device and cost",
  categories = { "deploy" },
  severity = "info",
  pattern = "1b",
  evidence = { "https://github.com/onnxsim/onnxsim/pull/980",
               "https://github.com/freedomtan/coreml_modelc_profling" },
  affected = { spec = "< 9 (below iOS18 / macOS15)", os = "analysis on macOS 14.4+ / iOS 17.4+" },
  fix = "to inspect placement with MLComputePlan, convert a copy with minimum_deployment_target=ct.target.iOS18 "
    .. "(or newer); mlsh check's placement is the static prediction meanwhile",
  applies = function(m) return m.program ~= nil end,
  check = function(m, ctx)
    local v = m.spec_version or 0
    if v < 9 then
      ctx:report { message = string.format("the model declares spec %d: MLComputePlan reports no per-op device or "
        .. "cost for it", v), evidence = { spec = v } }
    end
  end,
}
