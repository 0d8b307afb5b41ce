/* ops_activation.c — activations (iOS15 activation.py and later versions): relu, relu6, sigmoid,
 * sigmoid_hard, tanh, scaled_tanh, silu, gelu (EXACT, TANH_APPROXIMATION, SIGMOID_APPROXIMATION),
 * elu, leaky_relu, thresholded_relu, softplus, softplus_parametric, softsign, prelu,
 * linear_activation, clamped_relu. alpha/beta scalars; prelu and softplus_parametric take
 * per-channel vectors along axis 1 (rank >= 3). clip lives here too: it is an activation to the
 * kernels that fuse one (act.h), and it_act_from_op reads any of these ops for them. */
#include "act.h"
#include "ops.h"
#include "pool.h"
#include "tensor.h"
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* relu / relu6 over n floats: max(x, 0) then min(., hi) (hi < 0: no upper clamp). maxps/minps
 * return their second operand for NaN, as the scalar x > 0 ? x : 0 does. */
static void clamp_rows(const float *a, float *d, size_t n, float hi) {
  size_t i = 0;
#if defined(__SSE__)
  __m128 z = _mm_setzero_ps(), h = _mm_set1_ps(hi);
  for (; i + 4 <= n; i += 4) {
    __m128 v = _mm_max_ps(_mm_loadu_ps(a + i), z);
    if (hi >= 0) v = _mm_min_ps(v, h);
    _mm_storeu_ps(d + i, v);
  }
#endif
  for (; i < n; i++) {
    float v = a[i] > 0 ? a[i] : 0.0f;
    d[i] = hi >= 0 && !(v < hi) ? hi : v;
  }
}

typedef enum { A_RELU, A_RELU6, A_SIGMOID, A_HSIG, A_TANH, A_STANH, A_SILU, A_GELU_EXACT, A_GELU_TANH, A_GELU_SIG,
               A_ELU, A_LEAKY, A_THRESH, A_SOFTPLUS, A_SOFTSIGN, A_LINEAR, A_CLAMPED, A_CLIP } act;

static inline float apply(act k, float x, float al, float be) {
  switch (k) {
  case A_RELU: return x > 0 ? x : 0;
  case A_RELU6: return x < 0 ? 0 : (x > 6 ? 6 : x);
  case A_SIGMOID: return 1.0f / (1.0f + expf(-x));
  case A_HSIG: { float v = al * x + be; return v < 0 ? 0 : (v > 1 ? 1 : v); }
  case A_TANH: return tanhf(x);
  case A_STANH: return al * tanhf(be * x);
  case A_SILU: return x / (1.0f + expf(-x));
  case A_GELU_EXACT: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  case A_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  case A_GELU_SIG: return x / (1.0f + expf(-1.702f * x));
  case A_ELU: return x > 0 ? x : al * (expf(x) - 1.0f);
  case A_LEAKY: return x >= 0 ? x : al * x;
  case A_THRESH: return x > al ? x : 0;
  case A_SOFTPLUS: return x > 20 ? x : log1pf(expf(x));
  case A_SOFTSIGN: return x / (1.0f + fabsf(x));
  case A_LINEAR: return al * x + be;
  case A_CLAMPED: { float v = x >= 0 ? x : al * x; return v > be ? be : v; }
  case A_CLIP: return x < al ? al : (x > be ? be : x);
  }
  return x;
}

/* clip: x < lo ? lo : (x > hi ? hi : x). maxps(lo, x) and minps(hi, v) return their second
 * operand for NaN and for equal values, exactly as the scalar expression does. */
static void clip_rows(const float *a, float *d, size_t n, float lo, float hi) {
  size_t i = 0;
#if defined(__SSE__)
  __m128 l = _mm_set1_ps(lo), h = _mm_set1_ps(hi);
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(d + i, _mm_min_ps(h, _mm_max_ps(l, _mm_loadu_ps(a + i))));
#endif
  for (; i < n; i++) d[i] = a[i] < lo ? lo : (a[i] > hi ? hi : a[i]);
}

