/* optable.c — MIL op table (opsets iOS15..iOS18) and compute-unit eligibility data for MIL ops and
 * NeuralNetwork layers. Data from /work/shared/reference/coreml-versions.md §3 and
 * ane-and-partitioners.md §1; see optable.h for the meaning of statuses and conditions. */
#include "optable.h"
#include "spec.h"
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- names */

static const char *const unit_names[MLSH_UNIT_COUNT] = {"ANE", "GPU", "CPU"};
static const char *const source_names[MLSH_SRC_COUNT] = {"code", "vendor-doc", "community"};
static const char *const status_names[MLSH_ELIG_COUNT] = {"yes", "unknown", "unlikely", "no", "n/a"};

const char *mlsh_unit_name(mlsh_unit u) { return ((int)u >= 0 && u < MLSH_UNIT_COUNT) ? unit_names[u] : NULL; }
const char *mlsh_source_name(mlsh_source s) { return ((int)s >= 0 && s < MLSH_SRC_COUNT) ? source_names[s] : NULL; }
const char *mlsh_elig_status_name(mlsh_elig_status s) {
  return ((int)s >= 0 && s < MLSH_ELIG_COUNT) ? status_names[s] : NULL;
}

/* ---------------------------------------------------------------- facts (ane-and-partitioners.md §1) */

#define CODE MLSH_SRC_CODE
#define DOC MLSH_SRC_VENDOR_DOC
#define COMM MLSH_SRC_COMMUNITY

static const char *const HOLLANCE_UNSUP = "hollance/neural-engine docs/unsupported-layers.md";
static const char *const RULE = "ane-and-partitioners.md rule-of-thumb table (derived from the facts, not authoritative)";
static const char *const ANE_TRANSFORMERS = "apple/ml-ane-transformers @ da64000f; machinelearning.apple.com/research/neural-engine-transformers";

enum {
  F_PRECISION, F_GPU_PRECISION, F_CPU_PRECISION, F_FP32_NOT_ANE, F_RANK5, F_DIM, F_ZERO_DIM, F_DYNAMIC,
  F_UNBOUNDED, F_LAST_AXIS, F_SWITCH, F_SCHEDULING, F_DEVICES, F_DETECT, F_FP16_WEIGHTS_NN, F_COMPUTE_PLAN,
  /* per category */
  F_RULE_ANE, F_RULE_FP32, F_LAYOUT, F_CHUNK, F_COPIES, F_LAYERNORM, F_DILATED, F_DECONV_OK, F_POOL, F_UPSAMPLE,
  F_BCAST, F_GATHER, F_RULE_GATHER, F_RNN, F_RULE_RNN, F_CUSTOM, F_ND, F_INT8, F_RULE_INT8, F_WEIGHT_ONLY,
  F_COMPRESSION_OS, F_STATE, F_CONSTEXPR_LOAD,
  F_COUNT
};

