/* ops_index.c — indexing and ordering: gather (axis, batch_dims), gather_along_axis, gather_nd,
 * select (broadcast), topk, argsort, cumsum, one_hot, band_part. Indices may be negative (counted
 * from the end); anything outside the dimension is an error naming the op. */
#include "ops.h"
#include <stdlib.h>
#include <string.h>

static size_t esz(const it_tensor *t) { return it_storage_size(t->st); }

static it_tensor *like_out(it_ctx *c, int idx, const it_tensor *x, int rank, const int64_t *shape) {
  mlsh_dtype dt = it_out_dtype(c, idx);
  if (dt == MLSH_DT_INVALID || it_storage_of(dt) != x->st) dt = x->dt;
  return it_out(c, idx, dt, rank, shape);
}

static int index_at(it_ctx *c, const it_tensor *ix, size_t i, int64_t L, int64_t *out) {
  int64_t v = it_get_i(ix, i);
  if (v < 0) v += L;
  if (v < 0 || v >= L) return it_fail(c, "index %lld is outside a dimension of %lld", (long long)it_get_i(ix, i), (long long)L);
  *out = v;
  return 0;
}

static int k_gather(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *ix = x ? it_arg_req(c, "indices") : NULL;
  if (!ix) return -1;
  int ax = it_axis(c, it_arg_int(c, "axis", 0), x->rank);
  int bd = (int)it_arg_int(c, "batch_dims", 0);
  if (ax < 0) return -1;
  if (bd < 0 || bd > ax || bd > ix->rank) return it_fail(c, "batch_dims %d is not supported here", bd);
  int r = x->rank + ix->rank - 1 - bd;
  if (r > IT_MAX_RANK) return it_fail(c, "result rank above %d", IT_MAX_RANK);
  int64_t shape[IT_MAX_RANK];
  int k = 0;
  for (int d = 0; d < ax; d++) shape[k++] = x->shape[d];
  for (int d = bd; d < ix->rank; d++) shape[k++] = ix->shape[d];
  for (int d = ax + 1; d < x->rank; d++) shape[k++] = x->shape[d];
  it_tensor *o = like_out(c, 0, x, r, shape);
  if (!o) return -1;
  size_t B = it_outer(x, bd), pre = it_outer(x, ax) / (B ? B : 1), inner = it_inner(x, ax + 1), e = esz(x);
  size_t L = (size_t)x->shape[ax], nix = B ? ix->n / B : 0;
  char *O = o->data;
  for (size_t b = 0; b < B; b++)
    for (size_t p = 0; p < pre; p++)
      for (size_t j = 0; j < nix; j++) {
        int64_t v = 0;
        if (index_at(c, ix, b * nix + j, (int64_t)L, &v)) return -1;
        memcpy(O, (const char *)x->data + (((b * pre + p) * L + (size_t)v) * inner) * e, inner * e);
        O += inner * e;
      }
  return 0;
}

static int k_gather_along_axis(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *ix = x ? it_arg_req(c, "indices") : NULL;
  if (!ix) return -1;
  int ax = it_axis(c, it_arg_int(c, "axis", 0), x->rank);
  if (ax < 0) return -1;
  if (ix->rank != x->rank) return it_fail(c, "indices rank %d differs from x rank %d", ix->rank, x->rank);
  it_tensor *o = like_out(c, 0, x, ix->rank, ix->shape);
  if (!o) return -1;
  size_t inner = it_inner(ix, ax + 1), L = (size_t)ix->shape[ax], xin = it_inner(x, ax + 1), XL = (size_t)x->shape[ax], e = esz(x);
  int64_t idx[IT_MAX_RANK] = {0};
  for (size_t i = 0; i < ix->n; i++) {
    int64_t v = 0;
    if (index_at(c, ix, i, (int64_t)XL, &v)) return -1;
    size_t src = 0;
    for (int d = 0; d < x->rank; d++) {
      int64_t id = d == ax ? v : idx[d];
      if (id >= x->shape[d]) return it_fail(c, "indices shape exceeds x along axis %d", d);
      src = src * (size_t)x->shape[d] + (size_t)id;
    }
    memcpy((char *)o->data + i * e, (const char *)x->data + src * e, e);
    for (int d = ix->rank - 1; d >= 0; d--) { if (++idx[d] < ix->shape[d]) break; idx[d] = 0; }
  }
  (void)inner; (void)L; (void)xin;
  return 0;
}

