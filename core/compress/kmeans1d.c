/* kmeans1d.c — exact 1-D weighted k-means by dynamic programming (see kmeans1d.h).
 * D_c[i] = least cost of points 0..i in at most c+1 clusters
 *        = min_j D_{c-1}[j-1] + cost(j, i), j = start of the last cluster.
 * For a fixed layer the matrix M[i][j] = D_{c-1}[j-1] + cost(j, i) (j <= i) is Monge because the
 * within-cluster SSE is, so row argmins are monotone and divide and conquer finds them all.
 * (SMAWK is O(n) per layer, but measured here it was slower than these straight scans.)
 * Costs use prefix sums of w, w*x, w*x^2 over values centred on their mean (less cancellation). */
#include "compress/kmeans1d.h"
#include "compress/common.h"
#include <stdlib.h>

struct mlsh_km1d {
  int avx2; /* use the 4-wide scan */
  /* W, S, Q: prefix sums (P+1); PQ: prev[j-1] - Q[j] (P); prev/cur: DP layers (P). W, S and PQ
   * carry PAD zeroed slots past their end so packed loads of a last partial group stay inside. */
  double *W, *S, *Q, *PQ, *prev, *cur;
  size_t cap_pts;
  uint32_t *T; /* argmins of the middle layers, (m-2) x P */
  size_t cap_T;
};

#define PAD 4

mlsh_km1d *mlsh_km1d_new(void) {
  mlsh_km1d *ws = calloc(1, sizeof(mlsh_km1d));
  if (ws) {
    mlsh_cz_cpu cpu;
    mlsh_cz_cpu_init(&cpu);
    ws->avx2 = cpu.avx2;
  }
  return ws;
}

void mlsh_km1d_free(mlsh_km1d *ws) {
  if (!ws) return;
  free(ws->W); free(ws->S); free(ws->Q); free(ws->PQ); free(ws->prev); free(ws->cur);
  free(ws->T);
  free(ws);
}

static int grow(void **p, size_t n, size_t elem) {
  if (n > SIZE_MAX / elem) return -1;
  void *q = realloc(*p, n > 0 ? n * elem : 1);
  if (!q) return -1;
  *p = q;
  return 0;
}

static int reserve(mlsh_km1d *ws, size_t P, unsigned m) {
  if (P + 1 + PAD > ws->cap_pts) {
    size_t c = P + 1 + PAD;
    if (grow((void **)&ws->W, c, sizeof(double)) || grow((void **)&ws->S, c, sizeof(double)) ||
        grow((void **)&ws->Q, c, sizeof(double)) || grow((void **)&ws->PQ, c, sizeof(double)) ||
        grow((void **)&ws->prev, c, sizeof(double)) || grow((void **)&ws->cur, c, sizeof(double)))
      return MLSH_CZ_ENOMEM;
    ws->cap_pts = c;
  }
  size_t t = m > 2 ? (size_t)(m - 2) * P : 0;
  if (t > ws->cap_T) {
    if (grow((void **)&ws->T, t, sizeof(uint32_t))) return MLSH_CZ_ENOMEM;
    ws->cap_T = t;
  }
  for (size_t i = P + 1; i < P + 1 + PAD; i++) ws->W[i] = ws->S[i] = ws->PQ[i] = 0;
  ws->PQ[P] = 0;
  return MLSH_CZ_OK;
}

typedef struct {
  const double *W, *S, *Q, *PQ;
} layer;

/* SSE of points j..i (inclusive) around their weighted mean. */
static inline double cost(const layer *L, size_t j, size_t i) {
  double w = L->W[i + 1] - L->W[j], s = L->S[i + 1] - L->S[j];
  return (L->Q[i + 1] - L->Q[j]) - s * s / w; /* may be -tiny from rounding; harmless */
}

/* M[i][j] = D_prev[j-1] + cost(j, i) = (PQ[j] + Q[i+1]) - s*s/w, j <= i. Every path below
 * evaluates exactly this expression, so the answer does not depend on which one ran. */
static inline double entry(const layer *L, size_t i, size_t j) {
  double w = L->W[i + 1] - L->W[j], s = L->S[i + 1] - L->S[j];
  return (L->PQ[j] + L->Q[i + 1]) - s * s / w;
}

/* Leftmost argmin over j in [a, b] (b <= i) of entry(i, j), packed with the GCC/clang vector
 * extension: lanes past b are masked to +inf (the arrays are padded), each lane keeps its
 * leftmost minimum and index, and the lanes are merged preferring the lower index on ties.
 * One definition per width: 2 (SSE2 / NEON, any CPU) and 4 (AVX2, chosen at run time). */
