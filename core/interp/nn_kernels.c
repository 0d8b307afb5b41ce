/* nn_kernels.c — NeuralNetwork-only kernels and the view wrapper (see nn_kernels.h). */
#include "nn_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

it_tensor *nn_view(it_ctx *c, it_tensor *t, int rank, const int64_t *shape) {
  if (it_numel(rank, shape) != t->n) return it_fail(c, "cannot view %zu values with another element count", t->n), NULL;
  it_tensor *v = calloc(1, sizeof *v);
  if (!v) return it_fail(c, "out of memory"), NULL;
  *v = *t;
  v->rank = rank;
  memcpy(v->shape, shape, (size_t)rank * sizeof *shape);
  v->borrowed = 1;
  v->refs = 1;
  return v;
}

/* Run k with op `tmp` (params prepared by the caller); outputs move to c->out. */
static int call(it_ctx *c, const it_kernel_def *k, it_op *tmp, int nout) {
  it_ctx sub;
  memset(&sub, 0, sizeof sub);
  sub.env = c->env;
  sub.op = tmp;
  int rc = k->fn(&sub);
  for (int i = 0; i < IT_MAX_OUT; i++) {
    if (rc == 0 && i < nout && sub.out[i]) {
      it_tensor *t = sub.out[i];
      if (t->borrowed) { /* an input passed through: our views die with this op */
        mlsh_err e2;
        it_tensor *cp = it_convert(t, t->dt, &e2);
        it_unref(t);
        if (!cp) return it_fail(c, "%s", e2.msg);
        t = cp;
      }
      it_unref(c->out[i]);
      c->out[i] = t;
    } else it_unref(sub.out[i]);
  }
  return rc;
}

int nn_invoke(it_ctx *c, const it_kernel_def *k, int n, const char *const *names, it_tensor *const *vals, int nout) {
  it_param pr[NN_INVOKE_MAX];
  it_binding bd[NN_INVOKE_MAX];
  if (n > NN_INVOKE_MAX) return it_fail(c, "too many parameters");
  for (int i = 0; i < n; i++) {
    bd[i].slot = -1;
    bd[i].imm = vals[i];
    pr[i].name = names[i];
    pr[i].n = vals[i] ? 1 : 0;
    pr[i].b = &bd[i];
  }
  it_op tmp = *c->op;
  tmp.params = pr;
  tmp.nparams = n;
  return call(c, k, &tmp, nout);
}

/* ---- the wrapper: the op's own parameters, x replaced by a view ---- */
static int k_wrap(it_ctx *c) {
  const nn_wrap *w = c->op->aux;
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int r = x->rank, L = r - 3;
  int64_t vs[IT_MAX_RANK];
  int vr;
  if (w->mode == NN_FOLD4) {
    if (r < 3) return it_fail(c, "needs an input of rank 3 or more ([.., C, H, W]), got rank %d", r);
    if (r == 4) return w->inner->fn(c);
    vs[0] = (int64_t)it_outer(x, L);
    memcpy(vs + 1, x->shape + L, 3 * sizeof *vs);
    vr = 4;
  } else {
    if (r < 4) return w->inner->fn(c);
    memcpy(vs, x->shape, (size_t)L * sizeof *vs);
    vs[L] = (int64_t)it_inner(x, L);
    vr = L + 1;
  }
  it_tensor *v = nn_view(c, x, vr, vs);
  if (!v) return -1;
  it_param pr[NN_MAX_WRAP_PARAMS];
  it_binding xb = {-1, v};
  int np = c->op->nparams < NN_MAX_WRAP_PARAMS ? c->op->nparams : NN_MAX_WRAP_PARAMS;
  for (int i = 0; i < np; i++) {
    pr[i] = c->op->params[i];
    if (strcmp(pr[i].name, "x") == 0) pr[i].b = &xb;
  }
  it_op tmp = *c->op;
  tmp.params = pr;
  tmp.nparams = np;
  int rc = call(c, w->inner, &tmp, c->op->nout);
  it_unref(v);
  if (rc != 0) return -1;
  for (int i = 0; i < c->op->nout; i++) {
    it_tensor *o = c->out[i];
    if (!o) continue;
    int64_t os[IT_MAX_RANK];
    if (w->mode == NN_FOLD4 && o->rank == 4 && o->shape[0] == vs[0]) {
      memcpy(os, x->shape, (size_t)L * sizeof *os);
      memcpy(os + L, o->shape + 1, 3 * sizeof *os);
      o->rank = r;
      memcpy(o->shape, os, (size_t)r * sizeof *os);
    } else if (w->mode == NN_FLAT && o->rank == L + 1) {
      o->shape[L + 1] = o->shape[L + 2] = 1;
      o->rank = L + 3;
    }
  }
  return 0;
}
const it_kernel_def nn_k_wrap = {"nn_wrap", k_wrap};

