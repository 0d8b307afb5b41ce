/* nn_wire.c — undeclared protobuf fields, read from unknown fields or raw bytes (see nn_wire.h). */
#include "nn_wire.h"
#include <string.h>

nnw_msg nnw_of(const void *pm) {
  nnw_msg m = {pm, NULL, 0};
  return m;
}

nnw_msg nnw_raw(const uint8_t *p, size_t n) {
  nnw_msg m = {NULL, p, n};
  return m;
}

static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v) {
  uint64_t r = 0;
  for (int s = 0; s < 70 && *i < n; s += 7) {
    uint8_t b = p[(*i)++];
    if (s < 64) r |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80)) { *v = r; return 1; }
  }
  return 0;
}

static uint64_t le(const uint8_t *p, size_t k) {
  uint64_t v = 0;
  for (size_t i = 0; i < k; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Fill f's value from a payload of the given wire type. */
static int payload(int wire, const uint8_t *p, size_t n, nnw_field *f) {
  f->wire = wire;
  f->data = p;
  f->len = n;
  f->v = 0;
  size_t i = 0;
  switch (wire) {
  case 0: return varint(p, n, &i, &f->v);
  case 1: if (n < 8) return 0; f->v = le(p, 8); return 1;
  case 5: if (n < 4) return 0; f->v = le(p, 4); return 1;
  case 2: return 1;
  default: return 0;
  }
}

int nnw_next(const nnw_msg *m, size_t *cursor, nnw_field *f) {
  if (m->m) {
    while (*cursor < m->m->n_unknown_fields) {
      const ProtobufCMessageUnknownField *u = &m->m->unknown_fields[(*cursor)++];
      int wire = u->wire_type == PROTOBUF_C_WIRE_TYPE_VARINT ? 0 : u->wire_type == PROTOBUF_C_WIRE_TYPE_64BIT ? 1
                 : u->wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED ? 2 : u->wire_type == PROTOBUF_C_WIRE_TYPE_32BIT ? 5 : -1;
      f->field = u->tag;
      const uint8_t *d = u->data;
      size_t n = u->len;
      if (wire == 2) { /* protobuf-c keeps the length prefix of an unknown length-delimited field */
        size_t i = 0;
        uint64_t l;
        if (!varint(d, n, &i, &l) || l != n - i) continue;
        d += i;
        n -= i;
      }
      if (payload(wire, d, n, f)) return 1;
    }
    return 0;
  }
  while (*cursor < m->n) {
    uint64_t key, len;
    size_t i = *cursor;
    if (!varint(m->p, m->n, &i, &key)) { *cursor = m->n; return 0; }
    int wire = (int)(key & 7);
    size_t start = i, size;
    if (wire == 0) {
      uint64_t v;
      if (!varint(m->p, m->n, &i, &v)) { *cursor = m->n; return 0; }
      size = i - start;
    } else if (wire == 1 || wire == 5) size = wire == 1 ? 8 : 4;
    else if (wire == 2) {
      if (!varint(m->p, m->n, &i, &len)) { *cursor = m->n; return 0; }
      start = i;
      size = (size_t)len;
      if (len > m->n - i) { *cursor = m->n; return 0; }
    } else { *cursor = m->n; return 0; }
    if (size > m->n - start) { *cursor = m->n; return 0; }
    *cursor = start + size;
    f->field = (unsigned)(key >> 3);
    if (payload(wire, m->p + start, size, f)) return 1;
  }
  return 0;
}

int nnw_get(const nnw_msg *m, unsigned field, nnw_field *out) {
  size_t cur = 0;
  nnw_field f;
  int found = 0;
  while (nnw_next(m, &cur, &f))
    if (f.field == field) { *out = f; found = 1; }
  return found;
}

int nnw_has(const nnw_msg *m, unsigned field) {
  nnw_field f;
  return nnw_get(m, field, &f);
}

uint64_t nnw_u64(const nnw_msg *m, unsigned field, uint64_t def) {
  nnw_field f;
  return nnw_get(m, field, &f) && f.wire != 2 ? f.v : def;
}

int64_t nnw_i64(const nnw_msg *m, unsigned field, int64_t def) {
  return (int64_t)nnw_u64(m, field, (uint64_t)def);
}

float nnw_f32(const nnw_msg *m, unsigned field, float def) {
  nnw_field f;
  if (!nnw_get(m, field, &f) || f.wire != 5) return def;
  uint32_t u = (uint32_t)f.v;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

double nnw_f64(const nnw_msg *m, unsigned field, double def) {
  nnw_field f;
  if (!nnw_get(m, field, &f) || f.wire != 1) return def;
  double x;
  memcpy(&x, &f.v, 8);
  return x;
}

nnw_msg nnw_sub(const nnw_msg *m, unsigned field, int *present) {
  nnw_field f;
  int ok = nnw_get(m, field, &f) && f.wire == 2;
  if (present) *present = ok;
  return ok ? nnw_raw(f.data, f.len) : nnw_raw(NULL, 0);
}

size_t nnw_ints(const nnw_msg *m, unsigned field, int64_t *out, size_t max) {
  size_t cur = 0, k = 0;
  nnw_field f;
  while (nnw_next(m, &cur, &f)) {
    if (f.field != field) continue;
    if (f.wire == 0) {
      if (k < max) out[k] = (int64_t)f.v;
      k++;
    } else if (f.wire == 2) {
      size_t i = 0;
      uint64_t v;
      while (i < f.len && varint(f.data, f.len, &i, &v)) {
        if (k < max) out[k] = (int64_t)v;
        k++;
      }
    }
  }
  return k;
}

static double real(const uint8_t *p, int dbl) {
  if (dbl) {
    uint64_t u = le(p, 8);
    double x;
    memcpy(&x, &u, 8);
    return x;
  }
  uint32_t u = (uint32_t)le(p, 4);
  float x;
  memcpy(&x, &u, 4);
  return x;
}

size_t nnw_reals(const nnw_msg *m, unsigned field, int dbl, double *out, size_t max) {
  size_t cur = 0, k = 0, w = dbl ? 8 : 4;
  nnw_field f;
  while (nnw_next(m, &cur, &f)) {
    if (f.field != field) continue;
    if (f.wire == (dbl ? 1 : 5)) {
      if (k < max) out[k] = real(f.data, dbl);
      k++;
    } else if (f.wire == 2)
      for (size_t i = 0; i + w <= f.len; i += w) {
        if (k < max) out[k] = real(f.data + i, dbl);
        k++;
      }
  }
  return k;
}
