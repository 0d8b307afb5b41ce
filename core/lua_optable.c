/* lua_optable.c — binding for optable.h as require("mlsh.core").optable. Raw C table access;
 * lua/mlsh/optable.lua is the documented API (opset filtering, overrides). Each call builds fresh
 * tables, so callers may modify what they get.
 *   get(name) -> {name, kind = "mil", introduced = "iOS15", introduced_spec = 6, revisions = {"iOS17"},
 *                 revision_specs = {8}, revision_notes = {iOS17 = "..."}, versions = {"iOS15", "iOS17"},
 *                 version_specs = {6, 8}, category, note?, eligibility = {ANE = {status, conditions}, GPU, CPU},
 *                 facts = {{text, source, ref}}}          | nil, message
 *   names() -> sorted list of MIL op names
 *   layer(name | field) -> {name, kind = "nn", category, eligibility, facts} | nil, message
 *   conditions() -> list of {id, text, value?, values?, source, ref} (the vocabulary)
 *   general_facts() -> list of {text, source, ref}
 *   statuses(), sources(), units() -> the string vocabularies
 *   get(name).chips = {A13 = "native"|"emulated"|"walled"|"unknown", A14, A15, A16, note?, source, ref?,
 *                      conditions = {{id, text, values = {A13 = n, ...}, source, ref}}}
 *   chips() -> {"A13", "A14", "A15", "A16"};  chip_statuses() -> the per-chip status vocabulary
 *   chip_conditions() -> chip conditions that hold for every op (same shape as chips.conditions) */
#include "optable.h"
#include "spec.h"
#include "lua_fields.h"
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

static const char *opset_name(int spec, char *buf, size_t len) {
  return mlsh_spec_target_name(spec, MLSH_PLATFORM_IOS, buf, len, NULL, 0);
}

static void push_condition(lua_State *L, const mlsh_condition *c) {
  lua_createtable(L, 0, 6);
  mlsh_setstr(L, "id", c->id);
  mlsh_setstr(L, "text", c->text);
  if (c->has_value) mlsh_setint(L, "value", c->value);
  if (c->values) {
    mlsh_push_csv(L, c->values);
    lua_setfield(L, -2, "values");
  }
  mlsh_setstr(L, "source", mlsh_source_name(c->source));
  mlsh_setstr(L, "ref", c->ref);
}

static void push_fact(lua_State *L, const mlsh_fact *f) {
  lua_createtable(L, 0, 3);
  mlsh_setstr(L, "text", f->text);
  mlsh_setstr(L, "source", mlsh_source_name(f->source));
  mlsh_setstr(L, "ref", f->ref);
}

