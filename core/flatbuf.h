/* flatbuf.h — a small bounds-checked FlatBuffers reader (no schema compiler, no generated code).
 * Contract: every offset read from the buffer is checked against its length before use; absent
 * fields read as the caller's default; a failed check returns -1 and sets fb->err to a static
 * reason ("vtable out of range", …). Tables, vectors and strings are positions into the buffer
 * (borrowed, nothing is copied). A union is two fields: the u8 type at id, the table at id+1. */
#ifndef MLSH_FLATBUF_H
#define MLSH_FLATBUF_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t *buf;
  size_t len;
  const char *err; /* reason of the last failure */
} mlsh_fb;

typedef struct {
  uint32_t pos;    /* table start */
  uint32_t vt;     /* vtable start */
  uint16_t vtlen;  /* vtable size in bytes */
  uint16_t tbllen; /* inline table size */
} mlsh_fb_table;

typedef struct {
  uint32_t pos;   /* first element */
  uint32_t count;
} mlsh_fb_vec;

int mlsh_fb_init(mlsh_fb *fb, const uint8_t *buf, size_t len);
/* The root table (u32 offset at byte 0). */
int mlsh_fb_root(mlsh_fb *fb, mlsh_fb_table *t);
/* The table at absolute position pos. */
int mlsh_fb_table_at(mlsh_fb *fb, uint32_t pos, mlsh_fb_table *t);
/* 1 if field id is present, 0 if absent, -1 on a bad offset. */
int mlsh_fb_has(mlsh_fb *fb, const mlsh_fb_table *t, int id);
/* Scalars: absent -> def. */
int mlsh_fb_u8(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint8_t def, uint8_t *out);
int mlsh_fb_u32(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint32_t def, uint32_t *out);
int mlsh_fb_u64(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint64_t def, uint64_t *out);
/* Sub-table: returns 1 present, 0 absent, -1 bad. */
int mlsh_fb_sub(mlsh_fb *fb, const mlsh_fb_table *t, int id, mlsh_fb_table *out);
/* String: *s points at the bytes (NUL-terminated inside the buffer); absent -> s = NULL, 0. */
int mlsh_fb_string(mlsh_fb *fb, const mlsh_fb_table *t, int id, const char **s, uint32_t *len);
/* Vector with elements of elem_size bytes (4 for offsets); absent -> count 0. */
int mlsh_fb_vector(mlsh_fb *fb, const mlsh_fb_table *t, int id, uint32_t elem_size, mlsh_fb_vec *v);
/* Element i of a vector of tables / strings. */
int mlsh_fb_vec_table(mlsh_fb *fb, const mlsh_fb_vec *v, uint32_t i, mlsh_fb_table *out);
int mlsh_fb_vec_string(mlsh_fb *fb, const mlsh_fb_vec *v, uint32_t i, const char **s, uint32_t *len);
/* Scalar elements (the vector was read with the matching elem_size). */
uint32_t mlsh_fb_vec_u32(const mlsh_fb *fb, const mlsh_fb_vec *v, uint32_t i);
uint64_t mlsh_fb_vec_u64(const mlsh_fb *fb, const mlsh_fb_vec *v, uint32_t i);
#endif
