/* lua_spec.c — binding for spec.h as require("mlsh.core").spec. Raw lookups; lua/mlsh/spec.lua is
 * the documented API. Failures that depend on the value (unknown target, spec out of range) return
 * nil plus a message; wrong argument types raise.
 *   info(n) -> {spec, ios, macos, tvos, watchos, visionos, os_note, coreml, opset, mil_tag,
 *               mil_tag_verified, ct_target, mlprogram, target, features = {...}}
 *   from_target(s) / from_opset(s) / from_mil_tag(s) / from_coreml(s) / resolve(s) -> n
 *   target_name(n [, platform]) -> "iOS16"
 *   nn_layer(name | field) -> {name, field, min_spec, bumps = {{id, text, value?, values?, min_spec, ref?}}}
 *   nn_layers() -> {names in proto order}
 *   features() -> {{id, min_spec, text, ref}} ; feature(id) -> {...}
 *   array_dtype(name | value) / colorspace(name | value) / model_type(name | field) -> {name, value, min_spec, note?}
 *   enums(kind) -> list of those, kind = "array_dtype" | "colorspace" | "model_type"
 *   MIN, MAX, MIN_NEURALNETWORK, MIN_MLPROGRAM */
#include "spec.h"
#include "lua_fields.h"
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

static const char *check_str(lua_State *L, int idx) {
  luaL_checktype(L, idx, LUA_TSTRING);
  return lua_tostring(L, idx);
}

/* A Lua number with an integer value (strings are not converted). */
static lua_Integer check_int(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TNUMBER) luaL_typeerror(L, idx, "integer");
  return luaL_checkinteger(L, idx);
}

