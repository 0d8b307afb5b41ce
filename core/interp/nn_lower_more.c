/* nn_lower_more.c — the rarer NeuralNetwork layers, each on MIL kernels: gelu (every mode),
 * getShape (shape, cast to the network's fp32 blobs), rangeStatic / rangeDynamic (range_1d),
 * fillStatic / fillDynamic / fillLike (fill, fill_like), broadcastToStatic / Dynamic / Like (zeros
 * by fill or fill_like, then add: numpy broadcasting), scatter / scatterND /
 * scatterAlongAxis (every accumulation mode), dot (mul + reduce_sum over C; cosine similarity
 * divides by both L2 norms), crop (one input: crop by the border amounts; two inputs: to the
 * second input's H x W at offset, nn_dyn.c), resizeBilinear (resize_bilinear; ROI_ALIGN sampling
 * refused), cropResize (crop_resize on the [B, C, H, W] view, nn_dyn.c), sliceDynamic (slice_by_index
 * after checking every vector against the rank, nn_dyn.c), sequenceRepeat (nn_dyn.c), convolution3d and pooling3d / globalPooling3d (3-D conv,
 * max/avg pool, reduce over D, H, W). */
#include "nn_lower.h"
#include <stdint.h>
#include <string.h>

#define CASE(x) CORE_ML__SPECIFICATION__NEURAL_NETWORK_LAYER__LAYER_##x

static int gelu(nn_b *B, const nn_layer *l) {
  static const char *const modes[3] = {"EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"};
  nnw_msg m = nn_params(l);
  uint64_t mode = nnw_u64(&m, 1, 0);
  if (mode > 2) return nn_fail(B, "unknown gelu mode %llu", (unsigned long long)mode);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("gelu"), 0, 0);
  if (!op || nn_imms(B, op, "mode", modes[mode])) return -1;
  return nn_layer_outs(B, op, l);
}

static int get_shape(nn_b *B, const nn_layer *l) {
  it_op *op = nn_layer_op(B, l, "shape", nn_k("shape"), 0, 0);
  if (!op || l->n_output == 0) return nn_fail(B, "has no outputs");
  const char *tmp = nn_str(B, l->name, "shape");
  if (!tmp || nn_out(B, op, tmp) < 0) return -1;
  op->out_types[0].dt = MLSH_DT_INT32;
  int s = nn_find(B, tmp);
  op = nn_op(B, nn_layer_type(l), l->name, nn_k("cast"));
  if (!op || nn_arg(B, op, "x", s) || nn_imms(B, op, "dtype", "fp32")) return -1;
  return nn_layer_outs(B, op, l);
}

static int range_static(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("range_1d"), 0, 1);
  if (!op || nn_immf(B, op, "end", nnw_f32(&m, 1, 0)) || nn_immf(B, op, "start", nnw_f32(&m, 2, 0)) ||
      nn_immf(B, op, "step", nnw_f32(&m, 3, 1)))
    return -1;
  return nn_layer_outs(B, op, l);
}

/* targetShape (field f) as an int vector; 1..IT_MAX_RANK values. */
static int target_shape(nn_b *B, const nn_layer *l, unsigned f, int64_t *v) {
  nnw_msg m = nn_params(l);
  size_t n = nnw_ints(&m, f, v, IT_MAX_RANK);
  if (n == 0 || n > IT_MAX_RANK) return nn_fail(B, "targetShape must have 1 to %d values", IT_MAX_RANK);
  for (size_t i = 0; i < n; i++)
    if (v[i] < 0 || v[i] > INT32_MAX) return nn_fail(B, "targetShape value %lld is out of range", (long long)v[i]);
  return (int)n;
}

static int fill_static(nn_b *B, const nn_layer *l) {
  int64_t v[IT_MAX_RANK];
  nnw_msg m = nn_params(l);
  int n = target_shape(B, l, 2, v);
  if (n < 0) return -1;
  it_op *op = nn_layer_op(B, l, NULL, nn_k("fill"), 0, 1);
  if (!op || nn_immv(B, op, "shape", v, n) || nn_immf(B, op, "value", nnw_f32(&m, 1, 0))) return -1;
  return nn_layer_outs(B, op, l);
}

