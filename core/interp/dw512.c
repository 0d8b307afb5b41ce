/* dw512.c — the AVX-512 depthwise planes (see dw512.h). */
#include "dw512.h"
#include <stdint.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

struct it_dw512 {
  const it_window *g;
  int64_t wp;          /* stride 2: the phase-split row's half pitch */
  size_t scratch;      /* floats per worker */
  int flat;            /* the flat run (below) applies */
  int64_t nvec, kn;    /* flat: vectors of 16 outputs, taps */
  int64_t *off;        /* flat: tap t's offset from an output's flat index to its input's */
  __mmask16 *mask;     /* flat: [t][v] lanes of vector v whose tap-t input is inside the image */
};

typedef struct {
  const float *x, *w; /* the input plane (H rows of `pitch` floats) and the k1 x k2 taps */
  float *o;            /* the output plane (OH x OW) */
  int64_t pitch;
  float b;
  int clamp, scan;     /* a fused relu / relu6 applied in the store; its input scanned first */
  float lo, hi;
  int bad, big;        /* the scan's verdict (plane_avx512 sets them) */
} dw_plane;

typedef struct { /* the scan while it runs: lanes that held a NaN, largest |value| */
  __mmask16 nan;
  __m512 mx;
} dw_scan;

/* Per (kw, vector): where in an input row the vector's 16 columns start, and which are inside. */
typedef struct {
  int64_t off;
  __mmask16 m;
} dw_cols;
#define DW_KW 16 /* the widest kernel row the path takes (dw_cols arrays are this long) */

/* R output rows from oh of one group of NV vectors (16 NV output columns from ow0): R x NV
 * independent sums (an FMA's latency is hidden only with several in flight). With `check`, rows
 * outside the image are skipped tap by tap; without it every tap row of the R rows is inside.
 * K3: a 3 x 3 kernel known at compile time. */
__attribute__((target("avx512f"), always_inline)) static inline void
rows_avx512(const dw_plane *q, dw_scan *sc, const it_window *g, int64_t ow0, int64_t oh, const dw_cols (*cv)[4],
            const __mmask16 *sm, const int R, const int NV, const int K3, const int check) {
  int64_t H = g->in[1], OW = g->out[2], k1 = K3 ? 3 : g->k[1], k2 = K3 ? 3 : g->k[2];
  int64_t s1 = g->s[1], d1 = g->d[1], pb1 = g->pb[1];
  __m512 acc[8][4];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_set1_ps(q->b);
  for (int64_t kh = 0; kh < k1; kh++) {
    const float *row[8];
    int ok[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      int64_t ih = (oh + r) * s1 - pb1 + kh * d1;
      ok[r] = !check || (ih >= 0 && ih < H);
      row[r] = q->x + (ok[r] ? ih : 0) * q->pitch;
    }
    const float *wk = q->w + kh * k2;
    for (int64_t kw = 0; kw < k2; kw++) {
      __m512 wv = _mm512_set1_ps(wk[kw]);
      const dw_cols *c = cv[kw];
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) {
        if (check && !ok[r]) continue;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
          acc[r][v] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(c[v].m, row[r] + c[v].off), acc[r][v]);
      }
    }
  }
  __m512 lo = _mm512_set1_ps(q->lo), hi = _mm512_set1_ps(q->hi);
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) {
    float *orow = q->o + (oh + r) * OW + ow0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      __m512 y = acc[r][v];
      if (q->scan) { /* the lanes stored only: the others hold sums of nothing */
        sc->nan |= _mm512_mask_cmp_ps_mask(sm[v], y, y, _CMP_UNORD_Q);
        sc->mx = _mm512_mask_max_ps(sc->mx, sm[v], sc->mx, _mm512_abs_ps(y));
      }
      if (q->clamp) y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
      _mm512_mask_storeu_ps(orow + 16 * v, sm[v], y);
    }
  }
}

/* Every output row of one vector group: blocks of R rows whose taps are all inside the image,
 * the rest one row at a time with the bounds test. R x NV is about 8 sums in flight. */
