/* metrics.c — reconstruction error statistics (see metrics.h).
 * Each 64K chunk is summed in element order, in double. On x86 CPUs with AVX the chunks go four
 * at a time, one per 256-bit lane (eight per 512-bit register with AVX-512, tasks of eight chunks
 * either way): lane k does, element after element, exactly the scalar loop's
 * operations on chunk k (separate multiply and add, never fused), so every partial sum, and the
 * result, is bit-identical to the scalar path's (tests/compress_spec.lua checks both). The
 * accumulators keep their state between calls (a lane's sums are stored and reloaded exactly),
 * so a kernel's pass can feed them batch by batch (mlsh_metrics_pass) with the same result. */
#include "compress/metrics.h"
#include "compress/threads.h"
#include "dtype.h"
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MLSH_METRICS_X86 1
#endif

#define CHUNK ((size_t)1 << 16)
#define LANES 8 /* chunks per task: eight lanes with AVX-512, two groups of four with AVX */
_Static_assert(CHUNK * LANES == MLSH_MX_TASK_SPAN, "a pass task spans MLSH_MX_TASK_SPAN elements");

typedef struct {
  double xx, yy, xy, ee, ae, maxe, maxxx;
  size_t zeros;
} partial;

typedef struct {
  double v[8][8]; /* xx, yy, xy, ee, ae, maxe, maxxx, zeros: lane k = chunk k (4 or 8 lanes) */
} lanes;

/* Continue partial p over x[0..n), y[0..n), in element order. */
static void acc_scalar(partial *pp, const float *x, const float *y, size_t n) {
  partial p = *pp;
  for (size_t i = 0; i < n; i++) {
    double a = x[i], b = y[i], e = a - b, ae = fabs(e);
    p.xx += a * a;
    p.yy += b * b;
    p.xy += a * b;
    p.ee += e * e;
    p.ae += ae;
    if (ae > p.maxe || isnan(ae)) p.maxe = ae;
    if (a * a > p.maxxx) p.maxxx = a * a;
    p.zeros += b == 0;
  }
  *pp = p;
}

#ifdef MLSH_METRICS_X86
/* Continue the four lanes over m elements (m % 4 == 0) of chunk k at x[k], y[k]. One body, built
 * for AVX and for AVX-512VL (the same 256-bit operations; its 32 registers hold every sum). */
#define ACC4_BODY                                                                                              \
  __m256d xx = _mm256_loadu_pd(s->v[0]), yy = _mm256_loadu_pd(s->v[1]), xy = _mm256_loadu_pd(s->v[2]);         \
  __m256d ee = _mm256_loadu_pd(s->v[3]), aes = _mm256_loadu_pd(s->v[4]), maxe = _mm256_loadu_pd(s->v[5]);      \
  __m256d maxxx = _mm256_loadu_pd(s->v[6]), zs = _mm256_loadu_pd(s->v[7]);                                     \
  const __m256d sign = _mm256_set1_pd(-0.0), one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd();            \
  const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3], *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3]; \
  for (size_t i = 0; i < m; i += 4) {                                                                          \
    __m128 a0 = _mm_loadu_ps(x0 + i), a1 = _mm_loadu_ps(x1 + i), a2 = _mm_loadu_ps(x2 + i), a3 = _mm_loadu_ps(x3 + i); \
    __m128 b0 = _mm_loadu_ps(y0 + i), b1 = _mm_loadu_ps(y1 + i), b2 = _mm_loadu_ps(y2 + i), b3 = _mm_loadu_ps(y3 + i); \
    _MM_TRANSPOSE4_PS(a0, a1, a2, a3); /* aj = element i + j of chunks 0..3 */                                 \
    _MM_TRANSPOSE4_PS(b0, b1, b2, b3);                                                                         \
    ACC4_STEP(a0, b0) ACC4_STEP(a1, b1) ACC4_STEP(a2, b2) ACC4_STEP(a3, b3)                                    \
  }                                                                                                            \
  _mm256_storeu_pd(s->v[0], xx), _mm256_storeu_pd(s->v[1], yy), _mm256_storeu_pd(s->v[2], xy);                 \
  _mm256_storeu_pd(s->v[3], ee), _mm256_storeu_pd(s->v[4], aes), _mm256_storeu_pd(s->v[5], maxe);              \
  _mm256_storeu_pd(s->v[6], maxxx), _mm256_storeu_pd(s->v[7], zs);

