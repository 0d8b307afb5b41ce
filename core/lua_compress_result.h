/* lua_compress_result.h — part of lua_compress.c (included there only): the Result type and
 * what the Array kernels (lua_compress.c) and the blob kernels (lua_compress_blob.h) both use.
 * - RESULT_MT "mlsh.compress.Result": result tables; its __index (l_result_index) makes the
 *   unpacked views `codes`, `mask_bytes` and `nonzero` from the packed fields on first access
 *   and caches them (luaopen_mlsh_core_compress registers it). new_result pushes an empty one.
 * - parse_pal / parse_quant / parse_prune: an options table -> the kernel's opts (unknown names
 *   and bad values raise "FN: reason"); pal_run / q_run / pr_run: what one kernel run produced.
 * - set_pal_fields / set_quant_fields / set_prune_stats / push_metrics: the result fields each
 *   kind shares, set into the table on top of the stack; pal_bytes / quant_bytes: the stored size.
 * The parts of the compress binding are headers, not .c files, because the Makefile makes a Lua
 * module (luaopen_mlsh_core_<name>) of every core/lua_*.c; so everything here is static. */
#ifndef MLSH_LUA_COMPRESS_RESULT_H
#define MLSH_LUA_COMPRESS_RESULT_H
#include "compress/metrics.h"
#include "compress/pack.h"
#include "compress/palettize.h"
#include "compress/prune.h"
#include "compress/quantize.h"
#include "dtype.h"
#include "lua_array.h"
#include "lua_compress_args.h"
#include "lua_opts.h"
#include "lua_outbuf.h"
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

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

/* ---------- palettize: options, run, fields ---------- */

static const char *const pal_keys[] = {"nbits", "mode", "granularity", "group_size", "axis", "per_channel_scale",
                                       "shape", "weight_dtype", "threads", "distinct", "metrics", NULL};
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

/* One palettizer run: its info, the group counts, the LUT, codes, reconstruction and scale. */
typedef struct {
  mlsh_pal_info info;
  size_t groups, pcs;
  float *lut;
  uint8_t *codes;
  mlsh_array *recon, *scale;
} pal_run;

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

/* ---------- quantize: options, run, fields ---------- */

static const char *const q_keys[] = {"dtype", "symmetric", "granularity", "axis", "input_axis", "block_size",
                                     "block_sizes", "shape", "weight_dtype", "threads", "metrics", NULL};
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

/* One quantizer run: its info, the raw codes, scale, zero point and reconstruction. */
typedef struct {
  mlsh_quant_info info;
  uint8_t *raw;
  mlsh_array *scale, *zp, *recon;
} q_run;

static const char *q_dtype_name(const mlsh_quant_opts *o) {
  return o->nbits == 8 ? (o->is_signed ? "int8" : "uint8") : (o->is_signed ? "int4" : "uint4");
}

/* scale, zero_point and the quantizer's settings; result table on top. */
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

/* ---------- prune: options, run, fields ---------- */

static const char *const pr_keys[] = {"mode", "sparsity", "threshold", "block_size", "n_m", "dim",
                                      "shape", "weight_dtype", "threads", "metrics", NULL};
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

/* One pruning run: its info, the dense pruned Array and the byte mask (in scratch memory). */
typedef struct {
  mlsh_prune_info info;
  mlsh_array *dense;
  uint8_t *mask;
  scratch *mask_s; /* the mask's memory: release() it after its last use */
} pr_run;

/* sparsity, nnz, threshold into the table on top. */
static void set_prune_stats(lua_State *L, const pr_run *r, size_t n) {
  set_num(L, "sparsity", (double)(n - r->info.nnz) / (double)n);
  set_int(L, "nnz", (lua_Integer)r->info.nnz);
  if (r->info.threshold == r->info.threshold) set_num(L, "threshold", r->info.threshold);
}

/* ---------- metrics ---------- */

/* The metrics table of m (sum_sq too when signal is set) pushed on the stack; `signal` (sum x^2
 * as the SNR sums it) always. */
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
  set_num(L, "signal", m->signal);
  if (signal) set_num(L, "sum_sq", m->sum_sq);
}

#endif
