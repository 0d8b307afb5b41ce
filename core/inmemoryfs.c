/* inmemoryfs.c — the flattened Core ML payload tree of a .pte delegate (see inmemoryfs.h). */
#include "inmemoryfs.h"
#include "json.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_space(uint8_t c) { return c == 0 || c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

int mlsh_imfs_sniff(const uint8_t *buf, size_t len) {
  while (len && is_space(buf[len - 1])) len--;
  return len && buf[len - 1] == '{';
}

/* Copy the reversed JSON at the end of buf into a forward buffer; *start = its first byte in buf. */
static char *reversed_json(const uint8_t *buf, size_t len, size_t *outlen, size_t *start, const char **why) {
  size_t i = len;
  while (i && is_space(buf[i - 1])) i--;
  if (!i || buf[i - 1] != '{') { *why = "no metadata at the end (last byte is not '{')"; return NULL; }
  size_t cap = i < MLSH_IMFS_MAX_JSON ? i : MLSH_IMFS_MAX_JSON;
  char *out = malloc(cap + 1);
  if (!out) { *why = "out of memory"; return NULL; }
  size_t n = 0;
  int depth = 0, str = 0, esc = 0;
  while (i && n < cap) {
    char c = (char)buf[--i];
    out[n++] = c;
    if (str) {
      if (esc) esc = 0;
      else if (c == '\\') esc = 1;
      else if (c == '"') str = 0;
    } else if (c == '"') str = 1;
    else if (c == '{') depth++;
    else if (c == '}' && --depth == 0) {
      out[n] = 0;
      *outlen = n;
      *start = i;
      return out;
    }
  }
  free(out);
  *why = n >= MLSH_IMFS_MAX_JSON ? "metadata exceeds 10 MiB" : "metadata braces do not balance";
  return NULL;
}

static int get_u64(const mlsh_json *o, const char *key, uint64_t *v) {
  const mlsh_json *n = mlsh_json_get(o, key);
  if (!n || n->kind != MLSH_JSON_NUMBER || n->number < 0 || n->number > 9007199254740992.0 || floor(n->number) != n->number) return -1;
  *v = (uint64_t)n->number;
  return 0;
}

