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

static ir_value *to_f32(cc_rewrite *b, ir_value *v, const char *what) {
  if (v->ty.dtype == IR_DT_F32) return v;
  return cc_rw_cast(b, v, IR_DT_F32, what);
}

static ir_value *scalar(cc_rewrite *b, float f, const char *what) { return cc_rw_f32const(b, 0, NULL, NULL, f, what); }

static bool is_int(ir_dtype t) { return t != IR_DT_F32 && t != IR_DT_BF16 && t != IR_DT_BOOL; }

static int rewrite(ir_graph *g, ir_node *n, char *err, size_t errlen) {
  cc_rewrite b = {g, n, err, errlen, false};
  ir_value *out = n->out[0], *r;
  if (n->op == IR_OP_POW) {
    ir_value *x = to_f32(&b, n->in[0], "base_f32"), *y = to_f32(&b, n->in[1], "exponent_f32");
    ir_value *p = cc_rw_node(&b, IR_OP_POW, (ir_value *[]){x, y}, 2, &n->a, "pow_f32");
    ir_value *zero = scalar(&b, 0, "zero"), *half = scalar(&b, 0.5f, "half");
    ir_value *neg = cc_rw_node(&b, IR_OP_LESS, (ir_value *[]){p, zero}, 2, NULL, "negative");
    ir_value *dn = cc_rw_node(&b, IR_OP_SUB, (ir_value *[]){p, half}, 2, NULL, "down");
    ir_value *up = cc_rw_node(&b, IR_OP_ADD, (ir_value *[]){p, half}, 2, NULL, "up");
    r = cc_rw_node(&b, IR_OP_WHERE, (ir_value *[]){neg, dn, up}, 3, NULL, "rounded");
  } else {
    ir_value *x = to_f32(&b, n->in[0], "input_f32");
    r = cc_rw_node(&b, n->op, &x, 1, &n->a, "f32");
  }
  ir_attrs c = {.to = out->ty.dtype};
  r = cc_rw_node(&b, IR_OP_CAST, &r, 1, &c, "result");
  return cc_rw_replace(&b, r);
}

static bool widened(const ir_node *n) {
  bool pow = n->op == IR_OP_POW && is_int(n->out[0]->ty.dtype);
  bool pool = n->op == IR_OP_MAXPOOL && n->nout == 1 && is_int(n->out[0]->ty.dtype);
  return pow || pool;
}

int cc_widen_integers(ir_graph *g, char *err, size_t errlen) {
  return cc_rewrite_all(g, widened, "widen_integers", rewrite, err, errlen);
}
