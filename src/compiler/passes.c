// Graph optimisation passes (docs/ir.md, "Passes"): constant folding, dead
// code and no-op elimination, batchnorm folding, gemm into canonical matmuls,
// and epilogue fusion. cc_optimize runs them, with the layout pass of
// layout.c, verifying the graph after each.
//
// Passes edit the graph through ir.c's functions. A rewrite that replaces the
// last node of a pattern moves that node's output value onto the node that
// now computes it (take_output), so value names (which graph outputs are
// written by) survive. New nodes are appended; each pass ends with
// ir_toposort and ir_prune.
#include "compiler/compiler.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- helpers

static double *dalloc(int64_t n) {
  double *p = calloc((size_t)(n ? n : 1), sizeof *p);
  if (!p)
    abort();
  return p;
}

// A constant of type ty whose elements are v (rounded to ty's dtype once).
static ir_value *const_from(ir_graph *g, const char *name, const ir_type *ty, const double *v) {
  void *d = calloc(ir_nbytes(ty) + 1, 1);
  if (!d)
    abort();
  for (int64_t i = 0, n = ir_nelems(ty); i < n; i++)
    ir_set_float(d, ty->dtype, i, v[i]);
  return ir_add_const(g, name, ty, d);
}

static ir_value *scalar_const(ir_graph *g, const char *name, ir_dtype dt, double v) {
  ir_type t = {dt, 0, {0}};
  return const_from(g, name, &t, &v);
}

// Read once, by one node input, and not a graph output.
static bool single_use(const ir_value *v) { return v->nuses == 1 && !v->is_output; }

static char *suffixed(char *buf, size_t len, const char *name, const char *suffix) {
  snprintf(buf, len, "%s%s", name, suffix);
  return buf;
}

// A new node with one output, inferred; carries the name of the node it
// stands for. NULL with err if inference refuses it.
static ir_node *add_node(ir_graph *g, ir_op op, const ir_node *from, ir_value *const *in, int nin,
                         const char *out_name, char *err, size_t errlen) {
  ir_node *m = ir_add_node(g, op, from->name, in, nin, 1, &out_name);
  return ir_infer_node(m, err, errlen) ? NULL : m;
}

// m, whose output nothing reads, computes v instead: v keeps its name, its
// uses and its graph-output mark. v's producer must be gone already.
static void take_output(ir_node *m, ir_value *v) {
  ir_value *old = m->out[0];
  assert(!v->producer && !v->is_input && !v->data && !old->nuses && !old->is_output);
  old->producer = NULL; // unused and undefined: ir_prune frees it
  m->out[0] = v;
  v->producer = m;
  v->producer_slot = 0;
}

// A copy of n (op, attributes, source) reading in[nin] and computing y,
// whose producer (n's consumer) the caller has removed. n goes.
static ir_node *rebuild(ir_graph *g, ir_node *n, ir_value *const *in, int nin, const ir_attrs *a, ir_value *y,
                        char *err, size_t errlen) {
  assert(!n->a.sizes);
  ir_node *m = ir_add_node(g, n->op, n->name, in, nin, 1, NULL);
  m->a = *a;
  m->src_index = n->src_index;
  ir_remove_node(g, n);
  take_output(m, y);
  return ir_infer_node(m, err, errlen) ? NULL : m;
}

static int finish(ir_graph *g, const char *pass, char *err, size_t errlen) {
  if (ir_toposort(g))
    return ir_fail(err, errlen, "%s made a cycle", pass);
  ir_prune(g);
  return 0;
}

// ---------------------------------------------------------------- folding, dead code

int cc_fold_constants(ir_graph *g, char *err, size_t errlen) {
  int n = ir_fold_graph(g, err, errlen);
  if (n < 0)
    return -1;
  return n + ir_prune(g);
}