static const mlsh_fact facts[F_COUNT] = {
  [F_PRECISION] = {"ANE computes in fp16 (weights, activations, accumulation); values above ~1e2 risk overflow "
                   "(max 65504), values below ~1e-4 lose precision or flush to zero",
                   COMM, "hollance/neural-engine docs/16-bit.md"},
  [F_GPU_PRECISION] = {"GPU: fp16 storage with fp32 accumulation unless allowLowPrecisionAccumulationOnGPU", COMM,
                       "hollance/neural-engine docs/16-bit.md"},
  [F_CPU_PRECISION] = {"CPU computes in fp32 (fp16 possible since iOS14/macOS11)", COMM,
                       "hollance/neural-engine docs/16-bit.md"},
  [F_FP32_NOT_ANE] = {"ML programs converted with compute_precision=FLOAT32 (or fp32-typed ops) cannot run on the ANE "
                      "and go to GPU/CPU; default mlprogram conversion is fp16",
                      DOC, "coremltools docs; also community reports"},
  [F_RANK5] = {"Core ML rejects tensors of rank > 5 in many paths; ORT's CoreML EP hard-codes rank <= 5", COMM,
               "coremltools issue 832; ORT coreml helper.cc (code)"},
  [F_DIM] = {"Core ML fails to load models with an input dimension > 16384 (likely the Metal texture width); "
             "ORT's CoreML EP hard-codes the limit",
             COMM, "coremltools issue 1003; ORT coreml helper.cc (code)"},
  [F_ZERO_DIM] = {"ORT's CoreML EP rejects 0-sized dimensions", CODE, "ORT coreml helper.cc"},
  [F_DYNAMIC] = {"flexible shapes (RangeDim) tend to push work off the ANE; EnumeratedShapes are the ANE-friendly "
                 "flexible form",
                 COMM, "ane-and-partitioners.md §1 (community)"},
  [F_UNBOUNDED] = {"mlprogram inputs with an unbounded upper_bound are rejected by coremltools", CODE,
                   "coremltools converters/_converters_entry.py"},
  [F_LAST_AXIS] = {"the last tensor axis maps to ANE width and is processed in 64-byte aligned chunks; small or odd "
                   "last dims are padded (fp16 singleton last dim = 32x padding)",
                   DOC, "Apple ANE-transformers article, principle 1"},
  [F_SWITCH] = {"ANE->CPU->ANE switching happens; ANE<->GPU switches cost more and Core ML tends to switch to GPU "
                "once and stay; every switch has conversion overhead",
                COMM, "hollance/neural-engine"},
  [F_SCHEDULING] = {"even fully ANE-compatible models may run on the GPU (large models, idle GPU)", COMM,
                    "hollance/neural-engine docs/other.md"},
  [F_DEVICES] = {"Core ML uses the ANE from A12 (iOS12+) and on all Apple-silicon Macs; the A11 ANE is not used", COMM,
                 "hollance/neural-engine docs/supported-devices.md"},
  [F_DETECT] = {"Core ML placement is a black box; MLComputePlan (iOS17+) reports the per-op device, ORT exposes it "
                "with ProfileComputePlan=1",
                COMM, "hollance/neural-engine docs/is-model-using-ane.md; ORT coreml_options.cc"},
  [F_FP16_WEIGHTS_NN] = {"fp16-weight NeuralNetwork models observed slower on the ANE than fp32-weight ones (anecdotal)",
                         COMM, "hollance/neural-engine"},
  [F_COMPUTE_PLAN] = {"ct.ComputeUnit CPU_AND_NE needs macOS >= 13", CODE, "coremltools/__init__.py ComputeUnit"},

  [F_RULE_ANE] = {"predictor rule: conv/linear/matmul/elementwise/activation/norm/pool/softmax in fp16, rank <= 4, "
                  "static or enumerated shapes -> ANE",
                  COMM, RULE},
  [F_RULE_FP32] = {"predictor rule: any fp32-typed compute op -> GPU/CPU", COMM, RULE},
  [F_LAYOUT] = {"for the ANE use data format (B, C, 1, S) channels-first rank 4 and replace nn.Linear with a 1x1 "
                "Conv2d",
                CODE, ANE_TRANSFORMERS},
  [F_CHUNK] = {"chunk large intermediates: split multi-head attention into per-head ops", CODE, ANE_TRANSFORMERS},
  [F_COPIES] = {"minimise memory copies: avoid reshapes/transposes; use einsum('bchq,bkhc->bkhq') for QK and "
                "einsum('bkhq,bchk->bchq') for AV",
                CODE, ANE_TRANSFORMERS},
  [F_LAYERNORM] = {"ANE-friendly LayerNorm normalises over the channel axis (dim=1) of (B, C, 1, S)", CODE,
                   "apple/ml-ane-transformers ane_transformers/reference/layer_norm.py"},
  [F_DILATED] = {"dilated convolutions are known problematic on the ANE (NeuralNetwork era)", COMM, HOLLANCE_UNSUP},
  [F_DECONV_OK] = {"deconvolution observed to work on the ANE", COMM, HOLLANCE_UNSUP},
  [F_POOL] = {"pooling with kernel > 13 or stride > 2 is known problematic on the ANE", COMM, HOLLANCE_UNSUP},
  [F_UPSAMPLE] = {"upsampling observed to work on the ANE, but not with a factor > 2", COMM, HOLLANCE_UNSUP},
  [F_BCAST] = {"some broadcasts are known problematic on the ANE (e.g. multiply C x H x W by C x 1 x 1)", COMM,
               HOLLANCE_UNSUP},
  [F_GATHER] = {"gather is known problematic on the ANE (NeuralNetwork era)", COMM, HOLLANCE_UNSUP},
  [F_RULE_GATHER] = {"predictor rule: gather / gather_nd / embedding lookups with large tables -> CPU (ANE on newer OS "
                     "uncertain)",
                     COMM, RULE},
  [F_RNN] = {"RNNs (LSTM, GRU) are known problematic on the ANE", COMM, HOLLANCE_UNSUP},
  [F_RULE_RNN] = {"predictor rule: lstm/gru/rnn -> CPU (GPU)", COMM, RULE},
  [F_CUSTOM] = {"custom layers run on CPU/GPU only", COMM, HOLLANCE_UNSUP},
  [F_ND] = {"broadcastable and ND layers (AddBroadcastable, ConcatND, SplitND, LoadConstantND ...) are known "
            "problematic on the ANE; use the legacy rank-3 layers",
            COMM, HOLLANCE_UNSUP},
  [F_INT8] = {"A17 Pro / M4 ANE has increased int8-int8 throughput: W8A8 (per-tensor activation quantization, iOS17+) "
              "gives latency gains there; activation quantization only recommended when the model runs fully or "
              "mostly on the NE (CPU/GPU may slow down)",
              DOC, "coremltools docs-guides opt-quantization-perf.html, opt-whats-new.html"},
  [F_RULE_INT8] = {"predictor rule: int8 activations (quantize/dequantize pairs) -> ANE on A17 Pro/M4, otherwise "
                   "decompressed",
                   COMM, RULE},
  [F_WEIGHT_ONLY] = {"weight-only quantization mainly saves memory/bandwidth: weights are decompressed", DOC,
                     "coremltools docs-guides opt-quantization-perf.html"},
  [F_COMPRESSION_OS] = {"iOS16: per-tensor LUT 1/2/4/6/8 bits, 8-bit per-channel quant, pruning; iOS17: faster "
                        "on-the-fly decompression; iOS18: per-grouped-channel LUT, 3-bit, int8 LUT, per-channel "
                        "scale with LUT, 4-bit per-block weights (gains mainly on GPU), joint sparse+LUT/quant",
                        DOC, "coremltools docs-guides opt-whats-new.html, opt-quantization-perf.html"},
  [F_STATE] = {"model state (mutable buffers) requires iOS18/macOS15 (spec 9)", CODE,
               "pytorch/executorch coreml_partitioner.py tag_mutated_buffer; coremltools"},
  [F_CONSTEXPR_LOAD] = {"constexpr_* ops describe compressed weights; up to iOS17 their params are MIL attributes, from "
                        "iOS18 inputs",
                        CODE, "coremltools backend/mil/load.py translate_constexpr"},
};

