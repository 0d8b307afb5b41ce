/* ops_detect.c — non_maximum_suppression, both versions.
 * iOS15: boxes [n,B,4] (center x, center y, width, height), scores [n,B,K], iou_threshold,
 *   score_threshold, max_boxes, per_class_suppression = false -> boxes [n,max,4], scores
 *   [n,max,K], indices [n,max] int32, counts [n] int32.
 * iOS17: boxes [n,4,B], scores [n,K,B], no score_threshold, no counts output; outputs
 *   [n,4,max], [n,K,max], [n,max] (recognised by the missing score_threshold).
 * Per batch: a box's score is its largest class score; boxes scoring > score_threshold are
 * visited by decreasing score (ties: lower index first) and kept unless their IoU with a kept box
 * (of the same arg-max class when per_class_suppression) is > iou_threshold; at most max_boxes
 * kept, in score order. When no box passes, the best-scoring box is returned alone (as Core ML
 * does; coremltools' reference test). Unused rows are 0, unused indices -1. */
#include "ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const float *score;
  int64_t i;
} ranked;

static int by_score(const void *a, const void *b) {
  const ranked *x = a, *y = b;
  float sx = x->score[x->i], sy = y->score[y->i];
  if (sx != sy) return sx > sy ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* IoU of two center-size boxes (cx, cy, w, h). */
static double iou(const double *a, const double *b) {
  double ax0 = a[0] - a[2] / 2, ax1 = a[0] + a[2] / 2, ay0 = a[1] - a[3] / 2, ay1 = a[1] + a[3] / 2;
  double bx0 = b[0] - b[2] / 2, bx1 = b[0] + b[2] / 2, by0 = b[1] - b[3] / 2, by1 = b[1] + b[3] / 2;
  double iw = fmin(ax1, bx1) - fmax(ax0, bx0), ih = fmin(ay1, by1) - fmax(ay0, by0);
  if (iw <= 0 || ih <= 0) return 0;
  double inter = iw * ih, uni = a[2] * a[3] + b[2] * b[3] - inter;
  return uni > 0 ? inter / uni : 0;
}

typedef struct {
  int64_t n, B, K, max;
  int last;             /* iOS17 layout: boxes/classes on the last axis */
  double iou_t, score_t;
  int per_class;
} nms_cfg;

/* Element (box b, component k) of a [n,B,C] or [n,C,B] tensor, batch base offset. */
static size_t at(const nms_cfg *g, int64_t C, int64_t b, int64_t k) {
  return g->last ? (size_t)(k * g->B + b) : (size_t)(b * C + k);
}

/* Select the kept boxes of one batch into keep[] (returns the count). */
static int64_t select_batch(const nms_cfg *g, const float *bx, const float *sc, float *best, int64_t *cls, ranked *r,
                            int64_t *keep) {
  for (int64_t b = 0; b < g->B; b++) {
    best[b] = -INFINITY;
    cls[b] = 0;
    for (int64_t k = 0; k < g->K; k++) {
      float v = sc[at(g, g->K, b, k)];
      if (v > best[b]) { best[b] = v; cls[b] = k; }
    }
    r[b].score = best;
    r[b].i = b;
  }
  qsort(r, (size_t)g->B, sizeof *r, by_score);
  int64_t nk = 0;
  for (int64_t j = 0; j < g->B && nk < g->max; j++) {
    int64_t b = r[j].i;
    if (!(best[b] > g->score_t)) break;
    double cb[4];
    for (int k = 0; k < 4; k++) cb[k] = bx[at(g, 4, b, k)];
    int ok = 1;
    for (int64_t q = 0; q < nk && ok; q++) {
      if (g->per_class && cls[keep[q]] != cls[b]) continue;
      double ck[4];
      for (int k = 0; k < 4; k++) ck[k] = bx[at(g, 4, keep[q], k)];
      ok = !(iou(cb, ck) > g->iou_t);
    }
    if (ok) keep[nk++] = b;
  }
  if (nk == 0 && g->B > 0 && g->max > 0) keep[nk++] = r[0].i;
  return nk;
}

static int k_nms(it_ctx *c) {
  it_tensor *boxes = it_arg_req(c, "boxes"), *scores = boxes ? it_arg_req(c, "scores") : NULL;
  if (!scores) return -1;
  nms_cfg g;
  memset(&g, 0, sizeof g);
  g.last = it_arg_count(c, "score_threshold") == 0;
  if (boxes->st != IT_F32 || scores->st != IT_F32 || boxes->rank != 3 || scores->rank != 3) return it_fail(c, "boxes and scores must be rank-3 float tensors");
  g.n = boxes->shape[0];
  g.B = g.last ? boxes->shape[2] : boxes->shape[1];
  g.K = g.last ? scores->shape[1] : scores->shape[2];
  if (boxes->shape[g.last ? 1 : 2] != 4) return it_fail(c, "boxes must hold 4 coordinates per box");
  if (scores->shape[0] != g.n || scores->shape[g.last ? 2 : 1] != g.B) return it_fail(c, "scores do not match the boxes");
  g.max = it_arg_int(c, "max_boxes", -1);
  if (g.max < 1) return it_fail(c, "max_boxes must be at least 1");
  g.iou_t = it_arg_float(c, "iou_threshold", 0);
  g.score_t = g.last ? -INFINITY : it_arg_float(c, "score_threshold", 0);
  g.per_class = it_arg_bool(c, "per_class_suppression", 0);
  int64_t sb[3] = {g.n, g.last ? 4 : g.max, g.last ? g.max : 4}, ss[3] = {g.n, g.last ? g.K : g.max, g.last ? g.max : g.K};
  int64_t si[2] = {g.n, g.max};
  it_tensor *ob = it_out(c, 0, boxes->dt, 3, sb), *os = ob ? it_out(c, 1, scores->dt, 3, ss) : NULL;
  it_tensor *oi = os ? it_out(c, 2, MLSH_DT_INT32, 2, si) : NULL;
  it_tensor *on = oi && !g.last && c->op->nout > 3 ? it_out(c, 3, MLSH_DT_INT32, 1, &g.n) : NULL;
  if (!oi || (!g.last && c->op->nout > 3 && !on)) return -1;
  memset(ob->data, 0, ob->n * sizeof(float));
  memset(os->data, 0, os->n * sizeof(float));
  size_t nb = (size_t)(g.B ? g.B : 1);
  float *best = malloc(nb * sizeof *best);
  int64_t *cls = malloc(nb * sizeof *cls), *keep = malloc(nb * sizeof *keep);
  ranked *r = malloc(nb * sizeof *r);
  if (!best || !cls || !keep || !r) {
    free(best), free(cls), free(keep), free(r);
    return it_fail(c, "out of memory");
  }
  nms_cfg go = g;
  go.B = g.max; /* output layout */
  for (int64_t bt = 0; bt < g.n; bt++) {
    const float *bx = (const float *)boxes->data + bt * g.B * 4, *sc = (const float *)scores->data + bt * g.B * g.K;
    int64_t nk = select_batch(&g, bx, sc, best, cls, r, keep);
    float *OB = (float *)ob->data + bt * g.max * 4, *OS = (float *)os->data + bt * g.max * g.K;
    int64_t *OI = (int64_t *)oi->data + bt * g.max;
    for (int64_t q = 0; q < g.max; q++) OI[q] = q < nk ? keep[q] : -1;
    for (int64_t q = 0; q < nk; q++) {
      for (int k = 0; k < 4; k++) OB[at(&go, 4, q, k)] = bx[at(&g, 4, keep[q], k)];
      for (int64_t k = 0; k < g.K; k++) OS[at(&go, g.K, q, k)] = sc[at(&g, g.K, keep[q], k)];
    }
    if (on) ((int64_t *)on->data)[bt] = nk;
  }
  free(best), free(cls), free(keep), free(r);
  return 0;
}

const it_kernel_def it_ops_detect[] = {
  {"non_maximum_suppression", k_nms}, {NULL, NULL},
};