#ifdef HAVE_X86
/* e^x (0 below -87.3, infinity from 88.73 on, NaN for NaN): x = n ln2 + r, |r| <= ln2 / 2, e^r by its degree-7 Taylor
 * polynomial (relative error < 1e-8 before rounding), times 2^n built in the exponent bits. */
__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 x) {
  __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.8f), x0 = x;
  __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ), over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ), nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  /* 2^n as 2^n1 2^n2 (n1 = n >> 1): both normal for n in [-126, 128], the product exact or inf */
  __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1), b = _mm256_set1_epi32(127);
  __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, b), 23));
  __m256 e2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, b), 23));
  __m256 y = _mm256_andnot_ps(under, _mm256_mul_ps(_mm256_mul_ps(p, e1), e2));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
  return _mm256_blendv_ps(y, x0, nan); /* NaN in, NaN out */
}

/* gelu(x) = x/2 (1 + erf(x/sqrt2)) = x/2 erfc(-x/sqrt2): erfc(z), z = |x|/sqrt2, as
 * t exp(-z^2 + P(t)), t = 1 / (1 + z/2), P a degree-9 Chebyshev fit (fractional error < 1.2e-7);
 * x >= 0 takes 2 - erfc. Every element, the tail included (masked), goes through the same code. */
__attribute__((target("avx2,fma"))) static inline __m256 gelu8(__m256 x) {
  static const float c[10] = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f, -0.18628806f,
                              0.27886807f, -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
  __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(0.70710678118654752f));
  __m256 one = _mm256_set1_ps(1.0f), t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), one));
  __m256 p = _mm256_set1_ps(c[9]);
  for (int i = 8; i >= 0; i--) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c[i]));
  __m256 q = _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
  __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  q = _mm256_blendv_ps(q, _mm256_sub_ps(_mm256_set1_ps(2.0f), q), pos);
  return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), q);
}

__attribute__((target("avx2,fma"))) static void gelu_avx2(const float *a, float *d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, gelu8(_mm256_loadu_ps(a + i)));
  if (i < n) {
    __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(d + i, m, gelu8(_mm256_maskload_ps(a + i, m)));
  }
}
#endif

#ifdef HAVE_X86
/* o[i] = e^(x[i] - m), 8 at a time (the tail masked on load, stored one by one); returns the sum,
 * per lane in fp32 then over the lanes in double. */
__attribute__((target("avx2,fma"))) static double expsum_avx2(const float *x, float m, float *o, size_t n) {
  __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(o + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float t[8];
  _mm256_storeu_ps(t, acc);
  double s = 0;
  for (int k = 0; k < 8; k++) s += t[k];
  if (i < n) {
    __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_storeu_ps(t, exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm)));
    for (size_t q = 0; q < n - i; q++) { o[i + q] = t[q]; s += t[q]; }
  }
  return s;
}
#endif

static double expsum_c(const float *x, float m, float *o, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) { o[i] = expf(x[i] - m); s += o[i]; }
  return s;
}

static void gelu_c(const float *a, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = apply(A_GELU_EXACT, a[i], 0, 0);
}

static pthread_once_t simd_once = PTHREAD_ONCE_INIT;
static void (*gelu_rows)(const float *a, float *d, size_t n);
static double (*expsum)(const float *x, float m, float *o, size_t n);
static void scan_c(it_act *a, const float *p, size_t n);
#ifdef HAVE_X86
static void scan_avx2(it_act *a, const float *p, size_t n);
#endif
static void (*scan_run)(it_act *a, const float *p, size_t n);
static void pick_simd(void) {
  gelu_rows = gelu_c;
  expsum = expsum_c;
  scan_run = scan_c;
#ifdef HAVE_X86
  __builtin_cpu_init();
  if (getenv("MLSH_NO_SIMD")) return;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { gelu_rows = gelu_avx2; expsum = expsum_avx2; }
  if (__builtin_cpu_supports("avx2")) scan_run = scan_avx2;
#endif
}

static void f_relu(const it_act *a, const float *s, float *d, size_t n) { clamp_rows(s, d, n, a->be); }
static void f_clip(const it_act *a, const float *s, float *d, size_t n) { clip_rows(s, d, n, a->al, a->be); }
static void f_gelu(const it_act *a, const float *s, float *d, size_t n) { (void)a; gelu_rows(s, d, n); }
static void f_other(const it_act *a, const float *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = apply((act)a->kind, s[i], a->al, a->be);
}

