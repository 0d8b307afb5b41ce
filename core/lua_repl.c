/* lua_repl.c — what the REPL needs from C: line editing with history (GNU readline when built
 * with its header, loaded by readlinedl.c on the first call that needs it; plain stdin otherwise,
 * with a one-line notice on a terminal when the library cannot be loaded), tab completion through
 * a Lua callback, whether a stream is a terminal, and calls that Ctrl-C can interrupt (the lua.c
 * technique: a signal handler sets a hook that raises "interrupted!" at the next Lua instruction).
 * Lua: repl.readline(prompt) -> line | nil ; repl.add_history(line) ; repl.load_history(path) ;
 *      repl.save_history(path [, max]) ; repl.set_completer(fn(text, line) -> {candidates}) ;
 *      repl.isatty(fd) ; repl.pcall(f, ...) -> ok, err_or_results (traceback on error) ;
 *      repl.has_readline (built with the header; the library may still be missing at run time). */
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "readlinedl.h"

static lua_State *interrupt_L = NULL;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  signal(sig, SIG_DFL);
  if (interrupt_L) lua_sethook(interrupt_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int l_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  int nargs = lua_gettop(L) - 1;
  lua_pushcfunction(L, traceback);
  lua_insert(L, 1);
  interrupt_L = L;
  void (*old)(int) = signal(SIGINT, on_sigint);
  int status = lua_pcall(L, nargs, LUA_MULTRET, 1);
  signal(SIGINT, old == SIG_ERR ? SIG_DFL : old);
  interrupt_L = NULL;
  lua_sethook(L, NULL, 0, 0);
  lua_pushboolean(L, status == LUA_OK);
  lua_replace(L, 1);
  return lua_gettop(L);
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 0)));
  return 1;
}

#ifdef MLSH_HAVE_READLINE
static const mlsh_rl_api *rl; /* set by rl_api() once loaded */

static const mlsh_rl_api *rl_api(void) {
  if (!rl) rl = mlsh_readlinedl();
  return rl;
}

static lua_State *complete_L = NULL;
static int completer_ref = LUA_NOREF;

static char *generator(const char *text, int state) {
  static int idx, n;
  lua_State *L = complete_L;
  if (!L) return NULL;
  if (state == 0) {
    idx = 0;
    n = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);
    lua_pushstring(L, text);
    lua_pushstring(L, *rl->line_buffer);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
      lua_pop(L, 1);
      lua_newtable(L);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "mlsh.repl.candidates");
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "mlsh.repl.candidates");
  n = (int)luaL_len(L, -1);
  char *out = NULL;
  if (idx < n) {
    lua_rawgeti(L, -1, ++idx);
    const char *s = lua_tostring(L, -1);
    if (s) out = strdup(s);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return out;
}

static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  *rl->attempted_completion_over = 1; /* no filename fallback unless the Lua side offers paths */
  *rl->completion_append_character = 0; /* "m:functions" then "(" reads better than a space */
  return rl->completion_matches(text, generator);
}
#endif

static int l_set_completer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
#ifdef MLSH_HAVE_READLINE
  if (completer_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, completer_ref);
  lua_pushvalue(L, 1);
  completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  complete_L = L;
  if (rl_api()) {
    *rl->attempted_completion_function = complete;
    *rl->basic_word_break_characters = " \t\n\"'([{,=+-*/<>~;";
  }
#endif
  return 0;
}

#ifdef MLSH_HAVE_READLINE
/* Ctrl-C at the prompt drops the line being typed and shows a fresh prompt, as shells do. */
static void on_sigint_at_prompt(int sig) {
  (void)sig;
  rl->crlf();
  rl->replace_line("", 0);
  rl->on_new_line();
  rl->redisplay();
}
#endif

/* On a terminal without readline: say so once, then read plain lines. */
static void notice_no_readline(void) {
  static int said;
  if (said) return;
  said = 1;
  fprintf(stderr, "mlsh: no line editing or history (readline could not be loaded: %s)\n", mlsh_readlinedl_error());
}

static int l_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  if (isatty(0)) {
#ifdef MLSH_HAVE_READLINE
    if (rl_api()) {
      *rl->catch_signals = 0;
      void (*old)(int) = signal(SIGINT, on_sigint_at_prompt);
      char *line = rl->readline(prompt);
      signal(SIGINT, old == SIG_ERR ? SIG_DFL : old);
      if (!line) return 0;
      lua_pushstring(L, line);
      free(line);
      return 1;
    }
#endif
    notice_no_readline();
  }
  fputs(prompt, stdout);
  fflush(stdout);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int c, any = 0;
  while ((c = getchar()) != EOF && c != '\n') {
    luaL_addchar(&b, (char)c);
    any = 1;
  }
  if (c == EOF && !any) return 0;
  luaL_pushresult(&b);
  return 1;
}

static int l_add_history(lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
#ifdef MLSH_HAVE_READLINE
  if (*line && rl_api()) rl->add_history(line);
#else
  (void)line;
#endif
  return 0;
}

static int l_load_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
#ifdef MLSH_HAVE_READLINE
  lua_pushboolean(L, rl_api() && rl->read_history(path) == 0);
#else
  (void)path;
  lua_pushboolean(L, 0);
#endif
  return 1;
}

static int l_save_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 1000);
#ifdef MLSH_HAVE_READLINE
  int rc = rl_api() ? rl->write_history(path) : -1;
  if (rc == 0 && max > 0) rl->history_truncate_file(path, (int)max);
  lua_pushboolean(L, rc == 0);
#else
  (void)path;
  (void)max;
  lua_pushboolean(L, 0);
#endif
  return 1;
}

static const luaL_Reg funcs[] = {
  {"readline", l_readline}, {"add_history", l_add_history}, {"load_history", l_load_history},
  {"save_history", l_save_history}, {"set_completer", l_set_completer}, {"isatty", l_isatty},
  {"pcall", l_pcall}, {NULL, NULL}};

int luaopen_mlsh_core_repl(lua_State *L) {
  luaL_newlib(L, funcs);
#ifdef MLSH_HAVE_READLINE
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "has_readline");
  return 1;
}
