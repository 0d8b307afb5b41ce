/* lua_interp.c — binding for the ML program interpreter (core/interp/).
 * Lua:
 *   core.interp.load(model, spec, {fn=, precision="model"|"fp32"|"fp16"}) -> Program | nil, err
 *   p:check(model_name) -> nil | "M: op NAME (type T, function F) is not supported by the interpreter"
 *   p:inputs() / p:outputs() -> {{name=, dtype=, shape={...(-1 unknown)}, state=bool}...}
 *   p:function_name()
 *   p:run({name = Tensor}, {trace = dir, keep = bool}) -> {name = Tensor}, info | nil, err
 *      (keep: every op's outputs stay in info.trace[i].outputs[j].tensor instead of files)
 *      info = {seconds, nonfinite = {op, type}?, fp16_overflow = {op, type}?, states = {name = Tensor},
 *              trace = {{op, type, outputs = {{name, file, shape, dtype, stats}}}}}
 *   core.interp.npy_load(path) -> Tensor | nil, err ; core.interp.npy_parse(bytes, name)
 *   core.interp.tensor(Array | {numbers}, dtype, shape) ; core.interp.random(dtype, shape, seed)
 *   core.interp.image(Tensor HWC uint8, colorspace "RGB"|"BGR"|"GRAYSCALE") -> Tensor fp32 [1,C,H,W]
 *   core.interp.png_load(path, channels 1|3|nil) -> Tensor uint8 [H,W,C] | nil, err (core/pngdl.c)
 *   core.interp.ops() -> sorted list of supported op types ; core.interp.set_budget(bytes)
 *   core.interp.nn_layers() -> sorted list of supported NeuralNetwork layer types
 *   (load also takes NeuralNetwork, tree ensemble and GLM models: core/interp/nn_program.c, classic.c)
 *   Tensor: t:shape() t:dtype() t:stats() t:save(path) t:npy() (bytes) t:array() (mlsh.Array) #t
 *   t:labels() (values as a Lua list; a classifier's string labels) */
#include "interp/exec.h"
#include "interp/nn_lower.h"
#include "interp/npy.h"
#include "interp/ops.h"
#include "lua_array.h"
#include "lua_model.h"
#include "lua_proto.h"
#include "fsutil.h"
#include "pngdl.h"
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG_MT "mlsh.Program"
#define TENSOR_MT "mlsh.Tensor"

typedef struct { it_program *p; } lprog;
typedef struct { it_tensor *t; } ltensor;

static void push_tensor(lua_State *L, it_tensor *t) { /* takes the reference */
  ltensor *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->t = t;
  luaL_setmetatable(L, TENSOR_MT);
}

static it_tensor *check_tensor(lua_State *L, int idx) {
  ltensor *u = luaL_checkudata(L, idx, TENSOR_MT);
  if (!u->t) luaL_error(L, "tensor is freed");
  return u->t;
}

static int push_err(lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

static void push_type(lua_State *L, const char *name, const it_type *t) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, t->dt == MLSH_DT_INVALID ? "unknown" : mlsh_dtype_name(t->dt));
  lua_setfield(L, -2, "dtype");
  lua_createtable(L, t->rank > 0 ? t->rank : 0, 0);
  for (int i = 0; i < t->rank; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "shape");
  lua_pushboolean(L, t->is_state);
  lua_setfield(L, -2, "state");
}

