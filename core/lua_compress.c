/* lua_compress.c — Lua binding of the compression kernels: require("mlsh.core").compress.
 * Arrays are mlsh.Array (float32; a Lua table of numbers is accepted too). Axes are 0-based and
 * may be negative, as in coremltools. `shape` defaults to the array's own shape. Every function
 * takes `weight_dtype` = "fp32" (default) | "fp16": the dtype the weight is stored in; values
 * are rounded to it and all arithmetic rounds like numpy in it (bit-exact with coremltools).
 * `threads` (default: online CPUs or $MLSH_THREADS) never changes a result. Bad arguments and
 * unknown option names raise errors. In result tables, `codes` and `mask_bytes` are unpacked
 * from `indices` / `data` / `mask` on first access (so pairs() does not list them before).
 *
 * compress.palettize(a, {nbits=4, mode="kmeans"|"uniform"|"unique", granularity="per_tensor"|
 *     "per_grouped_channel", group_size=32, axis=0, per_channel_scale=false, shape, weight_dtype,
 *     threads, distinct="auto"|"sort"})
 *   -> {lut=Array{groups, 2^nbits}, indices=string (codes packed nbits LSB-first), ncodes,
 *       codes=string (one byte per element), reconstructed=Array, scale=Array|nil (per-channel
 *       scale: the input shape with the axis dim 1), lut_shape={...} (Core ML iOS18 layout,
 *       rank+2), nbits, groups, group_size, axis, mode, exact, weight_dtype, nbytes}
 *   nbits must be absent for mode unique (it picks the smallest of 1,2,3,4,6,8 that fits).
 *   exact is false only when a group had too many distinct values for the exact k-means
 *   (never for fp16 data). distinct="sort" forces the sort path (for tests).
 * compress.quantize(a, {dtype="int8"|"uint8"|"int4"|"uint4", symmetric=true, granularity=
 *     "per_channel"|"per_tensor"|"per_block", axis=0, input_axis, block_size=32, block_sizes,
 *     shape, weight_dtype, threads})
 *   -> {data=string (codes in dtype, sub-byte packed LSB-first), ncodes, codes=Array,
 *       scale=Array, zero_point=Array|nil (nil for symmetric signed), reconstructed=Array, dtype,
 *       symmetric, qmin, qmax, block_sizes={...} (0 = whole axis), scale_shape={...},
 *       weight_dtype, nbytes}
 *   per_block: block 1 on `axis`, block_size on `input_axis` (default 1 when axis is 0, else the
 *   axis before the last when axis is the last). block_sizes={b0, b1, ...} sets them directly.
 * compress.prune(a, {mode="magnitude"|"threshold", sparsity, threshold=1e-12, block_size, n_m={n,m},
 *     dim, shape, weight_dtype, threads})
 *   -> {mask=string (uint1 packed LSB-first), mask_bytes=string (0/1 per element), nonzero=Array
 *       (made when read), nonzero_bytes=string (the kept values stored as nonzero_dtype, the weight dtype),
 *       reconstructed=Array, sparsity, nnz, threshold (compared value, nil for n:m), nbytes}
 *   magnitude takes exactly one of sparsity / n_m; block_size (> 1) makes it block-structured;
 *   dim defaults to 0 with block_size and 1 with n_m.
 * compress.prune_palettize(a, prune_opts, palettize_opts) / compress.prune_quantize(a, prune_opts,
 *     quantize_opts): prune, then compress the dense pruned tensor (coremltools' joint mode:
 *     zeros take part in the clustering / scales) and keep the codes of the non-zeros only.
 *   -> prune's {mask, mask_bytes, sparsity, nnz, threshold} plus palettize's {lut, indices,
 *      codes, scale, nbits, groups, ...} or quantize's {data, codes, scale, zero_point, ...},
 *      where indices / codes / data hold the nnz kept entries in row-major order, and
 *      reconstructed / nbytes describe the joint result. weight_dtype defaults to prune's.
 * compress.metrics(original, reconstructed, {weight_dtype, nbytes, threads, signal}?)
 *   -> {snr_db, psnr_db, mse, max_abs_err, mean_abs_err, cosine, sparsity, n
 *       [, bytes_before, bytes_after, ratio, bits_per_weight when nbytes is given]
 *       [, sum_sq when signal: original:stats().sum_sq, summed beside the error terms]}
 * compress.pack(codes, nbits) -> string ; compress.unpack(bytes, nbits, n) -> string of codes
 *   (codes: a string with one byte per code, or a table of integers).
 * compress.randn(n | shape, {seed=0, mean=0, std=1, weight_dtype, threads}) -> Array
 * compress.threads() -> the default thread count.
 * compress.reserve(bytes) -> true | false: huge-page-hinted heap for a model pass (bigbuf.h).
 * compress.clock() -> monotonic wall-clock seconds (for timing; os.clock counts CPU time). */
#include "compress/metrics.h"
#include "compress/pack.h"
#include "compress/palettize.h"
#include "compress/prune.h"
#include "compress/quantize.h"
#include "compress/randn.h"
#include "compress/threads.h"
#include "bigbuf.h"
#include "dtype.h"
#include "lua_array.h"
#include "lua_model.h"
#include "blobfile.h"
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua_opts.h"
#include "lua_outbuf.h"
#include "lua_compress_args.h"

static void push_packed(lua_State *L, const uint8_t *codes, size_t n, unsigned bits, unsigned threads) {
  size_t nb = (n * bits + 7) / 8;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, nb);
  mlsh_pack_codes(codes, n, bits, (uint8_t *)p, threads);
  luaL_pushresultsize(&b, nb);
}

/* ---------- result tables ----------
 * Results carry packed forms (indices, data, mask); the unpacked views (codes, mask_bytes) are
 * made on first access by the metatable, so a caller that never reads them never pays the
 * memory (a 4096x4096 tensor's codes as an Array is 64 MiB). */

#define RESULT_MT "mlsh.compress.Result"

static void new_result(lua_State *L) {
  lua_createtable(L, 0, 20);
  luaL_setmetatable(L, RESULT_MT);
}

static int raw_field(lua_State *L, int t, const char *k) {
  lua_pushstring(L, k);
  return lua_rawget(L, t);
}

