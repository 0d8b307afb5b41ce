/* ops_conv.c — conv and conv_transpose, 1-D/2-D/3-D, groups, dilations, every pad type. conv is
 * im2col + GEMM per group (1x1 stride-1 unpadded convs skip im2col; depthwise convs run a direct
 * loop); conv_transpose is GEMM (weightᵀ · x) then col2im. Accumulation in fp32. conv applies
 * the executor's fused activation (env->fuse) in its last store. */
#include "dwconv.h"
#include "gemm.h"
#include "spatial.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int float_args(it_ctx *c, it_tensor *x, it_tensor *w, it_tensor *b) {
  if (x->st != IT_F32 || w->st != IT_F32 || (b && b->st != IT_F32)) return it_fail(c, "needs float x, weight and bias");
  return 0;
}

/* col[(c*kn + kidx) * ld + (p - p0)] for channels [0, Cg) of x and output positions [p0, p1). */
static void im2col(const float *x, size_t Cg, const it_window *g, float *col, size_t p0, size_t p1, size_t ld) {
  size_t ind = (size_t)(g->in[0] * g->in[1] * g->in[2]), OW = (size_t)g->out[2], OHW = (size_t)g->out[1] * OW;
  size_t row = 0;
  for (size_t ch = 0; ch < Cg; ch++)
    for (int64_t kd = 0; kd < g->k[0]; kd++)
      for (int64_t kh = 0; kh < g->k[1]; kh++)
        for (int64_t kw = 0; kw < g->k[2]; kw++, row++) {
          float *cr = col + row * ld;
          const float *xc = x + ch * ind;
          size_t p = p0;
          int64_t od = (int64_t)(p0 / OHW), oh = (int64_t)(p0 % OHW / OW), ow = (int64_t)(p0 % OW);
          /* columns ow in [wlo, whi) read input column ow * s - pb + kw * d inside [0, W) */
          int64_t off = kw * g->d[2] - g->pb[2], s2 = g->s[2], W = g->in[2];
          int64_t wlo = off >= 0 ? 0 : (-off + s2 - 1) / s2, whi = W - off <= 0 ? 0 : (W - off + s2 - 1) / s2;
          while (p < p1) { /* one output row (od, oh) from column ow at a time */
            int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0], ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
            int rowok = id >= 0 && id < g->in[0] && ih >= 0 && ih < g->in[1];
            int64_t end = ow + (int64_t)(p1 - p) < (int64_t)OW ? ow + (int64_t)(p1 - p) : (int64_t)OW;
            float *d = cr + (p - p0); /* d[q - ow] is this row's column q */
            int64_t a = rowok ? (wlo > ow ? wlo : ow) : end, b = rowok ? (whi < end ? whi : end) : end;
            if (a > end) a = end;
            if (b < a) b = a;
            for (int64_t q = ow; q < a; q++) d[q - ow] = 0.0f;
            if (a < b) {
              const float *xr = xc + (size_t)((id * g->in[1] + ih) * g->in[2]);
              if (s2 == 1) memcpy(d + (a - ow), xr + (a + off), (size_t)(b - a) * sizeof *d);
              else
                for (int64_t q = a; q < b; q++) d[q - ow] = xr[q * s2 + off];
            }
            for (int64_t q = b; q < end; q++) d[q - ow] = 0.0f;
            p += (size_t)(end - ow);
            ow = 0;
            if (++oh == g->out[1]) { oh = 0; od++; }
          }
        }
}

/* A conv through im2col, split by runs of output positions: each task lays out its own columns
 * (in a buffer that stays in its core's cache) and multiplies them on its thread. Every output
 * is the same sum as the whole-matrix GEMM gives. */
typedef struct {
  const float *x, *w, *bias;
  float *o;
  const it_window *g;
  size_t Cg, kn, outd, Coutg, per;
  float **buf;
  it_act *post;
  atomic_int fail;
} cols_job;

