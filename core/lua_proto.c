/* lua_proto.c — binding for mlsh.Message: reflective access to protobuf-c messages.
 * Lua:
 *   core.proto.decode(type_name, bytes) -> Message | nil, err     core.proto.new(type_name) -> Message
 *   core.proto.types() -> list of known message type names
 *   msg.field                  scalar (enums as their value name), string, sub-Message or nil,
 *                              repeated -> Lua list (sub-Messages for message fields)
 *   msg.field = v              set a scalar/enum/string/bytes, a sub-Message (copied) or nil,
 *                              or a whole repeated field from a Lua list
 *   msg:has(f)  msg:which(f)   presence; which member of f's oneof is set (name or nil)
 *   msg:present()              names of the fields that are set, in field-number order
 *   msg:count(f)               length of a repeated field
 *   msg:array(f)               repeated numeric field -> mlsh.Array (no Lua table of millions)
 *   msg:bytes(f)               bytes field as a string
 *   msg:add(f [, v])           append to a repeated field: a new sub-Message (returned) or a value
 *   msg:mutable(f)             the sub-Message in f, created if absent
 *   msg:clear(f)               reset a field to its default
 *   msg:map(f)                 map field -> table key -> value, plus the list of keys in file order
 *   msg:get(f, key)            one map entry's value
 *   msg:unknown()              list of {number=, wire=, bytes=} for fields this schema does not name
 *   msg:encode() -> bytes      msg:copy() -> new root Message    msg:typename()   msg:fields()
 */
#include "lua_proto.h"
#include "lua_array.h"
#include "pbdepth.h"
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MT "mlsh.Message"

typedef struct {
  ProtobufCMessage **items;
  size_t n, cap;
} graveyard;

typedef struct {
  ProtobufCMessage *msg;
  graveyard *grave; /* shared by a root and its children; owned by the root */
  int is_root;
} lmsg;

/* ---- memory helpers -------------------------------------------------------------------------- */
#define MEMBER(msg, off, T) (*(T *)((char *)(msg) + (off)))

static void bury(graveyard *g, ProtobufCMessage *m) {
  if (!m) return;
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 8;
    ProtobufCMessage **p = realloc(g->items, cap * sizeof *p);
    if (!p) { /* cannot keep it safely: leak rather than risk a dangling child */
      return;
    }
    g->items = p;
    g->cap = cap;
  }
  g->items[g->n++] = m;
}

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = malloc(d->sizeof_message);
  if (m) d->message_init(m);
  return m;
}

static ProtobufCMessage *copy_message(lua_State *L, const ProtobufCMessage *src) {
  size_t n = protobuf_c_message_get_packed_size(src);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) luaL_error(L, "out of memory copying a message");
  protobuf_c_message_pack(src, buf);
  ProtobufCMessage *m = protobuf_c_message_unpack(src->descriptor, NULL, n, buf);
  free(buf);
  if (!m) luaL_error(L, "cannot copy a %s message", src->descriptor->name);
  return m;
}

static size_t scalar_size(ProtobufCType t) {
  switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM: return 4;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
  }
  return 0;
}

/* ---- userdata -------------------------------------------------------------------------------- */
static lmsg *check(lua_State *L, int idx) { return luaL_checkudata(L, idx, MSG_MT); }

void mlsh_proto_push_root(lua_State *L, ProtobufCMessage *msg) {
  lmsg *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->msg = NULL;
  u->grave = NULL;
  u->is_root = 1;
  luaL_setmetatable(L, MSG_MT); /* set before taking resources: __gc is always safe */
  u->grave = calloc(1, sizeof *u->grave);
  if (!u->grave) {
    protobuf_c_message_free_unpacked(msg, NULL);
    luaL_error(L, "out of memory");
  }
  u->msg = msg;
}

