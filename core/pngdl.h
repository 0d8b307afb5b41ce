/* pngdl.h — PNG files decoded to 8-bit pixels with libpng, which is loaded on first use (dlopen,
 * as zipdl.c loads libzip: first from MLSH_LIBPNG_DIR, the build's pkg-config libdir, then on the
 * loader's path as libpng16.so.16, libpng16.so, libpng.so, libpng16.16.dylib, libpng.dylib), so
 * start-up pays nothing for image support.
 * Contract: mlsh_png_read(path, want, max_bytes, img, e) decodes any valid PNG (bit depth 1-16; grey,
 * grey+alpha, palette, RGB, RGBA; interlaced or not) to HWC uint8 with `want` channels (1 grey,
 * 3 RGB; 0 = the file's own, 1 or 3). Alpha (and tRNS) is dropped, not composited; 16-bit samples
 * are scaled to round(v * 255 / 65535); grey becomes RGB by replication; RGB becomes grey with
 * ITU-R 601 luma as PIL's Image.convert("L") does, (19595 R + 38470 G + 7471 B + 32768) >> 16.
 * On success img holds h, w, c and the malloc'd h*w*c bytes (the caller frees img->px) and 0 is
 * returned; otherwise -1 with "path: reason" in e (not a PNG, truncated, corrupt, libpng missing)
 * and nothing to free. An image of more than max_bytes decoded bytes (h*w*c; 0 = no limit) is
 * refused from its header, before any pixel is decoded (a small file can inflate to gigabytes). */
#ifndef MLSH_PNGDL_H
#define MLSH_PNGDL_H
#include "err.h"
#include <stdint.h>

#include <stddef.h>

typedef struct {
  int64_t h, w;
  int c;
  uint8_t *px;
} mlsh_png_image;

int mlsh_png_read(const char *path, int want, size_t max_bytes, mlsh_png_image *img, mlsh_err *e);
/* The same over len bytes in memory (errors name `name`). */
int mlsh_png_decode(const char *name, const void *data, size_t len, int want, size_t max_bytes, mlsh_png_image *img,
                    mlsh_err *e);
#endif
