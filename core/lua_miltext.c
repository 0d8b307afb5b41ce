/* lua_miltext.c — binding for the MIL text reader (core/mil_text.h).
 * Lua: local mt = require("mlsh.core").miltext
 *   mt.parse(text)   -> serialized CoreML.Specification.MILSpec.Program bytes | nil, "line L, column C: ..."
 *   mt.summary(text) -> { version = n, build_info = {k = v} | nil,
 *                         functions = { { name, opset, op_count, op_count_all, ops = {type, ...},
 *                                         inputs = { {name, kind, dtype, shape = {n | "?", ...}}, ... },
 *                                         outputs = {name, ...} }, ... } }  | nil, err
 *                       (ops / op_count are the function body's top-level operations in order;
 *                        op_count_all also counts operations inside nested blocks)
 *   mt.check(text)   -> true | nil, err : parse, pack, unpack, pack again and compare the bytes. */
#include "mil_text.h"
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

typedef CoreML__Specification__MILSpec__Program Program;
typedef CoreML__Specification__MILSpec__Block Block;
typedef CoreML__Specification__MILSpec__ValueType ValueType;

#define BOX_MT "mlsh.miltext.program"

/* The parsed Program lives in a userdata box so a Lua error (e.g. out of memory) cannot leak it. */
static int box_gc(lua_State *L) {
  Program **b = luaL_checkudata(L, 1, BOX_MT);
  if (*b) protobuf_c_message_free_unpacked((ProtobufCMessage *)*b, NULL);
  *b = NULL;
  return 0;
}

