/* ops_sample.c — ops that sample an NCHW image at computed points:
 *   crop_resize: iOS15/16 roi [N,1,4|5,1,1] -> [N,B|1,C,th,tw]; iOS17 boxes [N,4] + box_indices
 *     [N] (default 0..N-1) -> [N,C,th,tw]. Coordinates per box_coordinate_mode (CORNERS_/
 *     CENTER_SIZE_ x HEIGHT_/WIDTH_FIRST), times (H-1)/(W-1) when normalized_coordinates, times
 *     spatial_scale. The th (tw) sample points of a box [s, e] follow sampling_mode, with L = e-s:
 *     STRICT_ALIGN_CORNERS s + i*L/(n-1) (n = 1: s); ALIGN_CORNERS the same but n = 1 gives the
 *     centre; DEFAULT s + i*L/n; OFFSET_CORNERS s + (i+0.5)*L/n; UNALIGN_CORNERS
 *     s + (i+0.5)*L/n - 0.5. Bilinear; a point outside [0, H-1] x [0, W-1] gives pad_value
 *     (iOS16+, default 0).
 *   resample(x, coordinates [B,H2,W2,2] as (x, y), sampling_mode bilinear|nearest, padding_mode
 *     constant|border|reflection|symmetric, padding_value, coordinates_mode unnormalized|
 *     normalized_minus_one_to_one|normalized_zero_to_one, align_corners): grid sampling; padding
 *     applies to pixel indices outside the image, as the op's documentation draws it.
 *   affine(x, transform_matrix [B|1,6], output_height, output_width, ...): the output's
 *     normalized grid (-1..1, align_corners as in resample) mapped by x' = a0 x + a1 y + a2,
 *     y' = b0 x + b1 y + b2, then resampled.
 *   resize (iOS17)(x, shape, resized_dims, interpolation_mode LINEAR|NEAREST_NEIGHBOR,
 *     sampling_mode): the last resized_dims dimensions take the last values of shape (0 keeps
 *     x's); each output index maps to an input point by resize_bilinear's grid (STRICT_ALIGN /
 *     ALIGN: i(X-1)/(n-1); DEFAULT: iX/n; OFFSET: (i+0.5)max(1,X-1)/n; UNALIGN: (i+0.5)X/n - 0.5;
 *     clamped to [0, X-1]); LINEAR interpolates along every resized dimension, NEAREST_NEIGHBOR
 *     takes floor(point) in DEFAULT mode (PyTorch's nearest) and the rounded point otherwise. */
#include "ops.h"
#include <math.h>
#include <string.h>

typedef enum { PAD_CONSTANT, PAD_BORDER, PAD_REFLECTION, PAD_SYMMETRIC } padmode;

/* A pixel index mapped into [0, n) by the padding mode, -1 for "use the constant". */
static int64_t pad_index(int64_t i, int64_t n, padmode m) {
  if (i >= 0 && i < n) return i;
  switch (m) {
  case PAD_BORDER: return i < 0 ? 0 : n - 1;
  case PAD_REFLECTION: {
    if (n == 1) return 0;
    int64_t p = 2 * (n - 1), k = ((i % p) + p) % p;
    return k < n ? k : p - k;
  }
  case PAD_SYMMETRIC: {
    int64_t p = 2 * n, k = ((i % p) + p) % p;
    return k < n ? k : p - 1 - k;
  }
  default: return -1;
  }
}

static float pix(const float *img, int64_t H, int64_t W, int64_t y, int64_t x, padmode m, float pad) {
  int64_t yy = pad_index(y, H, m), xx = pad_index(x, W, m);
  return yy < 0 || xx < 0 ? pad : img[yy * W + xx];
}

/* Coordinates far outside any image are clamped (they read padding either way); NaN stays NaN. */
static double tame(double v) { return v > 1e12 ? 1e12 : v < -1e12 ? -1e12 : v; }

