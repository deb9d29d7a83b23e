// LSTM, GRU and RNN (issue 4) on models written by tests/models/make_rnn_models.py:
// the importer's normalisation (activations and their alpha/beta, defaults,
// zero-filled inputs, sequence_lens, batch-first layout), the unrolling pass
// (what it makes, the verifier after it), the refusals of importer and
// compiler (each names the node and the reason), and batch-first models
// against their layout-0 twins, bit for bit, at both precisions. Values
// against ONNX Runtime are tests/cli_models_ort.sh's (scripts/make_test_models.py)
// and against ONNX's reference outputs test_conformance.c's.
#include <stdlib.h>
#include <string.h>

#include "compiler/compiler.h"
#include "runtime/systole.h"
#include "testlib.h"

static char dir[64];

static void path_of(char *buf, size_t len, const char *model) { snprintf(buf, len, "%s/%s.onnx", dir, model); }

static ir_graph *load(const char *model) {
  char path[256], err[IR_ERR_LEN];
  path_of(path, sizeof path, model);
  ir_graph *g = onnx_import(path, NULL, 0, err, sizeof err);
  CHECK(g != NULL, "%s: %s", model, err);
  return g;
}

static const ir_node *first(const ir_graph *g, ir_op op) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == op)
      return g->nodes[i];
  return NULL;
}

static int count(const ir_graph *g, ir_op op) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++)
    k += g->nodes[i]->op == op;
  return k;
}

static bool all_zero(const ir_value *v) {
  if (!v->data)
    return false;
  for (int64_t i = 0; i < ir_nelems(&v->ty); i++)
    if (ir_get_float(v->data, v->ty.dtype, i) != 0)
      return false;
  return true;
}

static void type_is(const ir_value *v, const char *want, const char *what) {
  char s[128];
  CHECK(!strcmp(ir_type_str(&v->ty, s, sizeof s), want), "%s is %s, want %s", what, s, want);
}

// ---------------------------------------------------------------- import

static void test_import(void) {
  ir_graph *g = load("lstm_attrs");
  const ir_node *n = g ? first(g, IR_OP_LSTM) : NULL;
  CHECK(n != NULL, "lstm_attrs: no lstm node");
  if (n) {
    const ir_attrs *a = &n->a;
    CHECK(a->rnn_dir == IR_RNN_BIDIRECTIONAL && a->hidden == 4, "direction %d hidden %lld", (int)a->rnn_dir,
          (long long)a->hidden);
    // ONNX Runtime's reading: each function takes the next alpha and beta it
    // uses, or its default once a list has run out (elu 1, others 0).
    static const struct {
      ir_rnn_act act;
      float alpha, beta;
    } want[6] = {{IR_RNN_LEAKY_RELU, 0.3f, 0},   {IR_RNN_HARD_SIGMOID, 0.25f, 0.6f}, {IR_RNN_AFFINE, 2.0f, 0},
                 {IR_RNN_ELU, 1.0f, 0},          {IR_RNN_SCALED_TANH, 0, 0},         {IR_RNN_SIGMOID, 0, 0}};
    for (int k = 0; k < 6; k++)
      CHECK(a->rnn_act[k] == want[k].act && a->rnn_alpha[k] == want[k].alpha && a->rnn_beta[k] == want[k].beta,
            "activation %d: %s(%g, %g), want %s(%g, %g)", k, ir_rnn_act_names[a->rnn_act[k]], (double)a->rnn_alpha[k],
            (double)a->rnn_beta[k], ir_rnn_act_names[want[k].act], (double)want[k].alpha, (double)want[k].beta);
    // B, initial_h, initial_c and P were absent: zeros; the full sequence_lens is dropped.
    CHECK(n->nin == 7, "lstm_attrs: %d inputs, want 7 (sequence_lens of full length dropped)", n->nin);
    static const char *const shapes[] = {"f32[2,32]", "f32[2,2,4]", "f32[2,2,4]", "f32[2,12]"};
    for (int i = 3; i < 7 && i < n->nin; i++) {
      CHECK(all_zero(n->in[i]), "lstm_attrs: input %d is not a zero constant", i);
      type_is(n->in[i], shapes[i - 3], "lstm_attrs input");
    }
  }
  ir_graph_free(g);

  g = load("lstm_lens");
  n = g ? first(g, IR_OP_LSTM) : NULL;
  CHECK(n && n->nin == 8 && n->in[7]->data && ir_get_int(n->in[7]->data, n->in[7]->ty.dtype, 1) == 3,
        "lstm_lens: sequence_lens [5, 3] must stay as input 7");
  ir_graph_free(g);

  // Layout 1: transposes around the layout-0 op.
  g = load("gru_layout1");
  n = g ? first(g, IR_OP_GRU) : NULL;
  CHECK(n != NULL, "gru_layout1: no gru");
  if (n) {
    CHECK(n->a.linear_before_reset, "gru_layout1: linear_before_reset lost");
    type_is(n->in[0], "f32[5,2,3]", "gru_layout1 X");
    type_is(n->in[4], "f32[1,2,4]", "gru_layout1 initial_h");
    const ir_node *tx = n->in[0]->producer, *th = n->in[4]->producer;
    CHECK(tx && tx->op == IR_OP_TRANSPOSE && tx->a.perm[0] == 1 && tx->a.perm[1] == 0 && tx->in[0]->is_input,
          "gru_layout1: X is not a transpose of the input");
    CHECK(th && th->op == IR_OP_TRANSPOSE && th->in[0]->is_input, "gru_layout1: initial_h is not transposed");
    const ir_value *y = ir_find(g, "y"), *yh = ir_find(g, "yh");
    CHECK(y && y->producer && y->producer->op == IR_OP_TRANSPOSE && y->producer->a.perm[0] == 2 &&
              y->producer->a.perm[1] == 0 && y->producer->a.perm[2] == 1 && y->producer->a.perm[3] == 3,
          "gru_layout1: Y is not transposed [2,0,1,3]");
    CHECK(yh && yh->producer && yh->producer->op == IR_OP_TRANSPOSE, "gru_layout1: Y_h is not transposed");
    if (y && yh) {
      type_is(y, "f32[2,5,1,4]", "gru_layout1 Y");
      type_is(yh, "f32[2,1,4]", "gru_layout1 Y_h");
    }
  }
  ir_graph_free(g);
}

