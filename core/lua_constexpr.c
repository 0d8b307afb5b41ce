/* lua_constexpr.c — core.constexpr: the C decompressor (constexpr.c) for Lua. One function per
 * constexpr op; mlsh.model.constexpr finds each op's parameters and calls these for the values.
 *
 * A tensor argument ("source") is a table {dtype = "int4", shape = {...}} plus one of
 *   array = mlsh.Array            values as they are (borrowed; n must equal the shape's product)
 *   bytes = string                stored bytes of dtype (sub-byte types packed LSB first)
 *   model = Model, file = "...", offset = n   a blob of a weight file, read from the mmap
 * dtype may differ from the stored one (an iOS16 uint8 byte stream read as uint2 codes).
 *
 *   affine(q, zero_point, scale, axis, out_dtype)            -> Array (q's shape)
 *   cast(src, out_dtype)                                     -> Array
 *   lut(indices, lut, vector_axis, out_dtype)                -> Array (indices' shape, vector
 *        axis times V); a lut of rank <= 1 is one iOS16 table for every index
 *   sparse(mask, nonzero_data, out_dtype)                    -> Array (mask's shape)
 *   shift_scale(data, scale, offset|nil, out_dtype)          -> Array (data's shape)
 *   sparse_shift_scale(mask, nonzero, scale, offset|nil, out_dtype) -> mask Array, values Array
 *   lut_to_sparse(mask, nonzero, lut, vector_axis, out_dtype) -> mask Array (expanded), values Array
 *   nn_linear(q, scale Array, bias Array, out_dtype)          -> Array (a NeuralNetwork WeightParams'
 *        linearQuantization: scale * q + bias per output channel)
 * Bad data (sizes, shapes, indices) gives nil, message; a wrong argument type raises. Values are
 * rounded to out_dtype (fp16) as Core ML materialises them. */
#include "blobfile.h"
#include "constexpr.h"
#include "lua_array.h"
#include "lua_model.h"
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

/* Decoded floats live in a userdata on the stack (freed by the GC, also when an error unwinds),
 * not zero-filled: the decoder writes every element. */
static float *scratch(lua_State *L, size_t n) {
  if (n > SIZE_MAX / sizeof(float) - 1) luaL_error(L, "core.constexpr: %I values are too many", (lua_Integer)n);
  return lua_newuserdatauv(L, (n ? n : 1) * sizeof(float), 0);
}

/* The stored bytes of a source (borrowed from the Lua string or the weight file's mmap). */
static int source_bytes(lua_State *L, int t, const uint8_t **p, size_t *len, mlsh_err *e) {
  if (lua_getfield(L, t, "bytes") == LUA_TSTRING) {
    *p = (const uint8_t *)lua_tolstring(L, -1, len);
    lua_pop(L, 1); /* the string stays alive: the source table holds it */
    return 0;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, t, "model") == LUA_TNIL) luaL_error(L, "core.constexpr: a source needs array, bytes or model");
  mlsh_container *c = mlsh_model_container(L, lua_gettop(L));
  lua_pop(L, 1);
  lua_getfield(L, t, "file");
  const char *file = luaL_checkstring(L, -1);
  lua_getfield(L, t, "offset");
  lua_Integer off = luaL_checkinteger(L, -1);
  lua_pop(L, 2); /* the file name stays alive: the source table holds it */
  const uint8_t *data;
  size_t flen;
  const char *name;
  if (mlsh_container_map(c, file, &data, &flen, &name, e) != 0) return -1;
  char printable[1024];
  mlsh_container_display(c, name, printable, sizeof printable);
  if (off < 0) return mlsh_fail(e, printable, "negative blob offset %lld", (long long)off);
  mlsh_blob b;
  if (mlsh_blob_read(data, flen, (uint64_t)off, &b, printable, e) != 0) return -1;
  *p = b.data;
  *len = (size_t)b.size;
  return 0;
}

