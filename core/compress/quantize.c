/* quantize.c — blockwise linear quantization (see quantize.h).
 * Three passes: block min/max (per-worker partials, exact so order-free), block parameters,
 * then codes and dequantized values. Elements are walked as runs that share one block: along
 * the last axis a block changes every block[last] elements, so the inner loops stay simple. */
#include "compress/quantize.h"
#include "compress/threads.h"
#include "compress/metrics.h"
#include "dtype.h"
#include <stdlib.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MLSH_QUANT_X86 1
#endif

#define CHUNK ((size_t)1 << 18)

typedef struct {
  int rank;
  size_t dim[MLSH_CZ_MAX_RANK], blk[MLSH_CZ_MAX_RANK], sstride[MLSH_CZ_MAX_RANK];
} layout;

/* Walks [i, end) as runs of elements sharing a scale index. */
typedef struct {
  const layout *L;
  size_t idx[MLSH_CZ_MAX_RANK];
  size_t i, end, sidx, left; /* left = elements to the end of the current block on the last axis */
} walker;

static void walker_seek(walker *w) {
  const layout *L = w->L;
  size_t rem = w->i;
  w->sidx = 0;
  for (int a = L->rank - 1; a >= 0; a--) {
    w->idx[a] = rem % L->dim[a];
    rem /= L->dim[a];
  }
  for (int a = 0; a < L->rank; a++) w->sidx += (w->idx[a] / L->blk[a]) * L->sstride[a];
  size_t last = L->rank - 1;
  w->left = L->blk[last] - w->idx[last] % L->blk[last];
}

static void walker_init(walker *w, const layout *L, size_t i0, size_t i1) {
  w->L = L;
  w->i = i0;
  w->end = i1;
  if (i0 < i1) walker_seek(w);
}

/* Next run: [*start, *start + *len) all with scale index *sidx. 0 when done. */
static int walker_next(walker *w, size_t *start, size_t *len, size_t *sidx) {
  if (w->i >= w->end) return 0;
  size_t n = w->left < w->end - w->i ? w->left : w->end - w->i;
  *start = w->i;
  *len = n;
  *sidx = w->sidx;
  w->i += n;
  w->left -= n;
  if (w->i < w->end && w->left == 0) {
    const layout *L = w->L;
    size_t last = L->rank - 1;
    w->idx[last] += n;
    if (w->idx[last] >= L->dim[last]) walker_seek(w); /* new row: recompute from scratch */
    else {
      w->sidx += L->sstride[last];
      w->left = L->blk[last];
    }
  } /* else the range ended inside a block: nothing more to walk */
  return 1;
}

typedef struct {
  const mlsh_quant_opts *o;
  const mlsh_quant_info *info;
  layout L;
  const mlsh_cz_src *src;
  size_t n;
  float *mn, *mx; /* nthreads x nscale partials */
  uint8_t *bad;   /* per chunk: non-finite seen */
  uint8_t *raw;
  float *scale, *zpf, *zps, *recon; /* zpf: zero point as used in q (may be NaN); zps: stored */
  float *codes; /* optional: code values as floats */
  uint8_t *packed; /* mlsh_quantize_pass: codes packed nbits LSB-first */
  int f16c;        /* AVX + F16C usable */
  int avx512;      /* and AVX-512F */
  unsigned nt;     /* workers of the min/max pass (partials) */
  size_t lb;       /* mlsh_quantize_pass: > 0 when blocks are runs of lb elements set per task */
  int direct;      /* mlsh_quantize_pass without metrics: prep_span writes the codes (codes_direct) */
  mlsh_cz_cpu cpu;
} q_ctx;

/* Codes and reconstruction go in batches of BATCH consecutive elements, each with its own
 * block's scale sc and zero points zf (as used, may be NaN) and zs (as stored). */
#define BATCH 256

typedef struct {
  float sc[BATCH], zf[BATCH], zs[BATCH], t[BATCH];
} qbatch;

#include "compress/quantize_x86.h" /* the vector kernels */

/* Min/max of the raw values: rounding to the weight dtype is monotone, so the rounded block
 * min/max are the rounded raw ones (done once per block later); the min/max of a set do not
 * depend on the order it is read in (the sign of a zero min/max never reaches a parameter).
 * v - v is NaN iff v is NaN/inf. */
