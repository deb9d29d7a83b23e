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

static int64_t arith_int(ir_op op, int64_t a, int64_t b, bool is_unsigned) {
  uint64_t x = (uint64_t)a, y = (uint64_t)b; // wrapping arithmetic without UB
  switch (op) {
  case IR_OP_ADD: return (int64_t)(x + y);
  case IR_OP_SUB: return (int64_t)(x - y);
  case IR_OP_MUL: return (int64_t)(x * y);
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