/* The executor's check (tensor.c it_f32_scan) on a short run, inline: bad = a NaN or an
 * infinity, big = a magnitude above 65520 (rounds to fp16 infinity), infinities included. On the
 * magnitude bits, 8 lanes at a time with AVX2 (the tail masked) or one by one. */
#ifdef HAVE_X86
__attribute__((target("avx2"))) static void scan_avx2(it_act *a, const float *p, size_t n) {
  __m256i m = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f7fffff), top = _mm256_set1_epi32(0x477fe000);
  __m256i pinf = _mm256_set1_epi32(0x7f800000), vb = _mm256_setzero_si256(), vg = vb;
  for (size_t i = 0; i < n; i += 8) {
    __m256i v;
    if (i + 8 <= n) v = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
    else {
      __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      v = _mm256_maskload_epi32((const int *)(const void *)(p + i), k);
    }
    v = _mm256_and_si256(v, m);
    vb = _mm256_or_si256(vb, _mm256_cmpgt_epi32(v, inf));
    vg = _mm256_or_si256(vg, _mm256_andnot_si256(_mm256_cmpgt_epi32(v, pinf), _mm256_cmpgt_epi32(v, top)));
  }
  if (!_mm256_testz_si256(vb, vb)) __atomic_store_n(&a->bad, 1, __ATOMIC_RELAXED);
  if (!_mm256_testz_si256(vg, vg)) __atomic_store_n(&a->big, 1, __ATOMIC_RELAXED);
}
#endif

static void scan_c(it_act *a, const float *p, size_t n) {
  uint32_t bad = 0, big = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, p + i, 4);
    u &= 0x7fffffffu;
    bad |= u > 0x7f7fffffu;
    big |= u > 0x477fe000u && u <= 0x7f800000u;
  }
  if (bad) __atomic_store_n(&a->bad, 1, __ATOMIC_RELAXED);
  if (big) __atomic_store_n(&a->big, 1, __ATOMIC_RELAXED);
}

#ifdef HAVE_X86
/* relu / relu6 in place with the range check in the same pass: the values clamp_rows gives
 * (maxps(x, 0) then minps(., hi)), 8 lanes at a time; the tail by clamp_rows itself (AMD cores
 * run masked AVX2 stores slowly). */
__attribute__((target("avx2"))) static void relu_scan_avx2(it_act *a, float *p, size_t n) {
  __m256i m = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f7fffff), top = _mm256_set1_epi32(0x477fe000);
  __m256i pinf = _mm256_set1_epi32(0x7f800000), vb = _mm256_setzero_si256(), vg = vb;
  __m256 z = _mm256_setzero_ps(), h = _mm256_set1_ps(a->be);
  float hi = a->be;
  int upper = hi >= 0, scan = a->scan;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(p + i);
    if (scan) {
      __m256i v = _mm256_and_si256(_mm256_castps_si256(x), m);
      vb = _mm256_or_si256(vb, _mm256_cmpgt_epi32(v, inf));
      vg = _mm256_or_si256(vg, _mm256_andnot_si256(_mm256_cmpgt_epi32(v, pinf), _mm256_cmpgt_epi32(v, top)));
    }
    x = _mm256_max_ps(x, z);
    if (upper) x = _mm256_min_ps(x, h);
    _mm256_storeu_ps(p + i, x);
  }
  if (!_mm256_testz_si256(vb, vb)) __atomic_store_n(&a->bad, 1, __ATOMIC_RELAXED);
  if (!_mm256_testz_si256(vg, vg)) __atomic_store_n(&a->big, 1, __ATOMIC_RELAXED);
  if (i == n) return;
  if (scan) scan_c(a, p + i, n - i);
  clamp_rows(p + i, p + i, n - i, hi);
}
#endif

double it_exp_sum(const float *x, float m, float *o, size_t n) {
  pthread_once(&simd_once, pick_simd);
  return expsum(x, m, o, n);
}

