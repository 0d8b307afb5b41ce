/* lua_model.h — what other bindings may reach of an mlsh.Model userdata: its container (to map
 * files it holds). Raises if idx is not an open Model. */
#ifndef MLSH_LUA_MODEL_H
#define MLSH_LUA_MODEL_H
#include "container.h"
#include <lua.h>

mlsh_container *mlsh_model_container(lua_State *L, int idx);
/* Push a Model owning the opened container c (its spec decoded), or nil, err (c is then
 * closed when the userdata is collected). */
int mlsh_model_push(lua_State *L, mlsh_container *c);
#endif
