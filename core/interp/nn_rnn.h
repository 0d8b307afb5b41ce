/* nn_rnn.h — the recurrent layers' kernel (nn_rnn.c) and its per-op description (op->aux),
 * filled by the lowering (nn_lower_rnn.c). */
#ifndef MLSH_IT_NN_RNN_H
#define MLSH_IT_NN_RNN_H
#include "ops.h"

enum { NN_RNN_LSTM, NN_RNN_GRU, NN_RNN_SIMPLE };
enum { NN_ACT_SIGMOID, NN_ACT_TANH, NN_ACT_RELU, NN_ACT_LINEAR, NN_ACT_HARD, NN_ACT_SCALED_TANH };

typedef struct {
  int code;
  double alpha, beta;
} nn_act;

typedef struct {
  int kind, ndir, seq_out, reverse, forget_bias, coupled;
  size_t H, C;
  double clip;
  nn_act acts[2][3]; /* per direction: LSTM f, g, h; GRU f, g; simple f */
} nn_rnn;

extern const it_kernel_def nn_k_rnn;
#endif
