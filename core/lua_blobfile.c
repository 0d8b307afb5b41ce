/* lua_blobfile.c — binding for writing weight.bin images (see blobfile.h).
 * Lua: local w = blobfile.writer() ; off = w:add(dtype, bytes, n_elements) ; w:bytes() -> string ;
 *      w:count() ; blobfile.read(bytes, offset) -> {dtype, size, data_offset, padding_bits} | nil, err
 *      (reads a weight.bin image held in a Lua string, e.g. to check what a writer produced).
 *      local s = blobfile.stream(path) ; s:add(...) as above, each blob written to path at once ;
 *      s:close() (header count, close; raises "path: reason"). The file is created or
 *      truncated: give it a temporary path and rename it into place (fsutil.h: the rename that
 *      replaces an older output flushes it first). A stream not closed is closed by the GC
 *      without its count: the caller removes such a file. */
#include "blobfile.h"
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <string.h>
#include <unistd.h>

#define WRITER_MT "mlsh.BlobWriter"

static mlsh_blob_writer *check(lua_State *L) { return luaL_checkudata(L, 1, WRITER_MT); }

static int l_writer(lua_State *L) {
  mlsh_blob_writer *w = lua_newuserdatauv(L, sizeof *w, 0);
  w->buf = NULL;
  w->len = w->cap = 0;
  w->count = 0;
  w->fd = -1;
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
  if (w->fd < 0 && !w->buf) return luaL_error(L, "blob writer: add() after close()");
  uint64_t off;
  mlsh_err e;
  if (mlsh_blob_writer_add(w, dt, data, len, (size_t)n, &off, &e) != 0) {
    if (w->fd < 0) return luaL_error(L, "%s", e.msg);
    lua_getiuservalue(L, 1, 1); /* a stream: name its file, as fs.write_atomic does */
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), e.msg);
    return lua_error(L);
  }
  lua_pushinteger(L, (lua_Integer)off);
  return 1;
}

static int l_bytes(lua_State *L) {
  mlsh_blob_writer *w = check(L);
  if (w->fd >= 0 || !w->buf) return luaL_error(L, "blob writer: bytes() of a stream");
  lua_pushlstring(L, (const char *)w->buf, w->len);
  return 1;
}

static int l_count(lua_State *L) {
  lua_pushinteger(L, check(L)->count);
  return 1;
}

static int l_gc(lua_State *L) {
  mlsh_blob_writer *w = check(L);
  if (w->fd >= 0) close(w->fd);
  mlsh_blob_writer_free(w);
  return 0;
}

static int l_stream(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mlsh_blob_writer *w = lua_newuserdatauv(L, sizeof *w, 1);
  memset(w, 0, sizeof *w);
  w->fd = -1;
  luaL_setmetatable(L, WRITER_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return luaL_error(L, "%s: cannot create: %s", path, strerror(errno));
  mlsh_err e;
  if (mlsh_blob_writer_stream(w, fd, path, &e) != 0) {
    close(fd);
    return luaL_error(L, "%s", e.msg);
  }
  return 1;
}

static int l_close(lua_State *L) {
  mlsh_blob_writer *w = check(L);
  lua_getiuservalue(L, 1, 1);
  const char *path = lua_tostring(L, -1);
  if (w->fd < 0) return luaL_error(L, "blob writer: close() of a writer that is not an open stream");
  int fd = w->fd;
  mlsh_err e;
  int st = mlsh_blob_writer_finish(w, path, &e);
  w->fd = -1;
  if (st != 0) {
    close(fd);
    return luaL_error(L, "%s", e.msg);
  }
  if (close(fd) != 0) return luaL_error(L, "%s: write failed: %s", path, strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
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

static const luaL_Reg methods[] = {{"add", l_add}, {"bytes", l_bytes}, {"count", l_count}, {"close", l_close}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"writer", l_writer}, {"stream", l_stream}, {"read", l_read}, {NULL, NULL}};

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
