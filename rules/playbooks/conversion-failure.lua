-- Playbook 5: "conversion fails" (5a: ct.convert raises) or "the converted model gives wrong
-- output" (5b). For 5b the converted file shows missing image preprocessing, training-only ops
-- left in, and whether it computes in fp16; how the conversion failed, and the layout the app
-- feeds, have to be asked. Without a model file (conversion failed) every question is asked.
-- With --original (a reference model taking the same inputs: the fp32 conversion, the source's
-- known-good export), the interpreter runs both (mlsh.compress_check): the model as it computes
-- (fp16 where declared) and upcast to fp32, each against the original in fp32. Output SNR decides
-- the precision question: right in fp32 but not as declared is fp16; wrong in both is not precision.
local MATCH_DB = 40

local function outputs_by_precision(ctx)
  if not ctx.original then return nil, nil end
  local ok, cc = pcall(require, "mlsh.compress_check")
  if not ok then return nil, "output SNR vs --original not measured: the interpreter is not available here (--safe)" end
  local as_is = cc.context_compare(ctx, { precision = "fp32", precision_model = "model" })
  if as_is.error then return nil, cc.evidence(as_is) end
  local fp32 = cc.context_compare(ctx, { precision = "fp32", precision_model = "fp32" })
  if fp32.error then return nil, cc.evidence(as_is, "(as declared)") end
  local ev = cc.evidence(as_is, "(as declared)") .. "; " .. cc.evidence(fp32, "(in fp32)")
  local ok_decl, ok_32 = cc.matches(as_is, MATCH_DB), cc.matches(fp32, MATCH_DB)
  if ok_32 and not ok_decl then return "fp16", ev end
  if not ok_32 then return "not-precision", ev end
  return nil, ev .. ": both match the original, so the difference is not in this file"
end

