/* ops_rnn.c — lstm (iOS15 recurrent.py): x [T, B, I], initial_h/initial_c [B, H], weight_ih
 * [4H, I], weight_hh [4H, H], bias [4H], optional peephole [3H] (input, forget, output), gate
 * order input, forget, output, cell; direction forward / reverse / bidirectional (the _back
 * weights); output_sequence; activations sigmoid/tanh/relu/... by name; clip. */
#include "gemm.h"
#include "ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float act(const char *a, float x) {
  if (strcmp(a, "sigmoid") == 0) return 1.0f / (1.0f + expf(-x));
  if (strcmp(a, "tanh") == 0) return tanhf(x);
  if (strcmp(a, "relu") == 0) return x > 0 ? x : 0;
  if (strcmp(a, "hard_sigmoid") == 0) { float v = 0.2f * x + 0.5f; return v < 0 ? 0 : (v > 1 ? 1 : v); }
  if (strcmp(a, "linear") == 0) return x;
  if (strcmp(a, "scaled_tanh") == 0) return tanhf(x);
  return x;
}

static int known_act(const char *a) {
  return !strcmp(a, "sigmoid") || !strcmp(a, "tanh") || !strcmp(a, "relu") || !strcmp(a, "hard_sigmoid") || !strcmp(a, "linear");
}

/* One direction over all steps; writes h per step into out (stride ostride, offset) and the final h, c. */
static int run_dir(it_ctx *c, const float *X, size_t T, size_t B, size_t I, size_t H, const float *Wih, const float *Whh,
                   const it_tensor *bias, const it_tensor *peep, int reverse, float *h, float *cst, float *out, size_t ostride,
                   size_t ooff, int seq, const char *ra, const char *ca, const char *aa, double clip) {
  float *g = malloc(B * 4 * H * sizeof *g);
  if (!g) return it_fail(c, "out of memory");
  for (size_t s = 0; s < T; s++) {
    size_t t = reverse ? T - 1 - s : s;
    for (size_t b = 0; b < B; b++)
      for (size_t j = 0; j < 4 * H; j++) g[b * 4 * H + j] = bias ? (float)it_get_d(bias, j) : 0;
    it_sgemm(B, 4 * H, I, X + t * B * I, I, Wih, I, 1, g, 4 * H, 1);
    it_sgemm(B, 4 * H, H, h, H, Whh, H, 1, g, 4 * H, 1);
    for (size_t b = 0; b < B; b++) {
      float *gb = g + b * 4 * H;
      for (size_t j = 0; j < H; j++) {
        float gi = gb[j], gf = gb[H + j], go = gb[2 * H + j], gz = gb[3 * H + j], cp = cst[b * H + j];
        if (peep) { gi += (float)it_get_d(peep, j) * cp; gf += (float)it_get_d(peep, H + j) * cp; }
        if (clip > 0) {
          gi = fmaxf(fminf(gi, (float)clip), (float)-clip); gf = fmaxf(fminf(gf, (float)clip), (float)-clip);
          go = fmaxf(fminf(go, (float)clip), (float)-clip); gz = fmaxf(fminf(gz, (float)clip), (float)-clip);
        }
        float i_ = act(ra, gi), f_ = act(ra, gf), z_ = act(ca, gz);
        float cn = f_ * cp + i_ * z_;
        if (peep) go += (float)it_get_d(peep, 2 * H + j) * cn;
        float o_ = act(ra, go);
        cst[b * H + j] = cn;
        h[b * H + j] = o_ * act(aa, cn);
      }
    }
    if (seq)
      for (size_t b = 0; b < B; b++) memcpy(out + (t * B + b) * ostride + ooff, h + b * H, H * sizeof *h);
  }
  if (!seq)
    for (size_t b = 0; b < B; b++) memcpy(out + b * ostride + ooff, h + b * H, H * sizeof *h);
  free(g);
  return 0;
}

