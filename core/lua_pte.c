/* lua_pte.c — binding for ExecuTorch programs (core/pte.h) and their Core ML payloads
 * (core/inmemoryfs.h). Lua:
 *   core.pte.sniff(path) -> "pte" | "bpte" | nil     (looks at the first 8 bytes only)
 *   core.pte.open(path) -> Pte | nil, err
 *   p:info() -> {bundled, header_len, program_size, segment_base, segment_data_size, version, file_size,
 *                segments={{offset,size}}, named_data={{key,segment}}, methods={{name, inputs, input_types,
 *                outputs, output_types, values, operators={{name,overload}}, instructions={{kind,index}},
 *                delegates={{id, location, stored_index, offset, size, named_key, function,
 *                compile_specs={{key,value}}}}}}}   (indices as stored: 0-based)
 *   p:payload(m, d) -> bytes of delegate d of method m (1-based arguments)
 *   p:tree(m, d) -> {root=name, nodes={{path, dir, size, offset}}} | nil, err   (the inmemoryfs tree)
 *   p:file(m, d, path) -> bytes | nil, err
 *   p:model(m, d) -> Model opened in place over the mapped file | nil, err
 *   p:close() (also __gc/__close). Errors name the file and the reason. */
#include "container.h"
#include "inmemoryfs.h"
#include "lua_model.h"
#include "pte.h"
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define PTE_MT "mlsh.Pte"

int luaopen_mlsh_core_model(lua_State *L);

typedef struct { mlsh_pte_file *f; } lpte;

static lpte *check_open(lua_State *L) {
  lpte *p = luaL_checkudata(L, 1, PTE_MT);
  if (!p->f) luaL_error(L, "program is closed");
  return p;
}

static int push_err(lua_State *L, const mlsh_err *e) {
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  return 2;
}

static int l_sniff(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  FILE *fp = fopen(path, "rb");
  uint8_t head[8];
  size_t n = fp ? fread(head, 1, 8, fp) : 0;
  if (fp) fclose(fp);
  int k = mlsh_pte_sniff(head, n);
  if (k == 1) lua_pushliteral(L, "pte");
  else if (k == 2) lua_pushliteral(L, "bpte");
  else lua_pushnil(L);
  return 1;
}

