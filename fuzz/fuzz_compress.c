/* libFuzzer harness: the fp16 compression passes (quantize, prune) over arbitrary fp16 codes and
 * settings, differentially. The pass that sums metrics, the pass that makes none (its codes and
 * mask straight from the fp16 codes, read through a span reader for quantization) and that pass
 * on the portable kernels must all give the same status and the same bytes; any difference
 * aborts. Input: a 6-byte header, then fp16 codes tiled over the tensor (zeros when none):
 *   [0] bit 0 prune (else quantize), bit 1 two threads
 *   [1] quantize: bit 0 4 bits (else 8), bit 1 signed, bit 2 symmetric, bits 3-4 granularity
 *       (per-channel, per-tensor, per-block along the rows); prune: bit 0 threshold (else magnitude)
 *   [2] rows - 1; [3..4] columns - 1 (little-endian, % 1024); [5] block divisor / sparsity */
#include "compress/prune.h"
#include "compress/quantize.h"
#include "dtype.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  const uint16_t *h;
} reader;

static int read_span(void *rctx, size_t i, size_t n, uint16_t *dst) {
  memcpy(dst, ((const reader *)rctx)->h + i, n * sizeof(uint16_t));
  return 0;
}

static void same(const void *a, const void *b, size_t n) {
  if (memcmp(a, b, n) != 0) abort();
}

static void quantize(const uint8_t *hd, const uint16_t *h, size_t rows, size_t cols, unsigned threads) {
  mlsh_quant_opts o;
  memset(&o, 0, sizeof o);
  o.nbits = hd[1] & 1 ? 4 : 8;
  o.is_signed = (hd[1] >> 1) & 1;
  o.symmetric = (hd[1] >> 2) & 1;
  o.rank = 2;
  o.shape[0] = (int64_t)rows, o.shape[1] = (int64_t)cols;
  o.wdtype = MLSH_WD_FP16;
  o.threads = threads;
  size_t d = 1 + hd[5] % 64;
  switch ((hd[1] >> 3) & 3) {
    case 1: o.block[0] = 0, o.block[1] = 0; break;                               /* per tensor */
    case 2: o.block[0] = 1, o.block[1] = cols % d == 0 ? (int64_t)(cols / d) : 0; break; /* per block */
    default: o.block[0] = 1, o.block[1] = 0;                                       /* per channel */
  }
  size_t n = rows * cols, nb = (n * o.nbits + 7) / 8;
  mlsh_quant_info info[3];
  if (mlsh_quantize_check(&o, n, &info[0]) != 0) return;
  size_t ns = info[0].nscale;
  uint8_t *packed = malloc(3 * nb);
  float *scale = malloc(3 * ns * sizeof(float)), *zp = malloc(3 * ns * sizeof(float));
  mlsh_cz_src src = {NULL, h};
  reader r = {h};
  mlsh_mx_reader rd = {read_span, &r}, *rdp = mlsh_quantize_spans(&o, n) ? &rd : NULL;
  mlsh_metrics m;
  int st[3];
  st[0] = mlsh_quantize_pass(&src, NULL, n, &o, packed, scale, zp, &info[0], &m);
  st[1] = mlsh_quantize_pass(&src, rdp, n, &o, packed + nb, scale + ns, zp + ns, &info[1], NULL);
  int was = mlsh_cpu_portable(1);
  st[2] = mlsh_quantize_pass(&src, rdp, n, &o, packed + 2 * nb, scale + 2 * ns, zp + 2 * ns, &info[2], NULL);
  mlsh_cpu_portable(was);
  if (st[0] != st[1] || st[0] != st[2]) abort();
  for (int k = 1; st[0] == 0 && k < 3; k++) {
    same(packed, packed + k * nb, nb);
    same(scale, scale + k * ns, ns * sizeof(float));
    if (info[0].has_zero_point) same(zp, zp + k * ns, ns * sizeof(float));
  }
  free(packed);
  free(scale);
  free(zp);
}

static void prune(const uint8_t *hd, const uint16_t *h, size_t rows, size_t cols, unsigned threads) {
  mlsh_prune_opts o;
  memset(&o, 0, sizeof o);
  o.mode = hd[1] & 1 ? MLSH_PRUNE_THRESHOLD : MLSH_PRUNE_MAGNITUDE;
  o.sparsity = hd[5] / 255.0;
  o.threshold = hd[5] / 64.0;
  o.rank = 2;
  o.shape[0] = (int64_t)rows, o.shape[1] = (int64_t)cols;
  o.wdtype = MLSH_WD_FP16;
  o.threads = threads;
  size_t n = rows * cols, nb = (n + 7) / 8;
  uint8_t *mask = malloc(3 * nb);
  uint16_t *kept = malloc(3 * n * sizeof(uint16_t));
  mlsh_prune_info info[3];
  mlsh_metrics m;
  int st[3];
  st[0] = mlsh_prune_pass(h, n, &o, mask, kept, &info[0], &m);
  st[1] = mlsh_prune_pass(h, n, &o, mask + nb, kept + n, &info[1], NULL);
  int was = mlsh_cpu_portable(1);
  st[2] = mlsh_prune_pass(h, n, &o, mask + 2 * nb, kept + 2 * n, &info[2], NULL);
  mlsh_cpu_portable(was);
  if (st[0] != st[1] || st[0] != st[2]) abort();
  for (int k = 1; st[0] == 0 && k < 3; k++) {
    if (info[k].nnz != info[0].nnz) abort();
    same(&info[k].threshold, &info[0].threshold, sizeof(double));
    same(mask, mask + k * nb, nb);
    same(kept, kept + k * n, info[0].nnz * sizeof(uint16_t));
  }
  free(mask);
  free(kept);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 6) return 0;
  size_t rows = (size_t)data[2] + 1, cols = ((size_t)data[3] | (size_t)data[4] << 8) % 1024 + 1, n = rows * cols;
  const uint8_t *codes = data + 6;
  size_t nc = (size - 6) / 2;
  uint16_t *h = malloc(n * sizeof(uint16_t));
  for (size_t i = 0; i < n; i++) {
    uint16_t v = 0;
    if (nc) memcpy(&v, codes + 2 * (i % nc), 2);
    h[i] = v;
  }
  unsigned threads = data[0] & 2 ? 2 : 1;
  if (data[0] & 1) prune(data, h, rows, cols, threads);
  else quantize(data, h, rows, cols, threads);
  free(h);
  return 0;
}
