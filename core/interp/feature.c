/* feature.c — Core ML's feature-engineering models as kernels, for pipelines (pipeline.h):
 *   scaler                y = scaleValue * (x + shiftValue) (each one value or one per element;
 *                         absent: scale 1, shift 0)
 *   imputer               elements equal to the replace value (NaN unless replaceDoubleValue /
 *                         replaceInt64Value is set) take the imputed value (one, or one per element)
 *   normalizer            x / norm, norm = max |x_i| (LMax, as sklearn's "max"), sum |x_i| (L1) or
 *                         sqrt(sum x_i^2) (L2); an all-zero input stays zero
 *   featureVectorizer     the inputList columns' values concatenated, each inputDimensions long
 *   oneHotEncoder         an int64 category -> [K] with a single 1 (unknown: error, or all zeros
 *                         under IgnoreUnknown); string categories and sparse output are refused
 *   arrayFeatureExtractor the values at extractIndex (bounds-checked at run time)
 * dictVectorizer and categoricalMapping need dictionary or string features, which the
 * interpreter does not carry: they are refused at load. Values are computed in double. The
 * messages are undeclared in mlsh's schema subset (Opaque) and read with nn_wire. */
#include "pipeline.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int mode;           /* normalizer: norm type; one-hot: ignore unknown; imputer: replace is set */
  size_t na, nb;
  double *a, *b;      /* scaler: shift, scale; imputer: imputed values, a[0] if na == 1 */
  double replace;     /* imputer */
  int64_t *idx;       /* one-hot categories, extractor indices, vectorizer dims (na of them) */
} fe_model;

/* Output element i of o (float or int storage) := v; ints must be whole. */
static int put(it_ctx *c, it_tensor *o, size_t i, double v) {
  if (o->st == IT_F32) ((float *)o->data)[i] = (float)v;
  else if (o->st == IT_I64) {
    if (v != floor(v)) return it_fail(c, "value %g does not fit the integer output", v);
    ((int64_t *)o->data)[i] = it_d2i(v);
  } else return it_fail(c, "the output type is not numeric");
  return 0;
}

static it_tensor *x_of(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (x && x->st != IT_F32 && x->st != IT_I64 && x->st != IT_B8) return it_fail(c, "the input is not numeric"), NULL;
  return x;
}

static int per_elem(it_ctx *c, size_t k, size_t n, const char *what) {
  if (k > 1 && k != n) return it_fail(c, "%zu %s values for an input of %zu values", k, what, n);
  return 0;
}

static int k_scale(it_ctx *c) {
  const fe_model *m = c->op->aux;
  it_tensor *x = x_of(c);
  if (!x || per_elem(c, m->na, x->n, "shift") != 0 || per_elem(c, m->nb, x->n, "scale") != 0) return -1;
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, x->rank, x->shape);
  if (!o) return -1;
  for (size_t i = 0; i < x->n; i++) {
    double s = m->na ? m->a[m->na > 1 ? i : 0] : 0, k = m->nb ? m->b[m->nb > 1 ? i : 0] : 1;
    if (put(c, o, i, k * (it_get_d(x, i) + s)) != 0) return -1;
  }
  return 0;
}

static int k_impute(it_ctx *c) {
  const fe_model *m = c->op->aux;
  it_tensor *x = x_of(c);
  if (!x) return -1;
  if (m->na > 1 && m->na != x->n) return it_fail(c, "%zu imputed values for an input of %zu values", m->na, x->n);
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, x->rank, x->shape);
  if (!o) return -1;
  for (size_t i = 0; i < x->n; i++) {
    double v = it_get_d(x, i);
    int missing = m->mode ? v == m->replace : isnan(v);
    if (missing) v = m->a[m->na > 1 ? i : 0];
    if (put(c, o, i, v) != 0) return -1;
  }
  return 0;
}

static int k_norm(it_ctx *c) {
  const fe_model *m = c->op->aux;
  it_tensor *x = x_of(c);
  if (!x) return -1;
  double z = 0;
  for (size_t i = 0; i < x->n; i++) {
    double v = fabs(it_get_d(x, i));
    z = m->mode == 0 ? (v > z ? v : z) : m->mode == 1 ? z + v : z + v * v;
  }
  if (m->mode == 2) z = sqrt(z);
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, x->rank, x->shape);
  if (!o) return -1;
  for (size_t i = 0; i < x->n; i++)
    if (put(c, o, i, z > 0 ? it_get_d(x, i) / z : it_get_d(x, i)) != 0) return -1;
  return 0;
}