/* A copy of x with another shape. */
static int reshaped(it_ctx *c, it_tensor *x, int rank, const int64_t *shape) {
  if (it_numel(rank, shape) != x->n) return it_fail(c, "cannot reshape %zu values to the target shape", x->n);
  it_tensor *o = it_out(c, 0, x->dt, rank, shape);
  if (!o) return -1;
  memcpy(o->data, x->data, x->n * it_storage_size(x->st));
  return 0;
}

/* reshape (legacy): target [C, H, W] or [Seq, C, H, W]; leading dims other than Seq are kept. */
static int k_reshape_chw(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  int64_t t[4], s[IT_MAX_RANK];
  int nt = it_arg_ints(c, "shape", t, 4);
  if (!x) return -1;
  if (nt != 3 && nt != 4) return it_fail(c, "targetShape must have 3 or 4 values");
  int L = x->rank >= 3 ? x->rank - 3 : 0;
  memcpy(s, x->shape, (size_t)L * sizeof *s);
  memcpy(s + L, t + nt - 3, 3 * sizeof *s);
  int r = L + 3;
  if (nt == 4) {
    if (L >= 2) s[0] = t[0];
    else if (L == 0) { memmove(s + 1, s, 3 * sizeof *s); s[0] = t[0]; r = 4; }
    else s[0] = t[0];
  }
  size_t known = 1;
  for (int i = 0; i < r; i++) known *= (size_t)(s[i] > 0 ? s[i] : 1);
  if (nt == 4 && L >= 2 && known && x->n % known == 0) s[1] = (int64_t)(x->n / (known / (size_t)(s[1] > 0 ? s[1] : 1)));
  return reshaped(c, x, r, s);
}
const it_kernel_def nn_k_reshape_chw = {"nn_reshape", k_reshape_chw};

/* reshape to a static shape (-1: inferred). */
static int k_reshape_to(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  int64_t s[IT_MAX_RANK];
  int r = it_arg_ints(c, "shape", s, IT_MAX_RANK);
  if (!x) return -1;
  if (it_arg_bool(c, "rank5", 0)) { /* the legacy mapping of a [C] or [C, H, W] array */
    if (x->rank != 1 && x->rank != 3) return it_fail(c, "a rank-5 mapped input has rank 1 or 3, got %d", x->rank);
    int64_t s5[5] = {1, 1, x->shape[0], x->rank == 3 ? x->shape[1] : 1, x->rank == 3 ? x->shape[2] : 1};
    return reshaped(c, x, 5, s5);
  }
  if (r < 0) return it_fail(c, "missing shape");
  size_t known = 1;
  int unk = -1;
  for (int i = 0; i < r; i++) {
    if (s[i] < 0) unk = i;
    else known *= (size_t)s[i];
  }
  if (unk >= 0 && known) s[unk] = (int64_t)(x->n / known);
  return reshaped(c, x, r, s);
}
const it_kernel_def nn_k_reshape_to = {"nn_reshape_to", k_reshape_to};

/* flatten: [.., C, H, W] -> [.., C*H*W, 1, 1]; mode 1 (CHANNEL_LAST) orders the values H, W, C. */
static int k_flatten(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->rank < 3) return it_fail(c, "needs rank 3 or more");
  int L = x->rank - 3;
  int64_t s[IT_MAX_RANK];
  memcpy(s, x->shape, (size_t)L * sizeof *s);
  int64_t C = x->shape[L], H = x->shape[L + 1], W = x->shape[L + 2];
  s[L] = C * H * W;
  s[L + 1] = s[L + 2] = 1;
  if (it_arg_int(c, "mode", 0) == 0) return reshaped(c, x, x->rank, s);
  it_tensor *o = it_out(c, 0, x->dt, x->rank, s);
  if (!o) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input");
  const float *X = x->data;
  float *O = o->data;
  size_t outer = it_outer(x, L), plane = (size_t)(C * H * W);
  for (size_t b = 0; b < outer; b++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t i = 0; i < H * W; i++) O[b * plane + (size_t)(i * C + ch)] = X[b * plane + (size_t)(ch * H * W + i)];
  return 0;
}
const it_kernel_def nn_k_flatten = {"nn_flatten", k_flatten};

