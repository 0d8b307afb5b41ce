/* onnx.h — decoding an ONNX ModelProto from the mapped file bytes, without copying big tensors.
 * Contract:
 *   mlsh_onnx_decode returns 0 with *out set to a message that protobuf_c_message_free_unpacked
 *   frees, or -1 with the reason in e (named after `name`). The input bytes are never written.
 *   Tensor payloads of at least MLSH_ONNX_ELIDE_MIN bytes (TensorProto raw_data, and packed
 *   float_data / double_data) are not copied: the decoded TensorProto instead carries
 *   mlsh_elided_field (the field number that held it), mlsh_elided_offset and mlsh_elided_length
 *   (the payload's place in `data`; offset + length <= len, checked). The caller keeps `data`
 *   mapped for the model's lifetime and reads a payload only when asked.
 *   Every length and offset from the file is bound-checked; nesting deeper than
 *   MLSH_ONNX_MAX_DEPTH messages is refused (an adversarial file cannot exhaust the stack).
 *   Nothing is allocated from an unchecked file value: buffers grow with the bytes written. */
#ifndef MLSH_ONNX_H
#define MLSH_ONNX_H
#include "err.h"
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define MLSH_ONNX_ELIDE_MIN 1024u
#define MLSH_ONNX_MAX_DEPTH 64
/* Field numbers of the mlsh extension in core/proto/onnx.proto (TensorProto). */
#define MLSH_ONNX_FIELD_ELIDED_FIELD 536870901u
#define MLSH_ONNX_FIELD_ELIDED_OFFSET 536870902u
#define MLSH_ONNX_FIELD_ELIDED_LENGTH 536870903u

int mlsh_onnx_decode(const uint8_t *data, size_t len, const char *name, ProtobufCMessage **out, mlsh_err *e);
#endif
