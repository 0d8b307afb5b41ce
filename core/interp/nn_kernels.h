/* nn_kernels.h — the kernels NeuralNetwork layers need beyond the ML-program ones: a wrapper
 * that runs a registered kernel on a reshaped view of its input (NN layers compute on the
 * trailing [C, H, W] of a blob of any rank; MIL kernels want [N, C, H, W]), nn_invoke to call a
 * registered kernel with tensors computed at run time, and the few layer semantics no MIL op
 * has (legacy reshape/flatten/permute/slice, unary with shift/scale, embedding, the classifier's
 * label). They are bound to ops directly (op->k), never registered as MIL op types. */
#ifndef MLSH_IT_NN_KERNELS_H
#define MLSH_IT_NN_KERNELS_H
#include "ops.h"

enum { NN_FOLD4 = 1, /* x: [lead..., C, H, W] -> [prod(lead), C, H, W]; outputs back to lead + [C', H', W'] */
       NN_FLAT = 2   /* x of rank 4/5: [lead..., C, H, W] -> lead + [C*H*W]; output lead + [K] -> lead + [K, 1, 1] */ };

#define NN_INVOKE_MAX 8
#define NN_MAX_WRAP_PARAMS 16

typedef struct {
  const it_kernel_def *inner;
  int mode;
} nn_wrap;

/* Labels of a classifier: probabilities -> (label, probabilities as [K] or [B, K]). */
typedef struct {
  size_t n;
  char **strs;          /* string labels, or */
  const int64_t *ints;  /* int64 labels */
} nn_labels;

extern const it_kernel_def nn_k_wrap, nn_k_reshape_chw, nn_k_flatten, nn_k_permute, nn_k_slice, nn_k_unary,
    nn_k_embedding, nn_k_embedding_nd, nn_k_reshape_to, nn_k_norm;
/* Layers whose MIL parameters depend on run-time shapes (nn_dyn.c): they compute them and call
 * the MIL kernel through nn_invoke.
 *   crop_like       x cropped to the H x W of `like` at `offset` [y, x] (crop)
 *   seq_repeat      x tiled `reps` times along axis 0 (tile)
 *   upsample_linear bilinear upsampling by scale_factor_height/width in the NN DEFAULT grid
 *                   (x_in = x_out * in / out, clamped: resize_bilinear's DEFAULT sampling)
 *   resize_checked  resize_bilinear, refusing an empty H or W first
 *   resize_roi      resizeBilinear's ROI_ALIGN_MODE grid (a kernel of its own: no MIL mode has it)
 *   crop_resize     x [1, B, C, H, W] viewed as [B, C, H, W] for crop_resize (roi form)
 *   slice_dynamic   slice_by_index once begin / end / stride / masks are checked against x's rank */
extern const it_kernel_def nn_k_crop_like, nn_k_seq_repeat, nn_k_upsample_linear, nn_k_resize_checked, nn_k_crop_resize,
    nn_k_slice_dynamic, nn_k_resize_roi;
/* classify (nn_classify.c): x = probabilities (aux: nn_labels) -> out 0 label(s), out 1 probabilities. */
extern const it_kernel_def nn_k_classify;
/* The ML-program op `classify`: binds nn_k_classify with the labels of its `classes` literal. */
struct it_program;
struct CoreML__Specification__MILSpec__Operation;
int it_classify_bind(struct it_program *p, it_op *op, const struct CoreML__Specification__MILSpec__Operation *m,
                     mlsh_err *e);

/* Run kernel k for the current op with parameters names[i] = vals[i] (borrowed); its nout
 * outputs land in c->out. */
int nn_invoke(it_ctx *c, const it_kernel_def *k, int n, const char *const *names, it_tensor *const *vals, int nout);
/* A borrowed view of t's data with another shape (same element count). */
it_tensor *nn_view(it_ctx *c, it_tensor *t, int rank, const int64_t *shape);
#endif
