/* nn_classify.c — a classifier's outputs from its class scores (NeuralNetwork, tree ensemble and
 * GLM classifiers, and the ML-program op `classify`, whose `classes` literal is a list of strings
 * or ints, or a 1-D tensor of them): the probabilities as [K] (one row) or [B, K], and the label of the highest
 * score per row (the first on ties) as a string or int64 tensor [B]. A single score for two
 * classes is the probability of the second (binary classifiers): [1 - p, p]. */
#include "nn_kernels.h"
#include "program.h"
#include <string.h>

static int k_classify(it_ctx *c) {
  const nn_labels *L = c->op->aux;
  if (!L) return it_fail(c, "no class labels bound");
  it_tensor *x = it_arg(c, "x");
  if (!x) x = it_arg_req(c, "probabilities"); /* MIL classify */
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
const it_kernel_def it_ops_classify[] = {{"classify", k_classify}, {NULL, NULL}};

typedef CoreML__Specification__MILSpec__Value MValue;

/* One element of the classes list: a scalar string or integer tensor literal. */
static int list_item(const MValue *v, nn_labels *L, size_t i, int64_t *ints) {
  const CoreML__Specification__MILSpec__TensorValue *t =
      v && v->value_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE && v->immediatevalue &&
              v->immediatevalue->value_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_TENSOR
          ? v->immediatevalue->tensor : NULL;
  if (!t) return -1;
  if (L->strs && t->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_STRINGS && t->strings->n_values == 1)
    L->strs[i] = t->strings->values[0];
  else if (!L->strs && t->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_INTS && t->ints->n_values == 1)
    ints[i] = t->ints->values[0];
  else if (!L->strs && t->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_LONG_INTS &&
           t->longints->n_values == 1)
    ints[i] = t->longints->values[0];
  else return -1;
  return 0;
}

/* The labels from a list literal (what coremltools writes). */
static int from_list(it_program *p, const CoreML__Specification__MILSpec__ListValue *lv, nn_labels *L) {
  L->n = lv->n_values;
  if (L->n == 0) return -1;
  const MValue *v0 = lv->values[0];
  int strs = v0 && v0->immediatevalue && v0->immediatevalue->tensor &&
             v0->immediatevalue->tensor->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_STRINGS;
  int64_t *ints = NULL;
  if (strs) L->strs = it_program_alloc(p, L->n * sizeof *L->strs);
  else L->ints = ints = it_program_alloc(p, L->n * sizeof *ints);
  if (!L->strs && !ints) return -1;
  for (size_t i = 0; i < L->n; i++)
    if (list_item(lv->values[i], L, i, ints) != 0) return -1;
  return 0;
}

int it_classify_bind(it_program *p, it_op *op, const CoreML__Specification__MILSpec__Operation *m, mlsh_err *e) {
  nn_labels *L = it_program_alloc(p, sizeof *L);
  if (!L) return mlsh_fail(e, NULL, "out of memory");
  memset(L, 0, sizeof *L);
  int ok = 0;
  for (size_t i = 0; i < m->n_inputs && !ok; i++) {
    const CoreML__Specification__MILSpec__Argument *a = m->inputs[i]->value;
    if (strcmp(m->inputs[i]->key, "classes") != 0 || !a || a->n_arguments != 1) continue;
    const CoreML__Specification__MILSpec__Argument__Binding *bd = a->arguments[0];
    const it_tensor *t = op->params[i].b[0].imm;
    if (t && t->rank <= 1 && (t->st == IT_STR || t->st == IT_I64)) { /* a 1-D tensor literal */
      L->n = t->n;
      if (t->st == IT_STR) L->strs = t->data;
      else L->ints = t->data;
      ok = L->n > 0;
    } else if (bd->binding_case == CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_VALUE && bd->value &&
               bd->value->immediatevalue &&
               bd->value->immediatevalue->value_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_LIST)
      ok = from_list(p, bd->value->immediatevalue->list, L) == 0;
    else break;
  }
  if (!ok) return mlsh_fail(e, NULL, "op '%s' (classify): 'classes' must be a literal list of strings or ints", op->name);
  op->k = &nn_k_classify;
  op->aux = L;
  if (op->nout >= 1) op->out_types[0].dt = L->strs ? MLSH_DT_INVALID : MLSH_DT_INT64;
  return 0;
}
