/* pipeline_prog.c — an ML program sub-model of a pipeline (what `mlsh split --pipeline` and
 * coremltools' make_pipeline write: mlProgram specs whose blobs live in the package's one weight
 * file). The sub-model is loaded as a program of its own (it_program_load, weights read through
 * the pipeline's container), then absorbed into the pipeline's program: its slots are appended
 * (every slot index shifted by the base), its consts and allocations change owner, and its main
 * block becomes the nested block of one "mlProgram" op. That op binds the sub-model's inputs by
 * name to values of the pipeline, copies them into the sub-program's input slots (converted
 * between float dtypes when the declarations differ), runs the block in the same environment and
 * hands the sub-program's outputs on under their declared names. The sub-program keeps its own
 * free plan (its values die inside the block); the op clears whatever the block left behind. */
#include "pipeline.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  int nin, nout, lo, hi;     /* sub-program slots are [lo, hi) */
  int *in, *out;             /* sub-program input / output slots (shifted) */
  it_type *in_types;
  const char **in_names;
} pp_aux;

static int check_in(it_ctx *c, const pp_aux *a, int i, it_tensor *t, it_tensor **use) {
  const it_type *ty = &a->in_types[i];
  int ok = ty->rank < 0 || ty->rank == t->rank;
  for (int k = 0; ok && ty->rank > 0 && k < ty->rank; k++) ok = ty->shape[k] < 0 || ty->shape[k] == t->shape[k];
  char got[128];
  if (!ok) return it_fail(c, "input '%s' of the ML program is %s, which does not fit its declared shape", a->in_names[i],
                          it_describe(t, got, sizeof got));
  *use = it_ref(t);
  if (ty->dt == MLSH_DT_INVALID || ty->dt == t->dt) return 0;
  if (t->st != IT_F32 || it_storage_of(ty->dt) != IT_F32)
    return it_fail(c, "input '%s' of the ML program is %s, declared %s", a->in_names[i], it_describe(t, got, sizeof got),
                   mlsh_dtype_name(ty->dt));
  it_unref(*use);
  *use = it_convert(t, ty->dt, c->env->e);
  if (!*use) return -1;
  if (it_rounds_fp16(c->env, ty->dt)) it_round_fp16((*use)->data, (*use)->n);
  return 0;
}

static void clear(it_env *env, const pp_aux *a) {
  for (int s = a->lo; s < a->hi; s++) {
    it_unref(env->slots[s]);
    env->slots[s] = NULL;
  }
}

static int k_program(it_ctx *c) {
  const pp_aux *a = c->op->aux;
  it_env *env = c->env;
  int rc = 0;
  for (int i = 0; rc == 0 && i < a->nin; i++) {
    it_tensor *t = it_arg_at(c, "x", i), *use = NULL;
    if (!t) { rc = it_fail(c, "input %d is missing", i); break; }
    rc = check_in(c, a, i, t, &use);
    if (use) { it_unref(env->slots[a->in[i]]); env->slots[a->in[i]] = use; }
  }
  if (rc == 0) rc = it_exec_block(env, c->op->blocks[0]);
  for (int j = 0; rc == 0 && j < a->nout; j++) {
    it_tensor *t = env->slots[a->out[j]];
    if (!t || t->st == IT_LIST) rc = it_fail(c, "output %d of the ML program was not produced as a tensor", j);
    else it_out_set(c, j, t);
  }
  clear(env, a);
  return rc;
}

static const it_kernel_def k_def = {"mlProgram", k_program};

static void shift_block(it_block *b, int base) {
  for (int i = 0; i < b->nin; i++) b->in_slots[i] += base;
  for (int i = 0; i < b->nout; i++) b->out_slots[i] += base;
  for (int i = 0; i < b->nops; i++) {
    it_op *op = &b->ops[i];
    for (int k = 0; k < op->nout; k++) op->out_slots[k] += base;
    for (int k = 0; k < op->nfree; k++) op->free_after[k] += base;
    for (int j = 0; j < op->nparams; j++)
      for (int k = 0; k < op->params[j].n; k++)
        if (op->params[j].b[k].slot >= 0) op->params[j].b[k].slot += base;
    for (int k = 0; k < op->nblocks; k++) shift_block(op->blocks[k], base);
  }
}

/* Take over sp's allocations (freed with B's program); sp itself is spent. */
static int adopt(nn_b *B, it_program *sp) {
  it_program *p = B->p;
  size_t need = p->nallocs + sp->nallocs;
  if (need > p->capallocs) {
    void **a = realloc(p->allocs, need * sizeof *a);
    if (!a) return mlsh_fail(B->e, NULL, "out of memory");
    p->allocs = a;
    p->capallocs = need;
  }
  memcpy(p->allocs + p->nallocs, sp->allocs, sp->nallocs * sizeof *sp->allocs);
  p->nallocs = need;
  free(sp->allocs);
  free(sp->slot_names);
  free(sp->slot_types);
  free(sp->consts);
  free(sp->function);
  free(sp->opset);
  free(sp);
  return 0;
}

