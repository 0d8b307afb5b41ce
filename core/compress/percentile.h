/* percentile.h — the percentile the magnitude pruners share (prune.c over floats, prune16.c
 * over fp16 codes): which two order statistics numpy's 'linear' percentile reads, and how it
 * mixes them into the threshold (NumPy 1.x arithmetic, see prune.h). Pure functions. */
#ifndef MLSH_COMPRESS_PERCENTILE_H
#define MLSH_COMPRESS_PERCENTILE_H
#include "compress/common.h"

/* numpy's 'linear' percentile q of n values: virtual index (n-1)*q/100, lerp between the
 * values at sorted ranks r[0] <= r[1]; returns the weight gamma of the upper one. */
static inline double mlsh_percentile_ranks(size_t n, double q, size_t r[2]) {
  double vi = (double)(n - 1) * (q / 100.0);
  if (vi >= (double)(n - 1)) {
    r[0] = r[1] = n - 1;
    return 0;
  }
  r[0] = (size_t)floor(vi);
  r[1] = r[0] + 1;
  return vi - (double)r[0];
}

/* The threshold from the two order statistics ab (NumPy 1.x arithmetic, see prune.h). */
static inline float mlsh_percentile_value(mlsh_wdtype wd, const float ab[2], double gamma) {
  double a = ab[0], b = ab[1], diff = mlsh_wd_round(wd, ab[1] - ab[0]);
  double t = gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
  return mlsh_wd_round_d(wd, t);
}
#endif
