// The constant evaluator: computes a node whose inputs are all constants and
// turns its outputs into constants. The importer runs it on every node as it
// arrives, so the shape arithmetic exporters emit (Shape, Gather, Unsqueeze,
// Concat, Cast, Mul, ... ending in a Reshape target) becomes plain numbers;
// the fold pass reuses it on whole graphs.
//
// Data movement is exact for every dtype. Arithmetic is folded for integers
// (wrapping, division truncating toward zero) and for f32/f64 (IEEE, each
// operation rounded once: the same bits on every host); f16/bf16 arithmetic
// is left to the chip.
#include "ir/ir.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// 0: outputs written; 1: cannot fold after all; -1: error in err.
typedef int fold_fn(const ir_node *n, void **out, char *err, size_t errlen);
#define fold_none NULL


static size_t esize(const ir_type *t) { return (size_t)ir_dtypes[t->dtype].bytes; }

// Row-major strides of t, in elements.
static void strides(const ir_type *t, int64_t *s) {
  int64_t k = 1;
  for (int i = t->rank - 1; i >= 0; i--) {
    s[i] = k;
    k *= t->dims[i];
  }
}

// Walks every element of an output of the given dims in row-major order,
// keeping the matching flat offset into each of n sources (per-dim strides
// sa[k][d], which are 0 on broadcast dims) up to date.
typedef struct {
  int rank, nsrc;
  const int64_t *dims;
  int64_t idx[IR_MAX_DIMS];
  int64_t off[2];
  int64_t (*st)[IR_MAX_DIMS];
} walker;

static void walk_next(walker *w) {
  for (int d = w->rank - 1; d >= 0; d--) {
    w->idx[d]++;
    for (int k = 0; k < w->nsrc; k++)
      w->off[k] += w->st[k][d];
    if (w->idx[d] < w->dims[d])
      return;
    for (int k = 0; k < w->nsrc; k++)
      w->off[k] -= w->st[k][d] * w->dims[d];
    w->idx[d] = 0;
  }
}

// ---------------------------------------------------------------- evaluators

static int fold_copy(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  memcpy(out[0], n->in[0]->data, ir_nbytes(&n->out[0]->ty));
  return 0;
}

static int fold_transpose(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *x = &n->in[0]->ty, *y = &n->out[0]->ty;
  int64_t sx[IR_MAX_DIMS], st[1][IR_MAX_DIMS];
  strides(x, sx);
  for (int i = 0; i < y->rank; i++)
    st[0][i] = sx[n->a.perm[i]];
  walker w = {.rank = y->rank, .nsrc = 1, .dims = y->dims, .st = st};
  size_t es = esize(x);
  const uint8_t *src = n->in[0]->data;
  uint8_t *dst = out[0];
  for (int64_t o = 0, N = ir_nelems(y); o < N; o++, walk_next(&w))
    memcpy(dst + (size_t)o * es, src + (size_t)w.off[0] * es, es);
  return 0;
}

static int fold_concat(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *y = &n->out[0]->ty;
  int ax = n->a.axis;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++)
    outer *= y->dims[d];
  for (int d = ax + 1; d < y->rank; d++)
    inner *= y->dims[d];
  size_t es = esize(y);
  uint8_t *dst = out[0];
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < n->nin; i++) {
      size_t chunk = (size_t)(n->in[i]->ty.dims[ax] * inner) * es;
      memcpy(dst, (const uint8_t *)n->in[i]->data + (size_t)o * chunk, chunk);
      dst += chunk;
    }
  return 0;
}

static int fold_split(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *x = &n->in[0]->ty;
  int ax = n->a.axis;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++)
    outer *= x->dims[d];
  for (int d = ax + 1; d < x->rank; d++)
    inner *= x->dims[d];
  size_t es = esize(x);
  const uint8_t *src = n->in[0]->data;
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < n->nout; i++) {
      size_t chunk = (size_t)(n->a.sizes[i] * inner) * es;
      memcpy((uint8_t *)out[i] + (size_t)o * chunk, src, chunk);
      src += chunk;
    }
  return 0;
}

