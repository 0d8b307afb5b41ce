/* readlinedl.c — GNU readline loaded on first use (see readlinedl.h). */
#include "readlinedl.h"
#include <stddef.h>

#ifdef MLSH_HAVE_READLINE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MLSH_READLINE_DIR
#define MLSH_READLINE_DIR ""
#endif

static mlsh_rl_api api;
static const mlsh_rl_api *loaded;
static char why[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *open_lib(void) {
  const char *env = getenv("MLSH_READLINE"); /* a library file to load instead of searching */
  if (env && *env) {
    void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(why, sizeof why, "%s", dlerror());
    return h;
  }
  static const char *const names[] = {"libreadline.so.8", "libreadline.so.7", "libreadline.so", "libreadline.8.dylib",
                                      "libreadline.dylib"};
  char full[1024];
  void *h = NULL;
  for (size_t i = 0; !h && i < sizeof names / sizeof names[0]; i++) {
    if (*MLSH_READLINE_DIR && snprintf(full, sizeof full, "%s/%s", MLSH_READLINE_DIR, names[i]) < (int)sizeof full)
      h = dlopen(full, RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  }
  if (!h) {
    const char *e = dlerror();
    snprintf(why, sizeof why, "%s", e ? e : "libreadline not found");
  }
  return h;
}

/* One symbol (function or variable) into its slot; 0, or -1 with the name in why. (Functions go
 * through a union: ISO C has no conversion from void* to a function pointer.) */
static int sym(void *h, const char *name, void *slot, size_t size, int is_function) {
  union { void *p; void (*f)(void); } u;
  u.p = dlsym(h, name);
  if (!u.p) {
    snprintf(why, sizeof why, "no symbol %s", name);
    return -1;
  }
  if (is_function) memcpy(slot, &u.f, size);
  else memcpy(slot, &u.p, size);
  return 0;
}

#define FN(field, name) (sym(h, name, &api.field, sizeof api.field, 1) == 0)
#define VAR(field, name) (sym(h, name, &api.field, sizeof api.field, 0) == 0)

static void load(void) {
  void *h = open_lib();
  if (!h) return;
  if (FN(readline, "readline") && FN(add_history, "add_history") && FN(read_history, "read_history") &&
      FN(write_history, "write_history") && FN(history_truncate_file, "history_truncate_file") &&
      FN(completion_matches, "rl_completion_matches") && FN(crlf, "rl_crlf") && FN(replace_line, "rl_replace_line") &&
      FN(on_new_line, "rl_on_new_line") && FN(redisplay, "rl_redisplay") && VAR(line_buffer, "rl_line_buffer") &&
      VAR(catch_signals, "rl_catch_signals") &&
      VAR(attempted_completion_function, "rl_attempted_completion_function") &&
      VAR(basic_word_break_characters, "rl_basic_word_break_characters") &&
      VAR(attempted_completion_over, "rl_attempted_completion_over") &&
      VAR(completion_append_character, "rl_completion_append_character"))
    loaded = &api;
  else
    dlclose(h);
}

const mlsh_rl_api *mlsh_readlinedl(void) {
  pthread_once(&once, load);
  return loaded;
}

const char *mlsh_readlinedl_error(void) { return loaded ? NULL : why; }
#else
const mlsh_rl_api *mlsh_readlinedl(void) { return NULL; }
const char *mlsh_readlinedl_error(void) { return "mlsh was built without the readline header"; }
#endif
