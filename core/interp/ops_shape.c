/* ops_shape.c — data movement: reshape, transpose, expand_dims, squeeze, concat, split, stack,
 * slice_by_index, slice_by_size, tile, pad (constant, reflect, replicate), cast, identity, fill,
 * range_1d, shape. Works on any storage class by copying elements of its size. */
#include "ops.h"
#include "pool.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t esz(const it_tensor *t) { return it_storage_size(t->st); }

static it_tensor *same_dtype_out(it_ctx *c, const it_tensor *x, int rank, const int64_t *shape) {
  mlsh_dtype dt = it_out_dtype(c, 0);
  if (dt == MLSH_DT_INVALID || it_storage_of(dt) != x->st) dt = x->dt;
  return it_out(c, 0, dt, rank, shape);
}

static int k_reshape(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *s = x ? it_arg_req(c, "shape") : NULL;
  if (!s) return -1;
  if (s->n > IT_MAX_RANK) return it_fail(c, "target rank %zu above %d", s->n, IT_MAX_RANK);
  int64_t shape[IT_MAX_RANK];
  int r = (int)s->n, neg = -1;
  size_t known = 1;
  for (int i = 0; i < r; i++) {
    shape[i] = it_get_i(s, (size_t)i);
    if (shape[i] == 0 && i < x->rank) shape[i] = x->shape[i];
    if (shape[i] == -1) { if (neg >= 0) return it_fail(c, "two -1 dimensions"); neg = i; }
    else if (shape[i] < 0) return it_fail(c, "negative dimension");
    else known *= (size_t)shape[i];
  }
  if (neg >= 0) shape[neg] = known ? (int64_t)(x->n / known) : 0;
  if (it_numel(r, shape) != x->n) return it_fail(c, "cannot reshape %zu elements", x->n);
  if (x->st == IT_STR) return it_fail(c, "string tensors cannot be reshaped");
  it_tensor *o = same_dtype_out(c, x, r, shape);
  if (!o) return -1;
  memcpy(o->data, x->data, x->n * esz(x));
  return 0;
}

/* Copy x into o permuted: o dim i = x dim perm[i]. Output rows (of the last dim) in parallel. */
typedef struct { const char *X; char *O; const int64_t *st, *oshape; int r; size_t e; } perm_job;
static void perm_rows(void *ctx, size_t lo, size_t hi) {
  const perm_job *j = ctx;
  int r = j->r;
  size_t len = (size_t)j->oshape[r - 1], step = (size_t)j->st[r - 1], e = j->e, rest = lo, src = 0;
  int64_t idx[IT_MAX_RANK] = {0};
  for (int d = r - 2; d >= 0; d--) {
    idx[d] = (int64_t)(rest % (size_t)j->oshape[d]);
    rest /= (size_t)j->oshape[d];
    src += (size_t)(idx[d] * j->st[d]);
  }
  for (size_t row = lo; row < hi; row++) {
    char *o = j->O + row * len * e;
    const char *x = j->X + src * e;
    if (e == 4) for (size_t i = 0; i < len; i++) memcpy(o + i * 4, x + i * step * 4, 4);
    else if (e == 8) for (size_t i = 0; i < len; i++) memcpy(o + i * 8, x + i * step * 8, 8);
    else for (size_t i = 0; i < len; i++) memcpy(o + i * e, x + i * step * e, e);
    for (int d = r - 2; d >= 0; d--) {
      src += (size_t)j->st[d];
      if (++idx[d] < j->oshape[d]) break;
      src -= (size_t)(j->st[d] * j->oshape[d]);
      idx[d] = 0;
    }
  }
}

static void permute(const it_tensor *x, const int *perm, it_tensor *o) {
  int r = x->rank;
  int64_t xst[IT_MAX_RANK], st[IT_MAX_RANK];
  int64_t s = 1;
  size_t e = esz(x);
  if (r == 0 || o->n == 0) {
    if (o->n) memcpy(o->data, x->data, e);
    return;
  }
  for (int i = r - 1; i >= 0; i--) { xst[i] = s; s *= x->shape[i]; }
  for (int i = 0; i < r; i++) st[i] = xst[perm[i]];
  perm_job j = {x->data, o->data, st, o->shape, r, e};
  size_t len = (size_t)o->shape[r - 1];
  it_parallel_range(o->n / len, len, perm_rows, &j);
}

