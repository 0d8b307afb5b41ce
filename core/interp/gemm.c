/* gemm.c — blocked, threaded SGEMM with one packed operand (see gemm.h).
 * Roles: the "row operand" R (rows x K, K-contiguous, read in place) and the "panel operand" P
 * (packed once as panels of NR columns: panel p holds K x NR, zero padded; a full panel of a
 * K x cols source is read where it lies instead). Normal: R = A, P = B, tile (r, q) is C[r][q].
 * Swapped (b_trans): R = B (N x K), P = Aᵀ, tile (r, q) is C[q][r]. A tile past the last row
 * re-reads the last row; those results are dropped.
 * A task owns a block of R rows and a run of panels; each tile runs K in blocks of KC. */
#include "gemm.h"
#include "gemv.h"
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define MRMAX 8
#define NRMAX 32
#define KC 256
#define MC 72
#define PGROUP 8

/* tile[mr][w <= nr] (row stride ldc) = (acc ? tile : 0) + R rows [0, mr) x panel (+ bias[r] if bias).
 * A kernel may compute and store all nr columns, or (w <= nr / 2) only the first nr / 2. */
/* A relu / relu6 applied in the kernel's store (the AVX-512 one only), the values it overwrites
 * scanned first when `scan` (the executor's non-finite / fp16-range check): see clamp_ok. */
typedef struct {
  float lo, hi;
  int scan, bad, big;
} epi_t;
typedef void (*micro_fn)(size_t kc, const float *r, size_t ldr, size_t h, size_t w, const float *b, size_t ldb, float *c,
                         size_t ldc, int acc, const float *bias, epi_t *epi);
typedef struct {
  micro_fn fn;
  size_t mr, nr;
} kernel;

static void micro_c(size_t kc, const float *rw, size_t ldr, size_t h, size_t w, const float *b, size_t ldb, float *c,
                    size_t ldc, int acc, const float *bias, epi_t *epi) {
  enum { MR = 6, NR = 16 };
  (void)w;
  (void)epi;
  float t[MR][NR];
  const float *rows[MR];
  for (size_t r = 0; r < MR; r++) rows[r] = rw + (r < h ? r : h - 1) * ldr;
  memset(t, 0, sizeof t);
  for (size_t k = 0; k < kc; k++, b += ldb)
    for (int r = 0; r < MR; r++) {
      float av = rows[r][k];
      for (int j = 0; j < NR; j++) t[r][j] += av * b[j];
    }
  for (int r = 0; r < MR; r++)
    for (int j = 0; j < NR; j++) {
      float v = acc ? c[r * ldc + j] + t[r][j] : t[r][j];
      c[r * ldc + j] = bias ? v + bias[r] : v;
    }
}

#ifdef HAVE_X86
#define ROW(i, p)                                                                                                   \
  av = _mm256_broadcast_ss(p + k);                                                                                  \
  c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                                                                       \
  c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1)
