-- Conversion advice (no single playbook pattern): a NeuralNetwork model where the deployment
-- target allows an ML program (iOS15+). ML programs are typed (fp16 compute on GPU/ANE), get the
-- iOS16+ compression schemes and are where Core ML's new ops land.
return {
  id = "neuralnetwork-format",
  title = "NeuralNetwork format where an ML program would serve",
  categories = { "conversion", "performance" },
  severity = "info",
  pattern = false,
  fix = "re-convert with convert_to='mlprogram' and minimum_deployment_target >= ct.target.iOS15",
  applies = function(m) return m.neural_network ~= nil end,
  check = function(m, ctx)
    if ctx.target and ctx.target < 6 then return end -- the target predates ML programs
    ctx:report {
      message = string.format("this is a NeuralNetwork model (spec %d); an ML program (iOS15+%s) gives typed "
        .. "fp16 execution, weight compression (palettization, int8/int4) and current ops",
        m.spec_version or 0, ctx.target and (", allowed by the target " .. ctx.target_name) or ""),
      evidence = { model_type = m.model_type, layers = #m:layers() },
    }
  end,
}