static int k_transpose(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t p[IT_MAX_RANK];
  int np = it_arg_ints(c, "perm", p, IT_MAX_RANK), perm[IT_MAX_RANK], seen[IT_MAX_RANK] = {0};
  if (np != x->rank) return it_fail(c, "perm has %d entries, the input rank %d", np, x->rank);
  int64_t shape[IT_MAX_RANK];
  for (int i = 0; i < np; i++) {
    int a = it_axis(c, p[i], x->rank);
    if (a < 0) return -1;
    if (seen[a]++) return it_fail(c, "perm repeats axis %d", a);
    perm[i] = a;
    shape[i] = x->shape[a];
  }
  it_tensor *o = same_dtype_out(c, x, x->rank, shape);
  if (!o) return -1;
  permute(x, perm, o);
  return 0;
}

static int copy_shaped(it_ctx *c, it_tensor *x, int r, const int64_t *shape) {
  if (x->st == IT_STR) return it_fail(c, "string tensors are constants only");
  it_tensor *o = same_dtype_out(c, x, r, shape);
  if (!o) return -1;
  memcpy(o->data, x->data, x->n * esz(x));
  return 0;
}

static int k_expand_dims(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t axes[IT_MAX_RANK];
  int na = it_arg_ints(c, "axes", axes, IT_MAX_RANK), r = x->rank + (na > 0 ? na : 0), ins[IT_MAX_RANK] = {0};
  if (na < 0 || r > IT_MAX_RANK) return it_fail(c, "bad axes");
  for (int i = 0; i < na; i++) {
    int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
    if (a < 0 || a >= r) return it_fail(c, "axis %lld out of range", (long long)axes[i]);
    ins[a] = 1;
  }
  int64_t shape[IT_MAX_RANK];
  for (int i = 0, j = 0; i < r; i++) shape[i] = ins[i] ? 1 : x->shape[j++];
  return copy_shaped(c, x, r, shape);
}

static int k_squeeze(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t axes[IT_MAX_RANK];
  int na = it_arg_ints(c, "axes", axes, IT_MAX_RANK), drop[IT_MAX_RANK] = {0};
  if (na < 0) for (int i = 0; i < x->rank; i++) drop[i] = x->shape[i] == 1;
  for (int i = 0; i < na; i++) {
    int a = it_axis(c, axes[i], x->rank);
    if (a < 0) return -1;
    if (x->shape[a] != 1) return it_fail(c, "axis %d has size %lld, not 1", a, (long long)x->shape[a]);
    drop[a] = 1;
  }
  int64_t shape[IT_MAX_RANK];
  int r = 0;
  for (int i = 0; i < x->rank; i++) if (!drop[i]) shape[r++] = x->shape[i];
  return copy_shaped(c, x, r, shape);
}

static int k_identity(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  return x ? copy_shaped(c, x, x->rank, x->shape) : -1;
}

/* concat(values, axis, interleave) and stack(values, axis). */
static int join(it_ctx *c, int stack) {
  int n = it_arg_count(c, "values");
  if (n < 1) return it_fail(c, "no values");
  it_tensor *f = it_arg_at(c, "values", 0);
  int r = stack ? f->rank + 1 : f->rank;
  int ax = it_axis(c, it_arg_int(c, "axis", 0), r);
  if (ax < 0) return -1;
  if (it_arg_bool(c, "interleave", 0)) return it_fail(c, "interleave is not supported");
  int64_t shape[IT_MAX_RANK];
  if (stack) {
    for (int i = 0, j = 0; i < r; i++) shape[i] = i == ax ? n : f->shape[j++];
  } else {
    memcpy(shape, f->shape, sizeof shape);
    shape[ax] = 0;
  }
  for (int k = 0; k < n; k++) {
    it_tensor *t = it_arg_at(c, "values", k);
    if (t->rank != f->rank || t->st != f->st) return it_fail(c, "values differ in rank or type");
    for (int d = 0; d < f->rank; d++)
      if (!stack && d != ax && t->shape[d] != f->shape[d]) return it_fail(c, "value %d has dimension %d = %lld, expected %lld", k, d, (long long)t->shape[d], (long long)f->shape[d]);
      else if (stack && t->shape[d] != f->shape[d]) return it_fail(c, "values differ in shape");
    if (!stack) shape[ax] += t->shape[ax];
  }
  it_tensor *o = same_dtype_out(c, f, r, shape);
  if (!o) return -1;
  size_t outer = 1, e = esz(f);
  for (int d = 0; d < ax; d++) outer *= (size_t)shape[d];
  size_t orow = o->n / (outer ? outer : 1), off = 0;
  for (int k = 0; k < n; k++) {
    it_tensor *t = it_arg_at(c, "values", k);
    size_t row = outer ? t->n / outer : 0;
    for (size_t a = 0; a < outer; a++) memcpy((char *)o->data + (a * orow + off) * e, (char *)t->data + a * row * e, row * e);
    off += row;
  }
  return 0;
}
static int k_concat(it_ctx *c) { return join(c, 0); }
static int k_stack(it_ctx *c) { return join(c, 1); }

