/* classic.c — tree ensemble and GLM models as programs: one input slot per model input (a
 * double or int64 feature is a [1] tensor, a multiarray its declared shape), one op (tree.c or
 * glm.c) over all of them, and for classifiers the label / probability op (nn_classify.c).
 * Regressors output their prediction as a vector of the prediction dimensions. */
#include "classic.h"
#include "nn_kernels.h"
#include "pipeline.h"
#include <stdlib.h>
#include <string.h>

double *it_features(it_ctx *c, size_t *n) {
  int k = it_arg_count(c, "x");
  size_t total = 0;
  for (int i = 0; i < k; i++) total += it_arg_at(c, "x", i)->n;
  double *x = malloc((total + 1) * sizeof *x);
  if (!x) return it_fail(c, "out of memory"), NULL;
  size_t j = 0;
  for (int i = 0; i < k; i++) {
    const it_tensor *t = it_arg_at(c, "x", i);
    if (t->st == IT_STR) { free(x); return it_fail(c, "string features are not supported"), NULL; }
    for (size_t e = 0; e < t->n; e++) x[j++] = it_get_d(t, e);
  }
  *n = total;
  return x;
}

static int add_inputs(nn_b *B, const CoreML__Specification__ModelDescription *d, int *slots, int sub) {
  for (size_t i = 0; i < d->n_input; i++) {
    const CoreML__Specification__FeatureDescription *f = d->input[i];
    if (sub) {
      if ((slots[i] = it_sub_input(B, f->name)) < 0) return -1;
      continue;
    }
    const CoreML__Specification__FeatureType *t = f->type;
    int64_t one[1] = {1};
    int s;
    if (!t) return nn_fail(B, "input '%s' has no type", f->name);
    if (t->type_case == CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_DOUBLE_TYPE) s = nn_input(B, f->name, MLSH_DT_FP64, 1, one);
    else if (t->type_case == CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_INT64_TYPE) s = nn_input(B, f->name, MLSH_DT_INT64, 1, one);
    else if (t->type_case == CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_MULTI_ARRAY_TYPE) {
      const CoreML__Specification__ArrayFeatureType *a = t->multiarraytype;
      int64_t sh[IT_MAX_RANK];
      int r = (int)(a->n_shape < IT_MAX_RANK ? a->n_shape : IT_MAX_RANK);
      for (int k = 0; k < r; k++) sh[k] = a->enumeratedshapes || a->shaperange ? -1 : a->shape[k];
      mlsh_dtype dt = a->datatype == CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__ARRAY_DATA_TYPE__DOUBLE ? MLSH_DT_FP64
                      : a->datatype == CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__ARRAY_DATA_TYPE__INT32 ? MLSH_DT_INT32 : MLSH_DT_FP32;
      s = nn_input(B, f->name, dt, r, sh);
    } else return nn_fail(B, "input '%s': only double, int64 and multiarray features are supported (dictionaries are not)", f->name);
    if (s < 0) return -1;
    slots[i] = s;
  }
  return 0;
}

static int labels(nn_b *B, int kase_str, int kase_int, int kase, const CoreML__Specification__StringVector *sv,
                  const CoreML__Specification__Int64Vector *iv, nn_labels **out) {
  nn_labels *L = it_program_alloc(B->p, sizeof *L);
  if (!L) return mlsh_fail(B->e, NULL, "out of memory");
  if (kase == kase_str && sv) { L->n = sv->n_vector; L->strs = sv->vector; }
  else if (kase == kase_int && iv) { L->n = iv->n_vector; L->ints = iv->vector; }
  else return nn_fail(B, "the classifier has no class labels");
  *out = L;
  return 0;
}

static const char *label_name(const CoreML__Specification__ModelDescription *d) {
  return d->predictedfeaturename && *d->predictedfeaturename ? d->predictedfeaturename : d->output[0]->name;
}
static const char *probs_name(const CoreML__Specification__ModelDescription *d) {
  return d->predictedprobabilitiesname && *d->predictedprobabilitiesname ? d->predictedprobabilitiesname : "classProbability";
}

static int is_classifier(const it_model *m) {
  return m->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_TREE_ENSEMBLE_CLASSIFIER ||
         m->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_GLM_CLASSIFIER;
}

