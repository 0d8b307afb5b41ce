/* gemm.h — single-precision matrix multiply for the heavy kernels (linear, matmul, conv).
 * C[M,N] (row stride ldc) = A[M,K] (row-major, stride lda) x B, where B is K x N row-major
 * (stride ldb) or, with b_trans, N x K row-major (a linear layer's weight). With `accumulate`
 * the product is added to C. Blocked (K in blocks of 256), packed (A in 6-row, B in 16-column
 * panels), a 6x16 AVX2+FMA micro-kernel when the CPU has it (checked at run time, portable C
 * otherwise), split over $MLSH_THREADS (default: all cores) by row and column blocks.
 * Accumulation is in fp32 in every precision mode. */
#ifndef MLSH_IT_GEMM_H
#define MLSH_IT_GEMM_H
#include "pool.h"
#include <stddef.h>

int it_sgemm(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, int b_trans,
             float *C, size_t ldc, int accumulate);
#endif
