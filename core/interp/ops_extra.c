/* ops_extra.c — the less common ops converters emit (einsum: ops_einsum.c): scatter /
 * scatter_along_axis / scatter_nd (modes update, add, sub, mul, div, max, min), scaled_dot_product_attention (iOS18: softmax(QKᵀ/√E + mask)·V, bool
 * masks keep True), reverse, flatten2d, crop, resize_nearest_neighbor, resize_bilinear
 * (ALIGN_CORNERS / STRICT_ALIGN_CORNERS / UNALIGN_CORNERS / DEFAULT), non_zero, fill_like. */
#include "gemm.h"
#include "ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t esz(const it_tensor *t) { return it_storage_size(t->st); }

/* ---- scatter ---- */
typedef enum { S_UPDATE, S_ADD, S_SUB, S_MUL, S_DIV, S_MAX, S_MIN } smode;
static int mode_of(it_ctx *c, smode *m) {
  const char *s = it_arg_str(c, "mode", "add");
  static const char *const names[] = {"update", "add", "sub", "mul", "div", "max", "min"};
  for (int i = 0; i < 7; i++) if (strcmp(s, names[i]) == 0) { *m = (smode)i; return 0; }
  return it_fail(c, "unknown mode '%s'", s);
}
static double apply_mode(smode m, double a, double b) {
  switch (m) {
  case S_UPDATE: return b;
  case S_ADD: return a + b;
  case S_SUB: return a - b;
  case S_MUL: return a * b;
  case S_DIV: return a / b;
  case S_MAX: return a > b ? a : b;
  default: return a < b ? a : b;
  }
}
static void put(it_tensor *o, size_t i, double v) { it_put_d(o, i, v); }
static it_tensor *copy_out(it_ctx *c, it_tensor *x) {
  it_tensor *o = it_out(c, 0, x->dt, x->rank, x->shape);
  if (o) memcpy(o->data, x->data, x->n * esz(x));
  return o;
}
static int norm_index(it_ctx *c, int64_t v, int64_t L, int64_t *out) {
  if (v < 0) v += L;
  if (v < 0 || v >= L) return it_fail(c, "index %lld is outside a dimension of %lld", (long long)v, (long long)L);
  *out = v;
  return 0;
}

static int k_scatter(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "data"), *ix = x ? it_arg_req(c, "indices") : NULL, *u = ix ? it_arg_req(c, "updates") : NULL;
  smode m;
  if (!u || mode_of(c, &m)) return -1;
  int ax = it_axis(c, it_arg_int(c, "axis", 0), x->rank);
  if (ax < 0) return -1;
  size_t pre = it_outer(x, ax), inner = it_inner(x, ax + 1), L = (size_t)x->shape[ax], ni = ix->n;
  if (u->n != pre * ni * inner) return it_fail(c, "updates hold %zu values, expected %zu", u->n, pre * ni * inner);
  it_tensor *o = copy_out(c, x);
  if (!o) return -1;
  for (size_t p = 0; p < pre; p++)
    for (size_t j = 0; j < ni; j++) {
      int64_t v = 0;
      if (norm_index(c, it_get_i(ix, j), (int64_t)L, &v)) return -1;
      for (size_t q = 0; q < inner; q++) {
        size_t di = (p * L + (size_t)v) * inner + q, ui = (p * ni + j) * inner + q;
        put(o, di, apply_mode(m, it_get_d(o, di), it_get_d(u, ui)));
      }
    }
  return 0;
}

static int k_scatter_along_axis(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "data"), *ix = x ? it_arg_req(c, "indices") : NULL, *u = ix ? it_arg_req(c, "updates") : NULL;
  smode m;
  if (!u || mode_of(c, &m)) return -1;
  int ax = it_axis(c, it_arg_int(c, "axis", 0), x->rank);
  if (ax < 0) return -1;
  if (ix->rank != x->rank || ix->n != u->n) return it_fail(c, "indices and updates must match and have the data's rank");
  it_tensor *o = copy_out(c, x);
  if (!o) return -1;
  int64_t idx[IT_MAX_RANK] = {0};
  for (size_t i = 0; i < ix->n; i++) {
    int64_t v = 0;
    if (norm_index(c, it_get_i(ix, i), x->shape[ax], &v)) return -1;
    size_t di = 0;
    for (int d = 0; d < x->rank; d++) {
      int64_t id = d == ax ? v : idx[d];
      if (id >= x->shape[d]) return it_fail(c, "indices shape exceeds the data along axis %d", d);
      di = di * (size_t)x->shape[d] + (size_t)id;
    }
    put(o, di, apply_mode(m, it_get_d(o, di), it_get_d(u, i)));
    for (int d = ix->rank - 1; d >= 0; d--) { if (++idx[d] < ix->shape[d]) break; idx[d] = 0; }
  }
  return 0;
}