#define STORE(i)                                                                                                    \
  do {                                                                                                              \
    float *ci = c + (size_t)(i) * ldc;                                                                              \
    if (acc) { c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(ci)); c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(ci + 8)); } \
    if (bias) { __m256 bv = _mm256_broadcast_ss(bias + (i)); c##i##0 = _mm256_add_ps(c##i##0, bv); c##i##1 = _mm256_add_ps(c##i##1, bv); } \
    _mm256_storeu_ps(ci, c##i##0);                                                                                  \
    _mm256_storeu_ps(ci + 8, c##i##1);                                                                              \
  } while (0)

__attribute__((target("avx2,fma"))) static void micro_avx2(size_t kc, const float *rw, size_t ldr, size_t h, size_t w,
                                                          const float *b, size_t ldb, float *c, size_t ldc, int acc,
                                                          const float *bias, epi_t *epi) {
  (void)w;
  (void)epi;
  const float *r0 = rw, *r1 = rw + (h > 1 ? 1 : h - 1) * ldr, *r2 = rw + (h > 2 ? 2 : h - 1) * ldr;
  const float *r3 = rw + (h > 3 ? 3 : h - 1) * ldr, *r4 = rw + (h > 4 ? 4 : h - 1) * ldr, *r5 = rw + (h > 5 ? 5 : h - 1) * ldr;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00, av;
  for (size_t k = 0; k < kc; k++, b += ldb) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    ROW(0, r0); ROW(1, r1); ROW(2, r2); ROW(3, r3); ROW(4, r4); ROW(5, r5);
  }
  STORE(0); STORE(1); STORE(2); STORE(3); STORE(4); STORE(5);
}

/* 8 rows x 32 columns in 16 zmm accumulators (8 x 16 when w <= 16). */
#define Z2(i) av = _mm512_set1_ps(r##i[k]); c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0); c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1)
#define Z1(i) c##i##0 = _mm512_fmadd_ps(_mm512_set1_ps(r##i[k]), b0, c##i##0)
#define ZST(i, half)                                                                                                \
  do {                                                                                                              \
    float *ci = c + (size_t)(i) * ldc;                                                                              \
    if (acc) { c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(ci)); if (!half) c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(ci + 16)); } \
    if (bias) { __m512 bv = _mm512_set1_ps(bias[i]); c##i##0 = _mm512_add_ps(c##i##0, bv); c##i##1 = _mm512_add_ps(c##i##1, bv); } \
    if (epi) {                                                                                                      \
      if (epi->scan) {                                                                                              \
        nanm |= _mm512_cmp_ps_mask(c##i##0, c##i##0, _CMP_UNORD_Q); mx = _mm512_max_ps(_mm512_abs_ps(c##i##0), mx); \
        if (!half) { nanm |= _mm512_cmp_ps_mask(c##i##1, c##i##1, _CMP_UNORD_Q); mx = _mm512_max_ps(_mm512_abs_ps(c##i##1), mx); } \
      }                                                                                                             \
      c##i##0 = _mm512_min_ps(_mm512_max_ps(c##i##0, elo), ehi); c##i##1 = _mm512_min_ps(_mm512_max_ps(c##i##1, elo), ehi); \
    }                                                                                                               \
    _mm512_storeu_ps(ci, c##i##0);                                                                                  \
    if (!half) _mm512_storeu_ps(ci + 16, c##i##1);                                                                  \
  } while (0)

#define RP(i) const float *r##i = rw + (h > i ? i : h - 1) * ldr
#define Z0(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0

/* 8 rows x 32 columns in 16 zmm accumulators (8 x 16 when w <= 16); rows past h re-read row h - 1. */
#define MICRO512(NAME, ROWS)                                                                                        \
  __attribute__((target("avx512f"))) static void NAME(size_t kc, const float *rw, size_t ldr, size_t h, size_t w,  \
                                                      const float *b, size_t ldb, float *c, size_t ldc, int acc,    \
                                                      const float *bias, epi_t *epi) {                              \
    enum { NR = 32 };                                                                                               \
    __m512 av;                                                                                                      \
    ROWS(RP);                                                                                                       \
    ROWS(Z0);                                                                                                       \
    int half = w <= NR / 2;                                                                                         \
    if (half)                                                                                                       \
      for (size_t k = 0; k < kc; k++, b += ldb) {                                                                   \
        __m512 b0 = _mm512_loadu_ps(b);                                                                             \
        ROWS(Z1);                                                                                                   \
      }                                                                                                             \
    else                                                                                                            \
      for (size_t k = 0; k < kc; k++, b += ldb) {                                                                   \
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);                                               \
        ROWS(Z2);                                                                                                   \
      }                                                                                                             \
    (void)av;                                                                                                       \
    __m512 mx = _mm512_setzero_ps(), elo = _mm512_set1_ps(epi ? epi->lo : 0), ehi = _mm512_set1_ps(epi ? epi->hi : 0); \
    __mmask16 nanm = 0;                                                                                             \
    ROWS(ZSTH);                                                                                                     \
    if (epi && epi->scan) {                                                                                         \
      float m = _mm512_reduce_max_ps(mx);                                                                           \
      epi->bad |= nanm != 0 || m == INFINITY;                                                                       \
      epi->big |= m > 65520.0f;                                                                                     \
    }                                                                                                               \
  }
#define ZSTH(i) ZST(i, half)
#define ROWS8(X) X(0); X(1); X(2); X(3); X(4); X(5); X(6); X(7)
MICRO512(micro_avx512, ROWS8)
#endif

static kernel pick_kernel(void) {
  kernel k = {micro_c, 6, 16};
#ifdef HAVE_X86
  __builtin_cpu_init();
  if (getenv("MLSH_NO_SIMD")) return k;
  if (__builtin_cpu_supports("avx512f") && !getenv("MLSH_NO_AVX512")) { k.fn = micro_avx512; k.mr = 8; k.nr = 32; }
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) k.fn = micro_avx2;
#endif
  return k;
}

typedef struct {
  size_t rows, cols, K, ldr, ldc;
  const float *R;
  const float *P; /* source of the panel operand */
  size_t ldp;
  int p_trans;     /* panel source is cols x K (K-contiguous) rather than K x cols */
  float *pp;       /* packed panels, all of K: panel p at p * K * nr, block k0 at + k0 * nr */
  size_t mc;       /* rows per task block */
  float *C;
  int acc, swapped;
  const float *bias;
  int bias_rows; /* bias indexed by C's row (else by C's column) */
  size_t mblocks, nchunks, chunk_panels;
  kernel kn;
  it_act *post;
  atomic_int *state; /* per panel: 0 not packed, 1 being packed, 2 packed */
  int in_place;      /* full panels of a K x cols operand are not packed */
  int clamp;         /* post is a relu / relu6 the AVX-512 kernel applies in its store */
  float clo, chi;
} job;

static void pack_panel(const job *j, size_t p) {
  size_t NR = j->kn.nr;
  float *o = j->pp + p * j->K * NR;
  size_t j0 = p * NR, w = j->cols - j0 < NR ? j->cols - j0 : NR;
  if (!j->p_trans) {
    const float *src = j->P + j0;
    if (w == 32) /* constant sizes: inlined vector moves, not a memcpy call per 128 bytes */
      for (size_t k = 0; k < j->K; k++) memcpy(o + k * NR, src + k * j->ldp, 32 * sizeof *o);
    else if (w == 16 && NR == 16)
      for (size_t k = 0; k < j->K; k++) memcpy(o + k * NR, src + k * j->ldp, 16 * sizeof *o);
    else
      for (size_t k = 0; k < j->K; k++) {
        memcpy(o + k * NR, src + k * j->ldp, w * sizeof *o);
        memset(o + k * NR + w, 0, (NR - w) * sizeof *o);
      }
    return;
  }
  for (size_t k0 = 0; k0 < j->K; k0 += 64) { /* cols x K source: a block of K at a time, row by row */
    size_t k1 = j->K - k0 < 64 ? j->K : k0 + 64;
    for (size_t q = 0; q < w; q++) {
      const float *src = j->P + (j0 + q) * j->ldp;
      for (size_t k = k0; k < k1; k++) o[k * NR + q] = src[k];
    }
    for (size_t k = k0; k < k1; k++)
      for (size_t q = w; q < NR; q++) o[k * NR + q] = 0;
  }
}

/* Panel p, packed: by this thread if nobody has started it, else once the thread packing it is
 * done (a copy of K x nr floats, short next to the tiles that use it). Packing inside the
 * tasks spares a separate parallel pass, and its wake-up, per GEMM. */
static void need_panel(const job *j, size_t p) {
  int zero = 0;
  if (atomic_load_explicit(&j->state[p], memory_order_acquire) == 2) return;
  if (atomic_compare_exchange_strong_explicit(&j->state[p], &zero, 1, memory_order_acq_rel, memory_order_acquire)) {
    pack_panel(j, p);
    atomic_store_explicit(&j->state[p], 2, memory_order_release);
    return;
  }
  for (unsigned n = 1; atomic_load_explicit(&j->state[p], memory_order_acquire) != 2; n++) {
    if (n % 256 == 0) sched_yield(); /* the packer may be off its core on a busy machine */
#ifdef HAVE_X86
    else _mm_pause();
#endif
  }
}

/* The fused activation over C's h x w block at (i, jc) in R/panel terms, once its sums are final. */
static void post_tile(const job *j, size_t i, size_t jc, size_t h, size_t w) {
  if (j->swapped)
    for (size_t q = 0; q < w; q++) it_act_apply(j->post, j->C + (jc + q) * j->ldc + i, h);
  else
    for (size_t r = 0; r < h; r++) it_act_apply(j->post, j->C + (i + r) * j->ldc + jc, w);
}

#ifdef HAVE_X86
/* The swapped store of a full-height tile (8 R rows x w <= 32 panel columns, t row stride 32):
 * C[jc + q][i .. i + 8) = t[0..8][q] (+ bias[i .. i + 8)), 8 columns at a time by an 8x8
 * transpose in registers; the values put_tile's loop would store. */
__attribute__((target("avx2"))) static void put_swapped8(const job *j, const float *t, size_t i, size_t jc, size_t w) {
  __m256 bv = j->bias ? _mm256_loadu_ps(j->bias + i) : _mm256_setzero_ps();
  size_t q0 = 0;
  for (; q0 + 8 <= w; q0 += 8) {
    __m256 r0 = _mm256_loadu_ps(t + 0 * 32 + q0), r1 = _mm256_loadu_ps(t + 1 * 32 + q0), r2 = _mm256_loadu_ps(t + 2 * 32 + q0),
           r3 = _mm256_loadu_ps(t + 3 * 32 + q0), r4 = _mm256_loadu_ps(t + 4 * 32 + q0), r5 = _mm256_loadu_ps(t + 5 * 32 + q0),
           r6 = _mm256_loadu_ps(t + 6 * 32 + q0), r7 = _mm256_loadu_ps(t + 7 * 32 + q0);
    __m256 a0 = _mm256_unpacklo_ps(r0, r1), a1 = _mm256_unpackhi_ps(r0, r1), a2 = _mm256_unpacklo_ps(r2, r3),
           a3 = _mm256_unpackhi_ps(r2, r3), a4 = _mm256_unpacklo_ps(r4, r5), a5 = _mm256_unpackhi_ps(r4, r5),
           a6 = _mm256_unpacklo_ps(r6, r7), a7 = _mm256_unpackhi_ps(r6, r7);
    __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xee), b2 = _mm256_shuffle_ps(a1, a3, 0x44),
           b3 = _mm256_shuffle_ps(a1, a3, 0xee), b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xee),
           b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xee);
    __m256 col[8] = {_mm256_permute2f128_ps(b0, b4, 0x20), _mm256_permute2f128_ps(b1, b5, 0x20),
                     _mm256_permute2f128_ps(b2, b6, 0x20), _mm256_permute2f128_ps(b3, b7, 0x20),
                     _mm256_permute2f128_ps(b0, b4, 0x31), _mm256_permute2f128_ps(b1, b5, 0x31),
                     _mm256_permute2f128_ps(b2, b6, 0x31), _mm256_permute2f128_ps(b3, b7, 0x31)};
    for (int c = 0; c < 8; c++) {
      float *d = j->C + (jc + q0 + (size_t)c) * j->ldc + i;
      _mm256_storeu_ps(d, j->bias ? _mm256_add_ps(col[c], bv) : col[c]);
    }
  }
  for (; q0 < w; q0++) {
    float *d = j->C + (jc + q0) * j->ldc + i;
    for (size_t r = 0; r < 8; r++) d[r] = j->bias ? t[r * 32 + q0] + j->bias[i + r] : t[r * 32 + q0];
  }
}
#endif

