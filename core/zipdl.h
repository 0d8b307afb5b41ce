/* zipdl.h — libzip, loaded when the first zip is opened or written rather than at start-up.
 * libzip pulls in libcrypto (about 21,000 relocations), which made every `mlsh` start, even
 * `--version`, pay for zip support most commands never use. The table holds the libzip
 * functions the core calls, typed from <zip.h>.
 * Contract: mlsh_zipdl(path, e) returns the table (loaded once, thread-safe), or NULL with
 * "path: libzip could not be loaded (...)" in e. The library is searched as libzip.so.5,
 * libzip.so.4, libzip.so (Linux), libzip.5.dylib, libzip.dylib (macOS), first in
 * MLSH_LIBZIP_DIR (the build's pkg-config libdir), then on the loader's path. */
#ifndef MLSH_ZIPDL_H
#define MLSH_ZIPDL_H
#include "err.h"
#include <zip.h>

typedef struct {
  __typeof__(zip_open) *open;
  __typeof__(zip_close) *close;
  __typeof__(zip_discard) *discard;
  __typeof__(zip_strerror) *strerror;
  __typeof__(zip_error_init_with_code) *error_init_with_code;
  __typeof__(zip_error_strerror) *error_strerror;
  __typeof__(zip_error_fini) *error_fini;
  __typeof__(zip_get_num_entries) *get_num_entries;
  __typeof__(zip_get_name) *get_name;
  __typeof__(zip_stat) *stat;
  __typeof__(zip_stat_index) *stat_index;
  __typeof__(zip_stat_init) *stat_init;
  __typeof__(zip_fopen) *fopen;
  __typeof__(zip_fread) *fread;
  __typeof__(zip_fclose) *fclose;
  __typeof__(zip_dir_add) *dir_add;
  __typeof__(zip_file_add) *file_add;
  __typeof__(zip_file_set_mtime) *file_set_mtime;
  __typeof__(zip_set_file_compression) *set_file_compression;
  __typeof__(zip_source_buffer) *source_buffer;
  __typeof__(zip_source_file) *source_file;
  __typeof__(zip_source_free) *source_free;
} mlsh_zip_api;

const mlsh_zip_api *mlsh_zipdl(const char *path, mlsh_err *e);
#endif