static int k_scatter_nd(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "data"), *ix = x ? it_arg_req(c, "indices") : NULL, *u = ix ? it_arg_req(c, "updates") : NULL;
  smode m;
  if (!u || mode_of(c, &m)) return -1;
  if (ix->rank < 1) return it_fail(c, "indices must have rank >= 1");
  int K = (int)ix->shape[ix->rank - 1];
  if (K > x->rank || K < 1) return it_fail(c, "index depth %d for data of rank %d", K, x->rank);
  size_t inner = it_inner(x, K), nq = ix->n / (size_t)K;
  if (u->n != nq * inner) return it_fail(c, "updates hold %zu values, expected %zu", u->n, nq * inner);
  it_tensor *o = copy_out(c, x);
  if (!o) return -1;
  for (size_t q = 0; q < nq; q++) {
    size_t base = 0;
    for (int d = 0; d < K; d++) {
      int64_t v = 0;
      if (norm_index(c, it_get_i(ix, q * (size_t)K + (size_t)d), x->shape[d], &v)) return -1;
      base = base * (size_t)x->shape[d] + (size_t)v;
    }
    for (size_t i = 0; i < inner; i++) put(o, base * inner + i, apply_mode(m, it_get_d(o, base * inner + i), it_get_d(u, q * inner + i)));
  }
  return 0;
}

/* ---- attention ---- */
static int k_sdpa(it_ctx *c) {
  it_tensor *q = it_arg_req(c, "query"), *k = q ? it_arg_req(c, "key") : NULL, *v = k ? it_arg_req(c, "value") : NULL, *mask = it_arg(c, "attn_mask");
  if (!v) return -1;
  if (q->rank < 3 || k->rank != q->rank || v->rank != q->rank || q->st != IT_F32 || k->st != IT_F32 || v->st != IT_F32)
    return it_fail(c, "query, key and value must be float tensors of the same rank >= 3");
  int r = q->rank;
  size_t L = (size_t)q->shape[r - 2], E = (size_t)q->shape[r - 1], S = (size_t)k->shape[r - 2], EV = (size_t)v->shape[r - 1];
  size_t nb = it_outer(q, r - 2);
  if ((size_t)k->shape[r - 1] != E || (size_t)v->shape[r - 2] != S || it_outer(k, r - 2) != nb || it_outer(v, r - 2) != nb)
    return it_fail(c, "query/key/value shapes do not agree (batch dims must be equal)");
  int64_t os[IT_MAX_RANK];
  memcpy(os, q->shape, sizeof os);
  os[r - 1] = (int64_t)EV;
  it_tensor *o = it_out_f(c, 0, r, os);
  if (!o) return -1;
  float *sc = malloc(L * S * sizeof *sc);
  if (!sc) return it_fail(c, "out of memory");
  float scale = 1.0f / sqrtf((float)E);
  for (size_t b = 0; b < nb; b++) {
    it_sgemm(L, S, E, (const float *)q->data + b * L * E, E, (const float *)k->data + b * S * E, E, 1, sc, S, 0);
    for (size_t i = 0; i < L; i++) {
      float *row = sc + i * S, mx = -INFINITY;
      for (size_t j = 0; j < S; j++) {
        row[j] *= scale;
        if (mask) { /* broadcast over batch: use the last L x S block it has */
          size_t mi = ((b * L + i) * S + j) % mask->n;
          if (mask->st == IT_B8) { if (!((uint8_t *)mask->data)[mi]) row[j] = -INFINITY; }
          else row[j] += (float)it_get_d(mask, mi);
        }
        if (row[j] > mx) mx = row[j];
      }
      double s = 0;
      for (size_t j = 0; j < S; j++) { row[j] = mx == -INFINITY ? 0 : expf(row[j] - mx); s += row[j]; }
      for (size_t j = 0; j < S; j++) row[j] = s > 0 ? (float)(row[j] / s) : 0;
    }
    it_sgemm(L, EV, S, sc, S, (const float *)v->data + b * S * EV, EV, 0, (float *)o->data + b * L * EV, EV, 0);
  }
  free(sc);
  return 0;
}

