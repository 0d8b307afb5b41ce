/* prune.h — weight pruning as coremltools' prune_weights (threshold, magnitude, block, n:m).
 * Contract: writes the dense pruned tensor (input rounded to the weight dtype, pruned entries 0)
 * and a 0/1 byte mask of its non-zeros (entries that were already 0 are 0 in the mask too).
 *   threshold — |w| <= t pruned, t cast to the weight dtype first (numpy's weak python float).
 *   magnitude — q = 100*sparsity; q == 100 prunes all, q == 0 nothing, else every |w| <= the
 *               linear-interpolation q-th percentile of |w| is pruned (ties pruned, so the
 *               result can be sparser than asked). The percentile follows NumPy 1.x: indices
 *               and interpolation in float64, (b - a) in the weight dtype, and the threshold
 *               cast to the weight dtype for the comparison (value-based casting). NumPy >= 2
 *               computes it in the weight dtype instead (and fails for fp16 tensors of more than
 *               65,504 elements, numpy#29003), so results can differ when the threshold falls
 *               within rounding of the next magnitude.
 *   block     — as magnitude, on scores = L2 norm of each run of block_size consecutive channels
 *               along `dim` (0 or 1) at each other position (zero-padded at the end), summed in
 *               channel order with weight-dtype rounding. block_size > 1; block_size > C/2 ->
 *               MLSH_CZ_ESKIP.
 *   n:m       — along `dim`, in each run of m consecutive channels (the last one zero-padded) the
 *               n smallest |w| are pruned; ties go to the lower position (a stable argsort, which
 *               is what numpy's insertion sort gives for m <= 16). m > C/2 -> MLSH_CZ_ESKIP.
 * Block and n:m need rank >= 2. Non-finite input is refused. Thread-count independent. */
#ifndef MLSH_COMPRESS_PRUNE_H
#define MLSH_COMPRESS_PRUNE_H
#include "compress/common.h"
#include "compress/metrics.h"

typedef enum { MLSH_PRUNE_THRESHOLD = 0, MLSH_PRUNE_MAGNITUDE, MLSH_PRUNE_BLOCK, MLSH_PRUNE_NM } mlsh_prune_mode;

typedef struct {
  mlsh_prune_mode mode;
  double threshold;  /* threshold mode */
  double sparsity;   /* magnitude / block: target in [0, 1] */
  size_t block_size; /* block mode */
  unsigned n, m;     /* n:m mode: 0 <= n <= m, m >= 1 */
  int dim;           /* block / n:m: 0 or 1 */
  int rank;
  int64_t shape[MLSH_CZ_MAX_RANK];
  mlsh_wdtype wdtype;
  unsigned threads; /* 0 = default */
} mlsh_prune_opts;

typedef struct {
  size_t nnz;       /* non-zeros left */
  double threshold; /* the value compared against (|w| or block score <= it is pruned); NaN for n:m */
} mlsh_prune_info;

int mlsh_prune_check(const mlsh_prune_opts *o, size_t n);

/* Prune x[0..n) into out (n floats) and mask (n bytes). Returns 0 or a negative status. */
int mlsh_prune(const float *x, size_t n, const mlsh_prune_opts *o, float *out, uint8_t *mask, mlsh_prune_info *info);

/* Magnitude or threshold pruning of fp16 bit patterns h[0..n) read in place (a weight file's
 * blob; other modes or dtypes: MLSH_CZ_EINVAL, the caller takes the float path). The same
 * threshold and mask as mlsh_prune, without the dense tensor: mask gets the mask packed as uint1
 * (ceil(n/8) bytes, as mlsh_pack_mask), kept the fp16 codes of the kept entries in order (room
 * for n), and *m the metrics of the pruned tensor, exactly as mlsh_metrics_compute(x, out, n,
 * threads, 1, m); m may be NULL (no metrics: the mask then comes from comparing the codes, with
 * no pruned tensor). Implemented in prune16.c. */
int mlsh_prune_pass(const uint16_t *h, size_t n, const mlsh_prune_opts *o, uint8_t *mask, uint16_t *kept,
                    mlsh_prune_info *info, mlsh_metrics *m);
#endif
