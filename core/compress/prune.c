/* prune.c — threshold / magnitude / block / n:m pruning (see prune.h).
 * The percentile needs two order statistics of the scores; they come from a two-level radix
 * select on the float bits of |score| (non-negative floats order like their bit patterns):
 * a parallel histogram of the top 16 bits, then one of the low 16 bits inside the chosen bins.
 * O(n), exact, and independent of the thread count because counts are integers. */
#include "compress/prune.h"
#include "compress/threads.h"
#include "compress/metrics.h"
#include "dtype.h"
#include <stdlib.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MLSH_PRUNE_X86 1
#endif

#define CHUNK ((size_t)1 << 18)
#define BINS 65536u

typedef struct {
  const mlsh_prune_opts *o;
  const float *x;
  size_t n;
  float *out;
  uint8_t *mask;
  const float *score; /* block scores, or NULL to score by |out| */
  float thr;
  int prune_all;
  uint8_t *bad;  /* per chunk */
  size_t *nnz;   /* per chunk */
  /* radix select */
  unsigned nt;
  uint64_t *h1;  /* nt x BINS */
  uint64_t *h2;  /* nt x 2 x BINS */
  unsigned bin[2];
  /* n:m */
  mlsh_axis_view v;
  size_t tiles; /* inner tiles per outer index */
  struct nm_item *scratch; /* nt x m, for m > 64 */
  mlsh_cz_cpu cpu;
} pr_ctx;

struct nm_item {
  float a;
  size_t pos;
};

static inline uint32_t abs_key(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u & 0x7fffffffu;
}

static inline float key_float(uint32_t k) {
  float f;
  memcpy(&f, &k, 4);
  return f;
}

static inline const float *scores(const pr_ctx *c) { return c->score ? c->score : c->out; }

#define BATCH 256

/* out = x in the weight dtype; v*0 is NaN only for NaN/inf input. */
static void prep_task(void *p, size_t t, unsigned w) {
  (void)w;
  pr_ctx *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  float chk = 0;
  for (size_t i = i0; i < i1; i++) chk += c->x[i] * 0.0f;
  memcpy(c->out + i0, c->x + i0, (i1 - i0) * sizeof(float));
  if (c->o->wdtype == MLSH_WD_FP16) c->cpu.round16(c->out + i0, i1 - i0);
  c->bad[t] = isnan(chk);
}

static void h1_task(void *p, size_t t, unsigned w) {
  pr_ctx *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  uint64_t *h = c->h1 + (size_t)w * BINS;
  const float *s = scores(c);
  for (size_t i = i0; i < i1; i++) h[abs_key(s[i]) >> 16]++;
}

static void h2_task(void *p, size_t t, unsigned w) {
  pr_ctx *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  uint64_t *ha = c->h2 + (size_t)w * 2 * BINS, *hb = ha + BINS;
  const float *s = scores(c);
  for (size_t i = i0; i < i1; i++) {
    uint32_t k = abs_key(s[i]), hi = k >> 16;
    if (hi == c->bin[0]) ha[k & 0xffffu]++;
    else if (hi == c->bin[1]) hb[k & 0xffffu]++;
  }
}

/* Find the bin holding rank r in the summed histograms; *r becomes the rank inside it. */
static unsigned find_bin(const uint64_t *h, unsigned nt, size_t stride, uint64_t *r) {
  for (unsigned b = 0; b < BINS; b++) {
    uint64_t cnt = 0;
    for (unsigned w = 0; w < nt; w++) cnt += h[(size_t)w * stride + b];
    if (*r < cnt) return b;
    *r -= cnt;
  }
  return BINS - 1; /* not reached for r < n */
}

/* |scores| at sorted ranks r[0] <= r[1]. */
static int select2(pr_ctx *c, const size_t r[2], float val[2]) {
  size_t tasks = (c->n + CHUNK - 1) / CHUNK;
  c->h1 = calloc((size_t)c->nt * BINS, sizeof(uint64_t));
  c->h2 = calloc((size_t)c->nt * 2 * BINS, sizeof(uint64_t));
  if (!c->h1 || !c->h2) return MLSH_CZ_ENOMEM;
  mlsh_parallel_for(c->nt, tasks, h1_task, c);
  uint64_t in[2] = {r[0], r[1]};
  c->bin[0] = find_bin(c->h1, c->nt, BINS, &in[0]);
  c->bin[1] = find_bin(c->h1, c->nt, BINS, &in[1]);
  if (c->bin[1] == c->bin[0]) c->bin[1] = BINS; /* one pass fills the first histogram only */
  mlsh_parallel_for(c->nt, tasks, h2_task, c);
  for (int q = 0; q < 2; q++) {
    int slot = (q == 1 && c->bin[1] != BINS) ? 1 : 0;
    unsigned b = c->bin[slot];
    unsigned lo = find_bin(c->h2 + (size_t)slot * BINS, c->nt, 2 * BINS, &in[q]);
    val[q] = key_float((b << 16) | lo);
  }
  return MLSH_CZ_OK;
}