static int l_result_index(lua_State *L) {
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  if (strcmp(k, "codes") == 0) {
    lua_Integer n = (raw_field(L, 1, "ncodes"), lua_tointeger(L, -1));
    size_t len;
    if (raw_field(L, 1, "indices") == LUA_TSTRING) { /* palettize: one byte per code */
      const char *p = lua_tolstring(L, -1, &len);
      unsigned bits = (unsigned)(raw_field(L, 1, "nbits"), lua_tointeger(L, -1));
      if (n < 0 || bits < 1 || bits > 8 || ((size_t)n * bits + 7) / 8 > len) return luaL_error(L, "result.codes: inconsistent result");
      luaL_Buffer b;
      char *out = luaL_buffinitsize(L, &b, (size_t)n);
      mlsh_bitunpack((const uint8_t *)p, (size_t)n, bits, (uint8_t *)out);
      luaL_pushresultsize(&b, (size_t)n);
    } else if (raw_field(L, 1, "data") == LUA_TSTRING) { /* quantize: the code values as an Array */
      const char *p = lua_tolstring(L, -1, &len);
      mlsh_dtype dt = (raw_field(L, 1, "dtype"), mlsh_dtype_from_name(luaL_optstring(L, -1, "")));
      raw_field(L, 1, "reconstructed");
      mlsh_array *rec = luaL_testudata(L, -1, "mlsh.Array");
      mlsh_array *a = mlsh_array_push_uninit(L, n < 0 ? 0 : (size_t)n); /* decoded in full below */
      if (rec && rec->n == a->n) {
        a->rank = rec->rank;
        memcpy(a->shape, rec->shape, sizeof a->shape);
      }
      if (dt == MLSH_DT_INVALID || mlsh_decode_f32(p, len, dt, a->n, a->data)) return luaL_error(L, "result.codes: inconsistent result");
    } else return 0;
  } else if (strcmp(k, "nonzero") == 0) { /* prune: the kept values of the reconstruction, in order */
    size_t len;
    if (raw_field(L, 1, "mask") != LUA_TSTRING) return 0;
    const uint8_t *mask = (const uint8_t *)lua_tolstring(L, -1, &len);
    lua_Integer nnz = (raw_field(L, 1, "nnz"), lua_tointeger(L, -1));
    raw_field(L, 1, "reconstructed");
    mlsh_array *rec = luaL_testudata(L, -1, "mlsh.Array");
    if (!rec && raw_field(L, 1, "nonzero_bytes") == LUA_TSTRING) { /* a blob result: the stored values */
      size_t blen;
      const char *p = lua_tolstring(L, -1, &blen);
      mlsh_dtype dt = (raw_field(L, 1, "nonzero_dtype"), mlsh_dtype_from_name(luaL_optstring(L, -1, "")));
      mlsh_array *nz = mlsh_array_push_uninit(L, nnz < 0 ? 0 : (size_t)nnz);
      if (dt == MLSH_DT_INVALID || mlsh_decode_f32(p, blen, dt, nz->n, nz->data)) return luaL_error(L, "result.nonzero: inconsistent result");
      lua_pushvalue(L, 2);
      lua_pushvalue(L, -2);
      lua_rawset(L, 1);
      return 1;
    }
    if (!rec || (rec->n + 7) / 8 > len || nnz < 0 || (size_t)nnz > rec->n) return luaL_error(L, "result.nonzero: inconsistent result");
    mlsh_array *nz = mlsh_array_push_uninit(L, (size_t)nnz);
    size_t k2 = 0;
    for (size_t i = 0; i < rec->n; i++)
      if ((mask[i >> 3] >> (i & 7)) & 1) {
        if (k2 == (size_t)nnz) return luaL_error(L, "result.nonzero: inconsistent result");
        nz->data[k2++] = rec->data[i];
      }
    if (k2 != (size_t)nnz) return luaL_error(L, "result.nonzero: inconsistent result");
  } else if (strcmp(k, "mask_bytes") == 0) {
    size_t len;
    if (raw_field(L, 1, "mask") != LUA_TSTRING) return 0;
    const char *p = lua_tolstring(L, -1, &len);
    raw_field(L, 1, "reconstructed");
    mlsh_array *rec = luaL_testudata(L, -1, "mlsh.Array");
    lua_Integer n = rec ? (lua_Integer)rec->n : (raw_field(L, 1, "n"), lua_tointeger(L, -1));
    if (n <= 0 || ((size_t)n + 7) / 8 > len) return luaL_error(L, "result.mask_bytes: inconsistent result");
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, (size_t)n);
    mlsh_bitunpack((const uint8_t *)p, (size_t)n, 1, (uint8_t *)out);
    luaL_pushresultsize(&b, (size_t)n);
  } else return 0;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1); /* cache it */
  return 1;
}

/* ---------- palettize ---------- */

static const char *const pal_keys[] = {"nbits", "mode", "granularity", "group_size", "axis", "per_channel_scale",
                                       "shape", "weight_dtype", "threads", "distinct", NULL};
static const char *const pal_modes[] = {"kmeans", "uniform", "unique", NULL};
static const char *const pal_gran[] = {"per_tensor", "per_grouped_channel", NULL};
static const char *const distinct_names[] = {"auto", "sort", NULL};

static void parse_pal(lua_State *L, int t, const char *fn, const mlsh_array *a, mlsh_wdtype wd_def, mlsh_pal_opts *o) {
  mlsh_opt_keys(L, t, fn, pal_keys);
  memset(o, 0, sizeof *o);
  o->mode = (mlsh_pal_mode)mlsh_opt_enum(L, t, fn, "mode", pal_modes, MLSH_PAL_KMEANS);
  if (o->mode == MLSH_PAL_UNIQUE) {
    if (mlsh_opt_has(L, t, "nbits")) luaL_error(L, "%s: nbits must not be given with mode unique (it is chosen)", fn);
  } else {
    lua_Integer nb = mlsh_opt_int(L, t, fn, "nbits", 4);
    if (nb != 1 && nb != 2 && nb != 3 && nb != 4 && nb != 6 && nb != 8)
      luaL_error(L, "%s: nbits must be one of 1, 2, 3, 4, 6, 8 (got %I)", fn, nb);
    o->nbits = (unsigned)nb;
  }
  opt_shape(L, t, fn, a, o->shape, &o->rank);
  o->axis = norm_axis(L, fn, "axis", mlsh_opt_int(L, t, fn, "axis", 0), o->rank);
  int grouped = mlsh_opt_enum(L, t, fn, "granularity", pal_gran, 0);
  int64_t C = o->shape[o->axis];
  if (grouped) {
    lua_Integer g = mlsh_opt_int(L, t, fn, "group_size", 32);
    if (g < 1) luaL_error(L, "%s: group_size must be >= 1 (got %I)", fn, g);
    if (C % g) luaL_error(L, "%s: group_size %I does not divide the %I channels of axis %d", fn, g, (lua_Integer)C, o->axis);
    o->group_size = (size_t)g;
  } else if (mlsh_opt_has(L, t, "group_size")) {
    luaL_error(L, "%s: group_size needs granularity per_grouped_channel", fn);
  }
  o->per_channel_scale = mlsh_opt_bool(L, t, fn, "per_channel_scale", 0);
  o->wdtype = opt_wdtype(L, t, fn, wd_def);
  o->threads = opt_threads(L, t, fn);
  o->force_sort = mlsh_opt_enum(L, t, fn, "distinct", distinct_names, 0) == 1;
}

