/* pte.c — ExecuTorch .pte / .bpte reading (see pte.h; layout in docs/containers.md). */
#include "pte.h"
#include "flatbuf.h"
#include "json.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

int mlsh_pte_sniff(const uint8_t *head, size_t n) {
  if (n < 8) return 0;
  if (memcmp(head + 4, "ET12", 4) == 0) return 1;
  if (memcmp(head + 4, "BP08", 4) == 0) return 2;
  /* another ExecuTorch schema version ("ET11"): still ours, so the reader can say which */
  if (head[4] == 'E' && head[5] == 'T' && head[6] >= '0' && head[6] <= '9' && head[7] >= '0' && head[7] <= '9') return 1;
  return 0;
}

const char *mlsh_pte_location_name(int location) {
  return location == MLSH_PTE_INLINE ? "inline" : location == MLSH_PTE_SEGMENT ? "segment" : "named_data";
}

typedef struct {
  mlsh_fb fb;
  const char *name;
  mlsh_err *e;
  mlsh_pte *p;
  const uint8_t *buf; /* the program (inner buffer for .bpte) */
  size_t len;
  mlsh_fb_table root;
} rd;

static int fbfail(rd *r, const char *what) {
  return mlsh_fail(r->e, r->name, "corrupt flatbuffer (%s: %s)", what, r->fb.err ? r->fb.err : "bad offset");
}

static void *alloc_n(size_t n, size_t sz) { return calloc(n ? n : 1, sz); }

static int read_segments(rd *r) {
  mlsh_fb_vec v;
  if (mlsh_fb_vector(&r->fb, &r->root, 4, 4, &v)) return fbfail(r, "segments");
  if (!(r->p->segments = alloc_n(v.count, sizeof *r->p->segments))) return mlsh_fail(r->e, r->name, "out of memory");
  r->p->nsegments = v.count;
  for (uint32_t i = 0; i < v.count; i++) {
    mlsh_fb_table t;
    if (mlsh_fb_vec_table(&r->fb, &v, i, &t) || mlsh_fb_u64(&r->fb, &t, 0, 0, &r->p->segments[i].offset) ||
        mlsh_fb_u64(&r->fb, &t, 1, 0, &r->p->segments[i].size))
      return fbfail(r, "segment");
  }
  if (mlsh_fb_vector(&r->fb, &r->root, 7, 4, &v)) return fbfail(r, "named_data");
  if (!(r->p->named = alloc_n(v.count, sizeof *r->p->named))) return mlsh_fail(r->e, r->name, "out of memory");
  r->p->nnamed = v.count;
  for (uint32_t i = 0; i < v.count; i++) {
    mlsh_fb_table t;
    uint32_t kl;
    if (mlsh_fb_vec_table(&r->fb, &v, i, &t) || mlsh_fb_string(&r->fb, &t, 0, &r->p->named[i].key, &kl) ||
        mlsh_fb_u32(&r->fb, &t, 1, 0, &r->p->named[i].segment))
      return fbfail(r, "named data entry");
    if (!r->p->named[i].key) r->p->named[i].key = "";
  }
  return 0;
}

/* Segment idx as a byte range of the program buffer. */
static int segment_range(rd *r, uint32_t idx, const char *who, uint64_t *off, uint64_t *size) {
  mlsh_pte *p = r->p;
  if (idx >= p->nsegments) return mlsh_fail(r->e, r->name, "%s: segment %u out of range (%u segments)", who, idx, p->nsegments);
  if (!p->header_len || !p->segment_base)
    return mlsh_fail(r->e, r->name, "%s: refers to segment %u but the file has no extended header (eh00)", who, idx);
  uint64_t o = p->segment_base + p->segments[idx].offset, s = p->segments[idx].size;
  if (o < p->segment_base || o > r->len || s > r->len - o)
    return mlsh_fail(r->e, r->name, "%s: segment %u (offset %llu, %llu bytes) lies past the end of the file", who, idx,
                     (unsigned long long)o, (unsigned long long)s);
  *off = o;
  *size = s;
  return 0;
}

