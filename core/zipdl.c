/* zipdl.c — libzip loaded on first use (see zipdl.h). */
#include "zipdl.h"
#include "dynlib.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef MLSH_LIBZIP_DIR
#define MLSH_LIBZIP_DIR ""
#endif

static mlsh_zip_api api;
static const mlsh_zip_api *loaded;
static char why[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *open_lib(void) {
  static const char *const names[] = {"libzip.so.5", "libzip.so.4", "libzip.so", "libzip.5.dylib", "libzip.dylib"};
  return mlsh_dl_open(MLSH_LIBZIP_DIR, names, sizeof names / sizeof names[0], why, sizeof why);
}

#define SYM(field) (mlsh_dl_sym(h, "zip_" #field, &api.field, sizeof api.field, 1, why, sizeof why) == 0)

static void load(void) {
  void *h = open_lib();
  if (!h) return;
  if (SYM(open) && SYM(close) && SYM(discard) && SYM(strerror) && SYM(error_init_with_code) && SYM(error_strerror) &&
      SYM(error_fini) && SYM(get_num_entries) && SYM(get_name) && SYM(stat) && SYM(stat_index) && SYM(stat_init) &&
      SYM(fopen) && SYM(fread) && SYM(fclose) && SYM(dir_add) && SYM(file_add) && SYM(file_set_mtime) &&
      SYM(set_file_compression) && SYM(source_buffer) && SYM(source_file) && SYM(source_free))
    loaded = &api;
  else
    dlclose(h);
}

const mlsh_zip_api *mlsh_zipdl(const char *path, mlsh_err *e) {
  pthread_once(&once, load);
  if (!loaded) mlsh_fail(e, path, "libzip could not be loaded (%s); install libzip (Debian: libzip4)", why);
  return loaded;
}
