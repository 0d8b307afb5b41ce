/* mil_text.c — reader for MIL text (model.mil) into the MILSpec Program protobuf (see mil_text.h).
 *
 * Grammar accepted (observed in coremlc output, liberal where that is harmless):
 *   program   := 'program' '(' NUMBER ')' [attrs] '{' function* '}' [';']
 *   function  := 'func' NAME '<' OPSET '>' '(' [tname {',' tname}] ')' [attrs] body [';']
 *   body      := '{' stmt* '}' ['->' '(' [NAME {',' NAME}] ')']      (outputs optional for funcs)
 *   stmt      := outputs '=' call | call
 *   outputs   := tname | '(' [tname {',' tname}] ')'
 *   call      := OPTYPE '(' [NAME '=' arg {',' NAME '=' arg}] ')' {attrs | nested} ';'
 *   nested    := ['(' tname {',' tname} ')'] '{' stmt* '}' '->' '(' [NAME {',' NAME}] ')'
 *   arg       := binding | '(' [binding {',' binding}] ')'
 *   binding   := NAME | literal
 *   attrs     := '[' [NAME '=' literal {',' NAME '=' literal}] ']'
 *   tname     := type NAME
 *   type      := 'tensor' '<' DTYPE [',' ('[' [dim {',' dim}] ']' | '*')] '>' | DTYPE
 *              | 'state' '<' type '>' | 'list' '<' type [',' dim] '>'
 *              | 'tuple' '<' [type {',' type}] '>' | 'dict' '<' type ',' type '>'
 *   dim       := INTEGER | '?' | NAME (symbolic -> unknown) | '*' (unknown, variadic)
 *   literal   := type '(' payload ')' | NUMBER | STRING
 *   payload   := tensor: 'BLOBFILE' '(' path = S, offset = N ')' | elems
 *                dict: '{' {'{' key ',' value '}'} '}'   list: '[' values ']'
 *                tuple: '(' values ')' | values | (empty)
 *   elems     := scalar | '[' [elems {',' elems}] ']'        (nested brackets are flattened)
 * Comments (// and slash-star) are skipped. Errors unwind with longjmp: every allocation is
 * attached to the Program before anything else can fail, so freeing the root frees everything. */
#include "mil_text.h"
#include "dtype.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef CoreML__Specification__MILSpec__Program Program;
typedef CoreML__Specification__MILSpec__Program__FunctionsEntry FunctionsEntry;
typedef CoreML__Specification__MILSpec__Program__AttributesEntry ProgramAttr;
typedef CoreML__Specification__MILSpec__Function Function;
typedef CoreML__Specification__MILSpec__Function__BlockSpecializationsEntry BlockEntry;
typedef CoreML__Specification__MILSpec__Function__AttributesEntry FunctionAttr;
typedef CoreML__Specification__MILSpec__Block Block;
typedef CoreML__Specification__MILSpec__Argument Argument;
typedef CoreML__Specification__MILSpec__Argument__Binding Binding;
typedef CoreML__Specification__MILSpec__Operation Operation;
typedef CoreML__Specification__MILSpec__Operation__InputsEntry InputEntry;
typedef CoreML__Specification__MILSpec__Operation__AttributesEntry OpAttr;
typedef CoreML__Specification__MILSpec__NamedValueType NamedValueType;
typedef CoreML__Specification__MILSpec__ValueType ValueType;
typedef CoreML__Specification__MILSpec__TensorType TensorType;
typedef CoreML__Specification__MILSpec__TupleType TupleType;
typedef CoreML__Specification__MILSpec__ListType ListType;
typedef CoreML__Specification__MILSpec__DictionaryType DictionaryType;
typedef CoreML__Specification__MILSpec__StateType StateType;
typedef CoreML__Specification__MILSpec__Dimension Dimension;
typedef CoreML__Specification__MILSpec__Dimension__ConstantDimension ConstDim;
typedef CoreML__Specification__MILSpec__Dimension__UnknownDimension UnknownDim;
typedef CoreML__Specification__MILSpec__Value Value;
typedef CoreML__Specification__MILSpec__Value__ImmediateValue Immediate;
typedef CoreML__Specification__MILSpec__Value__BlobFileValue BlobFile;
typedef CoreML__Specification__MILSpec__TensorValue TensorValue;
typedef CoreML__Specification__MILSpec__TensorValue__RepeatedFloats RFloats;
typedef CoreML__Specification__MILSpec__TensorValue__RepeatedDoubles RDoubles;
typedef CoreML__Specification__MILSpec__TensorValue__RepeatedInts RInts;
typedef CoreML__Specification__MILSpec__TensorValue__RepeatedLongInts RLongInts;
typedef CoreML__Specification__MILSpec__TensorValue__RepeatedBools RBools;
typedef CoreML__Specification__MILSpec__TensorValue__RepeatedStrings RStrings;
typedef CoreML__Specification__MILSpec__TensorValue__RepeatedBytes RBytes;
typedef CoreML__Specification__MILSpec__TupleValue TupleValue;
typedef CoreML__Specification__MILSpec__ListValue ListValue;
typedef CoreML__Specification__MILSpec__DictionaryValue DictValue;
typedef CoreML__Specification__MILSpec__DictionaryValue__KeyValuePair KeyValue;

#define DT(x) CORE_ML__SPECIFICATION__MILSPEC__DATA_TYPE__##x
#define VT(x) CORE_ML__SPECIFICATION__MILSPEC__VALUE_TYPE__TYPE_##x
#define TV(x) CORE_ML__SPECIFICATION__MILSPEC__TENSOR_VALUE__VALUE_##x
#define IV(x) CORE_ML__SPECIFICATION__MILSPEC__VALUE__IMMEDIATE_VALUE__VALUE_##x

/* ---------------------------------------------------------------- parser state, errors */

enum { T_EOF, T_IDENT, T_NUM, T_STR, T_ARROW, T_PUNCT };

typedef struct {
  int kind;
  char ch;       /* T_PUNCT: the character */
  size_t off, n; /* bytes of the token in the text */
  size_t line, col;
} Tok;

typedef struct {
  const char *s;
  size_t len, pos, line, col;
  Tok la[2];
  int nla;
  int depth;
  char dp; /* the C library's decimal point in the current locale, for strtod */
  char *err;
  size_t errlen;
  Program *prog;
  jmp_buf jb;
} P;

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

