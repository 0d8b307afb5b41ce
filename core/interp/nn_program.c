/* nn_program.c — a NeuralNetwork / NeuralNetworkClassifier / NeuralNetworkRegressor model as a
 * program: model inputs (array inputs reshaped to rank 5 under the legacy mapping; images get
 * the model's channel scale and per-channel bias), one or more kernel ops per layer (nn_lower_*),
 * and for classifiers the label and probability outputs. Layers without a lowering fail here,
 * before anything runs. */
#include "nn_lower.h"
#include "pipeline.h"
#include <stdlib.h>
#include <string.h>

typedef CoreML__Specification__NeuralNetworkPreprocessing Pre;

typedef struct {
  size_t nlayers;
  nn_layer **layers;
  size_t npre;
  Pre **pre;
  int rank5_arrays, rank5_images;
} nn_net;

static const nn_lowering *const FAMILIES[] = {nn_lower_dense, nn_lower_act, nn_lower_shape, nn_lower_nd, nn_lower_rnn, nn_lower_more,
                                                nn_lower_flow};

static nn_lower_fn find_lowering(int kase) {
  for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++)
    for (const nn_lowering *l = FAMILIES[f]; l->fn; l++)
      if (l->kase == kase) return l->fn;
  return NULL;
}

static mlsh_dtype array_dtype(int dt) {
  switch (dt) {
  case CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__ARRAY_DATA_TYPE__DOUBLE: return MLSH_DT_FP64;
  case CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__ARRAY_DATA_TYPE__INT32: return MLSH_DT_INT32;
  case CORE_ML__SPECIFICATION__ARRAY_FEATURE_TYPE__ARRAY_DATA_TYPE__FLOAT16: return MLSH_DT_FP16;
  default: return MLSH_DT_FP32;
  }
}

/* name := op(name) for an input's conversion step (the new definition shadows the input). */
static it_op *input_op(nn_b *B, const char *name, const char *step, const it_kernel_def *k) {
  it_op *op = nn_op(B, "input", nn_str(B, name, step), k);
  if (!op || nn_arg(B, op, "x", nn_find(B, name)) != 0) return NULL;
  return op;
}

/* meanImage: x - mean, the mean image [C, H, W] (the image's declared size). */
static int mean_image(nn_b *B, const char *name, const Pre *p, const int64_t *s) {
  nnw_msg w = nnw_of(p->meanimage);
  size_t n = nnw_reals(&w, 1, 0, NULL, 0);
  int64_t ms[3] = {s[1], s[2], s[3]};
  if (s[2] < 1 || s[3] < 1) return nn_fail(B, "input '%s': meanImage preprocessing needs a fixed image size", name);
  if (it_numel(3, ms) != n) return nn_fail(B, "input '%s': the mean image has %zu values, %lldx%lldx%lld expected", name, n, (long long)ms[0], (long long)ms[1], (long long)ms[2]);
  it_tensor *t = it_tensor_new(MLSH_DT_FP32, 3, ms, B->e);
  double *v = t ? malloc((n + 1) * sizeof *v) : NULL;
  if (!v) { it_unref(t); return t ? mlsh_fail(B->e, NULL, "out of memory") : -1; }
  nnw_reals(&w, 1, 0, v, n);
  for (size_t i = 0; i < n; i++) ((float *)t->data)[i] = (float)v[i];
  free(v);
  it_op *op = input_op(B, name, "mean", nn_k("sub"));
  if (!op) { it_unref(t); return -1; }
  if (nn_imm(B, op, "y", t) != 0 || nn_out(B, op, name) < 0) return -1;
  return 0;
}

