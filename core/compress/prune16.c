/* prune16.c — mlsh_prune_pass (see prune.h): magnitude and threshold pruning of fp16 codes read
 * in place. fp16 magnitudes order like their 15 low bits, so the percentile's order statistics
 * come from a histogram of those bits, and the mask from comparing them. */
#include "compress/metrics.h"
#include "compress/percentile.h"
#include "compress/prune.h"
#include "compress/threads.h"
#include "dtype.h"
#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MLSH_PRUNE_X86 1
#endif

#define CHUNK ((size_t)1 << 18)


#define MAGS 32768u /* fp16 magnitudes: the 15 low bits, ordered as the values */

typedef struct {
  const uint16_t *h;
  size_t n;
  unsigned nt;
  int count;      /* histogram wanted (magnitude) */
  uint32_t *hist; /* nt x MAGS */
  uint8_t *bad;   /* per chunk */
  float thr;
  uint8_t *mask;  /* packed */
  uint32_t *bcnt; /* kept per batch, then the kept entries before it */
  uint16_t *kept;
  int avx, vbmi2;
  uint16_t lim; /* no metrics: kept iff (h & 0x7fff) > lim (mag_limit) */
  /* window_select: codes [wlo, wlo + wlen) counted per worker in whist, those below per chunk */
  uint16_t wlo;
  uint32_t wlen;
  uint32_t *whist;
  size_t *below;
} pr16;

static void mag_task(void *p, size_t t, unsigned w) {
  pr16 *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  unsigned bad = 0;
  if (c->count) { /* inf/NaN magnitudes (>= 0x7c00) are read off the histogram afterwards */
    uint32_t *hist = c->hist + (size_t)w * MAGS;
    for (size_t i = i0; i < i1; i++) hist[c->h[i] & 0x7fffu]++;
  } else {
    for (size_t i = i0; i < i1; i++) bad |= (c->h[i] & 0x7fffu) >= 0x7c00u;
  }
  c->bad[t] = (uint8_t)bad;
}

/* ---- the order statistics from a window of codes around them ----
 * A histogram of every code costs a scattered increment per element. Instead a sample (runs of
 * RUN elements, one element in STEP) brackets the codes at the wanted ranks with a wide margin
 * (8 standard deviations of a sample quantile, were the sample random); one vector pass then
 * counts the elements below the window and histograms only those inside it. When the counts
 * show a rank is not inside (a sample that misleads, e.g. data with period RUN * STEP), the full
 * histogram decides: exact either way. */
#define STEP 64 /* one element in STEP sampled, as runs of RUN */
#define RUN 32
#define WINDOW_MIN ((size_t)1 << 16) /* smaller tensors take the full histogram */
#define MISS 1

#ifdef MLSH_PRUNE_X86
/* window_task's elements from i, 32 at a time: returns where it stopped. */
__attribute__((target("avx512f,avx512bw,avx512vbmi2,popcnt"))) static size_t window32_bw(const pr16 *c, size_t i, size_t e,
                                                                                 uint32_t *wh, size_t *below,
                                                                                 unsigned *bad) {
  const __m512i low = _mm512_set1_epi16(0x7fff), lo = _mm512_set1_epi16((short)c->wlo);
  const __m512i span = _mm512_set1_epi16((short)(c->wlen - 1)), inf = _mm512_set1_epi16(0x7c00);
  __mmask32 nf = 0;
  size_t nb = 0, k = 0;
  uint16_t buf[256 + 32]; /* the window's offsets, packed (a whole vector stored each time) */
  for (; i + 32 <= e; i += 32) {
    __m512i m = _mm512_and_si512(_mm512_loadu_si512((const void *)(c->h + i)), low);
    nb += (size_t)__builtin_popcount((uint32_t)_mm512_cmplt_epu16_mask(m, lo));
    nf |= _mm512_cmpge_epu16_mask(m, inf);
    __m512i d = _mm512_sub_epi16(m, lo); /* below the window wraps high */
    __mmask32 in = _mm512_cmple_epu16_mask(d, span);
    _mm512_storeu_si512((void *)(buf + k), _mm512_maskz_compress_epi16(in, d));
    k += (size_t)__builtin_popcount((uint32_t)in);
    if (k >= 256) {
      for (size_t j = 0; j < k; j++) wh[buf[j]]++;
      k = 0;
    }
  }
  for (size_t j = 0; j < k; j++) wh[buf[j]]++;
  *below += nb;
  *bad |= nf != 0;
  return i;
}
#endif

