/* dwconv.c — depthwise convolution (see dwconv.h).
 * Scratch layout per input row (depth d, height h): s2 phases of `wph` floats; phase p, index j
 * holds input column j*s2 + p - pb2 (0 outside the image). Output column ow of tap kw reads
 * padded column ow*s2 + kw*d2, i.e. phase (kw*d2) % s2 at index ow + (kw*d2) / s2: contiguous in
 * ow. Rows outside the image are skipped tap by tap (they would contribute zeros). */
#include "dwconv.h"
#include "dw512.h"
#include "pool.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

typedef void (*row_fn)(float *o, size_t ow, const float *const *p, const float *w, size_t nt, float b);

/* o[i] = b + sum_t w[t] * p[t][i], each sum in tap order. */
static void row_c(float *o, size_t ow, const float *const *p, const float *w, size_t nt, float b) {
  for (size_t i = 0; i < ow; i++) {
    float acc = b;
    for (size_t t = 0; t < nt; t++) acc += w[t] * p[t][i];
    o[i] = acc;
  }
}

#ifdef HAVE_X86
/* Same sums, 32 then 8 columns at a time; the last < 8 with masked loads. fma rounds
 * once where the C loop rounds twice: differences stay within fp32 accumulation error. */
__attribute__((target("avx2,fma"))) static void row_avx2(float *o, size_t ow, const float *const *p, const float *w,
                                                        size_t nt, float b) {
  size_t i = 0;
  __m256 bv = _mm256_set1_ps(b);
  for (; i + 32 <= ow; i += 32) {
    __m256 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
    for (size_t t = 0; t < nt; t++) {
      __m256 wv = _mm256_broadcast_ss(w + t);
      const float *q = p[t] + i;
      a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(q), a0);
      a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(q + 8), a1);
      a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(q + 16), a2);
      a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(q + 24), a3);
    }
    _mm256_storeu_ps(o + i, a0);
    _mm256_storeu_ps(o + i + 8, a1);
    _mm256_storeu_ps(o + i + 16, a2);
    _mm256_storeu_ps(o + i + 24, a3);
  }
  for (; i + 8 <= ow; i += 8) {
    __m256 a = bv;
    for (size_t t = 0; t < nt; t++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + t), _mm256_loadu_ps(p[t] + i), a);
    _mm256_storeu_ps(o + i, a);
  }
  if (i < ow) { /* the last < 8: the same sums in a full vector, then only those stored */
    int left = (int)(ow - i);
    __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 a = bv;
    for (size_t t = 0; t < nt; t++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + t), _mm256_maskload_ps(p[t] + i, m), a);
    float tmp[8];
    _mm256_storeu_ps(tmp, a);
    memcpy(o + i, tmp, (size_t)left * sizeof *o);
  }
}
#endif

/* d[i] = s[2 i] for i < n (a stride-2 row's phase), reading no further than s[2 (n - 1) + 1]. */
static void every2_c(const float *s, float *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = s[2 * i];
}

#ifdef HAVE_X86
/* 8 at a time from 16 loaded (shuffle the even lanes, then put the 128-bit halves in order);
 * a group runs only when an element follows it, so the 16th load stays inside the data. */
__attribute__((target("avx2"))) static void every2_avx2(const float *s, float *d, size_t n) {
  size_t i = 0;
  for (; i + 9 <= n; i += 8) {
    __m256 a = _mm256_loadu_ps(s + 2 * i), b = _mm256_loadu_ps(s + 2 * i + 8);
    __m256 e = _mm256_shuffle_ps(a, b, 0x88); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    _mm256_storeu_ps(d + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xd8)));
  }
  for (; i < n; i++) d[i] = s[2 * i];
}
#endif

typedef void (*every2_fn)(const float *s, float *d, size_t n);
static every2_fn every2 = every2_c;

static row_fn pick_row(void) {
#ifdef HAVE_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !getenv("MLSH_NO_SIMD")) {
    every2 = every2_avx2;
    return row_avx2;
  }
#endif
  return row_c;
}



typedef struct {
  const float *X, *W, *bias;
  float *O;
  const it_window *g;
  size_t C, wph, kn, base;
  float **scratch; /* per worker: rows * s2 * wph floats (padded to `base`), kn pointers, kn weights */
  row_fn row;
  it_act *post;
  int plane; /* 2-D, stride 1, pads >= 0: one row call over the padded plane (plane_task) */
  const it_dw512 *direct; /* the AVX-512 path's plan (dw512.h), NULL when it does not apply */
} dw_job;

