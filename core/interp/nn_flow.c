/* nn_flow.c — NeuralNetwork control flow: branch (ifBranch / elseBranch sub-networks chosen by a
 * scalar condition), loop (maxLoopIterations or a count input, an optional conditionNetwork
 * producing conditionVar, a bodyNetwork) and copy. A sub-network is decoded from the layer's
 * undeclared parameters (BranchLayerParams 1, 2; LoopLayerParams 1..4) into program-owned memory,
 * lowered like the top-level layers, and its ops moved into a nested block of one op. NN blobs
 * are names that later layers (and later iterations) re-read, so:
 *   branch: every blob a branch's layers write becomes an output of the branch op, taken from
 *           the branch that ran (or the value before the branch when that branch did not write it);
 *   loop:   every blob the condition or body writes has a carrier slot (its value before the
 *           loop, or a new slot); after each sub-network runs its values are copied into the
 *           carriers, which the sub-networks read, and the loop op outputs the carriers.
 * A branch's internal names are hidden ("<layer>/if/<name>") so the else branch does not see them.
 * loopBreak / loopContinue have no lowering (refused by name like any unsupported layer). */
#include "nn_lower.h"
#include "pbdepth.h"
#include <stdlib.h>
#include <string.h>

#define FLOW_MAX_DEPTH 8
#define LOOP_MAX_ITERS (1LL << 24)

typedef CoreML__Specification__NeuralNetwork nn_net_msg;

typedef struct {
  int n;            /* outputs of the op, one per written blob */
  int *src[2];      /* branch: per branch, the slot holding blob k afterwards (-1: none) */
  int *carrier;     /* loop: blob k's carrier slot */
  int *cmove, *bmove; /* loop: per blob, the condition / body slot copied into the carrier (-1) */
  int cond_var;     /* loop: carrier index of conditionVar, -1 without a condition network */
  int64_t max_iters;
  int has_max;
} flow_aux;

static void *pa_alloc(void *ud, size_t n) { return it_program_alloc(ud, n ? n : 1); }
static void pa_free(void *ud, void *p) { (void)ud; (void)p; }

/* Decode sub-network field `field` of the layer's parameters (NULL + *present = 0 when absent). */
static const nn_net_msg *sub_net(nn_b *B, const nn_layer *l, unsigned field, int *present) {
  nnw_msg pm = nn_params(l);
  nnw_msg raw = nnw_sub(&pm, field, present);
  if (!*present) return NULL;
  if (mlsh_pb_check_depth(&core_ml__specification__neural_network__descriptor, raw.p, raw.n, l->name, B->e) != 0) return NULL;
  ProtobufCAllocator a = {pa_alloc, pa_free, B->p};
  const nn_net_msg *net = (const nn_net_msg *)protobuf_c_message_unpack(&core_ml__specification__neural_network__descriptor,
                                                                        &a, raw.n, raw.p);
  if (!net) nn_fail(B, "its sub-network (field %u) is not a valid NeuralNetwork message", field);
  return net;
}

/* Lower net's layers (appended to B's ops); *s0 / *s1 get the slot range they define. */
static int lower_net(nn_b *B, const nn_net_msg *net, int *s0, int *s1) {
  const char *outer = B->layer;
  *s0 = B->p->nslots;
  B->depth++;
  int rc = B->depth > FLOW_MAX_DEPTH ? nn_fail(B, "branches / loops nested deeper than %d", FLOW_MAX_DEPTH)
                                     : net ? nn_lower_layers(B, net->n_layers, net->layers) : 0;
  B->depth--;
  B->layer = outer;
  *s1 = B->p->nslots;
  return rc;
}

/* The control op: ops [at[0], at[1]) and [at[1], at[2]) of B move into its two nested blocks
 * (until then they stay B's, so a failure frees them with the program under construction). */