int it_classic_load(const CoreML__Specification__Model *model, it_precision prec, it_program **out, mlsh_err *e) {
  nn_b B;
  if (nn_begin(&B, prec, e) != 0 || it_classic_lower_model(&B, model, 0) != 0) { nn_abort(&B); return -1; }
  const char *names[2] = {label_name(model->description), probs_name(model->description)};
  return nn_finish(&B, names, is_classifier(model) ? 2 : 1, out);
}

int it_classic_lower_model(nn_b *B, const it_model *model, int sub) {
  const CoreML__Specification__ModelDescription *d = model->description;
  mlsh_err *e = B->e;
  if (!d || d->n_input == 0 || d->n_output == 0) return mlsh_fail(e, NULL, "the model has no inputs or outputs in its description");
  int *slots = calloc(d->n_input, sizeof *slots);
  if (!slots) return mlsh_fail(e, NULL, "out of memory");
  nn_labels *L = NULL;
  const void *aux = NULL;
  const it_kernel_def *k = NULL;
  size_t dims = 0;
  int rc = add_inputs(B, d, slots, sub);
  int tc_case = model->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_TREE_ENSEMBLE_CLASSIFIER;
  int gc_case = model->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_GLM_CLASSIFIER;
  const CoreML__Specification__TreeEnsembleClassifier *tc = tc_case ? model->treeensembleclassifier : NULL;
  const CoreML__Specification__GLMClassifier *gc = gc_case ? model->glmclassifier : NULL;
  if (rc == 0 && tc) {
    rc = labels(B, CORE_ML__SPECIFICATION__TREE_ENSEMBLE_CLASSIFIER__CLASS_LABELS_STRING_CLASS_LABELS,
                CORE_ML__SPECIFICATION__TREE_ENSEMBLE_CLASSIFIER__CLASS_LABELS_INT64_CLASS_LABELS, (int)tc->class_labels_case,
                tc->stringclasslabels, tc->int64classlabels, &L);
    nnw_msg u = nnw_of(tc);
    if (rc == 0) aux = it_tree_compile(B, tc->treeensemble, (int)nnw_u64(&u, 2, 0), &dims);
    k = &it_k_tree;
  } else if (rc == 0 && model->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_TREE_ENSEMBLE_REGRESSOR) {
    nnw_msg u = nnw_of(model->treeensembleregressor);
    aux = it_tree_compile(B, model->treeensembleregressor->treeensemble, (int)nnw_u64(&u, 2, 0), &dims);
    k = &it_k_tree;
  } else if (rc == 0 && gc) {
    rc = labels(B, CORE_ML__SPECIFICATION__GLMCLASSIFIER__CLASS_LABELS_STRING_CLASS_LABELS,
                CORE_ML__SPECIFICATION__GLMCLASSIFIER__CLASS_LABELS_INT64_CLASS_LABELS, (int)gc->class_labels_case,
                gc->stringclasslabels, gc->int64classlabels, &L);
    if (rc == 0) aux = it_glm_compile(B, &gc->base, 1, L->n, &dims);
    k = &it_k_glm;
  } else if (rc == 0 && model->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_GLM_REGRESSOR) {
    aux = it_glm_compile(B, &model->glmregressor->base, 0, 0, &dims);
    k = &it_k_glm;
  } else if (rc == 0) rc = mlsh_fail(e, NULL, "not a tree ensemble or GLM model");
  if (rc == 0 && !aux) rc = -1;
  const char *label = label_name(d), *probs = probs_name(d);
  const char *scores = L ? "scores" : label;
  it_op *op = rc == 0 ? nn_op(B, k->type, scores, k) : NULL;
  if (!op || nn_args(B, op, "x", slots, (int)d->n_input) != 0 || nn_out(B, op, scores) < 0) rc = -1;
  else op->aux = aux;
  free(slots);
  if (rc == 0 && L) {
    op = nn_op(B, "classifier", "classifier", &nn_k_classify);
    if (!op || nn_arg(B, op, "x", nn_find(B, scores)) != 0 || nn_out(B, op, label) < 0 || nn_out(B, op, probs) < 0) rc = -1;
    else {
      op->aux = L;
      op->out_types[0].dt = L->strs ? MLSH_DT_INVALID : MLSH_DT_INT64;
    }
  }
  return rc;
}
