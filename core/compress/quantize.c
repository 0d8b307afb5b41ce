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
  mlsh_cz_cpu cpu;
} q_ctx;

#ifdef MLSH_QUANT_X86
/* Min/max of fp16 codes h[0..len) into *lo, *hi; *bad |= an inf/NaN code seen. */
__attribute__((target("avx,f16c"))) static void minmax_f16c(const uint16_t *h, size_t len, float *lo, float *hi,
                                                             unsigned *bad) {
  __m256 vlo = _mm256_set1_ps(*lo), vhi = _mm256_set1_ps(*hi);
  const __m128i em = _mm_set1_epi16(0x7c00);
  __m128i vb = _mm_setzero_si128();
  size_t k = 0;
  for (; k + 8 <= len; k += 8) {
    __m128i hv = _mm_loadu_si128((const __m128i *)(const void *)(h + k));
    vb = _mm_or_si128(vb, _mm_cmpeq_epi16(_mm_and_si128(hv, em), em));
    __m256 v = _mm256_cvtph_ps(hv);
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
  }
  float a[8], b[8], l = *lo, u = *hi;
  _mm256_storeu_ps(a, vlo);
  _mm256_storeu_ps(b, vhi);
  for (int j = 0; j < 8; j++) {
    l = a[j] < l ? a[j] : l;
    u = b[j] > u ? b[j] : u;
  }
  unsigned bd = _mm_movemask_epi8(vb) != 0;
  for (; k < len; k++) {
    float v = mlsh_fp16_to_f32(h[k]);
    bd |= (h[k] & 0x7c00u) == 0x7c00u;
    l = v < l ? v : l;
    u = v > u ? v : u;
  }
  *lo = l;
  *hi = u;
  *bad |= bd;
}
#endif

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

#ifdef MLSH_QUANT_X86
static inline __attribute__((target("avx,f16c"))) __m256 r16v(__m256 v) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* quant_core for weight dtype fp16 without codes, 8 lanes at a time: the same operations in the
 * same order on each element (F16C rounding is mlsh_round_fp16, round-to-nearest-int is
 * mlsh_rint_even, min/max then the NaN select is quant_code), so the same bits. */
__attribute__((target("avx,f16c"))) static void quant_core_f16c(const q_ctx *c, qbatch *q, const float *tv, size_t m,
                                                                 uint8_t *raw, float *rec) {
  const __m256 qmin = _mm256_set1_ps((float)c->info->qmin), qmax = _mm256_set1_ps((float)c->info->qmax);
  const __m128i mask = _mm_set1_epi16((short)((1u << c->o->nbits) - 1));
  size_t k = 0;
  for (; k < m; k += 8) {
    float pt[8], ps[8], pz[8], pzs[8], pr[8];
    const float *t = tv + k, *sc = q->sc + k, *zf = q->zf + k, *zs = q->zs + k;
    size_t left = m - k;
    if (left < 8) { /* the tail, padded with harmless lanes */
      for (size_t j = 0; j < 8; j++) {
        pt[j] = j < left ? t[j] : 0.0f;
        ps[j] = j < left ? sc[j] : 1.0f;
        pz[j] = j < left ? zf[j] : 0.0f;
        pzs[j] = j < left ? zs[j] : 0.0f;
      }
      t = pt, sc = ps, zf = pz, zs = pzs;
    }
    __m256 vsc = _mm256_loadu_ps(sc);
    __m256 v = r16v(_mm256_div_ps(r16v(_mm256_loadu_ps(t)), vsc));
    __m256 r = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), _mm256_loadu_ps(zf));
    __m256 cl = _mm256_min_ps(_mm256_max_ps(r, qmin), qmax);
    cl = _mm256_and_ps(cl, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
    __m256i iv = _mm256_cvttps_epi32(cl);
    __m128i w16 = _mm_and_si128(_mm_packs_epi32(_mm256_castsi256_si128(iv), _mm256_extractf128_si256(iv, 1)), mask);
    __m128i b8 = _mm_packus_epi16(w16, w16);
    __m256 rv = r16v(_mm256_mul_ps(_mm256_sub_ps(cl, _mm256_loadu_ps(zs)), vsc));
    if (left >= 8) {
      _mm_storel_epi64((__m128i *)(void *)(raw + k), b8);
      _mm256_storeu_ps(rec + k, rv);
    } else {
      uint8_t pb[16];
      _mm_storeu_si128((__m128i *)(void *)pb, b8);
      _mm256_storeu_ps(pr, rv);
      for (size_t j = 0; j < left; j++) raw[k + j] = pb[j], rec[k + j] = pr[j];
    }
  }
}
#endif

