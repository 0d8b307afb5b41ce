/* ops_norm.c — softmax, layer_norm, batch_norm, instance_norm, l2_norm, local_response_norm.
 * Means and variances accumulate in double; the result is written in float (and rounded to fp16
 * by the executor in fp16 programs). */
#include "ops.h"
#include "pool.h"
#include "act.h"
#include <math.h>
#include <string.h>

typedef struct { const float *X; float *O; size_t L, inner; } sm_job;
/* Rows [lo, hi) of outer * inner: each row a softmax over L values strided by inner. */
static void sm_range(void *ctx, size_t lo, size_t hi) {
  const sm_job *j = ctx;
  size_t L = j->L, inner = j->inner;
  for (size_t r = lo; r < hi; r++) {
    size_t a = r / inner, b = r % inner;
    const float *xp = j->X + a * L * inner + b;
    float *op = j->O + a * L * inner + b;
    float m = -INFINITY;
    for (size_t i = 0; i < L; i++) if (xp[i * inner] > m) m = xp[i * inner];
    double s = 0;
    if (inner == 1) s = it_exp_sum(xp, m, op, L); /* a contiguous row: vectorised */
    else
      for (size_t i = 0; i < L; i++) { float e = expf(xp[i * inner] - m); op[i * inner] = e; s += e; }
    float inv = (float)(1.0 / s);
    for (size_t i = 0; i < L; i++) op[i * inner] *= inv;
  }
}

static int k_softmax(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input");
  int ax = it_axis(c, it_arg_int(c, "axis", -1), x->rank);
  if (ax < 0) return -1;
  it_tensor *o = it_out_f(c, 0, x->rank, x->shape);
  if (!o) return -1;
  size_t L = x->rank ? (size_t)x->shape[ax] : 1, inner = it_inner(x, ax + 1), outer = it_outer(x, ax);
  sm_job j = {x->data, o->data, L, inner};
  it_parallel_range(outer * inner, L * 16, sm_range, &j);
  return 0;
}

typedef struct { const float *X; float *O; const it_tensor *gm, *bt; size_t inner; float eps; } ln_job;
static void ln_range(void *ctx, size_t lo, size_t hi) {
  const ln_job *j = ctx;
  size_t inner = j->inner;
  const float *g = j->gm && j->gm->st == IT_F32 ? j->gm->data : NULL, *b = j->bt && j->bt->st == IT_F32 ? j->bt->data : NULL;
  for (size_t a = lo; a < hi; a++) {
    const float *xp = j->X + a * inner;
    float *op = j->O + a * inner;
    double s = 0, ss = 0;
    for (size_t i = 0; i < inner; i++) s += xp[i];
    double mean = s / (double)(inner ? inner : 1);
    for (size_t i = 0; i < inner; i++) { double d = xp[i] - mean; ss += d * d; }
    float inv = (float)(1.0 / sqrt(ss / (double)(inner ? inner : 1) + j->eps)), mf = (float)mean;
    if (g && b) { /* the common case without a call per value; same arithmetic */
      for (size_t i = 0; i < inner; i++) op[i] = (xp[i] - mf) * inv * g[i] + b[i];
      continue;
    }
    for (size_t i = 0; i < inner; i++) {
      float v = (xp[i] - mf) * inv;
      if (j->gm) v *= (float)it_get_d(j->gm, i);
      if (j->bt) v += (float)it_get_d(j->bt, i);
      op[i] = v;
    }
  }
}

static int k_layer_norm(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *gm = it_arg(c, "gamma"), *bt = it_arg(c, "beta");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input");
  int64_t axes[IT_MAX_RANK];
  int na = it_arg_ints(c, "axes", axes, IT_MAX_RANK), red[IT_MAX_RANK] = {0};
  if (na < 0) for (int i = 0; i < x->rank; i++) red[i] = 1;
  for (int i = 0; i < na; i++) {
    int a = it_axis(c, axes[i], x->rank);
    if (a < 0) return -1;
    red[a] = 1;
  }
  int first = x->rank;
  for (int i = x->rank - 1; i >= 0 && red[i]; i--) first = i;
  for (int i = 0; i < first; i++)
    if (red[i]) return it_fail(c, "normalising over non-trailing axes is not supported");
  size_t inner = it_inner(x, first), outer = it_outer(x, first);
  if ((gm && gm->n != inner) || (bt && bt->n != inner)) return it_fail(c, "gamma/beta do not match the normalised shape");
  float eps = (float)it_arg_float(c, "epsilon", 1e-5);
  it_tensor *o = it_out_f(c, 0, x->rank, x->shape);
  if (!o) return -1;
  ln_job j = {x->data, o->data, gm, bt, inner, eps};
  it_parallel_range(outer, inner * 4, ln_range, &j);
  return 0;
}

