/* tensor.c — typed tensors, conversions and fp16 rounding (see tensor.h). */
#include "tensor.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Default budget: half the physical memory (a single tensor larger than that is refused). */
static size_t budget_bytes = (size_t)-1;
void it_set_budget(size_t bytes) { budget_bytes = bytes; }
size_t it_budget(void) {
  if (budget_bytes == (size_t)-1) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    budget_bytes = pages > 0 && psize > 0 ? (size_t)pages / 2 * (size_t)psize : 0;
  }
  return budget_bytes;
}

it_storage it_storage_of(mlsh_dtype dt) {
  if (dt == MLSH_DT_BOOL) return IT_B8;
  if (mlsh_dtype_is_float(dt)) return IT_F32;
  if (dt == MLSH_DT_INVALID) return IT_STR;
  return IT_I64;
}

size_t it_storage_size(it_storage st) {
  switch (st) {
  case IT_F32: return 4;
  case IT_I64: return 8;
  case IT_B8: return 1;
  default: return sizeof(char *);
  }
}

size_t it_numel(int rank, const int64_t *shape) {
  size_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 0) return SIZE_MAX;
    if (shape[i] && n > SIZE_MAX / 16 / (size_t)shape[i]) return SIZE_MAX;
    n *= (size_t)shape[i];
  }
  return n;
}