return {
  id = "conversion-failure",
  title = "Conversion fails or gives wrong output",
  symptom = "conversion fails (ct.convert raises), or the converted model's outputs differ from the source model",
  patterns = { "5a", "5b" },
  rules = "conversion or 5a or 5b",
  start = "failure-kind",
  nodes = {
    {
      id = "failure-kind",
      ask = "How does the conversion fail?",
      answers = {
        { id = "error", text = "ct.convert (or tracing/exporting) raises an error", next = "error-kind" },
        { id = "wrong-output", text = "it converts, but the outputs differ from the source model", next = "preprocessing" },
      },
    },
    -- 5a
    {
      id = "error-kind",
      ask = "What does the error say?",
      answers = {
        { id = "unsupported-op", text = "an op is not supported / \"convert function for op 'X' not implemented\"", next = "op-kind" },
        { id = "opset", text = "\"update the minimum_deployment_target ... only available in opset ...\"", next = "deployment-target" },
        { id = "tracing", text = "tracing or export fails (dynamic control flow, data-dependent shapes)", next = "tracing" },
        { id = "other", text = "something else", next = "other-error" },
      },
    },
    {
      id = "op-kind",
      ask = "What is the unsupported op?",
      why = "the op lives in the source model, which mlsh does not read",
      answers = {
        { id = "composite", text = "a combination of ops Core ML has (an activation, a norm, a reshaping op)", next = "composite-op" },
        { id = "newer", text = "a standard op that a newer coremltools may support", next = "newer-coremltools" },
        { id = "novel", text = "genuinely new compute with no MIL equivalent", next = "custom-op" },
      },
    },
    -- 5b
    {
      id = "preprocessing",
      ask = "Does an image input lack the scale/bias the network was trained with?",
      check = function(m, ctx)
        local f = ctx:finding("image-preprocessing")
        if f then return "yes", f.message end
        local images = 0
        for _, i in ipairs(m:inputs()) do
          if i.kind == "image" then images = images + 1 end
        end
        if images == 0 then return "no", "no image inputs" end
        return "no", string.format("%d image input(s), with scale/bias", images)
      end,
      answers = {
        { id = "yes", text = "yes", next = "preprocessing-missing" },
        { id = "no", text = "no", next = "eval-mode" },
      },
    },
    {
      id = "eval-mode",
      ask = "Are training-only ops (dropout, random sampling) left in the graph?",
      check = function(m, ctx)
        local f = ctx:finding("training-ops")
        if f then return "yes", f.message end
        return "no", "no dropout or random ops"
      end,
      answers = {
        { id = "yes", text = "yes", next = "train-mode-export" },
        { id = "no", text = "no", next = "precision" },
      },
    },
    {
      id = "precision",
      ask = "Are the outputs right with computeUnits = .cpuOnly and wrong on the GPU/Neural Engine?",
      why = "the CPU computes in fp32; the GPU and ANE in fp16, where values above 65504 overflow",
      check = function(m, ctx)
        local answer, ev = outputs_by_precision(ctx)
        if ev then return answer, ev end
        if ctx:is_program() then
          local c = ctx:compute_dtypes()
          if c.total > 0 and c.fp16 == 0 then
            return "not-precision", string.format("all %d compute ops are fp32 in the program: fp16 is not the cause", c.total)
          end
        end
        return nil, "the model computes in fp16 on the GPU/ANE; only running it shows whether that matters"
      end,
      answers = {
        { id = "fp16", text = "yes: right on the CPU, wrong on GPU/ANE", next = "fp16-precision" },
        { id = "not-precision", text = "no: wrong on every unit", next = "layout" },
      },
    },
    {
      id = "layout",
      ask = "Does the app feed inputs in the layout and order the model was traced with?",
      why = "NCHW vs NHWC, RGB vs BGR, the shape, and the value range must match what the trace saw",
      answers = {
        { id = "mismatch", text = "no, or not sure", next = "input-layout" },
        { id = "matches", text = "yes, checked", next = "bisect" },
      },
    },
    -- leaves -------------------------------------------------------------------------------------
    {
      id = "composite-op", pattern = "5a",
      title = "Unsupported op that existing ops can express",
      cause = "coremltools has no converter for the op, but it can be written with MIL ops Core ML has.",
      steps = {
        "Write the op as a composite with @register_torch_op using mb.* ops.",
        "Convert again and compare outputs with the source model.",
      },
      fix = "Register a composite op in the conversion script.",
      snippet = {
        python = [[from coremltools.converters.mil import register_torch_op
from coremltools.converters.mil.frontend.torch.ops import _get_inputs
from coremltools.converters.mil.mil import Builder as mb

@register_torch_op
def hardswish(context, node):
    x = _get_inputs(context, node, expected=1)[0]
    y = mb.mul(x=x, y=mb.relu6(x=mb.add(x=x, y=3.0)))
    context.add(mb.real_div(x=y, y=6.0, name=node.name))]],
      },
      tradeoff = "The composite is your code to maintain; it may run slower than a native op.",
    },
    {
      id = "newer-coremltools", pattern = "5a",
      title = "coremltools is older than the op",
      cause = "The op's converter exists in a newer coremltools (or the source framework version is newer than coremltools supports).",
      steps = {
        "Create a fresh environment with the newest coremltools and a PyTorch version it supports.",
        "Convert again.",
      },
      fix = "Upgrade coremltools (and match the torch version coremltools documents).",
      snippet = {
        python = [[# python -m venv fresh && . fresh/bin/activate && pip install -U coremltools torch==<supported>
import coremltools as ct, torch
print(ct.__version__, torch.__version__)]],
      },
      tradeoff = "A newer converter may change other conversions; re-run your accuracy tests.",
    },
    {
      id = "custom-op", pattern = "5a",
      title = "An op with no Core ML equivalent",
      cause = "The computation cannot be written with MIL ops: it needs a custom layer (NeuralNetwork) or to leave the model.",
      steps = {
        "Move the op out of the model (pre- or post-processing in the app) if it sits at the edge.",
        "Otherwise convert to a NeuralNetwork with a custom layer, or split the model around the op.",
      },
      fix = "Split the model around the op and run the op in app code (Accelerate/Metal), or implement it as a custom layer.",
      snippet = {
        python = [[# convert the two halves separately; the app runs the op in between
head = ct.convert(torch.jit.trace(model.head, x), inputs=[ct.TensorType(name="x", shape=x.shape)])
tail = ct.convert(torch.jit.trace(model.tail, h), inputs=[ct.TensorType(name="h", shape=h.shape)])]],
        swift = [[let h = try head.prediction(from: input)
let h2 = customOp(h.featureValue(for: "h_out")!.multiArrayValue!)   // Accelerate / Metal
let out = try tail.prediction(from: MLDictionaryFeatureProvider(dictionary: ["h": h2]))]],
      },
      tradeoff = "App code to maintain; the split costs transfers and keeps part off the Neural Engine.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(ctx:findings("op-not-in-opset")) do out[#out + 1] = f.message end
        return out
      end,
    },
    {
      id = "deployment-target", pattern = "5a",
      title = "The op needs a newer deployment target",
      cause = "coremltools picks op versions by minimum_deployment_target; the op exists only in a newer opset.",
      steps = {
        "Read the target the error names.",
        "Decide whether you can raise the app's minimum OS; otherwise rewrite the op with older ones.",
      },
      fix = "Convert with the minimum_deployment_target the error names.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=inputs, minimum_deployment_target=ct.target.iOS17)]],
      },
      tradeoff = "Older OSes cannot load the model.",
    },
    {
      id = "tracing", pattern = "5a",
      title = "The model cannot be traced as written",
      cause = "torch.jit.trace / torch.export needs static control flow and shapes; data-dependent branches or Python-side logic break it.",
      steps = {
        "Trace in eval mode with realistic example inputs.",
        "Move data-dependent logic (loops over lengths, early exits) out of forward, or use torch.export with dynamic shapes.",
      },
      fix = "Make forward traceable (static shapes and branches) or export with torch.export and convert the ExportedProgram.",
      snippet = {
        python = [[model.eval()
exported = torch.export.export(model, (example,))
mlmodel = ct.convert(exported, minimum_deployment_target=ct.target.iOS17)]],
      },
      tradeoff = "Restructuring forward may need care to stay equivalent.",
    },
    {
      id = "other-error", pattern = "5a",
      title = "Another conversion error",
      cause = "Version mismatches between coremltools, the source framework and Python cause many conversion errors.",
      steps = {
        "Reproduce in a fresh environment with versions coremltools supports.",
        "Reduce to the smallest module that fails and convert it alone.",
        "Search coremltools issues for the error message.",
      },
      fix = "Convert in a fresh, pinned environment; bisect the model to the failing module.",
      snippet = {
        python = [[for name, module in model.named_children():
    try: ct.convert(torch.jit.trace(module, sample_input_for(name)))
    except Exception as e: print(name, e)]],
      },
      tradeoff = "Time spent bisecting.",
    },
    {
      id = "preprocessing-missing", pattern = "5b",
      title = "Image preprocessing is not in the model",
      cause = "The network was trained on normalized pixels but the image input passes raw 0..255 values.",
      steps = {
        "Find the normalization the training pipeline used (e.g. /255, ImageNet mean/std).",
        "Re-convert with scale and bias on ct.ImageType.",
      },
      fix = "Bake the normalization into the model with ct.ImageType(scale=..., bias=...).",
      snippet = {
        python = [[# ImageNet: (x/255 - mean)/std  ->  scale = 1/(255*std), bias = -mean/std (one std: use 0.226)
image = ct.ImageType(name="image", shape=(1, 3, 224, 224), scale=1 / (255 * 0.226),
                     bias=[-0.485 / 0.226, -0.456 / 0.226, -0.406 / 0.226], color_layout=ct.colorlayout.RGB)
mlmodel = ct.convert(traced, inputs=[image])]],
      },
      tradeoff = "ImageType takes one scale for all channels; per-channel std needs an extra op in the model.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(ctx:findings("image-preprocessing")) do out[#out + 1] = f.message end
        return out
      end,
    },
    {
      id = "train-mode-export", pattern = "5b",
      title = "Exported in training mode",
      cause = "Dropout / random ops in the graph make outputs random: the model was traced without model.eval().",
      steps = {
        "Call model.eval() before tracing and convert again.",
        "Check that the new model has no random ops (mlsh check --select training-ops).",
      },
      fix = "Trace in eval mode.",
      snippet = {
        python = [[model.eval()
with torch.no_grad():
    traced = torch.jit.trace(model, example)
mlmodel = ct.convert(traced, inputs=inputs)]],
      },
      tradeoff = "None.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(ctx:findings("training-ops")) do out[#out + 1] = f.message end
        return out
      end,
    },
    {
      id = "fp16-precision", pattern = "5b",
      title = "fp16 precision on the GPU / Neural Engine",
      cause = "Some intermediate values overflow fp16 (> 65504) or lose precision (sums, exponentials, large activations).",
      steps = {
        "Convert once with compute_precision=FLOAT32 and compare: if right, precision is the cause.",
        "Find the ops with large values (compare intermediate outputs) and keep only those in fp32.",
      },
      fix = "Keep the overflowing ops in fp32 with an op_selector (or rescale them in the source model).",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=inputs, compute_precision=ct.transform.FP16ComputePrecision(
    op_selector=lambda op: op.op_type not in ("pow", "reduce_sum", "exp")))]],
      },
      tradeoff = "fp32 ops stay off the Neural Engine and split it.",
      facts = function(m, ctx)
        local c = ctx:compute_dtypes()
        if c.total == 0 then return {} end
        return { string.format("%d fp16 and %d fp32 compute ops", c.fp16, c.fp32) }
      end,
    },
    {
      id = "input-layout", pattern = "5b",
      title = "Inputs in a different layout or order",
      cause = "The app feeds data shaped or ordered differently from the trace: NHWC vs NCHW, BGR vs RGB, a different range or size.",
      steps = {
        "Print the model's input shapes and image color layouts (mlsh info MODEL).",
        "Feed the same sample to the source model and the Core ML model and compare.",
      },
      fix = "Make the model take what the app has (ct.ImageType with the right color_layout, a transpose in the model) or convert the data in the app.",
      snippet = {
        python = [[mlmodel = ct.convert(traced, inputs=[ct.ImageType(name="image", shape=(1, 3, 224, 224),
                                                     color_layout=ct.colorlayout.BGR)])]],
      },
      tradeoff = "A transpose in the model costs a little; in the app it costs code.",
      facts = function(m, ctx)
        local out = {}
        for _, f in ipairs(m:inputs()) do
          local dims = {}
          for i, d in ipairs(f.shape or {}) do dims[i] = tostring(d) end
          out[#out + 1] = string.format("input %s: %s%s", f.name, f.kind,
            f.kind == "image" and string.format(" %s %dx%d", f.color_space or "?", f.width or 0, f.height or 0)
              or (" [" .. table.concat(dims, ",") .. "]"))
        end
        return out
      end,
    },
    {
      id = "bisect", pattern = "5b",
      title = "Find the first diverging layer",
      cause = "Inputs, precision and mode are right: a converted op behaves differently (a converter bug or an op semantics difference).",
      steps = {
        "Convert with intermediate outputs exposed and compare layer by layer with the source model.",
        "Report the op with a minimal repro to coremltools.",
      },
      fix = "Locate the first diverging op and replace it with an equivalent formulation (or a composite op).",
      snippet = {
        python = [[# expose an intermediate tensor as an extra output and compare it with PyTorch's hook
mlmodel = ct.convert(traced, inputs=inputs, outputs=[ct.TensorType(name="out"), ct.TensorType(name="block3_out")])]],
      },
      tradeoff = "Manual work; the replacement op must be validated.",
    },
  },
}