static int l_load(lua_State *L) {
  mlsh_container *c = mlsh_model_container(L, 1);
  const CoreML__Specification__Model *m = (const void *)mlsh_proto_check(L, 2, &core_ml__specification__model__descriptor);
  const char *fn = NULL, *prec = "model";
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "fn");
    fn = lua_tostring(L, -1);
    lua_getfield(L, 3, "precision");
    if (lua_isstring(L, -1)) prec = lua_tostring(L, -1);
    lua_pop(L, 2);
  }
  it_precision pr = strcmp(prec, "fp32") == 0 ? IT_PREC_FP32 : strcmp(prec, "fp16") == 0 ? IT_PREC_FP16 : IT_PREC_MODEL;
  if (pr == IT_PREC_MODEL && strcmp(prec, "model") != 0) return push_err(L, "precision must be model, fp32 or fp16");
  lprog *u = lua_newuserdatauv(L, sizeof *u, 2);
  u->p = NULL;
  luaL_setmetatable(L, PROG_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* keep the model (mapped weights) alive */
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2); /* and the spec the program points into */
  mlsh_err e;
  if (it_program_load(m, c, fn, pr, &u->p, &e) != 0) return push_err(L, e.msg);
  return 1;
}

static lprog *check_prog(lua_State *L) {
  lprog *u = luaL_checkudata(L, 1, PROG_MT);
  if (!u->p) luaL_error(L, "program is freed");
  return u;
}

static int l_check(lua_State *L) {
  lprog *u = check_prog(L);
  mlsh_err e;
  if (it_program_check_ops(u->p, luaL_checkstring(L, 2), &e) == 0) return 0;
  lua_pushstring(L, e.msg);
  return 1;
}

static int l_io(lua_State *L, int out) {
  lprog *u = check_prog(L);
  int n = out ? u->p->nout : u->p->nin;
  const it_io *io = out ? u->p->outputs : u->p->inputs;
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    push_type(L, io[i].name, &io[i].type);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}
static int l_inputs(lua_State *L) { return l_io(L, 0); }
static int l_outputs(lua_State *L) { return l_io(L, 1); }
static int l_fname(lua_State *L) { lua_pushstring(L, check_prog(L)->p->function); return 1; }

static void push_stats(lua_State *L, const it_tensor *t) {
  double mn = INFINITY, mx = -INFINITY, s = 0, ss = 0;
  size_t nan = 0, inf = 0, cnt = 0;
  for (size_t i = 0; i < t->n && t->st != IT_STR; i++) {
    double v = it_get_d(t, i);
    if (v != v) { nan++; continue; }
    if (isinf(v)) { inf++; continue; }
    if (v < mn) mn = v;
    if (v > mx) mx = v;
    s += v;
    ss += v * v;
    cnt++;
  }
  double mean = cnt ? s / (double)cnt : 0, var = cnt ? ss / (double)cnt - mean * mean : 0;
  lua_createtable(L, 0, 6);
  lua_pushnumber(L, cnt ? mn : 0); lua_setfield(L, -2, "min");
  lua_pushnumber(L, cnt ? mx : 0); lua_setfield(L, -2, "max");
  lua_pushnumber(L, mean); lua_setfield(L, -2, "mean");
  lua_pushnumber(L, var > 0 ? sqrt(var) : 0); lua_setfield(L, -2, "std");
  lua_pushinteger(L, (lua_Integer)nan); lua_setfield(L, -2, "nan");
  lua_pushinteger(L, (lua_Integer)inf); lua_setfield(L, -2, "inf");
}

typedef struct {
  lua_State *L;
  const char *dir;
  int keep; /* keep each op's outputs as Tensors (field tensor) instead of writing files */
  int tab;
  int count;
  int failed;
  char err[1100];
} tracer;

