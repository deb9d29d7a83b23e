// The IR on its own: the tables, shape inference of every op (results and
// refusals), the verifier catching each broken invariant, graph editing,
// topological sorting, the constant evaluator, the dump's exact text, and a
// fuzz of the ONNX importer on corrupted bytes of a model built here with
// protobuf-c (no Python needed), where every outcome must be a verified
// graph or a clear error.
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "onnx.pb-c.h"
#include "testlib.h"

static char err[IR_ERR_LEN];

// ---------------------------------------------------------------- helpers

static ir_value *input(ir_graph *g, const char *name, ir_dtype dt, int rank, ...) {
  ir_type t = {dt, rank, {0}};
  va_list ap;
  va_start(ap, rank);
  for (int i = 0; i < rank; i++)
    t.dims[i] = va_arg(ap, int);
  va_end(ap);
  return ir_add_input(g, name, &t);
}

static ir_value *const_data(ir_graph *g, const char *name, ir_dtype dt, int rank, const int64_t *dims,
                            const void *vals) {
  ir_type t = ir_type_make(dt, rank, dims);
  void *d = calloc(ir_nbytes(&t) + 1, 1);
  memcpy(d, vals, ir_nbytes(&t));
  return ir_add_const(g, name, &t, d);
}

static ir_value *const_i64(ir_graph *g, const char *name, int n, const int64_t *vals) {
  return const_data(g, name, IR_DT_I64, 1, (int64_t[]){n}, vals);
}

// A node with one output named out, not yet inferred.
static ir_node *node(ir_graph *g, ir_op op, const char *out, int nin, ...) {
  ir_value *in[8];
  va_list ap;
  va_start(ap, nin);
  for (int i = 0; i < nin; i++)
    in[i] = va_arg(ap, ir_value *);
  va_end(ap);
  return ir_add_node(g, op, out, in, nin, 1, &out);
}

static char tsbuf[128];
static const char *ts(const ir_type *t) { return ir_type_str(t, tsbuf, sizeof tsbuf); }

// n infers to want (a type as text).
static void ok_(ir_node *n, const char *want, int line) {
  int rc = ir_infer_node(n, err, sizeof err);
  CHECK(rc == 0, "line %d: %s", line, err);
  if (!rc)
    CHECK(!strcmp(ts(&n->out[0]->ty), want), "line %d: %s gives %s, want %s", line, ir_ops[n->op].name,
          ts(&n->out[0]->ty), want);
}
#define OK(n, want) ok_(n, want, __LINE__)

// n is refused with a message holding want.
static void bad_(ir_node *n, const char *want, int line) {
  err[0] = 0;
  int rc = ir_infer_node(n, err, sizeof err);
  CHECK(rc == -1, "line %d: %s should be refused, gave %s", line, ir_ops[n->op].name, ts(&n->out[0]->ty));
  CHECK(strstr(err, want) != NULL, "line %d: message lacks '%s': %s", line, want, err);
}
#define BAD(n, want) bad_(n, want, __LINE__)

#define INTS(...) ((const int64_t[]){__VA_ARGS__})

static void set_window(ir_node *n, int ns, int64_t k, int64_t s, int64_t d, int64_t p) {
  for (int i = 0; i < ns; i++) {
    n->a.kernel[i] = k, n->a.stride[i] = s, n->a.dilation[i] = d;
    n->a.pads[i] = n->a.pads[ns + i] = p;
  }
}

// ---------------------------------------------------------------- tables

static void test_tables(void) {
  for (int i = 1; i < IR_DT_COUNT; i++) {
    CHECK(ir_dtypes[i].name && ir_dtypes[i].bytes > 0, "dtype %d row", i);
    for (int j = 1; j < i; j++)
      CHECK(strcmp(ir_dtypes[i].name, ir_dtypes[j].name), "dtype names %d and %d equal", i, j);
  }
  CHECK(ir_dtype_is_float(IR_DT_BF16) && !ir_dtype_is_float(IR_DT_I8) && ir_dtype_is_int(IR_DT_U64) &&
            !ir_dtype_is_int(IR_DT_BOOL) && !ir_dtype_is_int(IR_DT_UNDEF),
        "dtype kinds");
  for (int i = 0; i < IR_OP_COUNT; i++) {
    const ir_op_info *o = &ir_ops[i];
    CHECK(o->name && o->min_in >= 0 && o->min_in <= o->max_in && o->min_out >= 1 && o->min_out <= o->max_out,
          "op %d row", i);
    for (int j = 0; j < i; j++)
      CHECK(strcmp(o->name, ir_ops[j].name), "op names %d and %d equal", i, j);
  }
  ir_type t = {IR_DT_F32, 3, {2, 3, 4}};
  CHECK(ir_nelems(&t) == 24 && ir_nbytes(&t) == 96, "nelems/nbytes");
  CHECK(!strcmp(ts(&t), "f32[2,3,4]"), "%s", tsbuf);
  t.rank = 0;
  CHECK(ir_nelems(&t) == 1 && !strcmp(ts(&t), "f32[]"), "scalar %s", tsbuf);
  ir_type a = {IR_DT_F32, 3, {2, 1, 4}}, b = {IR_DT_F32, 2, {3, 1}}, o;
  CHECK(ir_broadcast(&a, &b, &o) == 0 && !strcmp(ts(&o), "f32[2,3,4]"), "broadcast %s", tsbuf);
  CHECK(ir_window_out(4, 2, 2, 1, 0, 1, true) == 2, "ceil: a window starting in the end padding is dropped");
  CHECK(ir_window_out(5, 2, 2, 1, 0, 0, true) == 3 && ir_window_out(5, 2, 2, 1, 0, 0, false) == 2, "ceil vs floor");
  CHECK(ir_window_out(2, 5, 1, 1, 1, 1, false) == 0, "no window fits");
}

// ---------------------------------------------------------------- inference