// The import fails with a message naming the file, the node and the reason.
static void expect_import_error(const char *model, const char *want) {
  char path[256], err[IR_ERR_LEN] = "";
  path_of(path, sizeof path, model);
  ir_graph *g = onnx_import(path, NULL, 0, err, sizeof err);
  CHECK(g == NULL, "%s imported but should fail", model);
  ir_graph_free(g);
  CHECK(strstr(err, path) == err && strstr(err, "node 0 'rnn'") && strstr(err, want), "%s: message lacks '%s': %s",
        model, want, err);
}

static void test_import_errors(void) {
  expect_import_error("err_rnn_lens_input", "input 4 'lens' (sequence_lens) must be a constant, but it is a graph input");
  expect_import_error("err_rnn_act_name", "activation 1 'Swish' is not one of ONNX's");
  expect_import_error("err_rnn_act_count", "activations: 1 given, 2 expected (2 per direction)");
  expect_import_error("err_rnn_layout_opset13", "attribute 'layout' is new in opset 14");
  expect_import_error("err_rnn_hidden", "hidden_size 5 does not match R's last dim 4");
  expect_import_error("err_rnn_lens_range", "sequence_lens[1] = 7 is outside [0, 5]");
  expect_import_error("err_rnn_clip", "clip 0 must be positive");
  expect_import_error("err_rnn_w_shape", "W must be f32[1,16,3], got f32[1,12,3]");
  expect_import_error("err_rnn_direction", "attribute 'direction' = 'sideways' is not supported");
}

// ---------------------------------------------------------------- the unrolling

