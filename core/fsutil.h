/* fsutil.h — how mlsh writes: every output goes to a temporary sibling and is renamed into place,
 * so a failed write (disk full, a signal) leaves the old file untouched. Folders (an .mlpackage)
 * are built in a temporary sibling folder and renamed the same way. Zips are written with libzip
 * to a temporary sibling. All return 0, or -1 with the reason in e.
 * Durability: an output that replaces an existing file or folder is flushed (fsync, every file
 * of a folder) before the rename, so a crash leaves the old version or the new one. A new output
 * is renamed into place without fsync, as cp or coremltools' save write theirs: after a power
 * loss it may be missing or short, but no earlier data is lost. (Zips are renamed into place by
 * libzip itself, unflushed either way.) */
#ifndef MLSH_FSUTIL_H
#define MLSH_FSUTIL_H
#include "err.h"
#include <stddef.h>

int mlsh_write_atomic(const char *path, const void *data, size_t len, mlsh_err *e);
int mlsh_mkdir_p(const char *path, mlsh_err *e);
/* Remove a file or a folder tree (used on temporary folders only). */
int mlsh_remove_tree(const char *path);
/* Replace dst with the folder src atomically enough: src's files flushed when dst exists, rename
 * dst aside, rename src in, drop the old. */
int mlsh_replace_dir(const char *src, const char *dst, mlsh_err *e);
/* Zip the folder src into the file dst (entries named prefix/relative-path), atomically. */
int mlsh_zip_dir(const char *src, const char *prefix, const char *dst, mlsh_err *e);
/* Write a zip of in-memory entries (deflated unless store), atomically. */
typedef struct {
  const char *name;
  const void *data;
  size_t len;
} mlsh_zip_entry;
int mlsh_zip_write(const char *dst, const mlsh_zip_entry *entries, size_t n, int store, mlsh_err *e);
#endif