/* Tile (h x w at R row i, panel column jc) from t[mr][nr] into C, with accumulate and bias. */
static void put_tile(const job *j, const float *t, size_t i, size_t jc, size_t h, size_t w) {
  size_t NR = j->kn.nr;
#ifdef HAVE_X86
  if (j->swapped && NR == 32 && h == 8 && !j->acc && !j->bias_rows) {
    put_swapped8(j, t, i, jc, w);
    return;
  }
#endif
  if (j->swapped) { /* C[jc + q][i + r]: a linear layer's output, bias by C's column (i + r) or row */
    for (size_t q = 0; q < w; q++) {
      float *d = j->C + (jc + q) * j->ldc + i;
      const float *bias = j->bias ? (j->bias_rows ? NULL : j->bias + i) : NULL;
      float brow = j->bias && j->bias_rows ? j->bias[jc + q] : 0.0f;
      for (size_t r = 0; r < h; r++) {
        float v = j->acc ? d[r] + t[r * NR + q] : t[r * NR + q];
        if (bias) v += bias[r];
        else if (j->bias) v += brow;
        d[r] = v;
      }
    }
    return;
  }
  for (size_t r = 0; r < h; r++) {
    float *d = j->C + (i + r) * j->ldc + jc;
    const float *tr = t + r * NR;
    float b = j->bias && j->bias_rows ? j->bias[i + r] : 0.0f;
    for (size_t q = 0; q < w; q++) {
      float v = j->acc ? d[q] + tr[q] : tr[q];
      if (j->bias) v += j->bias_rows ? b : j->bias[jc + q];
      d[q] = v;
    }
  }
}

