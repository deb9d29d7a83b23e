// QuantizeLinear and DequantizeLinear on the vector unit (docs/compiler.md,
// "ONNX int8 operators"), with ONNX Runtime's exact arithmetic:
//
//   quantize:   y = sat(rne(x / scale) + zp)      v.div.i32 (fp32 division,
//               rounded to nearest even into int32), then v.iadd into i8/u8
//   dequantize: y = f32(x - zp) * scale           v.iadd.f32 (exact), v.mul
//
// Scale and zero point (per tensor, or per axis: one per index along it) are
// read from HBM, so they may be computed at run time. The tensor is viewed as
// [outer, C, inner] with C the axis (1 per tensor) and streamed in blocks:
// rows of C with inner columns (the parameter one per row), or, when inner is
// 1, rows of outer with C columns (the parameters a row broadcast down them).
#include <inttypes.h>
#include <string.h>

#include "compiler/compiler.h"
#include "sim/numerics.h"

static isa_dtype vdt(ir_dtype t) {
  switch (t) {
  case IR_DT_F32: return DT_F32;
  case IR_DT_I32: return DT_I32;
  default: return DT_I8; // i8 and u8 (the iadd flags tell them apart)
  }
}

static int lower_qdq(cc_lower_ctx *c, char *err, size_t errlen) {
  const ir_node *n = c->n;
  cc_emit *e = c->e;
  bool quant = n->op == IR_OP_QUANTIZE_LINEAR;
  const ir_value *x = n->in[0], *s = n->in[1], *z = n->in[2], *y = n->out[0];
  ir_dtype qt = quant ? y->ty.dtype : x->ty.dtype; // the integer side
  if (quant ? x->ty.dtype != IR_DT_F32 : y->ty.dtype != IR_DT_F32)
    return ir_fail(err, errlen, "only f32 is lowered on the float side (got %s)",
                   ir_dtypes[quant ? x->ty.dtype : y->ty.dtype].name);
  if (qt != IR_DT_I8 && qt != IR_DT_U8 && (quant || qt != IR_DT_I32))
    return ir_fail(err, errlen, "integer type %s is not lowered (i8 and u8%s)", ir_dtypes[qt].name,
                   quant ? "" : ", or i32 for dequantize");
  bool u8 = qt == IR_DT_U8;
  int64_t total = ir_nelems(&x->ty), C = ir_nelems(&s->ty), outer = 1, inner = total;
  if (C > 1) {
    int ax = n->a.axis < 0 ? n->a.axis + x->ty.rank : n->a.axis;
    outer = 1, inner = 1;
    for (int d = 0; d < ax; d++) outer *= x->ty.dims[d];
    for (int d = ax + 1; d < x->ty.rank; d++) inner *= x->ty.dims[d];
  } else C = 1;
  int xe = ir_dtypes[x->ty.dtype].bytes, ye = ir_dtypes[y->ty.dtype].bytes, ze = ir_dtypes[z->ty.dtype].bytes;

  // parameters: scale f32 [C], zero point [C] as stored, then as i32 (negated for dequantize)
  uint64_t sv = cc_vmem_alloc(e, (uint64_t)C * 4, "scales");
  uint64_t zraw = cc_vmem_alloc(e, (uint64_t)C * (uint64_t)ze, "zero points");
  uint64_t zv = cc_vmem_alloc(e, (uint64_t)C * 4, "zero points as i32");
  uint64_t zero = cc_vmem_alloc(e, 4, "a zero");
  uint64_t vfree = cc_vmem_free_bytes(e);
  int64_t cap = (int64_t)(vfree > 4096 ? (vfree - 4096) / 16 : 0); // elements per block: 2 x (4 + 4) bytes each
  if (cap > (1 << 20)) cap = 1 << 20;
  if (cap < 1) return ir_fail(err, errlen, "no VMEM left for the tiles (chip '%s')", c->chip->name);
  uint64_t bin[2], bout[2];
  for (int i = 0; i < 2; i++) {
    bin[i] = cc_vmem_alloc(e, (uint64_t)cap * 4, "input tiles");
    bout[i] = cc_vmem_alloc(e, (uint64_t)cap * 4, "output tiles");
  }
  if (cc_emit_failed(e, err, errlen)) return -1;
  cc_copy(e, SPACE_LOCAL, sv, SPACE_HBM, cc_addr(c, s), (uint64_t)C * 4);
  cc_copy(e, SPACE_LOCAL, zraw, SPACE_HBM, cc_addr(c, z), (uint64_t)C * (uint64_t)ze);
  int32_t zc = 0;
  cc_copy(e, SPACE_LOCAL, zero, SPACE_HBM, cc_hbm_const(e, &zc, 4), 4);
  cc_vblock zb = {.rows = 1, .cols = (uint64_t)C, .src2_stride = 0, .src2_colstep = 0,
                  .zp = (int32_t)(u8 && ze == 1 ? NUM_IADD_A_U8 : 0)};
  cc_vpu(e, VOP_IADD, DT_I32, zv, vdt(z->ty.dtype), zraw, DT_I32, zero, &zb);
  if (!quant) { // -zp: exact through fp32 (|zp| <= 255; an i32 zero point is 0)
    cc_vblock nb = {.rows = 1, .cols = (uint64_t)C};
    cc_vpu(e, VOP_NEG, DT_I32, zv, DT_I32, zv, DT_F32, 0, &nb);
  }

  // blocks: (outer index, axis range, inner range) or, with inner 1, (outer range, all of C)
  bool rows_are_c = inner > 1 || C == 1;
  int64_t cr = rows_are_c ? (C < cap ? C : cap) : 0;
  int64_t ic = rows_are_c ? (inner < cap / cr ? inner : cap / cr) : 0;
  int64_t orows = rows_are_c ? 0 : (cap / C > 0 ? cap / C : 1);
  if (!rows_are_c && C > cap) return ir_fail(err, errlen, "an axis of %" PRId64 " does not fit VMEM", C);
  int k = 0;
  for (int64_t o = 0; o < outer; o += rows_are_c ? 1 : orows)
    for (int64_t c0 = 0; c0 < (rows_are_c ? C : 1); c0 += rows_are_c ? cr : 1)
      for (int64_t i0 = 0; i0 < (rows_are_c ? inner : 1); i0 += rows_are_c ? ic : 1, k++) {
        uint64_t rows, cols;
        int64_t first, stride; // first element, row stride (elements) in HBM
        uint64_t src2;
        cc_vblock b = {0};
        if (rows_are_c) {
          rows = (uint64_t)(C - c0 < cr ? C - c0 : cr), cols = (uint64_t)(inner - i0 < ic ? inner - i0 : ic);
          first = (o * C + c0) * inner + i0, stride = inner;
          src2 = c0 * 4, b.src2_stride = 4, b.src2_colstep = 0; // one parameter per row
        } else {
          rows = (uint64_t)(outer - o < orows ? outer - o : orows), cols = (uint64_t)C;
          first = o * C, stride = C;
          src2 = 0, b.src2_stride = 0, b.src2_colstep = 1; // the parameter row for every row
        }
        if (C == 1) b.src2_stride = 0, src2 = 0;
        uint64_t in = bin[k % 2], out = bout[k % 2];
        uint64_t cnt[2] = {rows, cols * (uint64_t)xe};
        int64_t ss[2] = {stride * xe, 1}, ds[2] = {(int64_t)cols * xe, 1};
        cc_dma_nd(e, SPACE_LOCAL, in, SPACE_HBM, cc_addr(c, x) + (uint64_t)(first * xe), 1, 2, cnt, ss, ds);
        b.rows = rows, b.cols = cols;
        if (quant) {
          b.dst_stride = (int64_t)cols * 4, b.src1_stride = (int64_t)cols * 4;
          cc_vpu(e, VOP_DIV, DT_I32, in, DT_F32, in, DT_F32, sv + src2, &b); // in place
          b.dst_stride = (int64_t)cols, b.zp = u8 ? NUM_IADD_D_U8 : 0;
          cc_vpu(e, VOP_IADD, DT_I8, out, DT_I32, in, DT_I32, zv + src2, &b);
        } else {
          b.dst_stride = (int64_t)cols * 4, b.src1_stride = (int64_t)cols * xe, b.zp = u8 ? NUM_IADD_A_U8 : 0;
          cc_vpu(e, VOP_IADD, DT_F32, out, vdt(qt), in, DT_I32, zv + src2, &b);
          b.src1_stride = b.dst_stride, b.zp = 0;
          cc_vpu(e, VOP_MUL, DT_F32, out, DT_F32, out, DT_F32, sv + src2, &b);
        }
        uint64_t ocnt[2] = {rows, cols * (uint64_t)ye};
        int64_t oss[2] = {(int64_t)cols * ye, 1}, ods[2] = {stride * ye, 1};
        cc_dma_nd(e, SPACE_HBM, cc_addr(c, y) + (uint64_t)(first * ye), SPACE_LOCAL, out, 1, 2, ocnt, oss, ods);
      }
  return cc_emit_failed(e, err, errlen);
}

int cc_lower_q8(cc_lower_ctx *c, char *err, size_t errlen) {
  char where[160], why[CC_ERR_LEN] = "";
  ir_node_where(c->n, where, sizeof where);
  int rc = lower_qdq(c, why, sizeof why);
  if (rc) snprintf(err, errlen, "%s: %s", where, why);
  return rc;
}