static int k_split(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int ax = it_axis(c, it_arg_int(c, "axis", 0), x->rank);
  if (ax < 0) return -1;
  int n = c->op->nout;
  int64_t sizes[IT_MAX_OUT];
  int ns = it_arg_ints(c, "split_sizes", sizes, IT_MAX_OUT);
  if (ns < 0) {
    int64_t k = it_arg_int(c, "num_splits", n), L = x->shape[ax];
    if (k != n || k < 1) return it_fail(c, "num_splits %lld but %d outputs", (long long)k, n);
    for (int i = 0; i < n; i++) sizes[i] = (L + k - 1) / k;
    sizes[n - 1] = L - (L + k - 1) / k * (k - 1);
  } else if (ns != n) return it_fail(c, "%d split sizes, %d outputs", ns, n);
  int64_t tot = 0;
  for (int i = 0; i < n; i++) tot += sizes[i];
  if (tot != x->shape[ax]) return it_fail(c, "split sizes add up to %lld, the axis has %lld", (long long)tot, (long long)x->shape[ax]);
  size_t outer = it_outer(x, ax), inner = it_inner(x, ax + 1), e = esz(x), L = (size_t)x->shape[ax];
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    int64_t shape[IT_MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = sizes[i];
    mlsh_dtype dt = it_out_dtype(c, i);
    it_tensor *o = it_out(c, i, dt != MLSH_DT_INVALID && it_storage_of(dt) == x->st ? dt : x->dt, x->rank, shape);
    if (!o) return -1;
    size_t row = (size_t)sizes[i] * inner;
    for (size_t a = 0; a < outer; a++) memcpy((char *)o->data + a * row * e, (char *)x->data + (a * L * inner + off) * e, row * e);
    off += row;
  }
  return 0;
}

/* Strided gather of a box: begin/stride per dim, out shape. */
static void copy_box(const it_tensor *x, const int64_t *begin, const int64_t *stride, int r, const int64_t *oshape, it_tensor *o) {
  int64_t xst[IT_MAX_RANK], idx[IT_MAX_RANK] = {0};
  int64_t s = 1;
  for (int i = x->rank - 1; i >= 0; i--) { xst[i] = s; s *= x->shape[i]; }
  size_t e = esz(x);
  for (size_t i = 0; i < o->n; i++) {
    size_t src = 0;
    for (int d = 0; d < r; d++) src += (size_t)((begin[d] + idx[d] * stride[d]) * xst[d]);
    memcpy((char *)o->data + i * e, (const char *)x->data + src * e, e);
    for (int d = r - 1; d >= 0; d--) {
      if (++idx[d] < oshape[d]) break;
      idx[d] = 0;
    }
  }
}

/* An optional int vector parameter of exactly r values, or def everywhere when absent. */
static int opt_vec(it_ctx *c, const char *name, int64_t *out, int r, int64_t def) {
  int n = it_arg_ints(c, name, out, IT_MAX_RANK);
  if (n < 0) {
    for (int i = 0; i < IT_MAX_RANK; i++) out[i] = def;
    return 0;
  }
  return n == r ? 0 : it_fail(c, "%s has %d values, the input has rank %d", name, n, r);
}

