/* alloc.h — the Lua allocator of the mlsh program: realloc/free with byte accounting and an
 * optional ceiling, so untrusted rule code can be given a memory budget (--safe). A request
 * that would pass the ceiling fails, which Lua reports as "not enough memory". limit 0 = none. */
#ifndef MLSH_ALLOC_H
#define MLSH_ALLOC_H
#include <stddef.h>

typedef struct {
  size_t used;
  size_t limit;
} mlsh_alloc_state;

void *mlsh_limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
#endif
