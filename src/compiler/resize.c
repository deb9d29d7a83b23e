// Resize rewritten into work the chip has. Every mode ONNX defines (nearest,
// linear, cubic, with any coordinate transform) is separable: along one axis
// each output element is a fixed weighted sum of input elements along that
// axis. So a resize is, per resized axis, a matmul of the data against a
// constant interpolation matrix W [in, out] on the MXU:
//
//   x viewed as [pre, K, post] -> transpose to [pre, post, K] (unless post = 1)
//   -> [pre * post, K] @ W -> [pre, post, O] -> transpose back -> [pre, O, post]
//
// W follows the ONNX reference (onnx/reference/ops/op_resize.py): the output
// coordinate x maps to x_ori by the coordinate transform; base = floor(x_ori),
// ratio = x_ori - base, except that an integral x_ori takes base = x_ori - 1,
// ratio = 1 (the reference prefers the pixel on the left); the neighbours are
// base .. base + 1 (nearest, linear) or base - 1 .. base + 2 (cubic), clamped
// to the edge, or dropped and the weights renormalised with exclude_outside.
// Nearest weights are one 1.0 per column, so at precision highest (three bf16
// parts) the product is exact; linear and cubic round like any fp32 matmul.
#include "compiler/compiler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Names carry the axis: "n/what<axis>".
static ir_value *node(cc_rewrite *b, ir_op op, ir_value *const *in, int nin, const ir_attrs *a, const char *what,
                      int axis) {
  char w[64];
  snprintf(w, sizeof w, "%s%d", what, axis);
  return cc_rw_node(b, op, in, nin, a, w);
}

static ir_value *reshape(cc_rewrite *b, ir_value *v, int rank, const int64_t *dims, const char *what, int axis) {
  char w[64];
  snprintf(w, sizeof w, "%s%d", what, axis);
  return cc_rw_reshape(b, v, rank, dims, w);
}

// The source coordinate of output index x along axis d of K inputs and O
// outputs at scale s, as the reference computes it (output_width = s * K).
static double source_coord(const ir_attrs *a, int d, double x, double s, int64_t K, int64_t O) {
  double ow = s * (double)K, x0 = a->roi_start[d], x1 = a->roi_end[d];
  switch (a->coord_mode) {
  case IR_COORD_TF_CROP_AND_RESIZE:
    return O > 1 ? x0 * (double)(K - 1) + x * (x1 - x0) * (double)(K - 1) / (double)(O - 1) : 0.5 * (x0 + x1) * (double)(K - 1);
  case IR_COORD_HALF_PIXEL: return (x + 0.5) / s - 0.5;
  case IR_COORD_HALF_PIXEL_SYMMETRIC: {
    double adj = (double)O / ow, center = (double)K / 2;
    return center * (1 - adj) + (x + 0.5) / s - 0.5;
  }
  case IR_COORD_PYTORCH_HALF_PIXEL: return ow == 1 ? -0.5 : (x + 0.5) / s - 0.5;
  case IR_COORD_ALIGN_CORNERS: return ow == 1 ? 0 : x * (double)(K - 1) / (ow - 1);
  case IR_COORD_ASYMMETRIC: return x / s;
  case IR_COORD_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / s;
  }
  return 0;
}

// W [K, O]: column o holds the weights of output o over the K inputs. With
// tf_crop_and_resize, an output whose source lies outside [0, K - 1] has a
// zero column and extrapolation in bias[o] (else 0); returns whether any has.
static bool weights(const ir_attrs *a, int d, double s, int64_t K, int64_t O, float *w, float *bias) {
  bool outside = false;
  memset(w, 0, (size_t)(K * O) * sizeof *w);
  for (int64_t o = 0; o < O; o++) {
    double xo = source_coord(a, d, (double)o, s, K, O), base = floor(xo), ratio = xo - base;
    bias[o] = 0;
    if (a->coord_mode == IR_COORD_TF_CROP_AND_RESIZE && (xo < 0 || xo > (double)(K - 1))) {
      bias[o] = a->extrapolation, outside = true;
      continue;
    }
    if (ratio == 0) base -= 1, ratio = 1;
    double c[4];
    int n, first;
    if (a->resize_mode == IR_RESIZE_NEAREST) {
      bool right;
      switch (a->nearest_mode) {
      case IR_NEAREST_ROUND_PREFER_FLOOR: right = ratio > 0.5; break;
      case IR_NEAREST_ROUND_PREFER_CEIL: right = ratio >= 0.5; break;
      case IR_NEAREST_FLOOR: right = false; break;
      default: right = true; break;
      }
      if (ratio == 1) right = true; // integral: the point itself
      n = 2, first = 0, c[0] = !right, c[1] = right;
    } else if (a->resize_mode == IR_RESIZE_LINEAR) {
      n = 2, first = 0, c[0] = 1 - ratio, c[1] = ratio;
    } else {
      double A = a->cubic_a, r = ratio, q = 1 - ratio;
      n = 4, first = -1;
      c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
      c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
      c[2] = ((A + 2) * q - (A + 3)) * q * q + 1;
      c[3] = ((A * (q + 1) - 5 * A) * (q + 1) + 8 * A) * (q + 1) - 4 * A;
    }
    if (a->exclude_outside) {
      double sum = 0;
      for (int i = 0; i < n; i++) {
        double idx = base + first + i;
        if (idx < 0 || idx >= (double)K) c[i] = 0;
        sum += c[i];
      }
      for (int i = 0; i < n && sum != 0; i++) c[i] /= sum;
    }
    for (int i = 0; i < n; i++) {
      double idx = base + first + i;
      int64_t k = idx < 0 ? 0 : idx >= (double)K ? K - 1 : (int64_t)idx;
      w[k * O + o] += (float)c[i];
    }
  }
  return outside;
}

