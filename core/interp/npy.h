/* npy.h — NumPy .npy files (format versions 1.0, 2.0, 3.0), read and written without numpy.
 * Dtypes: bool (b1), int8/16/32/64 (i1..i8), uint8/16/32/64 (u1..u8), fp16/32/64 (f2/f4/f8), in
 * either byte order ('<', '>', '|', '='). C order only: Fortran-order arrays, object arrays,
 * structured dtypes, bad headers and truncated data are refused with a message naming the file.
 * Writing is little-endian, version 1.0 (2.0 when the header needs it), atomic (temp + rename). */
#ifndef MLSH_IT_NPY_H
#define MLSH_IT_NPY_H
#include "tensor.h"

/* Parse an in-memory .npy image (len bytes; need not be NUL-terminated). */
int it_npy_parse(const uint8_t *buf, size_t len, const char *name, it_tensor **out, mlsh_err *e);
int it_npy_read(const char *path, it_tensor **out, mlsh_err *e);
/* Encode t as a malloc'd .npy image in its logical dtype (fp16 stays fp16). */
int it_npy_encode(const it_tensor *t, uint8_t **buf, size_t *len, mlsh_err *e);
int it_npy_write(const char *path, const it_tensor *t, mlsh_err *e);
#endif
