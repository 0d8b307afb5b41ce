/* onnx.h — decoding an ONNX ModelProto from the mapped file bytes.
 * Contract: returns 0 with *out set to a message that protobuf_c_message_free_unpacked frees, or
 * -1 with the reason in e (named after `name`). The bytes stay mapped for the model's lifetime,
 * so an implementation may record offsets into them instead of copying large tensors. */
#ifndef MLSH_ONNX_H
#define MLSH_ONNX_H
#include "err.h"
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

int mlsh_onnx_decode(const uint8_t *data, size_t len, const char *name, ProtobufCMessage **out, mlsh_err *e);
#endif