static int fold_slice(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *x = &n->in[0]->ty, *y = &n->out[0]->ty;
  int64_t sx[IR_MAX_DIMS], st[1][IR_MAX_DIMS], base = 0;
  strides(x, sx);
  for (int d = 0; d < x->rank; d++) {
    st[0][d] = sx[d] * n->a.step[d];
    base += n->a.start[d] * sx[d];
  }
  int64_t N = ir_nelems(y);
  if (!N)
    return 0;
  walker w = {.rank = y->rank, .nsrc = 1, .dims = y->dims, .off = {base}, .st = st};
  size_t es = esize(x);
  const uint8_t *src = n->in[0]->data;
  uint8_t *dst = out[0];
  for (int64_t o = 0; o < N; o++, walk_next(&w))
    memcpy(dst + (size_t)o * es, src + (size_t)w.off[0] * es, es);
  return 0;
}

static int fold_shape(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  for (int64_t d = n->a.start[0], i = 0; d < n->a.end[0]; d++, i++)
    ir_set_int(out[0], IR_DT_I64, i, n->in[0]->ty.dims[d]);
  return 0;
}

static int fold_gather(const ir_node *n, void **out, char *err, size_t errlen) {
  const ir_type *x = &n->in[0]->ty, *it = &n->in[1]->ty;
  int ax = n->a.axis;
  int64_t outer = 1, inner = 1, dim = x->dims[ax], ni = ir_nelems(it);
  for (int d = 0; d < ax; d++)
    outer *= x->dims[d];
  for (int d = ax + 1; d < x->rank; d++)
    inner *= x->dims[d];
  size_t row = (size_t)inner * esize(x);
  const uint8_t *src = n->in[0]->data;
  uint8_t *dst = out[0];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < ni; j++) {
      int64_t k = ir_get_int(n->in[1]->data, it->dtype, j);
      if (k < -dim || k >= dim)
        return ir_fail(err, errlen, "index %lld out of range for axis %d of size %lld", (long long)k, ax,
                    (long long)dim);
      if (k < 0)
        k += dim;
      memcpy(dst, src + (size_t)(o * dim + k) * row, row);
      dst += row;
    }
  return 0;
}

static int fold_cast(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  ir_dtype from = n->in[0]->ty.dtype, to = n->a.to;
  const void *src = n->in[0]->data;
  for (int64_t i = 0, N = ir_nelems(&n->out[0]->ty); i < N; i++) {
    if (ir_dtype_is_float(to) && ir_dtype_is_float(from))
      ir_set_float(out[0], to, i, ir_get_float(src, from, i));
    else if (to == IR_DT_F32 && from == IR_DT_U64) // one rounding, not two via double
      ir_set_float(out[0], to, i, (float)(uint64_t)ir_get_int(src, from, i));
    else if (to == IR_DT_F32)
      ir_set_float(out[0], to, i, (float)ir_get_int(src, from, i));
    else if (ir_dtype_is_float(to))
      ir_set_float(out[0], to, i, ir_get_float(src, from, i));
    else if (ir_dtype_is_float(from))
      ir_set_float(out[0], to, i, ir_get_float(src, from, i)); // truncates, saturating
    else
      ir_set_int(out[0], to, i, ir_get_int(src, from, i));
  }
  return 0;
}

static int fold_fill(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  size_t es = esize(&n->out[0]->ty);
  for (int64_t i = 0, N = ir_nelems(&n->out[0]->ty); i < N; i++)
    memcpy((uint8_t *)out[0] + (size_t)i * es, n->a.value, es);
  return 0;
}


// Strides of input k of n, aligned to the output y (0 on broadcast dims).
static void bcast_strides(const ir_type *x, const ir_type *y, int64_t *st) {
  int64_t s[IR_MAX_DIMS];
  strides(x, s);
  for (int d = 0; d < y->rank; d++) {
    int dx = x->rank - y->rank + d;
    st[d] = dx >= 0 && x->dims[dx] != 1 ? s[dx] : 0;
  }
}

// neg, abs, not on any integer, bool and f32/f64; sqrt and reciprocal on
// f32/f64 (IEEE, correctly rounded: the same bits on every host).
static int fold_unary(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  ir_dtype dt = n->out[0]->ty.dtype;
  bool fl = dt == IR_DT_F32 || dt == IR_DT_F64;
  if (!fl && !ir_dtype_is_int(dt) && dt != IR_DT_BOOL)
    return 1;
  const void *x = n->in[0]->data;
  for (int64_t i = 0, N = ir_nelems(&n->out[0]->ty); i < N; i++) {
    if (fl) {
      double v = ir_get_float(x, dt, i), r;
      float f = (float)v;
      switch (n->op) {
      case IR_OP_NEG: r = -v; break;
      case IR_OP_ABS: r = fabs(v); break;
      case IR_OP_SQRT: r = dt == IR_DT_F32 ? (double)sqrtf(f) : sqrt(v); break;
      case IR_OP_RECIPROCAL: r = dt == IR_DT_F32 ? (double)(1.0f / f) : 1.0 / v; break;
      default: return 1;
      }
      ir_set_float(out[0], dt, i, r);
    } else {
      int64_t v = ir_get_int(x, dt, i);
      uint64_t u = (uint64_t)v;
      switch (n->op) {
      case IR_OP_NEG: v = (int64_t)(0 - u); break;
      case IR_OP_ABS: v = v < 0 ? (int64_t)(0 - u) : v; break;
      case IR_OP_NOT: v = !v; break;
      default: return 1;
      }
      ir_set_int(out[0], dt, i, v);
    }
  }
  return 0;
}

