/* ortcache.h — ONNX Runtime's CoreML EP cache folder (provider option ModelCacheDirectory): one
 * folder per cache key holding model.txt (the ONNX model's path) and the compiled Core ML model of
 * each partition (.mlmodelc folders, or .mlpackage) a few levels down. Part of this layout rests on
 * third-party observations (docs/containers.md). Contract: mlsh_ortcache_scan accepts the cache
 * folder or one key folder; count 0 means "not a cache". Symlinks are never followed, the search is
 * depth-capped, model.txt is read up to 64 KiB; every string is owned by the result. */
#ifndef MLSH_ORTCACHE_H
#define MLSH_ORTCACHE_H
#include "err.h"
#include <stddef.h>

typedef struct {
  char *key;        /* the cache key (folder name) */
  char *dir;        /* that folder */
  char *onnx_path;  /* model.txt, trailing whitespace trimmed */
  char **models;    /* compiled models found below dir, sorted */
  size_t nmodels;
} mlsh_ort_entry;

typedef struct {
  mlsh_ort_entry *entries; /* sorted by key */
  size_t count;
} mlsh_ortcache;

int mlsh_ortcache_scan(const char *dir, mlsh_ortcache **out, mlsh_err *e);
void mlsh_ortcache_free(mlsh_ortcache *c);
#endif
