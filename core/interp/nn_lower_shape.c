/* nn_lower_shape.c — the legacy layers that move or combine values: add / multiply / average /
 * max / min over inputs (+ alpha with one input), concat (over C, or Seq), split (over C),
 * reshape, flatten, permute, slice, padding (pad), upsample (upsample_nearest_neighbor /
 * upsample_bilinear) and copy. */
#include "nn_lower.h"
#include <string.h>

#define CASE(x) CORE_ML__SPECIFICATION__NEURAL_NETWORK_LAYER__LAYER_##x

/* out = fold(mil, inputs) left to right; one input: op(x, alpha). avg: sum then * 1/n. */
static int combine(nn_b *B, const nn_layer *l, const char *mil, int avg) {
  nnw_msg m = nn_params(l);
  int acc = nn_layer_in(B, l, 0);
  if (acc < 0) return -1;
  size_t n = l->n_input;
  for (size_t i = 1; i <= (n > 1 ? n - 1 : 1); i++) {
    int last = i == (n > 1 ? n - 1 : 1) && !avg;
    it_op *op = nn_op(B, nn_layer_type(l), last ? l->name : nn_str(B, l->name, "acc"), nn_k(mil));
    if (!op || nn_arg(B, op, "x", acc) != 0) return -1;
    if (n > 1 ? nn_arg(B, op, "y", nn_layer_in(B, l, i)) != 0 : nn_immf(B, op, "y", nnw_f32(&m, 1, 0)) != 0) return -1;
    if (last) return nn_layer_outs(B, op, l);
    if ((acc = nn_out(B, op, nn_str(B, l->name, "acc"))) < 0) return -1;
  }
  it_op *op = nn_op(B, nn_layer_type(l), l->name, nn_k("mul"));
  if (!op || nn_arg(B, op, "x", acc) != 0 || nn_immf(B, op, "y", 1.0 / (double)(n ? n : 1)) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int add(nn_b *B, const nn_layer *l) { return combine(B, l, "add", 0); }
static int multiply(nn_b *B, const nn_layer *l) { return combine(B, l, "mul", 0); }
static int average(nn_b *B, const nn_layer *l) { return combine(B, l, "add", 1); }
static int maximum(nn_b *B, const nn_layer *l) { return combine(B, l, "maximum", 0); }
static int minimum(nn_b *B, const nn_layer *l) { return combine(B, l, "minimum", 0); }

static int all_inputs(nn_b *B, const nn_layer *l, it_op *op, const char *param) {
  int slots[64];
  if (l->n_input == 0 || l->n_input > 64) return nn_fail(B, "needs 1 to 64 inputs");
  for (size_t i = 0; i < l->n_input; i++)
    if ((slots[i] = nn_layer_in(B, l, i)) < 0) return -1;
  return nn_args(B, op, param, slots, (int)l->n_input);
}

static int concat(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("concat"), 0, 1);
  if (!op || all_inputs(B, l, op, "values") != 0 || nn_immi(B, op, "axis", nnw_u64(&m, 100, 0) ? -5 : -3) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int split(nn_b *B, const nn_layer *l) {
  it_op *op = nn_layer_op(B, l, NULL, nn_k("split"), 0, 0);
  if (!op || nn_immi(B, op, "num_splits", (int64_t)l->n_output) != 0 || nn_immi(B, op, "axis", -3) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int reshape(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t t[4];
  size_t n = nnw_ints(&m, 1, t, 4);
  if (nnw_u64(&m, 2, 0) != 0) return nn_fail(B, "CHANNEL_LAST reshape is not supported by the interpreter");
  if (n != 3 && n != 4) return nn_fail(B, "targetShape must have 3 or 4 values");
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_reshape_chw, 0, 0);
  if (!op || nn_immv(B, op, "shape", t, (int)n) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int flatten(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_flatten, 0, 0);
  if (!op || nn_immi(B, op, "mode", (int64_t)nnw_u64(&m, 1, 0)) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int permute(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t ax[4];
  if (nnw_ints(&m, 1, ax, 4) != 4) return nn_fail(B, "axis must have 4 values");
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_permute, 0, 0);
  if (!op || nn_immv(B, op, "axis", ax, 4) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int slice(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  uint64_t ax = nnw_u64(&m, 4, 0), st = nnw_u64(&m, 3, 1);
  if (ax > 2) return nn_fail(B, "unknown slice axis %llu", (unsigned long long)ax);
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_slice, 0, 0);
  if (!op || nn_immi(B, op, "axis", (int64_t)ax - 3) || nn_immi(B, op, "begin", nnw_i64(&m, 1, 0)) ||
      nn_immi(B, op, "end", nnw_i64(&m, 2, 0)) || nn_immi(B, op, "stride", st ? (int64_t)st : 1))
    return -1;
  return nn_layer_outs(B, op, l);
}

/* padding: constant (value) / reflection / replication over H and W by paddingAmounts. */
static int padding(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int has;
  const char *mode = "constant";
  double value = 0;
  nnw_msg k = nnw_sub(&m, 1, &has);
  if (has) value = nnw_f32(&k, 1, 0);
  else if (nnw_has(&m, 2)) mode = "reflect";
  else if (nnw_has(&m, 3)) mode = "replicate";
  int64_t pad[4] = {0, 0, 0, 0};
  nnw_msg ba = nnw_sub(&m, 10, NULL);
  size_t cur = 0, i = 0;
  nnw_field f;
  while (nnw_next(&ba, &cur, &f) && i < 2)
    if (f.field == 10 && f.wire == 2) {
      nnw_msg e = nnw_raw(f.data, f.len);
      pad[2 * i] = (int64_t)nnw_u64(&e, 1, 0);
      pad[2 * i + 1] = (int64_t)nnw_u64(&e, 2, 0);
      i++;
    }
  it_op *op = nn_layer_op(B, l, NULL, nn_k("pad"), 0, 0);
  if (!op || nn_immv(B, op, "pad", pad, 4) || nn_imms(B, op, "mode", mode) || nn_immf(B, op, "constant_val", value)) return -1;
  return nn_layer_outs(B, op, l);
}

static int upsample(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t sf[2] = {1, 1};
  double fr[2] = {0, 0}, s[2];
  size_t ni = nnw_ints(&m, 1, sf, 2), nf = nnw_reals(&m, 7, 0, fr, 2);
  for (int i = 0; i < 2; i++) s[i] = nf == 2 ? fr[i] : ni == 2 ? (double)sf[i] : 1;
  uint64_t mode = nnw_u64(&m, 5, 0), lin = nnw_u64(&m, 6, 0);
  /* bilinear DEFAULT: grid x_in = x_out * in / out (nn_dyn.c); ALIGN_CORNERS_TRUE / FALSE: upsample_bilinear */
  const it_kernel_def *k = mode != 1 ? nn_k("upsample_nearest_neighbor") : lin == 0 ? &nn_k_upsample_linear : nn_k("upsample_bilinear");
  it_op *op = nn_layer_op(B, l, NULL, k, 0, 0);
  if (!op || nn_immf(B, op, "scale_factor_height", s[0]) || nn_immf(B, op, "scale_factor_width", s[1])) return -1;
  if (mode == 1 && lin != 0 && nn_immb(B, op, "align_corners", lin == 1) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int copy(nn_b *B, const nn_layer *l) { return nn_simple(B, l, "identity", 0, 0, NULL, NULL); }

const nn_lowering nn_lower_shape[] = {
  {CASE(ADD), add}, {CASE(MULTIPLY), multiply}, {CASE(AVERAGE), average}, {CASE(MAX), maximum}, {CASE(MIN), minimum},
  {CASE(CONCAT), concat}, {CASE(SPLIT), split}, {CASE(RESHAPE), reshape}, {CASE(FLATTEN), flatten},
  {CASE(PERMUTE), permute}, {CASE(SLICE), slice}, {CASE(PADDING), padding}, {CASE(UPSAMPLE), upsample},
  {CASE(COPY), copy}, {0, NULL},
};
