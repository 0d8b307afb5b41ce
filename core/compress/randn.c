/* randn.c — counter-based Gaussian generator (see randn.h). */
#include "compress/randn.h"
#include "compress/threads.h"

#define CHUNK ((size_t)1 << 18) /* even, so pairs never straddle tasks */

typedef struct {
  float *out;
  size_t n;
  uint64_t seed;
  double mean, std;
  mlsh_wdtype wd;
} r_ctx;

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void task(void *p, size_t t, unsigned w) {
  (void)w;
  r_ctx *c = p;
  size_t i0 = t * CHUNK, i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
  uint64_t key = splitmix64(c->seed);
  for (size_t i = i0; i < i1; i += 2) {
    uint64_t a = splitmix64(key ^ (2 * (uint64_t)i)), b = splitmix64(key ^ (2 * (uint64_t)i + 1));
    double u1 = ((double)(a >> 11) + 1.0) * 0x1p-53, u2 = (double)(b >> 11) * 0x1p-53; /* u1 in (0,1] */
    double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    c->out[i] = mlsh_wd_round_d(c->wd, c->mean + c->std * r * cos(th));
    if (i + 1 < i1) c->out[i + 1] = mlsh_wd_round_d(c->wd, c->mean + c->std * r * sin(th));
  }
}

void mlsh_randn(float *out, size_t n, uint64_t seed, double mean, double std, mlsh_wdtype wd, unsigned threads) {
  r_ctx c = {out, n, seed, mean, std, wd};
  mlsh_parallel_for(mlsh_threads_clamp(threads), (n + CHUNK - 1) / CHUNK, task, &c);
}
