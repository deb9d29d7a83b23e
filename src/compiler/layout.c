// Layout assignment (docs/ir.md, "Passes"): 1-D and 2-D convs and pools
// compute channels last (ir_attrs.nhwc), which is how the MXU wants
// activations (channels are the contraction dim of a conv). Each such node
// gets a transpose in and a transpose back; then transposes sink through
// elementwise ops towards the next node that wants channels last, where the
// pair composes into the identity and disappears. What is left at the end is
// typically one transpose after the graph input and one before a flatten or
// a graph output; transposes that only move dims of size 1 become reshapes.
//
// Every rewrite keeps the value names the graph had: when an op moves
// before a transpose, the op computes a fresh value and the transpose after
// it takes over the op's old output value.
#include "compiler/compiler.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const int to_last[2][4] = {{0, 2, 1}, {0, 2, 3, 1}};  // NCW -> NWC, NCHW -> NHWC
static const int to_first[2][4] = {{0, 2, 1}, {0, 3, 1, 2}}; // and back

// Read by n alone (maybe in several slots), and not a graph output.
static bool only_used_by(const ir_value *v, const ir_node *n) {
  if (v->is_output || !v->nuses)
    return false;
  for (int i = 0; i < v->nuses; i++)
    if (v->uses[i].node != n)
      return false;
  return true;
}

// The transpose computing v, if v is nothing else's.
static ir_node *own_transpose(const ir_value *v, const ir_node *reader) {
  ir_node *t = v->producer;
  return t && t->op == IR_OP_TRANSPOSE && only_used_by(v, reader) ? t : NULL;
}

static bool same_perm(const ir_node *a, const ir_node *b, int rank) {
  return !memcmp(a->a.perm, b->a.perm, (size_t)rank * sizeof a->a.perm[0]);
}

static void remove_if_dead(ir_graph *g, ir_node *n) {
  bool dead = true;
  for (int i = 0; i < n->nout; i++)
    dead = dead && !n->out[i]->nuses && !n->out[i]->is_output;
  if (dead)
    ir_remove_node(g, n);
}

// A transpose of v (not yet inferred), named after base.
static ir_node *transpose_of(ir_graph *g, const ir_node *from, ir_value *v, const int *perm, int rank,
                             const char *base) {
  char name[512], node_name[512];
  snprintf(name, sizeof name, "%s.nhwc", base);
  // Its own node name, so a per-layer report tells it from the op it serves.
  snprintf(node_name, sizeof node_name, "%s (layout)", from->name && from->name[0] ? from->name : ir_ops[from->op].name);
  ir_node *t = ir_add_node(g, IR_OP_TRANSPOSE, node_name, &v, 1, 1, (const char *[]){name});
  memcpy(t->a.perm, perm, (size_t)rank * sizeof *perm);
  return t;
}

// n computes into a fresh value; a transpose (perm) of it takes over n's old
// output value, with its name, uses and graph-output mark. Both inferred.
static ir_node *transpose_after(ir_graph *g, ir_node *n, const int *perm, char *err, size_t errlen) {
  ir_value *y = n->out[0];
  ir_node *t = transpose_of(g, n, y, perm, y->ty.rank, y->name);
  ir_value *f = t->out[0];
  t->out[0] = y, y->producer = t, y->producer_slot = 0;
  n->out[0] = f, f->producer = n, f->producer_slot = 0;
  ir_set_input(t, 0, f);
  if (ir_infer_node(n, err, errlen) || ir_infer_node(t, err, errlen))
    return NULL;
  return t;
}

// Transposing a dim of size 1 moves no bytes: a transpose whose dims of
// other sizes keep their order is a reshape.
static bool moves_unit_dims_only(const ir_node *t) {
  const ir_type *x = &t->in[0]->ty;
  int last = -1;
  for (int i = 0; i < x->rank; i++) {
    int d = t->a.perm[i];
    if (x->dims[d] == 1)
      continue;
    if (d < last)
      return false;
    last = d;
  }
  return true;
}

static bool is_identity_perm(const ir_node *t) {
  for (int i = 0; i < t->in[0]->ty.rank; i++)
    if (t->a.perm[i] != i)
      return false;
  return true;
}

