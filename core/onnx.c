/* onnx.c — ONNX ModelProto decoding that leaves big tensor payloads in the mapped file (onnx.h).
 * protobuf-c's unpack copies every bytes field, so a 440 MB model would be read and copied whole.
 * Instead the wire format is walked first, along the few message paths that can hold tensors
 * (model -> graph -> initializer / node -> attribute -> tensor | subgraph, functions, sparse
 * tensors, training info); a copy is written with large payloads dropped and replaced by three
 * small fields recording where the payload is, and that copy is unpacked. The walk reads only
 * field headers, through a small pread() window on the file when `name` is that file: pages of
 * the mapping are then never faulted in (a fault maps a whole page-cache folio, which can be
 * megabytes of neighbouring weights), so resident memory does not grow with the weights. */
#include "onnx.h"
#include "pbdepth.h"
#include "protoreg.h"
#include "onnx.pb-c.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { K_NONE, K_MODEL, K_GRAPH, K_NODE, K_ATTR, K_TENSOR, K_SPARSE, K_FUNCTION, K_TRAINING } kind;

/* The message kind a length-delimited field of `k` holds, or K_NONE (copied verbatim). */
static kind child_kind(kind k, uint64_t field) {
  switch (k) {
    case K_MODEL: return field == 7 ? K_GRAPH : field == 20 ? K_TRAINING : field == 25 ? K_FUNCTION : K_NONE;
    case K_TRAINING: return field == 1 || field == 2 ? K_GRAPH : K_NONE;
    case K_GRAPH: return field == 1 ? K_NODE : field == 5 ? K_TENSOR : field == 15 ? K_SPARSE : K_NONE;
    case K_NODE: return field == 5 ? K_ATTR : K_NONE;
    case K_ATTR:
      if (field == 5 || field == 10) return K_TENSOR;
      if (field == 6 || field == 11) return K_GRAPH;
      if (field == 22 || field == 23) return K_SPARSE;
      return K_NONE;
    case K_FUNCTION: return field == 7 ? K_NODE : field == 11 ? K_ATTR : K_NONE;
    case K_SPARSE: return field == 1 || field == 2 ? K_TENSOR : K_NONE;
    default: return K_NONE;
  }
}

/* TensorProto payload fields that may be left in the file: raw_data, packed float_data / double_data. */
static int elidable(uint64_t field) { return field == 9 || field == 4 || field == 10; }

typedef struct {
  uint8_t *p;
  size_t n, cap;
} buf;

#define WINDOW 65536

/* The input: either read through memory (base) or, when fd >= 0, through a pread() window. */
typedef struct {
  const uint8_t *base; /* start of the file: offsets are relative to it */
  size_t len;
  int fd;
  uint8_t *win;
  size_t win_off, win_len;
  const char *name;
  mlsh_err *e;
  size_t elided;
} ctx;

/* The byte at pos (< len); -1 on a read error. */
static int src_byte(ctx *c, size_t pos, uint8_t *out) {
  if (c->fd < 0) {
    *out = c->base[pos];
    return 0;
  }
  if (pos < c->win_off || pos >= c->win_off + c->win_len) {
    size_t off = pos & ~(size_t)4095;
    size_t want = c->len - off < WINDOW ? c->len - off : WINDOW;
    ssize_t got = pread(c->fd, c->win, want, (off_t)off);
    if (got <= 0 || (size_t)got <= pos - off) return -1;
    c->win_off = off;
    c->win_len = (size_t)got;
  }
  *out = c->win[pos - c->win_off];
  return 0;
}

static int grow(buf *b, size_t extra) {
  if (b->cap - b->n >= extra) return 0;
  if (extra > SIZE_MAX / 2 - b->n) return -1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->n < extra) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static int put(buf *b, const void *src, size_t n) {
  if (grow(b, n) != 0) return -1;
  if (n) memcpy(b->p + b->n, src, n);
  b->n += n;
  return 0;
}

/* Append input bytes [pos, pos + n) to b (bounds already checked by the caller). */
static int put_src(ctx *c, buf *b, size_t pos, size_t n) {
  if (c->fd < 0) return put(b, c->base + pos, n);
  if (grow(b, n) != 0) return -1;
  size_t done = 0;
  while (done < n) {
    if (pos + done >= c->win_off && pos + done < c->win_off + c->win_len) {
      size_t avail = c->win_off + c->win_len - (pos + done);
      size_t k = n - done < avail ? n - done : avail;
      memcpy(b->p + b->n + done, c->win + (pos + done - c->win_off), k);
      done += k;
    } else {
      ssize_t got = pread(c->fd, b->p + b->n + done, n - done, (off_t)(pos + done));
      if (got <= 0) return -1;
      done += (size_t)got;
    }
  }
  b->n += n;
  return 0;
}

static int put_varint(buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) tmp[n] |= 0x80;
    n++;
  } while (v);
  return put(b, tmp, n);
}