/* Push a child Message borrowing m, keeping the Message at parent_idx (and so its root) alive. */
static void push_child(lua_State *L, int parent_idx, ProtobufCMessage *m) {
  parent_idx = lua_absindex(L, parent_idx);
  lmsg *parent = check(L, parent_idx);
  lmsg *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->msg = m;
  u->grave = parent->grave;
  u->is_root = 0;
  luaL_setmetatable(L, MSG_MT);
  if (parent->is_root) lua_pushvalue(L, parent_idx);
  else lua_getiuservalue(L, parent_idx, 1);
  lua_setiuservalue(L, -2, 1);
}

ProtobufCMessage *mlsh_proto_check(lua_State *L, int idx, const ProtobufCMessageDescriptor *desc) {
  lmsg *u = check(L, idx);
  if (!u->msg) luaL_error(L, "message has been freed");
  if (desc && u->msg->descriptor != desc)
    luaL_error(L, "expected a %s message, got %s", desc->name, u->msg->descriptor->name);
  return u->msg;
}

static int l_gc(lua_State *L) {
  lmsg *u = check(L, 1);
  if (u->is_root && u->grave) {
    if (u->msg) protobuf_c_message_free_unpacked(u->msg, NULL);
    for (size_t i = 0; i < u->grave->n; i++) protobuf_c_message_free_unpacked(u->grave->items[i], NULL);
    free(u->grave->items);
    free(u->grave);
  }
  u->msg = NULL;
  u->grave = NULL;
  return 0;
}

static const ProtobufCFieldDescriptor *field_of(lua_State *L, ProtobufCMessage *m, int idx) {
  const char *name = luaL_checkstring(L, idx);
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
  if (!f) luaL_error(L, "%s has no field '%s'", m->descriptor->name, name);
  return f;
}

static int is_oneof(const ProtobufCFieldDescriptor *f) { return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0; }

static int oneof_selected(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  return MEMBER(m, f->quantifier_offset, uint32_t) == f->id;
}

/* ---- reading --------------------------------------------------------------------------------- */
static void push_enum(lua_State *L, const ProtobufCEnumDescriptor *ed, int v) {
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
  if (ev) lua_pushstring(L, ev->name);
  else lua_pushinteger(L, v);
}

/* Push element at p of type f->type; msg_idx is the owning Message (for sub-message children). */
static void push_value(lua_State *L, int msg_idx, const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
      lua_pushinteger(L, *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: lua_pushinteger(L, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
      lua_pushinteger(L, (lua_Integer) * (const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: lua_pushinteger(L, (lua_Integer) * (const uint64_t *)p); break;
    case PROTOBUF_C_TYPE_FLOAT: lua_pushnumber(L, *(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: lua_pushnumber(L, *(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL: lua_pushboolean(L, *(const protobuf_c_boolean *)p); break;
    case PROTOBUF_C_TYPE_ENUM: push_enum(L, f->descriptor, *(const int *)p); break;
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)p;
      lua_pushstring(L, s ? s : "");
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *b = p;
      lua_pushlstring(L, b->data ? (const char *)b->data : "", b->data ? b->len : 0);
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
      if (sub) push_child(L, msg_idx, sub);
      else lua_pushnil(L);
      break;
    }
  }
}

static int push_field(lua_State *L, int msg_idx, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const char *base = (const char *)m + f->offset;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t n = MEMBER(m, f->quantifier_offset, size_t), sz = scalar_size(f->type);
    const char *arr = *(char *const *)base;
    lua_createtable(L, (int)(n < 1u << 20 ? n : 1u << 20), 0);
    for (size_t i = 0; i < n; i++) {
      push_value(L, msg_idx, f, arr + i * sz);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
  }
  if (is_oneof(f) && !oneof_selected(m, f)) {
    lua_pushnil(L);
    return 1;
  }
  push_value(L, msg_idx, f, base);
  return 1;
}

static int has_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const char *base = (const char *)m + f->offset;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) return MEMBER(m, f->quantifier_offset, size_t) > 0;
  if (is_oneof(f)) return oneof_selected(m, f);
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
    return MEMBER(m, f->quantifier_offset, protobuf_c_boolean);
  switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE: return *(void *const *)base != NULL;
    case PROTOBUF_C_TYPE_STRING: { const char *s = *(char *const *)base; return s && *s; }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)base)->len > 0;
    default: {
      size_t sz = scalar_size(f->type);
      static const char zero[8] = {0};
      return memcmp(base, zero, sz) != 0;
    }
  }
}