/* Run the palettizer on a; leaves on the stack (pushed in this order) lut buffer, codes buffer,
 * recon Array, scale Array or nil. */
typedef struct {
  mlsh_pal_info info;
  size_t groups, pcs;
  float *lut;
  uint8_t *codes;
  mlsh_array *recon, *scale;
} pal_run;

static void run_pal(lua_State *L, const char *fn, const mlsh_array *a, const mlsh_pal_opts *o, pal_run *r) {
  int st = mlsh_palettize_check(o, a->n, &r->groups, &r->pcs);
  if (st) cz_error(L, fn, st);
  r->lut = push_buffer(L, r->groups * 256 * sizeof(float));
  r->codes = push_buffer(L, a->n);
  r->recon = push_array(L, a->n, o->rank, o->shape);
  r->scale = NULL;
  if (o->per_channel_scale) {
    int64_t ss[MLSH_CZ_MAX_RANK];
    memcpy(ss, o->shape, sizeof ss);
    ss[o->axis] = 1;
    r->scale = push_array(L, r->pcs, o->rank, ss);
  } else lua_pushnil(L);
  st = mlsh_palettize(a->data, a->n, o, r->lut, r->codes, r->recon->data, r->scale ? r->scale->data : NULL, &r->info);
  if (st) cz_error(L, fn, st);
}

/* Fields shared by palettize and prune_palettize; result table on top. */
static void set_pal_fields(lua_State *L, const mlsh_pal_opts *o, const pal_run *r, int scale_idx) {
  size_t len = (size_t)1 << r->info.nbits;
  int64_t ls[2] = {(int64_t)r->groups, (int64_t)len};
  mlsh_array *lut = push_array(L, r->groups * len, 2, ls);
  memcpy(lut->data, r->lut, r->groups * len * sizeof(float));
  lua_setfield(L, -2, "lut");
  int64_t cs[MLSH_CZ_MAX_RANK + 2];
  for (int i = 0; i < o->rank + 2; i++) cs[i] = 1;
  cs[o->axis] = (int64_t)r->groups;
  cs[o->rank] = (int64_t)len;
  set_shape(L, "lut_shape", cs, o->rank + 2);
  if (r->scale) {
    lua_pushvalue(L, scale_idx);
    lua_setfield(L, -2, "scale");
  }
  set_int(L, "nbits", r->info.nbits);
  set_int(L, "groups", (lua_Integer)r->groups);
  set_int(L, "group_size", (lua_Integer)(o->group_size ? o->group_size : (size_t)o->shape[o->axis]));
  set_int(L, "axis", o->axis);
  set_str(L, "mode", pal_modes[o->mode]);
  lua_pushboolean(L, r->info.exact);
  lua_setfield(L, -2, "exact");
  set_str(L, "weight_dtype", wd_names[o->wdtype]);
}

static size_t pal_bytes(const mlsh_pal_opts *o, const pal_run *r, size_t ncodes) {
  size_t wb = mlsh_wd_bytes(o->wdtype);
  size_t b = (ncodes * r->info.nbits + 7) / 8 + r->groups * ((size_t)1 << r->info.nbits) * wb;
  return b + (r->scale ? r->pcs * wb : 0);
}

static int l_palettize(lua_State *L) {
  const char *fn = "compress.palettize";
  lua_settop(L, 2);
  mlsh_array *a = check_input(L, 1, fn);
  mlsh_pal_opts o;
  parse_pal(L, 2, fn, a, MLSH_WD_FP32, &o);
  pal_run r;
  run_pal(L, fn, a, &o, &r);
  int recon_idx = lua_gettop(L) - 1, scale_idx = lua_gettop(L);
  new_result(L);
  set_pal_fields(L, &o, &r, scale_idx);
  push_packed(L, r.codes, a->n, r.info.nbits, o.threads);
  lua_setfield(L, -2, "indices");
  set_int(L, "ncodes", (lua_Integer)a->n);
  lua_pushvalue(L, recon_idx);
  lua_setfield(L, -2, "reconstructed");
  set_int(L, "nbytes", (lua_Integer)pal_bytes(&o, &r, a->n));
  return 1;
}

/* ---------- quantize ---------- */

static const char *const q_keys[] = {"dtype", "symmetric", "granularity", "axis", "input_axis", "block_size",
                                     "block_sizes", "shape", "weight_dtype", "threads", NULL};
static const char *const q_dtypes[] = {"int8", "uint8", "int4", "uint4", NULL};
static const char *const q_gran[] = {"per_channel", "per_tensor", "per_block", NULL};