/* Facts that apply to every op and layer. */
static const int general_facts[] = {F_PRECISION, F_GPU_PRECISION, F_CPU_PRECISION, F_FP32_NOT_ANE, F_RANK5, F_DIM,
                                    F_ZERO_DIM, F_DYNAMIC, F_UNBOUNDED, F_LAST_AXIS, F_SWITCH, F_SCHEDULING,
                                    F_DEVICES, F_DETECT, F_FP16_WEIGHTS_NN, F_COMPUTE_PLAN};

size_t mlsh_general_fact_count(void) { return sizeof general_facts / sizeof general_facts[0]; }
const mlsh_fact *mlsh_general_fact_at(size_t i) {
  return i < mlsh_general_fact_count() ? &facts[general_facts[i]] : NULL;
}

/* ---------------------------------------------------------------- conditions */

enum {
  C_ANE_FP16, C_ANE_RANK4, C_RANK5, C_DIM, C_ANE_SHAPES, C_ANE_DILATION, C_ANE_KERNEL, C_ANE_STRIDE, C_ANE_SCALE,
  C_ANE_BCAST, C_ANE_TABLE, C_ANE_INT8_DEVICE,
  C_COUNT
};

static const mlsh_condition conds[C_COUNT] = {
  [C_ANE_FP16] = {"dtype", "compute dtype is fp16 (fp32-typed ops cannot run on the ANE)", 0, 0, "fp16", DOC,
                  "coremltools docs (compute_precision); ane-and-partitioners.md §1"},
  [C_ANE_RANK4] = {"max_rank", "every tensor has rank <= 4 (rank-5 tensors predicted not ANE)", 1, 4, NULL, COMM, RULE},
  [C_RANK5] = {"max_rank", "every tensor has rank <= 5 (Core ML rejects rank > 5 in many paths)", 1, 5, NULL, COMM,
               "coremltools issue 832; ORT coreml helper.cc"},
  [C_DIM] = {"max_dim", "every dimension <= 16384 (larger input dims fail to load)", 1, 16384, NULL, COMM,
             "coremltools issue 1003; ORT coreml helper.cc"},
  [C_ANE_SHAPES] = {"shapes", "static or enumerated shapes (flexible RangeDim shapes push work off the ANE)", 0, 0,
                    "static,enumerated", COMM, "ane-and-partitioners.md §1 Dynamic shapes"},
  [C_ANE_DILATION] = {"max_dilation", "no dilation (dilation factor 1)", 1, 1, NULL, COMM, HOLLANCE_UNSUP},
  [C_ANE_KERNEL] = {"max_kernel", "pooling kernel size <= 13", 1, 13, NULL, COMM, HOLLANCE_UNSUP},
  [C_ANE_STRIDE] = {"max_stride", "pooling stride <= 2", 1, 2, NULL, COMM, HOLLANCE_UNSUP},
  [C_ANE_SCALE] = {"max_scale_factor", "upsampling factor <= 2", 1, 2, NULL, COMM, HOLLANCE_UNSUP},
  [C_ANE_BCAST] = {"no_channel_broadcast", "no broadcast of a C x H x W tensor against C x 1 x 1", 0, 0, NULL, COMM,
                   HOLLANCE_UNSUP},
  [C_ANE_TABLE] = {"small_table", "lookup table is not large (large embedding tables go to CPU; no threshold known)", 0,
                   0, NULL, COMM, RULE},
  [C_ANE_INT8_DEVICE] = {"device", "int8 activation compute is accelerated on the A17 Pro / M4 ANE (otherwise "
                                   "decompressed)",
                         0, 0, "A17 Pro,M4", DOC, "coremltools docs-guides opt-quantization-perf.html"},
};

size_t mlsh_condition_count(void) { return C_COUNT; }
const mlsh_condition *mlsh_condition_at(size_t i) { return i < C_COUNT ? &conds[i] : NULL; }

/* ---------------------------------------------------------------- eligibility profiles */

