/* palettize.h — weight palettization (LUT + n-bit indices) as coremltools' palettize_weights.
 * Contract: the tensor (row-major, `shape`) is cut into groups of `group_size` consecutive
 * channels along `axis` (group_size 0 = one group, per-tensor); each group gets its own LUT of
 * 2^nbits entries, unused entries 0, ascending for kmeans/unique. Modes:
 *   kmeans  — optimal 1-D k-means over the group's distinct values weighted by counts (what
 *             coremltools' kmeans1d path computes; its sklearn path for fp32/small tensors is a
 *             heuristic, ours stays optimal);
 *   uniform — lut[k] = min + k*(max-min)/(2^n-1), idx = round((w-min)/(max-min)*(2^n-1));
 *   unique  — lut = the distinct values; nbits = smallest of 1,2,3,4,6,8 that holds every group.
 * With per_channel_scale, s = max|w| over `axis` (one per remaining position, 0 -> 1), the
 * tensor w/s is palettized and reconstructed = lut[idx] * s. Inputs are first rounded to the
 * weight dtype and all arithmetic rounds like numpy in that dtype (common.h). Non-finite input
 * is refused. Results do not depend on the thread count. The caller owns every buffer. */
#ifndef MLSH_COMPRESS_PALETTIZE_H
#define MLSH_COMPRESS_PALETTIZE_H
#include "compress/common.h"
#include "compress/metrics.h"

typedef enum { MLSH_PAL_KMEANS = 0, MLSH_PAL_UNIFORM, MLSH_PAL_UNIQUE } mlsh_pal_mode;

typedef struct {
  mlsh_pal_mode mode;
  unsigned nbits; /* 1,2,3,4,6,8 for kmeans/uniform; 0 for unique */
  int rank;
  int64_t shape[MLSH_CZ_MAX_RANK];
  int axis;          /* channel axis, 0..rank-1 */
  size_t group_size; /* channels per LUT, divides shape[axis]; 0 = per tensor */
  int per_channel_scale;
  mlsh_wdtype wdtype;
  unsigned threads;  /* 0 = default */
  int force_sort;    /* take the sort path even for fp16 data (tests compare both paths) */
} mlsh_pal_opts;

typedef struct {
  unsigned nbits; /* the width used (unique picks it) */
  size_t groups;  /* LUT count */
  int exact;      /* 0 if some group was too large for the exact k-means (never for fp16) */
} mlsh_pal_info;

/* Validate o against n elements; on success *groups = LUT count and, if pcs_count is not NULL,
 * *pcs_count = entries of the per-channel scale (n / shape[axis]). */
int mlsh_palettize_check(const mlsh_pal_opts *o, size_t n, size_t *groups, size_t *pcs_count);

/* Palettize x[0..n). Caller buffers: lut (groups * 256 floats; on return LUT g is at
 * lut + g * 2^nbits), codes (n), recon (n), scale (pcs_count floats, used only with
 * per_channel_scale; may be NULL otherwise). Returns 0 or a negative mlsh_cz_status. */
int mlsh_palettize(const float *x, size_t n, const mlsh_pal_opts *o, float *lut, uint8_t *codes,
                   float *recon, float *scale, mlsh_pal_info *info);

/* One LUT over fp16 bit patterns h[0..n) read in place (a weight file's blob): per tensor, no
 * per-channel scale, weight dtype fp16 (else MLSH_CZ_EINVAL; the caller takes the float path).
 * Writes the LUT (stride 2^nbits as above), the codes packed LSB-first into packed
 * (ceil(n*nbits/8) bytes, as mlsh_pack_codes packs mlsh_palettize's codes) and *m the metrics
 * of the reconstruction, exactly as mlsh_metrics_compute(x, recon, n, threads, 1, m). */
int mlsh_palettize_pass(const uint16_t *h, size_t n, const mlsh_pal_opts *o, float *lut, uint8_t *packed,
                        mlsh_pal_info *info, mlsh_metrics *m);
#endif