static void test_unroll(void) {
  char err[CC_ERR_LEN];
  // One direction, no initial state: the input projections of all 5 steps are
  // one matmul; steps 1..4 each multiply h by R^T (step 0's h is zero).
  ir_graph *g = load("lstm_plain");
  if (g) {
    CHECK(cc_unroll_rnn(g, err, sizeof err) == 1, "lstm_plain: %s", err);
    CHECK(ir_verify(g, "unroll_rnn", err, sizeof err) == 0, "lstm_plain: %s", err);
    CHECK(!first(g, IR_OP_LSTM), "lstm_plain: an lstm is left");
    CHECK(count(g, IR_OP_MATMUL) == 1 + 4, "lstm_plain: %d matmuls, want 5", count(g, IR_OP_MATMUL));
    // i, o, f and c~, C's tanh per step; but step 0's forget gate multiplies
    // a zero cell state, so nothing computes it.
    CHECK(count(g, IR_OP_SIGMOID) == 3 * 5 - 1 && count(g, IR_OP_TANH) == 2 * 5, "lstm_plain: %d sigmoid, %d tanh",
          count(g, IR_OP_SIGMOID), count(g, IR_OP_TANH));
    const ir_value *y = ir_find(g, "y"), *yc = ir_find(g, "yc");
    CHECK(y && y->is_output && y->producer && yc && yc->producer, "lstm_plain: outputs lost their producers");
    if (y && yc) {
      type_is(y, "f32[5,1,2,4]", "lstm_plain Y");
      type_is(yc, "f32[1,2,4]", "lstm_plain Y_c");
    }
    // The rest of the pipeline keeps it valid (ir_verify after each pass).
    cc_options opt = {0};
    CHECK(cc_optimize(g, &opt, err, sizeof err) == 0, "lstm_plain: %s", err);
  }
  ir_graph_free(g);

  // Bidirectional GRU with an initial state given: every step of both
  // directions multiplies h by R_zr^T and (r*h) by R_h^T; one projection each.
  g = load("gru_bidir");
  if (g) {
    cc_options opt = {0};
    CHECK(cc_optimize(g, &opt, err, sizeof err) == 0, "gru_bidir: %s", err);
    CHECK(!first(g, IR_OP_GRU), "gru_bidir: a gru is left");
    CHECK(count(g, IR_OP_MATMUL) == 2 * (1 + 2 * 5), "gru_bidir: %d matmuls, want 22", count(g, IR_OP_MATMUL));
    // Y_h is not an output: nothing computes it.
    CHECK(!ir_find(g, "rnn/Y_h"), "gru_bidir: an unread Y_h was built");
  }
  ir_graph_free(g);

  // A sequence_lens the pass cannot read (an IR built by hand: the importer
  // refuses this already) is an error naming the node.
  g = ir_graph_new("lens_input");
  ir_type tx = ir_type_make(IR_DT_F32, 3, (int64_t[]){2, 1, 1}), tl = ir_type_make(IR_DT_I32, 1, (int64_t[]){1});
  ir_value *in[6] = {ir_add_input(g, "x", &tx)};
  ir_type tw = ir_type_make(IR_DT_F32, 3, (int64_t[]){1, 1, 1}), tb = ir_type_make(IR_DT_F32, 2, (int64_t[]){1, 2});
  in[1] = ir_add_const(g, "W", &tw, NULL), in[2] = ir_add_const(g, "R", &tw, NULL), in[3] = ir_add_const(g, "B", &tb, NULL);
  in[4] = ir_add_const(g, "h0", &tw, NULL), in[5] = ir_add_input(g, "lens", &tl);
  ir_node *n = ir_add_node(g, IR_OP_RNN, "r", in, 6, 2, NULL);
  n->a.hidden = 1;
  CHECK(ir_infer_node(n, err, sizeof err) == 0, "lens_input: %s", err);
  ir_add_output(g, n->out[1]);
  err[0] = 0;
  CHECK(cc_unroll_rnn(g, err, sizeof err) < 0 && strstr(err, "node 0 'r' (rnn): sequence_lens must be a constant"),
        "lens_input: %s", err);
  // And one out of range (S is 2).
  int32_t *three = malloc(sizeof *three);
  *three = 3;
  ir_set_input(n, 5, ir_add_const(g, "lens3", &tl, three));
  err[0] = 0;
  CHECK(cc_unroll_rnn(g, err, sizeof err) < 0 && strstr(err, "node 0 'r' (rnn): sequence_lens[0] = 3 is outside [0, 2]"),
        "lens_range: %s", err);
  ir_graph_free(g);
}

// ---------------------------------------------------------------- compiling and running

static sy_client *client;

static void expect_compile_error(const char *model, const char *want) {
  char path[256];
  path_of(path, sizeof path, model);
  sy_executable *x = sy_compile_file(client, path, NULL);
  CHECK(x == NULL, "%s compiled but should fail", model);
  sy_executable_destroy(x);
  const char *msg = sy_last_error(client);
  CHECK(strstr(msg, "'rnn'") && strstr(msg, want), "%s: message lacks '%s': %s", model, want, msg);
}

static void test_compile_errors(void) {
  expect_compile_error("err_rnn_thresholded", "activation ThresholdedRelu is not supported");
  expect_compile_error("err_rnn_f16", "gru in f16 is not supported (f32 only)");
}

// Runs a compiled model on inputs; outputs into out[] (sy_tensor_free each).
static bool run(const char *model, sy_precision prec, sy_tensor *in, int nin, sy_tensor *out, int nout) {
  char path[256];
  path_of(path, sizeof path, model);
  sy_compile_options opt = {.precision = prec};
  sy_executable *x = sy_compile_file(client, path, &opt);
  CHECK(x != NULL, "%s: %s", model, sy_last_error(client));
  if (!x)
    return false;
  bool ok = sy_executable_num_inputs(x) == nin && sy_executable_num_outputs(x) == nout;
  CHECK(ok, "%s: %d inputs, %d outputs", model, sy_executable_num_inputs(x), sy_executable_num_outputs(x));
  if (ok) {
    ok = sy_execute(client, x, in, nin, out, NULL, NULL) == 0;
    CHECK(ok, "%s: %s", model, sy_last_error(client));
  }
  sy_executable_destroy(x);
  return ok;
}

