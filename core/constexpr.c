/* constexpr.c — compressed-weight decompression (see constexpr.h). */
#include "constexpr.h"
#include <stdlib.h>
#include <string.h>

/* n must be the product of the shape (a caller's inconsistency would index out of bounds). */
static int val_ok(const mlsh_cx_val *v, const char *what, mlsh_err *e) {
  if (v->rank < 0 || v->rank > MLSH_CX_MAX_RANK) return mlsh_fail(e, NULL, "%s has rank %d", what, v->rank);
  size_t n = 1;
  for (int d = 0; d < v->rank; d++) {
    if (v->shape[d] < 0 || (v->shape[d] > 0 && n > SIZE_MAX / (size_t)v->shape[d]))
      return mlsh_fail(e, NULL, "%s has a bad dimension %lld", what, (long long)v->shape[d]);
    n *= (size_t)v->shape[d];
  }
  if (n != v->n) return mlsh_fail(e, NULL, "%s holds %zu values, its shape %zu", what, v->n, n);
  return 0;
}

void mlsh_cx_round(float *v, size_t n, mlsh_dtype dt) {
  if (dt != MLSH_DT_FP16) return;
  for (size_t i = 0; i < n; i++) v[i] = mlsh_fp16_to_f32(mlsh_f32_to_fp16(v[i]));
}

void mlsh_cx_cast(const mlsh_cx_val *src, mlsh_dtype dt, float *out) {
  if (src->n) memcpy(out, src->v, src->n * sizeof *out);
  mlsh_cx_round(out, src->n, dt);
}

/* Flat parameter index of data element i when pshape (same rank as shape) tiles it in blocks.
 * Elements are visited in runs: `run` consecutive elements (row-major) share one block (the block
 * size along the last tiled dimension times the dimensions after it), so the loops below compute
 * the parameter index once per run. */
typedef struct {
  int rank;
  size_t run;
  int64_t bsz[MLSH_CX_MAX_RANK], dst[MLSH_CX_MAX_RANK], pst[MLSH_CX_MAX_RANK];
} blockmap;

static int blockmap_init(blockmap *b, int rank, const int64_t *shape, int prank, const int64_t *pshape,
                         const char *what, mlsh_err *e) {
  if (prank != rank) return mlsh_fail(e, NULL, "%s has rank %d, the data rank %d", what, prank, rank);
  b->rank = rank;
  int64_t s = 1, ps = 1;
  for (int d = rank - 1; d >= 0; d--) {
    if (pshape[d] < 1 || shape[d] % pshape[d] != 0)
      return mlsh_fail(e, NULL, "%s dimension %d (%lld) does not divide the data dimension (%lld)", what, d,
                       (long long)pshape[d], (long long)shape[d]);
    b->bsz[d] = shape[d] / pshape[d];
    b->dst[d] = s;
    b->pst[d] = ps;
    s *= shape[d];
    ps *= pshape[d];
  }
  b->run = (size_t)s; /* no tiled dimension: one run of every element */
  for (int d = rank - 1; d >= 0; d--)
    if (pshape[d] > 1) {
      b->run = (size_t)(b->bsz[d] * b->dst[d]);
      break;
    }
  if (b->run == 0) b->run = 1;
  return 0;
}

static size_t blockmap_at(const blockmap *b, size_t i) {
  size_t p = 0;
  for (int d = 0; d < b->rank; d++) {
    int64_t idx = (int64_t)(i / (size_t)b->dst[d]);
    i %= (size_t)b->dst[d];
    p += (size_t)((idx / b->bsz[d]) * b->pst[d]);
  }
  return p;
}