static void window_task(void *p, size_t t, unsigned w) {
  pr16 *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n, i = i0, below = 0;
  uint32_t *wh = c->whist + (size_t)w * c->wlen;
  unsigned bad = 0;
#ifdef MLSH_PRUNE_X86
  if (c->vbmi2) i = window32_bw(c, i, i1, wh, &below, &bad);
#endif
  for (; i < i1; i++) {
    unsigned m = c->h[i] & 0x7fffu;
    uint32_t d = (uint32_t)m - c->wlo;
    below += m < c->wlo;
    bad |= m >= 0x7c00u;
    if (d < c->wlen) wh[d]++;
  }
  c->below[t] = below;
  c->bad[t] = (uint8_t)bad;
}

/* The code at sample rank k of histogram sh (k < its total). */
static uint16_t code_at(const uint32_t *sh, size_t k) {
  unsigned a = 0;
  for (size_t seen = sh[0]; seen <= k; seen += sh[++a]) {}
  return (uint16_t)a;
}

/* The window [lo, hi] of codes from a sample: MLSH_CZ_ENONFINITE when a sampled code is inf/NaN. */
static int sample_window(const pr16 *c, const size_t r[2], uint16_t *lo, uint16_t *hi) {
  size_t ns = 0;
  uint32_t *sh = calloc(MAGS, sizeof(uint32_t));
  if (!sh) return MLSH_CZ_ENOMEM;
  for (size_t b = 0; b + RUN <= c->n; b += RUN * STEP, ns += RUN) /* runs of RUN: whole cache lines */
    for (size_t i = b; i < b + RUN; i++) sh[c->h[i] & 0x7fffu]++;
  int bad = 0;
  for (unsigned a = 0x7c00u; a < MAGS; a++) bad |= sh[a] != 0;
  size_t margin = (size_t)(4.0 * sqrt((double)ns)) + 8;
  size_t k0 = (size_t)((double)r[0] / (double)c->n * (double)ns), k1 = (size_t)((double)r[1] / (double)c->n * (double)ns);
  *lo = code_at(sh, k0 > margin ? k0 - margin : 0);
  *hi = code_at(sh, k1 + margin < ns ? k1 + margin : ns - 1);
  free(sh);
  return bad ? MLSH_CZ_ENONFINITE : MLSH_CZ_OK;
}

/* ab = the magnitudes at ranks r from the window, or MISS when a rank lies outside it. */
static int window_select(pr16 *c, const size_t r[2], float ab[2]) {
  size_t chunks = (c->n + CHUNK - 1) / CHUNK;
  uint16_t lo, hi;
  int st = sample_window(c, r, &lo, &hi);
  if (st) return st;
  c->wlo = lo;
  c->wlen = (uint32_t)hi - lo + 1;
  c->whist = calloc((size_t)c->nt * c->wlen, sizeof(uint32_t));
  c->below = malloc(chunks * sizeof(size_t));
  if (!c->whist || !c->below) st = MLSH_CZ_ENOMEM;
  else mlsh_parallel_for(c->nt, chunks, window_task, c);
  size_t below = 0, k = 0;
  for (size_t t = 0; !st && t < chunks; t++) {
    below += c->below[t];
    if (c->bad[t]) st = MLSH_CZ_ENONFINITE;
  }
  for (uint32_t a = 0; !st && a < c->wlen; a++) { /* the merged histogram, into worker 0's */
    for (unsigned w = 1; w < c->nt; w++) c->whist[a] += c->whist[(size_t)w * c->wlen + a];
    k += c->whist[a];
  }
  if (!st && (r[0] < below || r[1] >= below + k)) st = MISS;
  for (int j = 0; j < 2 && !st; j++) {
    uint32_t a = 0;
    for (size_t seen = below + c->whist[0]; seen <= r[j]; seen += c->whist[++a]) {}
    ab[j] = mlsh_fp16_to_f32((uint16_t)(lo + a));
  }
  free(c->whist);
  free(c->below);
  c->whist = NULL;
  c->below = NULL;
  return st;
}