/* Sets eligibility, facts and category on the table at the top of the stack. */
static void set_elig(lua_State *L, const mlsh_elig_profile *p) {
  mlsh_setstr(L, "category", p->category);
  lua_createtable(L, 0, MLSH_UNIT_COUNT);
  for (int u = 0; u < MLSH_UNIT_COUNT; u++) {
    lua_createtable(L, 0, 2);
    mlsh_setstr(L, "status", mlsh_elig_status_name(p->unit[u].status));
    lua_newtable(L);
    for (int i = 0; i < MLSH_ELIG_MAX_CONDS && p->unit[u].conds[i]; i++) {
      push_condition(L, p->unit[u].conds[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "conditions");
    lua_setfield(L, -2, mlsh_unit_name((mlsh_unit)u));
  }
  lua_setfield(L, -2, "eligibility");
  lua_newtable(L);
  for (int i = 0; i < MLSH_ELIG_MAX_FACTS && p->facts[i]; i++) {
    push_fact(L, p->facts[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "facts");
}

static void push_chip_condition(lua_State *L, const mlsh_chip_condition *c) {
  lua_createtable(L, 0, 5);
  mlsh_setstr(L, "id", c->id);
  mlsh_setstr(L, "text", c->text);
  lua_createtable(L, 0, MLSH_CHIP_COUNT);
  for (int k = 0; k < MLSH_CHIP_COUNT; k++) mlsh_setint(L, mlsh_chip_name((mlsh_chip)k), c->value[k]);
  lua_setfield(L, -2, "values");
  mlsh_setstr(L, "source", mlsh_source_name(c->source));
  mlsh_setstr(L, "ref", c->ref);
}

/* Sets `chips` (the per-chip column) on the table at the top of the stack. */
static void set_chips(lua_State *L, const mlsh_chip_column *col) {
  lua_createtable(L, 0, MLSH_CHIP_COUNT + 4);
  for (int k = 0; k < MLSH_CHIP_COUNT; k++)
    mlsh_setstr(L, mlsh_chip_name((mlsh_chip)k), mlsh_chip_status_name(col->status[k]));
  mlsh_setstr(L, "note", col->note);
  mlsh_setstr(L, "source", mlsh_source_name(col->source));
  mlsh_setstr(L, "ref", col->ref);
  lua_newtable(L);
  for (int i = 0; i < MLSH_CHIP_MAX_CONDS && col->conds[i]; i++) {
    push_chip_condition(L, col->conds[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "conditions");
  lua_setfield(L, -2, "chips");
}

static void push_op(lua_State *L, const mlsh_op *op) {
  char buf[32];
  lua_createtable(L, 0, 14);
  mlsh_setstr(L, "name", op->name);
  mlsh_setstr(L, "kind", "mil");
  mlsh_setstr(L, "introduced", opset_name(op->introduced, buf, sizeof buf));
  mlsh_setint(L, "introduced_spec", op->introduced);
  mlsh_setstr(L, "note", op->note);
  lua_newtable(L); /* revisions */
  lua_newtable(L); /* revision_specs */
  lua_newtable(L); /* revision_notes */
  lua_newtable(L); /* versions */
  lua_newtable(L); /* version_specs */
  lua_pushstring(L, opset_name(op->introduced, buf, sizeof buf));
  lua_rawseti(L, -3, 1);
  lua_pushinteger(L, op->introduced);
  lua_rawseti(L, -2, 1);
  lua_Integer nrev = 0;
  for (int s = op->introduced + 1; s <= MLSH_SPEC_MAX; s++) {
    if (!(op->revised & (1u << s))) continue;
    const char *name = opset_name(s, buf, sizeof buf);
    nrev++;
    lua_pushstring(L, name);
    lua_rawseti(L, -6, nrev);
    lua_pushinteger(L, s);
    lua_rawseti(L, -5, nrev);
    const char *note = mlsh_op_revision_note(op, s);
    if (note) {
      lua_pushstring(L, note);
      lua_setfield(L, -4, name);
    }
    lua_pushstring(L, name);
    lua_rawseti(L, -3, nrev + 1);
    lua_pushinteger(L, s);
    lua_rawseti(L, -2, nrev + 1);
  }
  lua_setfield(L, -6, "version_specs");
  lua_setfield(L, -5, "versions");
  lua_setfield(L, -4, "revision_notes");
  lua_setfield(L, -3, "revision_specs");
  lua_setfield(L, -2, "revisions");
  set_elig(L, op->elig);
  set_chips(L, mlsh_op_chips(op));
}

static int l_get(lua_State *L) {
  luaL_checktype(L, 1, LUA_TSTRING);
  const char *name = lua_tostring(L, 1);
  const mlsh_op *op = mlsh_op_find(name);
  if (!op) return mlsh_nil_msg(L, lua_pushfstring(L, "unknown MIL op '%s'", name));
  push_op(L, op);
  return 1;
}

static int l_names(lua_State *L) {
  size_t n = mlsh_op_count();
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, mlsh_op_at(i)->name);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_layer(lua_State *L) {
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
  lua_createtable(L, 0, 5);
  mlsh_setstr(L, "name", l->name);
  mlsh_setstr(L, "kind", "nn");
  set_elig(L, mlsh_layer_elig(l->name));
  return 1;
}

static int l_conditions(lua_State *L) {
  size_t n = mlsh_condition_count();
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    push_condition(L, mlsh_condition_at(i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_general_facts(lua_State *L) {
  size_t n = mlsh_general_fact_count();
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    push_fact(L, mlsh_general_fact_at(i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int push_names(lua_State *L, int count, const char *(*fn)(int)) {
  lua_createtable(L, count, 0);
  for (int i = 0; i < count; i++) {
    lua_pushstring(L, fn(i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}
static const char *status_at(int i) { return mlsh_elig_status_name((mlsh_elig_status)i); }
static const char *source_at(int i) { return mlsh_source_name((mlsh_source)i); }
static const char *unit_at(int i) { return mlsh_unit_name((mlsh_unit)i); }
static int l_statuses(lua_State *L) { return push_names(L, MLSH_ELIG_COUNT, status_at); }
static int l_sources(lua_State *L) { return push_names(L, MLSH_SRC_COUNT, source_at); }
static int l_units(lua_State *L) { return push_names(L, MLSH_UNIT_COUNT, unit_at); }

static const char *chip_at(int i) { return mlsh_chip_name((mlsh_chip)i); }
static const char *chip_status_at(int i) { return mlsh_chip_status_name((mlsh_chip_status)i); }
static int l_chips(lua_State *L) { return push_names(L, MLSH_CHIP_COUNT, chip_at); }
static int l_chip_statuses(lua_State *L) { return push_names(L, MLSH_CHIP_STATUS_COUNT, chip_status_at); }
static int l_chip_conditions(lua_State *L) {
  size_t n = mlsh_chip_general_condition_count();
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    push_chip_condition(L, mlsh_chip_general_condition_at(i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static const luaL_Reg funcs[] = {
  {"get", l_get}, {"names", l_names}, {"layer", l_layer}, {"conditions", l_conditions},
  {"general_facts", l_general_facts}, {"statuses", l_statuses}, {"sources", l_sources}, {"units", l_units},
  {"chips", l_chips}, {"chip_statuses", l_chip_statuses}, {"chip_conditions", l_chip_conditions},
  {NULL, NULL},
};

int luaopen_mlsh_core_optable(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