static int image_input(nn_b *B, const nn_net *net, const char *name, const CoreML__Specification__ImageFeatureType *im, int sub) {
  int gray = im->colorspace == CORE_ML__SPECIFICATION__IMAGE_FEATURE_TYPE__COLOR_SPACE__GRAYSCALE;
  int bgr = im->colorspace == CORE_ML__SPECIFICATION__IMAGE_FEATURE_TYPE__COLOR_SPACE__BGR;
  int64_t C = gray ? 1 : 3, s[4] = {1, C, im->height > 0 ? im->height : -1, im->width > 0 ? im->width : -1};
  if (im->enumeratedsizes || im->imagesizerange) s[2] = s[3] = -1;
  if ((sub ? it_sub_input(B, name) : nn_input(B, name, MLSH_DT_FP32, 4, s)) < 0) return -1;
  for (size_t i = 0; i < net->npre; i++) {
    const Pre *p = net->pre[i];
    if (p->featurename && *p->featurename && strcmp(p->featurename, name) != 0) continue;
    if (p->preprocessor_case == CORE_ML__SPECIFICATION__NEURAL_NETWORK_PREPROCESSING__PREPROCESSOR_MEAN_IMAGE) {
      if (mean_image(B, name, p, s) != 0) return -1;
      continue;
    }
    const CoreML__Specification__NeuralNetworkImageScaler *sc = p->scaler;
    if (!sc) continue;
    double scale = sc->channelscale != 0 ? sc->channelscale : 1;
    /* channels in the model's colour layout: BGR images carry blue first */
    double bias[3] = {gray ? sc->graybias : bgr ? sc->bluebias : sc->redbias, sc->greenbias, bgr ? sc->redbias : sc->bluebias};
    int64_t bs[3] = {C, 1, 1};
    it_op *op = input_op(B, name, "scale", nn_k("mul"));
    if (!op || nn_immf(B, op, "y", scale) != 0 || nn_out(B, op, name) < 0) return -1;
    op = input_op(B, name, "bias", nn_k("add"));
    if (!op || nn_imm(B, op, "y", nn_floats(B, bias, 3, bs)) != 0 || nn_out(B, op, name) < 0) return -1;
  }
  if (net->rank5_images) {
    int64_t r5[5] = {1, 1, C, s[2], s[3]};
    it_op *op = input_op(B, name, "rank5", &nn_k_reshape_to);
    if (!op || nn_immv(B, op, "shape", r5, 5) != 0 || nn_out(B, op, name) < 0) return -1;
  }
  return 0;
}

static int array_input(nn_b *B, const nn_net *net, const char *name, const CoreML__Specification__ArrayFeatureType *a, int sub) {
  int64_t s[IT_MAX_RANK];
  int r = (int)(a->n_shape < IT_MAX_RANK ? a->n_shape : IT_MAX_RANK);
  for (int i = 0; i < r; i++) s[i] = a->enumeratedshapes || a->shaperange ? -1 : a->shape[i];
  mlsh_dtype dt = array_dtype(a->datatype);
  int slot = sub ? it_sub_input(B, name) : nn_input(B, name, dt, r, s);
  if (slot < 0) return -1;
  if (sub) dt = B->p->slot_types[slot].dt; /* what the pipeline hands over */
  if (dt != MLSH_DT_FP32) {
    it_op *op = input_op(B, name, "cast", nn_k("cast"));
    if (!op || nn_imms(B, op, "dtype", "fp32") != 0 || nn_out(B, op, name) < 0) return -1;
  }
  if (net->rank5_arrays && (r == 1 || r == 3)) { /* [C] -> [1, 1, C, 1, 1]; [C, H, W] -> [1, 1, C, H, W] */
    it_op *op = input_op(B, name, "rank5", &nn_k_reshape_to);
    if (!op || nn_immb(B, op, "rank5", 1) != 0 || nn_out(B, op, name) < 0) return -1;
  }
  return 0;
}

static int inputs(nn_b *B, const CoreML__Specification__ModelDescription *d, const nn_net *net, int sub) {
  for (size_t i = 0; d && i < d->n_input; i++) {
    const CoreML__Specification__FeatureDescription *f = d->input[i];
    const CoreML__Specification__FeatureType *t = f->type;
    int rc;
    if (t && t->type_case == CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_IMAGE_TYPE) rc = image_input(B, net, f->name, t->imagetype, sub);
    else if (t && t->type_case == CORE_ML__SPECIFICATION__FEATURE_TYPE__TYPE_MULTI_ARRAY_TYPE) rc = array_input(B, net, f->name, t->multiarraytype, sub);
    else rc = nn_fail(B, "input '%s': only multiarray and image inputs are supported for neural networks", f->name);
    if (rc != 0) return -1;
  }
  return 0;
}

int nn_lower_layers(nn_b *B, size_t n, nn_layer *const *ls) {
  for (size_t i = 0; i < n; i++) {
    const nn_layer *l = ls[i];
    nn_lower_fn fn = find_lowering((int)l->layer_case);
    B->layer = NULL;
    if (!fn) return mlsh_fail(B->e, NULL, "layer %s (type %s) is not supported by the interpreter", l->name, nn_layer_type(l));
    B->layer = l->name;
    if (fn(B, l) != 0) return -1;
  }
  B->layer = NULL;
  return 0;
}

static int layers(nn_b *B, const nn_net *net) { return nn_lower_layers(B, net->nlayers, net->layers); }

