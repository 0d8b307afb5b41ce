/* quantize.c — blockwise linear quantization (see quantize.h).
 * Three passes: block min/max (per-worker partials, exact so order-free), block parameters,
 * then codes and dequantized values. Elements are walked as runs that share one block: along
 * the last axis a block changes every block[last] elements, so the inner loops stay simple. */
#include "compress/quantize.h"
#include "compress/threads.h"
#include <stdlib.h>

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
  const float *x;
  size_t n;
  float *mn, *mx; /* nthreads x nscale partials */
  uint8_t *bad;   /* per chunk: non-finite seen */
  uint8_t *raw;
  float *scale, *zpf, *zps, *recon; /* zpf: zero point as used in q (may be NaN); zps: stored */
  float *codes; /* optional: code values as floats */
  mlsh_cz_cpu cpu;
} q_ctx;

/* Min/max of the raw values: rounding to the weight dtype is monotone, so the rounded block
 * min/max are the rounded raw ones (done once per block later). v*0 is NaN iff v is NaN/inf. */
static void minmax_task(void *p, size_t t, unsigned wid) {
  q_ctx *c = p;
  size_t ns = c->info->nscale, i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  float *mn = c->mn + (size_t)wid * ns, *mx = c->mx + (size_t)wid * ns;
  const float *x = c->x;
  walker w;
  walker_init(&w, &c->L, i0, i1);
  size_t s, len, si;
  float chk = 0;
  while (walker_next(&w, &s, &len, &si)) {
    float lo = mn[si], hi = mx[si];
    for (size_t i = s; i < s + len; i++) {
      float v = x[i];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
      chk += v * 0.0f;
    }
    mn[si] = lo;
    mx[si] = hi;
  }
  c->bad[t] = isnan(chk);
}

/* Codes and reconstruction in batches of BATCH consecutive elements, each with its own block's
 * scale sc and zero points zf (as used, may be NaN) and zs (as stored): small blocks (per_block
 * 32) then cost no more than large ones, and fp16 rounding is one batched conversion per step. */
#define BATCH 256

static inline float quant_code(float t, float zf, float qmin, float qmax) {
  float r = mlsh_rint_even(t) + zf;
  float q = r < qmin ? qmin : r > qmax ? qmax : r;
  return r == r ? q : 0.0f; /* numpy's NaN -> int cast gives 0 on x86 */
}

typedef struct {
  float sc[BATCH], zf[BATCH], zs[BATCH], t[BATCH];
} qbatch;

static void quant_batch(const q_ctx *c, qbatch *q, size_t b, size_t m) {
  mlsh_round_batch_fn round = c->o->wdtype == MLSH_WD_FP16 ? c->cpu.round16 : NULL;
  unsigned mask = (1u << c->o->nbits) - 1;
  float qmin = (float)c->info->qmin, qmax = (float)c->info->qmax, *t = q->t, *rec = c->recon + b;
  memcpy(t, c->x + b, m * sizeof(float));
  if (round) round(t, m); /* the weight in its dtype */
  for (size_t k = 0; k < m; k++) t[k] /= q->sc[k];
  if (round) round(t, m); /* w / scale, computed in the weight dtype */
  for (size_t k = 0; k < m; k++) {
    float v = quant_code(t[k], q->zf[k], qmin, qmax);
    c->raw[b + k] = (uint8_t)((unsigned)(int)v & mask);
    if (c->codes) c->codes[b + k] = v;
    rec[k] = (v - q->zs[k]) * q->sc[k];
  }
  if (round) round(rec, m); /* dequantized value cast back to the weight dtype */
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

int mlsh_quantize(const float *x, size_t n, const mlsh_quant_opts *o, uint8_t *raw, float *codes, float *scale,
                  float *zero_point, float *recon, mlsh_quant_info *info) {
  int st = mlsh_quantize_check(o, n, info);
  if (st) return st;
  if (info->has_zero_point && !zero_point) return MLSH_CZ_EINVAL;
  q_ctx c;
  memset(&c, 0, sizeof c);
  c.o = o;
  c.info = info;
  c.x = x;
  c.n = n;
  c.raw = raw;
  c.codes = codes;
  mlsh_cz_cpu_init(&c.cpu);
  c.scale = scale;
  c.recon = recon;
  c.L.rank = o->rank;
  for (int a = 0; a < o->rank; a++) {
    c.L.dim[a] = (size_t)o->shape[a];
    c.L.blk[a] = o->block[a] > 0 ? (size_t)o->block[a] : (size_t)o->shape[a];
  }
  size_t stride = 1;
  for (int a = o->rank - 1; a >= 0; a--) {
    c.L.sstride[a] = stride;
    stride *= (size_t)info->scale_shape[a];
  }
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

  mlsh_wdtype wd = o->wdtype;
  float qmin = (float)info->qmin, qmax = (float)info->qmax;
  for (size_t s = 0; s < ns; s++) {
    float mn = c.mn[s], mx = c.mx[s];
    for (unsigned w = 1; w < nt; w++) {
      if (c.mn[w * ns + s] < mn) mn = c.mn[w * ns + s];
      if (c.mx[w * ns + s] > mx) mx = c.mx[w * ns + s];
    }
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
    scale[s] = mlsh_wd_round(wd, range / (qmax - qmin));
    if (!info->has_zero_point) continue;
    float z;
    if (o->symmetric) z = (float)(info->qmax / 2);
    else {
      float num = mlsh_wd_round(wd, mlsh_wd_round(wd, qmin * hi) - mlsh_wd_round(wd, qmax * lo));
      z = mlsh_rint_even(mlsh_wd_round(wd, num / range));
      if (!isnan(z)) z = z < qmin ? qmin : z > qmax ? qmax : z;
    }
    c.zpf[s] = z;
    zero_point[s] = isnan(z) ? 0.0f : z;
  }
  mlsh_parallel_for(nt, chunks, quant_task, &c);

done:
  free(c.mn);
  free(c.mx);
  free(c.bad);
  free(c.zpf);
  return st;
}