/* q in [lo, hi) reads input column q*s2 + p - pb2 inside [0, W): zeros around a strided copy. */
static void fill_rows(const dw_job *j, const float *x, float *sc) {
  const it_window *g = j->g;
  size_t rows = (size_t)(g->in[0] * g->in[1]), s2 = (size_t)g->s[2], W = (size_t)g->in[2];
  for (size_t p = 0; p < s2; p++) {
    int64_t first = g->pb[2] - (int64_t)p; /* q*s2 >= first */
    int64_t lo = first <= 0 ? 0 : (first + (int64_t)s2 - 1) / (int64_t)s2;
    int64_t hi = ((int64_t)W + first + (int64_t)s2 - 1) / (int64_t)s2;
    if (hi < 0) hi = 0;
    if (lo > (int64_t)j->wph) lo = (int64_t)j->wph;
    if (hi > (int64_t)j->wph) hi = (int64_t)j->wph;
    if (hi < lo) hi = lo;
    for (size_t r = 0; r < rows; r++) {
      const float *xr = x + r * W;
      float *d = sc + (r * s2 + p) * j->wph;
      memset(d, 0, (size_t)lo * sizeof *d);
      if (s2 == 1) memcpy(d + lo, xr + (lo - first), (size_t)(hi - lo) * sizeof *d);
      else if (s2 == 2 && hi > lo) every2(xr + (lo * 2 - first), d + lo, (size_t)(hi - lo));
      else
        for (int64_t q = lo; q < hi; q++) d[q] = xr[q * (int64_t)s2 - first];
      memset(d + hi, 0, (j->wph - (size_t)hi) * sizeof *d);
    }
  }
}

/* Stride 1, 2-D: the channel's rows go into scratch with their zero rows above and below, so
 * output (oh, ow) reads padded row oh + kh d1, column ow + kw d2 for every tap. Read as one long
 * row of pitch wph, the whole plane is then a single row call of (OH - 1) wph + OW values (the
 * wph - OW values between output rows are computed and dropped), instead of OH short calls;
 * each output is the same sum in the same tap order (the border rows' taps add exact zeros). */
static void plane_task(const dw_job *j, size_t nc, float *sc, const float **taps, float *tw) {
  const it_window *g = j->g;
  size_t wph = j->wph, H = (size_t)g->in[1], pbh = (size_t)g->pb[1], peh = (size_t)g->pe[1];
  size_t OH = (size_t)g->out[1], OW = (size_t)g->out[2], ch = nc % j->C, kn = j->kn;
  size_t k1 = (size_t)g->k[1], k2 = (size_t)g->k[2], d1 = (size_t)g->d[1], d2 = (size_t)g->d[2];
  float *rows = sc, *tmp = sc + (pbh + H + peh) * wph;
  memset(rows, 0, pbh * wph * sizeof *rows);
  fill_rows(j, j->X + nc * H * (size_t)g->in[2], rows + pbh * wph);
  memset(rows + (pbh + H) * wph, 0, peh * wph * sizeof *rows);
  for (size_t kh = 0, t = 0; kh < k1; kh++)
    for (size_t kw = 0; kw < k2; kw++, t++) {
      taps[t] = rows + kh * d1 * wph + kw * d2;
      tw[t] = j->W[ch * kn + t];
    }
  size_t n = (OH - 1) * wph + OW;
  j->row(tmp, n, taps, tw, kn, j->bias ? j->bias[ch] : 0.0f);
  float *o = j->O + nc * OH * OW;
  for (size_t oh = 0; oh < OH; oh++) memcpy(o + oh * OW, tmp + oh * wph, OW * sizeof *o);
  if (j->post) it_act_apply(j->post, o, OH * OW);
}

#define KOFF 16
static void channel_task(void *ctx, size_t nc, unsigned worker) {
  const dw_job *j = ctx;
  const it_window *g = j->g;
  size_t ch = nc % j->C, rows = (size_t)(g->in[0] * g->in[1]), s2 = (size_t)g->s[2];
  size_t ind = rows * (size_t)g->in[2], OW = (size_t)g->out[2];
  if (j->direct) {
    it_dw512_plane(j->X + nc * ind, j->W + ch * j->kn, j->O + nc * (size_t)(g->out[1] * OW), j->bias ? j->bias[ch] : 0.0f,
                   j->direct, j->post, j->scratch[worker]);
    return;
  }
  float *sc = j->scratch[worker];
  const float **taps = (const float **)(void *)(sc + j->base);
  float *tw = (float *)(void *)(taps + j->kn);
  if (j->plane) {
    plane_task(j, nc, sc, taps, tw);
    return;
  }
  const float *w = j->W + ch * j->kn;
  float *o = j->O + nc * (size_t)(g->out[0] * g->out[1]) * OW, *o0 = o;
  float b = j->bias ? j->bias[ch] : 0.0f;
  fill_rows(j, j->X + nc * ind, sc);
  size_t koff[KOFF]; /* tap kw's offset in a row's phase-split scratch (no division per row) */
  for (int64_t kw = 0; kw < g->k[2] && kw < KOFF; kw++) {
    size_t off = (size_t)(kw * g->d[2]);
    koff[kw] = (off % s2) * j->wph + off / s2;
  }
  for (int64_t od = 0; od < g->out[0]; od++)
    for (int64_t oh = 0; oh < g->out[1]; oh++, o += OW) {
      size_t nt = 0;
      for (int64_t kd = 0; kd < g->k[0]; kd++) {
        int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0];
        if (id < 0 || id >= g->in[0]) continue;
        for (int64_t kh = 0; kh < g->k[1]; kh++) {
          int64_t ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
          if (ih < 0 || ih >= g->in[1]) continue;
          const float *row = sc + (size_t)(id * g->in[1] + ih) * s2 * j->wph;
          const float *wr = w + (size_t)((kd * g->k[1] + kh) * g->k[2]);
          for (int64_t kw = 0; kw < g->k[2]; kw++) {
            size_t off = (size_t)(kw * g->d[2]);
            taps[nt] = row + (kw < KOFF ? koff[kw] : (off % s2) * j->wph + off / s2);
            tw[nt++] = wr[kw];
          }
        }
      }
      j->row(o, OW, taps, tw, nt, b);
    }
  if (j->post) it_act_apply(j->post, o0, (size_t)(g->out[0] * g->out[1]) * OW); /* the channel's plane, in cache */
}

