/* program.c — loading an ML program function for execution (see program.h). */
#include "program.h"
#include "nn_kernels.h"
#include "materialize.h"
#include "ops.h"
#include <stdlib.h>
#include <string.h>

typedef CoreML__Specification__MILSpec__Operation MOp;
typedef CoreML__Specification__MILSpec__Block MBlock;

static void *palloc(it_program *p, size_t size) {
  if (p->nallocs == p->capallocs) {
    size_t cap = p->capallocs ? p->capallocs * 2 : 256;
    void **a = realloc(p->allocs, cap * sizeof *a);
    if (!a) return NULL;
    p->allocs = a;
    p->capallocs = cap;
  }
  void *m = calloc(1, size ? size : 1);
  if (m) p->allocs[p->nallocs++] = m;
  return m;
}

void *it_program_alloc(it_program *p, size_t size) { return palloc(p, size); }

/* ---- name -> slot (open addressing over the slot_names array) ---- */
typedef struct {
  it_program *p;
  int *tab;
  size_t cap;
  int capslots;
  const it_block **def_block; /* per slot: the block that defines it */
} loader;

static size_t hash(const char *s) {
  size_t h = 1469598103934665603ull;
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
  return h;
}

static int find_slot(const loader *L, const char *name) {
  size_t i = hash(name) & (L->cap - 1);
  while (L->tab[i] >= 0) {
    if (strcmp(L->p->slot_names[L->tab[i]], name) == 0) return L->tab[i];
    i = (i + 1) & (L->cap - 1);
  }
  return -1;
}

static int grow(loader *L, mlsh_err *e) {
  it_program *p = L->p;
  int cap = L->capslots ? L->capslots * 2 : 256;
  char **names = realloc(p->slot_names, (size_t)cap * sizeof *names);
  if (names) p->slot_names = names;
  it_type *types = realloc(p->slot_types, (size_t)cap * sizeof *types);
  if (types) p->slot_types = types;
  it_tensor **consts = realloc(p->consts, (size_t)cap * sizeof *consts);
  if (consts) p->consts = consts;
  const it_block **db = realloc(L->def_block, (size_t)cap * sizeof *db);
  if (db) L->def_block = db;
  if (!names || !types || !consts || !db) return mlsh_fail(e, NULL, "out of memory");
  L->capslots = cap;
  size_t tcap = (size_t)cap * 2;
  int *tab = malloc(tcap * sizeof *tab);
  if (!tab) return mlsh_fail(e, NULL, "out of memory");
  for (size_t i = 0; i < tcap; i++) tab[i] = -1;
  free(L->tab);
  L->tab = tab;
  L->cap = tcap;
  for (int s = 0; s < p->nslots; s++) {
    size_t i = hash(p->slot_names[s]) & (tcap - 1);
    while (tab[i] >= 0) i = (i + 1) & (tcap - 1);
    tab[i] = s;
  }
  return 0;
}

static int new_slot(loader *L, const char *name, const it_type *t, const it_block *b, mlsh_err *e) {
  if (find_slot(L, name) >= 0) return mlsh_fail(e, NULL, "value '%s' is defined twice", name);
  if (L->p->nslots + 1 > L->capslots && grow(L, e) != 0) return -1;
  it_program *p = L->p;
  int s = p->nslots++;
  p->slot_names[s] = (char *)name;
  p->slot_types[s] = *t;
  p->consts[s] = NULL;
  L->def_block[s] = b;
  size_t i = hash(name) & (L->cap - 1);
  while (L->tab[i] >= 0) i = (i + 1) & (L->cap - 1);
  L->tab[i] = s;
  return s;
}

int it_program_slot(const it_program *p, const char *name) {
  for (int s = 0; s < p->nslots; s++)
    if (strcmp(p->slot_names[s], name) == 0) return s;
  return -1;
}

static const char *op_name(const MOp *m) {
  for (size_t i = 0; i < m->n_attributes; i++)
    if (strcmp(m->attributes[i]->key, "name") == 0 && m->attributes[i]->value) {
      const CoreML__Specification__MILSpec__Value *v = m->attributes[i]->value;
      if (v->value_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE && v->immediatevalue &&
          v->immediatevalue->value_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_TENSOR &&
          v->immediatevalue->tensor->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_STRINGS &&
          v->immediatevalue->tensor->strings->n_values > 0)
        return v->immediatevalue->tensor->strings->values[0];
    }
  return m->n_outputs ? m->outputs[0]->name : m->type;
}

static int load_block(loader *L, const MBlock *mb, it_block *b, mlsh_container *c, const char *fn, mlsh_err *e);

