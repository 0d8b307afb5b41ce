/* lua_compress_args.h — the compression binding's argument readers (lua_compress.c only):
 * weight_dtype and threads options, the tensor shape from opts.shape or the Array itself (its
 * product must be the element count), 0-based axes that may be negative, a non-empty input
 * Array, and kernel status codes raised as "FN: reason". Errors are raised with luaL_error. */
#ifndef MLSH_LUA_COMPRESS_ARGS_H
#define MLSH_LUA_COMPRESS_ARGS_H
#include "compress/common.h"
#include "compress/threads.h"
#include "lua_array.h"
#include "lua_opts.h"
#include <lauxlib.h>
#include <lua.h>

static const char *const wd_names[] = {"fp32", "fp16", NULL};

static inline mlsh_wdtype opt_wdtype(lua_State *L, int t, const char *fn, mlsh_wdtype def) {
  return (mlsh_wdtype)mlsh_opt_enum(L, t, fn, "weight_dtype", wd_names, (int)def);
}

static inline unsigned opt_threads(lua_State *L, int t, const char *fn) {
  lua_Integer v = mlsh_opt_int(L, t, fn, "threads", 0);
  if (v < 0 || v > MLSH_MAX_THREADS) luaL_error(L, "%s: threads must be 0..%d", fn, MLSH_MAX_THREADS);
  return (unsigned)v;
}

/* Shape from opts.shape or the array; its product must be a->n. */
/* The shape table on top of the stack (left there) into shape; its rank, 1..MLSH_CZ_MAX_RANK. */
static inline int shape_table(lua_State *L, const char *fn, int64_t *shape) {
  if (!lua_istable(L, -1)) luaL_error(L, "%s: option 'shape' must be a table of integers", fn);
  lua_Integer r = luaL_len(L, -1);
  if (r < 1 || r > MLSH_CZ_MAX_RANK) luaL_error(L, "%s: shape rank must be 1..%d", fn, MLSH_CZ_MAX_RANK);
  for (int i = 0; i < r; i++) {
    lua_geti(L, -1, i + 1);
    int ok;
    lua_Integer d = lua_tointegerx(L, -1, &ok);
    if (!ok || d < 0) luaL_error(L, "%s: shape[%d] must be a non-negative integer", fn, i + 1);
    shape[i] = d;
    lua_pop(L, 1);
  }
  return (int)r;
}

static inline void opt_shape(lua_State *L, int t, const char *fn, const mlsh_array *a, int64_t *shape, int *rank) {
  if (mlsh_opt_get(L, t, "shape") == LUA_TNIL) {
    *rank = a->rank;
    for (int i = 0; i < a->rank; i++) shape[i] = a->shape[i];
  } else {
    *rank = shape_table(L, fn, shape);
  }
  lua_pop(L, 1);
  if (*rank < 1) { /* a scalar array: treat as 1-D */
    *rank = 1;
    shape[0] = (int64_t)a->n;
  }
  if (mlsh_shape_count(shape, *rank) != a->n)
    luaL_error(L, "%s: shape holds %I elements, array has %I", fn, (lua_Integer)mlsh_shape_count(shape, *rank),
               (lua_Integer)a->n);
}

static inline int norm_axis(lua_State *L, const char *fn, const char *key, lua_Integer axis, int rank) {
  if (axis < -rank || axis >= rank) luaL_error(L, "%s: %s %I is out of range for rank %d", fn, key, axis, rank);
  return (int)(axis < 0 ? axis + rank : axis);
}

static inline mlsh_array *check_input(lua_State *L, int idx, const char *fn) {
  mlsh_array *a = mlsh_array_arg(L, idx);
  if (a->n == 0) luaL_error(L, "%s: empty array", fn);
  return a;
}

static inline int cz_error(lua_State *L, const char *fn, int st) { return luaL_error(L, "%s: %s", fn, mlsh_cz_strerror(st)); }

#endif