static void minmax_task(void *p, size_t t, unsigned wid) {
  q_ctx *c = p;
  size_t ns = c->info->nscale, i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  float *mn = c->mn + (size_t)wid * ns, *mx = c->mx + (size_t)wid * ns;
  float xb[256];
  walker w;
  walker_init(&w, &c->L, i0, i1);
  size_t s, len, si, b0 = i0, b1 = i0; /* xb holds elements [b0, b1) */
  unsigned bad = 0;
  while (walker_next(&w, &s, &len, &si)) {
    float lo = mn[si], hi = mx[si];
#ifdef MLSH_QUANT_X86
    if (c->src->f16 && c->f16c) {
      minmax_f16c(c->src->f16 + s, len, &lo, &hi, &bad);
      mn[si] = lo;
      mx[si] = hi;
      continue;
    }
#endif
    for (size_t i = s, e = s + len; i < e;) {
      if (i >= b1) {
        b0 = i;
        b1 = i1 - i < 256 ? i1 : i + 256;
        mlsh_cz_src_load(c->src, b0, b1 - b0, xb);
      }
      for (size_t stop = e < b1 ? e : b1; i < stop; i++) {
        float v = xb[i - b0], z = v - v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        bad |= z != z;
      }
    }
    mn[si] = lo;
    mx[si] = hi;
  }
  c->bad[t] = (uint8_t)bad;
}

/* One code from t = w / scale and the zero point as used (batches of BATCH, see above: small
 * blocks (per_block 32) then cost no more than large ones, and fp16 rounding is one batched
 * conversion per step). */
static inline float quant_code(float t, float zf, float qmin, float qmax) {
  float r = mlsh_rint_even(t) + zf;
  float q = r < qmin ? qmin : r > qmax ? qmax : r;
  return r == r ? q : 0.0f; /* numpy's NaN -> int cast gives 0 on x86 */
}


/* Elements [b, b + m) with their values in q->t: raw codes to raw[0..m), reconstruction to rec. */
static void quant_core(const q_ctx *c, qbatch *q, size_t b, size_t m, uint8_t *raw, float *rec) {
  mlsh_round_batch_fn round = c->o->wdtype == MLSH_WD_FP16 ? c->cpu.round16 : NULL;
  unsigned mask = (1u << c->o->nbits) - 1;
  float qmin = (float)c->info->qmin, qmax = (float)c->info->qmax, *t = q->t;
  if (round) round(t, m); /* the weight in its dtype */
  for (size_t k = 0; k < m; k++) t[k] /= q->sc[k];
  if (round) round(t, m); /* w / scale, computed in the weight dtype */
  for (size_t k = 0; k < m; k++) {
    float v = quant_code(t[k], q->zf[k], qmin, qmax);
    raw[k] = (uint8_t)((unsigned)(int)v & mask);
    if (c->codes) c->codes[b + k] = v;
    rec[k] = (v - q->zs[k]) * q->sc[k];
  }
  if (round) round(rec, m); /* dequantized value cast back to the weight dtype */
}




static void quant_batch(const q_ctx *c, qbatch *q, size_t b, size_t m) {
  mlsh_cz_src_load(c->src, b, m, q->t);
#ifdef MLSH_QUANT_X86
  if (c->f16c && c->o->wdtype == MLSH_WD_FP16 && !c->codes) {
    quant_core_f16c(c, q, q->t, m, c->raw + b, c->recon + b);
    return;
  }
#endif
  quant_core(c, q, b, m, c->raw + b, c->recon + b);
}

/* The block parameters of elements [i0, i0 + m) into q (m <= BATCH). */
static void fill_params(const q_ctx *c, qbatch *q, size_t i0, size_t m) {
  walker w;
  walker_init(&w, &c->L, i0, i0 + m);
  size_t s, len, si;
  while (walker_next(&w, &s, &len, &si)) {
    float sc = c->scale[si], zf = c->zpf ? c->zpf[si] : 0.0f, zs = c->zps ? c->zps[si] : 0.0f;
    for (size_t k = s - i0; k < s - i0 + len; k++) {
      q->sc[k] = sc;
      q->zf[k] = zf;
      q->zs[k] = zs;
    }
  }
}

