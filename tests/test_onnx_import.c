// The ONNX importer on models written by tests/models/make_models.py: types
// of every value that matters, attributes after normalisation, the bits of
// constants in each storage form, shape arithmetic folded away, opset
// variants of the ops whose attributes became inputs, input-shape overrides,
// and a clear error (never a crash) for each kind of bad model or file.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ir/ir.h"
#include "runtime/systole.h"
#include "testlib.h"

static char dir[64];

static void path_of(char *buf, size_t len, const char *model) { snprintf(buf, len, "%s/%s.onnx", dir, model); }

static ir_graph *load_ov(const char *model, const ir_input_shape *ov, int n) {
  char path[256], err[IR_ERR_LEN];
  path_of(path, sizeof path, model);
  ir_graph *g = onnx_import(path, ov, n, err, sizeof err);
  CHECK(g != NULL, "%s: %s", model, err);
  if (g)
    CHECK(ir_verify(g, "test", err, sizeof err) == 0, "%s: %s", model, err);
  return g;
}

static ir_graph *load(const char *model) { return load_ov(model, NULL, 0); }

// The import fails and the message holds every string of want.
static void expect_error_ov(const char *model, const ir_input_shape *ov, int n, const char *const *want) {
  char path[256], err[IR_ERR_LEN] = "";
  path_of(path, sizeof path, model);
  ir_graph *g = onnx_import(path, ov, n, err, sizeof err);
  CHECK(g == NULL, "%s imported but should fail", model);
  ir_graph_free(g);
  CHECK(strstr(err, path) == err, "%s: message does not start with the file name: %s", model, err);
  for (int i = 0; want[i]; i++)
    CHECK(strstr(err, want[i]) != NULL, "%s: message lacks '%s': %s", model, want[i], err);
}

#define EXPECT_ERROR(model, ...) expect_error_ov(model, NULL, 0, (const char *const[]){__VA_ARGS__, NULL})

static ir_value *val(const ir_graph *g, const char *name) {
  ir_value *v = ir_find(g, name);
  CHECK(v != NULL, "no value '%s' in graph %s", name, g->name);
  return v;
}

// The type of value vname, as text, is want ("f32[1,8,8,8]").
static void check_type(const ir_graph *g, const char *vname, const char *want, int line) {
  ir_value *v = val(g, vname);
  char s[128];
  if (v)
    CHECK(!strcmp(ir_type_str(&v->ty, s, sizeof s), want), "line %d: %s: '%s' is %s, want %s", line, g->name, vname,
          s, want);
}
#define CHECK_TYPE(g, vname, want) check_type(g, vname, want, __LINE__)

static const ir_node *prod(const ir_graph *g, const char *name) {
  ir_value *v = val(g, name);
  CHECK(v && v->producer, "'%s' has no producer", name);
  return v ? v->producer : NULL;
}

static uint32_t f32_bits(const ir_value *v, int i) {
  uint32_t b;
  memcpy(&b, (const uint8_t *)v->data + 4 * i, 4);
  return b;
}