__attribute__((target("avx512f"), always_inline)) static inline void
cols_avx512(const dw_plane *q, dw_scan *sc, const it_window *g, int64_t ow0, const dw_cols (*cv)[4], const int NV,
            const int K3) {
  const int R = NV == 1 ? 8 : NV == 2 ? 4 : 2;
  int64_t H = g->in[1], OH = g->out[1], OW = g->out[2], k1 = g->k[1], s1 = g->s[1], d1 = g->d[1], pb1 = g->pb[1];
  __mmask16 sm[4];
  for (int v = 0; v < NV; v++) {
    int64_t left = OW - (ow0 + 16 * v);
    sm[v] = left >= 16 ? (__mmask16)0xffff : (__mmask16)(((uint32_t)1 << left) - 1);
  }
  /* output rows [lo, hi) read only rows inside [0, H) */
  int64_t lo = pb1 <= 0 ? 0 : (pb1 + s1 - 1) / s1, last = H - 1 + pb1 - (k1 - 1) * d1;
  int64_t hi = last < 0 ? 0 : last / s1 + 1;
  if (hi > OH) hi = OH;
  if (lo > hi) lo = hi;
  int64_t oh = 0;
  for (; oh < lo; oh++) rows_avx512(q, sc, g, ow0, oh, cv, sm, 1, NV, K3, 1);
  for (; oh + R <= hi; oh += R) rows_avx512(q, sc, g, ow0, oh, cv, sm, R, NV, K3, 0);
  for (; oh < OH; oh++) rows_avx512(q, sc, g, ow0, oh, cv, sm, 1, NV, K3, 1);
}

/* Lanes i of [0, 16) whose index c0 + i lies in [0, n). */
static __mmask16 col_mask(int64_t c0, int64_t n) {
  int64_t lo = c0 < 0 ? -c0 : 0, hi = n - c0 < 16 ? n - c0 : 16;
  if (hi <= lo) return 0;
  return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}

/* Stride 2: rows [0, H) of x (W wide) into dst rows of pitch 2 wp: evens at [0, wp), odds at
 * [wp, 2 wp) (wp a multiple of 16; the tail lanes past the image are left unwritten: no load's
 * mask reaches them). */
__attribute__((target("avx512f"))) static void split_phases(const float *x, int64_t H, int64_t W, int64_t wp,
                                                            float *dst) {
  __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t h = 0; h < H; h++) {
    const float *r = x + h * W;
    float *e = dst + h * 2 * wp, *o = e + wp;
    int64_t c = 0;
    for (; c + 32 <= W; c += 32) { /* whole blocks: plain loads, the next rows fetched ahead */
      if (h + 2 < H) { /* the row two below: only rows of this plane (no address past it) */
        _mm_prefetch((const char *)(r + 2 * W + c), _MM_HINT_T0);
        _mm_prefetch((const char *)(r + 2 * W + c + 16), _MM_HINT_T0);
      }
      __m512 a = _mm512_loadu_ps(r + c), b = _mm512_loadu_ps(r + c + 16);
      _mm512_storeu_ps(e + c / 2, _mm512_permutex2var_ps(a, ev, b));
      _mm512_storeu_ps(o + c / 2, _mm512_permutex2var_ps(a, od, b));
    }
    if (c < W) {
      __m512 a = _mm512_maskz_loadu_ps(col_mask(c, W), r + c), b = _mm512_maskz_loadu_ps(col_mask(c + 16, W), r + c + 16);
      _mm512_storeu_ps(e + c / 2, _mm512_permutex2var_ps(a, ev, b));
      _mm512_storeu_ps(o + c / 2, _mm512_permutex2var_ps(a, od, b));
    }
  }
}

/* The plane (q->x: the input in place, or split by phase for stride 2, see split_phases); with
 * q->scan, q->bad / q->big as it_act_apply's scan gives them (NaN or inf -> bad, |x| > 65504 ->
 * big), over the values before the clamp. */