#define ACC4_STEP(xa, yb)                                                                                      \
  {                                                                                                            \
    __m256d a = _mm256_cvtps_pd(xa), b = _mm256_cvtps_pd(yb);                                                  \
    __m256d e = _mm256_sub_pd(a, b), ae = _mm256_andnot_pd(sign, e), aa = _mm256_mul_pd(a, a);                 \
    xx = _mm256_add_pd(xx, aa);                                                                                \
    yy = _mm256_add_pd(yy, _mm256_mul_pd(b, b));                                                               \
    xy = _mm256_add_pd(xy, _mm256_mul_pd(a, b));                                                               \
    ee = _mm256_add_pd(ee, _mm256_mul_pd(e, e));                                                               \
    aes = _mm256_add_pd(aes, ae);                                                                              \
    __m256d up = _mm256_or_pd(_mm256_cmp_pd(ae, maxe, _CMP_GT_OQ), _mm256_cmp_pd(ae, ae, _CMP_UNORD_Q));       \
    maxe = _mm256_blendv_pd(maxe, ae, up);                                                                     \
    maxxx = _mm256_blendv_pd(maxxx, aa, _mm256_cmp_pd(aa, maxxx, _CMP_GT_OQ));                                 \
    zs = _mm256_add_pd(zs, _mm256_and_pd(_mm256_cmp_pd(b, zero, _CMP_EQ_OQ), one));                            \
  }

__attribute__((target("avx"))) static void acc_avx4(lanes *s, const float *const x[4], const float *const y[4], size_t m) {
  ACC4_BODY
}
__attribute__((target("avx,avx512f,avx512vl"))) static void acc_avx4_512(lanes *s, const float *const x[4],
                                                                       const float *const y[4], size_t m) {
  ACC4_BODY
}

/* The same for eight chunks, one per 512-bit lane (AVX-512F): an 8x8 transpose, then per element
 * ACC4_STEP's operations (mask compares and blends instead of vector ones: the same selections). */
#define ACC8_STEP(xa, yb)                                                                                      \
  {                                                                                                            \
    __m512d a = _mm512_cvtps_pd(xa), b = _mm512_cvtps_pd(yb);                                                  \
    __m512d e = _mm512_sub_pd(a, b), ae = _mm512_abs_pd(e), aa = _mm512_mul_pd(a, a);                          \
    xx = _mm512_add_pd(xx, aa);                                                                                \
    yy = _mm512_add_pd(yy, _mm512_mul_pd(b, b));                                                               \
    xy = _mm512_add_pd(xy, _mm512_mul_pd(a, b));                                                               \
    ee = _mm512_add_pd(ee, _mm512_mul_pd(e, e));                                                               \
    aes = _mm512_add_pd(aes, ae);                                                                              \
    maxe = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(ae, maxe, _CMP_GT_OQ) | _mm512_cmp_pd_mask(ae, ae, _CMP_UNORD_Q), \
                                maxe, ae);                                                                     \
    maxxx = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(aa, maxxx, _CMP_GT_OQ), maxxx, aa);                        \
    zs = _mm512_mask_add_pd(zs, _mm512_cmp_pd_mask(b, zero, _CMP_EQ_OQ), zs, one);                             \
  }

/* rows r0..r7 (8 elements of chunks 0..7) -> c0..c7 (element j of chunks 0..7) */
#define TRANSPOSE8(r, c)                                                                                       \
  {                                                                                                            \
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);                           \
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);                           \
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);                           \
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);                           \
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);                         \
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);                         \
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);                         \
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);                         \
    c[0] = _mm256_permute2f128_ps(u0, u4, 0x20), c[1] = _mm256_permute2f128_ps(u1, u5, 0x20);                  \
    c[2] = _mm256_permute2f128_ps(u2, u6, 0x20), c[3] = _mm256_permute2f128_ps(u3, u7, 0x20);                  \
    c[4] = _mm256_permute2f128_ps(u0, u4, 0x31), c[5] = _mm256_permute2f128_ps(u1, u5, 0x31);                  \
    c[6] = _mm256_permute2f128_ps(u2, u6, 0x31), c[7] = _mm256_permute2f128_ps(u3, u7, 0x31);                  \
  }