/* Per-channel (axis 1) normalisation: batch_norm with given statistics, instance_norm with the
 * statistics of each (n, c) plane. */
static int channel_norm(it_ctx *c, int instance) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32 || x->rank < 2) return it_fail(c, "needs a float input of rank >= 2");
  it_tensor *mean = instance ? NULL : it_arg_req(c, "mean"), *var = instance ? NULL : it_arg_req(c, "variance");
  if (!instance && (!mean || !var)) return -1;
  it_tensor *gm = it_arg(c, "gamma"), *bt = it_arg(c, "beta");
  float eps = (float)it_arg_float(c, "epsilon", 1e-5);
  size_t N = (size_t)x->shape[0], C = (size_t)x->shape[1], inner = it_inner(x, 2);
  if ((mean && mean->n != C) || (var && var->n != C) || (gm && gm->n != C) || (bt && bt->n != C))
    return it_fail(c, "per-channel parameters must have %zu values", C);
  it_tensor *o = it_out_f(c, 0, x->rank, x->shape);
  if (!o) return -1;
  const float *X = x->data;
  float *O = o->data;
  for (size_t n = 0; n < N; n++)
    for (size_t ch = 0; ch < C; ch++) {
      const float *xp = X + (n * C + ch) * inner;
      float *op = O + (n * C + ch) * inner;
      double m, v;
      if (instance) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < inner; i++) s += xp[i];
        m = s / (double)(inner ? inner : 1);
        for (size_t i = 0; i < inner; i++) ss += (xp[i] - m) * (xp[i] - m);
        v = ss / (double)(inner ? inner : 1);
      } else { m = it_get_d(mean, ch); v = it_get_d(var, ch); }
      float scale = (float)(1.0 / sqrt(v + eps)) * (gm ? (float)it_get_d(gm, ch) : 1.0f);
      float shift = (bt ? (float)it_get_d(bt, ch) : 0.0f) - (float)m * scale;
      for (size_t i = 0; i < inner; i++) op[i] = xp[i] * scale + shift;
    }
  return 0;
}
static int k_batch_norm(it_ctx *c) { return channel_norm(c, 0); }
static int k_instance_norm(it_ctx *c) { return channel_norm(c, 1); }

/* l2_norm: x / sqrt(max(sum(x^2), epsilon)) over the last three dims (all dims after the first
 * for ranks below 4), per coremltools iOS15 normalization.py. */
static int k_l2_norm(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input");
  int from = x->rank > 3 ? x->rank - 3 : (x->rank > 1 ? 1 : 0);
  size_t inner = it_inner(x, from), outer = it_outer(x, from);
  float eps = (float)it_arg_float(c, "epsilon", 1e-6);
  it_tensor *o = it_out_f(c, 0, x->rank, x->shape);
  if (!o) return -1;
  for (size_t a = 0; a < outer; a++) {
    const float *xp = (const float *)x->data + a * inner;
    float *op = (float *)o->data + a * inner;
    double ss = 0;
    for (size_t i = 0; i < inner; i++) ss += (double)xp[i] * xp[i];
    float inv = (float)(1.0 / sqrt(ss > eps ? ss : eps));
    for (size_t i = 0; i < inner; i++) op[i] = xp[i] * inv;
  }
  return 0;
}

static int k_local_response_norm(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32 || x->rank < 3) return it_fail(c, "needs a float input of rank >= 3");
  int64_t size = it_arg_int(c, "size", 1);
  float alpha = (float)it_arg_float(c, "alpha", 1e-4), beta = (float)it_arg_float(c, "beta", 0.75), kk = (float)it_arg_float(c, "k", 1.0);
  if (size < 1) return it_fail(c, "size must be positive");
  size_t N = (size_t)x->shape[0], C = (size_t)x->shape[1], inner = it_inner(x, 2);
  it_tensor *o = it_out_f(c, 0, x->rank, x->shape);
  if (!o) return -1;
  const float *X = x->data;
  float *O = o->data;
  int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  for (size_t n = 0; n < N; n++)
    for (size_t ch = 0; ch < C; ch++)
      for (size_t i = 0; i < inner; i++) {
        double s = 0;
        for (int64_t j = (int64_t)ch - lo; j <= (int64_t)ch + hi; j++)
          if (j >= 0 && j < (int64_t)C) { float v = X[(n * C + (size_t)j) * inner + i]; s += (double)v * v; }
        O[(n * C + ch) * inner + i] = X[(n * C + ch) * inner + i] / powf(kk + alpha / (float)size * (float)s, beta);
      }
  return 0;
}

const it_kernel_def it_ops_norm[] = {
  {"softmax", k_softmax}, {"layer_norm", k_layer_norm}, {"batch_norm", k_batch_norm},
  {"instance_norm", k_instance_norm}, {"l2_norm", k_l2_norm}, {"local_response_norm", k_local_response_norm},
  {NULL, NULL},
};
