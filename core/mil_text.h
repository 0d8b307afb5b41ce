/* mil_text.h — reader for MIL text, the `model.mil` file inside compiled `.mlmodelc` folders.
 *
 * It builds the same in-memory CoreML.Specification.MILSpec.Program message mlsh reads from the
 * protobuf inside `.mlpackage` files, so everything downstream works on either source.
 *
 * Contract:
 *  - `text` is untrusted and need not be NUL-terminated; nothing past text[len-1] is read.
 *  - On success returns 0 and *out holds a Program built the way protobuf-c's unpacker builds
 *    one (every pointer from malloc), so the caller releases it with
 *    protobuf_c_message_free_unpacked((ProtobufCMessage *)*out, NULL).
 *  - On failure returns -1, *out is NULL, and err (if errlen > 0) holds one line,
 *    "line L, column C: what was expected" (lines and columns count from 1, columns in bytes).
 *  - Nesting (blocks inside ops, types inside types, literal brackets) deeper than
 *    MLSH_MIL_TEXT_MAX_DEPTH is refused with an error rather than recursing further.
 *  - No allocation is sized by a number read from the text: arrays grow with what was parsed.
 *
 * Mapping choices:
 *  - Program.version is the integer part of `program(X.Y)` (coremltools writes 1).
 *  - `[buildInfo = dict<...>({{"k", "v"}, ...})]` (and any other program attribute) is stored in
 *    Program.attributes as a Value whose immediate is a dictionary of typed key/value Values.
 *  - Function.opset is the Core ML opset name for the tag (ios15 -> CoreML5 ... ios18 -> CoreML8,
 *    ios26 -> CoreML9, anything else verbatim) and keys the function's block_specializations.
 *  - Immediate tensors use the TensorValue field coremltools' helper.py picks for the dtype:
 *    fp32 floats, fp64 doubles, int32/int16/uint16 ints, int64/uint64 longInts, bool bools,
 *    string strings, and bytes (little-endian, sub-byte types bit-packed LSB first) for fp16, bf16,
 *    int8, uint8, uint32, int4, uint1/2/3/4/6 and fp8. */
#ifndef MLSH_MIL_TEXT_H
#define MLSH_MIL_TEXT_H
#include <stddef.h>
#include "mil.pb-c.h"

#define MLSH_MIL_TEXT_MAX_DEPTH 64

int mlsh_mil_text_parse(const char *text, size_t len, CoreML__Specification__MILSpec__Program **out,
                        char *err, size_t errlen);

/* The MIL text word for a DataType ("fp16", "int32", ...), or NULL for values it does not know. */
const char *mlsh_mil_text_dtype_name(int datatype);
#endif
