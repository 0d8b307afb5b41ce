/* lua_espresso.c — binding for model.espresso.weights (core/espresso.h) of an opened Model:
 *   core.espresso.index(model [, relpath]) -> {blobs = {{key, size, offset}...}, trailing = n} | nil, err
 *   core.espresso.values(model, relpath, offset, count, dtype) -> mlsh.Array | nil, err
 * The file is mapped through the model's container (borrowed, bounds-checked). */
#include "dtype.h"
#include "espresso.h"
#include "lua_array.h"
#include "lua_model.h"
#include <lauxlib.h>
#include <stdlib.h>

static int push_err(lua_State *L, const mlsh_err *e) {
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  return 2;
}

static int l_index(lua_State *L) {
  mlsh_container *c = mlsh_model_container(L, 1);
  const char *rel = luaL_optstring(L, 2, "model.espresso.weights");
  const uint8_t *data;
  size_t len;
  mlsh_err e;
  char name[1200];
  mlsh_container_display(c, rel, name, sizeof name);
  if (mlsh_container_map(c, rel, &data, &len, NULL, &e) != 0) return push_err(L, &e);
  mlsh_espresso_blob *b;
  size_t n;
  uint64_t trailing;
  if (mlsh_espresso_index(data, len, name, &b, &n, &trailing, &e) != 0) return push_err(L, &e);
  lua_createtable(L, 0, 2);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)b[i].key);
    lua_setfield(L, -2, "key");
    lua_pushinteger(L, (lua_Integer)b[i].size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)b[i].offset);
    lua_setfield(L, -2, "offset");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "blobs");
  lua_pushinteger(L, (lua_Integer)trailing);
  lua_setfield(L, -2, "trailing");
  free(b);
  return 1;
}

static int l_values(lua_State *L) {
  mlsh_container *c = mlsh_model_container(L, 1);
  const char *rel = luaL_checkstring(L, 2);
  lua_Integer off = luaL_checkinteger(L, 3), count = luaL_checkinteger(L, 4);
  mlsh_dtype dt = mlsh_dtype_from_name(luaL_checkstring(L, 5));
  luaL_argcheck(L, mlsh_dtype_bits(dt) > 0, 5, "unknown dtype");
  const uint8_t *data;
  size_t len;
  mlsh_err e;
  if (mlsh_container_map(c, rel, &data, &len, NULL, &e) != 0) return push_err(L, &e);
  size_t need = mlsh_dtype_nbytes(dt, (size_t)count);
  if (off < 0 || count < 0 || (size_t)off > len || need > len - (size_t)off) {
    char name[1200];
    mlsh_container_display(c, rel, name, sizeof name);
    mlsh_fail(&e, name, "%lld values at offset %lld run past the end of the file", (long long)count, (long long)off);
    return push_err(L, &e);
  }
  mlsh_array *a = mlsh_array_push(L, (size_t)count);
  if (mlsh_decode_f32(data + off, len - (size_t)off, dt, (size_t)count, a->data) != 0) {
    mlsh_fail(&e, rel, "cannot decode %s values", mlsh_dtype_name(dt));
    return push_err(L, &e);
  }
  return 1;
}

int luaopen_mlsh_core_espresso(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, l_index);
  lua_setfield(L, -2, "index");
  lua_pushcfunction(L, l_values);
  lua_setfield(L, -2, "values");
  return 1;
}