static int k_lstm(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *h0 = x ? it_arg_req(c, "initial_h") : NULL, *c0 = h0 ? it_arg_req(c, "initial_c") : NULL;
  it_tensor *wih = c0 ? it_arg_req(c, "weight_ih") : NULL, *whh = wih ? it_arg_req(c, "weight_hh") : NULL;
  if (!whh) return -1;
  const char *dir = it_arg_str(c, "direction", "forward");
  int bi = strcmp(dir, "bidirectional") == 0, rev = strcmp(dir, "reverse") == 0;
  if (!bi && !rev && strcmp(dir, "forward") != 0) return it_fail(c, "unknown direction '%s'", dir);
  if (x->rank != 3 || x->st != IT_F32 || wih->st != IT_F32 || whh->st != IT_F32) return it_fail(c, "needs float x [T, B, I] and float weights");
  size_t T = (size_t)x->shape[0], B = (size_t)x->shape[1], I = (size_t)x->shape[2], H = (size_t)whh->shape[1];
  if (wih->rank != 2 || (size_t)wih->shape[0] != 4 * H || (size_t)wih->shape[1] != I || (size_t)whh->shape[0] != 4 * H)
    return it_fail(c, "weights do not match input size %zu and hidden size %zu", I, H);
  size_t D = bi ? 2 : 1;
  if (h0->n != B * H * D || c0->n != B * H * D) return it_fail(c, "initial_h/initial_c must hold %zu values", B * H * D);
  int seq = it_arg_bool(c, "output_sequence", 0);
  const char *ra = it_arg_str(c, "recurrent_activation", "sigmoid"), *ca = it_arg_str(c, "cell_activation", "tanh"), *aa = it_arg_str(c, "activation", "tanh");
  if (!known_act(ra) || !known_act(ca) || !known_act(aa)) return it_fail(c, "unsupported activation");
  double clip = it_arg_float(c, "clip", 0);
  it_tensor *bias = it_arg(c, "bias"), *peep = it_arg(c, "peephole");
  int64_t os[3] = {seq ? (int64_t)T : 1, (int64_t)B, (int64_t)(H * D)}, hs[2] = {(int64_t)B, (int64_t)(H * D)};
  it_tensor *o = it_out_f(c, 0, 3, os), *ho = it_out_f(c, 1, 2, hs), *co = it_out_f(c, 2, 2, hs);
  if (!o || !ho || !co) return -1;
  float *h = malloc(B * H * sizeof *h), *cs = malloc(B * H * sizeof *cs);
  if (!h || !cs) { free(h); free(cs); return it_fail(c, "out of memory"); }
  int rc = 0;
  for (size_t d = 0; d < D && rc == 0; d++) {
    it_tensor *wi = d ? it_arg(c, "weight_ih_back") : wih, *wh = d ? it_arg(c, "weight_hh_back") : whh;
    it_tensor *bb = d ? it_arg(c, "bias_back") : bias, *pp = d ? it_arg(c, "peephole_back") : peep;
    if (!wi || !wh || wi->st != IT_F32 || wh->st != IT_F32) { rc = it_fail(c, "bidirectional lstm needs float _back weights"); break; }
    for (size_t b = 0; b < B; b++)
      for (size_t j = 0; j < H; j++) {
        h[b * H + j] = (float)it_get_d(h0, b * H * D + d * H + j);
        cs[b * H + j] = (float)it_get_d(c0, b * H * D + d * H + j);
      }
    rc = run_dir(c, x->data, T, B, I, H, wi->data, wh->data, bb, pp, rev || d == 1, h, cs, o->data, H * D, d * H, seq, ra, ca, aa, clip);
    for (size_t b = 0; b < B; b++) {
      memcpy((float *)ho->data + b * H * D + d * H, h + b * H, H * sizeof *h);
      memcpy((float *)co->data + b * H * D + d * H, cs + b * H, H * sizeof *h);
    }
  }
  free(h);
  free(cs);
  return rc;
}

/* gru (iOS15 recurrent.py): weights [r | o | z] (reset, new, update), bias [b_r | b_o | b_z];
 * r, z = recurrent_activation(W_i x + W_h h + b); o = activation(W_io x + b_o + r * (W_ho h));
 * h = (1 - z) * o + z * h. rnn: h = activation(W_ih x + W_hh h + bias). Outputs: sequence, h. */