/* "CMJR" + {"version":1,"key":…,"functionName":…} -> the named data's segment. */
static int resolve_cmjr(rd *r, mlsh_pte_delegate *d, const char *who) {
  char jerr[160];
  mlsh_json *j = mlsh_json_parse((const char *)d->data + 4, (size_t)d->size - 4, jerr, sizeof jerr);
  if (!j) return mlsh_fail(r->e, r->name, "%s: bad CMJR reference (%s)", who, jerr);
  const char *key = mlsh_json_get_string(j, "key"), *fn = mlsh_json_get_string(j, "functionName");
  int rc = -1;
  if (!key) mlsh_fail(r->e, r->name, "%s: CMJR reference has no key", who);
  else if (!(d->named_key = strdup(key)) || (fn && !(d->function = strdup(fn)))) mlsh_fail(r->e, r->name, "out of memory");
  else rc = 0;
  mlsh_json_free(j);
  if (rc) return rc;
  for (uint32_t i = 0; i < r->p->nnamed; i++) {
    if (strcmp(r->p->named[i].key, d->named_key) != 0) continue;
    uint64_t off, size;
    if (segment_range(r, r->p->named[i].segment, who, &off, &size)) return -1;
    d->location = MLSH_PTE_NAMED;
    d->data = r->buf + off;
    d->offset = off;
    d->size = size;
    return 0;
  }
  return mlsh_fail(r->e, r->name, "%s: CMJR key %s names no named_data entry", who, d->named_key);
}

static int read_processed(rd *r, const mlsh_fb_table *dt, mlsh_pte_delegate *d, const char *who) {
  mlsh_fb_table pt;
  uint8_t loc = 0;
  int has = mlsh_fb_sub(&r->fb, dt, 1, &pt);
  if (has < 0) return fbfail(r, "delegate data reference");
  if (has && (mlsh_fb_u8(&r->fb, &pt, 0, 0, &loc) || mlsh_fb_u32(&r->fb, &pt, 1, 0, &d->index))) return fbfail(r, "delegate data reference");
  if (loc > 1) return mlsh_fail(r->e, r->name, "%s: unknown data location %u", who, loc);
  d->location = loc;
  if (loc == MLSH_PTE_INLINE) {
    mlsh_fb_vec v, dv;
    mlsh_fb_table it;
    if (mlsh_fb_vector(&r->fb, &r->root, 3, 4, &v)) return fbfail(r, "backend_delegate_data");
    if (d->index >= v.count)
      return mlsh_fail(r->e, r->name, "%s: inline data %u out of range (%u entries)", who, d->index, v.count);
    if (mlsh_fb_vec_table(&r->fb, &v, d->index, &it) || mlsh_fb_vector(&r->fb, &it, 0, 1, &dv))
      return fbfail(r, "inline delegate data");
    d->data = r->buf + dv.pos;
    d->offset = dv.pos;
    d->size = dv.count;
  } else {
    if (segment_range(r, d->index, who, &d->offset, &d->size)) return -1;
    d->data = r->buf + d->offset;
  }
  if (d->size >= 4 && memcmp(d->data, "CMJR", 4) == 0) return resolve_cmjr(r, d, who);
  return 0;
}

static int read_delegate(rd *r, const mlsh_fb_table *dt, mlsh_pte_delegate *d, const char *who) {
  uint32_t l;
  if (mlsh_fb_string(&r->fb, dt, 0, &d->id, &l)) return fbfail(r, "delegate id");
  if (!d->id) d->id = "";
  if (read_processed(r, dt, d, who)) return -1;
  mlsh_fb_vec v;
  if (mlsh_fb_vector(&r->fb, dt, 2, 4, &v)) return fbfail(r, "compile_specs");
  if (!(d->specs = alloc_n(v.count, sizeof *d->specs))) return mlsh_fail(r->e, r->name, "out of memory");
  d->nspecs = v.count;
  for (uint32_t i = 0; i < v.count; i++) {
    mlsh_fb_table st;
    mlsh_fb_vec val;
    if (mlsh_fb_vec_table(&r->fb, &v, i, &st) || mlsh_fb_string(&r->fb, &st, 0, &d->specs[i].key, &l) ||
        mlsh_fb_vector(&r->fb, &st, 1, 1, &val))
      return fbfail(r, "compile spec");
    if (!d->specs[i].key) d->specs[i].key = "";
    d->specs[i].value = r->buf + val.pos;
    d->specs[i].len = val.count;
  }
  return 0;
}

