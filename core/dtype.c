/* dtype.c — element type names and float32 conversions (see dtype.h). */
#include "dtype.h"
#include "compress/threads.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define MLSH_HAVE_F16C_PATH 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static atomic_int portable_only;

int mlsh_cpu_portable(int on) { return atomic_exchange(&portable_only, on != 0); }

/* (Asked directly because clang 14's __builtin_cpu_supports does not know "f16c".) */
int mlsh_cpu_f16c(int *avx2) {
  *avx2 = 0;
#ifdef MLSH_HAVE_F16C_PATH
  const char *e = getenv("MLSH_NO_F16C");
  if ((e && *e && *e != '0') || atomic_load(&portable_only)) return 0;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (!(c & (1u << 27)) || !(c & (1u << 28)) || !(c & (1u << 29))) return 0;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  (void)hi;
  if ((lo & 6u) != 6u) return 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) *avx2 = (b >> 5) & 1u;
  return 1;
#else
  return 0;
#endif
}

static const struct { const char *name; unsigned bits; int is_float; } dtypes[MLSH_DT_COUNT] = {
  [MLSH_DT_INVALID] = {"invalid", 0, 0},
  [MLSH_DT_BOOL] = {"bool", 8, 0},     [MLSH_DT_FP16] = {"fp16", 16, 1},
  [MLSH_DT_FP32] = {"fp32", 32, 1},    [MLSH_DT_FP64] = {"fp64", 64, 1},
  [MLSH_DT_BF16] = {"bf16", 16, 1},    [MLSH_DT_INT4] = {"int4", 4, 0},
  [MLSH_DT_INT8] = {"int8", 8, 0},     [MLSH_DT_INT16] = {"int16", 16, 0},
  [MLSH_DT_INT32] = {"int32", 32, 0},  [MLSH_DT_INT64] = {"int64", 64, 0},
  [MLSH_DT_UINT1] = {"uint1", 1, 0},   [MLSH_DT_UINT2] = {"uint2", 2, 0},
  [MLSH_DT_UINT3] = {"uint3", 3, 0},   [MLSH_DT_UINT4] = {"uint4", 4, 0},
  [MLSH_DT_UINT6] = {"uint6", 6, 0},   [MLSH_DT_UINT8] = {"uint8", 8, 0},
  [MLSH_DT_UINT16] = {"uint16", 16, 0}, [MLSH_DT_UINT32] = {"uint32", 32, 0},
  [MLSH_DT_UINT64] = {"uint64", 64, 0}, [MLSH_DT_FP8E4M3] = {"fp8e4m3fn", 8, 1},
  [MLSH_DT_FP8E5M2] = {"fp8e5m2", 8, 1},
};

const char *mlsh_dtype_name(mlsh_dtype dt) {
  return (dt > 0 && dt < MLSH_DT_COUNT) ? dtypes[dt].name : "invalid";
}

mlsh_dtype mlsh_dtype_from_name(const char *name) {
  for (int i = 1; i < MLSH_DT_COUNT; i++)
    if (strcmp(dtypes[i].name, name) == 0) return (mlsh_dtype)i;
  return MLSH_DT_INVALID;
}

unsigned mlsh_dtype_bits(mlsh_dtype dt) { return (dt > 0 && dt < MLSH_DT_COUNT) ? dtypes[dt].bits : 0; }
int mlsh_dtype_is_float(mlsh_dtype dt) { return (dt > 0 && dt < MLSH_DT_COUNT) ? dtypes[dt].is_float : 0; }

size_t mlsh_dtype_nbytes(mlsh_dtype dt, size_t n) {
  unsigned b = mlsh_dtype_bits(dt);
  if (b == 0) return SIZE_MAX;
  if (n > (SIZE_MAX - 7) / b) return SIZE_MAX;
  return (n * b + 7) / 8;
}

