/* dtype.h — element types mlsh reads and writes, and conversion to/from float32.
 * Contract: every decoder is told the byte length of its source and refuses (returns -1) when
 * `n` elements of `dt` do not fit; nothing here allocates. Sub-byte types are bit-packed LSB
 * first (element i at bits [i*b, i*b+b) of the little-endian stream), as Core ML's blob format
 * and constexpr ops lay them out. int4 is two's complement in 4 bits. */
#ifndef MLSH_DTYPE_H
#define MLSH_DTYPE_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
  MLSH_DT_INVALID = 0,
  MLSH_DT_BOOL, MLSH_DT_FP16, MLSH_DT_FP32, MLSH_DT_FP64, MLSH_DT_BF16,
  MLSH_DT_INT4, MLSH_DT_INT8, MLSH_DT_INT16, MLSH_DT_INT32, MLSH_DT_INT64,
  MLSH_DT_UINT1, MLSH_DT_UINT2, MLSH_DT_UINT3, MLSH_DT_UINT4, MLSH_DT_UINT6,
  MLSH_DT_UINT8, MLSH_DT_UINT16, MLSH_DT_UINT32, MLSH_DT_UINT64,
  MLSH_DT_FP8E4M3, MLSH_DT_FP8E5M2,
  MLSH_DT_COUNT
} mlsh_dtype;

/* "fp16", "int4", ... <-> enum; unknown names give MLSH_DT_INVALID. */
const char *mlsh_dtype_name(mlsh_dtype dt);
mlsh_dtype mlsh_dtype_from_name(const char *name);
unsigned mlsh_dtype_bits(mlsh_dtype dt);             /* 0 for invalid */
int mlsh_dtype_is_float(mlsh_dtype dt);
/* Bytes that n packed elements take: ceil(n*bits/8); SIZE_MAX on overflow. */
size_t mlsh_dtype_nbytes(mlsh_dtype dt, size_t n);

float mlsh_fp16_to_f32(uint16_t h);
uint16_t mlsh_f32_to_fp16(float f);                  /* round to nearest even */
float mlsh_bf16_to_f32(uint16_t h);

/* CPU support (CPUID, and XGETBV: the OS saves YMM state) for AVX + F16C, the half-precision
 * conversions; *avx2 tells AVX2. MLSH_NO_F16C=1 forces 0 (the portable code, which the tests
 * compare with). Ask once per call of a kernel, not per element: CPUID can trap in a VM. */
int mlsh_cpu_f16c(int *avx2);
/* From now on mlsh_cpu_f16c answers 0 (on != 0) or asks the CPU again (0), for the whole
 * process: the portable kernels, to compare or time them. Returns the previous setting. */
int mlsh_cpu_portable(int on);
/* Decode n elements of dt from src (srclen bytes) into out. 0 on success, -1 if too short.
 * fp16 decodes 8 at a time with F16C when the CPU has it; bit-exact with mlsh_fp16_to_f32. From
 * 1M elements fp16 is decoded on mlsh_threads_default() threads (each writes its own range). */
int mlsh_decode_f32(const void *src, size_t srclen, mlsh_dtype dt, size_t n, float *out);
/* Encode n floats as dt into dst (dstlen bytes, >= mlsh_dtype_nbytes). Integers are rounded to
 * nearest and saturated; returns -1 if dst is too small or dt cannot be encoded. */
int mlsh_encode_f32(const float *src, size_t n, mlsh_dtype dt, void *dst, size_t dstlen);

/* Raw sub-byte codes: pack n codes (each < 2^bits, bits 1..8) / unpack them. */
void mlsh_bitpack(const uint8_t *codes, size_t n, unsigned bits, uint8_t *out);
void mlsh_bitunpack(const uint8_t *in, size_t n, unsigned bits, uint8_t *codes);
#endif
