/* ops_einsum.c — einsum(values, equation) for any equation numpy accepts: one or more operands
 * (at most 8), labels a-z and A-Z, an ellipsis "..." standing for broadcast leading dimensions,
 * a label repeated within an operand (its diagonal), implicit output (no "->": the labels used
 * once, in ASCII order, after the ellipsis dimensions). Sizes broadcast (a dimension of 1 stretches).
 * Every label not in the output is summed over.
 * Two operands whose labels each appear once per operand, with no broadcast and no label summed in
 * one operand only, are contracted with the packed GEMM (gemm.h): the operands are permuted into
 * [batch, M, K] x [batch, K, N], multiplied per batch in fp32, and the product permuted into the
 * output. Everything else is summed directly, accumulating in double. */
#include "gemm.h"
#include "ops.h"
#include <stdlib.h>
#include <string.h>

#define MAXOP 8
#define NLAB 64 /* 52 letters + up to 8 ellipsis dimensions (ids 52..59) */

typedef struct {
  int nop;
  int lab[MAXOP][IT_MAX_RANK]; /* label id per operand dimension */
  int rank[MAXOP];
  int out[IT_MAX_RANK], orank;
  int64_t size[NLAB];
  int used[NLAB];
} eq_t;

static int label_id(char ch) {
  if (ch >= 'a' && ch <= 'z') return ch - 'a';
  if (ch >= 'A' && ch <= 'Z') return 26 + ch - 'A';
  return -1;
}

/* Parse one operand's (or the output's) subscripts between p and end; ell_rank dims for "...". */
static int parse_term(it_ctx *c, const char *p, const char *end, int ell_rank, int *lab, int *rank, int *has_ell) {
  int r = 0;
  *has_ell = 0;
  while (p < end) {
    if (*p == ' ') { p++; continue; }
    if (*p == '.') {
      if (end - p < 3 || p[1] != '.' || p[2] != '.' || *has_ell) return it_fail(c, "bad ellipsis in the equation");
      *has_ell = 1;
      for (int i = 0; i < ell_rank; i++) {
        if (r >= IT_MAX_RANK) return it_fail(c, "too many subscripts");
        lab[r++] = 52 + i;
      }
      p += 3;
      continue;
    }
    int id = label_id(*p);
    if (id < 0) return it_fail(c, "unsupported character '%c' in the equation", *p);
    if (r >= IT_MAX_RANK) return it_fail(c, "too many subscripts");
    lab[r++] = id;
    p++;
  }
  *rank = r;
  return 0;
}

static int count_letters(const char *p, const char *end) {
  int n = 0;
  for (; p < end; p++) n += label_id(*p) >= 0;
  return n;
}

