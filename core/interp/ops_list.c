/* ops_list.c — MIL lists (iOS15 control_flow ops) as interpreter values (tensor.h: IT_LIST).
 * make_list(init_length = 1, dynamic_length = true, elem_shape, dtype = "fp32") makes a list of
 * init_length unwritten elements; list_write(ls, index, value) and list_scatter(ls, indices,
 * value[K, ...]) return a new list (a write past the end grows a dynamic list, fails on a fixed
 * one); list_read(ls, index) returns the element (an element never written reads as zeros of the
 * element shape when that shape is known, else it is an error); list_gather(ls, indices) stacks
 * elements into a [K, elem...] tensor; list_length(ls) is an int32 scalar. Every element must
 * have the list's element dtype and (known) shape. Lists flow through cond and while_loop like
 * any value; no other op takes them (exec.c checks). */
#include "ops.h"
#include <stdlib.h>
#include <string.h>

int it_kernel_takes_lists(const char *type) {
  static const char *const ok[] = {"list_length", "list_write", "list_read", "list_gather", "list_scatter", "cond", "while_loop"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp(type, ok[i]) == 0) return 1;
  return 0;
}

/* A new list value of len elements (cap >= len), items NULL, shape fields from proto (if any). */
static it_tensor *list_new(it_ctx *c, const it_list *proto, mlsh_dtype dt, size_t len) {
  size_t budget = it_budget();
  if (budget && len > budget / sizeof(it_tensor *)) return it_fail(c, "a list of %zu elements is larger than the memory budget", len), NULL;
  it_tensor *t = calloc(1, sizeof *t);
  it_list *l = calloc(1, sizeof *l);
  size_t cap = len ? len : 1;
  it_tensor **items = calloc(cap, sizeof *items);
  if (!t || !l || !items) {
    free(t), free(l), free(items);
    return it_fail(c, "out of memory"), NULL;
  }
  if (proto) *l = *proto;
  l->items = items;
  l->len = len;
  l->cap = cap;
  t->dt = dt;
  t->st = IT_LIST;
  t->data = l;
  t->refs = 1;
  return t;
}

/* A copy of src (sharing the items) with room for at least len elements. */
static it_tensor *list_copy(it_ctx *c, const it_tensor *src, size_t len) {
  const it_list *s = src->data;
  if (len < s->len) len = s->len;
  it_tensor *t = list_new(c, s, src->dt, len);
  if (!t) return NULL;
  it_list *l = t->data;
  for (size_t i = 0; i < s->len; i++) l->items[i] = it_ref(s->items[i]);
  return t;
}

static it_tensor *arg_list(it_ctx *c, const char *name) {
  it_tensor *t = it_arg_req(c, name);
  if (t && t->st != IT_LIST) return it_fail(c, "input '%s' is not a list", name), NULL;
  return t;
}

/* elem_shape: a tuple of scalars (a string scalar is a dimension known only at run time) or one
 * int vector. */
static int read_elem_shape(it_ctx *c, it_list *l) {
  int n = it_arg_count(c, "elem_shape");
  l->erank = -1;
  if (n == 0) return 0;
  it_tensor *first = it_arg_at(c, "elem_shape", 0);
  if (n == 1 && first && first->rank == 1 && first->st != IT_STR) {
    if (first->n > IT_MAX_RANK) return it_fail(c, "elem_shape has rank %zu (at most %d)", first->n, IT_MAX_RANK);
    l->erank = (int)first->n;
    for (size_t i = 0; i < first->n; i++) l->eshape[i] = it_get_i(first, i);
  } else {
    if (n > IT_MAX_RANK) return it_fail(c, "elem_shape has rank %d (at most %d)", n, IT_MAX_RANK);
    l->erank = n;
    for (int i = 0; i < n; i++) {
      it_tensor *d = it_arg_at(c, "elem_shape", i);
      l->eshape[i] = d && d->n && d->st != IT_STR ? it_get_i(d, 0) : -1;
    }
  }
  for (int i = 0; i < l->erank; i++)
    if (l->eshape[i] < -1) return it_fail(c, "elem_shape has a negative dimension");
  return 0;
}

static mlsh_dtype dtype_named(const char *s) {
  static const struct { const char *name; mlsh_dtype dt; } names[] = {
    {"fp32", MLSH_DT_FP32}, {"fp16", MLSH_DT_FP16}, {"int32", MLSH_DT_INT32}, {"bool", MLSH_DT_BOOL}, {"fp64", MLSH_DT_FP64},
    {"int64", MLSH_DT_INT64}, {"int8", MLSH_DT_INT8}, {"uint8", MLSH_DT_UINT8}, {"int16", MLSH_DT_INT16}, {"uint16", MLSH_DT_UINT16},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i].name) == 0) return names[i].dt;
  return MLSH_DT_INVALID;
}

