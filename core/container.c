/* container.c — model paths: files, package folders, zips, compiled folders (see container.h). */
#include "container.h"
#include "inmemoryfs.h"
#include "json.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "zipdl.h"

/* libzip, loaded by open_zip (which fails cleanly when it cannot be); every other use follows it. */
static const mlsh_zip_api *zl(void) { return mlsh_zipdl(NULL, NULL); }

typedef struct mapped {
  char *relpath;
  const uint8_t *data;
  size_t len;
  void *map;      /* mmap base (or NULL) */
  size_t maplen;
  uint8_t *heap;  /* malloc'd copy (zip entries) */
  int fd, has_fd; /* the mapped file, kept open for mlsh_container_read */
  struct mapped *next;
} mapped;

struct mlsh_container {
  mlsh_format format;
  char *path;       /* as given */
  char *model_dir;  /* folder "@model_path" refers to: absolute dir, or zip entry prefix */
  char *spec_rel;   /* spec file relative to model_dir */
  char *spec_name;  /* printable spec path */
  zip_t *zip;
  mapped *maps;
  const mlsh_imfs *tree; /* in-memory file tree (model_dir is a path inside it) */
  void *keep;
  void (*release)(void *);
};

const char *mlsh_format_name(mlsh_format f) {
  switch (f) {
    case MLSH_FMT_MLMODEL: return "mlmodel";
    case MLSH_FMT_MLPACKAGE: return "mlpackage";
    case MLSH_FMT_MLPACKAGE_ZIP: return "mlpackage.zip";
    case MLSH_FMT_MLMODELC: return "mlmodelc";
    case MLSH_FMT_ONNX: return "onnx";
  }
  return "?";
}

mlsh_format mlsh_container_format(const mlsh_container *c) { return c->format; }
const char *mlsh_container_path(const mlsh_container *c) { return c->path; }

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *r = malloc(la + lb + 2);
  if (!r) return NULL;
  memcpy(r, a, la);
  size_t o = la;
  if (la && lb && a[la - 1] != '/') r[o++] = '/';
  memcpy(r + o, b, lb + 1);
  return r;
}

/* Relative, '..'-free path below the model folder; strips "@model_path/". NULL if unsafe. */
static const char *safe_rel(const char *p) {
  if (strncmp(p, "@model_path/", 12) == 0) p += 12;
  if (*p == '/' || *p == 0) return NULL;
  for (const char *s = p; *s;) {
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if ((n == 2 && s[0] == '.' && s[1] == '.') || n == 0) return NULL;
    s += n + (slash ? 1 : 0);
    if (!slash) break;
  }
  return p;
}

static int map_file(const char *path, mapped *m, uint64_t max, mlsh_err *e) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mlsh_fail(e, path, "%s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return mlsh_fail(e, path, "not a regular file");
  }
  if ((uint64_t)st.st_size > max) {
    close(fd);
    return mlsh_fail(e, path, "file of %lld bytes exceeds the %llu-byte limit", (long long)st.st_size,
                     (unsigned long long)max);
  }
  m->len = (size_t)st.st_size;
  if (m->len == 0) {
    close(fd);
    m->data = (const uint8_t *)"";
    return 0;
  }
  void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    close(fd);
    return mlsh_fail(e, path, "cannot map: %s", strerror(errno));
  }
  m->fd = fd;
  m->has_fd = 1;
  m->map = p;
  m->maplen = m->len;
  m->data = p;
  return 0;
}

int mlsh_container_drop_pages(mlsh_container *c, const void *p, size_t len) {
  uintptr_t a = (uintptr_t)p;
  for (const mapped *m = c->maps; m; m = m->next) {
    uintptr_t base = (uintptr_t)m->map;
    if (!m->map || a < base || len > m->maplen || a - base > m->maplen - len) continue;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = a & ~(page - 1), hi = a + len;
    hi = hi > base + m->maplen ? base + m->maplen : hi; /* the last partial page is whole in the map */
    if (hi <= lo) return 0;
    return madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0;
  }
  return 0;
}

