/* pool.h — the interpreter's worker threads: a persistent pool, started on first use (as many
 * threads as a call asks for, up to MLSH_MAX_THREADS - 1 besides the caller) and joined at exit
 * (or when the library is unloaded). A call wakes the workers instead of creating threads.
 * Contract as mlsh_parallel_for (compress/threads.h): fn(ctx, task, worker) runs exactly once
 * for every task in [0, ntasks), worker < nthreads (the caller is worker 0), and the call returns
 * when all tasks are done. A worker that wakes late finds no task left and is not waited for.
 * One parallel call at a time: a call made while another runs (from a task, or from a second
 * thread) runs its tasks on the calling thread. */
#ifndef MLSH_IT_POOL_H
#define MLSH_IT_POOL_H
#include "compress/threads.h"
#include <stddef.h>

void it_parallel_for(unsigned nthreads, size_t ntasks, mlsh_task_fn fn, void *ctx);
/* Threads the interpreter uses: $MLSH_THREADS, default all online cores (1..MLSH_MAX_THREADS). */
unsigned it_threads(void);

/* Elementwise/row kernels: fn(ctx, lo, hi) covers [lo, hi); together the calls cover [0, n)
 * exactly once in contiguous ranges. Runs on it_threads() threads when n * cost (rough work per
 * item, e.g. floats per row) is large enough to pay for waking the pool, else as one call on the
 * caller. Each item is computed by the same code whatever the split, so results do not depend on
 * the thread count. */
typedef void (*it_range_fn)(void *ctx, size_t lo, size_t hi);
void it_parallel_range(size_t n, size_t cost, it_range_fn fn, void *ctx);
/* Below this many floats a memory-bound map (relu, clip) runs on the caller alone. */
#define IT_BIG_MAP ((size_t)1 << 20)
#endif