/* mlsh_quantize_pass's batch: codes packed straight into place, reconstruction to y. */
static void pass_batch(void *p, size_t i, size_t m, const float *x, float *y) {
  const q_ctx *c = p;
  qbatch q;
  uint8_t rawbuf[BATCH], *raw = c->o->nbits == 8 ? c->packed + i : rawbuf; /* 8 bits: codes in place */
#ifdef MLSH_QUANT_X86
  if (c->f16c && c->o->wdtype == MLSH_WD_FP16) {
    walker w;
    walker_init(&w, &c->L, i, i + m);
    size_t s, len, si;
    while (walker_next(&w, &s, &len, &si))
      (c->avx512 ? quant_run_512 : quant_run_f16c)(c, x + (s - i), len, c->scale[si], c->zpf ? c->zpf[si] : 0.0f,
                                                   c->zps ? c->zps[si] : 0.0f, raw + (s - i), y + (s - i));
  } else
#endif
  {
    fill_params(c, &q, i, m);
    memcpy(q.t, x, m * sizeof(float));
    quant_core(c, &q, i, m, raw, y);
  }
  if (c->o->nbits != 8) { /* 4 bits: i is even (a multiple of BATCH) */
    uint8_t *o = c->packed + i / 2;
    for (size_t k = 0; k + 1 < m; k += 2) o[k / 2] = (uint8_t)(raw[k] | raw[k + 1] << 4);
    if (m & 1) o[m / 2] = raw[m - 1];
  }
}

static void quant_task(void *p, size_t t, unsigned wid) {
  (void)wid;
  q_ctx *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n, base = i0, fill = 0;
  qbatch q;
  walker w;
  walker_init(&w, &c->L, i0, i1);
  size_t s, len, si;
  while (walker_next(&w, &s, &len, &si)) {
    float sc = c->scale[si], zf = c->zpf ? c->zpf[si] : 0.0f, zs = c->zps ? c->zps[si] : 0.0f;
    while (len > 0) {
      size_t take = len < BATCH - fill ? len : BATCH - fill;
      for (size_t k = fill; k < fill + take; k++) {
        q.sc[k] = sc;
        q.zf[k] = zf;
        q.zs[k] = zs;
      }
      fill += take;
      len -= take;
      if (fill == BATCH) {
        quant_batch(c, &q, base, fill);
        base += fill;
        fill = 0;
      }
    }
  }
  if (fill) quant_batch(c, &q, base, fill);
}

int mlsh_quantize_check(const mlsh_quant_opts *o, size_t n, mlsh_quant_info *info) {
  if (n == 0 || (o->nbits != 4 && o->nbits != 8) || o->rank < 1 || o->rank > MLSH_CZ_MAX_RANK) return MLSH_CZ_EINVAL;
  if (o->wdtype != MLSH_WD_FP32 && o->wdtype != MLSH_WD_FP16) return MLSH_CZ_EINVAL;
  if (mlsh_shape_count(o->shape, o->rank) != n) return MLSH_CZ_EINVAL;
  size_t ns = 1;
  for (int a = 0; a < o->rank; a++) {
    int64_t d = o->shape[a], b = o->block[a];
    if (b < 0 || (b > 0 && d % b)) return MLSH_CZ_EINVAL;
    info->scale_shape[a] = b > 0 ? d / b : 1;
    ns *= (size_t)info->scale_shape[a];
  }
  info->nscale = ns;
  int full = 1 << o->nbits;
  if (o->is_signed) {
    info->qmin = -full / 2 + (o->symmetric ? 1 : 0);
    info->qmax = full / 2 - 1;
  } else {
    info->qmin = 0;
    info->qmax = full - 1 - (o->symmetric ? 1 : 0);
  }
  info->has_zero_point = !(o->symmetric && o->is_signed);
  return MLSH_CZ_OK;
}

#define PARAM_TASK ((size_t)1 << 14) /* blocks per task */