static void parse_quant(lua_State *L, int t, const char *fn, const mlsh_array *a, mlsh_wdtype wd_def, mlsh_quant_opts *o) {
  mlsh_opt_keys(L, t, fn, q_keys);
  memset(o, 0, sizeof *o);
  int dt = mlsh_opt_enum(L, t, fn, "dtype", q_dtypes, 0);
  o->nbits = dt < 2 ? 8 : 4;
  o->is_signed = dt == 0 || dt == 2;
  o->symmetric = mlsh_opt_bool(L, t, fn, "symmetric", 1);
  opt_shape(L, t, fn, a, o->shape, &o->rank);
  o->wdtype = opt_wdtype(L, t, fn, wd_def);
  o->threads = opt_threads(L, t, fn);
  int rank = o->rank;
  if (mlsh_opt_get(L, t, "block_sizes") != LUA_TNIL) {
    if (!lua_istable(L, -1)) luaL_error(L, "%s: block_sizes must be a table of integers", fn);
    if (luaL_len(L, -1) != rank) luaL_error(L, "%s: block_sizes needs one entry per axis (%d)", fn, rank);
    for (int i = 0; i < rank; i++) {
      lua_geti(L, -1, i + 1);
      int ok;
      lua_Integer b = lua_tointegerx(L, -1, &ok);
      if (!ok || b < 0) luaL_error(L, "%s: block_sizes[%d] must be a non-negative integer", fn, i + 1);
      o->block[i] = b;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (mlsh_opt_has(L, t, "granularity") || mlsh_opt_has(L, t, "block_size"))
      luaL_error(L, "%s: give either block_sizes or granularity/block_size", fn);
  } else {
    lua_pop(L, 1);
    int g = mlsh_opt_enum(L, t, fn, "granularity", q_gran, 0);
    int axis = norm_axis(L, fn, "axis", mlsh_opt_int(L, t, fn, "axis", 0), rank);
    if (g == 0) o->block[axis] = 1;
    else if (g == 2) {
      if (rank < 2) luaL_error(L, "%s: per_block needs a tensor of rank >= 2", fn);
      lua_Integer defin = axis == 0 ? 1 : axis == rank - 1 ? rank - 2 : -1000;
      lua_Integer in = mlsh_opt_int(L, t, fn, "input_axis", defin);
      if (in == -1000) luaL_error(L, "%s: give input_axis for per_block with axis %d", fn, axis);
      int ia = norm_axis(L, fn, "input_axis", in, rank);
      if (ia == axis) luaL_error(L, "%s: input_axis must differ from axis", fn);
      lua_Integer bs = mlsh_opt_int(L, t, fn, "block_size", 32);
      if (bs < 1) luaL_error(L, "%s: block_size must be >= 1 (got %I)", fn, bs);
      o->block[axis] = 1;
      o->block[ia] = bs;
    }
    if (g != 2 && mlsh_opt_has(L, t, "block_size")) luaL_error(L, "%s: block_size needs granularity per_block", fn);
  }
  for (int i = 0; i < rank; i++)
    if (o->block[i] > 0 && o->shape[i] % o->block[i])
      luaL_error(L, "%s: block size %I does not divide dimension %I of axis %d", fn, (lua_Integer)o->block[i],
                 (lua_Integer)o->shape[i], i);
}

typedef struct {
  mlsh_quant_info info;
  uint8_t *raw;
  mlsh_array *scale, *zp, *recon;
} q_run;

/* Leaves raw buffer, scale Array, zero point Array or nil, recon Array on the stack. */
static void run_quant(lua_State *L, const char *fn, const mlsh_array *a, const mlsh_quant_opts *o, q_run *r) {
  int st = mlsh_quantize_check(o, a->n, &r->info);
  if (st) cz_error(L, fn, st);
  r->raw = push_buffer(L, a->n);
  r->scale = push_array(L, r->info.nscale, o->rank, r->info.scale_shape);
  r->zp = NULL;
  if (r->info.has_zero_point) r->zp = push_array(L, r->info.nscale, o->rank, r->info.scale_shape);
  else lua_pushnil(L);
  r->recon = push_array(L, a->n, o->rank, o->shape);
  st = mlsh_quantize(a->data, a->n, o, r->raw, NULL, r->scale->data, r->zp ? r->zp->data : NULL, r->recon->data,
                     &r->info);
  if (st) cz_error(L, fn, st);
}

static const char *q_dtype_name(const mlsh_quant_opts *o) {
  return o->nbits == 8 ? (o->is_signed ? "int8" : "uint8") : (o->is_signed ? "int4" : "uint4");
}

/* data string from n raw codes; result table on top. */
static void set_quant_data(lua_State *L, const mlsh_quant_opts *o, const uint8_t *raw, size_t n) {
  if (o->nbits == 8) lua_pushlstring(L, (const char *)raw, n);
  else push_packed(L, raw, n, 4, o->threads);
  lua_setfield(L, -2, "data");
  set_int(L, "ncodes", (lua_Integer)n);
}

static void set_quant_fields(lua_State *L, const mlsh_quant_opts *o, const q_run *r, int scale_idx, int zp_idx) {
  lua_pushvalue(L, scale_idx);
  lua_setfield(L, -2, "scale");
  lua_pushvalue(L, zp_idx);
  lua_setfield(L, -2, "zero_point");
  set_str(L, "dtype", q_dtype_name(o));
  lua_pushboolean(L, o->symmetric);
  lua_setfield(L, -2, "symmetric");
  set_int(L, "qmin", r->info.qmin);
  set_int(L, "qmax", r->info.qmax);
  set_shape(L, "block_sizes", o->block, o->rank);
  set_shape(L, "scale_shape", r->info.scale_shape, o->rank);
  set_str(L, "weight_dtype", wd_names[o->wdtype]);
}

static size_t quant_bytes(const mlsh_quant_opts *o, const q_run *r, size_t ncodes) {
  size_t b = (ncodes * o->nbits + 7) / 8 + r->info.nscale * mlsh_wd_bytes(o->wdtype);
  return b + (r->zp ? (r->info.nscale * o->nbits + 7) / 8 : 0);
}

static int l_quantize(lua_State *L) {
  const char *fn = "compress.quantize";
  lua_settop(L, 2);
  mlsh_array *a = check_input(L, 1, fn);
  mlsh_quant_opts o;
  parse_quant(L, 2, fn, a, MLSH_WD_FP32, &o);
  q_run r;
  run_quant(L, fn, a, &o, &r);
  int top = lua_gettop(L);
  new_result(L);
  set_quant_data(L, &o, r.raw, a->n);
  set_quant_fields(L, &o, &r, top - 2, top - 1);
  lua_pushvalue(L, top);
  lua_setfield(L, -2, "reconstructed");
  set_int(L, "nbytes", (lua_Integer)quant_bytes(&o, &r, a->n));
  return 1;
}

/* ---------- prune ---------- */

static const char *const pr_keys[] = {"mode", "sparsity", "threshold", "block_size", "n_m", "dim",
                                      "shape", "weight_dtype", "threads", NULL};
static const char *const pr_modes[] = {"magnitude", "threshold", NULL};

static void parse_prune(lua_State *L, int t, const char *fn, const mlsh_array *a, mlsh_prune_opts *o) {
  mlsh_opt_keys(L, t, fn, pr_keys);
  memset(o, 0, sizeof *o);
  opt_shape(L, t, fn, a, o->shape, &o->rank);
  o->wdtype = opt_wdtype(L, t, fn, MLSH_WD_FP32);
  o->threads = opt_threads(L, t, fn);
  int mode = mlsh_opt_enum(L, t, fn, "mode", pr_modes, 0);
  int has_sp = mlsh_opt_has(L, t, "sparsity"), has_nm = mlsh_opt_has(L, t, "n_m"), has_bs = mlsh_opt_has(L, t, "block_size");
  if (mode == 1) {
    if (has_sp || has_nm || has_bs || mlsh_opt_has(L, t, "dim"))
      luaL_error(L, "%s: mode threshold takes only threshold", fn);
    o->mode = MLSH_PRUNE_THRESHOLD;
    o->threshold = mlsh_opt_num(L, t, fn, "threshold", 1e-12);
    if (o->threshold != o->threshold) luaL_error(L, "%s: threshold is NaN", fn);
    return;
  }
  if (mlsh_opt_has(L, t, "threshold")) luaL_error(L, "%s: threshold needs mode threshold", fn);
  if (has_sp == has_nm) luaL_error(L, "%s: magnitude pruning takes exactly one of sparsity and n_m", fn);
  if (has_nm && has_bs) luaL_error(L, "%s: block_size cannot be combined with n_m", fn);
  if (has_sp) {
    o->sparsity = mlsh_opt_num(L, t, fn, "sparsity", 0);
    if (!(o->sparsity >= 0 && o->sparsity <= 1)) luaL_error(L, "%s: sparsity must be in [0, 1] (got %f)", fn, (lua_Number)o->sparsity);
    o->mode = MLSH_PRUNE_MAGNITUDE;
  }
  if (has_bs) {
    lua_Integer b = mlsh_opt_int(L, t, fn, "block_size", 0);
    if (b < 2) luaL_error(L, "%s: block_size must be an integer > 1 (got %I)", fn, b);
    o->block_size = (size_t)b;
    o->mode = MLSH_PRUNE_BLOCK;
  }
  if (has_nm) {
    mlsh_opt_get(L, t, "n_m");
    if (!lua_istable(L, -1) || luaL_len(L, -1) != 2) luaL_error(L, "%s: n_m must be a table {n, m}", fn);
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    int ok1, ok2;
    lua_Integer n = lua_tointegerx(L, -2, &ok1), m = lua_tointegerx(L, -1, &ok2);
    lua_pop(L, 3);
    if (!ok1 || !ok2 || m < 1 || n < 0 || n > m || m > 1 << 20)
      luaL_error(L, "%s: n_m must be integers with 0 <= n <= m, m >= 1", fn);
    o->n = (unsigned)n;
    o->m = (unsigned)m;
    o->mode = MLSH_PRUNE_NM;
  }
  if (o->mode == MLSH_PRUNE_BLOCK || o->mode == MLSH_PRUNE_NM) {
    lua_Integer d = mlsh_opt_int(L, t, fn, "dim", o->mode == MLSH_PRUNE_NM ? 1 : 0);
    if (d != 0 && d != 1) luaL_error(L, "%s: dim must be 0 or 1 (got %I)", fn, d);
    if (o->rank < 2) luaL_error(L, "%s: structured pruning needs a tensor of rank >= 2", fn);
    o->dim = (int)d;
  } else if (mlsh_opt_has(L, t, "dim")) {
    luaL_error(L, "%s: dim needs block_size or n_m", fn);
  }
}

typedef struct {
  mlsh_prune_info info;
  mlsh_array *dense;
  uint8_t *mask;
  scratch *mask_s; /* the mask's memory: release() it after its last use */
} pr_run;

/* Leaves the dense Array and the mask buffer on the stack. */
static void run_prune(lua_State *L, const char *fn, const mlsh_array *a, const mlsh_prune_opts *o, pr_run *r) {
  int st = mlsh_prune_check(o, a->n);
  if (st == MLSH_CZ_ESKIP) {
    if (o->mode == MLSH_PRUNE_NM)
      luaL_error(L, "%s: m=%d is more than half of the %I channels of dim %d (coremltools skips this tensor)", fn,
                 (int)o->m, (lua_Integer)o->shape[o->dim], o->dim);
    luaL_error(L, "%s: block_size %I is more than half of the %I channels of dim %d (coremltools skips this tensor)",
               fn, (lua_Integer)o->block_size, (lua_Integer)o->shape[o->dim], o->dim);
  }
  if (st) cz_error(L, fn, st);
  r->dense = push_array(L, a->n, o->rank, o->shape);
  r->mask = push_scratch(L, a->n, &r->mask_s);
  st = mlsh_prune(a->data, a->n, o, r->dense->data, r->mask, &r->info);
  if (st) cz_error(L, fn, st);
}

static void set_prune_stats(lua_State *L, const pr_run *r, size_t n);

/* mask, sparsity, nnz, threshold into the table on top (mask_bytes is derived on demand). */
static void set_prune_fields(lua_State *L, const pr_run *r, size_t n, unsigned threads) {
  size_t nb = (n + 7) / 8;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, nb);
  mlsh_pack_mask(r->mask, n, (uint8_t *)p, threads);
  luaL_pushresultsize(&b, nb);
  lua_setfield(L, -2, "mask");
  set_prune_stats(L, r, n);
}

