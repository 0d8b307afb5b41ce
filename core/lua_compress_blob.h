/* lua_compress_blob.h — part of lua_compress.c (included there only, after
 * lua_compress_result.h): the kernels over a weight file's fp16 blob, read in place.
 * The parts of the compress binding are headers, not .c files, because the Makefile makes a Lua
 * module (luaopen_mlsh_core_<name>) of every core/lua_*.c; so everything here is static, and the
 * functions are registered by lua_compress.c's funcs table.
 *
 * compress.palettize_blob / quantize_blob / prune_blob(model, file, offset, opts): opts as for
 * the Array functions, with `shape` required (it gives the element count). The blob must hold
 * fp16 values. The same result fields, except that no reconstruction is made: `metrics` holds
 * what compress.metrics(values, reconstructed) gives, to the bit (absent with
 * opts.metrics == false: nothing is summed, the other fields are the same), and `n` the
 * element count. Returns nil (nothing else) when the settings are not covered here (grouped or
 * scaled palettization, structured pruning, another weight dtype, a blob that is not fp16 or not
 * 2-byte aligned): the caller then decodes the values and calls the Array function. `mapped`
 * is true when the blob was read through the file mapping (a zipped package) rather than with
 * pread. */
#ifndef MLSH_LUA_COMPRESS_BLOB_H
#define MLSH_LUA_COMPRESS_BLOB_H
#include "compress/metrics.h"
#include "compress/palettize.h"
#include "compress/prune.h"
#include "compress/quantize.h"
#include "compress/threads.h"
#include "container.h"
#include "bigbuf.h"
#include "blobfile.h"
#include "lua_compress_args.h"
#include "lua_compress_result.h"
#include "lua_model.h"
#include "lua_outbuf.h"
#include <lauxlib.h>
#include <lua.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const uint16_t *h;
  mlsh_array shape; /* n, rank, shape; no data */
  scratch *stage;   /* h's memory when the blob was read into it (release() after the kernel) */
  mlsh_container *c;
  const uint8_t *data; /* the blob's elements in the file mapping */
} blob_src;

/* Reading a blob into memory: parts of STAGE_PART bytes, read by the kernel's threads. */
#define STAGE_PART ((size_t)1 << 20)
typedef struct {
  mlsh_container *c;
  const uint8_t *from;
  uint8_t *to;
  size_t len;
  atomic_int failed;
} stage_ctx;

static void stage_task(void *p, size_t t, unsigned w) {
  (void)w;
  stage_ctx *s = p;
  size_t off = t * STAGE_PART, len = s->len - off < STAGE_PART ? s->len - off : STAGE_PART;
  if (mlsh_container_read(s->c, s->from + off, len, s->to + off) != 0) atomic_store(&s->failed, 1);
}

/* push_scratch for a large buffer: whole 2 MiB pages (aligned, hinted), so a blob's buffer takes
 * a few huge-page faults, and the next blob's reuses the same pages (the heap keeps them). */
#define STAGE_PAGE ((size_t)2 << 20)
static void *push_scratch_pages(lua_State *L, size_t n, scratch **out) {
  if (n < 2 * STAGE_PAGE) return push_scratch(L, n, out);
  scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->p = NULL;
  luaL_setmetatable(L, SCRATCH_MT);
  size_t sz = (n + STAGE_PAGE - 1) / STAGE_PAGE * STAGE_PAGE;
  if (posix_memalign(&s->p, STAGE_PAGE, sz) != 0) {
    s->p = NULL;
    luaL_error(L, "not enough memory");
  }
  mlsh_bigbuf_hint(s->p, sz);
  *out = s;
  return s->p;
}

/* The blob's bytes [data, data + nb) into scratch memory pushed on the stack: read from the file
 * (pread, on the kernel's threads), so no page of the file mapping is touched. NULL (nothing
 * pushed) when the blob is not in a file of its own. */
static const uint16_t *stage_blob(lua_State *L, mlsh_container *c, const uint8_t *data, size_t nb, unsigned threads,
                                  scratch **out) {
  uint8_t probe;
  if (mlsh_container_read(c, data, 1, &probe) != 0) return NULL; /* zip entries, in-memory trees */
  scratch *ss;
  uint8_t *to = push_scratch_pages(L, nb, &ss);
  stage_ctx s = {c, data, to, nb, 0};
  mlsh_parallel_for(threads, (nb + STAGE_PART - 1) / STAGE_PART, stage_task, &s);
  if (atomic_load(&s.failed)) {
    release(ss);
    lua_pop(L, 1);
    return NULL;
  }
  *out = ss;
  return (const uint16_t *)(const void *)to;
}

/* b->h: the blob's elements read into scratch memory (b->stage, pushed on the stack) when the
 * blob lies in a file; else in place (the pages prefetched). */
static void blob_load(lua_State *L, const char *fn, blob_src *b) {
  const uint16_t *staged =
      stage_blob(L, b->c, b->data, b->shape.n * 2, mlsh_threads_clamp(opt_threads(L, 4, fn)), &b->stage);
  if (staged) b->h = staged;
  else {
    b->h = (const uint16_t *)(const void *)b->data;
    mlsh_bigbuf_prefetch(b->data, b->shape.n * 2);
  }
}

/* Read (model, file, offset) at stack 1..3 and opts.shape at 4; 0 when the blob is fp16 and
 * holds the shape's elements, else -1 (not for this path). With `load`, blob_load too. */