static int k_vector(it_ctx *c) {
  const fe_model *m = c->op->aux;
  int k = it_arg_count(c, "x");
  size_t total = 0;
  for (int i = 0; i < k; i++) {
    const it_tensor *t = it_arg_at(c, "x", i);
    if (t->st != IT_F32 && t->st != IT_I64 && t->st != IT_B8) return it_fail(c, "column %d is not numeric", i);
    if ((size_t)i < m->na && m->idx[i] > 0 && (size_t)m->idx[i] != t->n)
      return it_fail(c, "column %d holds %zu values, inputDimensions says %lld", i, t->n, (long long)m->idx[i]);
    total += t->n;
  }
  int64_t sh[1] = {(int64_t)total};
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, 1, sh);
  if (!o) return -1;
  size_t j = 0;
  for (int i = 0; i < k; i++) {
    const it_tensor *t = it_arg_at(c, "x", i);
    for (size_t e = 0; e < t->n; e++)
      if (put(c, o, j++, it_get_d(t, e)) != 0) return -1;
  }
  return 0;
}

static int k_onehot(it_ctx *c) {
  const fe_model *m = c->op->aux;
  it_tensor *x = x_of(c);
  if (!x) return -1;
  if (x->n != 1) return it_fail(c, "the one-hot input holds %zu values (one category expected)", x->n);
  double v = it_get_d(x, 0);
  int64_t sh[1] = {(int64_t)m->na};
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, 1, sh);
  if (!o) return -1;
  int hit = 0;
  for (size_t i = 0; i < m->na; i++) {
    int on = v == (double)m->idx[i];
    hit |= on;
    if (put(c, o, i, on) != 0) return -1;
  }
  if (!hit && !m->mode) return it_fail(c, "category %g is not one of the encoder's %zu categories", v, m->na);
  return 0;
}

static int k_extract(it_ctx *c) {
  const fe_model *m = c->op->aux;
  it_tensor *x = x_of(c);
  if (!x) return -1;
  int64_t sh[1] = {(int64_t)m->na};
  it_tensor *o = it_out(c, 0, MLSH_DT_INVALID, 1, sh);
  if (!o) return -1;
  for (size_t i = 0; i < m->na; i++) {
    if (m->idx[i] < 0 || (uint64_t)m->idx[i] >= x->n)
      return it_fail(c, "extractIndex %lld is outside the input's %zu values", (long long)m->idx[i], x->n);
    if (put(c, o, i, it_get_d(x, (size_t)m->idx[i])) != 0) return -1;
  }
  return 0;
}

static const it_kernel_def K_SCALE = {"scaler", k_scale}, K_IMPUTE = {"imputer", k_impute}, K_NORM = {"normalizer", k_norm},
                           K_VECTOR = {"featureVectorizer", k_vector}, K_ONEHOT = {"oneHotEncoder", k_onehot},
                           K_EXTRACT = {"arrayFeatureExtractor", k_extract};

/* ---- lowering ------------------------------------------------------------------------------ */

static double *reals(nn_b *B, const nnw_msg *w, unsigned field, size_t *n) {
  *n = nnw_reals(w, field, 1, NULL, 0);
  double *v = it_program_alloc(B->p, (*n + 1) * sizeof *v);
  if (!v) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  nnw_reals(w, field, 1, v, *n);
  return v;
}

static int64_t *ints(nn_b *B, const nnw_msg *w, unsigned field, size_t *n) {
  *n = nnw_ints(w, field, NULL, 0);
  int64_t *v = it_program_alloc(B->p, (*n + 1) * sizeof *v);
  if (!v) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  nnw_ints(w, field, v, *n);
  return v;
}

/* The op: x = each input slot, output 0 = the model's first output with its declared dtype. */
static int emit(nn_b *B, const it_model *mod, const it_kernel_def *k, fe_model *m, const int *slots, int n) {
  const CoreML__Specification__FeatureDescription *out = mod->description->output[0];
  it_op *op = nn_op(B, k->type, out->name, k);
  if (!op || nn_args(B, op, "x", slots, n) != 0 || nn_out(B, op, out->name) < 0) return -1;
  op->aux = m;
  mlsh_dtype dt = it_feature_dtype(out);
  op->out_types[0].dt = dt == MLSH_DT_INVALID ? MLSH_DT_FP64 : dt;
  return 0;
}

