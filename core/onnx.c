/* onnx.c — ONNX ModelProto decoding (see onnx.h). */
#include "onnx.h"
#include "lua_proto.h"

int mlsh_onnx_decode(const uint8_t *data, size_t len, const char *name, ProtobufCMessage **out, mlsh_err *e) {
  const ProtobufCMessageDescriptor *d = mlsh_proto_find("onnx.ModelProto");
  if (!d) return mlsh_fail(e, name, "this mlsh was built without the ONNX schema");
  *out = protobuf_c_message_unpack(d, NULL, len, data);
  if (!*out) return mlsh_fail(e, name, "not an ONNX model (truncated or corrupt protobuf)");
  return 0;
}
