/* ops_image.c — pixel_shuffle / pixel_unshuffle, space_to_depth / depth_to_space (DCR order as
 * MIL's), upsample_nearest_neighbor (output index floor(i / scale)), upsample_bilinear
 * (align_corners or half-pixel), on NCHW tensors. */
#include "ops.h"
#include <math.h>
#include <string.h>

static it_tensor *nchw(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (x && x->rank != 4) return it_fail(c, "needs an NCHW input of rank 4"), NULL;
  if (x && x->st != IT_F32) return it_fail(c, "needs a float input"), NULL;
  return x;
}

/* out[n, c, h*f+i, w*f+j] = in[n, c*f*f + i*f + j, h, w] (pixel_shuffle, depth_to_space) and back. */
static int shuffle(it_ctx *c, int64_t f, int up) {
  it_tensor *x = nchw(c);
  if (!x) return -1;
  if (f < 1) return it_fail(c, "factor must be positive");
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t s[4];
  if (up) { if (C % (f * f)) return it_fail(c, "channels %lld not divisible by %lld", (long long)C, (long long)(f * f)); s[0] = N; s[1] = C / (f * f); s[2] = H * f; s[3] = W * f; }
  else { if (H % f || W % f) return it_fail(c, "spatial size not divisible by %lld", (long long)f); s[0] = N; s[1] = C * f * f; s[2] = H / f; s[3] = W / f; }
  it_tensor *o = it_out_f(c, 0, 4, s);
  if (!o) return -1;
  const float *X = x->data;
  float *O = o->data;
  int64_t oc = up ? s[1] : C, oh = up ? H : s[2], ow = up ? W : s[3]; /* the small side */
  for (int64_t n = 0; n < N; n++)
    for (int64_t ch = 0; ch < oc; ch++)
      for (int64_t i = 0; i < f; i++)
        for (int64_t j = 0; j < f; j++)
          for (int64_t h = 0; h < oh; h++)
            for (int64_t w = 0; w < ow; w++) {
              size_t deep = (size_t)((((n * oc * f * f) + ch * f * f + i * f + j) * oh + h) * ow + w);
              size_t wide = (size_t)(((n * oc + ch) * oh * f + h * f + i) * ow * f + w * f + j);
              if (up) O[wide] = X[deep];
              else O[deep] = X[wide];
            }
  return 0;
}
static int k_pixel_shuffle(it_ctx *c) { return shuffle(c, it_arg_int(c, "upscale_factor", 1), 1); }
static int k_pixel_unshuffle(it_ctx *c) { return shuffle(c, it_arg_int(c, "downscale_factor", 1), 0); }
static int k_depth_to_space(it_ctx *c) { return shuffle(c, it_arg_int(c, "block_size", 1), 1); }
static int k_space_to_depth(it_ctx *c) { return shuffle(c, it_arg_int(c, "block_size", 1), 0); }

static int k_upsample_nearest_neighbor(it_ctx *c) {
  it_tensor *x = nchw(c);
  if (!x) return -1;
  double sh = it_arg_float(c, "scale_factor_height", 1), sw = it_arg_float(c, "scale_factor_width", 1);
  if (sh <= 0 || sw <= 0) return it_fail(c, "scale factors must be positive");
  int64_t s[4] = {x->shape[0], x->shape[1], it_d2i(floor((double)x->shape[2] * sh)), it_d2i(floor((double)x->shape[3] * sw))};
  it_tensor *o = it_out_f(c, 0, 4, s);
  if (!o) return -1;
  size_t planes = (size_t)(s[0] * s[1]);
  for (size_t p = 0; p < planes; p++)
    for (int64_t h = 0; h < s[2]; h++) {
      int64_t ih = it_d2i(floor((double)h / sh));
      if (ih >= x->shape[2]) ih = x->shape[2] - 1;
      for (int64_t w = 0; w < s[3]; w++) {
        int64_t iw = it_d2i(floor((double)w / sw));
        if (iw >= x->shape[3]) iw = x->shape[3] - 1;
        ((float *)o->data)[(p * (size_t)s[2] + (size_t)h) * (size_t)s[3] + (size_t)w] =
            ((const float *)x->data)[(p * (size_t)x->shape[2] + (size_t)ih) * (size_t)x->shape[3] + (size_t)iw];
      }
    }
  return 0;
}

static int k_upsample_bilinear(it_ctx *c) {
  it_tensor *x = nchw(c);
  if (!x) return -1;
  double sh = it_arg_float(c, "scale_factor_height", 1), sw = it_arg_float(c, "scale_factor_width", 1);
  int ac = it_arg_bool(c, "align_corners", 0);
  int64_t H = x->shape[2], W = x->shape[3];
  int64_t s[4] = {x->shape[0], x->shape[1], it_d2i(floor((double)H * sh)), it_d2i(floor((double)W * sw))};
  it_tensor *o = it_out_f(c, 0, 4, s);
  if (!o) return -1;
  size_t planes = (size_t)(s[0] * s[1]);
  for (size_t p = 0; p < planes; p++) {
    const float *xp = (const float *)x->data + p * (size_t)(H * W);
    for (int64_t h = 0; h < s[2]; h++) {
      double fy = ac ? (s[2] > 1 ? (double)h * (double)(H - 1) / (double)(s[2] - 1) : 0) : ((double)h + 0.5) / sh - 0.5;
      if (fy < 0) fy = 0;
      int64_t y0 = it_d2i(floor(fy)), y1 = y0 + 1 < H ? y0 + 1 : H - 1;
      if (y0 > H - 1) y0 = H - 1;
      double dy = fy - (double)y0;
      for (int64_t w = 0; w < s[3]; w++) {
        double fx = ac ? (s[3] > 1 ? (double)w * (double)(W - 1) / (double)(s[3] - 1) : 0) : ((double)w + 0.5) / sw - 0.5;
        if (fx < 0) fx = 0;
        int64_t x0 = it_d2i(floor(fx)), x1 = x0 + 1 < W ? x0 + 1 : W - 1;
        if (x0 > W - 1) x0 = W - 1;
        double dx = fx - (double)x0;
        double v = (1 - dy) * ((1 - dx) * xp[y0 * W + x0] + dx * xp[y0 * W + x1]) + dy * ((1 - dx) * xp[y1 * W + x0] + dx * xp[y1 * W + x1]);
        ((float *)o->data)[(p * (size_t)s[2] + (size_t)h) * (size_t)s[3] + (size_t)w] = (float)v;
      }
    }
  }
  return 0;
}

const it_kernel_def it_ops_image[] = {
  {"pixel_shuffle", k_pixel_shuffle}, {"pixel_unshuffle", k_pixel_unshuffle}, {"depth_to_space", k_depth_to_space},
  {"space_to_depth", k_space_to_depth}, {"upsample_nearest_neighbor", k_upsample_nearest_neighbor},
  {"upsample_bilinear", k_upsample_bilinear}, {NULL, NULL},
};
