/* ops_reduce.c — reduce_{sum,mean,max,min,prod,l1_norm,l2_norm,log_sum,log_sum_exp,sum_square}
 * over `axes` (all when absent) with keep_dims, and reduce_argmax / reduce_argmin (one axis,
 * first index on ties, int32). Accumulation in double (fp32 over trailing axes: eight partial sums
 * per output, see rows_range; otherwise one sum in index order). */
#include "ops.h"
#include "pool.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LSE, R_SUMSQ, R_ARGMAX, R_ARGMIN } rkind;

/* The common case, fp32 reduced over its trailing axes (a global pool, a norm over the last axis):
 * each output is a contiguous run of `cnt` values, summed in double in eight interleaved partial
 * sums (max / min: NaN wins, as below), rows split over the threads. */
typedef struct {
  const float *x;
  size_t cnt;
  rkind k;
  double *acc;
} rows_job;

static void rows_range(void *ctx, size_t lo, size_t hi) {
  const rows_job *j = ctx;
  for (size_t r = lo; r < hi; r++) {
    const float *p = j->x + r * j->cnt;
    size_t n = j->cnt, i = 0;
    double a[4];
    if (j->k == R_MAX || j->k == R_MIN) {
      int mx = j->k == R_MAX;
      a[0] = a[1] = a[2] = a[3] = mx ? -INFINITY : INFINITY;
      for (; i < n; i++) {
        double v = p[i];
        double *t = &a[i & 3];
        if (v != v || (mx ? v > *t : v < *t)) *t = v;
      }
      double m = a[0];
      for (int q = 1; q < 4; q++)
        if (a[q] != a[q] || (m == m && (mx ? a[q] > m : a[q] < m))) m = a[q];
      j->acc[r] = m;
      continue;
    }
    int sq = j->k == R_SUMSQ || j->k == R_L2;
    double s[8] = {0}; /* eight lanes, each its own chain: the loop vectorises without reassociation */
    if (sq)
      for (; i + 8 <= n; i += 8)
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) s[q] += (double)p[i + (size_t)q] * (double)p[i + (size_t)q];
    else
      for (; i + 8 <= n; i += 8)
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) s[q] += (double)p[i + (size_t)q];
    for (; i < n; i++) s[i & 7] += sq ? (double)p[i] * (double)p[i] : (double)p[i];
    a[0] = s[0] + s[4];
    a[1] = s[1] + s[5];
    a[2] = s[2] + s[6];
    a[3] = s[3] + s[7];
    j->acc[r] = (a[0] + a[1]) + (a[2] + a[3]);
  }
}

static int reduce_rows_ok(const it_tensor *x, const int *red, rkind k) {
  if (x->st != IT_F32 || !(k == R_SUM || k == R_MEAN || k == R_SUMSQ || k == R_L2 || k == R_MAX || k == R_MIN)) return 0;
  int i = 0;
  while (i < x->rank && !red[i]) i++;
  while (i < x->rank && red[i]) i++;
  return i == x->rank;
}

/* The general case: every element in index order into acc[its output] (arg/pos: argmax/argmin);
 * returns the max subtracted for log_sum_exp. */
static double reduce_walk(const it_tensor *x, const int64_t *ost, rkind k, double init, double *acc, int64_t *arg,
                          int64_t *pos, size_t on) {
  for (size_t i = 0; i < on; i++) acc[i] = init;
  double lse_max = 0;
  if (k == R_LSE) { /* stabilised: subtract the global max */
    lse_max = -INFINITY;
    for (size_t i = 0; i < x->n; i++) { double v = it_get_d(x, i); if (v > lse_max) lse_max = v; }
    if (!isfinite(lse_max)) lse_max = 0;
  }
  int64_t idx[IT_MAX_RANK] = {0};
  size_t oi = 0;
  for (size_t i = 0; i < x->n; i++) {
    double v = it_get_d(x, i);
    double *a = &acc[oi];
    switch (k) {
    case R_SUM: case R_MEAN: case R_LOGSUM: *a += v; break;
    case R_MAX: if (v > *a || v != v) *a = v; break;
    case R_MIN: if (v < *a || v != v) *a = v; break;
    case R_PROD: *a *= v; break;
    case R_L1: *a += fabs(v); break;
    case R_L2: case R_SUMSQ: *a += v * v; break;
    case R_LSE: *a += exp(v - lse_max); break;
    case R_ARGMAX: if (v > *a) { *a = v; arg[oi] = pos[oi]; } pos[oi]++; break;
    case R_ARGMIN: if (v < *a) { *a = v; arg[oi] = pos[oi]; } pos[oi]++; break;
    }
    for (int d = x->rank - 1; d >= 0; d--) {
      oi += (size_t)ost[d];
      if (++idx[d] < x->shape[d]) break;
      oi -= (size_t)(ost[d] * x->shape[d]);
      idx[d] = 0;
    }
  }
  return lse_max;
}

