/* materialize.c — const / constexpr_* ops into tensors (see materialize.h). */
#include "materialize.h"
#include "constexpr.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  const it_op *op;
  const CoreML__Specification__MILSpec__Operation *m;
  const it_program *p;
  mlsh_container *c;
  it_tensor *owned[16];
  int nowned;
  float *bufs[16];
  int nbufs;
} mctx;

/* The parameter as a tensor (borrowed: freed with the context), or NULL when absent. */
static it_tensor *param(mctx *x, const char *name, mlsh_err *e) {
  for (size_t i = 0; i < x->m->n_attributes; i++)
    if (strcmp(x->m->attributes[i]->key, name) == 0) {
      it_tensor *t = it_value_decode(x->m->attributes[i]->value, x->c, e);
      if (t && x->nowned < 16) x->owned[x->nowned++] = t;
      else if (t) { it_unref(t); return mlsh_fail(e, NULL, "too many parameters"), NULL; }
      return t;
    }
  for (int i = 0; i < x->op->nparams; i++)
    if (strcmp(x->op->params[i].name, name) == 0 && x->op->params[i].n > 0) {
      it_binding b = x->op->params[i].b[0];
      if (b.imm) return b.imm;
      it_tensor *t = x->p->consts[b.slot];
      if (!t) mlsh_fail(e, NULL, "parameter '%s' comes from '%s', which is not a constant", name, x->p->slot_names[b.slot]);
      return t;
    }
  return NULL;
}

static it_tensor *req(mctx *x, const char *name, mlsh_err *e) {
  mlsh_err e2;
  it_tensor *t = param(x, name, &e2);
  if (!t) {
    if (strcmp(e2.msg, "") != 0 && e2.msg[0]) mlsh_fail(e, NULL, "parameter '%s': %s", name, e2.msg);
    else mlsh_fail(e, NULL, "has no parameter '%s'", name);
  }
  return t;
}

static int as_val(mctx *x, const it_tensor *t, mlsh_cx_val *v, mlsh_err *e) {
  memset(v, 0, sizeof *v);
  v->dt = t->dt;
  v->rank = t->rank;
  memcpy(v->shape, t->shape, sizeof v->shape);
  v->n = t->n;
  if (t->st == IT_F32) { v->v = t->data; return 0; }
  if (x->nbufs >= 16) return mlsh_fail(e, NULL, "too many parameters");
  float *f = malloc((t->n ? t->n : 1) * sizeof *f);
  if (!f) return mlsh_fail(e, NULL, "out of memory");
  for (size_t i = 0; i < t->n; i++) f[i] = (float)it_get_d(t, i);
  x->bufs[x->nbufs++] = f;
  v->v = f;
  return 0;
}

static int64_t scalar_int(mctx *x, const char *name, int64_t def) {
  mlsh_err e2;
  e2.msg[0] = 0;
  it_tensor *t = param(x, name, &e2);
  return t && t->n ? it_get_i(t, 0) : def;
}

static it_tensor *new_out(mctx *x, int idx, int rank, const int64_t *shape, mlsh_err *e) {
  mlsh_dtype dt = x->op->out_types[idx].dt;
  if (!mlsh_dtype_is_float(dt) && idx == 0) dt = MLSH_DT_FP32;
  return it_tensor_new(dt, rank, shape, e);
}

static void finish(const mctx *x, it_tensor *t) {
  if (!t || t->st != IT_F32) return;
  if ((t->dt == MLSH_DT_FP16 && x->p->prec != IT_PREC_FP32) || x->p->prec == IT_PREC_FP16) {
    if (t->borrowed) {
      float *copy = malloc((t->n ? t->n : 1) * sizeof *copy);
      if (!copy) return; /* keep the exact values rather than fail */
      memcpy(copy, t->data, t->n * sizeof *copy);
      t->data = copy;
      t->borrowed = 0;
    }
    it_round_fp16(t->data, t->n);
  }
}