static it_op *control_op(nn_b *B, const nn_layer *l, const it_kernel_def *k, const int at[3]) {
  it_block **bl = it_program_alloc(B->p, 2 * sizeof *bl);
  if (!bl) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  for (int i = 0; i < 2; i++) {
    bl[i] = it_program_alloc(B->p, sizeof *bl[i]);
    if (!bl[i] || !(bl[i]->ops = it_program_alloc(B->p, (size_t)(at[i + 1] - at[i] + 1) * sizeof(it_op))))
      return mlsh_fail(B->e, NULL, "out of memory"), NULL;
    bl[i]->nops = at[i + 1] - at[i];
    if (bl[i]->nops) memcpy(bl[i]->ops, B->ops + at[i], (size_t)bl[i]->nops * sizeof(it_op));
  }
  B->nops = at[0];
  it_op *op = nn_op(B, k->type, l->name, k); /* B->nops < capops: cannot fail on memory */
  if (!op) return NULL;
  op->nblocks = 2;
  op->blocks = bl;
  return op;
}

/* The distinct blob names the network's layers write, appended to names (at most max). */
static int written(const nn_net_msg *net, const char **names, int n, int max) {
  for (size_t i = 0; net && i < net->n_layers; i++)
    for (size_t j = 0; j < net->layers[i]->n_output; j++) {
      const char *o = net->layers[i]->output[j];
      int seen = 0;
      for (int k = 0; k < n && !seen; k++) seen = strcmp(names[k], o) == 0;
      if (!seen) {
        if (n == max) return -1;
        names[n++] = o;
      }
    }
  return n;
}

/* Latest slot named name in [s0, s1), -1 when none. */
static int latest(nn_b *B, const char *name, int s0, int s1) {
  for (int s = s1 - 1; s >= s0; s--)
    if (strcmp(B->p->slot_names[s], name) == 0) return s;
  return -1;
}

static int *ints(nn_b *B, int n) {
  int *v = it_program_alloc(B->p, (size_t)(n > 0 ? n : 1) * sizeof *v);
  if (!v) mlsh_fail(B->e, NULL, "out of memory");
  return v;
}

static int keep_alive(nn_b *B, it_op *op, const int *slots, int n) {
  int live[IT_MAX_OUT], k = 0;
  for (int i = 0; i < n; i++)
    if (slots[i] >= 0) live[k++] = slots[i];
  return k ? nn_args(B, op, "keep", live, k) : 0;
}

/* ---- branch ---- */

static int k_branch(it_ctx *c) {
  const flow_aux *a = c->op->aux;
  it_tensor *p = it_arg_req(c, "x");
  if (!p) return -1;
  if (p->n < 1) return it_fail(c, "the branch condition is empty");
  int which = it_get_d(p, 0) != 0 ? 0 : 1;
  if (c->op->blocks[which] && it_exec_block(c->env, c->op->blocks[which]) != 0) return -1;
  for (int k = 0; k < a->n; k++) {
    int s = a->src[which][k];
    it_tensor *t = s >= 0 ? c->env->slots[s] : NULL;
    if (!t) return it_fail(c, "blob '%s' is not written by the %s branch and has no earlier value", c->env->p->slot_names[c->op->out_slots[k]],
                           which ? "else" : "if");
    it_out_set(c, k, t);
  }
  return 0;
}

static const it_kernel_def k_branch_def = {"nn_branch", k_branch};

