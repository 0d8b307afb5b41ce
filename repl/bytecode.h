/* bytecode.h — precompiled Lua modules for the mlsh program (start-up cost, bench/README.md).
 * mlsh_bytecode_searcher installs, in front of Lua's file searcher, a searcher that loads module M
 * from bytecode only when M's source exists under HOME/lua (M.lua or M/init.lua) and the bytecode
 * beside it (HOME/build/lua/M.luac in a source tree, HOME/lua/M.luac once installed) is at least
 * as new as that source; otherwise it returns nothing and the source is loaded as usual. The
 * chunk's name is set to "@" + the source path, so messages and tracebacks read as from the
 * source. Bytecode is never looked for anywhere else (not on LUA_PATH): Lua does not verify
 * bytecode, so it is only trusted from the folder mlsh takes its own sources from, and Lua's file
 * searcher (package.path, LUA_PATH) is replaced by one that loads source text only. */
#ifndef MLSH_REPL_BYTECODE_H
#define MLSH_REPL_BYTECODE_H
#include <lua.h>

/* Insert the searcher as package.searchers[2] and the text-only one as [3]; home is copied. */
void mlsh_bytecode_searcher(lua_State *L, const char *home);

#endif