static void cols_task(void *ctx, size_t t, unsigned worker) {
  cols_job *j = ctx;
  size_t p0 = t * j->per, p1 = p0 + j->per < j->outd ? p0 + j->per : j->outd, K = j->Cg * j->kn;
  if (p0 >= p1) return;
  im2col(j->x, j->Cg, j->g, j->buf[worker], p0, p1, p1 - p0);
  if (it_sgemm_post(j->Coutg, p1 - p0, K, j->w, K, j->buf[worker], p1 - p0, 0, j->o + p0, j->outd, 0, j->bias, 1, j->post) != 0)
    atomic_store(&j->fail, 1);
}

/* One group's conv through im2col: whole (small) or in runs of positions over the threads. */
static int conv_cols(const float *xg, const float *wg, const float *bg, float *og, const it_window *g, size_t Cg, size_t kn,
                     size_t outd, size_t Coutg, it_act *post) {
  size_t K = Cg * kn;
  if (outd == 0) return 0;
  unsigned nt = it_threads();
  size_t per = K ? (size_t)32768 / K / 32 * 32 : outd; /* ~128 KiB of columns per task */
  if (per < 64) per = 64;
  size_t ntasks = (outd + per - 1) / per;
  if (nt > ntasks) nt = (unsigned)ntasks;
  float *buf[MLSH_MAX_THREADS] = {0};
  size_t cap = per < outd ? per : outd;
  int ok = 1;
  for (unsigned i = 0; i < (nt ? nt : 1) && ok; i++) ok = (buf[i] = malloc(K * cap * sizeof(float))) != NULL;
  cols_job j = {xg, wg, bg, og, g, Cg, kn, outd, Coutg, per, buf, post, 0};
  if (ok) it_parallel_for(nt ? nt : 1, ntasks, cols_task, &j);
  for (unsigned i = 0; i < MLSH_MAX_THREADS; i++) free(buf[i]);
  return ok && !atomic_load(&j.fail) ? 0 : -1;
}

static int k_conv(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *w = x ? it_arg_req(c, "weight") : NULL, *b = it_arg(c, "bias");
  if (!w || float_args(c, x, w, b)) return -1;
  int64_t G = it_arg_int(c, "groups", 1);
  if (w->rank != x->rank || G < 1) return it_fail(c, "weight rank %d does not match input rank %d", w->rank, x->rank);
  int64_t N = x->shape[0], Cin = x->shape[1], Cout = w->shape[0], Cg = w->shape[1];
  if (Cin != Cg * G || Cout % G) return it_fail(c, "input has %lld channels, weight expects %lld x %lld groups", (long long)Cin, (long long)Cg, (long long)G);
  if (b && b->n != (size_t)Cout) return it_fail(c, "bias has %zu values, %lld output channels", b->n, (long long)Cout);
  it_window g;
  if (it_window_init(c, x, w->shape + 2, 0, &g) != 0) return -1;
  int64_t oshape[5] = {N, Cout};
  for (int i = 0; i < g.S; i++) oshape[2 + i] = g.out[3 - g.S + i];
  it_tensor *o = it_out_f(c, 0, x->rank, oshape);
  if (!o) return -1;
  size_t ind = (size_t)(g.in[0] * g.in[1] * g.in[2]), outd = (size_t)(g.out[0] * g.out[1] * g.out[2]);
  size_t kn = (size_t)(g.k[0] * g.k[1] * g.k[2]), Coutg = (size_t)(Cout / G);
  const float *X = x->data, *W = w->data;
  float *O = o->data;
  int direct = kn == 1 && g.s[0] * g.s[1] * g.s[2] == 1 && !(g.pb[0] | g.pb[1] | g.pb[2] | g.pe[0] | g.pe[1] | g.pe[2]);
  const float *B = b ? b->data : NULL;
  it_act *post = c->env->fuse; /* the next op's activation, applied in the last store (exec.h) */
  if (G == Cin && Cg == 1 && Cout == Cin) {
    if (it_depthwise(X, W, B, O, &g, (size_t)N, (size_t)Cin, post) != 0) return it_fail(c, "out of memory");
    if (post) post->applied = 1;
    return 0;
  } else {
    for (int64_t n = 0; n < N; n++)
      for (int64_t gi = 0; gi < G; gi++) {
        const float *xg = X + ((size_t)n * (size_t)Cin + (size_t)(gi * Cg)) * ind;
        const float *wg = W + (size_t)gi * Coutg * (size_t)Cg * kn, *bg = B ? B + (size_t)gi * Coutg : NULL;
        float *og = O + ((size_t)n * (size_t)Cout + (size_t)gi * Coutg) * outd;
        int rc = direct ? it_sgemm_post(Coutg, outd, (size_t)Cg * kn, wg, (size_t)Cg * kn, xg, outd, 0, og, outd, 0, bg, 1, post)
                        : conv_cols(xg, wg, bg, og, &g, (size_t)Cg, kn, outd, Coutg, post);
        if (rc != 0) return it_fail(c, "out of memory");
      }
    if (post) post->applied = 1;
  }
  return 0;
}

