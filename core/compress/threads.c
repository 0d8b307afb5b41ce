/* threads.c — per-call pthread fan-out with an atomic task counter (see threads.h).
 * Spawning per call costs tens of microseconds; callers only go parallel for work of
 * milliseconds or more, so a persistent pool (and its global state) is not worth having. */
#include "compress/threads.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
  mlsh_task_fn fn;
  void *ctx;
  size_t ntasks;
  atomic_size_t next;
} job;

typedef struct {
  job *j;
  unsigned worker;
} worker_arg;

static void drain(job *j, unsigned worker) {
  for (;;) {
    size_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (t >= j->ntasks) return;
    j->fn(j->ctx, t, worker);
  }
}

static void *worker_main(void *p) {
  worker_arg *a = p;
  drain(a->j, a->worker);
  return NULL;
}

unsigned mlsh_threads_clamp(unsigned requested) {
  if (requested == 0) return mlsh_threads_default();
  return requested > MLSH_MAX_THREADS ? MLSH_MAX_THREADS : requested;
}

unsigned mlsh_threads_default(void) {
  const char *env = getenv("MLSH_THREADS");
  long n = 0;
  if (env && *env) n = strtol(env, NULL, 10);
  if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > MLSH_MAX_THREADS) n = MLSH_MAX_THREADS;
  return (unsigned)n;
}

int mlsh_parallel_for(unsigned nthreads, size_t ntasks, mlsh_task_fn fn, void *ctx) {
  if (ntasks == 0) return 0;
  if (nthreads > MLSH_MAX_THREADS) nthreads = MLSH_MAX_THREADS;
  if (nthreads > ntasks) nthreads = (unsigned)ntasks;
  job j = {fn, ctx, ntasks, 0};
  if (nthreads <= 1) {
    drain(&j, 0);
    return 0;
  }
  pthread_t th[MLSH_MAX_THREADS];
  worker_arg args[MLSH_MAX_THREADS];
  unsigned started = 0;
  for (unsigned w = 1; w < nthreads; w++) {
    args[started].j = &j;
    args[started].worker = w;
    if (pthread_create(&th[started], NULL, worker_main, &args[started]) != 0) break;
    started++;
  }
  drain(&j, 0);
  for (unsigned i = 0; i < started; i++) pthread_join(th[i], NULL);
  return 0;
}
