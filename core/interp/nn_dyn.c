/* nn_dyn.c — NeuralNetwork layers whose MIL kernel parameters depend on run-time shapes (see
 * nn_kernels.h): each computes the parameters from its inputs' shapes and calls the registered
 * MIL kernel (crop, tile, resize_bilinear) through nn_invoke; resizeBilinear's ROI_ALIGN grid, which
 * no MIL sampling mode has, is computed here. */
#include "nn_kernels.h"
#include <math.h>
#include <string.h>

/* An int32 vector tensor of n values (NULL + error set in c). */
static it_tensor *ivec(it_ctx *c, const int64_t *v, int n) {
  mlsh_err e2;
  int64_t s[1] = {n};
  it_tensor *t = it_tensor_new(MLSH_DT_INT32, 1, s, &e2);
  if (!t) return it_fail(c, "%s", e2.msg), NULL;
  memcpy(t->data, v, (size_t)n * sizeof *v);
  return t;
}

static it_tensor *scalar(it_ctx *c, mlsh_dtype dt, double v) {
  mlsh_err e2;
  it_tensor *t = it_scalar_f(dt, v, &e2);
  if (!t) it_fail(c, "%s", e2.msg);
  return t;
}

static int k_crop_like(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *like = x ? it_arg_req(c, "like") : NULL;
  int64_t off[2];
  if (!like) return -1;
  if (it_arg_ints(c, "offset", off, 2) != 2) return it_fail(c, "needs an offset of 2 values");
  if (x->rank < 2 || like->rank < 2) return it_fail(c, "needs inputs of rank 2 or more");
  int64_t H = x->shape[x->rank - 2], W = x->shape[x->rank - 1], h = like->shape[like->rank - 2], w = like->shape[like->rank - 1];
  if (off[0] < 0 || off[1] < 0 || off[0] > H - h || off[1] > W - w)
    return it_fail(c, "a %lldx%lld crop at offset [%lld, %lld] does not fit a %lldx%lld input", (long long)h, (long long)w,
                   (long long)off[0], (long long)off[1], (long long)H, (long long)W);
  int64_t ch[2] = {off[0], H - h - off[0]}, cw[2] = {off[1], W - w - off[1]};
  it_tensor *a = ivec(c, ch, 2), *b = a ? ivec(c, cw, 2) : NULL;
  const char *names[3] = {"x", "crop_height", "crop_width"};
  it_tensor *vals[3] = {x, a, b};
  int rc = b ? nn_invoke(c, it_kernel_find("crop"), 3, names, vals, 1) : -1;
  it_unref(a);
  it_unref(b);
  return rc;
}
const it_kernel_def nn_k_crop_like = {"nn_crop_like", k_crop_like};

static int k_seq_repeat(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->rank < 1) return it_fail(c, "needs an input of rank 1 or more");
  int64_t reps[IT_MAX_RANK];
  for (int i = 0; i < x->rank; i++) reps[i] = 1;
  reps[0] = it_arg_int(c, "reps", 1);
  it_tensor *r = ivec(c, reps, x->rank);
  const char *names[2] = {"x", "reps"};
  it_tensor *vals[2] = {x, r};
  int rc = r ? nn_invoke(c, it_kernel_find("tile"), 2, names, vals, 1) : -1;
  it_unref(r);
  return rc;
}
const it_kernel_def nn_k_seq_repeat = {"nn_sequence_repeat", k_seq_repeat};

static int k_upsample_linear(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->rank < 2 || x->shape[x->rank - 2] < 1 || x->shape[x->rank - 1] < 1) return it_fail(c, "needs an input with H and W of at least 1");
  double sh = it_arg_float(c, "scale_factor_height", 1), sw = it_arg_float(c, "scale_factor_width", 1);
  double oh = floor((double)x->shape[x->rank - 2] * sh), ow = floor((double)x->shape[x->rank - 1] * sw);
  if (!(oh >= 1 && ow >= 1 && oh <= INT32_MAX && ow <= INT32_MAX)) return it_fail(c, "scale factors give an output of %gx%g", oh, ow);
  it_tensor *th = scalar(c, MLSH_DT_INT32, oh), *tw = th ? scalar(c, MLSH_DT_INT32, ow) : NULL, *mode = NULL;
  if (tw) {
    mlsh_err e2;
    mode = it_tensor_new(MLSH_DT_INVALID, 0, NULL, &e2);
    if (!mode) it_fail(c, "%s", e2.msg);
    else if (!(((char **)mode->data)[0] = strdup("DEFAULT"))) { it_unref(mode); mode = NULL; it_fail(c, "out of memory"); }
  }
  const char *names[4] = {"x", "target_size_height", "target_size_width", "sampling_mode"};
  it_tensor *vals[4] = {x, th, tw, mode};
  int rc = mode ? nn_invoke(c, it_kernel_find("resize_bilinear"), 4, names, vals, 1) : -1;
  it_unref(th);
  it_unref(tw);
  it_unref(mode);
  return rc;
}
const it_kernel_def nn_k_upsample_linear = {"nn_upsample_linear", k_upsample_linear};