/* Block s's scale and zero points from its min/max (raw values; rounded here). */
static void block_params(const q_ctx *c, size_t s, float mn, float mx) {
  const mlsh_quant_opts *o = c->o;
  const mlsh_quant_info *info = c->info;
  mlsh_wdtype wd = o->wdtype;
  float qmin = (float)info->qmin, qmax = (float)info->qmax;
  mn = mlsh_wd_round(wd, mn);
  mx = mlsh_wd_round(wd, mx);
  float lo, hi;
  if (o->symmetric) {
    float a = fabsf(mn) > fabsf(mx) ? fabsf(mn) : fabsf(mx);
    lo = -a;
    hi = a;
  } else {
    lo = mn < 0 ? mn : 0.0f;
    hi = mx > 0 ? mx : 0.0f;
  }
  float range = mlsh_wd_round(wd, hi - lo);
  c->scale[s] = mlsh_wd_round(wd, range / (qmax - qmin));
  if (!info->has_zero_point) return;
  float z;
  if (o->symmetric) z = (float)(info->qmax / 2);
  else {
    float num = mlsh_wd_round(wd, mlsh_wd_round(wd, qmin * hi) - mlsh_wd_round(wd, qmax * lo));
    z = mlsh_rint_even(mlsh_wd_round(wd, num / range));
    if (!isnan(z)) z = z < qmin ? qmin : z > qmax ? qmax : z;
  }
  c->zpf[s] = z;
  c->zps[s] = isnan(z) ? 0.0f : z;
}

/* The parameters of blocks [t * PARAM_TASK, ...) from the workers' partial min/max. */
static void params_task(void *p, size_t t, unsigned wid) {
  (void)wid;
  const q_ctx *c = p;
  size_t ns = c->info->nscale, s0 = t * PARAM_TASK, s1 = s0 + PARAM_TASK < ns ? s0 + PARAM_TASK : ns;
  for (size_t s = s0; s < s1; s++) {
    float mn = c->mn[s], mx = c->mx[s];
    for (unsigned w = 1; w < c->nt; w++) {
      if (c->mn[w * ns + s] < mn) mn = c->mn[w * ns + s];
      if (c->mx[w * ns + s] > mx) mx = c->mx[w * ns + s];
    }
    block_params(c, s, mn, mx);
  }
}

/* Min/max of src's elements [s, s + len) into *lo, *hi; *bad |= a non-finite value seen. */
static void range_minmax(const q_ctx *c, const mlsh_cz_src *src, size_t s, size_t len, float *lo, float *hi,
                         unsigned *bad) {
#ifdef MLSH_QUANT_X86
  if (src->f16 && c->f16c) {
    (c->avx512 ? minmax_512 : minmax_f16c)(src->f16 + s, len, lo, hi, bad);
    return;
  }
#endif
  float xb[256], l = *lo, u = *hi;
  unsigned bd = 0;
  for (size_t i = s; i < s + len; i += 256) {
    size_t m = s + len - i < 256 ? s + len - i : 256;
    mlsh_cz_src_load(src, i, m, xb);
    for (size_t k = 0; k < m; k++) {
      float v = xb[k], z = v - v;
      l = v < l ? v : l;
      u = v > u ? v : u;
      bd |= z != z;
    }
  }
  *lo = l;
  *hi = u;
  *bad |= bd;
}

/* Scale blocks that are runs of consecutive elements: axes before some axis k unblocked (block
 * 1), axes after it whole. Their length, or 0 when the blocks are not runs. */
static size_t run_length(const mlsh_quant_opts *o, size_t n) {
  int k = -1;
  for (int a = o->rank - 1; a >= 0 && k < 0; a--)
    if (o->block[a] > 0 && o->block[a] != o->shape[a]) k = a;
  if (k < 0) return n; /* per tensor: one block */
  for (int a = 0; a < k; a++)
    if (o->block[a] != 1) return 0;
  size_t lb = (size_t)o->block[k];
  for (int a = k + 1; a < o->rank; a++) lb *= (size_t)o->shape[a];
  return lb;
}

/* Blocks that are runs no pass task span splits: their parameters can be made per span. */
static size_t span_runs(const mlsh_quant_opts *o, size_t n) {
  size_t lb = run_length(o, n);
  return lb > 0 && (n <= MLSH_MX_TASK_SPAN || MLSH_MX_TASK_SPAN % lb == 0) ? lb : 0;
}

int mlsh_quantize_spans(const mlsh_quant_opts *o, size_t n) {
  mlsh_quant_info info;
  return mlsh_quantize_check(o, n, &info) == MLSH_CZ_OK && span_runs(o, n) > 0;
}


/* The packed codes of block s (lb elements of fp16 bits at h) for a pass that makes no
 * reconstruction: quant_core's operations on each element without the reconstruction, so the
 * same codes (with 4 bits, lb is even and so is the block's first element). */
