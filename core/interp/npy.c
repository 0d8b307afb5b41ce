/* npy.c — .npy reader and writer (see npy.h). Header facts: magic "\x93NUMPY", major, minor,
 * header length (u16 LE for 1.x, u32 LE for 2.x/3.x), then a Python dict literal with 'descr',
 * 'fortran_order' and 'shape', padded with spaces and a newline. */
#include "npy.h"
#include "fsutil.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char kind; int size; mlsh_dtype dt; } npy_type;

static const npy_type TYPES[] = {
  {'b', 1, MLSH_DT_BOOL}, {'i', 1, MLSH_DT_INT8}, {'i', 2, MLSH_DT_INT16}, {'i', 4, MLSH_DT_INT32},
  {'i', 8, MLSH_DT_INT64}, {'u', 1, MLSH_DT_UINT8}, {'u', 2, MLSH_DT_UINT16}, {'u', 4, MLSH_DT_UINT32},
  {'u', 8, MLSH_DT_UINT64}, {'f', 2, MLSH_DT_FP16}, {'f', 4, MLSH_DT_FP32}, {'f', 8, MLSH_DT_FP64},
};

/* Find 'key' in the dict text and return a pointer just after the ':' (skipping spaces). */
static const char *dict_value(const char *h, size_t len, const char *key) {
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl + 2 <= len; i++) {
    if ((h[i] == '\'' || h[i] == '"') && memcmp(h + i + 1, key, kl) == 0 && h[i + 1 + kl] == h[i]) {
      size_t j = i + kl + 2;
      while (j < len && h[j] == ' ') j++;
      if (j >= len || h[j] != ':') return NULL;
      j++;
      while (j < len && h[j] == ' ') j++;
      return j < len ? h + j : NULL;
    }
  }
  return NULL;
}

static int parse_descr(const char *v, const char *end, const char *name, npy_type *t, int *big, mlsh_err *e) {
  if (v >= end || (*v != '\'' && *v != '"')) {
    if (v < end && *v == '[') return mlsh_fail(e, name, "structured dtypes are not supported");
    return mlsh_fail(e, name, "bad 'descr' in the .npy header");
  }
  char q = *v++;
  const char *s = v;
  while (v < end && *v != q) v++;
  if (v >= end) return mlsh_fail(e, name, "bad 'descr' in the .npy header");
  size_t n = (size_t)(v - s);
  char d[16];
  if (n == 0 || n >= sizeof d) return mlsh_fail(e, name, "bad 'descr' in the .npy header");
  memcpy(d, s, n);
  d[n] = 0;
  const char *p = d;
  *big = 0;
  if (*p == '<' || *p == '|' || *p == '=') p++;
  else if (*p == '>') { *big = 1; p++; }
  if (*p == 'O') return mlsh_fail(e, name, "object arrays are not supported (dtype %s)", d);
  if (*p == '?' && p[1] == 0) { *t = TYPES[0]; return 0; }
  char *endp;
  long sz = strtol(p + 1, &endp, 10);
  if (*endp == 0)
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
      if (TYPES[i].kind == *p && TYPES[i].size == sz) { *t = TYPES[i]; return 0; }
  return mlsh_fail(e, name, "unsupported .npy dtype '%s' (bool, int8..int64, uint8..uint64, float16/32/64)", d);
}

static int parse_shape(const char *v, const char *end, const char *name, int *rank, int64_t *shape, mlsh_err *e) {
  if (v >= end || *v != '(') return mlsh_fail(e, name, "bad 'shape' in the .npy header");
  v++;
  *rank = 0;
  for (;;) {
    while (v < end && (*v == ' ' || *v == ',')) v++;
    if (v >= end) return mlsh_fail(e, name, "bad 'shape' in the .npy header");
    if (*v == ')') return 0;
    if (*v < '0' || *v > '9') return mlsh_fail(e, name, "bad 'shape' in the .npy header");
    int64_t d = 0;
    while (v < end && *v >= '0' && *v <= '9') {
      if (d > (INT64_MAX - 9) / 10) return mlsh_fail(e, name, "shape dimension too large in the .npy header");
      d = d * 10 + (*v++ - '0');
    }
    if (v < end && *v == 'L') v++;
    if (*rank >= IT_MAX_RANK) return mlsh_fail(e, name, "array rank above %d", IT_MAX_RANK);
    shape[(*rank)++] = d;
  }
}