/* Branch-free: at 50% sparsity a data-dependent branch mispredicts half the time. */
static void apply_task(void *p, size_t t, unsigned w) {
  (void)w;
  pr_ctx *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n, nnz = 0;
  const float *s = scores(c);
  float thr = c->prune_all ? INFINITY : c->thr;
  for (size_t i = i0; i < i1; i++) {
    uint32_t u;
    memcpy(&u, &c->out[i], 4);
    uint32_t keep = (uint32_t)!(fabsf(s[i]) <= thr) & (uint32_t)((u & 0x7fffffffu) != 0);
    u &= 0u - keep;
    memcpy(&c->out[i], &u, 4);
    c->mask[i] = (uint8_t)keep;
    nnz += keep;
  }
  c->nnz[t] = nnz;
}

/* Block scores for one (outer, inner tile): blocks of b channels along the axis. numpy squares
 * and sums in the weight dtype, channel by channel, then takes the root: so do we. */
static void block_task(void *p, size_t t, unsigned w) {
  (void)w;
  pr_ctx *c = p;
  float *sc = (float *)c->score;
  mlsh_round_batch_fn r16 = c->o->wdtype == MLSH_WD_FP16 ? c->cpu.round16 : NULL;
  size_t o = t / c->tiles, i0 = (t % c->tiles) * CHUNK, in = c->v.inner;
  size_t i1 = i0 + CHUNK < in ? i0 + CHUNK : in, C = c->v.channels, bs = c->o->block_size;
  float sq[BATCH];
  for (size_t c0 = 0; c0 < C; c0 += bs) {
    size_t c1 = c0 + bs < C ? c0 + bs : C; /* channels past C are zero padding: they add 0 */
    float *acc = sc + (o * C + c0) * in;
    for (size_t ch = c0; ch < c1; ch++) {
      const float *row = c->out + (o * C + ch) * in;
      for (size_t b = i0; b < i1; b += BATCH) {
        size_t m = i1 - b < BATCH ? i1 - b : BATCH;
        for (size_t k = 0; k < m; k++) sq[k] = row[b + k] * row[b + k];
        if (r16) r16(sq, m);
        if (ch == c0) memcpy(acc + b, sq, m * sizeof(float));
        else {
          for (size_t k = 0; k < m; k++) acc[b + k] += sq[k];
          if (r16) r16(acc + b, m);
        }
      }
    }
    for (size_t i = i0; i < i1; i++) acc[i] = sqrtf(acc[i]);
    if (r16) r16(acc + i0, i1 - i0);
    for (size_t ch = c0 + 1; ch < c1; ch++) memcpy(sc + (o * C + ch) * in + i0, acc + i0, (i1 - i0) * sizeof(float));
  }
}