static int load_op(loader *L, const MOp *m, it_op *op, it_block *b, mlsh_container *c, const char *fn, mlsh_err *e) {
  it_program *p = L->p;
  op->type = m->type;
  op->name = op_name(m);
  op->nparams = (int)m->n_inputs;
  op->params = palloc(p, m->n_inputs * sizeof *op->params);
  if (!op->params) return mlsh_fail(e, NULL, "out of memory");
  for (size_t i = 0; i < m->n_inputs; i++) {
    const CoreML__Specification__MILSpec__Argument *a = m->inputs[i]->value;
    it_param *pr = &op->params[i];
    pr->name = m->inputs[i]->key;
    pr->n = a ? (int)a->n_arguments : 0;
    pr->b = palloc(p, (size_t)pr->n * sizeof *pr->b);
    if (!pr->b) return mlsh_fail(e, NULL, "out of memory");
    for (int j = 0; j < pr->n; j++) {
      const CoreML__Specification__MILSpec__Argument__Binding *bd = a->arguments[j];
      pr->b[j].slot = -1;
      if (bd->binding_case == CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_NAME) {
        int s = find_slot(L, bd->name);
        if (s < 0) return mlsh_fail(e, NULL, "op '%s' (%s, function %s): input '%s' names '%s', which nothing defines before it",
                                    op->name, op->type, fn, pr->name, bd->name);
        pr->b[j].slot = s;
      } else if (bd->binding_case == CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_VALUE) {
        mlsh_err e2;
        it_tensor *t = it_value_decode(bd->value, c, &e2);
        /* an op without a kernel (classify's list of classes) is reported by it_program_check_ops */
        if (!t && (!it_kernel_find(op->type) || strcmp(op->type, "classify") == 0) && strncmp(op->type, "const", 5) != 0)
          continue;
        if (!t) return mlsh_fail(e, NULL, "op '%s' (%s): input '%s': %s", op->name, op->type, pr->name, e2.msg);
        pr->b[j].imm = t;
      } else return mlsh_fail(e, NULL, "op '%s' (%s): input '%s' has an empty binding", op->name, op->type, pr->name);
    }
  }
  op->nblocks = (int)m->n_blocks;
  op->blocks = palloc(p, m->n_blocks * sizeof *op->blocks);
  if (!op->blocks) return mlsh_fail(e, NULL, "out of memory");
  for (size_t i = 0; i < m->n_blocks; i++) {
    op->blocks[i] = palloc(p, sizeof(it_block));
    if (!op->blocks[i] || load_block(L, m->blocks[i], op->blocks[i], c, fn, e) != 0) return -1;
  }
  op->nout = (int)m->n_outputs;
  op->out_slots = palloc(p, m->n_outputs * sizeof(int));
  op->out_types = palloc(p, m->n_outputs * sizeof(it_type));
  if (!op->out_slots || !op->out_types) return mlsh_fail(e, NULL, "out of memory");
  for (size_t i = 0; i < m->n_outputs; i++) {
    it_type_from_mil(m->outputs[i]->type, &op->out_types[i]);
    int s = new_slot(L, m->outputs[i]->name, &op->out_types[i], b, e);
    if (s < 0) return -1;
    op->out_slots[i] = s;
  }
  op->k = it_kernel_find(op->type);
  if (strcmp(op->type, "classify") == 0 && it_classify_bind(p, op, m, e) != 0) return -1;
  if (strcmp(op->type, "const") == 0 || strncmp(op->type, "constexpr_", 10) == 0) {
    op->is_const = 1;
    it_tensor *outs[4] = {0};
    if (it_materialize(op, m, p, c, outs, e) != 0) {
      char why[sizeof e->msg];
      snprintf(why, sizeof why, "%s", e->msg);
      return mlsh_fail(e, NULL, "op '%s' (%s, function %s): %s", op->name, op->type, fn, why);
    }
    for (int i = 0; i < 4; i++) {
      if (i < op->nout) p->consts[op->out_slots[i]] = outs[i];
      else it_unref(outs[i]); /* an op declaring fewer outputs than it makes */
    }
  }
  return 0;
}

/* Slots referenced by op (its params and, recursively, its nested blocks) -> mark[slot] = 1. */
static void mark_uses(const it_op *op, unsigned char *mark) {
  for (int i = 0; i < op->nparams; i++)
    for (int j = 0; j < op->params[i].n; j++)
      if (op->params[i].b[j].slot >= 0) mark[op->params[i].b[j].slot] = 1;
  for (int k = 0; k < op->nblocks; k++) {
    const it_block *b = op->blocks[k];
    for (int i = 0; i < b->nops; i++) mark_uses(&b->ops[i], mark);
    for (int i = 0; i < b->nout; i++) mark[b->out_slots[i]] = 1;
  }
}