static void channel_range(const dw_job *j, size_t lo, size_t hi) {
  for (size_t nc = lo; nc < hi; nc++) channel_task((void *)j, nc, 0);
}

typedef struct {
  const dw_job *j;
  size_t n, per;
} dw_runs;

static void runs_task(void *ctx, size_t t, unsigned worker) {
  const dw_runs *r = ctx;
  size_t lo = t * r->per, hi = lo + r->per < r->n ? lo + r->per : r->n;
  for (size_t nc = lo; nc < hi; nc++) channel_task((void *)r->j, nc, worker);
}

int it_depthwise(const float *X, const float *W, const float *bias, float *O, const it_window *g, size_t N, size_t C,
                 it_act *post) {
  static row_fn row;
  if (!row) row = pick_row();
  size_t kn = (size_t)(g->k[0] * g->k[1] * g->k[2]), s2 = (size_t)g->s[2];
  size_t wph = (size_t)g->out[2] + (size_t)((g->k[2] - 1) * g->d[2]) / s2;
  size_t ptr_floats = (sizeof(const float *) + sizeof(float) - 1) / sizeof(float), base, floats;
  /* strides come from the file: a scratch size that overflows is refused, not wrapped */
  if (__builtin_mul_overflow((size_t)(g->in[0] * g->in[1]), s2, &base) || __builtin_mul_overflow(base, wph, &base) ||
      base > ((size_t)1 << 40) || kn > ((size_t)1 << 30))
    return -1;
  int plane = g->in[0] == 1 && g->k[0] == 1 && g->s[1] == 1 && s2 == 1 && g->pb[1] >= 0 && g->pe[1] >= 0 &&
              g->pb[2] >= 0 && g->out[1] >= 1 && g->out[2] >= 1 &&
              g->out[1] == g->in[1] + g->pb[1] + g->pe[1] - (g->k[1] - 1) * g->d[1];
  if (plane) { /* padded rows, then the (OH - 1) wph + OW plane: (pb + H + pe + OH) rows of wph */
    size_t rows = (size_t)(g->pb[1] + g->in[1] + g->pe[1] + g->out[1]);
    if (__builtin_mul_overflow(rows, wph, &base) || base > ((size_t)1 << 40)) return -1;
  }
  it_dw512 *direct = NULL;
  if (it_dw512_new(g, &direct) != 0) return -1;
  base = (base + 3) & ~(size_t)3; /* pointer-aligned */
  floats = base + kn * (ptr_floats + 1);
  unsigned nt = it_threads();
  if ((size_t)(g->out[0] * g->out[1] * g->out[2]) * N * C * kn < 65536) nt = 1;
  if (nt > N * C) nt = (unsigned)(N * C);
  float *scratch[MLSH_MAX_THREADS] = {0};
  int ok = 1;
  if (direct) floats = it_dw512_scratch(direct);
  for (unsigned w = 0; w < nt && floats; w++) ok = ok && (scratch[w] = malloc(floats * sizeof(float))) != NULL;
  if (ok) {
    dw_job j = {X, W, bias, O, g, C, wph, kn, base, scratch, row, post, plane, direct};
    if (nt <= 1) channel_range(&j, 0, N * C);
    else { /* runs of channels: one task per channel made the threads fight over the task counter */
      dw_runs r = {&j, N * C, (N * C + nt * 4 - 1) / (nt * 4)};
      it_parallel_for(nt, (N * C + r.per - 1) / r.per, runs_task, &r);
    }
  }
  for (unsigned w = 0; w < nt; w++) free(scratch[w]);
  it_dw512_free(direct);
  return ok ? 0 : -1;
}