/* Continue the eight lanes over m elements (m % 8 == 0) of chunk k at x[k], y[k]. */
__attribute__((target("avx,avx512f"))) static void acc_avx8_512(lanes *s, const float *const x[8], const float *const y[8],
                                                                size_t m) {
  __m512d xx = _mm512_loadu_pd(s->v[0]), yy = _mm512_loadu_pd(s->v[1]), xy = _mm512_loadu_pd(s->v[2]);
  __m512d ee = _mm512_loadu_pd(s->v[3]), aes = _mm512_loadu_pd(s->v[4]), maxe = _mm512_loadu_pd(s->v[5]);
  __m512d maxxx = _mm512_loadu_pd(s->v[6]), zs = _mm512_loadu_pd(s->v[7]);
  const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
  for (size_t i = 0; i < m; i += 8) {
    __m256 ra[8], rb[8], ca[8], cb[8];
    for (int k = 0; k < 8; k++) ra[k] = _mm256_loadu_ps(x[k] + i), rb[k] = _mm256_loadu_ps(y[k] + i);
    TRANSPOSE8(ra, ca)
    TRANSPOSE8(rb, cb)
    for (int j = 0; j < 8; j++) ACC8_STEP(ca[j], cb[j])
  }
  _mm512_storeu_pd(s->v[0], xx), _mm512_storeu_pd(s->v[1], yy), _mm512_storeu_pd(s->v[2], xy);
  _mm512_storeu_pd(s->v[3], ee), _mm512_storeu_pd(s->v[4], aes), _mm512_storeu_pd(s->v[5], maxe);
  _mm512_storeu_pd(s->v[6], maxxx), _mm512_storeu_pd(s->v[7], zs);
}
#endif

/* lanes [0, w) of s (4-lane state in v[.][0..3]) to partials out[0..w). */
static void lanes_out(const lanes *s, partial *out, int w) {
  for (int k = 0; k < w; k++)
    out[k] = (partial){s->v[0][k], s->v[1][k], s->v[2][k], s->v[3][k], s->v[4][k], s->v[5][k], s->v[6][k], (size_t)s->v[7][k]};
}

/* The element-order sum of squares of the non-NaN values (a:stats().sum_sq). */
static double acc_signal(double s, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double v = x[i];
    if (!isnan(v)) s += v * v;
  }
  return s;
}

/* 0: scalar, 1: AVX, 2: AVX-512VL registers too. */
/* The same as acc_signal, faster. While the running sum s stays in one binade [2^(E-1), 2^E),
 * every step s + t rounds to s + (t rounded to a multiple of ulp(s)): those increments do not
 * depend on s (except for an exact tie, decided by s's parity), so a block of steps is the sum
 * of its integer increments, exact in double below 2^53. A block that leaves the binade, holds a
 * tie, a NaN or an inf, or starts from 0, inf or NaN takes the element-by-element loop; either
 * way every step is the one acc_signal takes. */
