/* values.c — MIL types and Values as interpreter tensors (see program.h: it_value_decode). A
 * Value is an immediate (floats, ints, bools, strings, longInts, doubles or packed bytes) or a
 * weight.bin blob; blobs of fp32 are borrowed from the mapped file, everything else decoded. */
#include "blobfile.h"
#include "program.h"
#include <stdlib.h>
#include <string.h>

typedef CoreML__Specification__MILSpec__Value MValue;
typedef CoreML__Specification__MILSpec__TensorValue MTensorValue;

mlsh_dtype it_dtype_from_mil(int mil) {
  switch (mil) {
  case 1: return MLSH_DT_BOOL;
  case 10: return MLSH_DT_FP16;
  case 11: return MLSH_DT_FP32;
  case 12: return MLSH_DT_FP64;
  case 13: return MLSH_DT_BF16;
  case 21: return MLSH_DT_INT8;
  case 22: return MLSH_DT_INT16;
  case 23: return MLSH_DT_INT32;
  case 24: return MLSH_DT_INT64;
  case 25: return MLSH_DT_INT4;
  case 31: return MLSH_DT_UINT8;
  case 32: return MLSH_DT_UINT16;
  case 33: return MLSH_DT_UINT32;
  case 34: return MLSH_DT_UINT64;
  case 35: return MLSH_DT_UINT4;
  case 36: return MLSH_DT_UINT2;
  case 37: return MLSH_DT_UINT1;
  case 38: return MLSH_DT_UINT6;
  case 39: return MLSH_DT_UINT3;
  case 40: return MLSH_DT_FP8E4M3;
  case 41: return MLSH_DT_FP8E5M2;
  default: return MLSH_DT_INVALID; /* string (2) and unknown */
  }
}

void it_type_from_mil(const CoreML__Specification__MILSpec__ValueType *vt, it_type *t) {
  memset(t, 0, sizeof *t);
  t->dt = MLSH_DT_INVALID;
  t->rank = -1;
  if (!vt) return;
  if (vt->type_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_STATE_TYPE) {
    t->is_state = 1;
    vt = vt->statetype ? vt->statetype->wrappedtype : NULL;
    if (!vt) return;
  }
  if (vt->type_case != CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_TENSOR_TYPE || !vt->tensortype) return;
  const CoreML__Specification__MILSpec__TensorType *tt = vt->tensortype;
  t->dt = it_dtype_from_mil(tt->datatype);
  if (tt->n_dimensions > IT_MAX_RANK) return;
  t->rank = (int)tt->n_dimensions;
  for (size_t i = 0; i < tt->n_dimensions; i++) {
    const CoreML__Specification__MILSpec__Dimension *d = tt->dimensions[i];
    t->shape[i] = (d && d->dimension_case == CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_CONSTANT && d->constant)
                      ? (int64_t)d->constant->size : -1;
  }
}

/* Fill t (storage of its dtype) from n raw elements of dtype src_dt in bytes[len]. */
static int fill_from_bytes(it_tensor *t, const uint8_t *bytes, size_t len, mlsh_dtype src_dt, mlsh_err *e) {
  size_t n = t->n;
  if (mlsh_dtype_nbytes(src_dt, n) > len)
    return mlsh_fail(e, NULL, "%zu bytes hold fewer than %zu %s values", len, n, mlsh_dtype_name(src_dt));
  if (t->st == IT_F32) return mlsh_decode_f32(bytes, len, src_dt, n, t->data) == 0 ? 0 : mlsh_fail(e, NULL, "short data");
  if (t->st == IT_B8) {
    for (size_t i = 0; i < n; i++) ((uint8_t *)t->data)[i] = bytes[i] != 0;
    return 0;
  }
  int64_t *o = t->data;
  unsigned bits = mlsh_dtype_bits(src_dt);
  if (bits < 8) {
    for (size_t i = 0; i < n; i++) {
      size_t bit = i * bits;
      unsigned v = bytes[bit / 8] >> (bit % 8);
      if (bit % 8 + bits > 8) v |= (unsigned)bytes[bit / 8 + 1] << (8 - bit % 8);
      v &= (1u << bits) - 1;
      o[i] = (src_dt == MLSH_DT_INT4 && v >= 8) ? (int64_t)v - 16 : (int64_t)v;
    }
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = bytes + i * (bits / 8);
    switch (src_dt) {
    case MLSH_DT_INT8: o[i] = (int8_t)p[0]; break;
    case MLSH_DT_UINT8: o[i] = p[0]; break;
    case MLSH_DT_INT16: { int16_t v; memcpy(&v, p, 2); o[i] = v; break; }
    case MLSH_DT_UINT16: { uint16_t v; memcpy(&v, p, 2); o[i] = v; break; }
    case MLSH_DT_INT32: { int32_t v; memcpy(&v, p, 4); o[i] = v; break; }
    case MLSH_DT_UINT32: { uint32_t v; memcpy(&v, p, 4); o[i] = v; break; }
    case MLSH_DT_INT64: case MLSH_DT_UINT64: memcpy(&o[i], p, 8); break;
    default: return mlsh_fail(e, NULL, "cannot read %s data as integers", mlsh_dtype_name(src_dt));
    }
  }
  return 0;
}

