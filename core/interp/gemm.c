/* gemm.c — blocked, packed, threaded SGEMM (see gemm.h). */
#include "gemm.h"
#include "pool.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define MR 6
#define NR 16
#define KC 256
#define MC 72

/* B block (kc rows from k0) packed as panels of NR columns: panel j holds kc x NR, zero padded. */
static void pack_b(const float *B, size_t ldb, int bt, size_t k0, size_t kc, size_t N, float *out) {
  size_t panels = (N + NR - 1) / NR;
  for (size_t p = 0; p < panels; p++) {
    float *o = out + p * kc * NR;
    size_t j0 = p * NR, w = N - j0 < NR ? N - j0 : NR;
    for (size_t k = 0; k < kc; k++) {
      size_t j = 0;
      if (!bt) {
        const float *src = B + (k0 + k) * ldb + j0;
        for (; j < w; j++) o[k * NR + j] = src[j];
      } else
        for (; j < w; j++) o[k * NR + j] = B[(j0 + j) * ldb + k0 + k];
      for (; j < NR; j++) o[k * NR + j] = 0;
    }
  }
}

static void pack_a(const float *A, size_t lda, size_t i0, size_t mc, size_t k0, size_t kc, float *out) {
  for (size_t r0 = 0; r0 < mc; r0 += MR) {
    float *o = out + r0 * kc;
    size_t h = mc - r0 < MR ? mc - r0 : MR;
    for (size_t k = 0; k < kc; k++) {
      size_t r = 0;
      for (; r < h; r++) o[k * MR + r] = A[(i0 + r0 + r) * lda + k0 + k];
      for (; r < MR; r++) o[k * MR + r] = 0;
    }
  }
}

static void micro_c(size_t kc, const float *a, const float *b, float *c, size_t ldc, int acc) {
  float t[MR][NR];
  memset(t, 0, sizeof t);
  for (size_t k = 0; k < kc; k++, a += MR, b += NR)
    for (int r = 0; r < MR; r++) {
      float av = a[r];
      for (int j = 0; j < NR; j++) t[r][j] += av * b[j];
    }
  for (int r = 0; r < MR; r++)
    for (int j = 0; j < NR; j++) c[r * ldc + j] = acc ? c[r * ldc + j] + t[r][j] : t[r][j];
}

#ifdef HAVE_X86
__attribute__((target("avx2,fma"))) static void micro_avx2(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                                                          int acc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (size_t k = 0; k < kc; k++, a += MR, b += NR) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), av;
    av = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  __m256 r[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int i = 0; i < MR; i++) {
    float *ci = c + (size_t)i * ldc;
    if (acc) {
      r[i][0] = _mm256_add_ps(r[i][0], _mm256_loadu_ps(ci));
      r[i][1] = _mm256_add_ps(r[i][1], _mm256_loadu_ps(ci + 8));
    }
    _mm256_storeu_ps(ci, r[i][0]);
    _mm256_storeu_ps(ci + 8, r[i][1]);
  }
}
#endif

typedef void (*micro_fn)(size_t, const float *, const float *, float *, size_t, int);
static micro_fn pick_micro(void) {
#ifdef HAVE_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return micro_avx2;
#endif
  return micro_c;
}

typedef struct {
  size_t M, N, K, lda, ldc;
  const float *A;
  const float *bp; /* packed B block */
  size_t k0, kc;
  float *C;
  int acc;
  size_t mblocks, nchunks, chunk_panels;
  float **abuf;
  micro_fn micro;
} job;

static void task(void *ctx, size_t t, unsigned worker) {
  job *j = ctx;
  size_t mb = t / j->nchunks, nc = t % j->nchunks;
  size_t i0 = mb * MC, mc = j->M - i0 < MC ? j->M - i0 : MC;
  size_t p0 = nc * j->chunk_panels, panels = (j->N + NR - 1) / NR;
  size_t p1 = p0 + j->chunk_panels < panels ? p0 + j->chunk_panels : panels;
  if (p0 >= p1) return;
  float *ap = j->abuf[worker];
  pack_a(j->A, j->lda, i0, mc, j->k0, j->kc, ap);
  float edge[MR * NR];
  for (size_t p = p0; p < p1; p++) {
    size_t jc = p * NR, w = j->N - jc < NR ? j->N - jc : NR;
    const float *bpan = j->bp + p * j->kc * NR;
    for (size_t r0 = 0; r0 < mc; r0 += MR) {
      size_t h = mc - r0 < MR ? mc - r0 : MR;
      float *c = j->C + (i0 + r0) * j->ldc + jc;
      if (h == MR && w == NR) j->micro(j->kc, ap + r0 * j->kc, bpan, c, j->ldc, j->acc);
      else {
        j->micro(j->kc, ap + r0 * j->kc, bpan, edge, NR, 0);
        for (size_t r = 0; r < h; r++)
          for (size_t q = 0; q < w; q++) c[r * j->ldc + q] = j->acc ? c[r * j->ldc + q] + edge[r * NR + q] : edge[r * NR + q];
      }
    }
  }
}

int it_sgemm(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans, float *C,
             size_t ldc, int accumulate) {
  if (M == 0 || N == 0) return 0;
  if (K == 0) {
    if (!accumulate)
      for (size_t i = 0; i < M; i++) memset(C + i * ldc, 0, N * sizeof *C);
    return 0;
  }
  static micro_fn micro;
  if (!micro) micro = pick_micro();
  unsigned nt = it_threads();
  if ((double)M * N * K < 1 << 16) nt = 1; /* not worth a thread */
  size_t panels = (N + NR - 1) / NR, kcmax = K < KC ? K : KC;
  float *bp = malloc(panels * kcmax * NR * sizeof *bp);
  float *abuf[MLSH_MAX_THREADS];
  int ok = bp != NULL;
  for (unsigned w = 0; w < nt; w++) {
    abuf[w] = malloc(MC * kcmax * sizeof(float));
    ok = ok && abuf[w];
  }
  if (ok) {
    job j = {M, N, K, lda, ldc, A, bp, 0, 0, C, accumulate, (M + MC - 1) / MC, 1, panels, abuf, micro};
    size_t want = (size_t)nt * 2;
    if (j.mblocks < want) {
      j.nchunks = (want + j.mblocks - 1) / j.mblocks;
      if (j.nchunks > panels) j.nchunks = panels;
      j.chunk_panels = (panels + j.nchunks - 1) / j.nchunks;
    }
    for (size_t k0 = 0; k0 < K; k0 += KC) {
      j.k0 = k0;
      j.kc = K - k0 < KC ? K - k0 : KC;
      j.acc = accumulate || k0 > 0;
      pack_b(B, ldb, b_trans, k0, j.kc, N, bp);
      it_parallel_for(nt, j.mblocks * j.nchunks, task, &j);
    }
  }
  free(bp);
  for (unsigned w = 0; w < nt; w++) free(abuf[w]);
  return ok ? 0 : -1;
}
