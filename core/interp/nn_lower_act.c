/* nn_lower_act.c — activation (every NonlinearityType, on the MIL activation kernels; PReLU and
 * parametricSoftplus per channel on [N, C, H, W] views), softmax (over C) and softmaxND, unary
 * (nn_unary), reduce (legacy: over C/H/W combinations, on reduce_*), the elementwise unary ND
 * layers and clip. */
#include "nn_lower.h"
#include <string.h>

#define CASE(x) CORE_ML__SPECIFICATION__NEURAL_NETWORK_LAYER__LAYER_##x
#define ACT(x) CORE_ML__SPECIFICATION__ACTIVATION_PARAMS__NONLINEARITY_TYPE_##x

static const char *const AB[2] = {"alpha", "beta"};

static int activation(nn_b *B, const nn_layer *l) {
  const CoreML__Specification__ActivationParams *a = l->activation;
  /* the member message of the oneof (Opaque in the schema subset): alpha = 1, beta = 2 */
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(&core_ml__specification__activation_params__descriptor, (unsigned)a->nonlinearity_type_case);
  const ProtobufCMessage *pm = f ? *(ProtobufCMessage *const *)((const char *)a + f->offset) : NULL;
  nnw_msg m = pm ? nnw_of(pm) : nnw_raw(NULL, 0);
  double ab[2] = {nnw_f32(&m, 1, 0), nnw_f32(&m, 2, 0)};
  switch (a->nonlinearity_type_case) {
  case ACT(RE_LU): return nn_simple(B, l, "relu", 0, 0, NULL, NULL);
  case ACT(TANH): return nn_simple(B, l, "tanh", 0, 0, NULL, NULL);
  case ACT(SIGMOID): return nn_simple(B, l, "sigmoid", 0, 0, NULL, NULL);
  case ACT(SOFTSIGN): return nn_simple(B, l, "softsign", 0, 0, NULL, NULL);
  case ACT(SOFTPLUS): return nn_simple(B, l, "softplus", 0, 0, NULL, NULL);
  case ACT(LEAKY_RE_LU): return nn_simple(B, l, "leaky_relu", 0, 1, AB, ab);
  case ACT(THRESHOLDED_RE_LU): return nn_simple(B, l, "thresholded_relu", 0, 1, AB, ab);
  case ACT(ELU): return nn_simple(B, l, "elu", 0, 1, AB, ab);
  case ACT(LINEAR): return nn_simple(B, l, "linear_activation", 0, 2, AB, ab);
  case ACT(SCALED_TANH): return nn_simple(B, l, "scaled_tanh", 0, 2, AB, ab);
  case ACT(SIGMOID_HARD): return nn_simple(B, l, "sigmoid_hard", 0, 2, AB, ab);
  case ACT(PRE_LU):
  case ACT(PARAMETRIC_SOFTPLUS): {
    int sp = a->nonlinearity_type_case == ACT(PARAMETRIC_SOFTPLUS);
    it_op *op = nn_layer_op(B, l, NULL, nn_k(sp ? "softplus_parametric" : "prelu"), NN_FOLD4, 0);
    if (!op) return -1;
    for (unsigned k = 1; k <= (unsigned)(sp ? 2 : 1); k++) {
      nnw_msg w = nnw_sub(&m, k, NULL);
      CoreML__Specification__WeightParams *wp =
          (void *)protobuf_c_message_unpack(&core_ml__specification__weight_params__descriptor, NULL, w.n, w.p ? w.p : (const uint8_t *)"");
      if (!wp) return nn_fail(B, "malformed %s", AB[k - 1]);
      size_t n = wp->n_floatvalue ? wp->n_floatvalue : wp->float16value.len / 2;
      protobuf_c_message_free_unpacked(&wp->base, NULL);
      int64_t s[1] = {(int64_t)n};
      if (n == 0) return nn_fail(B, "%s has no values", AB[k - 1]);
      if (nn_imm(B, op, AB[k - 1], nn_weights_raw(B, w, n, 1, s, AB[k - 1])) != 0) return -1;
    }
    return nn_layer_outs(B, op, l);
  }
  default: return nn_fail(B, "activation has no nonlinearity");
  }
}

