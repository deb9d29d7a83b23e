// Shape inference: one rule per row of IR_OPS (the `rule` column), each
// computing output types from input types and attributes and refusing
// anything the op's semantics do not define. Rules trust nothing about the
// attributes: a frontend or a pass may have put garbage there.
#include "ir/ir.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTR (1ll << 31) // kernel, stride, dilation, conv/pool pads

typedef int infer_fn(const ir_node *n, ir_type *out, char *err, size_t errlen);


// Type text for messages; each call site passes its own buffer.
#define TS(t, buf) ir_type_str((t), (buf), sizeof(buf))

static const ir_type *in_ty(const ir_node *n, int i) { return &n->in[i]->ty; }

static bool is_numeric(ir_dtype dt) { return ir_dtype_is_float(dt) || ir_dtype_is_int(dt); }

// Product of dims, or -1 if it exceeds IR_MAX_ELEMS (or a dim is negative).
static int64_t safe_prod(const int64_t *d, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) {
    if (d[i] < 0 || d[i] > IR_MAX_ELEMS)
      return -1;
    if (d[i] && p > IR_MAX_ELEMS / d[i])
      return -1;
    p *= d[i];
  }
  return p;
}

static int same_dtype(const ir_node *n, int i, int j, char *err, size_t errlen) {
  if (in_ty(n, i)->dtype == in_ty(n, j)->dtype)
    return 0;
  return ir_fail(err, errlen, "input %d is %s but input %d is %s", i, ir_dtypes[in_ty(n, i)->dtype].name, j,
              ir_dtypes[in_ty(n, j)->dtype].name);
}

int ir_broadcast(const ir_type *a, const ir_type *b, ir_type *out) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  ir_type t = {.dtype = a->dtype, .rank = r};
  for (int i = 0; i < r; i++) {
    int ia = a->rank - r + i, ib = b->rank - r + i;
    int64_t x = ia >= 0 ? a->dims[ia] : 1, y = ib >= 0 ? b->dims[ib] : 1;
    if (x != y && x != 1 && y != 1)
      return -1;
    t.dims[i] = x == 1 ? y : x;
  }
  *out = t;
  return 0;
}

int64_t ir_window_out(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_begin,
                      int64_t pad_end, bool ceil_mode) {
  int64_t span = in + pad_begin + pad_end - ((kernel - 1) * dilation + 1);
  if (span < 0 || stride < 1)
    return 0;
  if (!ceil_mode)
    return span / stride + 1;
  int64_t out = (span + stride - 1) / stride + 1;
  // PyTorch's rule, which ONNX adopted: the last window must start inside
  // the input or the begin padding, not in the end padding.
  if ((out - 1) * stride >= in + pad_begin)
    out--;
  return out;
}

// ---------------------------------------------------------------- rules

// The epilogue of conv, gemm and matmul (IR_A_EPILOGUE): a known activation,
// and with residual set a last input of exactly the output's type. Returns
// the number of inputs before the residual, or -1.
static int epilogue_inputs(const ir_node *n, const ir_type *out, char *err, size_t errlen) {
  char s1[96], s2[96];
  if (n->a.act > IR_ACT_TANH)
    return ir_fail(err, errlen, "bad activation %d", (int)n->a.act);
  if ((n->a.act == IR_ACT_SOFTMAX || n->a.pscale_on) && (n->op != IR_OP_MATMUL || out->dtype != IR_DT_F32))
    return ir_fail(err, errlen, "a softmax or scale epilogue needs a matmul with an f32 output");
  if (!n->a.residual)
    return n->nin;
  const ir_type *r = in_ty(n, n->nin - 1);
  if (n->nin < 3 || !ir_type_eq(r, out))
    return ir_fail(err, errlen, "residual %s must have the output's type %s", n->nin < 3 ? "(absent)" : TS(r, s1),
                   TS(out, s2));
  return n->nin - 1;
}

static int infer_matmul(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *a = in_ty(n, 0), *b = in_ty(n, 1);
  char s1[96], s2[96];
  if (a->rank < 1 || b->rank < 1)
    return ir_fail(err, errlen, "inputs must have rank >= 1, got %s and %s", TS(a, s1), TS(b, s2));
  if (same_dtype(n, 0, 1, err, errlen) || !is_numeric(a->dtype))
    return ir_fail(err, errlen, "inputs must be of one numeric type, got %s and %s", TS(a, s1), TS(b, s2));
  // Numpy matmul: a 1-D operand is a row (left) or a column (right) that the
  // result then drops.
  ir_type A = *a, B = *b;
  if (a->rank == 1)
    A = (ir_type){a->dtype, 2, {1, a->dims[0]}};
  if (b->rank == 1)
    B = (ir_type){b->dtype, 2, {b->dims[0], 1}};
  int64_t M = A.dims[A.rank - 2], K = A.dims[A.rank - 1], K2 = B.dims[B.rank - 2], N = B.dims[B.rank - 1];
  if (K != K2)
    return ir_fail(err, errlen, "inner dims differ: %s @ %s", TS(a, s1), TS(b, s2));
  ir_type ba = {A.dtype, A.rank - 2, {0}}, bb = {B.dtype, B.rank - 2, {0}}, t;
  memcpy(ba.dims, A.dims, sizeof ba.dims[0] * (size_t)ba.rank);
  memcpy(bb.dims, B.dims, sizeof bb.dims[0] * (size_t)bb.rank);
  if (ir_broadcast(&ba, &bb, &t))
    return ir_fail(err, errlen, "batch dims do not broadcast: %s @ %s", TS(a, s1), TS(b, s2));
  if (a->rank > 1)
    t.dims[t.rank++] = M;
  if (b->rank > 1)
    t.dims[t.rank++] = N;
  int nin = epilogue_inputs(n, &t, err, errlen);
  if (nin < 0)
    return -1;
  if (nin > 3)
    return ir_fail(err, errlen, "%d inputs besides the residual: A, B and a bias at most", nin);
  if (nin == 3) {
    // The bias adds along N, the columns of a 2-D B.
    const ir_type *c = in_ty(n, 2);
    if (b->rank != 2 || c->rank != 1 || c->dims[0] != N || c->dtype != a->dtype)
      return ir_fail(err, errlen, "bias must be %s[%lld] with a 2-D B, got %s with B %s", ir_dtypes[a->dtype].name,
                     (long long)N, TS(c, s1), TS(b, s2));
  }
  *out = t;
  return 0;
}

