/* quantize_x86.h — part of quantize.c (included there only, after its context types): the
 * x86 vector kernels (AVX + F16C, AVX-512F). Each does per element exactly the operations of
 * its scalar twin in quantize.c (min/max, quant_core, block_params), so the results are the
 * same bits; valgrind and CPUs without these extensions take the scalar code. */
#ifndef MLSH_COMPRESS_QUANTIZE_X86_H
#define MLSH_COMPRESS_QUANTIZE_X86_H
#ifdef MLSH_QUANT_X86
/* Min/max of fp16 codes h[0..len) into *lo, *hi; *bad |= an inf/NaN code seen. */
__attribute__((target("avx,f16c"))) static void minmax_f16c(const uint16_t *h, size_t len, float *lo, float *hi,
                                                             unsigned *bad) {
  __m256 vlo = _mm256_set1_ps(*lo), vhi = _mm256_set1_ps(*hi);
  const __m128i em = _mm_set1_epi16(0x7c00);
  __m128i vb = _mm_setzero_si128();
  size_t k = 0;
  for (; k + 8 <= len; k += 8) {
    __m128i hv = _mm_loadu_si128((const __m128i *)(const void *)(h + k));
    vb = _mm_or_si128(vb, _mm_cmpeq_epi16(_mm_and_si128(hv, em), em));
    __m256 v = _mm256_cvtph_ps(hv);
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
  }
  float a[8], b[8], l = *lo, u = *hi;
  _mm256_storeu_ps(a, vlo);
  _mm256_storeu_ps(b, vhi);
  for (int j = 0; j < 8; j++) {
    l = a[j] < l ? a[j] : l;
    u = b[j] > u ? b[j] : u;
  }
  unsigned bd = _mm_movemask_epi8(vb) != 0;
  for (; k < len; k++) {
    float v = mlsh_fp16_to_f32(h[k]);
    bd |= (h[k] & 0x7c00u) == 0x7c00u;
    l = v < l ? v : l;
    u = v > u ? v : u;
  }
  *lo = l;
  *hi = u;
  *bad |= bd;
}

/* minmax_f16c 16 lanes at a time (AVX-512F), the rest (< 16) by minmax_f16c: the same min/max
 * (of a set: the order does not matter) and the same flag (v - v is NaN iff v is inf/NaN). */
__attribute__((target("avx,f16c,avx512f"))) static void minmax_512(const uint16_t *h, size_t len, float *lo, float *hi,
                                                                   unsigned *bad) {
  __m512 vlo = _mm512_set1_ps(*lo), vhi = _mm512_set1_ps(*hi);
  __mmask16 nf = 0;
  size_t k = 0;
  for (; k + 16 <= len; k += 16) {
    __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(h + k)));
    __m512 z = _mm512_sub_ps(v, v);
    nf |= _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
    vlo = _mm512_min_ps(vlo, v);
    vhi = _mm512_max_ps(vhi, v);
  }
  *lo = _mm512_reduce_min_ps(vlo);
  *hi = _mm512_reduce_max_ps(vhi);
  *bad |= nf != 0;
  if (k < len) minmax_f16c(h + k, len - k, lo, hi, bad);
}

static inline __attribute__((target("avx,f16c"))) __m256 r16v(__m256 v) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* 8 codes (the low bytes of b8) and 8 reconstructed values, or the first `left` of them. */
static inline __attribute__((target("avx"))) void store8(uint8_t *raw, float *rec, size_t left, __m128i b8, __m256 rv) {
  if (left >= 8) {
    _mm_storel_epi64((__m128i *)(void *)raw, b8);
    _mm256_storeu_ps(rec, rv);
    return;
  }
  uint8_t pb[16];
  float pr[8];
  _mm_storeu_si128((__m128i *)(void *)pb, b8);
  _mm256_storeu_ps(pr, rv);
  for (size_t j = 0; j < left; j++) raw[j] = pb[j], rec[j] = pr[j];
}

/* quant_core for weight dtype fp16 without codes, 8 lanes at a time: the same operations in the
 * same order on each element (F16C rounding is mlsh_round_fp16, round-to-nearest-int is
 * mlsh_rint_even, min/max then the NaN select is quant_code), so the same bits. */