static uint32_t bits_of(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

static int64_t ints_at(const ir_value *v, int i) { return ir_get_int(v->data, v->ty.dtype, i); }

// An int64 array literal that survives being a macro argument.
#define INTS(...) ((const int64_t[]){__VA_ARGS__})

static bool ints_are(const int64_t *got, const int64_t *want, int n) {
  for (int i = 0; i < n; i++)
    if (got[i] != want[i])
      return false;
  return true;
}

// ---------------------------------------------------------------- weights

static void test_weights(void) {
  ir_graph *g = load("weights");
  if (!g)
    return;
  CHECK(g->ninputs == 0 && g->noutputs == 21 && g->nnodes == 0, "weights: %d in, %d out, %d nodes", g->ninputs,
        g->noutputs, g->nnodes);
  ir_value *v = val(g, "w_raw");
  CHECK_TYPE(g, "w_raw", "f32[2,3]");
  const float raw[] = {1.5f, -2.25f, 3.0f, 0.1f, -0.0f, INFINITY};
  for (int i = 0; v && i < 6; i++)
    CHECK_BITS(f32_bits(v, i), bits_of(raw[i]), "w_raw[%d]", i);
  v = val(g, "w_float");
  const float fl[] = {0.5f, -1e-3f, 3.4028235e38f};
  for (int i = 0; v && i < 3; i++)
    CHECK_BITS(f32_bits(v, i), bits_of(fl[i]), "w_float[%d]", i);
  static const struct {
    const char *name, *type;
    int n;
    int64_t vals[3];
  } ints[] = {
      {"w_i64", "i64[3]", 3, {-1, 0, 9007199254740993}},
      {"w_i64_raw", "i64[2]", 2, {-(1ll << 40), 7}},
      {"w_i32", "i32[2]", 2, {-7, 2147483647}},
      {"w_i16", "i16[1]", 1, {-300}},
      {"w_i8", "i8[3]", 3, {-128, 127, -1}},
      {"w_u8", "u8[2]", 2, {0, 255}},
      {"w_bool", "bool[3]", 3, {1, 0, 1}},
      {"w_u32", "u32[2]", 2, {4294967295, 1}},
      {"w_u64", "u64[1]", 1, {-1}}, // 2^64 - 1 read back as int64
      {"c_int", "i64[]", 1, {-9}},
      {"c_ints", "i64[2]", 2, {4, 5}},
  };
  for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
    CHECK_TYPE(g, ints[k].name, ints[k].type);
    v = val(g, ints[k].name);
    for (int i = 0; v && i < ints[k].n; i++)
      CHECK(ints_at(v, i) == ints[k].vals[i], "%s[%d] = %lld", ints[k].name, i, (long long)ints_at(v, i));
  }
  // 16-bit floats are stored as their bits.
  uint16_t h[2];
  if ((v = val(g, "w_f16"))) {
    memcpy(h, v->data, 4);
    CHECK(h[0] == 0x3c00 && h[1] == 0xc000, "w_f16 bits %04x %04x", h[0], h[1]);
    CHECK(ir_get_float(v->data, IR_DT_F16, 1) == -2.0, "w_f16[1] reads %g", ir_get_float(v->data, IR_DT_F16, 1));
  }
  if ((v = val(g, "w_bf16"))) {
    memcpy(h, v->data, 4);
    CHECK(h[0] == 0x3f80 && h[1] == 0x4049, "w_bf16 bits %04x %04x", h[0], h[1]);
  }
  if ((v = val(g, "w_f64"))) {
    double d[2];
    memcpy(d, v->data, 16);
    CHECK(d[0] == 3.141592653589793 && d[1] == -0.5, "w_f64 %.17g %g", d[0], d[1]);
  }
  CHECK_TYPE(g, "w_scalar", "f32[]");
  if ((v = val(g, "w_scalar")))
    CHECK_BITS(f32_bits(v, 0), bits_of(42.0f), "w_scalar");
  CHECK_TYPE(g, "w_empty", "f32[0,3]");
  if ((v = val(g, "w_empty")))
    CHECK(v->data != NULL && ir_nbytes(&v->ty) == 0, "empty constant must still be a constant");
  CHECK_TYPE(g, "c_tensor", "f32[2]");
  if ((v = val(g, "c_tensor")))
    CHECK_BITS(f32_bits(v, 1), bits_of(8.0f), "c_tensor[1]");
  CHECK_TYPE(g, "c_float", "f32[]");
  if ((v = val(g, "c_float")))
    CHECK_BITS(f32_bits(v, 0), bits_of(2.5f), "c_float");
  CHECK_TYPE(g, "c_floats", "f32[3]");
  if ((v = val(g, "c_floats")))
    CHECK_BITS(f32_bits(v, 2), bits_of(3.0f), "c_floats[2]");
  ir_graph_free(g);
}

// ---------------------------------------------------------------- a CNN