/* One tile over all of K, block by block: straight into C when the layout allows, else summed in
 * a local tile and stored once; then the fused activation, if any, while the tile is in cache. */
static void tile_all_k(const job *j, const float *rw, const float *pan, size_t ldb, size_t i, size_t jc, size_t h, size_t w) {
  size_t NR = j->kn.nr;
  int direct = !j->swapped && h == j->kn.mr && (w == NR || (NR == 32 && w == 16)) && (!j->bias || j->bias_rows);
  float tile[MRMAX * NRMAX];
  epi_t e = {j->clo, j->chi, j->post ? j->post->scan : 0, 0, 0};
  for (size_t k0 = 0; k0 < j->K; k0 += KC) {
    size_t kc = j->K - k0 < KC ? j->K - k0 : KC;
    int last = k0 + kc == j->K;
    if (direct)
      j->kn.fn(kc, rw + k0, j->ldr, h, w, pan + k0 * ldb, ldb, j->C + i * j->ldc + jc, j->ldc, j->acc || k0 > 0,
               last && j->bias ? j->bias + i : NULL, last && j->clamp ? &e : NULL);
    else
      j->kn.fn(kc, rw + k0, j->ldr, h, w, pan + k0 * ldb, ldb, tile, NR, k0 > 0, NULL, NULL);
  }
  if (!direct) put_tile(j, tile, i, jc, h, w);
  if (j->clamp && !direct) post_tile(j, i, jc, h, w);
  if (e.bad) __atomic_store_n(&j->post->bad, 1, __ATOMIC_RELAXED);
  if (e.big) __atomic_store_n(&j->post->big, 1, __ATOMIC_RELAXED);
}