// Does n compute its input unchanged? (A pad by zeros, a slice of
// everything and a cast to the same dtype are what exporters leave behind.)
static bool is_noop(const ir_node *n) {
  const ir_type *x = &n->in[0]->ty;
  switch (n->op) {
  case IR_OP_IDENTITY: return true;
  case IR_OP_RESHAPE: return ir_type_eq(x, &n->out[0]->ty);
  case IR_OP_CAST: return n->a.to == x->dtype;
  case IR_OP_PAD:
    for (int d = 0; d < 2 * x->rank; d++)
      if (n->a.pads[d])
        return false;
    return true;
  case IR_OP_SLICE:
    for (int d = 0; d < x->rank; d++)
      if (n->a.start[d] != 0 || n->a.end[d] != x->dims[d] || n->a.step[d] != 1)
        return false;
    return true;
  default: return false;
  }
}

// No-ops and chains of reshapes are views of their input: readers read the
// input instead. A no-op whose output is a graph output stays, so the
// output keeps its name.
int cc_eliminate_dead(ir_graph *g, char *err, size_t errlen) {
  (void)err, (void)errlen;
  int count = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    ir_node *p = n->nin ? n->in[0]->producer : NULL;
    if (n->op == IR_OP_RESHAPE && p && p->op == IR_OP_RESHAPE) {
      ir_set_input(n, 0, p->in[0]); // the same bytes, one view fewer
      count++;
    }
    if (n->nin == 1 && n->nout == 1 && n->out[0]->nuses && is_noop(n)) {
      ir_replace_uses(n->out[0], n->in[0]);
      count++;
    }
  }
  return count + ir_prune(g);
}

// ---------------------------------------------------------------- batchnorm

// y = x * s + t per channel: s = gamma / sqrt(var + eps), t = beta - mean * s.
static void bn_affine(const ir_node *bn, int64_t C, double *s, double *t) {
  const ir_value *gamma = bn->in[1], *beta = bn->in[2], *mean = bn->in[3], *var = bn->in[4];
  for (int64_t c = 0; c < C; c++) {
    s[c] = ir_get_float(gamma->data, gamma->ty.dtype, c) /
           sqrt(ir_get_float(var->data, var->ty.dtype, c) + (double)bn->a.epsilon);
    t[c] = ir_get_float(beta->data, beta->ty.dtype, c) - ir_get_float(mean->data, mean->ty.dtype, c) * s[c];
  }
}

// The conv producing bn's input, if its weights and bias are constants and
// bn is all that reads its output.
static ir_node *foldable_conv(const ir_node *bn) {
  ir_value *x = bn->in[0];
  ir_node *c = x->producer;
  if (!c || c->op != IR_OP_CONV || c->a.nhwc || c->a.act != IR_ACT_NONE || c->a.residual || c->nin > 3)
    return NULL;
  if (!single_use(x) || !c->in[1]->data || (c->nin == 3 && !c->in[2]->data) || !ir_dtype_is_float(x->ty.dtype))
    return NULL;
  return c;
}

// W'[o,...] = W[o,...] * s[o], b'[o] = (b[o] - mean[o]) * s[o] + beta[o]; the
// conv then computes the batchnorm's output value.
static int fold_into_conv(ir_graph *g, ir_node *bn, ir_node *conv, char *err, size_t errlen) {
  ir_value *w = conv->in[1], *y = bn->out[0];
  int64_t M = w->ty.dims[0], per = M ? ir_nelems(&w->ty) / M : 0;
  double *s = dalloc(M), *t = dalloc(M), *wv = dalloc(ir_nelems(&w->ty)), *bv = dalloc(M);
  bn_affine(bn, M, s, t);
  for (int64_t o = 0; o < M; o++) {
    for (int64_t k = 0; k < per; k++)
      wv[o * per + k] = ir_get_float(w->data, w->ty.dtype, o * per + k) * s[o];
    double b = conv->nin == 3 ? ir_get_float(conv->in[2]->data, conv->in[2]->ty.dtype, o) : 0;
    const ir_value *beta = bn->in[2], *mean = bn->in[3];
    bv[o] = (b - ir_get_float(mean->data, mean->ty.dtype, o)) * s[o] + ir_get_float(beta->data, beta->ty.dtype, o);
  }
  char name[512];
  ir_type bt = {w->ty.dtype, 1, {M}};
  ir_value *in[3] = {conv->in[0], const_from(g, suffixed(name, sizeof name, w->name, ".bn"), &w->ty, wv),
                     const_from(g, suffixed(name, sizeof name, y->name, ".bias"), &bt, bv)};
  free(s), free(t), free(wv), free(bv);
  ir_attrs a = conv->a;
  ir_remove_node(g, bn);
  return rebuild(g, conv, in, 3, &a, y, err, errlen) ? 0 : -1;
}