static int plan_frees(loader *L, it_block *b, mlsh_err *e) {
  it_program *p = L->p;
  int ns = p->nslots;
  int *last = malloc((size_t)ns * sizeof *last);
  unsigned char *mark = malloc((size_t)ns);
  if (!last || !mark) { free(last); free(mark); return mlsh_fail(e, NULL, "out of memory"); }
  for (int s = 0; s < ns; s++) last[s] = -2;
  for (int i = 0; i < b->nops; i++)
    for (int k = 0; k < b->ops[i].nout; k++) last[b->ops[i].out_slots[k]] = i; /* unused: dies at birth */
  for (int i = 0; i < b->nops; i++) {
    memset(mark, 0, (size_t)ns);
    mark_uses(&b->ops[i], mark);
    for (int s = 0; s < ns; s++)
      if (mark[s] && L->def_block[s] == b) last[s] = i;
  }
  for (int i = 0; i < b->nout; i++) last[b->out_slots[i]] = -2; /* the parent takes them */
  int *cnt = calloc((size_t)b->nops + 1, sizeof *cnt);
  if (!cnt) { free(last); free(mark); return mlsh_fail(e, NULL, "out of memory"); }
  for (int s = 0; s < ns; s++)
    if (last[s] >= 0 && L->def_block[s] == b) cnt[last[s]]++;
  for (int i = 0; i < b->nops; i++) {
    b->ops[i].free_after = palloc(p, (size_t)cnt[i] * sizeof(int));
    b->ops[i].nfree = 0;
  }
  for (int s = 0; s < ns; s++)
    if (last[s] >= 0 && L->def_block[s] == b) {
      it_op *op = &b->ops[last[s]];
      if (op->free_after) op->free_after[op->nfree++] = s;
    }
  free(cnt);
  free(last);
  free(mark);
  return 0;
}

static int load_block(loader *L, const MBlock *mb, it_block *b, mlsh_container *c, const char *fn, mlsh_err *e) {
  it_program *p = L->p;
  b->nin = (int)mb->n_inputs;
  b->in_slots = palloc(p, mb->n_inputs * sizeof(int));
  if (!b->in_slots) return mlsh_fail(e, NULL, "out of memory");
  for (size_t i = 0; i < mb->n_inputs; i++) {
    it_type t;
    it_type_from_mil(mb->inputs[i]->type, &t);
    int s = new_slot(L, mb->inputs[i]->name, &t, b, e);
    if (s < 0) return -1;
    b->in_slots[i] = s;
  }
  b->nops = (int)mb->n_operations;
  b->ops = palloc(p, mb->n_operations * sizeof *b->ops);
  if (!b->ops) return mlsh_fail(e, NULL, "out of memory");
  for (size_t i = 0; i < mb->n_operations; i++)
    if (load_op(L, mb->operations[i], &b->ops[i], b, c, fn, e) != 0) return -1;
  b->nout = (int)mb->n_outputs;
  b->out_slots = palloc(p, mb->n_outputs * sizeof(int));
  if (!b->out_slots) return mlsh_fail(e, NULL, "out of memory");
  for (size_t i = 0; i < mb->n_outputs; i++) {
    int s = find_slot(L, mb->outputs[i]);
    if (s < 0) return mlsh_fail(e, NULL, "function %s: block output '%s' is not defined", fn, mb->outputs[i]);
    b->out_slots[i] = s;
  }
  return plan_frees(L, b, e);
}

static const CoreML__Specification__MILSpec__Function *pick_function(const CoreML__Specification__Model *m, const char **fn,
                                                                      mlsh_err *e) {
  const CoreML__Specification__MILSpec__Program *prog = m->mlprogram;
  const char *want = *fn;
  if (!want && m->description && m->description->defaultfunctionname && *m->description->defaultfunctionname)
    want = m->description->defaultfunctionname;
  if (!want) want = "main";
  for (size_t i = 0; i < prog->n_functions; i++)
    if (strcmp(prog->functions[i]->key, want) == 0) {
      *fn = prog->functions[i]->key;
      return prog->functions[i]->value;
    }
  if (!*fn && prog->n_functions == 1) {
    *fn = prog->functions[0]->key;
    return prog->functions[0]->value;
  }
  char names[512] = "";
  size_t k = 0;
  for (size_t i = 0; i < prog->n_functions && k < sizeof names - 1; i++)
    k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", prog->functions[i]->key);
  mlsh_fail(e, NULL, "no function '%s' (the program has: %s)", want, names);
  return NULL;
}

