/* pbdepth.c — schema-guided nesting and length check of protobuf bytes (see pbdepth.h). */
#include "pbdepth.h"

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return -1;
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

typedef struct {
  const ProtobufCMessageDescriptor *d;
  const uint8_t *p, *end;
} frame;

int mlsh_pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len, const char *name,
                        mlsh_err *e) {
  frame stack[MLSH_PB_MAX_DEPTH + 1];
  int top = 0;
  stack[0] = (frame){d, data, data + len};
  while (top >= 0) {
    frame *f = &stack[top];
    if (f->p >= f->end) {
      top--;
      continue;
    }
    uint64_t key, v;
    if (read_varint(&f->p, f->end, &key) != 0) return mlsh_fail(e, name, "truncated or corrupt protobuf (bad field key)");
    uint32_t number = (uint32_t)(key >> 3);
    /* field 0 is invalid; protobuf-c keeps it when its key is over-long, then cannot read back
     * what it wrote (found by fuzz_mlmodel) */
    if (number == 0 || (key >> 3) > 0x1fffffff) return mlsh_fail(e, name, "truncated or corrupt protobuf (field number %llu)", (unsigned long long)(key >> 3));
    switch (key & 7) {
      case 0:
        if (read_varint(&f->p, f->end, &v) != 0) return mlsh_fail(e, name, "truncated or corrupt protobuf (bad varint)");
        break;
      case 1:
        if (f->end - f->p < 8) return mlsh_fail(e, name, "truncated or corrupt protobuf");
        f->p += 8;
        break;
      case 5:
        if (f->end - f->p < 4) return mlsh_fail(e, name, "truncated or corrupt protobuf");
        f->p += 4;
        break;
      case 2: {
        if (read_varint(&f->p, f->end, &v) != 0 || v > (uint64_t)(f->end - f->p))
          return mlsh_fail(e, name, "truncated or corrupt protobuf (a length runs past its message)");
        const uint8_t *start = f->p;
        f->p += v;
        const ProtobufCFieldDescriptor *fd = f->d ? protobuf_c_message_descriptor_get_field(f->d, number) : NULL;
        if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
          if (top + 1 > MLSH_PB_MAX_DEPTH)
            return mlsh_fail(e, name, "messages nested more than %d deep (refusing a crafted file)", MLSH_PB_MAX_DEPTH);
          stack[++top] = (frame){fd->descriptor, start, start + v};
        }
        break;
      }
      default:
        return mlsh_fail(e, name, "truncated or corrupt protobuf (wire type %u)", (unsigned)(key & 7));
    }
  }
  return 0;
}
