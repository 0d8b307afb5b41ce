/* libFuzzer harness: the model.espresso.weights blob table (core/espresso.c). */
#include "espresso.h"
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlsh_err e;
  mlsh_espresso_blob *b;
  size_t n;
  uint64_t trailing;
  if (mlsh_espresso_index(data, size, "fuzz", &b, &n, &trailing, &e) != 0) return 0;
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < n; i++)
    if (b[i].size) sink ^= data[b[i].offset] ^ data[b[i].offset + b[i].size - 1];
  (void)sink;
  free(b);
  return 0;
}