__attribute__((target("avx512f"))) static void plane_avx512(dw_plane *q, const it_window *g, int64_t wp) {
  dw_scan sc = {0, _mm512_setzero_ps()};
  int64_t W = g->in[2], OW = g->out[2], k2 = g->k[2], s2 = g->s[2], d2 = g->d[2], pb2 = g->pb[2];
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 64) {
    int nv = (int)((OW - ow0 + 15) / 16);
    if (nv > 4) nv = 4;
    dw_cols cv[DW_KW][4];
    for (int64_t kw = 0; kw < k2; kw++)
      for (int v = 0; v < nv; v++) {
        int64_t c = kw * d2 - pb2, first = ow0 + 16 * v;
        if (s2 == 1) cv[kw][v] = (dw_cols){first + c, col_mask(first + c, W)};
        else { /* column 2 ow + c: phase c & 1, index ow + (c - phase) / 2 of (W + 1 - phase) / 2 */
          int64_t ph = c & 1, j0 = first + (c - ph) / 2;
          cv[kw][v] = (dw_cols){ph * wp + j0, col_mask(j0, (W + 1 - ph) / 2)};
        }
      }
    const dw_cols (*cc)[4] = (const dw_cols (*)[4])cv;
    int k3 = g->k[1] == 3 && k2 == 3;
    switch ((nv - 1) * 2 + k3) { /* NV x K3, each a constant in its copy */
    case 0: cols_avx512(q, &sc, g, ow0, cc, 1, 0); break;
    case 1: cols_avx512(q, &sc, g, ow0, cc, 1, 1); break;
    case 2: cols_avx512(q, &sc, g, ow0, cc, 2, 0); break;
    case 3: cols_avx512(q, &sc, g, ow0, cc, 2, 1); break;
    case 4: cols_avx512(q, &sc, g, ow0, cc, 3, 0); break;
    case 5: cols_avx512(q, &sc, g, ow0, cc, 3, 1); break;
    case 6: cols_avx512(q, &sc, g, ow0, cc, 4, 0); break;
    default: cols_avx512(q, &sc, g, ow0, cc, 4, 1); break;
    }
  }
  if (q->scan) {
    float m = _mm512_reduce_max_ps(sc.mx);
    q->bad = sc.nan != 0 || m == INFINITY;
    q->big = m > 65504.0f;
  }
}


/* ---- the flat run: output index p = oh OW + ow reads input p + off[t] (OW == W, stride 1) ---- */

/* NV vectors from v0: NV independent sums over all taps, then the epilogue (scan, clamp, store). */
__attribute__((target("avx512f"), always_inline)) static inline void flat_vecs(const dw_plane *q, dw_scan *sc,
                                                                               const it_dw512 *d, int64_t v0, const int NV) {
  int64_t n = d->g->out[1] * d->g->out[2];
  __m512 acc[8];
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) acc[v] = _mm512_set1_ps(q->b);
  const float *x = q->x + 16 * v0;
  for (int64_t t = 0; t < d->kn; t++) {
    __m512 wv = _mm512_set1_ps(q->w[t]);
    const __mmask16 *m = d->mask + t * d->nvec + v0;
    const float *xt = x + d->off[t];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[v] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m[v], xt + 16 * v), acc[v]);
  }
  __m512 lo = _mm512_set1_ps(q->lo), hi = _mm512_set1_ps(q->hi);
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) {
    int64_t left = n - 16 * (v0 + v);
    __mmask16 sm = left >= 16 ? (__mmask16)0xffff : (__mmask16)(((uint32_t)1 << left) - 1);
    __m512 y = acc[v];
    if (q->scan) {
      sc->nan |= _mm512_mask_cmp_ps_mask(sm, y, y, _CMP_UNORD_Q);
      sc->mx = _mm512_mask_max_ps(sc->mx, sm, sc->mx, _mm512_abs_ps(y));
    }
    if (q->clamp) y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
    _mm512_mask_storeu_ps(q->o + 16 * (v0 + v), sm, y);
  }
}

__attribute__((target("avx512f"))) static void flat_plane(dw_plane *q, const it_dw512 *d) {
  dw_scan sc = {0, _mm512_setzero_ps()};
  int64_t v0 = 0;
  for (; v0 + 8 <= d->nvec; v0 += 8) flat_vecs(q, &sc, d, v0, 8);
  switch (d->nvec - v0) {
  case 7: flat_vecs(q, &sc, d, v0, 7); break;
  case 6: flat_vecs(q, &sc, d, v0, 6); break;
  case 5: flat_vecs(q, &sc, d, v0, 5); break;
  case 4: flat_vecs(q, &sc, d, v0, 4); break;
  case 3: flat_vecs(q, &sc, d, v0, 3); break;
  case 2: flat_vecs(q, &sc, d, v0, 2); break;
  case 1: flat_vecs(q, &sc, d, v0, 1); break;
  default: break;
  }
  if (q->scan) {
    float m = _mm512_reduce_max_ps(sc.mx);
    q->bad = sc.nan != 0 || m == INFINITY;
    q->big = m > 65504.0f;
  }
}