static int l_index(lua_State *L) {
  lmsg *u = check(L, 1);
  if (!u->msg) return luaL_error(L, "message has been freed");
  if (lua_type(L, 2) == LUA_TSTRING) {
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(u->msg->descriptor, lua_tostring(L, 2));
    if (f) return push_field(L, 1, u->msg, f);
  }
  luaL_getmetatable(L, MSG_MT);
  lua_getfield(L, -1, "__methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* ---- writing --------------------------------------------------------------------------------- */
/* Free what a singular slot holds (string/bytes) or bury a sub-message, and zero it. */
static void release_slot(lmsg *u, const ProtobufCFieldDescriptor *f, void *p) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
      char **s = p;
      if (*s && *s != (const char *)f->default_value && *s != protobuf_c_empty_string) free(*s);
      *s = NULL;
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      ProtobufCBinaryData *b = p;
      const ProtobufCBinaryData *def = f->default_value;
      if (b->data && (!def || def->data != b->data)) free(b->data);
      b->data = NULL;
      b->len = 0;
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      ProtobufCMessage **sub = p;
      bury(u->grave, *sub);
      *sub = NULL;
      break;
    }
    default: memset(p, 0, scalar_size(f->type)); break;
  }
}

/* Clear whichever member of f's oneof is selected. */
static void release_oneof(lmsg *u, const ProtobufCFieldDescriptor *f) {
  const ProtobufCMessageDescriptor *d = u->msg->descriptor;
  uint32_t sel = MEMBER(u->msg, f->quantifier_offset, uint32_t);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *g = &d->fields[i];
    if (g->quantifier_offset == f->quantifier_offset && is_oneof(g) && g->id == sel)
      release_slot(u, g, (char *)u->msg + g->offset);
  }
  MEMBER(u->msg, f->quantifier_offset, uint32_t) = 0;
}

static void put_default_string(const ProtobufCFieldDescriptor *f, void *p) {
  *(const char **)p = f->default_value ? (const char *)f->default_value : NULL;
}

/* Convert the Lua value at idx and store it into slot p (already released). */
static void store_value(lua_State *L, lmsg *u, const ProtobufCFieldDescriptor *f, void *p, int idx) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
      *(int32_t *)p = (int32_t)luaL_checkinteger(L, idx); break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: *(uint32_t *)p = (uint32_t)luaL_checkinteger(L, idx); break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
      *(int64_t *)p = (int64_t)luaL_checkinteger(L, idx); break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: *(uint64_t *)p = (uint64_t)luaL_checkinteger(L, idx); break;
    case PROTOBUF_C_TYPE_FLOAT: *(float *)p = (float)luaL_checknumber(L, idx); break;
    case PROTOBUF_C_TYPE_DOUBLE: *(double *)p = luaL_checknumber(L, idx); break;
    case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *)p = lua_toboolean(L, idx); break;
    case PROTOBUF_C_TYPE_ENUM: {
      const ProtobufCEnumDescriptor *ed = f->descriptor;
      if (lua_type(L, idx) == LUA_TSTRING) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, lua_tostring(L, idx));
        if (!ev) luaL_error(L, "'%s' is not a value of enum %s", lua_tostring(L, idx), ed->name);
        *(int *)p = ev->value;
      } else {
        *(int *)p = (int)luaL_checkinteger(L, idx);
      }
      break;
    }
    case PROTOBUF_C_TYPE_STRING: {
      size_t len;
      const char *s = luaL_checklstring(L, idx, &len);
      char *c = malloc(len + 1);
      if (!c) luaL_error(L, "out of memory");
      memcpy(c, s, len + 1);
      *(char **)p = c;
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      size_t len;
      const char *s = luaL_checklstring(L, idx, &len);
      ProtobufCBinaryData *b = p;
      b->data = malloc(len ? len : 1);
      if (!b->data) luaL_error(L, "out of memory");
      memcpy(b->data, s, len);
      b->len = len;
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      ProtobufCMessage *src = mlsh_proto_check(L, idx, f->descriptor);
      *(ProtobufCMessage **)p = copy_message(L, src);
      break;
    }
  }
  (void)u;
}

