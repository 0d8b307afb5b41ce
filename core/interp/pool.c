/* pool.c — persistent worker threads for the interpreter's kernels (see pool.h). A call
 * publishes a job under the mutex and bumps the generation; workers that see it while the job is
 * open register (active++) and pull tasks from an atomic counter; the caller drains tasks too,
 * then closes the job and waits only for the registered workers. Between jobs a worker first
 * watches the generation for a short while (SPIN_US, $MLSH_POOL_SPIN_US; 0 = never; not while
 * the load average says every core is taken) and then
 * sleeps on a condition variable, which a call signals only when someone sleeps: a network's
 * back-to-back kernels then start on both cores without a futex round trip each (measured on
 * MobileNetV2: ~90 parallel calls per run, most of them a few hundred microseconds long), and an
 * idle interpreter costs nothing. The caller waits for the workers the same way. */
#include "pool.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RELAX() _mm_pause()
#else
#define RELAX() ((void)0)
#endif

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
static unsigned sleepers; /* workers waiting on `wake` */
static job *cur;
static atomic_ulong agen;    /* gen, readable without the mutex */
static atomic_uint aactive; /* active, readable without the mutex */

#define SPIN_US 50
static unsigned nthreads_env;
static long spin_ns, ncpu;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static void read_env(void) {
  nthreads_env = mlsh_threads_default();
  ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  const char *e = getenv("MLSH_POOL_SPIN_US");
  long us = e && *e ? strtol(e, NULL, 10) : SPIN_US;
  spin_ns = us < 0 ? 0 : (us > 100000 ? 100000 : us) * 1000;
}

unsigned it_threads(void) {
  pthread_once(&env_once, read_env);
  return nthreads_env;
}

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spinning pays only when a core is free: not while the 1-minute load average reaches the
 * online cores + 1 (our own busy threads count in it; checked at most once a second). */
static int may_spin(void) {
  static atomic_long checked;
  static atomic_int ok = 1;
  if (spin_ns == 0) return 0;
  long t = now_ns(), last = atomic_load_explicit(&checked, memory_order_relaxed);
  if (t - last > 1000000000L && atomic_compare_exchange_strong(&checked, &last, t)) {
    double load;
    atomic_store_explicit(&ok, getloadavg(&load, 1) != 1 || load < (double)ncpu + 1, memory_order_relaxed);
  }
  return atomic_load_explicit(&ok, memory_order_relaxed);
}

/* Spin (without the mutex) until *v != old, for at most spin_ns; returns whether it changed. */
static int spin_ne(atomic_ulong *v, unsigned long old) {
  if (!may_spin()) return 0;
  long until = now_ns() + spin_ns;
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (atomic_load_explicit(v, memory_order_acquire) != old) return 1;
      RELAX();
    }
    if (now_ns() > until) return 0;
  }
}

static int spin_zero(atomic_uint *v) {
  if (!may_spin()) return 0;
  long until = now_ns() + spin_ns;
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (atomic_load_explicit(v, memory_order_acquire) == 0) return 1;
      RELAX();
    }
    if (now_ns() > until) return 0;
  }
}

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
    if (!quit && gen == seen) {
      pthread_mutex_unlock(&mu);
      spin_ne(&agen, seen);
      pthread_mutex_lock(&mu);
    }
    while (!quit && gen == seen) {
      sleepers++;
      pthread_cond_wait(&wake, &mu);
      sleepers--;
    }
    if (quit) break;
    seen = gen;
    if (!open_job || idx >= want) continue;
    job *j = cur;
    active++;
    atomic_store_explicit(&aactive, active, memory_order_release);
    pthread_mutex_unlock(&mu);
    drain(j, idx);
    pthread_mutex_lock(&mu);
    atomic_store_explicit(&aactive, --active, memory_order_release);
    if (active == 0) pthread_cond_signal(&done);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void shutdown_pool(void) {
  pthread_mutex_lock(&mu);
  quit = 1;
  atomic_store_explicit(&agen, gen + 1, memory_order_release); /* ends a spin */
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
  atomic_store_explicit(&agen, gen, memory_order_release);
  if (sleepers) pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&mu);
  drain(&j, 0);
  pthread_mutex_lock(&mu);
  open_job = 0;
  if (active) {
    pthread_mutex_unlock(&mu);
    spin_zero(&aactive);
    pthread_mutex_lock(&mu);
  }
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