#define C(x) (&conds[C_##x])
#define F(x) (&facts[F_##x])
#define ANE_MIL C(ANE_FP16), C(ANE_RANK4), C(DIM), C(ANE_SHAPES) /* necessary for an ML-program op on the ANE */
#define ANE_NN C(ANE_RANK4), C(DIM), C(ANE_SHAPES)               /* NN precision is chosen at run time */
#define LOADABLE C(RANK5), C(DIM)
#define UNIT(st, ...) {MLSH_ELIG_##st, {__VA_ARGS__}}
#define CPU_YES UNIT(YES, LOADABLE)
#define NA3 {UNIT(NA, NULL), UNIT(NA, NULL), UNIT(NA, NULL)}

/* ML program ops */
static const mlsh_elig_profile P_ELEMENTWISE = {"elementwise", {UNIT(YES, ANE_MIL), UNIT(YES, LOADABLE), CPU_YES},
                                                {F(RULE_ANE), F(RULE_FP32)}};
static const mlsh_elig_profile P_BINARY = {"elementwise_binary",
                                           {UNIT(YES, ANE_MIL, C(ANE_BCAST)), UNIT(YES, LOADABLE), CPU_YES},
                                           {F(RULE_ANE), F(RULE_FP32), F(BCAST)}};
static const mlsh_elig_profile P_ACTIVATION = {"activation", {UNIT(YES, ANE_MIL), UNIT(YES, LOADABLE), CPU_YES},
                                               {F(RULE_ANE), F(RULE_FP32)}};
static const mlsh_elig_profile P_CONV = {"conv", {UNIT(YES, ANE_MIL, C(ANE_DILATION)), UNIT(YES, LOADABLE), CPU_YES},
                                         {F(RULE_ANE), F(RULE_FP32), F(DILATED), F(LAYOUT)}};
static const mlsh_elig_profile P_CONV_T = {"conv_transpose", {UNIT(YES, ANE_MIL), UNIT(YES, LOADABLE), CPU_YES},
                                           {F(RULE_ANE), F(RULE_FP32), F(DECONV_OK)}};
static const mlsh_elig_profile P_LINEAR = {"linear", {UNIT(YES, ANE_MIL), UNIT(YES, LOADABLE), CPU_YES},
                                           {F(RULE_ANE), F(RULE_FP32), F(LAYOUT), F(COPIES), F(CHUNK)}};
static const mlsh_elig_profile P_NORM = {"norm", {UNIT(YES, ANE_MIL), UNIT(YES, LOADABLE), CPU_YES},
                                         {F(RULE_ANE), F(RULE_FP32), F(LAYERNORM)}};
static const mlsh_elig_profile P_POOL = {"pool",
                                         {UNIT(YES, ANE_MIL, C(ANE_KERNEL), C(ANE_STRIDE)), UNIT(YES, LOADABLE), CPU_YES},
                                         {F(RULE_ANE), F(RULE_FP32), F(POOL)}};
static const mlsh_elig_profile P_SOFTMAX = {"softmax", {UNIT(YES, ANE_MIL), UNIT(YES, LOADABLE), CPU_YES},
                                            {F(RULE_ANE), F(RULE_FP32), F(CHUNK)}};
static const mlsh_elig_profile P_RESIZE = {"resize", {UNIT(YES, ANE_MIL, C(ANE_SCALE)), UNIT(YES, LOADABLE), CPU_YES},
                                           {F(RULE_FP32), F(UPSAMPLE)}};