static void test_cnn(void) {
  ir_graph *g = load("cnn");
  if (!g)
    return;
  CHECK(g->opset == 14 && g->nnodes == 11, "cnn: opset %d, %d nodes", g->opset, g->nnodes);
  CHECK(g->nnotes == 1 && strstr(g->notes[0], "input 'input' dim 0 ('N') is dynamic: using 1"), "cnn notes: %s",
        g->nnotes ? g->notes[0] : "(none)");
  static const struct {
    const char *name, *type;
    ir_op op;
  } want[] = {
      {"c1", "f32[1,8,8,8]", IR_OP_CONV},     {"bn", "f32[1,8,8,8]", IR_OP_BATCHNORM},
      {"r1", "f32[1,8,8,8]", IR_OP_RELU},     {"c2", "f32[1,8,8,8]", IR_OP_CONV},
      {"hs", "f32[1,8,8,8]", IR_OP_HARDSWISH}, {"mp", "f32[1,8,4,4]", IR_OP_MAXPOOL},
      {"ap", "f32[1,8,5,5]", IR_OP_AVGPOOL},  {"gap", "f32[1,8,1,1]", IR_OP_GLOBAL_AVGPOOL},
      {"flat", "f32[1,8]", IR_OP_RESHAPE},    {"fc", "f32[1,10]", IR_OP_GEMM},
      {"prob", "f32[1,10]", IR_OP_SOFTMAX},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    CHECK_TYPE(g, want[i].name, want[i].type);
    const ir_node *n = prod(g, want[i].name);
    CHECK(n && n->op == want[i].op && n->src_index == (int)i, "%s: op %s, source node %d", want[i].name,
          n ? ir_ops[n->op].name : "?", n ? n->src_index : -1);
  }
  const ir_node *n = prod(g, "c1");
  // SAME_UPPER on 16 with stride 2 and a 3-wide kernel: one row of padding, at the end.
  if (n)
    CHECK(ints_are(n->a.pads, INTS(0, 0, 1, 1), 4) && n->a.stride[0] == 2 && n->a.group == 1 && n->nin == 3,
          "conv1 pads %lld %lld %lld %lld", (long long)n->a.pads[0], (long long)n->a.pads[1],
          (long long)n->a.pads[2], (long long)n->a.pads[3]);
  if ((n = prod(g, "c2")))
    CHECK(n->a.group == 8 && n->a.dilation[1] == 2 && n->a.pads[3] == 2 && n->nin == 2, "depthwise conv attrs");
  if ((n = prod(g, "bn")))
    CHECK(n->a.epsilon == 1e-3f, "bn epsilon %g", (double)n->a.epsilon);
  if ((n = prod(g, "mp")))
    CHECK(n->a.ceil_mode && n->a.kernel[0] == 3 && n->a.stride[1] == 2, "maxpool attrs");
  if ((n = prod(g, "ap")))
    CHECK(n->a.count_include_pad && !n->a.ceil_mode && n->a.pads[0] == 1, "avgpool attrs");
  if ((n = prod(g, "fc")))
    CHECK(n->a.trans_b && !n->a.trans_a && n->a.alpha == 0.5f && n->a.beta == 2.0f, "gemm attrs");
  if ((n = prod(g, "prob")))
    CHECK(n->a.axis == 1, "softmax axis %d", n->a.axis);
  ir_value *w = val(g, "w1");
  if (w) {
    CHECK_TYPE(g, "w1", "f32[8,3,3,3]");
    CHECK_BITS(f32_bits(w, 0), bits_of(0.15625f), "w1[0]");
  }
  // The dump: one line per input, constant, node and output.
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ir_print(g, f);
  fclose(f);
  CHECK(strstr(text, "# note: input 'input' dim 0 ('N') is dynamic") != NULL, "dump lacks the note:\n%s", text);
  CHECK(strstr(text, "  input %input : f32[1,3,16,16]\n") != NULL, "dump input line:\n%s", text);
  CHECK(strstr(text, "  %c1 = conv(%input, %w1, %b1) { kernel=[3,3] stride=[2,2] dilation=[1,1] pads=[0,0,1,1] "
                     "group=1 } : f32[1,8,8,8]  # 0 'conv1'\n") != NULL,
        "dump conv line:\n%s", text);
  CHECK(strstr(text, "  const %w1 : f32[8,3,3,3]  # 864 bytes\n") != NULL, "dump const line:\n%s", text);
  CHECK(strstr(text, "  output %prob : f32[1,10]\n") != NULL, "dump output line:\n%s", text);
  free(text);
  ir_graph_free(g);

  // An override for the batch: no note, and every shape follows.
  ir_input_shape ov = {"input", 4, {3, 3, 16, 16}};
  g = load_ov("cnn", &ov, 1);
  if (g) {
    CHECK(g->nnotes == 0, "override must leave no note, got %s", g->nnotes ? g->notes[0] : "");
    CHECK_TYPE(g, "mp", "f32[3,8,4,4]");
    CHECK_TYPE(g, "prob", "f32[3,10]");
  }
  ir_graph_free(g);
}

// ---------------------------------------------------------------- shape arithmetic

static void test_pytorch_shapes(void) {
  for (int batch = 1; batch <= 4; batch += 3) {
    ir_input_shape ov = {"x", 4, {batch, 4, 6, 6}};
    ir_graph *g = load_ov("pytorch", batch == 1 ? NULL : &ov, batch == 1 ? 0 : 1);
    if (!g)
      continue;
    // Shape, Gather, Unsqueeze, Concat, Slice, Cast, Mul, Div, ConstantOfShape: all folded.
    CHECK(g->nnodes == 3, "pytorch: %d nodes left, want conv, reshape, resize", g->nnodes);
    static const ir_op ops[] = {IR_OP_CONV, IR_OP_RESHAPE, IR_OP_RESIZE};
    for (int i = 0; i < g->nnodes && i < 3; i++)
      CHECK(g->nodes[i]->op == ops[i], "node %d is %s", i, ir_ops[g->nodes[i]->op].name);
    char want[64];
    snprintf(want, sizeof want, "f32[%d,72]", batch);
    CHECK_TYPE(g, "flat", want);
    snprintf(want, sizeof want, "f32[%d,2,12,12]", batch);
    CHECK_TYPE(g, "up", want);
    const ir_node *n = prod(g, "up");
    if (n)
      CHECK(n->a.scales[2] == 2.0 && n->a.scales[3] == 2.0 && n->a.resize_mode == IR_RESIZE_NEAREST &&
                n->a.coord_mode == IR_COORD_HALF_PIXEL,
            "resize attrs");
    CHECK_TYPE(g, "ones", "f32[1]");
    ir_value *ones = val(g, "ones");
    if (ones)
      CHECK(ones->data && f32_bits(ones, 0) == bits_of(1.0f), "ConstantOfShape folded to [1.0]");
    // Folded leftovers are pruned: only the weight and the output constant remain.
    int nconst = 0;
    for (int i = 0; i < g->nvalues; i++)
      nconst += g->values[i]->data != NULL;
    CHECK(nconst == 2 && !ir_find(g, "target") && !ir_find(g, "s"), "%d constants left", nconst);
    CHECK(g->nnotes == (batch == 1), "pytorch batch %d: %d notes", batch, g->nnotes);
    ir_graph_free(g);
  }
}