static int bad_name(const char *s) {
  return !*s || strchr(s, '/') || strchr(s, '\\') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

static int read_node(const mlsh_json *j, size_t i, mlsh_imfs *fs, const char *name, mlsh_err *e) {
  mlsh_imfs_node *nd = &fs->nodes[i];
  const char *nm = mlsh_json_get_string(j, "name");
  uint64_t kind;
  if (!nm) return mlsh_fail(e, name, "payload node %zu has no name", i);
  if (get_u64(j, "kind", &kind) || kind > 1)
    return mlsh_fail(e, name, "payload node %zu (%s) is neither a file nor a directory (links are refused)", i, nm);
  if (!(nd->name = strdup(nm))) return mlsh_fail(e, name, "out of memory");
  nd->dir = kind == 1;
  if (i != fs->root && bad_name(nm)) return mlsh_fail(e, name, "payload node name \"%s\" escapes its folder", nm);
  if (!nd->dir) {
    const mlsh_json *r = mlsh_json_get(j, "dataRegion");
    if (!r || get_u64(r, "offset", &nd->offset) || get_u64(r, "size", &nd->size))
      return mlsh_fail(e, name, "payload file %s has no valid dataRegion", nm);
    if (nd->offset > fs->json_offset || nd->size > fs->json_offset - nd->offset)
      return mlsh_fail(e, name, "payload file %s (offset %llu, %llu bytes) lies outside the payload's %zu data bytes", nm,
                       (unsigned long long)nd->offset, (unsigned long long)nd->size, fs->json_offset);
  }
  return 0;
}

static int link_children(const mlsh_json *j, size_t i, mlsh_imfs *fs, const char *name, mlsh_err *e) {
  const mlsh_json *ch = mlsh_json_get(j, "children");
  if (!ch) return 0;
  if (ch->kind != MLSH_JSON_OBJECT) return mlsh_fail(e, name, "payload node %s: children is not an object", fs->nodes[i].name);
  if (ch->child && !fs->nodes[i].dir) return mlsh_fail(e, name, "payload file %s has children", fs->nodes[i].name);
  for (const mlsh_json *c = ch->child; c; c = c->next) {
    if (c->kind != MLSH_JSON_NUMBER || c->number < 0 || floor(c->number) != c->number || c->number >= (double)fs->count)
      return mlsh_fail(e, name, "payload node %s: child %s has a bad index", fs->nodes[i].name, c->key);
    size_t k = (size_t)c->number;
    if (k >= i) return mlsh_fail(e, name, "payload node tree has a cycle (node %zu lists node %zu as a child)", i, k);
    if (fs->nodes[k].parent >= 0)
      return mlsh_fail(e, name, "payload node tree has a cycle or shared node (node %zu has two parents)", k);
    if (strcmp(c->key, fs->nodes[k].name) != 0)
      return mlsh_fail(e, name, "payload node %s: child key \"%s\" names node \"%s\"", fs->nodes[i].name, c->key, fs->nodes[k].name);
    fs->nodes[k].parent = (int)i;
  }
  return 0;
}

/* Paths top-down: a parent always has a larger index than its children. */
static int make_paths(mlsh_imfs *fs, const char *name, mlsh_err *e) {
  if (!(fs->nodes[fs->root].path = strdup(""))) return mlsh_fail(e, name, "out of memory");
  for (size_t i = fs->root; i-- > 0;) {
    mlsh_imfs_node *nd = &fs->nodes[i];
    if (nd->parent < 0) continue;
    const char *pp = fs->nodes[nd->parent].path;
    if (!pp) continue; /* unreachable from the root */
    size_t n = strlen(pp) + strlen(nd->name) + 2;
    if (!(nd->path = malloc(n))) return mlsh_fail(e, name, "out of memory");
    snprintf(nd->path, n, "%s%s%s", pp, *pp ? "/" : "", nd->name);
    for (size_t k = i + 1; k < fs->root; k++)
      if (fs->nodes[k].path && fs->nodes[k].parent == nd->parent && strcmp(fs->nodes[k].name, nd->name) == 0)
        return mlsh_fail(e, name, "payload folder holds two entries named %s", nd->name);
  }
  return 0;
}

int mlsh_imfs_parse(const uint8_t *buf, size_t len, const char *name, mlsh_imfs **out, mlsh_err *e) {
  *out = NULL;
  const char *why = NULL;
  size_t jl, start;
  char *text = reversed_json(buf, len, &jl, &start, &why);
  if (!text) return mlsh_fail(e, name, "not an inmemoryfs payload (%s)", why);
  char jerr[160];
  mlsh_json *j = mlsh_json_parse(text, jl, jerr, sizeof jerr);
  free(text);
  if (!j) return mlsh_fail(e, name, "payload metadata is not valid JSON (%s)", jerr);
  const mlsh_json *nodes = mlsh_json_get(j, "nodes");
  size_t count = 0;
  for (const mlsh_json *n = nodes && nodes->kind == MLSH_JSON_ARRAY ? nodes->child : NULL; n; n = n->next) count++;
  if (!count) {
    mlsh_json_free(j);
    return mlsh_fail(e, name, "payload metadata has no nodes");
  }
  mlsh_imfs *fs = calloc(1, sizeof *fs);
  if (!fs || !(fs->nodes = calloc(count, sizeof *fs->nodes))) {
    free(fs);
    mlsh_json_free(j);
    return mlsh_fail(e, name, "out of memory");
  }
  fs->count = count;
  fs->root = count - 1;
  fs->json_offset = start;
  fs->data = buf;
  fs->len = len;
  int rc = 0;
  size_t i = 0;
  for (const mlsh_json *n = nodes->child; n && !rc; n = n->next, i++) {
    fs->nodes[i].parent = -1;
    if (n->kind != MLSH_JSON_OBJECT) rc = mlsh_fail(e, name, "payload node %zu is not an object", i);
    else rc = read_node(n, i, fs, name, e);
  }
  if (!rc && !fs->nodes[fs->root].dir) rc = mlsh_fail(e, name, "payload root %s is not a directory", fs->nodes[fs->root].name);
  i = 0;
  for (const mlsh_json *n = nodes->child; n && !rc; n = n->next, i++) rc = link_children(n, i, fs, name, e);
  mlsh_json_free(j);
  if (!rc) rc = make_paths(fs, name, e);
  if (rc) {
    mlsh_imfs_free(fs);
    return -1;
  }
  *out = fs;
  return 0;
}

void mlsh_imfs_free(mlsh_imfs *fs) {
  if (!fs) return;
  for (size_t i = 0; i < fs->count; i++) {
    free(fs->nodes[i].name);
    free(fs->nodes[i].path);
  }
  free(fs->nodes);
  free(fs);
}

int mlsh_imfs_find(const mlsh_imfs *fs, const char *path) {
  for (size_t i = 0; i < fs->count; i++)
    if (fs->nodes[i].path && strcmp(fs->nodes[i].path, path) == 0) return (int)i;
  return -1;
}