/* x + zeros: numpy broadcasting of input 0 to the shape of the zeros op (fill / fill_like). */
static it_op *zeros_op(nn_b *B, const nn_layer *l, const char *mil) {
  it_op *op = nn_layer_op(B, l, "zeros", nn_k(mil), 0, 1);
  return op && nn_immf(B, op, "value", 0) == 0 ? op : NULL;
}
static int add_zeros(nn_b *B, const nn_layer *l, it_op *zop) {
  const char *zeros = nn_str(B, l->name, "zeros");
  if (!zop || !zeros || nn_out(B, zop, zeros) < 0) return -1;
  int z = nn_find(B, zeros);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("add"), 0, 0);
  if (!op || nn_arg(B, op, "y", z)) return -1;
  return nn_layer_outs(B, op, l);
}

static int broadcast_static(nn_b *B, const nn_layer *l) {
  int64_t v[IT_MAX_RANK];
  int n = target_shape(B, l, 1, v);
  it_op *op = n > 0 ? zeros_op(B, l, "fill") : NULL;
  if (!op || nn_immv(B, op, "shape", v, n)) return -1;
  return add_zeros(B, l, op);
}

static int broadcast_dynamic(nn_b *B, const nn_layer *l) {
  int like = l->layer_case == CASE(BROADCAST_TO_LIKE), ref = nn_layer_in(B, l, 1);
  it_op *op = ref < 0 ? NULL : zeros_op(B, l, like ? "fill_like" : "fill");
  if (!op || nn_arg(B, op, like ? "ref_tensor" : "shape", ref)) return -1;
  return add_zeros(B, l, op);
}

static int fill_dynamic(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int like = l->layer_case == CASE(FILL_LIKE), in = nn_layer_in(B, l, 0);
  it_op *op = in < 0 ? NULL : nn_layer_op(B, l, NULL, nn_k(like ? "fill_like" : "fill"), 0, 1);
  if (!op || nn_arg(B, op, like ? "ref_tensor" : "shape", in) || nn_immf(B, op, "value", nnw_f32(&m, 1, 0))) return -1;
  return nn_layer_outs(B, op, l);
}

/* rangeDynamic: inputs (end[, start[, step]]); missing ones from startValue / stepSizeValue. */
static int range_dynamic(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  static const char *const names[3] = {"end", "start", "step"};
  if (l->n_input == 0 || l->n_input > 3) return nn_fail(B, "needs 1 to 3 inputs (end, start, step), has %zu", l->n_input);
  it_op *op = nn_layer_op(B, l, NULL, nn_k("range_1d"), 0, 1);
  if (!op) return -1;
  for (size_t i = 0; i < 3; i++) {
    int rc = i < l->n_input ? nn_arg(B, op, names[i], nn_layer_in(B, l, i)) : nn_immf(B, op, names[i], nnw_f32(&m, (unsigned)i + 1, i == 2 ? 1 : 0));
    if (rc) return -1;
  }
  return nn_layer_outs(B, op, l);
}

static int scatter(nn_b *B, const nn_layer *l) {
  static const char *const modes[7] = {"update", "add", "sub", "mul", "div", "max", "min"};
  int nd = l->layer_case == CASE(SCATTER_ND);
  nnw_msg m = nn_params(l);
  uint64_t mode = nnw_u64(&m, nd ? 1 : 2, 0);
  if (mode > 6) return nn_fail(B, "unknown scatter mode %llu", (unsigned long long)mode);
  if (l->n_input != 3) return nn_fail(B, "needs 3 inputs (data, indices, updates), has %zu", l->n_input);
  const char *mil = nd ? "scatter_nd" : l->layer_case == CASE(SCATTER) ? "scatter" : "scatter_along_axis";
  it_op *op = nn_layer_op(B, l, NULL, nn_k(mil), 0, 1);
  if (!op || nn_arg(B, op, "data", nn_layer_in(B, l, 0)) || nn_arg(B, op, "indices", nn_layer_in(B, l, 1)) ||
      nn_arg(B, op, "updates", nn_layer_in(B, l, 2)) || nn_imms(B, op, "mode", modes[mode]) ||
      (!nd && nn_immi(B, op, "axis", nnw_i64(&m, 1, 0))))
    return -1;
  return nn_layer_outs(B, op, l);
}