static int k_make_list(it_ctx *c) {
  int64_t len = it_arg_int(c, "init_length", 1);
  const char *dts = it_arg_str(c, "dtype", "fp32");
  mlsh_dtype dt = dtype_named(dts);
  if (dt == MLSH_DT_INVALID) return it_fail(c, "unsupported element dtype '%s'", dts);
  if (len < 0 || len > (1 << 24)) return it_fail(c, "init_length %lld is out of range", (long long)len);
  it_list proto;
  memset(&proto, 0, sizeof proto);
  proto.dynamic = it_arg_bool(c, "dynamic_length", 1);
  if (read_elem_shape(c, &proto) != 0) return -1;
  it_tensor *t = list_new(c, &proto, dt, (size_t)len);
  if (!t) return -1;
  it_out_set(c, 0, t);
  it_unref(t);
  return 0;
}

static int k_list_length(it_ctx *c) {
  it_tensor *ls = arg_list(c, "ls");
  if (!ls) return -1;
  it_tensor *o = it_out(c, 0, MLSH_DT_INT32, 0, NULL);
  if (!o) return -1;
  ((int64_t *)o->data)[0] = (int64_t)((const it_list *)ls->data)->len;
  return 0;
}

/* Check v fits the list's element type; fix the element shape on the first write when unknown. */
static int check_elem(it_ctx *c, it_list *l, mlsh_dtype ldt, const it_tensor *v, int rank, const int64_t *shape) {
  if (it_storage_of(v->dt) != it_storage_of(ldt)) return it_fail(c, "value of type %s for a list of %s", mlsh_dtype_name(v->dt), mlsh_dtype_name(ldt));
  if (l->erank >= 0 && l->erank != rank) return it_fail(c, "value of rank %d for a list of rank-%d elements", rank, l->erank);
  for (int i = 0; l->erank >= 0 && i < rank; i++)
    if (l->eshape[i] >= 0 && l->eshape[i] != shape[i])
      return it_fail(c, "value dimension %d is %lld, the list's elements have %lld", i, (long long)shape[i], (long long)l->eshape[i]);
  l->erank = rank;
  memcpy(l->eshape, shape, (size_t)rank * sizeof *shape);
  return 0;
}

static int index_ok(it_ctx *c, const it_list *l, int64_t i, int grow) {
  if (i < 0) return it_fail(c, "index %lld is negative", (long long)i);
  if ((size_t)i >= l->len && !(grow && l->dynamic)) return it_fail(c, "index %lld is outside the list's %zu elements", (long long)i, l->len);
  if (i >= (1 << 24)) return it_fail(c, "index %lld is too large", (long long)i);
  return 0;
}

static int finish_write(it_ctx *c, it_tensor *nl) {
  it_out_set(c, 0, nl);
  it_unref(nl);
  return 0;
}

static int k_list_write(it_ctx *c) {
  it_tensor *ls = arg_list(c, "ls"), *v = ls ? it_arg_req(c, "value") : NULL;
  if (!v) return -1;
  int64_t i = it_arg_int(c, "index", 0);
  const it_list *src = ls->data;
  if (index_ok(c, src, i, 1) != 0) return -1;
  it_tensor *nl = list_copy(c, ls, (size_t)i + 1);
  if (!nl) return -1;
  it_list *l = nl->data;
  if (check_elem(c, l, nl->dt, v, v->rank, v->shape) != 0) return it_unref(nl), -1;
  mlsh_err e2;
  it_tensor *item = v->dt == nl->dt ? it_ref(v) : it_convert(v, nl->dt, &e2);
  if (!item) return it_unref(nl), it_fail(c, "%s", e2.msg);
  it_unref(l->items[i]);
  l->items[i] = item;
  return finish_write(c, nl);
}

