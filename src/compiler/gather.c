// Gather rewritten into work the chip has: a one-hot matrix of the indices
// (compare against an iota on the VPU) times the data on the MXU. The
// indices are run-time values, and the scalar unit cannot read HBM, so a
// gather by DMA addresses is not possible; a one-hot product is exact (one
// 1.0 per row; the MXU runs such a matmul at precision highest, whose three
// bf16 parts hold an fp32 exactly) and makes embeddings a matmul against
// constant weights.
//
//   f   = cast(indices, f32); f = where(f < 0, f + K, f)     (negative indices)
//   oh  = cast(reshape(f, [N, 1]) == iota(K), f32)            [N, K]
//   out = oh @ data viewed as [K, rest]   (axis 0), or with the axis moved to
//         the front by a transpose and moved back after.
// An index outside [-K, K) selects nothing: its row is zeros.
#include "compiler/compiler.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  ir_graph *g;
  ir_node *n;
  char *err;
  size_t errlen;
  bool failed;
} gb;

static ir_value *node(gb *b, ir_op op, ir_value *const *in, int nin, const ir_attrs *a, const char *what) {
  if (b->failed) return NULL;
  char name[512], msg[CC_ERR_LEN], where[160];
  snprintf(name, sizeof name, "%s/%s", b->n->name[0] ? b->n->name : "gather", what);
  const char *out_name = name;
  ir_node *m = ir_add_node(b->g, op, name, in, nin, 1, &out_name);
  m->src_index = b->n->src_index;
  if (a) m->a = *a;
  if (ir_infer_node(m, msg, sizeof msg)) {
    snprintf(b->err, b->errlen, "%s: %s", ir_node_where(b->n, where, sizeof where), msg);
    b->failed = true;
    return NULL;
  }
  return m->out[0];
}

static ir_value *f32const(gb *b, int rank, const int64_t *dims, const float *v, float fill, const char *what) {
  ir_type t = ir_type_make(IR_DT_F32, rank, dims);
  float *d = malloc(ir_nbytes(&t) + 4);
  if (!d) abort();
  for (int64_t i = 0, k = ir_nelems(&t); i < k; i++) d[i] = v ? v[i] : fill;
  char name[512];
  snprintf(name, sizeof name, "%s/%s", b->n->name[0] ? b->n->name : "gather", what);
  return ir_add_const(b->g, name, &t, d);
}

static ir_value *reshape(gb *b, ir_value *v, int rank, const int64_t *dims, const char *what) {
  ir_attrs a = {.ndims = rank};
  memcpy(a.dims, dims, (size_t)rank * sizeof *dims);
  return node(b, IR_OP_RESHAPE, &v, 1, &a, what);
}

static ir_value *cast(gb *b, ir_value *v, ir_dtype to, const char *what) {
  ir_attrs a = {.to = to};
  return node(b, IR_OP_CAST, &v, 1, &a, what);
}

static int rewrite(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  gb b = {g, n, err, errlen, false};
  ir_value *data = n->in[0], *idx = n->in[1], *out = n->out[0];
  int ax = n->a.axis, r = data->ty.rank;
  int64_t K = data->ty.dims[ax], N = ir_nelems(&idx->ty), pre = 1, post = 1;
  for (int d = 0; d < ax; d++) pre *= data->ty.dims[d];
  for (int d = ax + 1; d < r; d++) post *= data->ty.dims[d];
  if (K > (1 << 24)) {
    char where[160];
    return ir_fail(err, errlen, "%s: gather along a dim of %lld: indices above 2^24 are not exact in fp32",
                   ir_node_where(n, where, sizeof where), (long long)K);
  }
  // Normalised indices as f32, [N, 1].
  ir_value *f = idx->ty.dtype == IR_DT_F32 ? idx : cast(&b, idx, IR_DT_F32, "index_f32");
  ir_value *zero = f32const(&b, 0, NULL, NULL, 0.0f, "zero"), *kk = f32const(&b, 0, NULL, NULL, (float)K, "K");
  ir_value *neg = node(&b, IR_OP_LESS, (ir_value *[]){f, zero}, 2, NULL, "negative");
  ir_value *wrap = node(&b, IR_OP_ADD, (ir_value *[]){f, kk}, 2, NULL, "wrapped");
  ir_value *fi = node(&b, IR_OP_WHERE, (ir_value *[]){neg, wrap, f}, 3, NULL, "index");
  ir_value *col = reshape(&b, fi, 2, (int64_t[]){N, 1}, "index_column");
  float *io = malloc((size_t)K * sizeof *io);
  if (!io) abort();
  for (int64_t k = 0; k < K; k++) io[k] = (float)k;
  ir_value *iota = f32const(&b, 1, (int64_t[]){K}, io, 0, "iota");
  free(io);
  ir_value *hot = node(&b, IR_OP_EQUAL, (ir_value *[]){col, iota}, 2, NULL, "one_hot");
  ir_value *ohf = cast(&b, hot, IR_DT_F32, "one_hot_f32");
  // The data as [K, pre * post] in f32.
  ir_value *d = data->ty.dtype == IR_DT_F32 ? data : cast(&b, data, IR_DT_F32, "data_f32");
  if (ax > 0) {
    ir_value *d3 = reshape(&b, d, 3, (int64_t[]){pre, K, post}, "data_3d");
    ir_attrs a = {.perm = {1, 0, 2}};
    d = node(&b, IR_OP_TRANSPOSE, &d3, 1, &a, "data_axis_first");
  }
  ir_value *d2 = reshape(&b, d, 2, (int64_t[]){K, pre * post}, "data_2d");
  ir_value *prod = node(&b, IR_OP_MATMUL, (ir_value *[]){ohf, d2}, 2, NULL, "select");
  if (ax > 0) {
    ir_value *p3 = reshape(&b, prod, 3, (int64_t[]){N, pre, post}, "select_3d");
    ir_attrs a = {.perm = {1, 0, 2}};
    prod = node(&b, IR_OP_TRANSPOSE, &p3, 1, &a, "select_axis_back");
  }
  ir_value *res = out->ty.dtype == IR_DT_F32 ? reshape(&b, prod, out->ty.rank, out->ty.dims, "result")
                                             : cast(&b, reshape(&b, prod, out->ty.rank, out->ty.dims, "result_f32"),
                                                    out->ty.dtype, "result");
  if (b.failed) return -1;
  // The last node computes the gather's output value instead of its own.
  ir_node *m = res->producer;
  ir_remove_node(g, n);
  res->producer = NULL;
  m->out[0] = out;
  out->producer = m, out->producer_slot = 0;
  return 0;
}

int cc_lower_gather(ir_graph *g, char *err, size_t errlen) {
  int count = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    if (n->op != IR_OP_GATHER) continue;
    if (rewrite(g, n, err, errlen)) return -1;
    if (ir_toposort(g)) return ir_fail(err, errlen, "lower_gather made a cycle");
    count++;
    i = -1; // nodes moved: rescan
  }
  ir_prune(g);
  return count;
}