__attribute__((target("avx,f16c"))) static void quant_core_f16c(const q_ctx *c, qbatch *q, const float *tv, size_t m,
                                                                 uint8_t *raw, float *rec) {
  const __m256 qmin = _mm256_set1_ps((float)c->info->qmin), qmax = _mm256_set1_ps((float)c->info->qmax);
  const __m128i mask = _mm_set1_epi16((short)((1u << c->o->nbits) - 1));
  size_t k = 0;
  for (; k < m; k += 8) {
    float pt[8], ps[8], pz[8], pzs[8];
    const float *t = tv + k, *sc = q->sc + k, *zf = q->zf + k, *zs = q->zs + k;
    size_t left = m - k;
    if (left < 8) { /* the tail, padded with harmless lanes */
      for (size_t j = 0; j < 8; j++) {
        pt[j] = j < left ? t[j] : 0.0f;
        ps[j] = j < left ? sc[j] : 1.0f;
        pz[j] = j < left ? zf[j] : 0.0f;
        pzs[j] = j < left ? zs[j] : 0.0f;
      }
      t = pt, sc = ps, zf = pz, zs = pzs;
    }
    __m256 vsc = _mm256_loadu_ps(sc);
    __m256 v = r16v(_mm256_div_ps(r16v(_mm256_loadu_ps(t)), vsc));
    __m256 r = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), _mm256_loadu_ps(zf));
    __m256 cl = _mm256_min_ps(_mm256_max_ps(r, qmin), qmax);
    cl = _mm256_and_ps(cl, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
    __m256i iv = _mm256_cvttps_epi32(cl);
    __m128i w16 = _mm_and_si128(_mm_packs_epi32(_mm256_castsi256_si128(iv), _mm256_extractf128_si256(iv, 1)), mask);
    __m128i b8 = _mm_packus_epi16(w16, w16);
    __m256 rv = r16v(_mm256_mul_ps(_mm256_sub_ps(cl, _mm256_loadu_ps(zs)), vsc));
    store8(raw + k, rec + k, left, b8, rv);
  }
}

/* The same for one run of m elements sharing a block (scale sc, zero points zf as used and zs
 * as stored): the parameters broadcast instead of loaded per element. */
__attribute__((target("avx,f16c"))) static void quant_run_f16c(const q_ctx *c, const float *t, size_t m, float sc,
                                                                float zf, float zs, uint8_t *raw, float *rec) {
  const __m256 qmin = _mm256_set1_ps((float)c->info->qmin), qmax = _mm256_set1_ps((float)c->info->qmax);
  const __m256 vsc = _mm256_set1_ps(sc), vzf = _mm256_set1_ps(zf), vzs = _mm256_set1_ps(zs);
  const __m128i mask = _mm_set1_epi16((short)((1u << c->o->nbits) - 1));
  for (size_t k = 0; k < m; k += 8) {
    float pt[8];
    size_t left = m - k;
    const float *tp = t + k;
    if (left < 8) {
      for (size_t j = 0; j < 8; j++) pt[j] = j < left ? tp[j] : 0.0f;
      tp = pt;
    }
    __m256 v = r16v(_mm256_div_ps(r16v(_mm256_loadu_ps(tp)), vsc));
    __m256 r = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzf);
    __m256 cl = _mm256_min_ps(_mm256_max_ps(r, qmin), qmax);
    cl = _mm256_and_ps(cl, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
    __m256i iv = _mm256_cvttps_epi32(cl);
    __m128i w16 = _mm_and_si128(_mm_packs_epi32(_mm256_castsi256_si128(iv), _mm256_extractf128_si256(iv, 1)), mask);
    __m128i b8 = _mm_packus_epi16(w16, w16);
    __m256 rv = r16v(_mm256_mul_ps(_mm256_sub_ps(cl, vzs), vsc));
    store8(raw + k, rec + k, left, b8, rv);
  }
}

static inline __attribute__((target("avx512f"))) __m512 r16z(__m512 v) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* quant_run_f16c 16 lanes at a time (AVX-512F), the rest (< 16) by quant_run_f16c: per element
 * the same operations (fp16 rounding, division, round to nearest even, the NaN select, min/max
 * with the same operand order), so the same bits; codes are (int)v & mask either way. */
__attribute__((target("avx,f16c,avx512f"))) static void quant_run_512(const q_ctx *c, const float *t, size_t m, float sc,
                                                                       float zf, float zs, uint8_t *raw, float *rec) {
  const __m512 qmin = _mm512_set1_ps((float)c->info->qmin), qmax = _mm512_set1_ps((float)c->info->qmax);
  const __m512 vsc = _mm512_set1_ps(sc), vzf = _mm512_set1_ps(zf), vzs = _mm512_set1_ps(zs);
  const __m512i mask = _mm512_set1_epi32((int)((1u << c->o->nbits) - 1));
  size_t k = 0;
  for (; k + 16 <= m; k += 16) {
    __m512 v = r16z(_mm512_div_ps(r16z(_mm512_loadu_ps(t + k)), vsc));
    __m512 r = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzf);
    __m512 cl = _mm512_min_ps(_mm512_max_ps(r, qmin), qmax);
    cl = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), cl);
    __m512i iv = _mm512_and_si512(_mm512_cvttps_epi32(cl), mask);
    _mm_storeu_si128((__m128i *)(void *)(raw + k), _mm512_cvtepi32_epi8(iv));
    _mm512_storeu_ps(rec + k, r16z(_mm512_mul_ps(_mm512_sub_ps(cl, vzs), vsc)));
  }
  if (k < m) quant_run_f16c(c, t + k, m - k, sc, zf, zs, raw + k, rec + k);
}