// ---------------------------------------------------------------- rewrites
//
// Each returns 1 if it rewrote the graph, 0 if not, -1 on error. They may
// remove nodes and append new ones; the caller restores order.

// T2(T1(x)) -> one transpose; identity -> gone; T(constant) -> folded.
static int rw_transpose(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  ir_value *x = n->in[0];
  int rc = x->data ? ir_fold_node(g, n, err, errlen) : 0;
  if (rc)
    return rc;
  ir_node *p = x->producer;
  if (p && p->op == IR_OP_TRANSPOSE) {
    int q[IR_MAX_DIMS], r = x->ty.rank;
    for (int i = 0; i < r; i++)
      q[i] = p->a.perm[n->a.perm[i]]; // out[i] = x[perm2[i]] = in[perm1[perm2[i]]]
    memcpy(n->a.perm, q, (size_t)r * sizeof *q);
    ir_set_input(n, 0, p->in[0]);
    remove_if_dead(g, p);
    return 1;
  }
  // Two transposes of one value by one perm (a graph input read by two
  // convs): one does.
  for (int u = 0; u < x->nuses && !n->out[0]->is_output; u++) {
    ir_node *m = x->uses[u].node;
    if (m != n && m->op == IR_OP_TRANSPOSE && same_perm(m, n, x->ty.rank)) {
      ir_replace_uses(n->out[0], m->out[0]);
      ir_remove_node(g, n);
      return 1;
    }
  }
  if (is_identity_perm(n) && !n->out[0]->is_output) {
    ir_replace_uses(n->out[0], x);
    ir_remove_node(g, n);
    return 1;
  }
  return 0;
}

// u(T(x)) -> T(u(x)) for elementwise u.
static int rw_unary(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  ir_node *t = own_transpose(n->in[0], n);
  if (!t)
    return 0;
  int perm[IR_MAX_DIMS];
  memcpy(perm, t->a.perm, sizeof perm);
  ir_set_input(n, 0, t->in[0]);
  ir_remove_node(g, t);
  return transpose_after(g, n, perm, err, errlen) ? 1 : -1;
}

// T(x) op c -> T(x op c') with c' = T^-1(c) (c aligned to the rank first);
// T(x) op T(y) -> T(x op y) for one perm. Operand order is kept.
static int rw_binary(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  ir_node *t[2] = {own_transpose(n->in[0], n), own_transpose(n->in[1], n)};
  int k = t[0] ? 0 : 1; // a transposed operand
  if (!t[k])
    return 0;
  int r = n->in[k]->ty.rank, perm[IR_MAX_DIMS];
  memcpy(perm, t[k]->a.perm, sizeof perm);
  // The operands' types after the rewrite; c is a constant to permute.
  ir_type ti[2];
  ir_value *c = NULL;
  int inv[IR_MAX_DIMS];
  for (int i = 0; i < r; i++)
    inv[perm[i]] = i;
  ir_type al = {0};
  if (t[0] && t[1] && n->in[1 - k]->ty.rank == r && same_perm(t[0], t[1], r)) {
    ti[0] = t[0]->in[0]->ty, ti[1] = t[1]->in[0]->ty;
  } else {
    c = n->in[1 - k];
    if (!c->data || c->ty.rank > r || ir_nbytes(&c->ty) > IR_FOLD_MAX_BYTES)
      return 0;
    // c aligned to rank r (1s in front), then permuted by the inverse perm,
    // so that transposing it by perm gives the aligned c back.
    al = (ir_type){c->ty.dtype, r, {0}};
    for (int d = 0; d < r; d++)
      al.dims[d] = d < r - c->ty.rank ? 1 : c->ty.dims[d - (r - c->ty.rank)];
    ti[k] = t[k]->in[0]->ty;
    ti[1 - k] = (ir_type){c->ty.dtype, r, {0}};
    for (int d = 0; d < r; d++)
      ti[1 - k].dims[d] = al.dims[inv[d]];
  }
  // Only when broadcasting gives the same result once transposed.
  ir_type b, bt;
  if (ir_broadcast(&ti[0], &ti[1], &b) || b.rank != r)
    return 0;
  bt = b;
  for (int i = 0; i < r; i++)
    bt.dims[i] = b.dims[perm[i]];
  bt.dtype = n->out[0]->ty.dtype;
  if (!ir_type_eq(&bt, &n->out[0]->ty))
    return 0;
  ir_value *in[2];
  if (c) {
    char name[512];
    snprintf(name, sizeof name, "%s.r", c->name);
    ir_node *rs = ir_add_node(g, IR_OP_RESHAPE, n->name, &c, 1, 1, (const char *[]){name});
    rs->a.ndims = r;
    memcpy(rs->a.dims, al.dims, sizeof al.dims);
    ir_node *tc = transpose_of(g, n, rs->out[0], inv, r, c->name);
    ir_value *cv = tc->out[0];
    if (ir_infer_node(rs, err, errlen) || ir_fold_node(g, rs, err, errlen) != 1 || ir_infer_node(tc, err, errlen) ||
        ir_fold_node(g, tc, err, errlen) != 1)
      return ir_fail(err, errlen, "cannot permute constant '%s'", c->name);
    in[k] = t[k]->in[0], in[1 - k] = cv;
  } else {
    in[0] = t[0]->in[0], in[1] = t[1]->in[0];
  }
  ir_set_input(n, 0, in[0]);
  ir_set_input(n, 1, in[1]);
  remove_if_dead(g, t[k]);
  if (t[1 - k] && t[1 - k] != t[k])
    remove_if_dead(g, t[1 - k]);
  return transpose_after(g, n, perm, err, errlen) ? 1 : -1;
}

