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
 * attached to the Program before anything else can fail, so freeing the root frees everything.
 * This file holds types, blocks, operations, functions and the program; the lexer is in
 * mil_text_lex.c and literal values in mil_text_value.c (shared state: mil_text_parse.h). */
#include "mil_text_parse.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- types */

void mlt_parse_type(P *p, ValueType *vt);

static void parse_dim(P *p, Dimension *d) {
  Tok t = mlt_next(p);
  if (t.kind == T_NUM) {
    IntLit v = mlt_tok_int(p, &t, "a dimension (an integer, '?' or a symbol)");
    if (v.neg && v.mag) mlt_fail_at(p, t.line, t.col, "a dimension cannot be negative");
    d->constant = new_const_dim(p);
    d->dimension_case = CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_CONSTANT;
    d->constant->size = v.mag;
  } else if (t.kind == T_IDENT || mlt_is_punct(&t, '?') || mlt_is_punct(&t, '*')) {
    d->unknown = new_unknown_dim(p);
    d->dimension_case = CORE_ML__SPECIFICATION__MILSPEC__DIMENSION__DIMENSION_UNKNOWN;
    d->unknown->variadic = mlt_is_punct(&t, '*');
  } else {
    mlt_fail_tok(p, &t, "a dimension (an integer, '?' or a symbol)");
  }
}

TensorType *mlt_attach_tensor_type(P *p, ValueType *vt) {
  vt->tensortype = new_tensor_type(p);
  vt->type_case = VT(TENSOR_TYPE);
  return vt->tensortype;
}

