/* common.h — pieces every compression kernel shares: status codes, the weight dtype whose
 * arithmetic the kernels reproduce, rounding helpers and the [outer, channels, inner] view of
 * one axis of a row-major tensor.
 * Contract: nothing here allocates or keeps state. coremltools computes in the weight's own
 * dtype (numpy fp16 ops are float32 ops rounded to fp16), so kernels round every intermediate
 * with mlsh_wd_round() to stay bit-exact; with MLSH_WD_FP32 that rounding is the identity.
 * Needs FLT_EVAL_METHOD == 0 (float math done in float, as on x86-64 SSE and arm64). */
#ifndef MLSH_COMPRESS_COMMON_H
#define MLSH_COMPRESS_COMMON_H
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "compression kernels need float arithmetic evaluated in float (FLT_EVAL_METHOD 0)"
#endif

#define MLSH_CZ_MAX_RANK 8

typedef enum {
  MLSH_CZ_OK = 0,
  MLSH_CZ_EINVAL = -1,     /* an argument is out of its documented range */
  MLSH_CZ_ENOMEM = -2,     /* an allocation failed */
  MLSH_CZ_ENONFINITE = -3, /* input holds NaN or +-inf */
  MLSH_CZ_EUNIQUE = -4,    /* mode unique: more than 256 distinct values in a group */
  MLSH_CZ_ESKIP = -5,      /* coremltools would skip this tensor (e.g. m > channels/2) */
  MLSH_CZ_EREAD = -6       /* the weight file could not be read */
} mlsh_cz_status;

const char *mlsh_cz_strerror(int status);

/* The dtype the weight is stored in; decides intermediate rounding. */
typedef enum { MLSH_WD_FP32 = 0, MLSH_WD_FP16 = 1 } mlsh_wdtype;

static inline unsigned mlsh_wd_bytes(mlsh_wdtype wd) { return wd == MLSH_WD_FP16 ? 2u : 4u; }

/* Round half to even to an integer (any float; NaN and inf pass through). Branch-free so the
 * element loops stay straight: adding and removing 2^23 leaves no fraction bits, and ties go
 * to even under the default rounding mode; |x| >= 2^23 is already an integer. */
static inline float mlsh_rint_even(float x) {
  float a = fabsf(x);
  float r = copysignf((a + 8388608.0f) - 8388608.0f, x);
  return a < 8388608.0f ? r : x;
}

/* Nearest fp16 value (round half to even, overflow to inf, NaN kept), as a float. Adding then
 * removing c = 1.5 * 2^(k+23) rounds x to a multiple of 2^k, the fp16 spacing at x's binade
 * (2^-24 below 2^-14); the sign is put back so -0 and tiny negatives stay negative. */
static inline float mlsh_round_fp16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  uint32_t e = (u >> 23) & 0xffu;
  e = e < 113u ? 113u : e > 142u ? 142u : e;
  uint32_t cb = ((e + 13u) << 23) | 0x400000u;
  float c;
  memcpy(&c, &cb, 4);
  float r = copysignf((x + c) - c, x);
  return fabsf(r) > 65504.0f ? copysignf(INFINITY, x) : r; /* NaN compares false: kept */
}

/* Batched fp16 helpers, chosen once per kernel call for this CPU: F16C conversions on x86
 * CPUs that have them (8 values per instruction pair), portable code elsewhere; both give
 * identical results (checked over all 2^32 floats).
 *   round16(v, n): mlsh_round_fp16 on n floats in place;
 *   bits16(v, h, n): fp16 bit patterns of n floats (round to nearest even). */
typedef void (*mlsh_round_batch_fn)(float *v, size_t n);
typedef void (*mlsh_fp16_bits_fn)(const float *v, uint16_t *h, size_t n);
typedef struct {
  mlsh_round_batch_fn round16;
  mlsh_fp16_bits_fn bits16;
  int avx2; /* 256-bit double/integer vectors usable (k-means scans) */
} mlsh_cz_cpu;
void mlsh_cz_cpu_init(mlsh_cz_cpu *c);

/* The same from a double, rounding once (numpy's float64 -> float16 cast). */
static inline float mlsh_round_fp16d(double x) {
  double a = fabs(x);
  if (a < 6.103515625e-05) {
    double r = nearbyint(x * 16777216.0) * 5.9604644775390625e-08;
    return (float)r;
  }
  if (!(a < 65520.0)) return isnan(x) ? (float)x : (float)copysign(INFINITY, x);
  uint64_t u;
  memcpy(&u, &x, 8);
  u += 0x1ffffffffffull + ((u >> 42) & 1u); /* drop 42 of 52 mantissa bits */
  u &= ~0x3ffffffffffull;
  memcpy(&x, &u, 8);
  return (float)x;
}

static inline float mlsh_wd_round(mlsh_wdtype wd, float x) { return wd == MLSH_WD_FP16 ? mlsh_round_fp16(x) : x; }
static inline float mlsh_wd_round_d(mlsh_wdtype wd, double x) { return wd == MLSH_WD_FP16 ? mlsh_round_fp16d(x) : (float)x; }

/* Order-preserving 16-bit key of fp16 bits (ascending key = ascending value); -0 maps to +0.
 * Branch-free: weight signs are random, so a branch here mispredicts half the time. */
static inline uint16_t mlsh_fp16_key(uint16_t h) {
  unsigned v = h & ((h == 0x8000u) - 1u);            /* -0 -> +0 */
  unsigned neg = v >> 15;                             /* negative: flip all bits */
  return (uint16_t)(v ^ (0x8000u | (neg * 0x7fffu))); /* positive: set the top bit */
}
static inline uint16_t mlsh_fp16_unkey(uint16_t k) {
  unsigned pos = (unsigned)k >> 15;
  return (uint16_t)(k ^ (0x8000u | ((pos ^ 1u) * 0x7fffu)));
}

/* Where a kernel reads its input: float32 values, or fp16 bit patterns (a weight file's blob,
 * read in place; decoding fp16 is exact). Exactly one of f32 / f16 is set. */
typedef struct {
  const float *f32;
  const uint16_t *f16;
} mlsh_cz_src;

/* x[0..m) = the source's elements [i, i + m) as floats. */
void mlsh_cz_src_load(const mlsh_cz_src *s, size_t i, size_t m, float *x);

/* A row-major tensor seen as [outer, channels, inner] around one axis. */
typedef struct {
  size_t outer, channels, inner;
} mlsh_axis_view;

/* Fill v for `axis` (0 <= axis < rank) of shape; 0, or MLSH_CZ_EINVAL if the shape does not
 * hold n elements or the axis is out of range. */
int mlsh_axis_view_make(const int64_t *shape, int rank, int axis, size_t n, mlsh_axis_view *v);

/* Product of a shape, or SIZE_MAX if a dimension is negative or the product overflows. */
size_t mlsh_shape_count(const int64_t *shape, int rank);

/* The elements of one channel group: nruns runs of runlen floats, run r at base + r*stride. */
typedef struct {
  size_t offset; /* index of the first element */
  size_t nruns, runlen, stride;
} mlsh_runs;

static inline size_t mlsh_runs_count(const mlsh_runs *r) { return r->nruns * r->runlen; }
#endif
