/* nn_lower_nd.c — the exact-rank (ND) layers converters emit, each on the MIL kernel of the same
 * meaning: the *Broadcastable arithmetic and comparisons (numpy broadcasting), transpose,
 * concatND, splitND, reshapeStatic / rankPreservingReshape, squeeze, expandDims, flattenTo2D,
 * sliceStatic, gather, gatherND, gatherAlongAxis, argMax/argMin, tile, stack, reverse, cumSum,
 * topK, layerNormalization, whereBroadcastable, constantPad, matrixBandPart, reorganizeData and
 * oneHot. */
#include "nn_lower.h"
#include <string.h>

#define CASE(x) CORE_ML__SPECIFICATION__NEURAL_NETWORK_LAYER__LAYER_##x

/* alpha: the comparison layers' scalar field used when there is one input (y = x OP alpha). */
static const struct { int kase; const char *op; unsigned alpha; } BINARY[] = {
  {CASE(ADD_BROADCASTABLE), "add", 0}, {CASE(SUBTRACT_BROADCASTABLE), "sub", 0}, {CASE(MULTIPLY_BROADCASTABLE), "mul", 0},
  {CASE(DIVIDE_BROADCASTABLE), "real_div", 0}, {CASE(FLOOR_DIV_BROADCASTABLE), "floor_div", 0}, {CASE(MOD_BROADCASTABLE), "mod", 0},
  {CASE(POW_BROADCASTABLE), "pow", 0}, {CASE(MAX_BROADCASTABLE), "maximum", 0}, {CASE(MIN_BROADCASTABLE), "minimum", 0},
  {CASE(EQUAL), "equal", 1}, {CASE(NOT_EQUAL), "not_equal", 1}, {CASE(LESS_THAN), "less", 2}, {CASE(LESS_EQUAL), "less_equal", 2},
  {CASE(GREATER_THAN), "greater", 2}, {CASE(GREATER_EQUAL), "greater_equal", 2}, {CASE(LOGICAL_AND), "logical_and", 0},
  {CASE(LOGICAL_OR), "logical_or", 0}, {CASE(LOGICAL_XOR), "logical_xor", 0}};

