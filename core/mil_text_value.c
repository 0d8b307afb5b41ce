/* mil_text_value.c — MIL text reader: dtypes and literal values (tensors, BLOBFILE references,
 * dicts, lists, tuples) into MILSpec Values. See mil_text_parse.h. */
#include "mil_text_parse.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* ---------------------------------------------------------------- dtypes */


static const DInfo DTYPES[] = {
    {"bool", DT(BOOL), MLSH_DT_BOOL, K_BOOL, 0, 8, 0, 1},
    {"string", DT(STRING), MLSH_DT_INVALID, K_STRING, 0, 0, 0, 0},
    {"fp16", DT(FLOAT16), MLSH_DT_FP16, K_BYTES, 1, 16, 0, 0},
    {"fp32", DT(FLOAT32), MLSH_DT_FP32, K_FLOAT, 1, 32, 0, 0},
    {"fp64", DT(FLOAT64), MLSH_DT_FP64, K_DOUBLE, 1, 64, 0, 0},
    {"bf16", DT(BFLOAT16), MLSH_DT_BF16, K_BYTES, 1, 16, 0, 0},
    {"int4", DT(INT4), MLSH_DT_INT4, K_BYTES, 0, 4, -8, 7},
    {"int8", DT(INT8), MLSH_DT_INT8, K_BYTES, 0, 8, -128, 127},
    {"int16", DT(INT16), MLSH_DT_INT16, K_INT, 0, 16, -32768, 32767},
    {"int32", DT(INT32), MLSH_DT_INT32, K_INT, 0, 32, INT32_MIN, INT32_MAX},
    {"int64", DT(INT64), MLSH_DT_INT64, K_LONG, 0, 64, INT64_MIN, INT64_MAX},
    {"uint1", DT(UINT1), MLSH_DT_UINT1, K_BYTES, 0, 1, 0, 1},
    {"uint2", DT(UINT2), MLSH_DT_UINT2, K_BYTES, 0, 2, 0, 3},
    {"uint3", DT(UINT3), MLSH_DT_UINT3, K_BYTES, 0, 3, 0, 7},
    {"uint4", DT(UINT4), MLSH_DT_UINT4, K_BYTES, 0, 4, 0, 15},
    {"uint6", DT(UINT6), MLSH_DT_UINT6, K_BYTES, 0, 6, 0, 63},
    {"uint8", DT(UINT8), MLSH_DT_UINT8, K_BYTES, 0, 8, 0, 255},
    {"uint16", DT(UINT16), MLSH_DT_UINT16, K_INT, 0, 16, 0, 65535},
    {"uint32", DT(UINT32), MLSH_DT_UINT32, K_BYTES, 0, 32, 0, UINT32_MAX},
    {"uint64", DT(UINT64), MLSH_DT_UINT64, K_LONG, 0, 64, 0, UINT64_MAX},
    {"fp8e4m3fn", DT(FLOAT8E4M3FN), MLSH_DT_FP8E4M3, K_BYTES, 1, 8, 0, 0},
    {"fp8e5m2", DT(FLOAT8E5M2), MLSH_DT_FP8E5M2, K_BYTES, 1, 8, 0, 0},
    /* aliases, accepted on input only */
    {"fp8e4m3", DT(FLOAT8E4M3FN), MLSH_DT_FP8E4M3, K_BYTES, 1, 8, 0, 0},
    {"float16", DT(FLOAT16), MLSH_DT_FP16, K_BYTES, 1, 16, 0, 0},
    {"float32", DT(FLOAT32), MLSH_DT_FP32, K_FLOAT, 1, 32, 0, 0},
    {"float64", DT(FLOAT64), MLSH_DT_FP64, K_DOUBLE, 1, 64, 0, 0},
    {"bfloat16", DT(BFLOAT16), MLSH_DT_BF16, K_BYTES, 1, 16, 0, 0},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

const DInfo *mlt_dtype_by_tok(P *p, const Tok *t) {
  if (t->kind != T_IDENT) return NULL;
  for (size_t i = 0; i < N_DTYPES; i++)
    if (mlt_tok_is(p, t, DTYPES[i].name)) return &DTYPES[i];
  return NULL;
}

static const DInfo *dtype_by_enum(int dt) {
  for (size_t i = 0; i < N_DTYPES; i++)
    if (DTYPES[i].dt == dt) return &DTYPES[i];
  return NULL;
}

const char *mlsh_mil_text_dtype_name(int datatype) {
  const DInfo *d = dtype_by_enum(datatype);
  return d ? d->name : NULL;
}

/* ---------------------------------------------------------------- tensor value sink */

typedef struct {
  TensorValue *tv;
  const DInfo *di;
  size_t n;
  float fp8[256];
} Sink;

static void sink_init(P *p, Sink *s, TensorValue *tv, const DInfo *di) {
  s->tv = tv;
  s->di = di;
  s->n = 0;
  switch (di->kind) {
  case K_FLOAT: tv->floats = new_rfloats(p); tv->value_case = TV(FLOATS); break;
  case K_DOUBLE: tv->doubles = new_rdoubles(p); tv->value_case = TV(DOUBLES); break;
  case K_INT: tv->ints = new_rints(p); tv->value_case = TV(INTS); break;
  case K_LONG: tv->longints = new_rlongints(p); tv->value_case = TV(LONG_INTS); break;
  case K_BOOL: tv->bools = new_rbools(p); tv->value_case = TV(BOOLS); break;
  case K_STRING: tv->strings = new_rstrings(p); tv->value_case = TV(STRINGS); break;
  default: tv->bytes = new_rbytes(p); tv->value_case = TV(BYTES); break;
  }
  if (di->mdt == MLSH_DT_FP8E4M3 || di->mdt == MLSH_DT_FP8E5M2)
    for (unsigned c = 0; c < 256; c++) {
      uint8_t b = (uint8_t)c;
      if (mlsh_decode_f32(&b, 1, (mlsh_dtype)di->mdt, 1, &s->fp8[c]) != 0) s->fp8[c] = NAN;
    }
}

static size_t pow2ceil(P *p, size_t x) {
  size_t c = 1;
  while (c < x) {
    if (c > SIZE_MAX / 2) mlt_oom(p);
    c *= 2;
  }
  return c;
}

static void bytes_append(P *p, RBytes *rb, const uint8_t *src, size_t k) {
  size_t len = rb->values.len, cap = len ? pow2ceil(p, len) : 0;
  if (len > SIZE_MAX - k) mlt_oom(p);
  if (len + k > cap) {
    uint8_t *nb = realloc(rb->values.data, pow2ceil(p, len + k));
    if (!nb) mlt_oom(p);
    rb->values.data = nb;
  }
  memcpy(rb->values.data + len, src, k);
  rb->values.len = len + k;
}

static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

static uint8_t fp8_nearest(const Sink *s, double d) {
  int best = -1;
  double bd = 0;
  for (int c = 0; c < 256; c++) {
    float f = s->fp8[c];
    if (isnan(d)) {
      if (isnan(f)) return (uint8_t)c;
      continue;
    }
    if (isnan(f)) continue;
    if (isinf(d) && f == d) return (uint8_t)c;
    double diff = fabs((double)f - d);
    if (isnan(diff)) continue;
    if (best < 0 || diff < bd) {
      best = c;
      bd = diff;
    }
  }
  return (uint8_t)(best < 0 ? 0 : best);
}

static int tok_bool(P *p, const Tok *t) {
  if (mlt_tok_is(p, t, "true")) return 1;
  if (mlt_tok_is(p, t, "false")) return 0;
  if (t->kind == T_NUM && t->n == 1 && (p->s[t->off] == '0' || p->s[t->off] == '1')) return p->s[t->off] == '1';
  mlt_fail_tok(p, t, "true or false");
}

static void sink_add(P *p, Sink *s, const Tok *t) {
  const DInfo *di = s->di;
  TensorValue *tv = s->tv;
  switch (di->kind) {
  case K_FLOAT: {
    float f = (float)mlt_tok_double(p, t);
    RESERVE(p, tv->floats->values, tv->floats->n_values);
    tv->floats->values[tv->floats->n_values++] = f;
    break;
  }
  case K_DOUBLE: {
    double d = mlt_tok_double(p, t);
    RESERVE(p, tv->doubles->values, tv->doubles->n_values);
    tv->doubles->values[tv->doubles->n_values++] = d;
    break;
  }
  case K_INT: {
    int32_t v = (int32_t)mlt_int_in_range(p, t, mlt_tok_int(p, t, "an integer"), di->lo, di->hi, di->name);
    RESERVE(p, tv->ints->values, tv->ints->n_values);
    tv->ints->values[tv->ints->n_values++] = v;
    break;
  }
  case K_LONG: {
    int64_t v = mlt_int_in_range(p, t, mlt_tok_int(p, t, "an integer"), di->lo, di->hi, di->name);
    RESERVE(p, tv->longints->values, tv->longints->n_values);
    tv->longints->values[tv->longints->n_values++] = v;
    break;
  }
  case K_BOOL: {
    int b = tok_bool(p, t);
    RESERVE(p, tv->bools->values, tv->bools->n_values);
    tv->bools->values[tv->bools->n_values++] = b;
    break;
  }
  case K_STRING: {
    if (t->kind != T_STR) mlt_fail_tok(p, t, "a string");
    RESERVE(p, tv->strings->values, tv->strings->n_values);
    tv->strings->values[tv->strings->n_values] = mlt_tok_string(p, t);
    tv->strings->n_values++;
    break;
  }
  default: {
    uint8_t b[4];
    size_t k;
    if (di->flt) {
      double d = mlt_tok_double(p, t);
      if (di->mdt == MLSH_DT_FP8E4M3 || di->mdt == MLSH_DT_FP8E5M2) {
        b[0] = fp8_nearest(s, d);
        k = 1;
      } else {
        uint16_t h = di->dt == DT(BFLOAT16) ? f32_to_bf16((float)d) : mlsh_f32_to_fp16((float)d);
        b[0] = (uint8_t)(h & 0xff);
        b[1] = (uint8_t)(h >> 8);
        k = 2;
      }
    } else {
      int64_t v = mlt_int_in_range(p, t, mlt_tok_int(p, t, "an integer"), di->lo, di->hi, di->name);
      uint64_t u = (uint64_t)v;
      if (di->bits < 8) u &= (1u << di->bits) - 1u; /* a code per byte, packed by sink_finish */
      k = di->bits == 32 ? 4 : 1;
      for (size_t i = 0; i < k; i++) b[i] = (uint8_t)(u >> (8 * i));
    }
    bytes_append(p, tv->bytes, b, k);
    break;
  }
  }
  s->n++;
}

static void sink_finish(P *p, Sink *s) {
  if (s->di->kind != K_BYTES || s->di->bits >= 8 || s->n == 0) return;
  RBytes *rb = s->tv->bytes;
  if (s->n > SIZE_MAX / 8) mlt_oom(p);
  size_t packed = (s->n * s->di->bits + 7) / 8;
  uint8_t *out = mlt_xmalloc(p, packed);
  mlsh_bitpack(rb->values.data, s->n, s->di->bits, out);
  free(rb->values.data);
  rb->values.data = out;
  rb->values.len = packed;
}

/* ---------------------------------------------------------------- literal values */

void mlt_parse_literal(P *p, Value *v);
static void fill_value(P *p, Value *v, const Tok *start, int top);

int mlt_is_typed_literal_start(P *p) {
  Tok *a = mlt_peek(p, 0);
  if (a->kind != T_IDENT) return 0;
  Tok *b = mlt_peek(p, 1);
  if (mlt_is_punct(b, '<'))
    return mlt_tok_is(p, a, "tensor") || mlt_tok_is(p, a, "state") || mlt_tok_is(p, a, "list") || mlt_tok_is(p, a, "tuple") ||
           mlt_tok_is(p, a, "dict");
  return mlt_is_punct(b, '(') && mlt_dtype_by_tok(p, a) != NULL;
}

int mlt_is_literal_start(P *p) {
  Tok *a = mlt_peek(p, 0);
  return a->kind == T_NUM || a->kind == T_STR || mlt_is_typed_literal_start(p);
}

static Immediate *attach_immediate(P *p, Value *v) {
  v->immediatevalue = new_immediate(p);
  v->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE;
  return v->immediatevalue;
}

static void parse_blobfile(P *p, Value *v) {
  Tok kw = mlt_next(p); /* BLOBFILE */
  mlt_expect(p, '(', "'(' after BLOBFILE");
  BlobFile *bf = v->blobfilevalue = new_blobfile(p);
  v->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_BLOB_FILE_VALUE;
  int have_path = 0, have_offset = 0;
  if (!mlt_is_punct(mlt_peek(p, 0), ')'))
    for (;;) {
      Tok k = mlt_expect_ident(p, "a BLOBFILE argument (path or offset)");
      int is_path = mlt_tok_is(p, &k, "path");
      if (!is_path && !mlt_tok_is(p, &k, "offset")) {
        char b[48];
        mlt_fail_at(p, k.line, k.col, "unknown BLOBFILE argument %s (expected path or offset)", mlt_tok_desc(p, &k, b, sizeof b));
      }
      if (is_path ? have_path : have_offset) mlt_fail_at(p, k.line, k.col, "BLOBFILE argument given twice");
      mlt_expect(p, '=', "'=' after the BLOBFILE argument name");
      /* the value is a raw scalar or wrapped once: string("..."), uint64(64), tensor<...>(...) */
      int wrapped = 0;
      if (mlt_peek(p, 0)->kind == T_IDENT) {
        Tok w = mlt_next(p);
        if (mlt_accept(p, '<')) { /* skip the type's angle brackets */
          int depth = 1;
          while (depth > 0) {
            Tok x = mlt_next(p);
            if (x.kind == T_EOF) mlt_fail_tok(p, &x, "'>' to close the type");
            if (mlt_is_punct(&x, '<')) depth++;
            if (mlt_is_punct(&x, '>')) depth--;
          }
        } else if (!mlt_is_punct(mlt_peek(p, 0), '(')) {
          mlt_fail_tok(p, &w, is_path ? "a string path" : "an integer offset");
        }
        mlt_expect(p, '(', "'(' after the type");
        wrapped = 1;
      }
      Tok x = mlt_next(p);
      if (is_path) {
        char *s = mlt_tok_string(p, &x);
        bf->filename = s;
        have_path = 1;
      } else {
        IntLit o = mlt_tok_int(p, &x, "an integer offset");
        if (o.neg && o.mag) mlt_fail_at(p, x.line, x.col, "a BLOBFILE offset cannot be negative");
        bf->offset = o.mag;
        have_offset = 1;
      }
      if (wrapped) mlt_expect(p, ')', "')' after the value");
      if (!mlt_accept(p, ',')) break;
    }
  mlt_expect(p, ')', "',' or ')' in BLOBFILE(...)");
  if (!have_path) mlt_fail_at(p, kw.line, kw.col, "BLOBFILE needs a path");
  if (!have_offset) mlt_fail_at(p, kw.line, kw.col, "BLOBFILE needs an offset");
}

static void parse_elems(P *p, Sink *s) {
  Tok *t = mlt_peek(p, 0);
  if (mlt_is_punct(t, '[')) {
    mlt_enter(p, t);
    mlt_next(p);
    if (!mlt_is_punct(mlt_peek(p, 0), ']'))
      for (;;) {
        parse_elems(p, s);
        if (!mlt_accept(p, ',')) break;
      }
    mlt_expect(p, ']', "',' or ']' in the value list");
    mlt_leave(p);
  } else {
    Tok x = mlt_next(p);
    sink_add(p, s, &x);
  }
}

static void fill_tensor(P *p, Value *v, const Tok *start) {
  TensorType *tt = v->type->tensortype;
  Tok *t = mlt_peek(p, 0);
  if (mlt_tok_is(p, t, "BLOBFILE") && mlt_is_punct(mlt_peek(p, 1), '(')) {
    parse_blobfile(p, v);
    return;
  }
  Immediate *iv = attach_immediate(p, v);
  iv->tensor = new_tensor_value(p);
  iv->value_case = IV(TENSOR);
  const DInfo *di = dtype_by_enum(tt->datatype);
  if (!di) mlt_fail_at(p, start->line, start->col, "a tensor literal needs a dtype");
  Sink s;
  sink_init(p, &s, iv->tensor, di);
  parse_elems(p, &s);
  sink_finish(p, &s);
  /* with a fully known shape the number of values must match it */
  if (tt->rank < 0) return;
  uint64_t want = 1;
  for (size_t i = 0; i < tt->n_dimensions; i++) {
    const Dimension *d = tt->dimensions[i];
    if (d->dimension_case != CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_CONSTANT) return;
    uint64_t sz = d->constant->size;
    if (sz && want > UINT64_MAX / sz) return;
    want *= sz;
  }
  if (want != (uint64_t)s.n)
    mlt_fail_at(p, start->line, start->col, "the literal has %zu value%s but its type holds %llu", s.n, s.n == 1 ? "" : "s",
            (unsigned long long)want);
}

/* One element of a dict, list or tuple: a typed literal, or a bare payload of the element type. */
static void parse_element(P *p, Value *el, const ValueType *et) {
  if (mlt_is_typed_literal_start(p)) {
    mlt_parse_literal(p, el);
    return;
  }
  Tok start = *mlt_peek(p, 0);
  el->type = new_vt(p);
  mlt_copy_type(p, el->type, et);
  fill_value(p, el, &start, 0);
}

static void fill_dict(P *p, Value *v) {
  DictionaryType *dt = v->type->dictionarytype;
  Immediate *iv = attach_immediate(p, v);
  DictValue *dv = iv->dictionary = new_dict_value(p);
  iv->value_case = IV(DICTIONARY);
  mlt_expect(p, '{', "'{' to start the dictionary");
  if (!mlt_is_punct(mlt_peek(p, 0), '}'))
    for (;;) {
      mlt_expect(p, '{', "'{' to start a key/value pair");
      if (!mlt_accept(p, '}')) { /* `{}` is an empty entry list; skip it */
        KeyValue *kv;
        APPEND_NEW(p, kv, dv->values, dv->n_values, new_key_value);
        kv->key = new_value(p);
        parse_element(p, kv->key, dt->keytype);
        mlt_expect(p, ',', "',' between a dictionary key and its value");
        kv->value = new_value(p);
        parse_element(p, kv->value, dt->valuetype);
        mlt_expect(p, '}', "'}' to close a key/value pair");
      }
      if (!mlt_accept(p, ',')) break;
    }
  mlt_expect(p, '}', "',' or '}' in the dictionary");
}

static void fill_list(P *p, Value *v) {
  ListType *lt = v->type->listtype;
  Immediate *iv = attach_immediate(p, v);
  ListValue *lv = iv->list = new_list_value(p);
  iv->value_case = IV(LIST);
  mlt_expect(p, '[', "'[' to start the list");
  if (!mlt_is_punct(mlt_peek(p, 0), ']'))
    for (;;) {
      Value *el;
      APPEND_NEW(p, el, lv->values, lv->n_values, new_value);
      parse_element(p, el, lt->type);
      if (!mlt_accept(p, ',')) break;
    }
  mlt_expect(p, ']', "',' or ']' in the list");
}

/* Tuple items up to (not including) the closing ')'. Fewer items than the type names are accepted. */
static void fill_tuple_items(P *p, Value *v) {
  TupleType *tt = v->type->tupletype;
  Immediate *iv = attach_immediate(p, v);
  TupleValue *tv = iv->tuple = new_tuple_value(p);
  iv->value_case = IV(TUPLE);
  if (mlt_is_punct(mlt_peek(p, 0), ')')) return;
  for (;;) {
    Tok *t = mlt_peek(p, 0);
    if (tv->n_values >= tt->n_types) mlt_fail_at(p, t->line, t->col, "more values than the tuple type has");
    Value *el;
    APPEND_NEW(p, el, tv->values, tv->n_values, new_value);
    parse_element(p, el, tt->types[tv->n_values - 1]);
    if (!mlt_accept(p, ',')) break;
  }
}

static void fill_value(P *p, Value *v, const Tok *start, int top) {
  Tok *t = mlt_peek(p, 0);
  mlt_enter(p, t);
  switch (v->type->type_case) {
  case VT(TENSOR_TYPE): fill_tensor(p, v, start); break;
  case VT(DICTIONARY_TYPE): fill_dict(p, v); break;
  case VT(LIST_TYPE): fill_list(p, v); break;
  case VT(TUPLE_TYPE):
    /* top level: `tuple<..>((a, b))`, `tuple<..>(a, b)` or `tuple<..>()`; nested: `(a, b)` */
    if (top && !mlt_is_punct(t, '(')) {
      fill_tuple_items(p, v);
    } else {
      mlt_expect(p, '(', "'(' to start the tuple");
      fill_tuple_items(p, v);
      mlt_expect(p, ')', "',' or ')' in the tuple");
    }
    break;
  default: mlt_fail_at(p, start->line, start->col, "values of a state<...> type cannot be written as literals");
  }
  mlt_leave(p);
}

static ValueType *scalar_type(P *p, Value *v, int dt) {
  v->type = new_vt(p);
  TensorType *tt = mlt_attach_tensor_type(p, v->type);
  tt->datatype = (CoreML__Specification__MILSpec__DataType)dt;
  tt->rank = 0;
  return v->type;
}

/* An untyped scalar (`"x"`, `3`, `0.5`): string, int32 (int64 when larger) or fp32. */
static void raw_literal(P *p, Value *v) {
  Tok t = mlt_next(p);
  int dt = DT(STRING);
  if (t.kind == T_NUM) {
    dt = DT(FLOAT32);
    const char *q = p->s + t.off;
    size_t i = (q[0] == '-' || q[0] == '+') ? 1 : 0;
    int hex = t.n > i + 1 && q[i] == '0' && (q[i + 1] == 'x' || q[i + 1] == 'X');
    int integral = t.n > i;
    for (size_t k = i + (hex ? 2 : 0); k < t.n; k++)
      if (!(hex ? mlt_hexval((unsigned char)q[k]) >= 0 : mlt_is_digit((unsigned char)q[k]))) integral = 0;
    if (integral) {
      IntLit x = mlt_tok_int(p, &t, "a number");
      int fits32 = x.neg ? x.mag <= (uint64_t)INT32_MAX + 1 : x.mag <= INT32_MAX;
      dt = fits32 ? DT(INT32) : DT(INT64);
    }
  }
  scalar_type(p, v, dt);
  Immediate *iv = attach_immediate(p, v);
  iv->tensor = new_tensor_value(p);
  iv->value_case = IV(TENSOR);
  Sink s;
  sink_init(p, &s, iv->tensor, dtype_by_enum(dt));
  sink_add(p, &s, &t);
  sink_finish(p, &s);
}

/* Fill v (attached, type not yet set) from a literal at the current token. */
void mlt_parse_literal(P *p, Value *v) {
  Tok *t = mlt_peek(p, 0);
  mlt_enter(p, t);
  if (t->kind == T_NUM || t->kind == T_STR) {
    raw_literal(p, v);
  } else if (mlt_is_typed_literal_start(p)) {
    Tok start = *t;
    v->type = new_vt(p);
    mlt_parse_type(p, v->type);
    mlt_expect(p, '(', "'(' after the literal's type");
    fill_value(p, v, &start, 1);
    mlt_expect(p, ')', "')' to close the literal");
  } else {
    mlt_fail_tok(p, t, "a literal value");
  }
  mlt_leave(p);
}

