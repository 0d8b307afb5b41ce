/* exec.c — running blocks and programs (see exec.h). */
#include "exec.h"
#include "ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <pthread.h>
#include <time.h>

int it_rounds_fp16(const it_env *env, mlsh_dtype dt) {
  if (!mlsh_dtype_is_float(dt)) return 0;
  if (env->prec == IT_PREC_FP16) return 1;
  return env->prec == IT_PREC_MODEL && dt == MLSH_DT_FP16;
}

static void set_slot(it_env *env, int s, it_tensor *t) {
  it_unref(env->slots[s]);
  env->slots[s] = t;
}

static void note_first(it_first *f, const it_op *op) {
  if (f->found) return;
  f->found = 1;
  snprintf(f->op, sizeof f->op, "%s", op->name);
  snprintf(f->type, sizeof f->type, "%s", op->type);
}

static void check_values(it_env *env, const it_op *op, it_tensor *t) {
  if (t->st != IT_F32 || (env->nonfinite.found && (env->fp16_overflow.found || env->prec != IT_PREC_FP32))) return;
  int bad, big;
  it_f32_scan(t->data, t->n, &bad, &big);
  if (bad) note_first(&env->nonfinite, op);
  if (big && env->prec == IT_PREC_FP32) note_first(&env->fp16_overflow, op);
}

/* $MLSH_INTERP_PROFILE: CPU seconds (all threads) per op type, printed to stderr after the run;
 * MLSH_INTERP_PROFILE=wall measures wall-clock seconds instead (what threads save);
 * MLSH_INTERP_PROFILE=ops also prints each op as it ends (name, type, wall microseconds). */
#define PROF_MAX 128
static struct { const char *type; double s; long n; } prof[PROF_MAX];
static int nprof;

static clockid_t prof_clock = CLOCK_PROCESS_CPUTIME_ID;
static int prof_ops;