/* Classifier: label and probabilities from the probability blob. */
static int classifier(nn_b *B, const CoreML__Specification__NeuralNetworkClassifier *nc, const nn_net *net,
                      const CoreML__Specification__ModelDescription *d) {
  nn_labels *L = it_program_alloc(B->p, sizeof *L);
  if (!L) return mlsh_fail(B->e, NULL, "out of memory");
  if (nc->class_labels_case == CORE_ML__SPECIFICATION__NEURAL_NETWORK_CLASSIFIER__CLASS_LABELS_STRING_CLASS_LABELS) {
    L->n = nc->stringclasslabels->n_vector;
    L->strs = nc->stringclasslabels->vector;
  } else if (nc->class_labels_case == CORE_ML__SPECIFICATION__NEURAL_NETWORK_CLASSIFIER__CLASS_LABELS_INT64_CLASS_LABELS) {
    L->n = nc->int64classlabels->n_vector;
    L->ints = nc->int64classlabels->vector;
  } else return mlsh_fail(B->e, NULL, "the classifier has no class labels");
  const char *src = nc->labelprobabilitylayername && *nc->labelprobabilitylayername ? nc->labelprobabilitylayername : NULL;
  if (!src && net->nlayers && net->layers[net->nlayers - 1]->n_output) src = net->layers[net->nlayers - 1]->output[0];
  const char *label = d->predictedfeaturename && *d->predictedfeaturename ? d->predictedfeaturename : "classLabel";
  const char *probs = d->predictedprobabilitiesname && *d->predictedprobabilitiesname ? d->predictedprobabilitiesname : "classProbability";
  if (!src) return mlsh_fail(B->e, NULL, "the classifier has no probability layer");
  it_op *op = nn_op(B, "classifier", "classifier", &nn_k_classify);
  if (!op || nn_arg(B, op, "x", nn_use(B, src)) != 0) return -1;
  op->aux = L;
  if (nn_out(B, op, label) < 0 || nn_out(B, op, probs) < 0) return -1;
  op->out_types[0].dt = L->strs ? MLSH_DT_INVALID : MLSH_DT_INT64;
  return 0;
}

int it_nn_lower_model(nn_b *B, const it_model *model, int sub) {
  nn_net net = {0};
  const CoreML__Specification__NeuralNetworkClassifier *nc = NULL;
  if (model->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK) {
    const CoreML__Specification__NeuralNetwork *n = model->neuralnetwork;
    net = (nn_net){n->n_layers, n->layers, n->n_preprocessing, n->preprocessing, !n->arrayinputshapemapping, !n->imageinputshapemapping};
  } else if (model->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK_CLASSIFIER) {
    nc = model->neuralnetworkclassifier;
    net = (nn_net){nc->n_layers, nc->layers, nc->n_preprocessing, nc->preprocessing, !nc->arrayinputshapemapping, !nc->imageinputshapemapping};
  } else if (model->type_case == CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK_REGRESSOR) {
    const CoreML__Specification__NeuralNetworkRegressor *n = model->neuralnetworkregressor;
    net = (nn_net){n->n_layers, n->layers, n->n_preprocessing, n->preprocessing, !n->arrayinputshapemapping, !n->imageinputshapemapping};
  } else return mlsh_fail(B->e, NULL, "not a neural network");
  B->rank5 = net.rank5_arrays;
  const CoreML__Specification__ModelDescription *d = model->description;
  if (!d) return mlsh_fail(B->e, NULL, "the model has no description");
  if (inputs(B, d, &net, sub) != 0 || layers(B, &net) != 0 || (nc && classifier(B, nc, &net, d) != 0)) return -1;
  return 0;
}

int it_nn_load(const CoreML__Specification__Model *model, mlsh_container *c, it_precision prec, it_program **out, mlsh_err *e) {
  (void)c;
  nn_b B;
  if (nn_begin(&B, prec, e) != 0 || it_nn_lower_model(&B, model, 0) != 0) { nn_abort(&B); return -1; }
  const CoreML__Specification__ModelDescription *d = model->description;
  const char *names[256];
  int n = 0;
  for (size_t i = 0; i < d->n_output && n < 256; i++) names[n++] = d->output[i]->name;
  return nn_finish(&B, names, n, out);
}

size_t it_nn_layer_types(const char **out, size_t max) {
  size_t n = 0;
  for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++)
    for (const nn_lowering *l = FAMILIES[f]; l->fn; l++) {
      const ProtobufCFieldDescriptor *d =
          protobuf_c_message_descriptor_get_field(&core_ml__specification__neural_network_layer__descriptor, (unsigned)l->kase);
      if (d && n < max) out[n++] = d->name;
    }
  for (size_t i = 1; i < n; i++) /* insertion sort: a few dozen names */
    for (size_t j = i; j > 0 && strcmp(out[j - 1], out[j]) > 0; j--) {
      const char *t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return n;
}
