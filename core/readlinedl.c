/* readlinedl.c — GNU readline loaded on first use (see readlinedl.h). */
#include "readlinedl.h"
#include <stddef.h>

#ifdef MLSH_HAVE_READLINE
#include "dynlib.h"
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
  if (env && *env) return mlsh_dl_open("", &env, 1, why, sizeof why);
  static const char *const names[] = {"libreadline.so.8", "libreadline.so.7", "libreadline.so", "libreadline.8.dylib",
                                      "libreadline.dylib"};
  return mlsh_dl_open(MLSH_READLINE_DIR, names, sizeof names / sizeof names[0], why, sizeof why);
}

#define FN(field, name) (mlsh_dl_sym(h, name, &api.field, sizeof api.field, 1, why, sizeof why) == 0)
#define VAR(field, name) (mlsh_dl_sym(h, name, &api.field, sizeof api.field, 0, why, sizeof why) == 0)

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
