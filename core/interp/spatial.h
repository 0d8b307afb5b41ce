/* spatial.h — the window geometry conv, conv_transpose and the pools share: 1-3 spatial dims
 * seen as (D, H, W) with missing leading ones set to 1, and MIL's pad types (valid, custom,
 * same, same_lower) turned into begin/end pads. */
#ifndef MLSH_IT_SPATIAL_H
#define MLSH_IT_SPATIAL_H
#include "ops.h"

typedef struct {
  int S;                 /* spatial rank 1..3 */
  int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
} it_window;

/* Read strides/dilations/pad_type/pad for x (rank 2+S) and kernel sizes k[S]; computes out
 * (ceil_mode rounds up as PyTorch does). Returns 0 or it_fail. */
int it_window_init(it_ctx *c, const it_tensor *x, const int64_t *k, int ceil_mode, it_window *w);
#endif