// Comparisons and logical ops (bool results); every dtype but f16/bf16.
static int fold_compare(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *y = &n->out[0]->ty;
  ir_dtype dt = n->in[0]->ty.dtype;
  if (dt == IR_DT_F16 || dt == IR_DT_BF16)
    return 1;
  bool fl = ir_dtype_is_float(dt), uns = ir_dtypes[dt].kind == IR_DK_UINT;
  int64_t st[2][IR_MAX_DIMS];
  for (int k = 0; k < 2; k++)
    bcast_strides(&n->in[k]->ty, y, st[k]);
  walker w = {.rank = y->rank, .nsrc = 2, .dims = y->dims, .st = st};
  const void *a = n->in[0]->data, *b = n->in[1]->data;
  for (int64_t o = 0, N = ir_nelems(y); o < N; o++, walk_next(&w)) {
    int c; // -1, 0, 1; 2 unordered (NaN)
    if (fl) {
      double p = ir_get_float(a, dt, w.off[0]), q = ir_get_float(b, dt, w.off[1]);
      c = p < q ? -1 : p > q ? 1 : p == q ? 0 : 2;
    } else if (uns) {
      uint64_t p = (uint64_t)ir_get_int(a, dt, w.off[0]), q = (uint64_t)ir_get_int(b, dt, w.off[1]);
      c = p < q ? -1 : p > q;
    } else {
      int64_t p = ir_get_int(a, dt, w.off[0]), q = ir_get_int(b, dt, w.off[1]);
      c = p < q ? -1 : p > q;
    }
    bool p = ir_get_int(a, dt, w.off[0]) != 0, q = ir_get_int(b, dt, w.off[1]) != 0, r;
    switch (n->op) {
    case IR_OP_AND: r = p && q; break;
    case IR_OP_OR: r = p || q; break;
    case IR_OP_XOR: r = p != q; break;
    case IR_OP_EQUAL: r = c == 0; break;
    case IR_OP_NOT_EQUAL: r = c != 0; break;
    case IR_OP_LESS: r = c == -1; break;
    case IR_OP_LESS_EQUAL: r = c == -1 || c == 0; break;
    case IR_OP_GREATER: r = c == 1; break;
    default: r = c == 1 || c == 0; break;
    }
    ((uint8_t *)out[0])[o] = r;
  }
  return 0;
}

static int fold_where(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *y = &n->out[0]->ty;
  int64_t st[3][IR_MAX_DIMS];
  for (int k = 0; k < 3; k++)
    bcast_strides(&n->in[k]->ty, y, st[k]);
  // The walker keeps two offsets; the condition's is computed from the index.
  walker w = {.rank = y->rank, .nsrc = 2, .dims = y->dims, .st = st + 1};
  size_t es = esize(y);
  const uint8_t *c = n->in[0]->data, *a = n->in[1]->data, *b = n->in[2]->data;
  for (int64_t o = 0, N = ir_nelems(y); o < N; o++, walk_next(&w)) {
    int64_t co = 0;
    for (int d = 0; d < y->rank; d++)
      co += w.idx[d] * st[0][d];
    memcpy((uint8_t *)out[0] + (size_t)o * es, c[co] ? a + (size_t)w.off[0] * es : b + (size_t)w.off[1] * es, es);
  }
  return 0;
}

// expand and tile: every output element copies one input element.
static int fold_expand(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *x = &n->in[0]->ty, *y = &n->out[0]->ty;
  int64_t st[1][IR_MAX_DIMS];
  bcast_strides(x, y, st[0]);
  walker w = {.rank = y->rank, .nsrc = 1, .dims = y->dims, .st = st};
  size_t es = esize(y);
  for (int64_t o = 0, N = ir_nelems(y); o < N; o++, walk_next(&w))
    memcpy((uint8_t *)out[0] + (size_t)o * es, (const uint8_t *)n->in[0]->data + (size_t)w.off[0] * es, es);
  return 0;
}