static int k_gather_nd(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *ix = x ? it_arg_req(c, "indices") : NULL;
  if (!ix) return -1;
  if (ix->rank < 1) return it_fail(c, "indices must have rank >= 1");
  int K = (int)ix->shape[ix->rank - 1];
  if (K > x->rank) return it_fail(c, "index depth %d above x rank %d", K, x->rank);
  int r = ix->rank - 1 + x->rank - K;
  if (r > IT_MAX_RANK) return it_fail(c, "result rank too large");
  int64_t shape[IT_MAX_RANK];
  int k = 0;
  for (int d = 0; d < ix->rank - 1; d++) shape[k++] = ix->shape[d];
  for (int d = K; d < x->rank; d++) shape[k++] = x->shape[d];
  it_tensor *o = like_out(c, 0, x, r, shape);
  if (!o) return -1;
  size_t inner = it_inner(x, K), e = esz(x), nq = K ? ix->n / (size_t)K : 0;
  for (size_t q = 0; q < nq; q++) {
    size_t src = 0;
    for (int d = 0; d < K; d++) {
      int64_t v = 0;
      if (index_at(c, ix, q * (size_t)K + (size_t)d, x->shape[d], &v)) return -1;
      src = src * (size_t)x->shape[d] + (size_t)v;
    }
    memcpy((char *)o->data + q * inner * e, (const char *)x->data + src * inner * e, inner * e);
  }
  return 0;
}

static int k_select(it_ctx *c) {
  it_tensor *cd = it_arg_req(c, "cond"), *a = cd ? it_arg_req(c, "a") : NULL, *b = a ? it_arg_req(c, "b") : NULL;
  if (!b) return -1;
  int r1, r;
  int64_t s1[IT_MAX_RANK], shape[IT_MAX_RANK];
  if (it_broadcast_shape(cd->rank, cd->shape, a->rank, a->shape, &r1, s1) || it_broadcast_shape(r1, s1, b->rank, b->shape, &r, shape))
    return it_fail(c, "cond, a and b do not broadcast");
  it_tensor *o = like_out(c, 0, a, r, shape);
  if (!o) return -1;
  if (a->st != b->st) return it_fail(c, "a and b differ in type");
  const it_tensor *ts[3] = {cd, a, b};
  int64_t st[3][IT_MAX_RANK], idx[IT_MAX_RANK] = {0};
  for (int t = 0; t < 3; t++) {
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
      int td = d - (r - ts[t]->rank);
      if (td < 0) { st[t][d] = 0; continue; }
      st[t][d] = ts[t]->shape[td] == 1 ? 0 : s;
      s *= ts[t]->shape[td];
    }
  }
  size_t e = esz(a);
  for (size_t i = 0; i < o->n; i++) {
    size_t p[3] = {0, 0, 0};
    for (int t = 0; t < 3; t++) for (int d = 0; d < r; d++) p[t] += (size_t)(idx[d] * st[t][d]);
    const it_tensor *src = it_get_d(cd, p[0]) != 0 ? a : b;
    memcpy((char *)o->data + i * e, (const char *)src->data + p[src == a ? 1 : 2] * e, e);
    for (int d = r - 1; d >= 0; d--) { if (++idx[d] < shape[d]) break; idx[d] = 0; }
  }
  return 0;
}

typedef struct { double v; int64_t i; } kv;
static int desc_cmp(const void *a, const void *b) {
  const kv *x = a, *y = b;
  if (x->v != y->v) return x->v > y->v ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}
static int asc_cmp(const void *a, const void *b) {
  const kv *x = a, *y = b;
  if (x->v != y->v) return x->v < y->v ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* topk (values, indices) and argsort (indices) along axis; ties keep the lower index first. */
static int order(it_ctx *c, int argsort) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int ax = it_axis(c, it_arg_int(c, "axis", -1), x->rank);
  if (ax < 0) return -1;
  int asc = it_arg_bool(c, "ascending", 0);
  size_t L = (size_t)x->shape[ax], inner = it_inner(x, ax + 1), outer = it_outer(x, ax);
  int64_t k = argsort ? (int64_t)L : it_arg_int(c, "k", 1);
  if (k < 0) k += (int64_t)L;
  if (k < 0 || (size_t)k > L) return it_fail(c, "k = %lld for a dimension of %zu", (long long)k, L);
  int64_t shape[IT_MAX_RANK];
  memcpy(shape, x->shape, sizeof shape);
  shape[ax] = k;
  it_tensor *vo = argsort ? NULL : like_out(c, 0, x, x->rank, shape);
  it_tensor *io = it_out(c, argsort ? 0 : 1, MLSH_DT_INVALID, x->rank, shape);
  if ((!argsort && !vo) || !io) return -1;
  kv *buf = malloc((L ? L : 1) * sizeof *buf);
  if (!buf) return it_fail(c, "out of memory");
  for (size_t a = 0; a < outer; a++)
    for (size_t b = 0; b < inner; b++) {
      for (size_t i = 0; i < L; i++) { buf[i].v = it_get_d(x, (a * L + i) * inner + b); buf[i].i = (int64_t)i; }
      qsort(buf, L, sizeof *buf, asc ? asc_cmp : desc_cmp);
      for (int64_t i = 0; i < k; i++) {
        size_t op = (a * (size_t)k + (size_t)i) * inner + b;
        if (vo) memcpy((char *)vo->data + op * esz(x), (const char *)x->data + ((a * L + (size_t)buf[i].i) * inner + b) * esz(x), esz(x));
        if (io->st == IT_I64) ((int64_t *)io->data)[op] = buf[i].i;
        else if (io->st == IT_F32) ((float *)io->data)[op] = (float)buf[i].i;
      }
    }
  free(buf);
  return 0;
}
static int k_topk(it_ctx *c) { return order(c, 0); }
static int k_argsort(it_ctx *c) { return order(c, 1); }