/* resize_bilinear on a non-empty H x W only (the MIL kernel assumes both are at least 1). */
static int k_resize_checked(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->rank < 2 || x->shape[x->rank - 2] < 1 || x->shape[x->rank - 1] < 1) return it_fail(c, "needs an input with H and W of at least 1");
  const char *names[4] = {"x", "target_size_height", "target_size_width", "sampling_mode"};
  it_tensor *vals[4] = {x, it_arg(c, names[1]), it_arg(c, names[2]), it_arg(c, names[3])};
  return nn_invoke(c, it_kernel_find("resize_bilinear"), 4, names, vals, 1);
}
const it_kernel_def nn_k_resize_checked = {"nn_resize_bilinear", k_resize_checked};

/* Grid position i of n over an input axis of x values in NeuralNetwork.proto's ROI_ALIGN_MODE:
 * spacing = max(1, x - 1) / n, points 0.5 * spacing + i * spacing, clamped to x - 1. */
static void roi_grid(int64_t x, int64_t n, int64_t i, int64_t *lo, int64_t *hi, float *t) {
  double sp = (double)(x > 2 ? x - 1 : 1) / (double)n, p = fmin((double)(x - 1), 0.5 * sp + (double)i * sp);
  *lo = (int64_t)p;
  *hi = *lo + 1 < x ? *lo + 1 : x - 1;
  *t = (float)(p - (double)*lo);
}

/* resizeBilinear in ROI_ALIGN_MODE (no MIL sampling mode has this grid): bilinear samples of
 * every trailing H x W plane. */
static int k_resize_roi(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32 || x->rank < 2 || x->shape[x->rank - 2] < 1 || x->shape[x->rank - 1] < 1)
    return it_fail(c, "needs a float input with H and W of at least 1");
  int r = x->rank;
  int64_t H = x->shape[r - 2], W = x->shape[r - 1], Ho = it_arg_int(c, "target_size_height", 1), Wo = it_arg_int(c, "target_size_width", 1);
  if (Ho < 1 || Wo < 1) return it_fail(c, "target size must be positive");
  int64_t sh[IT_MAX_RANK];
  memcpy(sh, x->shape, sizeof sh);
  sh[r - 2] = Ho;
  sh[r - 1] = Wo;
  it_tensor *o = it_out_f(c, 0, r, sh);
  if (!o) return -1;
  size_t planes = x->n / (size_t)(H * W);
  const float *in = x->data;
  float *out = o->data;
  for (size_t p = 0; p < planes; p++)
    for (int64_t i = 0; i < Ho; i++) {
      int64_t y0, y1, x0, x1;
      float ty, tx;
      roi_grid(H, Ho, i, &y0, &y1, &ty);
      const float *a = in + p * (size_t)(H * W) + y0 * W, *b = in + p * (size_t)(H * W) + y1 * W;
      for (int64_t j = 0; j < Wo; j++) {
        roi_grid(W, Wo, j, &x0, &x1, &tx);
        float top = a[x0] + (a[x1] - a[x0]) * tx, bot = b[x0] + (b[x1] - b[x0]) * tx;
        out[(p * (size_t)Ho + (size_t)i) * (size_t)Wo + (size_t)j] = top + (bot - top) * ty;
      }
    }
  return 0;
}
const it_kernel_def nn_k_resize_roi = {"nn_resize_roi_align", k_resize_roi};

/* cropResize: x [1, B, C, H, W] (or [B, C, H, W]) viewed as [B, C, H, W], roi [N, 1, 4|5, 1, 1];
 * crop_resize's iOS15 form, output [N, B or 1, C, h, w]. */
static int k_crop_resize(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *roi = x ? it_arg_req(c, "roi") : NULL;
  if (!roi) return -1;
  if (x->rank == 5 && x->shape[0] != 1) return it_fail(c, "needs a sequence length of 1, got %lld", (long long)x->shape[0]);
  if (x->rank != 5 && x->rank != 4) return it_fail(c, "needs an input of rank 4 or 5, got rank %d", x->rank);
  it_tensor *v = x->rank == 5 ? nn_view(c, x, 4, x->shape + 1) : x;
  if (!v) return -1;
  const char *names[8] = {"x", "roi", "target_height", "target_width", "normalized_coordinates", "spatial_scale",
                          "box_coordinate_mode", "sampling_mode"};
  it_tensor *vals[8] = {v, roi};
  for (int i = 2; i < 8; i++) vals[i] = it_arg(c, names[i]);
  int rc = nn_invoke(c, it_kernel_find("crop_resize"), 8, names, vals, 1);
  if (v != x) it_unref(v);
  return rc;
}
const it_kernel_def nn_k_crop_resize = {"nn_crop_resize", k_crop_resize};

/* sliceDynamic: begin (and end, stride when given as inputs) known at run time; every vector
 * must have one value per axis of x before slice_by_index runs. */
static int k_slice_dynamic(it_ctx *c) {
  static const char *const names[7] = {"x", "begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask"};
  it_tensor *vals[7];
  vals[0] = it_arg_req(c, "x");
  if (!vals[0]) return -1;
  for (int i = 1; i < 7; i++) {
    vals[i] = it_arg(c, names[i]);
    if (i <= 2 && !vals[i]) return it_fail(c, "needs %s ids", names[i]);
    if (vals[i] && vals[i]->n != (size_t)vals[0]->rank)
      return it_fail(c, "%s has %zu values for an input of rank %d", names[i], vals[i]->n, vals[0]->rank);
  }
  return nn_invoke(c, it_kernel_find("slice_by_index"), 7, names, vals, 1);
}
const it_kernel_def nn_k_slice_dynamic = {"nn_slice_dynamic", k_slice_dynamic};
