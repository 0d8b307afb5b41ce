/* ops_random.c — the iOS15 random ops, seeded and deterministic:
 *   random_uniform(shape, low = 0, high = 1, seed = -1)       U[low, high)
 *   random_normal(shape, mean = 0, stddev = 1, seed = -1)     N(mean, stddev²) (Box-Muller)
 *   random_bernoulli(shape, prob = 0.5, seed = -1)            1 with probability prob, else 0
 *   random_categorical(x, mode = "logits", size = 1, seed = -1): per distribution (x's last axis,
 *     logits or probabilities) `size` category indices drawn with replacement; shape
 *     x.shape[:-1] + [size], dtype x's (float indices).
 * Each op invocation draws from its own splitmix64 stream seeded by `seed` (seed -1: by a hash of
 * the op's name), so a program gives the same values on every run. Core ML's own generator is
 * not public: the values cannot match Core ML's bit for bit; shapes, dtypes and distributions do.
 * The output dtype is the declared one (fp32 when undeclared). */
#include "ops.h"
#include <math.h>
#include <string.h>

typedef struct { uint64_t s; } rng;

static uint64_t next64(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double u01(rng *r) { return (double)(next64(r) >> 11) * (1.0 / 9007199254740992.0); }

static void seed_rng(it_ctx *c, rng *r) {
  int64_t seed = it_arg_int(c, "seed", -1);
  uint64_t h = 1469598103934665603ull;
  if (seed == -1)
    for (const char *p = c->op->name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  else h ^= (uint64_t)seed * 0x9e3779b97f4a7c15ull;
  r->s = h;
}

/* The output tensor from the `shape` input (every dimension > 0... or 0). */
static it_tensor *shaped_out(it_ctx *c) {
  it_tensor *s = it_arg_req(c, "shape");
  if (!s) return NULL;
  if (s->rank != 1 || s->st != IT_I64) return it_fail(c, "shape must be an int vector"), NULL;
  if (s->n > IT_MAX_RANK) return it_fail(c, "shape has %zu dimensions (at most %d)", s->n, IT_MAX_RANK), NULL;
  int64_t shape[IT_MAX_RANK];
  for (size_t i = 0; i < s->n; i++) {
    shape[i] = it_get_i(s, i);
    if (shape[i] < 0) return it_fail(c, "shape has a negative dimension"), NULL;
  }
  mlsh_dtype dt = it_out_dtype(c, 0);
  if (dt != MLSH_DT_INVALID && !mlsh_dtype_is_float(dt)) return it_fail(c, "output must be fp16 or fp32"), NULL;
  return it_out(c, 0, MLSH_DT_INVALID, (int)s->n, shape);
}

static int k_random_uniform(it_ctx *c) {
  it_tensor *o = shaped_out(c);
  if (!o) return -1;
  double lo = it_arg_float(c, "low", 0), hi = it_arg_float(c, "high", 1);
  if (hi < lo) return it_fail(c, "high (%g) is below low (%g)", hi, lo);
  rng r;
  seed_rng(c, &r);
  float *O = o->data;
  for (size_t i = 0; i < o->n; i++) {
    float v = (float)(lo + (hi - lo) * u01(&r));
    O[i] = v >= (float)hi && hi > lo ? nextafterf((float)hi, (float)lo) : v; /* half-open */
  }
  return 0;
}

static int k_random_normal(it_ctx *c) {
  it_tensor *o = shaped_out(c);
  if (!o) return -1;
  double mean = it_arg_float(c, "mean", 0), sd = it_arg_float(c, "stddev", 1);
  if (sd < 0) return it_fail(c, "stddev (%g) is negative", sd);
  rng r;
  seed_rng(c, &r);
  float *O = o->data;
  for (size_t i = 0; i < o->n; i += 2) {
    double u1 = 1.0 - u01(&r), u2 = u01(&r); /* u1 in (0, 1] */
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    O[i] = (float)(mean + sd * rad * cos(th));
    if (i + 1 < o->n) O[i + 1] = (float)(mean + sd * rad * sin(th));
  }
  return 0;
}

static int k_random_bernoulli(it_ctx *c) {
  it_tensor *o = shaped_out(c);
  if (!o) return -1;
  double p = it_arg_float(c, "prob", 0.5);
  if (!(p >= 0 && p <= 1)) return it_fail(c, "prob (%g) is outside [0, 1]", p);
  rng r;
  seed_rng(c, &r);
  float *O = o->data;
  for (size_t i = 0; i < o->n; i++) O[i] = u01(&r) < p ? 1.0f : 0.0f;
  return 0;
}

static int k_random_categorical(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  if (x->st != IT_F32 || x->rank < 1) return it_fail(c, "x must be a float tensor of rank >= 1");
  const char *mode = it_arg_str(c, "mode", "logits");
  int logits = strcmp(mode, "logits") == 0;
  if (!logits && strcmp(mode, "probs") != 0) return it_fail(c, "mode must be 'logits' or 'probs', not '%s'", mode);
  int64_t size = it_arg_int(c, "size", 1);
  if (size < 1) return it_fail(c, "size must be at least 1, not %lld", (long long)size);
  size_t K = (size_t)x->shape[x->rank - 1], rows = K ? x->n / K : 0;
  if (K == 0) return it_fail(c, "x has no categories");
  int64_t shape[IT_MAX_RANK];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->rank - 1] = size;
  it_tensor *o = it_out(c, 0, x->dt, x->rank, shape);
  if (!o) return -1;
  rng r;
  seed_rng(c, &r);
  const float *X = x->data;
  float *O = o->data;
  for (size_t row = 0; row < rows; row++) {
    const float *p = X + row * K;
    double mx = -INFINITY, tot = 0;
    if (logits)
      for (size_t k = 0; k < K; k++) mx = p[k] > mx ? p[k] : mx;
    for (size_t k = 0; k < K; k++) tot += logits ? exp(p[k] - mx) : (p[k] > 0 ? p[k] : 0);
    if (!(tot > 0) || !isfinite(tot)) return it_fail(c, "distribution %zu has no positive probability", row);
    for (int64_t s = 0; s < size; s++) {
      double u = u01(&r) * tot, acc = 0;
      size_t k = 0;
      for (; k + 1 < K; k++) {
        acc += logits ? exp(p[k] - mx) : (p[k] > 0 ? p[k] : 0);
        if (u < acc) break;
      }
      O[row * (size_t)size + (size_t)s] = (float)k;
    }
  }
  return 0;
}

const it_kernel_def it_ops_random[] = {
  {"random_uniform", k_random_uniform}, {"random_normal", k_random_normal}, {"random_bernoulli", k_random_bernoulli},
  {"random_categorical", k_random_categorical}, {NULL, NULL},
};
