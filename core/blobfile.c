/* blobfile.c — weight.bin reader and writer (see blobfile.h). */
#include "blobfile.h"
#include <stdlib.h>
#include <string.h>

static const mlsh_dtype code_map[] = {
  [1] = MLSH_DT_FP16, [2] = MLSH_DT_FP32, [3] = MLSH_DT_UINT8, [4] = MLSH_DT_INT8, [5] = MLSH_DT_BF16,
  [6] = MLSH_DT_INT16, [7] = MLSH_DT_UINT16, [8] = MLSH_DT_INT4, [9] = MLSH_DT_UINT1, [10] = MLSH_DT_UINT2,
  [11] = MLSH_DT_UINT4, [12] = MLSH_DT_UINT3, [13] = MLSH_DT_UINT6, [14] = MLSH_DT_INT32, [15] = MLSH_DT_UINT32,
  [16] = MLSH_DT_FP8E4M3, [17] = MLSH_DT_FP8E5M2,
};

mlsh_dtype mlsh_blob_dtype_to_mlsh(uint32_t code) {
  return code < sizeof code_map / sizeof code_map[0] ? code_map[code] : MLSH_DT_INVALID;
}

uint32_t mlsh_blob_dtype_from_mlsh(mlsh_dtype dt) {
  for (uint32_t i = 1; i < sizeof code_map / sizeof code_map[0]; i++)
    if (code_map[i] == dt) return i;
  return 0;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int mlsh_blob_read_header(const uint8_t *file, size_t len, mlsh_blob_header *h, const char *name, mlsh_err *e) {
  if (len < 64) return mlsh_fail(e, name, "weight file of %zu bytes is shorter than its 64-byte header", len);
  h->count = rd32(file);
  h->version = rd32(file + 4);
  if (h->version != 2) return mlsh_fail(e, name, "unsupported blob storage version %u (expected 2)", h->version);
  return 0;
}

int mlsh_blob_read(const uint8_t *file, size_t len, uint64_t offset, mlsh_blob *b, const char *name, mlsh_err *e) {
  mlsh_blob_header h;
  if (mlsh_blob_read_header(file, len, &h, name, e) != 0) return -1;
  if (offset < 64 || offset > len || len - offset < 64)
    return mlsh_fail(e, name, "blob offset %llu is past the end of the %zu-byte weight file", (unsigned long long)offset, len);
  const uint8_t *m = file + offset;
  if (rd32(m) != MLSH_BLOB_SENTINEL)
    return mlsh_fail(e, name, "no blob metadata at offset %llu (sentinel 0x%08x, expected 0xDEADBEEF)",
                     (unsigned long long)offset, rd32(m));
  b->blob_dtype = rd32(m + 4);
  b->dtype = mlsh_blob_dtype_to_mlsh(b->blob_dtype);
  b->size = rd64(m + 8);
  b->data_offset = rd64(m + 16);
  b->padding_bits = rd64(m + 24);
  if (b->data_offset > len || b->size > len - b->data_offset)
    return mlsh_fail(e, name, "blob at offset %llu claims %llu bytes at %llu, past the end of the %zu-byte file",
                     (unsigned long long)offset, (unsigned long long)b->size, (unsigned long long)b->data_offset, len);
  if (b->data_offset < offset + 64 && b->data_offset + b->size > offset)
    return mlsh_fail(e, name, "blob at offset %llu overlaps its own metadata", (unsigned long long)offset);
  /* padding_size_in_bits was left uninitialised by writers before iOS18: never trust it */
  if (b->padding_bits > 7) b->padding_bits = 0;
  b->data = file + b->data_offset;
  return 0;
}

static int grow(mlsh_blob_writer *w, size_t need) {
  if (need <= w->cap) return 0;
  size_t cap = w->cap ? w->cap : 4096;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  uint8_t *p = realloc(w->buf, cap);
  if (!p) return -1;
  memset(p + w->cap, 0, cap - w->cap);
  w->buf = p;
  w->cap = cap;
  return 0;
}

int mlsh_blob_writer_init(mlsh_blob_writer *w) {
  memset(w, 0, sizeof *w);
  if (grow(w, 64) != 0) return -1;
  w->len = 64;
  uint32_t version = 2;
  memcpy(w->buf + 4, &version, 4);
  return 0;
}

int mlsh_blob_writer_add(mlsh_blob_writer *w, mlsh_dtype dt, const void *data, size_t nbytes, size_t n_elements,
                         uint64_t *offset, mlsh_err *e) {
  uint32_t code = mlsh_blob_dtype_from_mlsh(dt);
  if (!code) return mlsh_fail(e, NULL, "dtype %s cannot be stored in a weight file", mlsh_dtype_name(dt));
  size_t expect = mlsh_dtype_nbytes(dt, n_elements);
  if (expect != nbytes)
    return mlsh_fail(e, NULL, "%zu %s elements take %zu bytes, got %zu", n_elements, mlsh_dtype_name(dt), expect, nbytes);
  size_t meta = (w->len + MLSH_BLOB_ALIGN - 1) / MLSH_BLOB_ALIGN * MLSH_BLOB_ALIGN, start = meta + 64;
  if (nbytes > SIZE_MAX - start - MLSH_BLOB_ALIGN) return mlsh_fail(e, NULL, "weight file too large");
  size_t end = start + nbytes; /* the next record aligns itself; like coremltools, no trailing pad */
  if (grow(w, end) != 0) return mlsh_fail(e, NULL, "out of memory growing the weight file");
  uint8_t *m = w->buf + meta;
  uint32_t sentinel = MLSH_BLOB_SENTINEL;
  uint64_t size = nbytes, off = start, pad = (8 - (n_elements * mlsh_dtype_bits(dt)) % 8) % 8;
  memcpy(m, &sentinel, 4);
  memcpy(m + 4, &code, 4);
  memcpy(m + 8, &size, 8);
  memcpy(m + 16, &off, 8);
  memcpy(m + 24, &pad, 8);
  if (nbytes) memcpy(w->buf + start, data, nbytes);
  w->len = end;
  w->count++;
  memcpy(w->buf, &w->count, 4);
  *offset = meta;
  return 0;
}

void mlsh_blob_writer_free(mlsh_blob_writer *w) {
  free(w->buf);
  memset(w, 0, sizeof *w);
}