static int declared_shape(mctx *x, int idx, int *rank, int64_t *shape, mlsh_err *e) {
  const it_type *ty = &x->op->out_types[idx];
  if (ty->rank < 0) return mlsh_fail(e, NULL, "output has an unknown rank");
  for (int i = 0; i < ty->rank; i++)
    if (ty->shape[i] < 0) return mlsh_fail(e, NULL, "output has an unknown dimension");
  *rank = ty->rank;
  memcpy(shape, ty->shape, sizeof ty->shape);
  return 0;
}

static int cx_affine(mctx *x, it_tensor **outs, mlsh_err *e) {
  it_tensor *q = req(x, "quantized_data", e), *zp = q ? req(x, "zero_point", e) : NULL, *sc = zp ? req(x, "scale", e) : NULL;
  if (!sc) return -1;
  mlsh_cx_val vq, vz, vs;
  if (as_val(x, q, &vq, e) || as_val(x, zp, &vz, e) || as_val(x, sc, &vs, e)) return -1;
  if (!(outs[0] = new_out(x, 0, q->rank, q->shape, e))) return -1;
  return mlsh_cx_affine(&vq, &vz, &vs, scalar_int(x, "axis", 0), outs[0]->data, e);
}

static int cx_cast(mctx *x, it_tensor **outs, mlsh_err *e) {
  it_tensor *s = req(x, "source_val", e);
  if (!s) return -1;
  return (outs[0] = it_convert(s, x->op->out_types[0].dt, e)) ? 0 : -1;
}

static int cx_lut(mctx *x, it_tensor **outs, mlsh_err *e) {
  it_tensor *lut = req(x, "lut", e), *ix = lut ? req(x, "indices", e) : NULL;
  if (!ix) return -1;
  mlsh_cx_val vl;
  if (as_val(x, lut, &vl, e)) return -1;
  if (lut->rank <= 1) { /* iOS16: packed indices, 1-D LUT, shape from the output type */
    int rank;
    int64_t shape[IT_MAX_RANK];
    if (declared_shape(x, 0, &rank, shape, e) || !(outs[0] = new_out(x, 0, rank, shape, e))) return -1;
    uint8_t *bytes = malloc(ix->n ? ix->n : 1);
    if (!bytes) return mlsh_fail(e, NULL, "out of memory");
    for (size_t i = 0; i < ix->n; i++) bytes[i] = (uint8_t)it_get_i(ix, i);
    int rc = mlsh_cx_lut16(bytes, ix->n, vl.v, vl.n, outs[0]->n, outs[0]->data, e);
    free(bytes);
    return rc;
  }
  mlsh_cx_val vi;
  if (as_val(x, ix, &vi, e)) return -1;
  int64_t V = lut->rank == ix->rank + 2 ? lut->shape[ix->rank + 1] : 1;
  int64_t oshape[IT_MAX_RANK];
  float *tmp = malloc((ix->n * (size_t)(V > 0 ? V : 1) + 1) * sizeof *tmp);
  if (!tmp) return mlsh_fail(e, NULL, "out of memory");
  if (mlsh_cx_lut(&vi, &vl, scalar_int(x, "vector_axis", 0), tmp, oshape, e) != 0 ||
      !(outs[0] = new_out(x, 0, ix->rank, oshape, e))) { free(tmp); return -1; }
  memcpy(outs[0]->data, tmp, outs[0]->n * sizeof *tmp);
  free(tmp);
  return 0;
}

/* A mask as n 0/1 floats: iOS16 packs bits into uint8 bytes; iOS18 is a uint1 tensor. */
static float *mask_of(mctx *x, const it_tensor *m, size_t n, mlsh_err *e) {
  float *f = malloc((n ? n : 1) * sizeof *f);
  if (!f) return mlsh_fail(e, NULL, "out of memory"), NULL;
  if (m->dt == MLSH_DT_UINT8 && m->n != n) {
    uint8_t *bytes = malloc(m->n ? m->n : 1);
    if (!bytes) { free(f); return mlsh_fail(e, NULL, "out of memory"), NULL; }
    for (size_t i = 0; i < m->n; i++) bytes[i] = (uint8_t)it_get_i(m, i);
    int rc = mlsh_cx_unpack_bits(bytes, m->n, 1, n, f, e);
    free(bytes);
    if (rc) { free(f); return NULL; }
  } else {
    if (m->n != n) { free(f); return mlsh_fail(e, NULL, "mask has %zu elements, the output %zu", m->n, n), NULL; }
    for (size_t i = 0; i < n; i++) f[i] = it_get_d(m, i) != 0;
  }
  if (x->nbufs < 16) x->bufs[x->nbufs++] = f;
  else { free(f); return mlsh_fail(e, NULL, "too many parameters"), NULL; }
  return f;
}

