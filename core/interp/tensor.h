/* tensor.h — the interpreter's typed tensor. Every MIL tensor type has a logical dtype (fp16,
 * int32, ...) and one of four storage classes the kernels work on:
 *   IT_F32  float   (fp16, fp32, fp64, bf16: fp16 values are kept as floats rounded to fp16)
 *   IT_I64  int64_t (int8..int64, uint8..uint64, sub-byte ints)
 *   IT_B8   uint8_t (bool, 0 or 1)
 *   IT_STR  char *  (string consts only)
 *   IT_LIST it_list (a MIL list value: data is an it_list, n = 0, rank 0, dt = element dtype)
 * data is owned (freed by it_tensor_free) unless `borrowed` (an mmap'd weight); a tensor is
 * refcounted so a value used by several ops (or a const) is freed once. Shapes have rank <= 8. */
#ifndef MLSH_IT_TENSOR_H
#define MLSH_IT_TENSOR_H
#include "dtype.h"
#include "err.h"
#include <stddef.h>
#include <stdint.h>

#define IT_MAX_RANK 8

typedef enum { IT_F32, IT_I64, IT_B8, IT_STR, IT_LIST } it_storage;

struct it_tensor;
/* A list value (make_list / list_write ...): items[i] is a tensor or NULL (never written). Lists
 * are values like tensors: an op that changes one makes a new list sharing the items. */
typedef struct it_list {
  size_t len, cap;
  struct it_tensor **items;
  int dynamic;                      /* may grow past len */
  int erank;                        /* element rank, -1 unknown */
  int64_t eshape[IT_MAX_RANK];      /* element dims, -1 unknown */
} it_list;

typedef struct it_tensor {
  mlsh_dtype dt;
  it_storage st;
  int rank;
  int64_t shape[IT_MAX_RANK];
  size_t n;
  void *data;
  int borrowed;
  int refs;
} it_tensor;

it_storage it_storage_of(mlsh_dtype dt);
size_t it_storage_size(it_storage st);
/* The memory budget every allocation is checked against (bytes; 0 = none; default: half the
 * physical memory). */
void it_set_budget(size_t bytes);
size_t it_budget(void);
/* New tensor (refs = 1) with uninitialised data; NULL + error when the shape is bad or the
 * tensor would pass the memory budget. */
it_tensor *it_tensor_new(mlsh_dtype dt, int rank, const int64_t *shape, mlsh_err *e);
it_tensor *it_tensor_zeros(mlsh_dtype dt, int rank, const int64_t *shape, mlsh_err *e);
/* A scalar (rank 0) of dt holding v. */
it_tensor *it_scalar_f(mlsh_dtype dt, double v, mlsh_err *e);
it_tensor *it_ref(it_tensor *t);
void it_unref(it_tensor *t);
/* Element i as double / int64 whatever the storage. */
double it_get_d(const it_tensor *t, size_t i);
int64_t it_get_i(const it_tensor *t, size_t i);
/* Store v at element i in t's storage (F32, I64 rounded by it_d2i, B8 as v != 0); no-op otherwise. */
void it_put_d(it_tensor *t, size_t i, double v);
/* Convert to another dtype (new tensor). Floats to ints truncate toward zero, as MIL cast does. */
it_tensor *it_convert(const it_tensor *t, mlsh_dtype dt, mlsh_err *e);
/* Round every element of a float tensor to the nearest fp16 value (ties to even; overflow to inf).
 * F16C when the CPU has it (checked once at run time; $MLSH_NO_SIMD forces the portable loop). */
void it_round_fp16(float *p, size_t n);
float it_fp16_round1(float x);
/* Whether any of n floats is NaN/inf, and whether any non-NaN magnitude exceeds 65504. */
void it_f32_scan(const float *d, size_t n, int *nonfinite, int *over_fp16);
/* "fp32[1,3,224,224]" into buf. */
const char *it_describe(const it_tensor *t, char *buf, size_t len);
size_t it_numel(int rank, const int64_t *shape); /* SIZE_MAX on overflow or negative dim */
/* double -> int64 truncating toward zero, saturating, NaN -> 0 (a plain cast is undefined there). */
static inline int64_t it_d2i(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2e18) return INT64_MAX;
  if (v <= -9.2e18) return INT64_MIN;
  return (int64_t)v;
}
#endif