static void test_infer_linear(void) {
  ir_graph *g = ir_graph_new("linear");
  ir_value *a = input(g, "a", IR_DT_F32, 2, 2, 3), *b = input(g, "b", IR_DT_F32, 2, 3, 4);
  ir_value *v3 = input(g, "v3", IR_DT_F32, 1, 3), *a4 = input(g, "a4", IR_DT_F32, 4, 2, 1, 3, 4);
  ir_value *b3 = input(g, "b3", IR_DT_F32, 3, 5, 4, 6), *i = input(g, "i", IR_DT_I64, 2, 3, 4);
  ir_value *c45 = input(g, "c45", IR_DT_F32, 2, 4, 5);
  OK(node(g, IR_OP_MATMUL, "m1", 2, a, b), "f32[2,4]");
  OK(node(g, IR_OP_MATMUL, "m2", 2, v3, b), "f32[4]");
  OK(node(g, IR_OP_MATMUL, "m3", 2, a, v3), "f32[2]");
  OK(node(g, IR_OP_MATMUL, "m4", 2, v3, v3), "f32[]");
  OK(node(g, IR_OP_MATMUL, "m5", 2, a4, b3), "f32[2,5,3,6]");
  BAD(node(g, IR_OP_MATMUL, "m6", 2, a, c45), "inner dims differ");
  BAD(node(g, IR_OP_MATMUL, "m7", 2, input(g, "x7", IR_DT_F32, 3, 2, 3, 4), input(g, "y7", IR_DT_F32, 3, 3, 4, 5)),
      "batch dims do not broadcast");
  BAD(node(g, IR_OP_MATMUL, "m8", 2, a, i), "one numeric type");
  BAD(node(g, IR_OP_MATMUL, "m9", 1, a), "1 inputs, matmul takes 2 to 4");

  ir_value *A = input(g, "A", IR_DT_F32, 2, 4, 3), *B = input(g, "B", IR_DT_F32, 2, 5, 4);
  ir_node *n = node(g, IR_OP_GEMM, "g1", 3, A, B, input(g, "C5", IR_DT_F32, 1, 5));
  n->a.trans_a = n->a.trans_b = true;
  OK(n, "f32[3,5]");
  n = node(g, IR_OP_GEMM, "g2", 3, A, B, input(g, "C31", IR_DT_F32, 2, 3, 1));
  n->a.trans_a = n->a.trans_b = true;
  OK(n, "f32[3,5]");
  n = node(g, IR_OP_GEMM, "g3", 3, A, B, input(g, "C25", IR_DT_F32, 2, 2, 5));
  n->a.trans_a = n->a.trans_b = true;
  BAD(n, "does not broadcast to the result f32[3,5]");
  BAD(node(g, IR_OP_GEMM, "g4", 2, A, B), "inner dims differ");
  BAD(node(g, IR_OP_GEMM, "g5", 2, v3, b), "must be 2-D");
  ir_graph_free(g);
}

static void test_infer_conv_pool(void) {
  ir_graph *g = ir_graph_new("conv");
  ir_value *x = input(g, "x", IR_DT_F32, 4, 1, 3, 8, 8), *w = input(g, "w", IR_DT_F32, 4, 16, 3, 3, 3);
  ir_node *n = node(g, IR_OP_CONV, "c1", 3, x, w, input(g, "bias", IR_DT_F32, 1, 16));
  set_window(n, 2, 3, 1, 1, 1);
  n->a.group = 1;
  OK(n, "f32[1,16,8,8]");
  n = node(g, IR_OP_CONV, "c2", 2, x, w);
  set_window(n, 2, 3, 2, 1, 0);
  n->a.group = 1;
  OK(n, "f32[1,16,3,3]");
  ir_value *x8 = input(g, "x8", IR_DT_F32, 4, 1, 8, 9, 9), *dw = input(g, "dw", IR_DT_F32, 4, 8, 1, 3, 3);
  n = node(g, IR_OP_CONV, "c3", 2, x8, dw);
  set_window(n, 2, 3, 1, 2, 0);
  n->a.group = 8;
  OK(n, "f32[1,8,5,5]");
  n = node(g, IR_OP_CONV, "c4", 2, input(g, "x1d", IR_DT_F32, 3, 2, 4, 10), input(g, "w1d", IR_DT_F32, 3, 6, 2, 3));
  set_window(n, 1, 3, 1, 1, 0);
  n->a.group = 2;
  OK(n, "f32[2,6,8]");
  n = node(g, IR_OP_CONV, "c5", 2, x8, w);
  set_window(n, 2, 3, 1, 1, 0);
  n->a.group = 1;
  BAD(n, "3 input channels per group");
  n = node(g, IR_OP_CONV, "c6", 2, x, w);
  set_window(n, 2, 3, 1, 1, 0);
  n->a.group = 2;
  BAD(n, "group 2 must divide");
  n = node(g, IR_OP_CONV, "c7", 2, x, w);
  set_window(n, 2, 5, 1, 1, 0);
  n->a.group = 1;
  BAD(n, "differs from W");
  n = node(g, IR_OP_CONV, "c8", 2, input(g, "tiny", IR_DT_F32, 4, 1, 3, 2, 2), w);
  set_window(n, 2, 3, 1, 1, 0);
  n->a.group = 1;
  BAD(n, "does not fit spatial dim 0 of size 2");
  n = node(g, IR_OP_CONV, "c9", 2, x, w);
  set_window(n, 2, 3, 0, 1, 0);
  n->a.group = 1;
  BAD(n, "stride 0");
  n = node(g, IR_OP_CONV, "c10", 3, x, w, input(g, "bias4", IR_DT_F32, 1, 4));
  set_window(n, 2, 3, 1, 1, 0);
  n->a.group = 1;
  BAD(n, "bias must be f32[16]");

  n = node(g, IR_OP_BATCHNORM, "bn", 5, x, input(g, "s", IR_DT_F32, 1, 3), input(g, "bb", IR_DT_F32, 1, 3),
           input(g, "mu", IR_DT_F32, 1, 3), input(g, "var", IR_DT_F32, 1, 4));
  BAD(n, "var must be floating point [3]");

  ir_value *p4 = input(g, "p4", IR_DT_F32, 4, 1, 1, 4, 4), *p5 = input(g, "p5", IR_DT_F32, 4, 1, 1, 5, 5);
  n = node(g, IR_OP_MAXPOOL, "mp1", 1, p4);
  set_window(n, 2, 2, 2, 1, 0);
  n->a.pads[2] = n->a.pads[3] = 1; // end padding only
  n->a.ceil_mode = true;
  OK(n, "f32[1,1,2,2]"); // the third window would start in the padding
  n = node(g, IR_OP_MAXPOOL, "mp2", 1, p5);
  set_window(n, 2, 2, 2, 1, 0);
  n->a.ceil_mode = true;
  OK(n, "f32[1,1,3,3]");
  n = node(g, IR_OP_AVGPOOL, "ap1", 1, p5);
  set_window(n, 2, 2, 2, 1, 0);
  OK(n, "f32[1,1,2,2]");
  n = node(g, IR_OP_AVGPOOL, "ap2", 1, input(g, "pi", IR_DT_I8, 4, 1, 1, 4, 4));
  set_window(n, 2, 2, 2, 1, 0);
  BAD(n, "floating point");
  n = node(g, IR_OP_MAXPOOL, "mp3", 1, input(g, "pi8", IR_DT_I8, 4, 1, 1, 4, 4));
  set_window(n, 2, 2, 2, 1, 0);
  OK(n, "i8[1,1,2,2]");
  OK(node(g, IR_OP_GLOBAL_AVGPOOL, "gap", 1, p5), "f32[1,1,1,1]");
  BAD(node(g, IR_OP_GLOBAL_AVGPOOL, "gap2", 1, input(g, "r2", IR_DT_F32, 2, 1, 5)), "[N,C,D1,...]");
  ir_graph_free(g);
}