static int cx_sparse(mctx *x, it_tensor **outs, mlsh_err *e) {
  it_tensor *m = req(x, "mask", e), *nz = m ? req(x, "nonzero_data", e) : NULL;
  if (!nz) return -1;
  int rank;
  int64_t shape[IT_MAX_RANK];
  if (declared_shape(x, 0, &rank, shape, e) || !(outs[0] = new_out(x, 0, rank, shape, e))) return -1;
  float *mask = mask_of(x, m, outs[0]->n, e);
  mlsh_cx_val vn;
  if (!mask || as_val(x, nz, &vn, e)) return -1;
  return mlsh_cx_sparse(mask, outs[0]->n, vn.v, vn.n, outs[0]->data, e);
}

static int cx_shift_scale(mctx *x, it_tensor **outs, mlsh_err *e) {
  it_tensor *d = req(x, "data", e), *sc = d ? req(x, "scale", e) : NULL;
  if (!sc) return -1;
  mlsh_err e2;
  it_tensor *off = param(x, "offset", &e2);
  mlsh_cx_val vd, vs, vo;
  if (as_val(x, d, &vd, e) || as_val(x, sc, &vs, e) || (off && as_val(x, off, &vo, e))) return -1;
  if (!(outs[0] = new_out(x, 0, d->rank, d->shape, e))) return -1;
  return mlsh_cx_shift_scale(&vd, &vs, off ? &vo : NULL, outs[0]->data, e);
}

static int mask_val(mctx *x, const it_tensor *m, mlsh_cx_val *v, mlsh_err *e) {
  float *f = mask_of(x, m, m->n, e);
  if (!f) return -1;
  memset(v, 0, sizeof *v);
  v->dt = m->dt;
  v->rank = m->rank;
  memcpy(v->shape, m->shape, sizeof v->shape);
  v->n = m->n;
  v->v = f;
  return 0;
}

static size_t count_ones(const mlsh_cx_val *m) {
  size_t k = 0;
  for (size_t i = 0; i < m->n; i++) k += m->v[i] != 0;
  return k;
}

static it_tensor *mask_tensor(mctx *x, const float *f, int rank, const int64_t *shape, mlsh_err *e) {
  mlsh_dtype dt = x->op->out_types[0].dt;
  if (dt == MLSH_DT_INVALID || mlsh_dtype_is_float(dt)) dt = MLSH_DT_UINT1;
  it_tensor *t = it_tensor_new(dt, rank, shape, e);
  if (t)
    for (size_t i = 0; i < t->n; i++) ((int64_t *)t->data)[i] = f[i] != 0;
  return t;
}

static int cx_sparse_shift_scale(mctx *x, it_tensor **outs, mlsh_err *e) {
  it_tensor *m = req(x, "data_mask", e), *nz = m ? req(x, "nonzero_data", e) : NULL, *sc = nz ? req(x, "scale", e) : NULL;
  if (!sc) return -1;
  mlsh_err e2;
  it_tensor *off = param(x, "offset", &e2);
  mlsh_cx_val vm, vn, vs, vo;
  if (mask_val(x, m, &vm, e) || as_val(x, nz, &vn, e) || as_val(x, sc, &vs, e) || (off && as_val(x, off, &vo, e))) return -1;
  int64_t nshape[1] = {(int64_t)nz->n};
  if (!(outs[0] = mask_tensor(x, vm.v, m->rank, m->shape, e))) return -1;
  if (!(outs[1] = it_tensor_new(x->op->nout > 1 && mlsh_dtype_is_float(x->op->out_types[1].dt) ? x->op->out_types[1].dt : MLSH_DT_FP32, 1, nshape, e))) return -1;
  return mlsh_cx_sparse_shift_scale(&vm, &vn, &vs, off ? &vo : NULL, outs[1]->data, e);
}

