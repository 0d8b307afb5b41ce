/* spatial.c — window geometry for conv and pooling (see spatial.h). Facts from coremltools
 * ops/defs/_utils.py spatial_dimensions_out_shape: same → out = ceil(in / stride), total pad
 * max((out-1)*stride + (k-1)*dilation + 1 - in, 0), begin = total/2 (same_lower: ceil). */
#include "spatial.h"
#include <string.h>

int it_window_init(it_ctx *c, const it_tensor *x, const int64_t *k, int ceil_mode, it_window *w) {
  memset(w, 0, sizeof *w);
  int S = x->rank - 2;
  if (S < 1 || S > 3) return it_fail(c, "needs an input of rank 3 to 5, given rank %d", x->rank);
  w->S = S;
  int64_t st[3] = {1, 1, 1}, dl[3] = {1, 1, 1}, pad[6] = {0};
  int ns = it_arg_ints(c, "strides", st, 3), nd = it_arg_ints(c, "dilations", dl, 3);
  if ((ns >= 0 && ns != S) || (nd >= 0 && nd != S)) return it_fail(c, "strides/dilations must have %d values", S);
  if (ns < 0) for (int i = 0; i < 3; i++) st[i] = 1;
  if (nd < 0) for (int i = 0; i < 3; i++) dl[i] = 1;
  const char *pt = it_arg_str(c, "pad_type", "valid");
  for (int i = 0; i < 3; i++) { w->in[i] = 1; w->k[i] = 1; w->s[i] = 1; w->d[i] = 1; w->out[i] = 1; }
  for (int i = 0; i < S; i++) {
    int j = 3 - S + i;
    w->in[j] = x->shape[2 + i];
    w->k[j] = k[i];
    w->s[j] = st[i];
    w->d[j] = dl[i];
    if (st[i] < 1 || dl[i] < 1 || k[i] < 1) return it_fail(c, "strides, dilations and kernel sizes must be positive");
  }
  int custom = strcmp(pt, "custom") == 0, same = strcmp(pt, "same") == 0, lower = strcmp(pt, "same_lower") == 0;
  if (!custom && !same && !lower && strcmp(pt, "valid") != 0) return it_fail(c, "unknown pad_type '%s'", pt);
  if (custom) {
    int np = it_arg_ints(c, "pad", pad, 6);
    if (np != 2 * S) return it_fail(c, "pad must have %d values", 2 * S);
  }
  for (int i = 0; i < S; i++) {
    int j = 3 - S + i;
    int64_t ek = (w->k[j] - 1) * w->d[j] + 1;
    if (same || lower) {
      int64_t out = (w->in[j] + w->s[j] - 1) / w->s[j];
      int64_t total = (out - 1) * w->s[j] + ek - w->in[j];
      if (total < 0) total = 0;
      w->pb[j] = lower ? (total + 1) / 2 : total / 2;
      w->pe[j] = total - w->pb[j];
      w->out[j] = out;
      continue;
    }
    if (custom) { w->pb[j] = pad[2 * i]; w->pe[j] = pad[2 * i + 1]; }
    int64_t span = w->in[j] + w->pb[j] + w->pe[j] - ek;
    if (span < 0) return it_fail(c, "the window is larger than the padded input");
    int64_t out = ceil_mode ? (span + w->s[j] - 1) / w->s[j] + 1 : span / w->s[j] + 1;
    if (ceil_mode && (out - 1) * w->s[j] >= w->in[j] + w->pb[j]) out--;
    w->out[j] = out;
  }
  return 0;
}