static int one_input(nn_b *B, const it_model *mod, const it_kernel_def *k, fe_model *m) {
  if (mod->description->n_input != 1) return nn_fail(B, "%s takes one input, the model declares %zu", k->type, mod->description->n_input);
  int s = it_sub_input(B, mod->description->input[0]->name);
  return s < 0 ? -1 : emit(B, mod, k, m, &s, 1);
}

static int lower_scaler(nn_b *B, const it_model *mod, fe_model *m) {
  nnw_msg w = nnw_of(mod->scaler);
  m->a = reals(B, &w, 1, &m->na);
  m->b = m->a ? reals(B, &w, 2, &m->nb) : NULL;
  return m->b ? one_input(B, mod, &K_SCALE, m) : -1;
}

static int lower_imputer(nn_b *B, const it_model *mod, fe_model *m) {
  nnw_msg w = nnw_of(mod->imputer);
  nnw_field f;
  if (nnw_has(&w, 3) || nnw_has(&w, 6) || nnw_has(&w, 7) || nnw_has(&w, 13))
    return nn_fail(B, "imputer with string or dictionary values is not supported by the interpreter");
  m->mode = nnw_has(&w, 11) || nnw_has(&w, 12);
  m->replace = nnw_has(&w, 12) ? (double)nnw_i64(&w, 12, 0) : nnw_f64(&w, 11, NAN);
  if (nnw_get(&w, 4, &f) || nnw_get(&w, 5, &f)) {
    nnw_msg v = nnw_raw(f.data, f.len);
    if (f.field == 4) m->a = reals(B, &v, 1, &m->na);
    else {
      int64_t *iv = ints(B, &v, 1, &m->na);
      m->a = iv ? it_program_alloc(B->p, (m->na + 1) * sizeof *m->a) : NULL;
      for (size_t i = 0; m->a && i < m->na; i++) m->a[i] = (double)iv[i];
    }
    if (!m->a) return -1;
    if (m->na == 0) return nn_fail(B, "the imputer's imputed array is empty");
  } else {
    if (!(m->a = it_program_alloc(B->p, sizeof *m->a))) return mlsh_fail(B->e, NULL, "out of memory");
    m->na = 1;
    m->a[0] = nnw_has(&w, 2) ? (double)nnw_i64(&w, 2, 0) : nnw_f64(&w, 1, 0);
    if (!nnw_has(&w, 1) && !nnw_has(&w, 2)) return nn_fail(B, "the imputer has no imputed value");
  }
  return one_input(B, mod, &K_IMPUTE, m);
}

static int lower_normalizer(nn_b *B, const it_model *mod, fe_model *m) {
  nnw_msg w = nnw_of(mod->normalizer);
  m->mode = (int)nnw_u64(&w, 1, 0);
  if (m->mode > 2) return nn_fail(B, "unknown normalizer norm type %d", m->mode);
  return one_input(B, mod, &K_NORM, m);
}

static int lower_vectorizer(nn_b *B, const it_model *mod, fe_model *m) {
  nnw_msg w = nnw_of(mod->featurevectorizer);
  size_t cur = 0, n = 0;
  nnw_field f;
  while (nnw_next(&w, &cur, &f)) n += f.field == 1 && f.wire == 2;
  if (n == 0 || n > 4096) return nn_fail(B, "the featureVectorizer has %zu input columns (1..4096 supported)", n);
  int *slots = calloc(n, sizeof *slots);
  m->idx = it_program_alloc(B->p, n * sizeof *m->idx);
  if (!slots || !m->idx) { free(slots); return mlsh_fail(B->e, NULL, "out of memory"); }
  cur = 0;
  int rc = 0;
  while (rc == 0 && nnw_next(&w, &cur, &f)) {
    if (f.field != 1 || f.wire != 2) continue;
    nnw_msg col = nnw_raw(f.data, f.len);
    nnw_field name;
    if (!nnw_get(&col, 1, &name) || name.wire != 2 || name.len == 0 || name.len > 1000) { rc = nn_fail(B, "featureVectorizer column %zu has no name", m->na); break; }
    char *s = it_program_alloc(B->p, name.len + 1);
    if (!s) { rc = mlsh_fail(B->e, NULL, "out of memory"); break; }
    memcpy(s, name.data, name.len);
    uint64_t dims = nnw_u64(&col, 2, 0);
    m->idx[m->na] = dims > (uint64_t)INT64_MAX ? -1 : (int64_t)dims;
    if ((slots[m->na++] = it_sub_input(B, s)) < 0) rc = -1;
  }
  if (rc == 0) rc = emit(B, mod, &K_VECTOR, m, slots, (int)m->na);
  free(slots);
  return rc;
}