static int fold_tile(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *x = &n->in[0]->ty, *y = &n->out[0]->ty;
  int64_t sx[IR_MAX_DIMS], idx[IR_MAX_DIMS] = {0};
  strides(x, sx);
  size_t es = esize(y);
  for (int64_t o = 0, N = ir_nelems(y); o < N; o++) {
    int64_t off = 0;
    for (int d = 0; d < y->rank; d++)
      off += (idx[d] % x->dims[d]) * sx[d];
    memcpy((uint8_t *)out[0] + (size_t)o * es, (const uint8_t *)n->in[0]->data + (size_t)off * es, es);
    for (int d = y->rank - 1; d >= 0 && ++idx[d] == y->dims[d]; d--)
      idx[d] = 0;
  }
  return 0;
}

// reduce_sum/max/min/prod on integers only (shape arithmetic: the product
// of a shape); float reductions depend on the order and are left to the chip.
static int fold_reduce(const ir_node *n, void **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  const ir_type *x = &n->in[0]->ty, *y = &n->out[0]->ty;
  ir_dtype dt = x->dtype;
  if (!ir_dtype_is_int(dt))
    return 1;
  bool red[IR_MAX_DIMS] = {0}, uns = ir_dtypes[dt].kind == IR_DK_UINT;
  for (int i = 0; i < n->a.naxes; i++)
    red[n->a.axes[i]] = true;
  // Output strides per input dim (0 on reduced dims).
  int64_t so[IR_MAX_DIMS], k = 1, idx[IR_MAX_DIMS] = {0};
  for (int d = x->rank - 1; d >= 0; d--) {
    so[d] = red[d] ? 0 : k;
    k *= red[d] ? 1 : x->dims[d];
  }
  int64_t NY = ir_nelems(y);
  uint8_t *seen = calloc((size_t)NY + 1, 1);
  if (!seen)
    abort();
  for (int64_t o = 0; o < NY; o++) // identity elements
    ir_set_int(out[0], dt, o, n->op == IR_OP_REDUCE_PROD);
  for (int64_t i = 0, N = ir_nelems(x); i < N; i++) {
    int64_t o = 0;
    for (int d = 0; d < x->rank; d++)
      o += idx[d] * so[d];
    int64_t v = ir_get_int(n->in[0]->data, dt, i), r = ir_get_int(out[0], dt, o);
    uint64_t uv = (uint64_t)v, ur = (uint64_t)r;
    switch (n->op) {
    case IR_OP_REDUCE_SUM: r = (int64_t)(ur + uv); break;
    case IR_OP_REDUCE_PROD: r = (int64_t)(ur * uv); break;
    case IR_OP_REDUCE_MAX: r = !seen[o] || (uns ? uv > ur : v > r) ? v : r; break;
    default: r = !seen[o] || (uns ? uv < ur : v < r) ? v : r; break;
    }
    seen[o] = 1;
    ir_set_int(out[0], dt, o, r);
    for (int d = x->rank - 1; d >= 0 && ++idx[d] == x->dims[d]; d--)
      idx[d] = 0;
  }
  free(seen);
  return 0;
}

static int64_t arith_int(ir_op op, int64_t a, int64_t b, bool is_unsigned) {
  uint64_t x = (uint64_t)a, y = (uint64_t)b; // wrapping arithmetic without UB
  switch (op) {
  case IR_OP_ADD: return (int64_t)(x + y);
  case IR_OP_SUB: return (int64_t)(x - y);
  case IR_OP_MUL: return (int64_t)(x * y);
  case IR_OP_MAX: return is_unsigned ? (int64_t)(x > y ? x : y) : a > b ? a : b;
  case IR_OP_MIN: return is_unsigned ? (int64_t)(x < y ? x : y) : a < b ? a : b;
  default:
    assert(op == IR_OP_DIV && b != 0);
    if (is_unsigned)
      return (int64_t)(x / y);
    if (a == INT64_MIN && b == -1)
      return INT64_MIN;
    return a / b;
  }
}

