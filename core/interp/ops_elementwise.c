/* ops_elementwise.c — binary ops with numpy broadcasting (arithmetic, comparison, logical) and
 * elementwise unary math. Floats compute in float (fp16 programs are rounded by the executor
 * after the op); ints in int64; bools as 0/1. */
#include "ops.h"
#include "pool.h"
#include <math.h>
#include <string.h>

typedef enum { K_ARITH, K_CMP, K_LOGIC } bkind;
typedef float (*ffn)(float, float);
typedef int64_t (*ifn)(int64_t, int64_t);

static float f_add(float a, float b) { return a + b; }
static float f_sub(float a, float b) { return a - b; }
static float f_mul(float a, float b) { return a * b; }
static float f_div(float a, float b) { return a / b; }
static float f_fdiv(float a, float b) { return floorf(a / b); }
static float f_mod(float a, float b) { return a - floorf(a / b) * b; }
static float f_pow(float a, float b) { return powf(a, b); }
static float f_max(float a, float b) { return a > b || a != a ? a : b; }
static float f_min(float a, float b) { return a < b || a != a ? a : b; }
static float f_eq(float a, float b) { return a == b; }
static float f_ne(float a, float b) { return a != b; }
static float f_gt(float a, float b) { return a > b; }
static float f_ge(float a, float b) { return a >= b; }
static float f_lt(float a, float b) { return a < b; }
static float f_le(float a, float b) { return a <= b; }
static float f_and(float a, float b) { return (a != 0) && (b != 0); }
static float f_or(float a, float b) { return (a != 0) || (b != 0); }
static float f_xor(float a, float b) { return (a != 0) != (b != 0); }
static int64_t i_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t i_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t i_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static int64_t i_fdiv(int64_t a, int64_t b) {
  if (b == 0 || (a == INT64_MIN && b == -1)) return 0;
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static int64_t i_div(int64_t a, int64_t b) { return i_fdiv(a, b); }
static int64_t i_mod(int64_t a, int64_t b) {
  if (b == 0 || (a == INT64_MIN && b == -1)) return 0;
  int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
static int64_t i_pow(int64_t a, int64_t b) {
  int64_t r = 1;
  for (int64_t i = 0; i < b && i < 64; i++) r = i_mul(r, a);
  return r;
}
static int64_t i_max(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t i_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t i_eq(int64_t a, int64_t b) { return a == b; }
static int64_t i_ne(int64_t a, int64_t b) { return a != b; }
static int64_t i_gt(int64_t a, int64_t b) { return a > b; }
static int64_t i_ge(int64_t a, int64_t b) { return a >= b; }
static int64_t i_lt(int64_t a, int64_t b) { return a < b; }
static int64_t i_le(int64_t a, int64_t b) { return a <= b; }
static int64_t i_and(int64_t a, int64_t b) { return a && b; }
static int64_t i_or(int64_t a, int64_t b) { return a || b; }
static int64_t i_xor(int64_t a, int64_t b) { return (a != 0) != (b != 0); }

typedef struct { const char *type; ffn f; ifn i; bkind kind; } binop;
static const binop BINOPS[] = {
  {"add", f_add, i_add, K_ARITH}, {"sub", f_sub, i_sub, K_ARITH}, {"mul", f_mul, i_mul, K_ARITH},
  {"real_div", f_div, i_div, K_ARITH}, {"floor_div", f_fdiv, i_fdiv, K_ARITH}, {"mod", f_mod, i_mod, K_ARITH},
  {"pow", f_pow, i_pow, K_ARITH}, {"maximum", f_max, i_max, K_ARITH}, {"minimum", f_min, i_min, K_ARITH},
  {"equal", f_eq, i_eq, K_CMP}, {"not_equal", f_ne, i_ne, K_CMP}, {"greater", f_gt, i_gt, K_CMP},
  {"greater_equal", f_ge, i_ge, K_CMP}, {"less", f_lt, i_lt, K_CMP}, {"less_equal", f_le, i_le, K_CMP},
  {"logical_and", f_and, i_and, K_LOGIC}, {"logical_or", f_or, i_or, K_LOGIC}, {"logical_xor", f_xor, i_xor, K_LOGIC},
};

/* Strides of t broadcast into an output of rank r and shape out (0 along broadcast dims). */
static void bstrides(const it_tensor *t, int r, const int64_t *out, int64_t *st) {
  int64_t s = 1;
  for (int i = r - 1; i >= 0; i--) {
    int ti = i - (r - t->rank);
    if (ti < 0) { st[i] = 0; continue; }
    st[i] = (t->shape[ti] == 1 && out[i] != 1) ? 0 : s;
    s *= t->shape[ti];
  }
}

/* Walk rows [lo, hi) of the output (rows of the last dimension): fn(ud, offset_a, step_a,
 * offset_b, step_b, out_offset, len). */
typedef void (*rowfn)(void *ud, size_t ia, size_t sa, size_t ib, size_t sb, size_t io, size_t len);
typedef struct { const int64_t *out, *sa, *sb; int r; rowfn fn; void *ud; } walk_job;
static void walk_rows(void *ctx, size_t lo, size_t hi) {
  const walk_job *w = ctx;
  int r = w->r;
  size_t len = (size_t)w->out[r - 1], io = lo * len, rest = lo;
  int64_t idx[IT_MAX_RANK + 1] = {0};
  for (int d = r - 2; d >= 0; d--) { idx[d] = (int64_t)(rest % (size_t)w->out[d]); rest /= (size_t)w->out[d]; }
  for (size_t row = lo; row < hi; row++) {
    size_t ia = 0, ib = 0;
    for (int d = 0; d < r - 1; d++) { ia += (size_t)(idx[d] * w->sa[d]); ib += (size_t)(idx[d] * w->sb[d]); }
    w->fn(w->ud, ia, (size_t)w->sa[r - 1], ib, (size_t)w->sb[r - 1], io, len);
    io += len;
    for (int d = r - 2; d >= 0; d--) {
      if (++idx[d] < w->out[d]) break;
      idx[d] = 0;
    }
  }
}
/* par: rows may run on the worker pool (fn writes only its own output row). */
static void walk(const it_tensor *a, const it_tensor *b, int r, const int64_t *out, rowfn fn, void *ud, int par) {
  int64_t sa[IT_MAX_RANK + 1], sb[IT_MAX_RANK + 1];
  if (r == 0) { fn(ud, 0, 0, 0, 0, 0, 1); return; }
  bstrides(a, r, out, sa);
  bstrides(b, r, out, sb);
  size_t len = (size_t)out[r - 1], rows = it_numel(r - 1, out);
  if (len == 0 || rows == 0) return; /* an empty dimension: nothing to write (and no modulo by 0) */
  walk_job w = {out, sa, sb, r, fn, ud};
  if (par) it_parallel_range(rows, len, walk_rows, &w);
  else walk_rows(&w, 0, rows);
}

typedef struct { const binop *op; const it_tensor *a, *b; it_tensor *o; } bin_ud;

static void row_f(void *u, size_t ia, size_t sa, size_t ib, size_t sb, size_t io, size_t len) {
  bin_ud *x = u;
  const float *a = (const float *)x->a->data + ia, *b = (const float *)x->b->data + ib;
  float *o = (float *)x->o->data + io;
  ffn f = x->op->f;
  if (f == f_add && sa == 1 && sb == 1) for (size_t i = 0; i < len; i++) o[i] = a[i] + b[i];
  else if (f == f_add && sa == 1 && sb == 0) for (size_t i = 0; i < len; i++) o[i] = a[i] + b[0];
  else if (f == f_mul && sa == 1 && sb == 1) for (size_t i = 0; i < len; i++) o[i] = a[i] * b[i];
  else if (f == f_mul && sa == 1 && sb == 0) for (size_t i = 0; i < len; i++) o[i] = a[i] * b[0];
  else if (f == f_sub && sa == 1 && sb == 1) for (size_t i = 0; i < len; i++) o[i] = a[i] - b[i];
  else for (size_t i = 0; i < len; i++) o[i] = f(a[i * sa], b[i * sb]);
}

static void row_i(void *u, size_t ia, size_t sa, size_t ib, size_t sb, size_t io, size_t len) {
  bin_ud *x = u;
  const int64_t *a = (const int64_t *)x->a->data + ia, *b = (const int64_t *)x->b->data + ib;
  for (size_t i = 0; i < len; i++) {
    int64_t v = x->op->i(a[i * sa], b[i * sb]);
    if (x->o->st == IT_I64) ((int64_t *)x->o->data)[io + i] = v;
    else if (x->o->st == IT_B8) ((uint8_t *)x->o->data)[io + i] = v != 0;
    else ((float *)x->o->data)[io + i] = (float)v;
  }
}

static void row_any(void *u, size_t ia, size_t sa, size_t ib, size_t sb, size_t io, size_t len) {
  bin_ud *x = u;
  for (size_t i = 0; i < len; i++) {
    float v = x->op->f((float)it_get_d(x->a, ia + i * sa), (float)it_get_d(x->b, ib + i * sb));
    if (x->o->st == IT_F32) ((float *)x->o->data)[io + i] = v;
    else if (x->o->st == IT_B8) ((uint8_t *)x->o->data)[io + i] = v != 0;
    else ((int64_t *)x->o->data)[io + i] = it_d2i(v);
  }
}

static int binary(it_ctx *c, const binop *op) {
  it_tensor *a = it_arg_req(c, "x"), *b = a ? it_arg_req(c, "y") : NULL;
  if (!b) return -1;
  int r;
  int64_t shape[IT_MAX_RANK];
  if (it_broadcast_shape(a->rank, a->shape, b->rank, b->shape, &r, shape) != 0) {
    char sa[96], sb[96];
    return it_fail(c, "shapes %s and %s do not broadcast", it_describe(a, sa, sizeof sa), it_describe(b, sb, sizeof sb));
  }
  mlsh_dtype dt = it_out_dtype(c, 0);
  if (dt == MLSH_DT_INVALID) dt = op->kind == K_ARITH ? a->dt : MLSH_DT_BOOL;
  it_tensor *o = it_out(c, 0, dt, r, shape);
  if (!o) return -1;
  bin_ud u = {op, a, b, o};
  /* add / mul / sub are memory-bound: threads pay only on big tensors (as for relu, IT_BIG_MAP) */
  int cheap = op->f == f_add || op->f == f_mul || op->f == f_sub;
  if (a->st == IT_F32 && b->st == IT_F32 && o->st == IT_F32) walk(a, b, r, shape, row_f, &u, !cheap || o->n >= IT_BIG_MAP);
  else if (a->st == IT_I64 && b->st == IT_I64 && o->st != IT_F32) walk(a, b, r, shape, row_i, &u, 0);
  else walk(a, b, r, shape, row_any, &u, 0);
  return 0;
}

#define BIN(name, idx) static int k_##name(it_ctx *c) { return binary(c, &BINOPS[idx]); }
BIN(add, 0) BIN(sub, 1) BIN(mul, 2) BIN(real_div, 3) BIN(floor_div, 4) BIN(mod, 5) BIN(pow, 6) BIN(maximum, 7)
BIN(minimum, 8) BIN(equal, 9) BIN(not_equal, 10) BIN(greater, 11) BIN(greater_equal, 12) BIN(less, 13)
BIN(less_equal, 14) BIN(logical_and, 15) BIN(logical_or, 16) BIN(logical_xor, 17)

/* ---- unary math ---- */
typedef float (*ufn)(float);
static float u_abs(float x) { return fabsf(x); }
static float u_ceil(float x) { return ceilf(x); }
static float u_floor(float x) { return floorf(x); }
static float u_round(float x) { return nearbyintf(x); } /* MIL round: half to even, like numpy */
static float u_sign(float x) { return (float)((x > 0) - (x < 0)); }
static float u_sqrt(float x) { return sqrtf(x); }
static float u_exp(float x) { return expf(x); }
static float u_exp2(float x) { return exp2f(x); }
static float u_sin(float x) { return sinf(x); }
static float u_cos(float x) { return cosf(x); }
static float u_tan(float x) { return tanf(x); }
static float u_asin(float x) { return asinf(x); }
static float u_acos(float x) { return acosf(x); }
static float u_atan(float x) { return atanf(x); }
static float u_sinh(float x) { return sinhf(x); }
static float u_cosh(float x) { return coshf(x); }
static float u_asinh(float x) { return asinhf(x); }
static float u_acosh(float x) { return acoshf(x); }
static float u_atanh(float x) { return atanhf(x); }
static float u_erf(float x) { return erff(x); }
static float u_square(float x) { return x * x; }
static float u_not(float x) { return x == 0; }

typedef struct { ufn f; const float *a; float *d; } un_job;
static void un_range(void *ctx, size_t lo, size_t hi) {
  const un_job *j = ctx;
  for (size_t i = lo; i < hi; i++) j->d[i] = j->f(j->a[i]);
}

static int unary(it_ctx *c, ufn f) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, x->rank, x->shape);
  if (!o) return -1;
  if (x->st == IT_F32 && o->st == IT_F32) {
    un_job j = {f, x->data, o->data};
    it_parallel_range(x->n, 16, un_range, &j);
  } else
    for (size_t i = 0; i < x->n; i++) it_put_d(o, i, f((float)it_get_d(x, i)));
  return 0;
}

#define UN(name, fn) static int k_##name(it_ctx *c) { return unary(c, fn); }
UN(abs, u_abs) UN(ceil, u_ceil) UN(floor, u_floor) UN(round, u_round) UN(sign, u_sign) UN(sqrt, u_sqrt)
UN(exp, u_exp) UN(exp2, u_exp2) UN(sin, u_sin) UN(cos, u_cos) UN(tan, u_tan) UN(asin, u_asin) UN(acos, u_acos)
UN(atan, u_atan) UN(sinh, u_sinh) UN(cosh, u_cosh) UN(asinh, u_asinh) UN(acosh, u_acosh) UN(atanh, u_atanh)
UN(erf, u_erf) UN(square, u_square) UN(logical_not, u_not)

/* Ops with an epsilon or bounds. */
typedef struct { int which; const float *a; float *d; float eps, alpha, beta; } eps_job;
static void eps_range(void *ctx, size_t lo, size_t hi) {
  const eps_job *j = ctx;
  const float *a = j->a;
  float *d = j->d, eps = j->eps, alpha = j->alpha;
  for (size_t i = lo; i < hi; i++) switch (j->which) {
    case 0: d[i] = logf(a[i] + eps); break;                     /* log(x + epsilon) */
    case 1: d[i] = 1.0f / sqrtf(a[i] + eps); break;             /* rsqrt */
    case 2: d[i] = 1.0f / (a[i] + eps); break;                  /* inverse */
    default: d[i] = a[i] > alpha ? a[i] : alpha; break;         /* threshold: max(x, alpha) */
    }
}

static int eps_map(it_ctx *c, int which) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input");
  it_tensor *o = it_out_f(c, 0, x->rank, x->shape);
  if (!o) return -1;
  eps_job j = {which, x->data, o->data, (float)it_arg_float(c, "epsilon", which == 2 ? 1e-4 : 1e-45),
               (float)it_arg_float(c, "alpha", 0), (float)it_arg_float(c, "beta", 0)};
  if (which >= 3 && x->n < IT_BIG_MAP) eps_range(&j, 0, x->n); /* memory-bound: see ops_activation.c */
  else it_parallel_range(x->n, which >= 3 ? 1 : 8, eps_range, &j);
  return 0;
}
static int k_log(it_ctx *c) { return eps_map(c, 0); }
static int k_rsqrt(it_ctx *c) { return eps_map(c, 1); }
static int k_inverse(it_ctx *c) { return eps_map(c, 2); }
static int k_threshold(it_ctx *c) { return eps_map(c, 4); }

