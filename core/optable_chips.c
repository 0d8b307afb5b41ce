/* optable_chips.c — the per-chip column of the MIL op table: which Neural Engine generation runs an
 * op natively, through a slower route, or not at all, and the per-generation limits. See optable.h.
 *
 * Source of every entry (unless stated otherwise): sbryngelson/ANEForge (MIT) docs/op-catalog.md and
 * docs/capabilities.md @ 067717ab, measured on A13 (M1) and A16-class (M5) silicon with the other
 * generations read from the compiler's per-family capability floors. That project compiles for the
 * Neural Engine directly; Core ML adds its own placement on top, so a "native" here is necessary for
 * the Neural Engine, never sufficient. Only facts were carried over (statuses, limits), no text. */
#include "optable.h"
#include <stdlib.h>
#include <string.h>

static const char *const chip_names[MLSH_CHIP_COUNT] = {"A13", "A14", "A15", "A16"};
static const char *const chip_status_names[MLSH_CHIP_STATUS_COUNT] = {"unknown", "native", "emulated", "walled"};

const char *mlsh_chip_name(mlsh_chip c) { return ((int)c >= 0 && c < MLSH_CHIP_COUNT) ? chip_names[c] : NULL; }
const char *mlsh_chip_status_name(mlsh_chip_status s) {
  return ((int)s >= 0 && s < MLSH_CHIP_STATUS_COUNT) ? chip_status_names[s] : NULL;
}

#define COMM MLSH_SRC_COMMUNITY
#define CATALOG "sbryngelson/ANEForge docs/op-catalog.md @ 067717ab"
#define CAPS "sbryngelson/ANEForge docs/capabilities.md @ 067717ab (Dimension bounds, Per-family op floors)"
#define ISSUE17_KW                                                                                                    \
  "sbryngelson/ANEForge @ 067717ab: docs/op-catalog.md (conv: M1 fp16 kernels 13x13) and docs/capabilities.json "    \
  "(conv_kernel_ge16: K <= 15 on M5); A14/A15 = 13 as summarised in mlsh issue 17"

/* ---------------------------------------------------------------- chip conditions */

static const mlsh_chip_condition cc_kernel_width = {
  "max_kernel_width", "fp16 conv kernel width (last spatial axis) within the generation's cap",
  {13, 13, 13, 15}, COMM, ISSUE17_KW};
static const mlsh_chip_condition cc_axis = {
  "max_axis", "spatial / contraction extents (flat W/H, matmul K, conv spatial) within the generation's cap",
  {16384, 16384, 16384, 65536}, COMM, CAPS};

static const mlsh_chip_condition *const general_conds[] = {&cc_axis};
size_t mlsh_chip_general_condition_count(void) { return sizeof general_conds / sizeof general_conds[0]; }
const mlsh_chip_condition *mlsh_chip_general_condition_at(size_t i) {
  return i < mlsh_chip_general_condition_count() ? general_conds[i] : NULL;
}

/* ---------------------------------------------------------------- columns */

#define N MLSH_CHIP_NATIVE
#define E MLSH_CHIP_EMULATED
#define W MLSH_CHIP_WALLED
#define U MLSH_CHIP_UNKNOWN

static const mlsh_chip_column COL_UNKNOWN = {{U, U, U, U}, NULL, COMM, NULL, {NULL}};
static const mlsh_chip_column COL_NATIVE = {{N, N, N, N}, NULL, COMM, CATALOG, {NULL}};
static const mlsh_chip_column COL_CONV = {{N, N, N, N}, "kernel width capped per generation", COMM, CATALOG,
                                          {&cc_kernel_width}};
static const mlsh_chip_column COL_WALLED = {{W, W, W, W}, "unsupported on every generation", COMM, CATALOG, {NULL}};
static const mlsh_chip_column COL_A14 = {{W, N, N, N}, "native from A14 (codegen rejects it on A13)", COMM, CATALOG,
                                         {NULL}};
static const mlsh_chip_column COL_A14_TEXTURE = {{W, N, N, N}, "texture-engine op, A14 and later", COMM, CATALOG,
                                                 {NULL}};
