/* nn_lower.c — helpers the layer lowerings share (see nn_lower.h). */
#include "nn_lower.h"
#include <string.h>

static const ProtobufCFieldDescriptor *layer_field(const nn_layer *l) {
  return protobuf_c_message_descriptor_get_field(&core_ml__specification__neural_network_layer__descriptor, (unsigned)l->layer_case);
}

const char *nn_layer_type(const nn_layer *l) {
  const ProtobufCFieldDescriptor *f = layer_field(l);
  return f ? f->name : "unknown";
}

nnw_msg nn_params(const nn_layer *l) {
  const ProtobufCFieldDescriptor *f = layer_field(l);
  const ProtobufCMessage *m = f && f->type == PROTOBUF_C_TYPE_MESSAGE ? *(ProtobufCMessage *const *)((const char *)l + f->offset) : NULL;
  return m ? nnw_of(m) : nnw_raw(NULL, 0);
}

int nn_layer_in(nn_b *B, const nn_layer *l, size_t i) {
  if (i >= l->n_input) return nn_fail(B, "needs at least %zu inputs", i + 1);
  return nn_use(B, l->input[i]);
}

it_op *nn_layer_op(nn_b *B, const nn_layer *l, const char *suffix, const it_kernel_def *k, int wrap, int nox) {
  const char *name = suffix ? nn_str(B, l->name, suffix) : l->name;
  if (!name) return NULL;
  int x = nox ? 0 : nn_layer_in(B, l, 0);
  if (x < 0) return NULL;
  it_op *op = nn_op(B, nn_layer_type(l), name, wrap ? &nn_k_wrap : k);
  if (!op) return NULL;
  if (wrap) {
    nn_wrap *w = it_program_alloc(B->p, sizeof *w);
    if (!w || !k) return nn_fail(B, "out of memory"), NULL;
    w->inner = k;
    w->mode = wrap;
    op->aux = w;
  }
  if (!nox && nn_arg(B, op, "x", x) != 0) return NULL;
  return op;
}

int nn_layer_outs(nn_b *B, it_op *op, const nn_layer *l) {
  if (l->n_output == 0) return nn_fail(B, "has no outputs");
  for (size_t i = 0; i < l->n_output; i++)
    if (nn_out(B, op, l->output[i]) < 0) return -1;
  return 0;
}

int nn_simple(nn_b *B, const nn_layer *l, const char *mil, int wrap, int nf, const char *const *names, const double *vals) {
  it_op *op = nn_layer_op(B, l, NULL, nn_k(mil), wrap, 0);
  if (!op) return -1;
  for (int i = 0; i < nf; i++)
    if (nn_immf(B, op, names[i], vals[i]) != 0) return -1;
  return nn_layer_outs(B, op, l);
}
