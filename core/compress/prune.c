/* prune.c — threshold / magnitude / block / n:m pruning (see prune.h).
 * The percentile needs two order statistics of the scores; they come from a two-level radix
 * select on the float bits of |score| (non-negative floats order like their bit patterns):
 * a parallel histogram of the top 16 bits, then one of the low 16 bits inside the chosen bins.
 * O(n), exact, and independent of the thread count because counts are integers. */
#include "compress/prune.h"
#include "compress/threads.h"
#include "compress/metrics.h"
#include "compress/percentile.h"
#include "dtype.h"
#include <stdlib.h>

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
      double gamma = mlsh_percentile_ranks(n, q, r);
      float ab[2];
      if ((st = select2(&c, r, ab))) goto done;
      c.thr = mlsh_percentile_value(wd, ab, gamma);
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
