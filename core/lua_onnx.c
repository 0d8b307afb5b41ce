/* lua_onnx.c — tensor payload access for ONNX models (require("mlsh.core").onnx).
 * Lua:
 *   onnx.bytes(model, file, offset [, length]) -> string | nil, err
 *   onnx.values(model, file, offset, length, dtype, n [, shape]) -> mlsh.Array | nil, err
 *   onnx.size(model, file) -> bytes | nil, err
 *   onnx.mark_bytes_present(msg)        set the proto2 presence flag of every non-empty optional bytes
 *                                       field in msg's tree (raw_data, AttributeProto.s) before encoding:
 *                                       the generic Message binding writes proto3-style bytes without
 *                                       one, and protobuf-c packs a proto2 optional field only when set
 *   onnx.ELIDE_MIN                      payloads at least this long stay in the mapped file
 * `file` nil means the .onnx file itself (offsets from mlsh_elided_offset); otherwise it is an
 * external-data `location`, resolved beside the model by the container (absolute paths and ".."
 * are refused there) and mapped, never read whole. A missing length means "to the end of the
 * file". offset and length are checked against the file size before anything is read, and an
 * Array is only allocated once the bytes it decodes are known to exist. */
#include "container.h"
#include "dtype.h"
#include "lua_array.h"
#include "lua_model.h"
#include "lua_proto.h"
#include "onnx.h"
#include <lauxlib.h>
#include <stdint.h>

typedef struct {
  const uint8_t *data;
  size_t len;
} span;

/* Resolve (file, offset, length) of the call at arguments 2..4 to a checked span; 0 or -1 + err pushed. */
static int resolve(lua_State *L, span *out) {
  mlsh_container *c = mlsh_model_container(L, 1);
  const char *file = luaL_optstring(L, 2, NULL);
  lua_Integer off = luaL_checkinteger(L, 3);
  int has_len = !lua_isnoneornil(L, 4);
  lua_Integer want = has_len ? luaL_checkinteger(L, 4) : 0;
  const uint8_t *data;
  size_t len;
  const char *name = mlsh_container_path(c);
  mlsh_err e;
  int rc = file ? mlsh_container_map(c, file, &data, &len, &name, &e) : mlsh_container_spec(c, &data, &len, &name, &e);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, e.msg);
    return -1;
  }
  const char *what = file ? file : name;
  if (off < 0 || (uint64_t)off > len) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: offset %I is past the end of the %I-byte file", what, off, (lua_Integer)len);
    return -1;
  }
  size_t avail = len - (size_t)off;
  if (has_len && (want < 0 || (uint64_t)want > avail)) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %I bytes at offset %I run past the end of the %I-byte file", what, want, off, (lua_Integer)len);
    return -1;
  }
  out->data = data + off;
  out->len = has_len ? (size_t)want : avail;
  return 0;
}

static int l_bytes(lua_State *L) {
  span s;
  if (resolve(L, &s) != 0) return 2;
  lua_pushlstring(L, (const char *)s.data, s.len);
  return 1;
}

static int l_values(lua_State *L) {
  span s;
  if (resolve(L, &s) != 0) return 2;
  mlsh_dtype dt = mlsh_dtype_from_name(luaL_checkstring(L, 5));
  luaL_argcheck(L, dt != MLSH_DT_INVALID, 5, "unknown dtype");
  lua_Integer n = luaL_checkinteger(L, 6);
  size_t need = n >= 0 ? mlsh_dtype_nbytes(dt, (size_t)n) : SIZE_MAX;
  if (n < 0 || need == SIZE_MAX || need > s.len) {
    lua_pushnil(L);
    lua_pushfstring(L, "tensor payload of %I bytes is too short for %I %s elements", (lua_Integer)s.len, n, mlsh_dtype_name(dt));
    return 2;
  }
  mlsh_array *a = mlsh_array_push(L, (size_t)n);
  mlsh_decode_f32(s.data, s.len, dt, (size_t)n, a->data);
  if (lua_istable(L, 7)) {
    int rank = (int)lua_rawlen(L, 7);
    int64_t prod = 1;
    int ok = rank <= MLSH_ARRAY_MAX_RANK;
    for (int i = 0; ok && i < rank; i++) {
      lua_rawgeti(L, 7, i + 1);
      lua_Integer d = lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (d < 0 || (d && prod > INT64_MAX / d)) ok = 0;
      else {
        a->shape[i] = d;
        prod *= d;
      }
    }
    if (ok && prod == (int64_t)n) a->rank = rank;
    else {
      a->rank = 1;
      a->shape[0] = (int64_t)n;
    }
  }
  return 1;
}

static int l_size(lua_State *L) {
  mlsh_container *c = mlsh_model_container(L, 1);
  const char *file = luaL_checkstring(L, 2);
  uint64_t size;
  if (mlsh_container_stat(c, file, &size) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: external data file %s is missing (or its path is not a safe relative path)",
                    mlsh_container_path(c), file);
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)size);
  return 1;
}

static void mark_bytes(ProtobufCMessage *m, int depth) {
  if (!m || depth > 100) return;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    char *base = (char *)m + f->offset;
    if (f->type == PROTOBUF_C_TYPE_BYTES && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
        !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
      if (((ProtobufCBinaryData *)base)->len > 0) *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(size_t *)((char *)m + f->quantifier_offset);
        ProtobufCMessage **items = *(ProtobufCMessage ***)base;
        for (size_t j = 0; j < n; j++) mark_bytes(items[j], depth + 1);
      } else {
        mark_bytes(*(ProtobufCMessage **)base, depth + 1);
      }
    }
  }
}

static int l_mark_bytes_present(lua_State *L) {
  mark_bytes(mlsh_proto_check(L, 1, NULL), 0);
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg funcs[] = {{"bytes", l_bytes}, {"values", l_values}, {"size", l_size},
                                 {"mark_bytes_present", l_mark_bytes_present}, {NULL, NULL}};

int luaopen_mlsh_core_onnx(lua_State *L) {
  luaL_newlib(L, funcs);
  lua_pushinteger(L, MLSH_ONNX_ELIDE_MIN);
  lua_setfield(L, -2, "ELIDE_MIN");
  return 1;
}
