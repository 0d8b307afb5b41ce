/* gemv.h — the GEMM of a linear layer or RNN gate with a batch of 1-4 rows: C[m, n] =
 * (acc ? C[m, n] : 0) + sum_k A[m, k] B[n, k] (+ bias), B an N x K weight read in place. A
 * tiled GEMM would pad those few rows to a full tile; here each output is a dot product summed in
 * 16 lanes over k (AVX-512F when the CPU has it, checked at run time; 8 with AVX2+FMA; C
 * otherwise), the lanes added in a fixed order, and the rows of B are split over the pool (each
 * output computed by the same code whatever the split). bias (may be NULL) is bias[m] with
 * bias_rows, else bias[n]; post (may be NULL) runs over C's values once final. */
#ifndef MLSH_IT_GEMV_H
#define MLSH_IT_GEMV_H
#include "act.h"
#include <stddef.h>

#define IT_GEMV_MAX_ROWS 4
void it_gemv_bt(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc,
                int acc, const float *bias, int bias_rows, it_act *post);
#endif