static int reduce(it_ctx *c, rkind k) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int keep = it_arg_bool(c, "keep_dims", 0), red[IT_MAX_RANK] = {0};
  int64_t axes[IT_MAX_RANK];
  int na;
  if (k == R_ARGMAX || k == R_ARGMIN) { axes[0] = it_arg_int(c, "axis", -1); na = 1; }
  else na = it_arg_ints(c, "axes", axes, IT_MAX_RANK);
  if (na < 0) for (int i = 0; i < x->rank; i++) red[i] = 1;
  for (int i = 0; i < na; i++) {
    int a = it_axis(c, axes[i], x->rank);
    if (a < 0) return -1;
    red[a] = 1;
  }
  int orank = 0;
  int64_t oshape[IT_MAX_RANK], ost[IT_MAX_RANK];
  for (int i = 0; i < x->rank; i++)
    if (!red[i]) oshape[orank++] = x->shape[i];
    else if (keep) oshape[orank++] = 1;
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, orank, oshape);
  if (!o) return -1;
  /* output stride of each input dim (0 when reduced) */
  int64_t s = 1;
  for (int i = x->rank - 1; i >= 0; i--) {
    ost[i] = red[i] ? 0 : s;
    if (!red[i]) s *= x->shape[i];
  }
  size_t on = o->n, cnt = on ? x->n / on : 0;
  double *acc = malloc((on ? on : 1) * sizeof *acc);
  int64_t *arg = (k == R_ARGMAX || k == R_ARGMIN) ? calloc(on ? on : 1, sizeof *arg) : NULL;
  int64_t *pos = (k == R_ARGMAX || k == R_ARGMIN) ? calloc(on ? on : 1, sizeof *pos) : NULL;
  if (!acc || ((k == R_ARGMAX || k == R_ARGMIN) && (!arg || !pos))) { free(acc); free(arg); free(pos); return it_fail(c, "out of memory"); }
  double init = k == R_MAX || k == R_ARGMAX ? -INFINITY : k == R_MIN || k == R_ARGMIN ? INFINITY : k == R_PROD ? 1 : 0;
  double lse_max = 0;
  if (on && cnt && reduce_rows_ok(x, red, k)) {
    rows_job j = {x->data, cnt, k, acc};
    it_parallel_range(on, cnt, rows_range, &j);
  } else
    lse_max = reduce_walk(x, ost, k, init, acc, arg, pos, on);
  for (size_t i = 0; i < on; i++) {
    double v = acc[i];
    if (k == R_MEAN) v /= (double)(cnt ? cnt : 1);
    else if (k == R_L2) v = sqrt(v);
    else if (k == R_LOGSUM) v = log(v);
    else if (k == R_LSE) v = log(v) + lse_max;
    if (arg) v = (double)arg[i]; /* stored in whatever dtype the op declares */
    it_put_d(o, i, v);
  }
  free(acc);
  free(arg);
  free(pos);
  return 0;
}

#define RED(name, kind) static int k_##name(it_ctx *c) { return reduce(c, kind); }
RED(reduce_sum, R_SUM) RED(reduce_mean, R_MEAN) RED(reduce_max, R_MAX) RED(reduce_min, R_MIN) RED(reduce_prod, R_PROD)
RED(reduce_l1_norm, R_L1) RED(reduce_l2_norm, R_L2) RED(reduce_log_sum, R_LOGSUM) RED(reduce_log_sum_exp, R_LSE)
RED(reduce_sum_square, R_SUMSQ) RED(reduce_argmax, R_ARGMAX) RED(reduce_argmin, R_ARGMIN)

const it_kernel_def it_ops_reduce[] = {
  {"reduce_sum", k_reduce_sum}, {"reduce_mean", k_reduce_mean}, {"reduce_max", k_reduce_max},
  {"reduce_min", k_reduce_min}, {"reduce_prod", k_reduce_prod}, {"reduce_l1_norm", k_reduce_l1_norm},
  {"reduce_l2_norm", k_reduce_l2_norm}, {"reduce_log_sum", k_reduce_log_sum},
  {"reduce_log_sum_exp", k_reduce_log_sum_exp}, {"reduce_sum_square", k_reduce_sum_square},
  {"reduce_argmax", k_reduce_argmax}, {"reduce_argmin", k_reduce_argmin}, {NULL, NULL},
};