static int infer_gemm(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *a = in_ty(n, 0), *b = in_ty(n, 1);
  char s1[96], s2[96];
  if (a->rank != 2 || b->rank != 2)
    return ir_fail(err, errlen, "A and B must be 2-D, got %s and %s", TS(a, s1), TS(b, s2));
  if (same_dtype(n, 0, 1, err, errlen) || !is_numeric(a->dtype))
    return ir_fail(err, errlen, "A and B must be of one numeric type, got %s and %s", TS(a, s1), TS(b, s2));
  int64_t M = a->dims[n->a.trans_a], K = a->dims[!n->a.trans_a];
  int64_t K2 = b->dims[n->a.trans_b], N = b->dims[!n->a.trans_b];
  if (K != K2)
    return ir_fail(err, errlen, "inner dims differ: A %s%s, B %s%s", TS(a, s1), n->a.trans_a ? " transposed" : "",
                TS(b, s2), n->a.trans_b ? " transposed" : "");
  *out = (ir_type){a->dtype, 2, {M, N}};
  int nin = epilogue_inputs(n, out, err, errlen);
  if (nin < 0)
    return -1;
  if (nin > 3)
    return ir_fail(err, errlen, "%d inputs besides the residual: A, B and C at most", nin);
  if (nin == 3) {
    // C broadcasts one way: to [M, N], never the other way round.
    const ir_type *c = in_ty(n, 2);
    ir_type t;
    if (c->rank > 2 || ir_broadcast(c, out, &t) || !ir_type_eq(&t, out) || c->dtype != a->dtype)
      return ir_fail(err, errlen, "C %s does not broadcast to the result %s", TS(c, s1), TS(out, s2));
  }
  return 0;
}

// Kernel, stride, dilation and pads of a conv or pool over ns spatial dims.
static int check_window(const ir_attrs *a, int ns, char *err, size_t errlen) {
  for (int i = 0; i < ns; i++) {
    if (a->kernel[i] < 1 || a->kernel[i] > MAX_ATTR)
      return ir_fail(err, errlen, "kernel size %lld in spatial dim %d is out of range", (long long)a->kernel[i], i);
    if (a->stride[i] < 1 || a->stride[i] > MAX_ATTR)
      return ir_fail(err, errlen, "stride %lld in spatial dim %d is out of range", (long long)a->stride[i], i);
    if (a->dilation[i] < 1 || a->dilation[i] > MAX_ATTR)
      return ir_fail(err, errlen, "dilation %lld in spatial dim %d is out of range", (long long)a->dilation[i], i);
    if (a->pads[i] < 0 || a->pads[i] > MAX_ATTR || a->pads[ns + i] < 0 || a->pads[ns + i] > MAX_ATTR)
      return ir_fail(err, errlen, "pads %lld, %lld of spatial dim %d are out of range", (long long)a->pads[i],
                  (long long)a->pads[ns + i], i);
  }
  return 0;
}

// First spatial dim of a conv or pool operand: [N,C,D1,...], or [N,D1,...,C]
// channels last.
static int spatial0(const ir_node *n) { return n->a.nhwc ? 1 : 2; }
static int channel_dim(const ir_node *n, const ir_type *x) { return n->a.nhwc ? x->rank - 1 : 1; }

// Spatial output dims of a window op into t's spatial dims.
static int window_dims(const ir_node *n, const ir_type *x, bool ceil_mode, ir_type *t, char *err, size_t errlen) {
  int ns = x->rank - 2, s0 = spatial0(n);
  const ir_attrs *a = &n->a;
  for (int i = 0; i < ns; i++) {
    int64_t o = ir_window_out(x->dims[s0 + i], a->kernel[i], a->stride[i], a->dilation[i], a->pads[i],
                              a->pads[ns + i], ceil_mode);
    if (o < 1)
      return ir_fail(err, errlen,
                  "window of %lld (dilation %lld) does not fit spatial dim %d of size %lld padded by %lld+%lld",
                  (long long)a->kernel[i], (long long)a->dilation[i], i, (long long)x->dims[s0 + i],
                  (long long)a->pads[i], (long long)a->pads[ns + i]);
    t->dims[s0 + i] = o;
  }
  return 0;
}

static int infer_conv(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0), *w = in_ty(n, 1);
  char s1[96], s2[96];
  if (x->rank < 3 || w->rank != x->rank)
    return ir_fail(err, errlen, "X must be %s and W [M,C/group,K1,...] of the same rank, got %s and %s",
                n->a.nhwc ? "[N,D1,...,C]" : "[N,C,D1,...]", TS(x, s1), TS(w, s2));
  if (same_dtype(n, 0, 1, err, errlen) || !is_numeric(x->dtype))
    return ir_fail(err, errlen, "X and W must be of one numeric type, got %s and %s", TS(x, s1), TS(w, s2));
  int ns = x->rank - 2;
  int64_t g = n->a.group, C = x->dims[channel_dim(n, x)], M = w->dims[0];
  if (g < 1 || g > MAX_ATTR || C % g || M % g)
    return ir_fail(err, errlen, "group %lld must divide input channels %lld and output channels %lld", (long long)g,
                (long long)C, (long long)M);
  if (w->dims[1] != C / g)
    return ir_fail(err, errlen, "W %s has %lld input channels per group; X %s with group %lld needs %lld", TS(w, s1),
                (long long)w->dims[1], TS(x, s2), (long long)g, (long long)(C / g));
  if (check_window(&n->a, ns, err, errlen))
    return -1;
  for (int i = 0; i < ns; i++)
    if (n->a.kernel[i] != w->dims[2 + i])
      return ir_fail(err, errlen, "kernel size %lld in spatial dim %d differs from W %s", (long long)n->a.kernel[i], i,
                  TS(w, s1));
  ir_type t = {x->dtype, x->rank, {x->dims[0]}};
  t.dims[channel_dim(n, x)] = M;
  if (window_dims(n, x, false, &t, err, errlen))
    return -1;
  int nin = epilogue_inputs(n, &t, err, errlen);
  if (nin < 0)
    return -1;
  if (nin > 3)
    return ir_fail(err, errlen, "%d inputs besides the residual: X, W and a bias at most", nin);
  if (nin == 3) {
    const ir_type *b = in_ty(n, 2);
    if (b->rank != 1 || b->dims[0] != M || b->dtype != x->dtype)
      return ir_fail(err, errlen, "bias must be %s[%lld], got %s", ir_dtypes[x->dtype].name, (long long)M, TS(b, s1));
  }
  *out = t;
  return 0;
}

