/* nn_rnn.c — the NeuralNetwork recurrent layers' kernel: uniDirectionalLSTM, biDirectionalLSTM,
 * gru and simpleRecurrent with NeuralNetwork.proto's equations (gate pre-activations clipped to
 * [-50, 50]; LSTM peepholes, forget bias, coupled input/forget gate and cell clip; GRU's reset
 * gate applied to y_{t-1} before R_o). x is [Seq, Batch, C, 1, 1]; optional initial states are
 * [1, Batch, H, 1, 1]; outputs y (the last step, or every step with sequenceOutput, each at its
 * input position), then the final h (and c) per direction. Weights per direction are packed
 * gate after gate: W [G*H, C], R [G*H, H], b [G*H], p [3H] (parameters W, R, b, p; the backward
 * direction's W_b, R_b, b_b, p_b). Accumulation in double. */
#include "nn_rnn.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double act(const nn_act *a, double v) {
  switch (a->code) {
  case NN_ACT_SIGMOID: return 1 / (1 + exp(-v));
  case NN_ACT_TANH: return tanh(v);
  case NN_ACT_RELU: return v > 0 ? v : 0;
  case NN_ACT_LINEAR: return a->alpha * v + a->beta;
  case NN_ACT_HARD: { double r = a->alpha * v + a->beta; return r < 0 ? 0 : r > 1 ? 1 : r; }
  default: return a->alpha * tanh(a->beta * v);
  }
}

static double clip50(double v) { return v < -50 ? -50 : v > 50 ? 50 : v; }

typedef struct {
  const float *W, *R, *b, *p;
} dir_w;

static int weights(it_ctx *c, const nn_rnn *s, int d, dir_w *w) {
  static const char *const names[2][4] = {{"W", "R", "b", "p"}, {"W_b", "R_b", "b_b", "p_b"}};
  size_t G = s->kind == NN_RNN_LSTM ? 4 : s->kind == NN_RNN_GRU ? 3 : 1, H = s->H;
  it_tensor *W = it_arg_req(c, names[d][0]), *R = W ? it_arg_req(c, names[d][1]) : NULL, *b = it_arg(c, names[d][2]), *p = it_arg(c, names[d][3]);
  if (!R) return -1;
  if (W->n != G * H * s->C || R->n != G * H * H || (b && b->n != G * H) || (p && p->n != 3 * H)) return it_fail(c, "weight sizes do not match the layer");
  w->W = W->data;
  w->R = R->data;
  w->b = b ? b->data : NULL;
  w->p = p ? p->data : NULL;
  return 0;
}

/* One direction over the whole sequence for batch item bi; h and cs hold the state (in/out). */
static void run_dir(const nn_rnn *s, int d, const dir_w *w, const float *X, size_t S, size_t Bn, size_t bi, double *h, double *cs,
                    double *g, float *Y, size_t ystride, int seq_out) {
  size_t H = s->H, C = s->C, G = s->kind == NN_RNN_LSTM ? 4 : s->kind == NN_RNN_GRU ? 3 : 1;
  const nn_act *A = s->acts[d];
  int rev = d == 1 || s->reverse;
  double *rh = g + G * H; /* GRU: r ⊙ y_{t-1} */
  for (size_t step = 0; step < S; step++) {
    size_t t = rev ? S - 1 - step : step;
    const float *xt = X + (t * Bn + bi) * C;
    for (size_t r = 0; r < G * H; r++) {
      double v = w->b ? w->b[r] : 0;
      const float *wr = w->W + r * C;
      for (size_t k = 0; k < C; k++) v += (double)wr[k] * xt[k];
      if (!(s->kind == NN_RNN_GRU && r >= 2 * H)) { /* GRU's output gate recurs on r ⊙ y later */
        const float *rr = w->R + r * H;
        for (size_t k = 0; k < H; k++) v += (double)rr[k] * h[k];
      }
      g[r] = v;
    }
    for (size_t j = 0; j < H; j++) {
      if (s->kind == NN_RNN_SIMPLE) h[j] = act(&A[0], clip50(g[j]));
      else if (s->kind == NN_RNN_LSTM) {
        double pi = w->p ? w->p[j] * cs[j] : 0, pf = w->p ? w->p[H + j] * cs[j] : 0;
        double ig = act(&A[0], clip50(g[j] + pi)), fg = act(&A[0], clip50(g[H + j] + pf + (s->forget_bias ? 1 : 0)));
        double z = act(&A[1], clip50(g[2 * H + j]));
        double cn = s->coupled ? cs[j] * (1 - ig) + ig * z : cs[j] * fg + ig * z;
        cn = cn > s->clip ? s->clip : cn < -s->clip ? -s->clip : cn;
        cs[j] = cn;
        double o = act(&A[0], clip50(g[3 * H + j] + (w->p ? w->p[2 * H + j] * cn : 0)));
        g[3 * H + j] = o * act(&A[2], cn); /* the new y, applied after the loop */
      } else {
        double r = act(&A[0], clip50(g[H + j]));
        rh[j] = r * h[j];
      }
    }
    if (s->kind == NN_RNN_LSTM) for (size_t j = 0; j < H; j++) h[j] = g[3 * H + j];
    if (s->kind == NN_RNN_GRU)
      for (size_t j = 0; j < H; j++) {
        double v = g[2 * H + j];
        const float *rr = w->R + (2 * H + j) * H;
        for (size_t k = 0; k < H; k++) v += (double)rr[k] * rh[k];
        double z = act(&A[0], clip50(g[j])), o = act(&A[1], clip50(v));
        g[2 * H + j] = (1 - z) * o + z * h[j];
      }
    if (s->kind == NN_RNN_GRU) for (size_t j = 0; j < H; j++) h[j] = g[2 * H + j];
    if (seq_out)
      for (size_t j = 0; j < H; j++) Y[(t * Bn + bi) * ystride + (size_t)d * H + j] = (float)h[j];
  }
  if (!seq_out)
    for (size_t j = 0; j < H; j++) Y[bi * ystride + (size_t)d * H + j] = (float)h[j];
}

