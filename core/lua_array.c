/* lua_array.c — binding for mlsh.Array: float32 buffers with a shape.
 * Lua: core.array.new(n | {values}, [shape]) ; core.array.decode(bytes, dtype, [n], [shape]);
 * a:encode(dtype) -> string ; #a ; a[i] (1-based) ; a[i] = v ; a:shape() ; a:totable([max]);
 * a:stats() -> {count, min, max, mean, std, sum, sum_sq, sparsity, nan} ; a:slice(i, j) ; a:reshape{...}. */
#include "lua_array.h"
#include "bigbuf.h"
#include "dtype.h"
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#define ARRAY_MT "mlsh.Array"

mlsh_array *mlsh_array_push_uninit(lua_State *L, size_t n) {
  if (n > (SIZE_MAX - sizeof(mlsh_array)) / sizeof(float)) luaL_error(L, "array of %I elements is too large", (lua_Integer)n);
  mlsh_array *a = lua_newuserdatauv(L, sizeof(mlsh_array) + n * sizeof(float), 0);
  a->n = n;
  a->rank = 1;
  a->shape[0] = (int64_t)n;
  a->data = (float *)(a + 1);
  mlsh_bigbuf_hint(a->data, n * sizeof(float));
  luaL_setmetatable(L, ARRAY_MT);
  return a;
}

mlsh_array *mlsh_array_push(lua_State *L, size_t n) {
  mlsh_array *a = mlsh_array_push_uninit(L, n);
  memset(a->data, 0, n * sizeof(float));
  return a;
}

mlsh_array *mlsh_array_check(lua_State *L, int idx) {
  mlsh_array *a = luaL_checkudata(L, idx, ARRAY_MT);
  a->data = (float *)(a + 1); /* userdata never moves, but keep the invariant explicit */
  return a;
}

mlsh_array *mlsh_array_arg(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  mlsh_array *a = luaL_testudata(L, idx, ARRAY_MT);
  if (a) return a;
  luaL_checktype(L, idx, LUA_TTABLE);
  size_t n = (size_t)luaL_len(L, idx);
  a = mlsh_array_push_uninit(L, n); /* every element is written below */
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, idx, (lua_Integer)i + 1);
    int ok;
    lua_Number v = lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "element %I is not a number", (lua_Integer)(i + 1));
    a->data[i] = (float)v;
    lua_pop(L, 1);
  }
  return a;
}

/* Read a shape table at idx into a; its product must equal a->n. */
static void set_shape(lua_State *L, int idx, mlsh_array *a) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer rank = luaL_len(L, idx);
  if (rank < 0 || rank > MLSH_ARRAY_MAX_RANK) luaL_error(L, "rank %d is outside 0..%d", (int)rank, MLSH_ARRAY_MAX_RANK);
  int64_t shape[MLSH_ARRAY_MAX_RANK];
  size_t prod = 1;
  for (int i = 0; i < rank; i++) {
    lua_geti(L, idx, i + 1);
    lua_Integer d = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (d < 0) luaL_error(L, "negative dimension %d", (int)d);
    if (d != 0 && prod > SIZE_MAX / (size_t)d) luaL_error(L, "shape product overflows");
    prod *= (size_t)d;
    shape[i] = d;
  }
  if (prod != a->n) luaL_error(L, "shape holds %I elements, array has %I", (lua_Integer)prod, (lua_Integer)a->n);
  a->rank = (int)rank;
  memcpy(a->shape, shape, sizeof shape);
}

static int l_new(lua_State *L) {
  mlsh_array *a;
  int has_shape = !lua_isnoneornil(L, 2);
  lua_settop(L, 2);
  if (lua_isinteger(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "negative length");
    a = mlsh_array_push(L, (size_t)n);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    a = mlsh_array_arg(L, 1);
  }
  if (has_shape) set_shape(L, 2, a);
  return 1;
}

static int l_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  mlsh_dtype dt = mlsh_dtype_from_name(luaL_checkstring(L, 2));
  luaL_argcheck(L, dt != MLSH_DT_INVALID, 2, "unknown dtype");
  size_t n;
  if (lua_isnoneornil(L, 3)) n = (len * 8) / mlsh_dtype_bits(dt);
  else {
    lua_Integer ni = luaL_checkinteger(L, 3);
    luaL_argcheck(L, ni >= 0, 3, "negative count");
    n = (size_t)ni;
  }
  lua_settop(L, 4);
  /* n often comes from a shape in a file: check it against the bytes before allocating for it */
  size_t need = mlsh_dtype_nbytes(dt, n);
  if (need == SIZE_MAX || need > len)
    return luaL_error(L, "%I bytes cannot hold %I %s elements", (lua_Integer)len, (lua_Integer)n, mlsh_dtype_name(dt));
  mlsh_array *a = mlsh_array_push_uninit(L, n); /* the decoder writes every element */
  mlsh_decode_f32(s, len, dt, n, a->data);
  if (!lua_isnil(L, 4)) set_shape(L, 4, a);
  return 1;
}