static void test_infer_elementwise(void) {
  ir_graph *g = ir_graph_new("elementwise");
  ir_value *a = input(g, "a", IR_DT_F32, 3, 2, 1, 4), *b = input(g, "b", IR_DT_F32, 2, 3, 1);
  OK(node(g, IR_OP_ADD, "add", 2, a, b), "f32[2,3,4]");
  OK(node(g, IR_OP_MUL, "mul0", 2, input(g, "z", IR_DT_F32, 2, 0, 1), input(g, "o", IR_DT_F32, 2, 1, 5)),
     "f32[0,5]");
  BAD(node(g, IR_OP_SUB, "sub", 2, input(g, "c", IR_DT_F32, 2, 2, 3), input(g, "d", IR_DT_F32, 1, 4)),
      "do not broadcast");
  BAD(node(g, IR_OP_DIV, "div", 2, a, input(g, "ai", IR_DT_I32, 3, 2, 1, 4)), "one numeric type");
  BAD(node(g, IR_OP_ADD, "addb", 2, input(g, "b1", IR_DT_BOOL, 1, 2), input(g, "b2", IR_DT_BOOL, 1, 2)),
      "numeric");
  OK(node(g, IR_OP_RELU, "relu", 1, input(g, "ri", IR_DT_I8, 1, 3)), "i8[3]");
  BAD(node(g, IR_OP_RELU, "relub", 1, input(g, "rb", IR_DT_BOOL, 1, 3)), "numeric");
  BAD(node(g, IR_OP_SIGMOID, "sig", 1, input(g, "si", IR_DT_I32, 1, 3)), "floating point");
  OK(node(g, IR_OP_TANH, "tanh", 1, input(g, "tb", IR_DT_BF16, 1, 3)), "bf16[3]");
  ir_node *n = node(g, IR_OP_SOFTMAX, "sm", 1, a);
  n->a.axis = 3;
  BAD(n, "axis 3 out of range");
  n = node(g, IR_OP_CAST, "cast", 1, a);
  n->a.to = IR_DT_I64;
  OK(n, "i64[2,1,4]");
  n = node(g, IR_OP_CAST, "cast2", 1, a);
  BAD(n, "bad target dtype");
  OK(node(g, IR_OP_IDENTITY, "id", 1, input(g, "bb", IR_DT_BOOL, 1, 2)), "bool[2]");
  ir_graph_free(g);
}

static void test_infer_shapes(void) {
  ir_graph *g = ir_graph_new("shapes");
  ir_value *x = input(g, "x", IR_DT_F32, 3, 2, 3, 4);
  ir_node *n = node(g, IR_OP_RESHAPE, "r1", 1, x);
  n->a.ndims = 2, n->a.dims[0] = 6, n->a.dims[1] = 4;
  OK(n, "f32[6,4]");
  n = node(g, IR_OP_RESHAPE, "r2", 1, x);
  n->a.ndims = 2, n->a.dims[0] = 5, n->a.dims[1] = 5;
  BAD(n, "cannot reshape f32[2,3,4] into f32[5,5]");
  n = node(g, IR_OP_RESHAPE, "r3", 1, x);
  n->a.ndims = 3, n->a.dims[0] = 1ll << 30, n->a.dims[1] = 1ll << 30, n->a.dims[2] = 0;
  BAD(n, "cannot reshape"); // 0 elements either way, but the dims overflow: refused
  n = node(g, IR_OP_TRANSPOSE, "t1", 1, x);
  n->a.perm[0] = 2, n->a.perm[1] = 0, n->a.perm[2] = 1;
  OK(n, "f32[4,2,3]");
  n = node(g, IR_OP_TRANSPOSE, "t2", 1, x);
  n->a.perm[0] = 2, n->a.perm[1] = 2, n->a.perm[2] = 1;
  BAD(n, "not a permutation");
  n = node(g, IR_OP_CONCAT, "cat", 3, x, input(g, "x2", IR_DT_F32, 3, 2, 5, 4), x);
  n->a.axis = 1;
  OK(n, "f32[2,11,4]");
  n = node(g, IR_OP_CONCAT, "cat2", 2, x, input(g, "x3", IR_DT_F32, 3, 2, 5, 5));
  n->a.axis = 1;
  BAD(n, "does not match input 0");

  const char *names[] = {"s0", "s1"};
  n = ir_add_node(g, IR_OP_SPLIT, "split", &x, 1, 2, names);
  n->a.axis = 2, n->a.nsizes = 2, n->a.sizes = calloc(2, sizeof(int64_t));
  n->a.sizes[0] = 1, n->a.sizes[1] = 3;
  CHECK(ir_infer_node(n, err, sizeof err) == 0 && !strcmp(ts(&n->out[1]->ty), "f32[2,3,3]"), "split: %s", err);
  n->a.sizes[1] = 2;
  CHECK(ir_infer_node(n, err, sizeof err) == -1 && strstr(err, "add up to 3"), "split sum: %s", err);

  n = node(g, IR_OP_SLICE, "sl", 1, x); // [::-1, 1:3, ::3]
  int64_t st[] = {1, 1, 0}, en[] = {-1, 3, 4}, sp[] = {-1, 1, 3};
  memcpy(n->a.start, st, sizeof st), memcpy(n->a.end, en, sizeof en), memcpy(n->a.step, sp, sizeof sp);
  OK(n, "f32[2,2,2]");
  n = node(g, IR_OP_SLICE, "sl2", 1, x);
  n->a.start[0] = 0, n->a.end[0] = 5, n->a.step[0] = 1, n->a.end[1] = 3, n->a.step[1] = 1, n->a.end[2] = 4,
  n->a.step[2] = 1;
  BAD(n, "not normalised");

  n = node(g, IR_OP_PAD, "pad", 1, x);
  int64_t pads[] = {1, 0, -1, 0, 2, 1};
  memcpy(n->a.pads, pads, sizeof pads);
  OK(n, "f32[3,5,4]");
  n = node(g, IR_OP_PAD, "pad2", 1, x);
  n->a.pad_mode = IR_PAD_REFLECT, n->a.pads[1] = 3;
  BAD(n, "reflect pads 3, 0");
  n = node(g, IR_OP_SHAPE, "shape", 1, x);
  n->a.start[0] = 1, n->a.end[0] = 3;
  OK(n, "i64[2]");
  n = node(g, IR_OP_SHAPE, "shape2", 1, x);
  n->a.end[0] = 4;
  BAD(n, "out of range for rank 3");

  ir_value *table = input(g, "table", IR_DT_F32, 2, 5, 4), *idx = input(g, "idx", IR_DT_I64, 2, 2, 3);
  OK(node(g, IR_OP_GATHER, "ga", 2, table, idx), "f32[2,3,4]");
  n = node(g, IR_OP_GATHER, "gb", 2, table, idx);
  n->a.axis = 1;
  OK(n, "f32[5,2,3]");
  BAD(node(g, IR_OP_GATHER, "gc", 2, table, table), "indices must be i32 or i64");

  n = ir_add_node(g, IR_OP_CONSTANT_OF_SHAPE, "fill", NULL, 0, 1, (const char *[]){"fill"});
  n->a.value_dtype = IR_DT_I32, n->a.ndims = 2, n->a.dims[0] = 2, n->a.dims[1] = 5;
  OK(n, "i32[2,5]");
  n = node(g, IR_OP_RESIZE, "rs", 1, x);
  n->a.ndims = 3, n->a.dims[0] = 2, n->a.dims[1] = 6, n->a.dims[2] = 8;
  for (int i = 0; i < 3; i++)
    n->a.scales[i] = i ? 2 : 1;
  OK(n, "f32[2,6,8]");
  n->a.ndims = 2;
  BAD(n, "output rank 2 differs");
  ir_graph_free(g);
}