void it_act_apply(it_act *a, float *p, size_t n) {
#ifdef HAVE_X86
  if (a->fn == f_relu && scan_run == scan_avx2) {
    relu_scan_avx2(a, p, n);
    return;
  }
#endif
  if (a->scan) scan_run(a, p, n);
  a->fn(a, p, p, n);
}

/* type -> kind, default alpha and beta; the activation ops and their fused form read the same. */
static const struct { const char *type; act k; double al, be; } ACTS[] = {
  {"relu", A_RELU, 0, -1}, {"relu6", A_RELU6, 0, 6}, {"sigmoid", A_SIGMOID, 0, 0}, {"sigmoid_hard", A_HSIG, 0.2, 0.5},
  {"tanh", A_TANH, 0, 0}, {"scaled_tanh", A_STANH, 1, 1}, {"silu", A_SILU, 0, 0}, {"elu", A_ELU, 1, 0},
  {"leaky_relu", A_LEAKY, 0.01, 0}, {"thresholded_relu", A_THRESH, 1, 0}, {"softplus", A_SOFTPLUS, 0, 0},
  {"softsign", A_SOFTSIGN, 0, 0}, {"linear_activation", A_LINEAR, 1, 0}, {"clamped_relu", A_CLAMPED, 0, 6},
  {"clip", A_CLIP, 0, 0}, {"gelu", A_GELU_EXACT, 0, 0},
};


int it_act_from_op(it_ctx *c, it_act *a) {
  memset(a, 0, sizeof *a);
  pthread_once(&simd_once, pick_simd);
  size_t i = 0, n = sizeof ACTS / sizeof *ACTS;
  const char *type = c->op->k ? c->op->k->type : c->op->type; /* NN layers keep their own op type */
  while (i < n && strcmp(ACTS[i].type, type) != 0) i++;
  if (i == n) return -1;
  act k = ACTS[i].k;
  if (k == A_GELU_EXACT) {
    const char *mode = it_arg_str(c, "mode", "EXACT");
    if (strcmp(mode, "TANH_APPROXIMATION") == 0) k = A_GELU_TANH;
    else if (strcmp(mode, "SIGMOID_APPROXIMATION") == 0) k = A_GELU_SIG;
    else if (strcmp(mode, "EXACT") != 0) return -1;
  }
  a->kind = (int)k;
  a->keeps_range = k == A_RELU || k == A_RELU6 || k == A_SIGMOID || k == A_TANH || k == A_SILU || k == A_GELU_EXACT ||
                   k == A_GELU_TANH || k == A_GELU_SIG;
  if (k == A_RELU || k == A_RELU6) {
    a->fn = f_relu;
    a->be = (float)ACTS[i].be;
    a->clamp = 1;
    a->lo = 0;
    a->hi = k == A_RELU6 ? 6.0f : INFINITY;
    return 0;
  }
  a->al = (float)it_arg_float(c, "alpha", ACTS[i].al);
  a->be = (float)it_arg_float(c, "beta", ACTS[i].be);
  if (k == A_CLIP) a->keeps_range = fabsf(a->al) <= 65504.0f && fabsf(a->be) <= 65504.0f; /* NaN bounds: no */
  if (k == A_CLIP) a->fn = f_clip;
  else if (k == A_GELU_EXACT) a->fn = f_gelu;
  else a->fn = f_other;
  return 0;
}

typedef struct {
  const it_act *a;
  const float *s;
  float *d;
} act_job;

static void act_range(void *ctx, size_t lo, size_t hi) {
  const act_job *j = ctx;
  j->a->fn(j->a, j->s + lo, j->d + lo, hi - lo);
}

/* The input's buffer, when this op is its last reader: x comes from a slot (not an immediate)
 * that dies after this op, nothing else holds it (refs 1: not a program output, not kept by a
 * trace), it owns its data and has the output's dtype. An activation after a conv or linear then
 * rewrites that output where it lies instead of streaming it into a fresh tensor. */
