/* threads.h — run independent tasks on a few pthreads.
 * Contract: mlsh_parallel_for calls fn(ctx, task, worker) exactly once for every task in
 * [0, ntasks) and returns when all have finished. Tasks are handed out in any order, so a
 * task must write only its own outputs; `worker` (< nthreads, the caller's thread is 0) lets a
 * task use per-worker scratch. Results are thread-count independent as long as tasks do not
 * combine floating-point values in worker order — reduce per task, then in task order.
 * The threads live for one call only: no global pool, nothing to shut down. */
#ifndef MLSH_COMPRESS_THREADS_H
#define MLSH_COMPRESS_THREADS_H
#include <stddef.h>

#define MLSH_MAX_THREADS 64

typedef void (*mlsh_task_fn)(void *ctx, size_t task, unsigned worker);

/* Online CPUs, or $MLSH_THREADS when set; always within 1..MLSH_MAX_THREADS. */
unsigned mlsh_threads_default(void);

/* Clamp a requested count (0 = default) to 1..MLSH_MAX_THREADS. */
unsigned mlsh_threads_clamp(unsigned requested);

/* Run the tasks on min(nthreads, ntasks) threads. Returns 0; if a thread cannot be started the
 * remaining work simply runs on the threads that did start (at worst the caller's). */
int mlsh_parallel_for(unsigned nthreads, size_t ntasks, mlsh_task_fn fn, void *ctx);
#endif