/* The flat run's offsets and masks (built once per conv; read by every channel). */
static int flat_tables(it_dw512 *d) {
  const it_window *g = d->g;
  int64_t OW = g->out[2], n = g->out[1] * OW, k1 = g->k[1], k2 = g->k[2];
  d->kn = k1 * k2;
  d->nvec = (n + 15) / 16;
  d->off = malloc((size_t)d->kn * sizeof *d->off);
  d->mask = calloc((size_t)(d->kn * d->nvec), sizeof *d->mask);
  if (!d->off || !d->mask) return -1;
  for (int64_t kh = 0, t = 0; kh < k1; kh++)
    for (int64_t kw = 0; kw < k2; kw++, t++) {
      int64_t dh = kh * g->d[1] - g->pb[1], dw = kw * g->d[2] - g->pb[2];
      d->off[t] = dh * g->in[2] + dw;
      for (int64_t p = 0; p < n; p++) {
        int64_t ih = p / OW + dh, iw = p % OW + dw;
        if (ih >= 0 && ih < g->in[1] && iw >= 0 && iw < g->in[2]) d->mask[t * d->nvec + p / 16] |= (__mmask16)(1u << (p % 16));
      }
    }
  return 0;
}

/* ---- the plan ---- */

static int have_avx512(void) {
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx512f") && !getenv("MLSH_NO_SIMD") && !getenv("MLSH_NO_AVX512");
  }
  return have;
}

int it_dw512_new(const it_window *g, it_dw512 **out) {
  *out = NULL;
  int64_t s2 = g->s[2];
  if (!have_avx512() || g->k[2] > DW_KW || g->in[0] != 1 || g->k[0] != 1 || g->out[0] != 1 || (s2 != 1 && s2 != 2))
    return 0;
  it_dw512 *d = calloc(1, sizeof *d);
  if (!d) return -1;
  d->g = g;
  d->wp = (g->in[2] / 2 + 16) / 16 * 16;
  if (s2 == 2 && (__builtin_mul_overflow((size_t)g->in[1], (size_t)(2 * d->wp), &d->scratch) || d->scratch > ((size_t)1 << 40))) {
    free(d);
    return -1;
  }
  d->flat = s2 == 1 && g->s[1] == 1 && g->out[2] == g->in[2] && g->out[1] * g->out[2] <= 256 && g->k[1] * g->k[2] <= 64;
  if (d->flat && flat_tables(d) != 0) {
    it_dw512_free(d);
    return -1;
  }
  *out = d;
  return 0;
}

void it_dw512_free(it_dw512 *d) {
  if (!d) return;
  free(d->off);
  free(d->mask);
  free(d);
}

size_t it_dw512_scratch(const it_dw512 *d) { return d->scratch; }

__attribute__((target("avx512f"))) void it_dw512_plane(const float *x, const float *w, float *o, float b,
                                                       const it_dw512 *d, it_act *post, float *scratch) {
  const it_window *g = d->g;
  int clamp = post && post->clamp;
  dw_plane q = {x, w, o, g->in[2], b, clamp, clamp && post->scan, clamp ? post->lo : 0, clamp ? post->hi : 0, 0, 0};
  if (d->flat) flat_plane(&q, d);
  else {
    if (g->s[2] == 2) {
      split_phases(x, g->in[1], g->in[2], d->wp, scratch);
      q.x = scratch;
      q.pitch = 2 * d->wp;
    }
    plane_avx512(&q, g, d->wp);
  }
  if (q.bad) __atomic_store_n(&post->bad, 1, __ATOMIC_RELAXED);
  if (q.big) __atomic_store_n(&post->big, 1, __ATOMIC_RELAXED);
  if (post && !clamp) it_act_apply(post, o, (size_t)(g->out[1] * g->out[2]));
}

#else /* no x86: the path never applies */
int it_dw512_new(const it_window *g, it_dw512 **out) { (void)g; *out = NULL; return 0; }
void it_dw512_free(it_dw512 *d) { (void)d; }
size_t it_dw512_scratch(const it_dw512 *d) { (void)d; return 0; }
void it_dw512_plane(const float *x, const float *w, float *o, float b, const it_dw512 *d, it_act *post, float *scratch) {
  (void)x; (void)w; (void)o; (void)b; (void)d; (void)post; (void)scratch;
}
#endif
