/* nn_lower.h — lowering NeuralNetwork layers to kernel ops. Each family file exports a table of
 * {layer oneof case, lowering}, ended by {0, NULL}; a lowering reads the layer's parameters
 * (declared fields, or undeclared ones through nn_wire) and appends ops whose outputs define
 * the layer's output blobs. Helpers here make the common shapes of that short. */
#ifndef MLSH_IT_NN_LOWER_H
#define MLSH_IT_NN_LOWER_H
#include "nn_build.h"
#include "nn_kernels.h"

typedef CoreML__Specification__NeuralNetworkLayer nn_layer;
typedef int (*nn_lower_fn)(nn_b *B, const nn_layer *l);
typedef struct {
  int kase;
  nn_lower_fn fn;
} nn_lowering;

extern const nn_lowering nn_lower_dense[], nn_lower_act[], nn_lower_shape[], nn_lower_nd[], nn_lower_rnn[], nn_lower_more[],
    nn_lower_flow[];
/* Lower layers in order (nn_program.c; nn_flow.c lowers sub-networks with it). */
int nn_lower_layers(nn_b *B, size_t n, nn_layer *const *layers);

/* Every layer type with a lowering, sorted (at most max; static names). */
size_t it_nn_layer_types(const char **out, size_t max);
/* The layer type's name (its oneof field name, e.g. "innerProduct"). */
const char *nn_layer_type(const nn_layer *l);
/* The layer's parameter message (declared or not) for undeclared-field reads. */
nnw_msg nn_params(const nn_layer *l);
/* An op of kernel k for layer l (name = the layer's, or layer/suffix), parameter x = input 0
 * unless nox; wrap = NN_FOLD4 / NN_FLAT runs k on a reshaped view (0: direct). */
it_op *nn_layer_op(nn_b *B, const nn_layer *l, const char *suffix, const it_kernel_def *k, int wrap, int nox);
int nn_layer_in(nn_b *B, const nn_layer *l, size_t i);
/* Define every output blob of the layer as op's outputs, in order. */
int nn_layer_outs(nn_b *B, it_op *op, const nn_layer *l);
/* A one-op layer: kernel k (MIL type name) on input 0 with the given scalar float params. */
int nn_simple(nn_b *B, const nn_layer *l, const char *mil, int wrap, int nf, const char *const *names, const double *vals);
#endif
