/* gemv.c — few-row GEMM against a weight read in place (see gemv.h). */
#include "gemv.h"
#include "pool.h"
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* d[r] = sum_k a[k] b_r[k] for the 4 rows b_r = b + r ldb (rows past nb re-read the last). */
typedef void (*dot4_fn)(const float *a, const float *b, size_t ldb, size_t nb, size_t K, float *d);

static void dot4_c(const float *a, const float *b, size_t ldb, size_t nb, size_t K, float *d) {
  for (size_t r = 0; r < nb; r++) {
    float s[16] = {0};
    const float *br = b + r * ldb;
    for (size_t k = 0; k < K; k++) s[k % 16] += a[k] * br[k];
    float t = 0;
    for (int i = 0; i < 16; i++) t += s[i];
    d[r] = t;
  }
}

#ifdef HAVE_X86
__attribute__((target("avx512f"))) static void dot4_avx512(const float *a, const float *b, size_t ldb, size_t nb, size_t K,
                                                           float *d) {
  const float *b0 = b, *b1 = b + (nb > 1 ? 1 : 0) * ldb, *b2 = b + (nb > 2 ? 2 : nb - 1) * ldb, *b3 = b + (nb > 3 ? 3 : nb - 1) * ldb;
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 av = _mm512_loadu_ps(a + k);
    s0 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b0 + k), s0);
    s1 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b1 + k), s1);
    s2 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b2 + k), s2);
    s3 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b3 + k), s3);
  }
  if (k < K) {
    __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
    __m512 av = _mm512_maskz_loadu_ps(m, a + k);
    s0 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, b0 + k), s0);
    s1 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, b1 + k), s1);
    s2 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, b2 + k), s2);
    s3 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, b3 + k), s3);
  }
  float t[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1), _mm512_reduce_add_ps(s2), _mm512_reduce_add_ps(s3)};
  for (size_t r = 0; r < nb; r++) d[r] = t[r];
}

__attribute__((target("avx2,fma"))) static float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

__attribute__((target("avx2,fma"))) static void dot4_avx2(const float *a, const float *b, size_t ldb, size_t nb, size_t K,
                                                         float *d) {
  for (size_t r = 0; r < nb; r++) {
    const float *br = b + r * ldb;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t k = 0;
    for (; k + 16 <= K; k += 16) {
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(br + k), s0);
      s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(br + k + 8), s1);
    }
    float t = hsum8(_mm256_add_ps(s0, s1));
    for (; k < K; k++) t += a[k] * br[k];
    d[r] = t;
  }
}
#endif

static dot4_fn pick(void) {
#ifdef HAVE_X86
  __builtin_cpu_init();
  if (getenv("MLSH_NO_SIMD")) return dot4_c;
  if (__builtin_cpu_supports("avx512f") && !getenv("MLSH_NO_AVX512")) return dot4_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot4_avx2;
#endif
  return dot4_c;
}

typedef struct {
  size_t M, K, lda, ldb, ldc;
  const float *A, *B, *bias;
  float *C;
  int acc, bias_rows;
  it_act *post;
  dot4_fn dot;
} gemv_job;

static void gemv_range(void *ctx, size_t n0, size_t n1) {
  const gemv_job *j = ctx;
  for (size_t m = 0; m < j->M; m++) {
    float *c = j->C + m * j->ldc;
    for (size_t n = n0; n < n1; n += 4) {
      size_t nb = n1 - n < 4 ? n1 - n : 4;
      float d[4];
      j->dot(j->A + m * j->lda, j->B + n * j->ldb, j->ldb, nb, j->K, d);
      for (size_t r = 0; r < nb; r++) {
        float v = j->acc ? c[n + r] + d[r] : d[r];
        c[n + r] = j->bias ? v + j->bias[j->bias_rows ? m : n + r] : v;
      }
    }
    if (j->post) it_act_apply(j->post, c + n0, n1 - n0);
  }
}

void it_gemv_bt(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc,
                int acc, const float *bias, int bias_rows, it_act *post) {
  static dot4_fn dot;
  if (!dot) dot = pick();
  gemv_job j = {M, K, lda, ldb, ldc, A, B, bias, C, acc, bias_rows, post, dot};
  it_parallel_range(N, M * K, gemv_range, &j);
}