const it_kernel_def it_ops_elementwise[] = {
  {"add", k_add}, {"sub", k_sub}, {"mul", k_mul}, {"real_div", k_real_div}, {"floor_div", k_floor_div},
  {"mod", k_mod}, {"pow", k_pow}, {"maximum", k_maximum}, {"minimum", k_minimum}, {"equal", k_equal},
  {"not_equal", k_not_equal}, {"greater", k_greater}, {"greater_equal", k_greater_equal}, {"less", k_less},
  {"less_equal", k_less_equal}, {"logical_and", k_logical_and}, {"logical_or", k_logical_or},
  {"logical_xor", k_logical_xor}, {"logical_not", k_logical_not}, {"abs", k_abs}, {"ceil", k_ceil},
  {"floor", k_floor}, {"round", k_round}, {"sign", k_sign}, {"sqrt", k_sqrt}, {"rsqrt", k_rsqrt},
  {"exp", k_exp}, {"exp2", k_exp2}, {"log", k_log}, {"sin", k_sin}, {"cos", k_cos}, {"tan", k_tan},
  {"asin", k_asin}, {"acos", k_acos}, {"atan", k_atan}, {"sinh", k_sinh}, {"cosh", k_cosh},
  {"asinh", k_asinh}, {"acosh", k_acosh}, {"atanh", k_atanh}, {"erf", k_erf}, {"square", k_square},
  {"inverse", k_inverse}, {"threshold", k_threshold}, {NULL, NULL},
};
