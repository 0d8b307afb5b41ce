/* lua_sandbox.c — memory budgets for untrusted code, through the mlsh program's allocator.
 * Lua: sandbox.available() -> true inside the mlsh binary (false under a plain lua5.4, whose
 *      allocator mlsh does not own) ; sandbox.memory() -> used, limit ;
 *      sandbox.set_memory_limit(bytes | nil) (nil or 0: no limit). */
#include "alloc.h"
#include <lauxlib.h>

static mlsh_alloc_state *state(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  return f == mlsh_limited_alloc ? ud : NULL;
}

static int l_available(lua_State *L) {
  lua_pushboolean(L, state(L) != NULL);
  return 1;
}

static int l_memory(lua_State *L) {
  mlsh_alloc_state *st = state(L);
  if (!st) return 0;
  lua_pushinteger(L, (lua_Integer)st->used);
  lua_pushinteger(L, (lua_Integer)st->limit);
  return 2;
}

static int l_set_memory_limit(lua_State *L) {
  mlsh_alloc_state *st = state(L);
  lua_Integer v = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, v >= 0, 1, "negative limit");
  if (!st) return luaL_error(L, "memory limits need the mlsh program (not a plain lua5.4)");
  st->limit = (size_t)v;
  return 0;
}

static const luaL_Reg funcs[] = {
  {"available", l_available}, {"memory", l_memory}, {"set_memory_limit", l_set_memory_limit}, {NULL, NULL}};

int luaopen_mlsh_core_sandbox(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
