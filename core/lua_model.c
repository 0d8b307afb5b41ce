/* lua_model.c — binding for mlsh.Model: an opened model container plus its decoded spec.
 * Lua (the raw layer; lua/mlsh/model/ owns the user API, one method table per format):
 *   core.model.open(path) -> Model | nil, err      (err names the file and the reason; the spec is
 *       decoded by mlsh_model_decode, core/coreml.h)
 *   core.model.format(m) -> "mlmodel"|"mlpackage"|"mlpackage.zip"|"mlmodelc"|"onnx"
 *   core.model.attach(m, {methods=, props=}): the table m.key looks in (methods[key], else
 *       props[key](m)); core.model.formats[fmt] holds those tables, core.model.raw the raw methods:
 *   m:_format() m:_path() m:_spec() m:_set_spec(msg) m:_files() m:_read(relpath [, max])
 *   m:_blob(file, offset) -> {dtype, blob_dtype, size, data_offset, padding_bits} | nil, err
 *   m:_blob_header(file) -> {count, version} | nil, err
 *   m:_blob_values(file, offset, n [, dtype]) -> mlsh.Array | nil, err
 *   m:_blob_stats(file, offset, n [, dtype]) -> the stats table of those values | nil, err (streamed)
 *   m:_blob_drop(file, offset) -> true when the blob's resident pages of a mapped weight file were
 *     dropped (mlsh_container_drop_pages), false for bytes held in memory | nil, err
 *   m:_blob_bytes(file, offset) -> string | nil, err
 *   m:close() (also __close/__gc).
 * Weight files are mapped on first use and stay mapped until close. */
#include "blobfile.h"
#include "container.h"
#include "lua_array.h"
#include "lua_model.h"
#include "lua_proto.h"
#include "coreml.h"
#include <lauxlib.h>
#include <string.h>

#define MODEL_MT "mlsh.Model"

typedef struct {
  mlsh_container *c;
} lmodel;

static lmodel *check_open(lua_State *L, int idx) {
  lmodel *m = luaL_checkudata(L, idx, MODEL_MT);
  if (!m->c) luaL_error(L, "model is closed");
  return m;
}

mlsh_container *mlsh_model_container(lua_State *L, int idx) { return check_open(L, idx)->c; }

static int push_err(lua_State *L, const mlsh_err *e) {
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  return 2;
}

static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mlsh_container *c;
  mlsh_err e;
  if (mlsh_container_open(path, &c, &e) != 0) return push_err(L, &e);
  return mlsh_model_push(L, c);
}