static int fill_immediate(it_tensor *t, const MTensorValue *tv, mlsh_err *e) {
  size_t n = t->n;
#define NEED(k) do { if ((k) < n) return mlsh_fail(e, NULL, "immediate value holds %zu elements, its type %zu", (size_t)(k), n); } while (0)
  switch (tv->value_case) {
  case CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_FLOATS:
    NEED(tv->floats->n_values);
    for (size_t i = 0; i < n; i++) {
      double v = tv->floats->values[i];
      if (t->st == IT_F32) ((float *)t->data)[i] = (float)v;
      else if (t->st == IT_I64) ((int64_t *)t->data)[i] = it_d2i(v);
      else if (t->st == IT_B8) ((uint8_t *)t->data)[i] = v != 0;
    }
    return 0;
  case CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_DOUBLES:
    NEED(tv->doubles->n_values);
    for (size_t i = 0; i < n; i++) {
      double v = tv->doubles->values[i];
      if (t->st == IT_F32) ((float *)t->data)[i] = (float)v;
      else if (t->st == IT_I64) ((int64_t *)t->data)[i] = it_d2i(v);
      else if (t->st == IT_B8) ((uint8_t *)t->data)[i] = v != 0;
    }
    return 0;
  case CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_INTS:
  case CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_LONG_INTS:
  case CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_BOOLS: {
    size_t have = tv->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_INTS ? tv->ints->n_values
                : tv->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_BOOLS ? tv->bools->n_values
                : tv->longints->n_values;
    NEED(have);
    for (size_t i = 0; i < n; i++) {
      int64_t v = tv->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_INTS ? tv->ints->values[i]
                : tv->value_case == CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_BOOLS ? (int64_t)tv->bools->values[i]
                : tv->longints->values[i];
      if (t->st == IT_F32) ((float *)t->data)[i] = (float)v;
      else if (t->st == IT_I64) ((int64_t *)t->data)[i] = v;
      else if (t->st == IT_B8) ((uint8_t *)t->data)[i] = v != 0;
    }
    return 0;
  }
  case CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_STRINGS: {
    NEED(tv->strings->n_values);
    if (t->st != IT_STR) return mlsh_fail(e, NULL, "string immediate for a %s value", mlsh_dtype_name(t->dt));
    for (size_t i = 0; i < n; i++) {
      ((char **)t->data)[i] = strdup(tv->strings->values[i] ? tv->strings->values[i] : "");
      if (!((char **)t->data)[i]) return mlsh_fail(e, NULL, "out of memory");
    }
    return 0;
  }
  case CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_BYTES:
    return fill_from_bytes(t, tv->bytes->values.data, tv->bytes->values.len, t->dt, e);
  default:
    return mlsh_fail(e, NULL, "immediate value holds no tensor");
  }
#undef NEED
}

it_tensor *it_value_decode(const MValue *v, mlsh_container *c, mlsh_err *e) {
  if (!v) return mlsh_fail(e, NULL, "value is missing"), NULL;
  it_type ty;
  it_type_from_mil(v->type, &ty);
  int is_string = v->type && v->type->type_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_TENSOR_TYPE &&
                  v->type->tensortype && v->type->tensortype->datatype == 2;
  if (ty.rank < 0 || (ty.dt == MLSH_DT_INVALID && !is_string)) return mlsh_fail(e, NULL, "value of a type the interpreter cannot hold (lists, tuples, dictionaries)"), NULL;
  for (int i = 0; i < ty.rank; i++)
    if (ty.shape[i] < 0) return mlsh_fail(e, NULL, "constant with an unknown dimension"), NULL;
  if (v->value_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_BLOB_FILE_VALUE && v->blobfilevalue) {
    const uint8_t *file;
    size_t len;
    const char *name;
    mlsh_blob b;
    if (mlsh_container_map(c, v->blobfilevalue->filename, &file, &len, &name, e) != 0) return NULL;
    if (mlsh_blob_read(file, len, v->blobfilevalue->offset, &b, name, e) != 0) return NULL;
    if (ty.dt == MLSH_DT_FP32 && b.dtype == MLSH_DT_FP32 && ((uintptr_t)b.data % 4) == 0) {
      size_t n = it_numel(ty.rank, ty.shape);
      if (n == SIZE_MAX || n * 4 > b.size) return mlsh_fail(e, name, "blob at %llu holds %llu bytes, fp32[%zu] needs more", (unsigned long long)v->blobfilevalue->offset, (unsigned long long)b.size, n), NULL;
      it_tensor *t = calloc(1, sizeof *t);
      if (!t) return mlsh_fail(e, NULL, "out of memory"), NULL;
      t->dt = MLSH_DT_FP32;
      t->st = IT_F32;
      t->rank = ty.rank;
      memcpy(t->shape, ty.shape, sizeof t->shape);
      t->n = n;
      t->data = (void *)b.data;
      t->borrowed = 1;
      t->refs = 1;
      return t;
    }
    it_tensor *t = it_tensor_new(ty.dt, ty.rank, ty.shape, e);
    if (!t) return NULL;
    mlsh_dtype src = b.dtype != MLSH_DT_INVALID ? b.dtype : ty.dt;
    if (fill_from_bytes(t, b.data, b.size, src, e) != 0) {
      char why[sizeof e->msg];
      snprintf(why, sizeof why, "%s", e->msg);
      mlsh_fail(e, name, "blob at offset %llu: %s", (unsigned long long)v->blobfilevalue->offset, why);
      it_unref(t);
      return NULL;
    }
    return t;
  }
  if (v->value_case != CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE || !v->immediatevalue ||
      v->immediatevalue->value_case != CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_TENSOR)
    return mlsh_fail(e, NULL, "value is not a tensor (lists, tuples and dictionaries are not supported)"), NULL;
  it_tensor *t = it_tensor_new(is_string ? MLSH_DT_INVALID : ty.dt, ty.rank, ty.shape, e);
  if (!t) return NULL;
  if (fill_immediate(t, v->immediatevalue->tensor, e) != 0) {
    it_unref(t);
    return NULL;
  }
  return t;
}
