/* espresso.h — model.espresso.weights, the weight file of a compiled NeuralNetwork .mlmodelc:
 * u64 count, then count (u64 key, u64 size) records, then the blobs back to back in record order
 * (community layout, docs/containers.md). Contract: mlsh_espresso_index checks that the table and
 * every blob fit in the file and returns each blob's key, size and absolute offset (an allocated
 * array the caller frees). The file itself is never copied. */
#ifndef MLSH_ESPRESSO_H
#define MLSH_ESPRESSO_H
#include "err.h"
#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t key, size, offset; } mlsh_espresso_blob;

int mlsh_espresso_index(const uint8_t *data, size_t len, const char *name, mlsh_espresso_blob **out, size_t *n,
                        uint64_t *trailing, mlsh_err *e);
#endif
