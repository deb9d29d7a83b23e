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
//
// A 3-D convolution (group 1, constant f32 weights) becomes one 2-D
// convolution over depth-stacked planes: for each depth tap kd a strided
// slice of x along depth (zero-padded first), the slices concatenated as
// channels kd * C + c, each output depth a batch row, and the weights
// rearranged to [M, KD * C, KH, KW] to match:
//
//   x [N,C,D,H,W] -> KD slices [N,C,OD,H,W] -> concat [N,KD*C,OD,H,W]
//   -> [N*OD,KD*C,H,W] -> conv (kh,kw) -> [N*OD,M,OH,OW] -> [N,M,OD,OH,OW]
//
// The sums are those of the 3-D convolution, taken in another order.
#include "compiler/compiler.h"

#include <stdlib.h>

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

static bool is_conv3d(const ir_node *n) {
  return n->op == IR_OP_CONV && !n->a.nhwc && n->in[0]->ty.rank == 5 && n->a.group == 1 && n->in[1]->data &&
         n->in[0]->ty.dtype == IR_DT_F32 && n->in[1]->ty.dtype == IR_DT_F32 && n->a.act == IR_ACT_NONE &&
         !n->a.residual;
}

static int rewrite_conv(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  cc_rewrite b = {g, n, err, errlen, false};
  const ir_attrs *a = &n->a;
  ir_value *x = n->in[0], *w = n->in[1];
  const int64_t *xd = x->ty.dims, *yd = n->out[0]->ty.dims, *wd = w->ty.dims;
  int64_t N = xd[0], C = xd[1], M = wd[0], KD = wd[2], KH = wd[3], KW = wd[4], OD = yd[2];
  ir_value *v = x;
  if (a->pads[0] || a->pads[3]) {
    ir_attrs pa = {.pad_mode = IR_PAD_CONSTANT};
    pa.pads[2] = a->pads[0], pa.pads[5 + 2] = a->pads[3];
    v = cc_rw_node(&b, IR_OP_PAD, &v, 1, &pa, "depth_padded");
  }
  ir_value *taps[256];
  if (KD > 256)
    return ir_fail(err, errlen, "a 3-D convolution with %lld depth taps (at most 256)", (long long)KD);
  for (int64_t kd = 0; kd < KD && !b.failed; kd++) {
    ir_attrs sa = {0};
    for (int d = 0; d < 5; d++) {
      int64_t s = d == 2 ? kd * a->dilation[0] : 0, st = d == 2 ? a->stride[0] : 1;
      int64_t cnt = d == 2 ? OD : d == 0 ? N : d == 1 ? C : xd[d];
      sa.start[d] = s, sa.step[d] = st, sa.end[d] = s + (cnt - 1) * st + 1;
    }
    taps[kd] = cc_rw_node(&b, IR_OP_SLICE, &v, 1, &sa, "depth_tap");
  }
  ir_attrs ca = {.axis = 1};
  v = KD > 1 ? cc_rw_node(&b, IR_OP_CONCAT, taps, (int)KD, &ca, "taps") : taps[0];
  ir_attrs tp = {.perm = {0, 2, 1, 3, 4}};
  v = cc_rw_node(&b, IR_OP_TRANSPOSE, &v, 1, &tp, "depth_major");
  v = cc_rw_reshape(&b, v, 4, (int64_t[]){N * OD, KD * C, xd[3], xd[4]}, "planes");
  // W [M, C, KD, KH, KW] -> [M, KD * C, KH, KW].
  ir_type wt = ir_type_make(IR_DT_F32, 4, (int64_t[]){M, KD * C, KH, KW});
  float *nw = malloc((size_t)ir_nelems(&wt) * sizeof *nw + 4);
  if (!nw) abort();
  int64_t K2 = KH * KW;
  for (int64_t m = 0; m < M; m++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t kd = 0; kd < KD; kd++)
        for (int64_t k = 0; k < K2; k++)
          nw[((m * KD + kd) * C + c) * K2 + k] = ((const float *)w->data)[((m * C + c) * KD + kd) * K2 + k];
  char name[512];
  snprintf(name, sizeof name, "%s/planes", w->name);
  ir_value *in[3] = {v, ir_add_const(g, name, &wt, nw), n->nin > 2 ? n->in[2] : NULL};
  ir_attrs c2 = {.group = 1};
  for (int i = 0; i < 2; i++) {
    c2.kernel[i] = a->kernel[1 + i], c2.stride[i] = a->stride[1 + i], c2.dilation[i] = a->dilation[1 + i];
    c2.pads[i] = a->pads[1 + i], c2.pads[2 + i] = a->pads[3 + 1 + i];
  }
  v = cc_rw_node(&b, IR_OP_CONV, in, n->nin > 2 ? 3 : 2, &c2, "conv_hw");
  v = cc_rw_reshape(&b, v, 5, (int64_t[]){N, OD, M, yd[3], yd[4]}, "depth_rows");
  v = cc_rw_node(&b, IR_OP_TRANSPOSE, &v, 1, &tp, "result");
  return cc_rw_replace(&b, v);
}

int cc_split_pool3d(ir_graph *g, char *err, size_t errlen) {
  int np = cc_rewrite_all(g, is_pool3d, "split_pool3d", rewrite, err, errlen);
  int nc = np < 0 ? -1 : cc_rewrite_all(g, is_conv3d, "split_pool3d", rewrite_conv, err, errlen);
  return nc < 0 ? -1 : np + nc;
}
