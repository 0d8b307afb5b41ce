/* metrics.c — reconstruction error statistics (see metrics.h). */
#include "compress/metrics.h"
#include "compress/common.h"
#include "compress/threads.h"
#include <stdlib.h>

#define CHUNK ((size_t)1 << 16)

typedef struct {
  double xx, yy, xy, ee, ae, maxe, maxxx;
  size_t zeros;
} partial;

typedef struct {
  const float *x, *y;
  size_t n;
  partial *p;
} m_ctx;

static void task(void *pv, size_t t, unsigned w) {
  (void)w;
  m_ctx *c = pv;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  partial p = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = i0; i < i1; i++) {
    double a = c->x[i], b = c->y[i], e = a - b, ae = fabs(e);
    p.xx += a * a;
    p.yy += b * b;
    p.xy += a * b;
    p.ee += e * e;
    p.ae += ae;
    if (ae > p.maxe || isnan(ae)) p.maxe = ae;
    if (a * a > p.maxxx) p.maxxx = a * a;
    p.zeros += b == 0;
  }
  c->p[t] = p;
}

int mlsh_metrics_compute(const float *x, const float *y, size_t n, unsigned threads, mlsh_metrics *m) {
  if (n == 0) return MLSH_CZ_EINVAL;
  size_t tasks = (n + CHUNK - 1) / CHUNK;
  m_ctx c = {x, y, n, malloc(tasks * sizeof(partial))};
  if (!c.p) return MLSH_CZ_ENOMEM;
  mlsh_parallel_for(mlsh_threads_clamp(threads), tasks, task, &c);
  partial s = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t t = 0; t < tasks; t++) {
    partial p = c.p[t];
    s.xx += p.xx;
    s.yy += p.yy;
    s.xy += p.xy;
    s.ee += p.ee;
    s.ae += p.ae;
    if (p.maxe > s.maxe || isnan(p.maxe)) s.maxe = p.maxe;
    if (p.maxxx > s.maxxx) s.maxxx = p.maxxx;
    s.zeros += p.zeros;
  }
  free(c.p);
  m->n = n;
  m->mse = s.ee / (double)n;
  m->snr_db = s.ee == 0 ? INFINITY : 10.0 * log10(s.xx / s.ee);
  m->psnr_db = s.ee == 0 ? INFINITY : 10.0 * log10(s.maxxx / m->mse);
  m->max_abs_err = s.maxe;
  m->mean_abs_err = s.ae / (double)n;
  if (s.xx == 0 || s.yy == 0) m->cosine = (s.xx == 0 && s.yy == 0) ? 1.0 : 0.0;
  else m->cosine = s.xy / sqrt(s.xx * s.yy);
  m->sparsity = (double)s.zeros / (double)n;
  return MLSH_CZ_OK;
}