static int k_rnn(it_ctx *c) {
  const nn_rnn *s = c->op->aux;
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32 || x->rank < 1) return it_fail(c, "needs a float input [Seq, Batch, C, 1, 1]");
  size_t S = (size_t)x->shape[0], Bn = x->rank >= 2 ? (size_t)x->shape[1] : 1, H = s->H, nd = (size_t)s->ndir;
  if (S == 0 || Bn == 0 || x->n != S * Bn * s->C) return it_fail(c, "input holds %zu values, not Seq x Batch x %zu", x->n, s->C);
  dir_w w[2];
  for (int d = 0; d < s->ndir; d++)
    if (weights(c, s, d, &w[d]) != 0) return -1;
  int lstm = s->kind == NN_RNN_LSTM;
  int64_t ys[5] = {s->seq_out ? (int64_t)S : 1, (int64_t)Bn, (int64_t)(nd * H), 1, 1}, hs[5] = {1, (int64_t)Bn, (int64_t)H, 1, 1};
  it_tensor *y = it_out(c, 0, MLSH_DT_FP32, 5, ys);
  if (!y) return -1;
  int nstate = lstm ? 2 : 1;
  it_tensor *st[4] = {0};
  for (int d = 0; d < s->ndir; d++)
    for (int k = 0; k < nstate; k++)
      if (1 + d * nstate + k < c->op->nout && !(st[d * nstate + k] = it_out(c, 1 + d * nstate + k, MLSH_DT_FP32, 5, hs))) return -1;
  static const char *const init[2][2] = {{"h0", "c0"}, {"h0_b", "c0_b"}};
  double *buf = calloc(H * 7 + 2, sizeof *buf);
  if (!buf) return it_fail(c, "out of memory");
  double *h = buf, *cs = buf + H, *g = buf + 2 * H;
  for (int d = 0; d < s->ndir; d++)
    for (size_t bi = 0; bi < Bn; bi++) {
      for (int k = 0; k < nstate; k++) {
        it_tensor *t0 = it_arg(c, init[d][k]);
        double *dst = k ? cs : h;
        if (t0 && t0->n != Bn * H) { free(buf); return it_fail(c, "initial state %s holds %zu values, not %zu", init[d][k], t0->n, Bn * H); }
        for (size_t j = 0; j < H; j++) dst[j] = t0 ? it_get_d(t0, bi * H + j) : 0;
      }
      run_dir(s, d, &w[d], x->data, S, Bn, bi, h, cs, g, y->data, nd * H, s->seq_out);
      for (int k = 0; k < nstate; k++)
        if (st[d * nstate + k])
          for (size_t j = 0; j < H; j++) ((float *)st[d * nstate + k]->data)[bi * H + j] = (float)(k ? cs[j] : h[j]);
    }
  free(buf);
  return 0;
}
const it_kernel_def nn_k_rnn = {"nn_recurrent", k_rnn};
