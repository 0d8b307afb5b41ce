/* ops_control.c — nested blocks and states. cond(pred): runs blocks[0] when pred is true, else
 * blocks[1]; outputs are that block's outputs. while_loop(loop_vars): blocks[0] maps the loop
 * variables to a bool, blocks[1] to new loop variables, until the condition is false (at most
 * 1e7 iterations). read_state returns the state's value; write_state(data, input) replaces it;
 * slice_update(x, update, begin, end, stride, masks) writes update into a copy of x. */
#include "ops.h"
#include <string.h>

static int take_outputs(it_ctx *c, const it_block *b) {
  if (b->nout != c->op->nout) return it_fail(c, "block has %d outputs, the op %d", b->nout, c->op->nout);
  for (int i = 0; i < b->nout; i++) it_out_set(c, i, c->env->slots[b->out_slots[i]]);
  return 0;
}

static void release_block(it_ctx *c, const it_block *b) {
  for (int i = 0; i < b->nout; i++) {
    it_unref(c->env->slots[b->out_slots[i]]);
    c->env->slots[b->out_slots[i]] = NULL;
  }
  for (int i = 0; i < b->nin; i++) {
    it_unref(c->env->slots[b->in_slots[i]]);
    c->env->slots[b->in_slots[i]] = NULL;
  }
}

static int k_cond(it_ctx *c) {
  it_tensor *p = it_arg_req(c, "pred");
  if (!p) return -1;
  if (c->op->nblocks != 2) return it_fail(c, "cond needs two blocks");
  const it_block *b = c->op->blocks[it_get_d(p, 0) != 0 ? 0 : 1];
  if (it_exec_block(c->env, b) != 0) return -1;
  int rc = take_outputs(c, b);
  release_block(c, b);
  return rc;
}

static int k_while_loop(it_ctx *c) {
  int n = it_arg_count(c, "loop_vars");
  if (c->op->nblocks != 2) return it_fail(c, "while_loop needs a condition and a body block");
  const it_block *cb = c->op->blocks[0], *bb = c->op->blocks[1];
  if (cb->nin != n || bb->nin != n || bb->nout != n || cb->nout != 1 || c->op->nout != n) return it_fail(c, "loop variables do not match the blocks");
  it_tensor *vars[IT_MAX_OUT];
  if (n > IT_MAX_OUT) return it_fail(c, "too many loop variables");
  for (int i = 0; i < n; i++) vars[i] = it_ref(it_arg_at(c, "loop_vars", i));
  int rc = 0;
  for (long iter = 0;; iter++) {
    if (iter > 10000000) { rc = it_fail(c, "more than 1e7 iterations"); break; }
    for (int i = 0; i < n; i++) { it_unref(c->env->slots[cb->in_slots[i]]); c->env->slots[cb->in_slots[i]] = it_ref(vars[i]); }
    if (it_exec_block(c->env, cb) != 0) { rc = -1; break; }
    it_tensor *pv = c->env->slots[cb->out_slots[0]];
    int go = pv && pv->n && it_get_d(pv, 0) != 0;
    release_block(c, cb);
    if (!go) break;
    for (int i = 0; i < n; i++) { it_unref(c->env->slots[bb->in_slots[i]]); c->env->slots[bb->in_slots[i]] = it_ref(vars[i]); }
    if (it_exec_block(c->env, bb) != 0) { rc = -1; break; }
    for (int i = 0; i < n; i++) {
      it_tensor *nv = it_ref(c->env->slots[bb->out_slots[i]]);
      it_unref(vars[i]);
      vars[i] = nv;
    }
    release_block(c, bb);
  }
  for (int i = 0; i < n; i++) {
    if (rc == 0) it_out_set(c, i, vars[i]);
    it_unref(vars[i]);
  }
  return rc;
}

static int k_read_state(it_ctx *c) {
  it_tensor *s = it_arg_req(c, "input");
  if (!s) return -1;
  mlsh_err e2;
  it_tensor *o = it_convert(s, s->dt, &e2);
  if (!o) return it_fail(c, "%s", e2.msg);
  it_out_set(c, 0, o);
  it_unref(o);
  return 0;
}

static int k_write_state(it_ctx *c) {
  it_tensor *d = it_arg_req(c, "data"), *s = d ? it_arg_req(c, "input") : NULL;
  if (!s) return -1;
  if (d->n != s->n || d->st != s->st) return it_fail(c, "data does not match the state's shape or type");
  memcpy(s->data, d->data, d->n * it_storage_size(d->st));
  if (c->op->nout > 0) it_out_set(c, 0, s);
  return 0;
}

static int k_slice_update(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *u = x ? it_arg_req(c, "update") : NULL;
  if (!u) return -1;
  int r = x->rank;
  int64_t b[IT_MAX_RANK], en[IT_MAX_RANK], st[IT_MAX_RANK], bm[IT_MAX_RANK], em[IT_MAX_RANK], cnt[IT_MAX_RANK];
  if (it_arg_ints(c, "begin", b, IT_MAX_RANK) != r || it_arg_ints(c, "end", en, IT_MAX_RANK) != r) return it_fail(c, "begin/end must have %d values", r);
  if (it_arg_ints(c, "stride", st, IT_MAX_RANK) < 0) for (int i = 0; i < r; i++) st[i] = 1;
  if (it_arg_ints(c, "begin_mask", bm, IT_MAX_RANK) < 0) memset(bm, 0, sizeof bm);
  if (it_arg_ints(c, "end_mask", em, IT_MAX_RANK) < 0) memset(em, 0, sizeof em);
  size_t total = 1;
  for (int d = 0; d < r; d++) {
    int64_t L = x->shape[d];
    if (st[d] <= 0) return it_fail(c, "only positive strides are supported");
    int64_t lo = bm[d] ? 0 : (b[d] < 0 ? b[d] + L : b[d]), hi = em[d] ? L : (en[d] < 0 ? en[d] + L : en[d]);
    lo = lo < 0 ? 0 : (lo > L ? L : lo);
    hi = hi < 0 ? 0 : (hi > L ? L : hi);
    b[d] = lo;
    cnt[d] = hi > lo ? (hi - lo + st[d] - 1) / st[d] : 0;
    total *= (size_t)cnt[d];
  }
  if (total != u->n || u->st != x->st) return it_fail(c, "update holds %zu values, the slice %zu", u->n, total);
  mlsh_err e2;
  it_tensor *o = it_convert(x, x->dt, &e2);
  if (!o) return it_fail(c, "%s", e2.msg);
  size_t e = it_storage_size(x->st);
  int64_t idx[IT_MAX_RANK] = {0};
  for (size_t i = 0; i < total; i++) {
    size_t dst = 0;
    for (int d = 0; d < r; d++) dst = dst * (size_t)x->shape[d] + (size_t)(b[d] + idx[d] * st[d]);
    memcpy((char *)o->data + dst * e, (const char *)u->data + i * e, e);
    for (int d = r - 1; d >= 0; d--) { if (++idx[d] < cnt[d]) break; idx[d] = 0; }
  }
  it_out_set(c, 0, o);
  it_unref(o);
  return 0;
}

const it_kernel_def it_ops_control[] = {
  {"cond", k_cond}, {"while_loop", k_while_loop}, {"read_state", k_read_state}, {"write_state", k_write_state},
  {"slice_update", k_slice_update}, {NULL, NULL},
};
