-- Playbook 1: "it won't load". From the file itself mlsh can tell whether it is readable and
-- complete (1c), whether it contains something that fails when Core ML builds it on any OS (ops
-- outside the opset, custom layers, shapes beyond the limits: 1b/1c), and, given --target, whether
-- its specificationVersion is above the OS it fails on (1a). Only the error text has to be asked.
local pb = require "mlsh.engine.playbook"
local spec = require "mlsh.spec"

local function os_name(n) return spec.target_name(n) or ("spec " .. tostring(n)) end

return {
  id = "load-failure",
  title = "The model won't load",
  symptom = "it won't load: MLModel(contentsOf:) or compileModel(at:) throws, or the app dies loading it",
  patterns = { "1a", "1b", "1c" },
  rules = "load or deploy or 1a or 1b or 1c",
  start = "readable",
  nodes = {
    {
      id = "readable",
      ask = "Does the file read at all, with its weight file complete?",
      why = "a truncated download, a corrupt zip or a package without its weights fails before Core ML looks at the model",
      model_optional = true,
      check = function(m, ctx)
        if ctx.load_error then return "unreadable", ctx.load_error end
        if not m then return nil end
        local ok, info = pcall(m.info, m)
        if not ok then return "incomplete", (tostring(info):gsub("\n.*", "")) end
        local w = info.weights or {}
        if w.missing_files then
          return "incomplete", "weight file(s) missing: " .. table.concat(w.missing_files, ", ")
        end
        return "yes", string.format("%s, spec %d, %d weight(s), %s", m.format, m.spec_version or 0, w.count or 0,
          pb.fmt_bytes(w.bytes))
      end,
      answers = {
        { id = "yes", text = "yes, the file reads and is complete", next = "load-blockers" },
        { id = "unreadable", text = "no: it is not a readable Core ML model (truncated, corrupt, wrong file)", next = "corrupt-file" },
        { id = "incomplete", text = "it reads, but its weight file is missing or shorter than the model says", next = "incomplete-package" },
      },
    },
    {
      id = "load-blockers",
      ask = "Does the model contain something that fails when Core ML builds it (an op its opset lacks, a custom layer, a tensor beyond the limits)?",
      check = function(m, ctx)
        for _, f in ipairs(ctx:findings("op-not-in-opset")) do
          if f.severity == "error" then return "op-not-in-opset", f.message end
        end
        local c = ctx:finding("custom-layers")
        if c then return "custom-layer", c.message end
        local l = ctx:finding("layout-limits")
        if l then return "layout", l.message end
        return "none", "no op outside its opset, no custom layer, ranks and dimensions within Core ML's limits"
      end,
      answers = {
        { id = "op-not-in-opset", text = "an op that does not exist in the function's opset", next = "op-not-in-opset" },
        { id = "custom-layer", text = "a custom layer the app has to implement", next = "custom-layer" },
        { id = "layout", text = "a tensor of rank > 5 or a dimension > 16384", next = "layout-limits" },
        { id = "none", text = "none of these", next = "spec-vs-os" },
      },
    },
    {
      id = "spec-vs-os",
      ask = "Is the model's specificationVersion newer than the OS it fails on?",
      why = "each OS runs models up to one spec version (iOS16: 7, iOS17: 8, iOS18: 9); a newer model is refused",
      check = function(m, ctx)
        local declared = m.spec_version
        if not ctx.target then
          return nil, string.format("the model is spec %d (%s or later); give --target with the OS it fails on",
            declared or 0, os_name(declared))
        end
        local ev = string.format("model spec %d (%s), target %s runs up to spec %d", declared or 0, os_name(declared),
          ctx.target_name or "?", ctx.target)
        if declared and declared > ctx.target then return "yes", ev end
        return "no", ev
      end,
      answers = {
        { id = "yes", text = "yes, the device runs an older OS than the model needs", next = "unsupported-version" },
        { id = "no", text = "no, the OS is new enough", next = "error-message" },
      },
    },
    {
      id = "error-message",
      ask = "What does the load error say?",
      why = "the message names the stage that failed: reading, compiling or planning the model",
      answers = {
        { id = "compute-plan", text = "a compute plan / execution plan / ANE compiler error (E5RT, \"Failed to build the model execution plan\")", next = "compute-plan" },
        { id = "not-compiled", text = "\"not a valid .mlmodelc\" / \"compile the model\": the app loads a .mlmodel/.mlpackage URL", next = "source-not-compiled" },
        { id = "disk", text = "file not found, permission denied, or no space left on the device", next = "disk" },
        { id = "other", text = "something else, or no message", next = "other-load-error" },
      },
    },
    -- leaves -------------------------------------------------------------------------------------
    {
      id = "unsupported-version", pattern = "1a",
      title = "Model spec newer than the device's OS",
      cause = "The model was converted with a minimum_deployment_target above the OS it runs on; Core ML on that OS refuses its specificationVersion.",
      steps = {
        "Compare the model's spec version (mlsh info MODEL) with the OS of the failing devices.",
        "Run mlsh check MODEL --target <that OS>: deployment-target lists what needs the newer spec.",
        "If nothing needs it (spec-lowerable), re-convert with the lower minimum_deployment_target.",
      },
      fix = "Re-convert with minimum_deployment_target set to the oldest OS you ship to, or raise the app's deployment target; ship a second model for older OSes if you need both.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=x.shape)],
                     minimum_deployment_target=ct.target.iOS16)   # the oldest OS you support
mlmodel.save("Model.mlpackage")]],
        swift = [[if #available(iOS 17, *) {
    model = try MLModel(contentsOf: iOS17ModelURL, configuration: config)
} else {
    model = try MLModel(contentsOf: iOS16ModelURL, configuration: config)   // converted for iOS16
}]],
      },
      tradeoff = "A lower target loses newer ops and compression schemes (iOS17 ops, iOS18 int4/per-block/grouped palettization); two models double the download.",
      facts = function(m, ctx)
        local out = {}
        local r = ctx:required_spec()
        if r then
          out[#out + 1] = string.format("declared spec %d (%s); the content needs spec %d (%s)", r.declared or 0,
            os_name(r.declared), r.version, os_name(r.version))
          for i, x in ipairs(r.reasons) do
            if i > 3 then break end
            out[#out + 1] = string.format("needs spec %d: %s", x.spec, x.what)
          end
        end
        return out
      end,
    },
    {
      id = "corrupt-file", pattern = "1c",
      title = "The file is not a readable Core ML model",
      cause = "The file is truncated, corrupt or not a model (an interrupted download, a git LFS pointer, a zip that lost entries, the wrong file).",
      steps = {
        "Run mlsh info MODEL: the error names what is wrong (protobuf parse error, missing Manifest.json, bad zip).",
        "Compare the size and checksum with the file the converter wrote.",
        "If it is a git LFS pointer (a few hundred bytes of text), run git lfs pull.",
      },
      fix = "Re-download or re-export the model and verify it (checksum, mlsh info) before shipping; download into a temporary file and move it into place only when complete.",
      snippet = {
        python = [[import hashlib
print(hashlib.sha256(open("Model.mlpackage/Data/com.apple.CoreML/model.mlmodel", "rb").read()).hexdigest())
ct.models.MLModel("Model.mlpackage")   # loads (and validates) on macOS]],
        swift = [[let (tmp, _) = try await URLSession.shared.download(from: remoteURL)
guard sha256(of: tmp) == expectedDigest else { throw ModelError.corrupt }
let compiled = try await MLModel.compileModel(at: tmp)]],
      },
      tradeoff = "Verifying costs a hash over the file on download; it saves shipping a model that can never load.",
      facts = function(m, ctx) return ctx.load_error and { ctx.load_error } or {} end,
    },
    {
      id = "incomplete-package", pattern = "1c",
      title = "The package is missing (part of) its weight file",
      cause = "The model description references weights in weights/weight.bin that are absent or shorter than declared: the package was copied partially (e.g. the Data folder lost, an LFS file not pulled).",
      steps = {
        "Run mlsh info MODEL: weights.missing_files names the absent file; a short file gives the offset past its end.",
        "Check the copy/upload step that produced the package (zip, rsync, asset catalog, LFS).",
      },
      fix = "Ship the whole .mlpackage folder (or zip it with mlsh save / ditto) and check that weights/weight.bin has the size the converter wrote.",
      snippet = {
        python = [[import os
print(os.path.getsize("Model.mlpackage/Data/com.apple.CoreML/weights/weight.bin"))
mlmodel.save("Model.mlpackage")   # re-save from the converted model if the copy is lost]],
        swift = [[let weights = packageURL.appending(path: "Data/com.apple.CoreML/weights/weight.bin")
let size = try FileManager.default.attributesOfItem(atPath: weights.path)[.size] as? Int
assert(size == expectedWeightBytes, "incomplete model package")]],
      },
      tradeoff = "None: an incomplete package never loads.",
      facts = function(m, ctx)
        if not m then return {} end
        local ok, info = pcall(m.info, m)
        if not ok then return { (tostring(info):gsub("\n.*", "")) } end
        local out = {}
        for _, f in ipairs(info.weights.missing_files or {}) do out[#out + 1] = "missing: " .. f end
        return out
      end,
    },
    {
      id = "op-not-in-opset", pattern = "1c",
      title = "An op the function's opset does not have",
      cause = "The program uses an op introduced after its function's opset (the file was edited, merged or written by a tool that ignored the deployment target); Core ML cannot build it.",
      steps = {
        "Run mlsh check MODEL --select op-not-in-opset: it names the op, where it was introduced and the opset.",
        "Re-convert with a minimum_deployment_target whose opset has the op, or decompose the op in the source model.",
      },
      fix = "Re-convert with minimum_deployment_target matching the newest op (coremltools then writes the right opset), or rewrite the op with older ops.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=inputs, convert_to="mlprogram",
                     minimum_deployment_target=ct.target.iOS17)   # opset CoreML7 has resize, quantize ...]],
      },
      tradeoff = "A newer target drops older OSes; decomposing the op by hand can cost speed.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(ctx:findings("op-not-in-opset")) do out[#out + 1] = f.message end
        return out
      end,
    },
    {
      id = "custom-layer", pattern = "1c",
      title = "A custom layer without its implementation",
      cause = "NeuralNetwork custom layers load only when the app provides an MLCustomLayer class of that name; without it the load fails (and custom layers never run on the Neural Engine).",
      steps = {
        "Run mlsh check MODEL --select custom-layers to list the class names.",
        "Check the app target contains a class with exactly that name, exposed to Objective-C.",
      },
      fix = "Implement MLCustomLayer for each class name, or better, express the layer with built-in ops (composite op at conversion) so no app code is needed.",
      snippet = {
        swift = [=[@objc(MLSHSwish) class MLSHSwish: NSObject, MLCustomLayer {
    required init(parameters: [String: Any]) throws { super.init() }
    func setWeightData(_ weights: [Data]) throws {}
    func outputShapes(forInputShapes s: [[NSNumber]]) throws -> [[NSNumber]] { s }
    func evaluate(inputs: [MLMultiArray], outputs: [MLMultiArray]) throws { /* x * sigmoid(x) */ }
}]=],
        python = [=[from coremltools.converters.mil import register_torch_op
from coremltools.converters.mil.mil import Builder as mb
@register_torch_op(override=True)
def swish(context, node):
    x = context[node.inputs[0]]
    context.add(mb.mul(x=x, y=mb.sigmoid(x=x), name=node.name))]=],
      },
      tradeoff = "A custom layer runs on the CPU (or your Metal code) and splits the Neural Engine run; a composite op needs a re-conversion.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(ctx:findings("custom-layers")) do out[#out + 1] = f.message end
        return out
      end,
    },
    {
      id = "layout-limits", pattern = "1b",
      title = "A tensor beyond Core ML's layout limits",
      cause = "Tensors of rank > 5 or an input dimension > 16384 fail when Core ML plans the model for a device (the compute plan cannot be built).",
      steps = {
        "Run mlsh check MODEL --select layout-limits: it names the input or op and its shape.",
        "Load with computeUnits = .cpuOnly to confirm the failure is in device planning.",
      },
      fix = "Reshape to rank <= 5 (<= 4 for the Neural Engine) and split long axes below 16384 in the source model before converting.",
      snippet = {
        python = [[# in the PyTorch model: fold the extra axes before the op, unfold after
x = x.reshape(b, c * g, h, w)          # rank 4 instead of (b, c, g, h, w)
y = self.conv(x).reshape(b, c, g, h, w)]],
      },
      tradeoff = "Reshapes add layout ops; splitting a long sequence changes how the model is called.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(ctx:findings("layout-limits")) do out[#out + 1] = f.message end
        return out
      end,
    },
    {
      id = "compute-plan", pattern = "1b",
      title = "Core ML cannot build the compute plan on this device",
      cause = "The model reads fine but planning it for the device's compute units fails: an op or shape the device compiler (often the ANE compiler) rejects, an OS bug, or too little memory while compiling.",
      steps = {
        "Load with computeUnits = .cpuOnly: if that works, the failure is in GPU/ANE planning.",
        "Try .cpuAndGPU: if that works, the Neural Engine compiler rejects part of the model.",
        "On iOS17+, MLComputePlan lists the device per op; look at the ops mlsh graph MODEL marks as cut-makers.",
        "Try the newest OS and the newest coremltools: compiler bugs are fixed there.",
      },
      fix = "Ship with the compute units that load (e.g. .cpuAndGPU) while you isolate the op, then rewrite or move that op (mlsh check lists the cut-makers) and re-convert with the newest coremltools.",
      snippet = {
        swift = [[let config = MLModelConfiguration()
config.computeUnits = .cpuAndGPU            // isolate: .cpuOnly -> .cpuAndGPU -> .all
let model = try MLModel(contentsOf: compiledURL, configuration: config)
if #available(iOS 17.4, *) {
    let plan = try await MLComputePlan.load(contentsOf: compiledURL, configuration: config)
}]],
      },
      tradeoff = "Without the Neural Engine the model runs slower and uses more power until the op is fixed.",
      facts = function(m, ctx)
        local p = ctx:placement()
        if not p then return {} end
        local out = { string.format("predicted ANE coverage %s of ops, %s of work", pb.pct(p.ane_coverage.ops),
          pb.pct(p.ane_coverage.work)) }
        for i, c in ipairs(p.cut_makers) do
          if i > 3 then break end
          out[#out + 1] = string.format("off the ANE: %s x%d (%s)", c.type, c.count, c.reason)
        end
        return out
      end,
    },
    {
      id = "source-not-compiled", pattern = "1c",
      title = "The app loads a source model instead of a compiled one",
      cause = "MLModel(contentsOf:) takes a compiled .mlmodelc; Xcode compiles bundled models at build time, but a model downloaded or copied at runtime must be compiled on the device first.",
      steps = {
        "Check the URL passed to MLModel(contentsOf:): it must end in .mlmodelc.",
        "For models delivered at runtime, call MLModel.compileModel(at:) and keep the compiled folder.",
      },
      fix = "Compile once with MLModel.compileModel(at:), move the .mlmodelc into Application Support and load that on later launches.",
      snippet = {
        swift = [[let tmp = try await MLModel.compileModel(at: downloadedPackageURL)
let dest = appSupport.appending(path: "Model.mlmodelc")
_ = try? FileManager.default.removeItem(at: dest)
try FileManager.default.moveItem(at: tmp, to: dest)     // compiled once, reused on every launch
let model = try MLModel(contentsOf: dest, configuration: config)]],
      },
      tradeoff = "Compiling on the device takes time on first use (seconds for large models) and disk for the .mlmodelc.",
      facts = function(m, ctx)
        if not m then return {} end
        if m.format == "mlmodelc" then return { "this file is already compiled (.mlmodelc): load it directly" } end
        return { string.format("this file is a source model (%s): it must be compiled before MLModel(contentsOf:)", m.format) }
      end,
    },
    {
      id = "disk", pattern = "1c",
      title = "File system: missing file, permissions or no space",
      cause = "The compiled model is not where the app looks (not in the bundle target, purged from caches), is not readable, or compiling it needs disk space the device does not have.",
      steps = {
        "Check the model is in the app target's Copy Bundle Resources (Xcode compiles it into the bundle).",
        "Models compiled at runtime must live outside Caches/tmp, which the OS purges.",
        "Check free space: compiling writes a .mlmodelc about the size of the weights.",
      },
      fix = "Keep compiled models in Application Support (excluded from backup), check free space before compiling, and recompile when the file is gone.",
      snippet = {
        swift = [[var dest = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
    .appending(path: "Model.mlmodelc")
var values = URLResourceValues(); values.isExcludedFromBackup = true
try dest.setResourceValues(values)
if !FileManager.default.fileExists(atPath: dest.path) { /* compile again from the source model */ }]],
      },
      tradeoff = "A persistent compiled copy uses disk; recompiling on demand costs time at load.",
      facts = function(m, ctx)
        local out = {}
        if m then
          local ok, info = pcall(m.info, m)
          if ok then out[#out + 1] = "weights: " .. pb.fmt_bytes(info.weights.bytes) .. " (about the disk a compile needs)" end
        end
        return out
      end,
    },
    {
      id = "other-load-error", pattern = "1c",
      title = "Another load error",
      cause = "The file reads, targets this OS and has no known blocker: the cause is in the environment (an OS bug, the converter version, encryption, memory at load).",
      steps = {
        "Load it on a Mac with coremltools (ct.models.MLModel) and with Xcode's model preview.",
        "Re-convert with the newest coremltools in a fresh environment.",
        "If the model is encrypted, check the app has the key (MLModel.load(contentsOf:configuration:) with the model's key).",
        "Check memory at load (mlsh diagnose MODEL --symptom high-memory).",
      },
      fix = "Reproduce in the smallest setting (Mac, CPU only, newest coremltools) and bisect: model file, compute units, OS version.",
      snippet = {
        python = [[import coremltools as ct
m = ct.models.MLModel("Model.mlpackage", compute_units=ct.ComputeUnit.CPU_ONLY)
print(m.predict({"x": x}))]],
        swift = [[do { _ = try MLModel(contentsOf: url, configuration: config) }
catch { print((error as NSError).userInfo) }   // the underlying error names the stage]],
      },
      tradeoff = "Time: bisecting is manual until the failing stage is known.",
    },
  },
}