static int infer_batchnorm(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96], s2[96];
  if (x->rank < 2 || !ir_dtype_is_float(x->dtype))
    return ir_fail(err, errlen, "X must be floating point [N,C,...], got %s", TS(x, s1));
  static const char *const what[] = {"", "scale", "bias", "mean", "var"};
  for (int i = 1; i < 5; i++) {
    const ir_type *p = in_ty(n, i);
    if (p->rank != 1 || p->dims[0] != x->dims[1] || !ir_dtype_is_float(p->dtype))
      return ir_fail(err, errlen, "%s must be floating point [%lld] (channels of X %s), got %s", what[i],
                  (long long)x->dims[1], TS(x, s1), TS(p, s2));
  }
  if (!(n->a.epsilon >= 0))
    return ir_fail(err, errlen, "epsilon %g must be >= 0", (double)n->a.epsilon);
  *out = *x;
  return 0;
}

static int infer_pool(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96];
  if (x->rank < 3 || !is_numeric(x->dtype) || (n->op == IR_OP_AVGPOOL && !ir_dtype_is_float(x->dtype)))
    return ir_fail(err, errlen, "X must be %s %s, got %s", n->op == IR_OP_AVGPOOL ? "floating point" : "numeric",
                n->a.nhwc ? "[N,D1,...,C]" : "[N,C,D1,...]", TS(x, s1));
  if (check_window(&n->a, x->rank - 2, err, errlen))
    return -1;
  ir_type t = *x;
  if (window_dims(n, x, n->a.ceil_mode, &t, err, errlen))
    return -1;
  *out = t;
  return 0;
}

static int infer_global_pool(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96];
  if (x->rank < 3 || !ir_dtype_is_float(x->dtype))
    return ir_fail(err, errlen, "X must be floating point %s, got %s", n->a.nhwc ? "[N,D1,...,C]" : "[N,C,D1,...]",
                   TS(x, s1));
  *out = *x;
  for (int i = 0; i < x->rank - 2; i++)
    out->dims[spatial0(n) + i] = 1;
  return 0;
}

static int infer_broadcast(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *a = in_ty(n, 0), *b = in_ty(n, 1);
  char s1[96], s2[96];
  if (a->dtype != b->dtype || !is_numeric(a->dtype))
    return ir_fail(err, errlen, "inputs must be of one numeric type, got %s and %s", TS(a, s1), TS(b, s2));
  if (ir_broadcast(a, b, out))
    return ir_fail(err, errlen, "shapes %s and %s do not broadcast", TS(a, s1), TS(b, s2));
  return 0;
}

static int infer_numeric(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  char s1[96];
  if (!is_numeric(in_ty(n, 0)->dtype))
    return ir_fail(err, errlen, "input must be numeric, got %s", TS(in_ty(n, 0), s1));
  *out = *in_ty(n, 0);
  return 0;
}

static int infer_floating(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  char s1[96];
  if (!ir_dtype_is_float(in_ty(n, 0)->dtype))
    return ir_fail(err, errlen, "input must be floating point, got %s", TS(in_ty(n, 0), s1));
  *out = *in_ty(n, 0);
  return 0;
}

static int infer_softmax(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96];
  if (infer_floating(n, out, err, errlen))
    return -1;
  if (n->a.axis < 0 || n->a.axis >= x->rank)
    return ir_fail(err, errlen, "axis %d out of range for %s", n->a.axis, TS(x, s1));
  return 0;
}

static int infer_identity(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  *out = *in_ty(n, 0);
  return 0;
}

static int infer_reshape(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96], s2[96];
  if (n->a.ndims < 0 || n->a.ndims > IR_MAX_DIMS)
    return ir_fail(err, errlen, "target rank %d out of range", n->a.ndims);
  ir_type t = ir_type_make(x->dtype, n->a.ndims, n->a.dims);
  if (safe_prod(t.dims, t.rank) != ir_nelems(x))
    return ir_fail(err, errlen, "cannot reshape %s into %s", TS(x, s1), TS(&t, s2));
  *out = t;
  return 0;
}

static int infer_transpose(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  bool seen[IR_MAX_DIMS] = {0};
  ir_type t = {x->dtype, x->rank, {0}};
  for (int i = 0; i < x->rank; i++) {
    int p = n->a.perm[i];
    if (p < 0 || p >= x->rank || seen[p])
      return ir_fail(err, errlen, "perm is not a permutation of the %d dims", x->rank);
    seen[p] = true;
    t.dims[i] = x->dims[p];
  }
  *out = t;
  return 0;
}

static int infer_concat(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96], s2[96];
  int ax = n->a.axis;
  if (ax < 0 || ax >= x->rank)
    return ir_fail(err, errlen, "axis %d out of range for %s", ax, TS(x, s1));
  ir_type t = *x;
  for (int i = 1; i < n->nin; i++) {
    const ir_type *y = in_ty(n, i);
    bool ok = y->dtype == x->dtype && y->rank == x->rank;
    for (int d = 0; ok && d < x->rank; d++)
      ok = d == ax || y->dims[d] == x->dims[d];
    if (!ok)
      return ir_fail(err, errlen, "input %d %s does not match input 0 %s outside axis %d", i, TS(y, s1), TS(x, s2), ax);
    t.dims[ax] += y->dims[ax];
    if (t.dims[ax] > IR_MAX_ELEMS)
      return ir_fail(err, errlen, "result too large");
  }
  *out = t;
  return 0;
}

static int infer_split(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96];
  int ax = n->a.axis;
  if (ax < 0 || ax >= x->rank)
    return ir_fail(err, errlen, "axis %d out of range for %s", ax, TS(x, s1));
  if (n->a.nsizes != n->nout || !n->a.sizes)
    return ir_fail(err, errlen, "%d sizes for %d outputs", n->a.nsizes, n->nout);
  int64_t sum = 0;
  for (int i = 0; i < n->nout; i++) {
    if (n->a.sizes[i] < 0 || n->a.sizes[i] > x->dims[ax])
      return ir_fail(err, errlen, "size %lld of output %d is out of range", (long long)n->a.sizes[i], i);
    sum += n->a.sizes[i];
    out[i] = *x;
    out[i].dims[ax] = n->a.sizes[i];
  }
  if (sum != x->dims[ax])
    return ir_fail(err, errlen, "sizes add up to %lld but axis %d of %s has %lld", (long long)sum, ax, TS(x, s1),
                (long long)x->dims[ax]);
  return 0;
}

