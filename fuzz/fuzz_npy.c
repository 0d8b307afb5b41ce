/* libFuzzer harness: the interpreter's .npy reader (core/interp/npy.c), and re-encoding what it
 * accepted — which must parse back to the same shape and dtype. */
#include "interp/npy.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  it_tensor *t;
  mlsh_err e;
  it_set_budget((size_t)64 << 20);
  if (it_npy_parse(data, size, "fuzz", &t, &e) != 0) return 0;
  uint8_t *b;
  size_t len;
  if (it_npy_encode(t, &b, &len, &e) == 0) {
    it_tensor *u;
    if (it_npy_parse(b, len, "again", &u, &e) != 0) abort();
    if (u->rank != t->rank || u->n != t->n || memcmp(u->shape, t->shape, (size_t)t->rank * sizeof *t->shape) != 0) abort();
    it_unref(u);
    free(b);
  }
  it_unref(t);
  return 0;
}
