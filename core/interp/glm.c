/* glm.c — generalized linear models: z_j = w_j · x + offset_j for each weight row, then
 * regressors: none / logit (1 / (1 + e^-z)) / probit (Φ(z)); classifiers: one row and two
 * classes gives [1 - p, p]; ReferenceClass encoding puts class 0 at score 0 and takes the
 * softmax (logit) ; OneVsRest applies the link to each row and normalises the sum to 1. The
 * transform and encoding fields are undeclared in mlsh's schema and read with nn_wire. */
#include "classic.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  size_t rows, cols, classes;
  const double *const *w;
  const double *off;
  int classifier, transform, encoding;
} glm_model;

const void *it_glm_compile(nn_b *B, const ProtobufCMessage *msg, int classifier, size_t nclasses, size_t *dims) {
  /* GLMRegressor and GLMClassifier share weights = 1, offset = 2 (and their generated layout) */
  const CoreML__Specification__GLMRegressor *r = (const void *)msg;
  glm_model *m = it_program_alloc(B->p, sizeof *m);
  double **w = m ? it_program_alloc(B->p, (r->n_weights + 1) * sizeof *w) : NULL;
  if (!w) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  if (r->n_weights == 0) return nn_fail(B, "the GLM has no weights"), NULL;
  m->rows = r->n_weights;
  m->cols = r->weights[0]->n_value;
  for (size_t i = 0; i < m->rows; i++) {
    if (r->weights[i]->n_value != m->cols) return nn_fail(B, "GLM weight rows have different lengths"), NULL;
    w[i] = r->weights[i]->value;
  }
  if (r->n_offset && r->n_offset != m->rows) return nn_fail(B, "%zu offsets for %zu weight rows", r->n_offset, m->rows), NULL;
  m->w = (const double *const *)w;
  m->off = r->n_offset ? r->offset : NULL;
  nnw_msg u = nnw_of(msg);
  m->transform = (int)nnw_u64(&u, 3, 0);
  m->encoding = (int)nnw_u64(&u, 4, 0);
  m->classifier = classifier;
  m->classes = nclasses;
  if (classifier) {
    if (m->transform > 1) return nn_fail(B, "unknown GLM transform %d", m->transform), NULL;
    int ok = (m->rows == 1 && nclasses == 2) || (m->encoding == 1 && m->rows == nclasses) || (m->encoding == 0 && m->rows + 1 == nclasses);
    if (!ok) return nn_fail(B, "%zu GLM weight rows do not fit %zu classes", m->rows, nclasses), NULL;
    *dims = nclasses;
  } else {
    if (m->transform > 2) return nn_fail(B, "unknown GLM transform %d", m->transform), NULL;
    *dims = m->rows;
  }
  return m;
}

static double link(double z, int probit) { return probit ? 0.5 * erfc(-z / sqrt(2.0)) : 1 / (1 + exp(-z)); }

static int k_glm(it_ctx *c) {
  const glm_model *m = c->op->aux;
  size_t nx;
  double *x = it_features(c, &nx);
  if (!x) return -1;
  if (nx != m->cols) { free(x); return it_fail(c, "the inputs hold %zu values, the GLM has %zu weights per row", nx, m->cols); }
  size_t K = m->classifier ? m->classes : m->rows;
  double *z = calloc(K + 1, sizeof *z);
  if (!z) { free(x); return it_fail(c, "out of memory"); }
  int shift = m->classifier && m->encoding == 0 && m->rows + 1 == K && m->rows > 1; /* class 0 is the reference */
  for (size_t j = 0; j < m->rows; j++) {
    double s = m->off ? m->off[j] : 0;
    for (size_t i = 0; i < nx; i++) s += m->w[j][i] * x[i];
    z[j + (size_t)shift] = s;
  }
  free(x);
  if (!m->classifier) {
    if (m->transform) for (size_t j = 0; j < K; j++) z[j] = link(z[j], m->transform == 2);
  } else if (m->rows == 1 && K == 2) {
    double p = link(z[0], m->transform == 1);
    z[0] = 1 - p;
    z[1] = p;
  } else if (shift && m->transform == 0) { /* softmax with z[0] = 0 */
    double mx = 0, s = 0;
    for (size_t j = 0; j < K; j++) mx = z[j] > mx ? z[j] : mx;
    for (size_t j = 0; j < K; j++) s += (z[j] = exp(z[j] - mx));
    for (size_t j = 0; j < K; j++) z[j] /= s;
  } else {
    double s = 0;
    for (size_t j = 0; j < K; j++) s += (z[j] = link(z[j], m->transform == 1));
    for (size_t j = 0; j < K && s > 0; j++) z[j] /= s;
  }
  int64_t sh[1] = {(int64_t)K};
  it_tensor *o = it_out_f(c, 0, 1, sh);
  if (o) for (size_t j = 0; j < K; j++) ((float *)o->data)[j] = (float)z[j];
  free(z);
  return o ? 0 : -1;
}
const it_kernel_def it_k_glm = {"glm", k_glm};
