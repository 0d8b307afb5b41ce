/* libFuzzer harness: the inmemoryfs payload reader (core/inmemoryfs.c): reversed JSON at the end,
 * node tree checks, every file region against the data area. */
#include "inmemoryfs.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlsh_err e;
  mlsh_imfs *fs;
  if (mlsh_imfs_parse(data, size, "fuzz", &fs, &e) != 0) return 0;
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < fs->count; i++) {
    const mlsh_imfs_node *n = &fs->nodes[i];
    if (!n->dir && n->size) sink ^= fs->data[n->offset] ^ fs->data[n->offset + n->size - 1];
    if (n->path) (void)mlsh_imfs_find(fs, n->path);
  }
  (void)sink;
  mlsh_imfs_free(fs);
  return 0;
}