static float bilinear(const float *img, int64_t H, int64_t W, double y, double x, padmode m, float pad) {
  if (y != y || x != x) return NAN;
  y = tame(y);
  x = tame(x);
  double fy = floor(y), fx = floor(x);
  double wy = y - fy, wx = x - fx;
  int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
  double v = (1 - wy) * ((1 - wx) * pix(img, H, W, y0, x0, m, pad) + wx * pix(img, H, W, y0, x0 + 1, m, pad)) +
             wy * ((1 - wx) * pix(img, H, W, y0 + 1, x0, m, pad) + wx * pix(img, H, W, y0 + 1, x0 + 1, m, pad));
  return (float)v;
}

/* ---- crop_resize ---- */
typedef enum { S_STRICT, S_ALIGN, S_DEFAULT, S_OFFSET, S_UNALIGN } smode;

static int sampling(it_ctx *c, smode *m) {
  static const char *const names[] = {"STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS", "UNALIGN_CORNERS"};
  const char *s = it_arg_str(c, "sampling_mode", "DEFAULT");
  for (int i = 0; i < 5; i++) if (strcmp(s, names[i]) == 0) { *m = (smode)i; return 0; }
  return it_fail(c, "unknown sampling_mode '%s'", s);
}

static double grid(smode m, double s, double e, int64_t i, int64_t n) {
  double L = e - s;
  switch (m) {
  case S_STRICT: return n > 1 ? s + (double)i * L / (double)(n - 1) : s;
  case S_ALIGN: return n > 1 ? s + (double)i * L / (double)(n - 1) : (s + e) / 2;
  case S_DEFAULT: return s + (double)i * L / (double)n;
  case S_OFFSET: return s + ((double)i + 0.5) * L / (double)n;
  default: return s + ((double)i + 0.5) * L / (double)n - 0.5;
  }
}

/* Box [4] in the op's coordinate mode -> y0, x0, y1, x1 in pixels. */
static int box_pixels(it_ctx *c, const float *b, int64_t H, int64_t W, double *yx) {
  const char *mode = it_arg_str(c, "box_coordinate_mode", "CORNERS_HEIGHT_FIRST");
  double v[4] = {b[0], b[1], b[2], b[3]};
  int wf = strstr(mode, "WIDTH_FIRST") != NULL, cs = strncmp(mode, "CENTER_SIZE", 11) == 0;
  if (!wf && strcmp(mode, "CORNERS_HEIGHT_FIRST") && strcmp(mode, "CENTER_SIZE_HEIGHT_FIRST")) return it_fail(c, "unknown box_coordinate_mode '%s'", mode);
  if (wf && strcmp(mode, "CORNERS_WIDTH_FIRST") && strcmp(mode, "CENTER_SIZE_WIDTH_FIRST")) return it_fail(c, "unknown box_coordinate_mode '%s'", mode);
  double y0 = v[wf ? 1 : 0], x0 = v[wf ? 0 : 1], y1 = v[wf ? 3 : 2], x1 = v[wf ? 2 : 3];
  if (cs) { double ch = y0, cw = x0, h = y1, w = x1; y0 = ch - h / 2; y1 = ch + h / 2; x0 = cw - w / 2; x1 = cw + w / 2; }
  double sy = it_arg_bool(c, "normalized_coordinates", 0) ? (double)(H - 1) : 1, sx = sy == 1 ? 1 : (double)(W - 1);
  double sc = it_arg_float(c, "spatial_scale", 1);
  yx[0] = y0 * sy * sc; yx[1] = x0 * sx * sc; yx[2] = y1 * sy * sc; yx[3] = x1 * sx * sc;
  return 0;
}

static void crop_one(const float *img, int64_t H, int64_t W, const double *yx, smode m, int64_t th, int64_t tw, float pad, float *out) {
  for (int64_t i = 0; i < th; i++) {
    double y = grid(m, yx[0], yx[2], i, th);
    for (int64_t j = 0; j < tw; j++) {
      double x = grid(m, yx[1], yx[3], j, tw);
      out[i * tw + j] = (y < 0 || y > (double)(H - 1) || x < 0 || x > (double)(W - 1)) ? pad
                                                                                          : bilinear(img, H, W, y, x, PAD_BORDER, pad);
    }
  }
}

