/* libFuzzer harness: ONNX ModelProto decoding (the zero-copy path: elided tensor payloads must
 * point inside the input) and the round trip of the decoded message. */
#include "onnx.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ProtobufCMessage *m = NULL;
  mlsh_err e;
  if (mlsh_onnx_decode(data, size, "fuzz", &m, &e) != 0) return 0;
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  protobuf_c_message_pack(m, buf);
  ProtobufCMessage *back = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
  if (!back) abort(); /* what mlsh decoded it must be able to write and read back */
  protobuf_c_message_free_unpacked(back, NULL);
  free(buf);
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