static _Noreturn PRINTF_LIKE(4, 5) void fail_at(P *p, size_t line, size_t col, const char *fmt, ...) {
  if (p->err && p->errlen) {
    int k = snprintf(p->err, p->errlen, "line %zu, column %zu: ", line, col);
    if (k >= 0 && (size_t)k < p->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  longjmp(p->jb, 1);
}

static _Noreturn void oom(P *p) { fail_at(p, p->line, p->col, "out of memory"); }

/* A short printable rendering of a token for messages (never contains a newline). */
static const char *tok_desc(P *p, const Tok *t, char *buf, size_t bn) {
  switch (t->kind) {
  case T_EOF: return "end of text";
  case T_ARROW: return "'->'";
  case T_PUNCT: snprintf(buf, bn, "'%c'", t->ch); return buf;
  default: {
    size_t n = t->n, max = bn - 8, k = 0;
    const char *q = p->s + t->off;
    buf[k++] = t->kind == T_STR ? '"' : '\'';
    for (size_t i = 0; i < n && i < max; i++) {
      unsigned char c = (unsigned char)q[i];
      if (t->kind == T_STR && (i == 0 || i + 1 == n) && c == '"') continue;
      buf[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > max) { buf[k++] = '.'; buf[k++] = '.'; buf[k++] = '.'; }
    buf[k++] = t->kind == T_STR ? '"' : '\'';
    buf[k] = 0;
    return buf;
  }
  }
}

static _Noreturn void fail_tok(P *p, const Tok *t, const char *what) {
  char b[48];
  fail_at(p, t->line, t->col, "expected %s, found %s", what, tok_desc(p, t, b, sizeof b));
}

static void enter(P *p, const Tok *t) {
  if (++p->depth > MLSH_MIL_TEXT_MAX_DEPTH)
    fail_at(p, t->line, t->col, "nesting deeper than %d levels", MLSH_MIL_TEXT_MAX_DEPTH);
}
static void leave(P *p) { p->depth--; }

/* ---------------------------------------------------------------- memory */

static void *xmalloc(P *p, size_t n) {
  void *r = malloc(n ? n : 1);
  if (!r) oom(p);
  return r;
}

/* Arrays grow to the next power of two, so a count alone tells whether there is room:
 * the array is full exactly when its count is 0 or a power of two. */
static int arr_full(size_t n) { return n == 0 || (n & (n - 1)) == 0; }
static size_t arr_next(P *p, size_t n, size_t elsz) {
  size_t c = n ? n * 2 : 1;
  if (n > SIZE_MAX / 2 || c > SIZE_MAX / elsz) oom(p);
  return c * elsz;
}
#define RESERVE(p, arr, cnt)                                         \
  do {                                                               \
    if (arr_full(cnt)) {                                             \
      void *nb_ = realloc((void *)(arr), arr_next(p, cnt, sizeof *(arr))); \
      if (!nb_) oom(p);                                              \
      (arr) = nb_;                                                   \
    }                                                                \
  } while (0)
/* Append a freshly constructed element: room first, so the new element is never orphaned. */
#define APPEND_NEW(p, var, arr, cnt, ctor) \
  do {                                     \
    RESERVE(p, arr, cnt);                  \
    (var) = ctor(p);                       \
    (arr)[(cnt)++] = (var);                \
  } while (0)

#define CTOR(fn, T, init)                 \
  static T *fn(P *p) {                    \
    T *m = xmalloc(p, sizeof *m);         \
    init(m);                              \
    return m;                             \
  }
CTOR(new_program, Program, core_ml__specification__milspec__program__init)
CTOR(new_functions_entry, FunctionsEntry, core_ml__specification__milspec__program__functions_entry__init)
CTOR(new_program_attr, ProgramAttr, core_ml__specification__milspec__program__attributes_entry__init)
CTOR(new_function, Function, core_ml__specification__milspec__function__init)
CTOR(new_block_entry, BlockEntry, core_ml__specification__milspec__function__block_specializations_entry__init)
CTOR(new_function_attr, FunctionAttr, core_ml__specification__milspec__function__attributes_entry__init)
CTOR(new_block, Block, core_ml__specification__milspec__block__init)
CTOR(new_argument, Argument, core_ml__specification__milspec__argument__init)
CTOR(new_binding, Binding, core_ml__specification__milspec__argument__binding__init)
CTOR(new_operation, Operation, core_ml__specification__milspec__operation__init)
CTOR(new_input_entry, InputEntry, core_ml__specification__milspec__operation__inputs_entry__init)
CTOR(new_op_attr, OpAttr, core_ml__specification__milspec__operation__attributes_entry__init)
CTOR(new_nvt, NamedValueType, core_ml__specification__milspec__named_value_type__init)
CTOR(new_vt, ValueType, core_ml__specification__milspec__value_type__init)
CTOR(new_tensor_type, TensorType, core_ml__specification__milspec__tensor_type__init)
CTOR(new_tuple_type, TupleType, core_ml__specification__milspec__tuple_type__init)
CTOR(new_list_type, ListType, core_ml__specification__milspec__list_type__init)
CTOR(new_dict_type, DictionaryType, core_ml__specification__milspec__dictionary_type__init)
CTOR(new_state_type, StateType, core_ml__specification__milspec__state_type__init)
CTOR(new_dim, Dimension, core_ml__specification__milspec__dimension__init)
CTOR(new_const_dim, ConstDim, core_ml__specification__milspec__dimension__constant_dimension__init)
CTOR(new_unknown_dim, UnknownDim, core_ml__specification__milspec__dimension__unknown_dimension__init)
CTOR(new_value, Value, core_ml__specification__milspec__value__init)
CTOR(new_immediate, Immediate, core_ml__specification__milspec__value__immediate_value__init)
CTOR(new_blobfile, BlobFile, core_ml__specification__milspec__value__blob_file_value__init)
CTOR(new_tensor_value, TensorValue, core_ml__specification__milspec__tensor_value__init)
CTOR(new_rfloats, RFloats, core_ml__specification__milspec__tensor_value__repeated_floats__init)
CTOR(new_rdoubles, RDoubles, core_ml__specification__milspec__tensor_value__repeated_doubles__init)
CTOR(new_rints, RInts, core_ml__specification__milspec__tensor_value__repeated_ints__init)
CTOR(new_rlongints, RLongInts, core_ml__specification__milspec__tensor_value__repeated_long_ints__init)
CTOR(new_rbools, RBools, core_ml__specification__milspec__tensor_value__repeated_bools__init)
CTOR(new_rstrings, RStrings, core_ml__specification__milspec__tensor_value__repeated_strings__init)
CTOR(new_rbytes, RBytes, core_ml__specification__milspec__tensor_value__repeated_bytes__init)
CTOR(new_tuple_value, TupleValue, core_ml__specification__milspec__tuple_value__init)
CTOR(new_list_value, ListValue, core_ml__specification__milspec__list_value__init)
CTOR(new_dict_value, DictValue, core_ml__specification__milspec__dictionary_value__init)
CTOR(new_key_value, KeyValue, core_ml__specification__milspec__dictionary_value__key_value_pair__init)

static char *xstrdup(P *p, const char *s) {
  size_t n = strlen(s);
  char *r = xmalloc(p, n + 1);
  memcpy(r, s, n + 1);
  return r;
}

/* ---------------------------------------------------------------- lexer */

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_ident_char(int c) { return is_alpha(c) || is_digit(c) || c == '@'; }

static int cur(P *p, size_t k) { return p->pos + k < p->len ? (unsigned char)p->s[p->pos + k] : -1; }

static void adv(P *p) {
  if (p->s[p->pos] == '\n') {
    p->line++;
    p->col = 1;
  } else {
    p->col++;
  }
  p->pos++;
}

static void skip_space(P *p) {
  for (;;) {
    int c = cur(p, 0);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
      adv(p);
    } else if (c == '/' && cur(p, 1) == '/') {
      while (p->pos < p->len && p->s[p->pos] != '\n') adv(p);
    } else if (c == '/' && cur(p, 1) == '*') {
      size_t line = p->line, col = p->col;
      adv(p);
      adv(p);
      for (;;) {
        if (p->pos >= p->len) fail_at(p, line, col, "unterminated comment");
        if (cur(p, 0) == '*' && cur(p, 1) == '/') break;
        adv(p);
      }
      adv(p);
      adv(p);
    } else {
      return;
    }
  }
}

static void lex(P *p, Tok *t) {
  skip_space(p);
  t->line = p->line;
  t->col = p->col;
  t->off = p->pos;
  t->n = 0;
  t->ch = 0;
  int c = cur(p, 0);
  if (c < 0) {
    t->kind = T_EOF;
    return;
  }
  if (is_alpha(c)) {
    while (is_ident_char(cur(p, 0))) adv(p);
    t->kind = T_IDENT;
  } else if (c == '-' && cur(p, 1) == '>') {
    adv(p);
    adv(p);
    t->kind = T_ARROW;
  } else if (is_digit(c) ||
             ((c == '-' || c == '+' || c == '.') && (is_digit(cur(p, 1)) || cur(p, 1) == '.' || is_alpha(cur(p, 1))))) {
    adv(p);
    for (;;) {
      int d = cur(p, 0), prev = (unsigned char)p->s[p->pos - 1];
      if (is_ident_char(d) || d == '.')
        adv(p);
      else if ((d == '+' || d == '-') && (prev == 'e' || prev == 'E' || prev == 'p' || prev == 'P'))
        adv(p);
      else
        break;
    }
    t->kind = T_NUM;
  } else if (c == '"') {
    adv(p);
    for (;;) {
      int d = cur(p, 0);
      if (d < 0) fail_at(p, t->line, t->col, "unterminated string");
      adv(p);
      if (d == '"') break;
      if (d == '\\') {
        if (cur(p, 0) < 0) fail_at(p, t->line, t->col, "unterminated string");
        adv(p);
      }
    }
    t->kind = T_STR;
  } else if (c != 0 && strchr("()[]{}<>,=;?*:", c)) {
    adv(p);
    t->kind = T_PUNCT;
    t->ch = (char)c;
  } else if (c >= 0x21 && c < 0x7f) {
    fail_at(p, t->line, t->col, "unexpected character '%c'", c);
  } else {
    fail_at(p, t->line, t->col, "unexpected byte 0x%02X", (unsigned)c);
  }
  t->n = p->pos - t->off;
}

static Tok *peek(P *p, int k) {
  while (p->nla <= k) lex(p, &p->la[p->nla++]);
  return &p->la[k];
}

static Tok next(P *p) {
  peek(p, 0);
  Tok t = p->la[0];
  p->la[0] = p->la[1];
  p->nla--;
  return t;
}

static int is_punct(const Tok *t, char ch) { return t->kind == T_PUNCT && t->ch == ch; }

static int accept(P *p, char ch) {
  if (!is_punct(peek(p, 0), ch)) return 0;
  next(p);
  return 1;
}

static Tok expect(P *p, char ch, const char *what) {
  Tok *t = peek(p, 0);
  if (!is_punct(t, ch)) fail_tok(p, t, what);
  return next(p);
}

static Tok expect_ident(P *p, const char *what) {
  Tok *t = peek(p, 0);
  if (t->kind != T_IDENT) fail_tok(p, t, what);
  return next(p);
}

static int tok_is(P *p, const Tok *t, const char *word) {
  size_t n = strlen(word);
  return t->kind == T_IDENT && t->n == n && memcmp(p->s + t->off, word, n) == 0;
}

static int tok_is_ci(P *p, const Tok *t, const char *word) {
  size_t n = strlen(word);
  if (t->n != n) return 0;
  for (size_t i = 0; i < n; i++) {
    int a = (unsigned char)p->s[t->off + i], b = (unsigned char)word[i];
    if (a >= 'A' && a <= 'Z') a += 'a' - 'A';
    if (a != b) return 0;
  }
  return 1;
}

static char *tok_strdup(P *p, const Tok *t) {
  char *r = xmalloc(p, t->n + 1);
  memcpy(r, p->s + t->off, t->n);
  r[t->n] = 0;
  return r;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The decoded contents of a string token (escapes \n \t \r \0 \\ \" \' \xHH \uXXXX; any other
 * escaped character stands for itself). A NUL in the result is refused: MIL strings are C strings. */
static char *tok_string(P *p, const Tok *t) {
  if (t->kind != T_STR) fail_tok(p, t, "a string");
  const char *q = p->s + t->off + 1, *e = p->s + t->off + t->n - 1;
  char *out = xmalloc(p, (size_t)(e - q) + 1), *o = out;
  const char *bad = NULL;
  while (q < e && !bad) {
    unsigned char c = (unsigned char)*q++;
    if (c == 0) {
      bad = "a string contains a NUL byte";
    } else if (c != '\\' || q >= e) {
      *o++ = (char)c;
    } else {
      c = (unsigned char)*q++;
      switch (c) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case '0': bad = "a string contains a NUL byte"; break;
      case 'x': {
        int h1 = q < e ? hexval((unsigned char)q[0]) : -1, h2 = q + 1 < e ? hexval((unsigned char)q[1]) : -1;
        if (h1 < 0 || h2 < 0) { bad = "bad \\x escape in a string"; break; }
        if (h1 == 0 && h2 == 0) { bad = "a string contains a NUL byte"; break; }
        *o++ = (char)(h1 * 16 + h2);
        q += 2;
        break;
      }
      case 'u': {
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
          int h = q < e ? hexval((unsigned char)*q) : -1;
          if (h < 0) { bad = "bad \\u escape in a string"; break; }
          v = v * 16 + (unsigned)h;
          q++;
        }
        if (bad) break;
        if (v == 0) { bad = "a string contains a NUL byte"; break; }
        /* at most 3 UTF-8 bytes for the 6 source bytes "\uXXXX", so the buffer suffices */
        if (v < 0x80) {
          *o++ = (char)v;
        } else if (v < 0x800) {
          *o++ = (char)(0xC0 | (v >> 6));
          *o++ = (char)(0x80 | (v & 0x3F));
        } else {
          *o++ = (char)(0xE0 | (v >> 12));
          *o++ = (char)(0x80 | ((v >> 6) & 0x3F));
          *o++ = (char)(0x80 | (v & 0x3F));
        }
        break;
      }
      default: *o++ = (char)c; break;
      }
    }
  }
  if (bad) {
    free(out);
    fail_at(p, t->line, t->col, "%s", bad);
  }
  *o = 0;
  return out;
}

/* ---------------------------------------------------------------- numbers */

static size_t tok_copy(P *p, const Tok *t, char *buf, size_t bn) {
  if (t->n >= bn) fail_at(p, t->line, t->col, "number is too long");
  memcpy(buf, p->s + t->off, t->n);
  buf[t->n] = 0;
  return t->n;
}

static double tok_double(P *p, const Tok *t) {
  if (t->kind == T_IDENT) {
    if (tok_is_ci(p, t, "inf") || tok_is_ci(p, t, "infinity")) return INFINITY;
    if (tok_is_ci(p, t, "nan")) return NAN;
  }
  if (t->kind != T_NUM) fail_tok(p, t, "a number");
  char b[160];
  size_t n = tok_copy(p, t, b, sizeof b);
  if (p->dp != '.')
    for (char *q = b; *q; q++)
      if (*q == '.') *q = p->dp;
  char *end;
  double d = strtod(b, &end);
  if (n == 0 || end != b + n) {
    char d2[48];
    fail_at(p, t->line, t->col, "malformed number %s", tok_desc(p, t, d2, sizeof d2));
  }
  return d;
}

typedef struct {
  int neg;
  uint64_t mag;
} IntLit;

static IntLit tok_int(P *p, const Tok *t, const char *what) {
  if (t->kind != T_NUM) fail_tok(p, t, what);
  char b[160], d2[48];
  tok_copy(p, t, b, sizeof b);
  const char *q = b;
  IntLit r = {0, 0};
  if (*q == '-' || *q == '+') r.neg = *q++ == '-';
  int base = 10;
  if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
    base = 16;
    q += 2;
  }
  if (base == 10 ? !is_digit((unsigned char)*q) : hexval((unsigned char)*q) < 0) fail_tok(p, t, what);
  char *end;
  errno = 0;
  unsigned long long v = strtoull(q, &end, base);
  if (*end) fail_tok(p, t, what);
  if (errno == ERANGE) fail_at(p, t->line, t->col, "integer %s is out of range", tok_desc(p, t, d2, sizeof d2));
  r.mag = (uint64_t)v;
  return r;
}