float mlsh_fp16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else { /* subnormal: normalise */
      int e = -1;
      do { e++; man <<= 1; } while (!(man & 0x400));
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t mlsh_f32_to_fp16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
  if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
  if (absx < 0x38800000u) { /* subnormal or zero in fp16 */
    if (absx < 0x33000000u) return (uint16_t)sign;
    uint32_t man = (absx & 0x7fffff) | 0x800000, e = absx >> 23;
    unsigned shift = 126 - e; /* 14..24 */
    uint32_t v = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (v & 1))) v++;
    return (uint16_t)(sign | v);
  }
  uint32_t v = ((absx - 0x38000000u) >> 13), rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) v++;
  return (uint16_t)(sign | v);
}

float mlsh_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static float fp8_to_f32(uint8_t v, int e4m3) {
  int sign = v >> 7, ebits = e4m3 ? 4 : 5, mbits = e4m3 ? 3 : 2, bias = e4m3 ? 7 : 15;
  int e = (v >> mbits) & ((1 << ebits) - 1), m = v & ((1 << mbits) - 1);
  float r;
  if (e4m3 && e == 15 && m == 7) r = NAN;
  else if (!e4m3 && e == 31) r = m ? NAN : INFINITY;
  else if (e == 0) r = ldexpf((float)m, 1 - bias - mbits);
  else r = ldexpf((float)(m | (1 << mbits)), e - bias - mbits);
  return sign ? -r : r;
}

void mlsh_bitunpack(const uint8_t *in, size_t n, unsigned bits, uint8_t *codes) {
  unsigned mask = (1u << bits) - 1;
  for (size_t i = 0; i < n; i++) {
    size_t bit = i * bits, byte = bit >> 3;
    unsigned shift = bit & 7, v = in[byte] >> shift;
    if (shift + bits > 8) v |= (unsigned)in[byte + 1] << (8 - shift);
    codes[i] = (uint8_t)(v & mask);
  }
}

void mlsh_bitpack(const uint8_t *codes, size_t n, unsigned bits, uint8_t *out) {
  memset(out, 0, (n * bits + 7) / 8);
  unsigned mask = (1u << bits) - 1;
  for (size_t i = 0; i < n; i++) {
    size_t bit = i * bits, byte = bit >> 3;
    unsigned shift = bit & 7, v = codes[i] & mask;
    out[byte] |= (uint8_t)(v << shift);
    if (shift + bits > 8) out[byte + 1] |= (uint8_t)(v >> (8 - shift));
  }
}

static void fp16_scalar(const uint8_t *p, size_t n, float *out) {
  for (size_t i = 0; i < n; i++) {
    uint16_t v;
    memcpy(&v, p + 2 * i, 2);
    out[i] = mlsh_fp16_to_f32(v);
  }
}

#ifdef MLSH_HAVE_F16C_PATH
/* 8 at a time; a group holding an inf/NaN code goes the scalar way (vcvtph2ps quiets signalling
 * NaNs, mlsh_fp16_to_f32 keeps every payload bit). */
__attribute__((target("avx,f16c"))) static void fp16_f16c(const uint8_t *p, size_t n, float *out) {
  const __m128i expmask = _mm_set1_epi16(0x7c00);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i));
    if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, expmask), expmask))) fp16_scalar(p + 2 * i, 8, out + i);
    else _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  fp16_scalar(p + 2 * i, n - i, out + i);
}
#endif

static void fp16_enc_scalar(const float *src, size_t n, uint8_t *p) {
  for (size_t i = 0; i < n; i++) {
    uint16_t h = mlsh_f32_to_fp16(src[i]);
    memcpy(p + 2 * i, &h, 2);
  }
}

#ifdef MLSH_HAVE_F16C_PATH
/* 8 at a time (vcvtps2ph rounds to nearest even, as mlsh_f32_to_fp16 does); a group holding a
 * NaN goes the scalar way (its NaN code is mlsh's, not the instruction's). */