/* The codes of the fp16 values h[0..m) of one block (scale sc, zero point as used zf) straight
 * into out, for a caller that wants no reconstruction: 8 bits a byte, or with nbits 4 two a
 * byte (low nibble first; m even). The operations of quant_run_512 on each element (an fp16
 * input is already in the weight dtype, so its rounding is the identity), hence the same codes.
 * Returns how many it did (a multiple of 16); the caller codes the rest. */
__attribute__((target("avx,f16c,avx512f"))) static size_t codes_f16_512(const q_ctx *c, const uint16_t *h, size_t m,
                                                                        float sc, float zf, uint8_t *out) {
  const __m512 qmin = _mm512_set1_ps((float)c->info->qmin), qmax = _mm512_set1_ps((float)c->info->qmax);
  const __m512 vsc = _mm512_set1_ps(sc), vzf = _mm512_set1_ps(zf);
  const __m512i mask = _mm512_set1_epi32((int)((1u << c->o->nbits) - 1));
  const int four = c->o->nbits == 4;
  size_t k = 0;
  for (; k + 16 <= m; k += 16) {
    __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(h + k)));
    __m512 v = r16z(_mm512_div_ps(w, vsc));
    __m512 r = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzf);
    __m512 cl = _mm512_min_ps(_mm512_max_ps(r, qmin), qmax);
    cl = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), cl);
    __m512i iv = _mm512_and_si512(_mm512_cvttps_epi32(cl), mask);
    if (four) /* each 64-bit lane holds codes (even, odd): even | odd << 4 in its low byte */
      _mm_storel_epi64((__m128i *)(void *)(out + k / 2), _mm512_cvtepi64_epi8(_mm512_or_si512(iv, _mm512_srli_epi64(iv, 28))));
    else _mm_storeu_si128((__m128i *)(void *)(out + k), _mm512_cvtepi32_epi8(iv));
  }
  return k;
}

/* block_params for blocks [s, s + 16) from mn[0..16), mx[0..16), weight dtype fp16, AVX-512F:
 * the same operations in the same order (F16C rounding is mlsh_round_fp16; max_ps(a, b) is
 * a > b ? a : b and min_ps(a, b) a < b ? a : b, the ternaries of block_params; roundscale is
 * mlsh_rint_even), so the same bits. */
__attribute__((target("avx,f16c,avx512f"))) static void block_params16(const q_ctx *c, size_t s, const float *mn,
                                                                        const float *mx) {
  const mlsh_quant_info *info = c->info;
  const __m512 zero = _mm512_setzero_ps(), qmin = _mm512_set1_ps((float)info->qmin);
  const __m512 qmax = _mm512_set1_ps((float)info->qmax);
  const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
  __m512 vmn = r16z(_mm512_loadu_ps(mn)), vmx = r16z(_mm512_loadu_ps(mx)), lo, hi;
  if (c->o->symmetric) {
    __m512 a = _mm512_max_ps(_mm512_abs_ps(vmn), _mm512_abs_ps(vmx));
    lo = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), sign)); /* -a */
    hi = a;
  } else {
    lo = _mm512_min_ps(vmn, zero);
    hi = _mm512_max_ps(vmx, zero);
  }
  __m512 range = r16z(_mm512_sub_ps(hi, lo));
  _mm512_storeu_ps(c->scale + s, r16z(_mm512_div_ps(range, _mm512_sub_ps(qmax, qmin))));
  if (!info->has_zero_point) return;
  __m512 z;
  if (c->o->symmetric) z = _mm512_set1_ps((float)(info->qmax / 2));
  else {
    __m512 num = r16z(_mm512_sub_ps(r16z(_mm512_mul_ps(qmin, hi)), r16z(_mm512_mul_ps(qmax, lo))));
    z = _mm512_roundscale_ps(r16z(_mm512_div_ps(num, range)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    z = _mm512_max_ps(qmin, _mm512_min_ps(qmax, z)); /* NaN stays NaN */
  }
  _mm512_storeu_ps(c->zpf + s, z);
  _mm512_storeu_ps(c->zps + s, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, z, _CMP_ORD_Q), z));
}
#endif
#endif
