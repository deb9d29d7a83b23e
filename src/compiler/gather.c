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

#include <stdlib.h>
#include <string.h>

static int rewrite(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  cc_rewrite b = {g, n, err, errlen, false};
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
  ir_value *f = idx->ty.dtype == IR_DT_F32 ? idx : cc_rw_cast(&b, idx, IR_DT_F32, "index_f32");
  ir_value *zero = cc_rw_f32const(&b, 0, NULL, NULL, 0.0f, "zero"), *kk = cc_rw_f32const(&b, 0, NULL, NULL, (float)K, "K");
  ir_value *neg = cc_rw_node(&b, IR_OP_LESS, (ir_value *[]){f, zero}, 2, NULL, "negative");
  ir_value *wrap = cc_rw_node(&b, IR_OP_ADD, (ir_value *[]){f, kk}, 2, NULL, "wrapped");
  ir_value *fi = cc_rw_node(&b, IR_OP_WHERE, (ir_value *[]){neg, wrap, f}, 3, NULL, "index");
  ir_value *col = cc_rw_reshape(&b, fi, 2, (int64_t[]){N, 1}, "index_column");
  float *io = malloc((size_t)K * sizeof *io);
  if (!io) abort();
  for (int64_t k = 0; k < K; k++) io[k] = (float)k;
  ir_value *iota = cc_rw_f32const(&b, 1, (int64_t[]){K}, io, 0, "iota");
  free(io);
  ir_value *hot = cc_rw_node(&b, IR_OP_EQUAL, (ir_value *[]){col, iota}, 2, NULL, "one_hot");
  ir_value *ohf = cc_rw_cast(&b, hot, IR_DT_F32, "one_hot_f32");
  // The data as [K, pre * post] in f32.
  ir_value *d = data->ty.dtype == IR_DT_F32 ? data : cc_rw_cast(&b, data, IR_DT_F32, "data_f32");
  if (ax > 0) {
    ir_value *d3 = cc_rw_reshape(&b, d, 3, (int64_t[]){pre, K, post}, "data_3d");
    ir_attrs a = {.perm = {1, 0, 2}};
    d = cc_rw_node(&b, IR_OP_TRANSPOSE, &d3, 1, &a, "data_axis_first");
  }
  ir_value *d2 = cc_rw_reshape(&b, d, 2, (int64_t[]){K, pre * post}, "data_2d");
  ir_value *prod = cc_rw_node(&b, IR_OP_MATMUL, (ir_value *[]){ohf, d2}, 2, NULL, "select");
  if (ax > 0) {
    ir_value *p3 = cc_rw_reshape(&b, prod, 3, (int64_t[]){N, pre, post}, "select_3d");
    ir_attrs a = {.perm = {1, 0, 2}};
    prod = cc_rw_node(&b, IR_OP_TRANSPOSE, &p3, 1, &a, "select_axis_back");
  }
  ir_value *res = out->ty.dtype == IR_DT_F32 ? cc_rw_reshape(&b, prod, out->ty.rank, out->ty.dims, "result")
                                             : cc_rw_cast(&b, cc_rw_reshape(&b, prod, out->ty.rank, out->ty.dims, "result_f32"),
                                                    out->ty.dtype, "result");
  return cc_rw_replace(&b, res);
}

static bool is_gather(const ir_node *n) { return n->op == IR_OP_GATHER; }

int cc_lower_gather(ir_graph *g, char *err, size_t errlen) {
  return cc_rewrite_all(g, is_gather, "lower_gather", rewrite, err, errlen);
}
