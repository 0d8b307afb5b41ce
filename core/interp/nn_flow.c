/* nn_flow.c — NeuralNetwork control flow: branch (ifBranch / elseBranch sub-networks chosen by a
 * scalar condition), loop (maxLoopIterations or a count input, an optional conditionNetwork
 * producing conditionVar, a bodyNetwork), loopBreak and loopContinue (copy, which rewrites a
 * blob in loops, is lowered with the shape layers). A sub-network is decoded from the layer's
 * undeclared parameters (BranchLayerParams 1, 2; LoopLayerParams 1..4) into program-owned memory,
 * lowered like the top-level layers, and its ops moved into a nested block of one op.
 * NN blobs are names that later layers (and later iterations) re-read, so every name a
 * sub-network defines gets a carrier slot: the value the name had before the layer, or a new slot.
 * After a sub-network runs, its last value of each name is copied into the carrier; the
 * sub-networks read carriers, the sub-networks' own slots are renamed "<layer>/<tag>/<name>"
 * (hidden: the else network does not see the if network's names), and the layers after read the
 * carriers. A branch that does not write a name leaves the earlier value; a name never written
 * (no earlier value) reads as an empty fp32 [0] tensor. The ops have no outputs of their own.
 * loopBreak / loopContinue are ops that raise env->flow: the blocks around them stop after the
 * current op (a branch still moves what it wrote), and the loop takes the signal after its body:
 * it moves the names written so far and stops, or goes on to the next iteration. One outside a
 * loop body (top level, a condition network) is an error when it runs. */
#include "nn_lower.h"
#include "pbdepth.h"
#include <stdlib.h>
#include <string.h>

#define FLOW_MAX_DEPTH 8
#define LOOP_MAX_ITERS (1LL << 16) /* NN models loop tens to thousands of times; a runaway loop stops fast */

typedef CoreML__Specification__NeuralNetwork nn_net_msg;

