/* container.h — open a model path and give bounded access to what is inside it.
 * Formats: a .mlmodel file; an .mlpackage folder (Manifest.json names the root model item); a zip
 * holding an .mlpackage (read in place with libzip, never extracted); an .mlmodelc folder; an
 * .onnx file; a model inside an in-memory file tree (mlsh_container_open_tree). Files are memory-mapped read-only (zip entries are inflated into memory on demand);
 * the input is never written. Paths inside a container are untrusted: absolute paths and ".."
 * are refused. Every function returns 0 or -1 with an error naming the file and the reason. */
#ifndef MLSH_CONTAINER_H
#define MLSH_CONTAINER_H
#include "err.h"
#include <stddef.h>
#include <stdint.h>

typedef enum { MLSH_FMT_MLMODEL, MLSH_FMT_MLPACKAGE, MLSH_FMT_MLPACKAGE_ZIP, MLSH_FMT_MLMODELC, MLSH_FMT_ONNX } mlsh_format;

typedef struct mlsh_container mlsh_container;

/* Limits that keep adversarial containers bounded. */
#define MLSH_MAX_SPEC_BYTES ((uint64_t)2 << 30)     /* protobuf's own 2 GiB ceiling */
#define MLSH_MAX_SMALL_FILE ((uint64_t)64 << 20)    /* Manifest.json, metadata.json, model.mil */
#define MLSH_MAX_ZIP_ENTRY ((uint64_t)16 << 30)
#define MLSH_MAX_ZIP_RATIO 1000                     /* inflated/compressed beyond this is a bomb
                                                       (environment MLSH_MAX_ZIP_RATIO overrides) */
#define MLSH_MAX_ZIP_ENTRIES 100000

int mlsh_container_open(const char *path, mlsh_container **out, mlsh_err *e);
/* A model inside an in-memory file tree (an ExecuTorch Core ML payload, inmemoryfs.h) read in
 * place: the tree's root holds model.mlmodelc or model.mlpackage. `display` names the model in
 * messages (e.g. "x.pte:forward/0"); release(keep) runs at close (or at once on failure), so
 * keep owns the tree and the bytes it borrows. */
struct mlsh_imfs;
int mlsh_container_open_tree(const char *display, const struct mlsh_imfs *tree, void *keep, void (*release)(void *),
                             mlsh_container **out, mlsh_err *e);
void mlsh_container_close(mlsh_container *c);

mlsh_format mlsh_container_format(const mlsh_container *c);
const char *mlsh_format_name(mlsh_format f); /* "mlmodel" "mlpackage" "mlpackage.zip" "mlmodelc" "onnx" */
const char *mlsh_container_path(const mlsh_container *c);
/* The root spec (Model protobuf; ONNX ModelProto) bytes; name is its path for messages. */
int mlsh_container_spec(mlsh_container *c, const uint8_t **data, size_t *len, const char **name, mlsh_err *e);
/* Map a file named relative to the model folder ("weights/weight.bin" or "@model_path/weights/weight.bin").
 * The bytes stay valid until close. `name_out` (optional) gets a printable path. */
int mlsh_container_map(mlsh_container *c, const char *relpath, const uint8_t **data, size_t *len,
                       const char **name_out, mlsh_err *e);
/* Drop the resident pages of [p, p+len) when it lies in a read-only file mapping of c (MADV_DONTNEED
 * on the whole pages it touches: the file is unchanged, so a later read faults the same bytes back
 * in from the page cache). Bytes held in memory (zip entries, in-memory trees) are left alone.
 * Returns 1 when pages were dropped, 0 otherwise. Lowers peak RSS when a caller decodes a file's
 * blobs one by one and does not read them again soon. */
int mlsh_container_drop_pages(mlsh_container *c, const void *p, size_t len);
/* Copy [p, p+len) of a file mapping of c into dst with pread, not through the mapping: no page of
 * the mapping is touched (a first touch costs a fault per page, and on a VM with shadow page
 * tables several times more than the copy). Thread-safe. 0, or -1 when [p, p+len) is not in a
 * file mapping of c (zip entries, in-memory trees) or the read fails (dst is then undefined). */
int mlsh_container_read(mlsh_container *c, const void *p, size_t len, void *dst);
/* A printable name for relpath: the real path, or zip:entry. */
void mlsh_container_display(const mlsh_container *c, const char *relpath, char *buf, size_t len);
/* Whether relpath exists in the model folder, and its size. */
int mlsh_container_stat(mlsh_container *c, const char *relpath, uint64_t *size);
/* List files below the model folder (relative paths, '/'-separated) with sizes. */
typedef void (*mlsh_file_fn)(void *ud, const char *relpath, uint64_t size);
int mlsh_container_list(mlsh_container *c, mlsh_file_fn fn, void *ud, mlsh_err *e);
#endif