// x * s + t with constants of shape [C,1,...] that broadcast along dim 1.
static int bn_to_affine(ir_graph *g, ir_node *bn, char *err, size_t errlen) {
  ir_value *x = bn->in[0], *y = bn->out[0];
  int64_t C = x->ty.dims[1];
  double *s = dalloc(C), *t = dalloc(C);
  bn_affine(bn, C, s, t);
  ir_type ct = {x->ty.dtype, x->ty.rank - 1, {C}};
  for (int i = 1; i < ct.rank; i++)
    ct.dims[i] = 1;
  char name[512];
  ir_value *sc = const_from(g, suffixed(name, sizeof name, y->name, ".scale"), &ct, s);
  ir_value *sh = const_from(g, suffixed(name, sizeof name, y->name, ".shift"), &ct, t);
  free(s), free(t);
  ir_node *mul = add_node(g, IR_OP_MUL, bn, (ir_value *[]){x, sc}, 2, suffixed(name, sizeof name, y->name, ".scaled"),
                          err, errlen);
  if (!mul)
    return -1;
  ir_node *add = add_node(g, IR_OP_ADD, bn, (ir_value *[]){mul->out[0], sh}, 2, NULL, err, errlen);
  if (!add)
    return -1;
  ir_remove_node(g, bn);
  take_output(add, y);
  return 0;
}

int cc_fold_batchnorm(ir_graph *g, char *err, size_t errlen) {
  int count = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *bn = g->nodes[i];
    if (bn->op != IR_OP_BATCHNORM)
      continue;
    bool params = true;
    for (int k = 1; k < 5; k++)
      params = params && bn->in[k]->data;
    if (!params)
      continue; // statistics computed at run time: left to the lowering
    ir_node *conv = foldable_conv(bn);
    if (conv ? fold_into_conv(g, bn, conv, err, errlen) : bn_to_affine(g, bn, err, errlen))
      return -1;
    count++;
    i = -1; // nodes moved: rescan (each rescan removes a batchnorm)
  }
  return finish(g, "fold_batchnorm", err, errlen) ? -1 : count;
}

// ---------------------------------------------------------------- canonical matmuls

// v transposed (perm 1,0): folded when v is a constant, else a node.
static ir_value *transposed(ir_graph *g, ir_node *from, ir_value *v, char *err, size_t errlen) {
  char name[512];
  ir_node *t = ir_add_node(g, IR_OP_TRANSPOSE, from->name, &v, 1, 1,
                           (const char *[]){suffixed(name, sizeof name, v->name, ".T")});
  t->a.perm[0] = 1, t->a.perm[1] = 0;
  if (ir_infer_node(t, err, errlen))
    return NULL;
  ir_value *out = t->out[0];
  if (v->data && ir_fold_node(g, t, err, errlen) < 0)
    return NULL;
  return out;
}

// A constant C that adds the same row to every row of the [M, N] result.
static bool row_bias(const ir_value *c, int64_t N) {
  const ir_type *t = &c->ty;
  if (!c->data)
    return false;
  if (t->rank == 0)
    return true;
  if (t->rank == 1)
    return t->dims[0] == N || t->dims[0] == 1;
  return t->rank == 2 && t->dims[0] == 1 && (t->dims[1] == N || t->dims[1] == 1);
}