/* Read the source table at stack index t into v (float values; a scratch buffer may be pushed). */
static int source(lua_State *L, int t, const char *what, mlsh_cx_val *v, mlsh_err *e) {
  t = lua_absindex(L, t);
  luaL_checktype(L, t, LUA_TTABLE);
  memset(v, 0, sizeof *v);
  if (lua_getfield(L, t, "dtype") != LUA_TSTRING) luaL_error(L, "core.constexpr: %s needs a dtype name", what);
  v->dt = mlsh_dtype_from_name(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (v->dt == MLSH_DT_INVALID) return mlsh_fail(e, NULL, "%s has an unknown dtype", what);
  if (lua_getfield(L, t, "shape") != LUA_TTABLE) luaL_error(L, "core.constexpr: %s needs a shape table", what);
  lua_Integer rank = luaL_len(L, -1);
  if (rank > MLSH_CX_MAX_RANK) { lua_pop(L, 1); return mlsh_fail(e, NULL, "%s has rank %lld (at most %d)", what, (long long)rank, MLSH_CX_MAX_RANK); }
  v->rank = (int)rank;
  size_t n = 1;
  int bad = 0;
  for (int d = 0; d < v->rank; d++) {
    lua_geti(L, -1, d + 1);
    int isnum;
    lua_Integer k = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || k < 0 || (k > 0 && n > SIZE_MAX / 8 / (size_t)k)) bad = 1;
    else n *= (size_t)k;
    v->shape[d] = isnum ? (int64_t)k : -1;
  }
  lua_pop(L, 1);
  if (bad) return mlsh_fail(e, NULL, "%s has a bad shape", what);
  v->n = n;
  lua_getfield(L, t, "array");
  mlsh_array *a = luaL_testudata(L, -1, "mlsh.Array");
  lua_pop(L, 1); /* the Array stays alive: the source table holds it */
  if (a) {
    if (a->n != n) return mlsh_fail(e, NULL, "%s holds %zu values, its shape %zu", what, a->n, n);
    v->v = a->data;
    return 0;
  }
  const uint8_t *p;
  size_t len;
  if (source_bytes(L, t, &p, &len, e) != 0) return -1;
  size_t need = mlsh_dtype_nbytes(v->dt, n);
  if (need == SIZE_MAX || need > len)
    return mlsh_fail(e, NULL, "%s holds %zu bytes, %zu %s values need %zu", what, len, n, mlsh_dtype_name(v->dt), need);
  float *f = scratch(L, n);
  mlsh_decode_f32(p, len, v->dt, n, f);
  v->v = f;
  return 0;
}

static int fail(lua_State *L, const mlsh_err *e) {
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  return 2;
}

static mlsh_dtype out_dtype(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  mlsh_dtype dt = mlsh_dtype_from_name(name);
  luaL_argcheck(L, dt != MLSH_DT_INVALID, idx, "unknown dtype");
  return dt;
}

/* A new Array of n values shaped rank/shape (shape NULL: 1-D). */
static mlsh_array *result(lua_State *L, size_t n, int rank, const int64_t *shape) {
  mlsh_array *a = mlsh_array_push_uninit(L, n); /* the decompressor writes every element */
  if (shape && rank >= 1 && rank <= MLSH_ARRAY_MAX_RANK) {
    a->rank = rank;
    memcpy(a->shape, shape, (size_t)rank * sizeof *shape);
  }
  return a;
}

static int l_affine(lua_State *L) {
  mlsh_dtype dt = out_dtype(L, 5);
  lua_Integer axis = luaL_checkinteger(L, 4);
  mlsh_cx_val q, zp, sc;
  mlsh_err e;
  if (source(L, 1, "quantized_data", &q, &e) || source(L, 2, "zero_point", &zp, &e) || source(L, 3, "scale", &sc, &e))
    return fail(L, &e);
  mlsh_array *a = result(L, q.n, q.rank, q.shape);
  if (mlsh_cx_affine(&q, &zp, &sc, axis, a->data, &e) != 0) return fail(L, &e);
  mlsh_cx_round(a->data, a->n, dt);
  return 1;
}

static int l_cast(lua_State *L) {
  mlsh_dtype dt = out_dtype(L, 2);
  mlsh_cx_val s;
  mlsh_err e;
  if (source(L, 1, "source_val", &s, &e)) return fail(L, &e);
  mlsh_array *a = result(L, s.n, s.rank, s.shape);
  mlsh_cx_cast(&s, dt, a->data);
  return 1;
}