/* An op of MIL type mil named layer/suffix, x = slot a (and y = slot b when b >= 0): its output slot. */
static int step(nn_b *B, const nn_layer *l, const char *suffix, const char *mil, int a, int b) {
  const char *name = nn_str(B, l->name, suffix);
  it_op *op = name ? nn_op(B, nn_layer_type(l), name, nn_k(mil)) : NULL;
  if (!op || nn_arg(B, op, "x", a) || (b >= 0 && nn_arg(B, op, "y", b))) return -1;
  if (!strncmp(mil, "reduce_", 7)) {
    int64_t ax[1] = {-3};
    if (nn_immv(B, op, "axes", ax, 1) || nn_immb(B, op, "keep_dims", 1)) return -1;
  }
  return nn_out(B, op, name);
}

static int dot(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  if (l->n_input != 2) return nn_fail(B, "needs 2 inputs, has %zu", l->n_input);
  int a = nn_layer_in(B, l, 0), b = a < 0 ? -1 : nn_layer_in(B, l, 1);
  if (b < 0) return -1;
  int prod = step(B, l, "mul", "mul", a, b);
  if (!nnw_u64(&m, 1, 0)) {
    it_op *op = nn_op(B, nn_layer_type(l), l->name, nn_k("reduce_sum"));
    int64_t ax[1] = {-3};
    if (prod < 0 || !op || nn_arg(B, op, "x", prod) || nn_immv(B, op, "axes", ax, 1) || nn_immb(B, op, "keep_dims", 1)) return -1;
    return nn_layer_outs(B, op, l);
  }
  int s = prod < 0 ? -1 : step(B, l, "sum", "reduce_sum", prod, -1);
  int na = s < 0 ? -1 : step(B, l, "norm_a", "reduce_l2_norm", a, -1);
  int nb = na < 0 ? -1 : step(B, l, "norm_b", "reduce_l2_norm", b, -1);
  int nab = nb < 0 ? -1 : step(B, l, "norms", "mul", na, nb);
  it_op *op = nab < 0 ? NULL : nn_op(B, nn_layer_type(l), l->name, nn_k("real_div"));
  if (!op || nn_arg(B, op, "x", s) || nn_arg(B, op, "y", nab)) return -1;
  return nn_layer_outs(B, op, l);
}

static int crop(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  if (l->n_input == 2) {
    int64_t off[2] = {0, 0};
    if (nnw_ints(&m, 5, off, 2) != 2) return nn_fail(B, "a two-input crop needs an offset of 2 values");
    it_op *op = nn_layer_op(B, l, NULL, &nn_k_crop_like, 0, 0);
    if (!op || nn_arg(B, op, "like", nn_layer_in(B, l, 1)) || nn_immv(B, op, "offset", off, 2)) return -1;
    return nn_layer_outs(B, op, l);
  }
  int64_t e[4] = {0, 0, 0, 0};
  nnw_msg ba = nnw_sub(&m, 1, NULL);
  size_t cur = 0, i = 0;
  nnw_field f;
  while (nnw_next(&ba, &cur, &f) && i < 2)
    if (f.field == 10 && f.wire == 2) {
      nnw_msg edge = nnw_raw(f.data, f.len);
      e[2 * i] = (int64_t)nnw_u64(&edge, 1, 0);
      e[2 * i + 1] = (int64_t)nnw_u64(&edge, 2, 0);
      if (e[2 * i] < 0 || e[2 * i + 1] < 0) return nn_fail(B, "crop amounts out of range");
      i++;
    }
  it_op *op = nn_layer_op(B, l, NULL, nn_k("crop"), 0, 0);
  if (!op || nn_immv(B, op, "crop_height", e, 2) || nn_immv(B, op, "crop_width", e + 2, 2)) return -1;
  return nn_layer_outs(B, op, l);
}