static void observe(void *ud, const it_op *op, it_tensor *const *outs) {
  tracer *tr = ud;
  lua_State *L = tr->L;
  if (tr->failed) return;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, op->name); lua_setfield(L, -2, "op");
  lua_pushstring(L, op->type); lua_setfield(L, -2, "type");
  lua_createtable(L, op->nout, 0);
  for (int i = 0; i < op->nout; i++) {
    it_tensor *t = outs[i];
    lua_createtable(L, 0, 5);
    lua_pushstring(L, op->out_slots ? "" : ""); lua_pop(L, 1);
    if (t && t->st != IT_STR && tr->keep) {
      push_tensor(L, it_ref(t));
      lua_setfield(L, -2, "tensor");
    } else if (t && t->st != IT_STR) {
      char file[300], path[4096];
      snprintf(file, sizeof file, "%04d_%d.npy", tr->count, i);
      snprintf(path, sizeof path, "%s/%s", tr->dir, file);
      mlsh_err e;
      if (it_npy_write(path, t, &e) != 0) { tr->failed = 1; snprintf(tr->err, sizeof tr->err, "%s", e.msg); }
      lua_pushstring(L, file); lua_setfield(L, -2, "file");
      lua_pushstring(L, mlsh_dtype_name(t->dt)); lua_setfield(L, -2, "dtype");
      lua_createtable(L, t->rank, 0);
      for (int d = 0; d < t->rank; d++) { lua_pushinteger(L, t->shape[d]); lua_rawseti(L, -2, d + 1); }
      lua_setfield(L, -2, "shape");
      push_stats(L, t);
      lua_setfield(L, -2, "stats");
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "outputs");
  lua_rawseti(L, tr->tab, ++tr->count);
}

static void push_first(lua_State *L, const it_first *f, const char *key) {
  if (!f->found) return;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, f->op); lua_setfield(L, -2, "op");
  lua_pushstring(L, f->type); lua_setfield(L, -2, "type");
  lua_setfield(L, -2, key);
}

static int l_run(lua_State *L) {
  lprog *u = check_prog(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  const it_program *p = u->p;
  it_tensor **in = calloc((size_t)p->nin + 1, sizeof *in), **out = calloc((size_t)p->nout + 1, sizeof *out);
  it_tensor **states = calloc((size_t)p->nin + 1, sizeof *states);
  if (!in || !out || !states) { free(in); free(out); free(states); return luaL_error(L, "out of memory"); }
  for (int i = 0; i < p->nin; i++) {
    lua_getfield(L, 2, p->inputs[i].name);
    ltensor *t = luaL_testudata(L, -1, TENSOR_MT);
    in[i] = t ? t->t : NULL;
    lua_pop(L, 1);
  }
  tracer tr = {L, NULL, 0, 0, 0, 0, ""};
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "trace");
    tr.dir = lua_tostring(L, -1);
    lua_getfield(L, 3, "keep");
    tr.keep = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  lua_newtable(L);
  tr.tab = lua_gettop(L);
  it_first nf, ov;
  mlsh_err e;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = it_run(p, in, out, states, tr.dir || tr.keep ? observe : NULL, &tr, &nf, &ov, &e);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  free(in);
  if (rc != 0 || tr.failed) {
    for (int j = 0; j < p->nout; j++) it_unref(out[j]);
    for (int i = 0; i < p->nin; i++) it_unref(states[i]);
    free(out);
    free(states);
    return push_err(L, rc != 0 ? e.msg : tr.err);
  }
  lua_createtable(L, 0, p->nout);
  for (int j = 0; j < p->nout; j++) {
    push_tensor(L, out[j]);
    lua_setfield(L, -2, p->outputs[j].name);
  }
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
  lua_setfield(L, -2, "seconds");
  push_first(L, &nf, "nonfinite");
  push_first(L, &ov, "fp16_overflow");
  lua_newtable(L);
  for (int i = 0; i < p->nin; i++)
    if (states[i]) { push_tensor(L, states[i]); lua_setfield(L, -2, p->inputs[i].name); }
  lua_setfield(L, -2, "states");
  lua_pushvalue(L, tr.tab);
  lua_setfield(L, -2, "trace");
  free(out);
  free(states);
  return 2;
}

static int l_prog_gc(lua_State *L) {
  lprog *u = luaL_checkudata(L, 1, PROG_MT);
  it_program_free(u->p);
  u->p = NULL;
  return 0;
}

/* ---- tensors ---- */
static int l_npy_load(lua_State *L) {
  it_tensor *t;
  mlsh_err e;
  if (it_npy_read(luaL_checkstring(L, 1), &t, &e) != 0) return push_err(L, e.msg);
  push_tensor(L, t);
  return 1;
}

