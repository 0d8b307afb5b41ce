/* distinct.c — distinct values by fp16 histogram or radix sort (see distinct.h). */
#include "compress/distinct.h"
#include "dtype.h"
#include <stdlib.h>

void mlsh_distinct_init(mlsh_distinct *d) {
  memset(d, 0, sizeof *d);
  mlsh_cz_cpu cpu;
  mlsh_cz_cpu_init(&cpu);
  d->bits16 = cpu.bits16;
}

void mlsh_distinct_free(mlsh_distinct *d) {
  free(d->val); free(d->cnt); free(d->key); free(d->hist); free(d->tmp); free(d->tmp2);
  memset(d, 0, sizeof *d);
}

static int reserve_out(mlsh_distinct *d, size_t n) {
  if (n <= d->cap) return MLSH_CZ_OK;
  if (n > SIZE_MAX / sizeof(uint64_t)) return MLSH_CZ_ENOMEM;
  float *v = realloc(d->val, n * sizeof(float));
  if (!v) return MLSH_CZ_ENOMEM;
  d->val = v;
  uint64_t *c = realloc(d->cnt, n * sizeof(uint64_t));
  if (!c) return MLSH_CZ_ENOMEM;
  d->cnt = c;
  uint16_t *k = realloc(d->key, n * sizeof(uint16_t));
  if (!k) return MLSH_CZ_ENOMEM;
  d->key = k;
  d->cap = n;
  return MLSH_CZ_OK;
}

void mlsh_hist16_add(mlsh_fp16_bits_fn bits, uint32_t *hist, const float *x, size_t n, unsigned *kmin, unsigned *kmax) {
  unsigned lo = *kmin, hi = *kmax;
  uint16_t h[256];
  for (size_t b = 0; b < n; b += 256) {
    size_t m = n - b < 256 ? n - b : 256;
    bits(x + b, h, m); /* exact: the caller guarantees fp16 values */
    for (size_t i = 0; i < m; i++) {
      unsigned k = mlsh_fp16_key(h[i]);
      hist[k]++;
      lo = k < lo ? k : lo;
      hi = k > hi ? k : hi;
    }
  }
  *kmin = lo;
  *kmax = hi;
}

int mlsh_distinct_from_hist(mlsh_distinct *d, uint32_t *hist, unsigned kmin, unsigned kmax) {
  d->n = 0;
  if (kmin > kmax) return MLSH_CZ_OK;
  size_t cnt = 0;
  for (unsigned k = kmin; k <= kmax; k++) cnt += hist[k] != 0;
  int st = reserve_out(d, cnt);
  if (st) return st;
  size_t j = 0;
  for (unsigned k = kmin; k <= kmax; k++) {
    if (!hist[k]) continue;
    d->key[j] = (uint16_t)k;
    d->val[j] = mlsh_fp16_to_f32(mlsh_fp16_unkey((uint16_t)k));
    d->cnt[j] = hist[k];
    hist[k] = 0;
    j++;
  }
  d->n = j;
  return MLSH_CZ_OK;
}

int mlsh_distinct_fp16(mlsh_distinct *d, const float *x, const mlsh_runs *r) {
  if (!d->hist) {
    d->hist = calloc(MLSH_FP16_KEYS, sizeof(uint32_t));
    if (!d->hist) return MLSH_CZ_ENOMEM;
  }
  unsigned kmin = MLSH_FP16_KEYS, kmax = 0;
  for (size_t t = 0; t < r->nruns; t++) mlsh_hist16_add(d->bits16, d->hist, x + r->offset + t * r->stride, r->runlen, &kmin, &kmax);
  return mlsh_distinct_from_hist(d, d->hist, kmin, kmax);
}

/* Order-preserving unsigned key of a float; -0 was already turned into +0. */
static inline uint32_t fkey(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u & 0x80000000u ? ~u : (u | 0x80000000u);
}
static inline float funkey(uint32_t k) {
  uint32_t u = k & 0x80000000u ? (k & 0x7fffffffu) : ~k;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

int mlsh_distinct_sort(mlsh_distinct *d, const float *x, const mlsh_runs *r) {
  size_t n = mlsh_runs_count(r);
  d->n = 0;
  if (n == 0) return MLSH_CZ_OK;
  if (n > d->tmpcap) {
    if (n > SIZE_MAX / sizeof(uint32_t)) return MLSH_CZ_ENOMEM;
    uint32_t *a = realloc(d->tmp, n * sizeof(uint32_t));
    if (!a) return MLSH_CZ_ENOMEM;
    d->tmp = a;
    uint32_t *b = realloc(d->tmp2, n * sizeof(uint32_t));
    if (!b) return MLSH_CZ_ENOMEM;
    d->tmp2 = b;
    d->tmpcap = n;
  }
  uint32_t *a = d->tmp, *b = d->tmp2;
  size_t j = 0;
  for (size_t t = 0; t < r->nruns; t++) {
    const float *p = x + r->offset + t * r->stride;
    for (size_t i = 0; i < r->runlen; i++) a[j++] = fkey(p[i] == 0.0f ? 0.0f : p[i]);
  }
  /* LSD radix sort, 3 passes of 11 bits; a pass whose digit is constant is skipped. */
  static const unsigned shift[3] = {0, 11, 22};
  size_t count[2048];
  for (int pass = 0; pass < 3; pass++) {
    memset(count, 0, sizeof count);
    unsigned s = shift[pass];
    for (size_t i = 0; i < n; i++) count[(a[i] >> s) & 2047u]++;
    if (count[(a[0] >> s) & 2047u] == n) continue;
    size_t sum = 0;
    for (unsigned v = 0; v < 2048; v++) {
      size_t c = count[v];
      count[v] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++) b[count[(a[i] >> s) & 2047u]++] = a[i];
    uint32_t *t = a;
    a = b;
    b = t;
  }
  size_t distinct = 1;
  for (size_t i = 1; i < n; i++) distinct += a[i] != a[i - 1];
  int st = reserve_out(d, distinct);
  if (st) return st;
  size_t k = 0;
  d->val[0] = funkey(a[0]);
  d->cnt[0] = 1;
  for (size_t i = 1; i < n; i++) {
    if (a[i] == a[i - 1]) d->cnt[k]++;
    else {
      k++;
      d->val[k] = funkey(a[i]);
      d->cnt[k] = 1;
    }
  }
  d->n = distinct;
  return MLSH_CZ_OK;
}
