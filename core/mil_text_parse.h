/* mil_text_parse.h — internal to the MIL text reader (mil_text.c, mil_text_lex.c,
 * mil_text_value.c): the parser state, tokens, the protobuf type names and the helpers the three
 * files share. Not a public interface: see mil_text.h for the contract.
 * Errors unwind with longjmp through P.jb: every helper that can fail (mlt_fail_*, mlt_xmalloc and
 * the constructors) never returns on failure. */
#ifndef MLSH_MIL_TEXT_PARSE_H
#define MLSH_MIL_TEXT_PARSE_H
#include "mil_text.h"
#include "dtype.h"

#include <setjmp.h>
#include <stdint.h>
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

/* Parser state and tokens. */
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

typedef struct {
  int neg;
  uint64_t mag;
} IntLit;

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

_Noreturn PRINTF_LIKE(4, 5) void mlt_fail_at(P *p, size_t line, size_t col, const char *fmt, ...);
_Noreturn void mlt_oom(P *p);
const char *mlt_tok_desc(P *p, const Tok *t, char *buf, size_t bn);
_Noreturn void mlt_fail_tok(P *p, const Tok *t, const char *what);
void mlt_enter(P *p, const Tok *t);
void mlt_leave(P *p);
void *mlt_xmalloc(P *p, size_t n);
int mlt_arr_full(size_t n);
size_t mlt_arr_next(P *p, size_t n, size_t elsz);
char *mlt_xstrdup(P *p, const char *s);
int mlt_is_digit(int c);
Tok *mlt_peek(P *p, int k);
Tok mlt_next(P *p);
int mlt_is_punct(const Tok *t, char ch);
int mlt_accept(P *p, char ch);
Tok mlt_expect(P *p, char ch, const char *what);
Tok mlt_expect_ident(P *p, const char *what);
int mlt_tok_is(P *p, const Tok *t, const char *word);
int mlt_tok_is_ci(P *p, const Tok *t, const char *word);
char *mlt_tok_strdup(P *p, const Tok *t);
int mlt_hexval(int c);
char *mlt_tok_string(P *p, const Tok *t);
double mlt_tok_double(P *p, const Tok *t);
IntLit mlt_tok_int(P *p, const Tok *t, const char *what);
int64_t mlt_int_in_range(P *p, const Tok *t, IntLit v, int64_t lo, uint64_t hi, const char *dtname);
const DInfo *mlt_dtype_by_tok(P *p, const Tok *t);
TensorType *mlt_attach_tensor_type(P *p, ValueType *vt);
void mlt_parse_type(P *p, ValueType *vt);
void mlt_copy_type(P *p, ValueType *dst, const ValueType *src);
int mlt_is_typed_literal_start(P *p);
int mlt_is_literal_start(P *p);
void mlt_parse_literal(P *p, Value *v);

#define RESERVE(p, arr, cnt)                                         \
  do {                                                               \
    if (mlt_arr_full(cnt)) {                                             \
      void *nb_ = realloc((void *)(arr), mlt_arr_next(p, cnt, sizeof *(arr))); \
      if (!nb_) mlt_oom(p);                                              \
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
  static inline T *fn(P *p) {                    \
    T *m = mlt_xmalloc(p, sizeof *m);         \
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

#endif
