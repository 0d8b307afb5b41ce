/* ops.h — the kernel interface. A kernel reads its op's parameters by MIL name (it_arg*),
 * allocates outputs with it_out (dtype from the op's declared output type, or given), and
 * returns 0 or it_fail(...). Kernels are grouped by family in ops_*.c, each exporting a table
 * of {type, fn} ended by {NULL, NULL}; it_kernel_find looks a type up in all of them. */
#ifndef MLSH_IT_OPS_H
#define MLSH_IT_OPS_H
#include "exec.h"

#define IT_MAX_OUT 16

typedef struct it_ctx {
  it_env *env;
  const it_op *op;
  it_tensor *out[IT_MAX_OUT];
} it_ctx;

typedef int (*it_kernel_fn)(it_ctx *c);
typedef struct it_kernel_def {
  const char *type;
  it_kernel_fn fn;
} it_kernel_def;

const it_kernel_def *it_kernel_find(const char *type);
/* Whether op `type` may take list values as inputs (list ops, cond, while_loop, identity). */
int it_kernel_takes_lists(const char *type);
/* Every supported op type, sorted, NULL-terminated (static storage). */
const char *const *it_kernel_names(size_t *n);

int it_fail(it_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parameters. it_arg: first binding of `name` or NULL. Scalars read element 0. */
it_tensor *it_arg(it_ctx *c, const char *name);
it_tensor *it_arg_req(it_ctx *c, const char *name); /* fails (NULL + error) when absent */
int it_arg_count(it_ctx *c, const char *name);
it_tensor *it_arg_at(it_ctx *c, const char *name, int i);
int64_t it_arg_int(it_ctx *c, const char *name, int64_t def);
double it_arg_float(it_ctx *c, const char *name, double def);
int it_arg_bool(it_ctx *c, const char *name, int def);
const char *it_arg_str(it_ctx *c, const char *name, const char *def);
/* An int vector parameter into out (at most max); returns its length, or -1 when absent. */
int it_arg_ints(it_ctx *c, const char *name, int64_t *out, int max);
/* Allocate output idx with the declared dtype (dt = MLSH_DT_INVALID) or dt. */
it_tensor *it_out(it_ctx *c, int idx, mlsh_dtype dt, int rank, const int64_t *shape);
/* The same for kernels that compute floats: the declared dtype must be fp16/fp32/fp64 (fp32 when
 * undeclared); anything else fails with a message instead of a float buffer of the wrong size. */
it_tensor *it_out_f(it_ctx *c, int idx, int rank, const int64_t *shape);
/* Output idx is an existing tensor (a new reference is taken). */
void it_out_set(it_ctx *c, int idx, it_tensor *t);
mlsh_dtype it_out_dtype(it_ctx *c, int idx);
/* Normalise a possibly negative axis against rank; -1 + error when out of range. */
int it_axis(it_ctx *c, int64_t axis, int rank);

/* Shared helpers for kernels. */
size_t it_inner(const it_tensor *t, int from); /* product of dims [from, rank) */
size_t it_outer(const it_tensor *t, int to);   /* product of dims [0, to) */
/* Broadcast shapes a and b (numpy rules) into out; -1 when incompatible. */
int it_broadcast_shape(int ra, const int64_t *a, int rb, const int64_t *b, int *ro, int64_t *out);

/* The kernel families. */
extern const it_kernel_def it_ops_elementwise[], it_ops_activation[], it_ops_linalg[], it_ops_conv[],
    it_ops_pool[], it_ops_norm[], it_ops_reduce[], it_ops_shape[], it_ops_index[], it_ops_rnn[],
    it_ops_control[], it_ops_image[], it_ops_extra[], it_ops_list[], it_ops_quant[], it_ops_random[], it_ops_detect[],
    it_ops_einsum[], it_ops_layout[], it_ops_sample[];
/* classify (nn_classify.c; program.c binds its classes literal) */
extern const it_kernel_def it_ops_classify[];
#endif
