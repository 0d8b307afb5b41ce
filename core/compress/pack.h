/* pack.h — packing codes and masks, and moving values in and out of sparse form.
 * Contract: codes are packed LSB-first (element i at bits [i*b, i*b+b) of the byte stream, as
 * mlsh_bitpack and Core ML blobs lay them out); out must hold ceil(n*bits/8) bytes. A mask is
 * one byte per element, non-zero = kept; sparse values are kept in row-major order. */
#ifndef MLSH_COMPRESS_PACK_H
#define MLSH_COMPRESS_PACK_H
#include <stddef.h>
#include <stdint.h>

/* Pack n codes of `bits` (1..8) into out, across threads for large n (0 = default count). */
void mlsh_pack_codes(const uint8_t *codes, size_t n, unsigned bits, uint8_t *out, unsigned threads);

/* Pack a 0/1 byte mask as uint1 (np.packbits(bitorder="little")). */
void mlsh_pack_mask(const uint8_t *mask, size_t n, uint8_t *out, unsigned threads);

/* Copy the kept entries of src (mask non-zero) to out, which has room for every kept entry;
 * returns how many. Chunks are counted, then gathered in parallel at their offsets. */
size_t mlsh_gather_f32(const float *src, const uint8_t *mask, size_t n, float *out, unsigned threads);
size_t mlsh_gather_u8(const uint8_t *src, const uint8_t *mask, size_t n, uint8_t *out, unsigned threads);

/* Zero x where the mask is 0. */
void mlsh_mask_apply(float *x, const uint8_t *mask, size_t n, unsigned threads);
#endif