int mlsh_container_read(mlsh_container *c, const void *p, size_t len, void *dst) {
  uintptr_t a = (uintptr_t)p;
  for (const mapped *m = c->maps; m; m = m->next) {
    uintptr_t base = (uintptr_t)m->map;
    if (!m->map || a < base || len > m->maplen || a - base > m->maplen - len) continue;
    if (!m->has_fd) return -1;
    size_t done = 0;
    while (done < len) {
      ssize_t k = pread(m->fd, (uint8_t *)dst + done, len - done, (off_t)(a - base + done));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return -1; /* an error, or the file shrank under the mapping */
      done += (size_t)k;
    }
    return 0;
  }
  return -1;
}

/* MLSH_MAX_ZIP_RATIO in the environment lowers or raises the bomb threshold. */
static uint64_t zip_ratio_limit(void) {
  const char *s = getenv("MLSH_MAX_ZIP_RATIO");
  char *end;
  unsigned long long v = s ? strtoull(s, &end, 10) : 0;
  return (s && *s && !*end && v > 0) ? v : MLSH_MAX_ZIP_RATIO;
}

static int read_zip_entry(mlsh_container *c, const char *entry, mapped *m, uint64_t max, mlsh_err *e) {
  zip_stat_t st;
  zl()->stat_init(&st);
  if (zl()->stat(c->zip, entry, 0, &st) != 0) return mlsh_fail(e, c->path, "zip has no entry %s", entry);
  if (!(st.valid & ZIP_STAT_SIZE)) return mlsh_fail(e, c->path, "zip entry %s has no size", entry);
  if (st.size > max) return mlsh_fail(e, c->path, "zip entry %s declares %llu bytes, over the limit", entry,
                                      (unsigned long long)st.size);
  uint64_t ratio = zip_ratio_limit();
  if ((st.valid & ZIP_STAT_COMP_SIZE) && st.size > 4096 && st.comp_size * ratio < st.size)
    return mlsh_fail(e, c->path, "zip entry %s inflates more than %llux (zip bomb?)", entry, (unsigned long long)ratio);
  zip_file_t *zf = zl()->fopen(c->zip, entry, 0);
  if (!zf) return mlsh_fail(e, c->path, "cannot open zip entry %s: %s", entry, zl()->strerror(c->zip));
  m->heap = malloc(st.size ? st.size : 1);
  if (!m->heap) {
    zl()->fclose(zf);
    return mlsh_fail(e, c->path, "out of memory reading %s", entry);
  }
  zip_int64_t got = 0;
  while ((zip_uint64_t)got < st.size) {
    zip_int64_t r = zl()->fread(zf, m->heap + got, st.size - (zip_uint64_t)got);
    if (r <= 0) break;
    got += r;
  }
  char extra;
  zip_int64_t more = (zip_uint64_t)got == st.size ? zl()->fread(zf, &extra, 1) : 0;
  int bad = zl()->fclose(zf) != 0;
  if ((zip_uint64_t)got != st.size || more > 0 || bad) {
    free(m->heap);
    m->heap = NULL;
    return mlsh_fail(e, c->path, "zip entry %s is corrupt (read %lld of %llu bytes)", entry, (long long)got,
                     (unsigned long long)st.size);
  }
  m->data = m->heap;
  m->len = st.size;
  return 0;
}

/* A file of the in-memory tree: borrowed in place, nothing copied. */
static int read_tree_entry(mlsh_container *c, const char *path, mapped *m, uint64_t max, mlsh_err *e) {
  int i = mlsh_imfs_find(c->tree, path);
  if (i < 0 || c->tree->nodes[i].dir) return mlsh_fail(e, c->path, "payload has no file %s", path);
  const mlsh_imfs_node *n = &c->tree->nodes[i];
  if (n->size > max) return mlsh_fail(e, c->path, "payload file %s of %llu bytes exceeds the limit", path, (unsigned long long)n->size);
  m->data = c->tree->data + n->offset;
  m->len = (size_t)n->size;
  return 0;
}