static int parse(it_ctx *c, const char *eq, it_tensor **t, int n, eq_t *E) {
  memset(E, 0, sizeof *E);
  const char *arrow = strstr(eq, "->"), *lhs_end = arrow ? arrow : eq + strlen(eq);
  const char *p = eq;
  int ell = 0; /* ellipsis rank: the most dimensions any operand's "..." covers */
  const char *starts[MAXOP + 1];
  int k = 0;
  starts[k++] = p;
  for (; p < lhs_end; p++)
    if (*p == ',') {
      if (k >= MAXOP) return it_fail(c, "more than %d operands", MAXOP);
      starts[k++] = p + 1;
    }
  if (k != n) return it_fail(c, "equation '%s' names %d operands, %d given", eq, k, n);
  E->nop = n;
  for (int o = 0; o < n; o++) {
    const char *e = o + 1 < n ? starts[o + 1] - 1 : lhs_end;
    int letters = count_letters(starts[o], e);
    if (strstr(starts[o], "...") && strstr(starts[o], "...") < e) {
      if (t[o]->rank - letters < 0) return it_fail(c, "operand %d has rank %d, fewer than its %d subscripts", o, t[o]->rank, letters);
      if (t[o]->rank - letters > ell) ell = t[o]->rank - letters;
    }
  }
  int has;
  for (int o = 0; o < n; o++) {
    const char *e = o + 1 < n ? starts[o + 1] - 1 : lhs_end;
    int letters = count_letters(starts[o], e), er = t[o]->rank - letters;
    int lab[IT_MAX_RANK + 8], r;
    if (parse_term(c, starts[o], e, er < 0 ? 0 : er, lab, &r, &has) != 0) return -1;
    /* an operand's ellipsis dims are the last er of the shared ell (right-aligned) */
    for (int i = 0; i < r; i++) if (lab[i] >= 52) lab[i] += ell - er;
    if (r != t[o]->rank) return it_fail(c, "operand %d has rank %d, the equation %d", o, t[o]->rank, r);
    memcpy(E->lab[o], lab, sizeof(int) * (size_t)r);
    E->rank[o] = r;
  }
  for (int i = 0; i < NLAB; i++) E->size[i] = -1;
  for (int o = 0; o < n; o++)
    for (int d = 0; d < E->rank[o]; d++) {
      int l = E->lab[o][d];
      int64_t s = t[o]->shape[d];
      if (E->size[l] >= 0 && E->size[l] != s && s != 1 && E->size[l] != 1)
        return it_fail(c, "subscript sizes %lld and %lld do not match", (long long)E->size[l], (long long)s);
      if (E->size[l] < 0 || E->size[l] == 1) E->size[l] = s; /* 1 broadcasts, also against 0 */
      E->used[l]++;
    }
  if (arrow) {
    if (parse_term(c, arrow + 2, arrow + strlen(arrow), ell, E->out, &E->orank, &has) != 0) return -1;
    if (!has && ell) /* numpy: the ellipsis dims must appear in the output or be size 1 */
      for (int i = 0; i < ell; i++)
        if (E->size[52 + i] > 1) return it_fail(c, "the output drops the ellipsis dimensions");
  } else {
    for (int i = 0; i < ell; i++) E->out[E->orank++] = 52 + i;
    static const char order[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (const char *q = order; *q; q++)
      if (E->used[label_id(*q)] == 1) {
        if (E->orank >= IT_MAX_RANK) return it_fail(c, "output rank too large");
        E->out[E->orank++] = label_id(*q);
      }
  }
  for (int i = 0; i < E->orank; i++) {
    if (E->size[E->out[i]] < 0) return it_fail(c, "output subscript is not an input subscript");
    for (int j = 0; j < i; j++) if (E->out[j] == E->out[i]) return it_fail(c, "output subscript repeated");
  }
  return 0;
}

/* Element strides of operand o per label (summed over repeats; 0 where the dim is 1 = broadcast). */
static void strides(const eq_t *E, const it_tensor *t, int o, int64_t *st) {
  for (int l = 0; l < NLAB; l++) st[l] = 0;
  int64_t s = 1;
  for (int d = t->rank - 1; d >= 0; d--) {
    if (t->shape[d] != 1) st[E->lab[o][d]] += s;
    s *= t->shape[d];
  }
}

static int in_out(const eq_t *E, int l) {
  for (int i = 0; i < E->orank; i++) if (E->out[i] == l) return 1;
  return 0;
}

static int naive(const eq_t *E, it_tensor **t, it_tensor *o) {
  int labels[NLAB], nl = 0;
  for (int i = 0; i < E->orank; i++) labels[nl++] = E->out[i];
  for (int l = 0; l < NLAB; l++) if (E->size[l] >= 0 && !in_out(E, l)) labels[nl++] = l;
  int64_t st[MAXOP][NLAB], idx[NLAB];
  for (int q = 0; q < E->nop; q++) strides(E, t[q], q, st[q]);
  size_t sum = 1;
  for (int i = E->orank; i < nl; i++) sum *= (size_t)E->size[labels[i]];
  float *O = o->data;
  for (size_t oi = 0; oi < o->n; oi++) {
    size_t r = oi;
    for (int d = E->orank - 1; d >= 0; d--) { idx[d] = (int64_t)(r % (size_t)E->size[labels[d]]); r /= (size_t)E->size[labels[d]]; }
    double acc = 0;
    for (size_t si = 0; si < sum; si++) {
      size_t rr = si;
      for (int i = nl - 1; i >= E->orank; i--) { int64_t sz = E->size[labels[i]]; idx[i] = (int64_t)(rr % (size_t)sz); rr /= (size_t)sz; }
      double v = 1;
      for (int q = 0; q < E->nop; q++) {
        int64_t off = 0;
        for (int i = 0; i < nl; i++) off += idx[i] * st[q][labels[i]];
        v *= ((const float *)t[q]->data)[off];
      }
      acc += v;
    }
    O[oi] = (float)acc;
  }
  return 0;
}

/* Copy t into a new buffer ordered by the label list lab[n] (all of t's labels). */
static float *permute(const eq_t *E, const it_tensor *t, int o, const int *lab, int n) {
  float *b = malloc((t->n ? t->n : 1) * sizeof *b);
  if (!b) return NULL;
  int64_t st[NLAB], idx[IT_MAX_RANK] = {0}, off = 0;
  strides(E, t, o, st);
  const float *src = t->data;
  for (size_t i = 0; i < t->n; i++) {
    b[i] = src[off];
    for (int d = n - 1; d >= 0; d--) {
      off += st[lab[d]];
      if (++idx[d] < E->size[lab[d]]) break;
      off -= st[lab[d]] * E->size[lab[d]];
      idx[d] = 0;
    }
  }
  return b;
}

/* The GEMM path (see the header); returns 1 when the equation does not fit it. */
static int via_gemm(it_ctx *c, const eq_t *E, it_tensor **t, it_tensor *o) {
  if (E->nop != 2) return 1;
  int inA[NLAB] = {0}, inB[NLAB] = {0};
  for (int d = 0; d < E->rank[0]; d++) if (inA[E->lab[0][d]]++ || t[0]->shape[d] != E->size[E->lab[0][d]]) return 1;
  for (int d = 0; d < E->rank[1]; d++) if (inB[E->lab[1][d]]++ || t[1]->shape[d] != E->size[E->lab[1][d]]) return 1;
  int bl[NLAB], ml[NLAB], nl_[NLAB], kl[NLAB], nb = 0, nm = 0, nn = 0, nk = 0;
  size_t Bn = 1, M = 1, N = 1, K = 1;
  for (int i = 0; i < E->orank; i++) {
    int l = E->out[i];
    if (inA[l] && inB[l]) { bl[nb++] = l; Bn *= (size_t)E->size[l]; }
    else if (inA[l]) { ml[nm++] = l; M *= (size_t)E->size[l]; }
    else { nl_[nn++] = l; N *= (size_t)E->size[l]; }
  }
  for (int l = 0; l < NLAB; l++)
    if (E->size[l] >= 0 && !in_out(E, l)) {
      if (!(inA[l] && inB[l])) return 1;
      kl[nk++] = l;
      K *= (size_t)E->size[l];
    }
  int la[IT_MAX_RANK * 2], lb[IT_MAX_RANK * 2], na = 0, nb2 = 0;
  for (int i = 0; i < nb; i++) la[na++] = bl[i], lb[nb2++] = bl[i];
  for (int i = 0; i < nm; i++) la[na++] = ml[i];
  for (int i = 0; i < nk; i++) la[na++] = kl[i], lb[nb2++] = kl[i];
  for (int i = 0; i < nn; i++) lb[nb2++] = nl_[i];
  size_t cn = Bn * M * N;
  float *A = permute(E, t[0], 0, la, na), *Bm = permute(E, t[1], 1, lb, nb2), *Cm = malloc((cn ? cn : 1) * sizeof(float));
  if (!A || !Bm || !Cm) { free(A), free(Bm), free(Cm); return it_fail(c, "out of memory"); }
  for (size_t b = 0; b < Bn; b++) {
    if (K == 0) memset(Cm + b * M * N, 0, M * N * sizeof(float));
    else it_sgemm(M, N, K, A + b * M * K, K, Bm + b * K * N, N, 0, Cm + b * M * N, N, 0);
  }
  /* C is laid out [batch labels, m labels, n labels]: scatter into the output's order */
  int lc[IT_MAX_RANK * 2], ncl = 0;
  for (int i = 0; i < nb; i++) lc[ncl++] = bl[i];
  for (int i = 0; i < nm; i++) lc[ncl++] = ml[i];
  for (int i = 0; i < nn; i++) lc[ncl++] = nl_[i];
  int64_t ost[NLAB] = {0}, s = 1, idx[IT_MAX_RANK * 2] = {0}, off = 0;
  for (int d = E->orank - 1; d >= 0; d--) { ost[E->out[d]] = s; s *= E->size[E->out[d]]; }
  float *O = o->data;
  for (size_t i = 0; i < o->n; i++) {
    O[off] = Cm[i];
    for (int d = ncl - 1; d >= 0; d--) {
      off += ost[lc[d]];
      if (++idx[d] < E->size[lc[d]]) break;
      off -= ost[lc[d]] * E->size[lc[d]];
      idx[d] = 0;
    }
  }
  free(A), free(Bm), free(Cm);
  return 0;
}

static int k_einsum(it_ctx *c) {
  const char *eq = it_arg_str(c, "equation", NULL);
  int n = it_arg_count(c, "values");
  if (!eq || n < 1) return it_fail(c, "needs an equation and at least one value");
  if (n > MAXOP) return it_fail(c, "more than %d operands", MAXOP);
  it_tensor *t[MAXOP];
  for (int i = 0; i < n; i++) {
    t[i] = it_arg_at(c, "values", i);
    if (!t[i] || t[i]->st != IT_F32) return it_fail(c, "operand %d is not a float tensor", i);
  }
  eq_t E;
  if (parse(c, eq, t, n, &E) != 0) return -1;
  int64_t oshape[IT_MAX_RANK];
  for (int d = 0; d < E.orank; d++) oshape[d] = E.size[E.out[d]];
  it_tensor *o = it_out_f(c, 0, E.orank, oshape);
  if (!o) return -1;
  if (o->st != IT_F32) return it_fail(c, "output must be a float tensor");
  int rc = via_gemm(c, &E, t, o);
  return rc == 1 ? naive(&E, t, o) : rc;
}

const it_kernel_def it_ops_einsum[] = {
  {"einsum", k_einsum}, {NULL, NULL},
};
