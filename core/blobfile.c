/* blobfile.c — weight.bin reader and writer (see blobfile.h). */
#include "blobfile.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  uint8_t *p = realloc(w->buf, cap); /* not zero-filled: add writes every byte up to len */
  if (!p) return -1;
  w->buf = p;
  w->cap = cap;
  return 0;
}

int mlsh_blob_writer_init(mlsh_blob_writer *w) {
  memset(w, 0, sizeof *w);
  w->fd = -1;
  if (grow(w, 64) != 0) return -1;
  memset(w->buf, 0, 64);
  w->len = 64;
  uint32_t version = 2;
  memcpy(w->buf + 4, &version, 4);
  return 0;
}

/* Write all of [p, p+n) at the current position of fd. */
static int write_all(int fd, const void *p, size_t n, const char *name, mlsh_err *e) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t k = write(fd, b, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return mlsh_fail(e, name, "write failed: %s", strerror(k < 0 ? errno : ENOSPC));
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

int mlsh_blob_writer_stream(mlsh_blob_writer *w, int fd, const char *name, mlsh_err *e) {
  memset(w, 0, sizeof *w);
  w->fd = fd;
  uint8_t h[64] = {0};
  uint32_t version = 2;
  memcpy(h + 4, &version, 4);
  if (write_all(fd, h, sizeof h, name, e) != 0) return -1;
  w->len = 64;
  return 0;
}

int mlsh_blob_writer_finish(mlsh_blob_writer *w, const char *name, mlsh_err *e) {
  if (w->fd < 0) return mlsh_fail(e, name, "not a streaming writer");
  uint8_t c[4];
  memcpy(c, &w->count, 4);
  ssize_t k;
  do k = pwrite(w->fd, c, 4, 0); while (k < 0 && errno == EINTR);
  if (k != 4) return mlsh_fail(e, name, "write failed: %s", strerror(k < 0 ? errno : ENOSPC));
  return 0;
}

/* The 64-byte metadata record of a blob (reserved fields zero). */
static void fill_meta(uint8_t *m, uint32_t code, uint64_t size, uint64_t off, uint64_t pad) {
  uint32_t sentinel = MLSH_BLOB_SENTINEL;
  memset(m, 0, 64);
  memcpy(m, &sentinel, 4);
  memcpy(m + 4, &code, 4);
  memcpy(m + 8, &size, 8);
  memcpy(m + 16, &off, 8);
  memcpy(m + 24, &pad, 8);
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
  uint64_t pad = (8 - (n_elements * mlsh_dtype_bits(dt)) % 8) % 8;
  if (w->fd >= 0) {
    uint8_t rec[2 * MLSH_BLOB_ALIGN] = {0}; /* the zero gap up to the record, then the record */
    size_t gap = meta - w->len;
    fill_meta(rec + gap, code, nbytes, start, pad);
    if (write_all(w->fd, rec, gap + 64, NULL, e) != 0) return -1;
    if (nbytes && write_all(w->fd, data, nbytes, NULL, e) != 0) return -1;
  } else {
    if (grow(w, end) != 0) return mlsh_fail(e, NULL, "out of memory growing the weight file");
    memset(w->buf + w->len, 0, meta - w->len);
    fill_meta(w->buf + meta, code, nbytes, start, pad);
    if (nbytes) memcpy(w->buf + start, data, nbytes);
  }
  w->len = end;
  w->count++;
  if (w->fd < 0) memcpy(w->buf, &w->count, 4);
  *offset = meta;
  return 0;
}

void mlsh_blob_writer_free(mlsh_blob_writer *w) {
  free(w->buf);
  memset(w, 0, sizeof *w);
  w->fd = -1;
}