static int l_npy_parse(lua_State *L) {
  size_t len;
  const char *b = luaL_checklstring(L, 1, &len);
  it_tensor *t;
  mlsh_err e;
  if (it_npy_parse((const uint8_t *)b, len, luaL_optstring(L, 2, "npy"), &t, &e) != 0) return push_err(L, e.msg);
  push_tensor(L, t);
  return 1;
}

static int read_shape(lua_State *L, int idx, int64_t *shape) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int r = (int)luaL_len(L, idx);
  if (r > IT_MAX_RANK) luaL_error(L, "rank above %d", IT_MAX_RANK);
  for (int i = 0; i < r; i++) {
    lua_geti(L, idx, i + 1);
    shape[i] = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  return r;
}

static mlsh_dtype check_dtype(lua_State *L, int idx) {
  mlsh_dtype dt = mlsh_dtype_from_name(luaL_checkstring(L, idx));
  if (dt == MLSH_DT_INVALID) luaL_error(L, "unknown dtype '%s'", lua_tostring(L, idx));
  return dt;
}

static int l_tensor(lua_State *L) {
  mlsh_array *a = mlsh_array_arg(L, 1);
  mlsh_dtype dt = check_dtype(L, 2);
  int64_t shape[IT_MAX_RANK];
  int r;
  if (lua_istable(L, 3)) r = read_shape(L, 3, shape);
  else { r = a->rank; memcpy(shape, a->shape, (size_t)r * sizeof *shape); }
  mlsh_err e;
  it_tensor *t = it_tensor_new(dt, r, shape, &e);
  if (!t) return push_err(L, e.msg);
  if (t->n != a->n) { it_unref(t); return push_err(L, "shape does not match the number of values"); }
  for (size_t i = 0; i < t->n; i++) {
    float v = a->data[i];
    if (t->st == IT_F32) ((float *)t->data)[i] = dt == MLSH_DT_FP16 ? it_fp16_round1(v) : v;
    else if (t->st == IT_I64) ((int64_t *)t->data)[i] = it_d2i(v);
    else ((uint8_t *)t->data)[i] = v != 0;
  }
  push_tensor(L, t);
  return 1;
}

/* xorshift64* stream; floats uniform in [-1, 1), ints in [0, 10). */
static int l_random(lua_State *L) {
  mlsh_dtype dt = check_dtype(L, 1);
  int64_t shape[IT_MAX_RANK];
  int r = read_shape(L, 2, shape);
  uint64_t s = (uint64_t)luaL_optinteger(L, 3, 0) * 2654435761u + 0x9E3779B97F4A7C15ull;
  lua_Integer hi = luaL_optinteger(L, 4, 10);
  mlsh_err e;
  it_tensor *t = it_tensor_new(dt, r, shape, &e);
  if (!t) return push_err(L, e.msg);
  for (size_t i = 0; i < t->n; i++) {
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    uint64_t v = s * 2685821657736338717ull;
    double u01 = (double)(v >> 11) / 9007199254740992.0;
    if (t->st == IT_F32) ((float *)t->data)[i] = dt == MLSH_DT_FP16 ? it_fp16_round1((float)(2 * u01 - 1)) : (float)(2 * u01 - 1);
    else if (t->st == IT_I64) ((int64_t *)t->data)[i] = (int64_t)(u01 * (double)(hi > 0 ? hi : 1));
    else ((uint8_t *)t->data)[i] = u01 < 0.5;
  }
  push_tensor(L, t);
  return 1;
}

/* HWC uint8 pixels -> fp32 [1, C, H, W] in the model's colour layout (BGR swaps channels 0 and 2;
 * grayscale takes one channel). Scale and bias are ops of the ML program itself. */
