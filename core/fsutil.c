/* fsutil.c — atomic writes, folders and zips (see fsutil.h). */
#include "fsutil.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "zipdl.h"

/* libzip, loaded by the two zip writers below before any use (see zipdl.h). */
static const mlsh_zip_api *zl(void) { return mlsh_zipdl(NULL, NULL); }

static int tmp_sibling(const char *path, char *out, size_t outlen) {
  static unsigned counter;
  return snprintf(out, outlen, "%s.tmp-%ld-%u", path, (long)getpid(), counter++) < (int)outlen ? 0 : -1;
}

/* fsync path (a file, or a folder: its entries), or -1 with errno. */
static int sync_path(const char *path, int dir) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
  if (fd < 0) return -1;
  int rc = fsync(fd) != 0 && errno != EINVAL ? -1 : 0, err = errno;
  close(fd);
  errno = err;
  return rc;
}

/* fsync every file and folder under path (a package being renamed over an older one). */
static int sync_tree(const char *path, int depth) {
  struct stat st;
  if (depth > 32 || lstat(path, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) return S_ISREG(st.st_mode) ? sync_path(path, 0) : 0;
  DIR *d = opendir(path);
  if (!d) return -1;
  int rc = 0;
  struct dirent *de;
  char sub[4096];
  while (rc == 0 && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= (int)sizeof sub) { errno = ENAMETOOLONG; rc = -1; }
    else rc = sync_tree(sub, depth + 1);
  }
  closedir(d);
  return rc == 0 ? sync_path(path, 1) : -1;
}

int mlsh_write_atomic(const char *path, const void *data, size_t len, mlsh_err *e) {
  char tmp[4096];
  struct stat st;
  int replacing = lstat(path, &st) == 0; /* only then is there an old version to keep safe */
  if (tmp_sibling(path, tmp, sizeof tmp) != 0) return mlsh_fail(e, path, "path too long");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return mlsh_fail(e, path, "cannot create %s: %s", tmp, strerror(errno));
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = errno;
      close(fd);
      unlink(tmp);
      return mlsh_fail(e, path, "write failed: %s", strerror(w < 0 ? err : ENOSPC));
    }
    p += w;
    left -= (size_t)w;
  }
  if (replacing && fsync(fd) != 0 && errno != EINVAL) {
    int err = errno;
    close(fd);
    unlink(tmp);
    return mlsh_fail(e, path, "write failed: %s", strerror(err));
  }
  if (close(fd) != 0) {
    int err = errno;
    unlink(tmp);
    return mlsh_fail(e, path, "write failed: %s", strerror(err));
  }
  if (rename(tmp, path) != 0) {
    int err = errno;
    unlink(tmp);
    return mlsh_fail(e, path, "cannot rename into place: %s", strerror(err));
  }
  return 0;
}

int mlsh_mkdir_p(const char *path, mlsh_err *e) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return mlsh_fail(e, path, "bad folder path");
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return mlsh_fail(e, path, "cannot create %s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST) return mlsh_fail(e, path, "cannot create folder: %s", strerror(errno));
  return 0;
}

int mlsh_remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (d) {
      struct dirent *de;
      while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char child[4096];
        if (snprintf(child, sizeof child, "%s/%s", path, de->d_name) < (int)sizeof child) mlsh_remove_tree(child);
      }
      closedir(d);
    }
    return rmdir(path);
  }
  return unlink(path);
}