static int64_t int_in_range(P *p, const Tok *t, IntLit v, int64_t lo, uint64_t hi, const char *dtname) {
  char d2[48];
  if (v.neg && v.mag) {
    if (lo >= 0 || v.mag - 1 > (uint64_t)(-(lo + 1)))
      fail_at(p, t->line, t->col, "%s is out of range for %s", tok_desc(p, t, d2, sizeof d2), dtname);
    return -(int64_t)(v.mag - 1) - 1;
  }
  if (v.mag > hi) fail_at(p, t->line, t->col, "%s is out of range for %s", tok_desc(p, t, d2, sizeof d2), dtname);
  return (int64_t)v.mag; /* uint64 above INT64_MAX wraps, as the longInts field stores it */
}

/* ---------------------------------------------------------------- dtypes */

enum { K_FLOAT, K_DOUBLE, K_INT, K_LONG, K_BOOL, K_STRING, K_BYTES };

typedef struct {
  const char *name;
  int dt;       /* MILSpec DataType */
  int mdt;      /* mlsh_dtype (for fp8 decoding) */
  int kind;     /* TensorValue field */
  int flt;      /* K_BYTES: element is a float encoding */
  unsigned bits;
  int64_t lo;
  uint64_t hi;
} DInfo;

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

static const DInfo *dtype_by_tok(P *p, const Tok *t) {
  if (t->kind != T_IDENT) return NULL;
  for (size_t i = 0; i < N_DTYPES; i++)
    if (tok_is(p, t, DTYPES[i].name)) return &DTYPES[i];
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
    if (c > SIZE_MAX / 2) oom(p);
    c *= 2;
  }
  return c;
}

