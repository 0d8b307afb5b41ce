/* nn_lower_dense.c — layers with weights: innerProduct (MIL linear), convolution and
 * deconvolution (conv / conv_transpose), batchnorm (batch_norm, or instance_norm when it computes
 * its own statistics), pooling (max/avg/l2_pool; global pooling as reduce_max/mean/l2_norm),
 * embedding(ND), batchedMatMul (matmul / linear), loadConstant(ND), scale and bias, lrn
 * (local_response_norm), l2normalize and mvn (nn_norm). Legacy
 * layers compute on the trailing [C, H, W] (NN_FOLD4 / NN_FLAT views of any leading dims). */
#include "nn_lower.h"
#include <string.h>

typedef CoreML__Specification__WeightParams WP;
#define CASE(x) CORE_ML__SPECIFICATION__NEURAL_NETWORK_LAYER__LAYER_##x

static int inner_product(nn_b *B, const nn_layer *l) {
  const CoreML__Specification__InnerProductLayerParams *p = l->innerproduct;
  int64_t ws[2] = {(int64_t)p->outputchannels, (int64_t)p->inputchannels}, bs[1] = {ws[0]};
  it_op *op = nn_layer_op(B, l, NULL, nn_k("linear"), NN_FLAT, 0);
  if (!op || nn_imm(B, op, "weight", nn_weights(B, p->weights, (size_t)(ws[0] * ws[1]), 2, ws, "weights")) != 0) return -1;
  if (p->hasbias && nn_imm(B, op, "bias", nn_weights(B, p->bias, (size_t)ws[0], 1, bs, "bias")) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int convolution(nn_b *B, const nn_layer *l) {
  const CoreML__Specification__ConvolutionLayerParams *p = l->convolution;
  int64_t G = p->ngroups ? (int64_t)p->ngroups : 1, O = (int64_t)p->outputchannels, KC = (int64_t)p->kernelchannels;
  int64_t kh = p->n_kernelsize > 0 ? (int64_t)p->kernelsize[0] : 3, kw = p->n_kernelsize > 1 ? (int64_t)p->kernelsize[1] : 3;
  int64_t st[2] = {1, 1}, dl[2] = {1, 1}, pad[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < 2 && i < p->n_stride; i++) st[i] = (int64_t)p->stride[i];
  for (size_t i = 0; i < 2 && i < p->n_dilationfactor; i++) dl[i] = (int64_t)p->dilationfactor[i];
  /* weights: conv [O, KC, kh, kw]; deconvolution [KC, O / G, kh, kw] (conv_transpose's layout) */
  int64_t ws[4] = {p->isdeconvolution ? KC : O, p->isdeconvolution ? (G ? O / G : O) : KC, kh, kw}, bs[1] = {O};
  it_op *op = nn_layer_op(B, l, NULL, nn_k(p->isdeconvolution ? "conv_transpose" : "conv"), NN_FOLD4, 0);
  if (!op || nn_imm(B, op, "weight", nn_weights(B, p->weights, (size_t)(ws[0] * ws[1] * kh * kw), 4, ws, "weights")) != 0) return -1;
  if (p->hasbias && nn_imm(B, op, "bias", nn_weights(B, p->bias, (size_t)O, 1, bs, "bias")) != 0) return -1;
  const char *pt = "custom";
  if (p->convolution_padding_type_case == CORE_ML__SPECIFICATION__CONVOLUTION_LAYER_PARAMS__CONVOLUTION_PADDING_TYPE_SAME)
    pt = p->same->asymmetrymode == 1 ? "same_lower" : "same";
  else if (p->valid && p->valid->paddingamounts) {
    const CoreML__Specification__ConvolutionLayerParams__BorderAmounts *ba = p->valid->paddingamounts;
    for (size_t i = 0; i < 2 && i < ba->n_borderamounts; i++) {
      pad[2 * i] = (int64_t)ba->borderamounts[i]->startedgesize;
      pad[2 * i + 1] = (int64_t)ba->borderamounts[i]->endedgesize;
    }
  }
  if (nn_immv(B, op, "strides", st, 2) || nn_immv(B, op, "dilations", dl, 2) || nn_imms(B, op, "pad_type", pt) ||
      nn_immv(B, op, "pad", pad, 4) || nn_immi(B, op, "groups", G))
    return -1;
  if (p->isdeconvolution && p->n_outputshape == 2) {
    int64_t os[2] = {(int64_t)p->outputshape[0], (int64_t)p->outputshape[1]};
    if (nn_immv(B, op, "output_shape", os, 2) != 0) return -1;
  }
  return nn_layer_outs(B, op, l);
}

static int batchnorm(nn_b *B, const nn_layer *l) {
  const CoreML__Specification__BatchnormLayerParams *p = l->batchnorm;
  int64_t C[1] = {(int64_t)p->channels};
  size_t n = (size_t)C[0];
  it_op *op = nn_layer_op(B, l, NULL, nn_k(p->computemeanvar ? "instance_norm" : "batch_norm"), NN_FOLD4, 0);
  if (!op || nn_imm(B, op, "gamma", nn_weights(B, p->gamma, n, 1, C, "gamma")) != 0 ||
      nn_imm(B, op, "beta", nn_weights(B, p->beta, n, 1, C, "beta")) != 0 || nn_immf(B, op, "epsilon", p->epsilon) != 0)
    return -1;
  if (p->computemeanvar && !p->instancenormalization) return nn_fail(B, "computeMeanVar without instanceNormalization is not supported");
  if (!p->computemeanvar && (nn_imm(B, op, "mean", nn_weights(B, p->mean, n, 1, C, "mean")) != 0 ||
                             nn_imm(B, op, "variance", nn_weights(B, p->variance, n, 1, C, "variance")) != 0))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int pooling(nn_b *B, const nn_layer *l) {
  const CoreML__Specification__PoolingLayerParams *p = l->pooling;
  static const char *const kinds[3] = {"max_pool", "avg_pool", "l2_pool"}, *const globals[3] = {"reduce_max", "reduce_mean", "reduce_l2_norm"};
  int t = p->type >= 0 && p->type <= 2 ? (int)p->type : 0;
  if (p->globalpooling) {
    int64_t axes[2] = {-2, -1};
    it_op *op = nn_layer_op(B, l, NULL, nn_k(globals[t]), 0, 0);
    if (!op || nn_immv(B, op, "axes", axes, 2) != 0 || nn_immb(B, op, "keep_dims", 1) != 0) return -1;
    return nn_layer_outs(B, op, l);
  }
  int64_t k[2] = {3, 3}, st[2] = {1, 1}, pad[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < 2 && i < p->n_kernelsize; i++) k[i] = (int64_t)p->kernelsize[i];
  for (size_t i = 0; i < 2 && i < p->n_stride; i++) st[i] = (int64_t)p->stride[i];
  nnw_msg m = nnw_of(p);
  const char *pt = "custom";
  int ceil = 0, has;
  nnw_msg v = nnw_sub(&m, 30, &has); /* valid: ValidPadding{BorderAmounts paddingAmounts = 1} */
  if (has) {
    nnw_msg ba = nnw_sub(&v, 1, NULL);
    size_t cur = 0, i = 0;
    nnw_field f;
    while (nnw_next(&ba, &cur, &f) && i < 2)
      if (f.field == 10 && f.wire == 2) {
        nnw_msg e = nnw_raw(f.data, f.len);
        pad[2 * i] = (int64_t)nnw_u64(&e, 1, 0);
        pad[2 * i + 1] = (int64_t)nnw_u64(&e, 2, 0);
        i++;
      }
  } else if (nnw_has(&m, 31)) pt = "same";
  else {
    nnw_msg ilp = nnw_sub(&m, 32, &has); /* includeLastPixel: symmetric [H, W] pads, windows may pass the end */
    if (has) {
      int64_t pa[2] = {0, 0};
      nnw_ints(&ilp, 10, pa, 2);
      pad[0] = pad[1] = pa[0];
      pad[2] = pad[3] = pa[1];
      ceil = 1;
    }
  }
  it_op *op = nn_layer_op(B, l, NULL, nn_k(kinds[t]), NN_FOLD4, 0);
  if (!op || nn_immv(B, op, "kernel_sizes", k, 2) || nn_immv(B, op, "strides", st, 2) || nn_imms(B, op, "pad_type", pt) ||
      nn_immv(B, op, "pad", pad, 4) || nn_immb(B, op, "ceil_mode", ceil) ||
      nn_immb(B, op, "exclude_padding_from_average", p->avgpoolexcludepadding))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int embedding(nn_b *B, const nn_layer *l) {
  int nd = l->layer_case == CASE(EMBEDDING_ND);
  uint64_t V = nd ? l->embeddingnd->vocabsize : l->embedding->inputdim, D = nd ? l->embeddingnd->embeddingsize : l->embedding->outputchannels;
  const WP *w = nd ? l->embeddingnd->weights : l->embedding->weights, *b = nd ? l->embeddingnd->bias : l->embedding->bias;
  int hb = nd ? l->embeddingnd->hasbias : l->embedding->hasbias;
  int64_t ws[2] = {(int64_t)D, (int64_t)V}, bs[1] = {(int64_t)D};
  it_op *op = nn_layer_op(B, l, NULL, nd ? &nn_k_embedding_nd : &nn_k_embedding, 0, 0);
  if (!op || nn_imm(B, op, "weight", nn_weights(B, w, (size_t)(D * V), 2, ws, "weights")) != 0) return -1;
  if (hb && nn_imm(B, op, "bias", nn_weights(B, b, (size_t)D, 1, bs, "bias")) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

static int batched_matmul(nn_b *B, const nn_layer *l) {
  const CoreML__Specification__BatchedMatMulLayerParams *p = l->batchedmatmul;
  if (l->n_input >= 2) {
    it_op *op = nn_layer_op(B, l, NULL, nn_k("matmul"), 0, 0);
    if (!op || nn_arg(B, op, "y", nn_layer_in(B, l, 1)) || nn_immb(B, op, "transpose_x", p->transposea) ||
        nn_immb(B, op, "transpose_y", p->transposeb))
      return -1;
    return nn_layer_outs(B, op, l);
  }
  if (p->transposea) return nn_fail(B, "transposeA with a weight matrix is not supported");
  int64_t K = (int64_t)p->weightmatrixfirstdimension, N = (int64_t)p->weightmatrixseconddimension;
  int64_t ws[2] = {K, N}, bs[1] = {N};
  it_tensor *w = nn_weights(B, p->weights, (size_t)(K * N), 2, ws, "weights");
  if (!w) return -1;
  /* y = x · W (W is [K, N]) = linear(x, Wᵀ) */
  int64_t ts[2] = {N, K};
  it_tensor *wt = it_tensor_new(MLSH_DT_FP32, 2, ts, B->e);
  if (!wt) { it_unref(w); return -1; }
  for (int64_t i = 0; i < K; i++)
    for (int64_t j = 0; j < N; j++) ((float *)wt->data)[j * K + i] = ((float *)w->data)[i * N + j];
  it_unref(w);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("linear"), 0, 0);
  if (!op || nn_imm(B, op, "weight", wt) != 0) return -1;
  if (p->hasbias && nn_imm(B, op, "bias", nn_weights(B, p->bias, (size_t)N, 1, bs, "bias")) != 0) return -1;
  return nn_layer_outs(B, op, l);
}

/* loadConstant: shape [C, H, W]; loadConstantND: any shape. The value is a program constant. */
static int load_constant(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int64_t s[IT_MAX_RANK];
  size_t r = nnw_ints(&m, 1, s, IT_MAX_RANK);
  if (r == 0 || r > IT_MAX_RANK) return nn_fail(B, "bad constant shape");
  size_t n = it_numel((int)r, s);
  if (n == SIZE_MAX) return nn_fail(B, "bad constant shape");
  it_tensor *t = nn_weights_raw(B, nnw_sub(&m, 2, NULL), n, (int)r, s, "data");
  if (!t) return -1;
  it_op *op = nn_layer_op(B, l, NULL, nn_k("identity"), 0, 1);
  if (!op || nn_layer_outs(B, op, l) != 0) { it_unref(t); return -1; }
  op->is_const = 1;
  B->p->consts[op->out_slots[0]] = t;
  return 0;
}

/* scale: x * scale (+ bias), each of shape [1] or [C] or [C, H, W]; bias: x + bias. */
static int scale_bias(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int is_scale = l->layer_case == CASE(SCALE);
  int64_t s[3] = {1, 1, 1}, sh[3];
  int last = nn_layer_in(B, l, 0);
  const char *stages[2] = {"scale", "bias"};
  for (int k = is_scale ? 0 : 1; k < 2; k++) {
    if (is_scale && k == 1 && !nnw_u64(&m, 3, 0)) break;
    unsigned shape_f = is_scale ? (k == 0 ? 1 : 4) : 1, val_f = is_scale ? (k == 0 ? 2 : 5) : 2;
    size_t r = nnw_ints(&m, shape_f, sh, 3);
    if (r != 1 && r != 3) return nn_fail(B, "%s shape must have 1 or 3 values", stages[k]);
    if (r == 1) { s[0] = sh[0]; s[1] = s[2] = 1; } else memcpy(s, sh, sizeof s);
    it_tensor *t = nn_weights_raw(B, nnw_sub(&m, val_f, NULL), (size_t)(s[0] * s[1] * s[2]), 3, s, stages[k]);
    int final = k == 1 || !nnw_u64(&m, 3, 0) || !is_scale;
    it_op *op = nn_op(B, nn_layer_type(l), final ? l->name : nn_str(B, l->name, stages[k]), nn_k(k == 0 ? "mul" : "add"));
    if (!op || nn_arg(B, op, "x", last) != 0 || nn_imm(B, op, "y", t) != 0) return -1;
    if (final) return nn_layer_outs(B, op, l);
    if ((last = nn_out(B, op, nn_str(B, l->name, stages[k]))) < 0) return -1;
  }
  return nn_fail(B, "bad scale layer");
}

/* lrn: local_response_norm over C; l2normalize and mvn: nn_norm (epsilon 0 means 1e-6). */
static int lrn(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  float k = nnw_f32(&m, 4, 0);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("local_response_norm"), NN_FOLD4, 0);
  if (!op || nn_immf(B, op, "alpha", nnw_f32(&m, 1, 0)) || nn_immf(B, op, "beta", nnw_f32(&m, 2, 0)) ||
      nn_immi(B, op, "size", (int64_t)nnw_u64(&m, 3, 1)) || nn_immf(B, op, "k", k))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int normalize(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int mvn = l->layer_case == CASE(MVN);
  float eps = nnw_f32(&m, mvn ? 3 : 1, 0);
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_norm, 0, 0);
  if (!op || nn_immi(B, op, "mode", mvn) || nn_immf(B, op, "epsilon", eps != 0 ? eps : 1e-6)) return -1;
  if (mvn && (nn_immb(B, op, "across", (int)nnw_u64(&m, 1, 0)) || nn_immb(B, op, "variance", (int)nnw_u64(&m, 2, 0)))) return -1;
  return nn_layer_outs(B, op, l);
}

const nn_lowering nn_lower_dense[] = {
  {CASE(LRN), lrn}, {CASE(L2NORMALIZE), normalize}, {CASE(MVN), normalize},
  {CASE(INNER_PRODUCT), inner_product}, {CASE(CONVOLUTION), convolution}, {CASE(BATCHNORM), batchnorm},
  {CASE(POOLING), pooling}, {CASE(EMBEDDING), embedding}, {CASE(EMBEDDING_ND), embedding},
  {CASE(BATCHED_MATMUL), batched_matmul}, {CASE(LOAD_CONSTANT), load_constant}, {CASE(LOAD_CONSTANT_ND), load_constant},
  {CASE(SCALE), scale_bias}, {CASE(BIAS), scale_bias}, {0, NULL},
};