typedef struct {
  int n;            /* names carried */
  int *carrier;     /* name k's carrier slot */
  int *mv[2];       /* per block, the slot copied into carrier k after the block ran (-1: none) */
  int cond_var;     /* loop: index of conditionVar, -1 without a condition network */
  int fresh;        /* carriers from this slot on are new (no value before the layer) */
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

static const char **save_names(nn_b *B, int s0, int s1) {
  const char **v = it_program_alloc(B->p, (size_t)(s1 - s0 + 1) * sizeof *v);
  if (!v) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  for (int s = s0; s < s1; s++) v[s - s0] = B->p->slot_names[s];
  return v;
}

static int hide(nn_b *B, const nn_layer *l, const char *tag, int s0, int s1) {
  const char *pre = nn_str(B, l->name, tag);
  for (int s = s0; s < s1; s++)
    if (!pre || !(B->p->slot_names[s] = nn_str(B, pre, B->p->slot_names[s]))) return -1;
  return 0;
}

/* Block b's slots [s0, s1) with their original names nm: each name's last slot into a->mv[b]
 * (names[] grows; a->n counts them). */
static void collect(flow_aux *a, const char **names, const char *const *nm, int s0, int s1, int b) {
  for (int s = s1 - 1; s >= s0; s--) {
    int k = 0;
    while (k < a->n && strcmp(names[k], nm[s - s0]) != 0) k++;
    if (k == a->n) {
      names[k] = nm[s - s0];
      a->mv[0][k] = a->mv[1][k] = -1;
      a->n++;
    }
    if (a->mv[b][k] < 0) a->mv[b][k] = s;
  }
}

/* Lower the two sub-networks (a branch hides the first one's names before the second is lowered;
 * a loop's body sees its condition network's), then the carriers: each name's earlier slot, or a
 * new one defined after the sub-networks' names are hidden. at[] gets the op ranges. */
static flow_aux *lower_pair(nn_b *B, const nn_layer *l, const nn_net_msg *const net[2], int branch, int at[3]) {
  static const char *const TAGS[2][2] = {{"cond", "body"}, {"if", "else"}};
  flow_aux *a = it_program_alloc(B->p, sizeof *a);
  const char **nm[2] = {NULL, NULL};
  int s[3];
  if (!a) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  a->cond_var = -1;
  at[0] = B->nops;
  s[0] = B->p->nslots;
  for (int b = 0; b < 2; b++) {
    int s0, s1;
    if (lower_net(B, net[b], &s0, &s1) != 0 || !(nm[b] = save_names(B, s0, s1))) return NULL;
    at[b + 1] = B->nops;
    s[b + 1] = s1;
    if (branch && b == 0 && hide(B, l, TAGS[1][0], s0, s1) != 0) return NULL;
  }
  int max = s[2] - s[0];
  const char **names = it_program_alloc(B->p, (size_t)(max + 1) * sizeof *names);
  if (!names || !(a->mv[0] = ints(B, max)) || !(a->mv[1] = ints(B, max)) || !(a->carrier = ints(B, max))) return NULL;
  for (int b = 0; b < 2; b++) collect(a, names, nm[b], s[b], s[b + 1], b);
  for (int k = 0; k < a->n; k++) a->carrier[k] = latest(B, names[k], 0, s[0]);
  if ((!branch && hide(B, l, TAGS[0][0], s[0], s[1]) != 0) || hide(B, l, TAGS[branch][1], s[1], s[2]) != 0) return NULL;
  a->fresh = B->p->nslots;
  for (int k = 0; k < a->n; k++)
    if (a->carrier[k] < 0 && (a->carrier[k] = nn_def(B, names[k])) < 0) return NULL;
  return a;
}

/* The carriers that held a value before the layer stay alive until the op (and after, if read). */
static int keep_alive(nn_b *B, it_op *op, const flow_aux *a, int s0) {
  int *live = ints(B, a->n), k = 0;
  if (!live) return -1;
  for (int i = 0; i < a->n; i++)
    if (a->carrier[i] < s0) live[k++] = a->carrier[i];
  return k ? nn_args(B, op, "keep", live, k) : 0;
}

static void moves(it_env *env, const flow_aux *a, const int *mv) {
  for (int k = 0; k < a->n; k++)
    if (mv[k] >= 0 && env->slots[mv[k]]) {
      it_tensor *t = it_ref(env->slots[mv[k]]);
      it_unref(env->slots[a->carrier[k]]);
      env->slots[a->carrier[k]] = t;
    }
}

/* A new name the sub-networks did not write this time (a branch not taken, no iteration) reads
 * as an empty fp32 [0] tensor, never as an absent input. */
static int fill_unwritten(it_ctx *c, const flow_aux *a) {
  static const int64_t zero[1] = {0};
  for (int k = 0; k < a->n; k++)
    if (a->carrier[k] >= a->fresh && !c->env->slots[a->carrier[k]] &&
        !(c->env->slots[a->carrier[k]] = it_tensor_new(MLSH_DT_FP32, 1, zero, c->env->e)))
      return -1;
  return 0;
}

/* ---- branch ---- */

static int k_branch(it_ctx *c) {
  const flow_aux *a = c->op->aux;
  it_tensor *p = it_arg_req(c, "x");
  if (!p) return -1;
  if (p->st == IT_LIST || p->n < 1) return it_fail(c, "the branch condition is empty");
  int which = it_get_d(p, 0) != 0 ? 0 : 1;
  if (it_exec_block(c->env, c->op->blocks[which]) != 0) return -1;
  moves(c->env, a, a->mv[which]);
  return fill_unwritten(c, a);
}

static const it_kernel_def k_branch_def = {"nn_branch", k_branch};

static int lower_branch(nn_b *B, const nn_layer *l) {
  int cond = nn_layer_in(B, l, 0), has[2], at[3];
  if (cond < 0) return -1;
  const nn_net_msg *net[2];
  for (int b = 0; b < 2; b++) {
    net[b] = sub_net(B, l, (unsigned)b + 1, &has[b]);
    if (has[b] && !net[b]) return -1;
  }
  if (!has[0]) return nn_fail(B, "has no ifBranch network");
  int s0 = B->p->nslots;
  flow_aux *a = lower_pair(B, l, net, 1, at);
  if (!a) return -1;
  it_op *op = control_op(B, l, &k_branch_def, at);
  if (!op) return -1;
  op->aux = a;
  return nn_arg(B, op, "x", cond) != 0 || keep_alive(B, op, a, s0) != 0 ? -1 : 0;
}

/* ---- loop ---- */

static int run_cond(it_ctx *c, const flow_aux *a, int *go) {
  if (a->cond_var < 0) { *go = 1; return 0; }
  if (it_exec_block(c->env, c->op->blocks[0]) != 0) return -1;
  moves(c->env, a, a->mv[0]);
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
    if (n->st == IT_LIST || n->n < 1) return it_fail(c, "the loop count input is empty");
    double v = it_get_d(n, 0);
    max = v > 0 ? it_d2i(v) : 0;
    has_max = 1;
  }
  int go = 1;
  for (int64_t i = 0;; i++) {
    if (run_cond(c, a, &go) != 0) return -1;
    if (c->env->flow) return it_fail(c, "a loopBreak / loopContinue ran in the loop's condition network");
    if (!go || (has_max && i >= max)) break;
    if (i >= LOOP_MAX_ITERS) return it_fail(c, "the loop ran %lld iterations without its condition turning false", (long long)i);
    if (it_exec_block(c->env, c->op->blocks[1]) != 0) return -1;
    moves(c->env, a, a->mv[1]);
    int flow = c->env->flow;
    c->env->flow = IT_FLOW_NONE;
    if (flow == IT_FLOW_BREAK) break;
  }
  return fill_unwritten(c, a);
}