/* ---- shape-ish ---- */
static int k_reverse(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int rev[IT_MAX_RANK] = {0};
  int64_t axes[IT_MAX_RANK];
  int na = it_arg_ints(c, "axes", axes, IT_MAX_RANK);
  if (na < 0) for (int d = 0; d < x->rank; d++) rev[d] = 1;
  for (int i = 0; i < na; i++) { int a = it_axis(c, axes[i], x->rank); if (a < 0) return -1; rev[a] = 1; }
  it_tensor *o = it_out(c, 0, x->dt, x->rank, x->shape);
  if (!o) return -1;
  int64_t idx[IT_MAX_RANK] = {0};
  size_t e = esz(x);
  for (size_t i = 0; i < x->n; i++) {
    size_t src = 0;
    for (int d = 0; d < x->rank; d++) src = src * (size_t)x->shape[d] + (size_t)(rev[d] ? x->shape[d] - 1 - idx[d] : idx[d]);
    memcpy((char *)o->data + i * e, (const char *)x->data + src * e, e);
    for (int d = x->rank - 1; d >= 0; d--) { if (++idx[d] < x->shape[d]) break; idx[d] = 0; }
  }
  return 0;
}

static int k_flatten2d(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t ax = it_arg_int(c, "axis", 1);
  if (ax < 0) ax += x->rank;
  if (ax < 0 || ax > x->rank) return it_fail(c, "axis out of range");
  int64_t s[2] = {(int64_t)it_outer(x, (int)ax), (int64_t)it_inner(x, (int)ax)};
  it_tensor *o = it_out(c, 0, x->dt, 2, s);
  if (!o) return -1;
  memcpy(o->data, x->data, x->n * esz(x));
  return 0;
}

static int k_crop(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t ch[2], cw[2];
  if (x->rank < 2 || it_arg_ints(c, "crop_height", ch, 2) != 2 || it_arg_ints(c, "crop_width", cw, 2) != 2) return it_fail(c, "needs crop_height and crop_width pairs");
  int r = x->rank;
  int64_t H = x->shape[r - 2], W = x->shape[r - 1], s[IT_MAX_RANK];
  memcpy(s, x->shape, sizeof s);
  s[r - 2] = H - ch[0] - ch[1];
  s[r - 1] = W - cw[0] - cw[1];
  if (s[r - 2] < 0 || s[r - 1] < 0 || ch[0] < 0 || cw[0] < 0) return it_fail(c, "crop larger than the input");
  it_tensor *o = it_out(c, 0, x->dt, r, s);
  if (!o) return -1;
  size_t planes = it_outer(x, r - 2), e = esz(x), k = 0;
  for (size_t p = 0; p < planes; p++)
    for (int64_t h = 0; h < s[r - 2]; h++) {
      memcpy((char *)o->data + k * e, (const char *)x->data + ((p * (size_t)H + (size_t)(h + ch[0])) * (size_t)W + (size_t)cw[0]) * e, (size_t)s[r - 1] * e);
      k += (size_t)s[r - 1];
    }
  return 0;
}

static double src_coord(const char *mode, int64_t d, int64_t in, int64_t out) {
  if (!strcmp(mode, "ALIGN_CORNERS") || !strcmp(mode, "STRICT_ALIGN_CORNERS")) return out > 1 ? (double)d * (double)(in - 1) / (double)(out - 1) : 0;
  if (!strcmp(mode, "UNALIGN_CORNERS")) return ((double)d + 0.5) * (double)in / (double)out - 0.5;
  return (double)d * (double)in / (double)out; /* DEFAULT */
}

