/* registry.c — the dispatch table: every kernel family's {type, fn} entries in one sorted array,
 * looked up by binary search (see ops.h). */
#include "ops.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const it_kernel_def *const FAMILIES[] = {
  it_ops_elementwise, it_ops_activation, it_ops_linalg, it_ops_conv, it_ops_pool, it_ops_norm,
  it_ops_reduce, it_ops_shape, it_ops_index, it_ops_rnn, it_ops_control, it_ops_image, it_ops_extra,
  it_ops_list, it_ops_quant, it_ops_random, it_ops_detect, it_ops_einsum, it_ops_layout, it_ops_sample,
  it_ops_classify,
};

static const it_kernel_def **table;
static const char **names;
static size_t ntable;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int cmp(const void *a, const void *b) {
  return strcmp((*(const it_kernel_def *const *)a)->type, (*(const it_kernel_def *const *)b)->type);
}

static void build(void) {
  size_t n = 0;
  for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++)
    for (const it_kernel_def *k = FAMILIES[f]; k->type; k++) n++;
  table = malloc((n + 1) * sizeof *table);
  names = malloc((n + 1) * sizeof *names);
  if (!table || !names) return;
  for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++)
    for (const it_kernel_def *k = FAMILIES[f]; k->type; k++) table[ntable++] = k;
  qsort(table, ntable, sizeof *table, cmp);
  for (size_t i = 0; i < ntable; i++) names[i] = table[i]->type;
  names[ntable] = NULL;
}

const it_kernel_def *it_kernel_find(const char *type) {
  pthread_once(&once, build);
  size_t lo = 0, hi = ntable;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(type, table[mid]->type);
    if (c == 0) return table[mid];
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

const char *const *it_kernel_names(size_t *n) {
  pthread_once(&once, build);
  *n = ntable;
  return names;
}