static void load_elem(const uint8_t *p, const npy_type *t, int big, it_tensor *o, size_t i) {
  uint8_t b[8];
  for (int k = 0; k < t->size; k++) b[k] = big ? p[t->size - 1 - k] : p[k];
  switch (t->dt) {
  case MLSH_DT_BOOL: ((uint8_t *)o->data)[i] = b[0] != 0; break;
  case MLSH_DT_INT8: ((int64_t *)o->data)[i] = (int8_t)b[0]; break;
  case MLSH_DT_UINT8: ((int64_t *)o->data)[i] = b[0]; break;
  case MLSH_DT_INT16: { int16_t v; memcpy(&v, b, 2); ((int64_t *)o->data)[i] = v; break; }
  case MLSH_DT_UINT16: { uint16_t v; memcpy(&v, b, 2); ((int64_t *)o->data)[i] = v; break; }
  case MLSH_DT_INT32: { int32_t v; memcpy(&v, b, 4); ((int64_t *)o->data)[i] = v; break; }
  case MLSH_DT_UINT32: { uint32_t v; memcpy(&v, b, 4); ((int64_t *)o->data)[i] = v; break; }
  case MLSH_DT_INT64: case MLSH_DT_UINT64: { int64_t v; memcpy(&v, b, 8); ((int64_t *)o->data)[i] = v; break; }
  case MLSH_DT_FP16: { uint16_t v; memcpy(&v, b, 2); ((float *)o->data)[i] = mlsh_fp16_to_f32(v); break; }
  case MLSH_DT_FP32: memcpy((float *)o->data + i, b, 4); break;
  case MLSH_DT_FP64: { double v; memcpy(&v, b, 8); ((float *)o->data)[i] = (float)v; break; }
  default: break;
  }
}

int it_npy_parse(const uint8_t *buf, size_t len, const char *name, it_tensor **out, mlsh_err *e) {
  *out = NULL;
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return mlsh_fail(e, name, "not a .npy file (no \\x93NUMPY magic)");
  unsigned major = buf[6];
  size_t hl, hoff;
  if (major == 1) { hl = (size_t)buf[8] | ((size_t)buf[9] << 8); hoff = 10; }
  else if (major == 2 || major == 3) {
    if (len < 12) return mlsh_fail(e, name, "truncated .npy header");
    hl = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
    hoff = 12;
  } else return mlsh_fail(e, name, ".npy format version %u.%u is not supported", major, buf[7]);
  if (hl > len - hoff) return mlsh_fail(e, name, "truncated .npy header (%zu bytes announced, %zu present)", hl, len - hoff);
  const char *h = (const char *)buf + hoff, *hend = h + hl;
  const char *fo = dict_value(h, hl, "fortran_order");
  const char *ds = dict_value(h, hl, "descr");
  const char *sh = dict_value(h, hl, "shape");
  if (!fo || !ds || !sh) return mlsh_fail(e, name, ".npy header lacks descr, fortran_order or shape");
  if ((size_t)(hend - fo) >= 4 && memcmp(fo, "True", 4) == 0) return mlsh_fail(e, name, "Fortran-order arrays are not supported (save with C order)");
  if ((size_t)(hend - fo) < 5 || memcmp(fo, "False", 5) != 0) return mlsh_fail(e, name, "bad 'fortran_order' in the .npy header");
  npy_type t = TYPES[0];
  int big = 0, rank = 0;
  int64_t shape[IT_MAX_RANK];
  if (parse_descr(ds, hend, name, &t, &big, e) || parse_shape(sh, hend, name, &rank, shape, e)) return -1;
  size_t n = it_numel(rank, shape);
  if (n == SIZE_MAX || n > SIZE_MAX / 8) return mlsh_fail(e, name, ".npy shape is too large");
  size_t need = n * (size_t)t.size, have = len - hoff - hl;
  if (need > have) return mlsh_fail(e, name, "truncated .npy data: %zu bytes needed, %zu present", need, have);
  it_tensor *o = it_tensor_new(t.dt, rank, shape, e);
  if (!o) {
    char why[sizeof e->msg];
    snprintf(why, sizeof why, "%s", e->msg);
    return mlsh_fail(e, name, "%s", why);
  }
  const uint8_t *d = buf + hoff + hl;
  for (size_t i = 0; i < n; i++) load_elem(d + i * (size_t)t.size, &t, big, o, i);
  *out = o;
  return 0;
}