static int nm_cmp(const void *pa, const void *pb) {
  const struct nm_item *a = pa, *b = pb;
  if (a->a != b->a) return a->a < b->a ? -1 : 1;
  return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* n:m for one (outer, inner tile): in each run of m channels prune the n smallest |w|. */
static void nm_task(void *p, size_t t, unsigned w) {
  pr_ctx *c = p;
  size_t o = t / c->tiles, i0 = (t % c->tiles) * CHUNK;
  size_t i1 = i0 + CHUNK < c->v.inner ? i0 + CHUNK : c->v.inner, C = c->v.channels, in = c->v.inner;
  unsigned n = c->o->n, m = c->o->m;
  float *base = c->out + o * C * in;
  for (size_t g0 = 0; g0 < C; g0 += m) {
    size_t len = g0 + m < C ? m : C - g0; /* the rest of the run is zero padding */
    for (size_t i = i0; i < i1; i++) {
      float *col = base + g0 * in + i;
      if (m <= 64) {
        float a[64];
        for (size_t e = 0; e < len; e++) a[e] = fabsf(col[e * in]);
        for (size_t e = 0; e < len; e++) {
          size_t rank = 0;
          for (size_t f = 0; f < m; f++) {
            float af = f < len ? a[f] : 0.0f;
            rank += af < a[e] || (af == a[e] && f < e);
          }
          if (rank < n) col[e * in] = 0;
        }
      } else {
        struct nm_item *s = c->scratch + (size_t)w * m;
        for (size_t f = 0; f < m; f++) {
          s[f].a = f < len ? fabsf(col[f * in]) : 0.0f;
          s[f].pos = f;
        }
        qsort(s, m, sizeof *s, nm_cmp);
        for (unsigned k = 0; k < n; k++)
          if (s[k].pos < len) col[s[k].pos * in] = 0;
      }
    }
  }
}

/* numpy's 'linear' percentile q of n values: virtual index (n-1)*q/100, lerp between the
 * values at sorted ranks r[0] <= r[1]; returns the weight gamma of the upper one. */
static double percentile_ranks(size_t n, double q, size_t r[2]) {
  double vi = (double)(n - 1) * (q / 100.0);
  if (vi >= (double)(n - 1)) {
    r[0] = r[1] = n - 1;
    return 0;
  }
  r[0] = (size_t)floor(vi);
  r[1] = r[0] + 1;
  return vi - (double)r[0];
}

/* The threshold from the two order statistics ab (NumPy 1.x arithmetic, see prune.h). */
static float percentile_value(mlsh_wdtype wd, const float ab[2], double gamma) {
  double a = ab[0], b = ab[1], diff = mlsh_wd_round(wd, ab[1] - ab[0]);
  double t = gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
  return mlsh_wd_round_d(wd, t);
}

int mlsh_prune_check(const mlsh_prune_opts *o, size_t n) {
  if (n == 0 || o->rank < 1 || o->rank > MLSH_CZ_MAX_RANK) return MLSH_CZ_EINVAL;
  if (o->wdtype != MLSH_WD_FP32 && o->wdtype != MLSH_WD_FP16) return MLSH_CZ_EINVAL;
  if (mlsh_shape_count(o->shape, o->rank) != n) return MLSH_CZ_EINVAL;
  switch (o->mode) {
    case MLSH_PRUNE_THRESHOLD: return isnan(o->threshold) ? MLSH_CZ_EINVAL : MLSH_CZ_OK;
    case MLSH_PRUNE_MAGNITUDE: return o->sparsity >= 0 && o->sparsity <= 1 ? MLSH_CZ_OK : MLSH_CZ_EINVAL;
    case MLSH_PRUNE_BLOCK:
      if (!(o->sparsity >= 0 && o->sparsity <= 1) || o->block_size < 2 || o->rank < 2 || (o->dim != 0 && o->dim != 1))
        return MLSH_CZ_EINVAL;
      return (double)o->block_size > (double)o->shape[o->dim] / 2 ? MLSH_CZ_ESKIP : MLSH_CZ_OK;
    case MLSH_PRUNE_NM:
      if (o->m < 1 || o->n > o->m || o->rank < 2 || (o->dim != 0 && o->dim != 1)) return MLSH_CZ_EINVAL;
      return (double)o->m > (double)o->shape[o->dim] / 2 ? MLSH_CZ_ESKIP : MLSH_CZ_OK;
  }
  return MLSH_CZ_EINVAL;
}

int mlsh_prune(const float *x, size_t n, const mlsh_prune_opts *o, float *out, uint8_t *mask, mlsh_prune_info *info) {
  int st = mlsh_prune_check(o, n);
  if (st) return st;
  pr_ctx c;
  memset(&c, 0, sizeof c);
  c.o = o;
  c.x = x;
  c.n = n;
  c.out = out;
  c.mask = mask;
  c.nt = mlsh_threads_clamp(o->threads);
  mlsh_cz_cpu_init(&c.cpu);
  size_t chunks = (n + CHUNK - 1) / CHUNK;
  c.bad = malloc(chunks);
  c.nnz = malloc(chunks * sizeof(size_t));
  float *blockscore = NULL;
  if (!c.bad || !c.nnz) {
    st = MLSH_CZ_ENOMEM;
    goto done;
  }
  mlsh_parallel_for(c.nt, chunks, prep_task, &c);
  for (size_t i = 0; i < chunks; i++)
    if (c.bad[i]) st = MLSH_CZ_ENONFINITE;
  if (st) goto done;
  mlsh_wdtype wd = o->wdtype;
  info->threshold = NAN;
  c.thr = -1; /* |w| <= -1 never holds: nothing pruned unless set below */

  if (o->mode == MLSH_PRUNE_NM) {
    mlsh_axis_view_make(o->shape, o->rank, o->dim, n, &c.v);
    c.tiles = (c.v.inner + CHUNK - 1) / CHUNK;
    if (o->m > 64 && !(c.scratch = malloc(sizeof(struct nm_item) * o->m * c.nt))) {
      st = MLSH_CZ_ENOMEM;
      goto done;
    }
    mlsh_parallel_for(c.nt, c.v.outer * c.tiles, nm_task, &c);
  } else if (o->mode == MLSH_PRUNE_THRESHOLD) {
    c.thr = mlsh_wd_round_d(wd, o->threshold);
    info->threshold = c.thr;
  } else {
    if (o->mode == MLSH_PRUNE_BLOCK) {
      if (!(blockscore = malloc(n * sizeof(float)))) {
        st = MLSH_CZ_ENOMEM;
        goto done;
      }
      c.score = blockscore;
      mlsh_axis_view_make(o->shape, o->rank, o->dim, n, &c.v);
      c.tiles = (c.v.inner + CHUNK - 1) / CHUNK;
      mlsh_parallel_for(c.nt, c.v.outer * c.tiles, block_task, &c);
    }
    double q = o->sparsity * 100.0;
    if (q == 100.0) {
      c.prune_all = 1;
      info->threshold = INFINITY;
    } else if (q != 0.0) {
      size_t r[2];
      double gamma = percentile_ranks(n, q, r);
      float ab[2];
      if ((st = select2(&c, r, ab))) goto done;
      c.thr = percentile_value(wd, ab, gamma);
      info->threshold = c.thr;
    }
  }
  mlsh_parallel_for(c.nt, chunks, apply_task, &c);
  info->nnz = 0;
  for (size_t i = 0; i < chunks; i++) info->nnz += c.nnz[i];

done:
  free(c.bad);
  free(c.nnz);
  free(c.h1);
  free(c.h2);
  free(c.scratch);
  free(blockscore);
  return st;
}

/* ---- mlsh_prune_pass: fp16 values read in place ---- */

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
            malloc(batches * sizeof(uint32_t)), kept, 0, 0, 0};
  c.count = o->mode == MLSH_PRUNE_MAGNITUDE && q != 0.0 && q != 100.0;
  int avx2;
  c.avx = mlsh_cpu_f16c(&avx2) != 0; /* F16C implies AVX */