static void set_prune_stats(lua_State *L, const pr_run *r, size_t n) {
  set_num(L, "sparsity", (double)(n - r->info.nnz) / (double)n);
  set_int(L, "nnz", (lua_Integer)r->info.nnz);
  if (r->info.threshold == r->info.threshold) set_num(L, "threshold", r->info.threshold);
}

static int l_prune(lua_State *L) {
  const char *fn = "compress.prune";
  lua_settop(L, 2);
  mlsh_array *a = check_input(L, 1, fn);
  mlsh_prune_opts o;
  parse_prune(L, 2, fn, a, &o);
  pr_run r;
  run_prune(L, fn, a, &o, &r);
  int dense_idx = lua_gettop(L) - 1;
  /* Everything that reads the byte mask first (packing it, gathering the kept values), then the
   * scratch is released and the strings are made, so they can take the freed pages. The kept
   * values go straight to their stored form (nonzero_bytes, in the weight dtype); the `nonzero`
   * Array is made only when read (l_result_index). */
  size_t n = a->n, nb = (n + 7) / 8, nnz = r.info.nnz, esz = mlsh_wd_bytes(o.wdtype);
  mlsh_dtype edt = o.wdtype == MLSH_WD_FP16 ? MLSH_DT_FP16 : MLSH_DT_FP32;
  scratch *packed_s, *kept_s, *enc_s;
  uint8_t *packed = push_scratch(L, nb, &packed_s);
  mlsh_pack_mask(r.mask, n, packed, o.threads);
  float *kept = push_scratch(L, nnz * sizeof(float), &kept_s);
  mlsh_gather_f32(r.dense->data, r.mask, n, kept, o.threads);
  release(r.mask_s);
  void *enc = push_scratch(L, nnz * esz, &enc_s);
  if (mlsh_encode_f32(kept, nnz, edt, enc, nnz * esz) != 0) return luaL_error(L, "%s: cannot encode the kept values", fn);
  release(kept_s);
  new_result(L);
  lua_pushlstring(L, (const char *)packed, nb);
  release(packed_s);
  lua_setfield(L, -2, "mask");
  set_prune_stats(L, &r, n);
  lua_pushlstring(L, (const char *)enc, nnz * esz);
  release(enc_s);
  lua_setfield(L, -2, "nonzero_bytes");
  set_str(L, "nonzero_dtype", mlsh_dtype_name(edt));
  lua_pushvalue(L, dense_idx);
  lua_setfield(L, -2, "reconstructed");
  set_int(L, "nbytes", (lua_Integer)(nb + nnz * esz));
  return 1;
}

