/* dwconv.h — depthwise convolution (groups == input channels == output channels) for 1-3
 * spatial dims: out[n,c] = bias[c] + sum over taps of w[c,tap] * x[n,c,window].
 * With AVX-512 (dw512.h: checked at run time), a 2-D conv with column stride 1 or 2 and kernel
 * rows up to 16 wide reads the input in place, a small stride-1 plane as one flat run.
 * Otherwise, per channel the input rows are copied once into zero-padded, stride-phase-split
 * scratch rows, so every tap reads contiguous memory with no bounds test; 8 output columns
 * accumulate in registers (AVX2+FMA when the CPU has it; portable C otherwise). Channels
 * are split over the interpreter's threads. Each output is one sum in tap order, whatever the
 * thread count. Returns 0, or -1 when scratch memory cannot be allocated (or its size, from
 * the strides, would overflow). */
#ifndef MLSH_IT_DWCONV_H
#define MLSH_IT_DWCONV_H
#include "act.h"
#include "spatial.h"

/* post (may be NULL): an activation applied to each output row once it is final. */
int it_depthwise(const float *X, const float *W, const float *bias, float *O, const it_window *g, size_t N, size_t C,
                 it_act *post);
#endif