static int k_slice_by_index(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int r = x->rank;
  int64_t b[IT_MAX_RANK], en[IT_MAX_RANK], st[IT_MAX_RANK], bm[IT_MAX_RANK], em[IT_MAX_RANK], sm[IT_MAX_RANK];
  if (it_arg_ints(c, "begin", b, IT_MAX_RANK) != r || it_arg_ints(c, "end", en, IT_MAX_RANK) != r) return it_fail(c, "begin/end must have %d values", r);
  if (opt_vec(c, "stride", st, r, 1) || opt_vec(c, "begin_mask", bm, r, 0) || opt_vec(c, "end_mask", em, r, 0) ||
      opt_vec(c, "squeeze_mask", sm, r, 0))
    return -1;
  int64_t oshape[IT_MAX_RANK], full[IT_MAX_RANK];
  int orank = 0;
  for (int d = 0; d < r; d++) {
    int64_t L = x->shape[d], s = st[d];
    if (s == 0 || s == INT64_MIN) return it_fail(c, "stride %lld along axis %d", (long long)s, d);
    int64_t lo = b[d] < 0 ? b[d] + L : b[d], hi = en[d] < 0 ? en[d] + L : en[d];
    if (s > 0) {
      if (bm[d]) lo = 0;
      if (em[d]) hi = L;
      lo = lo < 0 ? 0 : (lo > L ? L : lo);
      hi = hi < 0 ? 0 : (hi > L ? L : hi);
      full[d] = hi > lo ? (hi - lo - 1) / s + 1 : 0; /* no overflow for a huge stride */
    } else {
      if (bm[d]) lo = L - 1;
      if (em[d]) hi = -1;
      lo = lo < -1 ? -1 : (lo > L - 1 ? L - 1 : lo);
      hi = hi < -1 ? -1 : (hi > L - 1 ? L - 1 : hi);
      full[d] = lo > hi ? (lo - hi - 1) / (-s) + 1 : 0;
    }
    if (sm[d]) { full[d] = 1; if (lo < 0 || lo >= L) return it_fail(c, "squeezed index out of range"); }
    b[d] = lo;
    if (!sm[d]) oshape[orank++] = full[d];
  }
  it_tensor *o = same_dtype_out(c, x, orank, oshape);
  if (!o) return -1;
  copy_box(x, b, st, r, full, o);
  return 0;
}

static int k_slice_by_size(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int r = x->rank;
  int64_t b[IT_MAX_RANK], sz[IT_MAX_RANK], st[IT_MAX_RANK];
  if (it_arg_ints(c, "begin", b, IT_MAX_RANK) != r || it_arg_ints(c, "size", sz, IT_MAX_RANK) != r) return it_fail(c, "begin/size must have %d values", r);
  for (int d = 0; d < r; d++) {
    if (b[d] < 0) b[d] += x->shape[d];
    if (sz[d] == -1) sz[d] = x->shape[d] - b[d];
    if (b[d] < 0 || sz[d] < 0 || b[d] + sz[d] > x->shape[d]) return it_fail(c, "slice out of range along axis %d", d);
    st[d] = 1;
  }
  it_tensor *o = same_dtype_out(c, x, r, sz);
  if (!o) return -1;
  copy_box(x, b, st, r, sz, o);
  return 0;
}

static int k_tile(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t reps[IT_MAX_RANK], shape[IT_MAX_RANK], idx[IT_MAX_RANK] = {0};
  if (it_arg_ints(c, "reps", reps, IT_MAX_RANK) != x->rank) return it_fail(c, "reps must have %d values", x->rank);
  for (int d = 0; d < x->rank; d++) shape[d] = x->shape[d] * reps[d];
  it_tensor *o = same_dtype_out(c, x, x->rank, shape);
  if (!o) return -1;
  size_t e = esz(x);
  for (size_t i = 0; i < o->n; i++) {
    size_t src = 0;
    for (int d = 0; d < x->rank; d++) src = src * (size_t)x->shape[d] + (size_t)(idx[d] % x->shape[d]);
    memcpy((char *)o->data + i * e, (char *)x->data + src * e, e);
    for (int d = x->rank - 1; d >= 0; d--) { if (++idx[d] < shape[d]) break; idx[d] = 0; }
  }
  return 0;
}