// ---------------------------------------------------------------- opset forms

static void test_forms(void) {
  // Every valid model: imports with the declared output shapes, so no note.
  static const struct {
    const char *model, *out, *type;
    ir_op op;
    int nnodes;
  } forms[] = {
      {"clip_v7", "y", "f32[2,3]", IR_OP_CLIP, 1},
      {"clip_v11", "y", "f32[2,3]", IR_OP_CLIP, 1},
      {"clip_v13_max", "y", "f32[2,3]", IR_OP_CLIP, 1},
      {"split_v11", "y2", "f32[3,4]", IR_OP_SPLIT, 1},
      {"split_v13", "y1", "f32[6,1]", IR_OP_SPLIT, 1},
      {"split_v18", "y2", "f32[1]", IR_OP_SPLIT, 1},
      {"slice_v9", "y", "f32[9,2]", IR_OP_SLICE, 1},
      {"slice_v13", "y", "f32[5,4]", IR_OP_SLICE, 1},
      {"pad_v7", "y", "f32[5,4]", IR_OP_PAD, 1},
      {"pad_v13", "y", "f32[2,5]", IR_OP_PAD, 1},
      {"pad_v18", "y", "f32[5,3,7]", IR_OP_PAD, 1},
      {"squeeze_v11", "y", "f32[3,2]", IR_OP_RESHAPE, 1},
      {"squeeze_v13", "y", "f32[1,3,2]", IR_OP_RESHAPE, 1},
      {"squeeze_all", "y", "f32[3,2]", IR_OP_RESHAPE, 1},
      {"unsqueeze_v11", "y", "f32[1,3,2,1]", IR_OP_RESHAPE, 1},
      {"unsqueeze_v13", "y", "f32[3,1,2,1]", IR_OP_RESHAPE, 1},
      {"softmax_v11", "y", "f32[2,3,4]", IR_OP_RESHAPE, 3},
      {"softmax_v13", "y", "f32[2,3,4]", IR_OP_SOFTMAX, 1},
      {"resize_v10", "y", "f32[1,1,4,6]", IR_OP_RESIZE, 1},
      {"resize_v11", "y", "f32[1,1,3,5]", IR_OP_RESIZE, 1},
      {"resize_v13", "y", "f32[1,1,1,3]", IR_OP_RESIZE, 1},
      {"resize_v18", "y", "f32[1,1,2,4]", IR_OP_RESIZE, 1},
      {"upsample_v9", "y", "f32[1,1,4,4]", IR_OP_RESIZE, 1},
      {"reshape_v14", "y", "f32[3,0]", IR_OP_RESHAPE, 1},
      {"reshape_zero", "y", "f32[2,12]", IR_OP_RESHAPE, 1},
      {"dropout_v7", "y", "f32[2,3]", IR_OP_IDENTITY, 1},
      {"dropout_v12", "y", "f32[2,3]", IR_OP_IDENTITY, 1},
      {"cast", "y", "i8[2,2]", IR_OP_CAST, 1},
      {"opset21", "y", "f32[4]", IR_OP_RELU, 1},
      {"matmul", "y", "f32[2,5,3,6]", IR_OP_MATMUL, 2},
      {"gather", "y", "f32[2,3,4]", IR_OP_GATHER, 1},
      {"transpose", "y", "f32[4,3,2]", IR_OP_TRANSPOSE, 1},
      {"concat", "y", "f32[2,8]", IR_OP_CONCAT, 1},
      {"init_as_input", "y", "f32[2]", IR_OP_ADD, 1},
      {"constant_of_shape", "y", "i64[2,3]", IR_OP_COUNT, 0},
  };
  for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
    ir_graph *g = load(forms[i].model);
    if (!g)
      continue;
    CHECK_TYPE(g, forms[i].out, forms[i].type);
    CHECK(g->nnodes == forms[i].nnodes, "%s: %d nodes, want %d", forms[i].model, g->nnodes, forms[i].nnodes);
    const ir_value *v = val(g, forms[i].out);
    CHECK(forms[i].op == IR_OP_COUNT ? v && v->data : v && v->producer && v->producer->op == forms[i].op,
          "%s: '%s' made by the wrong op", forms[i].model, forms[i].out);
    CHECK(g->nnotes == 0, "%s: note %s", forms[i].model, g->nnotes ? g->notes[0] : "");
    ir_graph_free(g);
  }
}

