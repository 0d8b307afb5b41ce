/* lua_compress.c — Lua binding of the compression kernels: require("mlsh.core").compress.
 * Arrays are mlsh.Array (float32; a Lua table of numbers is accepted too). Axes are 0-based and
 * may be negative, as in coremltools. `shape` defaults to the array's own shape. Every function
 * takes `weight_dtype` = "fp32" (default) | "fp16": the dtype the weight is stored in; values
 * are rounded to it and all arithmetic rounds like numpy in it (bit-exact with coremltools).
 * `threads` (default: online CPUs or $MLSH_THREADS) never changes a result. Bad arguments and
 * unknown option names raise errors (`metrics`, read by the *_blob functions, is accepted and
 * ignored by the Array ones). In result tables, `codes` and `mask_bytes` are unpacked
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
 *   -> {snr_db, psnr_db, mse, max_abs_err, mean_abs_err, cosine, sparsity, n, signal
 *       (sum x^2 as snr_db sums it: per 64K chunk in element order, chunks in order)
 *       [, bytes_before, bytes_after, ratio, bits_per_weight when nbytes is given]
 *       [, sum_sq when signal: original:stats().sum_sq, summed beside the error terms]}
 * compress.pack(codes, nbits) -> string ; compress.unpack(bytes, nbits, n) -> string of codes
 *   (codes: a string with one byte per code, or a table of integers).
 * compress.randn(n | shape, {seed=0, mean=0, std=1, weight_dtype, threads}) -> Array
 * compress.threads() -> the default thread count.
 * compress.prefault(n) -> handle (h:wait()) or nil: the next n bytes of the heap faulted in on a
 *   thread of its own (bigbuf.h mlsh_bigbuf_prefault).
 * compress.reserve(bytes) -> true | false: huge-page-hinted heap for a model pass (bigbuf.h).
 * compress.clock() -> monotonic wall-clock seconds (for timing; os.clock counts CPU time).
 * compress.portable(on) -> the previous setting: with on true, every kernel takes its portable
 *   code instead of the x86 vector paths (the same bits; for tests and timing), process-wide.
 *
 * This file: the module (funcs, luaopen) and the kernels over Arrays. Its parts, headers
 * included here only (the Makefile makes a module of every core/lua_*.c, so they are not .c files):
 * lua_compress_result.h (the Result type, option parsers, result fields both kinds of kernel set)
 * and lua_compress_blob.h (compress.*_blob, the kernels over a weight file's fp16 blob). */
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
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua_opts.h"
#include "lua_outbuf.h"
#include "lua_compress_args.h"
#include "lua_compress_result.h" /* the Result type, option parsers and shared result fields */
#include "lua_compress_blob.h"   /* compress.*_blob: the kernels over a weight file's fp16 blob */

static void push_packed(lua_State *L, const uint8_t *codes, size_t n, unsigned bits, unsigned threads) {
  size_t nb = (n * bits + 7) / 8;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, nb);
  mlsh_pack_codes(codes, n, bits, (uint8_t *)p, threads);
  luaL_pushresultsize(&b, nb);
}

/* ---------- palettize ---------- */

/* Run the palettizer on a; leaves on the stack (pushed in this order) lut buffer, codes buffer,
 * recon Array, scale Array or nil. */
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

/* data string from n raw codes; result table on top. */
static void set_quant_data(lua_State *L, const mlsh_quant_opts *o, const uint8_t *raw, size_t n) {
  if (o->nbits == 8) lua_pushlstring(L, (const char *)raw, n);
  else push_packed(L, raw, n, 4, o->threads);
  lua_setfield(L, -2, "data");
  set_int(L, "ncodes", (lua_Integer)n);
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

/* compress.prefault(n) -> handle (wait() joins; the GC does too) or nil: bigbuf.h. */
#define PREFAULT_MT "mlsh.compress.Prefault"
static int l_prefault_wait(lua_State *L) {
  mlsh_prefault **h = luaL_checkudata(L, 1, PREFAULT_MT);
  mlsh_bigbuf_prefault_wait(*h);
  *h = NULL;
  return 0;
}

static int l_prefault(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "negative size");
  mlsh_prefault **h = lua_newuserdatauv(L, sizeof *h, 0);
  *h = NULL;
  luaL_setmetatable(L, PREFAULT_MT);
  *h = mlsh_bigbuf_prefault((size_t)n);
  if (!*h) lua_pushnil(L);
  return 1;
}

static int l_threads(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mlsh_threads_default());
  return 1;
}

static int l_portable(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, mlsh_cpu_portable(lua_toboolean(L, 1)));
  return 1;
}

static const luaL_Reg funcs[] = {
  {"palettize", l_palettize}, {"quantize", l_quantize}, {"prune", l_prune},
  {"prune_palettize", l_prune_palettize}, {"prune_quantize", l_prune_quantize},
  {"metrics", l_metrics}, {"pack", l_pack}, {"unpack", l_unpack}, {"randn", l_randn},
  {"palettize_blob", l_palettize_blob}, {"quantize_blob", l_quantize_blob}, {"prune_blob", l_prune_blob},
  {"threads", l_threads}, {"clock", l_clock}, {"reserve", l_reserve},
  {"prefault", l_prefault}, {"portable", l_portable}, {NULL, NULL}};

int luaopen_mlsh_core_compress(lua_State *L) {
  mlsh_bigbuf_keep(); /* tensor after tensor: a freed weight's pages serve the next (bigbuf.h) */
  if (luaL_newmetatable(L, SCRATCH_MT)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, PREFAULT_MT)) {
    lua_pushcfunction(L, l_prefault_wait);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_prefault_wait);
    lua_setfield(L, -2, "wait");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
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