// Y = alpha * op(A) @ op(B) + beta * C as matmul(A', B'[, bias]) followed by
// what alpha and C still need.
static int canon_gemm(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  char where[256], name[512];
  ir_value *a = n->in[0], *b = n->in[1], *c = n->nin > 2 ? n->in[2] : NULL, *y = n->out[0];
  ir_dtype dt = y->ty.dtype;
  int64_t N = y->ty.dims[1];
  float alpha = n->a.alpha, beta = n->a.beta;
  if (n->a.act != IR_ACT_NONE || n->a.residual)
    return ir_fail(err, errlen, "%s: gemm with a fused epilogue", ir_node_where(n, where, sizeof where));
  if (!ir_dtype_is_float(dt) && (alpha != 1 || (c && beta != 1)))
    return ir_fail(err, errlen, "%s: integer gemm with alpha %g, beta %g is not supported",
                   ir_node_where(n, where, sizeof where), (double)alpha, (double)beta);
  if (n->a.trans_a && !(a = transposed(g, n, a, err, errlen)))
    return -1;
  if (n->a.trans_b && !(b = transposed(g, n, b, err, errlen)))
    return -1;
  if (alpha != 1 && b->data) { // scale the weights, once
    double *v = dalloc(ir_nelems(&b->ty));
    for (int64_t i = 0; i < ir_nelems(&b->ty); i++)
      v[i] = ir_get_float(b->data, dt, i) * (double)alpha;
    b = const_from(g, suffixed(name, sizeof name, b->name, ".alpha"), &b->ty, v);
    free(v);
    alpha = 1;
  }
  ir_value *in[3] = {a, b};
  int nin = 2;
  // A bias adds after the product: not when alpha still scales the product.
  if (c && alpha == 1 && row_bias(c, N)) {
    double *v = dalloc(N);
    for (int64_t j = 0; j < N; j++)
      v[j] = ir_get_float(c->data, c->ty.dtype, ir_nelems(&c->ty) == 1 ? 0 : j) * (double)beta;
    in[nin++] = const_from(g, suffixed(name, sizeof name, y->name, ".bias"), &(ir_type){dt, 1, {N}}, v);
    free(v);
    c = NULL;
  }
  ir_node *last = add_node(g, IR_OP_MATMUL, n, in, nin, suffixed(name, sizeof name, y->name, ".mm"), err, errlen);
  if (!last)
    return -1;
  last->src_index = n->src_index;
  if (alpha != 1) {
    ir_value *k = scalar_const(g, suffixed(name, sizeof name, y->name, ".alpha"), dt, alpha);
    if (!(last = add_node(g, IR_OP_MUL, n, (ir_value *[]){last->out[0], k}, 2, NULL, err, errlen)))
      return -1;
  }
  if (c) {
    if (beta != 1) {
      ir_value *k = scalar_const(g, suffixed(name, sizeof name, y->name, ".beta"), dt, beta);
      ir_node *m = add_node(g, IR_OP_MUL, n, (ir_value *[]){c, k}, 2, suffixed(name, sizeof name, c->name, ".beta"),
                            err, errlen);
      if (!m)
        return -1;
      c = m->out[0];
      if (ir_fold_node(g, m, err, errlen) < 0) // a constant C: beta * C now
        return -1;
    }
    if (!(last = add_node(g, IR_OP_ADD, n, (ir_value *[]){last->out[0], c}, 2, NULL, err, errlen)))
      return -1;
  }
  ir_remove_node(g, n);
  take_output(last, y);
  return 0;
}