int mlsh_replace_dir(const char *src, const char *dst, mlsh_err *e) {
  char old[4096];
  struct stat st;
  int had = lstat(dst, &st) == 0;
  if (had) {
    if (tmp_sibling(dst, old, sizeof old) != 0) return mlsh_fail(e, dst, "path too long");
    if (sync_tree(src, 0) != 0) return mlsh_fail(e, dst, "write failed: %s", strerror(errno));
    if (rename(dst, old) != 0) return mlsh_fail(e, dst, "cannot move the old copy aside: %s", strerror(errno));
  }
  if (rename(src, dst) != 0) {
    int err = errno;
    if (had) rename(old, dst);
    return mlsh_fail(e, dst, "cannot rename into place: %s", strerror(err));
  }
  if (had) mlsh_remove_tree(old);
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Entries are added in name order with a fixed time, so the same folder always zips to the same
 * bytes (reproducible builds of .mlpackage.zip). */
#define MLSH_ZIP_MTIME ((time_t)315532800) /* 1980-01-01, the zip format's epoch */

static int add_dir(zip_t *z, const char *dir, const char *prefix, int depth, mlsh_err *e, const char *dst) {
  if (depth > 32) return mlsh_fail(e, dst, "folder nesting too deep");
  DIR *d = opendir(dir);
  if (!d) return mlsh_fail(e, dir, "cannot read folder: %s", strerror(errno));
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (n == cap) {
      char **g = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *g);
      if (!g) { rc = mlsh_fail(e, dst, "out of memory"); break; }
      names = g;
    }
    if (!(names[n] = strdup(de->d_name))) { rc = mlsh_fail(e, dst, "out of memory"); break; }
    n++;
  }
  closedir(d);
  if (rc == 0) qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char full[4096], name[4096];
    if (snprintf(full, sizeof full, "%s/%s", dir, names[i]) >= (int)sizeof full ||
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "/" : "", names[i]) >= (int)sizeof name) {
      rc = mlsh_fail(e, dst, "path too long");
      break;
    }
    struct stat st;
    if (lstat(full, &st) != 0) continue;
    zip_int64_t idx = -1;
    if (S_ISDIR(st.st_mode)) {
      if ((idx = zl()->dir_add(z, name, ZIP_FL_ENC_UTF_8)) < 0) rc = mlsh_fail(e, dst, "zip: %s", zl()->strerror(z));
      else rc = add_dir(z, full, name, depth + 1, e, dst);
    } else if (S_ISREG(st.st_mode)) {
      zip_source_t *s = zl()->source_file(z, full, 0, -1);
      if (!s || (idx = zl()->file_add(z, name, s, ZIP_FL_ENC_UTF_8)) < 0) {
        if (s) zl()->source_free(s);
        rc = mlsh_fail(e, dst, "zip: %s", zl()->strerror(z));
      }
    }
    if (idx >= 0) zl()->file_set_mtime(z, (zip_uint64_t)idx, MLSH_ZIP_MTIME, 0);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

int mlsh_zip_dir(const char *src, const char *prefix, const char *dst, mlsh_err *e) {
  if (!mlsh_zipdl(dst, e)) return -1;
  char tmp[4096];
  if (tmp_sibling(dst, tmp, sizeof tmp) != 0) return mlsh_fail(e, dst, "path too long");
  int zerr;
  zip_t *z = zl()->open(tmp, ZIP_CREATE | ZIP_EXCL, &zerr);
  if (!z) return mlsh_fail(e, dst, "cannot create zip (libzip error %d)", zerr);
  int rc = 0;
  zip_int64_t top = prefix && *prefix ? zl()->dir_add(z, prefix, ZIP_FL_ENC_UTF_8) : 0;
  if (top < 0) rc = mlsh_fail(e, dst, "zip: %s", zl()->strerror(z));
  else if (prefix && *prefix) zl()->file_set_mtime(z, (zip_uint64_t)top, MLSH_ZIP_MTIME, 0);
  if (rc == 0) rc = add_dir(z, src, prefix ? prefix : "", 0, e, dst);
  if (rc != 0) {
    zl()->discard(z);
    unlink(tmp);
    return -1;
  }
  if (zl()->close(z) != 0) {
    mlsh_fail(e, dst, "cannot write zip: %s", zl()->strerror(z));
    zl()->discard(z);
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, dst) != 0) {
    int err = errno;
    unlink(tmp);
    return mlsh_fail(e, dst, "cannot rename into place: %s", strerror(err));
  }
  return 0;
}

int mlsh_zip_write(const char *dst, const mlsh_zip_entry *entries, size_t n, int store, mlsh_err *e) {
  if (!mlsh_zipdl(dst, e)) return -1;
  char tmp[4096];
  if (tmp_sibling(dst, tmp, sizeof tmp) != 0) return mlsh_fail(e, dst, "path too long");
  int zerr;
  zip_t *z = zl()->open(tmp, ZIP_CREATE | ZIP_EXCL, &zerr);
  if (!z) return mlsh_fail(e, dst, "cannot create zip (libzip error %d)", zerr);
  for (size_t i = 0; i < n; i++) {
    zip_source_t *src = zl()->source_buffer(z, entries[i].data, entries[i].len, 0);
    zip_int64_t idx = src ? zl()->file_add(z, entries[i].name, src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
      if (src) zl()->source_free(src);
      mlsh_fail(e, dst, "zip: %s", zl()->strerror(z));
      zl()->discard(z);
      unlink(tmp);
      return -1;
    }
    zl()->set_file_compression(z, (zip_uint64_t)idx, store ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 0);
  }
  if (zl()->close(z) != 0) {
    mlsh_fail(e, dst, "cannot write zip: %s", zl()->strerror(z));
    zl()->discard(z);
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, dst) != 0) {
    int err = errno;
    unlink(tmp);
    return mlsh_fail(e, dst, "cannot rename into place: %s", strerror(err));
  }
  return 0;
}
