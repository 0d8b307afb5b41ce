-- Playbook 2: "it's slow". The file cannot say which predictions are slow or which compute units
-- the app sets, but it shows most causes of "every prediction is slow": fp32 compute, what keeps
-- ops off the Neural Engine (the placement simulator), range shapes, sheer size; and for "only on
-- one device", the compression schemes whose speed depends on the chip.
local pb = require "mlsh.engine.playbook"

-- Large models are often scheduled on the GPU even when every op is ANE-eligible.
local ANE_LARGE_BYTES = 1024 ^ 3

local function cut_facts(ctx)
  local p = ctx:placement()
  if not p then return {} end
  local out = { string.format("predicted ANE coverage (%s): %s of ops, %s of estimated work; %d segment(s), %d switch(es)",
    p.compute_units, pb.pct(p.ane_coverage.ops), pb.pct(p.ane_coverage.work), #p.segments, #p.transitions) }
  for i, c in ipairs(p.cut_makers) do
    if i > 4 then break end
    out[#out + 1] = string.format("cut-maker %s x%d: %s; fix: %s", c.type, c.count, c.reason, c.fix)
  end
  return out
end

return {
  id = "slow-inference",
  title = "Predictions are slow",
  symptom = "it's slow: the first prediction, every prediction, or only on some devices",
  patterns = { "2a", "2b", "2c" },
  rules = "performance or ane or 2a or 2b or 2c",
  start = "which-predictions",
  nodes = {
    {
      id = "which-predictions",
      ask = "Which predictions are slow?",
      why = "a slow first prediction is model compilation/specialization (2a); slow steady state is where the model runs (2b); one device is the chip or OS (2c)",
      answers = {
        { id = "first", text = "only the first one(s) after loading; later ones are fast", next = "first-load" },
        { id = "all", text = "every prediction, on every device", next = "precision" },
        { id = "device", text = "only on a specific device or OS version", next = "device-compression" },
      },
    },
    -- 2a
    {
      id = "first-load",
      ask = "Is the first load slow on every app launch, or only after install / an OS update?",
      answers = {
        { id = "every-launch", text = "on every launch", next = "no-model-cache" },
        { id = "after-install", text = "only the first launch after install or an OS update", next = "first-compile" },
      },
    },
    -- 2b: what the file shows first, then what only the app knows
    {
      id = "precision",
      ask = "Does the model compute in fp32?",
      why = "the Neural Engine computes only in fp16: fp32 ops run on the GPU or the CPU",
      check = function(m, ctx)
        local f = ctx:finding("fp32-compute")
        if f then return "yes", f.message end
        local c = ctx:compute_dtypes()
        if ctx:is_program() then return "no", string.format("%d of %d compute ops are fp16", c.fp16, c.total) end
        return "no", "a " .. tostring(m.model_type) .. " model: Core ML picks the precision per unit"
      end,
      answers = {
        { id = "yes", text = "yes, (some) ops compute in fp32", next = "fp32-compute" },
        { id = "no", text = "no, fp16", next = "ane-coverage" },
      },
    },
    {
      id = "ane-coverage",
      ask = "Do some ops stay off the Neural Engine and cut the model into segments?",
      check = function(m, ctx)
        if ctx.compute_units == "CPU_ONLY" or ctx.compute_units == "CPU_AND_GPU" then
          return "no", "compute units " .. ctx.compute_units .. " exclude the Neural Engine"
        end
        local p = ctx:placement()
        local cov = p.ane_coverage
        local between = 0
        for _, c in ipairs(p.cut_makers) do
          if c.between_ane then between = between + 1 end
        end
        local ev = string.format("predicted ANE coverage %s of ops, %s of work, %d device switch(es)", pb.pct(cov.ops),
          pb.pct(cov.work), #p.transitions)
        if cov.work < 0.8 or between > 0 then return "yes", ev end
        return "no", ev
      end,
      answers = {
        { id = "yes", text = "yes, some ops run on the GPU or CPU between ANE segments", next = "ane-cut" },
        { id = "no", text = "no, (nearly) everything is ANE-eligible", next = "dynamic-shapes" },
      },
    },
    {
      id = "dynamic-shapes",
      ask = "Do inputs have range (RangeDim) flexible shapes?",
      check = function(m, ctx)
        local f = ctx:finding("range-shapes")
        if f then return "yes", f.message end
        local flex = ctx:flexible_inputs()
        if #flex.enumerated > 0 then return "no", "enumerated shapes only: " .. table.concat(flex.enumerated, ", ") end
        return "no", "all inputs have fixed shapes"
      end,
      answers = {
        { id = "yes", text = "yes, range shapes", next = "range-shapes" },
        { id = "no", text = "no, fixed or enumerated shapes", next = "model-size" },
      },
    },
    {
      id = "model-size",
      ask = "Is the model very large (over ~1 GiB of weights)?",
      why = "even ANE-eligible models are often scheduled on the GPU when they are large",
      check = function(m, ctx)
        local b = ctx:weight_bytes()
        local ev = pb.fmt_bytes(b) .. " of weights"
        if b > ANE_LARGE_BYTES then return "yes", ev end
        return "no", ev
      end,
      answers = {
        { id = "yes", text = "yes", next = "too-large-for-ane" },
        { id = "no", text = "no", next = "compute-units" },
      },
    },
    {
      id = "compute-units",
      ask = "Which compute units does the app set (MLModelConfiguration.computeUnits)?",
      check = function(m, ctx)
        if not ctx.compute_units_given then return nil, "the app sets them at runtime; give --compute-units to answer" end
        local map = { ALL = "all", CPU_AND_NE = "all", CPU_ONLY = "cpu", CPU_AND_GPU = "gpu" }
        return map[ctx.compute_units], "--compute-units " .. ctx.compute_units
      end,
      answers = {
        { id = "all", text = ".all (the default) or .cpuAndNeuralEngine", next = "transfers" },
        { id = "cpu", text = ".cpuOnly", next = "compute-units-cpu" },
        { id = "gpu", text = ".cpuAndGPU", next = "compute-units-cpu" },
      },
    },
    {
      id = "transfers",
      ask = "Does profiling show the time outside the model's compute (input conversion, copies, reading outputs)?",
      why = "the Core ML instrument shows prediction time; compare it with the time around the call",
      answers = {
        { id = "yes", text = "yes, most time is around the prediction", next = "transfers-cost" },
        { id = "no", text = "no, or not profiled yet", next = "profile-ops" },
      },
    },
    -- 2c
    {
      id = "device-compression",
      ask = "Does the model use compression whose speed depends on the chip (int8 activations, int4 per-block weights)?",
      why = "W8A8 is fast on A17 Pro / M4 Neural Engines only; per-block int4 pays off mainly on the GPU",
      check = function(m, ctx)
        local c = ctx:compression()
        if #c.activation > 0 then
          return "activations", string.format("%d quantize/dequantize op(s): int8 activations (W8A8)", #c.activation)
        end
        for _, q in ipairs(c.quantized) do
          if q.bits == 4 and q.granularity == "per_block" then
            return "int4-blocks", string.format("%s is %s per-block (block %s)", q.name, q.dtype, tostring(q.block_size))
          end
        end
        return "none", c.any and "weight compression only (palettization / int8 / pruning)" or "no compressed weights"
      end,
      answers = {
        { id = "activations", text = "int8 activation quantization (W8A8)", next = "int8-activations" },
        { id = "int4-blocks", text = "int4 per-block weight quantization", next = "int4-blocks" },
        { id = "none", text = "neither", next = "device-kind" },
      },
    },
    {
      id = "device-kind",
      ask = "How does the slow device differ from the fast ones?",
      answers = {
        { id = "older-chip", text = "an older chip (older or no Neural Engine, less memory)", next = "older-chip" },
        { id = "os-version", text = "a different OS version on the same chip", next = "os-version" },
      },
    },
    -- leaves -------------------------------------------------------------------------------------
    {
      id = "no-model-cache", pattern = "2a",
      title = "The model is compiled or loaded again on every launch",
      cause = "The app compiles the source model at runtime each launch, loads it from a new URL each time (defeating Core ML's cache), or creates a new MLModel per prediction.",
      steps = {
        "Check whether the app calls MLModel.compileModel(at:) on every launch, or compiles into a temporary folder.",
        "Check that one MLModel instance is created and kept, not one per request.",
        "Time MLModel(contentsOf:) separately from the first prediction.",
      },
      fix = "Compile once and keep the .mlmodelc in Application Support; create the MLModel once (off the main thread, at launch) and reuse it.",
      snippet = {
        swift = [[actor ModelStore {
    private var model: MLModel?
    func get() async throws -> MLModel {
        if let model { return model }
        let m = try await MLModel.load(contentsOf: persistentCompiledURL, configuration: config)
        model = m; return m                    // one instance, loaded once
    }
}]],
      },
      tradeoff = "A kept MLModel holds its memory for the app's lifetime.",
    },
    {
      id = "first-compile", pattern = "2a",
      title = "First load specializes the model for the device",
      cause = "On first load after install or an OS update Core ML compiles the model for the device's units (the Neural Engine compiler especially) and caches the result; flexible shapes multiply that work.",
      steps = {
        "Measure the first and second load on a freshly installed app.",
        "Check for flexible shapes (mlsh info MODEL): each enumerated shape is planned.",
      },
      fix = "Prewarm: load the model in the background at launch (or after download) so the user never waits for it; keep the number of enumerated shapes small.",
      snippet = {
        swift = [[Task.detached(priority: .utility) {
    _ = try? await MLModel.load(contentsOf: compiledURL, configuration: config)   // warms the cache
}]],
      },
      tradeoff = "Prewarming spends CPU and battery at launch for a model the user may not use.",
      facts = function(m, ctx)
        local flex = ctx:flexible_inputs()
        local out = {}
        if #flex.range > 0 then out[#out + 1] = "range-shaped inputs: " .. table.concat(flex.range, ", ") end
        if #flex.enumerated > 0 then out[#out + 1] = "enumerated-shape inputs: " .. table.concat(flex.enumerated, ", ") end
        out[#out + 1] = pb.fmt_bytes(ctx:weight_bytes()) .. " of weights"
        return out
      end,
    },
    {
      id = "fp32-compute", pattern = "2b",
      title = "fp32 compute keeps the model off the Neural Engine",
      cause = "The model was converted with compute_precision=FLOAT32 (or has fp32 ops); the Neural Engine computes only in fp16, so those ops run on the GPU or the CPU.",
      steps = {
        "mlsh check MODEL --select fp32-compute counts the fp32 ops.",
        "Re-convert in fp16 and compare outputs with the fp32 model on real inputs.",
      },
      fix = "Convert with compute_precision=ct.precision.FLOAT16 (the ML program default); keep only precision-sensitive ops in fp32 with an op_selector.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=inputs, convert_to="mlprogram",
                     compute_precision=ct.transform.FP16ComputePrecision(
                         op_selector=lambda op: op.op_type not in ("reduce_sum", "softmax")))]],
      },
      tradeoff = "fp16 can overflow (|x| > 65504) or lose small values; ops kept in fp32 stay off the ANE.",
      facts = function(m, ctx)
        local c = ctx:compute_dtypes()
        return { string.format("%d of %d compute ops compute in fp32", c.fp32, c.total) }
      end,
    },
    {
      id = "ane-cut", pattern = "2b",
      title = "Ops off the Neural Engine split the model",
      cause = "Some ops are not eligible for the Neural Engine (gather, dilated conv, recurrent layers, unsupported layouts ...); each one between ANE segments costs device switches and data conversion.",
      steps = {
        "mlsh check MODEL lists the cut-makers ranked by the switches they cause; mlsh graph MODEL -o graph.svg shows them.",
        "Confirm on a device with the Xcode performance report or MLComputePlan.",
        "Fix the top cut-maker, re-convert, re-check; iterate.",
      },
      fix = "Rewrite or move the cut-making ops (the fix per op is in the facts below), starting with the one causing most switches.",
      snippet = {
        python = [[# e.g. an embedding lookup kept outside the model: feed the looked-up vectors instead
mlmodel = ct.convert(traced_without_embedding, inputs=[ct.TensorType(name="embeddings", shape=(1, 128, 512))])]],
        swift = [[if #available(iOS 17.4, *) {
    let plan = try await MLComputePlan.load(contentsOf: compiledURL, configuration: config)
    // plan.deviceUsage(for: operation)?.preferred  -> where each op really runs
}]],
      },
      tradeoff = "Moving ops out of the model moves work (and code) into the app; rewriting layers needs re-training or careful equivalence tests.",
      facts = function(m, ctx) return cut_facts(ctx) end,
    },
    {
      id = "range-shapes", pattern = "2b",
      title = "Range-shaped inputs keep work off the Neural Engine",
      cause = "Inputs declared with ct.RangeDim make Core ML plan for arbitrary shapes: much of the model runs on the GPU/CPU and new shapes re-plan.",
      steps = {
        "List the shapes the app really uses.",
        "Re-convert with ct.EnumeratedShapes of those shapes (or one fixed shape) and compare speed.",
      },
      fix = "Use ct.EnumeratedShapes with the few shapes you need, or a fixed shape with padding.",
      snippet = {
        python = [[shapes = ct.EnumeratedShapes(shapes=[(1, 3, 224, 224), (1, 3, 384, 384)], default=(1, 3, 224, 224))
mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="image", shape=shapes)])]],
      },
      tradeoff = "Enumerated shapes fix the sizes the app may use; each one adds compile time on first load.",
      facts = function(m, ctx)
        local f = ctx:finding("range-shapes")
        return f and { f.message } or {}
      end,
    },
    {
      id = "too-large-for-ane", pattern = "2b",
      title = "The model is too large to stay on the Neural Engine",
      cause = "Large models (around a gigabyte of weights and up) are often scheduled on the GPU even when every op is eligible, and weights stream from memory on every prediction.",
      steps = {
        "Check where it runs with the Xcode performance report.",
        "Compress the weights (see the size table) and re-measure.",
      },
      fix = "Compress weights (6/4-bit palettization, int8) so the model fits, or split it into stages that each fit.",
      snippet = {
        python = [[import coremltools.optimize.coreml as cto
config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(nbits=6, mode="kmeans"))
small = cto.palettize_weights(mlmodel, config)]],
      },
      tradeoff = "Compression costs some accuracy (measure it); splitting adds I/O between stages.",
      facts = function(m, ctx) return ctx:size_lines() end,
    },
    {
      id = "compute-units-cpu", pattern = "2b",
      title = "The app excludes the Neural Engine",
      cause = "MLModelConfiguration.computeUnits is .cpuOnly or .cpuAndGPU, so the Neural Engine is never used.",
      steps = {
        "Find where the app sets computeUnits (often left from debugging or a simulator workaround).",
        "Measure with .all.",
      },
      fix = "Use .all (the default) or .cpuAndNeuralEngine.",
      snippet = {
        swift = [[let config = MLModelConfiguration()
config.computeUnits = .all      // or .cpuAndNeuralEngine to keep the GPU free for rendering
let model = try MLModel(contentsOf: compiledURL, configuration: config)]],
      },
      tradeoff = "None for speed; if outputs differ on the ANE (fp16), fix precision rather than excluding it.",
      facts = function(m, ctx) return cut_facts(ctx) end,
    },
    {
      id = "transfers-cost", pattern = "2b",
      title = "Data transfer and conversion around the prediction",
      cause = "The time goes into building inputs and reading outputs: MLMultiArray copies, fp32<->fp16 conversion at the boundary, CVPixelBuffer format conversion, per-call allocation.",
      steps = {
        "Profile with Instruments (Core ML + Time Profiler): compare prediction time with the call's total.",
        "Check input/output dtypes (mlsh info MODEL): fp32 I/O on an fp16 model converts every call.",
        "Reuse output buffers (outputBackings) and feed pixel buffers in the model's format (BGRA/ARGB, the model's size).",
      },
      fix = "Convert with fp16 I/O (iOS16+), feed CVPixelBuffers directly for image inputs, and reuse output backings across predictions.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=shape, dtype=np.float16)],
                     outputs=[ct.TensorType(name="y", dtype=np.float16)],
                     minimum_deployment_target=ct.target.iOS16)]],
        swift = [[let options = MLPredictionOptions()
options.outputBackings = ["y": reusableOutputArray]   // no allocation per prediction
let out = try model.prediction(from: input, options: options)]],
      },
      tradeoff = "fp16 I/O needs iOS16 and fp16-aware app code; reusing buffers needs care with concurrency.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(m:inputs()) do out[#out + 1] = string.format("input %s: %s %s", f.name, f.kind, f.dtype or f.color_space or "") end
        for _, f in ipairs(m:outputs()) do out[#out + 1] = string.format("output %s: %s %s", f.name, f.kind, f.dtype or "") end
        return out
      end,
    },
    {
      id = "profile-ops", pattern = "2b",
      title = "Find the slow ops on the device",
      cause = "Nothing in the file explains the time: the cost is in specific ops on this device; only a device profile shows which.",
      steps = {
        "Create a performance report in Xcode (open the model, Performance tab) on the target device.",
        "Compare its per-op devices with mlsh check MODEL's predicted placement.",
        "Look for ops with high cost on the CPU/GPU and rewrite or remove them; re-measure.",
      },
      fix = "Profile on the device, then fix the top op; compress weights if the model is memory-bound.",
      snippet = {
        swift = [[let start = ContinuousClock.now
let out = try await model.prediction(from: input)
print(ContinuousClock.now - start)     // per prediction, after a warm-up call]],
      },
      tradeoff = "Profiling takes a device and time; it is the only ground truth.",
      facts = function(m, ctx) return cut_facts(ctx) end,
    },
    {
      id = "int8-activations", pattern = "2c",
      title = "int8 activations are fast only on the newest Neural Engines",
      cause = "W8A8 (linear_quantize_activations) gains speed on A17 Pro / M4 class Neural Engines; elsewhere the quantize/dequantize pairs cost time, or push work to the CPU/GPU.",
      steps = {
        "Compare the slow and fast devices' chips.",
        "Measure the weight-only quantized model on the slow device.",
      },
      fix = "Ship the weight-only compressed model to older devices (or everywhere), and W8A8 only where it is measured faster.",
      snippet = {
        python = [[import coremltools.optimize.coreml as cto
weights_only = cto.linear_quantize_weights(fp16_model, cto.OptimizationConfig(
    global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")))]],
      },
      tradeoff = "Two model variants to ship and test, or lose the W8A8 speed-up on new chips.",
      facts = function(m, ctx) return { string.format("%d quantize/dequantize op(s)", #ctx:compression().activation) } end,
    },
    {
      id = "int4-blocks", pattern = "2c",
      title = "int4 per-block weights are tuned for the GPU",
      cause = "Per-block int4 weight quantization saves memory and helps mainly on the GPU (and Macs); on a Neural Engine device the decompression may cost more than it saves.",
      steps = {
        "Check which unit runs the model on the slow device (Xcode performance report).",
        "Measure an 8-bit or palettized variant there.",
      },
      fix = "For Neural Engine devices prefer 4/6-bit palettization or int8 per-channel; keep int4 per-block for GPU-bound targets.",
      snippet = {
        python = [[config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(nbits=4, mode="kmeans",
                                        granularity="per_grouped_channel", group_size=16))
ane_variant = cto.palettize_weights(fp16_model, config)]],
      },
      tradeoff = "Another variant to validate for accuracy; palettization may differ in quality from int4.",
    },
    {
      id = "older-chip", pattern = "2c",
      title = "An older chip runs the model elsewhere",
      cause = "Older devices have an older (or no) Neural Engine and less memory: ops eligible on new chips fall back to the GPU/CPU, and large models may not fit.",
      steps = {
        "Profile on the slow device with the Xcode performance report and compare per-op devices with a fast device.",
        "Check the model's size against that device's memory.",
      },
      fix = "Ship a smaller variant (compressed, or a smaller architecture) for older devices, chosen at runtime.",
      snippet = {
        swift = [[let modelName = ProcessInfo.processInfo.physicalMemory < 4 << 30 ? "ModelSmall" : "Model"
let url = Bundle.main.url(forResource: modelName, withExtension: "mlmodelc")!]],
      },
      tradeoff = "Variants to maintain and test; the small one may be less accurate.",
      facts = function(m, ctx) return ctx:size_lines() end,
    },
    {
      id = "os-version", pattern = "2c",
      title = "The OS version changes how the model runs",
      cause = "Core ML's compilers and op support change between OS versions: the same model can be planned differently (or hit a regression).",
      steps = {
        "Profile on both OS versions with the same device model.",
        "Try re-converting with the newest coremltools and a newer minimum_deployment_target.",
        "Report regressions to Apple with the model and the performance reports.",
      },
      fix = "Re-convert with the newest coremltools; if one OS regresses, work around the op it runs differently (or choose compute units per OS).",
      snippet = {
        swift = [[let config = MLModelConfiguration()
if #available(iOS 18, *) { config.computeUnits = .all } else { config.computeUnits = .cpuAndGPU }]],
      },
      tradeoff = "Per-OS configuration is code to keep until the old OS is dropped.",
    },
  },
}