static int k_break(it_ctx *c) { c->env->flow = IT_FLOW_BREAK; return 0; }
static int k_continue(it_ctx *c) { c->env->flow = IT_FLOW_CONTINUE; return 0; }
static const it_kernel_def k_break_def = {"nn_loop_break", k_break}, k_continue_def = {"nn_loop_continue", k_continue};

static int lower_signal(nn_b *B, const nn_layer *l, const it_kernel_def *k) {
  return nn_op(B, k->type, l->name, k) ? 0 : -1;
}
static int lower_break(nn_b *B, const nn_layer *l) { return lower_signal(B, l, &k_break_def); }
static int lower_continue(nn_b *B, const nn_layer *l) { return lower_signal(B, l, &k_continue_def); }

static const it_kernel_def k_loop_def = {"nn_loop", k_loop};

static int lower_loop(nn_b *B, const nn_layer *l) {
  nnw_msg pm = nn_params(l);
  int has_c = 0, has_b = 0, at[3];
  const nn_net_msg *net[2];
  net[0] = sub_net(B, l, 3, &has_c);
  if (has_c && !net[0]) return -1;
  net[1] = sub_net(B, l, 4, &has_b);
  if (has_b && !net[1]) return -1;
  char *cvar = NULL;
  nnw_field f;
  if (has_c) {
    if (nnw_get(&pm, 2, &f) != 1 || f.wire != 2 || f.len == 0) return nn_fail(B, "has a conditionNetwork but no conditionVar");
    if (!(cvar = it_program_alloc(B->p, f.len + 1))) return mlsh_fail(B->e, NULL, "out of memory");
    memcpy(cvar, f.data, f.len);
  }
  int count = l->n_input > 0 ? nn_use(B, l->input[0]) : -1;
  if (l->n_input > 0 && count < 0) return -1;
  int s0 = B->p->nslots;
  flow_aux *a = lower_pair(B, l, net, 0, at);
  if (!a) return -1;
  uint64_t mi = nnw_u64(&pm, 1, 0);
  a->max_iters = mi > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)mi;
  a->has_max = a->max_iters > 0 || !has_c;
  for (int k = 0; cvar && k < a->n; k++)
    if (a->mv[0][k] >= 0 && strcmp(B->p->slot_names[a->carrier[k]], cvar) == 0) a->cond_var = k;
  if (has_c && a->cond_var < 0) return nn_fail(B, "its conditionNetwork does not write conditionVar '%s'", cvar);
  it_op *op = control_op(B, l, &k_loop_def, at);
  if (!op) return -1;
  op->aux = a;
  return keep_alive(B, op, a, s0) != 0 || (count >= 0 && nn_arg(B, op, "n", count) != 0) ? -1 : 0;
}

#define CASE(X) CORE_ML__SPECIFICATION__NEURAL_NETWORK_LAYER__LAYER_##X
const nn_lowering nn_lower_flow[] = {
  {CASE(BRANCH), lower_branch}, {CASE(LOOP), lower_loop}, {CASE(LOOP_BREAK), lower_break},
  {CASE(LOOP_CONTINUE), lower_continue}, {0, NULL}};
