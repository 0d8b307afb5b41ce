/* nn_lower_rnn.c — uniDirectionalLSTM, biDirectionalLSTM, gru and simpleRecurrent: the gate
 * matrices packed per direction for the recurrent kernel (nn_rnn.c), activations and flags from
 * the layer. Inputs: x, then optional initial states (h, c per direction). */
#include "nn_lower.h"
#include "nn_rnn.h"
#include <string.h>

#define CASE(x) CORE_ML__SPECIFICATION__NEURAL_NETWORK_LAYER__LAYER_##x
#define ACT(x) CORE_ML__SPECIFICATION__ACTIVATION_PARAMS__NONLINEARITY_TYPE_##x
typedef CoreML__Specification__WeightParams WP;

static int activation(nn_b *B, const CoreML__Specification__ActivationParams *a, nn_act *out) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(&core_ml__specification__activation_params__descriptor, (unsigned)a->nonlinearity_type_case);
  const ProtobufCMessage *pm = f ? *(ProtobufCMessage *const *)((const char *)a + f->offset) : NULL;
  nnw_msg m = pm ? nnw_of(pm) : nnw_raw(NULL, 0);
  out->alpha = nnw_f32(&m, 1, 0);
  out->beta = nnw_f32(&m, 2, 0);
  switch (a->nonlinearity_type_case) {
  case ACT(SIGMOID): out->code = NN_ACT_SIGMOID; return 0;
  case ACT(TANH): out->code = NN_ACT_TANH; return 0;
  case ACT(RE_LU): out->code = NN_ACT_RELU; return 0;
  case ACT(LINEAR): out->code = NN_ACT_LINEAR; return 0;
  case ACT(SIGMOID_HARD): out->code = NN_ACT_HARD; return 0;
  case ACT(SCALED_TANH): out->code = NN_ACT_SCALED_TANH; return 0;
  default: return nn_fail(B, "recurrent activations are linear, sigmoid, tanh, ReLU, scaledTanh or sigmoidHard");
  }
}

static int acts(nn_b *B, CoreML__Specification__ActivationParams *const *a, size_t n, size_t want, nn_act *out) {
  static const int defaults[3] = {NN_ACT_SIGMOID, NN_ACT_TANH, NN_ACT_TANH};
  for (size_t i = 0; i < want; i++) {
    out[i].code = defaults[i];
    if (i < n && activation(B, a[i], &out[i]) != 0) return -1;
  }
  return 0;
}

/* Pack gate weights (each rows x cols, NULL entries = absent when optional) into one tensor. */
static int pack(nn_b *B, it_op *op, const char *param, const WP *const *w, int G, size_t rows, size_t cols, int optional) {
  if (optional && !w[0]) return 0;
  int64_t s[2] = {(int64_t)(G * rows), (int64_t)cols};
  it_tensor *t = it_tensor_new(MLSH_DT_FP32, cols > 1 ? 2 : 1, s, B->e);
  if (!t) return -1;
  if (cols <= 1) t->shape[0] = (int64_t)(G * rows);
  for (int g = 0; g < G; g++) {
    int64_t gs[2] = {(int64_t)rows, (int64_t)cols};
    it_tensor *x = nn_weights(B, w[g], rows * cols, 2, gs, param);
    if (!x) { it_unref(t); return -1; }
    memcpy((float *)t->data + (size_t)g * rows * cols, x->data, rows * cols * sizeof(float));
    it_unref(x);
  }
  return nn_imm(B, op, param, t);
}

static int lstm_dir(nn_b *B, it_op *op, const CoreML__Specification__LSTMWeightParams *w, const CoreML__Specification__LSTMParams *p,
                    size_t H, size_t C, int d) {
  static const char *const names[2][4] = {{"W", "R", "b", "p"}, {"W_b", "R_b", "b_b", "p_b"}};
  if (!w) return nn_fail(B, "missing LSTM weights");
  const WP *W[4] = {w->inputgateweightmatrix, w->forgetgateweightmatrix, w->blockinputweightmatrix, w->outputgateweightmatrix};
  const WP *R[4] = {w->inputgaterecursionmatrix, w->forgetgaterecursionmatrix, w->blockinputrecursionmatrix, w->outputgaterecursionmatrix};
  const WP *b[4] = {w->inputgatebiasvector, w->forgetgatebiasvector, w->blockinputbiasvector, w->outputgatebiasvector};
  const WP *pp[3] = {w->inputgatepeepholevector, w->forgetgatepeepholevector, w->outputgatepeepholevector};
  if (pack(B, op, names[d][0], W, 4, H, C, 0) || pack(B, op, names[d][1], R, 4, H, H, 0)) return -1;
  if (p && p->hasbiasvectors && pack(B, op, names[d][2], b, 4, H, 1, 0)) return -1;
  if (p && p->haspeepholevectors && pack(B, op, names[d][3], pp, 3, H, 1, 0)) return -1;
  return 0;
}

/* Inputs after x: initial states, bound in order to the given parameter names. */
static int states(nn_b *B, const nn_layer *l, it_op *op, const char *const *names, size_t n) {
  for (size_t i = 1; i < l->n_input && i <= n; i++)
    if (nn_arg(B, op, names[i - 1], nn_layer_in(B, l, i)) != 0) return -1;
  return 0;
}