// concat(T(x1), ..., T(xn), axis) -> T(concat(x1, ..., xn, perm[axis])).
static int rw_concat(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  ir_node *t0 = own_transpose(n->in[0], n);
  int r = n->in[0]->ty.rank;
  if (!t0)
    return 0;
  for (int i = 1; i < n->nin; i++) {
    ir_node *t = own_transpose(n->in[i], n);
    if (!t || !same_perm(t, t0, r))
      return 0;
  }
  int perm[IR_MAX_DIMS];
  memcpy(perm, t0->a.perm, sizeof perm);
  for (int i = 0; i < n->nin; i++) {
    ir_node *t = n->in[i]->producer;
    ir_set_input(n, i, t->in[0]);
    remove_if_dead(g, t); // once its last reader slot moved
  }
  n->a.axis = perm[n->a.axis];
  return transpose_after(g, n, perm, err, errlen) ? 1 : -1;
}

// matmul(reshape(T(x)) to [N, K], B) with constant 2-D B and T keeping dim
// 0: the flatten reads x directly and B's rows are permuted to match, so a
// channels-last feature map needs no transpose before a classifier.
static int rw_matmul(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  (void)err, (void)errlen;
  ir_value *a = n->in[0], *b = n->in[1];
  ir_node *rs = a->producer;
  // a must be read only as A: its elements change order.
  if (!rs || rs->op != IR_OP_RESHAPE || a->nuses != 1 || a->is_output || a->ty.rank != 2 || !b->data ||
      b->ty.rank != 2)
    return 0;
  ir_node *t = own_transpose(rs->in[0], rs);
  // (A transpose of dims of 1 will be a reshape: no need to copy B.)
  if (!t || t->a.perm[0] != 0 || t->out[0]->ty.dims[0] != a->ty.dims[0] || moves_unit_dims_only(t))
    return 0;
  const ir_type *x = &t->in[0]->ty, *y = &t->out[0]->ty;
  int r = x->rank;
  int64_t K = a->ty.dims[1], Nc = b->ty.dims[1], rest = 1;
  for (int d = 1; d < r; d++)
    rest *= x->dims[d];
  if (rest != K)
    return 0;
  size_t row = (size_t)Nc * (size_t)ir_dtypes[b->ty.dtype].bytes;
  uint8_t *data = calloc((size_t)K * row + 1, 1);
  if (!data)
    abort();
  // Row k' of the new B is x's element order; row k the transposed order.
  int64_t ys[IR_MAX_DIMS], idx[IR_MAX_DIMS] = {0};
  ys[r - 1] = 1;
  for (int i = r - 2; i >= 1; i--)
    ys[i] = ys[i + 1] * y->dims[i + 1];
  int pos[IR_MAX_DIMS]; // x dim d is y dim pos[d]
  for (int i = 0; i < r; i++)
    pos[t->a.perm[i]] = i;
  for (int64_t kk = 0; kk < K; kk++) {
    int64_t k = 0;
    for (int d = 1; d < r; d++)
      k += idx[d] * ys[pos[d]];
    memcpy(data + (size_t)kk * row, (const uint8_t *)b->data + (size_t)k * row, row);
    for (int d = r - 1; d >= 1 && ++idx[d] == x->dims[d]; d--)
      idx[d] = 0;
  }
  char name[512];
  snprintf(name, sizeof name, "%s.nhwc", b->name);
  ir_value *nb = ir_add_const(g, name, &b->ty, data);
  ir_set_input(rs, 0, t->in[0]);
  ir_set_input(n, 1, nb);
  ir_remove_node(g, t);
  return 1;
}