static int infer_slice(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  const ir_attrs *a = &n->a;
  ir_type t = *x;
  for (int d = 0; d < x->rank; d++) {
    int64_t s = a->start[d], e = a->end[d], st = a->step[d], dim = x->dims[d];
    bool ok = st > 0 ? st <= IR_MAX_ELEMS && s >= 0 && s <= dim && e >= 0 && e <= dim
            : st < 0 ? st >= -IR_MAX_ELEMS && s >= -1 && s <= dim - 1 && e >= -1 && e <= dim - 1
                     : false;
    if (!ok)
      return ir_fail(err, errlen, "dim %d of size %lld: start %lld, end %lld, step %lld are not normalised", d,
                  (long long)dim, (long long)s, (long long)e, (long long)st);
    t.dims[d] = st > 0 ? (e > s ? (e - s + st - 1) / st : 0) : (s > e ? (s - e - st - 1) / -st : 0);
  }
  *out = t;
  return 0;
}

static int infer_pad(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  const ir_attrs *a = &n->a;
  ir_type t = *x;
  if (a->pad_mode > IR_PAD_WRAP)
    return ir_fail(err, errlen, "bad pad mode %d", (int)a->pad_mode);
  for (int d = 0; d < x->rank; d++) {
    int64_t b = a->pads[d], e = a->pads[x->rank + d], dim = x->dims[d];
    if (b < -IR_MAX_ELEMS || b > IR_MAX_ELEMS || e < -IR_MAX_ELEMS || e > IR_MAX_ELEMS || dim + b + e < 0)
      return ir_fail(err, errlen, "pads %lld, %lld do not fit dim %d of size %lld", (long long)b, (long long)e, d,
                  (long long)dim);
    if (a->pad_mode == IR_PAD_REFLECT && (b > dim - 1 || e > dim - 1) && (b > 0 || e > 0))
      return ir_fail(err, errlen, "reflect pads %lld, %lld need dim %d larger than them (it is %lld)", (long long)b,
                  (long long)e, d, (long long)dim);
    if (a->pad_mode != IR_PAD_CONSTANT && dim == 0 && (b > 0 || e > 0))
      return ir_fail(err, errlen, "%s padding of an empty dim %d", ir_pad_mode_names[a->pad_mode], d);
    int64_t in = a->interior[d];
    if (in < 0 || in > MAX_ATTR || (in && a->pad_mode != IR_PAD_CONSTANT))
      return ir_fail(err, errlen, "interior padding %lld of dim %d must be >= 0, in constant mode", (long long)in, d);
    dim += (dim > 0 ? dim - 1 : 0) * in;
    if (dim + b + e < 0)
      return ir_fail(err, errlen, "pads %lld, %lld do not fit dim %d", (long long)b, (long long)e, d);
    t.dims[d] = dim + b + e;
  }
  *out = t;
  return 0;
}

static int infer_shape(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  int64_t s = n->a.start[0], e = n->a.end[0];
  if (s < 0 || e < s || e > in_ty(n, 0)->rank)
    return ir_fail(err, errlen, "dims %lld..%lld out of range for rank %d", (long long)s, (long long)e,
                in_ty(n, 0)->rank);
  *out = (ir_type){IR_DT_I64, 1, {e - s}};
  return 0;
}

static int infer_gather(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0), *idx = in_ty(n, 1);
  char s1[96], s2[96];
  int ax = n->a.axis;
  if (idx->dtype != IR_DT_I32 && idx->dtype != IR_DT_I64)
    return ir_fail(err, errlen, "indices must be i32 or i64, got %s", TS(idx, s1));
  if (ax < 0 || ax >= x->rank)
    return ir_fail(err, errlen, "axis %d out of range for %s", ax, TS(x, s1));
  if (x->rank - 1 + idx->rank > IR_MAX_DIMS)
    return ir_fail(err, errlen, "result of gathering %s by %s has more than %d dims", TS(x, s1), TS(idx, s2),
                IR_MAX_DIMS);
  ir_type t = {x->dtype, 0, {0}};
  for (int i = 0; i < ax; i++)
    t.dims[t.rank++] = x->dims[i];
  for (int i = 0; i < idx->rank; i++)
    t.dims[t.rank++] = idx->dims[i];
  for (int i = ax + 1; i < x->rank; i++)
    t.dims[t.rank++] = x->dims[i];
  if (x->dims[ax] == 0 && ir_nelems(idx) > 0)
    return ir_fail(err, errlen, "gathering from an empty axis");
  *out = t;
  return 0;
}

static int infer_cast(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  if (n->a.to <= IR_DT_UNDEF || n->a.to >= IR_DT_COUNT)
    return ir_fail(err, errlen, "bad target dtype %d", (int)n->a.to);
  *out = *in_ty(n, 0);
  out->dtype = n->a.to;
  return 0;
}

static int infer_fill(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_attrs *a = &n->a;
  if (a->value_dtype <= IR_DT_UNDEF || a->value_dtype >= IR_DT_COUNT)
    return ir_fail(err, errlen, "bad value dtype %d", (int)a->value_dtype);
  if (a->ndims < 0 || a->ndims > IR_MAX_DIMS)
    return ir_fail(err, errlen, "rank %d out of range", a->ndims);
  *out = ir_type_make(a->value_dtype, a->ndims, a->dims);
  return 0;
}

static int infer_resize(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  const ir_attrs *a = &n->a;
  char s1[96];
  if (!is_numeric(x->dtype) || x->rank < 1)
    return ir_fail(err, errlen, "input must be numeric with rank >= 1, got %s", TS(x, s1));
  if (a->ndims != x->rank)
    return ir_fail(err, errlen, "output rank %d differs from input %s", a->ndims, TS(x, s1));
  if (a->resize_mode > IR_RESIZE_CUBIC || a->coord_mode > IR_COORD_TF_CROP_AND_RESIZE ||
      a->nearest_mode > IR_NEAREST_CEIL)
    return ir_fail(err, errlen, "bad resize mode");
  for (int d = 0; d < x->rank; d++)
    if (a->dims[d] < 0 || (a->dims[d] > 0 && x->dims[d] == 0) || !(a->scales[d] > 0))
      return ir_fail(err, errlen, "cannot resize dim %d from %lld to %lld (scale %g)", d, (long long)x->dims[d],
                  (long long)a->dims[d], a->scales[d]);
  *out = ir_type_make(x->dtype, a->ndims, a->dims);
  return 0;
}


// ---------------------------------------------------------------- rules of the op-coverage ops

static int infer_boolean(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  char s1[96];
  if (in_ty(n, 0)->dtype != IR_DT_BOOL)
    return ir_fail(err, errlen, "input must be bool, got %s", TS(in_ty(n, 0), s1));
  *out = *in_ty(n, 0);
  return 0;
}

