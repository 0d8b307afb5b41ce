/* lua_proto.h — the generic protobuf message userdata (metatable "mlsh.Message").
 * Any protobuf-c message type compiled from core/proto/ is reachable from Lua by its full name.
 * A root Message owns its C tree (freed on __gc); child Messages borrow from it and keep the
 * root alive. Sub-messages that Lua replaces are kept until the root dies, so a stale child
 * never points at freed memory. */
#ifndef MLSH_LUA_PROTO_H
#define MLSH_LUA_PROTO_H
#include "protoreg.h"
#include <lua.h>
#include <protobuf-c/protobuf-c.h>

/* Push a root Message that takes ownership of msg (freed with protobuf_c_message_free_unpacked). */
void mlsh_proto_push_root(lua_State *L, ProtobufCMessage *msg);
/* The C message of the Message at idx (raises if it is not one, or not of type desc when given). */
ProtobufCMessage *mlsh_proto_check(lua_State *L, int idx, const ProtobufCMessageDescriptor *desc);
#endif
