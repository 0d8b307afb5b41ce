/* ops_quant.c — iOS17 activation quantization, computed at run time (not constexpr).
 * quantize(input fp16/fp32, scale, zero_point?, axis?, output_dtype "int8"/"uint8"):
 *   q = clip(round_half_even(input / scale) + zero_point, dtype range)
 * dequantize(input int8/uint8, scale fp16/fp32, zero_point?, axis?):
 *   out = scale * (input - zero_point), out dtype = scale's dtype.
 * scale and zero_point are scalars, or vectors of input.shape[axis] values applied along axis
 * (coremltools iOS17 quantization_ops.py); zero_point defaults to 0. */
#include "ops.h"
#include <math.h>
#include <string.h>

/* Per-element parameter index: 0 for scalars, else the coordinate along axis. */
typedef struct {
  size_t inner, dim; /* elements after axis, size of axis */
  int vec;
} qaxis;

static int prepare(it_ctx *c, const it_tensor *x, const it_tensor *scale, const it_tensor *zp, qaxis *q) {
  memset(q, 0, sizeof *q);
  q->dim = 1;
  q->inner = 1;
  if (scale->st != IT_F32) return it_fail(c, "scale must be fp16 or fp32");
  if (scale->n == 0) return it_fail(c, "scale is empty");
  if (scale->rank > 1 || (zp && zp->rank > 1)) return it_fail(c, "scale and zero_point must be scalars or vectors");
  q->vec = scale->rank == 1 && !(scale->n == 1 && it_arg_count(c, "axis") == 0);
  if (zp && zp->n != scale->n) return it_fail(c, "zero_point has %zu values, scale %zu", zp->n, scale->n);
  if (q->vec) {
    if (it_arg_count(c, "axis") == 0) return it_fail(c, "a vector scale needs an axis");
    int a = it_axis(c, it_arg_int(c, "axis", 0), x->rank);
    if (a < 0) return -1;
    if ((int64_t)scale->n != x->shape[a])
      return it_fail(c, "scale has %zu values, input dimension %d has %lld", scale->n, a, (long long)x->shape[a]);
    q->dim = (size_t)x->shape[a];
    q->inner = it_inner(x, a + 1);
  }
  for (size_t i = 0; i < scale->n; i++)
    if (((const float *)scale->data)[i] == 0) return it_fail(c, "scale cannot be 0");
  return 0;
}

static size_t pidx(const qaxis *q, size_t i) { return q->vec ? i / q->inner % q->dim : 0; }

static int k_quantize(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "input"), *scale = x ? it_arg_req(c, "scale") : NULL, *zp = it_arg(c, "zero_point");
  if (!scale) return -1;
  const char *ods = it_arg_str(c, "output_dtype", NULL);
  if (!ods) return it_fail(c, "missing output_dtype");
  mlsh_dtype dt = strcmp(ods, "int8") == 0 ? MLSH_DT_INT8 : strcmp(ods, "uint8") == 0 ? MLSH_DT_UINT8 : MLSH_DT_INVALID;
  if (dt == MLSH_DT_INVALID) return it_fail(c, "output_dtype must be int8 or uint8, not '%s'", ods);
  if (x->st != IT_F32) return it_fail(c, "input must be fp16 or fp32");
  if (zp && zp->st != IT_I64) return it_fail(c, "zero_point must be int8 or uint8");
  qaxis q;
  if (prepare(c, x, scale, zp, &q) != 0) return -1;
  double lo = dt == MLSH_DT_INT8 ? -128 : 0, hi = dt == MLSH_DT_INT8 ? 127 : 255;
  it_tensor *o = it_out(c, 0, dt, x->rank, x->shape);
  if (!o) return -1;
  const float *X = x->data, *S = scale->data;
  int64_t *O = o->data;
  for (size_t i = 0; i < x->n; i++) {
    size_t p = pidx(&q, i);
    double v = nearbyint((double)(X[i] / S[p])) + (zp ? (double)((const int64_t *)zp->data)[p] : 0);
    v = v != v ? 0 : v < lo ? lo : v > hi ? hi : v;
    O[i] = (int64_t)v;
  }
  return 0;
}

static int k_dequantize(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "input"), *scale = x ? it_arg_req(c, "scale") : NULL, *zp = it_arg(c, "zero_point");
  if (!scale) return -1;
  if (x->st != IT_I64) return it_fail(c, "input must be int8 or uint8");
  if (zp && zp->st != IT_I64) return it_fail(c, "zero_point must be int8 or uint8");
  qaxis q;
  if (prepare(c, x, scale, zp, &q) != 0) return -1;
  it_tensor *o = it_out(c, 0, scale->dt, x->rank, x->shape);
  if (!o) return -1;
  const int64_t *X = x->data;
  const float *S = scale->data;
  float *O = o->data;
  for (size_t i = 0; i < x->n; i++) {
    size_t p = pidx(&q, i);
    O[i] = S[p] * (float)(X[i] - (zp ? ((const int64_t *)zp->data)[p] : 0));
  }
  return 0;
}

const it_kernel_def it_ops_quant[] = {
  {"quantize", k_quantize}, {"dequantize", k_dequantize}, {NULL, NULL},
};