/* ---------- joint ---------- */

static int l_prune_palettize(lua_State *L) {
  const char *fn = "compress.prune_palettize";
  lua_settop(L, 3);
  mlsh_array *a = check_input(L, 1, fn);
  mlsh_prune_opts po;
  parse_prune(L, 2, fn, a, &po);
  pr_run pr;
  run_prune(L, fn, a, &po, &pr);
  mlsh_pal_opts o;
  parse_pal(L, 3, fn, pr.dense, po.wdtype, &o);
  pal_run r;
  run_pal(L, fn, pr.dense, &o, &r);
  int recon_idx = lua_gettop(L) - 1, scale_idx = lua_gettop(L);
  mlsh_mask_apply(r.recon->data, pr.mask, a->n, o.threads);
  size_t nnz = pr.info.nnz;
  uint8_t *kept = push_buffer(L, nnz);
  mlsh_gather_u8(r.codes, pr.mask, a->n, kept, o.threads);
  new_result(L);
  set_prune_fields(L, &pr, a->n, po.threads);
  set_pal_fields(L, &o, &r, scale_idx);
  push_packed(L, kept, nnz, r.info.nbits, o.threads);
  lua_setfield(L, -2, "indices");
  set_int(L, "ncodes", (lua_Integer)nnz);
  lua_pushvalue(L, recon_idx);
  lua_setfield(L, -2, "reconstructed");
  set_int(L, "nbytes", (lua_Integer)((a->n + 7) / 8 + pal_bytes(&o, &r, nnz)));
  return 1;
}

static int l_prune_quantize(lua_State *L) {
  const char *fn = "compress.prune_quantize";
  lua_settop(L, 3);
  mlsh_array *a = check_input(L, 1, fn);
  mlsh_prune_opts po;
  parse_prune(L, 2, fn, a, &po);
  pr_run pr;
  run_prune(L, fn, a, &po, &pr);
  mlsh_quant_opts o;
  parse_quant(L, 3, fn, pr.dense, po.wdtype, &o);
  q_run r;
  run_quant(L, fn, pr.dense, &o, &r);
  int top = lua_gettop(L);
  mlsh_mask_apply(r.recon->data, pr.mask, a->n, o.threads);
  size_t nnz = pr.info.nnz;
  uint8_t *kept = push_buffer(L, nnz);
  mlsh_gather_u8(r.raw, pr.mask, a->n, kept, o.threads);
  new_result(L);
  set_prune_fields(L, &pr, a->n, po.threads);
  set_quant_data(L, &o, kept, nnz);
  set_quant_fields(L, &o, &r, top - 2, top - 1);
  lua_pushvalue(L, top);
  lua_setfield(L, -2, "reconstructed");
  set_int(L, "nbytes", (lua_Integer)((a->n + 7) / 8 + quant_bytes(&o, &r, nnz)));
  return 1;
}

/* ---------- metrics, packing, random ---------- */

static void push_metrics(lua_State *L, const mlsh_metrics *m, int signal) {
  lua_createtable(L, 0, 12);
  set_num(L, "snr_db", m->snr_db);
  set_num(L, "psnr_db", m->psnr_db);
  set_num(L, "mse", m->mse);
  set_num(L, "max_abs_err", m->max_abs_err);
  set_num(L, "mean_abs_err", m->mean_abs_err);
  set_num(L, "cosine", m->cosine);
  set_num(L, "sparsity", m->sparsity);
  set_int(L, "n", (lua_Integer)m->n);
  if (signal) set_num(L, "sum_sq", m->sum_sq);
}

static const char *const m_keys[] = {"weight_dtype", "nbytes", "threads", "signal", NULL};

static int l_metrics(lua_State *L) {
  const char *fn = "compress.metrics";
  lua_settop(L, 3);
  mlsh_array *x = check_input(L, 1, fn), *y = check_input(L, 2, fn);
  if (x->n != y->n) return luaL_error(L, "%s: arrays differ in length (%I vs %I)", fn, (lua_Integer)x->n, (lua_Integer)y->n);
  mlsh_opt_keys(L, 3, fn, m_keys);
  unsigned threads = opt_threads(L, 3, fn);
  mlsh_wdtype wd = opt_wdtype(L, 3, fn, MLSH_WD_FP32);
  lua_Integer nb = mlsh_opt_int(L, 3, fn, "nbytes", 0);
  if (mlsh_opt_has(L, 3, "nbytes") && nb <= 0) return luaL_error(L, "%s: nbytes must be a positive integer", fn);
  mlsh_metrics m;
  int signal = mlsh_opt_bool(L, 3, fn, "signal", 0);
  int st = mlsh_metrics_compute(x->data, y->data, x->n, threads, signal, &m);
  if (st) return cz_error(L, fn, st);
  push_metrics(L, &m, signal);
  if (nb > 0) {
    double before = (double)x->n * mlsh_wd_bytes(wd);
    set_num(L, "bytes_before", before);
    set_num(L, "bytes_after", (double)nb);
    set_num(L, "ratio", before / (double)nb);
    set_num(L, "bits_per_weight", 8.0 * (double)nb / (double)x->n);
  }
  return 1;
}

static lua_Integer check_bits(lua_State *L, int idx, const char *fn) {
  lua_Integer b = luaL_checkinteger(L, idx);
  if (b < 1 || b > 8) luaL_error(L, "%s: nbits must be 1..8 (got %I)", fn, b);
  return b;
}

