/* flatbuf.c — bounds-checked FlatBuffers reading (see flatbuf.h). */
#include "flatbuf.h"
#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int bad(mlsh_fb *fb, const char *why) {
  fb->err = why;
  return -1;
}

/* [pos, pos+n) inside the buffer */
static int in(const mlsh_fb *fb, uint64_t pos, uint64_t n) { return pos <= fb->len && n <= fb->len - pos; }

int mlsh_fb_init(mlsh_fb *fb, const uint8_t *buf, size_t len) {
  fb->buf = buf;
  fb->len = len > 0xFFFFFFF0u ? 0xFFFFFFF0u : len; /* uoffsets are 32-bit */
  fb->err = NULL;
  if (len < 8) return bad(fb, "too short for a flatbuffer");
  return 0;
}

int mlsh_fb_table_at(mlsh_fb *fb, uint32_t pos, mlsh_fb_table *t) {
  if (!in(fb, pos, 4)) return bad(fb, "table offset out of range");
  int64_t vt = (int64_t)pos - (int32_t)rd32(fb->buf + pos);
  if (vt < 0 || !in(fb, (uint64_t)vt, 4)) return bad(fb, "vtable out of range");
  uint16_t vtlen = rd16(fb->buf + vt), tbllen = rd16(fb->buf + vt + 2);
  if (vtlen < 4 || (vtlen & 1) || !in(fb, (uint64_t)vt, vtlen)) return bad(fb, "vtable out of range");
  if (tbllen < 4 || !in(fb, pos, tbllen)) return bad(fb, "table extends past the end");
  t->pos = pos;
  t->vt = (uint32_t)vt;
  t->vtlen = vtlen;
  t->tbllen = tbllen;
  return 0;
}

int mlsh_fb_root(mlsh_fb *fb, mlsh_fb_table *t) { return mlsh_fb_table_at(fb, rd32(fb->buf), t); }

/* Field offset within the table (0 = absent), checked that `size` bytes fit in the table. */
static int field(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint32_t size, uint32_t *off) {
  *off = 0;
  if (id < 0) return bad(fb, "bad field id");
  uint32_t slot = 4 + 2 * (uint32_t)id;
  if (slot + 2 > t->vtlen) return 0;
  uint16_t o = rd16(fb->buf + t->vt + slot);
  if (!o) return 0;
  if ((uint32_t)o + size > t->tbllen) return bad(fb, "field past the end of its table");
  *off = t->pos + o;
  return 1;
}

int mlsh_fb_has(mlsh_fb *fb, const mlsh_fb_table *t, int id) {
  uint32_t off;
  return field(fb, t, id, 1, &off);
}

int mlsh_fb_u8(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint8_t def, uint8_t *out) {
  uint32_t off;
  int r = field(fb, t, id, 1, &off);
  if (r < 0) return -1;
  *out = r ? fb->buf[off] : def;
  return 0;
}

int mlsh_fb_u32(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint32_t def, uint32_t *out) {
  uint32_t off;
  int r = field(fb, t, id, 4, &off);
  if (r < 0) return -1;
  *out = r ? rd32(fb->buf + off) : def;
  return 0;
}

int mlsh_fb_u64(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint64_t def, uint64_t *out) {
  uint32_t off;
  int r = field(fb, t, id, 8, &off);
  if (r < 0) return -1;
  *out = r ? rd64(fb->buf + off) : def;
  return 0;
}

/* Follow the uoffset stored at absolute position slot. */
static int follow(mlsh_fb *fb, uint32_t slot, uint32_t *target) {
  if (!in(fb, slot, 4)) return bad(fb, "offset out of range");
  uint64_t t = (uint64_t)slot + rd32(fb->buf + slot);
  if (!in(fb, t, 4)) return bad(fb, "offset out of range");
  *target = (uint32_t)t;
  return 0;
}

static int ref(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint32_t *target) {
  uint32_t off;
  int r = field(fb, t, id, 4, &off);
  if (r <= 0) return r;
  return follow(fb, off, target) ? -1 : 1;
}

int mlsh_fb_sub(mlsh_fb *fb, const mlsh_fb_table *t, int id, mlsh_fb_table *out) {
  uint32_t target;
  int r = ref(fb, t, id, &target);
  if (r <= 0) return r;
  return mlsh_fb_table_at(fb, target, out) ? -1 : 1;
}

static int string_at(mlsh_fb *fb, uint32_t pos, const char **s, uint32_t *len) {
  uint32_t n = rd32(fb->buf + pos); /* pos+4 checked by follow */
  if (!in(fb, (uint64_t)pos + 4, (uint64_t)n + 1)) return bad(fb, "string past the end");
  if (fb->buf[pos + 4 + n] != 0) return bad(fb, "string not NUL-terminated");
  *s = (const char *)fb->buf + pos + 4;
  *len = n;
  return 0;
}

int mlsh_fb_string(mlsh_fb *fb, const mlsh_fb_table *t, int id, const char **s, uint32_t *len) {
  uint32_t target;
  *s = NULL;
  *len = 0;
  int r = ref(fb, t, id, &target);
  if (r <= 0) return r;
  return string_at(fb, target, s, len);
}

int mlsh_fb_vector(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint32_t elem_size, mlsh_fb_vec *v) {
  uint32_t target;
  v->pos = 0;
  v->count = 0;
  int r = ref(fb, t, id, &target);
  if (r <= 0) return r;
  uint32_t n = rd32(fb->buf + target);
  if (!in(fb, (uint64_t)target + 4, (uint64_t)n * elem_size)) return bad(fb, "vector past the end");
  v->pos = target + 4;
  v->count = n;
  return 0;
}

int mlsh_fb_vec_table(mlsh_fb *fb, const mlsh_fb_vec *v, uint32_t i, mlsh_fb_table *out) {
  if (i >= v->count) return bad(fb, "vector index out of range");
  uint32_t target;
  if (follow(fb, v->pos + 4 * i, &target)) return -1;
  return mlsh_fb_table_at(fb, target, out);
}

int mlsh_fb_vec_string(mlsh_fb *fb, const mlsh_fb_vec *v, uint32_t i, const char **s, uint32_t *len) {
  if (i >= v->count) return bad(fb, "vector index out of range");
  uint32_t target;
  if (follow(fb, v->pos + 4 * i, &target)) return -1;
  return string_at(fb, target, s, len);
}

uint32_t mlsh_fb_vec_u32(const mlsh_fb *fb, const mlsh_fb_vec *v, uint32_t i) {
  return i < v->count ? rd32(fb->buf + v->pos + 4 * i) : 0;
}

uint64_t mlsh_fb_vec_u64(const mlsh_fb *fb, const mlsh_fb_vec *v, uint32_t i) {
  return i < v->count ? rd64(fb->buf + v->pos + 8 * i) : 0;
}