static int resize_bilinear(nn_b *B, const nn_layer *l) {
  static const char *const modes[3] = {"STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT"};
  nnw_msg m = nn_params(l);
  int64_t ts[2] = {1, 1};
  nnw_ints(&m, 1, ts, 2);
  nnw_msg sm = nnw_sub(&m, 2, NULL);
  uint64_t mode = nnw_u64(&sm, 1, 0);
  if (mode > 3) return nn_fail(B, "unknown sampling mode %llu", (unsigned long long)mode);
  if (ts[0] < 1 || ts[1] < 1 || ts[0] > INT32_MAX || ts[1] > INT32_MAX) return nn_fail(B, "targetSize out of range");
  it_op *op = nn_layer_op(B, l, NULL, mode == 3 ? &nn_k_resize_roi : &nn_k_resize_checked, 0, 0);
  if (!op || nn_immi(B, op, "target_size_height", ts[0]) || nn_immi(B, op, "target_size_width", ts[1]) ||
      (mode < 3 && nn_imms(B, op, "sampling_mode", modes[mode])))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int crop_resize(nn_b *B, const nn_layer *l) {
  static const char *const sm[4] = {"STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS"};
  static const char *const bm[4] = {"CORNERS_HEIGHT_FIRST", "CORNERS_WIDTH_FIRST", "CENTER_SIZE_HEIGHT_FIRST", "CENTER_SIZE_WIDTH_FIRST"};
  nnw_msg m = nn_params(l);
  int64_t ts[2] = {1, 1};
  nnw_ints(&m, 1, ts, 2);
  nnw_msg ms = nnw_sub(&m, 3, NULL), mb = nnw_sub(&m, 4, NULL);
  uint64_t mode = nnw_u64(&ms, 1, 0), box = nnw_u64(&mb, 1, 0);
  if (mode > 3 || box > 3) return nn_fail(B, "unknown sampling mode %llu or box mode %llu", (unsigned long long)mode, (unsigned long long)box);
  if (ts[0] < 1 || ts[1] < 1 || ts[0] > INT32_MAX || ts[1] > INT32_MAX) return nn_fail(B, "targetSize out of range");
  if (l->n_input != 2) return nn_fail(B, "needs 2 inputs (image, boxes), has %zu", l->n_input);
  float scale = nnw_has(&m, 5) ? nnw_f32(&m, 5, 1) : 1;
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_crop_resize, 0, 0);
  if (!op || nn_arg(B, op, "roi", nn_layer_in(B, l, 1)) || nn_immi(B, op, "target_height", ts[0]) ||
      nn_immi(B, op, "target_width", ts[1]) || nn_immb(B, op, "normalized_coordinates", (int)nnw_u64(&m, 2, 0)) ||
      nn_immf(B, op, "spatial_scale", scale) || nn_imms(B, op, "box_coordinate_mode", bm[box]) || nn_imms(B, op, "sampling_mode", sm[mode]))
    return -1;
  return nn_layer_outs(B, op, l);
}

/* sliceDynamic: inputs (x, begin[, end[, stride]]); end / stride / masks otherwise from fields. */
static int slice_dynamic(nn_b *B, const nn_layer *l) {
  static const char *const ins[2] = {"end", "stride"}, *const masks[3] = {"begin_mask", "end_mask", "squeeze_mask"};
  static const unsigned fields[2] = {3, 5}, mfields[3] = {2, 4, 6};
  nnw_msg m = nn_params(l);
  if (l->n_input < 2 || l->n_input > 4) return nn_fail(B, "needs 2 to 4 inputs (x, begin, end, stride), has %zu", l->n_input);
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_slice_dynamic, 0, 0);
  if (!op || nn_arg(B, op, "begin", nn_layer_in(B, l, 1))) return -1;
  int64_t v[IT_MAX_RANK];
  for (size_t i = 0; i < 2; i++) {
    if (2 + i < l->n_input) {
      if (nn_arg(B, op, ins[i], nn_layer_in(B, l, 2 + i))) return -1;
      continue;
    }
    size_t n = nnw_ints(&m, fields[i], v, IT_MAX_RANK);
    if (n > IT_MAX_RANK) return nn_fail(B, "too many %s values", ins[i]);
    if (n && nn_immv(B, op, ins[i], v, (int)n)) return -1;
  }
  for (size_t i = 0; i < 3; i++) {
    size_t n = nnw_ints(&m, mfields[i], v, IT_MAX_RANK);
    if (n > IT_MAX_RANK) return nn_fail(B, "too many %s values", masks[i]);
    if (n && nn_immv(B, op, masks[i], v, (int)n)) return -1;
  }
  return nn_layer_outs(B, op, l);
}