#ifdef MLSH_PRUNE_X86
  __builtin_cpu_init();
  c.vbmi2 = c.avx && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vbmi2");
#endif
  if (c.count && !(c.hist = calloc((size_t)c.nt * MAGS, sizeof(uint32_t)))) st = MLSH_CZ_ENOMEM;
  if (!c.bad || !c.bcnt) st = MLSH_CZ_ENOMEM;
  if (st) goto done;
  mlsh_parallel_for(c.nt, chunks, mag_task, &c);
  for (size_t i = 0; i < chunks; i++)
    if (c.bad[i]) st = MLSH_CZ_ENONFINITE;
  if (c.count)
    for (unsigned w = 0; w < c.nt; w++)
      for (unsigned a = 0x7c00u; a < MAGS; a++)
        if (c.hist[(size_t)w * MAGS + a]) st = MLSH_CZ_ENONFINITE;
  if (st) goto done;
  info->threshold = NAN; /* c.thr -1: |w| <= -1 never holds, nothing pruned unless set below */
  if (o->mode == MLSH_PRUNE_THRESHOLD) {
    c.thr = mlsh_wd_round_d(MLSH_WD_FP16, o->threshold);
    info->threshold = c.thr;
  } else if (q == 100.0) {
    c.thr = INFINITY;
    info->threshold = INFINITY;
  } else if (c.count) {
    size_t r[2];
    double gamma = percentile_ranks(n, q, r);
    float ab[2] = {mag_at(&c, r[0]), mag_at(&c, r[1])};
    c.thr = percentile_value(MLSH_WD_FP16, ab, gamma);
    info->threshold = c.thr;
  }
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
  free(c.hist);
  free(c.bad);
  free(c.bcnt);
  return st;
}
