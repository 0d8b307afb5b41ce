/* opctx.c — parameter access and output allocation for kernels (see ops.h). */
#include "ops.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int it_fail(it_ctx *c, const char *fmt, ...) {
  char why[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return mlsh_fail(c->env->e, NULL, "op '%s' (%s): %s", c->op->name, c->op->type, why);
}

static const it_param *find(it_ctx *c, const char *name) {
  for (int i = 0; i < c->op->nparams; i++)
    if (strcmp(c->op->params[i].name, name) == 0) return &c->op->params[i];
  return NULL;
}

static it_tensor *bound(it_ctx *c, const it_binding *b) {
  return b->imm ? b->imm : b->slot >= 0 ? c->env->slots[b->slot] : NULL;
}

it_tensor *it_arg(it_ctx *c, const char *name) {
  const it_param *p = find(c, name);
  return p && p->n > 0 ? bound(c, &p->b[0]) : NULL;
}

it_tensor *it_arg_req(it_ctx *c, const char *name) {
  it_tensor *t = it_arg(c, name);
  if (!t) it_fail(c, "missing input '%s'", name);
  return t;
}

int it_arg_count(it_ctx *c, const char *name) {
  const it_param *p = find(c, name);
  return p ? p->n : 0;
}

it_tensor *it_arg_at(it_ctx *c, const char *name, int i) {
  const it_param *p = find(c, name);
  return p && i >= 0 && i < p->n ? bound(c, &p->b[i]) : NULL;
}

int64_t it_arg_int(it_ctx *c, const char *name, int64_t def) {
  it_tensor *t = it_arg(c, name);
  return t && t->n && t->st != IT_STR ? it_get_i(t, 0) : def;
}

double it_arg_float(it_ctx *c, const char *name, double def) {
  it_tensor *t = it_arg(c, name);
  return t && t->n && t->st != IT_STR ? it_get_d(t, 0) : def;
}

int it_arg_bool(it_ctx *c, const char *name, int def) {
  it_tensor *t = it_arg(c, name);
  return t && t->n && t->st != IT_STR ? it_get_d(t, 0) != 0 : def;
}

const char *it_arg_str(it_ctx *c, const char *name, const char *def) {
  it_tensor *t = it_arg(c, name);
  return t && t->n && t->st == IT_STR && ((char **)t->data)[0] ? ((char **)t->data)[0] : def;
}

int it_arg_ints(it_ctx *c, const char *name, int64_t *out, int max) {
  it_tensor *t = it_arg(c, name);
  if (!t || t->st == IT_STR) return -1;
  int n = (int)(t->n < (size_t)max ? t->n : (size_t)max);
  for (int i = 0; i < n; i++) out[i] = it_get_i(t, (size_t)i);
  return n;
}

mlsh_dtype it_out_dtype(it_ctx *c, int idx) {
  return idx < c->op->nout ? c->op->out_types[idx].dt : MLSH_DT_INVALID;
}

it_tensor *it_out(it_ctx *c, int idx, mlsh_dtype dt, int rank, const int64_t *shape) {
  if (idx >= c->op->nout || idx >= IT_MAX_OUT) return it_fail(c, "output %d is not declared", idx), NULL;
  if (dt == MLSH_DT_INVALID) dt = c->op->out_types[idx].dt;
  if (dt == MLSH_DT_INVALID) dt = MLSH_DT_FP32;
  mlsh_err e2;
  it_tensor *t = it_tensor_new(dt, rank, shape, &e2);
  if (!t) return it_fail(c, "%s", e2.msg), NULL;
  it_unref(c->out[idx]);
  c->out[idx] = t;
  return t;
}

it_tensor *it_out_f(it_ctx *c, int idx, int rank, const int64_t *shape) {
  mlsh_dtype dt = it_out_dtype(c, idx);
  if (dt != MLSH_DT_INVALID && !mlsh_dtype_is_float(dt))
    return it_fail(c, "output %d is declared %s, but the op computes floats", idx, mlsh_dtype_name(dt)), NULL;
  return it_out(c, idx, MLSH_DT_INVALID, rank, shape);
}

void it_out_set(it_ctx *c, int idx, it_tensor *t) {
  if (idx >= IT_MAX_OUT || idx >= c->op->nout) return;
  it_unref(c->out[idx]);
  c->out[idx] = it_ref(t);
}

int it_axis(it_ctx *c, int64_t axis, int rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= (rank ? rank : 1)) return it_fail(c, "axis %lld is outside rank %d", (long long)axis, rank), -1;
  return (int)a;
}

size_t it_inner(const it_tensor *t, int from) {
  size_t n = 1;
  for (int i = from; i < t->rank; i++) n *= (size_t)t->shape[i];
  return n;
}

size_t it_outer(const it_tensor *t, int to) {
  size_t n = 1;
  for (int i = 0; i < to && i < t->rank; i++) n *= (size_t)t->shape[i];
  return n;
}

int it_broadcast_shape(int ra, const int64_t *a, int rb, const int64_t *b, int *ro, int64_t *out) {
  int r = ra > rb ? ra : rb;
  for (int i = 0; i < r; i++) {
    int64_t da = i < r - ra ? 1 : a[i - (r - ra)], db = i < r - rb ? 1 : b[i - (r - rb)];
    if (da != db && da != 1 && db != 1) return -1;
    out[i] = da == 1 ? db : da;
  }
  *ro = r;
  return 0;
}
