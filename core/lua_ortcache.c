/* lua_ortcache.c — binding for ONNX Runtime's Core ML cache folders (core/ortcache.h). Lua:
 *   core.ortcache.scan(dir) -> {{key, dir, onnx_path, models = {path...}}...} (empty: not a cache)
 *                              | nil, err (a cache folder that cannot be read) */
#include "ortcache.h"
#include <lauxlib.h>
#include <sys/stat.h>

static int l_scan(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  struct stat st;
  lua_newtable(L);
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 1;
  mlsh_ortcache *c;
  mlsh_err e;
  if (mlsh_ortcache_scan(dir, &c, &e) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, e.msg);
    return 2;
  }
  for (size_t i = 0; i < c->count; i++) {
    const mlsh_ort_entry *en = &c->entries[i];
    lua_createtable(L, 0, 4);
    lua_pushstring(L, en->key);
    lua_setfield(L, -2, "key");
    lua_pushstring(L, en->dir);
    lua_setfield(L, -2, "dir");
    lua_pushstring(L, en->onnx_path);
    lua_setfield(L, -2, "onnx_path");
    lua_createtable(L, (int)en->nmodels, 0);
    for (size_t k = 0; k < en->nmodels; k++) {
      lua_pushstring(L, en->models[k]);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "models");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  mlsh_ortcache_free(c);
  return 1;
}

int luaopen_mlsh_core_ortcache(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, l_scan);
  lua_setfield(L, -2, "scan");
  return 1;
}
