/* ops_pool.c — max_pool, avg_pool, l2_pool: 1-D/2-D/3-D windows, every pad type, ceil_mode;
 * avg_pool divides by the in-input element count with exclude_padding_from_average, else by the
 * window elements inside the padded input. */
#include "spatial.h"
#include <math.h>

typedef enum { P_MAX, P_AVG, P_L2 } pkind;

static int pool(it_ctx *c, pkind kind) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input");
  int64_t k[3];
  int S = x->rank - 2;
  if (S < 1 || S > 3 || it_arg_ints(c, "kernel_sizes", k, 3) != S) return it_fail(c, "kernel_sizes must match the %d spatial dims", S);
  it_window g;
  if (it_window_init(c, x, k, it_arg_bool(c, "ceil_mode", 0), &g) != 0) return -1;
  int excl = it_arg_bool(c, "exclude_padding_from_average", 0);
  int64_t oshape[5] = {x->shape[0], x->shape[1]};
  for (int i = 0; i < S; i++) oshape[2 + i] = g.out[3 - S + i];
  it_tensor *o = it_out_f(c, 0, x->rank, oshape);
  if (!o) return -1;
  size_t planes = (size_t)(x->shape[0] * x->shape[1]), ind = (size_t)(g.in[0] * g.in[1] * g.in[2]);
  const float *X = x->data;
  float *O = o->data;
  size_t op = 0;
  for (size_t pl = 0; pl < planes; pl++) {
    const float *xp = X + pl * ind;
    for (int64_t od = 0; od < g.out[0]; od++)
      for (int64_t oh = 0; oh < g.out[1]; oh++)
        for (int64_t ow = 0; ow < g.out[2]; ow++) {
          float m = -INFINITY;
          double s = 0;
          int64_t cnt = 0, padcnt = 0;
          for (int64_t kd = 0; kd < g.k[0]; kd++) {
            int64_t id = od * g.s[0] - g.pb[0] + kd;
            for (int64_t kh = 0; kh < g.k[1]; kh++) {
              int64_t ih = oh * g.s[1] - g.pb[1] + kh;
              for (int64_t kw = 0; kw < g.k[2]; kw++) {
                int64_t iw = ow * g.s[2] - g.pb[2] + kw;
                int inpad = id < g.in[0] + g.pe[0] && ih < g.in[1] + g.pe[1] && iw < g.in[2] + g.pe[2];
                if (id < 0 || ih < 0 || iw < 0 || id >= g.in[0] || ih >= g.in[1] || iw >= g.in[2]) {
                  padcnt += inpad;
                  continue;
                }
                float v = xp[(size_t)((id * g.in[1] + ih) * g.in[2] + iw)];
                if (v > m || v != v) m = v;
                s += kind == P_L2 ? (double)v * v : v;
                cnt++;
              }
            }
          }
          if (kind == P_MAX) O[op++] = m;
          else if (kind == P_L2) O[op++] = (float)sqrt(s);
          else O[op++] = (float)(s / (double)(excl ? (cnt ? cnt : 1) : (cnt + padcnt ? cnt + padcnt : 1)));
        }
  }
  return 0;
}

static int k_max_pool(it_ctx *c) { return pool(c, P_MAX); }
static int k_avg_pool(it_ctx *c) { return pool(c, P_AVG); }
static int k_l2_pool(it_ctx *c) { return pool(c, P_L2); }

const it_kernel_def it_ops_pool[] = {
  {"max_pool", k_max_pool}, {"avg_pool", k_avg_pool}, {"l2_pool", k_l2_pool}, {NULL, NULL},
};
