-- Playbook 3: "memory grows" / "killed at load". The file shows the weight size and what each
-- compression scheme would bring it to (3b), and whether the model keeps state; how the app runs
-- predictions (concurrency, instances, autorelease) has to be asked (3a).
local pb = require "mlsh.engine.playbook"

-- Half of a typical 4 GB iPhone's per-app limit: above this, weights alone risk the jetsam kill.
local DEFAULT_BUDGET = 2 * 1024 ^ 3

local function budget(ctx) return tonumber(ctx.options.memory_budget) or DEFAULT_BUDGET end

return {
  id = "high-memory",
  title = "Memory is too high",
  symptom = "memory grows while predicting, or the app is killed (out of memory) loading the model",
  patterns = { "3a", "3b" },
  rules = "memory or 3a or 3b",
  start = "when",
  nodes = {
    {
      id = "when",
      ask = "When is memory the problem?",
      check = function(m, ctx)
        local f = ctx:finding("weights-memory")
        if f and f.severity == "error" then return "load", f.message end
        return nil, pb.fmt_bytes(ctx:weight_bytes()) .. " of weights: within the memory budget, so the file cannot tell"
      end,
      answers = {
        { id = "load", text = "at load: the app is killed or memory peaks when the model loads", next = "weights-size" },
        { id = "over-time", text = "over time: memory grows as predictions run", next = "concurrency" },
      },
    },
    {
      id = "weights-size",
      ask = "Are the weights a large share of the memory the app may use?",
      check = function(m, ctx)
        local b, limit = ctx:weight_bytes(), budget(ctx)
        local ev = string.format("%s of weights, budget %s", pb.fmt_bytes(b), pb.fmt_bytes(limit))
        if b > limit / 2 then return "yes", ev end
        return "no", ev
      end,
      answers = {
        { id = "yes", text = "yes, more than half of the budget", next = "compress-weights" },
        { id = "no", text = "no, the weights are small", next = "several-models" },
      },
    },
    {
      id = "several-models",
      ask = "Does the app load several models (or several copies of this one) at the same time?",
      answers = {
        { id = "yes", text = "yes", next = "too-many-models" },
        { id = "no", text = "no, one model", next = "activations" },
      },
    },
    {
      id = "concurrency",
      ask = "Do predictions run concurrently (several threads, tasks or queues at once)?",
      answers = {
        { id = "yes", text = "yes", next = "concurrent-predictions" },
        { id = "no", text = "no, one at a time", next = "instances" },
      },
    },
    {
      id = "instances",
      ask = "Does the app create an MLModel (or an MLState) per request, or keep outputs alive across predictions?",
      check = function(m, ctx)
        if #m:states() > 0 then
          return "state", string.format("the model declares %d state(s): each MLState holds its buffers", #m:states())
        end
        return nil, "how the app holds models and outputs is not in the file"
      end,
      answers = {
        { id = "per-request", text = "a new MLModel per request", next = "model-per-request" },
        { id = "state", text = "a new MLState per request / states never released", next = "state-per-request" },
        { id = "outputs", text = "no; but predictions run in a loop and outputs pile up", next = "autorelease" },
      },
    },
    -- leaves -------------------------------------------------------------------------------------
    {
      id = "compress-weights", pattern = "3b",
      title = "The weights do not fit comfortably in memory",
      cause = "Loading maps the weights and (for the GPU/ANE) prepares device copies: a model whose weights take most of the app's memory limit is killed at load on smaller devices.",
      steps = {
        "Read the size table below: the size of the weights under each compression scheme.",
        "Pick the mildest scheme that fits half the budget; compress and measure accuracy.",
        "Measure peak memory at load on the smallest supported device (Instruments, Allocations + VM Tracker).",
      },
      fix = "Compress the weights: 8-bit first, then 6/4-bit palettization or pruning, measuring accuracy at each step.",
      snippet = {
        python = [[import coremltools.optimize.coreml as cto
config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(nbits=6, mode="kmeans"))
compressed = cto.palettize_weights(mlmodel, config)          # iOS16+
compressed.save("Model_6bit.mlpackage")]],
        swift = [[let config = MLModelConfiguration()
config.computeUnits = .cpuAndNeuralEngine   // avoids a GPU copy of the weights on memory-tight devices
let model = try MLModel(contentsOf: compiledURL, configuration: config)]],
      },
      tradeoff = "Fewer bits lose accuracy (4-bit per-tensor palettization often needs per-grouped-channel LUTs or fine-tuning); iOS18 schemes need iOS18.",
      facts = function(m, ctx)
        local out = { string.format("weights %s; budget %s (--memory-budget)", pb.fmt_bytes(ctx:weight_bytes()),
          pb.fmt_bytes(budget(ctx))) }
        for _, l in ipairs(ctx:size_lines()) do out[#out + 1] = l end
        return out
      end,
    },
    {
      id = "too-many-models", pattern = "3b",
      title = "Several models resident at once",
      cause = "Each loaded MLModel holds its weights and device copies; several models (or copies of one) add up even when each is small.",
      steps = {
        "List the MLModel instances alive at the peak (Instruments, Allocations).",
        "Load models when needed and release them (set to nil) when done; share one instance between features.",
      },
      fix = "Keep one instance per model, load lazily and release unused models; consider a multi-function model (iOS18) to share weights between variants.",
      snippet = {
        python = [[desc = ct.utils.MultiFunctionDescriptor()
desc.add_function("a.mlpackage", src_function_name="main", target_function_name="task_a")
desc.add_function("b.mlpackage", src_function_name="main", target_function_name="task_b")
ct.utils.save_multifunction(desc, "shared.mlpackage")   # shared weights stored once (iOS18)]],
        swift = [[let config = MLModelConfiguration()
config.functionName = "task_a"      // iOS18: one package, one set of weights
let model = try MLModel(contentsOf: sharedURL, configuration: config)]],
      },
      tradeoff = "Lazy loading moves load time to first use; multi-function models need iOS18.",
      facts = function(m, ctx) return { pb.fmt_bytes(ctx:weight_bytes()) .. " of weights for this model" } end,
    },
    {
      id = "activations", pattern = "3b",
      title = "Intermediate tensors, not weights",
      cause = "The weights are small, so the peak is in intermediate tensors: large inputs (high resolution, long sequences, big batches) multiply activation memory.",
      steps = {
        "Profile peak memory during a prediction with the largest input you use.",
        "Check input shapes (mlsh info MODEL) for large or unbounded dimensions.",
      },
      fix = "Reduce the input size (resolution, sequence length, batch), tile large inputs, or use enumerated shapes so the largest case is bounded.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="x",
                     shape=ct.EnumeratedShapes(shapes=[(1, 3, 512, 512), (1, 3, 1024, 1024)]))])]],
      },
      tradeoff = "Smaller inputs lose detail; tiling adds app code and seams.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(m:inputs()) do
          local dims = {}
          for i, d in ipairs(f.shape or {}) do dims[i] = tostring(d) end
          out[#out + 1] = string.format("input %s: [%s]%s", f.name, table.concat(dims, ","),
            f.flexibility and (" (" .. f.flexibility.kind .. " shapes)") or "")
        end
        return out
      end,
    },
    {
      id = "concurrent-predictions", pattern = "3a",
      title = "Concurrent predictions each allocate their buffers",
      cause = "Every in-flight prediction holds its own input, intermediate and output buffers; unbounded concurrency (a task per frame or request) multiplies memory.",
      steps = {
        "Count predictions in flight at the peak (signposts around the call).",
        "Bound concurrency and watch the peak fall.",
      },
      fix = "Limit in-flight predictions (a semaphore or a serial actor; drop frames rather than queue them) and reuse output backings.",
      snippet = {
        swift = [[actor Predictor {
    let model: MLModel
    init(model: MLModel) { self.model = model }
    func run(_ input: MLFeatureProvider) async throws -> MLFeatureProvider {
        try await model.prediction(from: input)     // one at a time per actor
    }
}]],
      },
      tradeoff = "Less concurrency can lower throughput on multi-core devices; measure the best bound.",
    },
    {
      id = "model-per-request", pattern = "3a",
      title = "A new MLModel per request",
      cause = "Creating an MLModel per request loads the weights again each time; instances pending release pile up faster than they are freed.",
      steps = {
        "Search the code for MLModel(contentsOf:) / the generated class init inside request handlers.",
      },
      fix = "Create the model once and share it (MLModel is thread-safe for predictions).",
      snippet = {
        swift = [[final class Models {
    static let shared = try! MyModel(configuration: MLModelConfiguration())   // once
}
let out = try Models.shared.prediction(input: input)]],
      },
      tradeoff = "The shared instance stays in memory for the app's lifetime.",
    },
    {
      id = "state-per-request", pattern = "3a",
      title = "MLState buffers pile up",
      cause = "A stateful model (iOS18) keeps its state (e.g. a KV cache) in each MLState; creating one per request and keeping them alive grows memory.",
      steps = {
        "Check where the app calls model.makeState() and how long the states live.",
      },
      fix = "Create one state per conversation/stream, reuse it, and drop it when the stream ends.",
      snippet = {
        swift = [[let state = model.makeState()              // per stream, not per token
for token in tokens {
    let out = try await model.prediction(from: input(token), using: state)
}]],
      },
      tradeoff = "Reused state must be reset between unrelated streams.",
      facts = function(m, ctx)
        local out = {}
        for _, s in ipairs(m:states()) do
          local dims = {}
          for i, d in ipairs(s.shape or {}) do dims[i] = tostring(d) end
          out[#out + 1] = string.format("state %s: %s[%s]", s.name, s.dtype or "?", table.concat(dims, ","))
        end
        return out
      end,
    },
    {
      id = "autorelease", pattern = "3a",
      title = "Outputs released only when the loop ends",
      cause = "Predictions in a tight loop return autoreleased MLMultiArrays / pixel buffers; without an autorelease pool per iteration they are freed only when the loop ends.",
      steps = {
        "Watch memory during a long prediction loop (Instruments, Allocations): it should be flat.",
      },
      fix = "Wrap each iteration in autoreleasepool and copy out only what you keep.",
      snippet = {
        swift = [[for frame in frames {
    autoreleasepool {
        let out = try? model.prediction(from: frame)
        results.append(summary(of: out))       // keep the summary, not the buffers
    }
}]],
      },
      tradeoff = "None measurable.",
    },
  },
}
