/* lua_outbuf.h — memory a binding hands to Lua, for the compression binding's results:
 * Arrays the kernel writes in full (never zero-filled), GC-owned byte buffers with the huge-page
 * hint, scratch memory freed as soon as a call is done with it (so the strings it makes next reuse
 * its pages) or by the GC when an error cuts the call short (register SCRATCH_MT with
 * scratch_gc as __gc once), and setters for the fields of a result table at the stack top. */
#ifndef MLSH_LUA_OUTBUF_H
#define MLSH_LUA_OUTBUF_H
#include "bigbuf.h"
#include "lua_array.h"
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdlib.h>

/* A new Array the caller writes in full before Lua sees it (kernel outputs): not zero-filled. */
static inline mlsh_array *push_array(lua_State *L, size_t n, int rank, const int64_t *shape) {
  mlsh_array *r = mlsh_array_push_uninit(L, n);
  r->rank = rank;
  for (int i = 0; i < rank; i++) r->shape[i] = shape[i];
  return r;
}

static inline void *push_buffer(lua_State *L, size_t n) {
  void *p = lua_newuserdatauv(L, n ? n : 1, 0);
  mlsh_bigbuf_hint(p, n);
  return p;
}

/* Scratch memory a call frees as soon as it is done with it (so the strings it makes next can
 * take its pages), or the GC frees when an error cuts the call short. */
#define SCRATCH_MT "mlsh.compress.Scratch"
typedef struct {
  void *p;
} scratch;

static inline int scratch_gc(lua_State *L) {
  scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
  free(s->p);
  s->p = NULL;
  return 0;
}

static inline void *push_scratch(lua_State *L, size_t n, scratch **out) {
  scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->p = NULL;
  luaL_setmetatable(L, SCRATCH_MT);
  s->p = malloc(n ? n : 1);
  if (!s->p) luaL_error(L, "not enough memory");
  mlsh_bigbuf_hint(s->p, n);
  *out = s;
  return s->p;
}

static inline void release(scratch *s) {
  free(s->p);
  s->p = NULL;
}

static inline void set_int(lua_State *L, const char *k, lua_Integer v) { lua_pushinteger(L, v); lua_setfield(L, -2, k); }
static inline void set_num(lua_State *L, const char *k, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, k); }
static inline void set_str(lua_State *L, const char *k, const char *v) { lua_pushstring(L, v); lua_setfield(L, -2, k); }
static inline void set_shape(lua_State *L, const char *k, const int64_t *s, int rank) {
  lua_createtable(L, rank, 0);
  for (int i = 0; i < rank; i++) {
    lua_pushinteger(L, s[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, k);
}

#endif
