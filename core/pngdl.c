/* pngdl.c — PNG decoding with libpng loaded on first use (see pngdl.h). */
#include "pngdl.h"
#include "dynlib.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MLSH_LIBPNG_DIR
#define MLSH_LIBPNG_DIR ""
#endif

/* The libpng functions used here, typed from <png.h>. */
typedef struct {
  __typeof__(png_create_read_struct) *create_read_struct;
  __typeof__(png_create_info_struct) *create_info_struct;
  __typeof__(png_destroy_read_struct) *destroy_read_struct;
  __typeof__(png_set_read_fn) *set_read_fn;
  __typeof__(png_get_io_ptr) *get_io_ptr;
  __typeof__(png_get_error_ptr) *get_error_ptr;
  __typeof__(png_read_info) *read_info;
  __typeof__(png_get_IHDR) *get_IHDR;
  __typeof__(png_set_palette_to_rgb) *set_palette_to_rgb;
  __typeof__(png_set_expand_gray_1_2_4_to_8) *set_expand_gray_1_2_4_to_8;
  __typeof__(png_set_scale_16) *set_scale_16;
  __typeof__(png_set_strip_alpha) *set_strip_alpha;
  __typeof__(png_set_gray_to_rgb) *set_gray_to_rgb;
  __typeof__(png_set_interlace_handling) *set_interlace_handling;
  __typeof__(png_read_update_info) *read_update_info;
  __typeof__(png_get_channels) *get_channels;
  __typeof__(png_get_rowbytes) *get_rowbytes;
  __typeof__(png_read_image) *read_image;
  __typeof__(png_read_end) *read_end;
} png_api;