// Attributes as the importer normalised them, model by model.
static void test_form_attrs(void) {
  ir_graph *g;
  const ir_node *n;
  // If with a constant condition: the taken (else) branch inlined, reading the outer x.
  if ((g = load("if_const")) && (n = prod(g, "y")))
    CHECK(n->op == IR_OP_IDENTITY && n->in[0]->producer && n->in[0]->producer->op == IR_OP_NEG &&
              n->in[0]->producer->in[0] == val(g, "x"),
          "if_const: y is not identity(neg(x))");
  ir_graph_free(g);
  if ((g = load("clip_v7")) && (n = prod(g, "y")))
    CHECK(n->a.lo == -1 && n->a.hi == 2, "clip_v7 %g %g", n->a.lo, n->a.hi);
  ir_graph_free(g);
  if ((g = load("clip_v11")) && (n = prod(g, "y")))
    CHECK(n->a.lo == 0 && n->a.hi == 6 && n->nin == 1, "clip_v11 %g %g", n->a.lo, n->a.hi);
  ir_graph_free(g);
  if ((g = load("clip_v13_max")) && (n = prod(g, "y")))
    CHECK(isinf(n->a.lo) && n->a.lo < 0 && n->a.hi == 6, "clip_v13 %g %g", n->a.lo, n->a.hi);
  ir_graph_free(g);
  if ((g = load("split_v18")) && (n = prod(g, "y0")))
    CHECK(n->nout == 3 && n->a.nsizes == 3 && ints_are(n->a.sizes, INTS(3, 3, 1), 3), "split_v18 sizes");
  ir_graph_free(g);
  if ((g = load("split_v13")) && (n = prod(g, "y0")))
    CHECK(n->a.axis == 1 && ints_are(n->a.sizes, INTS(3, 1), 2), "split_v13 axis %d", n->a.axis);
  ir_graph_free(g);
  // Negative, clamped and stepped indices, normalised as ONNX says.
  if ((g = load("slice_v9")) && (n = prod(g, "y")))
    CHECK(ints_are(n->a.start, INTS(1, 7), 2) && ints_are(n->a.end, INTS(10, 9), 2) &&
              ints_are(n->a.step, INTS(1, 1), 2),
          "slice_v9 attrs");
  ir_graph_free(g);
  if ((g = load("slice_v13")) && (n = prod(g, "y")))
    CHECK(ints_are(n->a.start, INTS(9, 0), 2) && ints_are(n->a.end, INTS(-1, 10), 2) &&
              ints_are(n->a.step, INTS(-2, 3), 2),
          "slice_v13 start %lld end %lld", (long long)n->a.start[0], (long long)n->a.end[0]);
  ir_graph_free(g);
  if ((g = load("pad_v7")) && (n = prod(g, "y")))
    CHECK(n->a.pad_mode == IR_PAD_CONSTANT && n->a.pad_value == 1.5 && ints_are(n->a.pads, INTS(1, 0, 2, 1), 4),
          "pad_v7 attrs");
  ir_graph_free(g);
  if ((g = load("pad_v13")) && (n = prod(g, "y")))
    CHECK(n->a.pad_mode == IR_PAD_REFLECT && n->a.pad_value == 0.25 && n->nin == 1, "pad_v13 attrs");
  ir_graph_free(g);
  if ((g = load("pad_v18")) && (n = prod(g, "y")))
    CHECK(ints_are(n->a.pads, INTS(1, 0, 1, 2, 0, 2), 6), "pad_v18 pads");
  ir_graph_free(g);
  // Softmax before opset 13 works on a 2-D view: reshape, softmax, reshape.
  if ((g = load("softmax_v11")) && g->nnodes == 3) {
    CHECK(g->nodes[1]->op == IR_OP_SOFTMAX && g->nodes[1]->a.axis == 1, "softmax_v11 middle node");
    CHECK(!strcmp(ir_type_str(&g->nodes[0]->out[0]->ty, (char[64]){0}, 64), "f32[2,12]"), "softmax_v11 2-D view");
    CHECK(!strcmp(g->nodes[1]->name, "sm") && g->nodes[2]->src_index == 0, "made nodes keep the source node");
  }
  ir_graph_free(g);
  if ((g = load("resize_v10")) && (n = prod(g, "y")))
    CHECK(n->a.coord_mode == IR_COORD_ASYMMETRIC && n->a.nearest_mode == IR_NEAREST_FLOOR && n->a.scales[3] == 3,
          "resize_v10 attrs");
  ir_graph_free(g);
  if ((g = load("resize_v11")) && (n = prod(g, "y")))
    CHECK(n->a.resize_mode == IR_RESIZE_LINEAR && n->a.coord_mode == IR_COORD_ALIGN_CORNERS &&
              n->a.scales[2] == 1.5 && n->a.scales[3] == 2.5,
          "resize_v11 attrs");
  ir_graph_free(g);
  if ((g = load("resize_crop")) && (n = prod(g, "y")))
    CHECK(n->a.coord_mode == IR_COORD_TF_CROP_AND_RESIZE && n->a.roi_start[3] == 0.25f && n->a.roi_end[3] == 0.75f &&
              n->a.roi_start[2] == 0 && n->a.roi_end[2] == 1 && n->a.extrapolation == -1.0f && n->a.dims[3] == 4,
          "resize_crop attrs");
  ir_graph_free(g);
  if ((g = load("resize_v13")) && (n = prod(g, "y")))
    CHECK(n->a.resize_mode == IR_RESIZE_CUBIC && n->a.cubic_a == -0.75f && n->a.scales[2] == 0.5, "resize_v13 attrs");
  ir_graph_free(g);
  // Dropout's mask, when read, is a constant true.
  if ((g = load("dropout_v12"))) {
    ir_value *m = val(g, "mask");
    CHECK_TYPE(g, "mask", "bool[2,3]");
    CHECK(m && m->data && ints_at(m, 0) == 1 && ints_at(m, 5) == 1, "mask is all true");
  }
  ir_graph_free(g);
  // Cast of a constant folds: truncation toward zero, saturation, NaN -> 0.
  if ((g = load("cast"))) {
    ir_value *c = val(g, "yc");
    CHECK(c && c->data && ints_at(c, 0) == 1 && ints_at(c, 1) == -2 && ints_at(c, 2) == 127 && ints_at(c, 3) == 0,
          "cast folding");
  }
  ir_graph_free(g);
  if ((g = load("gather"))) {
    ir_value *c = val(g, "yc");
    CHECK_TYPE(g, "yc", "i64[2]");
    CHECK(c && c->data && ints_at(c, 0) == 3 && ints_at(c, 1) == 6, "gather with index -1 folds");
  }
  ir_graph_free(g);
  if ((g = load("constant_of_shape"))) {
    ir_value *c = val(g, "y");
    CHECK(c && ints_at(c, 0) == 7 && ints_at(c, 5) == 7, "constant_of_shape value");
  }
  ir_graph_free(g);
  if ((g = load("opset21")))
    CHECK(g->opset == 21, "opset %d", g->opset);
  ir_graph_free(g);
  if ((g = load("init_as_input"))) {
    CHECK(g->ninputs == 1 && !strcmp(g->inputs[0]->name, "x"), "an initializer listed as input stays a constant");
    CHECK(val(g, "bias") && val(g, "bias")->data, "bias is a constant");
  }
  ir_graph_free(g);
}

