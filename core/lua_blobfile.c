/* lua_blobfile.c — binding for writing weight.bin images (see blobfile.h).
 * Lua: local w = blobfile.writer() ; off = w:add(dtype, bytes, n_elements) ; w:bytes() -> string ;
 *      w:count() ; blobfile.read(bytes, offset) -> {dtype, size, data_offset, padding_bits} | nil, err
 *      (reads a weight.bin image held in a Lua string, e.g. to check what a writer produced). */
#include "blobfile.h"
#include <lauxlib.h>

#define WRITER_MT "mlsh.BlobWriter"

static mlsh_blob_writer *check(lua_State *L) { return luaL_checkudata(L, 1, WRITER_MT); }

static int l_writer(lua_State *L) {
  mlsh_blob_writer *w = lua_newuserdatauv(L, sizeof *w, 0);
  w->buf = NULL;
  w->len = w->cap = 0;
  w->count = 0;
  luaL_setmetatable(L, WRITER_MT);
  if (mlsh_blob_writer_init(w) != 0) return luaL_error(L, "out of memory");
  return 1;
}

static int l_add(lua_State *L) {
  mlsh_blob_writer *w = check(L);
  mlsh_dtype dt = mlsh_dtype_from_name(luaL_checkstring(L, 2));
  luaL_argcheck(L, dt != MLSH_DT_INVALID, 2, "unknown dtype");
  size_t len;
  const char *data = luaL_checklstring(L, 3, &len);
  lua_Integer n = luaL_checkinteger(L, 4);
  luaL_argcheck(L, n >= 0, 4, "negative element count");
  uint64_t off;
  mlsh_err e;
  if (mlsh_blob_writer_add(w, dt, data, len, (size_t)n, &off, &e) != 0) return luaL_error(L, "%s", e.msg);
  lua_pushinteger(L, (lua_Integer)off);
  return 1;
}

static int l_bytes(lua_State *L) {
  mlsh_blob_writer *w = check(L);
  lua_pushlstring(L, (const char *)w->buf, w->len);
  return 1;
}

static int l_count(lua_State *L) {
  lua_pushinteger(L, check(L)->count);
  return 1;
}

static int l_gc(lua_State *L) {
  mlsh_blob_writer_free(check(L));
  return 0;
}

static int l_read(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer off = luaL_checkinteger(L, 2);
  mlsh_blob b;
  mlsh_err e;
  if (off < 0 || mlsh_blob_read((const uint8_t *)s, len, (uint64_t)off, &b, "weight.bin", &e) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, off < 0 ? "negative offset" : e.msg);
    return 2;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, mlsh_dtype_name(b.dtype)); lua_setfield(L, -2, "dtype");
  lua_pushinteger(L, (lua_Integer)b.size); lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)b.data_offset); lua_setfield(L, -2, "data_offset");
  lua_pushinteger(L, (lua_Integer)b.padding_bits); lua_setfield(L, -2, "padding_bits");
  return 1;
}

static const luaL_Reg methods[] = {{"add", l_add}, {"bytes", l_bytes}, {"count", l_count}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"writer", l_writer}, {"read", l_read}, {NULL, NULL}};

int luaopen_mlsh_core_blobfile(lua_State *L) {
  if (luaL_newmetatable(L, WRITER_MT)) {
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
