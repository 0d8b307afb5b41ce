-- Pressure scenario: "it works in the simulator but not on the device". The simulator runs Core
-- ML on the Mac's CPU (fp32, the Mac's memory, the SDK's OS); the device plans the model for its
-- GPU and Neural Engine, runs fp16 there, has an older OS maybe and a hard memory limit. The file
-- shows which of those differences can bite: spec vs the device OS (--target), load blockers the
-- device compiler meets, fp16 compute, the weight size against the device budget.
local pb = require "mlsh.engine.playbook"
local spec = require "mlsh.spec"

local DEFAULT_BUDGET = 2 * 1024 ^ 3

return {
  id = "works-in-simulator-not-device",
  title = "Works in the simulator, not on the device",
  symptom = "it works in the simulator but fails, misbehaves, crawls or is killed on a real device",
  patterns = { "1a", "1b", "2b", "3a", "3b", "5b" },
  rules = "load or deploy or memory or accuracy or ane",
  pressure = {
    wrong = "Treat the simulator as the reference: debug the model file against the simulator, or make the device "
      .. "behave like it by forcing computeUnits = .cpuOnly everywhere and shipping that.",
    right = "The simulator is a different machine: Core ML there runs on the Mac's CPU in fp32 with the Mac's memory "
      .. "and the SDK's OS. Reproduce on the device, isolate by compute units (.cpuOnly, then .cpuAndGPU, then .all), "
      .. "and check what differs on the device from the file: its OS vs the model's spec, what the device compiler "
      .. "gets, fp16, and memory.",
    checks = {
      "mlsh check MODEL --target iOS16            # the model's spec against the device's OS",
      "mlsh check MODEL --compute-units cpu_and_ne # what the Neural Engine compiler will get",
      "mlsh graph MODEL -o placement.svg           # predicted device per op",
      "mlsh diagnose MODEL --symptom high-memory --memory-budget 1.5G",
    },
  },
  start = "device-symptom",
  nodes = {
    {
      id = "device-symptom",
      ask = "What happens on the device?",
      answers = {
        { id = "load-fails", text = "the model fails to load", next = "device-os" },
        { id = "wrong-output", text = "it loads but the outputs are wrong", next = "device-precision" },
        { id = "slow", text = "it is much slower than expected", next = "device-slow" },
        { id = "killed", text = "the app is killed (memory) or crashes", next = "device-memory" },
      },
    },
    {
      id = "device-os",
      ask = "Is the device's OS older than the model's specificationVersion needs?",
      why = "the simulator runs the SDK's (newest) OS; devices in the field run older ones",
      check = function(m, ctx)
        local need = spec.target_name(m.spec_version) or ("spec " .. tostring(m.spec_version))
        if not ctx.target then return nil, "the model needs " .. need .. " or later; give --target with the device's OS" end
        local ev = string.format("model spec %d needs %s; device %s", m.spec_version, need, ctx.target_name)
        if m.spec_version > ctx.target then return "older", ev end
        return "new-enough", ev
      end,
      answers = {
        { id = "older", text = "yes, the device runs an older OS", next = "device-os-too-old" },
        { id = "new-enough", text = "no, its OS is new enough", next = "device-blockers" },
      },
    },
    {
      id = "device-blockers",
      ask = "Does the model contain something the device compiler rejects that the simulator's CPU path accepts?",
      check = function(m, ctx)
        for _, id in ipairs({ "layout-limits", "custom-layers", "op-not-in-opset" }) do
          for _, f in ipairs(ctx:findings(id)) do
            if f.severity ~= "info" then return "yes", f.message end
          end
        end
        return "no", "no layout limits, custom layers or ops outside the opset"
      end,
      answers = {
        { id = "yes", text = "yes", next = "device-load-blocker" },
        { id = "no", text = "no", next = "device-compute-plan" },
      },
    },
    {
      id = "device-precision",
      ask = "Does the model compute in fp16 on the device's GPU/Neural Engine?",
      why = "the simulator computes in fp32 on the CPU: fp16 overflow shows only on the device",
      check = function(m, ctx)
        if ctx:is_program() then
          local c = ctx:compute_dtypes()
          if c.total > 0 and c.fp16 == 0 then return "no", string.format("all %d compute ops are fp32", c.total) end
          return "yes", string.format("%d of %d compute ops are fp16", c.fp16, c.total)
        end
        if ctx:is_nn() then return "yes", "NeuralNetwork models run in fp16 on the GPU and the Neural Engine" end
        return "no", "a " .. tostring(m.model_type) .. " model runs on the CPU"
      end,
      answers = {
        { id = "yes", text = "yes, fp16", next = "device-fp16" },
        { id = "no", text = "no, fp32 everywhere", next = "device-inputs" },
      },
    },
    {
      id = "device-memory",
      ask = "Do the weights take a large share of the device's memory budget?",
      check = function(m, ctx)
        local b = ctx:weight_bytes()
        local limit = tonumber(ctx.options.memory_budget) or DEFAULT_BUDGET
        local ev = string.format("%s of weights, budget %s", pb.fmt_bytes(b), pb.fmt_bytes(limit))
        if b > limit / 2 then return "yes", ev end
        return "no", ev
      end,
      answers = {
        { id = "yes", text = "yes", next = "device-memory-weights" },
        { id = "no", text = "no", next = "device-memory-runtime" },
      },
    },
    -- leaves -------------------------------------------------------------------------------------
    {
      id = "device-os-too-old", pattern = "1a",
      title = "The device's OS is older than the model",
      cause = "The simulator runs the SDK's OS, which loads any spec; the device's older Core ML refuses the model's specificationVersion.",
      steps = {
        "mlsh check MODEL --target <device OS> lists what needs the newer spec.",
        "Re-convert for the device's OS, or raise the app's minimum OS.",
      },
      fix = "Convert with minimum_deployment_target = the oldest OS you support (and test on a device running it).",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=inputs, minimum_deployment_target=ct.target.iOS16)]],
      },
      tradeoff = "Older targets lose newer ops and compression schemes.",
    },
    {
      id = "device-load-blocker", pattern = "1b",
      title = "The device compiler rejects part of the model",
      cause = "On the device Core ML compiles for the GPU/Neural Engine; layouts beyond the limits, custom layers or ops the OS lacks fail there, not on the simulator's CPU path.",
      steps = {
        "mlsh check MODEL names the blocker.",
        "Confirm on the device: .cpuOnly loads, .all fails.",
      },
      fix = "Remove the blocker in the source model (reshape, built-in ops) and re-convert.",
      snippet = {
        swift = [[let config = MLModelConfiguration()
config.computeUnits = .cpuOnly   // loads? then the GPU/ANE compiler rejects something
_ = try MLModel(contentsOf: url, configuration: config)]],
      },
      tradeoff = "A reshaped or rewritten layer needs an equivalence test.",
      facts = function(m, ctx)
        local out = {}
        for _, id in ipairs({ "layout-limits", "custom-layers", "op-not-in-opset" }) do
          for _, f in ipairs(ctx:findings(id)) do out[#out + 1] = f.message end
        end
        return out
      end,
    },
    {
      id = "device-compute-plan", pattern = "1b",
      title = "Planning for the device's units fails",
      cause = "Nothing in the file is a known blocker, but the device's compilers (ANE especially) fail on this model.",
      steps = {
        "Load with .cpuOnly, .cpuAndGPU, .all on the device to find the unit that fails.",
        "Use MLComputePlan (iOS17.4+) and the predicted cut-makers to find the op.",
      },
      fix = "Ship with the compute units that work while you isolate the op; then rewrite it and re-convert with the newest coremltools.",
      snippet = {
        swift = [[for units in [MLComputeUnits.cpuOnly, .cpuAndGPU, .all] {
    let c = MLModelConfiguration(); c.computeUnits = units
    print(units.rawValue, (try? MLModel(contentsOf: url, configuration: c)) != nil)
}]],
      },
      tradeoff = "Restricted compute units are slower until the op is fixed.",
      facts = function(m, ctx)
        local p = ctx:placement()
        if not p then return {} end
        local out = { string.format("predicted ANE coverage %s of ops", pb.pct(p.ane_coverage.ops)) }
        for i, c in ipairs(p.cut_makers) do
          if i > 3 then break end
          out[#out + 1] = string.format("%s x%d: %s", c.type, c.count, c.reason)
        end
        return out
      end,
    },
    {
      id = "device-fp16", pattern = "5b",
      title = "fp16 on the device vs fp32 in the simulator",
      cause = "The simulator computes in fp32 on the CPU; the device's GPU and Neural Engine compute in fp16, where large intermediate values overflow.",
      steps = {
        "On the device, run with .cpuOnly: right outputs there confirm precision.",
        "Convert with FLOAT32 precision once to compare, then keep only the overflowing ops in fp32.",
      },
      fix = "Keep precision-sensitive ops in fp32 with an op_selector (or rescale them in the source model); test on the device, not the simulator.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=inputs, compute_precision=ct.transform.FP16ComputePrecision(
    op_selector=lambda op: op.op_type not in ("exp", "reduce_sum")))]],
        swift = [[config.computeUnits = .cpuOnly   // diagnosis only: the fp32 reference on the device]],
      },
      tradeoff = "fp32 ops run off the Neural Engine.",
    },
    {
      id = "device-inputs", pattern = "5b",
      title = "The device feeds different inputs",
      cause = "The model computes in fp32, so precision is not it: on the device the inputs differ (camera buffers in BGRA/YUV, orientation, size) from the files the simulator used.",
      steps = {
        "Log the exact input buffer (format, size, orientation) on the device and feed it to the simulator build.",
        "Use Vision (VNCoreMLRequest) or explicit conversion to the model's expected format.",
      },
      fix = "Convert camera buffers to the model's pixel format and orientation (VNCoreMLRequest does this), and test with device-captured inputs.",
      snippet = {
        swift = [[let request = VNCoreMLRequest(model: try VNCoreMLModel(for: model))
request.imageCropAndScaleOption = .centerCrop
try VNImageRequestHandler(cvPixelBuffer: buffer, orientation: .right).perform([request])]],
      },
      tradeoff = "Vision adds its own scaling; match it to training preprocessing.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(m:inputs()) do
          out[#out + 1] = string.format("input %s: %s%s", f.name, f.kind,
            f.kind == "image" and string.format(" %s %dx%d", f.color_space or "?", f.width or 0, f.height or 0) or "")
        end
        return out
      end,
    },
    {
      id = "device-slow", pattern = "2b",
      title = "Simulator speed means nothing for the device",
      cause = "The simulator runs on the Mac's CPU; device speed depends on which ops reach the Neural Engine. Measure on the device only.",
      steps = {
        "Profile on the device (Xcode performance report).",
        "Compare with mlsh's predicted placement; fix the top cut-maker.",
        "Run mlsh diagnose MODEL --symptom slow-inference for the full tree.",
      },
      fix = "Fix what keeps ops off the Neural Engine (fp32 compute, cut-makers, range shapes), measured on the device.",
      snippet = {
        swift = [[let config = MLModelConfiguration()
config.computeUnits = .all
let model = try MLModel(contentsOf: compiledURL, configuration: config)   // time after a warm-up call]],
      },
      tradeoff = "Device profiling takes time and hardware.",
      facts = function(m, ctx)
        local p = ctx:placement()
        if not p then return {} end
        local out = { string.format("predicted ANE coverage %s of ops, %s of work, %d switch(es)", pb.pct(p.ane_coverage.ops),
          pb.pct(p.ane_coverage.work), #p.transitions) }
        local f = ctx:finding("fp32-compute")
        if f then out[#out + 1] = f.message end
        return out
      end,
    },
    {
      id = "device-memory-weights", pattern = "3b",
      title = "The device cannot hold the weights",
      cause = "The simulator has the Mac's memory; the device kills apps above its per-app limit, and the weights alone come close.",
      steps = {
        "Read the size table; pick a compression that fits half the budget.",
        "Measure peak memory on the smallest supported device.",
      },
      fix = "Compress the weights (6/4-bit palettization, int8) and measure accuracy.",
      snippet = {
        python = [[small = cto.palettize_weights(mlmodel, cto.OptimizationConfig(
    global_config=cto.OpPalettizerConfig(nbits=6, mode="kmeans")))]],
      },
      tradeoff = "Compression costs some accuracy.",
      facts = function(m, ctx) return ctx:size_lines() end,
    },
    {
      id = "device-memory-runtime", pattern = "3a",
      title = "Runtime memory, not weights",
      cause = "The weights fit, so the device's limit is hit by how predictions run: concurrency, per-request models, buffers kept alive.",
      steps = {
        "Profile the device (Instruments, Allocations) during predictions.",
        "Run mlsh diagnose MODEL --symptom high-memory.",
      },
      fix = "Bound concurrent predictions, reuse one MLModel, wrap loops in autoreleasepool.",
      snippet = {
        swift = [[for frame in frames { autoreleasepool { _ = try? model.prediction(from: frame) } }]],
      },
      tradeoff = "Bounded concurrency can lower throughput.",
      facts = function(m, ctx) return { pb.fmt_bytes(ctx:weight_bytes()) .. " of weights" } end,
    },
  },
}
