/* materialize.h — const and constexpr_* ops evaluated once at load time into tensors (the
 * decompression itself is constexpr.c). Parameters come from op attributes (opsets before
 * iOS18) or inputs (iOS18: immediates, or names of consts/constexprs already materialised).
 * Under --precision fp16 float constants are rounded to fp16; fp16-typed outputs are rounded
 * unless the precision is fp32. */
#ifndef MLSH_IT_MATERIALIZE_H
#define MLSH_IT_MATERIALIZE_H
#include "program.h"

int it_materialize(const it_op *op, const CoreML__Specification__MILSpec__Operation *m, const it_program *p,
                   mlsh_container *c, it_tensor **outs, mlsh_err *e);
#endif
