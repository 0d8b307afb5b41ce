/* palettize.c — LUT palettization per tensor or per channel group (see palettize.h).
 * Flow: (1) round to the weight dtype (and divide by the per-channel scale) into `recon`, used
 * as the working copy; (2) per group: distinct values -> LUT and a code per distinct value ->
 * code and reconstruction per element (codes are monotone in the value for every mode, so an
 * element finds its code through an fp16-key table or a search over <= 256 value segments);
 * (3) unique mode: pick nbits and close up the LUT rows. One group runs its histogram and
 * assignment across threads; many groups run one group per thread. */
#include "compress/palettize.h"
#include "compress/distinct.h"
#include "compress/kmeans1d.h"
#include "compress/threads.h"
#include "compress/metrics.h"
#include "dtype.h"
#include <stdlib.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MLSH_PAL_X86 1
#endif

#define CHUNK ((size_t)1 << 18) /* elements per task in the element-wise passes */

static const unsigned allowed_nbits[] = {1, 2, 3, 4, 6, 8};

typedef struct {
  mlsh_distinct d;
  mlsh_km1d *km;
  uint8_t *code_of; /* code of each distinct value */
  size_t code_cap;
  uint8_t *table; /* fp16 key -> code */
  uint32_t *hist; /* per-worker histogram for the parallel single-group pass */
  unsigned kmin, kmax;
  float seg_hi[256]; /* sort path: largest value of each code segment */
  uint8_t seg_code[256];
  unsigned nseg;
} worker_ws;

/* Free each worker's workspace and the array (ws may be NULL). */
static void free_workspaces(worker_ws *ws, unsigned nthreads) {
  if (ws)
    for (unsigned i = 0; i < nthreads; i++) {
      mlsh_distinct_free(&ws[i].d);
      mlsh_km1d_free(ws[i].km);
      free(ws[i].code_of);
      free(ws[i].table);
      free(ws[i].hist);
    }
  free(ws);
}

typedef struct {
  const mlsh_pal_opts *o;
  const float *x;
  size_t n;
  mlsh_axis_view v;
  size_t G, groups;
  float *work; /* == recon */
  float *lut;  /* stride 256 while working */
  uint8_t *codes;
  float *scale; /* per-channel scale or NULL */
  int hist_path;
  worker_ws *ws;
  unsigned nthreads;
  int *status;  /* per group */
  size_t *used; /* distinct values per group (unique) */
  int *exact;   /* per group */
  uint8_t *flags; /* per chunk in pass 1: bit0 non-finite, bit1 not fp16-exact */
  mlsh_cz_cpu cpu;
} pal_ctx;

static int nbits_ok(unsigned b) {
  for (size_t i = 0; i < sizeof allowed_nbits / sizeof *allowed_nbits; i++)
    if (allowed_nbits[i] == b) return 1;
  return 0;
}

int mlsh_palettize_check(const mlsh_pal_opts *o, size_t n, size_t *groups, size_t *pcs_count) {
  if (n == 0 || o->mode < MLSH_PAL_KMEANS || o->mode > MLSH_PAL_UNIQUE) return MLSH_CZ_EINVAL;
  if (o->mode == MLSH_PAL_UNIQUE ? o->nbits != 0 : !nbits_ok(o->nbits)) return MLSH_CZ_EINVAL;
  if (o->wdtype != MLSH_WD_FP32 && o->wdtype != MLSH_WD_FP16) return MLSH_CZ_EINVAL;
  mlsh_axis_view v;
  if (mlsh_axis_view_make(o->shape, o->rank, o->axis, n, &v)) return MLSH_CZ_EINVAL;
  size_t G = o->group_size ? o->group_size : v.channels;
  if (G == 0 || v.channels % G) return MLSH_CZ_EINVAL;
  *groups = v.channels / G;
  if (pcs_count) *pcs_count = v.outer * v.inner;
  return MLSH_CZ_OK;
}