static int blob_arg(lua_State *L, const char *fn, blob_src *b, int load) {
  mlsh_container *c = mlsh_model_container(L, 1);
  const char *file = luaL_checkstring(L, 2);
  lua_Integer off = luaL_checkinteger(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  if (mlsh_opt_get(L, 4, "shape") != LUA_TTABLE) luaL_error(L, "%s: opts.shape is required", fn);
  int64_t shape[MLSH_CZ_MAX_RANK];
  lua_Integer r = shape_table(L, fn, shape);
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
  b->c = c;
  b->data = blob.data;
  if (load) blob_load(L, fn, b);
  return 0;
}

/* result.mapped = true when the kernel read the blob through the file mapping (its pages are
 * resident: the caller may drop them), at the result table on top. */
static void set_mapped(lua_State *L, int mapped) {
  if (!mapped) return;
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "mapped");
}

/* A pass's reader of the blob's elements straight from its file (mlsh_mx_reader). */
static int blob_read(void *rctx, size_t i, size_t n, uint16_t *dst) {
  const blob_src *b = rctx;
  return mlsh_container_read(b->c, b->data + 2 * i, 2 * n, dst);
}

/* opts.metrics == false: the caller reports no metrics, so the pass sums none (same outputs). */
static int want_metrics(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return 1;
  int t = lua_getfield(L, idx, "metrics");
  int want = t == LUA_TNIL || lua_toboolean(L, -1);
  lua_pop(L, 1);
  return want;
}

static int l_palettize_blob(lua_State *L) {
  const char *fn = "compress.palettize";
  lua_settop(L, 4);
  blob_src b;
  if (blob_arg(L, fn, &b, 1)) return 0;
  mlsh_pal_opts o;
  parse_pal(L, 4, fn, &b.shape, MLSH_WD_FP16, &o);
  pal_run r;
  memset(&r, 0, sizeof r);
  if (mlsh_palettize_check(&o, b.shape.n, &r.groups, &r.pcs)) return 0;
  if (r.groups != 1 || o.per_channel_scale || o.wdtype != MLSH_WD_FP16 || o.force_sort || b.shape.n >= UINT32_MAX) return 0;
  size_t n = b.shape.n;
  float lut[256];
  scratch *ps;
  uint8_t *packed = push_scratch_pages(L, n, &ps); /* room for 8 bits a code */
  mlsh_metrics m, *mp = want_metrics(L, 4) ? &m : NULL;
  int st = mlsh_palettize_pass(b.h, n, &o, lut, packed, &r.info, mp);
  if (b.stage) release(b.stage);
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
  set_mapped(L, !b.stage);
  if (mp) {
    push_metrics(L, &m, 0);
    lua_setfield(L, -2, "metrics");
  }
  return 1;
}

static int l_quantize_blob(lua_State *L) {
  const char *fn = "compress.quantize";
  lua_settop(L, 4);
  blob_src b;
  if (blob_arg(L, fn, &b, 0)) return 0;
  mlsh_quant_opts o;
  parse_quant(L, 4, fn, &b.shape, MLSH_WD_FP16, &o);
  if (o.wdtype != MLSH_WD_FP16) return 0;
  size_t n = b.shape.n;
  q_run r;
  memset(&r, 0, sizeof r);
  int st = mlsh_quantize_check(&o, n, &r.info);
  if (st) cz_error(L, fn, st);
  /* parameters made span by span: each pass task reads its span from the file; else all of it */
  uint8_t probe;
  mlsh_mx_reader rd = {blob_read, &b}, *rdp = NULL;
  if (mlsh_quantize_spans(&o, n) && mlsh_container_read(b.c, b.data, 1, &probe) == 0) rdp = &rd;
  else blob_load(L, fn, &b);
  int top = lua_gettop(L);
  r.scale = push_array(L, r.info.nscale, o.rank, r.info.scale_shape);
  if (r.info.has_zero_point) r.zp = push_array(L, r.info.nscale, o.rank, r.info.scale_shape);
  else lua_pushnil(L);
  size_t nb = (n * o.nbits + 7) / 8;
  scratch *ps;
  uint8_t *packed = push_scratch_pages(L, nb, &ps);
  mlsh_metrics m, *mp = want_metrics(L, 4) ? &m : NULL;
  mlsh_cz_src src = {NULL, b.h};
  st = mlsh_quantize_pass(&src, rdp, n, &o, packed, r.scale->data, r.zp ? r.zp->data : NULL, &r.info, mp);
  if (b.stage) release(b.stage);
  if (st) cz_error(L, fn, st);
  new_result(L);
  lua_pushlstring(L, (const char *)packed, nb);
  release(ps);
  lua_setfield(L, -2, "data");
  set_int(L, "ncodes", (lua_Integer)n);
  set_quant_fields(L, &o, &r, top + 1, top + 2);
  set_int(L, "n", (lua_Integer)n);
  set_int(L, "nbytes", (lua_Integer)quant_bytes(&o, &r, n));
  set_mapped(L, !b.stage && !rdp);
  if (mp) {
    push_metrics(L, &m, 0);
    lua_setfield(L, -2, "metrics");
  }
  return 1;
}

static int l_prune_blob(lua_State *L) {
  const char *fn = "compress.prune";
  lua_settop(L, 4);
  blob_src b;
  if (blob_arg(L, fn, &b, 1)) return 0;
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
  mlsh_metrics m, *mp = want_metrics(L, 4) ? &m : NULL;
  st = mlsh_prune_pass(b.h, n, &o, mask, kept, &r.info, mp);
  if (b.stage) release(b.stage);
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
  set_mapped(L, !b.stage);
  if (mp) {
    push_metrics(L, &m, 0);
    lua_setfield(L, -2, "metrics");
  }
  return 1;
}

#endif