static double now(void) {
  struct timespec ts;
  clock_gettime(prof_clock, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void prof_add(const it_op *op, double s) {
  const char *type = op->type;
  if (prof_ops) fprintf(stderr, "op %s %s %.1f us\n", op->name, type, s * 1e6);
  for (int i = 0; i < nprof; i++)
    if (strcmp(prof[i].type, type) == 0) { prof[i].s += s; prof[i].n++; return; }
  if (nprof < PROF_MAX) { prof[nprof].type = type; prof[nprof].s = s; prof[nprof++].n = 1; }
}

static void prof_dump(void) {
  for (int i = 0; i < nprof; i++) fprintf(stderr, "%-28s %5ld ops %9.3f ms %s\n", prof[i].type, prof[i].n, prof[i].s * 1e3,
                                  prof_clock == CLOCK_MONOTONIC ? "wall" : "CPU");
  nprof = 0;
}

/* A list value reaches only the ops that take lists (it_kernel_takes_lists); anything else would
 * read its it_list as tensor data. Checked per binding (pointer tests; the name test only on a hit). */
static int check_lists(it_env *env, const it_op *op) {
  for (int i = 0; i < op->nparams; i++)
    for (int j = 0; j < op->params[i].n; j++) {
      const it_binding *b = &op->params[i].b[j];
      const it_tensor *t = b->imm ? b->imm : b->slot >= 0 ? env->slots[b->slot] : NULL; /* classify's classes: neither */
      if (t && t->st == IT_LIST && !it_kernel_takes_lists(op->type))
        return mlsh_fail(env->e, NULL, "op '%s' (%s): input '%s' is a list, which this op does not take", op->name, op->type,
                         op->params[i].name);
    }
  return 0;
}

static int needs_scan(const it_env *env) {
  return !(env->nonfinite.found && (env->fp16_overflow.found || env->prec != IT_PREC_FP32));
}

static int run_op(it_env *env, const it_op *op) {
  double t0 = env->op_seconds >= 0 ? now() : 0;
  if (op->is_const) {
    for (int i = 0; i < op->nout; i++) {
      it_tensor *t = env->p->consts[op->out_slots[i]];
      set_slot(env, op->out_slots[i], it_ref(t));
    }
  } else {
    it_ctx c;
    memset(&c, 0, sizeof c);
    c.env = env;
    c.op = op;
    if (op->nout > IT_MAX_OUT) return mlsh_fail(env->e, NULL, "op '%s' (%s) has too many outputs", op->name, op->type);
    if (!op->k) return mlsh_fail(env->e, NULL, "op %s (type %s) is not supported by the interpreter", op->name, op->type);
    if (check_lists(env, op) != 0) return -1;
    if (op->k->fn(&c) != 0) {
      for (int i = 0; i < IT_MAX_OUT; i++) it_unref(c.out[i]);
      return -1;
    }
    for (int i = 0; i < op->nout; i++) {
      it_tensor *t = c.out[i];
      if (!t) return mlsh_fail(env->e, NULL, "op '%s' (%s): output %d was not produced", op->name, op->type, i);
      if (t->st == IT_F32 && it_rounds_fp16(env, t->dt) && t->refs == 1 && !t->borrowed) it_round_fp16(t->data, t->n);
      if (env->fuse && env->fuse->applied) { /* t holds the activation's values: the scan saw op's own */
        if (env->fuse->bad) note_first(&env->nonfinite, op);
        if (env->fuse->big && env->prec == IT_PREC_FP32) note_first(&env->fp16_overflow, op);
      } else check_values(env, op, t);
      set_slot(env, op->out_slots[i], t);
    }
    for (int i = op->nout; i < IT_MAX_OUT; i++) it_unref(c.out[i]); /* made but not declared (e.g. no outputs) */
  }
  if (env->observe) {
    it_tensor *outs[IT_MAX_OUT];
    for (int i = 0; i < op->nout && i < IT_MAX_OUT; i++) {
      outs[i] = env->slots[op->out_slots[i]];
      if (outs[i] && outs[i]->st == IT_LIST) outs[i] = NULL; /* no .npy for a list */
    }
    env->observe(env->ud, op, outs);
  }
  for (int i = 0; i < op->nfree; i++) set_slot(env, op->free_after[i], NULL);
  if (env->op_seconds >= 0 && !op->is_const && op->nblocks == 0) prof_add(op, now() - t0);
  return 0;
}

/* The binding of `next`'s input x when it is `slot` and nothing else of `next` reads slot. */
static int reads_only_x(const it_op *next, int slot) {
  int xs = 0, other = 0;
  for (int i = 0; i < next->nparams; i++)
    for (int j = 0; j < next->params[i].n; j++) {
      const it_binding *b = &next->params[i].b[j];
      if (b->imm || b->slot != slot) continue;
      if (strcmp(next->params[i].name, "x") == 0 && next->params[i].n == 1) xs++;
      else other++;
    }
  return xs == 1 && other == 0;
}

/* Whether op (conv / linear) may apply `next` (an activation) in its last store: see exec.h. */
static int fusable(it_env *env, const it_op *op, const it_op *next, it_act *a) {
  if (env->observe || op->is_const || next->is_const || !op->k || !next->k || op->nout != 1 || next->nout != 1 ||
      op->nblocks || next->nblocks || !op->out_types || !next->out_types)
    return 0;
  if (strcmp(op->k->type, "conv") != 0 && strcmp(op->k->type, "linear") != 0) return 0;
  mlsh_dtype dt = op->out_types[0].dt;
  if (dt != next->out_types[0].dt || it_rounds_fp16(env, dt) || it_rounds_fp16(env, MLSH_DT_FP32) ||
      (dt != MLSH_DT_FP32 && dt != MLSH_DT_INVALID))
    return 0;
  int slot = op->out_slots[0], dies = 0;
  for (int i = 0; i < next->nfree; i++) dies |= next->free_after[i] == slot;
  if (!dies || !reads_only_x(next, slot)) return 0;
  it_ctx c;
  memset(&c, 0, sizeof c);
  c.env = env;
  c.op = next;
  return it_act_from_op(&c, a) == 0;
}

/* next's turn when op applied it: its output is op's tensor, checked and freed as usual (the
 * check only when the activation can take clean values out of range: op's own were scanned). */
static void pass_fused(it_env *env, const it_op *op, const it_op *next, const it_act *a) {
  double t0 = env->op_seconds >= 0 ? now() : 0;
  it_tensor *t = it_ref(env->slots[op->out_slots[0]]);
  if (!a->keeps_range) check_values(env, next, t);
  set_slot(env, next->out_slots[0], t);
  for (int i = 0; i < next->nfree; i++) set_slot(env, next->free_after[i], NULL);
  if (env->op_seconds >= 0) prof_add(next, now() - t0);
}

/* Op i followed by its activation: the const ops between them (a gelu's mode, a clip's bounds)
 * run first, then op i with the activation fused when fusable. Returns the last op index done
 * (i, or the activation's), or -1. */
static int run_pair(it_env *env, const it_block *b, int i) {
  int j = i + 1;
  while (j < b->nops && b->ops[j].is_const) j++;
  if (j >= b->nops || env->observe || !b->ops[i].k ||
      (strcmp(b->ops[i].k->type, "conv") != 0 && strcmp(b->ops[i].k->type, "linear") != 0))
    return run_op(env, &b->ops[i]) != 0 ? -1 : i;
  for (int k = i + 1; k < j; k++) /* consts read nothing: running them before op i changes no value */
    if (run_op(env, &b->ops[k]) != 0) return -1;
  it_act a;
  if (!fusable(env, &b->ops[i], &b->ops[j], &a)) return run_op(env, &b->ops[i]) != 0 ? -1 : j - 1;
  a.scan = needs_scan(env);
  env->fuse = &a;
  int rc = run_op(env, &b->ops[i]);
  env->fuse = NULL;
  if (rc != 0) return -1;
  if (!a.applied) return j - 1;
  pass_fused(env, &b->ops[i], &b->ops[j], &a);
  return j;
}

int it_exec_block(it_env *env, const it_block *b) {
  for (int i = 0; i < b->nops && !env->flow; i++)
    if ((i = run_pair(env, b, i)) < 0) return -1;
  return 0;
}

static int check_input(const it_io *io, const it_tensor *t, mlsh_err *e) {
  char got[128];
  it_describe(t, got, sizeof got);
  const it_type *ty = &io->type;
  int ok = ty->rank < 0 || ty->rank == t->rank;
  for (int i = 0; ok && ty->rank >= 0 && i < ty->rank; i++) ok = ty->shape[i] < 0 || ty->shape[i] == t->shape[i];
  if (!ok || (ty->dt != MLSH_DT_INVALID && ty->dt != t->dt)) {
    char want[160];
    int k = snprintf(want, sizeof want, "%s[", mlsh_dtype_name(ty->dt));
    for (int i = 0; i < ty->rank && k < (int)sizeof want; i++)
      k += ty->shape[i] < 0 ? snprintf(want + k, sizeof want - (size_t)k, "%s?", i ? "," : "")
                            : snprintf(want + k, sizeof want - (size_t)k, "%s%lld", i ? "," : "", (long long)ty->shape[i]);
    if (k < (int)sizeof want) snprintf(want + k, sizeof want - (size_t)k, "]");
    return mlsh_fail(e, NULL, "input '%s': expected %s, given %s", io->name, want, got);
  }
  return 0;
}

/* Activations are freed and reallocated op after op, most of them larger than glibc's default
 * mmap threshold (128 KiB): every op would map fresh pages and fault them in (measured: more CPU
 * than relu6 itself on MobileNetV2). Serving blocks up to 32 MiB from the heap and not trimming it
 * lets the next op reuse the pages the previous one freed. */
static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
static void tune_malloc(void) {
#ifdef M_MMAP_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

int it_run(const it_program *p, it_tensor *const *inputs, it_tensor **outputs, it_tensor **states_out, it_observer observe,
           void *ud, it_first *nonfinite, it_first *fp16_overflow, mlsh_err *e) {
  for (int i = 0; i < p->nin; i++) {
    if (!inputs[i]) return mlsh_fail(e, NULL, "input '%s' is missing", p->inputs[i].name);
    if (check_input(&p->inputs[i], inputs[i], e) != 0) return -1;
  }
  pthread_once(&malloc_once, tune_malloc);
  it_env env;
  memset(&env, 0, sizeof env);
  env.p = p;
  env.e = e;
  env.prec = p->prec;
  env.observe = observe;
  env.ud = ud;
  const char *prof_env = getenv("MLSH_INTERP_PROFILE");
  env.op_seconds = prof_env ? 0 : -1;
  if (prof_env) {
    prof_ops = strcmp(prof_env, "ops") == 0;
    prof_clock = prof_ops || strcmp(prof_env, "wall") == 0 ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID;
  }
  env.slots = calloc((size_t)p->nslots + 1, sizeof *env.slots);
  it_tensor **keep = calloc((size_t)p->nin + 1, sizeof *keep); /* states, written in place */
  if (!env.slots || !keep) { free(env.slots); free(keep); return mlsh_fail(e, NULL, "out of memory"); }
  int rc = 0;
  for (int i = 0; i < p->nin && rc == 0; i++) {
    it_tensor *t = inputs[i];
    int round = t->st == IT_F32 && it_rounds_fp16(&env, p->inputs[i].type.dt != MLSH_DT_INVALID ? p->inputs[i].type.dt : t->dt);
    if (round || p->inputs[i].type.is_state) { /* a copy: rounded, or a state written in place */
      it_tensor *r = it_convert(t, t->dt, e);
      if (!r) { rc = -1; break; }
      if (round) it_round_fp16(r->data, r->n);
      it_unref(env.slots[p->inputs[i].slot]); /* two inputs of one name share a slot: the last wins */
      env.slots[p->inputs[i].slot] = r;
      if (p->inputs[i].type.is_state) keep[i] = it_ref(r);
    } else {
      it_unref(env.slots[p->inputs[i].slot]);
      env.slots[p->inputs[i].slot] = it_ref(t);
    }
  }
  if (rc == 0) rc = it_exec_block(&env, p->main);
  if (rc == 0 && env.flow) rc = mlsh_fail(e, NULL, "a loopBreak / loopContinue ran outside a loop body");
  for (int j = 0; rc == 0 && j < p->nout; j++)
    if (env.slots[p->outputs[j].slot] && env.slots[p->outputs[j].slot]->st == IT_LIST)
      rc = mlsh_fail(e, NULL, "output '%s' is a list, not a tensor", p->outputs[j].name);
  if (env.op_seconds >= 0) prof_dump();
  for (int j = 0; j < p->nout; j++) outputs[j] = rc == 0 ? it_ref(env.slots[p->outputs[j].slot]) : NULL;
  if (states_out)
    for (int i = 0; i < p->nin; i++) states_out[i] = rc == 0 && keep[i] ? it_ref(keep[i]) : NULL;
  for (int i = 0; i < p->nin; i++) it_unref(keep[i]);
  free(keep);
  for (int s = 0; s < p->nslots; s++) it_unref(env.slots[s]);
  free(env.slots);
  if (nonfinite) *nonfinite = env.nonfinite;
  if (fp16_overflow) *fp16_overflow = env.fp16_overflow;
  return rc;
}
