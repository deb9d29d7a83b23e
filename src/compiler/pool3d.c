// 3-D max and average pools, which the lowering has only in 1-D and 2-D
// (channels last), as two 2-D pools: a box's max is the max over depth of
// the max over each (h, w) plane, and its average the average over depth of
// the plane averages, since the elements a window counts (inside the input,
// or inside the padding with count_include_pad) form a box, so their number
// is the product of the per-axis counts:
//
//   x [N,C,D,H,W] -> [N,C*D,H,W] -> pool (kh,kw) -> [N,C,D,OH*OW]
//   -> pool (kd,1) -> [N,C,OD,OH*OW] -> [N,C,OD,OH,OW]
//
// The max is exact; the average rounds twice where one pool rounds once.
#include "compiler/compiler.h"

static bool is_pool3d(const ir_node *n) {
  return (n->op == IR_OP_MAXPOOL || n->op == IR_OP_AVGPOOL) && n->nout == 1 && !n->a.nhwc &&
         n->in[0]->ty.rank == 5;
}

static int rewrite(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  cc_rewrite b = {g, n, err, errlen, false};
  const ir_attrs *a = &n->a;
  const int64_t *x = n->in[0]->ty.dims, *y = n->out[0]->ty.dims;
  // The planes: kernel, stride, dilation and pads of h and w.
  ir_attrs p = *a, q = *a;
  for (int i = 0; i < 2; i++) {
    p.kernel[i] = a->kernel[1 + i], p.stride[i] = a->stride[1 + i], p.dilation[i] = a->dilation[1 + i];
    p.pads[i] = a->pads[1 + i], p.pads[2 + i] = a->pads[3 + 1 + i];
  }
  // Then depth, the planes' outputs flattened into a second spatial dim of kernel 1.
  q.kernel[0] = a->kernel[0], q.stride[0] = a->stride[0], q.dilation[0] = a->dilation[0];
  q.pads[0] = a->pads[0], q.pads[2] = a->pads[3];
  q.kernel[1] = q.stride[1] = q.dilation[1] = 1, q.pads[1] = q.pads[3] = 0;
  for (int i = 4; i < 2 * IR_MAX_DIMS; i++)
    p.pads[i] = q.pads[i] = 0;
  ir_value *v = cc_rw_reshape(&b, n->in[0], 4, (int64_t[]){x[0], x[1] * x[2], x[3], x[4]}, "planes");
  v = cc_rw_node(&b, n->op, &v, 1, &p, "pool_hw");
  v = cc_rw_reshape(&b, v, 4, (int64_t[]){x[0], x[1], x[2], y[3] * y[4]}, "depth");
  v = cc_rw_node(&b, n->op, &v, 1, &q, "pool_d");
  v = cc_rw_reshape(&b, v, 5, y, "result");
  return cc_rw_replace(&b, v);
}

int cc_split_pool3d(ir_graph *g, char *err, size_t errlen) {
  return cc_rewrite_all(g, is_pool3d, "split_pool3d", rewrite, err, errlen);
}