// and, or, xor: bool inputs, broadcast.
static int infer_logical(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *a = in_ty(n, 0), *b = in_ty(n, 1);
  char s1[96], s2[96];
  if (a->dtype != IR_DT_BOOL || b->dtype != IR_DT_BOOL)
    return ir_fail(err, errlen, "inputs must be bool, got %s and %s", TS(a, s1), TS(b, s2));
  if (ir_broadcast(a, b, out))
    return ir_fail(err, errlen, "shapes %s and %s do not broadcast", TS(a, s1), TS(b, s2));
  return 0;
}

// Comparisons: one dtype (numeric; bool too for equal and not_equal), a bool result.
static int infer_compare(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *a = in_ty(n, 0), *b = in_ty(n, 1);
  char s1[96], s2[96];
  bool eq = n->op == IR_OP_EQUAL || n->op == IR_OP_NOT_EQUAL;
  if (a->dtype != b->dtype || !(is_numeric(a->dtype) || (eq && a->dtype == IR_DT_BOOL)))
    return ir_fail(err, errlen, "inputs must be of one %s type, got %s and %s", eq ? "numeric or bool" : "numeric",
                   TS(a, s1), TS(b, s2));
  if (ir_broadcast(a, b, out))
    return ir_fail(err, errlen, "shapes %s and %s do not broadcast", TS(a, s1), TS(b, s2));
  out->dtype = IR_DT_BOOL;
  return 0;
}

// Does a broadcast to exactly b's shape (one way)?
static bool broadcasts_to(const ir_type *a, const ir_type *b) {
  ir_type t;
  return a->rank <= b->rank && !ir_broadcast(a, b, &t) && t.rank == b->rank &&
         !memcmp(t.dims, b->dims, sizeof t.dims[0] * (size_t)t.rank);
}

static int infer_prelu(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0), *s = in_ty(n, 1);
  char s1[96], s2[96];
  if (x->dtype != s->dtype || !is_numeric(x->dtype))
    return ir_fail(err, errlen, "X and slope must be of one numeric type, got %s and %s", TS(x, s1), TS(s, s2));
  if (!broadcasts_to(s, x))
    return ir_fail(err, errlen, "slope %s does not broadcast to X %s", TS(s, s1), TS(x, s2));
  *out = *x;
  return 0;
}

static int infer_where(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *c = in_ty(n, 0), *x = in_ty(n, 1), *y = in_ty(n, 2);
  char s1[96], s2[96], s3[96];
  if (c->dtype != IR_DT_BOOL)
    return ir_fail(err, errlen, "condition must be bool, got %s", TS(c, s1));
  if (x->dtype != y->dtype)
    return ir_fail(err, errlen, "X %s and Y %s must have one dtype", TS(x, s1), TS(y, s2));
  ir_type t;
  if (ir_broadcast(x, y, &t) || ir_broadcast(c, &t, out))
    return ir_fail(err, errlen, "shapes %s, %s and %s do not broadcast", TS(c, s1), TS(x, s2), TS(y, s3));
  out->dtype = x->dtype;
  return 0;
}

static int infer_reduce(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  const ir_attrs *a = &n->a;
  char s1[96];
  if (!is_numeric(x->dtype) || (n->op == IR_OP_REDUCE_MEAN && !ir_dtype_is_float(x->dtype)))
    return ir_fail(err, errlen, "input must be %s, got %s", n->op == IR_OP_REDUCE_MEAN ? "floating point" : "numeric",
                   TS(x, s1));
  if (a->naxes < 0 || a->naxes > x->rank)
    return ir_fail(err, errlen, "%d axes for %s", a->naxes, TS(x, s1));
  bool red[IR_MAX_DIMS] = {0};
  for (int i = 0; i < a->naxes; i++) {
    if (a->axes[i] < 0 || a->axes[i] >= x->rank || (i && a->axes[i] <= a->axes[i - 1]))
      return ir_fail(err, errlen, "axes must be increasing dims of %s", TS(x, s1));
    red[a->axes[i]] = true;
    if (x->dims[a->axes[i]] == 0 && (n->op == IR_OP_REDUCE_MAX || n->op == IR_OP_REDUCE_MIN))
      return ir_fail(err, errlen, "max or min over an empty dim %d", a->axes[i]);
  }
  ir_type t = {x->dtype, 0, {0}};
  for (int d = 0; d < x->rank; d++)
    if (!red[d])
      t.dims[t.rank++] = x->dims[d];
    else if (a->keepdims)
      t.dims[t.rank++] = 1;
  *out = t;
  return 0;
}

// layernorm: X, scale[, bias]; normalises over dims axis..rank-1. Extra
// outputs (ONNX's Mean and InvStdDev) are X.shape[:axis] + ones.
static int infer_layernorm(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96], s2[96];
  if (!ir_dtype_is_float(x->dtype) || x->rank < 1)
    return ir_fail(err, errlen, "X must be floating point with rank >= 1, got %s", TS(x, s1));
  int ax = n->a.axis;
  if (ax < 0 || ax >= x->rank)
    return ir_fail(err, errlen, "axis %d out of range for %s", ax, TS(x, s1));
  if (!(n->a.epsilon >= 0))
    return ir_fail(err, errlen, "epsilon %g must be >= 0", (double)n->a.epsilon);
  ir_type norm = {x->dtype, x->rank - ax, {0}};
  memcpy(norm.dims, x->dims + ax, sizeof norm.dims[0] * (size_t)norm.rank);
  for (int i = 1; i < n->nin; i++) {
    const ir_type *p = in_ty(n, i);
    if (p->dtype != x->dtype || !broadcasts_to(p, &norm))
      return ir_fail(err, errlen, "%s %s must be %s broadcasting to %s", i == 1 ? "scale" : "bias", TS(p, s1),
                     ir_dtypes[x->dtype].name, TS(&norm, s2));
  }
  out[0] = *x;
  for (int i = 1; i < n->nout; i++) {
    out[i] = *x;
    for (int d = ax; d < x->rank; d++)
      out[i].dims[d] = 1;
  }
  return 0;
}