static int simple_rnn(it_ctx *c, int gru) {
  it_tensor *x = it_arg_req(c, "x"), *h0 = x ? it_arg_req(c, "initial_h") : NULL;
  it_tensor *wih = h0 ? it_arg_req(c, "weight_ih") : NULL, *whh = wih ? it_arg_req(c, "weight_hh") : NULL, *bias = it_arg(c, "bias");
  if (!whh) return -1;
  const char *dir = it_arg_str(c, "direction", "forward");
  int rev = strcmp(dir, "reverse") == 0;
  if (!rev && strcmp(dir, "forward") != 0) return it_fail(c, "direction '%s' is not supported", dir);
  if (x->rank != 3 || x->st != IT_F32 || wih->st != IT_F32 || whh->st != IT_F32) return it_fail(c, "needs float x [T, B, I] and float weights");
  size_t G = gru ? 3 : 1, T = (size_t)x->shape[0], B = (size_t)x->shape[1], I = (size_t)x->shape[2], H = (size_t)whh->shape[1];
  if ((size_t)wih->shape[0] != G * H || (size_t)wih->shape[1] != I || (size_t)whh->shape[0] != G * H || h0->n != B * H)
    return it_fail(c, "weights or initial_h do not match input size %zu and hidden size %zu", I, H);
  if (bias && bias->n != G * H) return it_fail(c, "bias must hold %zu values", G * H);
  int seq = it_arg_bool(c, "output_sequence", 0);
  const char *ra = it_arg_str(c, "recurrent_activation", "sigmoid"), *aa = it_arg_str(c, "activation", "tanh");
  if (!known_act(ra) || !known_act(aa)) return it_fail(c, "unsupported activation");
  int64_t os[3] = {seq ? (int64_t)T : 1, (int64_t)B, (int64_t)H}, hs[2] = {(int64_t)B, (int64_t)H};
  it_tensor *o = it_out_f(c, 0, 3, os), *ho = it_out_f(c, 1, 2, hs);
  if (!o || !ho) return -1;
  float *h = malloc(B * H * sizeof *h), *gi = malloc(B * G * H * sizeof *gi), *gh = malloc(B * G * H * sizeof *gh);
  if (!h || !gi || !gh) { free(h); free(gi); free(gh); return it_fail(c, "out of memory"); }
  for (size_t i = 0; i < B * H; i++) h[i] = (float)it_get_d(h0, i);
  for (size_t s = 0; s < T; s++) {
    size_t t = rev ? T - 1 - s : s;
    for (size_t b = 0; b < B; b++)
      for (size_t j = 0; j < G * H; j++) gi[b * G * H + j] = bias ? (float)it_get_d(bias, j) : 0;
    memset(gh, 0, B * G * H * sizeof *gh);
    it_sgemm(B, G * H, I, (const float *)x->data + t * B * I, I, wih->data, I, 1, gi, G * H, 1);
    it_sgemm(B, G * H, H, h, H, whh->data, H, 1, gh, G * H, 1);
    for (size_t b = 0; b < B; b++) {
      float *pi = gi + b * G * H, *ph = gh + b * G * H, *hb = h + b * H;
      for (size_t j = 0; j < H; j++) {
        if (!gru) { hb[j] = act(aa, pi[j] + ph[j]); continue; }
        float r = act(ra, pi[j] + ph[j]), z = act(ra, pi[2 * H + j] + ph[2 * H + j]);
        float nw = act(aa, pi[H + j] + r * ph[H + j]);
        hb[j] = (1 - z) * nw + z * hb[j];
      }
    }
    if (seq) memcpy((float *)o->data + t * B * H, h, B * H * sizeof *h);
  }
  if (!seq) memcpy(o->data, h, B * H * sizeof *h);
  memcpy(ho->data, h, B * H * sizeof *h);
  free(h);
  free(gi);
  free(gh);
  return 0;
}
static int k_gru(it_ctx *c) { return simple_rnn(c, 1); }
static int k_rnn(it_ctx *c) { return simple_rnn(c, 0); }

const it_kernel_def it_ops_rnn[] = {
  {"lstm", k_lstm}, {"gru", k_gru}, {"rnn", k_rnn}, {NULL, NULL},
};