#define ARGMIN_ROW(NAME, VD, VI, LANES, ATTR)                                                   \
  typedef double VD __attribute__((vector_size(8 * LANES)));                                    \
  typedef long long VI __attribute__((vector_size(8 * LANES)));                                 \
  ATTR static size_t NAME(const layer *L, size_t i, size_t a, size_t b, double *bvp) {          \
    static const long long iota[4] = {0, 1, 2, 3};                                              \
    const VD zero = {0}, inf = zero + INFINITY;                                                 \
    const VD wi = zero + L->W[i + 1], si = zero + L->S[i + 1], qi = zero + L->Q[i + 1];         \
    const VI izero = {0}, step = izero + LANES, last = izero + (long long)b;                    \
    VD lv = inf;                                                                                \
    VI li = izero, idx;                                                                         \
    memcpy(&idx, iota, sizeof idx);                                                             \
    idx += (long long)a;                                                                        \
    for (size_t j = a; j <= b; j += LANES) {                                                    \
      VD wj, sj, pj;                                                                            \
      memcpy(&wj, L->W + j, sizeof wj);                                                         \
      memcpy(&sj, L->S + j, sizeof sj);                                                         \
      memcpy(&pj, L->PQ + j, sizeof pj);                                                        \
      VD w = wi - wj, sv = si - sj;                                                             \
      VD v = (pj + qi) - sv * sv / w;                                                           \
      VI in = idx <= last;                                                                      \
      v = (VD)(((VI)v & in) | ((VI)inf & ~in));                                                 \
      VI lt = v < lv;                                                                           \
      lv = (VD)(((VI)v & lt) | ((VI)lv & ~lt));                                                 \
      li = (idx & lt) | (li & ~lt);                                                             \
      idx += step;                                                                              \
    }                                                                                           \
    size_t best = (size_t)li[0];                                                                \
    double bv = lv[0];                                                                          \
    for (int k = 1; k < LANES; k++)                                                             \
      if (lv[k] < bv || (lv[k] == bv && (size_t)li[k] < best)) {                                \
        bv = lv[k];                                                                             \
        best = (size_t)li[k];                                                                   \
      }                                                                                         \
    *bvp = bv;                                                                                  \
    return best;                                                                                \
  }

ARGMIN_ROW(argmin_row2, v2d, v2i, 2, )
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define MLSH_KM1D_AVX2 1
ARGMIN_ROW(argmin_row4, v4d, v4i, 4, __attribute__((target("avx2"))))
#endif

/* All row minima of one layer. Argmins are monotone in the row (the matrix is Monge), so a row
 * lies between its neighbours' argmins. Rows are visited coarse to fine (strides of powers of
 * two: rows (2k+1)s-1 for s = 2^t down to 1), so each row's neighbours (2k)s-1 and (2k+2)s-1
 * are known when it is reached: divide and conquer without recursion, O(P log P) entries.
 * `floor_` (the previous layer's argmins, or NULL) bounds from below too: with one more cluster
 * the last cluster of points 0..i starts no earlier. */
static void layer_rows(const layer *L, int wide, size_t P, const uint32_t *floor_, uint32_t *res, double *val) {
  size_t top = 1;
  while (top * 2 <= P) top *= 2;
  for (size_t s = top; s >= 1; s /= 2) {
    for (size_t r = s - 1; r < P; r += 2 * s) {
      size_t a = r >= s ? res[r - s] : 0, b = r;
      if (r + s < P && res[r + s] < b) b = res[r + s];
      if (floor_ && floor_[r] > a && floor_[r] <= b) a = floor_[r];
      size_t best = a;
      if (b - a < 8) { /* most rows have a few candidates: a plain loop beats packed setup */
        double v0 = entry(L, r, a);
        for (size_t j = a + 1; j <= b; j++) {
          double v1 = entry(L, r, j);
          if (v1 < v0) {
            v0 = v1;
            best = j;
          }
        }
        val[r] = v0;
      }
#ifdef MLSH_KM1D_AVX2
      else if (wide) best = argmin_row4(L, r, a, b, &val[r]);
#endif
      else best = argmin_row2(L, r, a, b, &val[r]);
      res[r] = (uint32_t)best;
    }
  }
  (void)wide;
}

/* Exact DP over P points whose prefix sums are in ws->W/S/Q. Writes the exclusive end of each
 * non-empty cluster to cut[] (ascending) and returns their number. */
static int dp_solve(mlsh_km1d *ws, size_t P, unsigned m, size_t *cut) {
  if (m <= 1 || P <= 1) {
    cut[0] = P;
    return 1;
  }
  layer L = {ws->W, ws->S, ws->Q, ws->PQ};
  double *prev = ws->prev, *cur = ws->cur;
  for (size_t i = 0; i < P; i++) prev[i] = cost(&L, 0, i);
  for (unsigned c = 1; c < m; c++) {
    ws->PQ[0] = 0; /* j = 0: no earlier clusters, Q[0] = 0 */
    for (size_t j = 1; j < P; j++) ws->PQ[j] = prev[j - 1] - ws->Q[j];
    if (c + 1 == m) break; /* the last layer needs only the last row, below */
    uint32_t *T = ws->T + (size_t)(c - 1) * P;
    layer_rows(&L, ws->avx2, P, c > 1 ? T - P : NULL, T, cur);
    double *tmp = prev;
    prev = cur;
    cur = tmp;
  }
  double bv;
  size_t j = argmin_row2(&L, P - 1, 0, P - 1, &bv);
  size_t starts[256], ends[256];
  unsigned c = m - 1;
  size_t hi = P;
  for (;;) {
    starts[c] = j;
    ends[c] = hi;
    if (c == 0) break;
    if (j == 0) { /* the earlier clusters came out empty (only on exact ties) */
      for (unsigned e = 0; e < c; e++) starts[e] = ends[e] = 0;
      break;
    }
    hi = j;
    c--;
    j = c == 0 ? 0 : ws->T[(size_t)(c - 1) * P + (hi - 1)];
  }
  int out = 0;
  for (unsigned e = 0; e < m; e++)
    if (ends[e] > starts[e]) cut[out++] = ends[e];
  return out;
}