static bool is_identity(const float *w, int64_t K, int64_t O) {
  if (K != O) return false;
  for (int64_t k = 0; k < K; k++)
    for (int64_t o = 0; o < O; o++)
      if (w[k * O + o] != (k == o)) return false;
  return true;
}

static int rewrite(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  cc_rewrite b = {g, n, err, errlen, false};
  ir_value *x = n->in[0], *out = n->out[0];
  const ir_attrs *a = &n->a;
  int r = x->ty.rank;
  char where[160];
  if (x->ty.dtype != IR_DT_F32 && a->resize_mode != IR_RESIZE_NEAREST)
  {
    char ts[96];
    return ir_fail(err, errlen, "%s: %s resize of %s is not supported (only f32)", ir_node_where(n, where, sizeof where),
                   ir_resize_mode_names[a->resize_mode], ir_type_str(&x->ty, ts, sizeof ts));
  }
  ir_value *v = x;
  if (v->ty.dtype != IR_DT_F32) {
    ir_attrs c = {.to = IR_DT_F32};
    v = node(&b, IR_OP_CAST, &v, 1, &c, "input_f32", 0);
  }
  int64_t cur[IR_MAX_DIMS];
  memcpy(cur, x->ty.dims, (size_t)r * sizeof *cur);
  for (int d = 0; d < r && !b.failed; d++) {
    int64_t K = cur[d], O = a->dims[d], pre = 1, post = 1;
    if (K == 0 || O == 0) continue; // an empty tensor: refused elsewhere
    float *w = malloc((size_t)(K * O) * sizeof *w + 4), *bias = malloc((size_t)O * sizeof *bias + 4);
    if (!w || !bias) abort();
    bool extrapolated = weights(a, d, a->scales[d], K, O, w, bias);
    if (!extrapolated && is_identity(w, K, O)) {
      free(w), free(bias);
      continue;
    }
    for (int i = 0; i < d; i++) pre *= cur[i];
    for (int i = d + 1; i < r; i++) post *= cur[i];
    char name[512];
    snprintf(name, sizeof name, "%s/weights%d", n->name[0] ? n->name : "resize", d);
    ir_type wt = ir_type_make(IR_DT_F32, 2, (int64_t[]){K, O});
    ir_value *wv = ir_add_const(g, name, &wt, w); // takes w
    ir_attrs tp = {.perm = {0, 2, 1}};
    if (post > 1) {
      ir_value *v3 = reshape(&b, v, 3, (int64_t[]){pre, K, post}, "view", d);
      v = node(&b, IR_OP_TRANSPOSE, &v3, 1, &tp, "axis_last", d);
    }
    ir_value *v2 = reshape(&b, v, 2, (int64_t[]){pre * post, K}, "rows", d);
    if (extrapolated) { // the extrapolation value as the product's bias
      snprintf(name, sizeof name, "%s/extrapolation%d", n->name[0] ? n->name : "resize", d);
      ir_type bt = ir_type_make(IR_DT_F32, 1, (int64_t[]){O});
      ir_value *bv = ir_add_const(g, name, &bt, bias); // takes bias
      v = node(&b, IR_OP_MATMUL, (ir_value *[]){v2, wv, bv}, 3, NULL, "interpolate", d);
    } else {
      free(bias);
      v = node(&b, IR_OP_MATMUL, (ir_value *[]){v2, wv}, 2, NULL, "interpolate", d);
    }
    if (post > 1) {
      ir_value *p3 = reshape(&b, v, 3, (int64_t[]){pre, post, O}, "product", d);
      v = node(&b, IR_OP_TRANSPOSE, &p3, 1, &tp, "axis_back", d);
    }
    cur[d] = O;
  }
  v = reshape(&b, v, r, cur, "result", 0);
  if (!b.failed && out->ty.dtype != IR_DT_F32) {
    ir_attrs c = {.to = out->ty.dtype};
    v = node(&b, IR_OP_CAST, &v, 1, &c, "result_cast", 0);
  }
  return cc_rw_replace(&b, v);
}

static bool is_resize(const ir_node *n) { return n->op == IR_OP_RESIZE; }

int cc_lower_resize(ir_graph *g, char *err, size_t errlen) {
  return cc_rewrite_all(g, is_resize, "lower_resize", rewrite, err, errlen);
}
