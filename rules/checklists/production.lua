-- The production checklist: what has to hold before a model ships. Items the file answers are
-- checked (pass/fail with the evidence); the rest (tests, profiling, app behaviour) are asked.
local pb = require "mlsh.engine.playbook"
local spec = require "mlsh.spec"

local NEURAL = { mlProgram = true, neuralNetwork = true, neuralNetworkClassifier = true, neuralNetworkRegressor = true }

return {
  id = "production",
  title = "Production checklist",
  description = "before shipping a Core ML model in an app",
  items = {
    {
      id = "eval-mode",
      text = "Exported in eval mode: no dropout or random ops in the graph",
      check = function(m, ctx)
        local f = ctx:finding("training-ops")
        if f then return "fail", f.message end
        if NEURAL[m.model_type or ""] or m.model_type == "pipeline" then return "pass", "no dropout or random ops" end
        return "pass", "a " .. tostring(m.model_type) .. " model has no training ops"
      end,
      fix = "call model.eval() before tracing and convert again",
    },
    {
      id = "preprocessing",
      text = "Input preprocessing (scale/bias, normalization) is baked into the model",
      check = function(m, ctx)
        local f = ctx:finding("image-preprocessing")
        if f then return "fail", f.message end
        local images = 0
        for _, i in ipairs(m:inputs()) do
          if i.kind == "image" then images = images + 1 end
        end
        if images > 0 then return "pass", string.format("%d image input(s) with scale/bias", images) end
        return nil, "the inputs are multiarrays: normalization may live in app code, which the file cannot show"
      end,
      ask = "Is input normalization done inside the model (not in app code)?",
      fix = "pass scale/bias to ct.ImageType, or add the normalization to the model before converting",
    },
    {
      id = "ml-program",
      text = "The model is an ML program (not the legacy NeuralNetwork format)",
      check = function(m, ctx)
        if m.model_type == "mlProgram" then return "pass", "mlProgram, spec " .. tostring(m.spec_version) end
        if ctx:is_nn() then return "fail", tostring(m.model_type) .. ", spec " .. tostring(m.spec_version) end
        if m.model_type == "pipeline" or m.model_type == "pipelineClassifier" or m.model_type == "pipelineRegressor" then
          for _, sub in ipairs((m:submodels())) do
            if sub.neural_network then return "fail", "a pipeline with NeuralNetwork sub-models" end
          end
          return "pass", "a pipeline without NeuralNetwork sub-models"
        end
        return "pass", "a " .. tostring(m.model_type) .. " model: the ML program format does not apply"
      end,
      fix = "re-convert with convert_to='mlprogram' (minimum_deployment_target >= iOS15)",
    },
    {
      id = "deployment-target",
      text = "Loads on the oldest OS the app supports (spec version within --target)",
      check = function(m, ctx)
        local need = spec.target_name(m.spec_version) or ("spec " .. tostring(m.spec_version))
        if not ctx.target then return nil, "the model needs " .. need .. " or later; give --target to check" end
        if m.spec_version > ctx.target then
          return "fail", string.format("spec %d needs %s; the target %s runs up to spec %d", m.spec_version, need,
            ctx.target_name, ctx.target)
        end
        return "pass", string.format("spec %d (%s) loads on %s", m.spec_version, need, ctx.target_name)
      end,
      ask = "Does the model's minimum OS match the app's deployment target?",
      fix = "re-convert with minimum_deployment_target = the app's oldest OS",
    },
    {
      id = "accuracy-test",
      text = "An automated test compares Core ML outputs with the source model on real inputs",
      ask = "Is there an automated Core ML vs source-model output comparison on real inputs?",
      fix = "add a comparison test (tolerance on real inputs) that runs on every model change",
    },
    {
      id = "quantization",
      text = "Weights are compressed, or compression was measured and declined",
      check = function(m, ctx)
        local status, ev = pb.compressed_weights(ctx)
        if status then return status, ev end
        local f = ctx:finding("weights-memory")
        if f then return "fail", f.message end
        return nil, "not compressed, " .. pb.fmt_bytes(ctx:weight_bytes()) .. " of weights"
      end,
      ask = "Was weight compression evaluated (and declined for a measured reason)?",
      fix = "try 8-bit, then 6/4-bit palettization with coremltools.optimize.coreml and measure accuracy",
    },
    {
      id = "profiling",
      text = "Profiled on the slowest supported device (Xcode performance report)",
      check = function(m, ctx)
        local p = ctx:placement()
        return nil, p and string.format("predicted ANE coverage %s of ops, %s of work", pb.pct(p.ane_coverage.ops),
          pb.pct(p.ane_coverage.work)) or nil
      end,
      ask = "Was the model profiled on the slowest supported device?",
      fix = "create a performance report in Xcode on that device and fix what runs off the Neural Engine",
    },
    {
      id = "shape-variations",
      text = "Input shape variations are fixed or enumerated (no range shapes)",
      check = function(m, ctx)
        local f = ctx:finding("range-shapes")
        if f then return "fail", f.message end
        local flex = ctx:flexible_inputs()
        if #flex.enumerated > 0 then return "pass", "enumerated shapes: " .. table.concat(flex.enumerated, ", ") end
        return "pass", "fixed input shapes"
      end,
      fix = "use ct.EnumeratedShapes with the shapes the app uses",
    },
    {
      id = "memory",
      text = "The weights fit comfortably in the memory budget",
      check = function(m, ctx)
        local f = ctx:finding("weights-memory")
        if f then return "fail", f.message end
        return "pass", pb.fmt_bytes(ctx:weight_bytes()) .. " of weights, under half the budget"
      end,
      fix = "compress the weights (see mlsh diagnose MODEL --symptom high-memory)",
    },
    {
      id = "fallbacks",
      text = "The app handles a model that fails to load (older OS, low memory): a fallback or a feature gate",
      check = function(m, ctx)
        return nil, "the model needs " .. (spec.target_name(m.spec_version) or "?") .. " or later"
      end,
      ask = "Does the app handle load failure (fallback model, disabled feature, error path)?",
      fix = "catch MLModel load errors, gate the feature by OS availability, and test the failure path",
    },
  },
}