static int k_cumsum(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int ax = it_axis(c, it_arg_int(c, "axis", 0), x->rank);
  if (ax < 0) return -1;
  int excl = it_arg_bool(c, "exclusive", 0), rev = it_arg_bool(c, "reverse", 0);
  it_tensor *o = like_out(c, 0, x, x->rank, x->shape);
  if (!o) return -1;
  size_t L = (size_t)x->shape[ax], inner = it_inner(x, ax + 1), outer = it_outer(x, ax);
  for (size_t a = 0; a < outer; a++)
    for (size_t b = 0; b < inner; b++) {
      double s = 0;
      for (size_t t = 0; t < L; t++) {
        size_t i = rev ? L - 1 - t : t, p = (a * L + i) * inner + b;
        double v = it_get_d(x, p);
        if (!excl) s += v;
        it_put_d(o, p, s);
        if (excl) s += v;
      }
    }
  return 0;
}

static int k_one_hot(it_ctx *c) {
  it_tensor *ix = it_arg_req(c, "indices");
  if (!ix) return -1;
  int64_t depth = it_arg_int(c, "one_hot_vector_size", 0);
  int r = ix->rank + 1;
  int ax = it_axis(c, it_arg_int(c, "axis", -1), r);
  if (ax < 0 || depth < 0) return -1;
  double on = it_arg_float(c, "on_value", 1), off = it_arg_float(c, "off_value", 0);
  int64_t shape[IT_MAX_RANK];
  for (int d = 0, j = 0; d < r; d++) shape[d] = d == ax ? depth : ix->shape[j++];
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, r, shape);
  if (!o) return -1;
  size_t inner = it_inner(o, ax + 1), outer = it_outer(o, ax);
  for (size_t a = 0; a < outer; a++)
    for (int64_t k = 0; k < depth; k++)
      for (size_t b = 0; b < inner; b++) {
        double v = it_get_i(ix, a * inner + b) == k ? on : off;
        size_t p = (a * (size_t)depth + (size_t)k) * inner + b;
        it_put_d(o, p, v);
      }
  return 0;
}

/* band_part: keep x[..., i, j] where (lower < 0 or i - j <= lower) and (upper < 0 or j - i <= upper). */
static int k_band_part(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->rank < 2) return it_fail(c, "needs rank >= 2");
  int64_t lo = it_arg_int(c, "lower", -1), up = it_arg_int(c, "upper", -1);
  it_tensor *o = like_out(c, 0, x, x->rank, x->shape);
  if (!o) return -1;
  size_t R = (size_t)x->shape[x->rank - 2], C = (size_t)x->shape[x->rank - 1], e = esz(x);
  memset(o->data, 0, o->n * e);
  for (size_t i = 0; i < o->n; i++) {
    int64_t col = (int64_t)(i % C), row = (int64_t)(i / C % R);
    if ((lo < 0 || row - col <= lo) && (up < 0 || col - row <= up)) memcpy((char *)o->data + i * e, (const char *)x->data + i * e, e);
  }
  return 0;
}

const it_kernel_def it_ops_index[] = {
  {"gather", k_gather}, {"gather_along_axis", k_gather_along_axis}, {"gather_nd", k_gather_nd},
  {"select", k_select}, {"topk", k_topk}, {"argsort", k_argsort}, {"cumsum", k_cumsum},
  {"one_hot", k_one_hot}, {"band_part", k_band_part}, {NULL, NULL},
};