static void codes_direct(const q_ctx *c, const uint16_t *h, size_t s) {
  size_t lb = c->lb, e0 = s * lb, k = 0;
  float sc = c->scale[s], zf = c->zpf ? c->zpf[s] : 0.0f;
  float qmin = (float)c->info->qmin, qmax = (float)c->info->qmax;
  unsigned mask = (1u << c->o->nbits) - 1;
  int four = c->o->nbits == 4;
  uint8_t *out = four ? c->packed + e0 / 2 : c->packed + e0;
#ifdef MLSH_QUANT_X86
  if (c->avx512) k = codes_f16_512(c, h, lb, sc, zf, out);
#endif
  for (; k < lb; k++) {
    float t = mlsh_round_fp16(mlsh_fp16_to_f32(h[k]) / sc);
    unsigned q = (unsigned)(int)quant_code(t, zf, qmin, qmax) & mask;
    if (!four) out[k] = (uint8_t)q;
    else if (k & 1) out[k / 2] |= (uint8_t)(q << 4);
    else out[k / 2] = (uint8_t)q;
  }
}

/* mlsh_quantize_pass's preparation of a task's span [i0, i1) (whole blocks): each block's
 * min/max and parameters, read while the span is about to be quantized (in cache); with
 * c->direct, then the codes of those blocks (the pass runs no batches). */
static void prep_span(void *p, size_t i0, size_t i1, const mlsh_cz_src *span) {
  const q_ctx *c = p;
  size_t lb = c->lb;
  unsigned bad = 0;
  float mn[16], mx[16];
  for (size_t s0 = i0 / lb; s0 * lb < i1; s0 += 16) {
    size_t k = 0;
    for (size_t s = s0; k < 16 && s * lb < i1; s++, k++) {
      mn[k] = INFINITY, mx[k] = -INFINITY;
      range_minmax(c, span, s * lb - i0, lb, &mn[k], &mx[k], &bad);
    }
#ifdef MLSH_QUANT_X86
    if (k == 16 && c->avx512 && c->o->wdtype == MLSH_WD_FP16) block_params16(c, s0, mn, mx);
    else
#endif
      for (size_t j = 0; j < k; j++) block_params(c, s0 + j, mn[j], mx[j]);
    for (size_t j = 0; c->direct && j < k; j++) codes_direct(c, span->f16 + ((s0 + j) * lb - i0), s0 + j);
  }
  c->bad[i0 / MLSH_MX_TASK_SPAN] = (uint8_t)bad;
}

static int quant_params(q_ctx *cp, float *zero_point, unsigned *nthreads);

/* Check, then the layout; with `fuse` and blocks that are runs no task span splits (c->lb set),
 * only the zero-point buffers and the per-task flags (the pass's prep_span fills the parameters),
 * else the min/max pass and the block parameters. c->zpf and c->bad are allocated (free them). */
static int quant_setup(q_ctx *c, const mlsh_cz_src *src, size_t n, const mlsh_quant_opts *o, float *scale,
                       float *zero_point, mlsh_quant_info *info, unsigned *nthreads, int fuse) {
  int st = mlsh_quantize_check(o, n, info);
  if (st) return st;
  if (info->has_zero_point && !zero_point) return MLSH_CZ_EINVAL;
  q_ctx cz;
  memset(&cz, 0, sizeof cz);
  *c = cz;
  c->o = o;
  c->info = info;
  c->src = src;
  c->n = n;
  mlsh_cz_cpu_init(&c->cpu);
  int avx2;
  c->f16c = mlsh_cpu_f16c(&avx2);
#ifdef MLSH_QUANT_X86
  c->avx512 = c->f16c && __builtin_cpu_supports("avx512f");
#endif
  c->scale = scale;
  c->L.rank = o->rank;
  for (int a = 0; a < o->rank; a++) {
    c->L.dim[a] = (size_t)o->shape[a];
    c->L.blk[a] = o->block[a] > 0 ? (size_t)o->block[a] : (size_t)o->shape[a];
  }
  size_t stride = 1;
  for (int a = o->rank - 1; a >= 0; a--) {
    c->L.sstride[a] = stride;
    stride *= (size_t)info->scale_shape[a];
  }
  size_t lb = fuse ? span_runs(o, n) : 0;
  if (lb > 0) {
    c->lb = lb;
    c->zpf = info->has_zero_point ? malloc(sizeof(float) * info->nscale) : NULL;
    c->zps = info->has_zero_point ? zero_point : NULL;
    c->bad = calloc((n + MLSH_MX_TASK_SPAN - 1) / MLSH_MX_TASK_SPAN, 1);
    if (!c->bad || (info->has_zero_point && !c->zpf)) {
      free(c->zpf);
      free(c->bad);
      return MLSH_CZ_ENOMEM;
    }
    *nthreads = mlsh_threads_clamp(o->threads);
    return MLSH_CZ_OK;
  }
  return quant_params(c, zero_point, nthreads);
}

