/* mil_text_lex.c — MIL text reader: errors, allocation, the lexer and token decoding
 * (strings, numbers). See mil_text_parse.h. */
#include "mil_text_parse.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

_Noreturn PRINTF_LIKE(4, 5) void mlt_fail_at(P *p, size_t line, size_t col, const char *fmt, ...) {
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

_Noreturn void mlt_oom(P *p) { mlt_fail_at(p, p->line, p->col, "out of memory"); }

/* A short printable rendering of a token for messages (never contains a newline). */
const char *mlt_tok_desc(P *p, const Tok *t, char *buf, size_t bn) {
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

_Noreturn void mlt_fail_tok(P *p, const Tok *t, const char *what) {
  char b[48];
  mlt_fail_at(p, t->line, t->col, "expected %s, found %s", what, mlt_tok_desc(p, t, b, sizeof b));
}

void mlt_enter(P *p, const Tok *t) {
  if (++p->depth > MLSH_MIL_TEXT_MAX_DEPTH)
    mlt_fail_at(p, t->line, t->col, "nesting deeper than %d levels", MLSH_MIL_TEXT_MAX_DEPTH);
}
void mlt_leave(P *p) { p->depth--; }

/* ---------------------------------------------------------------- memory */

void *mlt_xmalloc(P *p, size_t n) {
  void *r = malloc(n ? n : 1);
  if (!r) mlt_oom(p);
  return r;
}

/* Arrays grow to the next power of two, so a count alone tells whether there is room:
 * the array is full exactly when its count is 0 or a power of two. */
int mlt_arr_full(size_t n) { return n == 0 || (n & (n - 1)) == 0; }
size_t mlt_arr_next(P *p, size_t n, size_t elsz) {
  size_t c = n ? n * 2 : 1;
  if (n > SIZE_MAX / 2 || c > SIZE_MAX / elsz) mlt_oom(p);
  return c * elsz;
}
char *mlt_xstrdup(P *p, const char *s) {
  size_t n = strlen(s);
  char *r = mlt_xmalloc(p, n + 1);
  memcpy(r, s, n + 1);
  return r;
}

/* ---------------------------------------------------------------- lexer */

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
int mlt_is_digit(int c) { return c >= '0' && c <= '9'; }
int is_ident_char(int c) { return is_alpha(c) || mlt_is_digit(c) || c == '@'; }

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
        if (p->pos >= p->len) mlt_fail_at(p, line, col, "unterminated comment");
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
  } else if (mlt_is_digit(c) ||
             ((c == '-' || c == '+' || c == '.') && (mlt_is_digit(cur(p, 1)) || cur(p, 1) == '.' || is_alpha(cur(p, 1))))) {
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
      if (d < 0) mlt_fail_at(p, t->line, t->col, "unterminated string");
      adv(p);
      if (d == '"') break;
      if (d == '\\') {
        if (cur(p, 0) < 0) mlt_fail_at(p, t->line, t->col, "unterminated string");
        adv(p);
      }
    }
    t->kind = T_STR;
  } else if (c != 0 && strchr("()[]{}<>,=;?*:", c)) {
    adv(p);
    t->kind = T_PUNCT;
    t->ch = (char)c;
  } else if (c >= 0x21 && c < 0x7f) {
    mlt_fail_at(p, t->line, t->col, "unexpected character '%c'", c);
  } else {
    mlt_fail_at(p, t->line, t->col, "unexpected byte 0x%02X", (unsigned)c);
  }
  t->n = p->pos - t->off;
}

Tok *mlt_peek(P *p, int k) {
  while (p->nla <= k) lex(p, &p->la[p->nla++]);
  return &p->la[k];
}

Tok mlt_next(P *p) {
  mlt_peek(p, 0);
  Tok t = p->la[0];
  p->la[0] = p->la[1];
  p->nla--;
  return t;
}

int mlt_is_punct(const Tok *t, char ch) { return t->kind == T_PUNCT && t->ch == ch; }

int mlt_accept(P *p, char ch) {
  if (!mlt_is_punct(mlt_peek(p, 0), ch)) return 0;
  mlt_next(p);
  return 1;
}

Tok mlt_expect(P *p, char ch, const char *what) {
  Tok *t = mlt_peek(p, 0);
  if (!mlt_is_punct(t, ch)) mlt_fail_tok(p, t, what);
  return mlt_next(p);
}

Tok mlt_expect_ident(P *p, const char *what) {
  Tok *t = mlt_peek(p, 0);
  if (t->kind != T_IDENT) mlt_fail_tok(p, t, what);
  return mlt_next(p);
}

int mlt_tok_is(P *p, const Tok *t, const char *word) {
  size_t n = strlen(word);
  return t->kind == T_IDENT && t->n == n && memcmp(p->s + t->off, word, n) == 0;
}