// ---------------------------------------------------------------- overrides

static void test_overrides(void) {
  EXPECT_ERROR("dynamic", "input 'x' dim 2 ('H') is dynamic", "override");
  ir_input_shape ov;
  char err[IR_ERR_LEN];
  CHECK(ir_parse_input_shape("x=2,3,5,8", &ov, err, sizeof err) == 0, "%s", err);
  ir_graph *g = load_ov("dynamic", &ov, 1);
  if (g) {
    CHECK_TYPE(g, "x", "f32[2,3,5,8]");
    CHECK_TYPE(g, "y", "f32[2,3,5,8]");
    CHECK(g->nnotes == 0, "no note with an override");
  }
  ir_graph_free(g);
  CHECK(ir_parse_input_shape("x=1x4x5x8", &ov, err, sizeof err) == 0, "%s", err);
  expect_error_ov("dynamic", &ov, 1, (const char *const[]){"input 'x' dim 1 is 3 in the model", "gives 4", NULL});
  CHECK(ir_parse_input_shape("x=1,3,5", &ov, err, sizeof err) == 0, "%s", err);
  expect_error_ov("dynamic", &ov, 1, (const char *const[]){"has 4 dims in the model", "gives 3", NULL});
  CHECK(ir_parse_input_shape("input:0=1,3,5,8", &ov, err, sizeof err) == 0 && !strcmp(ov.name, "input:0"),
        "names may hold ':' (%s)", ov.name);
  expect_error_ov("dynamic", &ov, 1, (const char *const[]){"'input:0', which is not an input", NULL});
  // The parser's own errors.
  const char *bad[] = {"x", "=1,2", "x=1,,2", "x=1,-2", "x=a", "x=1,2,3,4,5,6,7,8,9", "x=1;2"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    CHECK(ir_parse_input_shape(bad[i], &ov, err, sizeof err) == -1 && strstr(err, bad[i]),
          "'%s' must not parse (%s)", bad[i], err);
  CHECK(ir_parse_input_shape("s=", &ov, err, sizeof err) == 0 && ov.rank == 0, "'s=' is a scalar");
}

// ---------------------------------------------------------------- MaxPool's indices

// Compiles model, runs it on x (f32, the model's input shape) and checks
// outputs y (f32) and i (i64) exactly.
static void run_indices(const char *model, const float *x, const float *want_y, const int64_t *want_i, int n) {
  char path[256], e[256];
  path_of(path, sizeof path, model);
  sy_client *c = sy_client_create("tpu-v4", e, sizeof e);
  CHECK(c != NULL, "%s", e);
  sy_executable *ex = c ? sy_compile_file(c, path, NULL) : NULL;
  CHECK(ex != NULL, "%s: %s", model, c ? sy_last_error(c) : "");
  if (ex) {
    sy_tensor in, out[2];
    sy_executable_input(ex, 0, &in);
    in.data = (void *)x;
    bool ok = sy_execute(c, ex, &in, 1, out, NULL, NULL) == 0;
    CHECK(ok, "%s: %s", model, sy_last_error(c));
    if (ok) {
      CHECK(out[0].dtype == SY_F32 && sy_tensor_elements(&out[0]) == n && !memcmp(out[0].data, want_y, (size_t)n * 4),
            "%s: y", model);
      CHECK(out[1].dtype == SY_I64 && sy_tensor_elements(&out[1]) == n && !memcmp(out[1].data, want_i, (size_t)n * 8),
            "%s: indices %lld %lld %lld", model, (long long)((int64_t *)out[1].data)[0],
            (long long)((int64_t *)out[1].data)[1], (long long)((int64_t *)out[1].data)[2]);
      sy_tensor_free(&out[0]), sy_tensor_free(&out[1]);
    }
  }
  sy_executable_destroy(ex);
  sy_client_destroy(c);
}

static void test_maxpool_indices(void) {
  // Windows (0,2), (1,3), (2,4) per channel; channel 1 starts at index 5.
  float xd[10] = {3, 1, 3, 5, 0, -1, -2, -1, -7, -1};
  run_indices("maxpool_indices_dilated", xd, (float[]){3, 5, 3, -1, -2, -1}, (int64_t[]){0, 3, 2, 5, 6, 7}, 6);
  // The third window holds x[4] and the end padding.
  run_indices("maxpool_indices_ceil", (float[]){1, 2, 3, 4, 5}, (float[]){2, 4, 5}, (int64_t[]){1, 3, 4}, 3);
  // Column-major spatial indices: (h, w) is h + 2 w.
  run_indices("maxpool_indices_one", (float[]){1, 2, 3, 4, 5, 6}, (float[]){1, 2, 3, 4, 5, 6},
              (int64_t[]){0, 2, 4, 1, 3, 5}, 6);
}

// ---------------------------------------------------------------- errors

static void test_errors(void) {
  EXPECT_ERROR("err_unsupported", "node 1 'my_foo'", "unsupported op 'Foo'", "opset 13");
  EXPECT_ERROR("err_domain", "node 0 'fc'", "unsupported op 'FusedConv'", "com.microsoft");
  EXPECT_ERROR("err_external", "initializer 'w'", "external", "weights.bin");
  EXPECT_ERROR("err_undefined", "node 0", "input 0 'nope' is not defined");
  EXPECT_ERROR("err_order", "node 0 'second'", "input 0 't' is not defined");
  EXPECT_ERROR("err_twice", "value 'y' is defined more than once");
  EXPECT_ERROR("err_add_v6", "Add before opset 7", "opset 6");
  EXPECT_ERROR("err_opset22", "opset 22 is not supported");
  EXPECT_ERROR("err_attr", "attribute 'foo' of Relu is not supported");
  EXPECT_ERROR("err_maxpool_order", "MaxPool", "storage_order 2 is not 0 or 1");
  EXPECT_ERROR("err_resize_roi", "Resize", "roi has 4 values; 4 axes need 8 (starts, then ends)");
  EXPECT_ERROR("err_matmul", "node 0 'mm' (MatMul, opset 13)", "inner dims differ: f32[2,3] @ f32[4,5]");
  EXPECT_ERROR("err_reshape_runtime", "input 1 's' (shape) must be a constant", "graph input");
  EXPECT_ERROR("err_outtype", "graph output 'y' is declared INT64 but computes f32[2]");
  EXPECT_ERROR("err_conv", "node 0 'conv'", "2 input channels per group", "needs 3");
  EXPECT_ERROR("err_noproducer", "graph output 'z' is not produced");
  EXPECT_ERROR("err_gather", "node 0 (Gather, opset 13): index 5 out of range");
  EXPECT_ERROR("err_reshape", "cannot infer the -1");
  EXPECT_ERROR("err_string", "input 'x'", "STRING");
  EXPECT_ERROR("err_if_runtime", "(If, opset 13)", "input 0 'c' (cond) must be a constant", "graph input");
}

// Files that are not models, or are cut short: an error each, never a crash.
static void test_bad_files(void) {
  char path[256], err[IR_ERR_LEN];
  snprintf(path, sizeof path, "%s/missing.onnx", dir);
  CHECK(!onnx_import(path, NULL, 0, err, sizeof err) && strstr(err, "cannot open"), "missing file: %s", err);
  snprintf(path, sizeof path, "%s/empty.onnx", dir);
  FILE *f = fopen(path, "wb");
  fclose(f);
  CHECK(!onnx_import(path, NULL, 0, err, sizeof err) && strstr(err, "empty"), "empty file: %s", err);
  CHECK(!onnx_import(dir, NULL, 0, err, sizeof err), "a directory is not a model");

  path_of(path, sizeof path, "cnn");
  size_t len;
  char *model = test_read_file(path, &len);
  CHECK(model != NULL, "cannot read %s", path);
  if (!model)
    return;
  // Truncated at every length: the graph comes before opset_import in the
  // file, so every proper prefix is broken or incomplete.
  int refused = 0, tries = 0;
  for (size_t n = 1; n < len; n += n < 256 ? 1 : 13, tries++) {
    err[0] = 0;
    ir_graph *g = onnx_import_buffer(model, n, "cut.onnx", NULL, 0, err, sizeof err);
    CHECK(!g && !strncmp(err, "cut.onnx: ", 10), "truncated at %zu of %zu: %s", n, len, g ? "imported" : err);
    refused += !g;
    ir_graph_free(g);
  }
  // And one truncated file through the file path.
  snprintf(path, sizeof path, "%s/truncated.onnx", dir);
  f = fopen(path, "wb");
  fwrite(model, 1, len / 2, f);
  fclose(f);
  CHECK(!onnx_import(path, NULL, 0, err, sizeof err) && strstr(err, "truncated or corrupt"), "truncated file: %s",
        err);
  // Text is not a model.
  const char *text = "ir_version: 8\ngraph { node { op_type: \"Relu\" } }\n";
  CHECK(!onnx_import_buffer(text, strlen(text), "text.onnx", NULL, 0, err, sizeof err), "text parsed as a model");
  printf("bad files: %d truncations of cnn.onnx (%zu bytes) refused of %d\n", refused, len, tries);
  free(model);
}

// A regular file is mapped, anything else read: a model through a pipe
// imports to the same graph as from its file.
static void test_pipe(void) {
  char path[256], fifo[256], err[IR_ERR_LEN];
  path_of(path, sizeof path, "cnn");
  size_t len;
  char *model = test_read_file(path, &len);
  CHECK(model != NULL, "cannot read %s", path);
  snprintf(fifo, sizeof fifo, "%s/pipe.onnx", dir);
  if (!model || mkfifo(fifo, 0600)) {
    CHECK(0, "mkfifo %s", fifo);
    free(model);
    return;
  }
  pid_t pid = fork();
  if (pid == 0) { // the writer
    FILE *f = fopen(fifo, "wb");
    size_t put = f ? fwrite(model, 1, len, f) : 0;
    _exit(f && fclose(f) == 0 && put == len ? 0 : 1);
  }
  ir_graph *piped = onnx_import(fifo, NULL, 0, err, sizeof err);
  int status = -1;
  waitpid(pid, &status, 0);
  CHECK(piped != NULL, "through a pipe: %s", err);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the pipe's writer failed");
  ir_graph *filed = onnx_import(path, NULL, 0, err, sizeof err);
  CHECK(filed != NULL, "%s: %s", path, err);
  if (piped && filed) {
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    FILE *fa = open_memstream(&a, &na), *fb = open_memstream(&b, &nb);
    ir_print(piped, fa);
    ir_print(filed, fb);
    fclose(fa), fclose(fb);
    const char *ba = strchr(a, '\n'), *bb = strchr(b, '\n'); // the first line names the file
    CHECK(ba && bb && !strcmp(ba, bb), "the piped model's graph differs from the file's:\n%s\n%s", a, b);
    CHECK(piped->nvalues == filed->nvalues, "values: %d and %d", piped->nvalues, filed->nvalues);
    for (int i = 0; i < piped->nvalues && i < filed->nvalues; i++) {
      const ir_value *u = piped->values[i], *v = filed->values[i];
      CHECK(!u->data == !v->data && (!u->data || !memcmp(u->data, v->data, ir_nbytes(&u->ty))),
            "constant %s differs", v->name);
    }
    free(a), free(b);
  }
  ir_graph_free(piped);
  ir_graph_free(filed);
  free(model);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/systole-onnx-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/models/make_models.py %s", SYSTOLE_SOURCE_DIR, dir);
  int rc = system(cmd);
  CHECK(rc == 0, "'%s' failed (python3-onnx and python3-numpy installed? scripts/install-deps.sh)", cmd);
  if (rc == 0) {
    test_weights();
    test_cnn();
    test_pytorch_shapes();
    test_forms();
    test_form_attrs();
    test_overrides();
    test_errors();
    test_maxpool_indices();
    test_bad_files();
    test_pipe();
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return test_done("test_onnx_import");
}
