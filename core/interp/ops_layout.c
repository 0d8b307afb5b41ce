/* ops_layout.c — data-movement ops converters emit from TF and PyTorch graphs:
 *   space_to_batch(x [N,C,H,W], block_shape [2], paddings [2,2]): pad H/W, then
 *     out[(bh*BW + bw)*N + n, c, h, w] = padded[n, c, h*BH + bh, w*BW + bw] (TF's order);
 *   batch_to_space(x, block_shape, crops [2,2]): the inverse, then crop;
 *   sliding_windows(x, axis, size, stride = 1): [.., (d - size)//stride + 1, size, ..];
 *   reshape_like(x, ref_tensors, begins, ends, end_masks) (iOS16): x reshaped to the
 *     concatenation of ref_tensors[i].shape[begins[i]:ends[i]] (end_masks[i]: to the end);
 *   reverse_sequence(x, lengths, seq_axis = 0, batch_axis = 0): for each batch index b, the first
 *     lengths[b] elements along seq_axis reversed. */
#include "ops.h"
#include <string.h>

static size_t esz(const it_tensor *t) { return it_storage_size(t->st); }

/* block_shape and the [2,2] pads/crops of the two spatial ops. */
static int block_args(it_ctx *c, const it_tensor *x, const char *padname, int64_t *bs, int64_t *pad) {
  if (x->rank != 4) return it_fail(c, "x must have rank 4 (N, C, H, W), not %d", x->rank);
  if (it_arg_ints(c, "block_shape", bs, 2) != 2) return it_fail(c, "block_shape must have 2 values");
  it_tensor *p = it_arg(c, padname);
  if (!p || p->n != 4 || p->st == IT_STR) return it_fail(c, "%s must be a [2, 2] int tensor", padname);
  for (int i = 0; i < 4; i++) pad[i] = it_get_i(p, (size_t)i);
  for (int i = 0; i < 2; i++)
    if (bs[i] < 1 || bs[i] > (1 << 16) || pad[2 * i] < 0 || pad[2 * i + 1] < 0 || pad[2 * i] > (1 << 30) || pad[2 * i + 1] > (1 << 30))
      return it_fail(c, "block_shape must be in [1, 65536] and %s in [0, 2^30]", padname);
  return 0;
}

static int k_space_to_batch(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  int64_t bs[2], pad[4];
  if (!x || block_args(c, x, "paddings", bs, pad) != 0) return -1;
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t PH = H + pad[0] + pad[1], PW = W + pad[2] + pad[3];
  if (PH % bs[0] || PW % bs[1]) return it_fail(c, "padded spatial size %lldx%lld is not divisible by the block", (long long)PH, (long long)PW);
  int64_t os[4] = {N * bs[0] * bs[1], C, PH / bs[0], PW / bs[1]};
  it_tensor *o = it_out(c, 0, x->dt, 4, os);
  if (!o) return -1;
  size_t e = esz(x), i = 0;
  for (int64_t ob = 0; ob < os[0]; ob++) {
    int64_t n = ob % N, blk = ob / N, bh = blk / bs[1], bw = blk % bs[1];
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t h = 0; h < os[2]; h++)
        for (int64_t w = 0; w < os[3]; w++, i++) {
          int64_t ih = h * bs[0] + bh - pad[0], iw = w * bs[1] + bw - pad[2];
          char *dst = (char *)o->data + i * e;
          if (ih < 0 || ih >= H || iw < 0 || iw >= W) memset(dst, 0, e);
          else memcpy(dst, (const char *)x->data + (size_t)(((n * C + ch) * H + ih) * W + iw) * e, e);
        }
  }
  return 0;
}

static int k_batch_to_space(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  int64_t bs[2], cr[4];
  if (!x || block_args(c, x, "crops", bs, cr) != 0) return -1;
  int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (B % (bs[0] * bs[1])) return it_fail(c, "batch %lld is not divisible by the block (%lldx%lld)", (long long)B, (long long)bs[0], (long long)bs[1]);
  int64_t N = B / (bs[0] * bs[1]);
  int64_t os[4] = {N, C, H * bs[0] - cr[0] - cr[1], W * bs[1] - cr[2] - cr[3]};
  if (os[2] < 0 || os[3] < 0) return it_fail(c, "crops remove more than the spatial size");
  it_tensor *o = it_out(c, 0, x->dt, 4, os);
  if (!o) return -1;
  size_t e = esz(x), i = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t h = 0; h < os[2]; h++)
        for (int64_t w = 0; w < os[3]; w++, i++) {
          int64_t ph = h + cr[0], pw = w + cr[2];
          int64_t ib = ((ph % bs[0]) * bs[1] + pw % bs[1]) * N + n;
          size_t src = (size_t)(((ib * C + ch) * H + ph / bs[0]) * W + pw / bs[1]);
          memcpy((char *)o->data + i * e, (const char *)x->data + src * e, e);
        }
  return 0;
}