static const mlsh_chip_column COL_A15 = {{W, W, N, N}, "native from A15 (rejected on A13 and A14)", COMM, CATALOG,
                                         {NULL}};
static const mlsh_chip_column COL_A14_RESIZE = {
  {E, N, N, N}, "software fallback on A13 (different rounding), native from A14", COMM, CATALOG, {NULL}};
static const mlsh_chip_column COL_GATHER_ND = {
  {E, N, N, N}, "A13 only inside a narrow envelope (batch 1, depth 1), native from A14", COMM, CATALOG, {NULL}};

/* Sorted by name (strcmp order) for bsearch. Ops not listed have no per-chip fact. */
struct chip_entry {
  const char *op;
  const mlsh_chip_column *col;
};
static const struct chip_entry columns[] = {
  {"abs", &COL_NATIVE}, {"acos", &COL_WALLED}, {"add", &COL_NATIVE}, {"affine", &COL_A14_TEXTURE},
  {"argsort", &COL_A14}, {"asin", &COL_WALLED}, {"atan", &COL_NATIVE}, {"atanh", &COL_WALLED},
  {"avg_pool", &COL_NATIVE}, {"band_part", &COL_WALLED}, {"batch_norm", &COL_NATIVE},
  {"batch_to_space", &COL_NATIVE}, {"cast", &COL_NATIVE}, {"ceil", &COL_NATIVE}, {"clamped_relu", &COL_NATIVE},
  {"clip", &COL_NATIVE}, {"concat", &COL_NATIVE}, {"conv", &COL_CONV}, {"conv_transpose", &COL_CONV},
  {"cos", &COL_A15}, {"cosh", &COL_WALLED}, {"crop", &COL_NATIVE}, {"crop_resize", &COL_A14_TEXTURE},
  {"cumsum", &COL_NATIVE}, {"depth_to_space", &COL_NATIVE}, {"dequantize", &COL_NATIVE}, {"einsum", &COL_NATIVE},
  {"elu", &COL_NATIVE}, {"equal", &COL_NATIVE}, {"erf", &COL_NATIVE}, {"exp", &COL_NATIVE}, {"exp2", &COL_NATIVE},
  {"expand_dims", &COL_NATIVE}, {"fill", &COL_NATIVE}, {"fill_like", &COL_NATIVE}, {"flatten2d", &COL_NATIVE},
  {"floor", &COL_NATIVE}, {"floor_div", &COL_NATIVE}, {"gather", &COL_NATIVE}, {"gather_along_axis", &COL_NATIVE},
  {"gather_nd", &COL_GATHER_ND}, {"gelu", &COL_NATIVE}, {"greater", &COL_NATIVE}, {"greater_equal", &COL_NATIVE},
  {"gru", &COL_WALLED}, {"identity", &COL_NATIVE}, {"instance_norm", &COL_NATIVE}, {"inverse", &COL_NATIVE},
  {"l2_norm", &COL_NATIVE}, {"l2_pool", &COL_NATIVE}, {"layer_norm", &COL_NATIVE}, {"leaky_relu", &COL_NATIVE},
  {"less", &COL_NATIVE}, {"less_equal", &COL_NATIVE}, {"linear", &COL_NATIVE}, {"linear_activation", &COL_NATIVE},
  {"list_gather", &COL_WALLED}, {"list_length", &COL_WALLED}, {"list_read", &COL_WALLED},
  {"list_scatter", &COL_WALLED}, {"list_write", &COL_WALLED}, {"local_response_norm", &COL_NATIVE},
  {"log", &COL_NATIVE}, {"logical_and", &COL_WALLED}, {"logical_not", &COL_NATIVE}, {"logical_or", &COL_WALLED},
  {"logical_xor", &COL_WALLED}, {"lstm", &COL_WALLED}, {"make_list", &COL_WALLED}, {"matmul", &COL_NATIVE},
  {"max_pool", &COL_NATIVE}, {"maximum", &COL_NATIVE}, {"minimum", &COL_NATIVE}, {"mod", &COL_WALLED},
  {"mul", &COL_NATIVE}, {"non_zero", &COL_WALLED}, {"not_equal", &COL_NATIVE}, {"one_hot", &COL_WALLED},
  {"pad", &COL_NATIVE}, {"pixel_shuffle", &COL_NATIVE}, {"pixel_unshuffle", &COL_NATIVE}, {"pow", &COL_NATIVE},
  {"prelu", &COL_NATIVE}, {"quantize", &COL_NATIVE}, {"random_bernoulli", &COL_WALLED},
  {"random_categorical", &COL_WALLED}, {"random_normal", &COL_WALLED}, {"random_uniform", &COL_A15},
  {"read_state", &COL_NATIVE}, {"real_div", &COL_NATIVE}, {"reduce_argmax", &COL_NATIVE},
  {"reduce_argmin", &COL_A15}, {"reduce_l1_norm", &COL_NATIVE}, {"reduce_l2_norm", &COL_NATIVE},
  {"reduce_log_sum", &COL_NATIVE}, {"reduce_log_sum_exp", &COL_NATIVE}, {"reduce_max", &COL_NATIVE},
  {"reduce_mean", &COL_NATIVE}, {"reduce_min", &COL_NATIVE}, {"reduce_prod", &COL_WALLED},
  {"reduce_sum", &COL_NATIVE}, {"reduce_sum_square", &COL_NATIVE}, {"relu", &COL_NATIVE}, {"relu6", &COL_NATIVE},
  {"resample", &COL_A14_TEXTURE}, {"reshape", &COL_NATIVE}, {"reshape_like", &COL_NATIVE},
  {"resize", &COL_A14_RESIZE}, {"resize_bilinear", &COL_A14_RESIZE}, {"resize_nearest_neighbor", &COL_A14_RESIZE},
  {"reverse", &COL_NATIVE}, {"reverse_sequence", &COL_WALLED}, {"rnn", &COL_WALLED}, {"round", &COL_NATIVE},
  {"rsqrt", &COL_NATIVE}, {"scaled_dot_product_attention", &COL_NATIVE}, {"scaled_tanh", &COL_NATIVE},
  {"scatter", &COL_WALLED}, {"scatter_along_axis", &COL_WALLED}, {"scatter_nd", &COL_WALLED},
  {"select", &COL_NATIVE}, {"shape", &COL_WALLED}, {"sigmoid", &COL_NATIVE}, {"sigmoid_hard", &COL_NATIVE},
  {"sign", &COL_NATIVE}, {"silu", &COL_NATIVE}, {"sin", &COL_A15}, {"sinh", &COL_WALLED},
  {"slice_by_size", &COL_NATIVE}, {"slice_update", &COL_NATIVE}, {"sliding_windows", &COL_WALLED},
  {"softmax", &COL_NATIVE}, {"softplus", &COL_NATIVE}, {"softplus_parametric", &COL_NATIVE},
  {"softsign", &COL_NATIVE}, {"space_to_batch", &COL_NATIVE}, {"space_to_depth", &COL_NATIVE},
  {"split", &COL_NATIVE}, {"sqrt", &COL_NATIVE}, {"square", &COL_NATIVE}, {"squeeze", &COL_NATIVE},
  {"stack", &COL_NATIVE}, {"sub", &COL_NATIVE}, {"tan", &COL_WALLED}, {"tanh", &COL_NATIVE},
  {"threshold", &COL_NATIVE}, {"thresholded_relu", &COL_NATIVE}, {"tile", &COL_NATIVE}, {"topk", &COL_A14},
  {"transpose", &COL_NATIVE}, {"upsample_bilinear", &COL_A14_RESIZE},
  {"upsample_nearest_neighbor", &COL_A14_RESIZE}, {"write_state", &COL_NATIVE},
};

static int col_cmp(const void *key, const void *elem) {
  return strcmp((const char *)key, ((const struct chip_entry *)elem)->op);
}

const mlsh_chip_column *mlsh_op_chips(const mlsh_op *op) {
  if (!op || !op->name) return &COL_UNKNOWN;
  const void *hit = bsearch(op->name, columns, sizeof columns / sizeof columns[0], sizeof columns[0], col_cmp);
  if (!hit) return &COL_UNKNOWN;
  return ((const struct chip_entry *)hit)->col;
}