static int l_image(lua_State *L) {
  it_tensor *x = check_tensor(L, 1);
  const char *cs = luaL_checkstring(L, 2);
  int gray = strncmp(cs, "GRAY", 4) == 0, bgr = strcmp(cs, "BGR") == 0;
  if (x->rank == 2 && gray) {
    int64_t s[4] = {1, 1, x->shape[0], x->shape[1]};
    mlsh_err e;
    it_tensor *t = it_tensor_new(MLSH_DT_FP32, 4, s, &e);
    if (!t) return push_err(L, e.msg);
    for (size_t i = 0; i < t->n; i++) ((float *)t->data)[i] = (float)it_get_d(x, i);
    push_tensor(L, t);
    return 1;
  }
  if (x->rank != 3) return push_err(L, "an image must be HWC (rank 3) uint8");
  int64_t H = x->shape[0], W = x->shape[1], C = x->shape[2], OC = gray ? 1 : 3;
  if ((gray && C != 1) || (!gray && C != 3 && C != 4)) return push_err(L, "image channels do not match the model's colour space");
  int64_t s[4] = {1, OC, H, W};
  mlsh_err e;
  it_tensor *t = it_tensor_new(MLSH_DT_FP32, 4, s, &e);
  if (!t) return push_err(L, e.msg);
  float *o = t->data;
  for (int64_t ch = 0; ch < OC; ch++) {
    int64_t src = bgr ? 2 - ch : ch;
    for (int64_t i = 0; i < H * W; i++) o[ch * H * W + i] = (float)it_get_d(x, (size_t)(i * C + src));
  }
  push_tensor(L, t);
  return 1;
}

/* A PNG file as HWC uint8 pixels (1 or 3 channels; see pngdl.h for the conversions). */
static int l_png_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int want = (int)luaL_optinteger(L, 2, 0);
  mlsh_png_image img;
  mlsh_err e;
  /* the tensor holds 8 bytes per sample (uint8 is stored as int64): refuse what the budget cannot */
  if (mlsh_png_read(path, want, it_budget() / sizeof(int64_t), &img, &e) != 0) return push_err(L, e.msg);
  int64_t s[3] = {img.h, img.w, img.c};
  it_tensor *t = it_tensor_new(MLSH_DT_UINT8, 3, s, &e);
  if (!t) {
    free(img.px);
    return push_err(L, e.msg);
  }
  int64_t *o = t->data;
  for (size_t i = 0; i < t->n; i++) o[i] = img.px[i];
  free(img.px);
  push_tensor(L, t);
  return 1;
}

static int l_ops(lua_State *L) {
  size_t n;
  const char *const *names = it_kernel_names(&n);
  lua_createtable(L, (int)n + 9, 0);
  static const char *const cx[] = {"const", "constexpr_affine_dequantize", "constexpr_blockwise_shift_scale", "constexpr_cast",
                                   "constexpr_lut_to_dense", "constexpr_lut_to_sparse", "constexpr_sparse_blockwise_shift_scale",
                                   "constexpr_sparse_to_dense"};
  int k = 0;
  for (size_t i = 0; i < sizeof cx / sizeof cx[0]; i++) { lua_pushstring(L, cx[i]); lua_rawseti(L, -2, ++k); }
  for (size_t i = 0; i < n; i++) { lua_pushstring(L, names[i]); lua_rawseti(L, -2, ++k); }
  return 1;
}

static int l_nn_layers(lua_State *L) {
  const char *names[256];
  size_t n = it_nn_layer_types(names, 256);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) { lua_pushstring(L, names[i]); lua_rawseti(L, -2, (int)i + 1); }
  return 1;
}

static int l_budget(lua_State *L) {
  it_set_budget((size_t)luaL_checkinteger(L, 1));
  return 0;
}

