/* tree.c — tree ensemble evaluation: every tree walked from its root (the node no other node of
 * the tree points to) by the node's branch rule (<=, <, >=, >, ==, != against
 * x[branchFeatureIndex]; a NaN goes to the true child when missingValueTracksTrueChild), leaves
 * adding their evaluationInfo values to the prediction dimensions, on top of
 * basePredictionValue; then the post-evaluation transform (none, softmax, logistic, softmax with
 * a zero reference class). The node fields mlsh's schema leaves undeclared are read with nn_wire. */
#include "classic.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint64_t tree, id;
  int mode;              /* 0..5 branch rules, 6 leaf */
  uint64_t feature;
  double value;
  int64_t t, f;          /* child node indices (-1: none) */
  int nan_true;
  size_t nev, ev0;       /* evaluationInfo entries [ev0, ev0 + nev) */
} tnode;

typedef struct {
  size_t nnodes, nroots, dims;
  tnode *nodes;
  size_t *roots;
  uint64_t *ev_idx;
  double *ev_val;
  double *base;
  int transform;
} tree_model;

static int cmp_node(const void *a, const void *b) {
  const tnode *x = a, *y = b;
  if (x->tree != y->tree) return x->tree < y->tree ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

static int64_t lookup(const tree_model *m, uint64_t tree, uint64_t id) {
  size_t lo = 0, hi = m->nnodes;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const tnode *n = &m->nodes[mid];
    if (n->tree == tree && n->id == id) return (int64_t)mid;
    if (n->tree < tree || (n->tree == tree && n->id < id)) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/* Read the nodes (declared: treeId, nodeId; the rest undeclared). */
static int read_nodes(nn_b *B, const CoreML__Specification__TreeEnsembleParameters *t, tree_model *m, uint64_t (*kids)[2]) {
  size_t nev = 0;
  for (size_t i = 0; i < t->n_nodes; i++) {
    nnw_msg w = nnw_of(t->nodes[i]);
    size_t cur = 0;
    nnw_field f;
    while (nnw_next(&w, &cur, &f)) nev += f.field == 20;
  }
  m->ev_idx = it_program_alloc(B->p, (nev + 1) * sizeof *m->ev_idx);
  m->ev_val = it_program_alloc(B->p, (nev + 1) * sizeof *m->ev_val);
  if (!m->ev_idx || !m->ev_val) return mlsh_fail(B->e, NULL, "out of memory");
  size_t k = 0;
  for (size_t i = 0; i < t->n_nodes; i++) {
    tnode *n = &m->nodes[i];
    nnw_msg w = nnw_of(t->nodes[i]);
    n->tree = t->nodes[i]->treeid;
    n->id = t->nodes[i]->nodeid;
    n->mode = (int)nnw_u64(&w, 3, 0);
    if (n->mode < 0 || n->mode > 6) return nn_fail(B, "tree %llu node %llu: unknown behaviour %d", (unsigned long long)n->tree, (unsigned long long)n->id, n->mode);
    n->feature = nnw_u64(&w, 10, 0);
    n->value = nnw_f64(&w, 11, 0);
    kids[i][0] = nnw_u64(&w, 12, 0);
    kids[i][1] = nnw_u64(&w, 13, 0);
    n->nan_true = nnw_u64(&w, 14, 0) != 0;
    n->ev0 = k;
    size_t cur = 0;
    nnw_field f;
    while (nnw_next(&w, &cur, &f))
      if (f.field == 20 && f.wire == 2) {
        nnw_msg e = nnw_raw(f.data, f.len);
        m->ev_idx[k] = nnw_u64(&e, 1, 0);
        m->ev_val[k] = nnw_f64(&e, 2, 0);
        if (m->ev_idx[k] >= m->dims) return nn_fail(B, "tree %llu node %llu: evaluation index %llu is outside the %zu prediction dimensions",
                                                     (unsigned long long)n->tree, (unsigned long long)n->id, (unsigned long long)m->ev_idx[k], m->dims);
        k++;
      }
    n->nev = k - n->ev0;
    /* keep the children's ids in t/f until the nodes are sorted */
    n->t = (int64_t)i;
  }
  return 0;
}

const void *it_tree_compile(nn_b *B, const CoreML__Specification__TreeEnsembleParameters *t, int transform, size_t *dims) {
  if (!t || t->n_nodes == 0) return nn_fail(B, "the tree ensemble has no nodes"), NULL;
  tree_model *m = it_program_alloc(B->p, sizeof *m);
  if (!m) return mlsh_fail(B->e, NULL, "out of memory"), NULL;
  m->dims = t->numpredictiondimensions ? (size_t)t->numpredictiondimensions : 1;
  m->transform = transform;
  m->nnodes = t->n_nodes;
  m->nodes = it_program_alloc(B->p, m->nnodes * sizeof *m->nodes);
  m->roots = it_program_alloc(B->p, m->nnodes * sizeof *m->roots);
  m->base = it_program_alloc(B->p, m->dims * sizeof *m->base);
  uint64_t (*kids)[2] = malloc(m->nnodes * sizeof *kids);
  unsigned char *child = calloc(m->nnodes, 1);
  if (!m->nodes || !m->roots || !m->base || !kids || !child) { free(kids); free(child); return mlsh_fail(B->e, NULL, "out of memory"), NULL; }
  if (t->n_basepredictionvalue && t->n_basepredictionvalue != m->dims) { free(kids); free(child); return nn_fail(B, "%zu base values for %zu dimensions", t->n_basepredictionvalue, m->dims), NULL; }
  for (size_t i = 0; i < t->n_basepredictionvalue; i++) m->base[i] = t->basepredictionvalue[i];
  if (read_nodes(B, t, m, kids) != 0) { free(kids); free(child); return NULL; }
  qsort(m->nodes, m->nnodes, sizeof *m->nodes, cmp_node);
  const char *err = NULL;
  for (size_t i = 0; i < m->nnodes && !err; i++) {
    tnode *n = &m->nodes[i];
    size_t orig = (size_t)n->t;
    if (i && n->tree == m->nodes[i - 1].tree && n->id == m->nodes[i - 1].id) err = "a node id appears twice";
    n->t = n->f = -1;
    if (n->mode == 6) continue;
    n->t = lookup(m, n->tree, kids[orig][0]);
    n->f = lookup(m, n->tree, kids[orig][1]);
    if (n->t < 0 || n->f < 0) err = "a branch points to a node that does not exist";
    else child[n->t] = child[n->f] = 1;
  }
  free(kids);
  for (size_t i = 0; i < m->nnodes && !err; i++)
    if (!child[i]) m->roots[m->nroots++] = i;
  free(child);
  if (err) return nn_fail(B, "tree ensemble: %s", err), NULL;
  *dims = m->dims;
  return m;
}

static double *walk(const tree_model *m, const double *x, size_t nx, double *out, const char **err) {
  memcpy(out, m->base, m->dims * sizeof *out);
  for (size_t r = 0; r < m->nroots; r++) {
    size_t i = m->roots[r];
    for (size_t steps = 0;; steps++) {
      const tnode *n = &m->nodes[i];
      if (steps > m->nnodes) { *err = "a tree has a cycle"; return NULL; }
      if (n->mode == 6) {
        for (size_t k = 0; k < n->nev; k++) out[m->ev_idx[n->ev0 + k]] += m->ev_val[n->ev0 + k];
        break;
      }
      if (n->feature >= nx) { *err = "a branch reads a feature beyond the inputs"; return NULL; }
      double v = x[n->feature];
      int go;
      if (v != v) go = n->nan_true;
      else switch (n->mode) {
        case 0: go = v <= n->value; break;
        case 1: go = v < n->value; break;
        case 2: go = v >= n->value; break;
        case 3: go = v > n->value; break;
        case 4: go = v == n->value; break;
        default: go = v != n->value; break;
        }
      i = (size_t)(go ? n->t : n->f);
    }
  }
  return out;
}

static void softmax(double *v, size_t n) {
  double mx = -INFINITY, s = 0;
  for (size_t i = 0; i < n; i++) mx = v[i] > mx ? v[i] : mx;
  for (size_t i = 0; i < n; i++) s += (v[i] = exp(v[i] - mx));
  for (size_t i = 0; i < n; i++) v[i] /= s;
}

static int k_tree(it_ctx *c) {
  const tree_model *m = c->op->aux;
  size_t nx;
  double *x = it_features(c, &nx);
  if (!x) return -1;
  size_t D = m->dims, K = m->transform == 3 ? D + 1 : D;
  double *v = malloc((K + 1) * sizeof *v);
  if (!v) { free(x); return it_fail(c, "out of memory"); }
  const char *err = NULL;
  if (!walk(m, x, nx, v + (K - D), &err)) { free(x); free(v); return it_fail(c, "%s", err); }
  free(x);
  if (m->transform == 3) v[0] = 0;
  if (m->transform == 1 || m->transform == 3) softmax(v, K);
  else if (m->transform == 2)
    for (size_t i = 0; i < K; i++) v[i] = 1 / (1 + exp(-v[i]));
  int64_t s[1] = {(int64_t)K};
  it_tensor *o = it_out_f(c, 0, 1, s);
  if (!o) { free(v); return -1; }
  for (size_t i = 0; i < K; i++) ((float *)o->data)[i] = (float)v[i];
  free(v);
  return 0;
}
const it_kernel_def it_k_tree = {"tree_ensemble", k_tree};
