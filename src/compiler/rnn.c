// The recurrence pass (docs/compiler.md, "Recurrences"): every lstm, gru and
// rnn node becomes the ops the backend already lowers, with the sequence
// unrolled. Per direction, one matmul computes the input projections of all
// time steps at once (X @ W^T + biases: the big MXU product); each step is
// then a small matmul of the previous hidden state with R^T (the fusion pass
// folds the step's slice of the projection into its epilogue as the
// residual), slices of the gates, activations, products and sums on the
// vector unit. Y, Y_h and Y_c are concatenations (or views) of the steps'
// states. The formulas are ONNX Runtime's (deep_cpu_lstm.cc, deep_cpu_gru.cc,
// rnn.cc), with one difference in the order of the sums: the biases join the
// input projection, where ONNX Runtime adds them after h @ R^T.
//
// Constant weights are sliced and transposed here (the nodes fold at once);
// weights computed at run time stay as transpose and slice nodes. Steps
// whose state is a zero constant (the first one, without initial_h) skip
// the products it would feed, which changes no bit: they add exact zeros.
//
// sequence_lens (a constant; the importer drops one equal to the full
// length everywhere) masks the steps: for batch entry b, step t updates the
// state only if t < len[b], and writes zeros into Y otherwise. A masked
// update is m*new + (1-m)*old with m in {0, 1}: exact. In the reverse
// direction the state then starts moving at t = len[b]-1, as ONNX says.
// Steps no entry takes are skipped. Entries of length 0 get zero final
// states (ONNX Runtime's choice; the spec says nothing).
#include "compiler/compiler.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// Builds the nodes one recurrence becomes. The first failure is kept and
// makes every later call return NULL, so the builder is checked once.
typedef struct {
  ir_graph *g;
  ir_node *n; // the lstm, gru or rnn
  char *err;
  size_t errlen;
  bool failed;
  ir_value *zero, *one; // scalar constants, made once
} rb;