int mlsh_cx_affine(const mlsh_cx_val *q, const mlsh_cx_val *zp, const mlsh_cx_val *sc, int64_t axis, float *out,
                   mlsh_err *e) {
  size_t ns = sc->n > zp->n ? sc->n : zp->n;
  if (val_ok(q, "quantized_data", e) != 0) return -1;
  if (sc->n == 0 || zp->n == 0) return mlsh_fail(e, NULL, "scale or zero_point is empty");
  if ((sc->n != 1 && sc->n != ns) || (zp->n != 1 && zp->n != ns))
    return mlsh_fail(e, NULL, "scale and zero_point lengths differ (%zu, %zu)", sc->n, zp->n);
  if (axis < 0) axis += q->rank;
  size_t inner = 1;
  if (ns > 1) {
    if (axis < 0 || axis >= q->rank || (size_t)q->shape[axis] != ns)
      return mlsh_fail(e, NULL, "%zu scales/zero points do not match axis %lld of the data", ns, (long long)axis);
    for (int d = (int)axis + 1; d < q->rank; d++) inner *= (size_t)q->shape[d];
  }
  size_t run = ns > 1 ? inner : q->n;
  if (run == 0) run = 1;
  for (size_t i0 = 0; i0 < q->n; i0 += run) { /* one scale and zero point per run */
    size_t p = ns > 1 ? (i0 / inner) % ns : 0, end = q->n - i0 < run ? q->n : i0 + run;
    double s = sc->v[sc->n == 1 ? 0 : p], z = zp->v[zp->n == 1 ? 0 : p];
    for (size_t i = i0; i < end; i++) out[i] = (float)(s * ((double)q->v[i] - z));
  }
  return 0;
}

int mlsh_cx_unpack_bits(const uint8_t *bytes, size_t nbytes, unsigned bits, size_t n, float *out, mlsh_err *e) {
  if (bits < 1 || bits > 8) return mlsh_fail(e, NULL, "%u-bit codes are not supported", bits);
  if (nbytes < (n * bits + 7) / 8) return mlsh_fail(e, NULL, "%zu bytes hold fewer than %zu %u-bit codes", nbytes, n, bits);
  for (size_t i = 0; i < n; i++) {
    size_t bit = i * bits;
    unsigned v = bytes[bit / 8] >> (bit % 8);
    if (bit % 8 + bits > 8) v |= (unsigned)bytes[bit / 8 + 1] << (8 - bit % 8);
    out[i] = (float)(v & ((1u << bits) - 1));
  }
  return 0;
}

int mlsh_cx_lut16(const uint8_t *bytes, size_t nbytes, const float *lut, size_t lutn, size_t n, float *out, mlsh_err *e) {
  unsigned nbits = 0;
  switch (lutn) {
  case 2: nbits = 1; break;
  case 4: nbits = 2; break;
  case 8: nbits = 3; break;
  case 16: nbits = 4; break;
  case 64: nbits = 6; break;
  case 256: nbits = 8; break;
  default: return mlsh_fail(e, NULL, "LUT of %zu entries (iOS16 LUTs have 2, 4, 16, 64 or 256)", lutn);
  }
  if (mlsh_cx_unpack_bits(bytes, nbytes, nbits, n, out, e) != 0) return -1;
  for (size_t i = 0; i < n; i++) out[i] = lut[(size_t)out[i]];
  return 0;
}

int mlsh_cx_nn_codes(const uint8_t *bytes, size_t nbytes, unsigned nbits, size_t n, float *out, mlsh_err *e) {
  if (nbits < 1 || nbits > 8) return mlsh_fail(e, NULL, "%u-bit quantized weights (1 to 8 bits)", nbits);
  if (n > SIZE_MAX / nbits || (n * nbits + 7) / 8 > nbytes)
    return mlsh_fail(e, NULL, "%zu bytes hold fewer than %zu codes of %u bits", nbytes, n, nbits);
  size_t bit = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned v = 0;
    for (unsigned b = 0; b < nbits; b++, bit++) v = (v << 1) | ((bytes[bit >> 3] >> (7 - (bit & 7))) & 1u);
    out[i] = (float)v;
  }
  return 0;
}