static int k_conv_transpose(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *w = x ? it_arg_req(c, "weight") : NULL, *b = it_arg(c, "bias");
  if (!w || float_args(c, x, w, b)) return -1;
  int64_t G = it_arg_int(c, "groups", 1);
  if (w->rank != x->rank || G < 1) return it_fail(c, "weight rank %d does not match input rank %d", w->rank, x->rank);
  int S = x->rank - 2;
  if (S < 1 || S > 3) return it_fail(c, "needs an input of rank 3 to 5");
  int64_t N = x->shape[0], Cin = x->shape[1], Coutg = w->shape[1], Cout = Coutg * G;
  if (w->shape[0] != Cin || Cin % G) return it_fail(c, "weight has %lld input channels, the input %lld", (long long)w->shape[0], (long long)Cin);
  if (b && b->n != (size_t)Cout) return it_fail(c, "bias has %zu values, %lld output channels", b->n, (long long)Cout);
  int64_t st[3], dl[3], pad[6] = {0}, osh[5];
  int ns = it_arg_ints(c, "strides", st, 3), nd = it_arg_ints(c, "dilations", dl, 3);
  const char *pt = it_arg_str(c, "pad_type", "valid");
  int nos = it_arg_ints(c, "output_shape", osh, 5);
  if (strcmp(pt, "custom") == 0 && it_arg_ints(c, "pad", pad, 6) != 2 * S) return it_fail(c, "pad must have %d values", 2 * S);
  it_window g;
  memset(&g, 0, sizeof g);
  g.S = S;
  for (int i = 0; i < 3; i++) { g.in[i] = g.k[i] = g.s[i] = g.d[i] = g.out[i] = 1; }
  for (int i = 0; i < S; i++) {
    int j = 3 - S + i;
    g.in[j] = x->shape[2 + i];
    g.k[j] = w->shape[2 + i];
    g.s[j] = ns == S ? st[i] : 1;
    g.d[j] = nd == S ? dl[i] : 1;
    if (g.s[j] < 1 || g.d[j] < 1) return it_fail(c, "strides and dilations must be positive");
    int64_t full = (g.in[j] - 1) * g.s[j] + (g.k[j] - 1) * g.d[j] + 1;
    if (strcmp(pt, "same") == 0 || strcmp(pt, "same_lower") == 0) {
      int64_t out = g.in[j] * g.s[j], total = full - out;
      if (total < 0) total = 0;
      g.pb[j] = strcmp(pt, "same_lower") == 0 ? (total + 1) / 2 : total / 2;
      g.pe[j] = total - g.pb[j];
    } else { g.pb[j] = pad[2 * i]; g.pe[j] = pad[2 * i + 1]; }
    g.out[j] = full - g.pb[j] - g.pe[j];
    if (nos == x->rank) g.out[j] = osh[2 + i];
    else if (nos == S) g.out[j] = osh[i];
    if (g.out[j] < 1) return it_fail(c, "output size %lld along spatial dim %d", (long long)g.out[j], i);
  }
  int64_t oshape[5] = {N, Cout};
  for (int i = 0; i < S; i++) oshape[2 + i] = g.out[3 - S + i];
  it_tensor *o = it_out_f(c, 0, x->rank, oshape);
  if (!o) return -1;
  size_t ind = (size_t)(g.in[0] * g.in[1] * g.in[2]), outd = (size_t)(g.out[0] * g.out[1] * g.out[2]);
  size_t kn = (size_t)(g.k[0] * g.k[1] * g.k[2]), Cing = (size_t)(Cin / G), rows = (size_t)Coutg * kn;
  float *wt = malloc(rows * Cing * sizeof *wt), *col = malloc(rows * ind * sizeof *col);
  float *O = o->data;
  if (!wt || !col) { free(wt); free(col); return it_fail(c, "out of memory"); }
  memset(O, 0, o->n * sizeof *O);
  for (int64_t gi = 0; gi < G; gi++) {
    const float *Wg = (const float *)w->data + (size_t)gi * Cing * rows; /* [Cing, Coutg*kn] */
    for (size_t r = 0; r < rows; r++)
      for (size_t ci = 0; ci < Cing; ci++) wt[r * Cing + ci] = Wg[ci * rows + r];
    for (int64_t n = 0; n < N; n++) {
      const float *xg = (const float *)x->data + ((size_t)n * (size_t)Cin + (size_t)gi * Cing) * ind;
      if (it_sgemm(rows, ind, Cing, wt, Cing, xg, ind, 0, col, ind, 0) != 0) { free(wt); free(col); return it_fail(c, "out of memory"); }
      for (size_t r = 0; r < rows; r++) {
        size_t oc = r / kn, kk = r % kn;
        int64_t kd = (int64_t)(kk / (size_t)(g.k[1] * g.k[2])), kh = (int64_t)(kk / (size_t)g.k[2] % (size_t)g.k[1]), kw = (int64_t)(kk % (size_t)g.k[2]);
        float *op = O + ((size_t)n * (size_t)Cout + (size_t)gi * (size_t)Coutg + oc) * outd;
        const float *cr = col + r * ind;
        for (int64_t id = 0; id < g.in[0]; id++) {
          int64_t od = id * g.s[0] - g.pb[0] + kd * g.d[0];
          if (od < 0 || od >= g.out[0]) continue;
          for (int64_t ih = 0; ih < g.in[1]; ih++) {
            int64_t oh = ih * g.s[1] - g.pb[1] + kh * g.d[1];
            if (oh < 0 || oh >= g.out[1]) continue;
            for (int64_t iw = 0; iw < g.in[2]; iw++) {
              int64_t ow = iw * g.s[2] - g.pb[2] + kw * g.d[2];
              if (ow >= 0 && ow < g.out[2]) op[(size_t)((od * g.out[1] + oh) * g.out[2] + ow)] += cr[(size_t)((id * g.in[1] + ih) * g.in[2] + iw)];
            }
          }
        }
      }
    }
  }
  free(wt);
  free(col);
  if (b)
    for (int64_t n = 0; n < N; n++)
      for (int64_t oc = 0; oc < Cout; oc++) {
        float *p = O + ((size_t)n * (size_t)Cout + (size_t)oc) * outd;
        for (size_t i = 0; i < outd; i++) p[i] += ((const float *)b->data)[oc];
      }
  return 0;
}

const it_kernel_def it_ops_conv[] = {
  {"conv", k_conv}, {"conv_transpose", k_conv_transpose}, {NULL, NULL},
};
