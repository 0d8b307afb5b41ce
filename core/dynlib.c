/* dynlib.c — optional shared libraries loaded on first use (see dynlib.h). */
#include "dynlib.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void keep_first(char *why, size_t whylen) {
  const char *d = dlerror();
  if (d && !why[0]) snprintf(why, whylen, "%s", d);
}

void *mlsh_dl_open(const char *libdir, const char *const *names, size_t n, char *why, size_t whylen) {
  char full[1024];
  void *h = NULL;
  why[0] = 0;
  for (size_t i = 0; !h && i < n; i++) {
    if (libdir && *libdir && snprintf(full, sizeof full, "%s/%s", libdir, names[i]) < (int)sizeof full) {
      h = dlopen(full, RTLD_NOW | RTLD_LOCAL);
      if (!h) keep_first(why, whylen);
    }
    if (!h) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) keep_first(why, whylen);
  }
  if (h) why[0] = 0;
  else if (!why[0]) snprintf(why, whylen, "%s not found", n ? names[0] : "library");
  return h;
}

int mlsh_dl_sym(void *h, const char *name, void *slot, size_t size, int is_function, char *why, size_t whylen) {
  union { void *p; void (*f)(void); } u;
  u.p = dlsym(h, name);
  if (!u.p) {
    snprintf(why, whylen, "no symbol %s", name);
    return -1;
  }
  if (is_function) memcpy(slot, &u.f, size < sizeof u.f ? size : sizeof u.f);
  else memcpy(slot, &u.p, size < sizeof u.p ? size : sizeof u.p);
  return 0;
}
