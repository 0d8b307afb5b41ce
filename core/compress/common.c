/* common.c — status strings and tensor views shared by the compression kernels (see common.h). */
#include "compress/common.h"
#include "dtype.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define MLSH_HAVE_F16C_PATH 1
#include <immintrin.h>
#endif

const char *mlsh_cz_strerror(int status) {
  switch (status) {
    case MLSH_CZ_OK: return "ok";
    case MLSH_CZ_EINVAL: return "invalid argument";
    case MLSH_CZ_ENOMEM: return "out of memory";
    case MLSH_CZ_ENONFINITE: return "input holds NaN or infinity";
    case MLSH_CZ_EUNIQUE: return "more than 256 distinct values in a group (mode unique needs <= 256)";
    case MLSH_CZ_ESKIP: return "coremltools would skip this tensor for these settings";
    case MLSH_CZ_EREAD: return "the weight file could not be read";
    default: return "unknown error";
  }
}

size_t mlsh_shape_count(const int64_t *shape, int rank) {
  size_t prod = 1;
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 0) return SIZE_MAX;
    size_t d = (size_t)shape[i];
    if (d != 0 && prod > SIZE_MAX / d) return SIZE_MAX;
    prod *= d;
  }
  return prod;
}

int mlsh_axis_view_make(const int64_t *shape, int rank, int axis, size_t n, mlsh_axis_view *v) {
  if (rank < 1 || rank > MLSH_CZ_MAX_RANK || axis < 0 || axis >= rank) return MLSH_CZ_EINVAL;
  if (mlsh_shape_count(shape, rank) != n) return MLSH_CZ_EINVAL;
  v->outer = mlsh_shape_count(shape, axis);
  v->channels = (size_t)shape[axis];
  v->inner = mlsh_shape_count(shape + axis + 1, rank - axis - 1);
  return MLSH_CZ_OK;
}

static void round_batch_scalar(float *v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = mlsh_round_fp16(v[i]);
}

#ifdef MLSH_HAVE_F16C_PATH
/* vcvtps2ph with round-to-nearest-even: overflow gives inf, NaN stays NaN, subnormals exact. */
__attribute__((target("avx,f16c"))) static void round_batch_f16c(float *v, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(v + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; i++) v[i] = mlsh_round_fp16(v[i]);
}
#endif

static void bits_batch_scalar(const float *v, uint16_t *h, size_t n) {
  for (size_t i = 0; i < n; i++) h[i] = mlsh_f32_to_fp16(v[i]);
}

#ifdef MLSH_HAVE_F16C_PATH
__attribute__((target("avx,f16c"))) static void bits_batch_f16c(const float *v, uint16_t *h, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i *)(void *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++) h[i] = mlsh_f32_to_fp16(v[i]);
}
#endif

void mlsh_cz_cpu_init(mlsh_cz_cpu *c) {
  int f = mlsh_cpu_f16c(&c->avx2);
#ifdef MLSH_HAVE_F16C_PATH
  c->round16 = f ? round_batch_f16c : round_batch_scalar;
  c->bits16 = f ? bits_batch_f16c : bits_batch_scalar;
#else
  (void)f;
  c->round16 = round_batch_scalar;
  c->bits16 = bits_batch_scalar;
#endif
}

void mlsh_cz_src_load(const mlsh_cz_src *s, size_t i, size_t m, float *x) {
  if (s->f32) memcpy(x, s->f32 + i, m * sizeof(float));
  else (void)mlsh_decode_f32(s->f16 + i, m * 2, MLSH_DT_FP16, m, x); /* sizes match: cannot fail */
}