#ifdef MLSH_QUANT_X86
/* The same for one run of m elements sharing a block (scale sc, zero points zf as used and zs
 * as stored): the parameters broadcast instead of loaded per element. */
__attribute__((target("avx,f16c"))) static void quant_run_f16c(const q_ctx *c, const float *t, size_t m, float sc,
                                                                float zf, float zs, uint8_t *raw, float *rec) {
  const __m256 qmin = _mm256_set1_ps((float)c->info->qmin), qmax = _mm256_set1_ps((float)c->info->qmax);
  const __m256 vsc = _mm256_set1_ps(sc), vzf = _mm256_set1_ps(zf), vzs = _mm256_set1_ps(zs);
  const __m128i mask = _mm_set1_epi16((short)((1u << c->o->nbits) - 1));
  for (size_t k = 0; k < m; k += 8) {
    float pt[8], pr[8];
    size_t left = m - k;
    const float *tp = t + k;
    if (left < 8) {
      for (size_t j = 0; j < 8; j++) pt[j] = j < left ? tp[j] : 0.0f;
      tp = pt;
    }
    __m256 v = r16v(_mm256_div_ps(r16v(_mm256_loadu_ps(tp)), vsc));
    __m256 r = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzf);
    __m256 cl = _mm256_min_ps(_mm256_max_ps(r, qmin), qmax);
    cl = _mm256_and_ps(cl, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
    __m256i iv = _mm256_cvttps_epi32(cl);
    __m128i w16 = _mm_and_si128(_mm_packs_epi32(_mm256_castsi256_si128(iv), _mm256_extractf128_si256(iv, 1)), mask);
    __m128i b8 = _mm_packus_epi16(w16, w16);
    __m256 rv = r16v(_mm256_mul_ps(_mm256_sub_ps(cl, vzs), vsc));
    if (left >= 8) {
      _mm_storel_epi64((__m128i *)(void *)(raw + k), b8);
      _mm256_storeu_ps(rec + k, rv);
    } else {
      uint8_t pb[16];
      _mm_storeu_si128((__m128i *)(void *)pb, b8);
      _mm256_storeu_ps(pr, rv);
      for (size_t j = 0; j < left; j++) raw[k + j] = pb[j], rec[k + j] = pr[j];
    }
  }
}
#endif

#ifdef MLSH_QUANT_X86
static inline __attribute__((target("avx512f"))) __m512 r16z(__m512 v) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* quant_run_f16c 16 lanes at a time (AVX-512F), the rest (< 16) by quant_run_f16c: per element
 * the same operations (fp16 rounding, division, round to nearest even, the NaN select, min/max
 * with the same operand order), so the same bits; codes are (int)v & mask either way. */
__attribute__((target("avx,f16c,avx512f"))) static void quant_run_512(const q_ctx *c, const float *t, size_t m, float sc,
                                                                       float zf, float zs, uint8_t *raw, float *rec) {
  const __m512 qmin = _mm512_set1_ps((float)c->info->qmin), qmax = _mm512_set1_ps((float)c->info->qmax);
  const __m512 vsc = _mm512_set1_ps(sc), vzf = _mm512_set1_ps(zf), vzs = _mm512_set1_ps(zs);
  const __m512i mask = _mm512_set1_epi32((int)((1u << c->o->nbits) - 1));
  size_t k = 0;
  for (; k + 16 <= m; k += 16) {
    __m512 v = r16z(_mm512_div_ps(r16z(_mm512_loadu_ps(t + k)), vsc));
    __m512 r = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzf);
    __m512 cl = _mm512_min_ps(_mm512_max_ps(r, qmin), qmax);
    cl = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), cl);
    __m512i iv = _mm512_and_si512(_mm512_cvttps_epi32(cl), mask);
    _mm_storeu_si128((__m128i *)(void *)(raw + k), _mm512_cvtepi32_epi8(iv));
    _mm512_storeu_ps(rec + k, r16z(_mm512_mul_ps(_mm512_sub_ps(cl, vzs), vsc)));
  }
  if (k < m) quant_run_f16c(c, t + k, m - k, sc, zf, zs, raw + k, rec + k);
}
#endif

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
    minmax_f16c(src->f16 + s, len, lo, hi, bad);
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

