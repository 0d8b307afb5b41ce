/* ops_activation.c — activations (iOS15 activation.py and later versions): relu, relu6, sigmoid,
 * sigmoid_hard, tanh, scaled_tanh, silu, gelu (EXACT, TANH_APPROXIMATION, SIGMOID_APPROXIMATION),
 * elu, leaky_relu, thresholded_relu, softplus, softplus_parametric, softsign, prelu,
 * linear_activation, clamped_relu. alpha/beta scalars; prelu and softplus_parametric take
 * per-channel vectors along axis 1 (rank >= 3). */
#include "ops.h"
#include "pool.h"
#include <math.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* relu / relu6 over n floats: max(x, 0) then min(., hi) (hi < 0: no upper clamp). maxps/minps
 * return their second operand for NaN, as the scalar x > 0 ? x : 0 does. */
static void clamp_rows(const float *a, float *d, size_t n, float hi) {
  size_t i = 0;
#if defined(__SSE__)
  __m128 z = _mm_setzero_ps(), h = _mm_set1_ps(hi);
  for (; i + 4 <= n; i += 4) {
    __m128 v = _mm_max_ps(_mm_loadu_ps(a + i), z);
    if (hi >= 0) v = _mm_min_ps(v, h);
    _mm_storeu_ps(d + i, v);
  }
#endif
  for (; i < n; i++) {
    float v = a[i] > 0 ? a[i] : 0.0f;
    d[i] = hi >= 0 && !(v < hi) ? hi : v;
  }
}

typedef enum { A_RELU, A_RELU6, A_SIGMOID, A_HSIG, A_TANH, A_STANH, A_SILU, A_GELU_EXACT, A_GELU_TANH, A_GELU_SIG,
               A_ELU, A_LEAKY, A_THRESH, A_SOFTPLUS, A_SOFTSIGN, A_LINEAR, A_CLAMPED } act;

static inline float apply(act k, float x, float al, float be) {
  switch (k) {
  case A_RELU: return x > 0 ? x : 0;
  case A_RELU6: return x < 0 ? 0 : (x > 6 ? 6 : x);
  case A_SIGMOID: return 1.0f / (1.0f + expf(-x));
  case A_HSIG: { float v = al * x + be; return v < 0 ? 0 : (v > 1 ? 1 : v); }
  case A_TANH: return tanhf(x);
  case A_STANH: return al * tanhf(be * x);
  case A_SILU: return x / (1.0f + expf(-x));
  case A_GELU_EXACT: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  case A_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  case A_GELU_SIG: return x / (1.0f + expf(-1.702f * x));
  case A_ELU: return x > 0 ? x : al * (expf(x) - 1.0f);
  case A_LEAKY: return x >= 0 ? x : al * x;
  case A_THRESH: return x > al ? x : 0;
  case A_SOFTPLUS: return x > 20 ? x : log1pf(expf(x));
  case A_SOFTSIGN: return x / (1.0f + fabsf(x));
  case A_LINEAR: return al * x + be;
  case A_CLAMPED: { float v = x >= 0 ? x : al * x; return v > be ? be : v; }
  }
  return x;
}

typedef struct {
  act k;
  const float *a;
  float *d;
  float al, be;
} act_job;

static void act_range(void *ctx, size_t lo, size_t hi) {
  const act_job *j = ctx;
  const float *a = j->a + lo;
  float *d = j->d + lo;
  size_t n = hi - lo;
  switch (j->k) { /* the hot ones as plain loops the compiler vectorises */
  case A_RELU: clamp_rows(a, d, n, -1.0f); break;
  case A_RELU6: clamp_rows(a, d, n, 6.0f); break;
  default: for (size_t i = 0; i < n; i++) d[i] = apply(j->k, a[i], j->al, j->be);
  }
}

/* The input's buffer, when this op is its last reader: x comes from a slot (not an immediate)
 * that dies after this op, nothing else holds it (refs 1: not a program output, not kept by a
 * trace), it owns its data and has the output's dtype. An activation after a conv or linear then
 * rewrites that output where it lies instead of streaming it into a fresh tensor. */
static it_tensor *reusable_input(it_ctx *c, it_tensor *x) {
  if (x->refs != 1 || x->borrowed || x->st != IT_F32) return NULL;
  mlsh_dtype dt = it_out_dtype(c, 0);
  if (dt != MLSH_DT_INVALID && dt != x->dt) return NULL;
  int slot = -1;
  for (int i = 0; i < c->op->nparams; i++)
    if (strcmp(c->op->params[i].name, "x") == 0 && c->op->params[i].n == 1 && !c->op->params[i].b[0].imm) slot = c->op->params[i].b[0].slot;
  if (slot < 0 || c->env->slots[slot] != x) return NULL;
  for (int i = 0; i < c->op->nfree; i++)
    if (c->op->free_after[i] == slot) {
      it_out_set(c, 0, x);
      return x;
    }
  return NULL;
}

