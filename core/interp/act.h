/* act.h — an activation applied in place to runs of fp32 values, shared by the activation ops
 * and by the kernels that fuse one into their last store (GEMM tiles, depthwise rows).
 * it_act_from_op reads an activation op (relu, relu6, clip, leaky_relu, sigmoid, silu, tanh,
 * gelu in its three modes) into a descriptor; it returns -1 for anything else. it_act_apply
 * runs it over p[0, n): every element is computed by the same code whatever n and the split (so
 * a fused result is bit-identical to the op run on its own), after OR-ing the executor's
 * non-finite / beyond-fp16 flags of the values it overwrites into `bad`/`big` when `scan` is set.
 * Callable from several threads at once on disjoint runs (the flags are set atomically).
 * GELU (exact) is vectorised with AVX2+FMA when the CPU has it: erfc from a Chebyshev fit
 * (fractional error < 1.2e-7) and exp by range reduction and a degree-7 polynomial. */
#ifndef MLSH_IT_ACT_H
#define MLSH_IT_ACT_H
#include <stddef.h>

struct it_ctx;
typedef struct it_act it_act;
struct it_act {
  void (*fn)(const it_act *a, const float *src, float *dst, size_t n); /* src may be dst */
  int kind;
  float al, be;
  int scan;          /* set by the caller: scan the values before overwriting them */
  int bad, big;      /* scan results, OR-ed */
  int applied;       /* set by a kernel that fused it */
  int keeps_range;   /* finite in -> finite out, |out| <= max(|in|, 65504): its output needs no check */
  int clamp;         /* relu / relu6: max(x, lo) (NaN -> lo) then min(., hi), for in-register use */
  float lo, hi;
};

int it_act_from_op(struct it_ctx *c, it_act *a);
/* o[i] = e^(x[i] - m) for i < n (o may be x); returns their sum. Vectorised like GELU's exp
 * (AVX2+FMA), expf otherwise. For softmax rows. */
double it_exp_sum(const float *x, float m, float *o, size_t n);
void it_act_apply(it_act *a, float *p, size_t n);
#endif