/* ---- pass 1: working copy, finiteness, fp16 exactness, per-channel scale ---- */

/* Task = one (outer, inner-chunk) tile: max |w| over the channel axis. */
static void pcs_max_task(void *p, size_t t, unsigned w) {
  (void)w;
  pal_ctx *c = p;
  size_t tiles = (c->v.inner + CHUNK - 1) / CHUNK, o = t / tiles, i0 = (t % tiles) * CHUNK;
  size_t i1 = i0 + CHUNK < c->v.inner ? i0 + CHUNK : c->v.inner;
  float *s = c->scale + o * c->v.inner;
  for (size_t i = i0; i < i1; i++) s[i] = 0;
  for (size_t ch = 0; ch < c->v.channels; ch++) {
    const float *row = c->x + (o * c->v.channels + ch) * c->v.inner;
    for (size_t i = i0; i < i1; i++) {
      float a = fabsf(mlsh_wd_round(c->o->wdtype, row[i]));
      if (a > s[i]) s[i] = a;
    }
  }
  for (size_t i = i0; i < i1; i++)
    if (s[i] == 0) s[i] = 1; /* per_channel_scale[per_channel_scale == 0] = 1 */
}

#define BATCH 256

static inline size_t pcs_index(const pal_ctx *c, size_t i) {
  size_t ci = c->v.channels * c->v.inner;
  return (i / ci) * c->v.inner + i % c->v.inner;
}

/* Working copy: rounded to the weight dtype, divided by the per-channel scale; flags non-finite
 * input (v*0 is NaN only for NaN/inf) and values that are not fp16 (only possible for fp32). */
static void prep_task(void *p, size_t t, unsigned w) {
  (void)w;
  pal_ctx *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  mlsh_round_batch_fn r16 = c->cpu.round16;
  int fp16 = c->o->wdtype == MLSH_WD_FP16, inexact = 0;
  float v[BATCH], u[BATCH], chk = 0;
  for (size_t b = i0; b < i1; b += BATCH) {
    size_t m = i1 - b < BATCH ? i1 - b : BATCH;
    memcpy(v, c->x + b, m * sizeof(float));
    for (size_t k = 0; k < m; k++) chk += v[k] * 0.0f;
    if (fp16) r16(v, m);
    if (c->scale) {
      for (size_t k = 0; k < m; k++) v[k] /= c->scale[pcs_index(c, b + k)];
      if (fp16) r16(v, m);
    }
    if (!fp16 && !inexact) { /* fp32 data may still be all fp16 values: then the histogram path applies */
      memcpy(u, v, m * sizeof(float));
      r16(u, m);
      for (size_t k = 0; k < m; k++) inexact |= u[k] != v[k];
    }
    memcpy(c->work + b, v, m * sizeof(float));
  }
  c->flags[t] = (uint8_t)((isnan(chk) ? 1 : 0) | (inexact ? 2 : 0));
}

/* ---- per group: LUT and code per distinct value ---- */

static mlsh_runs group_runs(const pal_ctx *c, size_t g) {
  mlsh_runs r;
  r.offset = g * c->G * c->v.inner;
  r.nruns = c->v.outer;
  r.runlen = c->G * c->v.inner;
  r.stride = c->v.channels * c->v.inner;
  return r;
}

static int grow_codes(worker_ws *w, size_t n) {
  if (n <= w->code_cap) return MLSH_CZ_OK;
  uint8_t *p = realloc(w->code_of, n);
  if (!p) return MLSH_CZ_ENOMEM;
  w->code_of = p;
  w->code_cap = n;
  return MLSH_CZ_OK;
}