/* The magnitude at sorted rank r in the summed histograms. */
static float mag_at(const pr16 *c, size_t r) {
  for (unsigned a = 0; a < MAGS; a++) {
    size_t cnt = 0;
    for (unsigned w = 0; w < c->nt; w++) cnt += c->hist[(size_t)w * MAGS + a];
    if (r < cnt) return mlsh_fp16_to_f32((uint16_t)a);
    r -= cnt;
  }
  return INFINITY; /* not reached for r < n */
}

/* As apply_task (x decoded from h: x == 0 exactly when h is +-0), 8 elements to a mask byte;
 * y = the pruned tensor (pruned entries +0). Branch-free: half the entries go each way. */
static void pr16_batch_scalar(pr16 *c, size_t i, size_t k0, size_t m, const float *x, float *y, uint32_t *nnz) {
  uint8_t *mask = c->mask + i / 8;
  for (; k0 < m; k0 += 8) {
    unsigned byte = 0;
    for (size_t k = k0; k < k0 + 8 && k < m; k++) {
      unsigned keep = (unsigned)!(fabsf(x[k]) <= c->thr) & (unsigned)(x[k] != 0.0f);
      uint32_t u;
      memcpy(&u, &x[k], 4);
      u &= 0u - keep;
      memcpy(&y[k], &u, 4);
      byte |= keep << (k - k0);
      *nnz += keep;
    }
    mask[k0 / 8] = (uint8_t)byte;
  }
}

#ifdef MLSH_PRUNE_X86
__attribute__((target("avx,popcnt"))) static size_t pr16_batch_avx(pr16 *c, size_t i, size_t m, const float *x, float *y,
                                                                   uint32_t *nnz) {
  const __m256 thr = _mm256_set1_ps(c->thr), zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
  uint8_t *mask = c->mask + i / 8;
  size_t k = 0;
  for (; k + 8 <= m; k += 8) {
    __m256 v = _mm256_loadu_ps(x + k);
    __m256 keep = _mm256_and_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v), thr, _CMP_NLE_UQ), _mm256_cmp_ps(v, zero, _CMP_NEQ_OQ));
    _mm256_storeu_ps(y + k, _mm256_and_ps(v, keep));
    unsigned b = (unsigned)_mm256_movemask_ps(keep);
    mask[k / 8] = (uint8_t)b;
    *nnz += (uint32_t)__builtin_popcount(b);
  }
  return k;
}
#endif

static void pr16_batch(void *p, size_t i, size_t m, const float *x, float *y) {
  pr16 *c = p;
  uint32_t nnz = 0;
  size_t k0 = 0;
#ifdef MLSH_PRUNE_X86
  if (c->avx) k0 = pr16_batch_avx(c, i, m, x, y, &nnz);
#endif
  pr16_batch_scalar(c, i, k0, m, x, y, &nnz);
  c->bcnt[i / MLSH_MX_BATCH] = nnz;
}

/* For a pass without metrics: the codes kept are those with (h & 0x7fff) > lim, where lim is
 * the largest finite magnitude code whose value is <= thr (or 0): the same as !(|x| <= thr) &&
 * x != 0 for finite x, since fp16 magnitudes grow with their codes. */
static uint16_t mag_limit(float thr) {
  int32_t lo = -1, hi = 0x7bff; /* the answer is in [lo, hi]; -1: no code is <= thr */
  while (lo < hi) {
    int32_t mid = lo + (hi - lo + 1) / 2;
    if (mlsh_fp16_to_f32((uint16_t)mid) <= thr) lo = mid;
    else hi = mid - 1;
  }
  return (uint16_t)(lo < 0 ? 0 : lo);
}

