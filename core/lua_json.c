/* lua_json.c — binding for the one JSON reader (json.h): mlsh.json.decode goes through here.
 * Lua: core.json.decode(text [, null [, array_mt [, object_mt]]]) -> value | nil, "line L: reason"
 *   objects -> tables (metatable object_mt), arrays -> sequences (array_mt), null -> `null`
 *   (nil when not given), integral numbers that fit -> integers, others -> floats.
 * Nesting is capped by MLSH_JSON_MAX_DEPTH (64), so a hostile metadata.json cannot exhaust the
 * C or the Lua stack. */
#include "json.h"
#include <lauxlib.h>
#include <math.h>

static void push(lua_State *L, const mlsh_json *j) {
  luaL_checkstack(L, 4, "JSON too deep");
  switch (j->kind) {
    case MLSH_JSON_NULL: lua_pushvalue(L, 2); break;
    case MLSH_JSON_BOOL: lua_pushboolean(L, j->number != 0); break;
    case MLSH_JSON_NUMBER: {
      double d = j->number;
      if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) lua_pushinteger(L, (lua_Integer)d);
      else lua_pushnumber(L, d);
      break;
    }
    case MLSH_JSON_STRING: lua_pushstring(L, j->string); break;
    case MLSH_JSON_ARRAY: {
      lua_newtable(L);
      lua_Integer i = 0;
      for (const mlsh_json *c = j->child; c; c = c->next) {
        push(L, c);
        lua_rawseti(L, -2, ++i);
      }
      if (lua_istable(L, 3)) {
        lua_pushvalue(L, 3);
        lua_setmetatable(L, -2);
      }
      break;
    }
    case MLSH_JSON_OBJECT:
      lua_newtable(L);
      for (const mlsh_json *c = j->child; c; c = c->next) {
        push(L, c);
        lua_setfield(L, -2, c->key);
      }
      if (lua_istable(L, 4)) {
        lua_pushvalue(L, 4);
        lua_setmetatable(L, -2);
      }
      break;
  }
}

static int l_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_settop(L, 4);
  char err[256];
  mlsh_json *j = mlsh_json_parse(text, len, err, sizeof err);
  if (!j) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  push(L, j); /* no Lua error can happen between parse and free but out-of-memory */
  mlsh_json_free(j);
  return 1;
}

static const luaL_Reg funcs[] = {{"decode", l_decode}, {NULL, NULL}};

int luaopen_mlsh_core_json(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