// conv_transpose = conv over the input spread out by its stride: an
// interior pad of stride-1 zeros between inputs, edges of dilation*(k-1) -
// pad (plus the output padding at the end), then a stride-1 convolution with
// the kernel flipped and its channel roles swapped per group. Weights must
// be constant (they are rearranged here).
static int canon_conv_transpose(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  char where[160], name[512];
  ir_node_where(n, where, sizeof where);
  ir_value *x = n->in[0], *w = n->in[1];
  if (!w->data) return ir_fail(err, errlen, "%s: transposed convolution weights must be constant", where);
  const ir_attrs *a = &n->a;
  int r = x->ty.rank, ns = r - 2;
  ir_attrs pa = {0};
  pa.pad_mode = IR_PAD_CONSTANT;
  for (int i = 0; i < ns; i++) {
    int64_t edge = a->dilation[i] * (a->kernel[i] - 1);
    pa.interior[2 + i] = a->stride[i] - 1;
    pa.pads[2 + i] = edge - a->pads[i];
    pa.pads[r + 2 + i] = edge - a->pads[ns + i] + a->out_pad[i];
    if (pa.pads[2 + i] < 0 || pa.pads[r + 2 + i] < 0)
      return ir_fail(err, errlen, "%s: padding larger than dilation*(kernel-1) is not supported", where);
  }
  // W [C, M/g, k...] -> W' [M, C/g, k...], flipped in every spatial dim.
  int64_t C = w->ty.dims[0], Mg = w->ty.dims[1], G = a->group, Cg = C / G, K = 1;
  for (int i = 0; i < ns; i++) K *= a->kernel[i];
  ir_type wt = w->ty;
  wt.dims[0] = Mg * G, wt.dims[1] = Cg;
  float *nw = malloc((size_t)ir_nelems(&wt) * sizeof *nw);
  if (!nw) return ir_fail(err, errlen, "out of host memory");
  for (int64_t c = 0; c < C; c++)
    for (int64_t m = 0; m < Mg; m++)
      for (int64_t k = 0; k < K; k++) {
        int64_t gi = c / Cg, o = gi * Mg + m, ci = c % Cg;
        nw[(o * Cg + ci) * K + (K - 1 - k)] = (float)ir_get_float(w->data, w->ty.dtype, (c * Mg + m) * K + k);
      }
  ir_value *pin = x;
  ir_node *pad = add_node(g, IR_OP_PAD, n, &pin, 1, suffixed(name, sizeof name, x->name, ".spread"), err, errlen);
  if (!pad) return -1;
  pad->a = pa;
  if (ir_infer_node(pad, err, errlen)) return -1;
  ir_value *in[3] = {pad->out[0], ir_add_const(g, suffixed(name, sizeof name, w->name, ".flipped"), &wt, nw),
                     n->nin == 3 ? n->in[2] : NULL};
  ir_attrs ca = {0};
  for (int i = 0; i < ns; i++) ca.kernel[i] = a->kernel[i], ca.stride[i] = 1, ca.dilation[i] = a->dilation[i];
  ca.group = G;
  ir_value *y = n->out[0];
  ir_node *conv = ir_add_node(g, IR_OP_CONV, n->name, in, n->nin, 1, NULL);
  conv->a = ca;
  conv->src_index = n->src_index;
  ir_remove_node(g, n);
  take_output(conv, y);
  return ir_infer_node(conv, err, errlen);
}

int cc_canonicalize(ir_graph *g, char *err, size_t errlen) {
  int count = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i]->op == IR_OP_CONV_TRANSPOSE) {
      if (canon_conv_transpose(g, g->nodes[i], err, errlen))
        return -1;
      count++;
      i = -1;
      continue;
    }
    if (g->nodes[i]->op != IR_OP_GEMM)
      continue;
    if (canon_gemm(g, g->nodes[i], err, errlen))
      return -1;
    count++;
    i = -1; // rescan: nodes moved and were appended
  }
  return finish(g, "canonicalize", err, errlen) ? -1 : count;
}

// ---------------------------------------------------------------- epilogues

// Inputs before the residual: (A, B[, bias]) or (X, W[, bias]).
static int plain_inputs(const ir_node *n) { return n->nin - (n->a.residual ? 1 : 0); }

// The dim of n's output a bias adds along, or -1 if n takes no bias.
static int bias_axis(const ir_node *n) {
  const ir_type *y = &n->out[0]->ty;
  if (n->op == IR_OP_CONV)
    return n->a.nhwc ? y->rank - 1 : 1;
  return n->in[1]->ty.rank == 2 && y->rank >= 1 ? y->rank - 1 : -1;
}