/* Fill lut (256 slots) and w->code_of for the distinct set in w->d. */
static int build_lut(pal_ctx *c, worker_ws *w, size_t g, float *lut) {
  const mlsh_distinct *d = &w->d;
  mlsh_wdtype wd = c->o->wdtype;
  int st = grow_codes(w, d->n);
  if (st) return st;
  for (unsigned k = 0; k < 256; k++) lut[k] = 0;
  c->exact[g] = 1;
  if (c->o->mode == MLSH_PAL_UNIQUE) {
    if (d->n > 256) return MLSH_CZ_EUNIQUE;
    for (size_t i = 0; i < d->n; i++) {
      lut[i] = d->val[i];
      w->code_of[i] = (uint8_t)i;
    }
    c->used[g] = d->n;
    return MLSH_CZ_OK;
  }
  unsigned K = (1u << c->o->nbits) - 1;
  if (c->o->mode == MLSH_PAL_UNIFORM) {
    float mn = d->val[0], mx = d->val[d->n - 1];
    float range = mlsh_wd_round(wd, mx - mn);
    for (size_t i = 0; i < d->n; i++) {
      float t = mlsh_wd_round(wd, d->val[i] - mn);
      t = mlsh_wd_round(wd, t / range);
      t = mlsh_wd_round(wd, t * (float)K);
      t = mlsh_rint_even(t);
      /* 0/0 when max == min: numpy's NaN -> uint8 cast gives 0 on x86 */
      w->code_of[i] = isnan(t) ? 0 : (uint8_t)(t < 0 ? 0 : t > (float)K ? K : (unsigned)t);
    }
    float scale = mlsh_wd_round(wd, range / (float)K);
    for (unsigned k = 0; k <= K; k++) lut[k] = mlsh_wd_round_d(wd, (double)k * (double)scale + (double)mn);
    return MLSH_CZ_OK;
  }
  if (!w->km && !(w->km = mlsh_km1d_new())) return MLSH_CZ_ENOMEM;
  size_t end[256];
  double cen[256], sse;
  int m = mlsh_km1d_cluster(w->km, d->val, d->cnt, d->n, K + 1, end, cen, &sse, &c->exact[g]);
  if (m < 0) return m;
  size_t s = 0;
  for (int k = 0; k < m; k++) {
    lut[k] = mlsh_wd_round_d(wd, cen[k]);
    if (lut[k] == 0.0f) lut[k] = 0.0f; /* a zero centroid is +0.0, as coremltools writes it */
    for (size_t i = s; i < end[k]; i++) w->code_of[i] = (uint8_t)k;
    s = end[k];
  }
  for (unsigned k = (unsigned)m; k <= K; k++) lut[k] = 0.0f; /* unused entries: +0.0, as coremltools */
  return MLSH_CZ_OK;
}

/* Prepare the element -> code lookup for the worker's distinct set. */
static void build_lookup(pal_ctx *c, worker_ws *w) {
  const mlsh_distinct *d = &w->d;
  if (c->hist_path) {
    for (size_t i = 0; i < d->n; i++) w->table[d->key[i]] = w->code_of[i];
    return;
  }
  unsigned ns = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (ns && w->seg_code[ns - 1] == w->code_of[i]) w->seg_hi[ns - 1] = d->val[i];
    else {
      w->seg_code[ns] = w->code_of[i];
      w->seg_hi[ns] = d->val[i];
      ns++;
    }
  }
  w->nseg = ns;
}