static int cx_lut_to_sparse(mctx *x, it_tensor **outs, mlsh_err *e) {
  it_tensor *m = req(x, "indices_mask", e), *nz = m ? req(x, "indices_nonzero_data", e) : NULL,
            *lut = nz ? req(x, "lut", e) : NULL;
  if (!lut) return -1;
  mlsh_cx_val vm, vn, vl;
  if (mask_val(x, m, &vm, e) || as_val(x, nz, &vn, e) || as_val(x, lut, &vl, e)) return -1;
  if (lut->rank != m->rank + 2) return mlsh_fail(e, NULL, "lut has rank %d, indices_mask rank %d (needs rank + 2)", lut->rank, m->rank);
  size_t V = (size_t)lut->shape[m->rank + 1];
  if (count_ones(&vm) != vn.n) return mlsh_fail(e, NULL, "indices_mask selects %zu elements, indices_nonzero_data holds %zu", count_ones(&vm), vn.n);
  float *om = malloc((m->n * V + 1) * sizeof *om), *onz = malloc((vn.n * V + 1) * sizeof *onz);
  int64_t oshape[IT_MAX_RANK];
  int rc = -1;
  if (!om || !onz) { mlsh_fail(e, NULL, "out of memory"); goto done; }
  if (mlsh_cx_lut_to_sparse(&vm, &vn, &vl, scalar_int(x, "vector_axis", 0), om, oshape, onz, e) != 0) goto done;
  int64_t nshape[1] = {(int64_t)(vn.n * V)};
  if (!(outs[0] = mask_tensor(x, om, m->rank, oshape, e))) goto done;
  if (!(outs[1] = it_tensor_new(x->op->nout > 1 && mlsh_dtype_is_float(x->op->out_types[1].dt) ? x->op->out_types[1].dt : MLSH_DT_FP32, 1, nshape, e))) goto done;
  memcpy(outs[1]->data, onz, vn.n * V * sizeof *onz);
  rc = 0;
done:
  free(om);
  free(onz);
  return rc;
}

static int do_const(mctx *x, it_tensor **outs, mlsh_err *e) {
  for (size_t i = 0; i < x->m->n_attributes; i++)
    if (strcmp(x->m->attributes[i]->key, "val") == 0) return (outs[0] = it_value_decode(x->m->attributes[i]->value, x->c, e)) ? 0 : -1;
  return mlsh_fail(e, NULL, "const has no val");
}

static const struct { const char *type; int (*fn)(mctx *, it_tensor **, mlsh_err *); } FORMS[] = {
  {"const", do_const},
  {"constexpr_affine_dequantize", cx_affine},
  {"constexpr_cast", cx_cast},
  {"constexpr_lut_to_dense", cx_lut},
  {"constexpr_sparse_to_dense", cx_sparse},
  {"constexpr_blockwise_shift_scale", cx_shift_scale},
  {"constexpr_sparse_blockwise_shift_scale", cx_sparse_shift_scale},
  {"constexpr_lut_to_sparse", cx_lut_to_sparse},
};

int it_materialize(const it_op *op, const CoreML__Specification__MILSpec__Operation *m, const it_program *p,
                   mlsh_container *c, it_tensor **outs, mlsh_err *e) {
  mctx x = {.op = op, .m = m, .p = p, .c = c};
  int rc = -1, found = 0;
  e->msg[0] = 0;
  for (size_t i = 0; i < sizeof FORMS / sizeof FORMS[0]; i++)
    if (strcmp(FORMS[i].type, op->type) == 0) {
      found = 1;
      rc = FORMS[i].fn(&x, outs, e);
      break;
    }
  if (!found) mlsh_fail(e, NULL, "is a constexpr op the interpreter cannot evaluate");
  for (int i = 0; i < x.nowned; i++) it_unref(x.owned[i]);
  for (int i = 0; i < x.nbufs; i++) free(x.bufs[i]);
  if (rc != 0) {
    for (int i = 0; i < 4; i++) { it_unref(outs[i]); outs[i] = NULL; }
    return -1;
  }
  for (int i = 0; i < 4 && i < op->nout; i++) finish(&x, outs[i]);
  /* a const's output takes the declared dtype (decoded storage may be wider) */
  return 0;
}