static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lpte *p = lua_newuserdatauv(L, sizeof *p, 0);
  p->f = NULL;
  luaL_setmetatable(L, PTE_MT);
  mlsh_err e;
  if (mlsh_pte_open(path, &p->f, &e) != 0) return push_err(L, &e);
  return 1;
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void push_ints(lua_State *L, const int32_t *v, uint32_t n) {
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    lua_pushinteger(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void push_types(lua_State *L, const uint8_t *v, uint32_t n) {
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    lua_pushinteger(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void push_delegate(lua_State *L, const mlsh_pte_delegate *d) {
  lua_createtable(L, 0, 9);
  lua_pushstring(L, d->id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, mlsh_pte_location_name(d->location));
  lua_setfield(L, -2, "location");
  set_int(L, "stored_index", d->index);
  set_int(L, "offset", (lua_Integer)d->offset);
  set_int(L, "size", (lua_Integer)d->size);
  if (d->named_key) {
    lua_pushstring(L, d->named_key);
    lua_setfield(L, -2, "named_key");
  }
  if (d->function) {
    lua_pushstring(L, d->function);
    lua_setfield(L, -2, "function");
  }
  lua_createtable(L, (int)d->nspecs, 0);
  for (uint32_t i = 0; i < d->nspecs; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, d->specs[i].key);
    lua_setfield(L, -2, "key");
    lua_pushlstring(L, (const char *)d->specs[i].value, d->specs[i].len);
    lua_setfield(L, -2, "value");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "compile_specs");
}

static void push_method(lua_State *L, const mlsh_pte_method *m) {
  lua_createtable(L, 0, 10);
  lua_pushstring(L, m->name);
  lua_setfield(L, -2, "name");
  set_int(L, "values", m->nvalues);
  push_ints(L, m->inputs, m->ninputs);
  lua_setfield(L, -2, "inputs");
  push_types(L, m->input_types, m->ninputs);
  lua_setfield(L, -2, "input_types");
  push_ints(L, m->outputs, m->noutputs);
  lua_setfield(L, -2, "outputs");
  push_types(L, m->output_types, m->noutputs);
  lua_setfield(L, -2, "output_types");
  lua_createtable(L, (int)m->nops, 0);
  for (uint32_t i = 0; i < m->nops; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, m->ops[i]);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, m->overloads[i]);
    lua_setfield(L, -2, "overload");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "operators");
  lua_createtable(L, (int)m->ninstrs, 0);
  for (uint32_t i = 0; i < m->ninstrs; i++) {
    lua_createtable(L, 0, 2);
    set_int(L, "kind", m->instrs[i].kind);
    set_int(L, "index", m->instrs[i].index);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "instructions");
  lua_createtable(L, (int)m->ndelegates, 0);
  for (uint32_t i = 0; i < m->ndelegates; i++) {
    push_delegate(L, &m->delegates[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "delegates");
}

static int l_info(lua_State *L) {
  lpte *lp = check_open(L);
  const mlsh_pte *p = lp->f->pte;
  lua_createtable(L, 0, 12);
  lua_pushboolean(L, p->bundled);
  lua_setfield(L, -2, "bundled");
  set_int(L, "header_len", p->header_len);
  set_int(L, "program_size", (lua_Integer)p->program_size);
  set_int(L, "segment_base", (lua_Integer)p->segment_base);
  set_int(L, "segment_data_size", (lua_Integer)p->segment_data_size);
  set_int(L, "version", p->version);
  set_int(L, "file_size", (lua_Integer)lp->f->len);
  lua_createtable(L, (int)p->nsegments, 0);
  for (uint32_t i = 0; i < p->nsegments; i++) {
    lua_createtable(L, 0, 2);
    set_int(L, "offset", (lua_Integer)p->segments[i].offset);
    set_int(L, "size", (lua_Integer)p->segments[i].size);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "segments");
  lua_createtable(L, (int)p->nnamed, 0);
  for (uint32_t i = 0; i < p->nnamed; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, p->named[i].key);
    lua_setfield(L, -2, "key");
    set_int(L, "segment", p->named[i].segment);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "named_data");
  lua_createtable(L, (int)p->nmethods, 0);
  for (uint32_t i = 0; i < p->nmethods; i++) {
    push_method(L, &p->methods[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "methods");
  return 1;
}

static const mlsh_pte_delegate *check_delegate(lua_State *L, lpte *lp) {
  const mlsh_pte *p = lp->f->pte;
  lua_Integer mi = luaL_checkinteger(L, 2), di = luaL_checkinteger(L, 3);
  luaL_argcheck(L, mi >= 1 && (uint64_t)mi <= p->nmethods, 2, "no such method");
  const mlsh_pte_method *m = &p->methods[mi - 1];
  luaL_argcheck(L, di >= 1 && (uint64_t)di <= m->ndelegates, 3, "no such delegate");
  return &m->delegates[di - 1];
}

static int l_payload(lua_State *L) {
  lpte *lp = check_open(L);
  const mlsh_pte_delegate *d = check_delegate(L, lp);
  lua_pushlstring(L, (const char *)d->data, (size_t)d->size);
  return 1;
}

/* "x.pte:forward/0" for messages */
static void display(lua_State *L, lpte *lp, char *buf, size_t n) {
  lua_Integer mi = lua_tointeger(L, 2), di = lua_tointeger(L, 3);
  snprintf(buf, n, "%s:%s/%lld", lp->f->path, lp->f->pte->methods[mi - 1].name, (long long)(di - 1));
}

static int parse_tree(lua_State *L, lpte *lp, mlsh_imfs **fs, mlsh_err *e) {
  const mlsh_pte_delegate *d = check_delegate(L, lp);
  char name[1200];
  display(L, lp, name, sizeof name);
  return mlsh_imfs_parse(d->data, (size_t)d->size, name, fs, e);
}

static int l_tree(lua_State *L) {
  lpte *lp = check_open(L);
  mlsh_imfs *fs;
  mlsh_err e;
  if (parse_tree(L, lp, &fs, &e)) return push_err(L, &e);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, fs->nodes[fs->root].name);
  lua_setfield(L, -2, "root");
  lua_newtable(L);
  lua_Integer k = 0;
  for (size_t i = 0; i < fs->count; i++) {
    const mlsh_imfs_node *n = &fs->nodes[i];
    if (!n->path || i == fs->root) continue;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, n->path);
    lua_setfield(L, -2, "path");
    lua_pushboolean(L, n->dir);
    lua_setfield(L, -2, "dir");
    set_int(L, "size", (lua_Integer)n->size);
    set_int(L, "offset", (lua_Integer)n->offset);
    lua_rawseti(L, -2, ++k);
  }
  lua_setfield(L, -2, "nodes");
  mlsh_imfs_free(fs);
  return 1;
}

static int l_file(lua_State *L) {
  lpte *lp = check_open(L);
  const char *path = luaL_checkstring(L, 4);
  mlsh_imfs *fs;
  mlsh_err e;
  if (parse_tree(L, lp, &fs, &e)) return push_err(L, &e);
  int i = mlsh_imfs_find(fs, path);
  if (i < 0 || fs->nodes[i].dir) {
    mlsh_imfs_free(fs);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: payload has no file %s", lp->f->path, path);
    return 2;
  }
  lua_pushlstring(L, (const char *)fs->data + fs->nodes[i].offset, (size_t)fs->nodes[i].size);
  mlsh_imfs_free(fs);
  return 1;
}

typedef struct { mlsh_pte_file *f; mlsh_imfs *fs; } keep;

static void release(void *ud) {
  keep *k = ud;
  mlsh_imfs_free(k->fs);
  mlsh_pte_file_unref(k->f);
  free(k);
}

static int l_model(lua_State *L) {
  lpte *lp = check_open(L);
  mlsh_imfs *fs;
  mlsh_err e;
  char name[1200];
  if (parse_tree(L, lp, &fs, &e)) return push_err(L, &e);
  display(L, lp, name, sizeof name);
  keep *k = malloc(sizeof *k);
  if (!k) {
    mlsh_imfs_free(fs);
    return luaL_error(L, "out of memory");
  }
  k->f = lp->f;
  k->fs = fs;
  mlsh_pte_file_ref(lp->f);
  mlsh_container *c;
  if (mlsh_container_open_tree(name, fs, k, release, &c, &e) != 0) return push_err(L, &e);
  luaL_requiref(L, "mlsh.core.model", luaopen_mlsh_core_model, 0);
  lua_pop(L, 1);
  return mlsh_model_push(L, c);
}

static int l_close(lua_State *L) {
  lpte *p = luaL_checkudata(L, 1, PTE_MT);
  if (p->f) mlsh_pte_file_unref(p->f);
  p->f = NULL;
  return 0;
}

static int l_path(lua_State *L) {
  lua_pushstring(L, check_open(L)->f->path);
  return 1;
}

static const luaL_Reg methods[] = {{"info", l_info},   {"payload", l_payload}, {"tree", l_tree}, {"file", l_file},
                                   {"model", l_model}, {"path", l_path},       {"close", l_close}, {NULL, NULL}};

int luaopen_mlsh_core_pte(lua_State *L) {
  if (luaL_newmetatable(L, PTE_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  lua_pushcfunction(L, l_sniff);
  lua_setfield(L, -2, "sniff");
  return 1;
}