// ---------------------------------------------------------------- verifier

// x -> conv -> relu -> y, all checked.
static ir_graph *small_graph(void) {
  ir_graph *g = ir_graph_new("small");
  ir_value *x = input(g, "x", IR_DT_F32, 4, 1, 2, 5, 5);
  float wv[2 * 2 * 3 * 3] = {0};
  ir_value *w = const_data(g, "w", IR_DT_F32, 4, INTS(2, 2, 3, 3), wv);
  ir_node *c = node(g, IR_OP_CONV, "c", 2, x, w);
  set_window(c, 2, 3, 1, 1, 1);
  c->a.group = 1;
  ir_node *r = node(g, IR_OP_RELU, "y", 1, c->out[0]);
  CHECK(ir_infer_graph(g, err, sizeof err) == 0, "%s", err);
  ir_add_output(g, r->out[0]);
  return g;
}

static void expect_verify_error(ir_graph *g, const char *want, const char *what) {
  err[0] = 0;
  CHECK(ir_verify(g, "test", err, sizeof err) == -1, "%s: not caught", what);
  CHECK(strstr(err, want) != NULL && strstr(err, "after test"), "%s: message lacks '%s': %s", what, want, err);
}

static void test_verify(void) {
  ir_graph *g = small_graph();
  CHECK(ir_verify(g, "build", err, sizeof err) == 0, "%s", err);
  ir_node *c = g->nodes[0], *r = g->nodes[1];
  ir_value *x = g->inputs[0], *y = r->out[0];

  y->ty.dims[1] = 5;
  expect_verify_error(g, "is f32[1,5,5,5] but inference gives f32[1,2,5,5]", "stored type");
  y->ty.dims[1] = 2;

  c->a.stride[0] = 0;
  expect_verify_error(g, "stride 0", "bad attribute");
  c->a.stride[0] = 1;

  g->nodes[0] = r, g->nodes[1] = c, r->id = 0, c->id = 1;
  expect_verify_error(g, "produced later, by node 1", "order");
  CHECK(ir_toposort(g) == 0 && g->nodes[0] == c, "toposort restores the order");
  CHECK(ir_verify(g, "toposort", err, sizeof err) == 0, "%s", err);

  x->nuses--;
  expect_verify_error(g, "reads 'x' 1 times but its use list says 0", "use list");
  x->nuses++;

  int marker;
  c->out[0]->data = &marker;
  expect_verify_error(g, "exactly one definition", "two definitions");
  c->out[0]->data = NULL;

  y->is_output = false;
  expect_verify_error(g, "marked inputs and 0 outputs, but the graph lists 1 and 1", "output flag");
  y->is_output = true;

  x->ty.dtype = IR_DT_UNDEF;
  expect_verify_error(g, "invalid type", "undefined dtype");
  x->ty.dtype = IR_DT_F32;

  char *old = y->name;
  y->name = strdup("renamed");
  expect_verify_error(g, "not in the name index", "rename behind the index's back");
  free(y->name);
  y->name = old;

  ir_value *two[] = {x, x};
  ir_node *bad = ir_add_node(g, IR_OP_RELU, "bad", two, 2, 1, NULL);
  bad->out[0]->ty = x->ty;
  expect_verify_error(g, "2 inputs, relu takes 1 to 1", "arity");
  ir_remove_node(g, bad);
  CHECK(ir_prune(g) == 0 && ir_verify(g, NULL, err, sizeof err) == 0, "restored: %s", err);

  g->noutputs = 0, y->is_output = false;
  expect_verify_error(g, "no outputs", "no outputs");
  g->noutputs = 1, y->is_output = true;
  ir_graph_free(g);
}

// ---------------------------------------------------------------- editing

static void test_edit(void) {
  ir_graph *g = small_graph();
  ir_value *x = g->inputs[0], *y = g->outputs[0];
  // A dead chain and an unused constant: prune removes both.
  ir_node *d1 = node(g, IR_OP_SIGMOID, "dead1", 1, x);
  ir_node *d2 = node(g, IR_OP_TANH, "dead2", 1, d1->out[0]);
  const_i64(g, "unused", 2, INTS(1, 2));
  input(g, "unused_input", IR_DT_F32, 1, 3);
  CHECK(ir_infer_graph(g, err, sizeof err) == 0, "%s", err);
  (void)d2;
  CHECK(ir_prune(g) == 2 && g->nnodes == 2, "prune: %d nodes left", g->nnodes);
  CHECK(!ir_find(g, "dead1") && !ir_find(g, "unused") && ir_find(g, "unused_input"), "prune keeps inputs only");
  CHECK(ir_verify(g, "prune", err, sizeof err) == 0, "%s", err);
  CHECK(x->nuses == 1, "x uses %d", x->nuses);

  // Insert a node between conv and relu, then rewire the relu to it.
  ir_node *c = g->nodes[0], *r = g->nodes[1];
  ir_node *s = node(g, IR_OP_SIGMOID, "mid", 1, c->out[0]);
  CHECK(ir_infer_node(s, err, sizeof err) == 0, "%s", err);
  ir_set_input(r, 0, s->out[0]);
  CHECK(ir_verify(g, "insert", err, sizeof err) == -1 && strstr(err, "produced later"), "needs sorting: %s", err);
  CHECK(ir_toposort(g) == 0, "toposort");
  CHECK(ir_verify(g, "insert", err, sizeof err) == 0, "%s", err);
  CHECK(c->out[0]->nuses == 1 && s->out[0]->nuses == 1, "use lists follow set_input");

  // Bypass the sigmoid again with replace_uses; prune drops it.
  ir_replace_uses(s->out[0], c->out[0]);
  CHECK(ir_prune(g) == 1 && g->nnodes == 2 && r->in[0] == c->out[0], "bypass");
  CHECK(ir_verify(g, "bypass", err, sizeof err) == 0, "%s", err);

  // A cycle cannot be sorted.
  ir_node *a = node(g, IR_OP_RELU, "ca", 1, x), *b = node(g, IR_OP_RELU, "cb", 1, a->out[0]);
  ir_set_input(a, 0, b->out[0]);
  CHECK(ir_toposort(g) == -1, "cycle detected");
  ir_set_input(a, 0, x);
  CHECK(ir_toposort(g) == 0, "cycle broken");

  // Fresh names never collide.
  ir_value *v1 = input(g, "y", IR_DT_F32, 0);
  CHECK(v1 != y && !strcmp(v1->name, "y_1"), "fresh name %s", v1->name);
  ir_note(g, "a note %d", 42);
  CHECK(g->nnotes == 1 && !strcmp(g->notes[0], "a note 42"), "note");
  ir_graph_free(g);
}