static const mlsh_elig_profile P_TENSOR = {"tensor", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                           {F(RULE_FP32), F(COPIES)}};
static const mlsh_elig_profile P_REDUCE = {"reduce", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                           {F(RULE_FP32)}};
static const mlsh_elig_profile P_GATHER = {"gather",
                                           {UNIT(UNLIKELY, ANE_MIL, C(ANE_TABLE)), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                           {F(GATHER), F(RULE_GATHER)}};
static const mlsh_elig_profile P_DATADEP = {"data_dependent", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                            {F(RULE_FP32)}};
static const mlsh_elig_profile P_RECURRENT = {"recurrent", {UNIT(UNLIKELY, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                              {F(RNN), F(RULE_RNN)}};
static const mlsh_elig_profile P_CONTROL = {"control_flow", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                            {NULL}};
static const mlsh_elig_profile P_LIST = {"list", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES}, {NULL}};
static const mlsh_elig_profile P_RANDOM = {"random", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES}, {NULL}};
static const mlsh_elig_profile P_CONST = {"const", NA3, {NULL}};
static const mlsh_elig_profile P_CONSTEXPR = {"constexpr", NA3, {F(WEIGHT_ONLY), F(COMPRESSION_OS), F(CONSTEXPR_LOAD)}};
static const mlsh_elig_profile P_QUANT = {"quantize",
                                          {UNIT(YES, C(ANE_INT8_DEVICE), C(ANE_RANK4), C(DIM), C(ANE_SHAPES)),
                                           UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                          {F(INT8), F(RULE_INT8)}};
static const mlsh_elig_profile P_STATE = {"state", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                          {F(STATE)}};
static const mlsh_elig_profile P_ATTENTION = {"attention", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                              {F(RULE_FP32), F(CHUNK), F(COPIES)}};
static const mlsh_elig_profile P_OTHER = {"other", {UNIT(UNKNOWN, ANE_MIL), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                          {F(RULE_FP32)}};

/* NeuralNetwork layers */
static const mlsh_elig_profile N_LEGACY = {"nn_legacy", {UNIT(YES, ANE_NN), UNIT(YES, LOADABLE), CPU_YES},
                                           {F(ND)}};
static const mlsh_elig_profile N_CONV = {"nn_conv", {UNIT(YES, ANE_NN, C(ANE_DILATION)), UNIT(YES, LOADABLE), CPU_YES},
                                         {F(DILATED), F(DECONV_OK)}};
static const mlsh_elig_profile N_POOL = {"nn_pool",
                                         {UNIT(YES, ANE_NN, C(ANE_KERNEL), C(ANE_STRIDE)), UNIT(YES, LOADABLE), CPU_YES},
                                         {F(POOL)}};
static const mlsh_elig_profile N_UPSAMPLE = {"nn_upsample", {UNIT(YES, ANE_NN, C(ANE_SCALE)), UNIT(YES, LOADABLE), CPU_YES},
                                             {F(UPSAMPLE)}};
static const mlsh_elig_profile N_MULTIPLY = {"nn_multiply", {UNIT(YES, ANE_NN, C(ANE_BCAST)), UNIT(YES, LOADABLE), CPU_YES},
                                             {F(BCAST)}};
static const mlsh_elig_profile N_RECURRENT = {"nn_recurrent", {UNIT(UNLIKELY, ANE_NN), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                              {F(RNN), F(RULE_RNN)}};
static const mlsh_elig_profile N_GATHER = {"nn_gather",
                                           {UNIT(UNLIKELY, ANE_NN, C(ANE_TABLE)), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                           {F(GATHER), F(RULE_GATHER)}};
static const mlsh_elig_profile N_ND = {"nn_nd", {UNIT(UNLIKELY, ANE_NN), UNIT(UNKNOWN, LOADABLE), CPU_YES}, {F(ND)}};
static const mlsh_elig_profile N_CUSTOM = {"nn_custom", {UNIT(NO, NULL), UNIT(YES, LOADABLE), CPU_YES}, {F(CUSTOM)}};
static const mlsh_elig_profile N_CONTROL = {"nn_control_flow", {UNIT(UNKNOWN, ANE_NN), UNIT(UNKNOWN, LOADABLE), CPU_YES},
                                            {NULL}};
static const mlsh_elig_profile N_OTHER = {"nn_other", {UNIT(UNKNOWN, ANE_NN), UNIT(UNKNOWN, LOADABLE), CPU_YES}, {NULL}};

/* ---------------------------------------------------------------- MIL ops (versions.md §3) */

#define R7 (1u << 7)
#define R8 (1u << 8)
#define R9 (1u << 9)
#define OP(n, intro, rev, prof) {n, intro, rev, &prof, NULL}
#define OPN(n, intro, rev, prof, note) {n, intro, rev, &prof, note}

static const char *const NOTE_CONSTEXPR16 =
    "params are MIL attributes for opsets <= iOS17 and inputs from iOS18 (backend/mil/load.py)";

/* Sorted by name (strcmp order) so lookups can bsearch. */
static const mlsh_op ops[] = {
  OP("abs", 6, 0, P_ELEMENTWISE),
  OP("acos", 6, 0, P_ELEMENTWISE),
  OP("add", 6, 0, P_BINARY),
  OPN("affine", 6, 0, P_OTHER, "registered with opset_version iOS15 (ML program only), unlike the iOS13 default of the base set"),
  OP("argsort", 6, 0, P_DATADEP),
  OP("asin", 6, 0, P_ELEMENTWISE),
  OP("atan", 6, 0, P_ELEMENTWISE),
  OP("atanh", 6, 0, P_ELEMENTWISE),
  OP("avg_pool", 6, 0, P_POOL),
  OP("band_part", 6, 0, P_TENSOR),
  OP("batch_norm", 6, R8, P_NORM),
  OP("batch_to_space", 6, 0, P_TENSOR),
  OP("cast", 6, R8, P_OTHER),
  OP("ceil", 6, 0, P_ELEMENTWISE),
  OP("clamped_relu", 6, R8, P_ACTIVATION),
  OP("classify", 6, 0, P_OTHER),
  OP("clip", 6, R8, P_ELEMENTWISE),
  OP("concat", 6, 0, P_TENSOR),
  OP("cond", 6, 0, P_CONTROL),
  OP("const", 6, 0, P_CONST),
  OPN("constexpr_affine_dequantize", 7, 0, P_CONSTEXPR,
      "out = scale * (quantized_data - zero_point), broadcast along axis; params are MIL attributes"),
  OPN("constexpr_blockwise_shift_scale", 9, 0, P_CONSTEXPR,
      "out[i] = scale[i//block] * (data[i] - offset[i//block]); params are inputs"),
  OPN("constexpr_cast", 7, R9, P_CONSTEXPR, "fp16 source_val -> fp32; " "params are MIL attributes up to iOS17, inputs from iOS18"),
  OPN("constexpr_lut_to_dense", 7, R9, P_CONSTEXPR, NOTE_CONSTEXPR16),
  OPN("constexpr_lut_to_sparse", 9, 0, P_CONSTEXPR, "LUT lookup on the nonzero indices; feeds constexpr_sparse_to_dense"),
  OPN("constexpr_sparse_blockwise_shift_scale", 9, 0, P_CONSTEXPR,
      "dequantises the nonzero values of a sparse tensor per block; feeds constexpr_sparse_to_dense"),
  OPN("constexpr_sparse_to_dense", 7, R9, P_CONSTEXPR, NOTE_CONSTEXPR16),
  OP("conv", 6, R8, P_CONV),
  OP("conv_quantized", 6, 0, P_CONV),
  OP("conv_transpose", 6, R8, P_CONV_T),
  OP("cos", 6, 0, P_ELEMENTWISE),
  OP("cosh", 6, 0, P_ELEMENTWISE),
  OP("crop", 6, 0, P_TENSOR),
  OP("crop_resize", 6, R7 | R8, P_OTHER),
  OP("cumsum", 6, 0, P_REDUCE),
  OP("depth_to_space", 6, 0, P_TENSOR),
  OPN("dequantize", 8, 0, P_QUANT, "dequantize(input int8/uint8, scale fp16/fp32, zero_point?, axis?)"),
  OP("einsum", 6, 0, P_LINEAR),
  OP("elu", 6, R8, P_ACTIVATION),
  OP("equal", 6, 0, P_BINARY),
  OP("erf", 6, 0, P_ELEMENTWISE),
  OP("exp", 6, 0, P_ELEMENTWISE),
  OP("exp2", 6, 0, P_ELEMENTWISE),
  OP("expand_dims", 6, R8, P_TENSOR),
  OP("fill", 6, 0, P_OTHER),
  OP("fill_like", 7, 0, P_OTHER),
  OP("flatten2d", 6, 0, P_TENSOR),
  OP("floor", 6, 0, P_ELEMENTWISE),
  OP("floor_div", 6, 0, P_BINARY),
  OP("gather", 6, R7 | R8, P_GATHER),
  OP("gather_along_axis", 6, R7 | R8, P_GATHER),
  OP("gather_nd", 6, R7 | R8, P_GATHER),
  OPN("gelu", 6, 0, P_ACTIVATION, "mode EXACT / TANH_APPROXIMATION / SIGMOID_APPROXIMATION"),
  OP("greater", 6, 0, P_BINARY),
  OP("greater_equal", 6, 0, P_BINARY),
  OP("gru", 6, R8 | R9, P_RECURRENT),
  OP("identity", 6, 0, P_TENSOR),
  OP("instance_norm", 6, R8, P_NORM),
  OP("inverse", 6, R8, P_ELEMENTWISE),
  OP("l2_norm", 6, R8, P_NORM),
  OP("l2_pool", 6, 0, P_POOL),
  OP("layer_norm", 6, R8, P_NORM),
  OP("leaky_relu", 6, R8, P_ACTIVATION),
  OP("less", 6, 0, P_BINARY),
  OP("less_equal", 6, 0, P_BINARY),
  OP("linear", 6, R8, P_LINEAR),
  OP("linear_activation", 6, R8, P_ACTIVATION),
  OP("list_gather", 6, 0, P_LIST),
  OP("list_length", 6, 0, P_LIST),
  OP("list_read", 6, 0, P_LIST),
  OP("list_scatter", 6, 0, P_LIST),
  OP("list_write", 6, 0, P_LIST),
  OP("local_response_norm", 6, R8, P_NORM),
  OP("log", 6, R8, P_ELEMENTWISE),
  OP("logical_and", 6, 0, P_BINARY),
  OP("logical_not", 6, 0, P_ELEMENTWISE),
  OP("logical_or", 6, 0, P_BINARY),
  OP("logical_xor", 6, 0, P_BINARY),
  OP("lstm", 6, R8, P_RECURRENT),
  OP("make_list", 6, 0, P_LIST),
  OP("matmul", 6, R8, P_LINEAR),
  OP("max_pool", 6, 0, P_POOL),
  OP("maximum", 6, 0, P_BINARY),
  OP("minimum", 6, 0, P_BINARY),
  OP("mod", 6, 0, P_BINARY),
  OP("mul", 6, 0, P_BINARY),
  OP("non_maximum_suppression", 6, R8, P_DATADEP),
  OP("non_zero", 6, 0, P_DATADEP),
  OP("not_equal", 6, 0, P_BINARY),
  OP("one_hot", 6, 0, P_OTHER),
  OP("pad", 6, 0, P_TENSOR),
  OP("pixel_shuffle", 6, 0, P_TENSOR),
  OP("pixel_unshuffle", 7, 0, P_TENSOR),
  OP("pow", 6, 0, P_BINARY),
  OP("prelu", 6, R8, P_ACTIVATION),
  OPN("quantize", 8, 0, P_QUANT,
      "quantize(input fp16/fp32, scale, zero_point? int8/uint8, axis?, output_dtype \"int8\"/\"uint8\")"),
  OP("random_bernoulli", 6, 0, P_RANDOM),
  OP("random_categorical", 6, 0, P_RANDOM),
  OP("random_normal", 6, 0, P_RANDOM),
  OP("random_uniform", 6, 0, P_RANDOM),
  OP("range_1d", 6, 0, P_OTHER),
  OPN("read_state", 9, 0, P_STATE, "reads a state input (StateType); states need spec 9"),
  OP("real_div", 6, 0, P_BINARY),
  OP("reduce_argmax", 6, R8, P_DATADEP),
  OP("reduce_argmin", 6, R8, P_DATADEP),
  OP("reduce_l1_norm", 6, 0, P_REDUCE),
  OP("reduce_l2_norm", 6, 0, P_REDUCE),
  OP("reduce_log_sum", 6, 0, P_REDUCE),
  OP("reduce_log_sum_exp", 6, 0, P_REDUCE),
  OP("reduce_max", 6, 0, P_REDUCE),
  OP("reduce_mean", 6, 0, P_REDUCE),
  OP("reduce_min", 6, 0, P_REDUCE),
  OP("reduce_prod", 6, 0, P_REDUCE),
  OP("reduce_sum", 6, 0, P_REDUCE),
  OP("reduce_sum_square", 6, 0, P_REDUCE),
  OP("relu", 6, 0, P_ACTIVATION),
  OP("relu6", 6, 0, P_ACTIVATION),
  OPN("resample", 6, R7 | R8, P_OTHER, "registered with opset_version iOS15 (ML program only), unlike the iOS13 default of the base set"),
  OP("reshape", 6, R8, P_TENSOR),
  OP("reshape_like", 7, R8, P_TENSOR),
  OPN("resize", 8, 0, P_RESIZE, "resize(x, shape, resized_dims uint32, interpolation_mode?, sampling_mode?)"),
  OP("resize_bilinear", 6, 0, P_RESIZE),
  OP("resize_nearest_neighbor", 6, 0, P_RESIZE),
  OP("reverse", 6, R8, P_TENSOR),
  OP("reverse_sequence", 6, R8, P_TENSOR),
  OP("rnn", 6, R8, P_RECURRENT),
  OP("round", 6, 0, P_ELEMENTWISE),
  OP("rsqrt", 6, R8, P_ELEMENTWISE),
  OPN("scaled_dot_product_attention", 9, 0, P_ATTENTION, "query, key, value fp16/fp32; attn_mask bool/fp16/fp32"),
  OP("scaled_tanh", 6, R8, P_ACTIVATION),
  OP("scatter", 6, R8, P_DATADEP),
  OP("scatter_along_axis", 6, R8, P_DATADEP),
  OP("scatter_nd", 6, R8, P_DATADEP),
  OPN("select", 6, 0, P_BINARY, "MIL has no `where` op; select(cond, a, b) is it"),
  OP("shape", 6, 0, P_OTHER),
  OP("sigmoid", 6, 0, P_ACTIVATION),
  OP("sigmoid_hard", 6, R8, P_ACTIVATION),
  OP("sign", 6, 0, P_ELEMENTWISE),
  OP("silu", 6, 0, P_ACTIVATION),
  OP("sin", 6, 0, P_ELEMENTWISE),
  OP("sinh", 6, 0, P_ELEMENTWISE),
  OP("slice_by_index", 6, R8, P_TENSOR),
  OP("slice_by_size", 6, R8, P_TENSOR),
  OP("slice_update", 9, 0, P_TENSOR),
  OP("sliding_windows", 6, R8, P_TENSOR),
  OP("softmax", 6, 0, P_SOFTMAX),
  OP("softplus", 6, 0, P_ACTIVATION),
  OP("softplus_parametric", 6, R8, P_ACTIVATION),
  OP("softsign", 6, 0, P_ACTIVATION),
  OP("space_to_batch", 6, 0, P_TENSOR),
  OP("space_to_depth", 6, 0, P_TENSOR),
  OP("split", 6, 0, P_TENSOR),
  OP("sqrt", 6, 0, P_ELEMENTWISE),
  OP("square", 6, 0, P_ELEMENTWISE),
  OP("squeeze", 6, R8, P_TENSOR),
  OP("stack", 6, 0, P_TENSOR),
  OP("sub", 6, 0, P_BINARY),
  OP("tan", 6, 0, P_ELEMENTWISE),
  OP("tanh", 6, 0, P_ACTIVATION),
  OP("threshold", 6, 0, P_ELEMENTWISE),
  OP("thresholded_relu", 6, R8, P_ACTIVATION),
  OP("tile", 6, 0, P_TENSOR),
  OP("topk", 6, R7 | R8, P_DATADEP),
  OP("transpose", 6, R8, P_TENSOR),
  OP("upsample_bilinear", 6, R7, P_RESIZE),
  OP("upsample_nearest_neighbor", 6, 0, P_RESIZE),
  OP("while_loop", 6, 0, P_CONTROL),
  OPN("write_state", 9, 0, P_STATE,
      "not registered in coremltools ops/defs: the MIL backend emits write_state (+ read_state) for the "
      "coreml_update_state dialect op"),
};

size_t mlsh_op_count(void) { return sizeof ops / sizeof ops[0]; }
const mlsh_op *mlsh_op_at(size_t i) { return i < mlsh_op_count() ? &ops[i] : NULL; }

static int op_cmp(const void *key, const void *elem) {
  return strcmp((const char *)key, ((const mlsh_op *)elem)->name);
}

const mlsh_op *mlsh_op_find(const char *name) {
  if (!name) return NULL;
  return bsearch(name, ops, mlsh_op_count(), sizeof ops[0], op_cmp);
}

int mlsh_op_available(const mlsh_op *op, int spec) { return op && spec >= op->introduced; }

int mlsh_op_version_at(const mlsh_op *op, int spec) {
  if (!mlsh_op_available(op, spec)) return 0;
  int v = op->introduced;
  for (int s = op->introduced + 1; s <= spec && s < 32; s++)
    if (op->revised & (1u << s)) v = s;
  return v;
}

/* ---------------------------------------------------------------- revision notes */

static const char *const IOS17_GENERIC =
    "weight/bias/params may have a dtype different from x; int8/uint8/int16/uint16 support (mostly)";

static const struct { const char *op; int spec; const char *note; } revision_notes[] = {
  {"gather", 7, "indices may be int16/uint16"},
  {"gather_along_axis", 7, "indices may be int16/uint16"},
  {"gather_nd", 7, "indices may be int16/uint16"},
  {"topk", 7, "extra params"},
  {"cast", 8, "int8/uint8/int16/uint16 dtypes"},
  {"conv", 8, "weight dtype may differ from x"},
  {"conv_transpose", 8, "weight dtype may differ from x; weight need not be const"},
  {"gather", 8, "x may be int8/uint8/int16/uint16; indices may be int8/uint8"},
  {"gather_along_axis", 8, "x may be int8/uint8/int16/uint16; indices may be int8/uint8"},
  {"gather_nd", 8, "x may be int8/uint8/int16/uint16; indices may be int8/uint8"},
  {"reduce_argmax", 8, "uint16 output"},
  {"reduce_argmin", 8, "uint16 output"},
  {"constexpr_cast", 9, "params become inputs"},
  {"constexpr_lut_to_dense", 9, "new signature: sub-byte indices, per-block and vector LUTs (vector_axis); params are inputs"},
  {"constexpr_sparse_to_dense", 9, "new signature: uint1 mask of the full output shape; params are inputs"},
};

const char *mlsh_op_revision_note(const mlsh_op *op, int spec) {
  if (!op || spec < 0 || spec >= 32 || !(op->revised & (1u << spec))) return NULL;
  for (size_t i = 0; i < sizeof revision_notes / sizeof revision_notes[0]; i++)
    if (revision_notes[i].spec == spec && strcmp(revision_notes[i].op, op->name) == 0) return revision_notes[i].note;
  return spec == 8 ? IOS17_GENERIC : NULL;
}

/* ---------------------------------------------------------------- NN layer eligibility */

static const struct { const char *layer; const mlsh_elig_profile *elig; } layer_profiles[] = {
  {"convolution", &N_CONV}, {"pooling", &N_POOL}, {"upsample", &N_UPSAMPLE}, {"resizeBilinear", &N_UPSAMPLE},
  {"multiply", &N_MULTIPLY}, {"simpleRecurrent", &N_RECURRENT}, {"gru", &N_RECURRENT},
  {"uniDirectionalLSTM", &N_RECURRENT}, {"biDirectionalLSTM", &N_RECURRENT}, {"gather", &N_GATHER},
  {"gatherND", &N_GATHER}, {"gatherAlongAxis", &N_GATHER}, {"embedding", &N_GATHER}, {"embeddingND", &N_GATHER},
  {"custom", &N_CUSTOM}, {"branch", &N_CONTROL}, {"loop", &N_CONTROL}, {"loopBreak", &N_CONTROL},
  {"loopContinue", &N_CONTROL}, {"copy", &N_CONTROL}, {"cropResize", &N_OTHER},
};

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

const mlsh_elig_profile *mlsh_layer_elig(const char *layer_name) {
  const mlsh_nn_layer *l = mlsh_nn_layer_find(layer_name);
  if (!l) return NULL;
  for (size_t i = 0; i < sizeof layer_profiles / sizeof layer_profiles[0]; i++)
    if (strcmp(layer_profiles[i].layer, l->name) == 0) return layer_profiles[i].elig;
  if (ends_with(l->name, "Broadcastable") || ends_with(l->name, "ND")) return &N_ND;
  if (l->min_spec <= 3) return &N_LEGACY;
  return &N_OTHER;
}