int it_npy_read(const char *path, it_tensor **out, mlsh_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return mlsh_fail(e, path, "%s", strerror(errno));
  if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return mlsh_fail(e, path, "cannot seek"); }
  long sz = ftell(f);
  if (sz < 0) { fclose(f); return mlsh_fail(e, path, "cannot size the file"); }
  rewind(f);
  uint8_t *buf = malloc((size_t)sz + 1);
  if (!buf) { fclose(f); return mlsh_fail(e, path, "out of memory"); }
  size_t got = fread(buf, 1, (size_t)sz, f);
  fclose(f);
  int rc = it_npy_parse(buf, got, path, out, e);
  free(buf);
  return rc;
}

static const char *descr_of(mlsh_dtype dt, int *size) {
  switch (dt) {
  case MLSH_DT_BOOL: *size = 1; return "|b1";
  case MLSH_DT_INT8: *size = 1; return "|i1";
  case MLSH_DT_UINT8: *size = 1; return "|u1";
  case MLSH_DT_INT16: *size = 2; return "<i2";
  case MLSH_DT_UINT16: *size = 2; return "<u2";
  case MLSH_DT_INT32: *size = 4; return "<i4";
  case MLSH_DT_UINT32: *size = 4; return "<u4";
  case MLSH_DT_INT64: *size = 8; return "<i8";
  case MLSH_DT_UINT64: *size = 8; return "<u8";
  case MLSH_DT_FP16: *size = 2; return "<f2";
  case MLSH_DT_FP32: case MLSH_DT_BF16: *size = 4; return "<f4";
  case MLSH_DT_FP64: *size = 8; return "<f8";
  default: /* sub-byte ints widen to int8/uint8 */
    *size = 1;
    return dt == MLSH_DT_INT4 ? "|i1" : "|u1";
  }
}

int it_npy_encode(const it_tensor *t, uint8_t **bufp, size_t *lenp, mlsh_err *e) {
  if (t->st == IT_STR) return mlsh_fail(e, NULL, "string tensors cannot be written as .npy");
  int size;
  const char *descr = descr_of(t->dt, &size);
  char dict[256];
  int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < t->rank; i++) k += snprintf(dict + k, sizeof dict - (size_t)k, "%lld,%s", (long long)t->shape[i], i + 1 < t->rank ? " " : "");
  k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
  size_t hl = (size_t)k + 1, pre = 10;
  size_t total = (pre + hl + 63) / 64 * 64;
  hl = total - pre;
  size_t nbytes = t->n * (size_t)size;
  uint8_t *b = malloc(total + nbytes + 1);
  if (!b) return mlsh_fail(e, NULL, "out of memory");
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (uint8_t)(hl & 0xff);
  b[9] = (uint8_t)(hl >> 8);
  memset(b + pre, ' ', hl);
  memcpy(b + pre, dict, (size_t)k);
  b[total - 1] = '\n';
  uint8_t *d = b + total;
  for (size_t i = 0; i < t->n; i++) {
    uint8_t *p = d + i * (size_t)size;
    switch (t->dt) {
    case MLSH_DT_FP16: { uint16_t h = mlsh_f32_to_fp16(((float *)t->data)[i]); memcpy(p, &h, 2); break; }
    case MLSH_DT_FP32: case MLSH_DT_BF16: memcpy(p, (float *)t->data + i, 4); break;
    case MLSH_DT_FP64: { double v = ((float *)t->data)[i]; memcpy(p, &v, 8); break; }
    case MLSH_DT_BOOL: *p = ((uint8_t *)t->data)[i]; break;
    default: {
      int64_t v = ((int64_t *)t->data)[i];
      if (size == 1) *p = (uint8_t)v;
      else if (size == 2) { uint16_t w = (uint16_t)v; memcpy(p, &w, 2); }
      else if (size == 4) { uint32_t w = (uint32_t)v; memcpy(p, &w, 4); }
      else memcpy(p, &v, 8);
    }
    }
  }
  *bufp = b;
  *lenp = total + nbytes;
  return 0;
}

int it_npy_write(const char *path, const it_tensor *t, mlsh_err *e) {
  uint8_t *b;
  size_t len;
  if (it_npy_encode(t, &b, &len, e) != 0) return -1;
  int rc = mlsh_write_atomic(path, b, len, e);
  free(b);
  return rc;
}