static int l_pack(lua_State *L) {
  const char *fn = "compress.pack";
  unsigned bits = (unsigned)check_bits(L, 2, fn);
  size_t n;
  const uint8_t *codes;
  if (lua_type(L, 1) == LUA_TSTRING) codes = (const uint8_t *)lua_tolstring(L, 1, &n);
  else {
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (size_t)luaL_len(L, 1);
    uint8_t *buf = push_buffer(L, n);
    for (size_t i = 0; i < n; i++) {
      lua_geti(L, 1, (lua_Integer)i + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok || v < 0 || v > 255) luaL_error(L, "%s: code %d is not an integer in 0..255", fn, (int)i + 1);
      buf[i] = (uint8_t)v;
      lua_pop(L, 1);
    }
    codes = buf;
  }
  for (size_t i = 0; i < n; i++)
    if (codes[i] >> bits) luaL_error(L, "%s: code %d (value %d) does not fit in %d bits", fn, (int)i + 1, codes[i], (int)bits);
  push_packed(L, codes, n, bits, 0);
  return 1;
}

static int l_unpack(lua_State *L) {
  const char *fn = "compress.unpack";
  size_t len;
  const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &len);
  unsigned bits = (unsigned)check_bits(L, 2, fn);
  lua_Integer n = luaL_checkinteger(L, 3);
  if (n < 0) luaL_error(L, "%s: negative count", fn);
  if ((size_t)n > (SIZE_MAX - 7) / bits || ((size_t)n * bits + 7) / 8 > len)
    luaL_error(L, "%s: %I bytes cannot hold %I codes of %d bits", fn, (lua_Integer)len, n, (int)bits);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, (size_t)n);
  mlsh_bitunpack(p, (size_t)n, bits, (uint8_t *)out);
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

static const char *const r_keys[] = {"seed", "mean", "std", "weight_dtype", "threads", NULL};

static int l_randn(lua_State *L) {
  const char *fn = "compress.randn";
  lua_settop(L, 2);
  int64_t shape[MLSH_CZ_MAX_RANK];
  int rank;
  if (lua_isinteger(L, 1)) {
    lua_Integer n = lua_tointeger(L, 1);
    if (n < 0) luaL_error(L, "%s: negative length", fn);
    rank = 1;
    shape[0] = n;
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer r = luaL_len(L, 1);
    if (r < 1 || r > MLSH_CZ_MAX_RANK) luaL_error(L, "%s: shape rank must be 1..%d", fn, MLSH_CZ_MAX_RANK);
    for (int i = 0; i < r; i++) {
      lua_geti(L, 1, i + 1);
      int ok;
      lua_Integer d = lua_tointegerx(L, -1, &ok);
      if (!ok || d < 0) luaL_error(L, "%s: shape[%d] must be a non-negative integer", fn, i + 1);
      shape[i] = d;
      lua_pop(L, 1);
    }
    rank = (int)r;
  }
  size_t n = mlsh_shape_count(shape, rank);
  if (n == SIZE_MAX) luaL_error(L, "%s: shape too large", fn);
  mlsh_opt_keys(L, 2, fn, r_keys);
  lua_Integer seed = mlsh_opt_int(L, 2, fn, "seed", 0);
  double mean = mlsh_opt_num(L, 2, fn, "mean", 0), sd = mlsh_opt_num(L, 2, fn, "std", 1);
  mlsh_wdtype wd = opt_wdtype(L, 2, fn, MLSH_WD_FP32);
  unsigned th = opt_threads(L, 2, fn);
  mlsh_array *r = push_array(L, n, rank, shape);
  mlsh_randn(r->data, n, (uint64_t)seed, mean, sd, wd, th);
  return 1;
}

/* ---------- kernels over a weight file's fp16 blob, read in place ----------
 * compress.palettize_blob / quantize_blob / prune_blob(model, file, offset, opts): opts as for
 * the Array functions, with `shape` required (it gives the element count). The blob must hold
 * fp16 values. The same result fields, except that no reconstruction is made: `metrics` holds
 * what compress.metrics(values, reconstructed, {signal = true}) gives, to the bit, and `n` the
 * element count. Returns nil (nothing else) when the settings are not covered here (grouped or
 * scaled palettization, structured pruning, another weight dtype, a blob that is not fp16 or not
 * 2-byte aligned): the caller then decodes the values and calls the Array function. */

typedef struct {
  const uint16_t *h;
  mlsh_array shape; /* n, rank, shape; no data */
} blob_src;

/* Read (model, file, offset) at stack 1..3 and opts.shape at 4; 0 when the blob is fp16 and
 * holds the shape's elements (its pages are prefetched), else -1 (not for this path). */