static void set_presence(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  if (is_oneof(f)) MEMBER(m, f->quantifier_offset, uint32_t) = f->id;
  else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_MESSAGE &&
           f->type != PROTOBUF_C_TYPE_STRING)
    MEMBER(m, f->quantifier_offset, protobuf_c_boolean) = 1;
}

static void clear_repeated(lmsg *u, const ProtobufCFieldDescriptor *f) {
  size_t *n = &MEMBER(u->msg, f->quantifier_offset, size_t), sz = scalar_size(f->type);
  char **arr = (char **)((char *)u->msg + f->offset);
  for (size_t i = 0; i < *n; i++)
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES || f->type == PROTOBUF_C_TYPE_MESSAGE)
      release_slot(u, f, *arr + i * sz);
  free(*arr);
  *arr = NULL;
  *n = 0;
}

/* Append one zeroed slot to a repeated field; returns it. The array is kept at a power-of-two
 * allocation so appends are amortised O(1); realloc to an unchanged size is cheap. */
static void *append_slot(lua_State *L, lmsg *u, const ProtobufCFieldDescriptor *f) {
  size_t *n = &MEMBER(u->msg, f->quantifier_offset, size_t), sz = scalar_size(f->type);
  char **arr = (char **)((char *)u->msg + f->offset);
  size_t cap = 1;
  while (cap < *n + 1) {
    if (cap > SIZE_MAX / 2 / sz) luaL_error(L, "repeated field too long");
    cap <<= 1;
  }
  char *p = realloc(*arr, cap * sz);
  if (!p) luaL_error(L, "out of memory");
  *arr = p;
  void *slot = p + (*n) * sz;
  memset(slot, 0, sz);
  (*n)++;
  return slot;
}

static void set_field(lua_State *L, lmsg *u, const ProtobufCFieldDescriptor *f, int idx) {
  void *p = (char *)u->msg + f->offset;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    if (!lua_isnil(L, idx)) luaL_checktype(L, idx, LUA_TTABLE);
    clear_repeated(u, f);
    if (lua_isnil(L, idx)) return;
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, idx, i);
      void *slot = append_slot(L, u, f);
      store_value(L, u, f, slot, lua_gettop(L));
      lua_pop(L, 1);
    }
    return;
  }
  if (is_oneof(f)) release_oneof(u, f);
  else release_slot(u, f, p);
  if (lua_isnil(L, idx)) {
    if (f->type == PROTOBUF_C_TYPE_STRING) put_default_string(f, p);
    if (!is_oneof(f) && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING)
      MEMBER(u->msg, f->quantifier_offset, protobuf_c_boolean) = 0;
    return;
  }
  if (f->type == PROTOBUF_C_TYPE_STRING) put_default_string(f, p); /* valid even if conversion raises */
  store_value(L, u, f, p, idx);
  set_presence(u->msg, f);
}

static int l_newindex(lua_State *L) {
  lmsg *u = check(L, 1);
  if (!u->msg) return luaL_error(L, "message has been freed");
  set_field(L, u, field_of(L, u->msg, 2), 3);
  return 0;
}

/* ---- methods --------------------------------------------------------------------------------- */
static int m_has(lua_State *L) {
  lmsg *u = check(L, 1);
  lua_pushboolean(L, has_field(u->msg, field_of(L, u->msg, 2)));
  return 1;
}

