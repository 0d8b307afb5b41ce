/* main.c — the mlsh program: set up a Lua 5.4 state with the mlsh core preloaded, find the Lua
 * library (MLSH_HOME, the source tree beside the binary, or PREFIX/share/mlsh) and hand the
 * command line to lua/mlsh/cli/main.lua, which implements the REPL, scripts, -e and subcommands.
 * Modules under that folder load from their precompiled bytecode while it is fresh (bytecode.h).
 * Exit status: whatever cli.main returns (0 ok, 1 findings/errors, 2 bad usage or input). */
#include "alloc.h"
#include "bigbuf.h"
#include "bytecode.h"
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

int luaopen_mlsh_core(lua_State *L);

#define HEAP_RESERVE ((size_t)128 << 20) /* address space hinted for huge pages at start */

static int is_home(const char *dir) {
  char p[PATH_MAX];
  struct stat st;
  if (snprintf(p, sizeof p, "%s/lua/mlsh/init.lua", dir) >= (int)sizeof p) return 0;
  return stat(p, &st) == 0;
}

/* The folder holding lua/ rules/ recipes/: $MLSH_HOME, the binary's folder, or ../share/mlsh. */
static int find_home(const char *argv0, char *out, size_t outlen) {
  const char *env = getenv("MLSH_HOME");
  if (env && *env && is_home(env)) return snprintf(out, outlen, "%s", env) < (int)outlen;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) exe[n] = 0;
  else if (!realpath(argv0, exe)) return 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return 0;
  *slash = 0;
  if (is_home(exe)) return snprintf(out, outlen, "%s", exe) < (int)outlen;
  char share[PATH_MAX];
  if (snprintf(share, sizeof share, "%s/../share/mlsh", exe) >= (int)sizeof share) return 0;
  if (is_home(share) && realpath(share, out)) return 1;
  return 0;
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  luaL_openlibs(L);
  /* the core opens on first `require "mlsh.core"` (mlsh --version needs none of it) */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_mlsh_core);
  lua_setfield(L, -2, "mlsh.core");
  lua_pop(L, 1);
  char home[PATH_MAX];
  if (!find_home(argv[0], home, sizeof home))
    return luaL_error(L, "cannot find mlsh's Lua library (set MLSH_HOME to the folder holding lua/mlsh)");
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", home, home);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "loaded");
  lua_pushstring(L, home);
  lua_setfield(L, -2, "mlsh.home"); /* require "mlsh.home" -> the folder */
  lua_pop(L, 2);
  mlsh_bytecode_searcher(L, home);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mlsh.cli.main");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_call(L, 1, 1);
  return 1;
}

static int panic(lua_State *L) {
  fprintf(stderr, "mlsh: unprotected error: %s\n", lua_tostring(L, -1));
  return 0;
}

int main(int argc, char **argv) {
  /* past a file-size limit, write() should fail with EFBIG (and mlsh keep the old file), not kill us */
  signal(SIGXFSZ, SIG_IGN);
  /* the heap in 2 MiB pages from here on: weights and results are megabytes (bigbuf.h) */
  (void)mlsh_bigbuf_heap(HEAP_RESERVE);
  static mlsh_alloc_state alloc_state; /* accounting allocator: --safe gives rules a memory budget */
  lua_State *L = lua_newstate(mlsh_limited_alloc, &alloc_state);
  if (L) lua_atpanic(L, panic);
  if (!L) {
    fprintf(stderr, "mlsh: cannot create Lua state: not enough memory\n");
    return 2;
  }
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 1), rc;
  if (status != LUA_OK) {
    fprintf(stderr, "mlsh: %s\n", lua_tostring(L, -1));
    rc = 2;
  } else {
    rc = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  }
  fflush(stdout);
  lua_close(L);
  mlsh_bigbuf_heap_end();
  return rc;
}