__attribute__((target("avx,f16c"))) static void fp16_enc_f16c(const float *src, size_t n, uint8_t *p) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(src + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) fp16_enc_scalar(src + i, 8, p + 2 * i);
    else _mm_storeu_si128((__m128i *)(void *)(p + 2 * i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  fp16_enc_scalar(src + i, n - i, p + 2 * i);
}
#endif

static void (*fp16_decode)(const uint8_t *, size_t, float *) = fp16_scalar;
static void (*fp16_encode)(const float *, size_t, uint8_t *) = fp16_enc_scalar;
static pthread_once_t fp16_once = PTHREAD_ONCE_INIT;
static void fp16_pick(void) {
#ifdef MLSH_HAVE_F16C_PATH
  int avx2;
  if (mlsh_cpu_f16c(&avx2)) fp16_decode = fp16_f16c, fp16_encode = fp16_enc_f16c;
#endif
}

#define FP16_PAR_MIN ((size_t)1 << 20) /* from here a decode goes parallel */
#define FP16_PAR_TASK ((size_t)1 << 18) /* elements per task: a multiple of 8 */

typedef struct {
  const uint8_t *p;
  size_t n;
  float *out;
} fp16_job;

static void fp16_task(void *ctx, size_t t, unsigned w) {
  (void)w;
  const fp16_job *j = ctx;
  size_t i0 = t * FP16_PAR_TASK, k = j->n - i0 < FP16_PAR_TASK ? j->n - i0 : FP16_PAR_TASK;
  fp16_decode(j->p + 2 * i0, k, j->out + i0);
}

int mlsh_decode_f32(const void *src, size_t srclen, mlsh_dtype dt, size_t n, float *out) {
  size_t need = mlsh_dtype_nbytes(dt, n);
  if (need == SIZE_MAX || need > srclen) return -1;
  if (n == 0) return 0; /* src/out may be NULL for an empty tensor */
  const uint8_t *p = src;
  if (dt == MLSH_DT_FP16) { /* the common weight type: no per-element dispatch */
    pthread_once(&fp16_once, fp16_pick);
    if (n >= FP16_PAR_MIN) {
      fp16_job j = {p, n, out};
      mlsh_parallel_for(mlsh_threads_clamp(0), (n + FP16_PAR_TASK - 1) / FP16_PAR_TASK, fp16_task, &j);
    } else {
      fp16_decode(p, n, out);
    }
    return 0;
  }
  if (dt == MLSH_DT_FP32) {
    memcpy(out, p, 4 * n);
    return 0;
  }
  unsigned bits = mlsh_dtype_bits(dt);
  if (bits < 8) { /* sub-byte: unpack in place through a small buffer */
    uint8_t codes[256];
    for (size_t done = 0; done < n;) {
      size_t chunk = n - done < 256 ? n - done : 256; /* chunk*bits is a multiple of 8 except at the end */
      mlsh_bitunpack(p + (done * bits) / 8, chunk, bits, codes);
      for (size_t i = 0; i < chunk; i++)
        out[done + i] = dt == MLSH_DT_INT4 ? (float)((int)(codes[i] ^ 8) - 8) : (float)codes[i];
      done += chunk;
    }
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    switch (dt) {
      case MLSH_DT_BOOL: case MLSH_DT_UINT8: out[i] = p[i]; break;
      case MLSH_DT_INT8: out[i] = (int8_t)p[i]; break;
      case MLSH_DT_FP8E4M3: out[i] = fp8_to_f32(p[i], 1); break;
      case MLSH_DT_FP8E5M2: out[i] = fp8_to_f32(p[i], 0); break;
      case MLSH_DT_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = mlsh_bf16_to_f32(v); break; }
      case MLSH_DT_INT16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
      case MLSH_DT_UINT16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
      case MLSH_DT_FP32: memcpy(out + i, p + 4 * i, 4); break;
      case MLSH_DT_INT32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = (float)v; break; }
      case MLSH_DT_UINT32: { uint32_t v; memcpy(&v, p + 4 * i, 4); out[i] = (float)v; break; }
      case MLSH_DT_FP64: { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
      case MLSH_DT_INT64: { int64_t v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
      case MLSH_DT_UINT64: { uint64_t v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
      default: return -1;
    }
  }
  return 0;
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

int mlsh_encode_f32(const float *src, size_t n, mlsh_dtype dt, void *dst, size_t dstlen) {
  size_t need = mlsh_dtype_nbytes(dt, n);
  if (need == SIZE_MAX || need > dstlen) return -1;
  uint8_t *p = dst;
  unsigned bits = mlsh_dtype_bits(dt);
  if (dt == MLSH_DT_FP16) { /* scales and values of fp16 weights: no per-element dispatch */
    pthread_once(&fp16_once, fp16_pick);
    fp16_encode(src, n, p);
    return 0;
  }
  if (bits < 8) {
    if (dt == MLSH_DT_INT4) {
      memset(p, 0, need);
      for (size_t i = 0; i < n; i++) {
        int v = (int)clampd(nearbyint(src[i]), -8, 7);
        size_t bit = i * 4;
        p[bit >> 3] |= (uint8_t)((v & 0xf) << (bit & 7));
      }
      return 0;
    }
    uint8_t codes[256];
    double hi = (double)((1u << bits) - 1);
    memset(p, 0, need);
    for (size_t done = 0; done < n;) {
      size_t chunk = n - done < 256 ? n - done : 256;
      for (size_t i = 0; i < chunk; i++) codes[i] = (uint8_t)clampd(nearbyint(src[done + i]), 0, hi);
      uint8_t tmp[256];
      mlsh_bitpack(codes, chunk, bits, tmp);
      /* chunk of 256 codes is byte aligned for every width, so OR-ing whole bytes is exact */
      size_t off = (done * bits) / 8, len = (chunk * bits + 7) / 8;
      for (size_t i = 0; i < len; i++) p[off + i] |= tmp[i];
      done += chunk;
    }
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    double v = src[i];
    switch (dt) {
      case MLSH_DT_BOOL: p[i] = v != 0; break;
      case MLSH_DT_UINT8: p[i] = (uint8_t)clampd(nearbyint(v), 0, 255); break;
      case MLSH_DT_INT8: p[i] = (uint8_t)(int8_t)clampd(nearbyint(v), -128, 127); break;
      case MLSH_DT_INT16: { int16_t h = (int16_t)clampd(nearbyint(v), -32768, 32767); memcpy(p + 2 * i, &h, 2); break; }
      case MLSH_DT_UINT16: { uint16_t h = (uint16_t)clampd(nearbyint(v), 0, 65535); memcpy(p + 2 * i, &h, 2); break; }
      case MLSH_DT_FP32: memcpy(p + 4 * i, src + i, 4); break;
      case MLSH_DT_INT32: { int32_t h = (int32_t)clampd(nearbyint(v), -2147483648.0, 2147483647.0); memcpy(p + 4 * i, &h, 4); break; }
      case MLSH_DT_UINT32: { uint32_t h = (uint32_t)clampd(nearbyint(v), 0, 4294967295.0); memcpy(p + 4 * i, &h, 4); break; }
      case MLSH_DT_FP64: memcpy(p + 8 * i, &v, 8); break;
      case MLSH_DT_INT64: { int64_t h = (int64_t)clampd(nearbyint(v), -9.2e18, 9.2e18); memcpy(p + 8 * i, &h, 8); break; }
      case MLSH_DT_UINT64: { uint64_t h = (uint64_t)clampd(nearbyint(v), 0, 1.8e19); memcpy(p + 8 * i, &h, 8); break; }
      default: return -1;
    }
  }
  return 0;
}