static int l_info(lua_State *L) {
  lua_Integer n = check_int(L, 1);
  const mlsh_spec_row *r = mlsh_spec_row_get(n < 0 || n > 1000 ? 0 : (int)n);
  if (!r) return mlsh_nil_msg(L, lua_pushfstring(L, "spec version %d is outside %d..%d", (int)n, MLSH_SPEC_MIN, MLSH_SPEC_MAX));
  static const char *const keys[MLSH_PLATFORM_COUNT] = {"ios", "macos", "tvos", "watchos", "visionos"};
  lua_createtable(L, 0, 16);
  mlsh_setint(L, "spec", r->spec);
  for (int p = 0; p < MLSH_PLATFORM_COUNT; p++) mlsh_setstr(L, keys[p], r->os[p]);
  mlsh_setstr(L, "os_note", r->os_note);
  mlsh_setstr(L, "coreml", r->coreml);
  mlsh_setstr(L, "opset", r->opset);
  mlsh_setstr(L, "mil_tag", r->mil_tag);
  if (r->mil_tag) mlsh_setbool(L, "mil_tag_verified", r->mil_tag_verified);
  mlsh_setbool(L, "ct_target", r->ct_target);
  mlsh_setbool(L, "mlprogram", r->spec >= MLSH_SPEC_MIN_MLPROGRAM);
  char buf[64];
  mlsh_setstr(L, "target", mlsh_spec_target_name(r->spec, MLSH_PLATFORM_IOS, buf, sizeof buf, NULL, 0));
  lua_newtable(L);
  for (int i = 0; i < MLSH_SPEC_MAX_FEATURES && r->features[i]; i++) {
    lua_pushstring(L, r->features[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "features");
  return 1;
}

typedef int (*lookup_fn)(const char *, char *, size_t);

static int do_lookup(lua_State *L, lookup_fn fn) {
  const char *s = check_str(L, 1);
  char err[256];
  int spec = fn(s, err, sizeof err);
  if (!spec) return mlsh_nil_msg(L, err);
  lua_pushinteger(L, spec);
  return 1;
}

static int l_from_target(lua_State *L) { return do_lookup(L, mlsh_spec_from_target); }
static int l_from_opset(lua_State *L) { return do_lookup(L, mlsh_spec_from_opset); }
static int l_from_mil_tag(lua_State *L) { return do_lookup(L, mlsh_spec_from_mil_tag); }
static int l_from_coreml(lua_State *L) { return do_lookup(L, mlsh_spec_from_coreml); }
static int l_resolve(lua_State *L) { return do_lookup(L, mlsh_spec_resolve); }

static int l_target_name(lua_State *L) {
  lua_Integer n = check_int(L, 1);
  int p = MLSH_PLATFORM_IOS;
  if (!lua_isnoneornil(L, 2)) {
    const char *pname = check_str(L, 2);
    p = mlsh_platform_from_name(pname);
    if (p < 0)
      return mlsh_nil_msg(L, lua_pushfstring(L, "unknown platform '%s' (expected iOS, macOS, tvOS, watchOS, visionOS)", pname));
  }
  char buf[64], err[256];
  const char *name = mlsh_spec_target_name(n < 0 || n > 1000 ? 0 : (int)n, (mlsh_platform)p, buf, sizeof buf, err, sizeof err);
  if (!name) return mlsh_nil_msg(L, err);
  lua_pushstring(L, name);
  return 1;
}

static void push_layer(lua_State *L, const mlsh_nn_layer *l) {
  lua_createtable(L, 0, 4);
  mlsh_setstr(L, "name", l->name);
  mlsh_setint(L, "field", l->field);
  mlsh_setint(L, "min_spec", l->min_spec);
  lua_newtable(L);
  for (int i = 0; i < MLSH_LAYER_MAX_BUMPS && l->bumps[i]; i++) {
    const mlsh_layer_bump *b = l->bumps[i];
    lua_createtable(L, 0, 6);
    mlsh_setstr(L, "id", b->id);
    mlsh_setstr(L, "text", b->text);
    if (b->has_value) mlsh_setint(L, "value", b->value);
    if (b->values) {
      mlsh_push_csv(L, b->values);
      lua_setfield(L, -2, "values");
    }
    mlsh_setint(L, "min_spec", b->min_spec);
    mlsh_setstr(L, "ref", b->ref);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "bumps");
}

static int l_nn_layer(lua_State *L) {
  const mlsh_nn_layer *l;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_Integer f = luaL_checkinteger(L, 1);
    l = mlsh_nn_layer_by_field(f < 0 || f > 1000000 ? -1 : (int)f);
    if (!l) return mlsh_nil_msg(L, lua_pushfstring(L, "no NeuralNetwork layer has field number %d", (int)f));
  } else {
    if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string or integer");
    const char *name = lua_tostring(L, 1);
    l = mlsh_nn_layer_find(name);
    if (!l) return mlsh_nil_msg(L, lua_pushfstring(L, "unknown NeuralNetwork layer type '%s'", name));
  }
  push_layer(L, l);
  return 1;
}

static int l_nn_layers(lua_State *L) {
  size_t n = mlsh_nn_layer_count();
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, mlsh_nn_layer_at(i)->name);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static void push_feature(lua_State *L, const mlsh_spec_feature *f) {
  lua_createtable(L, 0, 4);
  mlsh_setstr(L, "id", f->id);
  mlsh_setint(L, "min_spec", f->min_spec);
  mlsh_setstr(L, "text", f->text);
  mlsh_setstr(L, "ref", f->ref);
}

static int l_features(lua_State *L) {
  size_t n = mlsh_spec_feature_count();
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    push_feature(L, mlsh_spec_feature_at(i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_feature(lua_State *L) {
  const char *id = check_str(L, 1);
  const mlsh_spec_feature *f = mlsh_spec_feature_find(id);
  if (!f) return mlsh_nil_msg(L, lua_pushfstring(L, "unknown feature '%s'", id));
  push_feature(L, f);
  return 1;
}

static void push_enum(lua_State *L, const mlsh_spec_enum *e) {
  lua_createtable(L, 0, 4);
  mlsh_setstr(L, "name", e->name);
  mlsh_setint(L, "value", e->value);
  mlsh_setint(L, "min_spec", e->min_spec);
  mlsh_setstr(L, "note", e->note);
}

static const char *const enum_kinds[] = {"array_dtype", "colorspace", "model_type", NULL};

static int enum_lookup(lua_State *L, mlsh_spec_enum_kind kind) {
  const mlsh_spec_enum *e;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_Integer v = luaL_checkinteger(L, 1);
    e = mlsh_spec_enum_find(kind, NULL, v < -1000000000 || v > 1000000000 ? -1 : (int)v);
    if (!e) return mlsh_nil_msg(L, lua_pushfstring(L, "unknown %s value %d", enum_kinds[kind], (int)v));
  } else {
    if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string or integer");
    const char *name = lua_tostring(L, 1);
    e = mlsh_spec_enum_find(kind, name, 0);
    if (!e) return mlsh_nil_msg(L, lua_pushfstring(L, "unknown %s '%s'", enum_kinds[kind], name));
  }
  push_enum(L, e);
  return 1;
}

static int l_array_dtype(lua_State *L) { return enum_lookup(L, MLSH_SPEC_ENUM_ARRAY_DTYPE); }
static int l_colorspace(lua_State *L) { return enum_lookup(L, MLSH_SPEC_ENUM_COLORSPACE); }
static int l_model_type(lua_State *L) { return enum_lookup(L, MLSH_SPEC_ENUM_MODEL_TYPE); }

static int l_enums(lua_State *L) {
  mlsh_spec_enum_kind kind = (mlsh_spec_enum_kind)luaL_checkoption(L, 1, NULL, enum_kinds);
  size_t n = mlsh_spec_enum_count(kind);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    push_enum(L, mlsh_spec_enum_at(kind, i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static const luaL_Reg funcs[] = {
  {"info", l_info}, {"from_target", l_from_target}, {"from_opset", l_from_opset}, {"from_mil_tag", l_from_mil_tag},
  {"from_coreml", l_from_coreml}, {"resolve", l_resolve}, {"target_name", l_target_name}, {"nn_layer", l_nn_layer},
  {"nn_layers", l_nn_layers}, {"features", l_features}, {"feature", l_feature}, {"array_dtype", l_array_dtype},
  {"colorspace", l_colorspace}, {"model_type", l_model_type}, {"enums", l_enums}, {NULL, NULL},
};

int luaopen_mlsh_core_spec(lua_State *L) {
  luaL_newlib(L, funcs);
  mlsh_setint(L, "MIN", MLSH_SPEC_MIN);
  mlsh_setint(L, "MAX", MLSH_SPEC_MAX);
  mlsh_setint(L, "MIN_NEURALNETWORK", MLSH_SPEC_MIN_NEURALNETWORK);
  mlsh_setint(L, "MIN_MLPROGRAM", MLSH_SPEC_MIN_MLPROGRAM);
  return 1;
}
