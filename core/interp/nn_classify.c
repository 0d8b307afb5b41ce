/* nn_classify.c — a classifier's outputs from its class scores (NeuralNetwork, tree ensemble and
 * GLM classifiers): the probabilities as [K] (one row) or [B, K], and the label of the highest
 * score per row (the first on ties) as a string or int64 tensor [B]. A single score for two
 * classes is the probability of the second (binary classifiers): [1 - p, p]. */
#include "nn_kernels.h"
#include <string.h>

static int k_classify(it_ctx *c) {
  const nn_labels *L = c->op->aux;
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32) return it_fail(c, "class scores must be floats");
  size_t K = L->n;
  int binary = K == 2 && x->n == 1; /* one score: the probability of the second class */
  if (K == 0 || (!binary && x->n % K != 0)) return it_fail(c, "%zu class scores for %zu class labels", x->n, K);
  size_t B = binary ? 1 : x->n / K;
  int64_t ps[2] = {(int64_t)B, (int64_t)K}, ls[1] = {(int64_t)B};
  it_tensor *p = B == 1 ? it_out(c, 1, MLSH_DT_FP32, 1, ps + 1) : it_out(c, 1, MLSH_DT_FP32, 2, ps);
  it_tensor *lab = p ? it_out(c, 0, L->strs ? MLSH_DT_INVALID : MLSH_DT_INT64, 1, ls) : NULL;
  if (!lab) return -1;
  if (L->strs) { /* it_out picks the declared dtype: force the string storage */
    mlsh_err e2;
    it_tensor *s = it_tensor_new(MLSH_DT_INVALID, 1, ls, &e2);
    if (!s) return it_fail(c, "%s", e2.msg);
    it_unref(c->out[0]);
    c->out[0] = lab = s;
  }
  if (binary) {
    ((float *)p->data)[1] = ((float *)x->data)[0];
    ((float *)p->data)[0] = 1.0f - ((float *)x->data)[0];
  } else memcpy(p->data, x->data, x->n * sizeof(float));
  const float *P = p->data;
  for (size_t b = 0; b < B; b++) {
    size_t best = 0;
    for (size_t k = 1; k < K; k++)
      if (P[b * K + k] > P[b * K + best]) best = k;
    if (L->strs) {
      if (!(((char **)lab->data)[b] = strdup(L->strs[best]))) return it_fail(c, "out of memory");
    } else ((int64_t *)lab->data)[b] = L->ints[best];
  }
  return 0;
}
const it_kernel_def nn_k_classify = {"classify", k_classify};