static int binary(nn_b *B, const nn_layer *l) {
  const char *mil = NULL;
  unsigned alpha = 0;
  for (size_t i = 0; i < sizeof BINARY / sizeof BINARY[0]; i++)
    if (BINARY[i].kase == (int)l->layer_case) { mil = BINARY[i].op; alpha = BINARY[i].alpha; }
  if (l->n_input != 2 && !(alpha && l->n_input == 1))
    return nn_fail(B, alpha ? "needs 1 or 2 inputs, has %zu" : "needs 2 inputs, has %zu", l->n_input);
  it_op *op = nn_layer_op(B, l, NULL, nn_k(mil), 0, 0);
  if (!op) return -1;
  if (l->n_input == 1) {
    nnw_msg m = nn_params(l);
    if (nn_immf(B, op, "y", nnw_f32(&m, alpha, 0)) != 0) return -1;
  } else if (nn_arg(B, op, "y", nn_layer_in(B, l, 1)) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

/* One op on input 0 with an int vector parameter read from field `f` (absent: not set). */
static int with_ints(nn_b *B, const nn_layer *l, const char *mil, unsigned f, const char *param) {
  nnw_msg m = nn_params(l);
  int64_t v[IT_MAX_RANK];
  size_t n = nnw_ints(&m, f, v, IT_MAX_RANK);
  if (n > IT_MAX_RANK) return nn_fail(B, "too many values for %s", param);
  it_op *op = nn_layer_op(B, l, NULL, mil ? nn_k(mil) : &nn_k_reshape_to, 0, 0);
  if (!op || (n && nn_immv(B, op, param, v, (int)n) != 0)) return -1;
  return nn_layer_outs(B, op, l);
}

static int transpose(nn_b *B, const nn_layer *l) { return with_ints(B, l, "transpose", 1, "perm"); }
static int reshape_static(nn_b *B, const nn_layer *l) { return with_ints(B, l, NULL, 1, "shape"); }
static int expand_dims(nn_b *B, const nn_layer *l) { return with_ints(B, l, "expand_dims", 1, "axes"); }

static int squeeze(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  if (nnw_u64(&m, 2, 0)) return nn_simple(B, l, "squeeze", 0, 0, NULL, NULL);
  return with_ints(B, l, "squeeze", 1, "axes");
}

static int concat_nd(nn_b *B, const nn_layer *l) {
  int slots[64];
  if (l->n_input == 0 || l->n_input > 64) return nn_fail(B, "needs 1 to 64 inputs");
  for (size_t i = 0; i < l->n_input; i++)
    if ((slots[i] = nn_layer_in(B, l, i)) < 0) return -1;
  it_op *op = nn_layer_op(B, l, NULL, nn_k("concat"), 0, 1);
  if (!op || nn_args(B, op, "values", slots, (int)l->n_input) || nn_immi(B, op, "axis", l->concatnd->axis) ||
      nn_immb(B, op, "interleave", l->concatnd->interleave))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int split_nd(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t sizes[IT_MAX_OUT];
  size_t n = nnw_ints(&m, 3, sizes, IT_MAX_OUT);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("split"), 0, 0);
  if (!op || nn_immi(B, op, "axis", nnw_i64(&m, 1, 0)) != 0) return -1;
  if (n > 0 && n <= IT_MAX_OUT ? nn_immv(B, op, "split_sizes", sizes, (int)n) : nn_immi(B, op, "num_splits", (int64_t)l->n_output)) return -1;
  return nn_layer_outs(B, op, l);
}

static int flatten_2d(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("flatten2d"), 0, 0);
  if (!op || nn_immi(B, op, "axis", nnw_i64(&m, 1, 1)) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int bools(nnw_msg *m, unsigned f, int64_t *v, size_t n) {
  size_t k = nnw_ints(m, f, v, n);
  return k == n || k == 0 ? 0 : -1;
}

static int slice_static(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t b[IT_MAX_RANK], e[IT_MAX_RANK], s[IT_MAX_RANK], bm[IT_MAX_RANK] = {0}, em[IT_MAX_RANK] = {0}, sq[IT_MAX_RANK] = {0};
  size_t n = nnw_ints(&m, 1, b, IT_MAX_RANK);
  if (n == 0 || n > IT_MAX_RANK || nnw_ints(&m, 3, e, IT_MAX_RANK) != n || nnw_ints(&m, 5, s, IT_MAX_RANK) != n ||
      bools(&m, 2, bm, n) || bools(&m, 4, em, n) || bools(&m, 6, sq, n))
    return nn_fail(B, "beginIds, endIds, strides and masks must have the same length");
  it_op *op = nn_layer_op(B, l, NULL, nn_k("slice_by_index"), 0, 0);
  int k = (int)n;
  if (!op || nn_immv(B, op, "begin", b, k) || nn_immv(B, op, "end", e, k) || nn_immv(B, op, "stride", s, k) ||
      nn_immv(B, op, "begin_mask", bm, k) || nn_immv(B, op, "end_mask", em, k) || nn_immv(B, op, "squeeze_mask", sq, k))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int gather(nn_b *B, const nn_layer *l) {
  it_op *op = nn_layer_op(B, l, NULL, nn_k("gather"), 0, 0);
  if (!op || nn_arg(B, op, "indices", nn_layer_in(B, l, 1)) || nn_immi(B, op, "axis", l->gather->axis)) return -1;
  return nn_layer_outs(B, op, l);
}

static int gather_more(nn_b *B, const nn_layer *l) {
  int nd = l->layer_case == CASE(GATHER_ND);
  nnw_msg m = nn_params(l);
  it_op *op = nn_layer_op(B, l, NULL, nn_k(nd ? "gather_nd" : "gather_along_axis"), 0, 0);
  if (!op || nn_arg(B, op, "indices", nn_layer_in(B, l, 1)) || (!nd && nn_immi(B, op, "axis", nnw_i64(&m, 1, 0)))) return -1;
  return nn_layer_outs(B, op, l);
}

/* argMax / argMin: axis = 1, removeDim = 2; integer indices. */
static int arg_reduce(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  it_op *op = nn_layer_op(B, l, NULL, nn_k(l->layer_case == CASE(ARG_MAX) ? "reduce_argmax" : "reduce_argmin"), 0, 0);
  if (!op || nn_immi(B, op, "axis", nnw_i64(&m, 1, 0)) || nn_immb(B, op, "keep_dims", !nnw_u64(&m, 2, 0)) || nn_layer_outs(B, op, l))
    return -1;
  op->out_types[0].dt = MLSH_DT_INT32;
  return 0;
}

static int tile(nn_b *B, const nn_layer *l) {
  if (l->n_input > 1) return nn_fail(B, "a tile with dynamic repetitions (2 inputs) is not supported");
  return with_ints(B, l, "tile", 1, "reps");
}

static int stack(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int slots[64];
  if (l->n_input == 0 || l->n_input > 64) return nn_fail(B, "needs 1 to 64 inputs");
  for (size_t i = 0; i < l->n_input; i++)
    if ((slots[i] = nn_layer_in(B, l, i)) < 0) return -1;
  it_op *op = nn_layer_op(B, l, NULL, nn_k("stack"), 0, 1);
  if (!op || nn_args(B, op, "values", slots, (int)l->n_input) || nn_immi(B, op, "axis", nnw_i64(&m, 1, 0))) return -1;
  return nn_layer_outs(B, op, l);
}

static int reverse(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t dims[IT_MAX_RANK], axes[IT_MAX_RANK];
  size_t n = nnw_ints(&m, 1, dims, IT_MAX_RANK);
  int na = 0;
  for (size_t i = 0; i < n && i < IT_MAX_RANK; i++)
    if (dims[i]) axes[na++] = (int64_t)i;
  it_op *op = nn_layer_op(B, l, NULL, nn_k("reverse"), 0, 0);
  if (!op || nn_immv(B, op, "axes", axes, na)) return -1;
  return nn_layer_outs(B, op, l);
}

static int cumsum(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  if (l->n_input > 1) return nn_fail(B, "a cumSum with a dynamic axis (2 inputs) is not supported");
  it_op *op = nn_layer_op(B, l, NULL, nn_k("cumsum"), 0, 0);
  if (!op || nn_immi(B, op, "axis", nnw_i64(&m, 1, 0)) || nn_immb(B, op, "exclusive", (int)nnw_u64(&m, 2, 0)) ||
      nn_immb(B, op, "reverse", (int)nnw_u64(&m, 3, 0)))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int topk(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  if (l->n_input > 1) return nn_fail(B, "a topK with a dynamic K (2 inputs) is not supported");
  it_op *op = nn_layer_op(B, l, NULL, nn_k("topk"), 0, 0);
  if (!op || nn_immi(B, op, "k", (int64_t)nnw_u64(&m, 2, 1)) || nn_immi(B, op, "axis", nnw_i64(&m, 1, 0)) ||
      nn_immb(B, op, "ascending", (int)nnw_u64(&m, 3, 0)) || nn_layer_outs(B, op, l))
    return -1;
  if (op->nout > 1) op->out_types[1].dt = MLSH_DT_INT32;
  return 0;
}

static int layer_norm(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t shape[IT_MAX_RANK], axes[IT_MAX_RANK];
  size_t n = nnw_ints(&m, 1, shape, IT_MAX_RANK);
  if (n == 0 || n > IT_MAX_RANK) return nn_fail(B, "normalizedShape must have 1 to %d values", IT_MAX_RANK);
  size_t cnt = it_numel((int)n, shape);
  if (cnt == SIZE_MAX) return nn_fail(B, "bad normalizedShape");
  for (size_t i = 0; i < n; i++) axes[i] = (int64_t)i - (int64_t)n;
  it_op *op = nn_layer_op(B, l, NULL, nn_k("layer_norm"), 0, 0);
  if (!op || nn_immv(B, op, "axes", axes, (int)n) || nn_immf(B, op, "epsilon", nnw_f32(&m, 2, 1e-5f)) ||
      nn_imm(B, op, "gamma", nn_weights_raw(B, nnw_sub(&m, 3, NULL), cnt, (int)n, shape, "gamma")) ||
      nn_imm(B, op, "beta", nn_weights_raw(B, nnw_sub(&m, 4, NULL), cnt, (int)n, shape, "beta")))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int where(nn_b *B, const nn_layer *l) {
  if (l->n_input != 3) return nn_fail(B, "needs 3 inputs (condition, a, b)");
  it_op *op = nn_layer_op(B, l, NULL, nn_k("select"), 0, 1);
  if (!op || nn_arg(B, op, "cond", nn_layer_in(B, l, 0)) || nn_arg(B, op, "a", nn_layer_in(B, l, 1)) ||
      nn_arg(B, op, "b", nn_layer_in(B, l, 2)))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int constant_pad(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t pad[2 * IT_MAX_RANK];
  size_t n = nnw_ints(&m, 2, pad, 2 * IT_MAX_RANK);
  if (nnw_u64(&m, 3, 0)) return nn_fail(B, "padToGivenOutputSizeMode is not supported by the interpreter");
  if (n == 0 || n % 2 || n > 2 * IT_MAX_RANK) return nn_fail(B, "padAmounts must hold begin/end pairs");
  it_op *op = nn_layer_op(B, l, NULL, nn_k("pad"), 0, 0);
  if (!op || nn_immv(B, op, "pad", pad, (int)n) || nn_imms(B, op, "mode", "constant") || nn_immf(B, op, "constant_val", nnw_f32(&m, 1, 0)))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int band_part(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("band_part"), 0, 0);
  if (!op || nn_immi(B, op, "lower", nnw_i64(&m, 1, -1)) || nn_immi(B, op, "upper", nnw_i64(&m, 2, -1))) return -1;
  return nn_layer_outs(B, op, l);
}

static int reorganize(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  static const char *const ops[3] = {"space_to_depth", "depth_to_space", "pixel_shuffle"};
  uint64_t mode = nnw_u64(&m, 1, 0);
  if (mode > 2) return nn_fail(B, "unknown reorganizeData mode %llu", (unsigned long long)mode);
  it_op *op = nn_layer_op(B, l, NULL, nn_k(ops[mode]), NN_FOLD4, 0);
  if (!op || nn_immi(B, op, mode == 2 ? "upscale_factor" : "block_size", (int64_t)nnw_u64(&m, 2, 1))) return -1;
  return nn_layer_outs(B, op, l);
}

static int one_hot(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  if (l->n_input > 1) return nn_fail(B, "a oneHot with a dynamic size (2 inputs) is not supported");
  it_op *op = nn_layer_op(B, l, NULL, nn_k("one_hot"), 0, 1);
  if (!op || nn_arg(B, op, "indices", nn_layer_in(B, l, 0)) || nn_immi(B, op, "one_hot_vector_size", (int64_t)nnw_u64(&m, 1, 0)) ||
      nn_immi(B, op, "axis", nnw_i64(&m, 2, -1)) || nn_immf(B, op, "on_value", nnw_f32(&m, 3, 0)) ||
      nn_immf(B, op, "off_value", nnw_f32(&m, 4, 0)))
    return -1;
  return nn_layer_outs(B, op, l);
}

const nn_lowering nn_lower_nd[] = {
  {CASE(GATHER_ND), gather_more}, {CASE(GATHER_ALONG_AXIS), gather_more}, {CASE(ARG_MAX), arg_reduce},
  {CASE(ARG_MIN), arg_reduce}, {CASE(TILE), tile}, {CASE(STACK), stack}, {CASE(REVERSE), reverse}, {CASE(CUM_SUM), cumsum},
  {CASE(TOP_K), topk}, {CASE(LAYER_NORMALIZATION), layer_norm}, {CASE(WHERE_BROADCASTABLE), where},
  {CASE(CONSTANT_PAD), constant_pad}, {CASE(MATRIX_BAND_PART), band_part}, {CASE(REORGANIZE_DATA), reorganize},
  {CASE(ONE_HOT), one_hot},
  {CASE(ADD_BROADCASTABLE), binary}, {CASE(SUBTRACT_BROADCASTABLE), binary}, {CASE(MULTIPLY_BROADCASTABLE), binary},
  {CASE(DIVIDE_BROADCASTABLE), binary}, {CASE(FLOOR_DIV_BROADCASTABLE), binary}, {CASE(MOD_BROADCASTABLE), binary},
  {CASE(POW_BROADCASTABLE), binary}, {CASE(MAX_BROADCASTABLE), binary}, {CASE(MIN_BROADCASTABLE), binary},
  {CASE(EQUAL), binary}, {CASE(NOT_EQUAL), binary}, {CASE(LESS_THAN), binary}, {CASE(LESS_EQUAL), binary},
  {CASE(GREATER_THAN), binary}, {CASE(GREATER_EQUAL), binary}, {CASE(LOGICAL_AND), binary}, {CASE(LOGICAL_OR), binary},
  {CASE(LOGICAL_XOR), binary}, {CASE(TRANSPOSE), transpose}, {CASE(RESHAPE_STATIC), reshape_static},
  {CASE(RANK_PRESERVING_RESHAPE), reshape_static}, {CASE(EXPAND_DIMS), expand_dims}, {CASE(SQUEEZE), squeeze},
  {CASE(CONCAT_ND), concat_nd}, {CASE(SPLIT_ND), split_nd}, {CASE(FLATTEN_TO2_D), flatten_2d},
  {CASE(SLICE_STATIC), slice_static}, {CASE(GATHER), gather}, {0, NULL},
};