static int read_io(rd *r, const mlsh_fb_table *pt, int id, const mlsh_fb_vec *values, int32_t **idx, uint8_t **types, uint32_t *n) {
  mlsh_fb_vec v;
  if (mlsh_fb_vector(&r->fb, pt, id, 4, &v)) return fbfail(r, id == 3 ? "inputs" : "outputs");
  *idx = alloc_n(v.count, sizeof **idx);
  *types = alloc_n(v.count, 1);
  if (!*idx || !*types) return mlsh_fail(r->e, r->name, "out of memory");
  *n = v.count;
  for (uint32_t i = 0; i < v.count; i++) {
    (*idx)[i] = (int32_t)mlsh_fb_vec_u32(&r->fb, &v, i);
    mlsh_fb_table et;
    if ((*idx)[i] >= 0 && (uint32_t)(*idx)[i] < values->count && mlsh_fb_vec_table(&r->fb, values, (uint32_t)(*idx)[i], &et) == 0)
      mlsh_fb_u8(&r->fb, &et, 0, 0, &(*types)[i]);
  }
  return 0;
}

static int read_instrs(rd *r, const mlsh_fb_table *pt, mlsh_pte_method *m) {
  mlsh_fb_vec chains;
  if (mlsh_fb_vector(&r->fb, pt, 5, 4, &chains)) return fbfail(r, "chains");
  uint64_t total = 0;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1 && !(m->instrs = alloc_n((size_t)total, sizeof *m->instrs))) return mlsh_fail(r->e, r->name, "out of memory");
    for (uint32_t c = 0; c < chains.count; c++) {
      mlsh_fb_table ct;
      mlsh_fb_vec iv;
      if (mlsh_fb_vec_table(&r->fb, &chains, c, &ct) || mlsh_fb_vector(&r->fb, &ct, 2, 4, &iv)) return fbfail(r, "chain");
      if (pass == 0) { total += iv.count; continue; }
      for (uint32_t k = 0; k < iv.count; k++) {
        mlsh_fb_table it, at;
        uint8_t kind = 0;
        uint32_t index = 0;
        if (mlsh_fb_vec_table(&r->fb, &iv, k, &it) || mlsh_fb_u8(&r->fb, &it, 0, 0, &kind)) return fbfail(r, "instruction");
        int has = mlsh_fb_sub(&r->fb, &it, 1, &at);
        if (has < 0 || (has && mlsh_fb_u32(&r->fb, &at, 0, 0, &index))) return fbfail(r, "instruction");
        m->instrs[m->ninstrs].kind = kind;
        m->instrs[m->ninstrs].index = (int32_t)index;
        m->ninstrs++;
      }
    }
  }
  return 0;
}

