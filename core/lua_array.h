/* lua_array.h — the numeric array userdata (metatable "mlsh.Array") other bindings share.
 * An Array is a float32 buffer of n elements with a shape (rank <= MLSH_ARRAY_MAX_RANK; the
 * product of the shape equals n). The buffer lives inside the userdata, so Lua's GC frees it. */
#ifndef MLSH_LUA_ARRAY_H
#define MLSH_LUA_ARRAY_H
#include "wstats.h"
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define MLSH_ARRAY_MAX_RANK 8

typedef struct {
  size_t n;
  int rank;
  int64_t shape[MLSH_ARRAY_MAX_RANK];
  float *data; /* points just past this header, inside the same userdata */
} mlsh_array;

/* Push a new zeroed Array of n elements, shape {n} (caller may set rank/shape after). */
mlsh_array *mlsh_array_push(lua_State *L, size_t n);
/* The same, not zeroed: for a caller that writes every element before Lua can see it. */
mlsh_array *mlsh_array_push_uninit(lua_State *L, size_t n);
/* Push the table a:stats() returns ({count, min, max, mean, std, sum, sum_sq, sparsity, nan}). */
void mlsh_stats_push(lua_State *L, const mlsh_stats *s);
/* Check argument idx is an Array. */
mlsh_array *mlsh_array_check(lua_State *L, int idx);
/* Array at idx, or a new Array converted from a Lua sequence of numbers at idx (pushed on top). */
mlsh_array *mlsh_array_arg(lua_State *L, int idx);
#endif
