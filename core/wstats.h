/* wstats.h — summary statistics of float values, accumulated in one pass and in element order,
 * so streaming a weight chunk by chunk gives the very numbers one pass over the whole array gives.
 * NaNs are counted and skipped; min/max/mean/std are over the others. Nothing here allocates. */
#ifndef MLSH_WSTATS_H
#define MLSH_WSTATS_H
#include <stddef.h>

typedef struct {
  double sum, sumsq, min, max;
  size_t n, zeros, nans;
} mlsh_stats;

void mlsh_stats_init(mlsh_stats *s);
void mlsh_stats_add(mlsh_stats *s, const float *v, size_t n);
/* mean and standard deviation (population) of the non-NaN values; 0 when there are none. */
double mlsh_stats_mean(const mlsh_stats *s);
double mlsh_stats_std(const mlsh_stats *s);
#endif