static int m_which(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCFieldDescriptor *f = field_of(L, u->msg, 2);
  if (!is_oneof(f)) return luaL_error(L, "field '%s' is not in a oneof", f->name);
  uint32_t sel = MEMBER(u->msg, f->quantifier_offset, uint32_t);
  const ProtobufCMessageDescriptor *d = u->msg->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].quantifier_offset == f->quantifier_offset && is_oneof(&d->fields[i]) && d->fields[i].id == sel) {
      lua_pushstring(L, d->fields[i].name);
      return 1;
    }
  lua_pushnil(L);
  return 1;
}

static int m_present(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCMessageDescriptor *d = u->msg->descriptor;
  lua_newtable(L);
  int k = 0;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (has_field(u->msg, f)) {
      lua_pushstring(L, f->name);
      lua_rawseti(L, -2, ++k);
    }
  }
  return 1;
}

static int m_fields(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCMessageDescriptor *d = u->msg->descriptor;
  lua_createtable(L, (int)d->n_fields, 0);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    lua_createtable(L, 0, 4);
    lua_pushstring(L, f->name); lua_setfield(L, -2, "name");
    lua_pushinteger(L, f->id); lua_setfield(L, -2, "number");
    lua_pushboolean(L, f->label == PROTOBUF_C_LABEL_REPEATED); lua_setfield(L, -2, "repeated");
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      lua_pushstring(L, ((const ProtobufCMessageDescriptor *)f->descriptor)->name);
      lua_setfield(L, -2, "message");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int m_count(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCFieldDescriptor *f = field_of(L, u->msg, 2);
  if (f->label != PROTOBUF_C_LABEL_REPEATED) return luaL_error(L, "field '%s' is not repeated", f->name);
  lua_pushinteger(L, (lua_Integer)MEMBER(u->msg, f->quantifier_offset, size_t));
  return 1;
}

static int m_array(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCFieldDescriptor *f = field_of(L, u->msg, 2);
  if (f->label != PROTOBUF_C_LABEL_REPEATED) return luaL_error(L, "field '%s' is not repeated", f->name);
  size_t n = MEMBER(u->msg, f->quantifier_offset, size_t);
  const char *arr = *(char *const *)((char *)u->msg + f->offset);
  mlsh_array *a = mlsh_array_push(L, n);
  for (size_t i = 0; i < n; i++) {
    switch (f->type) {
      case PROTOBUF_C_TYPE_FLOAT: a->data[i] = ((const float *)arr)[i]; break;
      case PROTOBUF_C_TYPE_DOUBLE: a->data[i] = (float)((const double *)arr)[i]; break;
      case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_ENUM:
        a->data[i] = (float)((const int32_t *)arr)[i]; break;
      case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: a->data[i] = (float)((const uint32_t *)arr)[i]; break;
      case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        a->data[i] = (float)((const int64_t *)arr)[i]; break;
      case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: a->data[i] = (float)((const uint64_t *)arr)[i]; break;
      case PROTOBUF_C_TYPE_BOOL: a->data[i] = (float)((const protobuf_c_boolean *)arr)[i]; break;
      default: return luaL_error(L, "field '%s' is not numeric", f->name);
    }
  }
  return 1;
}

static int m_bytes(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCFieldDescriptor *f = field_of(L, u->msg, 2);
  if (f->type != PROTOBUF_C_TYPE_BYTES || f->label == PROTOBUF_C_LABEL_REPEATED)
    return luaL_error(L, "field '%s' is not a bytes field", f->name);
  if (is_oneof(f) && !oneof_selected(u->msg, f)) lua_pushliteral(L, "");
  else push_value(L, 1, f, (char *)u->msg + f->offset);
  return 1;
}

static int m_add(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCFieldDescriptor *f = field_of(L, u->msg, 2);
  if (f->label != PROTOBUF_C_LABEL_REPEATED) return luaL_error(L, "field '%s' is not repeated", f->name);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE && lua_isnoneornil(L, 3)) {
    ProtobufCMessage *sub = new_message(f->descriptor);
    if (!sub) return luaL_error(L, "out of memory");
    ProtobufCMessage **slot = append_slot(L, u, f); /* on error here sub leaks; only on OOM */
    *slot = sub;
    push_child(L, 1, sub);
    return 1;
  }
  void *slot = append_slot(L, u, f);
  if (f->type == PROTOBUF_C_TYPE_STRING) put_default_string(f, slot);
  store_value(L, u, f, slot, 3);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) push_child(L, 1, *(ProtobufCMessage **)slot);
  else lua_pushvalue(L, 3);
  return 1;
}

