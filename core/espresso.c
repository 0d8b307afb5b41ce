/* espresso.c — the model.espresso.weights blob table (see espresso.h). */
#include "espresso.h"
#include <stdlib.h>

static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

int mlsh_espresso_index(const uint8_t *data, size_t len, const char *name, mlsh_espresso_blob **out, size_t *n,
                        uint64_t *trailing, mlsh_err *e) {
  *out = NULL;
  *n = 0;
  if (len < 8) return mlsh_fail(e, name, "too short for an espresso weight file (%zu bytes)", len);
  uint64_t count = rd64(data);
  if (count > (len - 8) / 16) return mlsh_fail(e, name, "blob table of %llu entries does not fit in %zu bytes", (unsigned long long)count, len);
  mlsh_espresso_blob *b = calloc(count ? count : 1, sizeof *b);
  if (!b) return mlsh_fail(e, name, "out of memory");
  uint64_t pos = 8 + count * 16;
  for (uint64_t i = 0; i < count; i++) {
    b[i].key = rd64(data + 8 + 16 * i);
    b[i].size = rd64(data + 16 + 16 * i);
    b[i].offset = pos;
    if (b[i].size > len - pos) {
      mlsh_fail(e, name, "blob %llu (key %llu, %llu bytes at %llu) runs past the end of the file", (unsigned long long)i,
                (unsigned long long)b[i].key, (unsigned long long)b[i].size, (unsigned long long)pos);
      free(b);
      return -1;
    }
    pos += b[i].size;
  }
  *out = b;
  *n = (size_t)count;
  if (trailing) *trailing = len - pos;
  return 0;
}