// reduce_window: a window over every dim of X (kernel, stride, dilation, pads
// have rank entries); padding holds the identity of the reduction.
static int infer_reduce_window(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  const ir_attrs *a = &n->a;
  char s1[96];
  if (!is_numeric(x->dtype))
    return ir_fail(err, errlen, "input must be numeric, got %s", TS(x, s1));
  if (a->reduce_kind > IR_RK_PROD)
    return ir_fail(err, errlen, "bad reduction kind %d", (int)a->reduce_kind);
  if (check_window(a, x->rank, err, errlen))
    return -1;
  ir_type t = *x;
  for (int d = 0; d < x->rank; d++) {
    t.dims[d] = ir_window_out(x->dims[d], a->kernel[d], a->stride[d], a->dilation[d], a->pads[d],
                              a->pads[x->rank + d], false);
    if (t.dims[d] < 0)
      t.dims[d] = 0;
  }
  *out = t;
  return 0;
}

static int infer_expand(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96], s2[96];
  if (n->a.ndims < 0 || n->a.ndims > IR_MAX_DIMS)
    return ir_fail(err, errlen, "target rank %d out of range", n->a.ndims);
  ir_type t = ir_type_make(x->dtype, n->a.ndims, n->a.dims);
  if (safe_prod(t.dims, t.rank) < 0 || !broadcasts_to(x, &t))
    return ir_fail(err, errlen, "%s does not broadcast to %s", TS(x, s1), TS(&t, s2));
  *out = t;
  return 0;
}

static int infer_tile(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  ir_type t = *x;
  for (int d = 0; d < x->rank; d++) {
    int64_t r = n->a.repeats[d];
    if (r < 0 || r > IR_MAX_ELEMS || (r && x->dims[d] > IR_MAX_ELEMS / r))
      return ir_fail(err, errlen, "repeat %lld of dim %d is out of range", (long long)r, d);
    t.dims[d] = x->dims[d] * r;
  }
  *out = t;
  return 0;
}

// conv_transpose: X [N,C,D...], W [C, M/group, K...], bias [M]. Each spatial
// output is stride*(D-1) + out_pad + (K-1)*dilation + 1 - pad_begin - pad_end.
static int infer_conv_transpose(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0), *w = in_ty(n, 1);
  const ir_attrs *a = &n->a;
  char s1[96], s2[96];
  if (x->rank < 3 || w->rank != x->rank)
    return ir_fail(err, errlen, "X must be [N,C,D1,...] and W [C,M/group,K1,...] of the same rank, got %s and %s",
                   TS(x, s1), TS(w, s2));
  if (same_dtype(n, 0, 1, err, errlen) || !ir_dtype_is_float(x->dtype))
    return ir_fail(err, errlen, "X and W must be of one floating type, got %s and %s", TS(x, s1), TS(w, s2));
  int ns = x->rank - 2;
  int64_t g = a->group, C = x->dims[1];
  if (g < 1 || g > MAX_ATTR || C % g || w->dims[0] != C)
    return ir_fail(err, errlen, "W %s must have X's %lld channels first, divisible by group %lld", TS(w, s1),
                   (long long)C, (long long)g);
  if (check_window(a, ns, err, errlen))
    return -1;
  int64_t M = w->dims[1] * g;
  ir_type t = {x->dtype, x->rank, {x->dims[0], M}};
  for (int i = 0; i < ns; i++) {
    if (a->kernel[i] != w->dims[2 + i])
      return ir_fail(err, errlen, "kernel size %lld in spatial dim %d differs from W %s", (long long)a->kernel[i], i,
                     TS(w, s1));
    if (a->out_pad[i] < 0 || a->out_pad[i] > MAX_ATTR)
      return ir_fail(err, errlen, "output padding %lld in spatial dim %d is out of range", (long long)a->out_pad[i], i);
    int64_t o = a->stride[i] * (x->dims[2 + i] - 1) + a->out_pad[i] + (a->kernel[i] - 1) * a->dilation[i] + 1 -
                a->pads[i] - a->pads[ns + i];
    if (x->dims[2 + i] < 1 || o < 1)
      return ir_fail(err, errlen, "spatial dim %d of %s gives an output of %lld", i, TS(x, s1), (long long)o);
    t.dims[2 + i] = o;
  }
  if (n->nin == 3) {
    const ir_type *b = in_ty(n, 2);
    if (b->rank != 1 || b->dims[0] != M || b->dtype != x->dtype)
      return ir_fail(err, errlen, "bias must be %s[%lld], got %s", ir_dtypes[x->dtype].name, (long long)M, TS(b, s1));
  }
  *out = t;
  return 0;
}

// An input of an RNN that must be exactly [d0, d1, d2(, d3)].
static int rnn_input(const ir_node *n, int i, const char *what, int rank, const int64_t *dims, char *err,
                     size_t errlen) {
  const ir_type *p = in_ty(n, i), *x = in_ty(n, 0);
  char s1[96], s2[96];
  ir_type want = ir_type_make(x->dtype, rank, dims);
  if (!ir_type_eq(p, &want))
    return ir_fail(err, errlen, "%s must be %s, got %s", what, TS(&want, s1), TS(p, s2));
  return 0;
}

// lstm: X [S,B,I], W [D,4H,I], R [D,4H,H], B [D,8H], initial_h, initial_c
// [D,B,H], P [D,3H], [sequence_lens int [B]] -> Y [S,D,B,H], Y_h, Y_c
// [D,B,H]. gru (3 gates) and rnn (1): no cell state nor peepholes -> Y, Y_h.
static int infer_rnn(const ir_node *n, ir_type *out, int gates, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  const ir_attrs *a = &n->a;
  char s1[96];
  if (x->rank != 3 || !ir_dtype_is_float(x->dtype))
    return ir_fail(err, errlen, "X must be floating point [seq, batch, input], got %s", TS(x, s1));
  if (a->rnn_dir > IR_RNN_BIDIRECTIONAL)
    return ir_fail(err, errlen, "bad direction %d", (int)a->rnn_dir);
  if (a->hidden < 1 || a->hidden > MAX_ATTR)
    return ir_fail(err, errlen, "hidden size %lld is out of range", (long long)a->hidden);
  if (!(a->rnn_clip >= 0))
    return ir_fail(err, errlen, "clip %g must be >= 0", (double)a->rnn_clip);
  for (int i = 0; i < 6; i++)
    if (a->rnn_act[i] >= IR_RNN_ACT_COUNT)
      return ir_fail(err, errlen, "bad activation %d", (int)a->rnn_act[i]);
  int64_t S = x->dims[0], B = x->dims[1], I = x->dims[2], H = a->hidden, D = a->rnn_dir == IR_RNN_BIDIRECTIONAL ? 2 : 1;
  if (rnn_input(n, 1, "W", 3, (int64_t[]){D, gates * H, I}, err, errlen) ||
      rnn_input(n, 2, "R", 3, (int64_t[]){D, gates * H, H}, err, errlen) ||
      rnn_input(n, 3, "B", 2, (int64_t[]){D, 2 * gates * H}, err, errlen) ||
      rnn_input(n, 4, "initial_h", 3, (int64_t[]){D, B, H}, err, errlen))
    return -1;
  if (gates == 4 && (rnn_input(n, 5, "initial_c", 3, (int64_t[]){D, B, H}, err, errlen) ||
                     rnn_input(n, 6, "P", 2, (int64_t[]){D, 3 * H}, err, errlen)))
    return -1;
  int lens = gates == 4 ? 7 : 5;
  if (n->nin > lens) {
    const ir_type *l = in_ty(n, lens);
    if (!ir_dtype_is_int(l->dtype) || l->rank != 1 || l->dims[0] != B)
      return ir_fail(err, errlen, "sequence_lens must be an integer [%lld], got %s", (long long)B, TS(l, s1));
  }
  out[0] = ir_type_make(x->dtype, 4, (int64_t[]){S, D, B, H});
  for (int i = 1; i < n->nout; i++)
    out[i] = ir_type_make(x->dtype, 3, (int64_t[]){D, B, H});
  return 0;
}

