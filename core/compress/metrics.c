/* metrics.c — reconstruction error statistics (see metrics.h).
 * Each 64K chunk is summed in element order, in double. On x86 CPUs with AVX the chunks go four
 * at a time, one per 256-bit lane: lane k does, element after element, exactly the scalar loop's
 * operations on chunk k (separate multiply and add, never fused), so every partial sum, and the
 * result, is bit-identical to the scalar path's (tests/compress_spec.lua checks both). */
#include "compress/metrics.h"
#include "compress/common.h"
#include "compress/threads.h"
#include "dtype.h"
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MLSH_METRICS_X86 1
#endif

#define CHUNK ((size_t)1 << 16)
#define LANES 4 /* chunks per task */

typedef struct {
  double xx, yy, xy, ee, ae, maxe, maxxx;
  size_t zeros;
} partial;

typedef struct {
  const float *x, *y;
  size_t n;
  partial *p;
  int avx, signal; /* signal: task 0 is the element-order sum of squares */
  double sum_sq;
} m_ctx;

static void chunk_scalar(const float *x, const float *y, size_t n, partial *out) {
  partial p = {0, 0, 0, 0, 0, 0, 0, 0};
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
  *out = p;
}

#ifdef MLSH_METRICS_X86
/* Four whole chunks starting at x, y (chunk k at + k * CHUNK) into out[0..3]. */
__attribute__((target("avx"))) static void chunks4_avx(const float *x, const float *y, partial *out) {
  __m256d xx = _mm256_setzero_pd(), yy = xx, xy = xx, ee = xx, aes = xx, maxe = xx, maxxx = xx, zs = xx;
  const __m256d sign = _mm256_set1_pd(-0.0), one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd();
  for (size_t i = 0; i < CHUNK; i += 4) {
    __m128 xv[4], yv[4];
    for (int k = 0; k < 4; k++) {
      xv[k] = _mm_loadu_ps(x + (size_t)k * CHUNK + i);
      yv[k] = _mm_loadu_ps(y + (size_t)k * CHUNK + i);
    }
    _MM_TRANSPOSE4_PS(xv[0], xv[1], xv[2], xv[3]); /* xv[j] = element i + j of chunks 0..3 */
    _MM_TRANSPOSE4_PS(yv[0], yv[1], yv[2], yv[3]);
    for (int j = 0; j < 4; j++) {
      __m256d a = _mm256_cvtps_pd(xv[j]), b = _mm256_cvtps_pd(yv[j]);
      __m256d e = _mm256_sub_pd(a, b), ae = _mm256_andnot_pd(sign, e), aa = _mm256_mul_pd(a, a);
      xx = _mm256_add_pd(xx, aa);
      yy = _mm256_add_pd(yy, _mm256_mul_pd(b, b));
      xy = _mm256_add_pd(xy, _mm256_mul_pd(a, b));
      ee = _mm256_add_pd(ee, _mm256_mul_pd(e, e));
      aes = _mm256_add_pd(aes, ae);
      __m256d up = _mm256_or_pd(_mm256_cmp_pd(ae, maxe, _CMP_GT_OQ), _mm256_cmp_pd(ae, ae, _CMP_UNORD_Q));
      maxe = _mm256_blendv_pd(maxe, ae, up);
      maxxx = _mm256_blendv_pd(maxxx, aa, _mm256_cmp_pd(aa, maxxx, _CMP_GT_OQ));
      zs = _mm256_add_pd(zs, _mm256_and_pd(_mm256_cmp_pd(b, zero, _CMP_EQ_OQ), one));
    }
  }
  double v[8][4];
  _mm256_storeu_pd(v[0], xx), _mm256_storeu_pd(v[1], yy), _mm256_storeu_pd(v[2], xy), _mm256_storeu_pd(v[3], ee);
  _mm256_storeu_pd(v[4], aes), _mm256_storeu_pd(v[5], maxe), _mm256_storeu_pd(v[6], maxxx), _mm256_storeu_pd(v[7], zs);
  for (int k = 0; k < 4; k++)
    out[k] = (partial){v[0][k], v[1][k], v[2][k], v[3][k], v[4][k], v[5][k], v[6][k], (size_t)v[7][k]};
}
#endif

static void task(void *pv, size_t t, unsigned w) {
  (void)w;
  m_ctx *c = pv;
  if (c->signal) {
    if (t == 0) {
      double s = 0;
      for (size_t i = 0; i < c->n; i++) {
        double v = c->x[i];
        if (!isnan(v)) s += v * v;
      }
      c->sum_sq = s;
      return;
    }
    t--;
  }
  size_t c0 = t * LANES;
#ifdef MLSH_METRICS_X86
  if (c->avx && (c0 + LANES) * CHUNK <= c->n) {
    chunks4_avx(c->x + c0 * CHUNK, c->y + c0 * CHUNK, c->p + c0);
    return;
  }
#endif
  for (size_t k = c0; k < c0 + LANES && k * CHUNK < c->n; k++) {
    size_t i0 = k * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
    chunk_scalar(c->x + i0, c->y + i0, i1 - i0, &c->p[k]);
  }
}

int mlsh_metrics_compute(const float *x, const float *y, size_t n, unsigned threads, int signal, mlsh_metrics *m) {
  if (n == 0) return MLSH_CZ_EINVAL;
  size_t chunks = (n + CHUNK - 1) / CHUNK;
  int avx2;
  m_ctx c = {x, y, n, malloc(chunks * sizeof(partial)), mlsh_cpu_f16c(&avx2) != 0 /* F16C implies AVX */, signal != 0, 0};
  if (!c.p) return MLSH_CZ_ENOMEM;
  mlsh_parallel_for(mlsh_threads_clamp(threads), (chunks + LANES - 1) / LANES + (size_t)c.signal, task, &c);
  partial s = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t t = 0; t < chunks; t++) {
    partial p = c.p[t];
    s.xx += p.xx;
    s.yy += p.yy;
    s.xy += p.xy;
    s.ee += p.ee;
    s.ae += p.ae;
    if (p.maxe > s.maxe || isnan(p.maxe)) s.maxe = p.maxe;
    if (p.maxxx > s.maxxx) s.maxxx = p.maxxx;
    s.zeros += p.zeros;
  }
  free(c.p);
  m->n = n;
  m->mse = s.ee / (double)n;
  m->snr_db = s.ee == 0 ? INFINITY : 10.0 * log10(s.xx / s.ee);
  m->psnr_db = s.ee == 0 ? INFINITY : 10.0 * log10(s.maxxx / m->mse);
  m->max_abs_err = s.maxe;
  m->mean_abs_err = s.ae / (double)n;
  if (s.xx == 0 || s.yy == 0) m->cosine = (s.xx == 0 && s.yy == 0) ? 1.0 : 0.0;
  else m->cosine = s.xy / sqrt(s.xx * s.yy);
  m->sparsity = (double)s.zeros / (double)n;
  m->sum_sq = c.sum_sq;
  return MLSH_CZ_OK;
}
