/* ops_linalg.c — linear (x[..., K] · weight[N, K]ᵀ + bias[N]) and matmul (numpy matmul with
 * transpose_x / transpose_y, batch broadcasting, rank-1 operands promoted and squeezed), on the
 * blocked GEMM. Integer operands go through float. linear applies the executor's fused
 * activation (env->fuse) in its last store. */
#include "gemm.h"
#include "ops.h"
#include <stdlib.h>
#include <string.h>

static const float *as_float(it_ctx *c, it_tensor *t, float **tmp) {
  *tmp = NULL;
  if (t->st == IT_F32) return t->data;
  *tmp = malloc((t->n ? t->n : 1) * sizeof **tmp);
  if (!*tmp) return it_fail(c, "out of memory"), NULL;
  for (size_t i = 0; i < t->n; i++) (*tmp)[i] = (float)it_get_d(t, i);
  return *tmp;
}

static int k_linear(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *w = x ? it_arg_req(c, "weight") : NULL, *b = it_arg(c, "bias");
  if (!w) return -1;
  if (w->rank != 2 || x->rank < 1 || x->shape[x->rank - 1] != w->shape[1]) {
    char sx[96], sw[96];
    return it_fail(c, "x %s does not match weight %s", it_describe(x, sx, sizeof sx), it_describe(w, sw, sizeof sw));
  }
  size_t N = (size_t)w->shape[0], K = (size_t)w->shape[1], M = K ? x->n / K : 0;
  if (b && b->n != N && b->n != 1) return it_fail(c, "bias has %zu values, the output %zu", b->n, N);
  int64_t shape[IT_MAX_RANK];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->rank - 1] = (int64_t)N;
  it_tensor *o = it_out_f(c, 0, x->rank, shape);
  if (!o) return -1;
  float *tx, *tw;
  const float *X = as_float(c, x, &tx), *W = X ? as_float(c, w, &tw) : NULL;
  int rc = -1;
  if (W) {
    float *O = o->data;
    int fused = b && b->st == IT_F32 && b->n == N; /* the bias is added in the GEMM's last pass */
    if (b && !fused)
      for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) O[i * N + j] = (float)it_get_d(b, b->n == 1 ? 0 : j);
    it_act *post = c->env->fuse; /* the next op's activation, applied in the last store (exec.h) */
    rc = it_sgemm_post(M, N, K, X, K, W, K, 1, O, N, b && !fused, fused ? b->data : NULL, 0, post) == 0 ? 0 : it_fail(c, "out of memory");
    if (rc == 0 && post) post->applied = 1;
    free(tw);
  }
  free(tx);
  return rc;
}

static int k_matmul(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *y = x ? it_arg_req(c, "y") : NULL;
  if (!y) return -1;
  int tx = it_arg_bool(c, "transpose_x", 0), ty = it_arg_bool(c, "transpose_y", 0);
  /* promote rank-1 operands */
  int64_t xs[IT_MAX_RANK + 1], ys[IT_MAX_RANK + 1];
  int xr = x->rank, yr = y->rank;
  if (xr == 0 || yr == 0) return it_fail(c, "matmul of a scalar");
  memcpy(xs, x->shape, (size_t)xr * sizeof *xs);
  memcpy(ys, y->shape, (size_t)yr * sizeof *ys);
  int x1 = xr == 1, y1 = yr == 1;
  if (x1) { xs[1] = xs[0]; xs[0] = 1; xr = 2; tx = 0; }
  if (y1) { ys[1] = 1; yr = 2; ty = 0; }
  int64_t M = tx ? xs[xr - 1] : xs[xr - 2], Kx = tx ? xs[xr - 2] : xs[xr - 1];
  int64_t Ky = ty ? ys[yr - 1] : ys[yr - 2], N = ty ? ys[yr - 2] : ys[yr - 1];
  if (Kx != Ky) return it_fail(c, "inner dimensions differ (%lld, %lld)", (long long)Kx, (long long)Ky);
  int br;
  int64_t bshape[IT_MAX_RANK + 2];
  if (it_broadcast_shape(xr - 2, xs, yr - 2, ys, &br, bshape) != 0) return it_fail(c, "batch dimensions do not broadcast");
  int orank = 0;
  int64_t oshape[IT_MAX_RANK + 2];
  for (int i = 0; i < br; i++) oshape[orank++] = bshape[i];
  if (!x1) oshape[orank++] = M;
  if (!y1) oshape[orank++] = N;
  if (orank > IT_MAX_RANK) return it_fail(c, "result rank above %d", IT_MAX_RANK);
  it_tensor *o = it_out_f(c, 0, orank, oshape);
  if (!o) return -1;
  float *fx, *fy;
  const float *X = as_float(c, x, &fx), *Y = X ? as_float(c, y, &fy) : NULL;
  if (!Y) { free(fx); return -1; }
  size_t nb = it_numel(br, bshape), xm = (size_t)(M * Kx), ym = (size_t)(Ky * N);
  float *xt = tx ? malloc(xm * sizeof *xt) : NULL;
  int rc = 0;
  if (tx && !xt) rc = it_fail(c, "out of memory");
  for (size_t b = 0; b < nb && rc == 0; b++) {
    /* batch offsets with broadcasting */
    size_t rem = b, xo = 0, yo = 0, xst = 1, yst = 1;
    for (int d = br - 1; d >= 0; d--) {
      size_t idx = rem % (size_t)bshape[d];
      rem /= (size_t)bshape[d];
      int dx = d - (br - (xr - 2)), dy = d - (br - (yr - 2));
      if (dx >= 0) { if (xs[dx] != 1) xo += idx * xst; xst *= (size_t)xs[dx]; }
      if (dy >= 0) { if (ys[dy] != 1) yo += idx * yst; yst *= (size_t)ys[dy]; }
    }
    const float *A = X + xo * xm, *B = Y + yo * ym;
    if (tx) { /* A is K x M: transpose into M x K */
      for (int64_t i = 0; i < M; i++)
        for (int64_t k = 0; k < Kx; k++) xt[i * Kx + k] = A[k * M + i];
      A = xt;
    }
    if (it_sgemm((size_t)M, (size_t)N, (size_t)Kx, A, (size_t)Kx, B, ty ? (size_t)Ky : (size_t)N, ty,
                 (float *)o->data + b * (size_t)(M * N), (size_t)N, 0) != 0)
      rc = it_fail(c, "out of memory");
  }
  free(xt);
  free(fx);
  free(fy);
  if (rc == 0 && o->st != IT_F32) return it_fail(c, "integer matmul is not supported");
  return rc;
}

const it_kernel_def it_ops_linalg[] = {
  {"linear", k_linear}, {"matmul", k_matmul}, {NULL, NULL},
};