static int lower_onehot(nn_b *B, const it_model *mod, fe_model *m) {
  nnw_msg w = nnw_of(mod->onehotencoder);
  nnw_field f;
  if (nnw_has(&w, 1)) return nn_fail(B, "oneHotEncoder with string categories is not supported by the interpreter");
  if (nnw_u64(&w, 10, 0)) return nn_fail(B, "oneHotEncoder with sparse (dictionary) output is not supported by the interpreter");
  if (!nnw_get(&w, 2, &f) || f.wire != 2) return nn_fail(B, "the oneHotEncoder has no categories");
  nnw_msg v = nnw_raw(f.data, f.len);
  if (!(m->idx = ints(B, &v, 1, &m->na))) return -1;
  if (m->na == 0) return nn_fail(B, "the oneHotEncoder has no categories");
  m->mode = nnw_u64(&w, 11, 0) == 1;
  return one_input(B, mod, &K_ONEHOT, m);
}

static int lower_extractor(nn_b *B, const it_model *mod, fe_model *m) {
  nnw_msg w = nnw_of(mod->arrayfeatureextractor);
  if (!(m->idx = ints(B, &w, 1, &m->na))) return -1;
  if (m->na == 0) return nn_fail(B, "the arrayFeatureExtractor has no extractIndex");
  return one_input(B, mod, &K_EXTRACT, m);
}

static int refuse_dict(nn_b *B, const it_model *mod, fe_model *m) {
  (void)mod, (void)m;
  return nn_fail(B, "dictVectorizer (dictionary input) is not supported by the interpreter");
}
static int refuse_map(nn_b *B, const it_model *mod, fe_model *m) {
  (void)mod, (void)m;
  return nn_fail(B, "categoricalMapping (string features) is not supported by the interpreter");
}

typedef int (*fe_lower)(nn_b *B, const it_model *mod, fe_model *m);
static const struct {
  int kase;
  fe_lower fn;
} LOWER[] = {
    {CORE_ML__SPECIFICATION__MODEL__TYPE_SCALER, lower_scaler},
    {CORE_ML__SPECIFICATION__MODEL__TYPE_IMPUTER, lower_imputer},
    {CORE_ML__SPECIFICATION__MODEL__TYPE_NORMALIZER, lower_normalizer},
    {CORE_ML__SPECIFICATION__MODEL__TYPE_FEATURE_VECTORIZER, lower_vectorizer},
    {CORE_ML__SPECIFICATION__MODEL__TYPE_ONE_HOT_ENCODER, lower_onehot},
    {CORE_ML__SPECIFICATION__MODEL__TYPE_ARRAY_FEATURE_EXTRACTOR, lower_extractor},
    {CORE_ML__SPECIFICATION__MODEL__TYPE_DICT_VECTORIZER, refuse_dict},
    {CORE_ML__SPECIFICATION__MODEL__TYPE_CATEGORICAL_MAPPING, refuse_map},
};

int it_feature_lower_model(nn_b *B, const it_model *mod) {
  for (size_t i = 0; i < sizeof LOWER / sizeof LOWER[0]; i++) {
    if (LOWER[i].kase != (int)mod->type_case) continue;
    const CoreML__Specification__ModelDescription *d = mod->description;
    if (!d || d->n_output == 0) return mlsh_fail(B->e, NULL, "the model has no outputs in its description");
    fe_model *m = it_program_alloc(B->p, sizeof *m);
    if (!m) return mlsh_fail(B->e, NULL, "out of memory");
    return LOWER[i].fn(B, mod, m);
  }
  return 1;
}
