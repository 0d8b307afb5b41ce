/* program.h — an ML program function prepared for execution. Loading resolves every SSA name
 * to a slot, materialises const and constexpr_* ops once (fp32 weights are borrowed from the
 * mmap'd weight.bin; the rest decoded), binds every other op to its kernel, and records after
 * which op each value dies so the executor frees it at its last use. Blocks nest (cond,
 * while_loop bodies); a value used inside a nested block counts as used by the op holding it.
 * Nothing executes here; unsupported ops are reported by name before any run starts. */
#ifndef MLSH_IT_PROGRAM_H
#define MLSH_IT_PROGRAM_H
#include "container.h"
#include "mil.pb-c.h"
#include "coreml.pb-c.h"
#include "tensor.h"

struct it_kernel_def;

typedef struct {
  int slot;         /* >= 0: an SSA value */
  it_tensor *imm;   /* else an immediate (owned by the program) */
} it_binding;

typedef struct {
  const char *name;
  int n;
  it_binding *b;
} it_param;

typedef struct it_block it_block;

typedef struct {
  mlsh_dtype dt;    /* MLSH_DT_INVALID for non-tensor (list/state/string) */
  int rank;         /* -1 unknown */
  int64_t shape[IT_MAX_RANK]; /* -1 for unknown dimensions */
  int is_state;
} it_type;

typedef struct {
  const char *type, *name;
  const struct it_kernel_def *k;
  int nparams;
  it_param *params;
  int nout;
  int *out_slots;
  it_type *out_types;
  int nblocks;
  it_block **blocks;
  int nfree;
  int *free_after;  /* slots whose last use is this op */
  int is_const;     /* const / constexpr: already materialised */
  const void *aux;  /* per-op data of the non-MIL front ends (NN layer wrappers, tree ensembles) */
} it_op;

struct it_block {
  int nin;
  int *in_slots;
  int nops;
  it_op *ops;
  int nout;
  int *out_slots;
};

typedef struct {
  const char *name;
  int slot;
  it_type type;
} it_io;

typedef enum { IT_PREC_MODEL, IT_PREC_FP32, IT_PREC_FP16 } it_precision;

typedef struct it_program {
  char *function;
  char *opset;
  int nslots;
  char **slot_names;
  it_type *slot_types;
  it_tensor **consts;   /* per slot: a materialised const (program-owned), else NULL */
  it_block *main;
  int nin, nout;
  it_io *inputs, *outputs;
  it_precision prec;
  /* everything allocated at load, freed at once */
  void **allocs;
  size_t nallocs, capallocs;
} it_program;

/* Load function `fn` (NULL = the model's default / "main") of an ML program model. */
int it_program_load(const CoreML__Specification__Model *model, mlsh_container *c, const char *fn, it_precision prec,
                    it_program **out, mlsh_err *e);
void it_program_free(it_program *p);
/* Zeroed memory owned by the program (freed with it). */
void *it_program_alloc(it_program *p, size_t size);
/* The other model types run through the same executor: NeuralNetwork (nn_program.c) and tree
 * ensemble / GLM models (classic.c) are lowered to programs of kernels. */
int it_nn_load(const CoreML__Specification__Model *model, mlsh_container *c, it_precision prec, it_program **out,
               mlsh_err *e);
int it_classic_load(const CoreML__Specification__Model *model, it_precision prec, it_program **out, mlsh_err *e);
/* Pipelines (pipeline.c): every sub-model lowered in order into one program; ML program
 * sub-models read their weights through the container c (NULL refuses them). */
int it_pipeline_load(const CoreML__Specification__Model *model, mlsh_container *c, it_precision prec, it_program **out,
                     mlsh_err *e);
/* Every op type the program uses that has no kernel: writes the first as a full message. */
int it_program_check_ops(const it_program *p, const char *model_name, mlsh_err *e);
/* Slot of a named value, -1 if none. */
int it_program_slot(const it_program *p, const char *name);
/* Decode a MIL Value (immediate or blob) into a tensor. */
it_tensor *it_value_decode(const CoreML__Specification__MILSpec__Value *v, mlsh_container *c, mlsh_err *e);
/* A MIL ValueType as it_type. */
void it_type_from_mil(const CoreML__Specification__MILSpec__ValueType *vt, it_type *t);
mlsh_dtype it_dtype_from_mil(int mil);
#endif