static Program **box_new(lua_State *L) {
  Program **b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = NULL;
  if (luaL_newmetatable(L, BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

static void box_free(Program **b) {
  if (*b) protobuf_c_message_free_unpacked((ProtobufCMessage *)*b, NULL);
  *b = NULL;
}

/* Parse argument 1 into a box left on the stack; on failure push nil, err and return 0. */
static Program **parse_arg(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  Program **b = box_new(L);
  char err[256];
  if (mlsh_mil_text_parse(s, len, b, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return NULL;
  }
  return b;
}

static int l_parse(lua_State *L) {
  Program **b = parse_arg(L);
  if (!b) return 2;
  size_t n = protobuf_c_message_get_packed_size((const ProtobufCMessage *)*b);
  luaL_Buffer B;
  char *dst = luaL_buffinitsize(L, &B, n);
  protobuf_c_message_pack((const ProtobufCMessage *)*b, (uint8_t *)dst);
  luaL_pushresultsize(&B, n);
  box_free(b);
  return 1;
}

static void push_type(lua_State *L, const ValueType *vt) {
  const char *kind = "unknown";
  const ValueType *t = vt;
  if (vt && vt->type_case == CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_STATE_TYPE && vt->statetype) {
    kind = "state";
    t = vt->statetype->wrappedtype;
  }
  if (!t) return;
  switch (t->type_case) {
  case CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_TENSOR_TYPE: {
    if (vt == t) kind = "tensor";
    const CoreML__Specification__MILSpec__TensorType *tt = t->tensortype;
    const char *dn = mlsh_mil_text_dtype_name(tt->datatype);
    if (dn) {
      lua_pushstring(L, dn);
      lua_setfield(L, -2, "dtype");
    }
    lua_pushinteger(L, (lua_Integer)tt->rank);
    lua_setfield(L, -2, "rank");
    lua_createtable(L, (int)tt->n_dimensions, 0);
    for (size_t i = 0; i < tt->n_dimensions; i++) {
      const CoreML__Specification__MILSpec__Dimension *d = tt->dimensions[i];
      if (d->dimension_case == CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_CONSTANT && d->constant)
        lua_pushinteger(L, (lua_Integer)d->constant->size);
      else
        lua_pushstring(L, "?");
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "shape");
    break;
  }
  case CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_LIST_TYPE: kind = "list"; break;
  case CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_TUPLE_TYPE: kind = "tuple"; break;
  case CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_DICTIONARY_TYPE: kind = "dict"; break;
  default: break;
  }
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
}

static lua_Integer count_ops(const Block *b, int depth) {
  lua_Integer n = 0;
  if (!b || depth > MLSH_MIL_TEXT_MAX_DEPTH + 1) return 0;
  for (size_t i = 0; i < b->n_operations; i++) {
    n++;
    for (size_t j = 0; j < b->operations[i]->n_blocks; j++) n += count_ops(b->operations[i]->blocks[j], depth + 1);
  }
  return n;
}

/* A string scalar Value's text, or NULL. */
static const char *value_string(const CoreML__Specification__MILSpec__Value *v) {
  if (!v || v->value_case != CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE) return NULL;
  const CoreML__Specification__MILSpec__Value__ImmediateValue *iv = v->immediatevalue;
  if (!iv || iv->value_case != CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_TENSOR) return NULL;
  const CoreML__Specification__MILSpec__TensorValue *tv = iv->tensor;
  if (!tv || tv->value_case != CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_STRINGS || !tv->strings ||
      tv->strings->n_values != 1)
    return NULL;
  return tv->strings->values[0];
}

static int l_summary(lua_State *L) {
  Program **b = parse_arg(L);
  if (!b) return 2;
  const Program *prog = *b;
  lua_newtable(L);
  lua_pushinteger(L, (lua_Integer)prog->version);
  lua_setfield(L, -2, "version");
  for (size_t i = 0; i < prog->n_attributes; i++) {
    const CoreML__Specification__MILSpec__Value *v = prog->attributes[i]->value;
    if (strcmp(prog->attributes[i]->key, "buildInfo") != 0 || !v ||
        v->value_case != CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE || !v->immediatevalue ||
        v->immediatevalue->value_case != CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_DICTIONARY)
      continue;
    const CoreML__Specification__MILSpec__DictionaryValue *dv = v->immediatevalue->dictionary;
    lua_newtable(L);
    for (size_t k = 0; k < dv->n_values; k++) {
      const char *key = value_string(dv->values[k]->key), *val = value_string(dv->values[k]->value);
      if (!key || !val) continue;
      lua_pushstring(L, val);
      lua_setfield(L, -2, key);
    }
    lua_setfield(L, -2, "build_info");
  }
  lua_createtable(L, (int)prog->n_functions, 0);
  for (size_t i = 0; i < prog->n_functions; i++) {
    const CoreML__Specification__MILSpec__Function *f = prog->functions[i]->value;
    lua_newtable(L);
    lua_pushstring(L, prog->functions[i]->key);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, f->opset);
    lua_setfield(L, -2, "opset");
    lua_createtable(L, (int)f->n_inputs, 0);
    for (size_t k = 0; k < f->n_inputs; k++) {
      lua_newtable(L);
      lua_pushstring(L, f->inputs[k]->name);
      lua_setfield(L, -2, "name");
      push_type(L, f->inputs[k]->type);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "inputs");
    const Block *blk = NULL;
    for (size_t k = 0; k < f->n_block_specializations; k++)
      if (strcmp(f->block_specializations[k]->key, f->opset) == 0) blk = f->block_specializations[k]->value;
    lua_createtable(L, blk ? (int)blk->n_operations : 0, 0);
    for (size_t k = 0; blk && k < blk->n_operations; k++) {
      lua_pushstring(L, blk->operations[k]->type);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "ops");
    lua_pushinteger(L, blk ? (lua_Integer)blk->n_operations : 0);
    lua_setfield(L, -2, "op_count");
    lua_pushinteger(L, count_ops(blk, 0));
    lua_setfield(L, -2, "op_count_all");
    lua_createtable(L, blk ? (int)blk->n_outputs : 0, 0);
    for (size_t k = 0; blk && k < blk->n_outputs; k++) {
      lua_pushstring(L, blk->outputs[k]);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "outputs");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "functions");
  box_free(b);
  return 1;
}

static int l_check(lua_State *L) {
  Program **b = parse_arg(L);
  if (!b) return 2;
  const ProtobufCMessage *m = (const ProtobufCMessage *)*b;
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *a = malloc(n ? n : 1), *c = NULL;
  const char *why = NULL;
  Program *back = NULL;
  if (!a) {
    why = "out of memory";
  } else if (protobuf_c_message_pack(m, a) != n) {
    why = "packed size differs from the computed size";
  } else if (!(back = core_ml__specification__milspec__program__unpack(NULL, n, a))) {
    why = "protobuf-c could not unpack the packed program";
  } else {
    size_t n2 = protobuf_c_message_get_packed_size((const ProtobufCMessage *)back);
    if (n2 != n) {
      why = "the unpacked program packs to a different size";
    } else if (!(c = malloc(n ? n : 1))) {
      why = "out of memory";
    } else {
      protobuf_c_message_pack((const ProtobufCMessage *)back, c);
      if (memcmp(a, c, n) != 0) why = "the unpacked program packs to different bytes";
    }
  }
  if (back) protobuf_c_message_free_unpacked((ProtobufCMessage *)back, NULL);
  free(a);
  free(c);
  box_free(b);
  if (why) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int luaopen_mlsh_core_miltext(lua_State *L) {
  static const luaL_Reg fns[] = {{"parse", l_parse}, {"summary", l_summary}, {"check", l_check}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