static int run(it_ctx *c, act k, double dal, double dbe) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "needs a float input, given %s", mlsh_dtype_name(x->dt));
  it_tensor *o = reusable_input(c, x);
  int inplace = o != NULL;
  if (!o && !(o = it_out_f(c, 0, x->rank, x->shape))) return -1;
  act_job j = {k, x->data, o->data, (float)it_arg_float(c, "alpha", dal), (float)it_arg_float(c, "beta", dbe)};
  /* relu/relu6 are memory-bound: below ~4 MiB (usually cache-warm, in place) waking the pool
   * costs more CPU than it saves (measured on MobileNetV2) */
  if ((k == A_RELU || k == A_RELU6) && x->n < IT_BIG_MAP) act_range(&j, 0, x->n);
  else it_parallel_range(x->n, k == A_RELU || k == A_RELU6 ? 1 : 16, act_range, &j);
  /* the executor rounds only tensors nobody else holds: an in-place result is still held by x's slot */
  if (inplace && it_rounds_fp16(c->env, o->dt)) it_round_fp16(o->data, o->n);
  return 0;
}

static int k_relu(it_ctx *c) { return run(c, A_RELU, 0, 0); }
static int k_relu6(it_ctx *c) { return run(c, A_RELU6, 0, 0); }
static int k_sigmoid(it_ctx *c) { return run(c, A_SIGMOID, 0, 0); }
static int k_sigmoid_hard(it_ctx *c) { return run(c, A_HSIG, 0.2, 0.5); }
static int k_tanh(it_ctx *c) { return run(c, A_TANH, 0, 0); }
static int k_scaled_tanh(it_ctx *c) { return run(c, A_STANH, 1, 1); }
static int k_silu(it_ctx *c) { return run(c, A_SILU, 0, 0); }
static int k_elu(it_ctx *c) { return run(c, A_ELU, 1, 0); }
static int k_leaky_relu(it_ctx *c) { return run(c, A_LEAKY, 0.01, 0); }
static int k_thresholded_relu(it_ctx *c) { return run(c, A_THRESH, 1, 0); }
static int k_softplus(it_ctx *c) { return run(c, A_SOFTPLUS, 0, 0); }
static int k_softsign(it_ctx *c) { return run(c, A_SOFTSIGN, 0, 0); }
static int k_linear_activation(it_ctx *c) { return run(c, A_LINEAR, 1, 0); }
static int k_clamped_relu(it_ctx *c) { return run(c, A_CLAMPED, 0, 6); }

static int k_gelu(it_ctx *c) {
  const char *mode = it_arg_str(c, "mode", "EXACT");
  if (strcmp(mode, "EXACT") == 0) return run(c, A_GELU_EXACT, 0, 0);
  if (strcmp(mode, "TANH_APPROXIMATION") == 0) return run(c, A_GELU_TANH, 0, 0);
  if (strcmp(mode, "SIGMOID_APPROXIMATION") == 0) return run(c, A_GELU_SIG, 0, 0);
  return it_fail(c, "unknown gelu mode '%s'", mode);
}

/* prelu(x, alpha[C]) and softplus_parametric(x, alpha[C], beta[C]): per channel along axis 1. */
static int per_channel(it_ctx *c, int softplus) {
  it_tensor *x = it_arg_req(c, "x"), *al = x ? it_arg_req(c, "alpha") : NULL, *be = softplus && al ? it_arg_req(c, "beta") : NULL;
  if (!al || (softplus && !be)) return -1;
  if (x->st != IT_F32 || x->rank < 2) return it_fail(c, "needs a float input of rank >= 2");
  size_t C = (size_t)x->shape[1], inner = it_inner(x, 2), outer = (size_t)x->shape[0];
  if (al->n != C && al->n != 1) return it_fail(c, "alpha has %zu values, the input %zu channels", al->n, C);
  if (be && be->n != C && be->n != 1) return it_fail(c, "beta has %zu values, the input %zu channels", be->n, C);
  it_tensor *o = it_out_f(c, 0, x->rank, x->shape);
  if (!o) return -1;
  const float *a = x->data;
  float *d = o->data;
  for (size_t b = 0; b < outer; b++)
    for (size_t ch = 0; ch < C; ch++) {
      float A = (float)it_get_d(al, al->n == 1 ? 0 : ch), B = be ? (float)it_get_d(be, be->n == 1 ? 0 : ch) : 0;
      size_t off = (b * C + ch) * inner;
      for (size_t i = 0; i < inner; i++) {
        float v = a[off + i];
        d[off + i] = softplus ? A * log1pf(expf(B * v)) : (v >= 0 ? v : A * v);
      }
    }
  return 0;
}
static int k_prelu(it_ctx *c) { return per_channel(c, 0); }
static int k_softplus_parametric(it_ctx *c) { return per_channel(c, 1); }

const it_kernel_def it_ops_activation[] = {
  {"relu", k_relu}, {"relu6", k_relu6}, {"sigmoid", k_sigmoid}, {"sigmoid_hard", k_sigmoid_hard},
  {"tanh", k_tanh}, {"scaled_tanh", k_scaled_tanh}, {"silu", k_silu}, {"gelu", k_gelu}, {"elu", k_elu},
  {"leaky_relu", k_leaky_relu}, {"thresholded_relu", k_thresholded_relu}, {"softplus", k_softplus},
  {"softsign", k_softsign}, {"linear_activation", k_linear_activation}, {"clamped_relu", k_clamped_relu},
  {"prelu", k_prelu}, {"softplus_parametric", k_softplus_parametric}, {NULL, NULL},
};