int mlsh_cx_lut(const mlsh_cx_val *ix, const mlsh_cx_val *lut, int64_t va, float *out, int64_t *oshape, mlsh_err *e) {
  if (val_ok(ix, "indices", e) != 0 || val_ok(lut, "lut", e) != 0) return -1;
  int K = ix->rank;
  if (K + 2 > MLSH_CX_MAX_RANK) return mlsh_fail(e, NULL, "indices of rank %d (at most %d)", K, MLSH_CX_MAX_RANK - 2);
  if (lut->rank != K + 2) return mlsh_fail(e, NULL, "lut has rank %d, indices rank %d (needs rank + 2)", lut->rank, K);
  int64_t size = lut->shape[K], V = lut->shape[K + 1];
  if (size < 1 || V < 1) return mlsh_fail(e, NULL, "lut of %lld entries of %lld values", (long long)size, (long long)V);
  if (ix->n > SIZE_MAX / sizeof(float) / (size_t)V) return mlsh_fail(e, NULL, "%zu indices of %lld values overflow", ix->n, (long long)V);
  blockmap bm;
  if (blockmap_init(&bm, K, ix->shape, K, lut->shape, "lut", e) != 0) return -1;
  memcpy(oshape, ix->shape, (size_t)K * sizeof *oshape);
  if (V > 1) {
    if (va < 0) va += K;
    if (va < 0 || va >= K) return mlsh_fail(e, NULL, "vector_axis %lld is outside rank %d", (long long)va, K);
    oshape[va] *= V;
  }
  /* output strides, to place the V components of index i along vector_axis */
  int64_t ost[MLSH_CX_MAX_RANK], s = 1;
  for (int d = K - 1; d >= 0; d--) { ost[d] = s; s *= oshape[d]; }
  if (V == 1) {
    for (size_t i0 = 0; i0 < ix->n; i0 += bm.run) {
      const float *base = lut->v + blockmap_at(&bm, i0) * (size_t)size;
      size_t end = ix->n - i0 < bm.run ? ix->n : i0 + bm.run;
      for (size_t i = i0; i < end; i++) {
        float c = ix->v[i];
        if (!(c >= 0) || c >= (float)size) return mlsh_fail(e, NULL, "index %g is outside the LUT of %lld entries", c, (long long)size);
        out[i] = base[(size_t)c];
      }
    }
    return 0;
  }
  for (size_t i = 0; i < ix->n; i++) {
    float c = ix->v[i];
    if (!(c >= 0) || c >= (float)size) return mlsh_fail(e, NULL, "index %g is outside the LUT of %lld entries", c, (long long)size);
    const float *entry = lut->v + (blockmap_at(&bm, i) * (size_t)size + (size_t)c) * (size_t)V;
    if (V == 1) { out[i] = entry[0]; continue; }
    size_t rem = i, obase = 0;
    for (int d = 0; d < K; d++) {
      size_t idx = rem / (size_t)bm.dst[d];
      rem %= (size_t)bm.dst[d];
      obase += (d == va ? idx * (size_t)V : idx) * (size_t)ost[d];
    }
    for (int64_t v = 0; v < V; v++) out[obase + (size_t)v * (size_t)ost[va]] = entry[v];
  }
  return 0;
}

static size_t ones(const float *mask, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += mask[i] != 0;
  return k;
}

int mlsh_cx_sparse(const float *mask, size_t n, const float *nz, size_t nnz, float *out, mlsh_err *e) {
  size_t k = ones(mask, n), j = 0;
  if (k != nnz) return mlsh_fail(e, NULL, "mask selects %zu elements, nonzero_data holds %zu", k, nnz);
  for (size_t i = 0; i < n; i++) out[i] = mask[i] != 0 ? nz[j++] : 0.0f;
  return 0;
}