static int read_method(rd *r, uint32_t mi, mlsh_pte_method *m) {
  mlsh_fb_vec plans, values, ops, dels;
  mlsh_fb_table pt;
  uint32_t l;
  char who[300];
  if (mlsh_fb_vector(&r->fb, &r->root, 1, 4, &plans) || mlsh_fb_vec_table(&r->fb, &plans, mi, &pt) ||
      mlsh_fb_string(&r->fb, &pt, 0, &m->name, &l) || mlsh_fb_vector(&r->fb, &pt, 2, 4, &values))
    return fbfail(r, "execution plan");
  if (!m->name) m->name = "";
  m->nvalues = values.count;
  if (read_io(r, &pt, 3, &values, &m->inputs, &m->input_types, &m->ninputs) ||
      read_io(r, &pt, 4, &values, &m->outputs, &m->output_types, &m->noutputs) || read_instrs(r, &pt, m))
    return -1;
  if (mlsh_fb_vector(&r->fb, &pt, 6, 4, &ops)) return fbfail(r, "operators");
  m->ops = alloc_n(ops.count, sizeof *m->ops);
  m->overloads = alloc_n(ops.count, sizeof *m->overloads);
  if (!m->ops || !m->overloads) return mlsh_fail(r->e, r->name, "out of memory");
  m->nops = ops.count;
  for (uint32_t i = 0; i < ops.count; i++) {
    mlsh_fb_table ot;
    if (mlsh_fb_vec_table(&r->fb, &ops, i, &ot) || mlsh_fb_string(&r->fb, &ot, 0, &m->ops[i], &l) ||
        mlsh_fb_string(&r->fb, &ot, 1, &m->overloads[i], &l))
      return fbfail(r, "operator");
    if (!m->ops[i]) m->ops[i] = "";
    if (!m->overloads[i]) m->overloads[i] = "";
  }
  if (mlsh_fb_vector(&r->fb, &pt, 7, 4, &dels)) return fbfail(r, "delegates");
  if (!(m->delegates = alloc_n(dels.count, sizeof *m->delegates))) return mlsh_fail(r->e, r->name, "out of memory");
  m->ndelegates = dels.count;
  for (uint32_t i = 0; i < dels.count; i++) {
    mlsh_fb_table dt;
    snprintf(who, sizeof who, "method %s delegate %u", m->name, i);
    if (mlsh_fb_vec_table(&r->fb, &dels, i, &dt)) return fbfail(r, "delegate");
    if (read_delegate(r, &dt, &m->delegates[i], who)) return -1;
  }
  return 0;
}

static int read_header(rd *r) {
  mlsh_pte *p = r->p;
  if (r->len < 8 || memcmp(r->buf + 4, "ET", 2) != 0)
    return mlsh_fail(r->e, r->name, "not an ExecuTorch program (no ET12 identifier)");
  if (memcmp(r->buf + 4, "ET12", 4) != 0)
    return mlsh_fail(r->e, r->name, "ExecuTorch program identifier %.4s is not the supported ET12", (const char *)r->buf + 4);
  p->program_size = r->len;
  if (r->len >= 32 && memcmp(r->buf + 8, "eh00", 4) == 0) {
    p->header_len = rd32(r->buf + 12);
    if (p->header_len != 24 && p->header_len < 32)
      return mlsh_fail(r->e, r->name, "extended header length %u (expected 24 or 32)", p->header_len);
    if (p->header_len >= 32 && r->len < 40) return mlsh_fail(r->e, r->name, "extended header truncated");
    p->program_size = rd64(r->buf + 16);
    p->segment_base = rd64(r->buf + 24);
    p->segment_data_size = p->header_len >= 32 ? rd64(r->buf + 32) : 0;
    if (p->program_size > r->len || p->program_size < 8)
      return mlsh_fail(r->e, r->name, "extended header program_size %llu exceeds the file (%zu bytes)",
                       (unsigned long long)p->program_size, r->len);
    if (p->segment_base > r->len || (p->segment_base && p->segment_base < p->program_size))
      return mlsh_fail(r->e, r->name, "extended header segment_base_offset %llu is out of range", (unsigned long long)p->segment_base);
    if (p->segment_data_size && p->segment_data_size > r->len - p->segment_base)
      return mlsh_fail(r->e, r->name, "segment data (%llu bytes at %llu) runs past the end of the file",
                       (unsigned long long)p->segment_data_size, (unsigned long long)p->segment_base);
  }
  if (mlsh_fb_init(&r->fb, r->buf, (size_t)p->program_size) || mlsh_fb_root(&r->fb, &r->root)) return fbfail(r, "root table");
  return 0;
}