// dst = src with its dims permuted: dst dim i is src dim perm[i].
static void permute(const sy_tensor *src, sy_tensor *dst, const int *perm) {
  dst->dtype = SY_F32, dst->rank = src->rank;
  for (int i = 0; i < src->rank; i++)
    dst->dims[i] = src->dims[perm[i]];
  sy_tensor_alloc(dst);
  int64_t sst[SY_MAX_RANK], idx[SY_MAX_RANK] = {0};
  for (int i = src->rank - 1, k = 1; i >= 0; i--)
    sst[i] = k, k *= (int)src->dims[i];
  const float *s = src->data;
  float *d = dst->data;
  for (int64_t o = 0, n = sy_tensor_elements(dst); o < n; o++) {
    int64_t off = 0;
    for (int i = 0; i < dst->rank; i++)
      off += idx[i] * sst[perm[i]];
    d[o] = s[off];
    for (int i = dst->rank - 1; i >= 0 && ++idx[i] == dst->dims[i]; i--)
      idx[i] = 0;
  }
}

// The batch-first model gives the layout-0 model's results, transposed, to the bit.
static void test_layout(void) {
  static const struct {
    const char *op;
    int nstates, nout;
  } ops[] = {{"lstm", 2, 3}, {"gru", 1, 2}, {"rnn", 1, 2}};
  static const int swap3[] = {1, 0, 2}, y_to_l1[] = {2, 0, 1, 3};
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
    for (int p = 0; p < 2; p++) {
      char m0[32], m1[32];
      snprintf(m0, sizeof m0, "%s_l0", ops[k].op);
      snprintf(m1, sizeof m1, "%s_l1", ops[k].op);
      int D = strcmp(ops[k].op, "gru") ? 2 : 1;
      sy_tensor in0[3], in1[3], out0[3], out1[3];
      memset(in0, 0, sizeof in0), memset(in1, 0, sizeof in1), memset(out0, 0, sizeof out0), memset(out1, 0, sizeof out1);
      in0[0] = (sy_tensor){.dtype = SY_F32, .rank = 3, .dims = {5, 2, 3}};
      for (int s = 0; s < ops[k].nstates; s++)
        in0[1 + s] = (sy_tensor){.dtype = SY_F32, .rank = 3, .dims = {D, 2, 4}};
      for (int i = 0; i <= ops[k].nstates; i++) {
        sy_tensor_alloc(&in0[i]);
        sy_tensor_fill_random(&in0[i], 100 + (uint64_t)i);
        permute(&in0[i], &in1[i], swap3);
      }
      sy_precision prec = p ? SY_PRECISION_HIGHEST : SY_PRECISION_DEFAULT;
      if (run(m0, prec, in0, 1 + ops[k].nstates, out0, ops[k].nout) &&
          run(m1, prec, in1, 1 + ops[k].nstates, out1, ops[k].nout))
        for (int o = 0; o < ops[k].nout; o++) {
          sy_tensor want;
          memset(&want, 0, sizeof want);
          permute(&out0[o], &want, o ? swap3 : y_to_l1);
          bool same = out1[o].rank == want.rank && !memcmp(out1[o].dims, want.dims, sizeof want.dims[0] * want.rank) &&
                      !memcmp(out1[o].data, want.data, sy_tensor_bytes(&want));
          CHECK(same, "%s (%s): output %d of layout 1 differs from layout 0's", m1, sy_precision_name(prec), o);
          sy_tensor_free(&want);
        }
      for (int i = 0; i < 3; i++) {
        sy_tensor_free(&in0[i]), sy_tensor_free(&in1[i]);
        sy_tensor_free(&out0[i]), sy_tensor_free(&out1[i]);
      }
    }
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/systole-rnn-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char cmd[512], err[256];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/models/make_rnn_models.py %s", SYSTOLE_SOURCE_DIR, dir);
  int rc = system(cmd);
  CHECK(rc == 0, "'%s' failed (python3-onnx and python3-numpy installed? scripts/install-deps.sh)", cmd);
  client = sy_client_create("tpu-v4", err, sizeof err);
  CHECK(client != NULL, "sy_client_create: %s", err);
  if (rc == 0 && client) {
    test_import();
    test_import_errors();
    test_unroll();
    test_compile_errors();
    test_layout();
  }
  sy_client_destroy(client);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return test_done("test_rnn");
}
