/* alloc.c — accounting Lua allocator (see alloc.h). */
#include "alloc.h"
#include <stdlib.h>

void *mlsh_limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  mlsh_alloc_state *st = ud;
  if (ptr == NULL) osize = 0; /* osize then encodes the object type, not a size */
  if (nsize == 0) {
    free(ptr);
    st->used -= osize <= st->used ? osize : st->used;
    return NULL;
  }
  if (st->limit && nsize > osize && st->used + (nsize - osize) > st->limit) return NULL;
  void *p = realloc(ptr, nsize);
  if (p) st->used = st->used - (osize <= st->used ? osize : st->used) + nsize;
  return p;
}