int mlsh_cx_shift_scale(const mlsh_cx_val *d, const mlsh_cx_val *sc, const mlsh_cx_val *off, float *out, mlsh_err *e) {
  if (val_ok(d, "data", e) != 0 || val_ok(sc, "scale", e) != 0) return -1;
  blockmap bm;
  if (blockmap_init(&bm, d->rank, d->shape, sc->rank, sc->shape, "scale", e) != 0) return -1;
  if (off && off->n != sc->n) return mlsh_fail(e, NULL, "offset has %zu values, scale %zu", off->n, sc->n);
  for (size_t i0 = 0; i0 < d->n; i0 += bm.run) {
    size_t p = blockmap_at(&bm, i0), end = d->n - i0 < bm.run ? d->n : i0 + bm.run;
    double s = sc->v[p], o = off ? off->v[p] : 0.0;
    for (size_t i = i0; i < end; i++) out[i] = (float)(s * ((double)d->v[i] - o));
  }
  return 0;
}

int mlsh_cx_sparse_shift_scale(const mlsh_cx_val *mask, const mlsh_cx_val *nz, const mlsh_cx_val *sc,
                               const mlsh_cx_val *off, float *out, mlsh_err *e) {
  if (val_ok(mask, "data_mask", e) != 0 || val_ok(sc, "scale", e) != 0) return -1;
  blockmap bm;
  if (blockmap_init(&bm, mask->rank, mask->shape, sc->rank, sc->shape, "scale", e) != 0) return -1;
  if (off && off->n != sc->n) return mlsh_fail(e, NULL, "offset has %zu values, scale %zu", off->n, sc->n);
  size_t k = ones(mask->v, mask->n), j = 0;
  if (k != nz->n) return mlsh_fail(e, NULL, "mask selects %zu elements, nonzero_data holds %zu", k, nz->n);
  for (size_t i0 = 0; i0 < mask->n; i0 += bm.run) {
    size_t p = blockmap_at(&bm, i0), end = mask->n - i0 < bm.run ? mask->n : i0 + bm.run;
    double s = sc->v[p], o = off ? off->v[p] : 0.0;
    for (size_t i = i0; i < end; i++)
      if (mask->v[i] != 0) {
        out[j] = (float)(s * ((double)nz->v[j] - o));
        j++;
      }
  }
  return 0;
}

/* lut_to_sparse with scalar LUT entries: each nonzero index looked up in the LUT of its dense
 * position's block; the mask passes through as 0/1. */
static int lut_to_sparse1(const mlsh_cx_val *mask, const mlsh_cx_val *nz, const mlsh_cx_val *lut, float *out_mask,
                          int64_t *oshape, float *out_nz, mlsh_err *e) {
  int K = mask->rank;
  int64_t size = lut->shape[K];
  if (size < 1) return mlsh_fail(e, NULL, "lut of %lld entries of 1 values", (long long)size);
  blockmap bm;
  if (blockmap_init(&bm, K, mask->shape, K, lut->shape, "lut", e) != 0) return -1;
  size_t nones = ones(mask->v, mask->n), j = 0;
  if (nones != nz->n) return mlsh_fail(e, NULL, "indices_mask selects %zu elements, indices_nonzero_data holds %zu", nones, nz->n);
  for (size_t i0 = 0; i0 < mask->n; i0 += bm.run) {
    const float *base = lut->v + blockmap_at(&bm, i0) * (size_t)size;
    size_t end = mask->n - i0 < bm.run ? mask->n : i0 + bm.run;
    for (size_t i = i0; i < end; i++) {
      out_mask[i] = mask->v[i] != 0;
      if (mask->v[i] == 0) continue;
      float c = nz->v[j];
      if (!(c >= 0) || c >= (float)size) return mlsh_fail(e, NULL, "index %g is outside the LUT of %lld entries", c, (long long)size);
      out_nz[j++] = base[(size_t)c];
    }
  }
  if (K) memcpy(oshape, mask->shape, (size_t)K * sizeof *oshape);
  return 0;
}

