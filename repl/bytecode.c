/* bytecode.c — the searcher of bytecode.h: fresh precompiled modules from mlsh's own folder. */
#include "bytecode.h"
#include <lauxlib.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __APPLE__
#define MTIME(st) ((st).st_mtimespec)
#else
#define MTIME(st) ((st).st_mtim)
#endif

/* Where bytecode may sit, relative to the home: the build tree's, then an installed copy's. */
static const char *const BYTECODE_DIRS[] = { "build/lua", "lua" };
/* Lua's own templates for HOME/lua (repl/main.c puts the same first on package.path). */
static const char *const SUFFIXES[] = { ".lua", "/init.lua" };

/* bytecode is usable when it exists and is not older than the source (mtimes to the nanosecond) */
static int fresh(const char *bc, const struct stat *src) {
  struct stat st;
  if (stat(bc, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  if (MTIME(st).tv_sec != MTIME(*src).tv_sec) return MTIME(st).tv_sec > MTIME(*src).tv_sec;
  return MTIME(st).tv_nsec >= MTIME(*src).tv_nsec;
}

typedef struct {
  const char *part[3];
  size_t len[3];
  int i;
} pieces;

static const char *read_piece(lua_State *L, void *ud, size_t *size) {
  (void)L;
  pieces *p = ud;
  while (p->i < 3 && p->len[p->i] == 0) p->i++;
  if (p->i >= 3) { *size = 0; return NULL; }
  *size = p->len[p->i];
  return p->part[p->i++];
}

/* Lua 5.4's dump: the header (4 + 1 + 1 + 6 + 3 bytes, then a lua_Integer and a lua_Number whose
 * sizes it states), the main closure's upvalue count (1 byte), then the main function's source as
 * a size (size + 1, 0 = none; 7-bit groups, most significant first, the last marked 0x80) and
 * its bytes. Nested functions that share that source store none and inherit it on load. Returns
 * the offsets of the source field [*from, *to), or 0 when the buffer is not laid out so. */
static int source_field(const unsigned char *b, size_t n, size_t *from, size_t *to) {
  if (n < 16 || memcmp(b, LUA_SIGNATURE, 4) != 0) return 0;
  size_t at = 15 + (size_t)b[13] + (size_t)b[14] + 1;
  if (at >= n) return 0;
  size_t size = 0;
  *from = at;
  for (int k = 0;; k++) {
    if (at >= n || k == 9) return 0;
    unsigned char c = b[at++];
    size = (size << 7) | (c & 0x7f);
    if (c & 0x80) break;
  }
  if (size > 0 && size - 1 > n - at) return 0;
  *to = at + (size > 0 ? size - 1 : 0);
  return 1;
}

/* size+1 of a source string in the dump's encoding; returns the byte count written to out */
static size_t encode_size(size_t x, unsigned char out[16]) {
  unsigned char rev[16];
  size_t n = 0;
  do { rev[n++] = (unsigned char)(x & 0x7f); x >>= 7; } while (x != 0);
  for (size_t i = 0; i < n; i++) out[i] = rev[n - 1 - i];
  out[n - 1] |= 0x80;
  return n;
}

static char *slurp(const char *path, size_t *n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  char *buf = NULL;
  if (fstat(fd, &st) == 0 && st.st_size > 0 && (buf = malloc((size_t)st.st_size))) {
    size_t got = 0;
    while (got < (size_t)st.st_size) {
      ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
    if (got != (size_t)st.st_size) { free(buf); buf = NULL; }
    *n = got;
  }
  close(fd);
  return buf;
}

/* Push the chunk of bytecode file bc renamed "@src"; 1 on success, 0 (nothing pushed) otherwise. */
static int load_renamed(lua_State *L, const char *bc, const char *src) {
  size_t n = 0, from, to;
  char *buf = slurp(bc, &n);
  if (!buf) return 0;
  if (!source_field((const unsigned char *)buf, n, &from, &to)) { free(buf); return 0; }
  const char *name = lua_pushfstring(L, "@%s", src);
  size_t namelen = strlen(name);
  unsigned char sz[16];
  size_t szlen = encode_size(namelen + 1, sz);
  luaL_Buffer lb;
  luaL_buffinit(L, &lb);
  luaL_addlstring(&lb, (const char *)sz, szlen);
  luaL_addlstring(&lb, name, namelen);
  luaL_pushresult(&lb);
  size_t fieldlen;
  const char *field = lua_tolstring(L, -1, &fieldlen);
  pieces p = { { buf, field, buf + to }, { from, fieldlen, n - to }, 0 };
  int status = lua_load(L, read_piece, &p, name, "b");
  free(buf);
  if (status != LUA_OK) { lua_pop(L, 3); return 0; } /* a version mismatch: the source will do */
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 1;
}

static int searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *home = lua_tostring(L, lua_upvalueindex(1));
  const char *rel = luaL_gsub(L, name, ".", "/");
  for (size_t s = 0; s < sizeof SUFFIXES / sizeof *SUFFIXES; s++) {
    char src[PATH_MAX], bc[PATH_MAX];
    struct stat st;
    if (snprintf(src, sizeof src, "%s/lua/%s%s", home, rel, SUFFIXES[s]) >= (int)sizeof src) continue;
    if (stat(src, &st) != 0) continue;
    for (size_t d = 0; d < sizeof BYTECODE_DIRS / sizeof *BYTECODE_DIRS; d++) {
      if (snprintf(bc, sizeof bc, "%s/%s/%s%sc", home, BYTECODE_DIRS[d], rel, SUFFIXES[s]) >= (int)sizeof bc) continue;
      if (!fresh(bc, &st) || !load_renamed(L, bc, src)) continue;
      lua_pushstring(L, src); /* the second value Lua's searcher gives the loader: the file name */
      return 2;
    }
    return 0; /* the source is there, its bytecode is not usable: Lua's searcher loads the source */
  }
  return 0;
}

/* Lua's file searcher over package.path, except that it loads text only: a .luac reached
 * through LUA_PATH is refused ("attempt to load a binary chunk"), never run. */
static int text_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushvalue(L, 1);
  lua_getfield(L, -3, "path");
  if (!lua_isstring(L, -1)) return luaL_error(L, "'package.path' must be a string");
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2)) return 1; /* searchpath's "no file ..." list */
  lua_pop(L, 1);
  const char *file = lua_tostring(L, -1);
  if (luaL_loadfilex(L, file, "t") != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file, lua_tostring(L, -1));
  lua_pushstring(L, file);
  return 2;
}

void mlsh_bytecode_searcher(lua_State *L, const char *home) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  for (lua_Integer i = (lua_Integer)luaL_len(L, -1); i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushstring(L, home);
  lua_pushcclosure(L, searcher, 1);
  lua_rawseti(L, -2, 2);
  lua_pushcfunction(L, text_searcher);
  lua_rawseti(L, -2, 3); /* in place of Lua's own file searcher */
  lua_pop(L, 2);
}