#ifdef MLSH_QUANT_X86
/* block_params for blocks [s, s + 16) from mn[0..16), mx[0..16), weight dtype fp16, AVX-512F:
 * the same operations in the same order (F16C rounding is mlsh_round_fp16; max_ps(a, b) is
 * a > b ? a : b and min_ps(a, b) a < b ? a : b, the ternaries of block_params; roundscale is
 * mlsh_rint_even), so the same bits. */
__attribute__((target("avx,f16c,avx512f"))) static void block_params16(const q_ctx *c, size_t s, const float *mn,
                                                                        const float *mx) {
  const mlsh_quant_info *info = c->info;
  const __m512 zero = _mm512_setzero_ps(), qmin = _mm512_set1_ps((float)info->qmin);
  const __m512 qmax = _mm512_set1_ps((float)info->qmax);
  const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
  __m512 vmn = r16z(_mm512_loadu_ps(mn)), vmx = r16z(_mm512_loadu_ps(mx)), lo, hi;
  if (c->o->symmetric) {
    __m512 a = _mm512_max_ps(_mm512_abs_ps(vmn), _mm512_abs_ps(vmx));
    lo = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), sign)); /* -a */
    hi = a;
  } else {
    lo = _mm512_min_ps(vmn, zero);
    hi = _mm512_max_ps(vmx, zero);
  }
  __m512 range = r16z(_mm512_sub_ps(hi, lo));
  _mm512_storeu_ps(c->scale + s, r16z(_mm512_div_ps(range, _mm512_sub_ps(qmax, qmin))));
  if (!info->has_zero_point) return;
  __m512 z;
  if (c->o->symmetric) z = _mm512_set1_ps((float)(info->qmax / 2));
  else {
    __m512 num = r16z(_mm512_sub_ps(r16z(_mm512_mul_ps(qmin, hi)), r16z(_mm512_mul_ps(qmax, lo))));
    z = _mm512_roundscale_ps(r16z(_mm512_div_ps(num, range)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    z = _mm512_max_ps(qmin, _mm512_min_ps(qmax, z)); /* NaN stays NaN */
  }
  _mm512_storeu_ps(c->zpf + s, z);
  _mm512_storeu_ps(c->zps + s, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, z, _CMP_ORD_Q), z));
}
#endif

/* mlsh_quantize_pass's preparation of a task's span [i0, i1) (whole blocks): each block's
 * min/max and parameters, read while the span is about to be quantized (in cache). */
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
    if (k == 16 && c->avx512 && c->o->wdtype == MLSH_WD_FP16) {
      block_params16(c, s0, mn, mx);
      continue;
    }
#endif
    for (size_t j = 0; j < k; j++) block_params(c, s0 + j, mn[j], mx[j]);
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
  if (c.lb) { /* parameters per task span, then the span's batches */
    st = mlsh_metrics_pass_prep(src, rd, n, o->threads, prep_span, pass_batch, &c, m);
    for (size_t t = 0; !st && t < (n + MLSH_MX_TASK_SPAN - 1) / MLSH_MX_TASK_SPAN; t++)
      if (c.bad[t]) st = MLSH_CZ_ENONFINITE;
  } else st = mlsh_metrics_pass(src, n, o->threads, pass_batch, &c, m);
  free(c.bad);
  free(c.zpf);
  return st;
}
