/* wstats.c — one-pass summary statistics (see wstats.h). */
#include "wstats.h"
#include <math.h>

void mlsh_stats_init(mlsh_stats *s) {
  s->sum = s->sumsq = 0;
  s->min = INFINITY;
  s->max = -INFINITY;
  s->n = s->zeros = s->nans = 0;
}

void mlsh_stats_add(mlsh_stats *s, const float *v, size_t n) {
  double sum = s->sum, sumsq = s->sumsq, mn = s->min, mx = s->max;
  size_t zeros = s->zeros, nans = s->nans;
  for (size_t i = 0; i < n; i++) {
    double x = v[i];
    if (isnan(x)) { nans++; continue; }
    sum += x;
    sumsq += x * x;
    if (x < mn) mn = x;
    if (x > mx) mx = x;
    if (x == 0) zeros++;
  }
  s->sum = sum, s->sumsq = sumsq, s->min = mn, s->max = mx;
  s->zeros = zeros, s->nans = nans;
  s->n += n;
}

double mlsh_stats_mean(const mlsh_stats *s) {
  size_t cnt = s->n - s->nans;
  return cnt ? s->sum / (double)cnt : 0;
}

double mlsh_stats_std(const mlsh_stats *s) {
  size_t cnt = s->n - s->nans;
  double mean = mlsh_stats_mean(s), var = cnt ? s->sumsq / (double)cnt - mean * mean : 0;
  return var > 0 ? sqrt(var) : 0;
}