#ifdef MLSH_PRUNE_X86
/* mask16_task's elements [k, e), 32 at a time (k a multiple of 32): returns where it stopped. */
__attribute__((target("avx512f,avx512bw"))) static size_t mask32_bw(const pr16 *c, size_t k, size_t e, uint32_t *nnz) {
  const __m512i lim = _mm512_set1_epi16((short)c->lim), low = _mm512_set1_epi16(0x7fff);
  for (; k + 32 <= e; k += 32) {
    __mmask32 keep = _mm512_cmpgt_epu16_mask(_mm512_and_si512(_mm512_loadu_si512((const void *)(c->h + k)), low), lim);
    uint32_t b = (uint32_t)keep;
    memcpy(c->mask + k / 8, &b, 4);
    *nnz += (uint32_t)__builtin_popcount(b);
  }
  return k;
}
#endif

/* pr16_batch's mask and counts for every batch of a chunk, straight from the codes (no metrics
 * wanted: nothing is decoded, no pruned tensor is made). */
static void mask16_task(void *p, size_t t, unsigned w) {
  (void)w;
  pr16 *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  for (size_t b = i0; b < i1; b += MLSH_MX_BATCH) {
    size_t e = i1 - b < MLSH_MX_BATCH ? i1 : b + MLSH_MX_BATCH, k = b;
    uint32_t nnz = 0;
#ifdef MLSH_PRUNE_X86
    if (c->vbmi2) k = mask32_bw(c, k, e, &nnz);
#endif
    for (; k < e; k += 8) {
      unsigned byte = 0;
      for (size_t j = k; j < k + 8 && j < e; j++) {
        unsigned keep = (c->h[j] & 0x7fffu) > c->lim;
        byte |= keep << (j - k);
        nnz += keep;
      }
      c->mask[k / 8] = (uint8_t)byte;
    }
    c->bcnt[b / MLSH_MX_BATCH] = nnz;
  }
}

#ifdef MLSH_PRUNE_X86
/* The kept codes of elements [i, e) (e - i a multiple of 32, i of 8) to out: one compressing
 * store per 32 elements; returns the count written. */
__attribute__((target("avx512f,avx512bw,avx512vbmi2"))) static size_t gather32_vbmi2(const pr16 *c, size_t i, size_t e,
                                                                                   uint16_t *out) {
  size_t k = 0;
  for (; i < e; i += 32) {
    uint32_t m;
    memcpy(&m, c->mask + i / 8, 4);
    _mm512_mask_compressstoreu_epi16(out + k, (__mmask32)m, _mm512_loadu_si512((const void *)(c->h + i)));
    k += (size_t)__builtin_popcount(m);
  }
  return k;
}
#endif

/* The kept fp16 codes of each batch at its offset. */
static void gather16_task(void *p, size_t t, unsigned w) {
  (void)w;
  pr16 *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
#ifdef MLSH_PRUNE_X86
  if (c->vbmi2) {
    size_t whole = i0 + (i1 - i0) / 32 * 32; /* i0 is a multiple of 32 */
    uint16_t *out = c->kept + c->bcnt[i0 / MLSH_MX_BATCH];
    out += gather32_vbmi2(c, i0, whole, out);
    for (size_t i = whole; i < i1; i++)
      if ((c->mask[i >> 3] >> (i & 7)) & 1u) *out++ = c->h[i];
    return;
  }
#endif
  uint16_t buf[MLSH_MX_BATCH]; /* branch-free writes stay inside the batch's own slots */
  for (size_t b = i0; b < i1; b += MLSH_MX_BATCH) {
    size_t e = i1 - b < MLSH_MX_BATCH ? i1 : b + MLSH_MX_BATCH, k = 0;
    for (size_t i = b; i < e; i++) {
      buf[k] = c->h[i];
      k += (c->mask[i >> 3] >> (i & 7)) & 1u;
    }
    memcpy(c->kept + c->bcnt[b / MLSH_MX_BATCH], buf, k * sizeof(uint16_t));
  }
}

/* The pass's first look at the codes: the finite check and, when counting (a magnitude
 * percentile), the magnitudes at ranks r into ab (a sampled window, else the full histogram). */
