/* ortcache.c — scanning ONNX Runtime's Core ML cache folders (see ortcache.h). */
#include "ortcache.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DEPTH 4
#define MAX_TXT (64 * 1024)

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *r = malloc(n);
  if (r) snprintf(r, n, "%s/%s", a, b);
  return r;
}

static int is_regular(const char *p) {
  struct stat st;
  return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Sorted names of the sub-folders of dir (no ".", "..", no symlinks). */
static int subdirs(const char *dir, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return -1;
  size_t cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char *full = join(dir, de->d_name);
    struct stat st;
    int ok = full && lstat(full, &st) == 0 && S_ISDIR(st.st_mode);
    free(full);
    if (!ok) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      char **g = realloc(*out, cap * sizeof *g);
      if (!g) { rc = -1; break; }
      *out = g;
    }
    if (!((*out)[*n] = strdup(de->d_name))) { rc = -1; break; }
    (*n)++;
  }
  closedir(d);
  if (*n) qsort(*out, *n, sizeof **out, cmp_str);
  return rc;
}

static void free_list(char **l, size_t n) {
  for (size_t i = 0; i < n; i++) free(l[i]);
  free(l);
}

static int add_model(mlsh_ort_entry *en, const char *path) {
  char **g = realloc(en->models, (en->nmodels + 1) * sizeof *g);
  if (!g) return -1;
  en->models = g;
  if (!(g[en->nmodels] = strdup(path))) return -1;
  en->nmodels++;
  return 0;
}

static int find_models(mlsh_ort_entry *en, const char *dir, int depth) {
  char **names;
  size_t n;
  if (subdirs(dir, &names, &n) != 0) {
    free_list(names, n);
    return depth == 0 ? -1 : 0;
  }
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    char *full = join(dir, names[i]);
    if (!full) rc = -1;
    else if (ends_with(names[i], ".mlmodelc") || ends_with(names[i], ".mlpackage")) rc = add_model(en, full);
    else if (depth < MAX_DEPTH) rc = find_models(en, full, depth + 1);
    free(full);
  }
  free_list(names, n);
  return rc;
}

static char *read_txt(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(MAX_TXT + 1);
  size_t n = buf ? fread(buf, 1, MAX_TXT, f) : 0;
  fclose(f);
  if (!buf) return NULL;
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == 0)) n--;
  buf[n] = 0;
  return buf;
}

static int add_entry(mlsh_ortcache *c, const char *dir, const char *key, mlsh_err *e) {
  mlsh_ort_entry *g = realloc(c->entries, (c->count + 1) * sizeof *g);
  if (!g) return mlsh_fail(e, dir, "out of memory");
  c->entries = g;
  mlsh_ort_entry *en = &g[c->count++];
  memset(en, 0, sizeof *en);
  char *txt = join(dir, "model.txt");
  en->key = strdup(key);
  en->dir = strdup(dir);
  en->onnx_path = txt ? read_txt(txt) : NULL;
  free(txt);
  if (!en->key || !en->dir) return mlsh_fail(e, dir, "out of memory");
  if (!en->onnx_path) return mlsh_fail(e, dir, "cannot read model.txt: %s", strerror(errno));
  if (find_models(en, dir, 0) != 0) return mlsh_fail(e, dir, "cannot list the cache folder: %s", strerror(errno));
  if (en->nmodels > 1) qsort(en->models, en->nmodels, sizeof *en->models, cmp_str);
  return 0;
}

int mlsh_ortcache_scan(const char *dir, mlsh_ortcache **out, mlsh_err *e) {
  *out = NULL;
  mlsh_ortcache *c = calloc(1, sizeof *c);
  if (!c) return mlsh_fail(e, dir, "out of memory");
  char *txt = join(dir, "model.txt");
  int rc = 0;
  if (!txt) rc = mlsh_fail(e, dir, "out of memory");
  else if (is_regular(txt)) {
    const char *slash = strrchr(dir, '/');
    rc = add_entry(c, dir, slash && slash[1] ? slash + 1 : dir, e);
  } else {
    char **names;
    size_t n;
    if (subdirs(dir, &names, &n) == 0) {
      for (size_t i = 0; i < n && !rc; i++) {
        char *sub = join(dir, names[i]), *t = sub ? join(sub, "model.txt") : NULL;
        if (t && is_regular(t)) rc = add_entry(c, sub, names[i], e);
        free(t);
        free(sub);
      }
    }
    free_list(names, n);
  }
  free(txt);
  if (rc) {
    mlsh_ortcache_free(c);
    return -1;
  }
  *out = c;
  return 0;
}

void mlsh_ortcache_free(mlsh_ortcache *c) {
  if (!c) return;
  for (size_t i = 0; i < c->count; i++) {
    free(c->entries[i].key);
    free(c->entries[i].dir);
    free(c->entries[i].onnx_path);
    free_list(c->entries[i].models, c->entries[i].nmodels);
  }
  free(c->entries);
  free(c);
}