static int lower_branch(nn_b *B, const nn_layer *l) {
  int cond = nn_layer_in(B, l, 0), has[2];
  if (cond < 0) return -1;
  const nn_net_msg *net[2];
  const char *names[IT_MAX_OUT];
  int n = 0;
  for (int b = 0; b < 2; b++) {
    net[b] = sub_net(B, l, (unsigned)b + 1, &has[b]);
    if (has[b] && !net[b]) return -1;
    if ((n = written(net[b], names, n, IT_MAX_OUT)) < 0) return nn_fail(B, "its branches write more than %d blobs", IT_MAX_OUT);
  }
  if (!has[0]) return nn_fail(B, "has no ifBranch network");
  flow_aux *a = it_program_alloc(B->p, sizeof *a);
  int *pre = ints(B, n);
  if (!a || !pre || !(a->src[0] = ints(B, n)) || !(a->src[1] = ints(B, n))) return -1;
  a->n = n;
  for (int k = 0; k < n; k++) pre[k] = nn_find(B, names[k]);
  int at[3];
  at[0] = B->nops;
  for (int b = 0; b < 2; b++) {
    int s0, s1;
    if (lower_net(B, net[b], &s0, &s1) != 0) return -1;
    at[b + 1] = B->nops;
    for (int k = 0; k < n; k++) {
      int s = latest(B, names[k], s0, s1);
      a->src[b][k] = s >= 0 ? s : pre[k];
    }
    for (int s = s0; s < s1; s++) /* hidden from the other branch and the layers after */
      if (!(B->p->slot_names[s] = nn_str(B, nn_str(B, l->name, b ? "else" : "if"), B->p->slot_names[s]))) return -1;
  }
  it_op *op = control_op(B, l, &k_branch_def, at);
  if (!op) return -1;
  op->aux = a;
  if (nn_arg(B, op, "x", cond) != 0 || keep_alive(B, op, pre, n) != 0) return -1;
  for (int k = 0; k < n; k++)
    if (nn_out(B, op, names[k]) < 0) return -1;
  return 0;
}

/* ---- loop ---- */

static void moves(it_env *env, const flow_aux *a, const int *mv) {
  for (int k = 0; k < a->n; k++)
    if (mv[k] >= 0 && mv[k] != a->carrier[k] && env->slots[mv[k]]) {
      it_tensor *t = it_ref(env->slots[mv[k]]);
      it_unref(env->slots[a->carrier[k]]);
      env->slots[a->carrier[k]] = t;
    }
}

static int run_cond(it_ctx *c, const flow_aux *a, int *go) {
  if (a->cond_var < 0) { *go = 1; return 0; }
  if (it_exec_block(c->env, c->op->blocks[0]) != 0) return -1;
  moves(c->env, a, a->cmove);
  it_tensor *t = c->env->slots[a->carrier[a->cond_var]];
  if (!t || t->st == IT_LIST || t->n < 1) return it_fail(c, "the condition network did not produce its conditionVar");
  *go = it_get_d(t, 0) != 0;
  return 0;
}

static int k_loop(it_ctx *c) {
  const flow_aux *a = c->op->aux;
  int64_t max = a->max_iters;
  int has_max = a->has_max;
  it_tensor *n = it_arg(c, "n");
  if (n) {
    if (n->n < 1) return it_fail(c, "the loop count input is empty");
    double v = it_get_d(n, 0);
    max = v > 0 ? it_d2i(v) : 0;
    has_max = 1;
  }
  if (a->cond_var < 0 && !has_max) max = 0;
  int go = 1;
  for (int64_t i = 0;; i++) {
    if (run_cond(c, a, &go) != 0) return -1;
    if (!go || (has_max && i >= max)) break;
    if (i >= LOOP_MAX_ITERS) return it_fail(c, "the loop ran %lld iterations without its condition turning false", (long long)i);
    if (it_exec_block(c->env, c->op->blocks[1]) != 0) return -1;
    moves(c->env, a, a->bmove);
  }
  for (int k = 0; k < a->n; k++) {
    it_tensor *t = c->env->slots[a->carrier[k]];
    if (!t) return it_fail(c, "blob '%s' was never written (the loop ran no iterations)", c->env->p->slot_names[c->op->out_slots[k]]);
    it_out_set(c, k, t);
  }
  return 0;
}

static const it_kernel_def k_loop_def = {"nn_loop", k_loop};