static inline uint8_t seg_lookup(const worker_ws *w, float v) {
  unsigned lo = 0, hi = w->nseg - 1; /* first segment whose top >= v */
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if (w->seg_hi[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return w->seg_code[lo];
}

/* Codes and reconstruction for the contiguous elements [i0, i1). */
static void assign_range(pal_ctx *c, const worker_ws *w, const float *lut, size_t i0, size_t i1) {
  mlsh_fp16_bits_fn bits = c->cpu.bits16;
  mlsh_round_batch_fn r16 = c->cpu.round16;
  uint16_t h[BATCH];
  float v[BATCH];
  for (size_t b = i0; b < i1; b += BATCH) {
    size_t m = i1 - b < BATCH ? i1 - b : BATCH;
    uint8_t *codes = c->codes + b;
    if (c->hist_path) {
      bits(c->work + b, h, m);
      for (size_t k = 0; k < m; k++) codes[k] = w->table[mlsh_fp16_key(h[k])];
    } else {
      for (size_t k = 0; k < m; k++) codes[k] = seg_lookup(w, c->work[b + k]);
    }
    for (size_t k = 0; k < m; k++) v[k] = lut[codes[k]];
    if (c->scale) {
      for (size_t k = 0; k < m; k++) v[k] *= c->scale[pcs_index(c, b + k)];
      if (c->o->wdtype == MLSH_WD_FP16) r16(v, m);
    }
    memcpy(c->work + b, v, m * sizeof(float)); /* work is recon: this batch was read above */
  }
}

static void group_task(void *p, size_t g, unsigned wid) {
  pal_ctx *c = p;
  worker_ws *w = &c->ws[wid];
  mlsh_runs r = group_runs(c, g);
  int st = c->hist_path ? mlsh_distinct_fp16(&w->d, c->work, &r) : mlsh_distinct_sort(&w->d, c->work, &r);
  float *lut = c->lut + g * 256;
  if (!st) st = build_lut(c, w, g, lut);
  if (!st) {
    build_lookup(c, w);
    for (size_t t = 0; t < r.nruns; t++) {
      size_t o = r.offset + t * r.stride;
      assign_range(c, w, lut, o, o + r.runlen);
    }
  }
  c->status[g] = st;
}

/* Single group across threads: per-worker histograms, then per-chunk assignment. */
static void hist_task(void *p, size_t t, unsigned wid) {
  pal_ctx *c = p;
  worker_ws *w = &c->ws[wid];
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  mlsh_hist16_add(c->cpu.bits16, w->hist, c->work + i0, i1 - i0, &w->kmin, &w->kmax);
}

static void assign_task(void *p, size_t t, unsigned wid) {
  (void)wid;
  pal_ctx *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  assign_range(c, &c->ws[0], c->lut, i0, i1);
}

static int single_group(pal_ctx *c) {
  worker_ws *w0 = &c->ws[0];
  size_t tasks = (c->n + CHUNK - 1) / CHUNK;
  int st = MLSH_CZ_OK;
  if (c->hist_path) {
    for (unsigned i = 0; i < c->nthreads; i++) {
      worker_ws *w = &c->ws[i];
      if (!(w->hist = calloc(MLSH_FP16_KEYS, sizeof(uint32_t)))) return MLSH_CZ_ENOMEM;
      w->kmin = MLSH_FP16_KEYS;
      w->kmax = 0;
    }
    mlsh_parallel_for(c->nthreads, tasks, hist_task, c);
    unsigned kmin = MLSH_FP16_KEYS, kmax = 0;
    for (unsigned i = 0; i < c->nthreads; i++) {
      worker_ws *w = &c->ws[i];
      if (w->kmin < kmin) kmin = w->kmin;
      if (w->kmax > kmax) kmax = w->kmax;
      if (i == 0 || w->kmin > w->kmax) continue;
      for (unsigned k = w->kmin; k <= w->kmax; k++) w0->hist[k] += w->hist[k];
    }
    st = mlsh_distinct_from_hist(&w0->d, w0->hist, kmin, kmax);
  } else {
    mlsh_runs r = group_runs(c, 0);
    st = mlsh_distinct_sort(&w0->d, c->work, &r);
  }
  if (!st) st = build_lut(c, w0, 0, c->lut);
  if (st) return st;
  build_lookup(c, w0);
  mlsh_parallel_for(c->nthreads, tasks, assign_task, c);
  return MLSH_CZ_OK;
}

int mlsh_palettize(const float *x, size_t n, const mlsh_pal_opts *o, float *lut, uint8_t *codes,
                   float *recon, float *scale, mlsh_pal_info *info) {
  size_t groups, pcs;
  int st = mlsh_palettize_check(o, n, &groups, &pcs);
  if (st) return st;
  pal_ctx c;
  memset(&c, 0, sizeof c);
  c.o = o;
  c.x = x;
  c.n = n;
  mlsh_axis_view_make(o->shape, o->rank, o->axis, n, &c.v);
  c.G = o->group_size ? o->group_size : c.v.channels;
  c.groups = groups;
  c.work = recon;
  c.lut = lut;
  c.codes = codes;
  c.scale = o->per_channel_scale ? scale : NULL;
  if (o->per_channel_scale && !scale) return MLSH_CZ_EINVAL;
  c.nthreads = mlsh_threads_clamp(o->threads);
  mlsh_cz_cpu_init(&c.cpu);

  size_t chunks = (n + CHUNK - 1) / CHUNK;
  c.flags = malloc(chunks);
  c.status = calloc(groups, sizeof(int));
  c.used = calloc(groups, sizeof(size_t));
  c.exact = calloc(groups, sizeof(int));
  c.ws = calloc(c.nthreads, sizeof(worker_ws));
  if (!c.flags || !c.status || !c.used || !c.exact || !c.ws) {
    st = MLSH_CZ_ENOMEM;
    goto done;
  }
  for (unsigned i = 0; i < c.nthreads; i++) mlsh_distinct_init(&c.ws[i].d);

  if (c.scale) {
    for (size_t i = 0; i < chunks && !st; i++) /* non-finite check first: scale uses |w| */
      for (size_t j = i * CHUNK; j < n && j < (i + 1) * CHUNK; j++)
        if (!isfinite(x[j])) st = MLSH_CZ_ENONFINITE;
    if (st) goto done;
    size_t tiles = (c.v.inner + CHUNK - 1) / CHUNK;
    mlsh_parallel_for(c.nthreads, c.v.outer * tiles, pcs_max_task, &c);
  }
  mlsh_parallel_for(c.nthreads, chunks, prep_task, &c);
  int exact16 = 1;
  for (size_t i = 0; i < chunks; i++) {
    if (c.flags[i] & 1) st = MLSH_CZ_ENONFINITE;
    if (c.flags[i] & 2) exact16 = 0;
  }
  if (st) goto done;
  c.hist_path = exact16 && !o->force_sort && n / groups < UINT32_MAX;
  if (c.hist_path) {
    unsigned nt = groups == 1 ? 1 : c.nthreads;
    for (unsigned i = 0; i < nt; i++)
      if (!(c.ws[i].table = malloc(MLSH_FP16_KEYS))) {
        st = MLSH_CZ_ENOMEM;
        goto done;
      }
  }

  if (groups == 1) st = single_group(&c);
  else {
    mlsh_parallel_for(c.nthreads, groups, group_task, &c);
    for (size_t g = 0; g < groups && !st; g++) st = c.status[g];
  }
  if (st) goto done;

  unsigned nbits = o->nbits;
  if (o->mode == MLSH_PAL_UNIQUE) {
    size_t most = 0;
    for (size_t g = 0; g < groups; g++)
      if (c.used[g] > most) most = c.used[g];
    nbits = 8;
    for (size_t i = 0; i < sizeof allowed_nbits / sizeof *allowed_nbits; i++)
      if (most <= ((size_t)1 << allowed_nbits[i])) {
        nbits = allowed_nbits[i];
        break;
      }
  }
  size_t len = (size_t)1 << nbits; /* close up rows: stride 256 -> 2^nbits (forward copy is safe) */
  if (len < 256)
    for (size_t g = 1; g < groups; g++) memmove(lut + g * len, lut + g * 256, len * sizeof(float));
  info->nbits = nbits;
  info->groups = groups;
  info->exact = 1;
  for (size_t g = 0; g < groups; g++)
    if (!c.exact[g]) info->exact = 0;

done:
  free_workspaces(c.ws, c.nthreads);
  free(c.flags);
  free(c.status);
  free(c.used);
  free(c.exact);
  return st;
}

/* ---- mlsh_palettize_pass: one group of fp16 values read in place ---- */

typedef struct {
  pal_ctx *c;
  const uint16_t *h;
  uint8_t *packed;
  unsigned nbits;
  uint8_t *by_code; /* fp16 code -> LUT index (the key table read through the code); 3 bytes padding */
  int avx512;       /* AVX-512F/BW/VL usable */
} pass16;

/* Histogram of fp16 keys (the per-tensor single_group's, without the float copy); the key
 * range and inf/NaN codes are read off the histogram afterwards. */
static void hist16_task(void *p, size_t t, unsigned wid) {
  pass16 *q = p;
  uint32_t *hist = q->c->ws[wid].hist; /* by code here; turned into keys after the merge */
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < q->c->n ? i0 + CHUNK : q->c->n;
  for (size_t i = i0; i < i1; i++) hist[q->h[i]]++;
}

#ifdef MLSH_PAL_X86
/* 16 at a time: the codes gathered from the byte table (read as 32-bit words: it has 3 bytes of
 * padding), the reconstruction permuted out of the <= 16-entry LUT. Returns how many were done. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static size_t lookup16_avx512(const uint8_t *table,
                                                                                 const float *lut, const uint16_t *h,
                                                                                 size_t m, uint8_t *codes, float *y) {
  const __m512 vlut = _mm512_loadu_ps(lut);
  const __m512i low = _mm512_set1_epi32(0xff);
  size_t k = 0;
  for (; k + 16 <= m; k += 16) {
    __m512i idx = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(h + k)));
    __m512i c = _mm512_and_si512(_mm512_i32gather_epi32(idx, (const void *)table, 1), low);
    _mm512_storeu_ps(y + k, _mm512_permutexvar_ps(c, vlut));
    _mm_storeu_si128((__m128i *)(void *)(codes + k), _mm512_cvtepi32_epi8(c));
  }
  return k;
}
#endif

static void pal_pass_batch(void *p, size_t i, size_t m, const float *x, float *y) {
  (void)x;
  const pass16 *q = p;
  const uint8_t *table = q->by_code;
  const float *lut = q->c->lut;
  const uint16_t *h = q->h + i;
  uint8_t codes[MLSH_MX_BATCH], *out = q->packed + i / 8 * q->nbits; /* i is a multiple of 8 */
  size_t k = 0;
#ifdef MLSH_PAL_X86
  if (q->avx512 && q->nbits <= 4) k = lookup16_avx512(table, lut, h, m, codes, y);
#endif
  for (; k < m; k++) {
    codes[k] = table[h[k]];
    y[k] = lut[codes[k]];
  }
  if (q->nbits == 8) memcpy(out, codes, m);
  else if (q->nbits == 4) {
    for (size_t k = 0; k + 1 < m; k += 2) out[k / 2] = (uint8_t)(codes[k] | codes[k + 1] << 4);
    if (m & 1) out[m / 2] = codes[m - 1];
  } else mlsh_bitpack(codes, m, q->nbits, out);
}

int mlsh_palettize_pass(const uint16_t *h, size_t n, const mlsh_pal_opts *o, float *lut, uint8_t *packed,
                        mlsh_pal_info *info, mlsh_metrics *m) {
  size_t groups, pcs;
  int st = mlsh_palettize_check(o, n, &groups, &pcs);
  if (st) return st;
  if (groups != 1 || o->per_channel_scale || o->wdtype != MLSH_WD_FP16 || o->force_sort || n >= UINT32_MAX)
    return MLSH_CZ_EINVAL;
  pal_ctx c;
  memset(&c, 0, sizeof c);
  c.o = o;
  c.n = n;
  c.groups = 1;
  c.lut = lut;
  c.hist_path = 1;
  c.nthreads = mlsh_threads_clamp(o->threads);
  mlsh_cz_cpu_init(&c.cpu);
  int exact = 1;
  size_t used = 0, chunks = (n + CHUNK - 1) / CHUNK;
  c.exact = &exact;
  c.used = &used;
  pass16 q = {&c, h, packed, 0, NULL, 0};
#ifdef MLSH_PAL_X86
  int avx2;
  __builtin_cpu_init();
  q.avx512 = mlsh_cpu_f16c(&avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
#endif
  c.ws = calloc(c.nthreads, sizeof(worker_ws));
  if (!c.ws) {
    st = MLSH_CZ_ENOMEM;
    goto done;
  }
  for (unsigned i = 0; i < c.nthreads; i++) {
    worker_ws *w = &c.ws[i];
    mlsh_distinct_init(&w->d);
    if (!(w->hist = calloc(MLSH_FP16_KEYS, sizeof(uint32_t)))) {
      st = MLSH_CZ_ENOMEM;
      goto done;
    }
  }
  mlsh_parallel_for(c.nthreads, chunks, hist16_task, &q);
  worker_ws *w0 = &c.ws[0];
  uint32_t *keyed = calloc(MLSH_FP16_KEYS, sizeof(uint32_t));
  if (!keyed) {
    st = MLSH_CZ_ENOMEM;
    goto done;
  }
  for (unsigned h16 = 0; h16 < MLSH_FP16_KEYS; h16++) {
    uint32_t cnt = 0;
    for (unsigned i = 0; i < c.nthreads; i++) cnt += c.ws[i].hist[h16];
    keyed[mlsh_fp16_key((uint16_t)h16)] += cnt; /* -0 and +0 share a key */
  }
  free(w0->hist);
  w0->hist = keyed;
  /* inf/NaN codes have the lowest (negative) and highest (positive) keys */
  unsigned kmin = 0, kmax = MLSH_FP16_KEYS - 1;
  for (unsigned k = 0; k < 0x400u; k++)
    if (w0->hist[k] || w0->hist[0xfc00u + k]) st = MLSH_CZ_ENONFINITE;
  if (st) goto done;
  while (kmin < MLSH_FP16_KEYS && !w0->hist[kmin]) kmin++;
  while (kmax > 0 && !w0->hist[kmax]) kmax--;
  if ((st = mlsh_distinct_from_hist(&w0->d, w0->hist, kmin, kmax))) goto done;
  if ((st = build_lut(&c, w0, 0, lut))) goto done;
  if (!(w0->table = calloc(MLSH_FP16_KEYS, 1))) { /* keys not in the data stay 0, never read */
    st = MLSH_CZ_ENOMEM;
    goto done;
  }
  build_lookup(&c, w0);
  if (!(q.by_code = calloc(MLSH_FP16_KEYS + 4, 1))) {
    st = MLSH_CZ_ENOMEM;
    goto done;
  }
  for (unsigned h16 = 0; h16 < MLSH_FP16_KEYS; h16++) q.by_code[h16] = w0->table[mlsh_fp16_key((uint16_t)h16)];
  unsigned nbits = o->nbits;
  if (o->mode == MLSH_PAL_UNIQUE) {
    nbits = 8;
    for (size_t i = 0; i < sizeof allowed_nbits / sizeof *allowed_nbits; i++)
      if (used <= ((size_t)1 << allowed_nbits[i])) {
        nbits = allowed_nbits[i];
        break;
      }
  }
  q.nbits = nbits;
  mlsh_cz_src src = {NULL, h};
  if ((st = mlsh_metrics_pass(&src, n, o->threads, pal_pass_batch, &q, m))) goto done;
  info->nbits = nbits;
  info->groups = 1;
  info->exact = exact;

done:
  free_workspaces(c.ws, c.nthreads);
  free(q.by_code);
  return st;
}