/* Load relpath (below model_dir) into a new mapping (not cached). */
static int load_rel(mlsh_container *c, const char *relpath, mapped *m, uint64_t max, mlsh_err *e) {
  const char *rel = safe_rel(relpath);
  if (!rel) return mlsh_fail(e, c->path, "unsafe path inside the model: %s", relpath);
  char *full = join(c->model_dir, rel);
  if (!full) return mlsh_fail(e, c->path, "out of memory");
  int rc = c->tree ? read_tree_entry(c, full, m, max, e) : c->zip ? read_zip_entry(c, full, m, max, e) : map_file(full, m, max, e);
  free(full);
  return rc;
}

static void unload(mapped *m) {
  if (m->map) munmap(m->map, m->maplen);
  if (m->has_fd) close(m->fd);
  free(m->heap);
  free(m->relpath);
}

int mlsh_container_map(mlsh_container *c, const char *relpath, const uint8_t **data, size_t *len,
                       const char **name_out, mlsh_err *e) {
  const char *rel = safe_rel(relpath);
  if (!rel) return mlsh_fail(e, c->path, "unsafe path inside the model: %s", relpath);
  mapped *m;
  for (m = c->maps; m; m = m->next)
    if (strcmp(m->relpath, rel) == 0) break;
  if (!m) {
    m = calloc(1, sizeof *m);
    if (!m) return mlsh_fail(e, c->path, "out of memory");
    if (load_rel(c, rel, m, c->zip ? MLSH_MAX_ZIP_ENTRY : UINT64_MAX, e) != 0) {
      free(m);
      return -1;
    }
    if (!(m->relpath = strdup(rel))) {
      unload(m);
      free(m);
      return mlsh_fail(e, c->path, "out of memory");
    }
    m->next = c->maps;
    c->maps = m;
  }
  *data = m->data;
  *len = m->len;
  if (name_out) *name_out = m->relpath;
  return 0;
}

int mlsh_container_spec(mlsh_container *c, const uint8_t **data, size_t *len, const char **name, mlsh_err *e) {
  if (name) *name = c->spec_name;
  if (c->format == MLSH_FMT_MLMODELC) return mlsh_fail(e, c->path, "a compiled model has no model spec");
  if (mlsh_container_map(c, c->spec_rel, data, len, NULL, e) != 0) return -1;
  if (*len > MLSH_MAX_SPEC_BYTES) return mlsh_fail(e, c->spec_name, "spec exceeds 2 GiB");
  return 0;
}

void mlsh_container_display(const mlsh_container *c, const char *relpath, char *buf, size_t len) {
  const char *rel = safe_rel(relpath);
  if (!rel) rel = relpath;
  if (c->tree) snprintf(buf, len, "%s:%s/%s", c->path, c->model_dir, rel);
  else if (c->zip) snprintf(buf, len, "%s:%s%s", c->path, c->model_dir, rel);
  else snprintf(buf, len, "%s/%s", c->model_dir, rel);
}

int mlsh_container_stat(mlsh_container *c, const char *relpath, uint64_t *size) {
  const char *rel = safe_rel(relpath);
  if (!rel) return -1;
  char *full = join(c->model_dir, rel);
  if (!full) return -1;
  int rc = -1;
  int ti = c->tree ? mlsh_imfs_find(c->tree, full) : -1;
  if (c->tree) {
    if (ti >= 0 && !c->tree->nodes[ti].dir) {
      *size = c->tree->nodes[ti].size;
      rc = 0;
    }
  } else if (c->zip) {
    zip_stat_t st;
    zl()->stat_init(&st);
    if (zl()->stat(c->zip, full, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE)) {
      *size = st.size;
      rc = 0;
    }
  } else {
    struct stat st;
    if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
      *size = (uint64_t)st.st_size;
      rc = 0;
    }
  }
  free(full);
  return rc;
}