static int softmax(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t axis = l->layer_case == CASE(SOFTMAX) ? -3 : nnw_i64(&m, 1, -1);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("softmax"), 0, 0);
  if (!op || nn_immi(B, op, "axis", axis) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int unary(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  float eps = nnw_f32(&m, 3, 0), sc = nnw_f32(&m, 5, 0);
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_unary, 0, 0);
  if (!op || nn_immi(B, op, "fn", (int64_t)nnw_u64(&m, 1, 0)) || nn_immf(B, op, "alpha", nnw_f32(&m, 2, 0)) ||
      nn_immf(B, op, "epsilon", eps != 0 ? eps : 1e-6) || nn_immf(B, op, "shift", nnw_f32(&m, 4, 0)) ||
      nn_immf(B, op, "scale", sc != 0 ? sc : 1))
    return -1;
  return nn_layer_outs(B, op, l);
}

/* reduce (legacy): mode SUM AVG PROD LOGSUM SUMSQUARE L1 L2 MAX MIN ARGMAX over CHW/HW/C/H/W. */
static int reduce(nn_b *B, const nn_layer *l) {
  static const char *const ops[10] = {"reduce_sum", "reduce_mean", "reduce_prod", "reduce_log_sum", "reduce_sum_square",
                                      "reduce_l1_norm", "reduce_l2_norm", "reduce_max", "reduce_min", "reduce_argmax"};
  static const int64_t axes[5][3] = {{-3, -2, -1}, {-2, -1, 0}, {-3, 0, 0}, {-2, 0, 0}, {-1, 0, 0}};
  static const int na[5] = {3, 2, 1, 1, 1};
  nnw_msg m = nn_params(l);
  uint64_t mode = nnw_u64(&m, 1, 0), ax = nnw_u64(&m, 3, 0);
  if (mode > 9 || ax > 4) return nn_fail(B, "unknown reduce mode %llu / axis %llu", (unsigned long long)mode, (unsigned long long)ax);
  it_op *op = nn_layer_op(B, l, NULL, nn_k(ops[mode]), 0, 0);
  if (!op || nn_immb(B, op, "keep_dims", 1) != 0) return -1;
  if (mode == 9) {
    if (na[ax] != 1) return nn_fail(B, "ARGMAX reduces over one axis only");
    if (nn_immi(B, op, "axis", axes[ax][0]) != 0) return -1;
    if (nn_layer_outs(B, op, l) != 0) return -1;
    op->out_types[0].dt = MLSH_DT_INT32; /* the kernel writes integer indices */
    return 0;
  } else if (nn_immv(B, op, "axes", axes[ax], na[ax]) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

/* reduceSum ... reduceLogSumExp (ND): axes = 1, keepDims = 2, reduceAll = 3. */
static int reduce_nd(nn_b *B, const nn_layer *l) {
  static const struct { int kase; const char *op; } T[] = {
    {CASE(REDUCE_L1), "reduce_l1_norm"}, {CASE(REDUCE_L2), "reduce_l2_norm"}, {CASE(REDUCE_MAX), "reduce_max"},
    {CASE(REDUCE_MIN), "reduce_min"}, {CASE(REDUCE_SUM), "reduce_sum"}, {CASE(REDUCE_PROD), "reduce_prod"},
    {CASE(REDUCE_MEAN), "reduce_mean"}, {CASE(REDUCE_LOG_SUM), "reduce_log_sum"}, {CASE(REDUCE_SUM_SQUARE), "reduce_sum_square"},
    {CASE(REDUCE_LOG_SUM_EXP), "reduce_log_sum_exp"}};
  const char *name = NULL;
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
    if (T[i].kase == (int)l->layer_case) name = T[i].op;
  nnw_msg m = nn_params(l);
  int64_t axes[IT_MAX_RANK];
  size_t n = nnw_ints(&m, 1, axes, IT_MAX_RANK);
  it_op *op = nn_layer_op(B, l, NULL, nn_k(name), 0, 0);
  if (!op || nn_immb(B, op, "keep_dims", (int)nnw_u64(&m, 2, 0)) != 0) return -1;
  if (!nnw_u64(&m, 3, 0) && n > 0 && nn_immv(B, op, "axes", axes, (int)(n > IT_MAX_RANK ? IT_MAX_RANK : n)) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

/* The parameterless elementwise unary ND layers: the MIL kernel of the same meaning. */
static const struct { int kase; const char *op; } UNARY[] = {
  {CASE(CEIL), "ceil"}, {CASE(FLOOR), "floor"}, {CASE(SIGN), "sign"}, {CASE(ROUND), "round"}, {CASE(EXP2), "exp2"},
  {CASE(SIN), "sin"}, {CASE(COS), "cos"}, {CASE(TAN), "tan"}, {CASE(ASIN), "asin"}, {CASE(ACOS), "acos"},
  {CASE(ATAN), "atan"}, {CASE(SINH), "sinh"}, {CASE(COSH), "cosh"}, {CASE(TANH), "tanh"}, {CASE(ASINH), "asinh"},
  {CASE(ACOSH), "acosh"}, {CASE(ATANH), "atanh"}, {CASE(ERF), "erf"}, {CASE(LOGICAL_NOT), "logical_not"}};

static int unary_nd(nn_b *B, const nn_layer *l) {
  for (size_t i = 0; i < sizeof UNARY / sizeof UNARY[0]; i++)
    if (UNARY[i].kase == (int)l->layer_case) return nn_simple(B, l, UNARY[i].op, 0, 0, NULL, NULL);
  return nn_fail(B, "no unary kernel");
}

static int clip(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  double ab[2] = {nnw_f32(&m, 1, 0), nnw_f32(&m, 2, 0)};
  return nn_simple(B, l, "clip", 0, 2, AB, ab);
}

static int clamped_relu(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  double ab[2] = {nnw_f32(&m, 1, 0), nnw_f32(&m, 2, 0)};
  return nn_simple(B, l, "clamped_relu", 0, 2, AB, ab);
}

const nn_lowering nn_lower_act[] = {
  {CASE(ACTIVATION), activation}, {CASE(SOFTMAX), softmax}, {CASE(SOFTMAX_ND), softmax}, {CASE(UNARY), unary},
  {CASE(REDUCE), reduce}, {CASE(REDUCE_L1), reduce_nd}, {CASE(REDUCE_L2), reduce_nd}, {CASE(REDUCE_MAX), reduce_nd},
  {CASE(REDUCE_MIN), reduce_nd}, {CASE(REDUCE_SUM), reduce_nd}, {CASE(REDUCE_PROD), reduce_nd}, {CASE(REDUCE_MEAN), reduce_nd},
  {CASE(REDUCE_LOG_SUM), reduce_nd}, {CASE(REDUCE_SUM_SQUARE), reduce_nd}, {CASE(REDUCE_LOG_SUM_EXP), reduce_nd},
  {CASE(CEIL), unary_nd}, {CASE(FLOOR), unary_nd}, {CASE(SIGN), unary_nd}, {CASE(ROUND), unary_nd}, {CASE(EXP2), unary_nd},
  {CASE(SIN), unary_nd}, {CASE(COS), unary_nd}, {CASE(TAN), unary_nd}, {CASE(ASIN), unary_nd}, {CASE(ACOS), unary_nd},
  {CASE(ATAN), unary_nd}, {CASE(SINH), unary_nd}, {CASE(COSH), unary_nd}, {CASE(TANH), unary_nd}, {CASE(ASINH), unary_nd},
  {CASE(ACOSH), unary_nd}, {CASE(ATANH), unary_nd}, {CASE(ERF), unary_nd}, {CASE(LOGICAL_NOT), unary_nd},
  {CASE(CLIP), clip}, {CASE(CLAMPED_RE_LU), clamped_relu}, {0, NULL},
};
