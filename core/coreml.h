/* coreml.h — decoding the spec of an opened model container: the one loader the Lua binding
 * (lua_model.c) and the fuzzer (fuzz/fuzz_mlmodel.c) both call.
 * Contract:
 *   mlsh_coreml_decode_spec(data, len, name, &msg, e): `data` holds a Core ML Model protobuf
 *     (Model.mlmodel, or the one inside an .mlpackage). The bounded pre-pass (pbdepth.h) runs first,
 *     so a too-deep or malformed nesting is refused before protobuf-c allocates; then protobuf-c
 *     unpacks it. 0 with *msg set (free with protobuf_c_message_free_unpacked), or -1 with
 *     "name: not a Core ML model (reason)" in e. An empty input is refused ("empty file").
 *   mlsh_model_decode(c, &msg, e): the spec of container c by its format: Core ML (above) or ONNX
 *     (onnx.h). 0 with *msg (NULL for a compiled .mlmodelc, whose spec the Lua layer rebuilds from
 *     model.mil), or -1 with the reason in e. The container's mapped bytes are never written. */
#ifndef MLSH_COREML_H
#define MLSH_COREML_H
#include "container.h"
#include "err.h"
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

int mlsh_coreml_decode_spec(const uint8_t *data, size_t len, const char *name, ProtobufCMessage **msg, mlsh_err *e);
int mlsh_model_decode(mlsh_container *c, ProtobufCMessage **msg, mlsh_err *e);
#endif