static int k_sliding_windows(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int a = it_axis(c, it_arg_int(c, "axis", 0), x->rank);
  if (a < 0) return -1;
  int64_t size = it_arg_int(c, "size", 1), stride = it_arg_int(c, "stride", 1), d = x->shape[a];
  if (size < 1 || stride < 1 || size > d) return it_fail(c, "size %lld / stride %lld do not fit dimension %lld", (long long)size, (long long)stride, (long long)d);
  if (x->rank + 1 > IT_MAX_RANK) return it_fail(c, "output rank too large");
  int64_t nw = (d - size) / stride + 1, shape[IT_MAX_RANK];
  for (int i = 0, k = 0; i < x->rank; i++) {
    shape[k++] = i == a ? nw : x->shape[i];
    if (i == a) shape[k++] = size;
  }
  it_tensor *o = it_out(c, 0, x->dt, x->rank + 1, shape);
  if (!o) return -1;
  size_t outer = it_outer(x, a), inner = it_inner(x, a + 1) * esz(x);
  char *O = o->data;
  for (size_t p = 0; p < outer; p++)
    for (int64_t w = 0; w < nw; w++)
      for (int64_t s = 0; s < size; s++, O += inner)
        memcpy(O, (const char *)x->data + (p * (size_t)d + (size_t)(w * stride + s)) * inner, inner);
  return 0;
}

/* Entry i of a tuple parameter: n scalar bindings (coremltools' tuples) or one vector of n. */
static int tuple_int(it_ctx *c, const char *name, int i, int n, int64_t *v) {
  it_tensor *t = it_arg_count(c, name) == n ? it_arg_at(c, name, i) : it_arg_count(c, name) == 1 ? it_arg(c, name) : NULL;
  size_t k = it_arg_count(c, name) == n ? 0 : (size_t)i;
  if (!t || t->st == IT_STR || t->n <= k || (it_arg_count(c, name) != n && t->n != (size_t)n))
    return it_fail(c, "%s must have one entry per reference tensor (%d)", name, n);
  *v = it_get_i(t, k);
  return 0;
}

static int k_reshape_like(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x");
  if (!x) return -1;
  int n = it_arg_count(c, "ref_tensors");
  if (n < 1) return it_fail(c, "ref_tensors is empty");
  int64_t shape[IT_MAX_RANK];
  int r = 0;
  for (int i = 0; i < n; i++) {
    it_tensor *ref = it_arg_at(c, "ref_tensors", i);
    int64_t lo, hi, mask;
    if (tuple_int(c, "begins", i, n, &lo) || tuple_int(c, "ends", i, n, &hi) || tuple_int(c, "end_masks", i, n, &mask)) return -1;
    if (mask) hi = ref->rank;
    if (lo < 0) lo += ref->rank;
    if (hi < 0) hi += ref->rank;
    if (lo < 0 || hi > ref->rank || lo > hi) return it_fail(c, "entry %d: [%lld, %lld) is outside rank %d", i, (long long)lo, (long long)hi, ref->rank);
    for (int64_t d = lo; d < hi; d++) {
      if (r >= IT_MAX_RANK) return it_fail(c, "output rank too large");
      shape[r++] = ref->shape[d];
    }
  }
  if (x->st == IT_STR) return it_fail(c, "string tensors cannot be reshaped");
  if (it_numel(r, shape) != x->n) return it_fail(c, "x has %zu elements, the reference shape %zu", x->n, it_numel(r, shape));
  it_tensor *o = it_out(c, 0, x->dt, r, shape);
  if (!o) return -1;
  memcpy(o->data, x->data, x->n * esz(x));
  return 0;
}

static int k_reverse_sequence(it_ctx *c) {
  it_tensor *x = it_arg_req(c, "x"), *len = x ? it_arg_req(c, "lengths") : NULL;
  if (!len) return -1;
  int sa = it_axis(c, it_arg_int(c, "seq_axis", 0), x->rank), ba = sa < 0 ? -1 : it_axis(c, it_arg_int(c, "batch_axis", 0), x->rank);
  if (ba < 0) return -1;
  if (sa == ba) return it_fail(c, "seq_axis and batch_axis must differ");
  if ((int64_t)len->n != x->shape[ba]) return it_fail(c, "lengths has %zu values, batch dimension %lld", len->n, (long long)x->shape[ba]);
  for (size_t i = 0; i < len->n; i++)
    if (it_get_i(len, i) < 0 || it_get_i(len, i) > x->shape[sa]) return it_fail(c, "lengths[%zu] is outside [0, %lld]", i, (long long)x->shape[sa]);
  if (x->st == IT_STR) return it_fail(c, "string tensors are not supported");
  it_tensor *o = it_out(c, 0, x->dt, x->rank, x->shape);
  if (!o) return -1;
  size_t e = esz(x);
  int64_t idx[IT_MAX_RANK] = {0}, st[IT_MAX_RANK];
  int64_t s = 1;
  for (int d = x->rank - 1; d >= 0; d--) { st[d] = s; s *= x->shape[d]; }
  for (size_t i = 0; i < x->n; i++) {
    int64_t L = it_get_i(len, (size_t)idx[ba]), q = idx[sa];
    int64_t src = (int64_t)i + (q < L ? (L - 1 - 2 * q) * st[sa] : 0);
    memcpy((char *)o->data + i * e, (const char *)x->data + (size_t)src * e, e);
    for (int d = x->rank - 1; d >= 0; d--) { if (++idx[d] < x->shape[d]) break; idx[d] = 0; }
  }
  return 0;
}

const it_kernel_def it_ops_layout[] = {
  {"space_to_batch", k_space_to_batch}, {"batch_to_space", k_batch_to_space}, {"sliding_windows", k_sliding_windows},
  {"reshape_like", k_reshape_like}, {"reverse_sequence", k_reverse_sequence}, {NULL, NULL},
};