#ifdef MLSH_METRICS_X86
#define SIG_SUB 32 /* elements per step of the fast path: a tie sends only these down the slow one */
__attribute__((target("avx"))) static double signal_fast(double s, const float *x, size_t n) {
  const double lim = 9007199254740992.0; /* 2^53 */
  const __m256d vlim = _mm256_set1_pd(lim), half = _mm256_set1_pd(0.5), one = _mm256_set1_pd(1.0);
  size_t i = 0;
  while (i < n) {
    if (!(s > 0 && s < INFINITY) || n - i < SIG_SUB) {
      size_t m = n - i < SIG_SUB ? n - i : SIG_SUB;
      s = acc_signal(s, x + i, m);
      i += m;
      continue;
    }
    int E;
    (void)frexp(s, &E); /* s = f * 2^E, f in [0.5, 1): ulp(s) = 2^(E-53) */
    double scale = ldexp(1.0, 53 - E), N = s * scale;
    const __m256d vs = _mm256_set1_pd(scale);
    for (; i + SIG_SUB <= n; i += SIG_SUB) {
      __m256d acc[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()}, bad = _mm256_setzero_pd();
      for (size_t k = i; k < i + SIG_SUB; k += 4) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + k));
        __m256d u = _mm256_mul_pd(_mm256_mul_pd(a, a), vs); /* t / ulp(s), exact (a power of two) */
        bad = _mm256_or_pd(bad, _mm256_cmp_pd(u, vlim, _CMP_NLT_UQ)); /* too big, inf or NaN */
        __m256d q = _mm256_floor_pd(u), f = _mm256_sub_pd(u, q);
        bad = _mm256_or_pd(bad, _mm256_cmp_pd(f, half, _CMP_EQ_OQ)); /* a tie: decided by parity */
        size_t j = (k >> 2) & 1; /* two sums: integers below 2^53, so any order is exact */
        acc[j] = _mm256_add_pd(acc[j], _mm256_add_pd(q, _mm256_and_pd(_mm256_cmp_pd(f, half, _CMP_GT_OQ), one)));
      }
      double v[4];
      _mm256_storeu_pd(v, _mm256_add_pd(acc[0], acc[1]));
      double N1 = N + ((v[0] + v[1]) + (v[2] + v[3])); /* exact below 2^53; >= 2^53 when the true sum is */
      if (_mm256_movemask_pd(bad) || !(N1 < lim)) break;
      N = N1;
    }
    s = N / scale;
    if (i + SIG_SUB <= n) { /* this step left the binade or held a tie: element by element */
      s = acc_signal(s, x + i, SIG_SUB);
      i += SIG_SUB;
    }
  }
  return s;
}
#endif

static double signal_sum(int avx, double s, const float *x, size_t n) {
#ifdef MLSH_METRICS_X86
  if (avx) return signal_fast(s, x, n);
#endif
  (void)avx;
  return acc_signal(s, x, n);
}

static int have_avx(void) {
  int avx2;
  if (!mlsh_cpu_f16c(&avx2)) return 0; /* F16C implies AVX */
#if defined(MLSH_METRICS_X86) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return 2;
#endif
  return 1;
}

#ifdef MLSH_METRICS_X86
/* Continue w (4 or 8) lanes: eight need avx == 2 (AVX-512). */
static void acc_lanes(int avx, int w, lanes *s, const float *const x[8], const float *const y[8], size_t m) {
  if (w == 8) acc_avx8_512(s, x, y, m);
  else if (avx == 2) acc_avx4_512(s, x, y, m);
  else acc_avx4(s, x, y, m);
}

/* The widest group of whole chunks from chunk k up to `end`: 8 with AVX-512, 4 with AVX, else 0. */
static int group_width(int avx, size_t k, size_t end, size_t n) {
  if (avx == 2 && k + 8 <= end && (k + 8) * CHUNK <= n) return 8;
  if (avx && k + 4 <= end && (k + 4) * CHUNK <= n) return 4;
  return 0;
}
#endif

static void finish(const partial *pt, size_t chunks, size_t n, double sum_sq, mlsh_metrics *m) {
  partial s = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t t = 0; t < chunks; t++) {
    partial p = pt[t];
    s.xx += p.xx;
    s.yy += p.yy;
    s.xy += p.xy;
    s.ee += p.ee;
    s.ae += p.ae;
    if (p.maxe > s.maxe || isnan(p.maxe)) s.maxe = p.maxe;
    if (p.maxxx > s.maxxx) s.maxxx = p.maxxx;
    s.zeros += p.zeros;
  }
  m->n = n;
  m->mse = s.ee / (double)n;
  m->snr_db = s.ee == 0 ? INFINITY : 10.0 * log10(s.xx / s.ee);
  m->psnr_db = s.ee == 0 ? INFINITY : 10.0 * log10(s.maxxx / m->mse);
  m->max_abs_err = s.maxe;
  m->mean_abs_err = s.ae / (double)n;
  if (s.xx == 0 || s.yy == 0) m->cosine = (s.xx == 0 && s.yy == 0) ? 1.0 : 0.0;
  else m->cosine = s.xy / sqrt(s.xx * s.yy);
  m->sparsity = (double)s.zeros / (double)n;
  m->sum_sq = sum_sq;
  m->signal = s.xx;
}