int mlsh_model_push(lua_State *L, mlsh_container *c) {
  lmodel *m = lua_newuserdatauv(L, sizeof *m, 3);
  m->c = c; /* owned from here on: closed by close() or when the userdata is collected */
  luaL_setmetatable(L, MODEL_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 2); /* cache table for the Lua layer */
  mlsh_err e;
  ProtobufCMessage *msg = NULL;
  if (mlsh_model_decode(m->c, &msg, &e) != 0) return push_err(L, &e);
  if (!msg) return 1; /* a compiled .mlmodelc: the Lua layer builds the spec from model.mil */
  mlsh_proto_push_root(L, msg);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int l_close(lua_State *L) {
  lmodel *m = luaL_checkudata(L, 1, MODEL_MT);
  if (m->c) mlsh_container_close(m->c);
  m->c = NULL;
  return 0;
}

static int l_format(lua_State *L) {
  lua_pushstring(L, mlsh_format_name(mlsh_container_format(check_open(L, 1)->c)));
  return 1;
}

static int l_path(lua_State *L) {
  lua_pushstring(L, mlsh_container_path(check_open(L, 1)->c));
  return 1;
}

static int l_spec(lua_State *L) {
  check_open(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int l_set_spec(lua_State *L) {
  check_open(L, 1);
  mlsh_proto_check(L, 2, NULL);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  return 0;
}

static int l_cache(lua_State *L) {
  luaL_checkudata(L, 1, MODEL_MT);
  lua_getiuservalue(L, 1, 2);
  return 1;
}

static void add_file(void *ud, const char *rel, uint64_t size) {
  lua_State *L = ud;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, rel);
  lua_setfield(L, -2, "path");
  lua_pushinteger(L, (lua_Integer)size);
  lua_setfield(L, -2, "bytes");
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

static int l_files(lua_State *L) {
  lmodel *m = check_open(L, 1);
  lua_newtable(L);
  mlsh_err e;
  if (mlsh_container_list(m->c, add_file, L, &e) != 0) return push_err(L, &e);
  return 1;
}

static int l_read(lua_State *L) {
  lmodel *m = check_open(L, 1);
  const char *rel = luaL_checkstring(L, 2);
  lua_Integer max = luaL_optinteger(L, 3, (lua_Integer)MLSH_MAX_SMALL_FILE);
  uint64_t size;
  mlsh_err e;
  if (mlsh_container_stat(m->c, rel, &size) != 0) {
    mlsh_fail(&e, mlsh_container_path(m->c), "has no file %s", rel);
    return push_err(L, &e);
  }
  if (max >= 0 && size > (uint64_t)max) {
    mlsh_fail(&e, mlsh_container_path(m->c), "%s is %llu bytes, over the %lld-byte limit", rel,
              (unsigned long long)size, (long long)max);
    return push_err(L, &e);
  }
  const uint8_t *data;
  size_t len;
  if (mlsh_container_map(m->c, rel, &data, &len, NULL, &e) != 0) return push_err(L, &e);
  lua_pushlstring(L, (const char *)data, len);
  return 1;
}

/* Map a weight file and read the blob record at offset. */
static int get_blob(lua_State *L, lmodel *m, mlsh_blob *b, mlsh_err *e) {
  const char *file = luaL_checkstring(L, 2);
  lua_Integer off = luaL_checkinteger(L, 3);
  const uint8_t *data;
  size_t len;
  const char *name;
  if (mlsh_container_map(m->c, file, &data, &len, &name, e) != 0) return -1;
  char printable[1024];
  mlsh_container_display(m->c, name, printable, sizeof printable);
  if (off < 0) return mlsh_fail(e, printable, "negative blob offset %lld", (long long)off);
  return mlsh_blob_read(data, len, (uint64_t)off, b, printable, e);
}

static int l_blob(lua_State *L) {
  lmodel *m = check_open(L, 1);
  mlsh_blob b;
  mlsh_err e;
  if (get_blob(L, m, &b, &e) != 0) return push_err(L, &e);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, mlsh_dtype_name(b.dtype)); lua_setfield(L, -2, "dtype");
  lua_pushinteger(L, b.blob_dtype); lua_setfield(L, -2, "blob_dtype");
  lua_pushinteger(L, (lua_Integer)b.size); lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)b.data_offset); lua_setfield(L, -2, "data_offset");
  lua_pushinteger(L, (lua_Integer)b.padding_bits); lua_setfield(L, -2, "padding_bits");
  return 1;
}

static int l_blob_header(lua_State *L) {
  lmodel *m = check_open(L, 1);
  const char *file = luaL_checkstring(L, 2);
  const uint8_t *data;
  size_t len;
  const char *name;
  mlsh_err e;
  mlsh_blob_header h;
  if (mlsh_container_map(m->c, file, &data, &len, &name, &e) != 0 || mlsh_blob_read_header(data, len, &h, name, &e) != 0)
    return push_err(L, &e);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, h.count); lua_setfield(L, -2, "count");
  lua_pushinteger(L, h.version); lua_setfield(L, -2, "version");
  return 1;
}

static int l_blob_values(lua_State *L) {
  lmodel *m = check_open(L, 1);
  lua_Integer n = luaL_checkinteger(L, 4);
  const char *dtname = luaL_optstring(L, 5, NULL);
  mlsh_blob b;
  mlsh_err e;
  if (get_blob(L, m, &b, &e) != 0) return push_err(L, &e);
  mlsh_dtype dt = dtname ? mlsh_dtype_from_name(dtname) : b.dtype;
  if (dt == MLSH_DT_INVALID) {
    mlsh_fail(&e, mlsh_container_path(m->c), "blob at offset %lld has unknown data type %u", (long long)luaL_checkinteger(L, 3),
              b.blob_dtype);
    return push_err(L, &e);
  }
  if (n < 0 || mlsh_dtype_nbytes(dt, (size_t)n) > b.size) {
    mlsh_fail(&e, mlsh_container_path(m->c), "blob at offset %lld holds %llu bytes, too few for %lld %s values",
              (long long)luaL_checkinteger(L, 3), (unsigned long long)b.size, (long long)n, mlsh_dtype_name(dt));
    return push_err(L, &e);
  }
  mlsh_array *a = mlsh_array_push_uninit(L, (size_t)n); /* the decoder writes every element */
  mlsh_decode_f32(b.data, b.size, dt, (size_t)n, a->data);
  return 1;
}

/* m:_blob_stats(file, offset, n [, dtype]): a:stats() of the blob's first n values, decoded in
 * chunks on a stack buffer: no array is allocated and the values are read once. */
