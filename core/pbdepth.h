/* pbdepth.h — a bounded pre-pass over protobuf wire bytes before protobuf-c unpacks them.
 * protobuf-c recurses once per nested message with no limit, so a crafted file (pipelines of
 * pipelines, deeply nested MIL blocks) could exhaust the stack. This walk follows the schema's
 * message-typed fields only, iteratively bounded by MLSH_PB_MAX_DEPTH, and checks every length
 * against the bytes that contain it, and refuses field number 0 (invalid protobuf that protobuf-c
 * would read once but not read back after writing it). Returns 0, or -1 with the reason in e (named `name`). */
#ifndef MLSH_PBDEPTH_H
#define MLSH_PBDEPTH_H
#include "err.h"
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define MLSH_PB_MAX_DEPTH 100

int mlsh_pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len, const char *name,
                        mlsh_err *e);
#endif
