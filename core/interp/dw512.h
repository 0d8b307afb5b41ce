/* dw512.h — the AVX-512 depthwise planes (used by dwconv.c when the CPU has AVX-512F, checked at
 * run time; $MLSH_NO_AVX512 / $MLSH_NO_SIMD turn it off). A 2-D depthwise conv with column stride
 * 1 or 2 and kernel rows up to 16 wide is computed one channel plane at a time, reading the input
 * with masked loads (lanes outside the image read as 0, as zero padding gives):
 *  - a plane of at most 256 outputs with stride 1 and OW == W is one flat run of OH x OW
 *    outputs (each tap one load at a fixed offset, the lanes whose column or row falls outside
 *    masked by a table built once per conv);
 *  - otherwise 16 output columns per vector, blocks of output rows summed together; stride 2
 *    first splits each input row into its even and odd columns (per-worker scratch).
 * Each output is the bias, then the taps in (kh, kw) order (taps on padding add w x 0). A fused
 * relu / relu6 and its non-finite / fp16-range scan are applied in registers; another fused
 * activation runs over the plane once it is final. */
#ifndef MLSH_IT_DW512_H
#define MLSH_IT_DW512_H
#include "act.h"
#include "spatial.h"
#include <stddef.h>

typedef struct it_dw512 it_dw512;
/* The plan for window g in *out, or NULL when the AVX-512 path does not apply. Returns 0, or -1
 * when memory runs out or a size would overflow. */
int it_dw512_new(const it_window *g, it_dw512 **out);
void it_dw512_free(it_dw512 *d);
/* Scratch floats each worker needs (0: none). */
size_t it_dw512_scratch(const it_dw512 *d);
/* One channel: x its input plane (H x W), w its taps, o its output plane (OH x OW). */
void it_dw512_plane(const float *x, const float *w, float *o, float b, const it_dw512 *d, it_act *post, float *scratch);
#endif