const char *it_describe(const it_tensor *t, char *buf, size_t len) {
  if (t->st == IT_LIST) return snprintf(buf, len, "list<%s>", mlsh_dtype_name(t->dt)), buf;
  int k = snprintf(buf, len, "%s[", t->dt == MLSH_DT_INVALID ? "string" : mlsh_dtype_name(t->dt));
  for (int i = 0; i < t->rank && k > 0 && (size_t)k < len; i++)
    k += snprintf(buf + k, len - (size_t)k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
  if (k > 0 && (size_t)k < len) snprintf(buf + k, len - (size_t)k, "]");
  return buf;
}

it_tensor *it_tensor_new(mlsh_dtype dt, int rank, const int64_t *shape, mlsh_err *e) {
  if (rank < 0 || rank > IT_MAX_RANK) return mlsh_fail(e, NULL, "tensor rank %d (at most %d)", rank, IT_MAX_RANK), NULL;
  size_t n = it_numel(rank, shape);
  if (n == SIZE_MAX) return mlsh_fail(e, NULL, "tensor shape overflows or has a negative dimension"), NULL;
  it_storage st = it_storage_of(dt);
  size_t bytes = n * it_storage_size(st);
  size_t budget = it_budget();
  if (budget && bytes > budget) {
    mlsh_fail(e, NULL, "a tensor of %zu bytes is larger than the memory budget (%zu bytes; --memory-budget)", bytes, budget);
    return NULL;
  }
  it_tensor *t = calloc(1, sizeof *t);
  if (!t) return mlsh_fail(e, NULL, "out of memory"), NULL;
  t->data = malloc(bytes ? bytes : 1);
  if (!t->data) {
    free(t);
    return mlsh_fail(e, NULL, "out of memory allocating %zu bytes", bytes), NULL;
  }
  t->dt = dt;
  t->st = st;
  t->rank = rank;
  if (rank) memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
  t->n = n;
  t->refs = 1;
  if (st == IT_STR) memset(t->data, 0, bytes ? bytes : 1);
  return t;
}

it_tensor *it_tensor_zeros(mlsh_dtype dt, int rank, const int64_t *shape, mlsh_err *e) {
  it_tensor *t = it_tensor_new(dt, rank, shape, e);
  if (t) memset(t->data, 0, t->n * it_storage_size(t->st));
  return t;
}

it_tensor *it_scalar_f(mlsh_dtype dt, double v, mlsh_err *e) {
  it_tensor *t = it_tensor_new(dt, 0, NULL, e);
  if (!t) return NULL;
  if (t->st == IT_F32) ((float *)t->data)[0] = (float)v;
  else if (t->st == IT_I64) ((int64_t *)t->data)[0] = it_d2i(v);
  else if (t->st == IT_B8) ((uint8_t *)t->data)[0] = v != 0;
  return t;
}

it_tensor *it_ref(it_tensor *t) {
  if (t) t->refs++;
  return t;
}

void it_unref(it_tensor *t) {
  if (!t || --t->refs > 0) return;
  if (t->st == IT_LIST) {
    it_list *l = t->data;
    for (size_t i = 0; l && i < l->len; i++) it_unref(l->items[i]);
    if (l) free(l->items);
  }
  if (t->st == IT_STR && !t->borrowed) {
    char **s = t->data;
    for (size_t i = 0; i < t->n; i++) free(s[i]);
  }
  if (!t->borrowed) free(t->data);
  free(t);
}

double it_get_d(const it_tensor *t, size_t i) {
  switch (t->st) {
  case IT_F32: return ((const float *)t->data)[i];
  case IT_I64: return (double)((const int64_t *)t->data)[i];
  case IT_B8: return ((const uint8_t *)t->data)[i];
  default: return 0;
  }
}

int64_t it_get_i(const it_tensor *t, size_t i) {
  switch (t->st) {
  case IT_F32: {
    float f = ((const float *)t->data)[i];
    if (!(f == f)) return 0;
    if (f >= 9.2e18f) return INT64_MAX;
    if (f <= -9.2e18f) return INT64_MIN;
    return (int64_t)f;
  }
  case IT_I64: return ((const int64_t *)t->data)[i];
  case IT_B8: return ((const uint8_t *)t->data)[i];
  default: return 0;
  }
}

/* Wrap an int64 into the range of a narrower integer dtype (two's complement), as a cast does. */
static int64_t wrap_int(int64_t v, mlsh_dtype dt) {
  switch (dt) {
  case MLSH_DT_INT8: return (int8_t)v;
  case MLSH_DT_INT16: return (int16_t)v;
  case MLSH_DT_INT32: return (int32_t)v;
  case MLSH_DT_UINT8: return (uint8_t)v;
  case MLSH_DT_UINT16: return (uint16_t)v;
  case MLSH_DT_UINT32: return (uint32_t)v;
  default: return v;
  }
}

it_tensor *it_convert(const it_tensor *t, mlsh_dtype dt, mlsh_err *e) {
  it_tensor *o = it_tensor_new(dt, t->rank, t->shape, e);
  if (!o) return NULL;
  size_t n = t->n;
  if (o->st == IT_F32) {
    float *d = o->data;
    for (size_t i = 0; i < n; i++) d[i] = (float)it_get_d(t, i);
    if (dt == MLSH_DT_FP16) it_round_fp16(d, n);
  } else if (o->st == IT_I64) {
    int64_t *d = o->data;
    for (size_t i = 0; i < n; i++) d[i] = wrap_int(it_get_i(t, i), dt);
  } else if (o->st == IT_B8) {
    uint8_t *d = o->data;
    for (size_t i = 0; i < n; i++) d[i] = it_get_d(t, i) != 0;
  } else {
    it_unref(o);
    return mlsh_fail(e, NULL, "cannot convert to string"), NULL;
  }
  return o;
}

/* Branch-free fp16 rounding on the float's bits so the compiler can vectorise the loop:
 * normal range: round the 23-bit mantissa to 10 bits (ties to even); below 2^-14 (fp16
 * subnormals): round to a multiple of 2^-24 via the 1.5*2^23 trick; above 65504 after rounding:
 * inf; NaN stays NaN. */
float it_fp16_round1(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  uint32_t a = u & 0x7fffffffu, s = u & 0x80000000u;
  uint32_t r = (a + 0x0fffu + ((a >> 13) & 1u)) & ~0x1fffu;
  float ax, sub;
  memcpy(&ax, &a, 4);
  sub = ((ax * 16777216.0f + 12582912.0f) - 12582912.0f) * (1.0f / 16777216.0f);
  uint32_t subu;
  memcpy(&subu, &sub, 4);
  uint32_t res = a < 0x38800000u ? subu : r;       /* 2^-14 */
  res = res > 0x477fe000u ? 0x7f800000u : res;      /* > 65504 -> inf */
  res = a > 0x7f800000u ? (a | 0x00400000u) : res;  /* NaN stays NaN (quiet) */
  res |= s;
  float y;
  memcpy(&y, &res, 4);
  return y;
}

void it_round_fp16(float *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = it_fp16_round1(p[i]);
}
