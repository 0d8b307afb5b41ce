/* exec.h — executing a loaded program. The environment holds one tensor per slot; a block runs
 * its ops in order, each op's outputs are rounded to fp16 when the precision says so, checked
 * for non-finite values (and, in fp32, for values beyond the fp16 range), handed to the observer
 * (trace) and the op's dead inputs are released. Errors name the op.
 * Fusion: a conv or linear whose only reader is the next op, an activation (act.h) that is its
 * value's last use, gets that activation in env->fuse while its kernel runs; a kernel that
 * applies it in its last store sets `applied`, and the activation op then only hands the tensor
 * on (its own output, checked and freed as usual). Never under an observer (--trace sees every
 * op's own output) nor when outputs are rounded to fp16 (fused and unfused would round
 * differently); the non-finite / fp16-range check still sees the conv's values before the
 * activation, through the kernel's scan. Results are bit-identical to the unfused ops. */
#ifndef MLSH_IT_EXEC_H
#define MLSH_IT_EXEC_H
#include "act.h"
#include "program.h"

typedef void (*it_observer)(void *ud, const it_op *op, it_tensor *const *outs);

typedef struct {
  char op[256], type[64];
  int found;
} it_first;

typedef struct it_env {
  const it_program *p;
  it_tensor **slots;
  mlsh_err *e;
  it_precision prec;
  it_observer observe;
  void *ud;
  it_first nonfinite, fp16_overflow;
  double op_seconds;
  it_act *fuse; /* while a kernel runs: the next op's activation, to fuse if it can (NULL: none) */
  int flow;     /* IT_FLOW_BREAK / IT_FLOW_CONTINUE after an NN loopBreak / loopContinue ran: every
                 * block stops after its current op until the enclosing loop takes the signal */
} it_env;
enum { IT_FLOW_NONE, IT_FLOW_BREAK, IT_FLOW_CONTINUE };

/* Whether float outputs of dtype dt are rounded to fp16 under the env's precision. */
int it_rounds_fp16(const it_env *env, mlsh_dtype dt);
int it_exec_block(it_env *env, const it_block *b);

/* Run the program: inputs[i] for p->inputs[i] (checked: dtype, rank, shape), outputs[j] get new
 * references for p->outputs[j]. States are inputs too; their final values come back in
 * states_out[i] (same order as inputs; NULL for non-state inputs) when states_out is given. */
int it_run(const it_program *p, it_tensor *const *inputs, it_tensor **outputs, it_tensor **states_out,
           it_observer observe, void *ud, it_first *nonfinite, it_first *fp16_overflow, mlsh_err *e);
#endif
