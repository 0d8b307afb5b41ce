/* inmemoryfs.h — the Core ML delegate payload of an ExecuTorch program: a file tree flattened by
 * executorch's inmemoryfs as [file bytes…][reversed compact JSON][optional NULs], read from the end.
 * Contract: mlsh_imfs_parse finds the metadata by scanning backwards (NULs and whitespace skipped,
 * braces balanced outside strings, 10 MiB cap), parses {"nodes":[{name, kind 0 file / 1 directory,
 * dataRegion {offset,size}, children {name: index}}]}, takes the last node as the root and checks
 * every node: a child index must be smaller than its parent's (no cycles) and used once, names are
 * single path components (no '/', no "..", not empty), kinds are file or directory only (no links),
 * and file regions lie inside the data area before the metadata. Paths are '/'-joined from the
 * root's children; the root's own name is kept apart. File bytes are borrowed from the buffer. */
#ifndef MLSH_INMEMORYFS_H
#define MLSH_INMEMORYFS_H
#include "err.h"
#include <stddef.h>
#include <stdint.h>

#define MLSH_IMFS_MAX_JSON ((size_t)10 << 20)

typedef struct {
  char *name;     /* the node's own name */
  char *path;     /* relative to the root ("" for the root) */
  int dir;        /* 1 directory, 0 file */
  uint64_t offset, size;
  int parent;     /* -1 for the root */
} mlsh_imfs_node;

typedef struct mlsh_imfs {
  mlsh_imfs_node *nodes;
  size_t count;
  size_t root;
  size_t json_offset;  /* where the reversed metadata starts */
  const uint8_t *data; /* the payload */
  size_t len;
} mlsh_imfs;

/* 1 when the buffer's last non-NUL, non-space byte is '{' (a cheap recognizer; parse to be sure). */
int mlsh_imfs_sniff(const uint8_t *buf, size_t len);
int mlsh_imfs_parse(const uint8_t *buf, size_t len, const char *name, mlsh_imfs **out, mlsh_err *e);
void mlsh_imfs_free(mlsh_imfs *fs);
/* Node index of a '/'-separated path below the root, or -1. */
int mlsh_imfs_find(const mlsh_imfs *fs, const char *path);
#endif