static int t_shape(lua_State *L) {
  it_tensor *t = check_tensor(L, 1);
  lua_createtable(L, t->rank, 0);
  for (int i = 0; i < t->rank; i++) { lua_pushinteger(L, t->shape[i]); lua_rawseti(L, -2, i + 1); }
  return 1;
}
static int t_dtype(lua_State *L) { it_tensor *t = check_tensor(L, 1); lua_pushstring(L, t->st == IT_STR ? "string" : mlsh_dtype_name(t->dt)); return 1; }
static int t_stats(lua_State *L) { push_stats(L, check_tensor(L, 1)); return 1; }
static int t_len(lua_State *L) { lua_pushinteger(L, (lua_Integer)check_tensor(L, 1)->n); return 1; }
static int t_save(lua_State *L) {
  mlsh_err e;
  if (it_npy_write(luaL_checkstring(L, 2), check_tensor(L, 1), &e) != 0) return push_err(L, e.msg);
  lua_pushboolean(L, 1);
  return 1;
}
static int t_npy(lua_State *L) {
  uint8_t *b;
  size_t len;
  mlsh_err e;
  if (it_npy_encode(check_tensor(L, 1), &b, &len, &e) != 0) return push_err(L, e.msg);
  lua_pushlstring(L, (const char *)b, len);
  free(b);
  return 1;
}
static int t_array(lua_State *L) {
  it_tensor *t = check_tensor(L, 1);
  if (t->st == IT_STR) return push_err(L, "string tensor");
  if (t->rank > MLSH_ARRAY_MAX_RANK) return push_err(L, "rank too large");
  mlsh_array *a = mlsh_array_push(L, t->n);
  for (size_t i = 0; i < t->n; i++) a->data[i] = (float)it_get_d(t, i);
  a->rank = t->rank;
  memcpy(a->shape, t->shape, (size_t)t->rank * sizeof *a->shape);
  if (t->rank == 0) { a->rank = 1; a->shape[0] = 1; }
  return 1;
}
/* t:labels() -> the values as a Lua list (strings of a string tensor, else numbers). */
static int t_labels(lua_State *L) {
  it_tensor *t = check_tensor(L, 1);
  lua_createtable(L, (int)t->n, 0);
  for (size_t i = 0; i < t->n; i++) {
    if (t->st == IT_STR) lua_pushstring(L, ((char **)t->data)[i] ? ((char **)t->data)[i] : "");
    else if (t->st == IT_I64) lua_pushinteger(L, (lua_Integer)((int64_t *)t->data)[i]);
    else lua_pushnumber(L, it_get_d(t, i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}
/* t:astype(dtype) -> a converted copy (fp16 rounds to nearest even; floats to ints truncate). */
static int t_astype(lua_State *L) {
  it_tensor *t = check_tensor(L, 1);
  mlsh_err e;
  it_tensor *o = it_convert(t, check_dtype(L, 2), &e);
  if (!o) return push_err(L, e.msg);
  push_tensor(L, o);
  return 1;
}

static int t_gc(lua_State *L) {
  ltensor *u = luaL_checkudata(L, 1, TENSOR_MT);
  it_unref(u->t);
  u->t = NULL;
  return 0;
}
static int t_tostring(lua_State *L) {
  char buf[160];
  lua_pushfstring(L, "Tensor %s", it_describe(check_tensor(L, 1), buf, sizeof buf));
  return 1;
}

int luaopen_mlsh_core_interp(lua_State *L) {
  static const luaL_Reg pm[] = {{"check", l_check}, {"inputs", l_inputs}, {"outputs", l_outputs}, {"run", l_run},
                                {"function_name", l_fname}, {NULL, NULL}};
  static const luaL_Reg tm[] = {{"shape", t_shape}, {"dtype", t_dtype}, {"stats", t_stats}, {"save", t_save},
                                {"npy", t_npy}, {"array", t_array}, {"astype", t_astype}, {"labels", t_labels}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"load", l_load}, {"npy_load", l_npy_load}, {"npy_parse", l_npy_parse}, {"tensor", l_tensor},
                                 {"random", l_random}, {"image", l_image}, {"png_load", l_png_load}, {"ops", l_ops}, {"nn_layers", l_nn_layers},
                                 {"set_budget", l_budget}, {NULL, NULL}};
  if (luaL_newmetatable(L, PROG_MT)) {
    lua_pushcfunction(L, l_prog_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, pm);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, TENSOR_MT)) {
    lua_pushcfunction(L, t_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, t_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, t_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, tm);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  return 1;
}