/* permute: axis (4 values) over (Seq, C, H, W); a rank-5 blob keeps its batch axis in place. */
static int k_permute(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  int64_t ax[4], perm[5];
  if (!x) return -1;
  if (it_arg_ints(c, "axis", ax, 4) != 4) return it_fail(c, "axis must have 4 values");
  for (int i = 0; i < 4; i++)
    if (ax[i] < 0 || ax[i] > 3) return it_fail(c, "axis values must be 0..3");
  int r = x->rank;
  if (r == 5) {
    static const int64_t map[4] = {0, 2, 3, 4};
    perm[0] = map[ax[0]];
    perm[1] = 1;
    for (int i = 1; i < 4; i++) perm[i + 1] = map[ax[i]];
  } else if (r == 4) memcpy(perm, ax, sizeof ax);
  else return it_fail(c, "needs a rank-4 or rank-5 input, got rank %d", r);
  it_tensor *pv;
  mlsh_err e2;
  int64_t ps[1] = {r};
  if (!(pv = it_tensor_new(MLSH_DT_INT32, 1, ps, &e2))) return it_fail(c, "%s", e2.msg);
  memcpy(pv->data, perm, (size_t)r * sizeof *perm);
  const char *names[2] = {"x", "perm"};
  it_tensor *vals[2] = {x, pv};
  int rc = nn_invoke(c, it_kernel_find("transpose"), 2, names, vals, 1);
  it_unref(pv);
  return rc;
}
const it_kernel_def nn_k_permute = {"nn_permute", k_permute};

/* slice (legacy): along axis -3/-2/-1, [start, end) with stride; negative indices count from the end. */
static int k_slice(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t axis = it_arg_int(c, "axis", -3), st = it_arg_int(c, "stride", 1);
  int a = it_axis(c, axis, x->rank);
  if (a < 0) return -1;
  int64_t N = x->shape[a], b = it_arg_int(c, "begin", 0), e = it_arg_int(c, "end", 0);
  if (b < 0) b += N;
  if (e <= 0) e += N;
  if (b < 0) b = 0;
  if (e > N) e = N;
  if (st < 1) return it_fail(c, "stride must be positive");
  int64_t len = e > b ? (e - b + st - 1) / st : 0, s[IT_MAX_RANK];
  memcpy(s, x->shape, (size_t)x->rank * sizeof *s);
  s[a] = len;
  it_tensor *o = it_out(c, 0, x->dt, x->rank, s);
  if (!o) return -1;
  size_t outer = it_outer(x, a), inner = it_inner(x, a + 1), es = it_storage_size(x->st);
  const char *X = x->data;
  char *O = o->data;
  for (size_t i = 0; i < outer; i++)
    for (int64_t k = 0; k < len; k++)
      memcpy(O + ((i * (size_t)len + (size_t)k) * inner) * es, X + ((i * (size_t)N + (size_t)(b + k * st)) * inner) * es, inner * es);
  return 0;
}
const it_kernel_def nn_k_slice = {"nn_slice", k_slice};

/* unary: x <- scale * x + shift, then sqrt, rsqrt, inverse, power, exp, log, abs or threshold. */
static int k_unary(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input");
  int64_t fn = it_arg_int(c, "fn", 0);
  double al = it_arg_float(c, "alpha", 0), eps = it_arg_float(c, "epsilon", 1e-6), sh = it_arg_float(c, "shift", 0),
         sc = it_arg_float(c, "scale", 1);
  it_tensor *o = it_out(c, 0, x->dt, x->rank, x->shape);
  if (!o) return -1;
  const float *X = x->data;
  float *O = o->data;
  for (size_t i = 0; i < x->n; i++) {
    double v = sc * X[i] + sh, r;
    switch (fn) {
    case 0: r = sqrt(v); break;
    case 1: r = 1.0 / sqrt(v + eps); break;
    case 2: r = 1.0 / (v + eps); break;
    case 3: r = pow(v, al); break;
    case 4: r = exp(v); break;
    case 5: r = log(v); break;
    case 6: r = fabs(v); break;
    default: r = v > al ? v : al; break;
    }
    O[i] = (float)r;
  }
  return 0;
}
const it_kernel_def nn_k_unary = {"nn_unary", k_unary};