static int list_dir(const char *dir, const char *prefix, int depth, mlsh_file_fn fn, void *ud) {
  if (depth > 16) return 0;
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]))) continue;
    char *full = join(dir, de->d_name), *rel = *prefix ? join(prefix, de->d_name) : strdup(de->d_name);
    struct stat st;
    if (full && rel && lstat(full, &st) == 0) {
      if (S_ISDIR(st.st_mode)) list_dir(full, rel, depth + 1, fn, ud);
      else if (S_ISREG(st.st_mode)) fn(ud, rel, (uint64_t)st.st_size);
    }
    free(full);
    free(rel);
  }
  closedir(d);
  return 0;
}

int mlsh_container_list(mlsh_container *c, mlsh_file_fn fn, void *ud, mlsh_err *e) {
  (void)e;
  if (c->tree) {
    size_t plen = strlen(c->model_dir);
    for (size_t i = 0; i < c->tree->count; i++) {
      const mlsh_imfs_node *n = &c->tree->nodes[i];
      if (n->dir || !n->path || strncmp(n->path, c->model_dir, plen) != 0 || n->path[plen] != '/') continue;
      fn(ud, n->path + plen + 1, n->size);
    }
    return 0;
  }
  if (c->zip) {
    size_t plen = strlen(c->model_dir);
    zip_int64_t n = zl()->get_num_entries(c->zip, 0);
    for (zip_int64_t i = 0; i < n; i++) {
      zip_stat_t st;
      zl()->stat_init(&st);
      if (zl()->stat_index(c->zip, (zip_uint64_t)i, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME)) continue;
      size_t nl = strlen(st.name);
      if (nl <= plen || strncmp(st.name, c->model_dir, plen) != 0 || st.name[nl - 1] == '/') continue;
      fn(ud, st.name + plen, st.size);
    }
    return 0;
  }
  if (c->format == MLSH_FMT_MLMODEL || c->format == MLSH_FMT_ONNX) {
    struct stat st;
    if (stat(c->path, &st) == 0) fn(ud, c->spec_rel, (uint64_t)st.st_size);
    return 0;
  }
  return list_dir(c->model_dir, "", 0, fn, ud);
}

/* Manifest.json -> path of the root model item relative to the package's Data/ folder. */
static int read_manifest(const char *name, const uint8_t *text, size_t len, char **root_path, mlsh_err *e) {
  char jerr[256];
  mlsh_json *j = mlsh_json_parse((const char *)text, len, jerr, sizeof jerr);
  if (!j) return mlsh_fail(e, name, "invalid JSON: %s", jerr);
  int rc = -1;
  const char *root_id = mlsh_json_get_string(j, "rootModelIdentifier");
  const mlsh_json *items = mlsh_json_get(j, "itemInfoEntries");
  const mlsh_json *item = root_id && items ? mlsh_json_get(items, root_id) : NULL;
  const char *path = item ? mlsh_json_get_string(item, "path") : NULL;
  if (!root_id) mlsh_fail(e, name, "no rootModelIdentifier");
  else if (!items || items->kind != MLSH_JSON_OBJECT) mlsh_fail(e, name, "no itemInfoEntries object");
  else if (!item) mlsh_fail(e, name, "rootModelIdentifier %s names no item in itemInfoEntries", root_id);
  else if (!path) mlsh_fail(e, name, "root item %s has no path", root_id);
  else if (!safe_rel(path) || strncmp(path, "@model_path", 11) == 0) mlsh_fail(e, name, "root item path %s is not a safe relative path", path);
  else if (!(*root_path = strdup(path))) mlsh_fail(e, name, "out of memory");
  else rc = 0;
  mlsh_json_free(j);
  return rc;
}