void mlt_parse_type(P *p, ValueType *vt) {
  Tok *pt = mlt_peek(p, 0);
  mlt_enter(p, pt);
  Tok t = mlt_next(p);
  const DInfo *di;
  if (t.kind != T_IDENT)
    mlt_fail_tok(p, &t, "a type (tensor<...>, a dtype, state<...>, list<...>, tuple<...> or dict<...>)");
  int angled = mlt_is_punct(mlt_peek(p, 0), '<');
  if (angled && mlt_tok_is(p, &t, "tensor")) {
    mlt_next(p);
    TensorType *tt = mlt_attach_tensor_type(p, vt);
    Tok d = mlt_next(p);
    if (!(di = mlt_dtype_by_tok(p, &d))) {
      char b[48];
      if (d.kind == T_IDENT) mlt_fail_at(p, d.line, d.col, "unknown dtype %s", mlt_tok_desc(p, &d, b, sizeof b));
      mlt_fail_tok(p, &d, "a dtype");
    }
    tt->datatype = (CoreML__Specification__MILSpec__DataType)di->dt;
    if (mlt_accept(p, ',')) {
      if (mlt_accept(p, '*')) {
        tt->rank = -1; /* unknown rank */
      } else {
        mlt_expect(p, '[', "'[' to start the shape");
        if (!mlt_is_punct(mlt_peek(p, 0), ']'))
          for (;;) {
            Dimension *dim;
            APPEND_NEW(p, dim, tt->dimensions, tt->n_dimensions, new_dim);
            parse_dim(p, dim);
            if (!mlt_accept(p, ',')) break;
          }
        mlt_expect(p, ']', "',' or ']' in the shape");
        tt->rank = (int64_t)tt->n_dimensions;
      }
    }
    mlt_expect(p, '>', "'>' to close tensor<...>");
  } else if (angled && mlt_tok_is(p, &t, "state")) {
    mlt_next(p);
    vt->statetype = new_state_type(p);
    vt->type_case = VT(STATE_TYPE);
    vt->statetype->wrappedtype = new_vt(p);
    mlt_parse_type(p, vt->statetype->wrappedtype);
    mlt_expect(p, '>', "'>' to close state<...>");
  } else if (angled && mlt_tok_is(p, &t, "list")) {
    mlt_next(p);
    vt->listtype = new_list_type(p);
    vt->type_case = VT(LIST_TYPE);
    vt->listtype->type = new_vt(p);
    mlt_parse_type(p, vt->listtype->type);
    if (mlt_accept(p, ',')) {
      vt->listtype->length = new_dim(p);
      parse_dim(p, vt->listtype->length);
    }
    mlt_expect(p, '>', "'>' to close list<...>");
  } else if (angled && mlt_tok_is(p, &t, "tuple")) {
    mlt_next(p);
    TupleType *tu = vt->tupletype = new_tuple_type(p);
    vt->type_case = VT(TUPLE_TYPE);
    if (!mlt_is_punct(mlt_peek(p, 0), '>'))
      for (;;) {
        ValueType *el;
        APPEND_NEW(p, el, tu->types, tu->n_types, new_vt);
        mlt_parse_type(p, el);
        if (!mlt_accept(p, ',')) break;
      }
    mlt_expect(p, '>', "',' or '>' in tuple<...>");
  } else if (angled && mlt_tok_is(p, &t, "dict")) {
    mlt_next(p);
    DictionaryType *dt = vt->dictionarytype = new_dict_type(p);
    vt->type_case = VT(DICTIONARY_TYPE);
    dt->keytype = new_vt(p);
    mlt_parse_type(p, dt->keytype);
    mlt_expect(p, ',', "',' between the key and value types of dict<...>");
    dt->valuetype = new_vt(p);
    mlt_parse_type(p, dt->valuetype);
    mlt_expect(p, '>', "'>' to close dict<...>");
  } else if ((di = mlt_dtype_by_tok(p, &t))) {
    TensorType *tt = mlt_attach_tensor_type(p, vt); /* bare scalar type, e.g. `int32 x = ...` */
    tt->datatype = (CoreML__Specification__MILSpec__DataType)di->dt;
    tt->rank = 0;
  } else {
    mlt_fail_tok(p, &t, "a type (tensor<...>, a dtype, state<...>, list<...>, tuple<...> or dict<...>)");
  }
  mlt_leave(p);
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
void mlt_copy_type(P *p, ValueType *dst, const ValueType *src) {
  switch (src->type_case) {
  case VT(TENSOR_TYPE): {
    TensorType *tt = mlt_attach_tensor_type(p, dst);
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
    mlt_copy_type(p, dst->statetype->wrappedtype, src->statetype->wrappedtype);
    break;
  case VT(LIST_TYPE):
    dst->listtype = new_list_type(p);
    dst->type_case = VT(LIST_TYPE);
    dst->listtype->type = new_vt(p);
    mlt_copy_type(p, dst->listtype->type, src->listtype->type);
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
      mlt_copy_type(p, el, src->tupletype->types[i]);
    }
    break;
  case VT(DICTIONARY_TYPE):
    dst->dictionarytype = new_dict_type(p);
    dst->type_case = VT(DICTIONARY_TYPE);
    dst->dictionarytype->keytype = new_vt(p);
    mlt_copy_type(p, dst->dictionarytype->keytype, src->dictionarytype->keytype);
    dst->dictionarytype->valuetype = new_vt(p);
    mlt_copy_type(p, dst->dictionarytype->valuetype, src->dictionarytype->valuetype);
    break;
  default: break;
  }
}

/* ---------------------------------------------------------------- attributes */

#define DEF_ATTR_PARSER(fn, Entry, ctor)                                        \
  static void fn(P *p, Entry ***arr, size_t *cnt) {                             \
    mlt_expect(p, '[', "'['");                                                      \
    if (!mlt_is_punct(mlt_peek(p, 0), ']'))                                             \
      for (;;) {                                                                \
        Tok k = mlt_expect_ident(p, "an attribute name");                          \
        mlt_expect(p, '=', "'=' after the attribute name");                         \
        if (!mlt_is_literal_start(p)) mlt_fail_tok(p, mlt_peek(p, 0), "a literal value");   \
        Entry *e;                                                               \
        APPEND_NEW(p, e, *arr, *cnt, ctor);                                     \
        e->key = mlt_tok_strdup(p, &k);                                             \
        e->value = new_value(p);                                                \
        mlt_parse_literal(p, e->value);                                             \
        if (!mlt_accept(p, ',')) break;                                             \
      }                                                                         \
    mlt_expect(p, ']', "',' or ']' in the attribute list");                         \
  }
DEF_ATTR_PARSER(parse_program_attrs, ProgramAttr, new_program_attr)
DEF_ATTR_PARSER(parse_function_attrs, FunctionAttr, new_function_attr)
DEF_ATTR_PARSER(parse_op_attrs, OpAttr, new_op_attr)

/* ---------------------------------------------------------------- blocks and operations */

static void parse_block_body(P *p, Block *b, int outputs_optional);

static void parse_typed_name(P *p, NamedValueType *nv) {
  nv->type = new_vt(p);
  mlt_parse_type(p, nv->type);
  Tok n = mlt_expect_ident(p, "a name after the type");
  nv->name = mlt_tok_strdup(p, &n);
}

static void parse_binding(P *p, Argument *arg) {
  Binding *b;
  APPEND_NEW(p, b, arg->arguments, arg->n_arguments, new_binding);
  Tok *t = mlt_peek(p, 0);
  if (t->kind == T_IDENT && !mlt_is_typed_literal_start(p)) {
    Tok n = mlt_next(p);
    b->name = mlt_tok_strdup(p, &n);
    b->binding_case = CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_NAME;
  } else if (mlt_is_literal_start(p)) {
    b->value = new_value(p);
    b->binding_case = CORE_ML__SPECIFICATION__MILSPEC__ARGUMENT__BINDING__BINDING_VALUE;
    mlt_parse_literal(p, b->value);
  } else {
    mlt_fail_tok(p, t, "a name or a literal value");
  }
}

static void parse_arguments(P *p, Operation *op) {
  mlt_expect(p, '(', "'(' after the operation type");
  if (!mlt_is_punct(mlt_peek(p, 0), ')'))
    for (;;) {
      Tok k = mlt_expect_ident(p, "an argument name");
      mlt_expect(p, '=', "'=' after the argument name");
      InputEntry *e;
      APPEND_NEW(p, e, op->inputs, op->n_inputs, new_input_entry);
      e->key = mlt_tok_strdup(p, &k);
      e->value = new_argument(p);
      if (mlt_accept(p, '(')) {
        if (!mlt_is_punct(mlt_peek(p, 0), ')'))
          for (;;) {
            parse_binding(p, e->value);
            if (!mlt_accept(p, ',')) break;
          }
        mlt_expect(p, ')', "',' or ')' in the argument list");
      } else {
        parse_binding(p, e->value);
      }
      if (!mlt_accept(p, ',')) break;
    }
  mlt_expect(p, ')', "',' or ')' after the arguments");
}

static void parse_stmt(P *p, Block *blk) {
  Operation *op;
  APPEND_NEW(p, op, blk->operations, blk->n_operations, new_operation);
  Tok *t = mlt_peek(p, 0);
  if (mlt_is_punct(t, '(')) { /* (T a, T b) = op(...) */
    mlt_next(p);
    if (!mlt_is_punct(mlt_peek(p, 0), ')'))
      for (;;) {
        NamedValueType *nv;
        APPEND_NEW(p, nv, op->outputs, op->n_outputs, new_nvt);
        parse_typed_name(p, nv);
        if (!mlt_accept(p, ',')) break;
      }
    mlt_expect(p, ')', "',' or ')' in the output list");
    mlt_expect(p, '=', "'=' after the outputs");
  } else if (!(t->kind == T_IDENT && mlt_is_punct(mlt_peek(p, 1), '('))) { /* T a = op(...); else op(...) has no outputs */
    NamedValueType *nv;
    APPEND_NEW(p, nv, op->outputs, op->n_outputs, new_nvt);
    parse_typed_name(p, nv);
    mlt_expect(p, '=', "'=' after the output name");
  }
  Tok ty = mlt_expect_ident(p, "an operation type");
  op->type = mlt_tok_strdup(p, &ty);
  parse_arguments(p, op);
  for (;;) {
    Tok *x = mlt_peek(p, 0);
    if (mlt_is_punct(x, '[')) {
      parse_op_attrs(p, &op->attributes, &op->n_attributes);
    } else if (mlt_is_punct(x, '{') || mlt_is_punct(x, '(')) { /* nested block, optionally with inputs */
      Block *nb;
      APPEND_NEW(p, nb, op->blocks, op->n_blocks, new_block);
      if (mlt_accept(p, '(')) {
        if (!mlt_is_punct(mlt_peek(p, 0), ')'))
          for (;;) {
            NamedValueType *nv;
            APPEND_NEW(p, nv, nb->inputs, nb->n_inputs, new_nvt);
            parse_typed_name(p, nv);
            if (!mlt_accept(p, ',')) break;
          }
        mlt_expect(p, ')', "',' or ')' in the block inputs");
      }
      parse_block_body(p, nb, 0);
    } else {
      break;
    }
  }
  mlt_expect(p, ';', "';' after the operation");
}

static void parse_block_body(P *p, Block *b, int outputs_optional) {
  Tok *t = mlt_peek(p, 0);
  mlt_enter(p, t);
  mlt_expect(p, '{', "'{' to start the block");
  for (;;) {
    t = mlt_peek(p, 0);
    if (mlt_is_punct(t, '}')) break;
    if (t->kind == T_EOF) mlt_fail_tok(p, t, "'}' to close the block");
    parse_stmt(p, b);
  }
  mlt_next(p);
  if (mlt_peek(p, 0)->kind == T_ARROW || !outputs_optional) {
    t = mlt_peek(p, 0);
    if (t->kind != T_ARROW) mlt_fail_tok(p, t, "'->' and the block outputs");
    mlt_next(p);
    mlt_expect(p, '(', "'(' to start the block outputs");
    if (!mlt_is_punct(mlt_peek(p, 0), ')'))
      for (;;) {
        Tok n = mlt_expect_ident(p, "an output name");
        RESERVE(p, b->outputs, b->n_outputs);
        b->outputs[b->n_outputs] = mlt_tok_strdup(p, &n);
        b->n_outputs++;
        if (!mlt_accept(p, ',')) break;
      }
    mlt_expect(p, ')', "',' or ')' in the block outputs");
  }
  mlt_leave(p);
}

/* ---------------------------------------------------------------- functions and program */

static const char *opset_name(P *p, const Tok *t) {
  static const struct {
    const char *tag, *name;
  } map[] = {{"ios15", "CoreML5"}, {"ios16", "CoreML6"}, {"ios17", "CoreML7"}, {"ios18", "CoreML8"},
             {"ios26", "CoreML9"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (mlt_tok_is_ci(p, t, map[i].tag)) return map[i].name;
  return NULL;
}

static void parse_function(P *p) {
  Program *prog = p->prog;
  Tok kw = *mlt_peek(p, 0);
  if (!mlt_tok_is(p, &kw, "func")) mlt_fail_tok(p, &kw, "'func' or '}'");
  mlt_next(p);
  Tok name = mlt_expect_ident(p, "a function name");
  for (size_t i = 0; i < prog->n_functions; i++) {
    const char *k = prog->functions[i]->key;
    if (strlen(k) == name.n && memcmp(k, p->s + name.off, name.n) == 0) {
      char b[48];
      mlt_fail_at(p, name.line, name.col, "function %s is defined twice", mlt_tok_desc(p, &name, b, sizeof b));
    }
  }
  FunctionsEntry *fe;
  APPEND_NEW(p, fe, prog->functions, prog->n_functions, new_functions_entry);
  fe->key = mlt_tok_strdup(p, &name);
  Function *f = fe->value = new_function(p);
  mlt_expect(p, '<', "'<' and the opset after the function name");
  Tok tag = mlt_expect_ident(p, "an opset name such as ios16");
  const char *mapped = opset_name(p, &tag);
  f->opset = mapped ? mlt_xstrdup(p, mapped) : mlt_tok_strdup(p, &tag);
  mlt_expect(p, '>', "'>' after the opset");
  mlt_expect(p, '(', "'(' to start the function inputs");
  if (!mlt_is_punct(mlt_peek(p, 0), ')'))
    for (;;) {
      NamedValueType *nv;
      APPEND_NEW(p, nv, f->inputs, f->n_inputs, new_nvt);
      parse_typed_name(p, nv);
      if (!mlt_accept(p, ',')) break;
    }
  mlt_expect(p, ')', "',' or ')' in the function inputs");
  if (mlt_is_punct(mlt_peek(p, 0), '[')) parse_function_attrs(p, &f->attributes, &f->n_attributes);
  BlockEntry *be;
  APPEND_NEW(p, be, f->block_specializations, f->n_block_specializations, new_block_entry);
  be->key = mlt_xstrdup(p, f->opset);
  be->value = new_block(p);
  parse_block_body(p, be->value, 1);
  mlt_accept(p, ';');
}

static void parse_program(P *p) {
  Program *prog = p->prog = new_program(p);
  Tok kw = *mlt_peek(p, 0);
  if (!mlt_tok_is(p, &kw, "program")) mlt_fail_tok(p, &kw, "'program' at the start of MIL text");
  mlt_next(p);
  mlt_expect(p, '(', "'(' after 'program'");
  Tok v = mlt_next(p);
  if (v.kind != T_NUM) mlt_fail_tok(p, &v, "a version number such as 1.0");
  int64_t ver = 0;
  size_t i = 0;
  const char *q = p->s + v.off;
  for (; i < v.n && mlt_is_digit((unsigned char)q[i]); i++) {
    if (ver > (INT64_MAX - 9) / 10) mlt_fail_at(p, v.line, v.col, "version number is too large");
    ver = ver * 10 + (q[i] - '0');
  }
  if (i == 0 || (i < v.n && q[i] != '.')) mlt_fail_tok(p, &v, "a version number such as 1.0");
  for (size_t k = i + 1; k < v.n; k++)
    if (!mlt_is_digit((unsigned char)q[k])) mlt_fail_tok(p, &v, "a version number such as 1.0");
  prog->version = ver;
  mlt_expect(p, ')', "')' after the program version");
  if (mlt_is_punct(mlt_peek(p, 0), '[')) parse_program_attrs(p, &prog->attributes, &prog->n_attributes);
  Tok *open = mlt_peek(p, 0);
  mlt_enter(p, open);
  mlt_expect(p, '{', "'{' to start the program body");
  for (;;) {
    Tok *t = mlt_peek(p, 0);
    if (mlt_is_punct(t, '}')) break;
    if (t->kind == T_EOF) mlt_fail_tok(p, t, "'}' to close the program");
    parse_function(p);
  }
  mlt_next(p);
  mlt_leave(p);
  mlt_accept(p, ';');
  Tok *end = mlt_peek(p, 0);
  if (end->kind != T_EOF) mlt_fail_tok(p, end, "end of text after the program");
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