static int k_crop_resize(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  it_tensor *boxes = it_arg(c, "boxes"), *roi = boxes ? NULL : it_arg_req(c, "roi");
  if (!boxes && !roi) return -1;
  if (x->rank != 4 || x->st != IT_F32) return it_fail(c, "x must be a rank-4 float tensor");
  it_tensor *bt = boxes ? boxes : roi;
  if (bt->st == IT_STR || bt->st == IT_B8) return it_fail(c, "boxes must be numbers");
  int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], N = bt->shape[0];
  int64_t th = it_arg_int(c, "target_height", 1), tw = it_arg_int(c, "target_width", 1), per = 4;
  if (th < 1 || tw < 1) return it_fail(c, "target sizes must be positive");
  if (boxes && (boxes->rank != 2 || boxes->shape[1] != 4)) return it_fail(c, "boxes must be [N, 4]");
  if (roi) {
    if (roi->rank != 5 || (roi->shape[2] != 4 && roi->shape[2] != 5)) return it_fail(c, "roi must be [N, 1, 4 or 5, 1, 1]");
    per = roi->shape[2];
  }
  smode m = S_DEFAULT;
  if (sampling(c, &m) != 0) return -1;
  float pad = (float)it_arg_float(c, "pad_value", 0);
  it_tensor *bi = boxes ? it_arg(c, "box_indices") : NULL;
  if (bi && (int64_t)bi->n != N) return it_fail(c, "box_indices has %zu values for %lld boxes", bi->n, (long long)N);
  int all = roi && per == 4; /* every box on every image */
  int64_t os[5] = {N, all ? B : 1, C, th, tw}, os4[4] = {N, C, th, tw};
  it_tensor *o = boxes ? it_out(c, 0, x->dt, 4, os4) : it_out(c, 0, x->dt, 5, os);
  if (!o) return -1;
  float *O = o->data;
  for (int64_t n = 0; n < N; n++) {
    float b[5];
    for (int64_t k = 0; k < per; k++) b[k] = (float)it_get_d(bt, (size_t)(n * per + k));
    double yx[4] = {0, 0, 0, 0};
    if (box_pixels(c, per == 5 ? b + 1 : b, H, W, yx) != 0) return -1;
    int64_t img = bi ? it_get_i(bi, (size_t)n) : per == 5 ? it_d2i(b[0]) : boxes ? n : 0;
    for (int64_t k = all ? 0 : img; k < (all ? B : img + 1); k++) {
      if (k < 0 || k >= B) return it_fail(c, "box %lld refers to image %lld of %lld", (long long)n, (long long)k, (long long)B);
      for (int64_t ch = 0; ch < C; ch++, O += th * tw)
        crop_one((const float *)x->data + (k * C + ch) * H * W, H, W, yx, m, th, tw, pad, O);
    }
  }
  return 0;
}

/* ---- resample / affine ---- */
typedef struct {
  int nearest, align, cmode; /* cmode 0 unnormalized, 1 [-1,1], 2 [0,1] */
  padmode pm;
  float pad;
} rs_cfg;

static int rs_config(it_ctx *c, rs_cfg *g) {
  const char *sm = it_arg_str(c, "sampling_mode", "bilinear"), *pm = it_arg_str(c, "padding_mode", "constant");
  const char *cm = it_arg_str(c, "coordinates_mode", "normalized_minus_one_to_one");
  static const char *const pads[] = {"constant", "border", "reflection", "symmetric"};
  static const char *const cms[] = {"unnormalized", "normalized_minus_one_to_one", "normalized_zero_to_one"};
  g->nearest = strcmp(sm, "nearest") == 0;
  if (!g->nearest && strcmp(sm, "bilinear")) return it_fail(c, "unknown sampling_mode '%s'", sm);
  g->pm = (padmode)-1;
  for (int i = 0; i < 4; i++) if (strcmp(pm, pads[i]) == 0) g->pm = (padmode)i;
  g->cmode = -1;
  for (int i = 0; i < 3; i++) if (strcmp(cm, cms[i]) == 0) g->cmode = i;
  if ((int)g->pm < 0) return it_fail(c, "unknown padding_mode '%s'", pm);
  if (g->cmode < 0) return it_fail(c, "unknown coordinates_mode '%s'", cm);
  g->align = it_arg_bool(c, "align_corners", 0);
  g->pad = (float)it_arg_float(c, "padding_value", 0);
  return 0;
}

