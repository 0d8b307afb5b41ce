/* libFuzzer harness: the decompressor (core/constexpr.c) on arbitrary shapes, dtypes and data.
 * The input is read as: op selector, then tensors (rank, dims 0..8, dtype, packed data) and small
 * integer arguments; outputs are sized as constexpr.h documents. Every call must return 0 or -1
 * with a message, never read or write out of bounds. */
#include "constexpr.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  const uint8_t *p;
  size_t len;
} input;

static unsigned take(input *in) {
  if (!in->len) return 0;
  in->len--;
  return *in->p++;
}

static const mlsh_dtype DTYPES[] = {MLSH_DT_INT4, MLSH_DT_UINT4, MLSH_DT_INT8, MLSH_DT_UINT8,
                                    MLSH_DT_UINT1, MLSH_DT_UINT2, MLSH_DT_FP16, MLSH_DT_FP32};

/* A tensor from the input (its floats in *buf, to free), or -1 when the input runs out. */
static int tensor(input *in, int max_rank, mlsh_cx_val *v, float **buf) {
  memset(v, 0, sizeof *v);
  v->rank = (int)(take(in) % (unsigned)(max_rank + 1));
  size_t n = 1;
  for (int d = 0; d < v->rank; d++) {
    v->shape[d] = take(in) % 9;
    n *= (size_t)v->shape[d];
  }
  v->n = n;
  v->dt = DTYPES[take(in) % 8];
  size_t need = mlsh_dtype_nbytes(v->dt, n);
  if (need > in->len) return -1;
  *buf = malloc((n ? n : 1) * sizeof **buf);
  if (!*buf) return -1;
  if (mlsh_decode_f32(in->p, in->len, v->dt, n, *buf) != 0) abort(); /* need fits by the check above */
  in->p += need;
  in->len -= need;
  v->v = *buf;
  return 0;
}

static size_t vec(const mlsh_cx_val *lut) { return lut->rank >= 1 && lut->shape[lut->rank - 1] > 0 ? (size_t)lut->shape[lut->rank - 1] : 1; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, size};
  unsigned op = take(&in) % 7;
  mlsh_cx_val a, b, c, d;
  float *ba = NULL, *bb = NULL, *bc = NULL, *bd = NULL, *o1 = NULL, *o2 = NULL;
  int64_t oshape[MLSH_CX_MAX_RANK];
  int64_t arg = (int8_t)take(&in);
  int with_d = take(&in) & 1;
  mlsh_err e;
  if (tensor(&in, 4, &a, &ba) || tensor(&in, 6, &b, &bb)) goto done;
  switch (op) {
  case 0:
    if (tensor(&in, 4, &c, &bc) || !(o1 = malloc((a.n + 1) * sizeof *o1))) break;
    mlsh_cx_affine(&a, &b, &c, arg, o1, &e);
    break;
  case 1:
    if (!(o1 = malloc((a.n * vec(&b) + 1) * sizeof *o1))) break;
    mlsh_cx_lut(&a, &b, arg, o1, oshape, &e);
    break;
  case 2:
    if (!(o1 = malloc((a.n + 1) * sizeof *o1))) break;
    mlsh_cx_sparse(a.v, a.n, b.v, b.n, o1, &e);
    break;
  case 3:
    if ((with_d && tensor(&in, 6, &d, &bd)) || !(o1 = malloc((a.n + 1) * sizeof *o1))) break;
    mlsh_cx_shift_scale(&a, &b, with_d ? &d : NULL, o1, &e);
    break;
  case 4:
    if (tensor(&in, 4, &c, &bc) || (with_d && tensor(&in, 4, &d, &bd)) || !(o1 = malloc((b.n + 1) * sizeof *o1))) break;
    mlsh_cx_sparse_shift_scale(&a, &b, &c, with_d ? &d : NULL, o1, &e);
    break;
  case 5: {
    if (tensor(&in, 6, &c, &bc)) break;
    size_t V = vec(&c);
    if (!(o1 = malloc((a.n * V + 1) * sizeof *o1)) || !(o2 = malloc((b.n * V + 1) * sizeof *o2))) break;
    mlsh_cx_lut_to_sparse(&a, &b, &c, arg, o1, oshape, o2, &e);
    break;
  }
  default: {
    size_t n = (size_t)(arg & 0x7f);
    if (!(o1 = malloc((n + 1) * sizeof *o1))) break;
    mlsh_cx_lut16(in.p, in.len, b.v, b.n, n, o1, &e);
    mlsh_cx_round(o1, 0, MLSH_DT_FP16);
    break;
  }
  }
done:
  free(ba); free(bb); free(bc); free(bd); free(o1); free(o2);
  return 0;
}
