/* tensor.c — typed tensors, conversions and fp16 rounding (see tensor.h). */
#include "tensor.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define IT_X86 1
#endif

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

void it_put_d(it_tensor *t, size_t i, double v) {
  switch (t->st) {
  case IT_F32: ((float *)t->data)[i] = (float)v; break;
  case IT_I64: ((int64_t *)t->data)[i] = it_d2i(v); break;
  case IT_B8: ((uint8_t *)t->data)[i] = v != 0; break;
  default: break;
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

#ifdef IT_X86
/* F16C: vcvtps2ph with round-to-nearest-even then back, 8 at a time; the same values as
 * it_fp16_round1 (a NaN keeps its sign and the top 10 bits of its payload, quiet). */
__attribute__((target("avx,f16c"))) static void round_f16c(float *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(p + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(p + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; i++) p[i] = it_fp16_round1(p[i]);
}
#endif

static int have_f16c;
static pthread_once_t f16c_once = PTHREAD_ONCE_INIT;
static void detect_f16c(void) {
#ifdef IT_X86
  __builtin_cpu_init();
  unsigned a, b, c, d; /* F16C: CPUID leaf 1, ECX bit 29 (clang's builtin does not know "f16c") */
  int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
  have_f16c = __builtin_cpu_supports("avx") && f16c && !getenv("MLSH_NO_SIMD");
#endif
}

void it_round_fp16(float *p, size_t n) {
  pthread_once(&f16c_once, detect_f16c);
#ifdef IT_X86
  if (have_f16c) { round_f16c(p, n); return; }
#endif
  for (size_t i = 0; i < n; i++) p[i] = it_fp16_round1(p[i]);
}

/* On the magnitude bits: non-finite iff >= 0x7f800000, above fp16's max iff > 0x477fe000 and
 * not NaN (> 0x7f800000). Lanes OR their flags (SSE2 compares are signed; magnitudes < 2^31). */
#ifdef IT_X86
__attribute__((target("avx2"))) static size_t scan_avx2(const float *d, size_t n, uint32_t *bad, uint32_t *big) {
  __m256i m = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f7fffff), top = _mm256_set1_epi32(0x477fe000);
  __m256i pinf = _mm256_set1_epi32(0x7f800000), vb = _mm256_setzero_si256(), vg = vb;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(const void *)(d + i)), m);
    vb = _mm256_or_si256(vb, _mm256_cmpgt_epi32(a, inf));
    vg = _mm256_or_si256(vg, _mm256_andnot_si256(_mm256_cmpgt_epi32(a, pinf), _mm256_cmpgt_epi32(a, top)));
  }
  *bad = (uint32_t)_mm256_movemask_epi8(vb);
  *big = (uint32_t)_mm256_movemask_epi8(vg);
  return i;
}
static int have_avx2;
static pthread_once_t avx2_once = PTHREAD_ONCE_INIT;
static void detect_avx2(void) {
  __builtin_cpu_init();
  have_avx2 = __builtin_cpu_supports("avx2") && !getenv("MLSH_NO_SIMD");
}
#endif

#if defined(__SSE2__)
static size_t scan_sse2(const float *d, size_t n, uint32_t *bad, uint32_t *big) {
  __m128i m = _mm_set1_epi32(0x7fffffff), inf = _mm_set1_epi32(0x7f7fffff), top = _mm_set1_epi32(0x477fe000);
  __m128i pinf = _mm_set1_epi32(0x7f800000), vb = _mm_setzero_si128(), vg = vb;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(d + i)), m);
    vb = _mm_or_si128(vb, _mm_cmpgt_epi32(a, inf));
    vg = _mm_or_si128(vg, _mm_andnot_si128(_mm_cmpgt_epi32(a, pinf), _mm_cmpgt_epi32(a, top)));
  }
  *bad |= (uint32_t)_mm_movemask_epi8(vb);
  *big |= (uint32_t)_mm_movemask_epi8(vg);
  return i;
}
#endif

void it_f32_scan(const float *d, size_t n, int *nonfinite, int *over_fp16) {
  size_t i = 0;
  uint32_t bad = 0, big = 0;
#ifdef IT_X86
  pthread_once(&avx2_once, detect_avx2);
  if (have_avx2) i = scan_avx2(d, n, &bad, &big);
#endif
#if defined(__SSE2__)
  if (i == 0) i = scan_sse2(d, n, &bad, &big);
#endif
  for (; i < n; i++) {
    uint32_t u;
    memcpy(&u, d + i, 4);
    u &= 0x7fffffffu;
    bad |= u > 0x7f7fffffu;
    big |= u > 0x477fe000u && u <= 0x7f800000u;
  }
  *nonfinite = bad != 0;
  *over_fp16 = big != 0;
}