/* Given the package-relative root path "com.apple.CoreML/model.mlmodel", set model_dir and spec_rel.
 * In a zip, model_dir is an entry-name prefix ending in '/'. */
static int set_root(mlsh_container *c, const char *data_dir, const char *root_path) {
  const char *slash = strrchr(root_path, '/');
  char *sub = slash ? strndup(root_path, (size_t)(slash - root_path)) : strdup("");
  if (!sub) return -1;
  char *dir = *sub ? join(data_dir, sub) : strdup(data_dir);
  free(sub);
  if (!dir) return -1;
  if (c->zip) { /* entry prefix: "pkg.mlpackage/Data/com.apple.CoreML/" */
    size_t l = strlen(dir);
    c->model_dir = malloc(l + 2);
    if (c->model_dir) {
      memcpy(c->model_dir, dir, l);
      memcpy(c->model_dir + l, "/", 2);
    }
    free(dir);
  } else {
    c->model_dir = dir;
  }
  c->spec_rel = strdup(slash ? slash + 1 : root_path);
  if (!c->model_dir || !c->spec_rel) return -1;
  if (c->zip) {
    size_t n = strlen(c->path) + strlen(c->model_dir) + strlen(c->spec_rel) + 2;
    if ((c->spec_name = malloc(n))) snprintf(c->spec_name, n, "%s:%s%s", c->path, c->model_dir, c->spec_rel);
  } else {
    c->spec_name = join(c->model_dir, c->spec_rel);
  }
  return c->spec_name ? 0 : -1;
}

static int open_package_dir(mlsh_container *c, mlsh_err *e) {
  char *manifest = join(c->path, "Manifest.json"), *data = join(c->path, "Data");
  mapped m = {0};
  char *root = NULL;
  int rc = -1;
  if (!manifest || !data) mlsh_fail(e, c->path, "out of memory");
  else if (map_file(manifest, &m, MLSH_MAX_SMALL_FILE, e) == 0 && read_manifest(manifest, m.data, m.len, &root, e) == 0) {
    if (set_root(c, data, root) != 0) mlsh_fail(e, c->path, "out of memory");
    else rc = 0;
  }
  unload(&m);
  free(root);
  free(manifest);
  free(data);
  return rc;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int open_zip(mlsh_container *c, mlsh_err *e) {
  if (!mlsh_zipdl(c->path, e)) return -1;
  int zerr = 0;
  c->zip = zl()->open(c->path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
  if (!c->zip) {
    zip_error_t ze;
    zl()->error_init_with_code(&ze, zerr);
    mlsh_fail(e, c->path, "corrupt zip: %s", zl()->error_strerror(&ze));
    zl()->error_fini(&ze);
    return -1;
  }
  /* Every entry name must be a safe relative path, and unique: a zip whose two entries share a
   * name could show one tool one file and another tool the other. */
  zip_int64_t n = zl()->get_num_entries(c->zip, 0);
  if (n < 0 || n > MLSH_MAX_ZIP_ENTRIES) return mlsh_fail(e, c->path, "zip holds too many entries");
  const char **names = calloc((size_t)n + 1, sizeof *names);
  if (!names) return mlsh_fail(e, c->path, "out of memory");
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zl()->get_name(c->zip, (zip_uint64_t)i, 0);
    size_t nl = name ? strlen(name) : 0;
    char *trimmed = nl && name[nl - 1] == '/' ? strndup(name, nl - 1) : NULL; /* folder entries end in '/' */
    int safe = name && nl && (trimmed ? safe_rel(trimmed) != NULL : safe_rel(name) != NULL);
    free(trimmed);
    if (!safe) {
      free(names);
      return mlsh_fail(e, c->path, "zip entry %s has an unsafe path", name ? name : "(unnamed)");
    }
    names[i] = name;
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  for (zip_int64_t i = 1; i < n; i++)
    if (strcmp(names[i - 1], names[i]) == 0) {
      mlsh_fail(e, c->path, "zip holds two entries named %s", names[i]);
      free(names);
      return -1;
    }
  free(names);
  /* The package is the shallowest folder holding Manifest.json (or the zip root itself). */
  const char *best = NULL;
  size_t bestlen = 0;
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zl()->get_name(c->zip, (zip_uint64_t)i, 0);
    if (!name) continue;
    size_t nl = strlen(name);
    if (nl < 13 || strcmp(name + nl - 13, "Manifest.json") != 0 || (nl > 13 && name[nl - 14] != '/')) continue;
    if (!best || nl < bestlen) { best = name; bestlen = nl; }
  }
  if (!best) return mlsh_fail(e, c->path, "zip holds no .mlpackage (no Manifest.json entry)");
  char *prefix = strndup(best, bestlen - 13), *data = prefix ? join(prefix, "Data") : NULL;
  mapped m = {0};
  char *root = NULL;
  int rc = -1;
  c->model_dir = strdup("");
  if (!prefix || !data || !c->model_dir) mlsh_fail(e, c->path, "out of memory");
  else if (read_zip_entry(c, best, &m, MLSH_MAX_SMALL_FILE, e) == 0 && read_manifest(best, m.data, m.len, &root, e) == 0) {
    free(c->model_dir);
    c->model_dir = NULL;
    if (set_root(c, data, root) != 0) mlsh_fail(e, c->path, "out of memory");
    else rc = 0;
  }
  unload(&m);
  free(root);
  free(prefix);
  free(data);
  return rc;
}

static int has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcasecmp(s + a - b, suf) == 0;
}