// c as a bias of n: a constant of n's dtype that varies at most along the
// bias axis and does not broadcast n's output. Values into v[C].
static bool as_bias(const ir_node *n, const ir_value *c, double *v) {
  const ir_type *y = &n->out[0]->ty, *t = &c->ty;
  int axis = bias_axis(n);
  if (!c->data || axis < 0 || t->dtype != y->dtype || t->rank > y->rank)
    return false;
  int64_t C = y->dims[axis], step = 0;
  for (int d = 0; d < t->rank; d++) {
    int yd = y->rank - t->rank + d;
    if (yd == axis && t->dims[d] == C)
      step = 1;
    else if (t->dims[d] != 1)
      return false;
  }
  for (int64_t k = 0; k < C; k++)
    v[k] = ir_get_float(c->data, t->dtype, k * step);
  return true;
}

// One fusion into n's epilogue, in the order act(product * scale + bias + residual):
// returns n, or the node that replaced it, with *changed; NULL on error.
// With act, sigmoid and tanh too (the epilogue's last vector steps, the
// same f32 operation as the layer they replace).
static ir_node *fuse_once(ir_graph *g, ir_node *n, bool act, bool *changed, char *err, size_t errlen) {
  *changed = false;
  ir_value *y = n->out[0];
  if (!single_use(y) || n->a.act != IR_ACT_NONE)
    return n;
  ir_node *u = y->uses[0].node;
  ir_value *z = u->out[0];
  bool transcendental = act && (u->op == IR_OP_SIGMOID || u->op == IR_OP_TANH) && y->ty.dtype == IR_DT_F32;
  if (u->op == IR_OP_RELU || u->op == IR_OP_CLIP || transcendental) {
    n->a.act = u->op == IR_OP_RELU ? IR_ACT_RELU : u->op == IR_OP_CLIP ? IR_ACT_CLIP
               : u->op == IR_OP_SIGMOID ? IR_ACT_SIGMOID : IR_ACT_TANH;
    if (u->op == IR_OP_CLIP)
      n->a.lo = u->a.lo, n->a.hi = u->a.hi;
    ir_remove_node(g, u);
    take_output(n, z);
    *changed = true;
    return n;
  }
  // Attention's softmax(Q K^T + mask) in the matmul's epilogue: the scores
  // never go to HBM and back (lower_mxu.c).
  if (u->op == IR_OP_SOFTMAX && n->op == IR_OP_MATMUL && y->ty.dtype == IR_DT_F32 && y->ty.rank >= 1 &&
      u->a.axis == y->ty.rank - 1) {
    n->a.act = IR_ACT_SOFTMAX;
    ir_remove_node(g, u);
    take_output(n, z);
    *changed = true;
    return n;
  }
  ir_value *other = u->nin == 2 ? u->in[1 - y->uses[0].slot] : NULL;
  // A scalar constant scale straight after the product (before any bias).
  if ((u->op == IR_OP_MUL || (u->op == IR_OP_DIV && y->uses[0].slot == 0)) && n->op == IR_OP_MATMUL &&
      y->ty.dtype == IR_DT_F32 && !n->a.pscale_on && plain_inputs(n) == 2 && !n->a.residual && other->data &&
      other->ty.dtype == IR_DT_F32 && ir_nelems(&other->ty) == 1 && ir_type_eq(&z->ty, &y->ty)) {
    n->a.pscale_on = true, n->a.pscale_div = u->op == IR_OP_DIV;
    n->a.pscale = (float)ir_get_float(other->data, IR_DT_F32, 0);
    ir_remove_node(g, u);
    take_output(n, z);
    *changed = true;
    return n;
  }
  if (u->op != IR_OP_ADD)
    return n;
  int np = plain_inputs(n);
  ir_value *in[4];
  memcpy(in, n->in, (size_t)n->nin * sizeof *in);
  ir_attrs a = n->a;
  int axis = bias_axis(n);
  int64_t C = axis >= 0 ? y->ty.dims[axis] : 0;
  double *v = dalloc(C);
  bool bias = axis >= 0 && (np < 3 || n->in[2]->data) && as_bias(n, other, v);
  if (bias) {
    char name[512];
    if (np == 3)
      for (int64_t k = 0; k < C; k++)
        v[k] += ir_get_float(n->in[2]->data, n->in[2]->ty.dtype, k);
    ir_value *b = const_from(g, suffixed(name, sizeof name, z->name, ".bias"), &(ir_type){y->ty.dtype, 1, {C}}, v);
    if (np == 3) {
      in[2] = b;
    } else { // the bias goes before the residual, if any
      memmove(in + 3, in + 2, (size_t)(n->nin - 2) * sizeof *in);
      in[2] = b;
    }
  }
  free(v);
  int nin = n->nin + (bias && np < 3);
  if (!bias) {
    if (a.residual || !ir_type_eq(&other->ty, &y->ty))
      return n;
    in[nin++] = other;
    a.residual = true;
  }
  ir_remove_node(g, u);
  *changed = true;
  return rebuild(g, n, in, nin, &a, z, err, errlen);
}