static int sequence_repeat(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  uint64_t n = nnw_u64(&m, 1, 1);
  if (n == 0 || n > INT32_MAX) return nn_fail(B, "nRepetitions out of range");
  it_op *op = nn_layer_op(B, l, NULL, &nn_k_seq_repeat, 0, 0);
  if (!op || nn_immi(B, op, "reps", (int64_t)n)) return -1;
  return nn_layer_outs(B, op, l);
}

/* 3-D padding: paddingType (CUSTOM 0 / VALID 1 / SAME 2) and the custom amounts at fields f..f+5
 * (front, back, top, bottom, left, right). */
static const char *pad3d(const nnw_msg *m, unsigned type_field, unsigned f, int64_t *pad) {
  uint64_t t = nnw_u64(m, type_field, 0);
  for (unsigned i = 0; i < 6; i++) pad[i] = t == 0 ? nnw_i64(m, f + i, 0) : 0;
  return t == 2 ? "same" : t == 1 ? "valid" : "custom";
}

static int dim(const nnw_msg *m, unsigned f, int64_t def) {
  int64_t v = nnw_i64(m, f, def);
  return v == 0 ? (int)def : v < 0 || v > 1 << 20 ? -1 : (int)v;
}

/* convolution3d → conv; with isDeconvolution (86) → conv_transpose. The deconvolution weights are
 * stored [inputChannels, outputChannels / nGroups, kD, kH, kW] (coremltools' add_convolution3d
 * transposes its (outputChannels / nGroups, inputChannels, ...) argument into this order), which is
 * conv_transpose's own layout; outputShape (87, [D, H, W]) fixes the output size when given. */
static int conv3d(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int deconv = nnw_u64(&m, 86, 0) != 0;
  int64_t O = dim(&m, 1, 1), C = dim(&m, 2, 1), G = dim(&m, 10, 1);
  int64_t k[3] = {dim(&m, 20, 3), dim(&m, 21, 3), dim(&m, 22, 3)}, st[3] = {dim(&m, 31, 1), dim(&m, 32, 1), dim(&m, 33, 1)};
  int64_t dl[3] = {dim(&m, 40, 1), dim(&m, 41, 1), dim(&m, 42, 1)}, pad[6];
  for (int i = 0; i < 3; i++)
    if (k[i] < 1 || st[i] < 1 || dl[i] < 1) return nn_fail(B, "kernel, stride and dilation sizes must be positive");
  if (O < 1 || C < 1 || G < 1 || C % G || (deconv && O % G))
    return nn_fail(B, "bad channel counts (%lld out, %lld in, %lld groups)", (long long)O, (long long)C, (long long)G);
  const char *pt = pad3d(&m, 70, 80, pad);
  int64_t ws[5] = {O, C / G, k[0], k[1], k[2]}, bs[1] = {O}, osh[3];
  if (deconv) { ws[0] = C; ws[1] = O / G; }
  size_t count = it_numel(5, ws);
  if (count == SIZE_MAX) return nn_fail(B, "the weight shape is too large");
  size_t nos = deconv ? nnw_ints(&m, 87, osh, 3) : 0;
  if (nos != 0 && nos != 3) return nn_fail(B, "outputShape has %zu values, [D, H, W] needs 3", nos);
  for (size_t i = 0; i < nos; i++)
    if (osh[i] < 1 || osh[i] > 1 << 24) return nn_fail(B, "outputShape value %lld is out of range", (long long)osh[i]);
  it_op *op = nn_layer_op(B, l, NULL, nn_k(deconv ? "conv_transpose" : "conv"), 0, 0);
  if (op && nos && nn_immv(B, op, "output_shape", osh, 3)) return -1;
  int has;
  if (!op || nn_imm(B, op, "weight", nn_weights_raw(B, nnw_sub(&m, 60, &has), count, 5, ws, "weights"))) return -1;
  if (nnw_u64(&m, 50, 0) && nn_imm(B, op, "bias", nn_weights_raw(B, nnw_sub(&m, 61, &has), (size_t)O, 1, bs, "bias"))) return -1;
  if (nn_immv(B, op, "strides", st, 3) || nn_immv(B, op, "dilations", dl, 3) || nn_imms(B, op, "pad_type", pt) ||
      nn_immv(B, op, "pad", pad, 6) || nn_immi(B, op, "groups", G))
    return -1;
  return nn_layer_outs(B, op, l);
}