int mlsh_km1d_cluster(mlsh_km1d *ws, const float *x, const uint64_t *w, size_t n, unsigned k,
                      size_t *end, double *centroid, double *sse, int *exact) {
  if (!ws || n == 0 || k == 0 || k > 256) return MLSH_CZ_EINVAL;
  unsigned m = (size_t)k < n ? k : (unsigned)n;
  *exact = 1;
  double tw = 0, tsum = 0;
  for (size_t i = 0; i < n; i++) {
    tw += (double)w[i];
    tsum += (double)w[i] * x[i];
  }
  double mu = tsum / tw;
  if ((size_t)m == n) { /* every value its own cluster */
    for (size_t i = 0; i < n; i++) {
      end[i] = i + 1;
      centroid[i] = x[i];
    }
    *sse = 0;
    return (int)n;
  }
  size_t P = n;
  int coarse = (size_t)m > MLSH_KM1D_MAX_CELLS / n;
  if (coarse) P = MLSH_KM1D_MAX_CELLS / m;
  int st = reserve(ws, P, m);
  if (st) return st;
  /* Prefix sums at point edges: every value when exact, else the edges of P equal runs. */
  size_t base = n / P, rem = n % P, i = 0;
  ws->W[0] = ws->S[0] = ws->Q[0] = 0;
  for (size_t p = 0; p < P; p++) {
    size_t len = base + (p < rem), stop = i + len;
    double a = ws->W[p], b = ws->S[p], q = ws->Q[p];
    for (; i < stop; i++) {
      double d = (double)x[i] - mu, ww = (double)w[i];
      a += ww;
      b += ww * d;
      q += ww * d * d;
    }
    ws->W[p + 1] = a;
    ws->S[p + 1] = b;
    ws->Q[p + 1] = q;
  }
  size_t cut[256];
  int mc = dp_solve(ws, P, m, cut);
  if (!coarse) {
    layer L = {ws->W, ws->S, ws->Q, ws->PQ};
    double total = 0;
    size_t s = 0;
    for (int c = 0; c < mc; c++) {
      end[c] = cut[c];
      double cw = ws->W[cut[c]] - ws->W[s];
      centroid[c] = (ws->S[cut[c]] - ws->S[s]) / cw + mu;
      total += cost(&L, s, cut[c] - 1);
      s = cut[c];
    }
    *sse = total;
    return mc;
  }
  /* Coarse: run edges -> value indices, then Lloyd steps (never increase the SSE). */
  *exact = 0;
  for (int c = 0; c < mc; c++) {
    size_t p = cut[c];
    end[c] = p * base + (p < rem ? p : rem);
  }
  double cen[256];
  for (int iter = 0; iter < 100; iter++) {
    size_t s = 0;
    for (int c = 0; c < mc; c++) {
      double a = 0, b = 0;
      for (size_t t = s; t < end[c]; t++) {
        a += (double)w[t];
        b += (double)w[t] * ((double)x[t] - mu);
      }
      if (a > 0) cen[c] = b / a;
      else if (iter == 0) cen[c] = (double)x[s < n ? s : n - 1] - mu;
      s = end[c];
    }
    int changed = 0;
    for (int c = 0; c + 1 < mc; c++) {
      double mid = 0.5 * (cen[c] + cen[c + 1]) + mu;
      size_t lo = c ? end[c - 1] : 0, hi = n; /* first index with x > mid */
      while (lo < hi) {
        size_t md = lo + (hi - lo) / 2;
        if ((double)x[md] > mid) hi = md;
        else lo = md + 1;
      }
      if (lo != end[c]) changed = 1;
      end[c] = lo;
    }
    if (!changed) break;
  }
  double total = 0;
  size_t s = 0;
  for (int c = 0; c < mc; c++) {
    double a = 0, b = 0, q = 0;
    for (size_t t = s; t < end[c]; t++) {
      double d = (double)x[t] - mu, ww = (double)w[t];
      a += ww;
      b += ww * d;
      q += ww * d * d;
    }
    centroid[c] = a > 0 ? b / a + mu : cen[c] + mu;
    if (a > 0) total += q - b * b / a;
    s = end[c];
  }
  *sse = total > 0 ? total : 0;
  return mc;
}