static void bytes_append(P *p, RBytes *rb, const uint8_t *src, size_t k) {
  size_t len = rb->values.len, cap = len ? pow2ceil(p, len) : 0;
  if (len > SIZE_MAX - k) oom(p);
  if (len + k > cap) {
    uint8_t *nb = realloc(rb->values.data, pow2ceil(p, len + k));
    if (!nb) oom(p);
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
  if (tok_is(p, t, "true")) return 1;
  if (tok_is(p, t, "false")) return 0;
  if (t->kind == T_NUM && t->n == 1 && (p->s[t->off] == '0' || p->s[t->off] == '1')) return p->s[t->off] == '1';
  fail_tok(p, t, "true or false");
}

static void sink_add(P *p, Sink *s, const Tok *t) {
  const DInfo *di = s->di;
  TensorValue *tv = s->tv;
  switch (di->kind) {
  case K_FLOAT: {
    float f = (float)tok_double(p, t);
    RESERVE(p, tv->floats->values, tv->floats->n_values);
    tv->floats->values[tv->floats->n_values++] = f;
    break;
  }
  case K_DOUBLE: {
    double d = tok_double(p, t);
    RESERVE(p, tv->doubles->values, tv->doubles->n_values);
    tv->doubles->values[tv->doubles->n_values++] = d;
    break;
  }
  case K_INT: {
    int32_t v = (int32_t)int_in_range(p, t, tok_int(p, t, "an integer"), di->lo, di->hi, di->name);
    RESERVE(p, tv->ints->values, tv->ints->n_values);
    tv->ints->values[tv->ints->n_values++] = v;
    break;
  }
  case K_LONG: {
    int64_t v = int_in_range(p, t, tok_int(p, t, "an integer"), di->lo, di->hi, di->name);
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
    if (t->kind != T_STR) fail_tok(p, t, "a string");
    RESERVE(p, tv->strings->values, tv->strings->n_values);
    tv->strings->values[tv->strings->n_values] = tok_string(p, t);
    tv->strings->n_values++;
    break;
  }
  default: {
    uint8_t b[4];
    size_t k;
    if (di->flt) {
      double d = tok_double(p, t);
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
      int64_t v = int_in_range(p, t, tok_int(p, t, "an integer"), di->lo, di->hi, di->name);
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
  if (s->n > SIZE_MAX / 8) oom(p);
  size_t packed = (s->n * s->di->bits + 7) / 8;
  uint8_t *out = xmalloc(p, packed);
  mlsh_bitpack(rb->values.data, s->n, s->di->bits, out);
  free(rb->values.data);
  rb->values.data = out;
  rb->values.len = packed;
}

/* ---------------------------------------------------------------- types */

static void parse_type(P *p, ValueType *vt);

static void parse_dim(P *p, Dimension *d) {
  Tok t = next(p);
  if (t.kind == T_NUM) {
    IntLit v = tok_int(p, &t, "a dimension (an integer, '?' or a symbol)");
    if (v.neg && v.mag) fail_at(p, t.line, t.col, "a dimension cannot be negative");
    d->constant = new_const_dim(p);
    d->dimension_case = CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_CONSTANT;
    d->constant->size = v.mag;
  } else if (t.kind == T_IDENT || is_punct(&t, '?') || is_punct(&t, '*')) {
    d->unknown = new_unknown_dim(p);
    d->dimension_case = CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_UNKNOWN;
    d->unknown->variadic = is_punct(&t, '*');
  } else {
    fail_tok(p, &t, "a dimension (an integer, '?' or a symbol)");
  }
}

static TensorType *attach_tensor_type(P *p, ValueType *vt) {
  vt->tensortype = new_tensor_type(p);
  vt->type_case = VT(TENSOR_TYPE);
  return vt->tensortype;
}

static void parse_type(P *p, ValueType *vt) {
  Tok *pt = peek(p, 0);
  enter(p, pt);
  Tok t = next(p);
  const DInfo *di;
  if (t.kind != T_IDENT)
    fail_tok(p, &t, "a type (tensor<...>, a dtype, state<...>, list<...>, tuple<...> or dict<...>)");
  int angled = is_punct(peek(p, 0), '<');
  if (angled && tok_is(p, &t, "tensor")) {
    next(p);
    TensorType *tt = attach_tensor_type(p, vt);
    Tok d = next(p);
    if (!(di = dtype_by_tok(p, &d))) {
      char b[48];
      if (d.kind == T_IDENT) fail_at(p, d.line, d.col, "unknown dtype %s", tok_desc(p, &d, b, sizeof b));
      fail_tok(p, &d, "a dtype");
    }
    tt->datatype = (CoreML__Specification__MILSpec__DataType)di->dt;
    if (accept(p, ',')) {
      if (accept(p, '*')) {
        tt->rank = -1; /* unknown rank */
      } else {
        expect(p, '[', "'[' to start the shape");
        if (!is_punct(peek(p, 0), ']'))
          for (;;) {
            Dimension *dim;
            APPEND_NEW(p, dim, tt->dimensions, tt->n_dimensions, new_dim);
            parse_dim(p, dim);
            if (!accept(p, ',')) break;
          }
        expect(p, ']', "',' or ']' in the shape");
        tt->rank = (int64_t)tt->n_dimensions;
      }
    }
    expect(p, '>', "'>' to close tensor<...>");
  } else if (angled && tok_is(p, &t, "state")) {
    next(p);
    vt->statetype = new_state_type(p);
    vt->type_case = VT(STATE_TYPE);
    vt->statetype->wrappedtype = new_vt(p);
    parse_type(p, vt->statetype->wrappedtype);
    expect(p, '>', "'>' to close state<...>");
  } else if (angled && tok_is(p, &t, "list")) {
    next(p);
    vt->listtype = new_list_type(p);
    vt->type_case = VT(LIST_TYPE);
    vt->listtype->type = new_vt(p);
    parse_type(p, vt->listtype->type);
    if (accept(p, ',')) {
      vt->listtype->length = new_dim(p);
      parse_dim(p, vt->listtype->length);
    }
    expect(p, '>', "'>' to close list<...>");
  } else if (angled && tok_is(p, &t, "tuple")) {
    next(p);
    TupleType *tu = vt->tupletype = new_tuple_type(p);
    vt->type_case = VT(TUPLE_TYPE);
    if (!is_punct(peek(p, 0), '>'))
      for (;;) {
        ValueType *el;
        APPEND_NEW(p, el, tu->types, tu->n_types, new_vt);
        parse_type(p, el);
        if (!accept(p, ',')) break;
      }
    expect(p, '>', "',' or '>' in tuple<...>");
  } else if (angled && tok_is(p, &t, "dict")) {
    next(p);
    DictionaryType *dt = vt->dictionarytype = new_dict_type(p);
    vt->type_case = VT(DICTIONARY_TYPE);
    dt->keytype = new_vt(p);
    parse_type(p, dt->keytype);
    expect(p, ',', "',' between the key and value types of dict<...>");
    dt->valuetype = new_vt(p);
    parse_type(p, dt->valuetype);
    expect(p, '>', "'>' to close dict<...>");
  } else if ((di = dtype_by_tok(p, &t))) {
    TensorType *tt = attach_tensor_type(p, vt); /* bare scalar type, e.g. `int32 x = ...` */
    tt->datatype = (CoreML__Specification__MILSpec__DataType)di->dt;
    tt->rank = 0;
  } else {
    fail_tok(p, &t, "a type (tensor<...>, a dtype, state<...>, list<...>, tuple<...> or dict<...>)");
  }
  leave(p);
}

static void copy_dim(P *p, Dimension *dst, const Dimension *src) {
  if (src->dimension_case == CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_CONSTANT && src->constant) {
    dst->constant = new_const_dim(p);
    dst->dimension_case = src->dimension_case;
    dst->constant->size = src->constant->size;
  } else if (src->dimension_case == CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_UNKNOWN && src->unknown) {
    dst->unknown = new_unknown_dim(p);
    dst->dimension_case = src->dimension_case;
    dst->unknown->variadic = src->unknown->variadic;
  }
}

/* Deep copy of a type this parser built (so its depth is already bounded). */
static void copy_type(P *p, ValueType *dst, const ValueType *src) {
  switch (src->type_case) {
  case VT(TENSOR_TYPE): {
    TensorType *tt = attach_tensor_type(p, dst);
    tt->datatype = src->tensortype->datatype;
    tt->rank = src->tensortype->rank;
    for (size_t i = 0; i < src->tensortype->n_dimensions; i++) {
      Dimension *d;
      APPEND_NEW(p, d, tt->dimensions, tt->n_dimensions, new_dim);
      copy_dim(p, d, src->tensortype->dimensions[i]);
    }
    break;
  }
  case VT(STATE_TYPE):
    dst->statetype = new_state_type(p);
    dst->type_case = VT(STATE_TYPE);
    dst->statetype->wrappedtype = new_vt(p);
    copy_type(p, dst->statetype->wrappedtype, src->statetype->wrappedtype);
    break;
  case VT(LIST_TYPE):
    dst->listtype = new_list_type(p);
    dst->type_case = VT(LIST_TYPE);
    dst->listtype->type = new_vt(p);
    copy_type(p, dst->listtype->type, src->listtype->type);
    if (src->listtype->length) {
      dst->listtype->length = new_dim(p);
      copy_dim(p, dst->listtype->length, src->listtype->length);
    }
    break;
  case VT(TUPLE_TYPE):
    dst->tupletype = new_tuple_type(p);
    dst->type_case = VT(TUPLE_TYPE);
    for (size_t i = 0; i < src->tupletype->n_types; i++) {
      ValueType *el;
      APPEND_NEW(p, el, dst->tupletype->types, dst->tupletype->n_types, new_vt);
      copy_type(p, el, src->tupletype->types[i]);
    }
    break;
  case VT(DICTIONARY_TYPE):
    dst->dictionarytype = new_dict_type(p);
    dst->type_case = VT(DICTIONARY_TYPE);
    dst->dictionarytype->keytype = new_vt(p);
    copy_type(p, dst->dictionarytype->keytype, src->dictionarytype->keytype);
    dst->dictionarytype->valuetype = new_vt(p);
    copy_type(p, dst->dictionarytype->valuetype, src->dictionarytype->valuetype);
    break;
  default: break;
  }
}

/* ---------------------------------------------------------------- literal values */

static void parse_literal(P *p, Value *v);
static void fill_value(P *p, Value *v, const Tok *start, int top);

static int is_typed_literal_start(P *p) {
  Tok *a = peek(p, 0);
  if (a->kind != T_IDENT) return 0;
  Tok *b = peek(p, 1);
  if (is_punct(b, '<'))
    return tok_is(p, a, "tensor") || tok_is(p, a, "state") || tok_is(p, a, "list") || tok_is(p, a, "tuple") ||
           tok_is(p, a, "dict");
  return is_punct(b, '(') && dtype_by_tok(p, a) != NULL;
}

static int is_literal_start(P *p) {
  Tok *a = peek(p, 0);
  return a->kind == T_NUM || a->kind == T_STR || is_typed_literal_start(p);
}

static Immediate *attach_immediate(P *p, Value *v) {
  v->immediatevalue = new_immediate(p);
  v->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_IMMEDIATE_VALUE;
  return v->immediatevalue;
}

static void parse_blobfile(P *p, Value *v) {
  Tok kw = next(p); /* BLOBFILE */
  expect(p, '(', "'(' after BLOBFILE");
  BlobFile *bf = v->blobfilevalue = new_blobfile(p);
  v->value_case = CORE_ML__SPECIFICATION__MILSPEC__VALUE__VALUE_BLOB_FILE_VALUE;
  int have_path = 0, have_offset = 0;
  if (!is_punct(peek(p, 0), ')'))
    for (;;) {
      Tok k = expect_ident(p, "a BLOBFILE argument (path or offset)");
      int is_path = tok_is(p, &k, "path");
      if (!is_path && !tok_is(p, &k, "offset")) {
        char b[48];
        fail_at(p, k.line, k.col, "unknown BLOBFILE argument %s (expected path or offset)", tok_desc(p, &k, b, sizeof b));
      }
      if (is_path ? have_path : have_offset) fail_at(p, k.line, k.col, "BLOBFILE argument given twice");
      expect(p, '=', "'=' after the BLOBFILE argument name");
      /* the value is a raw scalar or wrapped once: string("..."), uint64(64), tensor<...>(...) */
      int wrapped = 0;
      if (peek(p, 0)->kind == T_IDENT) {
        Tok w = next(p);
        if (accept(p, '<')) { /* skip the type's angle brackets */
          int depth = 1;
          while (depth > 0) {
            Tok x = next(p);
            if (x.kind == T_EOF) fail_tok(p, &x, "'>' to close the type");
            if (is_punct(&x, '<')) depth++;
            if (is_punct(&x, '>')) depth--;
          }
        } else if (!is_punct(peek(p, 0), '(')) {
          fail_tok(p, &w, is_path ? "a string path" : "an integer offset");
        }
        expect(p, '(', "'(' after the type");
        wrapped = 1;
      }
      Tok x = next(p);
      if (is_path) {
        char *s = tok_string(p, &x);
        bf->filename = s;
        have_path = 1;
      } else {
        IntLit o = tok_int(p, &x, "an integer offset");
        if (o.neg && o.mag) fail_at(p, x.line, x.col, "a BLOBFILE offset cannot be negative");
        bf->offset = o.mag;
        have_offset = 1;
      }
      if (wrapped) expect(p, ')', "')' after the value");
      if (!accept(p, ',')) break;
    }
  expect(p, ')', "',' or ')' in BLOBFILE(...)");
  if (!have_path) fail_at(p, kw.line, kw.col, "BLOBFILE needs a path");
  if (!have_offset) fail_at(p, kw.line, kw.col, "BLOBFILE needs an offset");
}

static void parse_elems(P *p, Sink *s) {
  Tok *t = peek(p, 0);
  if (is_punct(t, '[')) {
    enter(p, t);
    next(p);
    if (!is_punct(peek(p, 0), ']'))
      for (;;) {
        parse_elems(p, s);
        if (!accept(p, ',')) break;
      }
    expect(p, ']', "',' or ']' in the value list");
    leave(p);
  } else {
    Tok x = next(p);
    sink_add(p, s, &x);
  }
}

static void fill_tensor(P *p, Value *v, const Tok *start) {
  TensorType *tt = v->type->tensortype;
  Tok *t = peek(p, 0);
  if (tok_is(p, t, "BLOBFILE") && is_punct(peek(p, 1), '(')) {
    parse_blobfile(p, v);
    return;
  }
  Immediate *iv = attach_immediate(p, v);
  iv->tensor = new_tensor_value(p);
  iv->value_case = IV(TENSOR);
  const DInfo *di = dtype_by_enum(tt->datatype);
  if (!di) fail_at(p, start->line, start->col, "a tensor literal needs a dtype");
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
    fail_at(p, start->line, start->col, "the literal has %zu value%s but its type holds %llu", s.n, s.n == 1 ? "" : "s",
            (unsigned long long)want);
}

/* One element of a dict, list or tuple: a typed literal, or a bare payload of the element type. */
static void parse_element(P *p, Value *el, const ValueType *et) {
  if (is_typed_literal_start(p)) {
    parse_literal(p, el);
    return;
  }
  Tok start = *peek(p, 0);
  el->type = new_vt(p);
  copy_type(p, el->type, et);
  fill_value(p, el, &start, 0);
}

static void fill_dict(P *p, Value *v) {
  DictionaryType *dt = v->type->dictionarytype;
  Immediate *iv = attach_immediate(p, v);
  DictValue *dv = iv->dictionary = new_dict_value(p);
  iv->value_case = IV(DICTIONARY);
  expect(p, '{', "'{' to start the dictionary");
  if (!is_punct(peek(p, 0), '}'))
    for (;;) {
      expect(p, '{', "'{' to start a key/value pair");
      if (!accept(p, '}')) { /* `{}` is an empty entry list; skip it */
        KeyValue *kv;
        APPEND_NEW(p, kv, dv->values, dv->n_values, new_key_value);
        kv->key = new_value(p);
        parse_element(p, kv->key, dt->keytype);
        expect(p, ',', "',' between a dictionary key and its value");
        kv->value = new_value(p);
        parse_element(p, kv->value, dt->valuetype);
        expect(p, '}', "'}' to close a key/value pair");
      }
      if (!accept(p, ',')) break;
    }
  expect(p, '}', "',' or '}' in the dictionary");
}

static void fill_list(P *p, Value *v) {
  ListType *lt = v->type->listtype;
  Immediate *iv = attach_immediate(p, v);
  ListValue *lv = iv->list = new_list_value(p);
  iv->value_case = IV(LIST);
  expect(p, '[', "'[' to start the list");
  if (!is_punct(peek(p, 0), ']'))
    for (;;) {
      Value *el;
      APPEND_NEW(p, el, lv->values, lv->n_values, new_value);
      parse_element(p, el, lt->type);
      if (!accept(p, ',')) break;
    }
  expect(p, ']', "',' or ']' in the list");
}

/* Tuple items up to (not including) the closing ')'. Fewer items than the type names are accepted. */
static void fill_tuple_items(P *p, Value *v) {
  TupleType *tt = v->type->tupletype;
  Immediate *iv = attach_immediate(p, v);
  TupleValue *tv = iv->tuple = new_tuple_value(p);
  iv->value_case = IV(TUPLE);
  if (is_punct(peek(p, 0), ')')) return;
  for (;;) {
    Tok *t = peek(p, 0);
    if (tv->n_values >= tt->n_types) fail_at(p, t->line, t->col, "more values than the tuple type has");
    Value *el;
    APPEND_NEW(p, el, tv->values, tv->n_values, new_value);
    parse_element(p, el, tt->types[tv->n_values - 1]);
    if (!accept(p, ',')) break;
  }
}

static void fill_value(P *p, Value *v, const Tok *start, int top) {
  Tok *t = peek(p, 0);
  enter(p, t);
  switch (v->type->type_case) {
  case VT(TENSOR_TYPE): fill_tensor(p, v, start); break;
  case VT(DICTIONARY_TYPE): fill_dict(p, v); break;
  case VT(LIST_TYPE): fill_list(p, v); break;
  case VT(TUPLE_TYPE):
    /* top level: `tuple<..>((a, b))`, `tuple<..>(a, b)` or `tuple<..>()`; nested: `(a, b)` */
    if (top && !is_punct(t, '(')) {
      fill_tuple_items(p, v);
    } else {
      expect(p, '(', "'(' to start the tuple");
      fill_tuple_items(p, v);
      expect(p, ')', "',' or ')' in the tuple");
    }
    break;
  default: fail_at(p, start->line, start->col, "values of a state<...> type cannot be written as literals");
  }
  leave(p);
}

static ValueType *scalar_type(P *p, Value *v, int dt) {
  v->type = new_vt(p);
  TensorType *tt = attach_tensor_type(p, v->type);
  tt->datatype = (CoreML__Specification__MILSpec__DataType)dt;
  tt->rank = 0;
  return v->type;
}

/* An untyped scalar (`"x"`, `3`, `0.5`): string, int32 (int64 when larger) or fp32. */
static void raw_literal(P *p, Value *v) {
  Tok t = next(p);
  int dt = DT(STRING);
  if (t.kind == T_NUM) {
    dt = DT(FLOAT32);
    const char *q = p->s + t.off;
    size_t i = (q[0] == '-' || q[0] == '+') ? 1 : 0;
    int hex = t.n > i + 1 && q[i] == '0' && (q[i + 1] == 'x' || q[i + 1] == 'X');
    int integral = t.n > i;
    for (size_t k = i + (hex ? 2 : 0); k < t.n; k++)
      if (!(hex ? hexval((unsigned char)q[k]) >= 0 : is_digit((unsigned char)q[k]))) integral = 0;
    if (integral) {
      IntLit x = tok_int(p, &t, "a number");
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
static void parse_literal(P *p, Value *v) {
  Tok *t = peek(p, 0);
  enter(p, t);
  if (t->kind == T_NUM || t->kind == T_STR) {
    raw_literal(p, v);
  } else if (is_typed_literal_start(p)) {
    Tok start = *t;
    v->type = new_vt(p);
    parse_type(p, v->type);
    expect(p, '(', "'(' after the literal's type");
    fill_value(p, v, &start, 1);
    expect(p, ')', "')' to close the literal");
  } else {
    fail_tok(p, t, "a literal value");
  }
  leave(p);
}

/* ---------------------------------------------------------------- attributes */

#define DEF_ATTR_PARSER(fn, Entry, ctor)                                        \
  static void fn(P *p, Entry ***arr, size_t *cnt) {                             \
    expect(p, '[', "'['");                                                      \
    if (!is_punct(peek(p, 0), ']'))                                             \
      for (;;) {                                                                \
        Tok k = expect_ident(p, "an attribute name");                          \
        expect(p, '=', "'=' after the attribute name");                         \
        if (!is_literal_start(p)) fail_tok(p, peek(p, 0), "a literal value");   \
        Entry *e;                                                               \
        APPEND_NEW(p, e, *arr, *cnt, ctor);                                     \
        e->key = tok_strdup(p, &k);                                             \
        e->value = new_value(p);                                                \
        parse_literal(p, e->value);                                             \
        if (!accept(p, ',')) break;                                             \
      }                                                                         \
    expect(p, ']', "',' or ']' in the attribute list");                         \
  }
DEF_ATTR_PARSER(parse_program_attrs, ProgramAttr, new_program_attr)
DEF_ATTR_PARSER(parse_function_attrs, FunctionAttr, new_function_attr)
DEF_ATTR_PARSER(parse_op_attrs, OpAttr, new_op_attr)

/* ---------------------------------------------------------------- blocks and operations */

static void parse_block_body(P *p, Block *b, int outputs_optional);

static void parse_typed_name(P *p, NamedValueType *nv) {
  nv->type = new_vt(p);
  parse_type(p, nv->type);
  Tok n = expect_ident(p, "a name after the type");
  nv->name = tok_strdup(p, &n);
}

static void parse_binding(P *p, Argument *arg) {
  Binding *b;
  APPEND_NEW(p, b, arg->arguments, arg->n_arguments, new_binding);
  Tok *t = peek(p, 0);
  if (t->kind == T_IDENT && !is_typed_literal_start(p)) {
    Tok n = next(p);
    b->name = tok_strdup(p, &n);
    b->binding_case = CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_NAME;
  } else if (is_literal_start(p)) {
    b->value = new_value(p);
    b->binding_case = CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_VALUE;
    parse_literal(p, b->value);
  } else {
    fail_tok(p, t, "a name or a literal value");
  }
}

static void parse_arguments(P *p, Operation *op) {
  expect(p, '(', "'(' after the operation type");
  if (!is_punct(peek(p, 0), ')'))
    for (;;) {
      Tok k = expect_ident(p, "an argument name");
      expect(p, '=', "'=' after the argument name");
      InputEntry *e;
      APPEND_NEW(p, e, op->inputs, op->n_inputs, new_input_entry);
      e->key = tok_strdup(p, &k);
      e->value = new_argument(p);
      if (accept(p, '(')) {
        if (!is_punct(peek(p, 0), ')'))
          for (;;) {
            parse_binding(p, e->value);
            if (!accept(p, ',')) break;
          }
        expect(p, ')', "',' or ')' in the argument list");
      } else {
        parse_binding(p, e->value);
      }
      if (!accept(p, ',')) break;
    }
  expect(p, ')', "',' or ')' after the arguments");
}

static void parse_stmt(P *p, Block *blk) {
  Operation *op;
  APPEND_NEW(p, op, blk->operations, blk->n_operations, new_operation);
  Tok *t = peek(p, 0);
  if (is_punct(t, '(')) { /* (T a, T b) = op(...) */
    next(p);
    if (!is_punct(peek(p, 0), ')'))
      for (;;) {
        NamedValueType *nv;
        APPEND_NEW(p, nv, op->outputs, op->n_outputs, new_nvt);
        parse_typed_name(p, nv);
        if (!accept(p, ',')) break;
      }
    expect(p, ')', "',' or ')' in the output list");
    expect(p, '=', "'=' after the outputs");
  } else if (!(t->kind == T_IDENT && is_punct(peek(p, 1), '('))) { /* T a = op(...); else op(...) has no outputs */
    NamedValueType *nv;
    APPEND_NEW(p, nv, op->outputs, op->n_outputs, new_nvt);
    parse_typed_name(p, nv);
    expect(p, '=', "'=' after the output name");
  }
  Tok ty = expect_ident(p, "an operation type");
  op->type = tok_strdup(p, &ty);
  parse_arguments(p, op);
  for (;;) {
    Tok *x = peek(p, 0);
    if (is_punct(x, '[')) {
      parse_op_attrs(p, &op->attributes, &op->n_attributes);
    } else if (is_punct(x, '{') || is_punct(x, '(')) { /* nested block, optionally with inputs */
      Block *nb;
      APPEND_NEW(p, nb, op->blocks, op->n_blocks, new_block);
      if (accept(p, '(')) {
        if (!is_punct(peek(p, 0), ')'))
          for (;;) {
            NamedValueType *nv;
            APPEND_NEW(p, nv, nb->inputs, nb->n_inputs, new_nvt);
            parse_typed_name(p, nv);
            if (!accept(p, ',')) break;
          }
        expect(p, ')', "',' or ')' in the block inputs");
      }
      parse_block_body(p, nb, 0);
    } else {
      break;
    }
  }
  expect(p, ';', "';' after the operation");
}

static void parse_block_body(P *p, Block *b, int outputs_optional) {
  Tok *t = peek(p, 0);
  enter(p, t);
  expect(p, '{', "'{' to start the block");
  for (;;) {
    t = peek(p, 0);
    if (is_punct(t, '}')) break;
    if (t->kind == T_EOF) fail_tok(p, t, "'}' to close the block");
    parse_stmt(p, b);
  }
  next(p);
  if (peek(p, 0)->kind == T_ARROW || !outputs_optional) {
    t = peek(p, 0);
    if (t->kind != T_ARROW) fail_tok(p, t, "'->' and the block outputs");
    next(p);
    expect(p, '(', "'(' to start the block outputs");
    if (!is_punct(peek(p, 0), ')'))
      for (;;) {
        Tok n = expect_ident(p, "an output name");
        RESERVE(p, b->outputs, b->n_outputs);
        b->outputs[b->n_outputs] = tok_strdup(p, &n);
        b->n_outputs++;
        if (!accept(p, ',')) break;
      }
    expect(p, ')', "',' or ')' in the block outputs");
  }
  leave(p);
}

/* ---------------------------------------------------------------- functions and program */

static const char *opset_name(P *p, const Tok *t) {
  static const struct {
    const char *tag, *name;
  } map[] = {{"ios15", "CoreML5"}, {"ios16", "CoreML6"}, {"ios17", "CoreML7"}, {"ios18", "CoreML8"},
             {"ios26", "CoreML9"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (tok_is_ci(p, t, map[i].tag)) return map[i].name;
  return NULL;
}

static void parse_function(P *p) {
  Program *prog = p->prog;
  Tok kw = *peek(p, 0);
  if (!tok_is(p, &kw, "func")) fail_tok(p, &kw, "'func' or '}'");
  next(p);
  Tok name = expect_ident(p, "a function name");
  for (size_t i = 0; i < prog->n_functions; i++) {
    const char *k = prog->functions[i]->key;
    if (strlen(k) == name.n && memcmp(k, p->s + name.off, name.n) == 0) {
      char b[48];
      fail_at(p, name.line, name.col, "function %s is defined twice", tok_desc(p, &name, b, sizeof b));
    }
  }
  FunctionsEntry *fe;
  APPEND_NEW(p, fe, prog->functions, prog->n_functions, new_functions_entry);
  fe->key = tok_strdup(p, &name);
  Function *f = fe->value = new_function(p);
  expect(p, '<', "'<' and the opset after the function name");
  Tok tag = expect_ident(p, "an opset name such as ios16");
  const char *mapped = opset_name(p, &tag);
  f->opset = mapped ? xstrdup(p, mapped) : tok_strdup(p, &tag);
  expect(p, '>', "'>' after the opset");
  expect(p, '(', "'(' to start the function inputs");
  if (!is_punct(peek(p, 0), ')'))
    for (;;) {
      NamedValueType *nv;
      APPEND_NEW(p, nv, f->inputs, f->n_inputs, new_nvt);
      parse_typed_name(p, nv);
      if (!accept(p, ',')) break;
    }
  expect(p, ')', "',' or ')' in the function inputs");
  if (is_punct(peek(p, 0), '[')) parse_function_attrs(p, &f->attributes, &f->n_attributes);
  BlockEntry *be;
  APPEND_NEW(p, be, f->block_specializations, f->n_block_specializations, new_block_entry);
  be->key = xstrdup(p, f->opset);
  be->value = new_block(p);
  parse_block_body(p, be->value, 1);
  accept(p, ';');
}

static void parse_program(P *p) {
  Program *prog = p->prog = new_program(p);
  Tok kw = *peek(p, 0);
  if (!tok_is(p, &kw, "program")) fail_tok(p, &kw, "'program' at the start of MIL text");
  next(p);
  expect(p, '(', "'(' after 'program'");
  Tok v = next(p);
  if (v.kind != T_NUM) fail_tok(p, &v, "a version number such as 1.0");
  int64_t ver = 0;
  size_t i = 0;
  const char *q = p->s + v.off;
  for (; i < v.n && is_digit((unsigned char)q[i]); i++) {
    if (ver > (INT64_MAX - 9) / 10) fail_at(p, v.line, v.col, "version number is too large");
    ver = ver * 10 + (q[i] - '0');
  }
  if (i == 0 || (i < v.n && q[i] != '.')) fail_tok(p, &v, "a version number such as 1.0");
  for (size_t k = i + 1; k < v.n; k++)
    if (!is_digit((unsigned char)q[k])) fail_tok(p, &v, "a version number such as 1.0");
  prog->version = ver;
  expect(p, ')', "')' after the program version");
  if (is_punct(peek(p, 0), '[')) parse_program_attrs(p, &prog->attributes, &prog->n_attributes);
  Tok *open = peek(p, 0);
  enter(p, open);
  expect(p, '{', "'{' to start the program body");
  for (;;) {
    Tok *t = peek(p, 0);
    if (is_punct(t, '}')) break;
    if (t->kind == T_EOF) fail_tok(p, t, "'}' to close the program");
    parse_function(p);
  }
  next(p);
  leave(p);
  accept(p, ';');
  Tok *end = peek(p, 0);
  if (end->kind != T_EOF) fail_tok(p, end, "end of text after the program");
}

int mlsh_mil_text_parse(const char *text, size_t len, CoreML__Specification__MILSpec__Program **out, char *err,
                        size_t errlen) {
  if (out) *out = NULL;
  if (err && errlen) err[0] = 0;
  if (!out || (!text && len)) {
    if (err && errlen) snprintf(err, errlen, "line 1, column 1: no text to parse");
    return -1;
  }
  P *p = calloc(1, sizeof *p);
  if (!p) {
    if (err && errlen) snprintf(err, errlen, "line 1, column 1: out of memory");
    return -1;
  }
  p->s = text ? text : "";
  p->len = len;
  p->line = 1;
  p->col = 1;
  p->err = err;
  p->errlen = err ? errlen : 0;
  const struct lconv *lc = localeconv();
  p->dp = (lc && lc->decimal_point && lc->decimal_point[0]) ? lc->decimal_point[0] : '.';
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p->pos = 3; /* UTF-8 byte order mark */
  if (setjmp(p->jb)) {
    if (p->prog) protobuf_c_message_free_unpacked((ProtobufCMessage *)p->prog, NULL);
    free(p);
    return -1;
  }
  parse_program(p);
  *out = p->prog;
  free(p);
  return 0;
}
