/* lua_fs.c — binding for the writing side of the file system (see fsutil.h).
 * Lua: fs.write_atomic(path, bytes) ; fs.mkdir_p(path) ; fs.remove_tree(path) ;
 *      fs.replace_dir(src, dst) ; fs.zip_dir(src, prefix, dst) ; fs.exists(path) -> "file"|"dir"|nil ;
 *      fs.size(path) ; fs.zip_write(path, {{name=, data=}, ...} [, {store=true}]) ;
 *      fs.list(dir) -> {{name=, dir=bool}, ...} sorted by name, without . and .. | nil, err ;
 *      fs.realpath(path) -> absolute path with no symlinks | nil, err.
 * Errors return nil, "path: reason". */
#include "fsutil.h"
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int result(lua_State *L, int rc, const mlsh_err *e) {
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  return 2;
}

static int l_write_atomic(lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1), *data = luaL_checklstring(L, 2, &len);
  mlsh_err e;
  return result(L, mlsh_write_atomic(path, data, len, &e), &e);
}

static int l_mkdir_p(lua_State *L) {
  mlsh_err e;
  return result(L, mlsh_mkdir_p(luaL_checkstring(L, 1), &e), &e);
}

static int l_remove_tree(lua_State *L) {
  lua_pushboolean(L, mlsh_remove_tree(luaL_checkstring(L, 1)) == 0);
  return 1;
}

static int l_replace_dir(lua_State *L) {
  mlsh_err e;
  return result(L, mlsh_replace_dir(luaL_checkstring(L, 1), luaL_checkstring(L, 2), &e), &e);
}

static int l_zip_dir(lua_State *L) {
  mlsh_err e;
  return result(L, mlsh_zip_dir(luaL_checkstring(L, 1), luaL_optstring(L, 2, ""), luaL_checkstring(L, 3), &e), &e);
}

static int l_exists(lua_State *L) {
  struct stat st;
  if (stat(luaL_checkstring(L, 1), &st) != 0) lua_pushnil(L);
  else lua_pushstring(L, S_ISDIR(st.st_mode) ? "dir" : "file");
  return 1;
}

static int l_size(lua_State *L) {
  struct stat st;
  if (stat(luaL_checkstring(L, 1), &st) != 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)st.st_size);
  return 1;
}

static int l_zip_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int store = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "store");
    store = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_Integer n = luaL_len(L, 2);
  luaL_argcheck(L, n >= 0 && n < 100000, 2, "too many entries");
  mlsh_zip_entry *ents = lua_newuserdatauv(L, sizeof *ents * (size_t)(n ? n : 1), 0); /* freed by the GC */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_getfield(L, -1, "name");
    lua_getfield(L, -2, "data");
    ents[i - 1].name = luaL_checkstring(L, -2);
    ents[i - 1].data = luaL_checklstring(L, -1, &ents[i - 1].len);
    lua_pop(L, 2);
    lua_pop(L, 1); /* the strings stay alive: argument 2 still holds them */
  }
  mlsh_err e;
  return result(L, mlsh_zip_write(path, ents, (size_t)n, store, &e), &e);
}

static int push_errno(lua_State *L, const char *path) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", path, strerror(errno));
  return 2;
}

static int by_name(lua_State *L) {
  lua_getfield(L, 1, "name");
  lua_getfield(L, 2, "name");
  lua_pushboolean(L, strcmp(lua_tostring(L, -2), lua_tostring(L, -1)) < 0);
  return 1;
}

static int l_list(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  DIR *d = opendir(dir);
  if (!d) return push_errno(L, dir);
  lua_newtable(L);
  lua_Integer n = 0;
  luaL_Buffer b;
  struct dirent *ent;
  while ((ent = readdir(d))) {
    if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, dir);
    luaL_addchar(&b, '/');
    luaL_addstring(&b, ent->d_name);
    luaL_pushresult(&b);
    struct stat st;
    int is_dir = stat(lua_tostring(L, -1), &st) == 0 && S_ISDIR(st.st_mode);
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ent->d_name);
    lua_setfield(L, -2, "name");
    lua_pushboolean(L, is_dir);
    lua_setfield(L, -2, "dir");
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, -3);
  lua_pushcfunction(L, by_name);
  lua_call(L, 2, 0);
  lua_pop(L, 1);
  return 1;
}

static int l_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (!realpath(path, buf)) return push_errno(L, path);
  lua_pushstring(L, buf);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"list", l_list}, {"realpath", l_realpath},
  {"write_atomic", l_write_atomic}, {"mkdir_p", l_mkdir_p}, {"remove_tree", l_remove_tree},
  {"replace_dir", l_replace_dir}, {"zip_dir", l_zip_dir}, {"exists", l_exists}, {"size", l_size}, {"zip_write", l_zip_write}, {NULL, NULL}};

int luaopen_mlsh_core_fs(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