static int l_lut(lua_State *L) {
  lua_Integer va = luaL_optinteger(L, 3, 0);
  mlsh_dtype dt = out_dtype(L, 4);
  mlsh_cx_val ix, lut;
  mlsh_err e;
  if (source(L, 1, "indices", &ix, &e) || source(L, 2, "lut", &lut, &e)) return fail(L, &e);
  if (lut.rank <= 1) { /* iOS16: one table for every index, viewed as the iOS18 per-tensor layout */
    if (ix.rank + 2 > MLSH_CX_MAX_RANK) return luaL_error(L, "core.constexpr.lut: indices of rank %d", ix.rank);
    lut.rank = ix.rank + 2;
    for (int d = 0; d < ix.rank; d++) lut.shape[d] = 1;
    lut.shape[ix.rank] = (int64_t)lut.n;
    lut.shape[ix.rank + 1] = 1;
  }
  int64_t V = lut.rank >= 1 ? lut.shape[lut.rank - 1] : 1;
  if (V < 1 || ix.n > SIZE_MAX / 8 / (size_t)V) {
    mlsh_fail(&e, NULL, "lut vectors of %lld values", (long long)V);
    return fail(L, &e);
  }
  int64_t oshape[MLSH_CX_MAX_RANK];
  mlsh_array *a = result(L, ix.n * (size_t)V, 0, NULL);
  if (mlsh_cx_lut(&ix, &lut, va, a->data, oshape, &e) != 0) return fail(L, &e);
  if (ix.rank >= 1) {
    a->rank = ix.rank;
    memcpy(a->shape, oshape, (size_t)ix.rank * sizeof *oshape);
  }
  mlsh_cx_round(a->data, a->n, dt);
  return 1;
}

static int l_sparse(lua_State *L) {
  mlsh_dtype dt = out_dtype(L, 3);
  mlsh_cx_val m, nz;
  mlsh_err e;
  if (source(L, 1, "mask", &m, &e) || source(L, 2, "nonzero_data", &nz, &e)) return fail(L, &e);
  mlsh_array *a = result(L, m.n, m.rank, m.shape);
  if (mlsh_cx_sparse(m.v, m.n, nz.v, nz.n, a->data, &e) != 0) return fail(L, &e);
  mlsh_cx_round(a->data, a->n, dt);
  return 1;
}

/* The optional offset at idx (nil: none). */
static int offset_arg(lua_State *L, int idx, mlsh_cx_val *o, mlsh_err *e, const mlsh_cx_val **po) {
  *po = NULL;
  if (lua_isnoneornil(L, idx)) return 0;
  if (source(L, idx, "offset", o, e)) return -1;
  *po = o;
  return 0;
}

static int l_shift_scale(lua_State *L) {
  mlsh_dtype dt = out_dtype(L, 4);
  mlsh_cx_val d, sc, o;
  const mlsh_cx_val *po;
  mlsh_err e;
  if (source(L, 1, "data", &d, &e) || source(L, 2, "scale", &sc, &e) || offset_arg(L, 3, &o, &e, &po)) return fail(L, &e);
  mlsh_array *a = result(L, d.n, d.rank, d.shape);
  if (mlsh_cx_shift_scale(&d, &sc, po, a->data, &e) != 0) return fail(L, &e);
  mlsh_cx_round(a->data, a->n, dt);
  return 1;
}

/* The mask as 0/1 (a mask stored one element per byte may hold any nonzero value). */
static void mask01(lua_State *L, const mlsh_cx_val *m) {
  mlsh_array *a = result(L, m->n, m->rank, m->shape);
  for (size_t i = 0; i < m->n; i++) a->data[i] = m->v[i] != 0;
}

static int l_sparse_shift_scale(lua_State *L) {
  mlsh_dtype dt = out_dtype(L, 5);
  mlsh_cx_val m, nz, sc, o;
  const mlsh_cx_val *po;
  mlsh_err e;
  if (source(L, 1, "data_mask", &m, &e) || source(L, 2, "nonzero_data", &nz, &e) || source(L, 3, "scale", &sc, &e) ||
      offset_arg(L, 4, &o, &e, &po))
    return fail(L, &e);
  mask01(L, &m); /* the first result */
  mlsh_array *a = result(L, nz.n, 0, NULL);
  if (mlsh_cx_sparse_shift_scale(&m, &nz, &sc, po, a->data, &e) != 0) return fail(L, &e);
  mlsh_cx_round(a->data, a->n, dt);
  return 2;
}

