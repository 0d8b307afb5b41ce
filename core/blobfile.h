/* blobfile.h — Core ML's MIL weight blob storage (weight.bin, storage version 2).
 * Layout: a 64-byte header {u32 count; u32 version; 7 x u64 reserved}, then per blob a 64-byte
 * metadata record {u32 sentinel 0xDEADBEEF; u32 dtype; u64 size; u64 data offset; u64 padding
 * bits; 4 x u64 reserved} and its data, each record 64-byte aligned (the file ends right after the
 * last blob's data, as coremltools writes it). MIL BlobFileValue.offset points
 * at a metadata record. Reading checks every field against the file length; writing appends
 * records to a growing in-memory image that the caller saves atomically, or (a streaming writer)
 * writes each record straight to an open file, so a model's weights are never held twice. Both
 * produce the same bytes. */
#ifndef MLSH_BLOBFILE_H
#define MLSH_BLOBFILE_H
#include "dtype.h"
#include "err.h"
#include <stddef.h>
#include <stdint.h>

#define MLSH_BLOB_SENTINEL 0xDEADBEEFu
#define MLSH_BLOB_ALIGN 64

typedef struct {
  uint32_t count, version;
} mlsh_blob_header;

typedef struct {
  uint32_t blob_dtype;     /* BlobDataType code as stored */
  mlsh_dtype dtype;        /* mlsh's dtype, MLSH_DT_INVALID when the code is unknown */
  uint64_t size;           /* data bytes */
  uint64_t data_offset;    /* absolute file offset of the data */
  uint64_t padding_bits;   /* unused bits in the last byte (sub-byte types); 0 when the stored value is garbage */
  const uint8_t *data;     /* points into the file bytes */
} mlsh_blob;

int mlsh_blob_read_header(const uint8_t *file, size_t len, mlsh_blob_header *h, const char *name, mlsh_err *e);
/* The blob whose metadata record starts at `offset`. */
int mlsh_blob_read(const uint8_t *file, size_t len, uint64_t offset, mlsh_blob *b, const char *name, mlsh_err *e);

mlsh_dtype mlsh_blob_dtype_to_mlsh(uint32_t code);
uint32_t mlsh_blob_dtype_from_mlsh(mlsh_dtype dt); /* 0 if the blob format has no code for it */

/* Writer: an in-memory weight.bin image (fd < 0), or a stream to file descriptor fd, where len
 * is the file length so far and buf is unused. */
typedef struct {
  uint8_t *buf;
  size_t len, cap;
  uint32_t count;
  int fd;
} mlsh_blob_writer;

int mlsh_blob_writer_init(mlsh_blob_writer *w);
/* A streaming writer to fd (open for writing, empty, positioned at 0): writes the header now.
 * The caller owns fd; call mlsh_blob_writer_finish before closing it. Errors name `name`. */
int mlsh_blob_writer_stream(mlsh_blob_writer *w, int fd, const char *name, mlsh_err *e);
/* Streaming writer: store the final blob count in the header (pwrite at offset 0). */
int mlsh_blob_writer_finish(mlsh_blob_writer *w, const char *name, mlsh_err *e);
/* Append data of n elements of dt; returns the metadata offset in *offset. */
int mlsh_blob_writer_add(mlsh_blob_writer *w, mlsh_dtype dt, const void *data, size_t nbytes, size_t n_elements,
                         uint64_t *offset, mlsh_err *e);
void mlsh_blob_writer_free(mlsh_blob_writer *w);
#endif
