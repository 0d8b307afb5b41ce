/* lua_dtype.c — binding for the element-type facts of dtype.h: the one dtype table Lua reads.
 * Lua: core.dtype.bits[name] -> bit width ; core.dtype.float[name] -> true for float types ;
 *      core.dtype.names -> every name in enum order ; core.dtype.nbytes(name, n) -> bytes of n
 *      packed elements | nil for an unknown name or an overflow.
 * Names are dtype.h's ("fp16", "int4", "uint6", "bool", "fp8e4m3fn" ...). */
#include "dtype.h"
#include <lauxlib.h>
#include <stdint.h>

static int l_nbytes(lua_State *L) {
  mlsh_dtype dt = mlsh_dtype_from_name(luaL_checkstring(L, 1));
  lua_Integer n = luaL_checkinteger(L, 2);
  size_t b = (dt == MLSH_DT_INVALID || n < 0) ? SIZE_MAX : mlsh_dtype_nbytes(dt, (size_t)n);
  if (b == SIZE_MAX || b > (size_t)LUA_MAXINTEGER) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)b);
  return 1;
}

int luaopen_mlsh_core_dtype(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L); /* bits */
  lua_newtable(L); /* float */
  lua_newtable(L); /* names */
  for (int i = 1; i < MLSH_DT_COUNT; i++) {
    const char *name = mlsh_dtype_name((mlsh_dtype)i);
    lua_pushinteger(L, mlsh_dtype_bits((mlsh_dtype)i));
    lua_setfield(L, -4, name);
    if (mlsh_dtype_is_float((mlsh_dtype)i)) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -3, name);
    }
    lua_pushstring(L, name);
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, -4, "names");
  lua_setfield(L, -3, "float");
  lua_setfield(L, -2, "bits");
  lua_pushcfunction(L, l_nbytes);
  lua_setfield(L, -2, "nbytes");
  return 1;
}
