/* randn.h — reproducible Gaussian test weights (for tests and benchmarks, not for cryptography).
 * Contract: element i depends only on (seed, i): pairs come from splitmix64 of a counter through
 * Box-Muller, so any thread count gives the same array. Values are mean + std*N(0,1), then
 * rounded to the weight dtype (fp16 -> exactly fp16-representable floats). */
#ifndef MLSH_COMPRESS_RANDN_H
#define MLSH_COMPRESS_RANDN_H
#include "compress/common.h"

void mlsh_randn(float *out, size_t n, uint64_t seed, double mean, double std, mlsh_wdtype wd, unsigned threads);
#endif
