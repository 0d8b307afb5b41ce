/* lua_opts.h — reading an optional table of named options in a binding: unknown names refused,
 * each value type-checked (integers without string coercion), defaults for absent keys, enums by
 * name with the allowed names in the error. Every error is raised with luaL_error as
 * "FN: ...". t is the stack index of the options table (none or nil means "no options"). */
#ifndef MLSH_LUA_OPTS_H
#define MLSH_LUA_OPTS_H
#include <lauxlib.h>
#include <lua.h>
#include <string.h>


static inline void mlsh_opt_keys(lua_State *L, int t, const char *fn, const char *const *allowed) {
  if (lua_isnoneornil(L, t)) return;
  luaL_checktype(L, t, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: option names must be strings", fn);
    const char *k = lua_tostring(L, -1);
    int ok = 0;
    for (int i = 0; allowed[i]; i++)
      if (strcmp(allowed[i], k) == 0) ok = 1;
    if (!ok) luaL_error(L, "%s: unknown option '%s'", fn, k);
  }
}

/* Push opts[key] (nil when there is no table). */
static inline int mlsh_opt_get(lua_State *L, int t, const char *key) {
  if (lua_isnoneornil(L, t)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, t, key);
}

static inline lua_Integer mlsh_opt_int(lua_State *L, int t, const char *fn, const char *key, lua_Integer def) {
  mlsh_opt_get(L, t, key);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int ok = 0;
    if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tointegerx(L, -1, &ok); /* no string coercion */
    if (!ok) luaL_error(L, "%s: option '%s' must be an integer", fn, key);
  }
  lua_pop(L, 1);
  return v;
}

static inline int mlsh_opt_has(lua_State *L, int t, const char *key) {
  int ty = mlsh_opt_get(L, t, key);
  lua_pop(L, 1);
  return ty != LUA_TNIL;
}

static inline double mlsh_opt_num(lua_State *L, int t, const char *fn, const char *key, double def) {
  mlsh_opt_get(L, t, key);
  double v = def;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: option '%s' must be a number", fn, key);
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static inline int mlsh_opt_bool(lua_State *L, int t, const char *fn, const char *key, int def) {
  mlsh_opt_get(L, t, key);
  int v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1)) luaL_error(L, "%s: option '%s' must be a boolean", fn, key);
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* Index of s in names (NULL-terminated), default when absent; error otherwise. */
static inline int mlsh_opt_enum(lua_State *L, int t, const char *fn, const char *key, const char *const *names, int def) {
  mlsh_opt_get(L, t, key);
  int r = def;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: option '%s' must be a string", fn, key);
    const char *s = lua_tostring(L, -1);
    r = -1;
    for (int i = 0; names[i]; i++)
      if (strcmp(names[i], s) == 0) r = i;
    if (r < 0) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; names[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, names[i]);
      }
      luaL_pushresult(&b);
      luaL_error(L, "%s: unknown %s '%s' (expected %s)", fn, key, s, lua_tostring(L, -1));
    }
  }
  lua_pop(L, 1);
  return r;
}

#endif