int mlsh_container_open(const char *path, mlsh_container **out, mlsh_err *e) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) != 0) return mlsh_fail(e, path, "%s", strerror(errno));
  mlsh_container *c = calloc(1, sizeof *c);
  if (!c || !(c->path = strdup(path))) {
    free(c);
    return mlsh_fail(e, path, "out of memory");
  }
  /* drop trailing slashes so printed names stay tidy */
  for (size_t l = strlen(c->path); l > 1 && c->path[l - 1] == '/'; l--) c->path[l - 1] = 0;
  int rc = -1;
  if (S_ISDIR(st.st_mode)) {
    char *manifest = join(c->path, "Manifest.json"), *mil = join(c->path, "model.mil"),
         *cdata = join(c->path, "coremldata.bin");
    struct stat s2;
    if (!manifest || !mil || !cdata) mlsh_fail(e, path, "out of memory");
    else if (stat(manifest, &s2) == 0) {
      c->format = MLSH_FMT_MLPACKAGE;
      rc = open_package_dir(c, e);
    } else if (stat(mil, &s2) == 0 || stat(cdata, &s2) == 0) {
      c->format = MLSH_FMT_MLMODELC;
      c->model_dir = strdup(c->path);
      c->spec_rel = strdup(stat(mil, &s2) == 0 ? "model.mil" : "coremldata.bin");
      c->spec_name = c->spec_rel ? join(c->path, c->spec_rel) : NULL;
      rc = c->model_dir && c->spec_name ? 0 : mlsh_fail(e, path, "out of memory");
    } else {
      mlsh_fail(e, path, "directory is not a model package (no Manifest.json, no model.mil)");
    }
    free(manifest);
    free(mil);
    free(cdata);
  } else if (S_ISREG(st.st_mode)) {
    unsigned char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, magic, 4) : -1;
    if (fd >= 0) close(fd);
    if (got < 0) mlsh_fail(e, path, "%s", strerror(errno));
    else if (got == 4 && memcmp(magic, "PK\3\4", 4) == 0) {
      c->format = MLSH_FMT_MLPACKAGE_ZIP;
      rc = open_zip(c, e);
    } else {
      c->format = has_suffix(path, ".onnx") ? MLSH_FMT_ONNX : MLSH_FMT_MLMODEL;
      const char *slash = strrchr(c->path, '/');
      c->model_dir = slash ? strndup(c->path, (size_t)(slash - c->path)) : strdup(".");
      if (c->model_dir && !*c->model_dir) { free(c->model_dir); c->model_dir = strdup("/"); }
      c->spec_rel = strdup(slash ? slash + 1 : c->path);
      c->spec_name = strdup(c->path);
      rc = c->model_dir && c->spec_rel && c->spec_name ? 0 : mlsh_fail(e, path, "out of memory");
    }
  } else {
    mlsh_fail(e, path, "not a file or directory");
  }
  if (rc != 0) {
    mlsh_container_close(c);
    return -1;
  }
  *out = c;
  return 0;
}