/* embedding: indices [.., 1, 1, 1] (a rank-5 blob [Seq, B, 1, 1, 1]) -> [.., D, 1, 1]; W is [D, V]. */
static int embed(it_ctx *c, int nd) {
  it_tensor *x = it_arg_req(c, "x"), *w = x ? it_arg_req(c, "weight") : NULL, *b = it_arg(c, "bias");
  if (!w) return -1;
  if (w->rank != 2) return it_fail(c, "weight must be [D, V]");
  int64_t D = w->shape[0], V = w->shape[1], s[IT_MAX_RANK];
  int r;
  size_t rows;
  if (nd) { /* embeddingND: [.., 1] -> [.., D] (a rank-1 input gains the D axis) */
    r = x->rank;
    memcpy(s, x->shape, (size_t)r * sizeof *s);
    if (r && x->shape[r - 1] == 1) s[r - 1] = D;
    else s[r++] = D;
    if (r > IT_MAX_RANK) return it_fail(c, "rank too large");
    rows = x->n;
  } else {
    if (x->rank < 3) return it_fail(c, "needs an input [.., 1, 1, 1]");
    r = x->rank;
    memcpy(s, x->shape, (size_t)r * sizeof *s);
    s[r - 3] = D;
    rows = it_outer(x, r - 3);
    if (x->n != rows) return it_fail(c, "the input must have C = H = W = 1");
  }
  it_tensor *o = it_out(c, 0, MLSH_DT_FP32, r, s);
  if (!o) return -1;
  const float *W = w->data;
  float *O = o->data;
  for (size_t i = 0; i < rows; i++) {
    int64_t k = (int64_t)it_get_d(x, i);
    if (k < 0 || k >= V) return it_fail(c, "index %lld is outside the vocabulary of %lld", (long long)k, (long long)V);
    for (int64_t d = 0; d < D; d++) O[i * (size_t)D + (size_t)d] = W[d * V + k] + (b ? (float)it_get_d(b, (size_t)d) : 0.0f);
  }
  return 0;
}
static int k_embedding(it_ctx *c) { return embed(c, 0); }
static int k_embedding_nd(it_ctx *c) { return embed(c, 1); }
const it_kernel_def nn_k_embedding = {"nn_embedding", k_embedding}, nn_k_embedding_nd = {"nn_embedding_nd", k_embedding_nd};

/* l2normalize (mode 0): x / sqrt(sum(x^2) + eps) over [C, H, W]; mvn (mode 1): x - mean, divided by
 * sqrt(var + eps) when "variance", over [C, H, W] ("across") or each channel's [H, W]. */
static int k_norm(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32 || x->rank < 3) return it_fail(c, "needs a float input of rank 3 or more");
  int mode = (int)it_arg_int(c, "mode", 0), across = it_arg_bool(c, "across", 1), var = it_arg_bool(c, "variance", 1);
  double eps = it_arg_float(c, "epsilon", 1e-6);
  size_t group = mode == 0 || across ? it_inner(x, x->rank - 3) : it_inner(x, x->rank - 2), ng = x->n / (group ? group : 1);
  it_tensor *o = it_out(c, 0, x->dt, x->rank, x->shape);
  if (!o) return -1;
  const float *X = x->data;
  float *O = o->data;
  for (size_t g = 0; g < ng; g++) {
    const float *xp = X + g * group;
    float *op = O + g * group;
    double s = 0, ss = 0;
    for (size_t i = 0; i < group; i++) { s += xp[i]; ss += (double)xp[i] * xp[i]; }
    if (mode == 0) {
      double inv = 1 / sqrt(ss + eps);
      for (size_t i = 0; i < group; i++) op[i] = (float)(xp[i] * inv);
    } else {
      double mean = s / (double)group, v = ss / (double)group - mean * mean, inv = var ? 1 / sqrt((v > 0 ? v : 0) + eps) : 1;
      for (size_t i = 0; i < group; i++) op[i] = (float)((xp[i] - mean) * inv);
    }
  }
  return 0;
}
const it_kernel_def nn_k_norm = {"nn_norm", k_norm};