static int infer_lstm(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  return infer_rnn(n, out, 4, err, errlen);
}

static int infer_gru(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  return infer_rnn(n, out, 3, err, errlen);
}

static int infer_simple_rnn(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  return infer_rnn(n, out, 1, err, errlen);
}

// A quantisation scale and zero point: scale float, zero point of dtype zdt,
// both scalars (or [1]) or, per axis, [dims[axis]] of X.
static int quant_params(const ir_node *n, int is, int iz, const ir_type *x, int axis, ir_dtype zdt, char *err,
                        size_t errlen) {
  const ir_type *s = in_ty(n, is), *z = in_ty(n, iz);
  char s1[96], s2[96];
  if (!ir_dtype_is_float(s->dtype) || z->dtype != zdt || s->rank > 1 || z->rank != s->rank ||
      (s->rank == 1 && s->dims[0] != z->dims[0]))
    return ir_fail(err, errlen, "scale %s and zero point %s must be float and %s, of one shape (scalar or 1-D)",
                   TS(s, s1), TS(z, s2), ir_dtypes[zdt].name);
  if (s->rank == 1 && s->dims[0] != 1 && (axis < 0 || axis >= x->rank || s->dims[0] != x->dims[axis]))
    return ir_fail(err, errlen, "per-axis scale %s does not match axis %d of %s", TS(s, s1), axis, TS(x, s2));
  return 0;
}

static bool is_int8(ir_dtype dt) { return dt == IR_DT_I8 || dt == IR_DT_U8; }

// quantize_linear: X float, scale, zero point (its dtype is the output's).
static int infer_quantize(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0), *z = in_ty(n, 2);
  char s1[96];
  if (!ir_dtype_is_float(x->dtype) || !ir_dtype_is_int(z->dtype))
    return ir_fail(err, errlen, "X must be floating point and the zero point an integer, got %s and %s", TS(x, s1),
                   ir_dtypes[z->dtype].name);
  if (quant_params(n, 1, 2, x, n->a.axis, z->dtype, err, errlen))
    return -1;
  *out = *x;
  out->dtype = z->dtype;
  return 0;
}

// dequantize_linear: X integer, scale (its dtype is the output's), zero point of X's dtype.
static int infer_dequantize(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0);
  char s1[96];
  if (!ir_dtype_is_int(x->dtype))
    return ir_fail(err, errlen, "X must be an integer, got %s", TS(x, s1));
  if (quant_params(n, 1, 2, x, n->a.axis, x->dtype, err, errlen))
    return -1;
  *out = *x;
  out->dtype = in_ty(n, 1)->dtype;
  return 0;
}

// The shape of numpy matmul for a and b, whatever their dtypes.
static int matmul_shape(const ir_type *a, const ir_type *b, ir_type *out, char *err, size_t errlen) {
  ir_node tmp = {.op = IR_OP_MATMUL, .nin = 2};
  ir_value va = {.ty = *a}, vb = {.ty = *b};
  vb.ty.dtype = va.ty.dtype = IR_DT_I32;
  ir_value *in[2] = {&va, &vb};
  tmp.in = in;
  return infer_matmul(&tmp, out, err, errlen);
}

// A zero point that is a scalar or [n] (per row of A / column of B / output channel).
static int zero_point(const ir_type *z, ir_dtype dt, int64_t nper, const char *what, char *err, size_t errlen) {
  char s1[96];
  if (z->dtype != dt || z->rank > 1 || (z->rank == 1 && z->dims[0] != 1 && z->dims[0] != nper))
    return ir_fail(err, errlen, "%s %s must be %s, a scalar or [%lld]", what, TS(z, s1), ir_dtypes[dt].name,
                   (long long)nper);
  return 0;
}

// matmul_integer: A, B (i8 or u8), a_zero_point, b_zero_point -> i32.
static int infer_matmul_integer(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *a = in_ty(n, 0), *b = in_ty(n, 1);
  char s1[96], s2[96];
  if (!is_int8(a->dtype) || !is_int8(b->dtype))
    return ir_fail(err, errlen, "A and B must be i8 or u8, got %s and %s", TS(a, s1), TS(b, s2));
  if (matmul_shape(a, b, out, err, errlen))
    return -1;
  if (zero_point(in_ty(n, 2), a->dtype, a->rank >= 2 ? a->dims[a->rank - 2] : 1, "a_zero_point", err, errlen) ||
      zero_point(in_ty(n, 3), b->dtype, b->dims[b->rank - 1], "b_zero_point", err, errlen))
    return -1;
  out->dtype = IR_DT_I32;
  return 0;
}

// qlinear_matmul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp.
static int infer_qlinear_matmul(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *a = in_ty(n, 0), *b = in_ty(n, 3), *yz = in_ty(n, 7);
  char s1[96], s2[96];
  if (!is_int8(a->dtype) || !is_int8(b->dtype) || !is_int8(yz->dtype))
    return ir_fail(err, errlen, "a, b and y must be i8 or u8, got %s, %s and %s", TS(a, s1), TS(b, s2),
                   ir_dtypes[yz->dtype].name);
  if (matmul_shape(a, b, out, err, errlen))
    return -1;
  int64_t M = a->rank >= 2 ? a->dims[a->rank - 2] : 1, N = b->dims[b->rank - 1];
  if (zero_point(in_ty(n, 2), a->dtype, M, "a_zero_point", err, errlen) ||
      zero_point(in_ty(n, 5), b->dtype, N, "b_zero_point", err, errlen) ||
      zero_point(yz, yz->dtype, 1, "y_zero_point", err, errlen))
    return -1;
  for (int k = 0; k < 3; k++) { // x/a, w/b and y scales
    int i = (int[]){1, 4, 6}[k];
    const ir_type *s = in_ty(n, i);
    if (!ir_dtype_is_float(s->dtype) || s->rank > 1)
      return ir_fail(err, errlen, "scale %d %s must be a float scalar or 1-D", i, TS(s, s1));
  }
  out->dtype = yz->dtype;
  return 0;
}

