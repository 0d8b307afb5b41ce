-- Playbook 4: "accuracy dropped after compression". The compressed model shows which scheme was
-- applied and how (constexpr ops: LUT size and granularity, quantized dtype and scale shape, sparsity
-- from the mask), and with --original PATH mlsh decompresses each weight and measures its SNR
-- against the uncompressed one, which tells whether the error sits in a few layers or everywhere.
-- Only how calibration was done (W8A8) has to be asked. With --original the interpreter also runs
-- both models on the same inputs (mlsh.compress_check): the output SNR is shown as evidence next to
-- the weight SNR, and outputs that still match the original's (>= OUTPUT_MATCH_DB, same top-1)
-- lead to "outputs-match" instead of the per-layer questions.
local pb = require "mlsh.engine.playbook"

local OUTPUT_MATCH_DB = 40

-- The output comparison with --original (nil without one; {error} when it cannot run), and the
-- module that made it.
local function outputs_vs_original(ctx)
  if not ctx.original then return nil end
  local ok, cc = pcall(require, "mlsh.compress_check")
  if not ok then return { error = "the interpreter is not available here (--safe)" }, nil end
  return cc.context_compare(ctx), cc
end

local function output_line(ctx)
  local res, cc = outputs_vs_original(ctx)
  if not res then return nil end
  if not cc then return "output SNR vs --original not measured: " .. res.error end
  return cc.evidence(res), cc.matches(res, OUTPUT_MATCH_DB)
end

local SPREAD_WHY = "compare per-layer outputs, or give the uncompressed model with --original PATH so mlsh can compare the weights"