/* Read a varint at *pos (< end); 0 or -1 when truncated or longer than 10 bytes. */
static int get_varint(ctx *c, size_t end, size_t *pos, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    uint8_t byte;
    if (*pos >= end || src_byte(c, *pos, &byte) != 0) return -1;
    (*pos)++;
    if (shift < 64) v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static const char *kind_name(kind k) {
  static const char *names[] = {"message", "ModelProto", "GraphProto", "NodeProto", "AttributeProto",
                                "TensorProto", "SparseTensorProto", "FunctionProto", "TrainingInfoProto"};
  return names[k];
}

/* Copy the message of kind k at base[start, end) into out, eliding large tensor payloads. */
static int rewrite(ctx *c, size_t start, size_t end, kind k, int depth, buf *out) {
  if (depth > MLSH_ONNX_MAX_DEPTH)
    return mlsh_fail(c->e, c->name, "messages nested deeper than %d levels", MLSH_ONNX_MAX_DEPTH);
  size_t pos = start;
  int elided_here = 0;
  uint64_t elided_field = 0, elided_off = 0, elided_len = 0;
  while (pos < end) {
    size_t field_start = pos;
    uint64_t tag;
    if (get_varint(c, end, &pos, &tag) != 0) goto truncated;
    uint64_t field = tag >> 3;
    unsigned wire = (unsigned)(tag & 7);
    if (field == 0) return mlsh_fail(c->e, c->name, "not an ONNX model (corrupt protobuf: field number 0 in a %s at byte %zu)", kind_name(k), field_start);
    switch (wire) {
      case 0: { /* varint */
        uint64_t v;
        if (get_varint(c, end, &pos, &v) != 0) goto truncated;
        if (put_src(c, out, field_start, pos - field_start) != 0) goto oom;
        break;
      }
      case 1: /* fixed64 */
      case 5: { /* fixed32 */
        size_t n = wire == 1 ? 8 : 4;
        if (end - pos < n) goto truncated;
        pos += n;
        if (put_src(c, out, field_start, pos - field_start) != 0) goto oom;
        break;
      }
      case 2: {
        uint64_t n;
        if (get_varint(c, end, &pos, &n) != 0 || n > end - pos) goto truncated;
        size_t body = pos, body_end = pos + (size_t)n;
        pos = body_end;
        kind sub = child_kind(k, field);
        if (k == K_TENSOR && elidable(field) && n >= MLSH_ONNX_ELIDE_MIN && !elided_here) {
          elided_here = 1;
          elided_field = field;
          elided_off = body;
          elided_len = n;
          c->elided++;
        } else if (sub != K_NONE) {
          buf child = {0};
          if (rewrite(c, body, body_end, sub, depth + 1, &child) != 0) {
            free(child.p);
            return -1;
          }
          int rc = put_varint(out, tag) || put_varint(out, child.n) || put(out, child.p, child.n);
          free(child.p);
          if (rc) goto oom;
        } else if (put_src(c, out, field_start, pos - field_start) != 0) {
          goto oom;
        }
        break;
      }
      default:
        return mlsh_fail(c->e, c->name, "not an ONNX model (corrupt protobuf: wire type %u, field %llu, in a %s at byte %zu)", wire,
                         (unsigned long long)field, kind_name(k), field_start);
    }
  }
  if (elided_here) {
    if (put_varint(out, (uint64_t)MLSH_ONNX_FIELD_ELIDED_FIELD << 3) || put_varint(out, elided_field) ||
        put_varint(out, (uint64_t)MLSH_ONNX_FIELD_ELIDED_OFFSET << 3) || put_varint(out, elided_off) ||
        put_varint(out, (uint64_t)MLSH_ONNX_FIELD_ELIDED_LENGTH << 3) || put_varint(out, elided_len))
      goto oom;
  }
  return 0;
truncated:
  return mlsh_fail(c->e, c->name, "not an ONNX model (truncated or corrupt protobuf in a %s near byte %zu)", kind_name(k), pos);
oom:
  return mlsh_fail(c->e, c->name, "out of memory decoding the model");
}

int mlsh_onnx_decode(const uint8_t *data, size_t len, const char *name, ProtobufCMessage **out, mlsh_err *e) {
  *out = NULL;
  const ProtobufCMessageDescriptor *d = mlsh_proto_find("onnx.ModelProto");
  if (!d) return mlsh_fail(e, name, "this mlsh was built without the ONNX schema");
  ctx c = {data, len, -1, NULL, 0, 0, name, e, 0};
  /* read headers with pread when `name` is the very file that is mapped (same size) */
  if (len > WINDOW && (c.win = malloc(WINDOW)) != NULL) {
    struct stat st;
    c.fd = open(name, O_RDONLY | O_CLOEXEC);
    if (c.fd >= 0 && (fstat(c.fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != (uint64_t)len)) {
      close(c.fd);
      c.fd = -1;
    }
  }
  buf copy = {0};
  int rc = rewrite(&c, 0, len, K_MODEL, 0, &copy);
  if (c.fd >= 0) close(c.fd);
  free(c.win);
  if (rc != 0) {
    free(copy.p);
    return -1;
  }
  /* What protobuf-c unpacks must also pass the schema-guided check of every known message field
   * (field number 0 anywhere would read once but not read back; found by fuzz_onnx). The copy
   * holds no big payloads, so this touches no weight pages. */
  const uint8_t *bytes = c.elided ? copy.p : data;
  size_t nbytes = c.elided ? copy.n : len;
  if (mlsh_pb_check_depth(d, bytes, nbytes, name, e) != 0) {
    free(copy.p);
    return -1;
  }
  /* nothing elided: the copy equals the input, unpack the input itself */
  *out = protobuf_c_message_unpack(d, NULL, nbytes, bytes);
  free(copy.p);
  if (!*out) return mlsh_fail(e, name, "not an ONNX model (truncated or corrupt protobuf)");
  /* any byte string that happens to parse is not a model: ONNX always records its IR version */
  const Onnx__ModelProto *m = (const Onnx__ModelProto *)*out;
  if (!m->has_ir_version && !m->graph) {
    protobuf_c_message_free_unpacked(*out, NULL);
    *out = NULL;
    return mlsh_fail(e, name, "not an ONNX model (no ir_version and no graph)");
  }
  return 0;
}