static int loop_net(nn_b *B, const nn_net_msg *net, const char *const *names, flow_aux *a, int *mv) {
  int s0, s1;
  if (lower_net(B, net, &s0, &s1) != 0) return -1;
  for (int k = 0; k < a->n; k++) mv[k] = latest(B, names[k], s0, s1);
  return 0;
}

static int lower_loop(nn_b *B, const nn_layer *l) {
  nnw_msg pm = nn_params(l);
  int has_c = 0, has_b = 0;
  const nn_net_msg *cn = sub_net(B, l, 3, &has_c), *bn = has_c && !cn ? NULL : sub_net(B, l, 4, &has_b);
  if ((has_c && !cn) || (has_b && !bn)) return -1;
  const char *names[IT_MAX_OUT], *cvar = NULL;
  int n = written(cn, names, 0, IT_MAX_OUT);
  if (n >= 0) n = written(bn, names, n, IT_MAX_OUT);
  if (n < 0) return nn_fail(B, "its networks write more than %d blobs", IT_MAX_OUT);
  flow_aux *a = it_program_alloc(B->p, sizeof *a);
  if (!a || !(a->carrier = ints(B, n)) || !(a->cmove = ints(B, n)) || !(a->bmove = ints(B, n))) return -1;
  a->n = n;
  a->cond_var = -1;
  a->max_iters = (int64_t)(nnw_u64(&pm, 1, 0) > (uint64_t)INT64_MAX ? INT64_MAX : nnw_u64(&pm, 1, 0));
  a->has_max = a->max_iters > 0 || !has_c;
  nnw_field f;
  if (has_c) {
    if (nnw_get(&pm, 2, &f) != 1 || f.wire != 2 || f.len == 0) return nn_fail(B, "has a conditionNetwork but no conditionVar");
    if (!(cvar = it_program_alloc(B->p, f.len + 1))) return mlsh_fail(B->e, NULL, "out of memory");
    memcpy((char *)cvar, f.data, f.len);
  }
  int pre[IT_MAX_OUT];
  for (int k = 0; k < n; k++) {
    pre[k] = nn_find(B, names[k]);
    a->carrier[k] = pre[k] >= 0 ? pre[k] : nn_def(B, names[k]);
    if (a->carrier[k] < 0) return -1;
    if (cvar && strcmp(names[k], cvar) == 0) a->cond_var = k;
  }
  if (has_c && a->cond_var < 0) return nn_fail(B, "its conditionNetwork does not write conditionVar '%s'", cvar);
  int at[3];
  at[0] = B->nops;
  for (int k = 0; k < n; k++) a->cmove[k] = -1;
  if (has_c && loop_net(B, cn, names, a, a->cmove) != 0) return -1;
  at[1] = B->nops;
  if (loop_net(B, bn, names, a, a->bmove) != 0) return -1;
  at[2] = B->nops;
  int count = l->n_input > 0 ? nn_use(B, l->input[0]) : -1;
  if (l->n_input > 0 && count < 0) return -1;
  it_op *op = control_op(B, l, &k_loop_def, at);
  if (!op) return -1;
  op->aux = a;
  if (keep_alive(B, op, pre, n) != 0 || (count >= 0 && nn_arg(B, op, "n", count) != 0)) return -1;
  for (int k = 0; k < n; k++)
    if (nn_out(B, op, names[k]) < 0) return -1;
  return 0;
}

/* copy: the output blob (possibly an existing name: it is overwritten) takes the input's value. */
static int lower_copy(nn_b *B, const nn_layer *l) { return nn_simple(B, l, "identity", 0, 0, NULL, NULL); }

#define CASE(X) CORE_ML__SPECIFICATION__NEURAL_NETWORK_LAYER__LAYER_##X
const nn_lowering nn_lower_flow[] = {
  {CASE(BRANCH), lower_branch}, {CASE(LOOP), lower_loop}, {CASE(COPY), lower_copy}, {0, NULL}};
