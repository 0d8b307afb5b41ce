/* pack.c — code/mask packing and sparse gathers (see pack.h). */
#include "compress/pack.h"
#include "compress/threads.h"
#include "dtype.h"
#include <stdlib.h>
#include <string.h>

/* 8 codes of any width end on a byte boundary, so chunks of 8*k codes pack independently. */
#define PACK_CHUNK ((size_t)1 << 20)

typedef struct {
  const uint8_t *codes;
  size_t n;
  unsigned bits;
  uint8_t *out;
} pack_ctx;

static void pack_task(void *p, size_t t, unsigned w) {
  (void)w;
  pack_ctx *c = p;
  size_t i0 = t * PACK_CHUNK, len = c->n - i0 < PACK_CHUNK ? c->n - i0 : PACK_CHUNK;
  mlsh_bitpack(c->codes + i0, len, c->bits, c->out + i0 / 8 * c->bits);
}

void mlsh_pack_codes(const uint8_t *codes, size_t n, unsigned bits, uint8_t *out, unsigned threads) {
  pack_ctx c = {codes, n, bits, out};
  mlsh_parallel_for(mlsh_threads_clamp(threads), (n + PACK_CHUNK - 1) / PACK_CHUNK, pack_task, &c);
}

typedef struct {
  const uint8_t *mask;
  size_t n;
  const void *src;
  void *out;
  size_t elem;
  size_t *offset; /* per chunk: kept entries before it, then after the count pass its count */
} sparse_ctx;

static void mask_pack_task(void *p, size_t t, unsigned w) {
  (void)w;
  sparse_ctx *c = p;
  size_t i0 = t * PACK_CHUNK, i1 = i0 + PACK_CHUNK < c->n ? i0 + PACK_CHUNK : c->n;
  uint8_t *out = (uint8_t *)c->out;
  for (size_t i = i0; i < i1; i += 8) {
    unsigned b = 0;
    for (size_t k = 0; k < 8 && i + k < i1; k++) b |= (unsigned)(c->mask[i + k] != 0) << k;
    out[i >> 3] = (uint8_t)b;
  }
}

void mlsh_pack_mask(const uint8_t *mask, size_t n, uint8_t *out, unsigned threads) {
  sparse_ctx c = {mask, n, NULL, out, 0, NULL};
  mlsh_parallel_for(mlsh_threads_clamp(threads), (n + PACK_CHUNK - 1) / PACK_CHUNK, mask_pack_task, &c);
}

static void count_task(void *p, size_t t, unsigned w) {
  (void)w;
  sparse_ctx *c = p;
  size_t i0 = t * PACK_CHUNK, i1 = i0 + PACK_CHUNK < c->n ? i0 + PACK_CHUNK : c->n, k = 0;
  for (size_t i = i0; i < i1; i++) k += c->mask[i] != 0;
  c->offset[t] = k;
}

/* Branch-free compaction through a small buffer (always write, advance when kept). */
static void gather_task(void *p, size_t t, unsigned w) {
  (void)w;
  sparse_ctx *c = p;
  size_t i0 = t * PACK_CHUNK, i1 = i0 + PACK_CHUNK < c->n ? i0 + PACK_CHUNK : c->n, at = c->offset[t];
  if (c->elem == 4) {
    const float *src = c->src;
    float *out = (float *)c->out, buf[257];
    for (size_t b = i0; b < i1; b += 256) {
      size_t m = i1 - b < 256 ? i1 - b : 256, k = 0;
      for (size_t i = 0; i < m; i++) {
        buf[k] = src[b + i];
        k += c->mask[b + i] != 0;
      }
      memcpy(out + at, buf, k * sizeof(float));
      at += k;
    }
  } else {
    const uint8_t *src = c->src;
    uint8_t *out = (uint8_t *)c->out, buf[257];
    for (size_t b = i0; b < i1; b += 256) {
      size_t m = i1 - b < 256 ? i1 - b : 256, k = 0;
      for (size_t i = 0; i < m; i++) {
        buf[k] = src[b + i];
        k += c->mask[b + i] != 0;
      }
      memcpy(out + at, buf, k);
      at += k;
    }
  }
}

static size_t gather(const void *src, size_t elem, const uint8_t *mask, size_t n, void *out, unsigned threads) {
  size_t chunks = (n + PACK_CHUNK - 1) / PACK_CHUNK, total = 0;
  size_t local[64], *off = chunks <= 64 ? local : malloc(chunks * sizeof(size_t));
  unsigned nt = mlsh_threads_clamp(threads);
  sparse_ctx c = {mask, n, src, out, elem, off};
  if (!off) { /* no memory for the offsets: one sequential pass */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (mask[i]) memcpy((char *)out + elem * k++, (const char *)src + elem * i, elem);
    return k;
  }
  mlsh_parallel_for(nt, chunks, count_task, &c);
  for (size_t t = 0; t < chunks; t++) {
    size_t k = off[t];
    off[t] = total;
    total += k;
  }
  mlsh_parallel_for(nt, chunks, gather_task, &c);
  if (off != local) free(off);
  return total;
}

size_t mlsh_gather_f32(const float *src, const uint8_t *mask, size_t n, float *out, unsigned threads) {
  return gather(src, sizeof(float), mask, n, out, threads);
}

size_t mlsh_gather_u8(const uint8_t *src, const uint8_t *mask, size_t n, uint8_t *out, unsigned threads) {
  return gather(src, 1, mask, n, out, threads);
}

static void apply_task(void *p, size_t t, unsigned w) {
  (void)w;
  sparse_ctx *c = p;
  size_t i0 = t * PACK_CHUNK, i1 = i0 + PACK_CHUNK < c->n ? i0 + PACK_CHUNK : c->n;
  float *x = c->out;
  for (size_t i = i0; i < i1; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    u &= 0u - (uint32_t)(c->mask[i] != 0);
    memcpy(&x[i], &u, 4);
  }
}

void mlsh_mask_apply(float *x, const uint8_t *mask, size_t n, unsigned threads) {
  sparse_ctx c = {mask, n, NULL, x, 4, NULL};
  mlsh_parallel_for(mlsh_threads_clamp(threads), (n + PACK_CHUNK - 1) / PACK_CHUNK, apply_task, &c);
}