static int l_blob_stats(lua_State *L) {
  lmodel *m = check_open(L, 1);
  lua_Integer n = luaL_checkinteger(L, 4);
  const char *dtname = luaL_optstring(L, 5, NULL);
  mlsh_blob b;
  mlsh_err e;
  if (get_blob(L, m, &b, &e) != 0) return push_err(L, &e);
  mlsh_dtype dt = dtname ? mlsh_dtype_from_name(dtname) : b.dtype;
  if (dt == MLSH_DT_INVALID) {
    mlsh_fail(&e, mlsh_container_path(m->c), "blob at offset %lld has unknown data type %u", (long long)luaL_checkinteger(L, 3),
              b.blob_dtype);
    return push_err(L, &e);
  }
  if (n < 0 || mlsh_dtype_nbytes(dt, (size_t)n) > b.size) {
    mlsh_fail(&e, mlsh_container_path(m->c), "blob at offset %lld holds %llu bytes, too few for %lld %s values",
              (long long)luaL_checkinteger(L, 3), (unsigned long long)b.size, (long long)n, mlsh_dtype_name(dt));
    return push_err(L, &e);
  }
  enum { CHUNK = 4096 }; /* a multiple of 8 elements: every chunk starts on a byte for sub-byte types */
  float buf[CHUNK];
  mlsh_stats s;
  mlsh_stats_init(&s);
  unsigned bits = mlsh_dtype_bits(dt);
  for (size_t i = 0; i < (size_t)n; i += CHUNK) {
    size_t k = (size_t)n - i < CHUNK ? (size_t)n - i : CHUNK, at = i / 8 * bits;
    mlsh_decode_f32((const uint8_t *)b.data + at, b.size - at, dt, k, buf);
    mlsh_stats_add(&s, buf, k);
  }
  mlsh_stats_push(L, &s);
  return 1;
}

static int l_blob_drop(lua_State *L) {
  lmodel *m = check_open(L, 1);
  mlsh_blob b;
  mlsh_err e;
  if (get_blob(L, m, &b, &e) != 0) return push_err(L, &e);
  lua_pushboolean(L, mlsh_container_drop_pages(m->c, b.data, b.size));
  return 1;
}

static int l_blob_bytes(lua_State *L) {
  lmodel *m = check_open(L, 1);
  mlsh_blob b;
  mlsh_err e;
  if (get_blob(L, m, &b, &e) != 0) return push_err(L, &e);
  lua_pushlstring(L, (const char *)b.data, b.size);
  return 1;
}

/* m.key: one plain lookup in the method table of the model's format (set by core.model.attach
 * from lua/mlsh/model/), then its property getters (called with m). Before attach (or for a
 * model opened with core.model.open alone) only the raw methods below answer. */
static int l_index(lua_State *L) {
  luaL_checkudata(L, 1, MODEL_MT);
  if (lua_getiuservalue(L, 1, 3) != LUA_TTABLE) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
  }
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TNIL) return 1;
  lua_pop(L, 2);
  lua_getfield(L, -1, "props");
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) == LUA_TFUNCTION) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* core.model.attach(m, api): api = {methods = {...}, props = {...}} for m's format. */
static int l_attach(lua_State *L) {
  luaL_checkudata(L, 1, MODEL_MT);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 3);
  return 0;
}

/* core.model.format(m): the container format name, without going through __index. */
static int l_format_of(lua_State *L) { return l_format(L); }

static int l_tostring(lua_State *L) {
  lmodel *m = luaL_checkudata(L, 1, MODEL_MT);
  if (m->c) lua_pushfstring(L, "Model(%s)", mlsh_container_path(m->c));
  else lua_pushliteral(L, "Model(closed)");
  return 1;
}

static const luaL_Reg methods[] = {
  {"_format", l_format}, {"_path", l_path}, {"_spec", l_spec}, {"_set_spec", l_set_spec}, {"_cache", l_cache},
  {"_files", l_files}, {"_read", l_read}, {"_blob", l_blob}, {"_blob_header", l_blob_header},
  {"_blob_values", l_blob_values}, {"_blob_stats", l_blob_stats}, {"_blob_drop", l_blob_drop}, {"_blob_bytes", l_blob_bytes}, {"close", l_close}, {NULL, NULL}};
static const luaL_Reg meta[] = {
  {"__index", l_index}, {"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};

int luaopen_mlsh_core_model(lua_State *L) {
  lua_newtable(L); /* module */
  luaL_newlib(L, methods);
  if (luaL_newmetatable(L, MODEL_MT)) {
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, meta, 1); /* __index sees the raw methods as its upvalue */
  }
  lua_pop(L, 1);
  lua_setfield(L, -2, "raw"); /* the raw methods: lua/mlsh/model/ copies them into each format's table */
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  lua_pushcfunction(L, l_attach);
  lua_setfield(L, -2, "attach");
  lua_pushcfunction(L, l_format_of);
  lua_setfield(L, -2, "format");
  lua_newtable(L);
  lua_setfield(L, -2, "formats"); /* formats[name] = {methods, props}: filled by lua/mlsh/model/ */
  return 1;
}
