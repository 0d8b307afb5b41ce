/* bigbuf.c — huge-page hint and heap retention for large buffers (see bigbuf.h). */
#include "bigbuf.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define HUGE_PAGE ((uintptr_t)2 << 20)
#define MIN_HINT ((size_t)4 << 20)

void mlsh_bigbuf_hint(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
  if (!p || n < MIN_HINT) return;
  uintptr_t b = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  uintptr_t e = ((uintptr_t)p + n) & ~(HUGE_PAGE - 1);
  if (e > b) (void)madvise((void *)b, (size_t)(e - b), MADV_HUGEPAGE);
#else
  (void)p;
  (void)n;
#endif
}

void mlsh_bigbuf_keep(void) {
#ifdef __GLIBC__
  (void)mallopt(M_MMAP_MAX, 0);
  (void)mallopt(M_TRIM_THRESHOLD, INT32_MAX);
#endif
}

/* n, or an eighth of the address-space limit (RLIMIT_AS) when one is set and n is larger: a
 * reserve must not leave a limited process without room to map its model. */
static size_t as_cap(size_t n) {
  struct rlimit as;
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY && n > as.rlim_cur / 8) return (size_t)(as.rlim_cur / 8);
  return n;
}

#if defined(__SANITIZE_ADDRESS__)
#define MLSH_OWN_MALLOC 1 /* a sanitizer's allocator: nothing here knows its layout */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define MLSH_OWN_MALLOC 1
#endif
#endif

static void *filler; /* mlsh_bigbuf_heap's: the rest of the heap's first, partly used 2 MiB page */

int mlsh_bigbuf_heap(size_t n) {
#if defined(__GLIBC__) && defined(MADV_HUGEPAGE) && !defined(MLSH_OWN_MALLOC)
  if (filler) return 0;
  n = as_cap(n);
  if (n < 2 * HUGE_PAGE) return -1;
  mlsh_bigbuf_keep();
  uint8_t *p = malloc(n); /* the top chunk: nothing free is this large this early */
  if (!p) return -1;
  mlsh_bigbuf_hint(p, n);
  uintptr_t pa = (uintptr_t)p;
  free(p);
  /* glibc: a chunk of size cs (a multiple of 16) holds cs - 8 bytes and starts 16 bytes below
   * its pointer; so the filler taken from the top at p ends where the top then starts, at
   * b - 16, and the next chunk carved from it has its pointer at b, the first huge page. */
  uintptr_t b = (pa + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  size_t cs = (size_t)(b - pa);
  if (cs < 4096) cs += HUGE_PAGE; /* large-bin sizes come from the top, not a small bin */
  void *f = malloc(cs - 8);
  if ((uintptr_t)f != pa) { /* another allocator, or a free chunk served it: leave the heap as it is */
    free(f);
    return -1;
  }
  filler = f;
  return 0;
#else
  (void)n;
  return -1;
#endif
}

void mlsh_bigbuf_heap_end(void) {
  free(filler);
  filler = NULL;
}

int mlsh_bigbuf_reserve(size_t n) {
  n = as_cap(n);
  void *p = malloc(n); /* from the heap's top (keep: no mmap), left unwritten */
  if (!p) return -1;
  mlsh_bigbuf_hint(p, n);
  free(p); /* back to the top chunk; keep: never trimmed, so the hinted range stays mapped */
  return 0;
}

void mlsh_bigbuf_prefetch(const void *p, size_t n) {
#ifdef MADV_POPULATE_READ
  if (!p || n == 0) return;
  uintptr_t pg = 4096, b = (uintptr_t)p & ~(pg - 1), e = ((uintptr_t)p + n + pg - 1) & ~(pg - 1);
  (void)madvise((void *)b, (size_t)(e - b), MADV_POPULATE_READ);
#else
  (void)p;
  (void)n;
#endif
}

struct mlsh_prefault {
  pthread_t th;
  void *p;
  size_t n;
};

#ifdef MADV_POPULATE_WRITE
static void *prefault_main(void *a) {
  mlsh_prefault *f = a;
  (void)madvise(f->p, f->n, MADV_POPULATE_WRITE);
  return NULL;
}
#endif

mlsh_prefault *mlsh_bigbuf_prefault(size_t n) {
#ifdef MADV_POPULATE_WRITE
  void *p = malloc(n); /* where the next allocations will come from (keep: the heap's top) */
  if (!p) return NULL;
  uintptr_t b = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), e = ((uintptr_t)p + n) & ~(HUGE_PAGE - 1);
  free(p); /* back to the top chunk, never trimmed: the range stays mapped */
  if (e <= b) return NULL;
  mlsh_prefault *f = malloc(sizeof *f);
  if (!f) return NULL;
  f->p = (void *)b;
  f->n = (size_t)(e - b);
  if (pthread_create(&f->th, NULL, prefault_main, f) != 0) {
    free(f);
    return NULL;
  }
  return f;
#else
  (void)n;
  return NULL;
#endif
}

void mlsh_bigbuf_prefault_wait(mlsh_prefault *f) {
  if (!f) return;
  pthread_join(f->th, NULL);
  free(f);
}
