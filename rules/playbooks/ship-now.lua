-- Pressure scenario: "ship now, optimize later". Some problems cannot be fixed after release (a
-- model that does not load on the OSes you support, wrong outputs, memory kills); some fixes are
-- free now (an fp16 ML program); the rest (ANE restructuring, compression) can wait if an accuracy
-- test guards the later changes. The file answers all but the last question.
local pb = require "mlsh.engine.playbook"

local LOAD_BLOCKERS = { ["deployment-target"] = true, ["layout-limits"] = true, ["op-not-in-opset"] = true,
                        ["custom-layers"] = true }

return {
  id = "ship-now",
  title = "Ship now, optimize later",
  symptom = "there is a deadline: ship this model now and optimize later",
  patterns = { "1a", "2b", "3b", "5b" },
  rules = "error or deploy or load or memory",
  pressure = {
    wrong = "Ship the first conversion untouched (fp32 or NeuralNetwork, deployment target not checked, no accuracy "
      .. "test) and plan to optimize after launch: load failures on older OSes and wrong outputs ship with it, and "
      .. "later optimizations change outputs nobody measured.",
    right = "Ship now, but first clear what cannot be fixed after release: it loads on every OS you support, its "
      .. "outputs match the source model, it fits in memory. Take the free wins now (an fp16 ML program), and "
      .. "schedule ANE restructuring and compression as measured follow-ups, gated by the accuracy test.",
    checks = {
      "mlsh checklist production MODEL --target iOS16",
      "mlsh check MODEL --target iOS16 --format sarif > mlsh.sarif   # a CI gate on every model change",
      "mlsh diagnose MODEL --symptom ship-now --target iOS16",
    },
  },
  start = "blockers",
  nodes = {
    {
      id = "blockers",
      ask = "Does anything stop the model loading on the OSes you support, or fitting in memory?",
      check = function(m, ctx)
        for _, f in ipairs(ctx:all_findings()) do
          if f.severity == "error" and LOAD_BLOCKERS[f.rule] then return "load", f.message end
        end
        for _, f in ipairs(ctx:all_findings()) do
          if f.severity == "error" and f.rule == "weights-memory" then return "memory", f.message end
        end
        return "none", ctx.target and ("no load or memory blocker for " .. ctx.target_name)
          or "no load or memory blocker (give --target with the oldest OS you support to check the spec)"
      end,
      answers = {
        { id = "load", text = "yes: it will not load somewhere", next = "blocker-load" },
        { id = "memory", text = "yes: the weights exceed the memory budget", next = "blocker-memory" },
        { id = "none", text = "no", next = "correctness" },
      },
    },
    {
      id = "correctness",
      ask = "Does the file show a cause of wrong outputs (missing image preprocessing, training-only ops)?",
      check = function(m, ctx)
        local f = ctx:finding("image-preprocessing") or ctx:finding("training-ops")
        if f then return "yes", f.message end
        return "no", "image preprocessing present (or no image inputs), no training-only ops"
      end,
      answers = {
        { id = "yes", text = "yes", next = "fix-correctness" },
        { id = "no", text = "no", next = "cheap-wins" },
      },
    },
    {
      id = "cheap-wins",
      ask = "Is it a NeuralNetwork model or an fp32 ML program (a one-line re-conversion away from fp16)?",
      check = function(m, ctx)
        if ctx:is_nn() then return "yes", "a NeuralNetwork model (spec " .. tostring(m.spec_version) .. ")" end
        local f = ctx:finding("fp32-compute")
        if f then return "yes", f.message end
        return "no", ctx:is_program() and "an fp16 ML program" or ("a " .. tostring(m.model_type) .. " model")
      end,
      answers = {
        { id = "yes", text = "yes", next = "take-cheap-wins" },
        { id = "no", text = "no, already an fp16 ML program", next = "accuracy-test" },
      },
    },
    {
      id = "accuracy-test",
      ask = "Is there an automated test comparing the Core ML model's outputs with the source model on real inputs?",
      why = "every later optimization (compression, restructuring) needs it as the gate",
      answers = {
        { id = "no", text = "no", next = "add-accuracy-test" },
        { id = "yes", text = "yes", next = "ship-and-schedule" },
      },
    },
    -- leaves -------------------------------------------------------------------------------------
    {
      id = "blocker-load", pattern = "1a",
      title = "Fix the load blocker before shipping",
      cause = "The model will not load on part of the OSes or devices you support; an app update is the only fix after release.",
      steps = {
        "mlsh check MODEL --target <oldest OS> lists the blockers.",
        "Re-convert for that target (or raise the app's minimum OS) and re-check.",
      },
      fix = "Re-convert with minimum_deployment_target = the oldest OS you ship to, and remove ops/layouts the check names.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=inputs, convert_to="mlprogram",
                     minimum_deployment_target=ct.target.iOS16)]],
      },
      tradeoff = "A lower target loses newer ops; this is a day of work, not a release.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(ctx:all_findings()) do
          if f.severity == "error" and LOAD_BLOCKERS[f.rule] then out[#out + 1] = f.rule .. ": " .. f.message end
        end
        return out
      end,
    },
    {
      id = "blocker-memory", pattern = "3b",
      title = "Compress before shipping: it will be killed on smaller devices",
      cause = "The weights exceed the memory budget: on devices with less memory the app is killed at load.",
      steps = {
        "Pick the mildest scheme from the size table that fits half the budget.",
        "Compress, then run the accuracy test.",
      },
      fix = "8-bit or 6-bit palettization is a safe first step that rarely costs accuracy.",
      snippet = {
        python = [[shippable = cto.palettize_weights(mlmodel, cto.OptimizationConfig(
    global_config=cto.OpPalettizerConfig(nbits=8, mode="kmeans")))]],
      },
      tradeoff = "A compression pass and an accuracy check before the deadline.",
      facts = function(m, ctx) return ctx:size_lines() end,
    },
    {
      id = "fix-correctness", pattern = "5b",
      title = "Fix the wrong-output cause before shipping",
      cause = "The file shows a cause of wrong outputs (raw pixels into a normalized network, dropout left in): shipping it ships wrong predictions.",
      steps = {
        "Re-convert with the preprocessing baked in / in eval mode.",
        "Compare outputs with the source model on a few real inputs.",
      },
      fix = "Re-convert: model.eval() before tracing, ct.ImageType(scale=..., bias=...) for image inputs.",
      snippet = {
        python = [[model.eval()
traced = torch.jit.trace(model, example)
mlmodel = ct.convert(traced, inputs=[ct.ImageType(name="image", shape=example.shape, scale=1 / 255.0)])]],
      },
      tradeoff = "None: these are bugs.",
      facts = function(m, ctx)
        local out = {}
        for _, id in ipairs({ "image-preprocessing", "training-ops" }) do
          for _, f in ipairs(ctx:findings(id)) do out[#out + 1] = f.message end
        end
        return out
      end,
    },
    {
      id = "take-cheap-wins", pattern = "2b",
      title = "Take the free win: an fp16 ML program",
      cause = "A NeuralNetwork or fp32 model leaves speed and the Neural Engine on the table; re-converting as an fp16 ML program is one line and rarely changes outputs.",
      steps = {
        "Re-convert with convert_to='mlprogram' and fp16 precision.",
        "Run the accuracy comparison; ship the fp16 model if it holds.",
      },
      fix = "ct.convert(..., convert_to='mlprogram', compute_precision=ct.precision.FLOAT16, minimum_deployment_target >= iOS15).",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=inputs, convert_to="mlprogram",
                     compute_precision=ct.precision.FLOAT16, minimum_deployment_target=ct.target.iOS16)]],
      },
      tradeoff = "ML programs need iOS15+; fp16 needs the accuracy check.",
      facts = function(m, ctx)
        local out = {}
        local f = ctx:finding("fp32-compute") or ctx:finding("neuralnetwork-format")
        if f then out[#out + 1] = f.message end
        return out
      end,
    },
    {
      id = "add-accuracy-test", pattern = "5b",
      title = "Add the accuracy test before shipping",
      cause = "Without an output comparison nobody knows whether this conversion (or any later optimization) is right.",
      steps = {
        "Collect a few dozen real inputs and the source model's outputs.",
        "Compare Core ML outputs against them in CI (on a Mac runner) with a tolerance.",
      },
      fix = "Add a Core ML vs source-model comparison on real inputs, run on every model change.",
      snippet = {
        python = [[ref = torch_model(torch.from_numpy(x)).detach().numpy()
out = mlmodel.predict({"x": x})["y"]
assert np.allclose(out, ref, atol=1e-2), np.abs(out - ref).max()]],
      },
      tradeoff = "An hour now; it gates every later optimization.",
    },
    {
      id = "ship-and-schedule", pattern = false,
      title = "Ship it; schedule the measured optimizations",
      cause = "Nothing blocks shipping: it loads, it is fp16, outputs are tested. The rest is optimization that can follow.",
      steps = {
        "Run mlsh checklist production MODEL and file the unknown items as follow-ups.",
        "Profile on the slowest supported device; restructure the top cut-makers; compress; each step gated by the accuracy test.",
      },
      fix = "Ship, then iterate: profile, move ops onto the Neural Engine, compress — one measured step per release.",
      snippet = {
        swift = [[let config = MLModelConfiguration()
config.computeUnits = .all
let model = try await MLModel.load(contentsOf: compiledURL, configuration: config)]],
      },
      tradeoff = "The first release is not the fastest possible; the accuracy test keeps later releases honest.",
      facts = function(m, ctx)
        local p = ctx:placement()
        if not p then return {} end
        return { string.format("predicted ANE coverage %s of ops, %s of work", pb.pct(p.ane_coverage.ops),
          pb.pct(p.ane_coverage.work)) }
      end,
    },
  },
}
