/* quantize.h — linear weight quantization, bit-exact with coremltools'
 * compute_qparams_by_dtype / quantize_weight_by_dtype / dequantize_by_scale_and_zp.
 * Contract: block[a] is the block size along axis a (0 = the whole axis), so per-tensor is all 0,
 * per-channel is 1 on the channel axis, per-block is 1 on the output axis and B on the input
 * axis; every block size divides its dimension. Scale shape = dim/block (1 for 0) per axis.
 * Per block, with mn/mx its min/max (weights first rounded to the weight dtype):
 *   symmetric: lo = -max(|mn|,|mx|), hi = -lo;  affine: lo = min(0, mn), hi = max(0, mx)
 *   scale = (hi - lo) / (qmax - qmin)                       (rounded in the weight dtype)
 *   zp    = none (symmetric signed) | qmax/2 (symmetric unsigned)
 *         | clip(round((qmin*hi - qmax*lo) / (hi - lo)), qmin, qmax) (affine)
 *   q     = clip(round_half_even(w / scale) + zp, qmin, qmax); recon = (q - zp) * scale.
 * Ranges: signed [-2^(b-1), 2^(b-1)-1], symmetric signed drops the minimum; unsigned [0, 2^b-1],
 * symmetric unsigned drops the maximum. numpy's NaN -> int cast (0/0 in an all-zero block) gives
 * 0, as on x86. Non-finite input is refused. The caller owns every buffer. */
#ifndef MLSH_COMPRESS_QUANTIZE_H
#define MLSH_COMPRESS_QUANTIZE_H
#include "compress/common.h"
#include "compress/metrics.h"

typedef struct {
  unsigned nbits; /* 4 or 8 */
  int is_signed;
  int symmetric;
  int rank;
  int64_t shape[MLSH_CZ_MAX_RANK];
  int64_t block[MLSH_CZ_MAX_RANK]; /* 0 = whole axis */
  mlsh_wdtype wdtype;
  unsigned threads; /* 0 = default */
} mlsh_quant_opts;

typedef struct {
  int qmin, qmax;
  int has_zero_point; /* 0 only for symmetric signed */
  size_t nscale;      /* entries of scale / zero point */
  int64_t scale_shape[MLSH_CZ_MAX_RANK];
} mlsh_quant_info;

/* Validate o for n elements and fill info. 0 or MLSH_CZ_EINVAL. */
int mlsh_quantize_check(const mlsh_quant_opts *o, size_t n, mlsh_quant_info *info);

/* Quantize x[0..n). Caller buffers: raw (n bytes: each code's low nbits, two's complement for
 * signed), codes (n floats holding the code values, or NULL), scale (nscale), zero_point
 * (nscale, written when has_zero_point; may be NULL otherwise), recon (n).
 * Returns 0 or a negative mlsh_cz_status. */
int mlsh_quantize(const float *x, size_t n, const mlsh_quant_opts *o, uint8_t *raw, float *codes, float *scale,
                  float *zero_point, float *recon, mlsh_quant_info *info);

/* The same from a source (a weight file's fp16 blob read in place), without the per-element
 * arrays: packed (ceil(n*nbits/8) bytes) gets the codes packed LSB-first, as mlsh_pack_codes
 * packs raw, and *m the metrics of the reconstruction against the source, exactly as
 * mlsh_metrics_compute(source, recon, n, threads, 0, m) gives them. With rd (not NULL) the
 * elements are read through it span by span instead of from src (see mlsh_metrics_pass_prep):
 * only when mlsh_quantize_spans(o, n), else MLSH_CZ_EINVAL. m may be NULL (no metrics): then,
 * for an fp16 source whose blocks are runs, each span's codes are made straight from its fp16
 * codes, with no reconstruction; the same packed bytes, scales and zero points either way. */
int mlsh_quantize_spans(const mlsh_quant_opts *o, size_t n);
int mlsh_quantize_pass(const mlsh_cz_src *src, const mlsh_mx_reader *rd, size_t n, const mlsh_quant_opts *o,
                       uint8_t *packed, float *scale, float *zero_point, mlsh_quant_info *info, mlsh_metrics *m);

/* The signed value of a raw code. */
static inline int mlsh_quant_code_value(uint8_t raw, unsigned nbits, int is_signed) {
  int v = raw & ((1 << nbits) - 1);
  return is_signed && (v >> (nbits - 1)) ? v - (1 << nbits) : v;
}
#endif