static it_tensor *reusable_input(it_ctx *c, it_tensor *x) {
  if (x->refs != 1 || x->borrowed || x->st != IT_F32) return NULL;
  mlsh_dtype dt = it_out_dtype(c, 0);
  if (dt != MLSH_DT_INVALID && dt != x->dt) return NULL;
  int slot = -1;
  for (int i = 0; i < c->op->nparams; i++)
    if (strcmp(c->op->params[i].name, "x") == 0 && c->op->params[i].n == 1 && !c->op->params[i].b[0].imm) slot = c->op->params[i].b[0].slot;
  if (slot < 0 || c->env->slots[slot] != x) return NULL;
  for (int i = 0; i < c->op->nfree; i++)
    if (c->op->free_after[i] == slot) {
      it_out_set(c, 0, x);
      return x;
    }
  return NULL;
}

static int k_act(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input, given %s", mlsh_dtype_name(x->dt));
  it_act a;
  if (it_act_from_op(c, &a) != 0) return it_fail(c, "unknown gelu mode '%s'", it_arg_str(c, "mode", ""));
  it_tensor *o = reusable_input(c, x);
  int inplace = o != NULL;
  if (!o && !(o = it_out_f(c, 0, x->rank, x->shape))) return -1;
  act_job j = {&a, x->data, o->data};
  /* relu/relu6/clip are memory-bound: below ~4 MiB (usually cache-warm, in place) waking the
   * pool costs more CPU than it saves (measured on MobileNetV2) */
  int cheap = a.fn == f_relu || a.fn == f_clip;
  if (cheap && x->n < IT_BIG_MAP) act_range(&j, 0, x->n);
  else it_parallel_range(x->n, cheap ? 1 : 16, act_range, &j);
  /* the executor rounds only tensors nobody else holds: an in-place result is still held by x's slot */
  if (inplace && it_rounds_fp16(c->env, o->dt)) it_round_fp16(o->data, o->n);
  return 0;
}

/* prelu(x, alpha[C]) and softplus_parametric(x, alpha[C], beta[C]): per channel along axis 1. */
static int per_channel(it_ctx *c, int softplus) {
  it_tensor *x = it_arg_req(c, "x"), *al = x ? it_arg_req(c, "alpha") : NULL, *be = softplus && al ? it_arg_req(c, "beta") : NULL;
  if (!al || (softplus && !be)) return -1;
  if (x->st != IT_F32 || x->rank < 2) return it_fail(c, "needs a float input of rank >= 2");
  size_t C = (size_t)x->shape[1], inner = it_inner(x, 2), outer = (size_t)x->shape[0];
  if (al->n != C && al->n != 1) return it_fail(c, "alpha has %zu values, the input %zu channels", al->n, C);
  if (be && be->n != C && be->n != 1) return it_fail(c, "beta has %zu values, the input %zu channels", be->n, C);
  it_tensor *o = it_out_f(c, 0, x->rank, x->shape);
  if (!o) return -1;
  const float *a = x->data;
  float *d = o->data;
  for (size_t b = 0; b < outer; b++)
    for (size_t ch = 0; ch < C; ch++) {
      float A = (float)it_get_d(al, al->n == 1 ? 0 : ch), B = be ? (float)it_get_d(be, be->n == 1 ? 0 : ch) : 0;
      size_t off = (b * C + ch) * inner;
      for (size_t i = 0; i < inner; i++) {
        float v = a[off + i];
        d[off + i] = softplus ? A * log1pf(expf(B * v)) : (v >= 0 ? v : A * v);
      }
    }
  return 0;
}
static int k_prelu(it_ctx *c) { return per_channel(c, 0); }
static int k_softplus_parametric(it_ctx *c) { return per_channel(c, 1); }

const it_kernel_def it_ops_activation[] = {
  {"relu", k_act}, {"relu6", k_act}, {"sigmoid", k_act}, {"sigmoid_hard", k_act}, {"tanh", k_act},
  {"scaled_tanh", k_act}, {"silu", k_act}, {"gelu", k_act}, {"elu", k_act}, {"leaky_relu", k_act},
  {"thresholded_relu", k_act}, {"softplus", k_act}, {"softsign", k_act}, {"linear_activation", k_act},
  {"clamped_relu", k_act}, {"clip", k_act},
  {"prelu", k_prelu}, {"softplus_parametric", k_softplus_parametric}, {NULL, NULL},
};