static int m_mutable(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCFieldDescriptor *f = field_of(L, u->msg, 2);
  if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
    return luaL_error(L, "field '%s' is not a singular message field", f->name);
  ProtobufCMessage **slot = (ProtobufCMessage **)((char *)u->msg + f->offset);
  if (!*slot || (is_oneof(f) && !oneof_selected(u->msg, f))) {
    if (is_oneof(f)) release_oneof(u, f);
    ProtobufCMessage *sub = new_message(f->descriptor);
    if (!sub) return luaL_error(L, "out of memory");
    *slot = sub;
    set_presence(u->msg, f);
  }
  push_child(L, 1, *slot);
  return 1;
}

static int m_clear(lua_State *L) {
  lmsg *u = check(L, 1);
  lua_settop(L, 2);
  lua_pushnil(L);
  set_field(L, u, field_of(L, u->msg, 2), 3);
  return 0;
}

/* Map fields are repeated entry messages with key = 1 and value = 2. */
static void entry_fields(lua_State *L, const ProtobufCFieldDescriptor *f, const ProtobufCFieldDescriptor **kf,
                         const ProtobufCFieldDescriptor **vf) {
  if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE) luaL_error(L, "field '%s' is not a map", f->name);
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  *kf = protobuf_c_message_descriptor_get_field(ed, 1);
  *vf = protobuf_c_message_descriptor_get_field(ed, 2);
  if (!*kf || !*vf) luaL_error(L, "field '%s' is not a map", f->name);
}

static int m_map(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCFieldDescriptor *f = field_of(L, u->msg, 2), *kf, *vf;
  entry_fields(L, f, &kf, &vf);
  size_t n = MEMBER(u->msg, f->quantifier_offset, size_t);
  ProtobufCMessage **arr = *(ProtobufCMessage ***)((char *)u->msg + f->offset);
  lua_newtable(L);                               /* key -> value */
  lua_createtable(L, (int)(n < 65536 ? n : 65536), 0); /* keys in order */
  for (size_t i = 0; i < n; i++) {
    push_value(L, 1, kf, (char *)arr[i] + kf->offset);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, (lua_Integer)i + 1);
    push_value(L, 1, vf, (char *)arr[i] + vf->offset);
    lua_rawset(L, -4);
  }
  return 2;
}