static int fuse_epilogues(ir_graph *g, bool act, char *err, size_t errlen) {
  int count = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    if (n->op != IR_OP_CONV && n->op != IR_OP_MATMUL)
      continue;
    bool changed, moved = false;
    do {
      ir_node *m = fuse_once(g, n, act, &changed, err, errlen);
      if (!m)
        return -1;
      moved = moved || m != n;
      n = m;
      count += changed;
    } while (changed);
    if (moved)
      i--; // n went from slot i (its replacement is at the end)
  }
  return finish(g, "fuse_epilogues", err, errlen) ? -1 : count;
}

int cc_fuse_epilogues(ir_graph *g, char *err, size_t errlen) { return fuse_epilogues(g, false, err, errlen); }
int cc_fuse_activate_epilogues(ir_graph *g, char *err, size_t errlen) { return fuse_epilogues(g, true, err, errlen); }

// ---------------------------------------------------------------- the pipeline

typedef int pass_fn(ir_graph *g, char *err, size_t errlen);

static const struct {
  const char *name;
  pass_fn *run;
} pipeline[] = {
    {"fold_constants", cc_fold_constants}, {"eliminate_dead", cc_eliminate_dead}, {"fold_batchnorm", cc_fold_batchnorm},
    {"unroll_rnn", cc_unroll_rnn},         {"lower_gather", cc_lower_gather},     {"lower_resize", cc_lower_resize}, {"widen_integers", cc_widen_integers}, {"canonicalize", cc_canonicalize}, {"split_pool3d", cc_split_pool3d},     {"assign_layout", cc_assign_layout},   {"fuse_epilogues", cc_fuse_epilogues},
    {"fold_constants", cc_fold_constants}, {"eliminate_dead", cc_eliminate_dead},
};

static void dump(const cc_options *opt, const ir_graph *g, const char *stage) {
  if (!opt || !opt->dump_ir)
    return;
  fprintf(opt->dump_ir, "; after %s\n", stage);
  ir_print(g, opt->dump_ir);
}

int cc_optimize(ir_graph *g, const cc_options *opt, char *err, size_t errlen) {
  dump(opt, g, "import");
  for (size_t i = 0; i < sizeof pipeline / sizeof *pipeline; i++) {
    char msg[CC_ERR_LEN];
    pass_fn *run = pipeline[i].run;
    if (run == cc_fuse_epilogues && opt && opt->fuse_activate) run = cc_fuse_activate_epilogues;
    if (run(g, msg, sizeof msg) < 0)
      return ir_fail(err, errlen, "%s: %s", pipeline[i].name, msg);
    if (ir_verify(g, pipeline[i].name, err, errlen))
      return -1;
    dump(opt, g, pipeline[i].name);
  }
  return 0;
}