static int k_pad(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t pad[2 * IT_MAX_RANK], pb[IT_MAX_RANK] = {0}, shape[IT_MAX_RANK], idx[IT_MAX_RANK] = {0};
  int np = it_arg_ints(c, "pad", pad, 2 * IT_MAX_RANK);
  if (np < 0 || np % 2 || np / 2 > x->rank) return it_fail(c, "pad must hold begin/end pairs for at most %d dims", x->rank);
  const char *mode = it_arg_str(c, "mode", "constant");
  int m = strcmp(mode, "constant") == 0 ? 0 : strcmp(mode, "reflect") == 0 ? 1 : strcmp(mode, "replicate") == 0 ? 2 : -1;
  if (m < 0) return it_fail(c, "unknown pad mode '%s'", mode);
  double cv = it_arg_float(c, "constant_val", 0);
  memcpy(shape, x->shape, sizeof shape);
  int first = x->rank - np / 2;
  for (int i = 0; i < np / 2; i++) {
    int d = first + i;
    pb[d] = pad[2 * i];
    shape[d] = x->shape[d] + pad[2 * i] + pad[2 * i + 1];
    if (pad[2 * i] < 0 || pad[2 * i + 1] < 0) return it_fail(c, "negative padding");
    if (m == 1 && (pad[2 * i] >= x->shape[d] || pad[2 * i + 1] >= x->shape[d])) return it_fail(c, "reflect padding must be smaller than the dimension");
  }
  it_tensor *o = same_dtype_out(c, x, x->rank, shape);
  if (!o) return -1;
  for (size_t i = 0; i < o->n; i++) {
    size_t src = 0;
    int outside = 0;
    for (int d = 0; d < x->rank; d++) {
      int64_t p = idx[d] - pb[d], L = x->shape[d];
      if (p < 0 || p >= L) {
        if (m == 0) outside = 1;
        else if (m == 1) p = p < 0 ? -p : 2 * (L - 1) - p;
        else p = p < 0 ? 0 : L - 1;
      }
      src = src * (size_t)L + (size_t)(outside ? 0 : p);
    }
    if (o->st == IT_F32) ((float *)o->data)[i] = outside ? (float)cv : ((float *)x->data)[src];
    else if (o->st == IT_I64) ((int64_t *)o->data)[i] = outside ? it_d2i(cv) : ((int64_t *)x->data)[src];
    else if (o->st == IT_B8) ((uint8_t *)o->data)[i] = outside ? cv != 0 : ((uint8_t *)x->data)[src];
    for (int d = x->rank - 1; d >= 0; d--) { if (++idx[d] < shape[d]) break; idx[d] = 0; }
  }
  return 0;
}

static int k_cast(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  mlsh_dtype dt = it_out_dtype(c, 0);
  const char *name = it_arg_str(c, "dtype", NULL);
  if (name) {
    mlsh_dtype d2 = strcmp(name, "fp16") == 0 ? MLSH_DT_FP16 : mlsh_dtype_from_name(name);
    if (d2 != MLSH_DT_INVALID) dt = d2;
  }
  if (dt == MLSH_DT_INVALID) return it_fail(c, "unknown target dtype");
  mlsh_err e2;
  it_tensor *o = it_convert(x, dt, &e2);
  if (!o) return it_fail(c, "%s", e2.msg);
  if (o->st == IT_F32 && !it_rounds_fp16(c->env, dt)) { /* fp32 precision: undo the rounding it_convert did */
    for (size_t i = 0; i < o->n; i++) ((float *)o->data)[i] = (float)it_get_d(x, i);
  }
  it_out_set(c, 0, o);
  it_unref(o);
  return 0;
}

static int k_fill(it_ctx *c) {
  it_tensor *s = it_arg_req(c, "shape");
  if (!s) return -1;
  if (s->n > IT_MAX_RANK) return it_fail(c, "rank above %d", IT_MAX_RANK);
  int64_t shape[IT_MAX_RANK];
  for (size_t i = 0; i < s->n; i++) shape[i] = it_get_i(s, i);
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, (int)s->n, shape);
  if (!o) return -1;
  double v = it_arg_float(c, "value", 0);
  for (size_t i = 0; i < o->n; i++) it_put_d(o, i, v);
  return 0;
}

static int k_range_1d(it_ctx *c) {
  double s = it_arg_float(c, "start", 0), e = it_arg_float(c, "end", 0), st = it_arg_float(c, "step", 1);
  if (st == 0) return it_fail(c, "step 0");
  double nn = ceil((e - s) / st);
  int64_t n = nn > 0 ? it_d2i(nn) : 0;
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, 1, &n);
  if (!o) return -1;
  for (int64_t i = 0; i < n; i++) it_put_d(o, (size_t)i, s + (double)i * st);
  return 0;
}

static int k_shape(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int64_t r = x->rank;
  it_tensor *o = it_out(c, 0, MLSH_DT_INT32, 1, &r);
  if (!o) return -1;
  for (int i = 0; i < x->rank; i++) ((int64_t *)o->data)[i] = x->shape[i];
  return 0;
}

const it_kernel_def it_ops_shape[] = {
  {"reshape", k_reshape}, {"transpose", k_transpose}, {"expand_dims", k_expand_dims}, {"squeeze", k_squeeze},
  {"identity", k_identity}, {"concat", k_concat}, {"stack", k_stack}, {"split", k_split},
  {"slice_by_index", k_slice_by_index}, {"slice_by_size", k_slice_by_size}, {"tile", k_tile}, {"pad", k_pad},
  {"cast", k_cast}, {"fill", k_fill}, {"range_1d", k_range_1d}, {"shape", k_shape}, {NULL, NULL},
};