local function list_compressed(ctx, kind)
  local c = ctx:compression()
  local out = {}
  local items = c[kind] or {}
  for i, e in ipairs(items) do
    if i > 6 then out[#out + 1] = string.format("... %d more", #items - 6) break end
    if kind == "palettized" then
      out[#out + 1] = string.format("%s: %s-bit LUT, %s%s%s", e.name, tostring(e.nbits), e.granularity,
        e.groups > 1 and (" (" .. e.groups .. " groups)") or "", e.per_channel_scale and ", per-channel scale" or "")
    elseif kind == "quantized" then
      out[#out + 1] = string.format("%s: %s %s%s", e.name, tostring(e.dtype), e.granularity,
        e.block_size and (" (block " .. e.block_size .. ")") or "")
    elseif kind == "sparse" then
      out[#out + 1] = string.format("%s: %s sparse", e.name, e.sparsity and pb.pct(e.sparsity) or "?")
    end
  end
  return out
end

local function compare_facts(ctx)
  local cmp = ctx:compare()
  if not cmp then return {} end
  local out = {}
  for i, r in ipairs(cmp.rows) do
    if i > 5 then out[#out + 1] = string.format("... %d more weights compared", #cmp.rows - 5) break end
    out[#out + 1] = string.format("vs original: %s SNR %.1f dB, cosine %.4f, max error %.4g%s", r.name, r.snr_db, r.cosine,
      r.max_abs_err, r.sampled and string.format(" (on %d of %d elements)", r.sampled, r.count) or "")
  end
  return out
end

local function facts(kind)
  return function(m, ctx)
    local out = list_compressed(ctx, kind)
    for _, l in ipairs(compare_facts(ctx)) do out[#out + 1] = l end
    out[#out + 1] = output_line(ctx)
    return out
  end
end

-- Outlier ratio max|w| / std of a quantized weight's stored integers: a per-tensor scale spends its
-- range on the outliers, so a large ratio means few levels left for the bulk of the weights.
local function outlier_ratio(ctx, op_name)
  for _, w in ipairs(ctx:weights()) do
    if w.op == op_name and (w.param == "quantized_data" or w.param == "data") then
      local ok, a = pcall(w.values, w)
      if ok then
        local s = a:stats()
        if s.std and s.std > 0 then
          local centre = s.mean or 0
          return math.max(math.abs(s.max - centre), math.abs(s.min - centre)) / s.std
        end
      end
    end
  end
  return nil
end

-- Weight SNR spread; with --original, the output SNR first: outputs that match need no layer hunt.
local function spread_check(m, ctx)
  local verdict, ev = ctx:error_spread()
  local out, match = output_line(ctx)
  if out then
    ev = out .. "; weights: " .. (ev or SPREAD_WHY)
    if match then return "outputs-match", ev end
  end
  if not verdict then return nil, ev or SPREAD_WHY end
  return verdict, ev
end

local OUTPUTS_MATCH = { id = "outputs-match", text = "neither: the outputs match the original's (measured with --original)", next = "outputs-match" }

return {
  id = "accuracy-after-compression",
  title = "Accuracy dropped after compression",
  symptom = "accuracy dropped after palettizing, quantizing or pruning the weights",
  patterns = { "4a", "4b", "4c" },
  rules = "accuracy or 4a or 4b or 4c",
  start = "compression-kind",
  nodes = {
    {
      id = "compression-kind",
      ask = "Which compression does the model carry?",
      check = function(m, ctx)
        local c = ctx:compression()
        local kinds = {}
        if c.kinds.palettization > 0 then kinds[#kinds + 1] = "palettization" end
        if c.kinds.quantization > 0 or c.kinds.activation > 0 then kinds[#kinds + 1] = "quantization" end
        if c.kinds.pruning > 0 then kinds[#kinds + 1] = "pruning" end
        local ev = string.format("%d palettized, %d quantized, %d pruned weight(s), %d activation quantize op(s)",
          c.kinds.palettization, c.kinds.quantization, c.kinds.pruning, c.kinds.activation)
        if #kinds == 0 then return "none", "no constexpr compression ops and no quantized layers" end
        if #kinds == 1 then return kinds[1], ev end
        return nil, "several schemes are applied (" .. table.concat(kinds, " + ") .. "): which one did the drop follow?"
      end,
      answers = {
        { id = "palettization", text = "palettization (LUT, k-means)", next = "palette-bits" },
        { id = "quantization", text = "linear quantization (int8/int4 weights, or W8A8)", next = "activation-quant" },
        { id = "pruning", text = "pruning (sparse weights)", next = "sparsity" },
        { id = "none", text = "none: the model is not compressed", next = "not-compressed" },
      },
    },
    -- 4a
    {
      id = "palette-bits",
      ask = "How many bits and what granularity do the LUTs use?",
      check = function(m, ctx)
        local c = ctx:compression()
        local min_bits, per_tensor_low = 99, nil
        for _, p in ipairs(c.palettized) do
          if p.nbits then min_bits = math.min(min_bits, p.nbits) end
          if p.nbits and p.nbits <= 4 and p.granularity == "per_tensor" and not p.per_channel_scale then
            per_tensor_low = per_tensor_low or p
          end
        end
        if min_bits == 99 then return nil, "LUT sizes not readable" end
        local ev = string.format("%d palettized weight(s), fewest bits %d", #c.palettized, min_bits)
        if min_bits <= 2 then return "very-low", ev end
        if per_tensor_low then
          return "low-per-tensor", ev .. string.format("; %s uses one %d-bit LUT for the whole tensor", per_tensor_low.name,
            per_tensor_low.nbits)
        end
        return "moderate", ev
      end,
      answers = {
        { id = "very-low", text = "1-2 bits", next = "palette-too-few-bits" },
        { id = "low-per-tensor", text = "3-4 bits with one LUT per tensor", next = "palette-granularity" },
        { id = "moderate", text = "6-8 bits, or 3-4 bits with grouped LUTs / per-channel scales", next = "palette-spread" },
      },
    },
    {
      id = "palette-spread",
      ask = "Is the error concentrated in a few layers?",
      why = SPREAD_WHY,
      check = spread_check,
      answers = {
        { id = "few", text = "yes, a few layers lose most", next = "palette-sensitive-layers" },
        { id = "everywhere", text = "no, it is spread over the model", next = "palette-training-time" },
        OUTPUTS_MATCH,
      },
    },
    -- 4b
    {
      id = "activation-quant",
      ask = "Are activations quantized too (W8A8, quantize/dequantize ops)?",
      check = function(m, ctx)
        local n = #ctx:compression().activation
        if n > 0 then return "yes", string.format("%d quantize/dequantize op(s)", n) end
        return "no", "weights only: no quantize/dequantize ops"
      end,
      answers = {
        { id = "yes", text = "yes, linear_quantize_activations was used", next = "calibration" },
        { id = "no", text = "no, weights only", next = "quant-granularity" },
      },
    },
    {
      id = "calibration",
      ask = "What calibration data did linear_quantize_activations see?",
      why = "activation ranges come from the sample_data; too few or unrepresentative samples clip real activations",
      answers = {
        { id = "few", text = "a handful of samples, or synthetic/random data", next = "more-calibration" },
        { id = "enough", text = "a few hundred representative samples", next = "activation-sensitive-ops" },
      },
    },
    {
      id = "quant-granularity",
      ask = "What granularity do the quantization scales have?",
      check = function(m, ctx)
        local c = ctx:compression()
        local int4_channel
        for _, q in ipairs(c.quantized) do
          if q.granularity == "per_tensor" then
            local ratio = q.op and outlier_ratio(ctx, q.op)
            return "per-tensor", string.format("%s (%s) has one scale for the whole tensor%s", q.name, tostring(q.dtype),
              ratio and string.format("; max|q| is %.1f std from the mean", ratio) or "")
          end
          if q.bits == 4 and q.granularity == "per_channel" then int4_channel = int4_channel or q end
        end
        if int4_channel then
          return "int4-per-channel", string.format("%s is %s with one scale per output channel", int4_channel.name,
            int4_channel.dtype)
        end
        return "fine", string.format("%d quantized weight(s), all per-channel or per-block", #c.quantized)
      end,
      answers = {
        { id = "per-tensor", text = "one scale per tensor", next = "quant-per-tensor" },
        { id = "int4-per-channel", text = "4-bit with one scale per channel", next = "quant-per-block" },
        { id = "fine", text = "8-bit per channel, or per block", next = "quant-spread" },
      },
    },
    {
      id = "quant-spread",
      ask = "Is the error concentrated in a few layers?",
      why = SPREAD_WHY,
      check = spread_check,
      answers = {
        { id = "few", text = "yes, a few layers lose most", next = "quant-sensitive-layers" },
        { id = "everywhere", text = "no, it is spread over the model", next = "quant-training-time" },
        OUTPUTS_MATCH,
      },
    },
    -- 4c
    {
      id = "sparsity",
      ask = "How sparse are the pruned weights?",
      check = function(m, ctx)
        local worst
        for _, s in ipairs(ctx:compression().sparse) do
          if s.sparsity and (not worst or s.sparsity > worst.sparsity) then worst = s end
        end
        if not worst then return nil, "sparsity not readable from the masks" end
        local ev = string.format("highest sparsity %s (%s)", pb.pct(worst.sparsity), worst.name)
        if worst.sparsity > 0.75 then return "high", ev end
        return "moderate", ev
      end,
      answers = {
        { id = "high", text = "above 75% zeros", next = "too-sparse" },
        { id = "moderate", text = "75% or less", next = "prune-spread" },
      },
    },
    {
      id = "prune-spread",
      ask = "Is the error concentrated in a few layers?",
      why = SPREAD_WHY,
      check = spread_check,
      answers = {
        { id = "few", text = "yes, a few layers lose most", next = "prune-sensitive-layers" },
        { id = "everywhere", text = "no, it is spread over the model", next = "prune-fine-tune" },
        OUTPUTS_MATCH,
      },
    },
    -- leaves -------------------------------------------------------------------------------------
    {
      id = "palette-too-few-bits", pattern = "4a",
      title = "Too few bits for data-free palettization",
      cause = "With 1-2 bits a LUT has 2-4 values per tensor: post-training k-means cannot represent the weights without training to the palette.",
      steps = {
        "Check the accuracy at 4, 6 and 8 bits to find where it breaks.",
        "If you need <= 2 bits, palettize during training (DKM) instead of after.",
      },
      fix = "Use 4 bits or more after training; for 2-bit, train with coremltools.optimize.torch's DKMPalettizer.",
      snippet = {
        python = [[import coremltools.optimize.torch as cto_torch
config = cto_torch.palettization.DKMPalettizerConfig.from_dict({"global_config": {"n_bits": 2}})
palettizer = cto_torch.palettization.DKMPalettizer(torch_model, config)
palettizer.prepare(); train(torch_model); palettizer.finalize()]],
      },
      tradeoff = "More bits cost size; training-time palettization costs a training run.",
      facts = facts("palettized"),
    },
    {
      id = "palette-granularity", pattern = "4a",
      title = "One LUT per tensor is too coarse at 3-4 bits",
      cause = "A per-tensor LUT of 8-16 values must serve every channel; channels with different ranges lose most.",
      steps = {
        "Re-palettize with per_grouped_channel LUTs (iOS18) or enable_per_channel_scale and compare accuracy.",
        "Or raise to 6 bits per-tensor (iOS16).",
      },
      fix = "Use granularity='per_grouped_channel' (group_size 16-32) or enable_per_channel_scale=True (iOS18); on iOS16/17 use 6 bits.",
      snippet = {
        python = [[config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(
    nbits=4, mode="kmeans", granularity="per_grouped_channel", group_size=16))
better = cto.palettize_weights(fp16_model, config)     # needs minimum_deployment_target iOS18]],
      },
      tradeoff = "Grouped LUTs add a little size and need iOS18; 6 bits costs 50% more weight size than 4.",
      facts = facts("palettized"),
    },
    {
      id = "palette-sensitive-layers", pattern = "4a",
      title = "A few layers are sensitive to palettization",
      cause = "Some layers (first/last layers, embeddings, attention projections with outliers) lose much more than the rest under the same palette.",
      steps = {
        "Find the worst layers (the SNR per weight that --original shows, or per-layer output comparison).",
        "Exclude them (op_name_configs = None) or give them more bits, and re-measure.",
      },
      fix = "Keep the sensitive layers at 8 bits or uncompressed with op_name_configs; palettize the rest.",
      snippet = {
        python = [[config = cto.OptimizationConfig(
    global_config=cto.OpPalettizerConfig(nbits=4, mode="kmeans"),
    op_name_configs={"classifier_weight": None,                      # keep uncompressed
                     "embed_weight": cto.OpPalettizerConfig(nbits=8, mode="kmeans")})
compressed = cto.palettize_weights(fp16_model, config)]],
      },
      tradeoff = "Excluded layers keep their size.",
      facts = facts("palettized"),
    },
    {
      id = "palette-training-time", pattern = "4a",
      title = "Post-training palettization is at its limit",
      cause = "The error is spread evenly: the palette is as good as data-free k-means gets at this size; the model itself has to adapt.",
      steps = {
        "Check whether a milder setting (more bits, grouped LUTs) meets the size budget.",
        "Otherwise fine-tune with palettization in the loop.",
      },
      fix = "Use training-time palettization (coremltools.optimize.torch DKMPalettizer) or a milder setting.",
      snippet = {
        python = [[config = cto_torch.palettization.DKMPalettizerConfig.from_dict(
    {"global_config": {"n_bits": 4, "granularity": "per_grouped_channel", "group_size": 16}})
palettizer = cto_torch.palettization.DKMPalettizer(torch_model, config)
palettizer.prepare(); fine_tune(torch_model, epochs=2); palettizer.finalize()]],
      },
      tradeoff = "A fine-tuning run and its data.",
      facts = facts("palettized"),
    },
    {
      id = "more-calibration", pattern = "4b",
      title = "Too little calibration data for activation quantization",
      cause = "W8A8 fixes each activation's range from the calibration samples; few or unrepresentative samples give ranges that clip real inputs.",
      steps = {
        "Calibrate with a few hundred real samples covering the input distribution.",
        "Compare accuracy of weights-only int8 with W8A8 to isolate the activations.",
      },
      fix = "Pass representative sample_data (hundreds of real inputs) to linear_quantize_activations.",
      snippet = {
        python = [[samples = [{"x": preprocess(img)} for img in representative_images[:300] ]
config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric"))
w8a8 = cto.linear_quantize_activations(fp16_model, config, sample_data=samples)
w8a8 = cto.linear_quantize_weights(w8a8, config)]],
      },
      tradeoff = "Calibration time grows with the samples; W8A8 only pays on A17 Pro / M4 class Neural Engines.",
      facts = facts("quantized"),
    },
    {
      id = "activation-sensitive-ops", pattern = "4b",
      title = "Some activations do not survive 8-bit",
      cause = "With good calibration data the loss comes from activations with outliers (attention scores, residual streams) that a per-tensor 8-bit range cannot hold.",
      steps = {
        "Exclude op types or names from activation quantization and re-measure.",
        "Compare with weights-only int8.",
      },
      fix = "Skip the sensitive ops (op_type_configs / op_name_configs = None) in linear_quantize_activations, or use weights-only quantization.",
      snippet = {
        python = [[config = cto.OptimizationConfig(
    global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric"),
    op_type_configs={"add": None})                 # keep residual adds in fp16
w8a8 = cto.linear_quantize_activations(fp16_model, config, sample_data=samples)]],
      },
      tradeoff = "Each excluded op keeps an fp16 activation (less speed-up).",
      facts = facts("quantized"),
    },
    {
      id = "quant-per-tensor", pattern = "4b",
      title = "One scale for the whole tensor",
      cause = "Per-tensor quantization spends its levels on the largest weight: channels with small ranges collapse onto a few levels.",
      steps = {
        "Re-quantize per channel (the default) or per block and compare accuracy.",
      },
      fix = "Use granularity='per_channel' (iOS16+) or 'per_block' (iOS18).",
      snippet = {
        python = [[config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
    mode="linear_symmetric", dtype="int8", granularity="per_channel"))
int8 = cto.linear_quantize_weights(fp16_model, config)]],
      },
      tradeoff = "Per-channel scales add one fp16 value per channel.",
      facts = facts("quantized"),
    },
    {
      id = "quant-per-block", pattern = "4b",
      title = "4-bit weights need per-block scales",
      cause = "With 16 levels, one scale per output channel is too coarse: outliers in a row take the range from the rest of it.",
      steps = {
        "Re-quantize int4 with granularity='per_block' (block_size 32 or 16) and compare.",
      },
      fix = "Use per_block int4 (iOS18), or int8 per-channel if iOS18 is not available.",
      snippet = {
        python = [[config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
    mode="linear_symmetric", dtype="int4", granularity="per_block", block_size=32))
int4 = cto.linear_quantize_weights(fp16_model, config)   # minimum_deployment_target iOS18]],
      },
      tradeoff = "Smaller blocks store more scales (block 32: +0.5 bit per weight).",
      facts = facts("quantized"),
    },
    {
      id = "quant-sensitive-layers", pattern = "4b",
      title = "A few layers are sensitive to quantization",
      cause = "Some layers lose far more than the rest at the same setting (outlier-heavy weights, first/last layers).",
      steps = {
        "Find the worst layers (the SNR per weight that --original shows).",
        "Exclude them or quantize them with a finer granularity, then re-measure.",
      },
      fix = "Keep the sensitive layers in fp16 (op_name_configs = None) and quantize the rest.",
      snippet = {
        python = [[config = cto.OptimizationConfig(
    global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"),
    op_name_configs={"lm_head_weight": None})
int8 = cto.linear_quantize_weights(fp16_model, config)]],
      },
      tradeoff = "Excluded layers keep their size.",
      facts = facts("quantized"),
    },
    {
      id = "quant-training-time", pattern = "4b",
      title = "Post-training quantization is at its limit",
      cause = "The error is spread evenly over the layers: data-free quantization at this bit width is as good as it gets.",
      steps = {
        "Try int8 if you are at int4; otherwise train with quantization in the loop.",
      },
      fix = "Quantization-aware training with coremltools.optimize.torch's LinearQuantizer.",
      snippet = {
        python = [[config = cto_torch.quantization.LinearQuantizerConfig.from_dict(
    {"global_config": {"quantization_scheme": "symmetric", "weight_dtype": "qint8"}})
quantizer = cto_torch.quantization.LinearQuantizer(torch_model, config)
model = quantizer.prepare(example_inputs=(x,)); fine_tune(model); model = quantizer.finalize()]],
      },
      tradeoff = "A fine-tuning run and its data.",
      facts = facts("quantized"),
    },
    {
      id = "too-sparse", pattern = "4c",
      title = "Too sparse for data-free pruning",
      cause = "Magnitude pruning above ~75% zeros without re-training removes weights the model needs.",
      steps = {
        "Measure accuracy at 50% and 75% sparsity.",
        "Prune gradually during training if you need more.",
      },
      fix = "Lower target_sparsity (50-75%), or prune during training (coremltools.optimize.torch MagnitudePruner).",
      snippet = {
        python = [[config = cto.OptimizationConfig(global_config=cto.OpMagnitudePrunerConfig(target_sparsity=0.5))
pruned = cto.prune_weights(fp16_model, config)]],
      },
      tradeoff = "Less sparsity, larger model; training-time pruning needs a training run.",
      facts = facts("sparse"),
    },
    {
      id = "prune-sensitive-layers", pattern = "4c",
      title = "A few layers are sensitive to pruning",
      cause = "The same sparsity everywhere hurts small or critical layers (first conv, classifier) much more than the large ones.",
      steps = {
        "Find the worst layers (the SNR per weight that --original shows).",
        "Exclude them or prune them less.",
      },
      fix = "Per-layer configs: skip the sensitive layers, prune the large ones harder.",
      snippet = {
        python = [[config = cto.OptimizationConfig(
    global_config=cto.OpMagnitudePrunerConfig(target_sparsity=0.6),
    op_name_configs={"conv1_weight": None, "fc_weight": cto.OpMagnitudePrunerConfig(target_sparsity=0.3)})
pruned = cto.prune_weights(fp16_model, config)]],
      },
      tradeoff = "Layers kept dense keep their size.",
      facts = facts("sparse"),
    },
    {
      id = "prune-fine-tune", pattern = "4c",
      title = "Pruning needs fine-tuning at this sparsity",
      cause = "The error is spread evenly: the model has to relearn around the zeros.",
      steps = {
        "Prune gradually during training and fine-tune.",
      },
      fix = "Use coremltools.optimize.torch's MagnitudePruner with a gradual schedule.",
      snippet = {
        python = [[config = cto_torch.pruning.MagnitudePrunerConfig.from_dict(
    {"global_config": {"target_sparsity": 0.75, "scheduler": {"update_steps": [0, 1000, 2000]}}})
pruner = cto_torch.pruning.MagnitudePruner(torch_model, config)
pruner.prepare(); fine_tune(torch_model); pruner.finalize()]],
      },
      tradeoff = "A fine-tuning run and its data.",
      facts = facts("sparse"),
    },
    {
      id = "outputs-match", pattern = "5b",
      title = "The compressed model's outputs match the original's",
      cause = "Run on the same inputs, the compressed model's outputs agree with the original's (output SNR of 40 dB or more, the same top-1 class): the weight error does not reach the outputs, so the accuracy drop comes from elsewhere.",
      steps = {
        "Check that the evaluation feeds both models the same preprocessing (scale, bias, colour order) and data.",
        "Compare on the inputs that fail, not random ones: mlsh compare ORIGINAL MODEL --outputs --input NAME=FILE.",
        "Compare the device's outputs (fp16 on the GPU/ANE) with the CPU's: mlsh run MODEL --precision fp16.",
      },
      fix = "Look outside the weights: the evaluation pipeline, the inputs that fail, or fp16 on the device.",
      snippet = {
        python = [[ref = ct.models.MLModel("Original.mlpackage").predict(inputs)
got = ct.models.MLModel("Compressed.mlpackage").predict(inputs)   # same inputs, then compare per output]],
      },
      tradeoff = "None.",
      facts = function(m, ctx) return { (output_line(ctx)) } end,
    },
    {
      id = "not-compressed", pattern = "5b",
      title = "The model carries no weight compression",
      cause = "Nothing in this file is palettized, quantized or pruned: the drop comes from elsewhere (fp16 precision, a different conversion, preprocessing).",
      steps = {
        "Make sure you are looking at the compressed file.",
        "Compare this model's outputs on the CPU (fp32) with the GPU/ANE (fp16).",
        "Follow the wrong-output playbook: mlsh diagnose MODEL --symptom conversion-failure.",
      },
      fix = "Diagnose it as a wrong-output conversion problem (precision, preprocessing, eval mode).",
      snippet = {
        python = [[cpu = ct.models.MLModel("Model.mlpackage", compute_units=ct.ComputeUnit.CPU_ONLY).predict(inputs)
ane = ct.models.MLModel("Model.mlpackage", compute_units=ct.ComputeUnit.ALL).predict(inputs)]],
      },
      tradeoff = "None.",
    },
  },
}