static int scan(pr16 *c, const size_t r[2], float ab[2]) {
  size_t chunks = (c->n + CHUNK - 1) / CHUNK;
  int st = c->count && c->n >= WINDOW_MIN ? window_select(c, r, ab) : MISS;
  if (st != MISS) return st;
  st = MLSH_CZ_OK;
  if (c->count && !(c->hist = calloc((size_t)c->nt * MAGS, sizeof(uint32_t)))) return MLSH_CZ_ENOMEM;
  mlsh_parallel_for(c->nt, chunks, mag_task, c);
  for (size_t i = 0; i < chunks; i++)
    if (c->bad[i]) st = MLSH_CZ_ENONFINITE;
  if (c->count)
    for (unsigned w = 0; w < c->nt; w++)
      for (unsigned a = 0x7c00u; a < MAGS; a++)
        if (c->hist[(size_t)w * MAGS + a]) st = MLSH_CZ_ENONFINITE;
  if (c->count && !st) ab[0] = mag_at(c, r[0]), ab[1] = mag_at(c, r[1]);
  free(c->hist);
  c->hist = NULL;
  return st;
}

int mlsh_prune_pass(const uint16_t *h, size_t n, const mlsh_prune_opts *o, uint8_t *mask, uint16_t *kept,
                    mlsh_prune_info *info, mlsh_metrics *m) {
  int st = mlsh_prune_check(o, n);
  if (st) return st;
  if ((o->mode != MLSH_PRUNE_MAGNITUDE && o->mode != MLSH_PRUNE_THRESHOLD) || o->wdtype != MLSH_WD_FP16 ||
      n >= UINT32_MAX)
    return MLSH_CZ_EINVAL;
  size_t chunks = (n + CHUNK - 1) / CHUNK, batches = (n + MLSH_MX_BATCH - 1) / MLSH_MX_BATCH;
  double q = o->sparsity * 100.0;
  pr16 c = {h, n, mlsh_threads_clamp(o->threads), 0, NULL, malloc(chunks), -1, mask,
            malloc(batches * sizeof(uint32_t)), kept, 0, 0, 0, 0, 0, NULL, NULL};
  c.count = o->mode == MLSH_PRUNE_MAGNITUDE && q != 0.0 && q != 100.0;
  int avx2;
  c.avx = mlsh_cpu_f16c(&avx2) != 0; /* F16C implies AVX */
#ifdef MLSH_PRUNE_X86
  __builtin_cpu_init();
  c.vbmi2 = c.avx && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vbmi2");
#endif
  size_t r[2];
  double gamma = c.count ? mlsh_percentile_ranks(n, q, r) : 0;
  float ab[2];
  if (!c.bad || !c.bcnt) st = MLSH_CZ_ENOMEM;
  else st = scan(&c, r, ab);
  if (st) goto done;
  info->threshold = NAN; /* c.thr -1: |w| <= -1 never holds, nothing pruned unless set below */
  if (o->mode == MLSH_PRUNE_THRESHOLD) c.thr = mlsh_wd_round_d(MLSH_WD_FP16, o->threshold);
  else if (q == 100.0) c.thr = INFINITY;
  else if (c.count) c.thr = mlsh_percentile_value(MLSH_WD_FP16, ab, gamma);
  if (o->mode == MLSH_PRUNE_THRESHOLD || q == 100.0 || c.count) info->threshold = c.thr;
  mlsh_cz_src src = {NULL, h};
  if (!m) {
    c.lim = mag_limit(c.thr);
    mlsh_parallel_for(c.nt, chunks, mask16_task, &c);
  } else if ((st = mlsh_metrics_pass(&src, n, o->threads, pr16_batch, &c, m))) goto done;
  size_t nnz = 0;
  for (size_t b = 0; b < batches; b++) {
    uint32_t k = c.bcnt[b];
    c.bcnt[b] = (uint32_t)nnz;
    nnz += k;
  }
  mlsh_parallel_for(c.nt, chunks, gather16_task, &c);
  info->nnz = nnz;

done:
  free(c.bad);
  free(c.bcnt);
  return st;
}