static int l_lut_to_sparse(lua_State *L) {
  lua_Integer va = luaL_optinteger(L, 4, 0);
  mlsh_dtype dt = out_dtype(L, 5);
  mlsh_cx_val m, nz, lut;
  mlsh_err e;
  if (source(L, 1, "indices_mask", &m, &e) || source(L, 2, "indices_nonzero_data", &nz, &e) || source(L, 3, "lut", &lut, &e))
    return fail(L, &e);
  if (lut.rank != m.rank + 2 || lut.rank < 2) {
    mlsh_fail(&e, NULL, "lut has rank %d, indices_mask rank %d (needs rank + 2)", lut.rank, m.rank);
    return fail(L, &e);
  }
  size_t V = lut.shape[m.rank + 1] > 0 ? (size_t)lut.shape[m.rank + 1] : 1, ones = 0;
  for (size_t i = 0; i < m.n; i++) ones += m.v[i] != 0;
  if (ones != nz.n) {
    mlsh_fail(&e, NULL, "indices_mask selects %zu elements, indices_nonzero_data holds %zu", ones, nz.n);
    return fail(L, &e);
  }
  if (m.n > SIZE_MAX / 8 / V) {
    mlsh_fail(&e, NULL, "lut vectors of %zu values for %zu positions", V, m.n);
    return fail(L, &e);
  }
  int64_t oshape[MLSH_CX_MAX_RANK];
  mlsh_array *am = result(L, m.n * V, 0, NULL);
  mlsh_array *a = result(L, nz.n * V, 0, NULL);
  if (mlsh_cx_lut_to_sparse(&m, &nz, &lut, va, am->data, oshape, a->data, &e) != 0) return fail(L, &e);
  if (m.rank >= 1) {
    am->rank = m.rank;
    memcpy(am->shape, oshape, (size_t)m.rank * sizeof *oshape);
  }
  mlsh_cx_round(a->data, a->n, dt);
  return 2;
}

static int l_nn_linear(lua_State *L) {
  mlsh_dtype dt = out_dtype(L, 4);
  mlsh_array *sc = mlsh_array_check(L, 2), *bias = mlsh_array_check(L, 3);
  mlsh_cx_val q;
  mlsh_err e;
  if (source(L, 1, "quantized values", &q, &e)) return fail(L, &e);
  mlsh_array *a = result(L, q.n, q.rank, q.shape);
  if (mlsh_cx_nn_linear(&q, sc->data, sc->n, bias->data, bias->n, a->data, &e) != 0) return fail(L, &e);
  mlsh_cx_round(a->data, a->n, dt);
  return 1;
}

/* nn_codes(bytes, nbits, n) -> Array of n codes (NeuralNetwork packing, most significant bit first) */
static int l_nn_codes(lua_State *L) {
  size_t len;
  const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &len);
  lua_Integer bits = luaL_checkinteger(L, 2), n = luaL_checkinteger(L, 3);
  luaL_argcheck(L, n >= 0, 3, "negative count");
  mlsh_err e;
  if (bits < 1 || bits > 8 || (uint64_t)n > (uint64_t)len * 8) {
    mlsh_fail(&e, NULL, "%lld codes of %lld bits in %zu bytes", (long long)n, (long long)bits, len);
    return fail(L, &e);
  }
  int64_t shape[1] = {n};
  mlsh_array *a = result(L, (size_t)n, 1, shape);
  if (mlsh_cx_nn_codes(p, len, (unsigned)bits, (size_t)n, a->data, &e) != 0) return fail(L, &e);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"affine", l_affine}, {"cast", l_cast}, {"lut", l_lut}, {"sparse", l_sparse}, {"shift_scale", l_shift_scale},
  {"sparse_shift_scale", l_sparse_shift_scale}, {"lut_to_sparse", l_lut_to_sparse}, {"nn_linear", l_nn_linear},
  {"nn_codes", l_nn_codes},
  {NULL, NULL}};

int luaopen_mlsh_core_constexpr(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
