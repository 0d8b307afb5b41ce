/* coreml.c — decoding a model container's spec (see coreml.h). */
#include "coreml.h"
#include "onnx.h"
#include "pbdepth.h"
#include "protoreg.h"
#include <stdio.h>
#include <string.h>

int mlsh_coreml_decode_spec(const uint8_t *data, size_t len, const char *name, ProtobufCMessage **msg, mlsh_err *e) {
  *msg = NULL;
  if (len == 0) return mlsh_fail(e, name, "empty file, not a model");
  const ProtobufCMessageDescriptor *d = mlsh_proto_find("CoreML.Specification.Model");
  if (d && mlsh_pb_check_depth(d, data, len, name, e) != 0) {
    char why[sizeof e->msg];
    size_t skip = strlen(name) + 2;
    snprintf(why, sizeof why, "%s", strlen(e->msg) > skip ? e->msg + skip : e->msg);
    return mlsh_fail(e, name, "not a Core ML model (%s)", why);
  }
  if (!d || !(*msg = protobuf_c_message_unpack(d, NULL, len, data)))
    return mlsh_fail(e, name, "not a Core ML model (truncated or corrupt protobuf)");
  return 0;
}

int mlsh_model_decode(mlsh_container *c, ProtobufCMessage **msg, mlsh_err *e) {
  *msg = NULL;
  mlsh_format fmt = mlsh_container_format(c);
  if (fmt == MLSH_FMT_MLMODELC) return 0;
  const uint8_t *data;
  size_t len;
  const char *name;
  if (mlsh_container_spec(c, &data, &len, &name, e) != 0) return -1;
  if (len == 0) return mlsh_fail(e, name, "empty file, not a model");
  if (fmt == MLSH_FMT_ONNX) return mlsh_onnx_decode(data, len, name, msg, e);
  return mlsh_coreml_decode_spec(data, len, name, msg, e);
}
