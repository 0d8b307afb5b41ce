/* nn_build.h — a program under construction, for the front ends that lower other model types
 * (NeuralNetwork layers, tree ensembles, GLMs) to the interpreter's kernels. Values are named
 * slots (a later definition of a name shadows an earlier one, as NN blobs may be redefined);
 * ops are appended to one block, each bound to a kernel with its parameters given by MIL name:
 * a slot, or an immediate tensor owned by the program. nn_finish plans the frees (each value
 * dies after its last use; a value used or defined inside an op's nested blocks counts as used
 * by that op) and hands the program over. Every failure sets the error. */
#ifndef MLSH_IT_NN_BUILD_H
#define MLSH_IT_NN_BUILD_H
#include "ops.h"
#include "nn_wire.h"

typedef struct nn_b {
  it_program *p;
  mlsh_err *e;
  it_op *ops;
  int nops, capops, capslots;
  it_io *ins;
  int nin;
  int rank5;            /* legacy rank-5 array mapping (arrayInputShapeMapping = RANK5) */
  const char *layer;    /* the layer being lowered (errors) */
  int depth;            /* branch / loop sub-networks being lowered (nn_flow.c) */
} nn_b;

#define NN_MAX_PARAMS 16

int nn_begin(nn_b *B, it_precision prec, mlsh_err *e);
/* Plan frees, set the program's outputs (slots of the given names) and return it (B is spent). */
int nn_finish(nn_b *B, const char *const *outputs, int nout, it_program **out);
void nn_abort(nn_b *B);

int nn_find(nn_b *B, const char *name);     /* latest slot of a name, -1 */
int nn_use(nn_b *B, const char *name);      /* a defined blob or -1 + error naming the layer */
int nn_def(nn_b *B, const char *name);      /* a new slot (fp32, unknown shape) */
char *nn_str(nn_b *B, const char *a, const char *b); /* "a" or "a/b", program-owned */
int nn_input(nn_b *B, const char *name, mlsh_dtype dt, int rank, const int64_t *shape);

/* A new op of kernel k (NULL: fails) named name (program-owned or spec-owned), type the layer
 * type. The pointer is valid until the next nn_op. */
it_op *nn_op(nn_b *B, const char *type, const char *name, const it_kernel_def *k);
const it_kernel_def *nn_k(const char *mil_type); /* a registered kernel */
int nn_arg(nn_b *B, it_op *op, const char *param, int slot);
int nn_args(nn_b *B, it_op *op, const char *param, const int *slots, int n);
int nn_imm(nn_b *B, it_op *op, const char *param, it_tensor *t); /* takes the reference; NULL fails */
int nn_immf(nn_b *B, it_op *op, const char *param, double v);
int nn_immi(nn_b *B, it_op *op, const char *param, int64_t v);
int nn_immb(nn_b *B, it_op *op, const char *param, int v);
int nn_immv(nn_b *B, it_op *op, const char *param, const int64_t *v, int n); /* int32 vector */
int nn_imms(nn_b *B, it_op *op, const char *param, const char *s);
/* Output idx of op defines blob `name` (a new slot); returns the slot or -1. */
int nn_out(nn_b *B, it_op *op, const char *name);

/* Tensors. */
it_tensor *nn_borrow(nn_b *B, float *data, int rank, const int64_t *shape);
it_tensor *nn_floats(nn_b *B, const double *v, int rank, const int64_t *shape);
/* Weights of a WeightParams: floatValue (borrowed), float16Value, rawValue (fp32), or 8-bit
 * linear / look-up-table quantized; `count` values are required (error naming `what`). */
it_tensor *nn_weights(nn_b *B, const CoreML__Specification__WeightParams *w, size_t count, int rank,
                      const int64_t *shape, const char *what);
/* The same for a WeightParams that is an undeclared sub-message (raw bytes). */
it_tensor *nn_weights_raw(nn_b *B, nnw_msg m, size_t count, int rank, const int64_t *shape, const char *what);
int nn_fail(nn_b *B, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
