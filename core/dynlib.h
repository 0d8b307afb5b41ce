/* dynlib.h — an optional shared library loaded on first use (libzip, libpng, readline: none is
 * linked, so a start pays for none of them). mlsh_dl_open tries each file name in `libdir` (the
 * build's pkg-config libdir; "" for none), then through the loader's own search path; when
 * nothing loads it returns NULL with the first loader error (the telling one: the build's own
 * libdir) in why. mlsh_dl_sym copies one symbol into a typed slot of `size` bytes: a function
 * (is_function; through a union, as ISO C has no void* to function pointer conversion) or a
 * variable's address; a missing symbol returns -1 with "no symbol NAME" in why. */
#ifndef MLSH_DYNLIB_H
#define MLSH_DYNLIB_H
#include <stddef.h>

void *mlsh_dl_open(const char *libdir, const char *const *names, size_t n, char *why, size_t whylen);
int mlsh_dl_sym(void *h, const char *name, void *slot, size_t size, int is_function, char *why, size_t whylen);
#endif