static int rewrite(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  switch (n->op) {
  case IR_OP_TRANSPOSE: return rw_transpose(g, n, err, errlen);
  case IR_OP_RELU: case IR_OP_CLIP: case IR_OP_SIGMOID: case IR_OP_TANH: case IR_OP_HARDSIGMOID:
  case IR_OP_HARDSWISH: case IR_OP_IDENTITY:
    return rw_unary(g, n, err, errlen);
  case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV: return rw_binary(g, n, err, errlen);
  case IR_OP_CONCAT: return rw_concat(g, n, err, errlen);
  case IR_OP_MATMUL: return rw_matmul(g, n, err, errlen);
  default: return 0;
  }
}

// ---------------------------------------------------------------- the pass

// Channels last for n: transpose in, nhwc, transpose back.
static int to_nhwc(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  int r = n->in[0]->ty.rank;
  ir_node *t = transpose_of(g, n, n->in[0], to_last[r - 3], r, n->in[0]->name);
  if (ir_infer_node(t, err, errlen))
    return -1;
  ir_set_input(n, 0, t->out[0]);
  n->a.nhwc = true;
  return transpose_after(g, n, to_first[r - 3], err, errlen) ? 0 : -1;
}

static int order(ir_graph *g, char *err, size_t errlen) {
  if (ir_toposort(g))
    return ir_fail(err, errlen, "assign_layout made a cycle");
  ir_prune(g);
  return 0;
}

int cc_assign_layout(ir_graph *g, char *err, size_t errlen) {
  int count = 0;
  for (int i = 0, n0 = g->nnodes; i < n0; i++) {
    ir_node *n = g->nodes[i];
    int r = n->nin ? n->in[0]->ty.rank : 0;
    // A residual has the output's layout: fusion runs after this pass.
    if (!(ir_ops[n->op].attrs & IR_A_LAYOUT) || n->a.nhwc || n->a.residual || (r != 3 && r != 4))
      continue;
    if (to_nhwc(g, n, err, errlen))
      return -1;
    count++;
  }
  if (order(g, err, errlen))
    return -1;
  // Sink and cancel to a fixed point. A sweep may remove nodes before the
  // one it looks at (skipping one) and appends nodes: the next sweep, after
  // reordering, sees what this one missed.
  for (int changed = 1; changed;) {
    changed = 0;
    for (int i = 0; i < g->nnodes; i++) {
      int rc = rewrite(g, g->nodes[i], err, errlen);
      if (rc < 0)
        return -1;
      changed += rc;
    }
    if (order(g, err, errlen))
      return -1;
    count += changed;
  }
  // Last, transposes that move only dims of size 1 become views (earlier,
  // they would stop a pair from cancelling).
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    if (n->op != IR_OP_TRANSPOSE || !moves_unit_dims_only(n))
      continue;
    const ir_type *y = &n->out[0]->ty;
    n->op = IR_OP_RESHAPE;
    n->a.ndims = y->rank;
    memcpy(n->a.dims, y->dims, sizeof y->dims);
    memset(n->a.perm, 0, sizeof n->a.perm);
    count++;
  }
  return order(g, err, errlen) ? -1 : count;
}