static int quant_params(q_ctx *cp, float *zero_point, unsigned *nthreads) {
  q_ctx c = *cp;
  const mlsh_quant_opts *o = c.o;
  mlsh_quant_info *info = (mlsh_quant_info *)c.info;
  size_t n = c.n;
  int st = MLSH_CZ_OK;
  unsigned nt = mlsh_threads_clamp(o->threads);
  size_t ns = info->nscale, chunks = (n + CHUNK - 1) / CHUNK;
  if (nt > chunks) nt = (unsigned)chunks;
  c.mn = malloc(sizeof(float) * ns * nt);
  c.mx = malloc(sizeof(float) * ns * nt);
  c.bad = malloc(chunks);
  c.zpf = info->has_zero_point ? malloc(sizeof(float) * ns) : NULL;
  if (!c.mn || !c.mx || !c.bad || (info->has_zero_point && !c.zpf)) {
    st = MLSH_CZ_ENOMEM;
    goto done;
  }
  c.zps = info->has_zero_point ? zero_point : NULL;
  for (size_t i = 0; i < ns * nt; i++) {
    c.mn[i] = INFINITY;
    c.mx[i] = -INFINITY;
  }
  mlsh_parallel_for(nt, chunks, minmax_task, &c);
  for (size_t i = 0; i < chunks; i++)
    if (c.bad[i]) st = MLSH_CZ_ENONFINITE;
  if (st) goto done;

  c.nt = nt;
  mlsh_parallel_for(nt, (ns + PARAM_TASK - 1) / PARAM_TASK, params_task, &c);
  *nthreads = nt;

done:
  free(c.mn);
  free(c.mx);
  free(c.bad);
  c.mn = c.mx = NULL;
  c.bad = NULL;
  if (st) {
    free(c.zpf);
    c.zpf = NULL;
  }
  *cp = c;
  return st;
}

int mlsh_quantize(const float *x, size_t n, const mlsh_quant_opts *o, uint8_t *raw, float *codes, float *scale,
                  float *zero_point, float *recon, mlsh_quant_info *info) {
  mlsh_cz_src src = {x, NULL};
  q_ctx c;
  unsigned nt;
  int st = quant_setup(&c, &src, n, o, scale, zero_point, info, &nt, 0);
  if (st) return st;
  c.raw = raw;
  c.codes = codes;
  c.recon = recon;
  mlsh_parallel_for(nt, (n + CHUNK - 1) / CHUNK, quant_task, &c);
  free(c.zpf);
  return MLSH_CZ_OK;
}

int mlsh_quantize_pass(const mlsh_cz_src *src, const mlsh_mx_reader *rd, size_t n, const mlsh_quant_opts *o,
                       uint8_t *packed, float *scale, float *zero_point, mlsh_quant_info *info, mlsh_metrics *m) {
  if (rd && !mlsh_quantize_spans(o, n)) return MLSH_CZ_EINVAL; /* the whole source is needed */
  q_ctx c;
  unsigned nt;
  int st = quant_setup(&c, src, n, o, scale, zero_point, info, &nt, 1);
  if (st) return st;
  c.packed = packed;
  /* no metrics wanted, fp16 source, blocks set per span: the codes straight from the span */
  c.direct = c.lb && !m && o->wdtype == MLSH_WD_FP16 && (rd || src->f16) && (o->nbits == 8 || c.lb % 2 == 0);
  if (c.lb) { /* parameters per task span, then the span's batches */
    st = mlsh_metrics_pass_prep(src, rd, n, o->threads, prep_span, c.direct ? NULL : pass_batch, &c, m);
    for (size_t t = 0; !st && t < (n + MLSH_MX_TASK_SPAN - 1) / MLSH_MX_TASK_SPAN; t++)
      if (c.bad[t]) st = MLSH_CZ_ENONFINITE;
  } else st = mlsh_metrics_pass(src, n, o->threads, pass_batch, &c, m);
  free(c.bad);
  free(c.zpf);
  return st;
}