// ---------------------------------------------------------------- constant evaluator

static int64_t geti(const ir_value *v, int i) { return ir_get_int(v->data, v->ty.dtype, i); }

static bool data_is(const ir_value *v, int n, const int64_t *want) {
  if (!v->data || ir_nelems(&v->ty) != n)
    return false;
  for (int i = 0; i < n; i++)
    if (geti(v, i) != want[i])
      return false;
  return true;
}

static uint32_t fbits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

static void test_fold_shape_arith(void) {
  // What exporters write around a Reshape: Shape, Gather, Unsqueeze, Concat,
  // Mul, Div, Sub, Cast, Slice of int64 constants.
  ir_graph *g = ir_graph_new("fold");
  ir_value *x = input(g, "x", IR_DT_F32, 4, 2, 3, 4, 5);
  ir_node *s = node(g, IR_OP_SHAPE, "s", 1, x);
  s->a.end[0] = 4;
  ir_value *last = ir_add_const(g, "minus1", &(ir_type){IR_DT_I64, 0, {0}}, NULL);
  ir_set_int(last->data, IR_DT_I64, 0, -1);
  ir_node *ga = node(g, IR_OP_GATHER, "g", 2, s->out[0], last);
  ir_node *un = node(g, IR_OP_RESHAPE, "u", 1, ga->out[0]);
  un->a.ndims = 1, un->a.dims[0] = 1;
  ir_node *cat = node(g, IR_OP_CONCAT, "cat", 2, const_i64(g, "m1", 1, INTS(-1)), un->out[0]);
  ir_node *mul = node(g, IR_OP_MUL, "mul", 2, cat->out[0], const_i64(g, "two", 1, INTS(2)));
  ir_node *div = node(g, IR_OP_DIV, "div", 2, const_i64(g, "num", 2, INTS(7, -7)), const_i64(g, "den", 1, INTS(2)));
  ir_node *sub = node(g, IR_OP_SUB, "sub", 2, div->out[0], mul->out[0]);
  ir_node *sl = node(g, IR_OP_SLICE, "sl", 1, s->out[0]); // s[3:0:-2] = [5, 3]
  sl->a.start[0] = 3, sl->a.end[0] = 0, sl->a.step[0] = -2;
  ir_node *cast = node(g, IR_OP_CAST, "cast", 1, sl->out[0]);
  cast->a.to = IR_DT_I32;
  ir_node *keep = node(g, IR_OP_RELU, "keep", 1, x); // not foldable
  CHECK(ir_infer_graph(g, err, sizeof err) == 0, "%s", err);
  ir_value *outs[] = {s->out[0], mul->out[0], sub->out[0], cast->out[0], keep->out[0]};
  for (int i = 0; i < 5; i++)
    ir_add_output(g, outs[i]);
  CHECK(ir_can_fold(s) && !ir_can_fold(ga) && !ir_can_fold(keep), "foldable before folding");
  int n = ir_fold_graph(g, err, sizeof err);
  CHECK(n == 9 && g->nnodes == 1 && g->nodes[0] == keep, "folded %d, %d nodes left", n, g->nnodes);
  CHECK(data_is(outs[0], 4, INTS(2, 3, 4, 5)), "shape");
  CHECK(data_is(outs[1], 2, INTS(-2, 10)), "[-1, 5] * 2");
  CHECK(data_is(outs[2], 2, INTS(5, -13)), "[7, -7] / 2 truncates toward zero, minus [-2, 10]");
  CHECK(data_is(outs[3], 2, INTS(5, 3)) && outs[3]->ty.dtype == IR_DT_I32, "slice with a negative step, cast");
  CHECK(ir_verify(g, "fold", err, sizeof err) == 0, "%s", err);
  ir_graph_free(g);
}

