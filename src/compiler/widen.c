// Integer pow and maxpool, which the lowering has only for f32, computed in
// f32 and converted back:
//
//   pow(x, y) of an integer x = round(pow(f32(x), f32(y))), rounding half away
//     from zero (the VPU's pow is exp(y * log(x)), a few ulps off an integral
//     result, which a truncating cast would drop by one)
//   maxpool(x) of an integer x = cast(maxpool(f32(x)))  (exact)
//
// maxpool is exact while the values fit in the 24 bits of an f32 significand;
// pow while exp(y * log(x)) is within 0.5 of the integer: results up to about
// 2^16 (9^7 = 4782969 comes out 4782971).
#include "compiler/compiler.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  ir_graph *g;
  ir_node *n;
  char *err;
  size_t errlen;
  bool failed;
} wb;

static ir_value *node(wb *b, ir_op op, ir_value *const *in, int nin, const ir_attrs *a, const char *what) {
  if (b->failed) return NULL;
  char name[512], msg[CC_ERR_LEN], where[160];
  snprintf(name, sizeof name, "%s/%s", b->n->name[0] ? b->n->name : ir_ops[b->n->op].name, what);
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

static ir_value *to_f32(wb *b, ir_value *v, const char *what) {
  if (v->ty.dtype == IR_DT_F32) return v;
  ir_attrs a = {.to = IR_DT_F32};
  return node(b, IR_OP_CAST, &v, 1, &a, what);
}

static ir_value *scalar(wb *b, float f, const char *what) {
  ir_type t = ir_type_make(IR_DT_F32, 0, NULL);
  float *d = malloc(8);
  if (!d) abort();
  d[0] = f;
  char name[512];
  snprintf(name, sizeof name, "%s/%s", b->n->name[0] ? b->n->name : ir_ops[b->n->op].name, what);
  return ir_add_const(b->g, name, &t, d);
}

static bool is_int(ir_dtype t) { return t != IR_DT_F32 && t != IR_DT_BF16 && t != IR_DT_BOOL; }

static int rewrite(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  wb b = {g, n, err, errlen, false};
  ir_value *out = n->out[0], *r;
  if (n->op == IR_OP_POW) {
    ir_value *x = to_f32(&b, n->in[0], "base_f32"), *y = to_f32(&b, n->in[1], "exponent_f32");
    ir_value *p = node(&b, IR_OP_POW, (ir_value *[]){x, y}, 2, &n->a, "pow_f32");
    ir_value *zero = scalar(&b, 0, "zero"), *half = scalar(&b, 0.5f, "half");
    ir_value *neg = node(&b, IR_OP_LESS, (ir_value *[]){p, zero}, 2, NULL, "negative");
    ir_value *dn = node(&b, IR_OP_SUB, (ir_value *[]){p, half}, 2, NULL, "down");
    ir_value *up = node(&b, IR_OP_ADD, (ir_value *[]){p, half}, 2, NULL, "up");
    r = node(&b, IR_OP_WHERE, (ir_value *[]){neg, dn, up}, 3, NULL, "rounded");
  } else {
    ir_value *x = to_f32(&b, n->in[0], "input_f32");
    r = node(&b, n->op, &x, 1, &n->a, "f32");
  }
  ir_attrs c = {.to = out->ty.dtype};
  r = node(&b, IR_OP_CAST, &r, 1, &c, "result");
  if (b.failed) return -1;
  ir_node *m = r->producer;
  ir_remove_node(g, n);
  r->producer = NULL;
  m->out[0] = out;
  out->producer = m, out->producer_slot = 0;
  return 0;
}

int cc_widen_integers(ir_graph *g, char *err, size_t errlen) {
  int count = 0;
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    bool pow = n->op == IR_OP_POW && is_int(n->out[0]->ty.dtype);
    bool pool = n->op == IR_OP_MAXPOOL && n->nout == 1 && is_int(n->out[0]->ty.dtype);
    if (!pow && !pool) continue;
    if (rewrite(g, n, err, errlen)) return -1;
    if (ir_toposort(g)) return ir_fail(err, errlen, "widen_integers made a cycle");
    count++;
    i = -1; // nodes moved: rescan
  }
  ir_prune(g);
  return count;
}