/* Append sp's slots to B (names, types; consts move). */
static int add_slots(nn_b *B, it_program *sp, int base) {
  for (int s = 0; s < sp->nslots; s++) {
    if (nn_def(B, sp->slot_names[s]) != base + s) return -1;
    B->p->slot_types[base + s] = sp->slot_types[s];
    B->p->consts[base + s] = sp->consts[s];
    sp->consts[s] = NULL;
  }
  return 0;
}

static pp_aux *make_aux(nn_b *B, const it_program *sp, int base) {
  pp_aux *a = it_program_alloc(B->p, sizeof *a);
  int n = sp->nin > 0 ? sp->nin : 1;
  if (!a || !(a->in = it_program_alloc(B->p, (size_t)n * sizeof(int))) ||
      !(a->out = it_program_alloc(B->p, (size_t)(sp->nout > 0 ? sp->nout : 1) * sizeof(int))) ||
      !(a->in_types = it_program_alloc(B->p, (size_t)n * sizeof *a->in_types)) ||
      !(a->in_names = it_program_alloc(B->p, (size_t)n * sizeof *a->in_names)))
    return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  a->nin = sp->nin;
  a->nout = sp->nout;
  a->lo = base;
  a->hi = base + sp->nslots;
  for (int i = 0; i < sp->nin; i++) {
    a->in[i] = sp->inputs[i].slot + base;
    a->in_types[i] = sp->inputs[i].type;
    a->in_names[i] = sp->inputs[i].name;
  }
  for (int j = 0; j < sp->nout; j++) a->out[j] = sp->outputs[j].slot + base;
  return a;
}

static int check_io(nn_b *B, const it_program *sp) {
  if (sp->nout < 1 || sp->nout > IT_MAX_OUT)
    return nn_fail(B, "the ML program has %d outputs (1 to %d are supported)", sp->nout, IT_MAX_OUT);
  for (int i = 0; i < sp->nin; i++) {
    if (sp->inputs[i].type.is_state) return nn_fail(B, "state input '%s' is not supported inside a pipeline", sp->inputs[i].name);
    if (it_sub_input(B, sp->inputs[i].name) < 0) return -1;
  }
  return 0;
}

/* The op running the absorbed program; its inputs are bound before the sub-program's slots
 * exist, so an input named like a sub-program value still reads the pipeline's. */
static int add_op(nn_b *B, const it_program *sp, const int *ins, pp_aux *a, it_block *body) {
  it_op *op = nn_op(B, "mlProgram", "mlProgram", &k_def);
  if (!op) return -1;
  op->aux = a;
  op->nblocks = 1;
  op->blocks = it_program_alloc(B->p, sizeof *op->blocks);
  if (!op->blocks) return mlsh_fail(B->e, NULL, "out of memory");
  op->blocks[0] = body;
  if (sp->nin > 0 && nn_args(B, op, "x", ins, sp->nin) != 0) return -1;
  for (int j = 0; j < sp->nout; j++) {
    int k = op->nout;
    if (nn_out(B, op, sp->outputs[j].name) < 0) return -1;
    op->out_types[k] = sp->outputs[j].type;
    B->p->slot_types[op->out_slots[k]] = sp->outputs[j].type;
  }
  return 0;
}

int it_pipeline_program(nn_b *B, const it_model *m, mlsh_container *c) {
  if (!c) return nn_fail(B, "an ML program sub-model needs the pipeline's package (its weight file); load it from a file");
  it_program *sp = NULL;
  if (it_program_load(m, c, NULL, B->p->prec, &sp, B->e) != 0) return -1;
  if (check_io(B, sp) != 0) { it_program_free(sp); return -1; }
  int *ins = calloc((size_t)sp->nin + 1, sizeof *ins);
  if (!ins) { it_program_free(sp); return mlsh_fail(B->e, NULL, "out of memory"); }
  for (int i = 0; i < sp->nin; i++) ins[i] = nn_find(B, sp->inputs[i].name);
  int base = B->p->nslots;
  pp_aux *a = make_aux(B, sp, base);
  int rc = a ? add_slots(B, sp, base) : -1;
  if (rc != 0) { /* consts already moved stay B's; the rest is sp's */
    free(ins);
    it_program_free(sp);
    return -1;
  }
  /* From here sp's memory belongs to B: the nested block is freed with B's program. */
  it_block *body = sp->main;
  shift_block(body, base);
  const it_program snapshot = *sp;
  if (adopt(B, sp) != 0) {
    it_program_free(sp);
    free(ins);
    return -1;
  }
  rc = add_op(B, &snapshot, ins, a, body);
  free(ins);
  return rc;
}
