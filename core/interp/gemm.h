/* gemm.h — single-precision matrix multiply for the heavy kernels (linear, matmul, conv).
 * C[M,N] (row stride ldc) = A[M,K] (row-major, stride lda) x B, where B is K x N row-major
 * (stride ldb) or, with b_trans, N x K row-major (a linear layer's weight). With `accumulate`
 * the product is added to C. it_sgemm_bias also adds bias[i] to row i (bias_rows) or bias[j] to
 * column j, once, after the sum.
 * Method: K in blocks of 256; the operand whose rows are K-contiguous and large (A, or B when
 * b_trans: then C^T = B A^T is computed and stored transposed) is read in place, 6 or 8 rows at a
 * time; the other is packed into 16- or 32-column panels (full panels of a K x N operand, e.g.
 * a 1x1 conv's input, are read in place, rows ldb apart). An 8x32 AVX-512 micro-kernel, else a 6x16
 * AVX2+FMA one, when the CPU has it (checked at run time, portable C 6x16 otherwise;
 * $MLSH_NO_SIMD forces C, $MLSH_NO_AVX512 stops at AVX2), tasks split over
 * the interpreter's pool by row and column blocks. Every output element is one fp32 sum in k
 * order per 256-block, whatever the thread count. Accumulation is in fp32 in every precision
 * mode. The packed copy is at most 16 MiB: wider operands go in column slabs. Returns 0, or -1
 * when scratch memory cannot be allocated. */
#ifndef MLSH_IT_GEMM_H
#define MLSH_IT_GEMM_H
#include "act.h"
#include "pool.h"
#include <stddef.h>

int it_sgemm(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans,
             float *C, size_t ldc, int accumulate);
int it_sgemm_bias(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans,
                  float *C, size_t ldc, int accumulate, const float *bias, int bias_rows);
/* it_sgemm_bias, then `post` (if not NULL) applied to every element of C once its sum and bias
 * are final, tile by tile while the tile is in cache (see act.h). */
int it_sgemm_post(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans,
                  float *C, size_t ldc, int accumulate, const float *bias, int bias_rows, it_act *post);
#endif