/* ---- over two arrays ---- */

typedef struct {
  const float *x, *y;
  size_t n;
  partial *p;
  int avx, signal; /* signal: task 0 is the element-order sum of squares */
  double sum_sq;
} m_ctx;

static void task(void *pv, size_t t, unsigned w) {
  (void)w;
  m_ctx *c = pv;
  if (c->signal) {
    if (t == 0) {
      c->sum_sq = signal_sum(c->avx, 0, c->x, c->n);
      return;
    }
    t--;
  }
  size_t k = t * LANES, end = k + LANES;
#ifdef MLSH_METRICS_X86
  for (int w; (w = group_width(c->avx, k, end, c->n)) > 0; k += (size_t)w) {
    lanes s;
    memset(&s, 0, sizeof s);
    const float *x[8], *y[8];
    for (int j = 0; j < w; j++) x[j] = c->x + (k + (size_t)j) * CHUNK, y[j] = c->y + (k + (size_t)j) * CHUNK;
    acc_lanes(c->avx, w, &s, x, y, CHUNK);
    lanes_out(&s, c->p + k, w);
  }
#endif
  for (; k < end && k * CHUNK < c->n; k++) {
    size_t i0 = k * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
    c->p[k] = (partial){0, 0, 0, 0, 0, 0, 0, 0};
    acc_scalar(&c->p[k], c->x + i0, c->y + i0, i1 - i0);
  }
}

int mlsh_metrics_compute(const float *x, const float *y, size_t n, unsigned threads, int signal, mlsh_metrics *m) {
  if (n == 0) return MLSH_CZ_EINVAL;
  size_t chunks = (n + CHUNK - 1) / CHUNK;
  m_ctx c = {x, y, n, malloc(chunks * sizeof(partial)), have_avx(), signal != 0, 0};
  if (!c.p) return MLSH_CZ_ENOMEM;
  mlsh_parallel_for(mlsh_threads_clamp(threads), (chunks + LANES - 1) / LANES + (size_t)c.signal, task, &c);
  finish(c.p, chunks, n, c.sum_sq, m);
  free(c.p);
  return MLSH_CZ_OK;
}

/* ---- over a kernel's last pass ---- */

#define B MLSH_MX_BATCH

typedef struct {
  const mlsh_cz_src *src;
  const mlsh_mx_reader *rd;
  uint16_t *bufs; /* with rd: span_stride elements per worker */
  size_t span_stride;
  atomic_int failed;
  size_t n;
  mlsh_mx_prep_fn prep;
  mlsh_mx_batch_fn fn;
  void *ctx;
  partial *p; /* NULL: the caller wants no metrics, only the kernel's batches */
  int avx;
} pass_ctx;

#ifdef MLSH_METRICS_X86
/* Chunks [k, k + w) (whole), batch by batch round the chunks (batch j of each, then j + 1) so
 * the lanes advance together. */
static void pass_group(const pass_ctx *c, const mlsh_cz_src *src, size_t base, size_t k, int w) {
  float x[8][B], y[8][B];
  lanes s;
  memset(&s, 0, sizeof s);
  const float *xp[8], *yp[8];
  for (int q = 0; q < 8; q++) xp[q] = x[q], yp[q] = y[q];
  for (size_t j = 0; j < CHUNK; j += B) {
    for (int q = 0; q < w; q++) {
      size_t i = (k + (size_t)q) * CHUNK + j;
      mlsh_cz_src_load(src, i - base, B, x[q]);
      c->fn(c->ctx, i, B, x[q], y[q]);
    }
    if (c->p) acc_lanes(c->avx, w, &s, xp, yp, B);
  }
  if (c->p) lanes_out(&s, c->p + k, w);
}
#endif