int mlt_tok_is_ci(P *p, const Tok *t, const char *word) {
  size_t n = strlen(word);
  if (t->n != n) return 0;
  for (size_t i = 0; i < n; i++) {
    int a = (unsigned char)p->s[t->off + i], b = (unsigned char)word[i];
    if (a >= 'A' && a <= 'Z') a += 'a' - 'A';
    if (a != b) return 0;
  }
  return 1;
}

char *mlt_tok_strdup(P *p, const Tok *t) {
  char *r = mlt_xmalloc(p, t->n + 1);
  memcpy(r, p->s + t->off, t->n);
  r[t->n] = 0;
  return r;
}

int mlt_hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The decoded contents of a string token (escapes \n \t \r \0 \\ \" \' \xHH \uXXXX; any other
 * escaped character stands for itself). A NUL in the result is refused: MIL strings are C strings. */
char *mlt_tok_string(P *p, const Tok *t) {
  if (t->kind != T_STR) mlt_fail_tok(p, t, "a string");
  const char *q = p->s + t->off + 1, *e = p->s + t->off + t->n - 1;
  char *out = mlt_xmalloc(p, (size_t)(e - q) + 1), *o = out;
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
        int h1 = q < e ? mlt_hexval((unsigned char)q[0]) : -1, h2 = q + 1 < e ? mlt_hexval((unsigned char)q[1]) : -1;
        if (h1 < 0 || h2 < 0) { bad = "bad \\x escape in a string"; break; }
        if (h1 == 0 && h2 == 0) { bad = "a string contains a NUL byte"; break; }
        *o++ = (char)(h1 * 16 + h2);
        q += 2;
        break;
      }
      case 'u': {
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
          int h = q < e ? mlt_hexval((unsigned char)*q) : -1;
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
    mlt_fail_at(p, t->line, t->col, "%s", bad);
  }
  *o = 0;
  return out;
}

/* ---------------------------------------------------------------- numbers */

static size_t tok_copy(P *p, const Tok *t, char *buf, size_t bn) {
  if (t->n >= bn) mlt_fail_at(p, t->line, t->col, "number is too long");
  memcpy(buf, p->s + t->off, t->n);
  buf[t->n] = 0;
  return t->n;
}

double mlt_tok_double(P *p, const Tok *t) {
  if (t->kind == T_IDENT) {
    if (mlt_tok_is_ci(p, t, "inf") || mlt_tok_is_ci(p, t, "infinity")) return INFINITY;
    if (mlt_tok_is_ci(p, t, "nan")) return NAN;
  }
  if (t->kind != T_NUM) mlt_fail_tok(p, t, "a number");
  char b[160];
  size_t n = tok_copy(p, t, b, sizeof b);
  if (p->dp != '.')
    for (char *q = b; *q; q++)
      if (*q == '.') *q = p->dp;
  char *end;
  double d = strtod(b, &end);
  if (n == 0 || end != b + n) {
    char d2[48];
    mlt_fail_at(p, t->line, t->col, "malformed number %s", mlt_tok_desc(p, t, d2, sizeof d2));
  }
  return d;
}


IntLit mlt_tok_int(P *p, const Tok *t, const char *what) {
  if (t->kind != T_NUM) mlt_fail_tok(p, t, what);
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
  if (base == 10 ? !mlt_is_digit((unsigned char)*q) : mlt_hexval((unsigned char)*q) < 0) mlt_fail_tok(p, t, what);
  char *end;
  errno = 0;
  unsigned long long v = strtoull(q, &end, base);
  if (*end) mlt_fail_tok(p, t, what);
  if (errno == ERANGE) mlt_fail_at(p, t->line, t->col, "integer %s is out of range", mlt_tok_desc(p, t, d2, sizeof d2));
  r.mag = (uint64_t)v;
  return r;
}

int64_t mlt_int_in_range(P *p, const Tok *t, IntLit v, int64_t lo, uint64_t hi, const char *dtname) {
  char d2[48];
  if (v.neg && v.mag) {
    if (lo >= 0 || v.mag - 1 > (uint64_t)(-(lo + 1)))
      mlt_fail_at(p, t->line, t->col, "%s is out of range for %s", mlt_tok_desc(p, t, d2, sizeof d2), dtname);
    return -(int64_t)(v.mag - 1) - 1;
  }
  if (v.mag > hi) mlt_fail_at(p, t->line, t->col, "%s is out of range for %s", mlt_tok_desc(p, t, d2, sizeof d2), dtname);
  return (int64_t)v.mag; /* uint64 above INT64_MAX wraps, as the longInts field stores it */
}