static void task(void *ctx, size_t t, unsigned worker) {
  (void)worker;
  const job *j = ctx;
  size_t NR = j->kn.nr, MR = j->kn.mr;
  size_t mb = t / j->nchunks, nc = t % j->nchunks;
  size_t i0 = mb * j->mc, mc = j->rows - i0 < j->mc ? j->rows - i0 : j->mc;
  size_t p0 = nc * j->chunk_panels, panels = (j->cols + NR - 1) / NR;
  size_t p1 = p0 + j->chunk_panels < panels ? p0 + j->chunk_panels : panels;
  /* panels in groups of PGROUP: the fused activation runs over a group's finished block (rows of
   * PGROUP * NR values) while it is still in cache, rather than tile by tile */
  for (size_t g0 = p0; g0 < p1; g0 += PGROUP) {
    size_t g1 = g0 + PGROUP < p1 ? g0 + PGROUP : p1;
    for (size_t p = g0; p < g1; p++) {
      size_t jc = p * NR, w = j->cols - jc < NR ? j->cols - jc : NR;
      /* a full panel of a K x cols operand is read where it lies (rows ldp apart), else packed */
      int in_place = j->in_place && w == NR;
      const float *pan = in_place ? j->P + jc : j->pp + p * j->K * NR;
      if (!in_place) need_panel(j, p);
      for (size_t r0 = 0; r0 < mc; r0 += MR) {
        size_t h = mc - r0 < MR ? mc - r0 : MR, i = i0 + r0;
        tile_all_k(j, j->R + i * j->ldr, pan, in_place ? j->ldp : NR, i, jc, h, w);
      }
    }
    if (j->post && !j->clamp) {
      size_t c0 = g0 * NR, c1 = g1 * NR < j->cols ? g1 * NR : j->cols;
      post_tile(j, i0, c0, mc, c1 - c0);
    }
  }
}