static nn_rnn *spec(nn_b *B, int kind, uint64_t H, uint64_t C, int ndir) {
  nn_rnn *s = it_program_alloc(B->p, sizeof *s);
  if (!s) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  s->kind = kind;
  s->H = (size_t)H;
  s->C = (size_t)C;
  s->ndir = ndir;
  s->clip = 50;
  if (H == 0 || C == 0) return nn_fail(B, "inputVectorSize and outputVectorSize must be set"), NULL;
  return s;
}

static int lstm(nn_b *B, const nn_layer *l) {
  int bi = l->layer_case == CASE(BI_DIRECTIONAL_LSTM);
  const CoreML__Specification__LSTMParams *p = bi ? l->bidirectionallstm->params : l->unidirectionallstm->params;
  uint64_t H = bi ? l->bidirectionallstm->outputvectorsize : l->unidirectionallstm->outputvectorsize;
  uint64_t C = bi ? l->bidirectionallstm->inputvectorsize : l->unidirectionallstm->inputvectorsize;
  nn_rnn *s = spec(B, NN_RNN_LSTM, H, C, bi ? 2 : 1);
  it_op *op = s ? nn_layer_op(B, l, NULL, &nn_k_rnn, 0, 0) : NULL;
  if (!op) return -1;
  op->aux = s;
  if (p) {
    s->seq_out = p->sequenceoutput;
    s->forget_bias = p->forgetbias;
    s->coupled = p->coupledinputandforgetgate;
    if (p->cellclipthreshold > 0) s->clip = p->cellclipthreshold;
  }
  if (bi) {
    const CoreML__Specification__BiDirectionalLSTMLayerParams *q = l->bidirectionallstm;
    if (q->n_weightparams != 2) return nn_fail(B, "a biDirectionalLSTM has 2 weight sets, this one %zu", q->n_weightparams);
    if (acts(B, q->activationsforwardlstm, q->n_activationsforwardlstm, 3, s->acts[0]) ||
        acts(B, q->activationsbackwardlstm, q->n_activationsbackwardlstm, 3, s->acts[1]) ||
        lstm_dir(B, op, q->weightparams[0], p, s->H, s->C, 0) || lstm_dir(B, op, q->weightparams[1], p, s->H, s->C, 1))
      return -1;
    static const char *const st[4] = {"h0", "c0", "h0_b", "c0_b"};
    if (states(B, l, op, st, 4)) return -1;
  } else {
    const CoreML__Specification__UniDirectionalLSTMLayerParams *q = l->unidirectionallstm;
    s->reverse = q->reverseinput;
    static const char *const st[2] = {"h0", "c0"};
    if (acts(B, q->activations, q->n_activations, 3, s->acts[0]) || lstm_dir(B, op, q->weightparams, p, s->H, s->C, 0) ||
        states(B, l, op, st, 2))
      return -1;
  }
  return nn_layer_outs(B, op, l);
}

static int gru(nn_b *B, const nn_layer *l) {
  const CoreML__Specification__GRULayerParams *q = l->gru;
  nn_rnn *s = spec(B, NN_RNN_GRU, q->outputvectorsize, q->inputvectorsize, 1);
  it_op *op = s ? nn_layer_op(B, l, NULL, &nn_k_rnn, 0, 0) : NULL;
  if (!op) return -1;
  op->aux = s;
  s->seq_out = q->sequenceoutput;
  s->reverse = q->reverseinput;
  const WP *W[3] = {q->updategateweightmatrix, q->resetgateweightmatrix, q->outputgateweightmatrix};
  const WP *R[3] = {q->updategaterecursionmatrix, q->resetgaterecursionmatrix, q->outputgaterecursionmatrix};
  const WP *b[3] = {q->updategatebiasvector, q->resetgatebiasvector, q->outputgatebiasvector};
  static const char *const st[1] = {"h0"};
  if (acts(B, q->activations, q->n_activations, 2, s->acts[0]) || pack(B, op, "W", W, 3, s->H, s->C, 0) ||
      pack(B, op, "R", R, 3, s->H, s->H, 0) || (q->hasbiasvectors && pack(B, op, "b", b, 3, s->H, 1, 0)) || states(B, l, op, st, 1))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int simple(nn_b *B, const nn_layer *l) {
  const CoreML__Specification__SimpleRecurrentLayerParams *q = l->simplerecurrent;
  nn_rnn *s = spec(B, NN_RNN_SIMPLE, q->outputvectorsize, q->inputvectorsize, 1);
  it_op *op = s ? nn_layer_op(B, l, NULL, &nn_k_rnn, 0, 0) : NULL;
  if (!op) return -1;
  op->aux = s;
  s->seq_out = q->sequenceoutput;
  s->reverse = q->reverseinput;
  s->acts[0][0].code = NN_ACT_TANH;
  const WP *W[1] = {q->weightmatrix}, *R[1] = {q->recursionmatrix}, *b[1] = {q->biasvector};
  static const char *const st[1] = {"h0"};
  if ((q->activation && activation(B, q->activation, &s->acts[0][0])) || pack(B, op, "W", W, 1, s->H, s->C, 0) ||
      pack(B, op, "R", R, 1, s->H, s->H, 0) || (q->hasbiasvector && pack(B, op, "b", b, 1, s->H, 1, 0)) || states(B, l, op, st, 1))
    return -1;
  return nn_layer_outs(B, op, l);
}

const nn_lowering nn_lower_rnn[] = {
  {CASE(UNI_DIRECTIONAL_LSTM), lstm}, {CASE(BI_DIRECTIONAL_LSTM), lstm}, {CASE(GRU), gru}, {CASE(SIMPLE_RECURRENT), simple}, {0, NULL},
};