static int m_get(lua_State *L) {
  lmsg *u = check(L, 1);
  const ProtobufCFieldDescriptor *f = field_of(L, u->msg, 2), *kf, *vf;
  entry_fields(L, f, &kf, &vf);
  size_t n = MEMBER(u->msg, f->quantifier_offset, size_t);
  ProtobufCMessage **arr = *(ProtobufCMessage ***)((char *)u->msg + f->offset);
  for (size_t i = 0; i < n; i++) {
    push_value(L, 1, kf, (char *)arr[i] + kf->offset);
    int eq = lua_compare(L, -1, 3, LUA_OPEQ);
    lua_pop(L, 1);
    if (eq) {
      push_value(L, 1, vf, (char *)arr[i] + vf->offset);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

static int m_unknown(lua_State *L) {
  lmsg *u = check(L, 1);
  lua_createtable(L, (int)u->msg->n_unknown_fields, 0);
  for (unsigned i = 0; i < u->msg->n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *uf = &u->msg->unknown_fields[i];
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, uf->tag); lua_setfield(L, -2, "number");
    lua_pushinteger(L, uf->wire_type); lua_setfield(L, -2, "wire");
    lua_pushlstring(L, (const char *)uf->data, uf->len); lua_setfield(L, -2, "bytes");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int m_encode(lua_State *L) {
  lmsg *u = check(L, 1);
  size_t n = protobuf_c_message_get_packed_size(u->msg);
  luaL_Buffer b;
  uint8_t *p = (uint8_t *)luaL_buffinitsize(L, &b, n);
  protobuf_c_message_pack(u->msg, p);
  luaL_pushresultsize(&b, n);
  return 1;
}

static int m_copy(lua_State *L) {
  lmsg *u = check(L, 1);
  ProtobufCMessage *m = copy_message(L, u->msg);
  mlsh_proto_push_root(L, m);
  return 1;
}

static int m_typename(lua_State *L) {
  lua_pushstring(L, check(L, 1)->msg->descriptor->name);
  return 1;
}

static int l_tostring(lua_State *L) {
  lmsg *u = check(L, 1);
  lua_pushfstring(L, "%s: %p", u->msg ? u->msg->descriptor->name : "freed message", (void *)u->msg);
  return 1;
}

static int l_eq(lua_State *L) {
  lmsg *a = luaL_testudata(L, 1, MSG_MT), *b = luaL_testudata(L, 2, MSG_MT);
  lua_pushboolean(L, a && b && a->msg == b->msg);
  return 1;
}

/* ---- module functions ------------------------------------------------------------------------ */
static const ProtobufCMessageDescriptor *check_type(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  const ProtobufCMessageDescriptor *d = mlsh_proto_find(name);
  if (!d) luaL_error(L, "unknown message type '%s'", name);
  return d;
}

static int f_decode(lua_State *L) {
  const ProtobufCMessageDescriptor *d = check_type(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  mlsh_err e;
  if (mlsh_pb_check_depth(d, (const uint8_t *)s, len, d->name, &e) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, e.msg);
    return 2;
  }
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, (const uint8_t *)s);
  if (!m) {
    lua_pushnil(L);
    lua_pushfstring(L, "not a valid %s message (truncated or corrupt protobuf)", d->name);
    return 2;
  }
  mlsh_proto_push_root(L, m);
  return 1;
}

static int f_new(lua_State *L) {
  const ProtobufCMessageDescriptor *d = check_type(L, 1);
  ProtobufCMessage *m = new_message(d);
  if (!m) return luaL_error(L, "out of memory");
  mlsh_proto_push_root(L, m);
  return 1;
}

static int f_types(lua_State *L) {
  lua_createtable(L, (int)mlsh_proto_registry_count, 0);
  for (size_t i = 0; i < mlsh_proto_registry_count; i++) {
    lua_pushstring(L, mlsh_proto_registry[i]->name);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static const luaL_Reg methods[] = {
  {"has", m_has}, {"which", m_which}, {"present", m_present}, {"fields", m_fields}, {"count", m_count},
  {"array", m_array}, {"bytes", m_bytes}, {"add", m_add}, {"mutable", m_mutable}, {"clear", m_clear},
  {"map", m_map}, {"get", m_get}, {"unknown", m_unknown}, {"encode", m_encode}, {"copy", m_copy},
  {"typename", m_typename}, {NULL, NULL}};
static const luaL_Reg meta[] = {
  {"__index", l_index}, {"__newindex", l_newindex}, {"__gc", l_gc}, {"__close", l_gc},
  {"__tostring", l_tostring}, {"__eq", l_eq}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"decode", f_decode}, {"new", f_new}, {"types", f_types}, {NULL, NULL}};

int luaopen_mlsh_core_proto(lua_State *L) {
  if (luaL_newmetatable(L, MSG_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__methods");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