static int blob_arg(lua_State *L, const char *fn, blob_src *b) {
  mlsh_container *c = mlsh_model_container(L, 1);
  const char *file = luaL_checkstring(L, 2);
  lua_Integer off = luaL_checkinteger(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  if (mlsh_opt_get(L, 4, "shape") != LUA_TTABLE) luaL_error(L, "%s: opts.shape is required", fn);
  lua_pop(L, 1);
  int64_t shape[MLSH_CZ_MAX_RANK];
  lua_getfield(L, 4, "shape");
  lua_Integer r = luaL_len(L, -1);
  if (r < 1 || r > MLSH_CZ_MAX_RANK) luaL_error(L, "%s: shape rank must be 1..%d", fn, MLSH_CZ_MAX_RANK);
  for (int i = 0; i < r; i++) {
    lua_geti(L, -1, i + 1);
    int ok;
    lua_Integer d = lua_tointegerx(L, -1, &ok);
    if (!ok || d < 0) luaL_error(L, "%s: shape[%d] must be a non-negative integer", fn, i + 1);
    shape[i] = d;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  size_t n = mlsh_shape_count(shape, (int)r);
  if (n == SIZE_MAX || n == 0) luaL_error(L, "%s: empty or too large shape", fn);
  memset(b, 0, sizeof *b);
  b->shape.n = n;
  b->shape.rank = (int)r;
  for (int i = 0; i < r; i++) b->shape.shape[i] = shape[i];
  const uint8_t *data;
  size_t flen;
  const char *name;
  mlsh_err e;
  if (off < 0 || mlsh_container_map(c, file, &data, &flen, &name, &e) != 0) return -1;
  mlsh_blob blob;
  if (mlsh_blob_read(data, flen, (uint64_t)off, &blob, name, &e) != 0) return -1;
  if (blob.dtype != MLSH_DT_FP16 || blob.size / 2 < n || ((uintptr_t)blob.data & 1u)) return -1;
  b->h = (const uint16_t *)(const void *)blob.data;
  mlsh_bigbuf_prefetch(blob.data, n * 2);
  return 0;
}

static int l_palettize_blob(lua_State *L) {
  const char *fn = "compress.palettize";
  lua_settop(L, 4);
  blob_src b;
  if (blob_arg(L, fn, &b)) return 0;
  mlsh_pal_opts o;
  parse_pal(L, 4, fn, &b.shape, MLSH_WD_FP16, &o);
  pal_run r;
  memset(&r, 0, sizeof r);
  if (mlsh_palettize_check(&o, b.shape.n, &r.groups, &r.pcs)) return 0;
  if (r.groups != 1 || o.per_channel_scale || o.wdtype != MLSH_WD_FP16 || o.force_sort || b.shape.n >= UINT32_MAX) return 0;
  size_t n = b.shape.n;
  float lut[256];
  scratch *ps;
  uint8_t *packed = push_scratch(L, n, &ps); /* room for 8 bits a code */
  mlsh_metrics m;
  int st = mlsh_palettize_pass(b.h, n, &o, lut, packed, &r.info, &m);
  if (st) cz_error(L, fn, st);
  r.lut = lut;
  new_result(L);
  set_pal_fields(L, &o, &r, 0);
  lua_pushlstring(L, (const char *)packed, (n * r.info.nbits + 7) / 8);
  release(ps);
  lua_setfield(L, -2, "indices");
  set_int(L, "ncodes", (lua_Integer)n);
  set_int(L, "n", (lua_Integer)n);
  set_int(L, "nbytes", (lua_Integer)pal_bytes(&o, &r, n));
  push_metrics(L, &m, 1);
  lua_setfield(L, -2, "metrics");
  return 1;
}

static int l_quantize_blob(lua_State *L) {
  const char *fn = "compress.quantize";
  lua_settop(L, 4);
  blob_src b;
  if (blob_arg(L, fn, &b)) return 0;
  mlsh_quant_opts o;
  parse_quant(L, 4, fn, &b.shape, MLSH_WD_FP16, &o);
  if (o.wdtype != MLSH_WD_FP16) return 0;
  size_t n = b.shape.n;
  q_run r;
  memset(&r, 0, sizeof r);
  int st = mlsh_quantize_check(&o, n, &r.info);
  if (st) cz_error(L, fn, st);
  int top = lua_gettop(L);
  r.scale = push_array(L, r.info.nscale, o.rank, r.info.scale_shape);
  if (r.info.has_zero_point) r.zp = push_array(L, r.info.nscale, o.rank, r.info.scale_shape);
  else lua_pushnil(L);
  size_t nb = (n * o.nbits + 7) / 8;
  scratch *ps;
  uint8_t *packed = push_scratch(L, nb, &ps);
  mlsh_metrics m;
  mlsh_cz_src src = {NULL, b.h};
  st = mlsh_quantize_pass(&src, n, &o, packed, r.scale->data, r.zp ? r.zp->data : NULL, &r.info, &m);
  if (st) cz_error(L, fn, st);
  new_result(L);
  lua_pushlstring(L, (const char *)packed, nb);
  release(ps);
  lua_setfield(L, -2, "data");
  set_int(L, "ncodes", (lua_Integer)n);
  set_quant_fields(L, &o, &r, top + 1, top + 2);
  set_int(L, "n", (lua_Integer)n);
  set_int(L, "nbytes", (lua_Integer)quant_bytes(&o, &r, n));
  push_metrics(L, &m, 1);
  lua_setfield(L, -2, "metrics");
  return 1;
}

static int l_prune_blob(lua_State *L) {
  const char *fn = "compress.prune";
  lua_settop(L, 4);
  blob_src b;
  if (blob_arg(L, fn, &b)) return 0;
  mlsh_prune_opts o;
  parse_prune(L, 4, fn, &b.shape, &o);
  o.wdtype = opt_wdtype(L, 4, fn, MLSH_WD_FP16);
  if ((o.mode != MLSH_PRUNE_MAGNITUDE && o.mode != MLSH_PRUNE_THRESHOLD) || o.wdtype != MLSH_WD_FP16 || b.shape.n >= UINT32_MAX)
    return 0;
  int st = mlsh_prune_check(&o, b.shape.n);
  if (st) cz_error(L, fn, st);
  size_t n = b.shape.n, nb = (n + 7) / 8;
  scratch *ms, *ks;
  uint8_t *mask = push_scratch(L, nb, &ms);
  uint16_t *kept = push_scratch(L, n * 2, &ks);
  pr_run r;
  memset(&r, 0, sizeof r);
  mlsh_metrics m;
  st = mlsh_prune_pass(b.h, n, &o, mask, kept, &r.info, &m);
  if (st) cz_error(L, fn, st);
  new_result(L);
  lua_pushlstring(L, (const char *)mask, nb);
  release(ms);
  lua_setfield(L, -2, "mask");
  set_prune_stats(L, &r, n);
  lua_pushlstring(L, (const char *)kept, r.info.nnz * 2);
  release(ks);
  lua_setfield(L, -2, "nonzero_bytes");
  set_str(L, "nonzero_dtype", "fp16");
  set_int(L, "n", (lua_Integer)n);
  set_int(L, "nbytes", (lua_Integer)(nb + r.info.nnz * 2));
  push_metrics(L, &m, 1);
  lua_setfield(L, -2, "metrics");
  return 1;
}

static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
  return 1;
}

/* compress.reserve(bytes): mlsh_bigbuf_reserve (huge pages for what a model pass will allocate). */
static int l_reserve(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "negative size");
  lua_pushboolean(L, mlsh_bigbuf_reserve((size_t)n) == 0);
  return 1;
}

static int l_threads(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mlsh_threads_default());
  return 1;
}

static const luaL_Reg funcs[] = {
  {"palettize", l_palettize}, {"quantize", l_quantize}, {"prune", l_prune},
  {"prune_palettize", l_prune_palettize}, {"prune_quantize", l_prune_quantize},
  {"metrics", l_metrics}, {"pack", l_pack}, {"unpack", l_unpack}, {"randn", l_randn},
  {"palettize_blob", l_palettize_blob}, {"quantize_blob", l_quantize_blob}, {"prune_blob", l_prune_blob},
  {"threads", l_threads}, {"clock", l_clock}, {"reserve", l_reserve}, {NULL, NULL}};

int luaopen_mlsh_core_compress(lua_State *L) {
  mlsh_bigbuf_keep(); /* tensor after tensor: a freed weight's pages serve the next (bigbuf.h) */
  if (luaL_newmetatable(L, SCRATCH_MT)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, RESULT_MT)) {
    lua_pushcfunction(L, l_result_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