void mlsh_container_close(mlsh_container *c) {
  if (!c) return;
  while (c->maps) {
    mapped *n = c->maps->next;
    unload(c->maps);
    free(c->maps);
    c->maps = n;
  }
  if (c->zip) zl()->discard(c->zip);
  if (c->release) c->release(c->keep);
  free(c->path);
  free(c->model_dir);
  free(c->spec_rel);
  free(c->spec_name);
  free(c);
}

/* The payload tree's root holds model.mlmodelc (checked first, as the runtime does) or model.mlpackage. */
int mlsh_container_open_tree(const char *display, const mlsh_imfs *tree, void *keep, void (*release)(void *),
                             mlsh_container **out, mlsh_err *e) {
  *out = NULL;
  mlsh_container *c = calloc(1, sizeof *c);
  if (!c || !(c->path = strdup(display))) {
    free(c);
    if (release) release(keep);
    return mlsh_fail(e, display, "out of memory");
  }
  c->tree = tree;
  c->keep = keep;
  c->release = release;
  int rc = -1, ci = mlsh_imfs_find(tree, "model.mlmodelc"), pi = mlsh_imfs_find(tree, "model.mlpackage");
  if (ci >= 0 && tree->nodes[ci].dir) {
    c->format = MLSH_FMT_MLMODELC;
    c->model_dir = strdup("model.mlmodelc");
    int mil = mlsh_imfs_find(tree, "model.mlmodelc/model.mil") >= 0;
    c->spec_rel = strdup(mil ? "model.mil" : "coremldata.bin");
    size_t n = strlen(display) + 40;
    if ((c->spec_name = malloc(n))) snprintf(c->spec_name, n, "%s:model.mlmodelc/%s", display, mil ? "model.mil" : "coremldata.bin");
    rc = c->model_dir && c->spec_rel && c->spec_name ? 0 : mlsh_fail(e, display, "out of memory");
  } else if (pi >= 0 && tree->nodes[pi].dir) {
    c->format = MLSH_FMT_MLPACKAGE;
    mapped m = {0};
    char *root = NULL, mname[1100];
    snprintf(mname, sizeof mname, "%s:model.mlpackage/Manifest.json", display);
    c->model_dir = strdup("model.mlpackage");
    if (!c->model_dir) mlsh_fail(e, display, "out of memory");
    else if (load_rel(c, "Manifest.json", &m, MLSH_MAX_SMALL_FILE, e) == 0 &&
             read_manifest(mname, m.data, m.len, &root, e) == 0) {
      free(c->model_dir);
      c->model_dir = NULL;
      if (set_root(c, "model.mlpackage/Data", root) != 0) mlsh_fail(e, display, "out of memory");
      else {
        size_t n = strlen(display) + strlen(c->spec_name) + 2;
        char *name = malloc(n);
        if (name) snprintf(name, n, "%s:%s", display, c->spec_name);
        free(c->spec_name);
        c->spec_name = name;
        rc = name ? 0 : mlsh_fail(e, display, "out of memory");
      }
    }
    free(root);
  } else {
    mlsh_fail(e, display, "Core ML payload holds neither model.mlmodelc nor model.mlpackage");
  }
  if (rc != 0) {
    mlsh_container_close(c);
    return -1;
  }
  *out = c;
  return 0;
}