static ir_value *rb_fail(rb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ir_value *rb_fail(rb *b, const char *fmt, ...) {
  if (!b->failed) {
    char where[160], msg[CC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(b->err, b->errlen, "%s: %s", ir_node_where(b->n, where, sizeof where), msg);
  }
  b->failed = true;
  return NULL;
}

// A node computing one value named "<node>/<what>": inferred, and folded if
// its inputs are constants (unless keep: the node that will take over one of
// the recurrence's outputs must stay a node).
static ir_value *emit(rb *b, ir_op op, ir_value *const *in, int nin, const ir_attrs *a, bool keep, const char *fmt,
                      ...) __attribute__((format(printf, 7, 8)));
static ir_value *emit(rb *b, ir_op op, ir_value *const *in, int nin, const ir_attrs *a, bool keep, const char *fmt,
                      ...) {
  if (b->failed)
    return NULL;
  for (int i = 0; i < nin; i++)
    if (!in[i])
      return rb_fail(b, "internal error: missing operand");
  char what[256], name[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(name, sizeof name, "%s/%s", b->n->name[0] ? b->n->name : ir_ops[b->n->op].name, what);
  const char *out_name = name;
  ir_node *m = ir_add_node(b->g, op, name, in, nin, 1, &out_name);
  m->src_index = b->n->src_index;
  if (a)
    m->a = *a;
  char msg[CC_ERR_LEN];
  if (ir_infer_node(m, msg, sizeof msg))
    return rb_fail(b, "%s", msg);
  ir_value *v = m->out[0];
  if (!keep && ir_fold_node(b->g, m, msg, sizeof msg) < 0)
    return rb_fail(b, "%s", msg);
  return v;
}

static ir_value *bin(rb *b, ir_op op, ir_value *x, ir_value *y, const char *what, int d, int t) {
  return emit(b, op, (ir_value *[]){x, y}, 2, NULL, false, "d%d/t%d/%s", d, t, what);
}

static ir_value *unary(rb *b, ir_op op, ir_value *x, const ir_attrs *a, const char *what, int d, int t) {
  return emit(b, op, &x, 1, a, false, "d%d/t%d/%s", d, t, what);
}

// v[start:end] along axis, everything along the other dims.
static ir_value *slice(rb *b, ir_value *v, int axis, int64_t start, int64_t end, const char *what) {
  if (!v)
    return NULL;
  ir_attrs a = {0};
  for (int i = 0; i < v->ty.rank; i++)
    a.start[i] = 0, a.end[i] = v->ty.dims[i], a.step[i] = 1;
  a.start[axis] = start, a.end[axis] = end;
  return emit(b, IR_OP_SLICE, &v, 1, &a, false, "%s", what);
}

static ir_value *reshape(rb *b, ir_value *v, int rank, const int64_t *dims, bool keep, const char *what) {
  ir_attrs a = {.ndims = rank};
  memcpy(a.dims, dims, (size_t)rank * sizeof *dims);
  return emit(b, IR_OP_RESHAPE, &v, 1, &a, keep, "%s", what);
}

static ir_value *transposed(rb *b, ir_value *v, const char *what) {
  ir_attrs a = {.perm = {1, 0}};
  return emit(b, IR_OP_TRANSPOSE, &v, 1, &a, false, "%s", what);
}

// A constant of dims (rank 0 to 2) filled with v, or with one row of per-row values.
static ir_value *constant(rb *b, int rank, const int64_t *dims, const float *rows, float v, const char *what) {
  ir_type t = ir_type_make(IR_DT_F32, rank, dims);
  float *d = malloc(ir_nbytes(&t) + 4);
  if (!d)
    abort();
  int64_t cols = rank == 2 ? dims[1] : 1;
  for (int64_t i = 0, k = ir_nelems(&t); i < k; i++)
    d[i] = rows ? rows[i / cols] : v;
  char name[512];
  snprintf(name, sizeof name, "%s/%s", b->n->name[0] ? b->n->name : ir_ops[b->n->op].name, what);
  return ir_add_const(b->g, name, &t, d);
}

static ir_value *scalar(rb *b, float v) {
  ir_value **c = v == 0 ? &b->zero : v == 1 ? &b->one : NULL;
  if (c && *c)
    return *c;
  ir_value *k = constant(b, 0, NULL, NULL, v, v == 0 ? "zero" : v == 1 ? "one" : "scalar");
  if (c)
    *c = k;
  return k;
}

static bool is_zero(const ir_value *v) {
  if (!v || !v->data)
    return false;
  for (int64_t i = 0, k = ir_nelems(&v->ty); i < k; i++)
    if (ir_get_float(v->data, v->ty.dtype, i) != 0)
      return false;
  return true;
}

static bool needed(const ir_value *v) { return v && (v->nuses || v->is_output); }

// ---------------------------------------------------------------- activations

// f(x) for activation slot k of the node, ONNX Runtime's formulas.
static ir_value *activate(rb *b, int k, ir_value *x, const char *what, int d, int t) {
  ir_rnn_act f = b->n->a.rnn_act[k] ? b->n->a.rnn_act[k] : ir_rnn_default_act(b->n->op, k % 3);
  float alpha = b->n->a.rnn_alpha[k], beta = b->n->a.rnn_beta[k];
  char w[64];
  ir_attrs a = {0};
  ir_value *s;
  switch (f) {
  case IR_RNN_SIGMOID: return unary(b, IR_OP_SIGMOID, x, NULL, what, d, t);
  case IR_RNN_TANH: return unary(b, IR_OP_TANH, x, NULL, what, d, t);
  case IR_RNN_RELU: return unary(b, IR_OP_RELU, x, NULL, what, d, t);
  case IR_RNN_LEAKY_RELU: a.alpha = alpha; return unary(b, IR_OP_LEAKY_RELU, x, &a, what, d, t);
  case IR_RNN_HARD_SIGMOID:
    a.alpha = alpha, a.beta = beta;
    return unary(b, IR_OP_HARDSIGMOID, x, &a, what, d, t);
  case IR_RNN_AFFINE: // alpha*x + beta
    snprintf(w, sizeof w, "%s.ax", what);
    s = bin(b, IR_OP_MUL, x, constant(b, 0, NULL, NULL, alpha, "alpha"), w, d, t);
    return bin(b, IR_OP_ADD, s, constant(b, 0, NULL, NULL, beta, "beta"), what, d, t);
  case IR_RNN_SCALED_TANH: // alpha*tanh(beta*x)
    snprintf(w, sizeof w, "%s.bx", what);
    s = bin(b, IR_OP_MUL, x, constant(b, 0, NULL, NULL, beta, "beta"), w, d, t);
    snprintf(w, sizeof w, "%s.tanh", what);
    s = unary(b, IR_OP_TANH, s, NULL, w, d, t);
    return bin(b, IR_OP_MUL, s, constant(b, 0, NULL, NULL, alpha, "alpha"), what, d, t);
  case IR_RNN_ELU: { // x >= 0 ? x : alpha*(exp(x) - 1) as max(x,0) + alpha*(exp(min(x,0)) - 1)
    ir_value *zero = scalar(b, 0), *one = scalar(b, 1);
    snprintf(w, sizeof w, "%s.neg", what);
    ir_value *neg = bin(b, IR_OP_MIN, x, zero, w, d, t);
    snprintf(w, sizeof w, "%s.exp", what);
    neg = unary(b, IR_OP_EXP, neg, NULL, w, d, t);
    snprintf(w, sizeof w, "%s.em1", what);
    neg = bin(b, IR_OP_SUB, neg, one, w, d, t);
    snprintf(w, sizeof w, "%s.aem1", what);
    neg = bin(b, IR_OP_MUL, neg, constant(b, 0, NULL, NULL, alpha, "alpha"), w, d, t);
    snprintf(w, sizeof w, "%s.pos", what);
    ir_value *pos = bin(b, IR_OP_MAX, x, zero, w, d, t);
    return bin(b, IR_OP_ADD, pos, neg, what, d, t);
  }
  case IR_RNN_SOFTSIGN: // x / (1 + |x|)
    snprintf(w, sizeof w, "%s.abs", what);
    s = unary(b, IR_OP_ABS, x, NULL, w, d, t);
    snprintf(w, sizeof w, "%s.den", what);
    s = bin(b, IR_OP_ADD, scalar(b, 1), s, w, d, t);
    return bin(b, IR_OP_DIV, x, s, what, d, t);
  case IR_RNN_SOFTPLUS: // log(1 + exp(x))
    snprintf(w, sizeof w, "%s.exp", what);
    s = unary(b, IR_OP_EXP, x, NULL, w, d, t);
    snprintf(w, sizeof w, "%s.1p", what);
    s = bin(b, IR_OP_ADD, scalar(b, 1), s, w, d, t);
    return unary(b, IR_OP_LOG, s, NULL, what, d, t);
  default:
    return rb_fail(b, "activation %s is not supported", ir_rnn_act_names[f]);
  }
}

// ---------------------------------------------------------------- the unrolling

// One direction's constants and running state.
typedef struct {
  int d;          // index into the direction dim of W, R, B, ...
  ir_value *xp;   // [S*B, G*H]: X @ W^T + the biases that add outside the gates' products
  ir_value *rt;   // lstm, rnn: R^T [H,G*H]; gru: R_zr^T [H,2H]
  ir_value *rht;  // gru: R_h^T [H,H]
  ir_value *rbh;  // gru with linear_before_reset: Rb_h [H] (NULL if zero)
  ir_value *p[3]; // lstm peepholes i, o, f, each [H] (NULL if P is zero)
  ir_value *h, *c; // the state before the next step
  ir_value **y;   // [S]: the state each step wrote (for Y)
} rdir;

typedef struct {
  rb b;
  bool lstm;
  int64_t S, B, I, H, G;
  const int64_t *lens; // NULL: every entry runs the whole sequence
  ir_value *zeros_bh;  // [B,H] zeros: Y of a step no entry takes
} rnn;

static ir_value *clipped(rnn *r, ir_value *x, const char *what, int d, int t) {
  float c = r->b.n->a.rnn_clip;
  if (!(c > 0))
    return x;
  ir_attrs a = {.lo = -(double)c, .hi = (double)c};
  return unary(&r->b, IR_OP_CLIP, x, &a, what, d, t);
}

// Direction d's slice of an input [D, ...] as [dims...].
static ir_value *per_dir(rnn *r, int in, int d, int rank, const int64_t *dims, const char *what) {
  ir_value *v = r->b.n->in[in];
  char w[64];
  snprintf(w, sizeof w, "d%d/%s.slice", d, what);
  v = slice(&r->b, v, 0, d, d + 1, w);
  snprintf(w, sizeof w, "d%d/%s", d, what);
  return reshape(&r->b, v, rank, dims, false, w);
}

static void setup(rnn *r, rdir *dr, ir_value *x2) {
  rb *b = &r->b;
  int d = dr->d;
  int64_t H = r->H, GH = r->G * r->H;
  bool lbr = !r->lstm && b->n->a.linear_before_reset;
  char w[64];
  ir_value *wd = per_dir(r, 1, d, 2, (int64_t[]){GH, r->I}, "W");
  ir_value *rd = per_dir(r, 2, d, 2, (int64_t[]){GH, H}, "R");
  ir_value *bd = per_dir(r, 3, d, 1, (int64_t[]){2 * GH}, "B");
  snprintf(w, sizeof w, "d%d/W.T", d);
  ir_value *wt = transposed(b, wd, w);
  if (b->n->op != IR_OP_GRU) {
    snprintf(w, sizeof w, "d%d/R.T", d);
    dr->rt = transposed(b, rd, w);
  } else {
    snprintf(w, sizeof w, "d%d/R_zr", d);
    ir_value *zr = slice(b, rd, 0, 0, 2 * H, w);
    snprintf(w, sizeof w, "d%d/R_h", d);
    ir_value *rh = slice(b, rd, 0, 2 * H, 3 * H, w);
    snprintf(w, sizeof w, "d%d/R_zr.T", d);
    dr->rt = transposed(b, zr, w);
    snprintf(w, sizeof w, "d%d/R_h.T", d);
    dr->rht = transposed(b, rh, w);
  }
  // Wb + Rb add outside the products, except Rb_h of a gru with
  // linear_before_reset, which the reset gate multiplies.
  snprintf(w, sizeof w, "d%d/Wb", d);
  ir_value *wb = slice(b, bd, 0, 0, GH, w);
  snprintf(w, sizeof w, "d%d/Rb", d);
  ir_value *rbias = slice(b, bd, 0, GH, 2 * GH, w);
  ir_value *xb;
  if (lbr) {
    snprintf(w, sizeof w, "d%d/Wb_zr", d);
    ir_value *wzr = slice(b, wb, 0, 0, 2 * H, w);
    snprintf(w, sizeof w, "d%d/Rb_zr", d);
    ir_value *rzr = slice(b, rbias, 0, 0, 2 * H, w);
    snprintf(w, sizeof w, "d%d/Wb_h", d);
    ir_value *wh = slice(b, wb, 0, 2 * H, 3 * H, w);
    snprintf(w, sizeof w, "d%d/Rb_h", d);
    dr->rbh = slice(b, rbias, 0, 2 * H, 3 * H, w);
    if (is_zero(dr->rbh))
      dr->rbh = NULL;
    ir_value *zr = emit(b, IR_OP_ADD, (ir_value *[]){wzr, rzr}, 2, NULL, false, "d%d/bias_zr", d);
    ir_attrs ca = {.axis = 0};
    xb = emit(b, IR_OP_CONCAT, (ir_value *[]){zr, wh}, 2, &ca, false, "d%d/bias", d);
  } else {
    xb = emit(b, IR_OP_ADD, (ir_value *[]){wb, rbias}, 2, NULL, false, "d%d/bias", d);
  }
  ir_value *xp = emit(b, IR_OP_MATMUL, (ir_value *[]){x2, wt}, 2, NULL, false, "d%d/XW", d);
  dr->xp = is_zero(xb) ? xp : emit(b, IR_OP_ADD, (ir_value *[]){xp, xb}, 2, NULL, false, "d%d/XW+b", d);
  if (r->lstm) {
    ir_value *pd = per_dir(r, 6, d, 1, (int64_t[]){3 * H}, "P");
    if (!is_zero(pd)) {
      static const char *const names[3] = {"Pi", "Po", "Pf"};
      for (int k = 0; k < 3; k++) {
        snprintf(w, sizeof w, "d%d/%s", d, names[k]);
        dr->p[k] = slice(b, pd, 0, k * H, (k + 1) * H, w);
      }
    }
  }
  dr->h = per_dir(r, 4, d, 2, (int64_t[]){r->B, H}, "initial_h");
  if (r->lstm)
    dr->c = per_dir(r, 5, d, 2, (int64_t[]){r->B, H}, "initial_c");
}

// Step t's gates: X_t W^T + biases + h R^T (cols [c0, c1) of the projection).
static ir_value *gates(rnn *r, rdir *dr, ir_value *rt, int64_t c0, int64_t c1, int t, const char *what) {
  rb *b = &r->b;
  ir_attrs a = {0};
  a.start[0] = t * r->B, a.end[0] = (t + 1) * r->B, a.step[0] = 1;
  a.start[1] = c0, a.end[1] = c1, a.step[1] = 1;
  ir_value *xt = emit(b, IR_OP_SLICE, &dr->xp, 1, &a, false, "d%d/t%d/x%s", dr->d, t, what);
  if (is_zero(dr->h))
    return xt;
  ir_value *hr = emit(b, IR_OP_MATMUL, (ir_value *[]){dr->h, rt}, 2, NULL, false, "d%d/t%d/hR%s", dr->d, t, what);
  return emit(b, IR_OP_ADD, (ir_value *[]){hr, xt}, 2, NULL, false, "d%d/t%d/%s", dr->d, t, what);
}

// Columns [k*H, (k+1)*H) of v.
static ir_value *gate(rnn *r, ir_value *v, int k, const char *what, int d, int t) {
  char w[64];
  snprintf(w, sizeof w, "d%d/t%d/%s", d, t, what);
  return slice(&r->b, v, 1, k * r->H, (k + 1) * r->H, w);
}

// One lstm step: the new hidden state, the new cell state into *c.
static ir_value *lstm_step(rnn *r, rdir *dr, int t, ir_value **c_out) {
  rb *b = &r->b;
  const ir_attrs *a = &b->n->a;
  int d = dr->d, k0 = d * 3; // activation slots f, g, h of this direction
  ir_value *g = gates(r, dr, dr->rt, 0, 4 * r->H, t, "gates");
  ir_value *gi = gate(r, g, 0, "gi", d, t), *go = gate(r, g, 1, "go", d, t), *gf = gate(r, g, 2, "gf", d, t),
           *gc = gate(r, g, 3, "gc", d, t);
  bool peep = dr->p[0] && !is_zero(dr->c);
  if (peep) {
    gi = bin(b, IR_OP_ADD, gi, bin(b, IR_OP_MUL, dr->c, dr->p[0], "c*Pi", d, t), "gi+cPi", d, t);
    if (!a->input_forget)
      gf = bin(b, IR_OP_ADD, gf, bin(b, IR_OP_MUL, dr->c, dr->p[2], "c*Pf", d, t), "gf+cPf", d, t);
  }
  ir_value *i = activate(b, k0, clipped(r, gi, "gi.clip", d, t), "i", d, t);
  ir_value *f = a->input_forget ? bin(b, IR_OP_SUB, scalar(b, 1), i, "f", d, t)
                                : activate(b, k0, clipped(r, gf, "gf.clip", d, t), "f", d, t);
  ir_value *cc = activate(b, k0 + 1, clipped(r, gc, "gc.clip", d, t), "c~", d, t);
  ir_value *ic = bin(b, IR_OP_MUL, i, cc, "i*c~", d, t);
  ir_value *c = is_zero(dr->c) ? ic : bin(b, IR_OP_ADD, bin(b, IR_OP_MUL, dr->c, f, "c*f", d, t), ic, "c", d, t);
  if (dr->p[1])
    go = bin(b, IR_OP_ADD, go, bin(b, IR_OP_MUL, c, dr->p[1], "C*Po", d, t), "go+CPo", d, t);
  ir_value *o = activate(b, k0, clipped(r, go, "go.clip", d, t), "o", d, t);
  *c_out = c;
  return bin(b, IR_OP_MUL, activate(b, k0 + 2, c, "h(C)", d, t), o, "h", d, t);
}

static ir_value *gru_step(rnn *r, rdir *dr, int t) {
  rb *b = &r->b;
  int d = dr->d, k0 = d * 3;
  int64_t H = r->H;
  ir_value *zr = gates(r, dr, dr->rt, 0, 2 * H, t, "zr");
  ir_value *z = activate(b, k0, clipped(r, gate(r, zr, 0, "gz", d, t), "gz.clip", d, t), "z", d, t);
  ir_value *rg = activate(b, k0, clipped(r, gate(r, zr, 1, "gr", d, t), "gr.clip", d, t), "r", d, t);
  ir_attrs a = {0};
  a.start[0] = t * r->B, a.end[0] = (t + 1) * r->B, a.step[0] = 1;
  a.start[1] = 2 * H, a.end[1] = 3 * H, a.step[1] = 1;
  ir_value *xh = emit(b, IR_OP_SLICE, &dr->xp, 1, &a, false, "d%d/t%d/xh", d, t), *pre = xh;
  if (!b->n->a.linear_before_reset) { // Xt Wh^T + (r . H) Rh^T + Wbh + Rbh
    if (!is_zero(dr->h)) {
      ir_value *rh = bin(b, IR_OP_MUL, rg, dr->h, "r*h", d, t);
      ir_value *m = emit(b, IR_OP_MATMUL, (ir_value *[]){rh, dr->rht}, 2, NULL, false, "d%d/t%d/rhR", d, t);
      pre = bin(b, IR_OP_ADD, m, xh, "gh", d, t);
    }
  } else { // Xt Wh^T + r . (H Rh^T + Rbh) + Wbh
    ir_value *hr = dr->rbh;
    if (!is_zero(dr->h)) {
      hr = emit(b, IR_OP_MATMUL, (ir_value *[]){dr->h, dr->rht}, 2, NULL, false, "d%d/t%d/hR_h", d, t);
      if (dr->rbh)
        hr = bin(b, IR_OP_ADD, hr, dr->rbh, "hR_h+Rbh", d, t);
    }
    if (hr)
      pre = bin(b, IR_OP_ADD, xh, bin(b, IR_OP_MUL, rg, hr, "r*hR_h", d, t), "gh", d, t);
  }
  ir_value *hh = activate(b, k0 + 1, clipped(r, pre, "gh.clip", d, t), "h~", d, t);
  ir_value *nh = bin(b, IR_OP_MUL, bin(b, IR_OP_SUB, scalar(b, 1), z, "1-z", d, t), hh,
                     "(1-z)*h~", d, t);
  if (is_zero(dr->h))
    return nh;
  return bin(b, IR_OP_ADD, nh, bin(b, IR_OP_MUL, z, dr->h, "z*h", d, t), "h", d, t);
}

// Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb).
static ir_value *rnn_step(rnn *r, rdir *dr, int t) {
  ir_value *g = gates(r, dr, dr->rt, 0, r->H, t, "gates");
  return activate(&r->b, dr->d * 3, clipped(r, g, "gates.clip", dr->d, t), "h", dr->d, t);
}

// Step t of direction dr: the state moves where t < len[b].
static void step(rnn *r, rdir *dr, int t) {
  rb *b = &r->b;
  int64_t valid = 0;
  for (int64_t e = 0; e < r->B; e++)
    valid += !r->lens || t < r->lens[e];
  if (!valid) { // no entry takes this step: the state stays, Y is zero
    if (!r->zeros_bh)
      r->zeros_bh = constant(b, 2, (int64_t[]){r->B, r->H}, NULL, 0, "zeros");
    dr->y[t] = r->zeros_bh;
    return;
  }
  ir_value *c = NULL, *h = r->lstm ? lstm_step(r, dr, t, &c) : r->b.n->op == IR_OP_GRU ? gru_step(r, dr, t)
                                                                                   : rnn_step(r, dr, t);
  if (valid < r->B) {
    float *m = malloc((size_t)r->B * sizeof *m), *k = malloc((size_t)r->B * sizeof *k);
    if (!m || !k)
      abort();
    for (int64_t e = 0; e < r->B; e++)
      m[e] = t < r->lens[e], k[e] = 1 - m[e];
    char w[64];
    snprintf(w, sizeof w, "d%d/t%d/mask", dr->d, t);
    ir_value *mv = constant(b, 2, (int64_t[]){r->B, 1}, m, 0, w);
    snprintf(w, sizeof w, "d%d/t%d/keep", dr->d, t);
    ir_value *kv = constant(b, 2, (int64_t[]){r->B, 1}, k, 0, w);
    free(m), free(k);
    // Y takes the masked new state: zeros past the entry's length.
    ir_value *hm = bin(b, IR_OP_MUL, h, mv, "h.masked", dr->d, t);
    dr->y[t] = hm;
    h = is_zero(dr->h) ? hm : bin(b, IR_OP_ADD, hm, bin(b, IR_OP_MUL, dr->h, kv, "h.kept", dr->d, t), "h.next", dr->d, t);
    if (c) {
      ir_value *cm = bin(b, IR_OP_MUL, c, mv, "c.masked", dr->d, t);
      c = is_zero(dr->c) ? cm
                         : bin(b, IR_OP_ADD, cm, bin(b, IR_OP_MUL, dr->c, kv, "c.kept", dr->d, t), "c.next", dr->d, t);
    }
  } else {
    dr->y[t] = h;
  }
  dr->h = h;
  if (c)
    dr->c = c;
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

// The states of steps (or directions) stacked along a new leading dim and
// viewed as dims: the node that takes over one of the recurrence's outputs.
static ir_value *stack(rnn *r, ir_value **v, int nv, int rank, const int64_t *dims, const char *what) {
  rb *b = &r->b;
  char w[64];
  if (nv == 1)
    return reshape(b, v[0], rank, dims, true, what);
  ir_value **pieces = calloc((size_t)nv, sizeof *pieces);
  if (!pieces)
    abort();
  for (int i = 0; i < nv; i++) {
    snprintf(w, sizeof w, "%s.%d", what, i);
    pieces[i] = reshape(b, v[i], 3, (int64_t[]){1, r->B, r->H}, false, w);
  }
  ir_attrs a = {.axis = 0};
  snprintf(w, sizeof w, "%s.stack", what);
  ir_value *cat = b->failed ? NULL : emit(b, IR_OP_CONCAT, pieces, nv, &a, false, "%s", w);
  free(pieces);
  return reshape(b, cat, rank, dims, true, what);
}

static int unroll(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  const ir_attrs *a = &n->a;
  rnn r = {.b = {.g = g, .n = n, .err = err, .errlen = errlen}, .lstm = n->op == IR_OP_LSTM};
  ir_value *x = n->in[0];
  r.S = x->ty.dims[0], r.B = x->ty.dims[1], r.I = x->ty.dims[2], r.H = a->hidden;
  r.G = r.lstm ? 4 : n->op == IR_OP_GRU ? 3 : 1;
  int D = a->rnn_dir == IR_RNN_BIDIRECTIONAL ? 2 : 1, per = ir_rnn_nacts(n->op), li = r.lstm ? 7 : 5;
  char where[160];
  ir_node_where(n, where, sizeof where);
  if (x->ty.dtype != IR_DT_F32)
    return ir_fail(err, errlen, "%s: %s in %s is not supported (f32 only)", where, ir_ops[n->op].name,
                   ir_dtypes[x->ty.dtype].name);
  if (r.S < 1 || r.B < 1)
    return ir_fail(err, errlen, "%s: an empty sequence or batch is not supported", where);
  for (int k = 0; k < D * per; k++)
    if (a->rnn_act[k / per * 3 + k % per] == IR_RNN_THRESHOLDED_RELU)
      return ir_fail(err, errlen,
                     "%s: activation ThresholdedRelu is not supported (x > alpha ? x : 0 needs a comparison, which "
                     "the vector unit lowering does not have)", where);
  int64_t *lens = NULL;
  bool empty_entries = false;
  if (n->nin > li) {
    ir_value *l = n->in[li];
    if (!l->data)
      return ir_fail(err, errlen, "%s: sequence_lens must be a constant", where);
    if (!(lens = malloc((size_t)r.B * sizeof *lens)))
      abort();
    for (int64_t e = 0; e < r.B; e++) {
      int64_t len = lens[e] = ir_get_int(l->data, l->ty.dtype, e);
      if (len < 0 || len > r.S) {
        free(lens);
        return ir_fail(err, errlen, "%s: sequence_lens[%lld] = %lld is outside [0, %lld]", where, (long long)e,
                       (long long)len, (long long)r.S);
      }
      empty_entries = empty_entries || !lens[e];
    }
    r.lens = lens;
  }
  rb *b = &r.b;
  ir_value *x2 = reshape(b, x, 2, (int64_t[]){r.S * r.B, r.I}, false, "X2d");
  rdir dirs[2] = {{.d = 0}, {.d = 1}};
  for (int d = 0; d < D; d++) {
    if (!(dirs[d].y = calloc((size_t)r.S, sizeof *dirs[d].y)))
      abort();
    setup(&r, &dirs[d], x2);
  }
  // Directions interleaved: their steps are independent work the units overlap.
  for (int64_t k = 0; k < r.S && !b->failed; k++)
    for (int d = 0; d < D; d++) {
      bool rev = a->rnn_dir == IR_RNN_REVERSE || d == 1;
      step(&r, &dirs[d], (int)(rev ? r.S - 1 - k : k));
    }
  if (empty_entries) { // ONNX Runtime: zero final states for entries of length 0
    float *nz = malloc((size_t)r.B * sizeof *nz);
    if (!nz)
      abort();
    for (int64_t e = 0; e < r.B; e++)
      nz[e] = lens[e] > 0;
    ir_value *mv = constant(b, 2, (int64_t[]){r.B, 1}, nz, 0, "nonempty");
    free(nz);
    for (int d = 0; d < D; d++) {
      if (!is_zero(dirs[d].h))
        dirs[d].h = bin(b, IR_OP_MUL, dirs[d].h, mv, "h.final", d, (int)r.S);
      if (r.lstm && !is_zero(dirs[d].c))
        dirs[d].c = bin(b, IR_OP_MUL, dirs[d].c, mv, "c.final", d, (int)r.S);
    }
  }
  ir_value *outs[3] = {n->out[0], n->out[1], r.lstm ? n->out[2] : NULL}, *fin[3] = {0};
  int64_t S = r.S, B = r.B, H = r.H;
  if (needed(outs[0])) {
    ir_value **ys = calloc((size_t)(S * D), sizeof *ys);
    if (!ys)
      abort();
    for (int64_t t = 0; t < S; t++)
      for (int d = 0; d < D; d++)
        ys[t * D + d] = dirs[d].y[t];
    fin[0] = stack(&r, ys, (int)(S * D), 4, (int64_t[]){S, D, B, H}, "Y");
    free(ys);
  }
  ir_value *hs[2] = {dirs[0].h, dirs[1].h}, *cs[2] = {dirs[0].c, dirs[1].c};
  if (needed(outs[1]))
    fin[1] = stack(&r, hs, D, 3, (int64_t[]){D, B, H}, "Y_h");
  if (needed(outs[2]))
    fin[2] = stack(&r, cs, D, 3, (int64_t[]){D, B, H}, "Y_c");
  for (int d = 0; d < D; d++)
    free(dirs[d].y);
  free(lens);
  if (b->failed)
    return -1;
  ir_remove_node(g, n);
  for (int i = 0; i < 3; i++)
    if (fin[i])
      take_output(fin[i]->producer, outs[i]);
  return 0;
}

int cc_unroll_rnn(ir_graph *g, char *err, size_t errlen) {
  int count = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    if (n->op != IR_OP_LSTM && n->op != IR_OP_GRU && n->op != IR_OP_RNN)
      continue;
    if (unroll(g, n, err, errlen))
      return -1;
    if (ir_toposort(g))
      return ir_fail(err, errlen, "unroll_rnn made a cycle");
    count++;
    i = -1; // nodes moved: rescan (each pass over the list removes one recurrence)
  }
  ir_prune(g);
  return count;
}
