/* pipeline.c — pipeline, pipelineClassifier and pipelineRegressor models as one program: the
 * pipeline's description inputs become the program's inputs, then each sub-model is lowered in
 * order by its own front end (NeuralNetwork, tree ensemble / GLM, feature engineering, an ML
 * program run as one op over its own loaded block (pipeline_prog.c), or a nested pipeline), reading its inputs by name from the values defined so far. After each
 * sub-model its internal values are renamed "<sub-model name>/<name>" so the models after it see
 * only the pipeline's inputs and the declared outputs of earlier models, as Core ML wires them.
 * Errors name the sub-model: "pipeline model 2 (scaler): ...". */
#include "pipeline.h"
#include <stdio.h>
#include <string.h>

#define PIPE_MAX_DEPTH 8

typedef CoreML__Specification__Pipeline Pipe;

static const Pipe *pipe_of(const it_model *m) {
  switch (m->type_case) {
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE: return m->pipeline;
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE_CLASSIFIER: return m->pipelineclassifier ? m->pipelineclassifier->pipeline : NULL;
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE_REGRESSOR: return m->pipelineregressor ? m->pipelineregressor->pipeline : NULL;
  default: return NULL;
  }
}

mlsh_dtype it_feature_dtype(const CoreML__Specification__FeatureDescription *f) {
  const CoreML__Specification__FeatureType *t = f ? f->type : NULL;
  if (!t) return MLSH_DT_INVALID;
  switch (t->type_case) {
  case CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_DOUBLE_TYPE: return MLSH_DT_FP64;
  case CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_INT64_TYPE: return MLSH_DT_INT64;
  case CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_IMAGE_TYPE: return MLSH_DT_FP32;
  case CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_MULTI_ARRAY_TYPE:
    switch (t->multiarraytype->datatype) {
    case CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__ARRAY_DATA_TYPE__DOUBLE: return MLSH_DT_FP64;
    case CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__ARRAY_DATA_TYPE__INT32: return MLSH_DT_INT32;
    case CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__ARRAY_DATA_TYPE__FLOAT16: return MLSH_DT_FP16;
    default: return MLSH_DT_FP32;
    }
  default: return MLSH_DT_INVALID;
  }
}

int it_feature_input(nn_b *B, const CoreML__Specification__FeatureDescription *f) {
  const CoreML__Specification__FeatureType *t = f->type;
  int64_t one[1] = {1}, s[IT_MAX_RANK];
  if (!t) return nn_fail(B, "input '%s' has no type", f->name);
  if (t->type_case == CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_IMAGE_TYPE) {
    const CoreML__Specification__ImageFeatureType *im = t->imagetype;
    int flex = im->enumeratedsizes || im->imagesizerange;
    int64_t sh[4] = {1, im->colorspace == CORE_ML__SPECIFICATION__IMAGE_FEATURE_TYPE__COLOR_SPACE__GRAYSCALE ? 1 : 3,
                     im->height > 0 && !flex ? im->height : -1, im->width > 0 && !flex ? im->width : -1};
    return nn_input(B, f->name, MLSH_DT_FP32, 4, sh);
  }
  if (t->type_case == CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_MULTI_ARRAY_TYPE) {
    const CoreML__Specification__ArrayFeatureType *a = t->multiarraytype;
    int r = (int)(a->n_shape < IT_MAX_RANK ? a->n_shape : IT_MAX_RANK);
    for (int k = 0; k < r; k++) s[k] = a->enumeratedshapes || a->shaperange ? -1 : a->shape[k];
    return nn_input(B, f->name, it_feature_dtype(f), r, s);
  }
  mlsh_dtype dt = it_feature_dtype(f);
  if (dt != MLSH_DT_INVALID) return nn_input(B, f->name, dt, 1, one);
  return nn_fail(B, "input '%s': string, dictionary and sequence features are not supported by the interpreter", f->name);
}

int it_sub_input(nn_b *B, const char *name) {
  int s = nn_find(B, name);
  if (s < 0) nn_fail(B, "input '%s' is neither a pipeline input nor an output of an earlier model", name);
  return s;
}

