/* libFuzzer harness: a .mlmodel spec through the loader mlsh itself uses (mlsh_coreml_decode_spec:
 * the bounded pre-pass, then protobuf-c's unpack), and the writer's round trip
 * (pack -> unpack -> pack must give the same bytes). */
#include "coreml.h"
#include "protoreg.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const ProtobufCMessageDescriptor *d = mlsh_proto_find("CoreML.Specification.Model");
  mlsh_err e;
  ProtobufCMessage *m;
  if (mlsh_coreml_decode_spec(data, size, "fuzz", &m, &e) != 0) return 0;
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *a = malloc(n ? n : 1);
  protobuf_c_message_pack(m, a);
  ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, n, a);
  if (!m2) abort(); /* what mlsh writes it must read back */
  size_t n2 = protobuf_c_message_get_packed_size(m2);
  uint8_t *b = malloc(n2 ? n2 : 1);
  protobuf_c_message_pack(m2, b);
  if (n != n2 || memcmp(a, b, n) != 0) abort(); /* parse -> write -> parse must agree */
  free(a);
  free(b);
  protobuf_c_message_free_unpacked(m2, NULL);
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
