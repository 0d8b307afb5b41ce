/* nn_wire.h — reading the protobuf fields mlsh's schema subset (core/proto/coreml.proto) leaves
 * undeclared: a NeuralNetwork layer's parameters (reshape targetShape, activation alpha, ...), a
 * tree node's branch, a GLM's transform. protobuf-c keeps such fields as unknown fields of the
 * decoded message; a sub-message that is itself undeclared is raw bytes. An nnw_msg is either a
 * decoded message (its unknown fields are read) or raw bytes (walked on the wire); both read the
 * same way. Every length is bounds-checked; a malformed field reads as absent. */
#ifndef MLSH_IT_NN_WIRE_H
#define MLSH_IT_NN_WIRE_H
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const ProtobufCMessage *m; /* a decoded message: its unknown fields */
  const uint8_t *p;          /* else raw bytes of an undeclared message */
  size_t n;
} nnw_msg;

typedef struct {
  unsigned field;
  int wire;            /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
  uint64_t v;          /* varint / fixed value */
  const uint8_t *data; /* length-delimited payload */
  size_t len;
} nnw_field;

nnw_msg nnw_of(const void *protobuf_c_message);
nnw_msg nnw_raw(const uint8_t *p, size_t n);
/* Iterate: *cursor starts at 0; returns 1 with the next field, 0 at the end. */
int nnw_next(const nnw_msg *m, size_t *cursor, nnw_field *f);
/* The last occurrence of a field (proto3 semantics for scalars and messages): 1 when present. */
int nnw_get(const nnw_msg *m, unsigned field, nnw_field *f);
int nnw_has(const nnw_msg *m, unsigned field);
uint64_t nnw_u64(const nnw_msg *m, unsigned field, uint64_t def);
int64_t nnw_i64(const nnw_msg *m, unsigned field, int64_t def);
float nnw_f32(const nnw_msg *m, unsigned field, float def);
double nnw_f64(const nnw_msg *m, unsigned field, double def);
/* A sub-message field as raw bytes (an empty message when absent; *present says which). */
nnw_msg nnw_sub(const nnw_msg *m, unsigned field, int *present);
/* Repeated integer field (packed or not, varints) into out[max]; returns the count (may exceed
 * max: only max are stored). */
size_t nnw_ints(const nnw_msg *m, unsigned field, int64_t *out, size_t max);
/* Repeated float (fixed32) or double (fixed64, dbl = 1) field as doubles into out[max]. */
size_t nnw_reals(const nnw_msg *m, unsigned field, int dbl, double *out, size_t max);
#endif
