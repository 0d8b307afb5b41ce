/* nn_build.c — building programs for the non-MIL front ends (see nn_build.h). */
#include "nn_build.h"
#include "constexpr.h"
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int nn_fail(nn_b *B, const char *fmt, ...) {
  char why[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (B->layer) return mlsh_fail(B->e, NULL, "layer %s: %s", B->layer, why);
  return mlsh_fail(B->e, NULL, "%s", why);
}

int nn_begin(nn_b *B, it_precision prec, mlsh_err *e) {
  memset(B, 0, sizeof *B);
  B->e = e;
  it_program *p = calloc(1, sizeof *p);
  if (!p) return mlsh_fail(e, NULL, "out of memory");
  B->p = p;
  p->prec = prec;
  p->function = strdup("main");
  p->opset = strdup("");
  p->main = it_program_alloc(p, sizeof *p->main);
  if (!p->function || !p->opset || !p->main) return mlsh_fail(e, NULL, "out of memory");
  return 0;
}

void nn_abort(nn_b *B) {
  if (B->p) {
    if (B->ops) { /* so the program's free releases the immediates */
      B->p->main->ops = B->ops;
      B->p->main->nops = B->nops;
    }
    it_program_free(B->p);
  }
  free(B->ops);
  free(B->ins);
  B->ops = NULL;
  B->ins = NULL;
  B->p = NULL;
}

int nn_find(nn_b *B, const char *name) {
  for (int s = B->p->nslots - 1; s >= 0; s--)
    if (strcmp(B->p->slot_names[s], name) == 0) return s;
  return -1;
}

int nn_use(nn_b *B, const char *name) {
  int s = nn_find(B, name);
  if (s < 0) nn_fail(B, "input '%s' is not produced by any earlier layer or model input", name);
  return s;
}

int nn_def(nn_b *B, const char *name) {
  it_program *p = B->p;
  if (p->nslots == B->capslots) {
    int cap = B->capslots ? B->capslots * 2 : 64;
    char **n = realloc(p->slot_names, (size_t)cap * sizeof *n);
    if (n) p->slot_names = n;
    it_type *t = realloc(p->slot_types, (size_t)cap * sizeof *t);
    if (t) p->slot_types = t;
    it_tensor **c = realloc(p->consts, (size_t)cap * sizeof *c);
    if (c) p->consts = c;
    if (!n || !t || !c) return mlsh_fail(B->e, NULL, "out of memory");
    B->capslots = cap;
  }
  int s = p->nslots++;
  p->slot_names[s] = (char *)name;
  memset(&p->slot_types[s], 0, sizeof p->slot_types[s]);
  p->slot_types[s].dt = MLSH_DT_FP32;
  p->slot_types[s].rank = -1;
  p->consts[s] = NULL;
  return s;
}

char *nn_str(nn_b *B, const char *a, const char *b) {
  size_t la = strlen(a), lb = b ? strlen(b) + 1 : 0;
  char *s = it_program_alloc(B->p, la + lb + 1);
  if (!s) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  memcpy(s, a, la);
  if (b) { s[la] = '/'; memcpy(s + la + 1, b, lb - 1); }
  return s;
}

int nn_input(nn_b *B, const char *name, mlsh_dtype dt, int rank, const int64_t *shape) {
  it_program *p = B->p;
  it_io *io = realloc(B->ins, (size_t)(B->nin + 1) * sizeof *io);
  if (!io) return mlsh_fail(B->e, NULL, "out of memory");
  B->ins = io; /* moved into program-owned memory by nn_finish */
  int s = nn_def(B, name);
  if (s < 0) return -1;
  it_io *x = &B->ins[B->nin++];
  memset(x, 0, sizeof *x);
  x->name = name;
  x->slot = s;
  x->type.dt = dt;
  x->type.rank = rank;
  for (int i = 0; i < rank && i < IT_MAX_RANK; i++) x->type.shape[i] = shape[i];
  p->slot_types[s] = x->type;
  return s;
}

const it_kernel_def *nn_k(const char *mil_type) { return it_kernel_find(mil_type); }

it_op *nn_op(nn_b *B, const char *type, const char *name, const it_kernel_def *k) {
  if (!k) return nn_fail(B, "no kernel for %s", type), NULL;
  if (B->nops == B->capops) {
    int cap = B->capops ? B->capops * 2 : 64;
    it_op *o = realloc(B->ops, (size_t)cap * sizeof *o);
    if (!o) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
    B->ops = o;
    B->capops = cap;
  }
  it_op *op = &B->ops[B->nops];
  memset(op, 0, sizeof *op);
  op->params = it_program_alloc(B->p, NN_MAX_PARAMS * sizeof *op->params);
  op->out_slots = it_program_alloc(B->p, IT_MAX_OUT * sizeof(int));
  op->out_types = it_program_alloc(B->p, IT_MAX_OUT * sizeof(it_type));
  if (!op->params || !op->out_slots || !op->out_types) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  B->nops++;
  op->type = type;
  op->name = name;
  op->k = k;
  return op;
}

static it_param *param(nn_b *B, it_op *op, const char *name, int n) {
  if (op->nparams == NN_MAX_PARAMS) return nn_fail(B, "too many parameters"), NULL;
  it_param *pr = &op->params[op->nparams];
  pr->b = it_program_alloc(B->p, (size_t)(n > 0 ? n : 1) * sizeof *pr->b);
  if (!pr->b) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  pr->name = name;
  pr->n = n;
  op->nparams++;
  return pr;
}

int nn_args(nn_b *B, it_op *op, const char *name, const int *slots, int n) {
  for (int i = 0; i < n; i++)
    if (slots[i] < 0) return -1;
  it_param *pr = param(B, op, name, n);
  if (!pr) return -1;
  for (int i = 0; i < n; i++) pr->b[i].slot = slots[i];
  return 0;
}

int nn_arg(nn_b *B, it_op *op, const char *name, int slot) { return nn_args(B, op, name, &slot, 1); }

int nn_imm(nn_b *B, it_op *op, const char *name, it_tensor *t) {
  if (!t) return -1;
  it_param *pr = param(B, op, name, 1);
  if (!pr) { it_unref(t); return -1; }
  pr->b[0].slot = -1;
  pr->b[0].imm = t;
  return 0;
}

int nn_immf(nn_b *B, it_op *op, const char *name, double v) { return nn_imm(B, op, name, it_scalar_f(MLSH_DT_FP32, v, B->e)); }
int nn_immi(nn_b *B, it_op *op, const char *name, int64_t v) { return nn_imm(B, op, name, it_scalar_f(MLSH_DT_INT32, (double)v, B->e)); }
int nn_immb(nn_b *B, it_op *op, const char *name, int v) { return nn_imm(B, op, name, it_scalar_f(MLSH_DT_BOOL, v != 0, B->e)); }

int nn_immv(nn_b *B, it_op *op, const char *name, const int64_t *v, int n) {
  int64_t sh[1] = {n};
  it_tensor *t = it_tensor_new(MLSH_DT_INT32, 1, sh, B->e);
  if (!t) return -1;
  if (n) memcpy(t->data, v, (size_t)n * sizeof *v);
  return nn_imm(B, op, name, t);
}

int nn_imms(nn_b *B, it_op *op, const char *name, const char *s) {
  it_tensor *t = it_tensor_new(MLSH_DT_INVALID, 0, NULL, B->e);
  if (!t) return -1;
  if (!(((char **)t->data)[0] = strdup(s))) { it_unref(t); return mlsh_fail(B->e, NULL, "out of memory"); }
  return nn_imm(B, op, name, t);
}

int nn_out(nn_b *B, it_op *op, const char *name) {
  if (op->nout == IT_MAX_OUT) return nn_fail(B, "too many outputs");
  int s = nn_def(B, name);
  if (s < 0) return -1;
  op->out_types[op->nout].dt = MLSH_DT_FP32;
  op->out_types[op->nout].rank = -1;
  op->out_slots[op->nout++] = s;
  return s;
}

it_tensor *nn_borrow(nn_b *B, float *data, int rank, const int64_t *shape) {
  it_tensor *t = calloc(1, sizeof *t);
  if (!t) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  t->dt = MLSH_DT_FP32;
  t->st = IT_F32;
  t->rank = rank;
  memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
  t->n = it_numel(rank, shape);
  t->data = data;
  t->borrowed = 1;
  t->refs = 1;
  return t;
}

it_tensor *nn_floats(nn_b *B, const double *v, int rank, const int64_t *shape) {
  it_tensor *t = it_tensor_new(MLSH_DT_FP32, rank, shape, B->e);
  if (!t) return NULL;
  for (size_t i = 0; i < t->n; i++) ((float *)t->data)[i] = (float)v[i];
  return t;
}

static float half(uint16_t h) {
  uint32_t s = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 31, m = h & 1023, u;
  if (ex == 0) {
    float f = (float)m / 16777216.0f; /* subnormal: m * 2^-24 */
    return s ? -f : f;
  }
  if (ex == 31) u = s | 0x7f800000u | (m << 13);
  else u = s | ((ex + 112) << 23) | (m << 13);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Quantized WeightParams: the codes decoded with the dtype table, then the one decompressor's
 * NeuralNetwork linear form (core/constexpr.c, as mlsh.model.weights uses it) or a table lookup
 * (a code past the end of the table reads 0, as in mlsh.model.weights). */
static it_tensor *dequant(nn_b *B, const CoreML__Specification__WeightParams *w, size_t count, int rank,
                          const int64_t *shape, const char *what) {
  const CoreML__Specification__QuantizationParams *q = w->quantization;
  unsigned nbits = q->numberofbits;
  if (nbits != 1 && nbits != 2 && nbits != 3 && nbits != 4 && nbits != 6 && nbits != 8)
    return nn_fail(B, "%s: %u-bit quantized weights are not supported (1, 2, 3, 4, 6 or 8 bits are)", what, nbits), NULL;
  it_tensor *t = it_tensor_new(MLSH_DT_FP32, rank, shape, B->e);
  float *codes = t ? malloc((count ? count : 1) * sizeof *codes) : NULL;
  if (!codes) {
    it_unref(t);
    return t ? nn_fail(B, "%s: out of memory", what), NULL : NULL;
  }
  float *o = t->data;
  int ok = 0;
  mlsh_err e2;
  if (mlsh_cx_nn_codes(w->rawvalue.data, w->rawvalue.len, nbits, count, codes, &e2) != 0) {
    free(codes);
    it_unref(t);
    return nn_fail(B, "%s: %s", what, e2.msg), NULL;
  }
  if (q->quantization_type_case == CORE_ML__SPECIFICATION__QUANTIZATION_PARAMS__QUANTIZATION_TYPE_LINEAR_QUANTIZATION) {
    const CoreML__Specification__QuantizationParams__LinearQuantizationParams *l = q->linearquantization;
    mlsh_cx_val cv = {.dt = MLSH_DT_FP32, .rank = 1, .shape = {(int64_t)count}, .n = count, .v = codes};
    if (mlsh_cx_nn_linear(&cv, l->scale, l->n_scale, l->bias, l->n_bias, o, &e2) == 0) ok = 1;
    else nn_fail(B, "%s: %s", what, e2.msg);
  } else if (q->quantization_type_case ==
             CORE_ML__SPECIFICATION__QUANTIZATION_PARAMS__QUANTIZATION_TYPE_LOOKUP_TABLE_QUANTIZATION) {
    const CoreML__Specification__QuantizationParams__LookUpTableQuantizationParams *lt = q->lookuptablequantization;
    for (size_t i = 0; i < count; i++) {
      size_t c = (size_t)codes[i];
      o[i] = c < lt->n_floatvalue ? lt->floatvalue[c] : 0.0f;
    }
    ok = 1;
  } else nn_fail(B, "%s: this weight quantization is not supported by the interpreter", what);
  free(codes);
  if (ok) return t;
  it_unref(t);
  return NULL;
}

/* int8RawValue (int8DynamicQuantize layers): value = int8 * scale, one linear scale and no bias.
 * The layer's run-time quantization of its input is not modelled: this is its float reference. */
static it_tensor *int8_weights(nn_b *B, const CoreML__Specification__WeightParams *w, size_t count, int rank,
                               const int64_t *shape, const char *what) {
  const CoreML__Specification__QuantizationParams *q = w->quantization;
  const CoreML__Specification__QuantizationParams__LinearQuantizationParams *lq =
      q && q->quantization_type_case == CORE_ML__SPECIFICATION__QUANTIZATION_PARAMS__QUANTIZATION_TYPE_LINEAR_QUANTIZATION ? q->linearquantization : NULL;
  if (!lq || lq->n_scale != 1 || lq->n_bias != 0)
    return nn_fail(B, "%s: int8RawValue needs linear quantization with one scale and no bias", what), NULL;
  if (w->int8rawvalue.len != count) return nn_fail(B, "%s: %zu int8 values, %zu expected", what, w->int8rawvalue.len, count), NULL;
  it_tensor *t = it_tensor_new(MLSH_DT_FP32, rank, shape, B->e);
  if (!t) return NULL;
  for (size_t i = 0; i < count; i++) ((float *)t->data)[i] = (float)((int8_t)w->int8rawvalue.data[i] * (double)lq->scale[0]);
  return t;
}

it_tensor *nn_weights(nn_b *B, const CoreML__Specification__WeightParams *w, size_t count, int rank,
                      const int64_t *shape, const char *what) {
  if (!w) return nn_fail(B, "%s: weights are missing", what), NULL;
  if (it_numel(rank, shape) != count) return nn_fail(B, "%s: bad weight shape", what), NULL;
  int fp16 = B->p->prec == IT_PREC_FP16;
  it_tensor *t = NULL;
  if (w->int8rawvalue.len && !w->rawvalue.len) t = int8_weights(B, w, count, rank, shape, what);
  else if (w->quantization) t = dequant(B, w, count, rank, shape, what);
  else if (w->n_floatvalue) {
    if (w->n_floatvalue != count) return nn_fail(B, "%s: %zu values, %zu expected", what, w->n_floatvalue, count), NULL;
    if (!fp16) return nn_borrow(B, w->floatvalue, rank, shape);
    if ((t = it_tensor_new(MLSH_DT_FP32, rank, shape, B->e))) memcpy(t->data, w->floatvalue, count * sizeof(float));
  } else if (w->float16value.len) {
    if (w->float16value.len != 2 * count) return nn_fail(B, "%s: %zu fp16 bytes, %zu values expected", what, w->float16value.len, count), NULL;
    if ((t = it_tensor_new(MLSH_DT_FP32, rank, shape, B->e)))
      for (size_t i = 0; i < count; i++)
        ((float *)t->data)[i] = half((uint16_t)(w->float16value.data[2 * i] | w->float16value.data[2 * i + 1] << 8));
  } else if (w->rawvalue.len) {
    if (w->rawvalue.len != 4 * count) return nn_fail(B, "%s: %zu raw bytes, %zu fp32 values expected", what, w->rawvalue.len, count), NULL;
    if ((t = it_tensor_new(MLSH_DT_FP32, rank, shape, B->e))) memcpy(t->data, w->rawvalue.data, 4 * count);
  } else if (count == 0) {
    t = it_tensor_new(MLSH_DT_FP32, rank, shape, B->e);
  } else return nn_fail(B, "%s: no weight values (%zu expected)", what, count), NULL;
  if (t && fp16) it_round_fp16(t->data, t->n);
  return t;
}

it_tensor *nn_weights_raw(nn_b *B, nnw_msg m, size_t count, int rank, const int64_t *shape, const char *what) {
  if (m.m) return nn_weights(B, (const CoreML__Specification__WeightParams *)m.m, count, rank, shape, what);
  CoreML__Specification__WeightParams *w =
      (void *)protobuf_c_message_unpack(&core_ml__specification__weight_params__descriptor, NULL, m.n, m.p);
  if (!w) return nn_fail(B, "%s: malformed WeightParams", what), NULL;
  it_tensor *t = nn_weights(B, w, count, rank, shape, what);
  if (t && t->borrowed) { /* the unpacked message goes away: copy */
    it_tensor *c = it_convert(t, MLSH_DT_FP32, B->e);
    it_unref(t);
    t = c;
  }
  protobuf_c_message_free_unpacked(&w->base, NULL);
  return t;
}

/* Plan frees: a slot dies after the last op that reads it (program outputs never). */
/* Every slot op (and the ops of its nested blocks) defines or reads: last[slot] = i. */
static void mark_uses(const it_op *op, int *last, int i) {
  for (int k = 0; k < op->nout; k++) last[op->out_slots[k]] = i;
  for (int j = 0; j < op->nparams; j++)
    for (int k = 0; k < op->params[j].n; k++)
      if (op->params[j].b[k].slot >= 0) last[op->params[j].b[k].slot] = i;
  for (int k = 0; k < op->nblocks; k++)
    for (int m = 0; op->blocks[k] && m < op->blocks[k]->nops; m++) mark_uses(&op->blocks[k]->ops[m], last, i);
}

static int plan(nn_b *B) {
  it_program *p = B->p;
  it_block *b = p->main;
  int ns = p->nslots;
  int *last = malloc((size_t)(ns ? ns : 1) * sizeof *last), *cnt = calloc((size_t)b->nops + 1, sizeof *cnt);
  if (!last || !cnt) { free(last); free(cnt); return mlsh_fail(B->e, NULL, "out of memory"); }
  for (int s = 0; s < ns; s++) last[s] = -1;
  for (int i = 0; i < b->nops; i++) mark_uses(&b->ops[i], last, i);
  for (int j = 0; j < p->nout; j++) last[p->outputs[j].slot] = -1;
  for (int s = 0; s < ns; s++)
    if (last[s] >= 0) cnt[last[s]]++;
  for (int i = 0; i < b->nops; i++) {
    b->ops[i].free_after = it_program_alloc(p, (size_t)cnt[i] * sizeof(int) + 1);
    if (!b->ops[i].free_after) { free(last); free(cnt); return mlsh_fail(B->e, NULL, "out of memory"); }
  }
  for (int s = 0; s < ns; s++)
    if (last[s] >= 0) {
      it_op *op = &b->ops[last[s]];
      op->free_after[op->nfree++] = s;
    }
  free(last);
  free(cnt);
  return 0;
}

int nn_finish(nn_b *B, const char *const *outputs, int nout, it_program **out) {
  it_program *p = B->p;
  it_block *b = p->main;
  b->ops = it_program_alloc(p, (size_t)(B->nops + 1) * sizeof *b->ops);
  it_io *ins = it_program_alloc(p, (size_t)(B->nin + 1) * sizeof *ins);
  p->outputs = it_program_alloc(p, (size_t)(nout + 1) * sizeof *p->outputs);
  if (!b->ops || !ins || !p->outputs) { mlsh_fail(B->e, NULL, "out of memory"); nn_abort(B); return -1; }
  if (B->nops) memcpy(b->ops, B->ops, (size_t)B->nops * sizeof *b->ops);
  b->nops = B->nops;
  free(B->ops);
  B->ops = NULL;
  if (B->nin) memcpy(ins, B->ins, (size_t)B->nin * sizeof *ins);
  free(B->ins);
  B->ins = NULL;
  p->inputs = ins;
  p->nin = B->nin;
  b->nin = 0;
  for (int j = 0; j < nout; j++) {
    int s = nn_find(B, outputs[j]);
    if (s < 0) { mlsh_fail(B->e, NULL, "output '%s' is not produced by any layer", outputs[j]); nn_abort(B); return -1; }
    p->outputs[j].name = outputs[j];
    p->outputs[j].slot = s;
    p->outputs[j].type = p->slot_types[s];
  }
  p->nout = nout;
  b->nout = nout;
  b->out_slots = it_program_alloc(p, (size_t)(nout + 1) * sizeof(int));
  if (!b->out_slots) { mlsh_fail(B->e, NULL, "out of memory"); nn_abort(B); return -1; }
  for (int j = 0; j < nout; j++) b->out_slots[j] = p->outputs[j].slot;
  if (plan(B) != 0) { nn_abort(B); return -1; }
  *out = p;
  B->p = NULL;
  return 0;
}
