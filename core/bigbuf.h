/* bigbuf.h — large buffers: fault them in as few times as possible.
 * A fresh 64 MiB buffer (glibc serves it with mmap) takes 16,384 page faults at 4 KiB, each
 * zeroing a page; on a VM each fault also exits to the hypervisor, and freeing it unmaps it, so
 * the next tensor's buffer faults again.
 * mlsh_bigbuf_hint(p, n): ask for transparent huge pages (MADV_HUGEPAGE; THP in "madvise" mode is
 *   the Debian default) on the 2 MiB-aligned part of [p, p+n) when n >= 4 MiB: 512x fewer faults.
 *   Call it before the first write. Only a hint: contents and sizes are unchanged, failure ignored.
 * mlsh_bigbuf_keep(): from now on serve large blocks from the heap and never trim it (glibc
 *   mallopt M_MMAP_MAX 0, M_TRIM_THRESHOLD max), so a freed tensor's pages serve the next one
 *   without faults. Process-wide; the heap then keeps its peak size until exit (it never grows
 *   past the peak the program needs). For commands that stream tensor after tensor.
 * mlsh_bigbuf_reserve(n): after keep, take n bytes of address space at the heap's top, hint it
 *   (as above) and give it back to the heap: whatever the program later allocates there (packed
 *   blobs and Lua strings too, which nobody hints) faults in 2 MiB pages. Touches no page, so it
 *   costs address space, not memory (under an address-space limit, RLIMIT_AS, at most an eighth
 *   of it). Returns 0, or -1 when the heap cannot grow that far. */
#ifndef MLSH_BIGBUF_H
#define MLSH_BIGBUF_H
#include <stddef.h>

void mlsh_bigbuf_hint(void *p, size_t n);
void mlsh_bigbuf_keep(void);
int mlsh_bigbuf_reserve(size_t n);
/* For a program's start (before it allocates much): keep and reserve(n), and skip the rest of the
 * heap's first, partly used 2 MiB page, so that from then on the heap's memory comes in huge
 * pages, each one fault (a 4 KiB fault costs ~11 us on a VM, 512 of them per 2 MiB). Costs up
 * to 2 MiB of address space, never touched; under an address-space limit (RLIMIT_AS) n is at most
 * an eighth of it. 0, or -1 (nothing skipped: not glibc's malloc, a sanitizer's, or no room);
 * mlsh_bigbuf_heap_end() gives the skipped range back (at exit). */
int mlsh_bigbuf_heap(size_t n);
void mlsh_bigbuf_heap_end(void);
/* Fault in (zeroed) the whole 2 MiB pages of the next n bytes at the heap's top on a thread of
 * its own (MADV_POPULATE_WRITE: pages already present are left as they are, so the program may
 * allocate and write there meanwhile), so that a command whose single-threaded start leaves a core
 * idle has its big buffers' first-touch cost paid there. After keep and reserve. NULL when not
 * started (no MADV_POPULATE_WRITE, too small, no thread); wait() joins and frees it. */
typedef struct mlsh_prefault mlsh_prefault;
mlsh_prefault *mlsh_bigbuf_prefault(size_t n);
void mlsh_bigbuf_prefault_wait(mlsh_prefault *f);

/* Map in the page-table entries of the file pages under [p, p + n) in one call
 * (MADV_POPULATE_READ) instead of a fault per few pages; a no-op where that is not known. */
void mlsh_bigbuf_prefetch(const void *p, size_t n);
#endif