static void test_fold_data(void) {
  ir_graph *g = ir_graph_new("fold_data");
  int32_t m[6] = {0, 1, 2, 3, 4, 5};
  ir_value *c = const_data(g, "c", IR_DT_I32, 2, INTS(2, 3), m);
  ir_node *t = node(g, IR_OP_TRANSPOSE, "t", 1, c);
  t->a.perm[0] = 1, t->a.perm[1] = 0;
  ir_node *sl = node(g, IR_OP_SLICE, "sl", 1, c); // c[::-1, 2:0:-1]
  sl->a.start[0] = 1, sl->a.end[0] = -1, sl->a.step[0] = -1, sl->a.start[1] = 2, sl->a.end[1] = 0,
  sl->a.step[1] = -1;
  const char *names[] = {"p0", "p1"};
  ir_node *sp = ir_add_node(g, IR_OP_SPLIT, "sp", &c, 1, 2, names);
  sp->a.axis = 1, sp->a.nsizes = 2, sp->a.sizes = calloc(2, sizeof(int64_t));
  sp->a.sizes[0] = 1, sp->a.sizes[1] = 2;
  ir_node *cat = node(g, IR_OP_CONCAT, "cat", 2, sp->out[1], sp->out[0]);
  cat->a.axis = 1;
  int64_t idx[2] = {-1, 0};
  ir_node *ga = node(g, IR_OP_GATHER, "ga", 2, c, const_i64(g, "idx", 2, idx));
  ga->a.axis = 1;
  ir_node *fill = ir_add_node(g, IR_OP_CONSTANT_OF_SHAPE, "fill", NULL, 0, 1, (const char *[]){"fill"});
  fill->a.ndims = 1, fill->a.dims[0] = 3, fill->a.value_dtype = IR_DT_I8, fill->a.value[0] = 0xfe;
  // f32 arithmetic folds with one rounding per operation; i8 wraps.
  ir_value *fa = const_data(g, "fa", IR_DT_F32, 1, INTS(2), (float[]){0.1f, 3.0f});
  ir_value *fb = const_data(g, "fb", IR_DT_F32, 2, INTS(2, 1), (float[]){0.2f, 7.0f});
  ir_node *fadd = node(g, IR_OP_ADD, "fadd", 2, fa, fb), *fdiv = node(g, IR_OP_DIV, "fdiv", 2, fa, fb);
  ir_node *i8 = node(g, IR_OP_ADD, "i8", 2, const_data(g, "a8", IR_DT_I8, 1, INTS(2), (int8_t[]){100, -100}),
                     const_data(g, "b8", IR_DT_I8, 1, INTS(2), (int8_t[]){100, -100}));
  ir_node *u8 = node(g, IR_OP_DIV, "u8", 2, const_data(g, "a_u8", IR_DT_U8, 1, INTS(1), (uint8_t[]){250}),
                     const_data(g, "b_u8", IR_DT_U8, 1, INTS(1), (uint8_t[]){7}));
  // Casts: float -> int truncates and saturates, NaN -> 0; to bf16 rounds to nearest even.
  ir_value *cf = const_data(g, "cf", IR_DT_F32, 1, INTS(5), (float[]){1e10f, -1e10f, NAN, -2.5f, 1.01171875f});
  ir_node *ci = node(g, IR_OP_CAST, "ci", 1, cf);
  ci->a.to = IR_DT_I32;
  ir_node *cb = node(g, IR_OP_CAST, "cb", 1, cf);
  cb->a.to = IR_DT_BF16;
  ir_node *ch = node(g, IR_OP_CAST, "ch", 1, cf);
  ch->a.to = IR_DT_F16;
  ir_node *cl = node(g, IR_OP_CAST, "cl", 1, const_i64(g, "big", 1, INTS((1ll << 53) + 1)));
  cl->a.to = IR_DT_F32;
  CHECK(ir_infer_graph(g, err, sizeof err) == 0, "%s", err);
  ir_node *all[] = {t, sl, cat, ga, fill, fadd, fdiv, i8, u8, ci, cb, ch, cl};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    ir_add_output(g, all[i]->out[0]);
  ir_value *o[sizeof all / sizeof *all];
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    o[i] = all[i]->out[0];
  int n = ir_fold_graph(g, err, sizeof err);
  CHECK(n == 14 && g->nnodes == 0, "folded %d: %s", n, err);
  CHECK(data_is(o[0], 6, INTS(0, 3, 1, 4, 2, 5)), "transpose");
  CHECK(data_is(o[1], 4, INTS(5, 4, 2, 1)), "slice");
  CHECK(data_is(o[2], 6, INTS(1, 2, 0, 4, 5, 3)), "split then concat");
  CHECK(data_is(o[3], 4, INTS(2, 0, 5, 3)), "gather with a negative index");
  CHECK(data_is(o[4], 3, INTS(-2, -2, -2)), "constant_of_shape");
  float f[4];
  if (o[5]->data) {
    memcpy(f, o[5]->data, 16);
    volatile float a = 0.1f, b = 0.2f;
    CHECK_BITS(fbits(f[0]), fbits(a + b), "0.1f + 0.2f");
    CHECK_BITS(fbits(f[3]), fbits(10.0f), "3 + 7");
  }
  if (o[6]->data) {
    memcpy(f, o[6]->data, 16);
    volatile float a = 0.1f, b = 7.0f;
    CHECK_BITS(fbits(f[2]), fbits(a / b), "0.1f / 7");
  }
  CHECK(data_is(o[7], 2, INTS(-56, 56)), "i8 wraps");
  CHECK(data_is(o[8], 1, INTS(35)), "u8 division");
  CHECK(data_is(o[9], 5, INTS(INT32_MAX, INT32_MIN, 0, -2, 1)), "f32 -> i32");
  uint16_t h[5];
  if (o[10]->data) {
    memcpy(h, o[10]->data, 10);
    CHECK(h[3] == 0xc020 && h[4] == 0x3f82, "bf16 %04x %04x (1.01171875 is a tie: to even)", h[3], h[4]);
  }
  if (o[11]->data) {
    memcpy(h, o[11]->data, 10);
    CHECK(h[0] == 0x7c00 && h[1] == 0xfc00 && (h[2] & 0x7c00) == 0x7c00 && (h[2] & 0x3ff) && h[3] == 0xc100,
          "f16 %04x %04x %04x %04x", h[0], h[1], h[2], h[3]);
  }
  if (o[12]->data) {
    memcpy(f, o[12]->data, 4);
    CHECK(f[0] == 9007199254740992.0f, "i64 -> f32 rounds once");
  }
  CHECK(ir_verify(g, "fold", err, sizeof err) == 0, "%s", err);
  ir_graph_free(g);
}

static void test_fold_refusals(void) {
  ir_graph *g = ir_graph_new("fold_refusals");
  ir_node *ga = node(g, IR_OP_GATHER, "ga", 2, const_i64(g, "c", 3, INTS(1, 2, 3)), const_i64(g, "i", 1, INTS(3)));
  ir_node *dz = node(g, IR_OP_DIV, "dz", 2, const_i64(g, "n", 1, INTS(1)), const_i64(g, "z", 1, INTS(0)));
  ir_node *big = ir_add_node(g, IR_OP_CONSTANT_OF_SHAPE, "big", NULL, 0, 1, (const char *[]){"big"});
  big->a.ndims = 2, big->a.dims[0] = 1 << 20, big->a.dims[1] = 1 << 10, big->a.value_dtype = IR_DT_F32;
  ir_node *h = node(g, IR_OP_ADD, "h", 2, const_data(g, "h1", IR_DT_F16, 1, INTS(1), (uint16_t[]){0x3c00}),
                    const_data(g, "h2", IR_DT_F16, 1, INTS(1), (uint16_t[]){0x3c00}));
  CHECK(ir_infer_graph(g, err, sizeof err) == 0, "%s", err);
  CHECK(ir_fold_node(g, ga, err, sizeof err) == -1 && strstr(err, "index 3 out of range") && strstr(err, "'ga'"),
        "gather out of range: %s", err);
  CHECK(ir_fold_node(g, dz, err, sizeof err) == -1 && strstr(err, "division by zero"), "div by zero: %s", err);
  CHECK(!ir_can_fold(big) && ir_fold_node(g, big, err, sizeof err) == 0, "4 GiB stays a node");
  CHECK(ir_can_fold(h) && ir_fold_node(g, h, err, sizeof err) == 0 && g->nnodes == 4, "f16 arithmetic is left alone");
  ir_graph_free(g);
}

// ---------------------------------------------------------------- the dump

