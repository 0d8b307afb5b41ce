/* libFuzzer harness: MIL text (model.mil) and the round trip of what it builds. */
#include "mil_text.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  CoreML__Specification__MILSpec__Program *p = NULL;
  char err[256];
  if (mlsh_mil_text_parse((const char *)data, size, &p, err, sizeof err) != 0) return 0;
  size_t n = protobuf_c_message_get_packed_size(&p->base);
  uint8_t *buf = malloc(n ? n : 1);
  protobuf_c_message_pack(&p->base, buf);
  ProtobufCMessage *back = protobuf_c_message_unpack(p->base.descriptor, NULL, n, buf);
  if (!back) abort();
  protobuf_c_message_free_unpacked(back, NULL);
  free(buf);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  return 0;
}