static int resize(it_ctx *c, int bilinear) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->rank < 2 || x->st != IT_F32) return it_fail(c, "needs a float input of rank >= 2");
  const char *mode = bilinear ? it_arg_str(c, "sampling_mode", "DEFAULT") : "DEFAULT";
  if (bilinear && strcmp(mode, "ALIGN_CORNERS") && strcmp(mode, "STRICT_ALIGN_CORNERS") && strcmp(mode, "UNALIGN_CORNERS") && strcmp(mode, "DEFAULT"))
    return it_fail(c, "sampling_mode %s is not supported", mode);
  int r = x->rank;
  int64_t H = x->shape[r - 2], W = x->shape[r - 1], OH = it_arg_int(c, "target_size_height", H), OW = it_arg_int(c, "target_size_width", W);
  if (OH < 1 || OW < 1) return it_fail(c, "target size must be positive");
  if (H < 1 || W < 1) return it_fail(c, "input height and width must be positive (given %lldx%lld)", (long long)H, (long long)W);
  int64_t s[IT_MAX_RANK];
  memcpy(s, x->shape, sizeof s);
  s[r - 2] = OH;
  s[r - 1] = OW;
  it_tensor *o = it_out_f(c, 0, r, s);
  if (!o) return -1;
  size_t planes = it_outer(x, r - 2);
  float *O = o->data;
  for (size_t p = 0; p < planes; p++) {
    const float *xp = (const float *)x->data + p * (size_t)(H * W);
    for (int64_t h = 0; h < OH; h++)
      for (int64_t w = 0; w < OW; w++) {
        float v;
        if (!bilinear) {
          int64_t ih = it_d2i(floor((double)h * (double)H / (double)OH)), iw = it_d2i(floor((double)w * (double)W / (double)OW));
          v = xp[(ih < H ? ih : H - 1) * W + (iw < W ? iw : W - 1)];
        } else {
          double fy = src_coord(mode, h, H, OH), fx = src_coord(mode, w, W, OW);
          fy = fy < 0 ? 0 : (fy > (double)(H - 1) ? (double)(H - 1) : fy);
          fx = fx < 0 ? 0 : (fx > (double)(W - 1) ? (double)(W - 1) : fx);
          int64_t y0 = it_d2i(floor(fy)), x0 = it_d2i(floor(fx)), y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
          double dy = fy - (double)y0, dx = fx - (double)x0;
          v = (float)((1 - dy) * ((1 - dx) * xp[y0 * W + x0] + dx * xp[y0 * W + x1]) + dy * ((1 - dx) * xp[y1 * W + x0] + dx * xp[y1 * W + x1]));
        }
        O[(p * (size_t)OH + (size_t)h) * (size_t)OW + (size_t)w] = v;
      }
  }
  return 0;
}
static int k_resize_nearest_neighbor(it_ctx *c) { return resize(c, 0); }
static int k_resize_bilinear(it_ctx *c) { return resize(c, 1); }

static int k_non_zero(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  size_t nz = 0;
  for (size_t i = 0; i < x->n; i++) nz += it_get_d(x, i) != 0;
  int64_t s[2] = {(int64_t)nz, x->rank};
  it_tensor *o = it_out(c, 0, MLSH_DT_INT32, 2, s);
  if (!o) return -1;
  size_t k = 0;
  for (size_t i = 0; i < x->n; i++) {
    if (it_get_d(x, i) == 0) continue;
    size_t r = i;
    for (int d = x->rank - 1; d >= 0; d--) { ((int64_t *)o->data)[k * (size_t)x->rank + (size_t)d] = (int64_t)(r % (size_t)x->shape[d]); r /= (size_t)x->shape[d]; }
    k++;
  }
  return 0;
}

static int k_fill_like(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "ref_tensor");
  if (!x) return -1;
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, x->rank, x->shape);
  if (!o) return -1;
  double v = it_arg_float(c, "value", 0);
  for (size_t i = 0; i < o->n; i++) put(o, i, v);
  return 0;
}

const it_kernel_def it_ops_extra[] = {
  {"scatter", k_scatter}, {"scatter_along_axis", k_scatter_along_axis}, {"scatter_nd", k_scatter_nd},
  {"scaled_dot_product_attention", k_sdpa}, {"reverse", k_reverse}, {"flatten2d", k_flatten2d}, {"crop", k_crop},
  {"resize_nearest_neighbor", k_resize_nearest_neighbor}, {"resize_bilinear", k_resize_bilinear}, {"non_zero", k_non_zero},
  {"fill_like", k_fill_like}, {NULL, NULL},
};