static void test_print(void) {
  ir_graph *g = ir_graph_new("demo");
  ir_value *x = input(g, "input:0", IR_DT_F32, 2, 1, 4);
  float wv[8] = {1, -2, 0.5f, 0, 0, 0, 0, 3};
  ir_value *w = const_data(g, "w", IR_DT_F32, 2, INTS(4, 2), wv);
  float big[9] = {0};
  ir_value *b = const_data(g, "a b", IR_DT_F32, 2, INTS(3, 3), big);
  (void)b;
  ir_node *mm = node(g, IR_OP_MATMUL, "mm", 2, x, w);
  mm->src_index = 0;
  ir_node *r = node(g, IR_OP_RELU, "act", 1, mm->out[0]);
  free(r->name);
  r->name = strdup("Relu_1");
  r->src_index = 1;
  ir_node *t = node(g, IR_OP_TRANSPOSE, "t", 1, r->out[0]);
  t->a.perm[0] = 1;
  CHECK(ir_infer_graph(g, err, sizeof err) == 0, "%s", err);
  ir_add_output(g, t->out[0]);
  ir_note(g, "input 'input:0' dim 0 ('N') is dynamic: using 1 (a batch of one)");
  free(g->source);
  g->source = strdup("demo.onnx");
  g->opset = 13;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ir_print(g, f);
  fclose(f);
  const char *want = "graph \"demo\" from \"demo.onnx\" (onnx opset 13): 1 inputs, 1 outputs, 3 nodes, 2 constants of 68 bytes\n"
                     "  # note: input 'input:0' dim 0 ('N') is dynamic: using 1 (a batch of one)\n"
                     "  input %input:0 : f32[1,4]\n"
                     "  const %w : f32[4,2] = [1, -2, 0.5, 0, 0, 0, 0, 3]\n"
                     "  const %\"a b\" : f32[3,3]  # 36 bytes\n"
                     "  %mm = matmul(%input:0, %w) : f32[1,2]  # 0 'mm'\n"
                     "  %act = relu(%mm) : f32[1,2]  # 1 'Relu_1'\n"
                     "  %t = transpose(%act) { perm=[1,0] } : f32[2,1]  # 't'\n"
                     "  output %t : f32[2,1]\n";
  CHECK(!strcmp(text, want), "dump:\n%s\nwant:\n%s", text, want);
  free(text);
  ir_graph_free(g);
}

// ---------------------------------------------------------------- importer fuzz

// A model built with the generated protobuf-c types: conv, relu, shape
// arithmetic into a reshape, matmul, maxpool, softmax; every weight form.
static uint8_t *build_model(size_t *len) {
  static float w[3 * 2 * 3 * 3], fcw[108 * 4], bv[3] = {0.5f, -0.5f, 0.25f};
  for (size_t i = 0; i < sizeof w / sizeof *w; i++)
    w[i] = (float)i / 64.0f;
  for (size_t i = 0; i < sizeof fcw / sizeof *fcw; i++)
    fcw[i] = (float)(i % 7) - 3.0f;
  static int64_t wd[] = {3, 2, 3, 3}, fd[] = {108, 4}, bd[] = {3}, td[] = {1}, tail[] = {-1}, zero[] = {0};
  static Onnx__TensorProto tw = ONNX__TENSOR_PROTO__INIT, tb = ONNX__TENSOR_PROTO__INIT,
                           tt = ONNX__TENSOR_PROTO__INIT, tf = ONNX__TENSOR_PROTO__INIT,
                           tz = ONNX__TENSOR_PROTO__INIT;
  tw.name = "w", tw.has_data_type = 1, tw.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, tw.n_dims = 4,
  tw.dims = wd, tw.has_raw_data = 1, tw.raw_data = (ProtobufCBinaryData){sizeof w, (uint8_t *)w};
  tf = tw, tf.name = "fcw", tf.n_dims = 2, tf.dims = fd, tf.raw_data = (ProtobufCBinaryData){sizeof fcw, (uint8_t *)fcw};
  tb.name = "b", tb.has_data_type = 1, tb.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, tb.n_dims = 1, tb.dims = bd,
  tb.n_float_data = 3, tb.float_data = bv;
  tt.name = "tail", tt.has_data_type = 1, tt.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64, tt.n_dims = 1,
  tt.dims = td, tt.n_int64_data = 1, tt.int64_data = tail;
  tz.has_data_type = 1, tz.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64, tz.n_int64_data = 1, tz.int64_data = zero;
  static Onnx__TensorProto *inits[] = {&tw, &tb, &tt, &tf};

  static int64_t pads[] = {1, 1, 1, 1}, k2[] = {2, 2}, ax0[] = {0};
  static Onnx__AttributeProto a_pads = ONNX__ATTRIBUTE_PROTO__INIT, a_k = ONNX__ATTRIBUTE_PROTO__INIT,
                              a_s = ONNX__ATTRIBUTE_PROTO__INIT, a_val = ONNX__ATTRIBUTE_PROTO__INIT,
                              a_axes = ONNX__ATTRIBUTE_PROTO__INIT, a_axis = ONNX__ATTRIBUTE_PROTO__INIT;
  a_pads.name = "pads", a_pads.has_type = 1, a_pads.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
  a_pads.n_ints = 4, a_pads.ints = pads;
  a_k = a_pads, a_k.name = "kernel_shape", a_k.n_ints = 2, a_k.ints = k2;
  a_s = a_k, a_s.name = "strides";
  a_val.name = "value", a_val.has_type = 1, a_val.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR, a_val.t = &tz;
  a_axes = a_pads, a_axes.name = "value_ints", a_axes.n_ints = 1, a_axes.ints = ax0;
  a_axis.name = "axis", a_axis.has_type = 1, a_axis.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, a_axis.has_i = 1,
  a_axis.i = 0;
  static Onnx__AttributeProto *conv_attrs[] = {&a_pads}, *pool_attrs[] = {&a_k, &a_s}, *c0_attrs[] = {&a_val},
                              *c1_attrs[] = {&a_axes}, *cat_attrs[] = {&a_axis};

#define NODE(var, op, ins, outs, attrs, nattrs)                                                              \
  static char *var##_in[] = ins, *var##_out[] = outs;                                                        \
  static Onnx__NodeProto var = ONNX__NODE_PROTO__INIT;                                                       \
  var.op_type = op, var.name = #var, var.n_input = sizeof var##_in / sizeof(char *), var.input = var##_in,    \
  var.n_output = sizeof var##_out / sizeof(char *), var.output = var##_out, var.n_attribute = nattrs,         \
  var.attribute = attrs;
#define L(...) {__VA_ARGS__}
  NODE(conv, "Conv", L("x", "w", "b"), L("c"), conv_attrs, 1)
  NODE(relu, "Relu", L("c"), L("r"), NULL, 0)
  NODE(idx, "Constant", L(""), L("idx"), c0_attrs, 1)
  idx.n_input = 0;
  NODE(shape, "Shape", L("r"), L("s"), NULL, 0)
  NODE(gather, "Gather", L("s", "idx"), L("n0"), NULL, 0)
  NODE(axes, "Constant", L(""), L("axes"), c1_attrs, 1)
  axes.n_input = 0;
  NODE(unsq, "Unsqueeze", L("n0", "axes"), L("n1"), NULL, 0)
  NODE(cat, "Concat", L("n1", "tail"), L("tgt"), cat_attrs, 1)
  NODE(resh, "Reshape", L("r", "tgt"), L("flat"), NULL, 0)
  NODE(mm, "MatMul", L("flat", "fcw"), L("y"), NULL, 0)
  NODE(pool, "MaxPool", L("r"), L("p"), pool_attrs, 2)
  NODE(soft, "Softmax", L("y"), L("prob"), NULL, 0)
  static Onnx__NodeProto *nodes[] = {&conv, &relu, &idx, &shape, &gather, &axes, &unsq, &cat, &resh, &mm, &pool, &soft};

  static Onnx__TensorShapeProto__Dimension d0 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, d1, d2, d3;
  d0.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d0.dim_param = "N";
  d1 = d0, d1.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d1.dim_value = 2;
  d2 = d1, d2.dim_value = 6, d3 = d2;
  static Onnx__TensorShapeProto__Dimension *dims[] = {&d0, &d1, &d2, &d3};
  static Onnx__TensorShapeProto shp = ONNX__TENSOR_SHAPE_PROTO__INIT;
  shp.n_dim = 4, shp.dim = dims;
  static Onnx__TypeProto__Tensor tt_x = ONNX__TYPE_PROTO__TENSOR__INIT;
  tt_x.has_elem_type = 1, tt_x.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, tt_x.shape = &shp;
  static Onnx__TypeProto ty_x = ONNX__TYPE_PROTO__INIT;
  ty_x.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, ty_x.tensor_type = &tt_x;
  static Onnx__ValueInfoProto vx = ONNX__VALUE_INFO_PROTO__INIT, vp = ONNX__VALUE_INFO_PROTO__INIT,
                              vq = ONNX__VALUE_INFO_PROTO__INIT;
  vx.name = "x", vx.type = &ty_x;
  vp.name = "prob", vq.name = "p";
  static Onnx__ValueInfoProto *ins[] = {&vx}, *outs[] = {&vp, &vq};

  static Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
  graph.name = "fuzz", graph.n_node = sizeof nodes / sizeof *nodes, graph.node = nodes, graph.n_initializer = 4,
  graph.initializer = inits, graph.n_input = 1, graph.input = ins, graph.n_output = 2, graph.output = outs;
  static Onnx__OperatorSetIdProto op13 = ONNX__OPERATOR_SET_ID_PROTO__INIT;
  op13.domain = "", op13.has_version = 1, op13.version = 13;
  static Onnx__OperatorSetIdProto *opsets[] = {&op13};
  static Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
  model.has_ir_version = 1, model.ir_version = 7, model.graph = &graph, model.n_opset_import = 1,
  model.opset_import = opsets;
  *len = onnx__model_proto__get_packed_size(&model);
  uint8_t *buf = malloc(*len);
  onnx__model_proto__pack(&model, buf);
  return buf;
#undef NODE
#undef L
}