int it_program_load(const CoreML__Specification__Model *model, mlsh_container *c, const char *fn, it_precision prec,
                    it_program **out, mlsh_err *e) {
  *out = NULL;
  switch (model->type_case) {
  case CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK_CLASSIFIER:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_NEURAL_NETWORK_REGRESSOR: return it_nn_load(model, c, prec, out, e);
  case CORE_ML__SPECIFICATION__MODEL__TYPE_TREE_ENSEMBLE_CLASSIFIER:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_TREE_ENSEMBLE_REGRESSOR:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_GLM_CLASSIFIER:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_GLM_REGRESSOR: return it_classic_load(model, prec, out, e);
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE_CLASSIFIER:
  case CORE_ML__SPECIFICATION__MODEL__TYPE_PIPELINE_REGRESSOR: return it_pipeline_load(model, c, prec, out, e);
  default: break;
  }
  if (model->type_case != CORE_ML__SPECIFICATION__MODEL__TYPE_ML_PROGRAM || !model->mlprogram)
    return mlsh_fail(e, NULL, "not a model type the interpreter runs (it runs mlProgram, NeuralNetwork, tree ensemble and GLM models)");
  const CoreML__Specification__MILSpec__Function *f = pick_function(model, &fn, e);
  if (!f) return -1;
  const MBlock *mb = NULL;
  for (size_t i = 0; i < f->n_block_specializations; i++)
    if (f->opset && strcmp(f->block_specializations[i]->key, f->opset) == 0) mb = f->block_specializations[i]->value;
  if (!mb && f->n_block_specializations == 1) mb = f->block_specializations[0]->value;
  if (!mb) return mlsh_fail(e, NULL, "function %s has no block for its opset '%s'", fn, f->opset ? f->opset : "");
  it_program *p = calloc(1, sizeof *p);
  if (!p) return mlsh_fail(e, NULL, "out of memory");
  p->prec = prec;
  p->function = strdup(fn);
  p->opset = strdup(f->opset ? f->opset : "");
  loader L = {p, NULL, 0, 0, NULL};
  int rc = -1;
  if (!p->function || !p->opset || grow(&L, e) != 0) goto done;
  p->main = palloc(p, sizeof *p->main);
  p->nin = (int)f->n_inputs;
  p->inputs = palloc(p, f->n_inputs * sizeof *p->inputs);
  if (!p->main || !p->inputs) { mlsh_fail(e, NULL, "out of memory"); goto done; }
  for (size_t i = 0; i < f->n_inputs; i++) {
    it_io *io = &p->inputs[i];
    io->name = f->inputs[i]->name;
    it_type_from_mil(f->inputs[i]->type, &io->type);
    if ((io->slot = new_slot(&L, io->name, &io->type, p->main, e)) < 0) goto done;
  }
  if (load_block(&L, mb, p->main, c, fn, e) != 0) goto done;
  p->nout = p->main->nout;
  p->outputs = palloc(p, (size_t)p->nout * sizeof *p->outputs);
  if (!p->outputs) { mlsh_fail(e, NULL, "out of memory"); goto done; }
  for (int i = 0; i < p->nout; i++) {
    p->outputs[i].slot = p->main->out_slots[i];
    p->outputs[i].name = p->slot_names[p->outputs[i].slot];
    p->outputs[i].type = p->slot_types[p->outputs[i].slot];
  }
  rc = 0;
done:
  free(L.tab);
  free(L.def_block);
  if (rc != 0) it_program_free(p);
  else *out = p;
  return rc;
}

static void free_imms(it_block *b) {
  if (!b || !b->ops) return;
  for (int i = 0; i < b->nops; i++) {
    it_op *op = &b->ops[i];
    for (int j = 0; op->params && j < op->nparams; j++)
      for (int k = 0; op->params[j].b && k < op->params[j].n; k++) it_unref(op->params[j].b[k].imm);
    for (int k = 0; op->blocks && k < op->nblocks; k++) free_imms(op->blocks[k]);
  }
}

void it_program_free(it_program *p) {
  if (!p) return;
  free_imms(p->main);
  for (int s = 0; s < p->nslots; s++) it_unref(p->consts[s]);
  for (size_t i = 0; i < p->nallocs; i++) free(p->allocs[i]);
  free(p->allocs);
  free(p->slot_names);
  free(p->slot_types);
  free(p->consts);
  free(p->function);
  free(p->opset);
  free(p);
}

static int check_block(const it_block *b, const char *model, const char *fn, mlsh_err *e) {
  for (int i = 0; i < b->nops; i++) {
    const it_op *op = &b->ops[i];
    if (!op->is_const && !op->k)
      return mlsh_fail(e, NULL, "%s: op %s (type %s, function %s) is not supported by the interpreter", model, op->name,
                       op->type, fn);
    for (int k = 0; k < op->nblocks; k++)
      if (check_block(op->blocks[k], model, fn, e) != 0) return -1;
  }
  return 0;
}

int it_program_check_ops(const it_program *p, const char *model_name, mlsh_err *e) {
  return check_block(p->main, model_name, p->function, e);
}
