/* json.c — strict, bounded JSON reader (see json.h). */
#include "json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *s, *end, *start;
  char *err;
  size_t errlen;
  int failed;
} jp;

static int line_of(const jp *p) {
  int line = 1;
  for (const char *c = p->start; c < p->s && c < p->end; c++) line += *c == '\n';
  return line;
}

static mlsh_json *fail(jp *p, const char *why) {
  if (!p->failed) snprintf(p->err, p->errlen, "line %d: %s", line_of(p), why);
  p->failed = 1;
  return NULL;
}

static void skip_ws(jp *p) {
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static void put_utf8(char *out, size_t *o, unsigned cp) {
  if (cp < 0x80) out[(*o)++] = (char)cp;
  else if (cp < 0x800) { out[(*o)++] = (char)(0xc0 | (cp >> 6)); out[(*o)++] = (char)(0x80 | (cp & 0x3f)); }
  else if (cp < 0x10000) {
    out[(*o)++] = (char)(0xe0 | (cp >> 12)); out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[(*o)++] = (char)(0x80 | (cp & 0x3f));
  } else {
    out[(*o)++] = (char)(0xf0 | (cp >> 18)); out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[(*o)++] = (char)(0x80 | (cp & 0x3f));
  }
}

static int hex4(const char *s, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    unsigned d = (c >= '0' && c <= '9') ? (unsigned)(c - '0') : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
               : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10) : 16u;
    if (d > 15) return -1;
    *v = *v * 16 + d;
  }
  return 0;
}

/* Reads a string at p->s (which is at the opening quote); returns malloc'd text. */
static char *parse_string(jp *p) {
  p->s++;
  const char *q = p->s;
  while (q < p->end && *q != '"') q += (*q == '\\' && q + 1 < p->end) ? 2 : 1;
  if (q >= p->end) { fail(p, "unterminated string"); return NULL; }
  char *out = malloc((size_t)(q - p->s) + 1); /* escapes never grow the text */
  if (!out) { fail(p, "out of memory"); return NULL; }
  size_t o = 0;
  while (p->s < q) {
    char c = *p->s++;
    if ((unsigned char)c < 0x20) { free(out); fail(p, "control character in string"); return NULL; }
    if (c != '\\') { out[o++] = c; continue; }
    c = *p->s++;
    switch (c) {
      case '"': case '\\': case '/': out[o++] = c; break;
      case 'b': out[o++] = '\b'; break;
      case 'f': out[o++] = '\f'; break;
      case 'n': out[o++] = '\n'; break;
      case 'r': out[o++] = '\r'; break;
      case 't': out[o++] = '\t'; break;
      case 'u': {
        unsigned cp;
        if (q - p->s < 4 || hex4(p->s, &cp)) { free(out); fail(p, "bad \\u escape"); return NULL; }
        p->s += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && q - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u') {
          unsigned lo;
          if (!hex4(p->s + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p->s += 6;
          }
        }
        put_utf8(out, &o, cp); /* 6 escape bytes always cover up to 4 output bytes */
        break;
      }
      default: free(out); fail(p, "bad escape in string"); return NULL;
    }
  }
  out[o] = 0;
  p->s = q + 1;
  return out;
}

static mlsh_json *parse_value(jp *p, int depth);

static mlsh_json *new_node(jp *p, mlsh_json_kind k) {
  mlsh_json *j = calloc(1, sizeof *j);
  if (!j) return fail(p, "out of memory");
  j->kind = k;
  return j;
}

static mlsh_json *parse_container(jp *p, int depth, int is_object) {
  if (depth >= MLSH_JSON_MAX_DEPTH) return fail(p, "nesting too deep");
  mlsh_json *j = new_node(p, is_object ? MLSH_JSON_OBJECT : MLSH_JSON_ARRAY), **tail;
  if (!j) return NULL;
  tail = &j->child;
  p->s++;
  skip_ws(p);
  if (p->s < p->end && *p->s == (is_object ? '}' : ']')) { p->s++; return j; }
  for (;;) {
    char *key = NULL;
    skip_ws(p);
    if (is_object) {
      if (p->s >= p->end || *p->s != '"') { mlsh_json_free(j); return fail(p, "expected a member name"); }
      if (!(key = parse_string(p))) { mlsh_json_free(j); return NULL; }
      skip_ws(p);
      if (p->s >= p->end || *p->s != ':') { free(key); mlsh_json_free(j); return fail(p, "expected ':'"); }
      p->s++;
    }
    mlsh_json *v = parse_value(p, depth + 1);
    if (!v) { free(key); mlsh_json_free(j); return NULL; }
    v->key = key;
    *tail = v;
    tail = &v->next;
    skip_ws(p);
    if (p->s < p->end && *p->s == ',') { p->s++; continue; }
    if (p->s < p->end && *p->s == (is_object ? '}' : ']')) { p->s++; return j; }
    mlsh_json_free(j);
    return fail(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static mlsh_json *parse_value(jp *p, int depth) {
  skip_ws(p);
  if (p->s >= p->end) return fail(p, "unexpected end of text");
  char c = *p->s;
  if (c == '{' || c == '[') return parse_container(p, depth, c == '{');
  if (c == '"') {
    char *s = parse_string(p);
    if (!s) return NULL;
    mlsh_json *j = new_node(p, MLSH_JSON_STRING);
    if (!j) { free(s); return NULL; }
    j->string = s;
    return j;
  }
  static const struct { const char *word; mlsh_json_kind kind; double v; } words[] = {
    {"true", MLSH_JSON_BOOL, 1}, {"false", MLSH_JSON_BOOL, 0}, {"null", MLSH_JSON_NULL, 0}};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(words[i].word);
    if ((size_t)(p->end - p->s) >= n && memcmp(p->s, words[i].word, n) == 0) {
      p->s += n;
      mlsh_json *j = new_node(p, words[i].kind);
      if (j) j->number = words[i].v;
      return j;
    }
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    char buf[64];
    size_t n = 0;
    while (p->s + n < p->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", p->s[n])) n++;
    memcpy(buf, p->s, n);
    buf[n] = 0;
    char *endp;
    double v = strtod(buf, &endp);
    if (endp == buf) return fail(p, "bad number");
    p->s += endp - buf;
    mlsh_json *j = new_node(p, MLSH_JSON_NUMBER);
    if (j) j->number = v;
    return j;
  }
  return fail(p, "unexpected character");
}

mlsh_json *mlsh_json_parse(const char *text, size_t len, char *err, size_t errlen) {
  jp p = {text, text + len, text, err, errlen, 0};
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) p.s += 3; /* UTF-8 BOM */
  mlsh_json *j = parse_value(&p, 0);
  if (!j) return NULL;
  skip_ws(&p);
  if (p.s != p.end) {
    mlsh_json_free(j);
    return fail(&p, "text after the JSON value");
  }
  return j;
}

void mlsh_json_free(mlsh_json *j) {
  while (j) {
    mlsh_json *next = j->next;
    mlsh_json_free(j->child);
    free(j->string);
    free(j->key);
    free(j);
    j = next;
  }
}

const mlsh_json *mlsh_json_get(const mlsh_json *obj, const char *key) {
  if (!obj || obj->kind != MLSH_JSON_OBJECT) return NULL;
  for (const mlsh_json *c = obj->child; c; c = c->next)
    if (c->key && strcmp(c->key, key) == 0) return c;
  return NULL;
}

const char *mlsh_json_get_string(const mlsh_json *obj, const char *key) {
  const mlsh_json *v = mlsh_json_get(obj, key);
  return v && v->kind == MLSH_JSON_STRING ? v->string : NULL;
}