static int pool3d(nn_b *B, const nn_layer *l) {
  nnw_msg m = nn_params(l);
  int avg = nnw_u64(&m, 1, 0) == 1;
  if (l->layer_case == CASE(GLOBAL_POOLING3D)) {
    int64_t axes[3] = {-3, -2, -1};
    it_op *op = nn_layer_op(B, l, NULL, nn_k(avg ? "reduce_mean" : "reduce_max"), 0, 0);
    if (!op || nn_immv(B, op, "axes", axes, 3) || nn_immb(B, op, "keep_dims", 1)) return -1;
    return nn_layer_outs(B, op, l);
  }
  int64_t k[3] = {dim(&m, 2, 1), dim(&m, 3, 1), dim(&m, 4, 1)}, st[3] = {dim(&m, 5, 1), dim(&m, 6, 1), dim(&m, 7, 1)}, pad[6];
  for (int i = 0; i < 3; i++)
    if (k[i] < 1 || st[i] < 1) return nn_fail(B, "kernel and stride sizes must be positive");
  const char *pt = pad3d(&m, 15, 8, pad);
  it_op *op = nn_layer_op(B, l, NULL, nn_k(avg ? "avg_pool" : "max_pool"), 0, 0);
  if (!op || nn_immv(B, op, "kernel_sizes", k, 3) || nn_immv(B, op, "strides", st, 3) || nn_imms(B, op, "pad_type", pt) ||
      nn_immv(B, op, "pad", pad, 6) || nn_immb(B, op, "ceil_mode", 0) ||
      nn_immb(B, op, "exclude_padding_from_average", (int)nnw_u64(&m, 14, 0)))
    return -1;
  return nn_layer_outs(B, op, l);
}

const nn_lowering nn_lower_more[] = {
  {CASE(GELU), gelu}, {CASE(GET_SHAPE), get_shape}, {CASE(RANGE_STATIC), range_static}, {CASE(FILL_STATIC), fill_static},
  {CASE(BROADCAST_TO_STATIC), broadcast_static}, {CASE(SCATTER), scatter}, {CASE(SCATTER_ND), scatter},
  {CASE(SCATTER_ALONG_AXIS), scatter}, {CASE(DOT), dot}, {CASE(CROP), crop}, {CASE(RESIZE_BILINEAR), resize_bilinear},
  {CASE(SEQUENCE_REPEAT), sequence_repeat}, {CASE(CONVOLUTION3D), conv3d}, {CASE(POOLING3D), pool3d},
  {CASE(GLOBAL_POOLING3D), pool3d}, {CASE(BROADCAST_TO_LIKE), broadcast_dynamic}, {CASE(BROADCAST_TO_DYNAMIC), broadcast_dynamic},
  {CASE(CROP_RESIZE), crop_resize}, {CASE(SLICE_DYNAMIC), slice_dynamic}, {CASE(FILL_LIKE), fill_dynamic}, {CASE(FILL_DYNAMIC), fill_dynamic}, {CASE(RANGE_DYNAMIC), range_dynamic}, {0, NULL},
};
