/* lua_fields.h — small helpers the table-building bindings share: set a field of the table on
 * top of the stack, push a comma-separated list as a Lua list, return nil plus a message. */
#ifndef MLSH_LUA_FIELDS_H
#define MLSH_LUA_FIELDS_H
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

static inline void mlsh_setstr(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static inline void mlsh_setint(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static inline void mlsh_setbool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* "a,b,c" -> {"a", "b", "c"} on the stack. */
static inline void mlsh_push_csv(lua_State *L, const char *s) {
  lua_newtable(L);
  lua_Integer i = 0;
  while (s && *s) {
    const char *c = strchr(s, ',');
    size_t n = c ? (size_t)(c - s) : strlen(s);
    lua_pushlstring(L, s, n);
    lua_rawseti(L, -2, ++i);
    s = c ? c + 1 : s + n;
  }
}

static inline int mlsh_nil_msg(lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}
#endif
