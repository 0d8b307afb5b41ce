/* libFuzzer harness: weight.bin blob records, and decoding what they point at. */
#include "blobfile.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlsh_blob_header h;
  mlsh_err e;
  if (mlsh_blob_read_header(data, size, &h, "fuzz", &e) != 0) return 0;
  for (uint64_t off = 64; off < size && off < 64 * 64; off += 64) {
    mlsh_blob b;
    if (mlsh_blob_read(data, size, off, &b, "fuzz", &e) != 0 || b.dtype == MLSH_DT_INVALID) continue;
    unsigned bits = mlsh_dtype_bits(b.dtype);
    size_t n = (size_t)(b.size * 8 / bits);
    if (n > 4096) n = 4096;
    float *out = malloc((n ? n : 1) * sizeof *out);
    if (mlsh_decode_f32(b.data, b.size, b.dtype, n, out) != 0) abort(); /* n fits by construction */
    free(out);
  }
  return 0;
}