int mlsh_cx_lut_to_sparse(const mlsh_cx_val *mask, const mlsh_cx_val *nz, const mlsh_cx_val *lut, int64_t va,
                          float *out_mask, int64_t *oshape, float *out_nz, mlsh_err *e) {
  if (val_ok(mask, "indices_mask", e) != 0 || val_ok(lut, "lut", e) != 0) return -1;
  int K = mask->rank;
  if (lut->rank != K + 2) return mlsh_fail(e, NULL, "lut has rank %d, indices_mask rank %d (needs rank + 2)", lut->rank, K);
  size_t V = (size_t)lut->shape[K + 1];
  if (V < 1 || mask->n > SIZE_MAX / sizeof(float) / V - 1) return mlsh_fail(e, NULL, "lut vectors of %zu values for %zu positions", V, mask->n);
  if (V == 1) return lut_to_sparse1(mask, nz, lut, out_mask, oshape, out_nz, e);
  /* dense index tensor (0 where masked out), then a dense lookup, then keep the expanded mask */
  float *dense_ix = malloc((mask->n ? mask->n : 1) * sizeof *dense_ix);
  float *dense = malloc((mask->n * V + 1) * sizeof *dense);
  float *onesm = malloc((mask->n * V + 1) * sizeof *onesm);
  int rc = -1;
  if (!dense_ix || !dense || !onesm) { mlsh_fail(e, NULL, "out of memory"); goto done; }
  size_t nones = ones(mask->v, mask->n), j = 0;
  if (nones != nz->n) { mlsh_fail(e, NULL, "indices_mask selects %zu elements, indices_nonzero_data holds %zu", nones, nz->n); goto done; }
  for (size_t i = 0; i < mask->n; i++) dense_ix[i] = mask->v[i] != 0 ? nz->v[j++] : 0.0f;
  mlsh_cx_val ix = *mask;
  ix.v = dense_ix;
  if (mlsh_cx_lut(&ix, lut, va, dense, oshape, e) != 0) goto done;
  /* the mask expanded the same way: look it up through a LUT of ones */
  mlsh_cx_val mm = *mask;
  /* expand the mask with a one-block LUT: entry 0 -> zeros, entry 1 -> ones */
  mlsh_cx_val ml = {MLSH_DT_FP32, K + 2, {0}, 2 * V, NULL};
  for (int d = 0; d < K; d++) ml.shape[d] = 1;
  ml.shape[K] = 2;
  ml.shape[K + 1] = (int64_t)V;
  float *ol = malloc(2 * V * sizeof *ol);
  if (!ol) { mlsh_fail(e, NULL, "out of memory"); goto done; }
  for (size_t v = 0; v < V; v++) { ol[v] = 0; ol[V + v] = 1; }
  ml.v = ol;
  int64_t oshape2[MLSH_CX_MAX_RANK];
  float *mv = malloc((mask->n ? mask->n : 1) * sizeof *mv);
  if (!mv) { free(ol); mlsh_fail(e, NULL, "out of memory"); goto done; }
  for (size_t i = 0; i < mask->n; i++) mv[i] = mask->v[i] != 0;
  mm.v = mv;
  int r2 = mlsh_cx_lut(&mm, &ml, va, onesm, oshape2, e);
  free(mv); free(ol);
  if (r2 != 0) goto done;
  size_t k = 0;
  for (size_t i = 0; i < mask->n * V; i++) {
    out_mask[i] = onesm[i];
    if (onesm[i] != 0) out_nz[k++] = dense[i];
  }
  rc = 0;
done:
  free(dense_ix);
  free(dense);
  free(onesm);
  return rc;
}

int mlsh_cx_nn_linear(const mlsh_cx_val *q, const float *scale, size_t ns, const float *bias, size_t nb, float *out,
                      mlsh_err *e) {
  size_t per = ns > 1 ? q->n / ns : q->n;
  if (ns > 1 && per == 0) return mlsh_fail(e, NULL, "%zu scales for %zu quantized values", ns, q->n);
  for (size_t i0 = 0; i0 < q->n; i0 += per) { /* one scale and bias per run */
    size_t c = i0 / per, end = q->n - i0 < per ? q->n : i0 + per;
    double s = ns ? scale[c < ns ? c : 0] : 1.0, b = nb ? bias[c < nb ? c : 0] : 0.0;
    for (size_t i = i0; i < end; i++) out[i] = (float)(s * (double)q->v[i] + b);
  }
  return 0;
}