/* A .bpte: BundledProgram field 2 holds the program bytes. */
static int unbundle(rd *r) {
  mlsh_fb fb;
  mlsh_fb_table root;
  mlsh_fb_vec v;
  if (mlsh_fb_init(&fb, r->buf, r->len) || mlsh_fb_root(&fb, &root) || mlsh_fb_vector(&fb, &root, 2, 1, &v))
    return mlsh_fail(r->e, r->name, "corrupt bundled program (%s)", fb.err ? fb.err : "bad offset");
  if (!v.count) return mlsh_fail(r->e, r->name, "bundled program holds no program");
  r->p->bundled = 1;
  r->p->base = v.pos;
  r->buf += v.pos;
  r->len = v.count;
  return 0;
}

int mlsh_pte_parse(const uint8_t *buf, size_t len, const char *name, mlsh_pte **out, mlsh_err *e) {
  *out = NULL;
  rd r = {.name = name, .e = e, .buf = buf, .len = len};
  if (!(r.p = calloc(1, sizeof *r.p))) return mlsh_fail(e, name, "out of memory");
  int rc = -1;
  mlsh_fb_vec plans;
  if (mlsh_pte_sniff(buf, len) == 2 && unbundle(&r)) goto done;
  if (read_header(&r) || mlsh_fb_u32(&r.fb, &r.root, 0, 0, &r.p->version)) {
    if (r.fb.err) fbfail(&r, "program");
    goto done;
  }
  r.fb.len = (size_t)r.p->program_size;
  if (read_segments(&r)) goto done;
  if (mlsh_fb_vector(&r.fb, &r.root, 1, 4, &plans)) { fbfail(&r, "execution_plan"); goto done; }
  if (!(r.p->methods = alloc_n(plans.count, sizeof *r.p->methods))) { mlsh_fail(e, name, "out of memory"); goto done; }
  for (uint32_t i = 0; i < plans.count; i++) {
    r.p->nmethods = i + 1;
    if (read_method(&r, i, &r.p->methods[i])) goto done;
  }
  r.p->nmethods = plans.count;
  rc = 0;
done:
  if (rc) mlsh_pte_free(r.p);
  else *out = r.p;
  return rc;
}

void mlsh_pte_free(mlsh_pte *p) {
  if (!p) return;
  for (uint32_t i = 0; i < p->nmethods; i++) {
    mlsh_pte_method *m = &p->methods[i];
    for (uint32_t d = 0; d < m->ndelegates; d++) {
      free(m->delegates[d].specs);
      free(m->delegates[d].named_key);
      free(m->delegates[d].function);
    }
    free(m->delegates);
    free(m->inputs);
    free(m->outputs);
    free(m->input_types);
    free(m->output_types);
    free(m->ops);
    free(m->overloads);
    free(m->instrs);
  }
  free(p->methods);
  free(p->segments);
  free(p->named);
  free(p);
}

int mlsh_pte_open(const char *path, mlsh_pte_file **out, mlsh_err *e) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mlsh_fail(e, path, "%s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return mlsh_fail(e, path, "not a regular file");
  }
  if (st.st_size < 8) {
    close(fd);
    return mlsh_fail(e, path, "too short for an ExecuTorch program (%lld bytes)", (long long)st.st_size);
  }
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return mlsh_fail(e, path, "cannot map: %s", strerror(errno));
  mlsh_pte_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    munmap(map, (size_t)st.st_size);
    return mlsh_fail(e, path, "out of memory");
  }
  f->data = map;
  f->len = (size_t)st.st_size;
  f->refs = 1;
  if (mlsh_pte_parse(f->data, f->len, path, &f->pte, e) != 0) {
    mlsh_pte_file_unref(f);
    return -1;
  }
  *out = f;
  return 0;
}

void mlsh_pte_file_ref(mlsh_pte_file *f) { f->refs++; }

void mlsh_pte_file_unref(mlsh_pte_file *f) {
  if (!f || --f->refs > 0) return;
  mlsh_pte_free(f->pte);
  munmap((void *)f->data, f->len);
  free(f->path);
  free(f);
}