/* Coordinate v along an axis of n pixels -> pixel space. */
static double unnorm(const rs_cfg *g, double v, int64_t n) {
  if (g->cmode == 0) return v;
  if (g->cmode == 2) v = v * 2 - 1;
  return g->align ? (v + 1) / 2 * (double)(n - 1) : ((v + 1) * (double)n - 1) / 2;
}

static float sample(const rs_cfg *g, const float *img, int64_t H, int64_t W, double xn, double yn) {
  double x = unnorm(g, xn, W), y = unnorm(g, yn, H);
  if (g->nearest) return y != y || x != x ? NAN : pix(img, H, W, (int64_t)floor(tame(y) + 0.5), (int64_t)floor(tame(x) + 0.5), g->pm, g->pad);
  return bilinear(img, H, W, y, x, g->pm, g->pad);
}

static int k_resample(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *co = x ? it_arg_req(c, "coordinates") : NULL;
  if (!co) return -1;
  if (x->rank != 4 || x->st != IT_F32) return it_fail(c, "x must be a rank-4 float tensor");
  if (co->rank != 4 || co->shape[0] != x->shape[0] || co->shape[3] != 2 || co->st == IT_STR || co->st == IT_B8)
    return it_fail(c, "coordinates must be [B, H2, W2, 2] numbers");
  rs_cfg g;
  if (rs_config(c, &g) != 0) return -1;
  int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], H2 = co->shape[1], W2 = co->shape[2];
  int64_t os[4] = {B, C, H2, W2};
  it_tensor *o = it_out(c, 0, x->dt, 4, os);
  if (!o) return -1;
  float *O = o->data;
  for (int64_t b = 0; b < B; b++)
    for (int64_t ch = 0; ch < C; ch++) {
      const float *img = (const float *)x->data + (b * C + ch) * H * W;
      for (int64_t p = 0; p < H2 * W2; p++, O++) {
        size_t k = (size_t)((b * H2 * W2 + p) * 2);
        *O = sample(&g, img, H, W, it_get_d(co, k), it_get_d(co, k + 1));
      }
    }
  return 0;
}

static int k_affine(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *tm = x ? it_arg_req(c, "transform_matrix") : NULL;
  if (!tm) return -1;
  if (x->rank != 4 || x->st != IT_F32) return it_fail(c, "x must be a rank-4 float tensor");
  if (tm->rank != 2 || tm->shape[1] != 6 || (tm->shape[0] != 1 && tm->shape[0] != x->shape[0]) || tm->st != IT_F32)
    return it_fail(c, "transform_matrix must be [B or 1, 6] floats");
  rs_cfg g;
  if (rs_config(c, &g) != 0) return -1;
  int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t OH = it_arg_int(c, "output_height", 0), OW = it_arg_int(c, "output_width", 0);
  if (OH < 1 || OW < 1) return it_fail(c, "output_height and output_width must be positive");
  int64_t os[4] = {B, C, OH, OW};
  it_tensor *o = it_out(c, 0, x->dt, 4, os);
  if (!o) return -1;
  float *O = o->data;
  for (int64_t b = 0; b < B; b++) {
    const float *a = (const float *)tm->data + (tm->shape[0] == 1 ? 0 : b * 6);
    for (int64_t ch = 0; ch < C; ch++) {
      const float *img = (const float *)x->data + (b * C + ch) * H * W;
      for (int64_t i = 0; i < OH; i++)
        for (int64_t j = 0; j < OW; j++, O++) {
          /* the output pixel in the op's coordinate space */
          double u = g.cmode == 0 ? (double)j : g.align ? (OW > 1 ? -1 + 2.0 * (double)j / (double)(OW - 1) : 0) : (2.0 * (double)j + 1) / (double)OW - 1;
          double v = g.cmode == 0 ? (double)i : g.align ? (OH > 1 ? -1 + 2.0 * (double)i / (double)(OH - 1) : 0) : (2.0 * (double)i + 1) / (double)OH - 1;
          if (g.cmode == 2) { u = (u + 1) / 2; v = (v + 1) / 2; }
          *O = sample(&g, img, H, W, a[0] * u + a[1] * v + a[2], a[3] * u + a[4] * v + a[5]);
        }
    }
  }
  return 0;
}