static int l_encode(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  mlsh_dtype dt = mlsh_dtype_from_name(luaL_checkstring(L, 2));
  luaL_argcheck(L, dt != MLSH_DT_INVALID, 2, "unknown dtype");
  size_t nb = mlsh_dtype_nbytes(dt, a->n);
  if (nb == SIZE_MAX) return luaL_error(L, "array too large to encode");
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, nb);
  if (mlsh_encode_f32(a->data, a->n, dt, p, nb) != 0) return luaL_error(L, "cannot encode as %s", mlsh_dtype_name(dt));
  luaL_pushresultsize(&b, nb);
  return 1;
}

static int l_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mlsh_array_check(L, 1)->n);
  return 1;
}

static int l_index(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || (size_t)i > a->n) lua_pushnil(L);
    else lua_pushnumber(L, a->data[i - 1]);
    return 1;
  }
  luaL_getmetatable(L, ARRAY_MT);
  lua_getfield(L, -1, "__methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int l_newindex(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && (size_t)i <= a->n, 2, "index out of range");
  a->data[i - 1] = (float)luaL_checknumber(L, 3);
  return 0;
}

static int l_shape(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  lua_createtable(L, a->rank, 0);
  for (int i = 0; i < a->rank; i++) {
    lua_pushinteger(L, a->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_reshape(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  set_shape(L, 2, a);
  lua_settop(L, 1);
  return 1;
}

static int l_totable(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, (lua_Integer)a->n);
  size_t n = max < 0 ? 0 : ((size_t)max < a->n ? (size_t)max : a->n);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushnumber(L, a->data[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_slice(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2), j = luaL_optinteger(L, 3, (lua_Integer)a->n);
  if (i < 1) i = 1;
  if (j > (lua_Integer)a->n) j = (lua_Integer)a->n;
  size_t n = j >= i ? (size_t)(j - i + 1) : 0;
  mlsh_array *r = mlsh_array_push_uninit(L, n);
  if (n) memcpy(r->data, a->data + (i - 1), n * sizeof(float));
  return 1;
}

void mlsh_stats_push(lua_State *L, const mlsh_stats *s) {
  size_t cnt = s->n - s->nans;
  lua_createtable(L, 0, 9);
  lua_pushinteger(L, (lua_Integer)s->n); lua_setfield(L, -2, "count");
  lua_pushnumber(L, cnt ? s->min : 0); lua_setfield(L, -2, "min");
  lua_pushnumber(L, cnt ? s->max : 0); lua_setfield(L, -2, "max");
  lua_pushnumber(L, mlsh_stats_mean(s)); lua_setfield(L, -2, "mean");
  lua_pushnumber(L, mlsh_stats_std(s)); lua_setfield(L, -2, "std");
  lua_pushnumber(L, s->sum); lua_setfield(L, -2, "sum");
  lua_pushnumber(L, s->sumsq); lua_setfield(L, -2, "sum_sq");
  lua_pushnumber(L, s->n ? (double)s->zeros / (double)s->n : 0); lua_setfield(L, -2, "sparsity");
  lua_pushinteger(L, (lua_Integer)s->nans); lua_setfield(L, -2, "nan");
}

static int l_stats(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  mlsh_stats s;
  mlsh_stats_init(&s);
  mlsh_stats_add(&s, a->data, a->n);
  mlsh_stats_push(L, &s);
  return 1;
}

static int l_tostring(lua_State *L) {
  mlsh_array *a = mlsh_array_check(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "Array(");
  for (int i = 0; i < a->rank; i++) {
    lua_pushfstring(L, i ? "x%I" : "%I", (lua_Integer)a->shape[i]);
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, ")[");
  for (size_t i = 0; i < a->n && i < 6; i++) {
    lua_pushfstring(L, i ? ", %f" : "%f", (lua_Number)a->data[i]);
    luaL_addvalue(&b);
  }
  if (a->n > 6) luaL_addstring(&b, ", ...");
  luaL_addstring(&b, "]");
  luaL_pushresult(&b);
  return 1;
}

static const luaL_Reg methods[] = {
  {"encode", l_encode}, {"shape", l_shape}, {"reshape", l_reshape}, {"totable", l_totable},
  {"slice", l_slice}, {"stats", l_stats}, {NULL, NULL}};
static const luaL_Reg meta[] = {
  {"__len", l_len}, {"__index", l_index}, {"__newindex", l_newindex}, {"__tostring", l_tostring}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"new", l_new}, {"decode", l_decode}, {NULL, NULL}};

int luaopen_mlsh_core_array(lua_State *L) {
  if (luaL_newmetatable(L, ARRAY_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__methods");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