static int lower_pipeline(nn_b *B, const it_model *m, int sub, int depth, mlsh_container *c);

static int lower_sub(nn_b *B, const it_model *m, int depth, mlsh_container *c) {
  switch (m->type_case) {
  case CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK_CLASSIFIER:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK_REGRESSOR: return it_nn_lower_model(B, m, 1);
  case CORE_ML__SPECIFICATION__MODEL__TYPE_TREE_ENSEMBLE_CLASSIFIER:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_TREE_ENSEMBLE_REGRESSOR:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_GLM_CLASSIFIER:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_GLM_REGRESSOR: return it_classic_lower_model(B, m, 1);
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE_CLASSIFIER:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE_REGRESSOR: return lower_pipeline(B, m, 1, depth + 1, c);
  case CORE_ML__SPECIFICATION__MODEL__TYPE_ML_PROGRAM: return it_pipeline_program(B, m, c);
  default: break;
  }
  int rc = it_feature_lower_model(B, m);
  if (rc != 1) return rc;
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(&core_ml__specification__model__descriptor, (unsigned)m->type_case);
  return nn_fail(B, "model type %s is not supported by the interpreter", f ? f->name : "(none)");
}

/* Whether name is one of the model's declared outputs. */
static int declared(const it_model *m, const char *name) {
  for (size_t i = 0; m->description && i < m->description->n_output; i++)
    if (strcmp(m->description->output[i]->name, name) == 0) return 1;
  return 0;
}

static int lower_pipeline(nn_b *B, const it_model *m, int sub, int depth, mlsh_container *c) {
  const Pipe *p = pipe_of(m);
  if (depth > PIPE_MAX_DEPTH) return nn_fail(B, "pipelines nested deeper than %d", PIPE_MAX_DEPTH);
  if (!p || p->n_models == 0) return nn_fail(B, "the pipeline has no models");
  const CoreML__Specification__ModelDescription *d = m->description;
  if (!d) return nn_fail(B, "the pipeline has no description");
  for (size_t i = 0; !sub && i < d->n_input; i++)
    if (it_feature_input(B, d->input[i]) < 0) return -1;
  for (size_t i = 0; i < p->n_models; i++) {
    const it_model *sm = p->models[i];
    const char *given = i < p->n_names && p->names[i] && *p->names[i] ? p->names[i] : NULL;
    char fallback[32];
    snprintf(fallback, sizeof fallback, "model%zu", i + 1);
    const char *tag = nn_str(B, given ? given : fallback, NULL);
    if (!tag) return -1;
    int base = B->p->nslots;
    const char *outer = B->layer;
    B->layer = NULL;
    if (!sm->description || lower_sub(B, sm, depth, c) != 0) {
      const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(&core_ml__specification__model__descriptor, (unsigned)sm->type_case);
      char why[sizeof B->e->msg];
      snprintf(why, sizeof why, "%s", sm->description ? B->e->msg : "the model has no description");
      return mlsh_fail(B->e, NULL, "pipeline model %zu (%s): %s", i + 1, f ? f->name : "unknown type", why);
    }
    B->layer = outer;
    for (int s = base; s < B->p->nslots; s++)
      if (!declared(sm, B->p->slot_names[s]) && !(B->p->slot_names[s] = nn_str(B, tag, B->p->slot_names[s]))) return -1;
  }
  return 0;
}

int it_pipeline_load(const it_model *model, mlsh_container *c, it_precision prec, it_program **out, mlsh_err *e) {
  nn_b B;
  if (nn_begin(&B, prec, e) != 0 || lower_pipeline(&B, model, 0, 0, c) != 0) { nn_abort(&B); return -1; }
  const CoreML__Specification__ModelDescription *d = model->description;
  const char *names[256];
  int n = 0;
  for (size_t i = 0; i < d->n_output && n < 256; i++) names[n++] = d->output[i]->name;
  if (n == 0) { nn_abort(&B); return mlsh_fail(e, NULL, "the pipeline declares no outputs"); }
  return nn_finish(&B, names, n, out);
}