// The shape of conv for x and w (any dtypes) with n's window.
static int conv_shape(const ir_node *n, const ir_type *x, const ir_type *w, ir_type *out, char *err, size_t errlen) {
  ir_node tmp = {.op = IR_OP_CONV, .nin = 2, .a = n->a};
  tmp.a.act = IR_ACT_NONE, tmp.a.residual = false; // nhwc as n's (the layout pass sets it)
  ir_value vx = {.ty = *x}, vw = {.ty = *w};
  vx.ty.dtype = vw.ty.dtype = IR_DT_I32;
  ir_value *in[2] = {&vx, &vw};
  tmp.in = in;
  return infer_conv(&tmp, out, err, errlen);
}

// conv_integer: x, w (i8 or u8), x_zero_point (scalar), w_zero_point (scalar or [M]) -> i32.
static int infer_conv_integer(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0), *w = in_ty(n, 1);
  char s1[96], s2[96];
  if (!is_int8(x->dtype) || !is_int8(w->dtype))
    return ir_fail(err, errlen, "x and w must be i8 or u8, got %s and %s", TS(x, s1), TS(w, s2));
  if (conv_shape(n, x, w, out, err, errlen) ||
      zero_point(in_ty(n, 2), x->dtype, 1, "x_zero_point", err, errlen) ||
      zero_point(in_ty(n, 3), w->dtype, w->dims[0], "w_zero_point", err, errlen))
    return -1;
  out->dtype = IR_DT_I32;
  return 0;
}

// qlinear_conv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [B i32 [M]].
static int infer_qlinear_conv(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  const ir_type *x = in_ty(n, 0), *w = in_ty(n, 3), *yz = in_ty(n, 7);
  char s1[96], s2[96];
  if (!is_int8(x->dtype) || !is_int8(w->dtype) || !is_int8(yz->dtype))
    return ir_fail(err, errlen, "x, w and y must be i8 or u8, got %s, %s and %s", TS(x, s1), TS(w, s2),
                   ir_dtypes[yz->dtype].name);
  if (conv_shape(n, x, w, out, err, errlen))
    return -1;
  int64_t M = w->dims[0];
  if (zero_point(in_ty(n, 2), x->dtype, 1, "x_zero_point", err, errlen) ||
      zero_point(in_ty(n, 5), w->dtype, M, "w_zero_point", err, errlen) ||
      zero_point(yz, yz->dtype, 1, "y_zero_point", err, errlen))
    return -1;
  for (int k = 0; k < 3; k++) { // x/a, w/b and y scales
    int i = (int[]){1, 4, 6}[k];
    const ir_type *s = in_ty(n, i);
    if (!ir_dtype_is_float(s->dtype) || s->rank > 1 || (s->rank == 1 && s->dims[0] != 1 && s->dims[0] != M))
      return ir_fail(err, errlen, "scale %d %s must be a float scalar or [%lld]", i, TS(s, s1), (long long)M);
  }
  if (n->nin == 9) {
    const ir_type *b = in_ty(n, 8);
    if (b->dtype != IR_DT_I32 || b->rank != 1 || b->dims[0] != M)
      return ir_fail(err, errlen, "bias must be i32[%lld], got %s", (long long)M, TS(b, s1));
  }
  out->dtype = yz->dtype;
  return 0;
}

static infer_fn *const rules[IR_OP_COUNT] = {
#define X(e, name, in, inmax, out, outmax, rule, fold, attrs) [e] = infer_##rule,
    IR_OPS(X)
#undef X
};

// ---------------------------------------------------------------- entry points

int ir_infer(const ir_node *n, ir_type *out, char *err, size_t errlen) {
  assert(n->op < IR_OP_COUNT);
  const ir_op_info *info = &ir_ops[n->op];
  if (n->nin < info->min_in || n->nin > info->max_in)
    return ir_fail(err, errlen, "%d inputs, %s takes %d to %d", n->nin, info->name, info->min_in, info->max_in);
  if (n->nout < info->min_out || n->nout > info->max_out)
    return ir_fail(err, errlen, "%d outputs, %s gives %d to %d", n->nout, info->name, info->min_out, info->max_out);
  for (int i = 0; i < n->nin; i++) {
    const ir_type *t = in_ty(n, i);
    if (t->dtype <= IR_DT_UNDEF || t->dtype >= IR_DT_COUNT || t->rank < 0 || t->rank > IR_MAX_DIMS)
      return ir_fail(err, errlen, "input %d ('%s') has no type yet", i, n->in[i]->name);
  }
  if (rules[n->op](n, out, err, errlen))
    return -1;
  for (int i = 0; i < n->nout; i++) {
    char s1[96];
    if (out[i].rank < 0 || out[i].rank > IR_MAX_DIMS || safe_prod(out[i].dims, out[i].rank) < 0)
      return ir_fail(err, errlen, "output %d %s is larger than %lld elements", i, TS(&out[i], s1),
                  (long long)IR_MAX_ELEMS);
  }
  return 0;
}

int ir_infer_node(ir_node *n, char *err, size_t errlen) {
  ir_type one, *out = n->nout == 1 ? &one : malloc((size_t)n->nout * sizeof *out);
  if (!out)
    abort();
  char msg[IR_ERR_LEN], where[IR_ERR_LEN / 2];
  int rc = ir_infer(n, out, msg, sizeof msg);
  if (rc)
    snprintf(err, errlen, "%s: %s", ir_node_where(n, where, sizeof where), msg);
  else
    for (int i = 0; i < n->nout; i++)
      n->out[i]->ty = out[i];
  if (out != &one)
    free(out);
  return rc;
}

int ir_infer_graph(ir_graph *g, char *err, size_t errlen) {
  for (int i = 0; i < g->nnodes; i++)
    if (ir_infer_node(g->nodes[i], err, errlen))
      return -1;
  return 0;
}
