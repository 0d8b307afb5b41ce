/* libFuzzer harness: PNG decoding through core/pngdl.c (libpng loaded on first use) in the three
 * channel modes; whatever decodes must have h*w*c bytes. */
#include "pngdl.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int modes[] = {0, 1, 3};
  for (int k = 0; k < 3; k++) {
    mlsh_png_image img;
    mlsh_err e;
    if (mlsh_png_decode("fuzz", data, size, modes[k], (size_t)16 << 20, &img, &e) != 0) continue;
    if (img.h <= 0 || img.w <= 0 || (img.c != 1 && img.c != 3) || (modes[k] && img.c != modes[k])) abort();
    volatile uint8_t last = img.px[(size_t)img.h * (size_t)img.w * (size_t)img.c - 1];
    (void)last;
    free(img.px);
  }
  return 0;
}