static png_api api;
static const png_api *loaded;
static char why[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *open_lib(void) {
  static const char *const names[] = {"libpng16.so.16", "libpng16.so", "libpng.so", "libpng16.16.dylib", "libpng.dylib"};
  return mlsh_dl_open(MLSH_LIBPNG_DIR, names, sizeof names / sizeof names[0], why, sizeof why);
}

#define SYM(field) (mlsh_dl_sym(h, "png_" #field, &api.field, sizeof api.field, 1, why, sizeof why) == 0)

static void load(void) {
  void *h = open_lib();
  if (!h) return;
  if (SYM(create_read_struct) && SYM(create_info_struct) && SYM(destroy_read_struct) && SYM(set_read_fn) &&
      SYM(get_io_ptr) && SYM(get_error_ptr) && SYM(read_info) && SYM(get_IHDR) && SYM(set_palette_to_rgb) &&
      SYM(set_expand_gray_1_2_4_to_8) && SYM(set_scale_16) && SYM(set_strip_alpha) && SYM(set_gray_to_rgb) &&
      SYM(set_interlace_handling) && SYM(read_update_info) && SYM(get_channels) && SYM(get_rowbytes) &&
      SYM(read_image) && SYM(read_end))
    loaded = &api;
  else
    dlclose(h);
}

/* Everything a decode touches after setjmp lives here (on the heap), so a longjmp from libpng's
 * error callback finds it intact. */
typedef struct {
  jmp_buf jb;
  const uint8_t *data;
  size_t len, pos;
  char msg[256];
  png_structp png;
  png_infop info;
  uint8_t *px, *tmp;
  png_bytep *rows;
} reader;

static void on_error(png_structp png, png_const_charp msg) {
  reader *r = api.get_error_ptr(png);
  snprintf(r->msg, sizeof r->msg, "corrupt PNG (%s)", msg);
  longjmp(r->jb, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void on_read(png_structp png, png_bytep out, size_t n) {
  reader *r = api.get_io_ptr(png);
  if (n > r->len - r->pos) {
    snprintf(r->msg, sizeof r->msg, "truncated PNG (the file ends at byte %zu, inside a chunk)", r->len);
    longjmp(r->jb, 1);
  }
  memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

/* RGB -> grey as PIL's convert("L") (ITU-R 601 luma, 16-bit fixed point); in place is fine. */
static void luma(const uint8_t *rgb, uint8_t *grey, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t v = 19595u * rgb[3 * i] + 38470u * rgb[3 * i + 1] + 7471u * rgb[3 * i + 2] + 0x8000u;
    grey[i] = (uint8_t)(v >> 16);
  }
}

/* The decode proper; returns -1 with r->msg set (or e set) on failure. Called after setjmp. */
static int decode(reader *r, int want, size_t max_bytes, mlsh_png_image *img, const char *path, mlsh_err *e) {
  png_uint_32 w, h;
  int depth, type, interlace;
  api.set_read_fn(r->png, r, on_read);
  api.read_info(r->png, r->info);
  api.get_IHDR(r->png, r->info, &w, &h, &depth, &type, &interlace, NULL, NULL);
  int colour = (type & PNG_COLOR_MASK_COLOR) != 0, c = want ? want : colour ? 3 : 1;
  if (type == PNG_COLOR_TYPE_PALETTE) api.set_palette_to_rgb(r->png);
  if (!colour && depth < 8) api.set_expand_gray_1_2_4_to_8(r->png);
  if (depth == 16) api.set_scale_16(r->png);
  api.set_strip_alpha(r->png);
  if (!colour && c == 3) api.set_gray_to_rgb(r->png);
  api.set_interlace_handling(r->png);
  api.read_update_info(r->png, r->info);
  int n = api.get_channels(r->png, r->info);
  if ((n != 1 && n != 3) || api.get_rowbytes(r->png, r->info) != (size_t)w * (size_t)n)
    return mlsh_fail(e, path, "unsupported PNG layout (%d channels of %d bits after conversion)", n, depth);
  size_t pixels = (size_t)w * (size_t)h;
  if (pixels > SIZE_MAX / 4 || (max_bytes && pixels * (size_t)(n > c ? n : c) > max_bytes))
    return mlsh_fail(e, path, "PNG of %ux%u pixels is larger than the memory budget", (unsigned)w, (unsigned)h);
  r->px = malloc(pixels * (size_t)c + 1);
  r->tmp = n != c ? malloc(pixels * (size_t)n + 1) : NULL;
  r->rows = malloc(((size_t)h + 1) * sizeof *r->rows);
  if (!r->px || (n != c && !r->tmp) || !r->rows) return mlsh_fail(e, path, "out of memory for a %ux%u PNG", (unsigned)w, (unsigned)h);
  uint8_t *dst = n != c ? r->tmp : r->px;
  for (png_uint_32 y = 0; y < h; y++) r->rows[y] = dst + (size_t)y * w * (size_t)n;
  api.read_image(r->png, r->rows);
  api.read_end(r->png, NULL);
  if (n != c) luma(r->tmp, r->px, pixels); /* n = 3, c = 1: the only conversion libpng did not do */
  img->h = h;
  img->w = w;
  img->c = c;
  img->px = r->px;
  r->px = NULL;
  return 0;
}

static int read_mem(const char *path, const uint8_t *data, size_t len, int want, size_t max_bytes, mlsh_png_image *img,
                    mlsh_err *e) {
  reader *r = calloc(1, sizeof *r);
  if (!r) return mlsh_fail(e, path, "out of memory");
  r->data = data;
  r->len = len;
  int rc = -1;
  r->png = api.create_read_struct(PNG_LIBPNG_VER_STRING, r, on_error, on_warning);
  if (r->png) r->info = api.create_info_struct(r->png);
  if (!r->png || !r->info) mlsh_fail(e, path, "libpng could not start a decoder (version mismatch with " PNG_LIBPNG_VER_STRING "?)");
  else if (setjmp(r->jb)) mlsh_fail(e, path, "%s", r->msg);
  else rc = decode(r, want, max_bytes, img, path, e);
  if (r->png) api.destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
  free(r->px);
  free(r->tmp);
  free(r->rows);
  free(r);
  return rc;
}

static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int ready(const char *path, int want, mlsh_png_image *img, mlsh_err *e) {
  memset(img, 0, sizeof *img);
  if (want != 0 && want != 1 && want != 3) return mlsh_fail(e, path, "PNG channels must be 1 or 3 (asked %d)", want);
  pthread_once(&once, load);
  if (!loaded) return mlsh_fail(e, path, "libpng could not be loaded (%s); install libpng (Debian: libpng16-16)", why);
  return 0;
}

int mlsh_png_decode(const char *name, const void *data, size_t len, int want, size_t max_bytes, mlsh_png_image *img,
                    mlsh_err *e) {
  if (ready(name, want, img, e) != 0) return -1;
  if (len < 8 || memcmp(data, sig, 8) != 0) return mlsh_fail(e, name, "not a PNG file (no PNG signature)");
  return read_mem(name, data, len, want, max_bytes, img, e);
}

int mlsh_png_read(const char *path, int want, size_t max_bytes, mlsh_png_image *img, mlsh_err *e) {
  if (ready(path, want, img, e) != 0) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mlsh_fail(e, path, "cannot open (%s)", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return mlsh_fail(e, path, "not a regular file");
  }
  size_t len = (size_t)st.st_size;
  void *map = len >= 8 ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED || memcmp(map, sig, 8) != 0) {
    if (map != MAP_FAILED) munmap(map, len);
    return mlsh_fail(e, path, "not a PNG file (no PNG signature)");
  }
  int rc = read_mem(path, map, len, want, max_bytes, img, e);
  munmap(map, len);
  return rc;
}
