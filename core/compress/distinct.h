/* distinct.h — the sorted distinct values of a set of floats, with their counts.
 * Contract: two ways to the same answer. The histogram path needs every value to be an exact
 * fp16 value (the usual case: weights stored as fp16) and counts 65,536 order-preserving keys
 * in O(n); the sort path takes any finite floats and radix-sorts a copy. -0 and +0 count as one
 * value (+0), as np.unique does. A mlsh_distinct is a reusable workspace (one per thread);
 * its arrays grow as needed and belong to it. */
#ifndef MLSH_COMPRESS_DISTINCT_H
#define MLSH_COMPRESS_DISTINCT_H
#include "compress/common.h"

#define MLSH_FP16_KEYS 65536u

typedef struct {
  size_t n;      /* number of distinct values */
  float *val;    /* ascending distinct values */
  uint64_t *cnt; /* how often each occurs */
  uint16_t *key; /* fp16 key of each value (histogram path only) */
  size_t cap;
  uint32_t *hist; /* MLSH_FP16_KEYS counters, all zero between calls */
  uint32_t *tmp, *tmp2; /* sort scratch */
  size_t tmpcap;
  mlsh_fp16_bits_fn bits16; /* resolved by mlsh_distinct_init */
} mlsh_distinct;

void mlsh_distinct_init(mlsh_distinct *d);
void mlsh_distinct_free(mlsh_distinct *d);

/* Count keys of n fp16-exact floats into hist, widening [*kmin, *kmax] to the keys seen;
 * bits is mlsh_cz_cpu's bits16. */
void mlsh_hist16_add(mlsh_fp16_bits_fn bits, uint32_t *hist, const float *x, size_t n, unsigned *kmin, unsigned *kmax);

/* Histogram path over the runs of x (all fp16-exact; total count < 2^32). */
int mlsh_distinct_fp16(mlsh_distinct *d, const float *x, const mlsh_runs *r);

/* Take the non-zero counters of hist[kmin..kmax] as the distinct set, zeroing them. */
int mlsh_distinct_from_hist(mlsh_distinct *d, uint32_t *hist, unsigned kmin, unsigned kmax);

/* Sort path over the runs of x (finite floats). */
int mlsh_distinct_sort(mlsh_distinct *d, const float *x, const mlsh_runs *r);
#endif