static int k_list_scatter(it_ctx *c) {
  it_tensor *ls = arg_list(c, "ls"), *idx = ls ? it_arg_req(c, "indices") : NULL, *v = idx ? it_arg_req(c, "value") : NULL;
  if (!v) return -1;
  if (v->rank < 1 || (size_t)v->shape[0] != idx->n) return it_fail(c, "value must have one row per index (%zu)", idx->n);
  const it_list *src = ls->data;
  size_t need = src->len;
  for (size_t k = 0; k < idx->n; k++) {
    int64_t i = it_get_i(idx, k);
    if (index_ok(c, src, i, 1) != 0) return -1;
    if ((size_t)i + 1 > need) need = (size_t)i + 1;
  }
  it_tensor *nl = list_copy(c, ls, need);
  if (!nl) return -1;
  it_list *l = nl->data;
  if (check_elem(c, l, nl->dt, v, v->rank - 1, v->shape + 1) != 0) return it_unref(nl), -1;
  size_t row = it_inner(v, 1), es = it_storage_size(v->st);
  mlsh_err e2;
  for (size_t k = 0; k < idx->n; k++) {
    it_tensor *item = it_tensor_new(v->dt, v->rank - 1, v->shape + 1, &e2), *conv = NULL;
    if (item) memcpy(item->data, (const char *)v->data + k * row * es, row * es);
    if (item && item->dt != nl->dt) {
      conv = it_convert(item, nl->dt, &e2);
      it_unref(item);
      item = conv;
    }
    if (!item) return it_unref(nl), it_fail(c, "%s", e2.msg);
    int64_t i = it_get_i(idx, k);
    it_unref(l->items[i]);
    l->items[i] = item;
  }
  return finish_write(c, nl);
}

/* Element i of the list (a new reference), zeros when never written and the shape is known. */
static it_tensor *element(it_ctx *c, const it_tensor *ls, int64_t i) {
  const it_list *l = ls->data;
  if (index_ok(c, l, i, 0) != 0) return NULL;
  if (l->items[i]) return it_ref(l->items[i]);
  for (int d = 0; d < l->erank; d++)
    if (l->eshape[d] < 0) return it_fail(c, "element %lld was never written and the element shape is not known", (long long)i), NULL;
  if (l->erank < 0) return it_fail(c, "element %lld was never written and the element shape is not known", (long long)i), NULL;
  mlsh_err e2;
  it_tensor *z = it_tensor_zeros(ls->dt, l->erank, l->eshape, &e2);
  if (!z) it_fail(c, "%s", e2.msg);
  return z;
}

static int k_list_read(it_ctx *c) {
  it_tensor *ls = arg_list(c, "ls");
  if (!ls) return -1;
  it_tensor *v = element(c, ls, it_arg_int(c, "index", 0));
  if (!v) return -1;
  it_out_set(c, 0, v);
  it_unref(v);
  return 0;
}

static int k_list_gather(it_ctx *c) {
  it_tensor *ls = arg_list(c, "ls"), *idx = ls ? it_arg_req(c, "indices") : NULL;
  if (!idx) return -1;
  size_t k = idx->n;
  it_tensor **els = calloc(k ? k : 1, sizeof *els);
  if (!els) return it_fail(c, "out of memory");
  int rc = 0;
  for (size_t j = 0; j < k && rc == 0; j++) {
    els[j] = element(c, ls, it_get_i(idx, j));
    if (!els[j]) rc = -1;
    else if (j && (els[j]->rank != els[0]->rank || memcmp(els[j]->shape, els[0]->shape, (size_t)els[0]->rank * sizeof(int64_t))))
      rc = it_fail(c, "elements %zu and 0 have different shapes", j);
  }
  const it_list *l = ls->data;
  int64_t shape[IT_MAX_RANK];
  shape[0] = (int64_t)k;
  int er = rc ? 0 : k ? els[0]->rank : (l->erank > 0 ? l->erank : 0);
  if (rc == 0 && er + 1 > IT_MAX_RANK) rc = it_fail(c, "elements of rank %d are too large to stack", er);
  for (int d = 0; rc == 0 && d < er; d++) shape[d + 1] = k ? els[0]->shape[d] : (l->eshape[d] > 0 ? l->eshape[d] : 0);
  it_tensor *o = rc == 0 ? it_out(c, 0, ls->dt, er + 1, shape) : NULL;
  if (rc == 0 && !o) rc = -1;
  for (size_t j = 0; rc == 0 && j < k; j++) {
    size_t es = it_storage_size(o->st), row = els[j]->n;
    memcpy((char *)o->data + j * row * es, els[j]->data, row * es);
  }
  for (size_t j = 0; j < k; j++) it_unref(els[j]);
  free(els);
  return rc;
}

const it_kernel_def it_ops_list[] = {
  {"make_list", k_make_list}, {"list_length", k_list_length}, {"list_write", k_list_write}, {"list_read", k_list_read},
  {"list_gather", k_list_gather}, {"list_scatter", k_list_scatter}, {NULL, NULL},
};