static int gemm_slab(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans,
                     float *C, size_t ldc, int accumulate, const float *bias, int bias_rows, it_act *post) {
  if (K == 0) {
    for (size_t i = 0; i < M; i++) {
      for (size_t q = 0; q < N; q++) {
        float v = accumulate ? C[i * ldc + q] : 0.0f;
        C[i * ldc + q] = bias ? v + bias[bias_rows ? i : q] : v;
      }
      if (post) it_act_apply(post, C + i * ldc, N);
    }
    return 0;
  }
  static kernel kn;
  if (!kn.fn) kn = pick_kernel();
  job j;
  memset(&j, 0, sizeof j);
  j.K = K;
  j.ldc = ldc;
  j.C = C;
  j.bias = bias;
  j.bias_rows = bias_rows;
  j.kn = kn;
  j.post = post;
  j.swapped = b_trans;
#ifdef HAVE_X86
  if (post && post->clamp && kn.fn == micro_avx512) { j.clamp = 1; j.clo = post->lo; j.chi = post->hi; }
#endif
  if (b_trans) { j.rows = N; j.cols = M; j.R = B; j.ldr = ldb; j.P = A; j.ldp = lda; j.p_trans = 1; }
  else { j.rows = M; j.cols = N; j.R = A; j.ldr = lda; j.P = B; j.ldp = ldb; j.p_trans = 0; }
  unsigned nt = it_threads();
  if ((double)M * N * K < 1 << 16) nt = 1; /* not worth a thread */
  size_t NR = j.kn.nr, MR = j.kn.mr, panels = (j.cols + NR - 1) / NR;
  j.pp = malloc(panels * K * NR * sizeof *j.pp);
  j.state = malloc(panels * sizeof *j.state);
  if (!j.pp || !j.state) { free(j.pp); free(j.state); return -1; }
  for (size_t p = 0; p < panels; p++) atomic_init(&j.state[p], 0);
  /* a task's row block stays in L2 while the panels go by: ~192 KiB of R rows */
  j.mc = (size_t)(49152 / K) / MR * MR;
  if (j.mc < MR) j.mc = MR;
  if (j.mc > MC) j.mc = MC;
  j.mblocks = (j.rows + j.mc - 1) / j.mc;
  j.nchunks = 1;
  j.chunk_panels = panels;
  size_t want = (size_t)nt * 4;
  if (nt > 1 && j.mblocks < want) {
    j.nchunks = (want + j.mblocks - 1) / j.mblocks;
    if (j.nchunks > panels) j.nchunks = panels;
    j.chunk_panels = (panels + j.nchunks - 1) / j.nchunks;
    j.nchunks = (panels + j.chunk_panels - 1) / j.chunk_panels;
  }
  j.acc = accumulate;
  j.in_place = !j.p_trans;
  it_parallel_for(nt, j.mblocks * j.nchunks, task, &j);
  free(j.pp);
  free(j.state);
  return 0;
}

/* The packed copy covers at most SLAB floats (16 MiB): a wider panel operand (im2col columns,
 * many rows of a linear's input) is done in slabs of its columns, one after the other. */
#ifndef SLAB
#define SLAB ((size_t)4 << 20)
#endif

int it_sgemm_post(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans,
                  float *C, size_t ldc, int accumulate, const float *bias, int bias_rows, it_act *post) {
  if (M == 0 || N == 0) return 0;
  if (b_trans && M <= IT_GEMV_MAX_ROWS && K > 0) { /* a batch of a few rows: dot products, no tiles */
    it_gemv_bt(M, N, K, A, lda, B, ldb, C, ldc, accumulate, bias, bias_rows, post);
    return 0;
  }
  size_t cols = b_trans ? M : N, step = K ? SLAB / K / (NRMAX * 8) * (NRMAX * 8) : cols;
  if (step < NRMAX * 8) step = NRMAX * 8;
  for (size_t c0 = 0; c0 < cols; c0 += step) {
    size_t w = cols - c0 < step ? cols - c0 : step;
    int rc;
    if (b_trans) /* slab of A's rows = C's rows */
      rc = gemm_slab(w, N, K, A + c0 * lda, lda, B, ldb, 1, C + c0 * ldc, ldc, accumulate,
                     bias && bias_rows ? bias + c0 : bias, bias_rows, post);
    else /* slab of B's columns = C's columns */
      rc = gemm_slab(M, w, K, A, lda, B + c0, ldb, 0, C + c0, ldc, accumulate, bias && !bias_rows ? bias + c0 : bias,
                     bias_rows, post);
    if (rc != 0) return rc;
  }
  return 0;
}

int it_sgemm_bias(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans,
                  float *C, size_t ldc, int accumulate, const float *bias, int bias_rows) {
  return it_sgemm_post(M, N, K, A, lda, B, ldb, b_trans, C, ldc, accumulate, bias, bias_rows, NULL);
}

int it_sgemm(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans, float *C,
             size_t ldc, int accumulate) {
  return it_sgemm_post(M, N, K, A, lda, B, ldb, b_trans, C, ldc, accumulate, NULL, 0, NULL);
}