// One import of corrupted bytes: a graph that verifies, or an error that
// names the input. Returns whether it imported.
static bool import_once(const uint8_t *buf, size_t len) {
  err[0] = 0;
  ir_graph *g = onnx_import_buffer(buf, len, "fuzz", NULL, 0, err, sizeof err);
  if (!g) {
    CHECK(!strncmp(err, "fuzz: ", 6) && strlen(err) > 8, "refusal without a message: '%s'", err);
    return false;
  }
  char e2[IR_ERR_LEN];
  CHECK(ir_verify(g, "fuzz", e2, sizeof e2) == 0, "imported graph does not verify: %s", e2);
  FILE *f = fopen("/dev/null", "w");
  ir_print(g, f);
  fclose(f);
  ir_graph_free(g);
  return true;
}

static void test_fuzz(void) {
  size_t len;
  uint8_t *model = build_model(&len);
  ir_graph *g = onnx_import_buffer(model, len, "fuzz", NULL, 0, err, sizeof err);
  CHECK(g != NULL, "the fuzz model must import: %s", err);
  if (g) {
    CHECK(g->nnodes == 6 && g->nnotes == 1, "fuzz model: %d nodes (shape arithmetic folded)", g->nnodes);
    CHECK(!strcmp(ts(&ir_find(g, "flat")->ty), "f32[1,108]") && !strcmp(ts(&ir_find(g, "p")->ty), "f32[1,3,3,3]"),
          "fuzz model shapes");
  }
  ir_graph_free(g);
  int imported = 0, refused = 0;
  for (size_t n = 0; n < len; n++)
    import_once(model, n) ? imported++ : refused++;
  CHECK(imported == 0, "%d truncations imported", imported);
  uint8_t *buf = malloc(len * 2);
  test_seed(0x5eed);
  int runs = 6000;
  for (int r = 0; r < runs; r++) {
    size_t n = len;
    memcpy(buf, model, len);
    uint64_t kind = test_rand() % 4;
    if (kind < 2) { // flip a few bytes
      for (int k = 0, flips = 1 + (int)(test_rand() % 4); k < flips; k++)
        buf[test_rand() % n] = (uint8_t)test_rand();
    } else if (kind == 2) { // set a byte to a boundary value (lengths, tags, varints)
      static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x10, 0x12, 0x1a, 0x22};
      buf[test_rand() % n] = vals[test_rand() % sizeof vals];
    } else { // delete or duplicate a range
      size_t at = test_rand() % n, k = 1 + test_rand() % 16;
      if (at + k > n)
        k = n - at;
      if (test_rand() & 1) {
        memmove(buf + at, buf + at + k, n - at - k);
        n -= k;
      } else {
        memmove(buf + at + k, buf + at, n - at);
        n += k;
      }
    }
    import_once(buf, n) ? imported++ : refused++;
  }
  printf("importer fuzz: %zu truncations and %d mutations of a %zu-byte model: %d imported and verified, %d refused "
         "with a message\n",
         len, runs, len, imported, refused);
  free(buf);
  free(model);
}

int main(void) {
  test_tables();
  test_infer_linear();
  test_infer_conv_pool();
  test_infer_elementwise();
  test_infer_shapes();
  test_verify();
  test_edit();
  test_fold_shape_arith();
  test_fold_data();
  test_fold_refusals();
  test_print();
  test_fuzz();
  return test_done("test_ir");
}