static int fold_arith(const ir_node *n, void **out, char *err, size_t errlen) {
  const ir_type *y = &n->out[0]->ty;
  ir_dtype dt = y->dtype;
  if (!ir_dtype_is_int(dt) && dt != IR_DT_F32 && dt != IR_DT_F64)
    return 1;
  int64_t st[2][IR_MAX_DIMS];
  for (int k = 0; k < 2; k++) {
    const ir_type *x = &n->in[k]->ty;
    int64_t s[IR_MAX_DIMS];
    strides(x, s);
    for (int d = 0; d < y->rank; d++) {
      int dx = x->rank - y->rank + d;
      st[k][d] = dx >= 0 && x->dims[dx] != 1 ? s[dx] : 0;
    }
  }
  walker w = {.rank = y->rank, .nsrc = 2, .dims = y->dims, .st = st};
  const void *a = n->in[0]->data, *b = n->in[1]->data;
  bool is_unsigned = ir_dtypes[dt].kind == IR_DK_UINT;
  for (int64_t o = 0, N = ir_nelems(y); o < N; o++, walk_next(&w)) {
    if (dt == IR_DT_F32 || dt == IR_DT_F64) {
      // f32 operations in float: one rounding to f32, as the model means.
      double p = ir_get_float(a, dt, w.off[0]), q = ir_get_float(b, dt, w.off[1]);
      float pf = (float)p, qf = (float)q;
      double r;
      switch (n->op) {
      case IR_OP_ADD: r = dt == IR_DT_F32 ? (double)(pf + qf) : p + q; break;
      case IR_OP_SUB: r = dt == IR_DT_F32 ? (double)(pf - qf) : p - q; break;
      case IR_OP_MUL: r = dt == IR_DT_F32 ? (double)(pf * qf) : p * q; break;
      // max/min propagate NaN, as ONNX Max/Min and XLA maximum/minimum do.
      case IR_OP_MAX: r = p != p || q != q ? NAN : p > q ? p : q; break;
      case IR_OP_MIN: r = p != p || q != q ? NAN : p < q ? p : q; break;
      default: r = dt == IR_DT_F32 ? (double)(pf / qf) : p / q; break;
      }
      ir_set_float(out[0], dt, o, r);
    } else {
      int64_t p = ir_get_int(a, dt, w.off[0]), q = ir_get_int(b, dt, w.off[1]);
      if (n->op == IR_OP_DIV && q == 0)
        return ir_fail(err, errlen, "integer division by zero in a constant expression");
      ir_set_int(out[0], dt, o, arith_int(n->op, p, q, is_unsigned));
    }
  }
  return 0;
}

static fold_fn *const folds[IR_OP_COUNT] = {
#define X(e, name, in, inmax, out, outmax, rule, fold, attrs) [e] = fold_##fold,
    IR_OPS(X)
#undef X
};

// ---------------------------------------------------------------- entry points

bool ir_can_fold(const ir_node *n) {
  if (!folds[n->op])
    return false;
  uint64_t bytes = 0;
  for (int i = 0; i < n->nout; i++) {
    if (n->out[i]->ty.dtype == IR_DT_UNDEF)
      return false;
    bytes += ir_nbytes(&n->out[i]->ty);
  }
  if (bytes > IR_FOLD_MAX_BYTES)
    return false;
  if (n->op == IR_OP_SHAPE) // needs the input's shape only, which is static
    return true;
  for (int i = 0; i < n->nin; i++)
    if (!n->in[i]->data)
      return false;
  return true;
}

int ir_fold_node(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  if (!ir_can_fold(n))
    return 0;
  void *one, **out = n->nout == 1 ? &one : calloc((size_t)n->nout, sizeof *out);
  if (!out)
    abort();
  for (int i = 0; i < n->nout; i++)
    if (!(out[i] = calloc(ir_nbytes(&n->out[i]->ty) + 1, 1)))
      abort();
  char msg[IR_ERR_LEN], where[IR_ERR_LEN / 2];
  int rc = folds[n->op](n, out, msg, sizeof msg);
  if (rc == 0) {
    for (int i = 0; i < n->nout; i++)
      n->out[i]->data = out[i];
    ir_remove_node(g, n);
  } else {
    if (rc < 0)
      snprintf(err, errlen, "%s: %s", ir_node_where(n, where, sizeof where), msg);
    for (int i = 0; i < n->nout; i++)
      free(out[i]);
  }
  if (out != &one)
    free(out);
  return rc == 0 ? 1 : rc > 0 ? 0 : -1;
}

int ir_fold_graph(ir_graph *g, char *err, size_t errlen) {
  int count = 0;
  for (int i = 0; i < g->nnodes;) {
    int rc = ir_fold_node(g, g->nodes[i], err, errlen);
    if (rc < 0)
      return -1;
    if (rc)
      count++; // the node is gone: slot i now holds the next one
    else
      i++;
  }
  return count;
}
