/* constexpr.h — THE decompressor of Core ML compressed weights (every constexpr_* op of iOS16 and
 * iOS18), in plain C with no interpreter or Lua types: the interpreter (interp/materialize.c) and
 * the Lua layer (lua_constexpr.c -> mlsh.model.constexpr: w:values(), mlsh weights, decompress,
 * compare, playbooks) both call it. Inputs are dense float arrays (codes, masks and indices
 * given as their integer values: int4 -8..7, uint4 0..15, mask 0/1; each val's n must equal the
 * product of its shape); outputs are float arrays the caller allocated, every element written.
 * Arithmetic is in double, rounded once to float32 (scale * (q - offset) exactly as a double
 * expression stored as float); mlsh_cx_round then rounds to the output dtype (fp16: nearest
 * even), as Core ML materialises the op's output. Semantics from
 * coremltools' ops/defs/iOS16/constexpr_ops.py and iOS18/compression.py:
 *   affine_dequantize:  out = scale[axis] * (q - zero_point[axis])     (scalar or per-axis)
 *   lut (iOS16):        out[i] = lut[idx_i], idx packed nbits LSB-first, lut of 2^nbits
 *   lut (iOS18):        lut shape = indices rank + [2^nbits, V]; each lut dim divides its indices
 *                       dim (per-block LUTs); V > 1 expands along vector_axis
 *   sparse_to_dense:    out = mask ? next(nonzero_data) : 0
 *   blockwise_shift_scale: out = scale[block] * (data - offset[block])
 *   lut_to_sparse / sparse_blockwise_shift_scale: the same on the mask's nonzero positions.
 * Every function bounds-checks shapes/indices and returns 0 or -1 with the reason in e. */
#ifndef MLSH_CONSTEXPR_H
#define MLSH_CONSTEXPR_H
#include "dtype.h"
#include "err.h"
#include <stddef.h>
#include <stdint.h>

#define MLSH_CX_MAX_RANK 8

typedef struct {
  mlsh_dtype dt;
  int rank;
  int64_t shape[MLSH_CX_MAX_RANK];
  size_t n;
  const float *v;
} mlsh_cx_val;

/* Round v to what an output of dtype dt holds (fp16: to nearest even and back; others unchanged). */
void mlsh_cx_round(float *v, size_t n, mlsh_dtype dt);
int mlsh_cx_affine(const mlsh_cx_val *q, const mlsh_cx_val *zp, const mlsh_cx_val *scale, int64_t axis,
                   float *out, mlsh_err *e);
/* constexpr_cast: out = the source values, rounded to dt. */
void mlsh_cx_cast(const mlsh_cx_val *src, mlsh_dtype dt, float *out);
/* iOS16 LUT: n indices packed at nbits = log2(lutn) in bytes[nbytes]. */
int mlsh_cx_lut16(const uint8_t *bytes, size_t nbytes, const float *lut, size_t lutn, size_t n, float *out, mlsh_err *e);
/* iOS18 LUT: out holds indices->n * V floats; oshape gets the output shape (indices rank). */
int mlsh_cx_lut(const mlsh_cx_val *indices, const mlsh_cx_val *lut, int64_t vector_axis, float *out,
                int64_t *oshape, mlsh_err *e);
int mlsh_cx_sparse(const float *mask, size_t n, const float *nz, size_t nnz, float *out, mlsh_err *e);
/* Unpack an iOS16 bit mask (np.packbits bitorder little) into n 0/1 floats. */
int mlsh_cx_unpack_bits(const uint8_t *bytes, size_t nbytes, unsigned bits, size_t n, float *out, mlsh_err *e);
int mlsh_cx_shift_scale(const mlsh_cx_val *data, const mlsh_cx_val *scale, const mlsh_cx_val *offset, float *out,
                        mlsh_err *e);
/* Sparse forms: mask has the dense shape; nz the values at its ones, in order. out_nz gets nnz. */
int mlsh_cx_sparse_shift_scale(const mlsh_cx_val *mask, const mlsh_cx_val *nz, const mlsh_cx_val *scale,
                               const mlsh_cx_val *offset, float *out_nz, mlsh_err *e);
/* NeuralNetwork quantized WeightParams (linearQuantization, not a constexpr op): out[i] =
 * scale[c] * q[i] + bias[c] with c = i / (q->n / ns) when ns > 1 (else 0); a c past the end
 * reads element 0; no scale reads 1, no bias 0. Fails when ns > q->n. */
int mlsh_cx_nn_linear(const mlsh_cx_val *q, const float *scale, size_t ns, const float *bias, size_t nb, float *out,
                      mlsh_err *e);
/* NeuralNetwork quantized WeightParams codes: n codes of nbits (1..8) each, packed most significant
 * bit first (coremltools' _convert_array_to_nbit_quantized_bytes), unlike MIL's sub-byte types,
 * whose first element sits in the lowest bits. Fails when bytes[nbytes] holds fewer than n codes. */
int mlsh_cx_nn_codes(const uint8_t *bytes, size_t nbytes, unsigned nbits, size_t n, float *out, mlsh_err *e);
/* lut_to_sparse: out_mask (mask->n * V, 0/1, the expanded mask) and out_nz (nnz * V values). */
int mlsh_cx_lut_to_sparse(const mlsh_cx_val *mask, const mlsh_cx_val *nz, const mlsh_cx_val *lut, int64_t vector_axis,
                          float *out_mask, int64_t *oshape, float *out_nz, mlsh_err *e);
#endif
