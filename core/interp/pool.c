/* pool.c — persistent worker threads for the interpreter's kernels (see pool.h). Workers sleep
 * on a condition variable (no spinning: the machine may be shared); a call publishes a job under
 * the mutex, bumps the generation and broadcasts. Workers that wake while the job is open
 * register (active++) and pull tasks from an atomic counter; the caller drains tasks too, then
 * closes the job and waits only for the registered workers. */
#include "pool.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct {
  mlsh_task_fn fn;
  void *ctx;
  size_t ntasks;
  atomic_size_t next;
} job;

static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER; /* held for a whole parallel call */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static pthread_t th[MLSH_MAX_THREADS];
static unsigned nworkers, active, want; /* started; registered on the open job; workers 1..want-1 join */
static unsigned long gen;
static int open_job, quit, hooked;
static job *cur;

unsigned it_threads(void) { return mlsh_threads_default(); }

static void drain(job *j, unsigned worker) {
  for (;;) {
    size_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (t >= j->ntasks) return;
    j->fn(j->ctx, t, worker);
  }
}

static void *worker_main(void *arg) {
  unsigned idx = (unsigned)(size_t)arg;
  pthread_mutex_lock(&mu);
  unsigned long seen = gen;
  for (;;) {
    while (!quit && gen == seen) pthread_cond_wait(&wake, &mu);
    if (quit) break;
    seen = gen;
    if (!open_job || idx >= want) continue;
    job *j = cur;
    active++;
    pthread_mutex_unlock(&mu);
    drain(j, idx);
    pthread_mutex_lock(&mu);
    if (--active == 0) pthread_cond_signal(&done);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void shutdown_pool(void) {
  pthread_mutex_lock(&mu);
  quit = 1;
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&mu);
  for (unsigned i = 0; i < nworkers; i++) pthread_join(th[i], NULL);
  nworkers = 0;
  quit = 0;
}

/* Called with `busy` held: start workers up to n - 1 of them; returns how many exist. */
static unsigned ensure_workers(unsigned n) {
  if (!hooked) hooked = atexit(shutdown_pool) == 0;
  if (!hooked) return 0; /* without the exit hook, threads would outlive the library */
  pthread_mutex_lock(&mu);
  while (nworkers + 1 < n) {
    if (pthread_create(&th[nworkers], NULL, worker_main, (void *)(size_t)(nworkers + 1)) != 0) break;
    nworkers++;
  }
  unsigned have = nworkers;
  pthread_mutex_unlock(&mu);
  return have;
}

void it_parallel_for(unsigned nthreads, size_t ntasks, mlsh_task_fn fn, void *ctx) {
  if (ntasks == 0) return;
  if (nthreads > MLSH_MAX_THREADS) nthreads = MLSH_MAX_THREADS;
  if (nthreads > ntasks) nthreads = (unsigned)ntasks;
  job j = {fn, ctx, ntasks, 0};
  if (nthreads <= 1 || pthread_mutex_trylock(&busy) != 0) {
    drain(&j, 0);
    return;
  }
  unsigned have = ensure_workers(nthreads);
  if (have == 0) {
    pthread_mutex_unlock(&busy);
    drain(&j, 0);
    return;
  }
  pthread_mutex_lock(&mu);
  cur = &j;
  want = nthreads;
  open_job = 1;
  gen++;
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&mu);
  drain(&j, 0);
  pthread_mutex_lock(&mu);
  open_job = 0;
  while (active) pthread_cond_wait(&done, &mu);
  cur = NULL;
  pthread_mutex_unlock(&mu);
  pthread_mutex_unlock(&busy);
}

typedef struct {
  it_range_fn fn;
  void *ctx;
  size_t n, chunk;
} range_job;

static void range_task(void *ctx, size_t t, unsigned worker) {
  (void)worker;
  range_job *r = ctx;
  size_t lo = t * r->chunk, hi = lo + r->chunk < r->n ? lo + r->chunk : r->n;
  if (lo < hi) r->fn(r->ctx, lo, hi);
}

void it_parallel_range(size_t n, size_t cost, it_range_fn fn, void *ctx) {
  if (n == 0) return;
  unsigned nt = it_threads();
  size_t work = cost && n > ((size_t)-1) / cost ? (size_t)-1 : n * (cost ? cost : 1);
  if (nt <= 1 || n < 2 || work < (1u << 15)) {
    fn(ctx, 0, n);
    return;
  }
  size_t ntasks = (size_t)nt * 4 < n ? (size_t)nt * 4 : n; /* a few per thread: a shared machine balances */
  range_job r = {fn, ctx, n, (n + ntasks - 1) / ntasks};
  it_parallel_for(nt, (n + r.chunk - 1) / r.chunk, range_task, &r);
}
