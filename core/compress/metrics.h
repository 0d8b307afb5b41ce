/* metrics.h — how far a reconstruction is from the original weights.
 * Contract: with x the original and y the reconstruction (n > 0 each),
 *   snr_db  = 10 log10(sum x^2 / sum (x-y)^2)      (+inf when y == x)
 *   psnr_db = 10 log10(max x^2 / mse), mse = sum (x-y)^2 / n
 *   cosine  = x.y / (|x| |y|)  (1 when both are all zero, 0 when only one is)
 *   max/mean absolute error, and sparsity = fraction of y that is exactly 0.
 * No epsilon terms (coremltools' test helper adds 1e-5 to the signal, which swamps small
 * weights). Sums are double, per fixed chunk of MLSH_MX_CHUNK elements summed in element order,
 * combined in chunk order: thread-count independent. With `signal` set, sum_sq is also
 * computed: sum x^2 over the non-NaN x in one run in element order (exactly a:stats().sum_sq,
 * wstats.h), on a thread of its own beside the chunks; else 0. `signal` is always set: sum x^2
 * as the SNR sums it (per chunk in element order, chunks in order; NaN stays in), at no cost.
 * mlsh_metrics_pass gives the same numbers for a kernel's last pass without a reconstruction
 * array: it reads x from a source (float32 or fp16 bits), has the kernel write y for each batch
 * into a buffer it owns, and sums as mlsh_metrics_compute does (same partials, same order). */
#ifndef MLSH_COMPRESS_METRICS_H
#define MLSH_COMPRESS_METRICS_H
#include "compress/common.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
  size_t n;
  double snr_db, psnr_db, mse, max_abs_err, mean_abs_err, cosine, sparsity, sum_sq, signal;
} mlsh_metrics;

/* 0, or MLSH_CZ_EINVAL (n == 0) / MLSH_CZ_ENOMEM. threads 0 = default. */
int mlsh_metrics_compute(const float *x, const float *y, size_t n, unsigned threads, int signal, mlsh_metrics *m);

/* A kernel's batch: elements [i, i + m) (i a multiple of MLSH_MX_BATCH, m <= MLSH_MX_BATCH,
 * short only at the end), x their source values as floats; write the reconstruction to y[0..m)
 * and the kernel's own outputs for those elements. Called once per batch, from any thread. */
#define MLSH_MX_BATCH 256
typedef void (*mlsh_mx_batch_fn)(void *ctx, size_t i, size_t m, const float *x, float *y);

/* A kernel's preparation of elements [i0, i1) (one task's span: a multiple of
 * MLSH_MX_TASK_SPAN from the start, ending at i0 + MLSH_MX_TASK_SPAN or n), called on the task's
 * thread before its batches: e.g. parameters of the blocks inside, read while they are in cache.
 * span reads those elements: its element k is element i0 + k. */
#define MLSH_MX_TASK_SPAN ((size_t)1 << 19)
typedef void (*mlsh_mx_prep_fn)(void *ctx, size_t i0, size_t i1, const mlsh_cz_src *span);

/* Where a pass can read fp16 elements that are not in memory (a weight file): read(rctx, i, n,
 * dst) copies elements [i, i + n) to dst and returns 0, or nonzero when it cannot. */
typedef struct {
  int (*read)(void *rctx, size_t i, size_t n, uint16_t *dst);
  void *rctx;
} mlsh_mx_reader;

/* Run fn over every batch of src[0..n) on `threads` threads and fill *m as
 * mlsh_metrics_compute(x, y, n, threads, 0, m) would (no element-order sum_sq: `signal` is the
 * sum of squares a caller needs). 0 or MLSH_CZ_EINVAL / MLSH_CZ_ENOMEM. */
int mlsh_metrics_pass(const mlsh_cz_src *src, size_t n, unsigned threads, mlsh_mx_batch_fn fn, void *ctx,
                      mlsh_metrics *m);
/* m may be NULL: the batches run and nothing is summed (a caller that reports no metrics).
 * The same with prep (not NULL) called for each task's span before its batches; with rd (not
 * NULL) src is not read (may be NULL): each task reads its span through rd into a buffer of its worker's, and
 * the batches read that (so the kernel's fn must take its input from x only). Also
 * MLSH_CZ_EREAD when rd fails. With m NULL, fn may be NULL too: then prep alone does the work
 * of each span (a kernel that makes no reconstruction writes its outputs from the span there). */
int mlsh_metrics_pass_prep(const mlsh_cz_src *src, const mlsh_mx_reader *rd, size_t n, unsigned threads,
                           mlsh_mx_prep_fn prep, mlsh_mx_batch_fn fn, void *ctx, mlsh_metrics *m);
#endif