/* Task t: chunks [8t, 8t + 8) after the kernel's prep of their span: whole groups of 8 (AVX-512)
 * or 4 (AVX) in lanes, the rest chunk by chunk. */
static void pass_task(void *pv, size_t t, unsigned w) {
  pass_ctx *c = pv;
  size_t k = t * LANES, end = k + LANES, i0 = k * CHUNK, i1 = end * CHUNK < c->n ? end * CHUNK : c->n;
  mlsh_cz_src span = {NULL, NULL};
  if (c->src) span = *c->src;
  size_t base = 0; /* span's element 0 is element base */
  if (c->rd) {
    uint16_t *buf = c->bufs + (size_t)w * c->span_stride;
    if (c->rd->read(c->rd->rctx, i0, i1 - i0, buf) != 0) {
      atomic_store(&c->failed, 1);
      for (; c->p && k < end && k * CHUNK < c->n; k++) c->p[k] = (partial){0, 0, 0, 0, 0, 0, 0, 0};
      return;
    }
    span.f32 = NULL, span.f16 = buf, base = i0;
  }
  if (c->prep) {
    mlsh_cz_src ps = span;
    if (!c->rd) { /* element 0 of the prep's view is i0 */
      if (ps.f32) ps.f32 += i0;
      else ps.f16 += i0;
    }
    c->prep(c->ctx, i0, i1, &ps);
  }
  if (!c->fn) return; /* the prep did the span's work */
#ifdef MLSH_METRICS_X86
  for (int g; (g = group_width(c->avx, k, end, c->n)) > 0; k += (size_t)g) pass_group(c, &span, base, k, g);
#endif
  float x[B], y[B];
  for (; k < end && k * CHUNK < c->n; k++) {
    size_t e = (k + 1) * CHUNK < c->n ? (k + 1) * CHUNK : c->n;
    if (c->p) c->p[k] = (partial){0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = k * CHUNK; i < e; i += B) {
      size_t m = e - i < B ? e - i : B;
      mlsh_cz_src_load(&span, i - base, m, x);
      c->fn(c->ctx, i, m, x, y);
      if (c->p) acc_scalar(&c->p[k], x, y, m);
    }
  }
}

int mlsh_metrics_pass_prep(const mlsh_cz_src *src, const mlsh_mx_reader *rd, size_t n, unsigned threads,
                           mlsh_mx_prep_fn prep, mlsh_mx_batch_fn fn, void *ctx, mlsh_metrics *m) {
  if (n == 0 || (!fn && (m || !prep))) return MLSH_CZ_EINVAL;
  size_t chunks = (n + CHUNK - 1) / CHUNK, tasks = (chunks + LANES - 1) / LANES;
  unsigned nt = mlsh_threads_clamp(threads);
  if (nt > tasks) nt = (unsigned)tasks;
  size_t per = n < MLSH_MX_TASK_SPAN ? n : MLSH_MX_TASK_SPAN;
  pass_ctx c = {src, rd, rd ? malloc((size_t)nt * per * sizeof(uint16_t)) : NULL, per, 0, n, prep, fn, ctx,
                m ? malloc(chunks * sizeof(partial)) : NULL, have_avx()};
  if ((m && !c.p) || (rd && !c.bufs)) {
    free(c.p);
    free(c.bufs);
    return MLSH_CZ_ENOMEM;
  }
  mlsh_parallel_for(nt, tasks, pass_task, &c);
  if (m) finish(c.p, chunks, n, 0, m);
  free(c.p);
  free(c.bufs);
  return atomic_load(&c.failed) ? MLSH_CZ_EREAD : MLSH_CZ_OK;
}

int mlsh_metrics_pass(const mlsh_cz_src *src, size_t n, unsigned threads, mlsh_mx_batch_fn fn, void *ctx,
                      mlsh_metrics *m) {
  return mlsh_metrics_pass_prep(src, NULL, n, threads, NULL, fn, ctx, m);
}