/* ---- resize (iOS17) ---- */
static double resize_point(smode m, int64_t i, int64_t X, int64_t n) {
  double p, di = (double)i, dx = (double)X, dn = (double)n;
  switch (m) {
  case S_STRICT: p = n > 1 ? di * (dx - 1) / (dn - 1) : 0; break;
  case S_ALIGN: p = n > 1 ? di * (dx - 1) / (dn - 1) : (dx - 1) / 2; break;
  case S_DEFAULT: p = di * dx / dn; break;
  case S_OFFSET: p = (di + 0.5) * (X > 1 ? dx - 1 : 1) / dn; break;
  default: p = (di + 0.5) * dx / dn - 0.5; break;
  }
  return p < 0 ? 0 : p > dx - 1 ? dx - 1 : p;
}

static int k_resize(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *sh = x ? it_arg_req(c, "shape") : NULL;
  if (!sh) return -1;
  int64_t k = it_arg_int(c, "resized_dims", 0);
  if (x->st == IT_STR || x->st == IT_B8 || sh->st == IT_STR) return it_fail(c, "x must be numeric and shape an int vector");
  if (k < 0 || (size_t)k > sh->n || (int64_t)sh->n > x->rank) return it_fail(c, "resized_dims %lld does not fit shape (%zu values) and x (rank %d)", (long long)k, sh->n, x->rank);
  const char *im = it_arg_str(c, "interpolation_mode", "LINEAR");
  int linear = strcmp(im, "LINEAR") == 0;
  if (!linear && strcmp(im, "NEAREST_NEIGHBOR")) return it_fail(c, "unknown interpolation_mode '%s'", im);
  smode m = S_DEFAULT;
  if (sampling(c, &m) != 0) return -1;
  int r = x->rank, first = r - (int)k;
  int64_t os[IT_MAX_RANK];
  memcpy(os, x->shape, sizeof os);
  for (int i = 0; i < k; i++) {
    int64_t v = it_get_i(sh, sh->n - (size_t)k + (size_t)i);
    if (v < 0) return it_fail(c, "shape has a negative dimension");
    if (v) os[first + i] = v;
    if (x->shape[first + i] == 0 && os[first + i] > 0) return it_fail(c, "cannot resize an empty dimension to %lld", (long long)v);
  }
  it_tensor *o = it_out(c, 0, x->dt, r, os);
  if (!o) return -1;
  int64_t st[IT_MAX_RANK], s = 1, idx[IT_MAX_RANK] = {0};
  for (int d = r - 1; d >= 0; d--) { st[d] = s; s *= x->shape[d]; }
  for (size_t oi = 0; oi < o->n; oi++) {
    int64_t base = 0, lo[IT_MAX_RANK], hi[IT_MAX_RANK];
    double w[IT_MAX_RANK];
    for (int d = 0; d < r; d++) {
      if (d < first || x->shape[d] == 0) { base += idx[d] * st[d]; continue; }
      double p = resize_point(m, idx[d], x->shape[d], os[d]);
      double f = linear ? floor(p) : (m == S_DEFAULT ? floor(p) : floor(p + 0.5));
      lo[d] = (int64_t)f;
      hi[d] = lo[d] + 1 < x->shape[d] ? lo[d] + 1 : lo[d];
      w[d] = linear ? p - f : 0;
    }
    double v = 0;
    for (int64_t corner = 0; corner < ((int64_t)1 << k); corner++) {
      double wt = 1;
      int64_t off = base;
      for (int d = first; d < r; d++) {
        int up = (int)((corner >> (d - first)) & 1);
        wt *= up ? w[d] : 1 - w[d];
        off += (up ? hi[d] : lo[d]) * st[d];
      }
      if (wt != 0) v += wt * it_get_d(x, (size_t)off);
    }
    it_put_d(o, oi, o->st == IT_F32 ? v : floor(v + 0.5));
    for (int d = r - 1; d >= 0; d--) { if (++idx[d] < os[d]) break; idx[d] = 0; }
  }
  return 0;
}

const it_kernel_def it_ops_sample[] = {
  {"crop_resize", k_crop_resize}, {"resample", k_resample}, {"affine", k_affine}, {"resize", k_resize}, {NULL, NULL},
};
