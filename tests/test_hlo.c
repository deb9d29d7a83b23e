// The HLO text importer (src/frontend/hlo.c, docs/hlo.md): the syntax JAX and
// XLA print (sigils, layouts, signatures, comments, literals, unknown
// attributes), the mapping of each op onto the IR (types, names, constants),
// malformed modules with their messages, and a fuzz: every truncation and
// random mutations of a module import or fail with a message, never crash.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/hlo.h"
#include "testlib.h"

static ir_graph *imp(const char *text, char *err, size_t len) {
  return hlo_import_buffer(text, strlen(text), "t.hlo", err, len);
}

// Imports text; checks it succeeds with the given result types ("f32[2,3]", ...).
static ir_graph *ok(const char *text, int nout, const char *const *types, const char *what) {
  char err[IR_ERR_LEN] = "";
  ir_graph *g = imp(text, err, sizeof err);
  CHECK(g, "%s: %s", what, err);
  if (!g) return NULL;
  CHECK(g->noutputs == nout, "%s: %d outputs", what, g->noutputs);
  for (int k = 0; k < nout && k < g->noutputs; k++) {
    char t[96], nm[32];
    ir_type_str(&g->outputs[k]->ty, t, sizeof t);
    CHECK(!strcmp(t, types[k]), "%s: output %d is %s, want %s", what, k, t, types[k]);
    snprintf(nm, sizeof nm, "result:%d", k);
    CHECK(!strcmp(g->outputs[k]->name, nm), "%s: output %d named %s", what, k, g->outputs[k]->name);
    CHECK(!strcmp(hlo_public_name(g->outputs[k]->name), nm + 7), "%s: public name", what);
  }
  return g;
}

static void ok1(const char *text, const char *type, const char *what) {
  ir_graph *g = ok(text, 1, &type, what);
  ir_graph_free(g);
}

static void bad(const char *text, const char *want, const char *what) {
  char err[IR_ERR_LEN] = "";
  ir_graph *g = imp(text, err, sizeof err);
  CHECK(!g, "%s: imported", what);
  CHECK(strstr(err, want), "%s: '%s' lacks '%s'", what, err, want);
  ir_graph_free(g);
}

// The value a graph output reads through its identity.
static ir_value *result_src(ir_graph *g, int k) {
  ir_value *v = g->outputs[k];
  return v->producer && v->producer->op == IR_OP_IDENTITY ? v->producer->in[0] : v;
}

static void test_syntax(void) {
  // TF-era: % sigils, shaped operands, signatures, comments, tiled layouts, no ROOT.
  ok1("HloModule m, is_scheduled=true, entry_computation_layout={(f32[2,3]{1,0})->f32[2,3]{1,0}}\n"
      "/* reducer */ %add.1 (x.1: f32[], y.1: f32[]) -> f32[] {\n"
      "  %x.1 = f32[] parameter(0)\n  %y.1 = f32[] parameter(1)\n"
      "  ROOT %add.2 = f32[] add(f32[] %x.1, f32[] %y.1) // the sum\n}\n\n"
      "ENTRY %main.3 (p: f32[2,3]) -> f32[2,3] {\n"
      "  %p = f32[2,3]{1,0:T(8,128)} parameter(0), parameter_replication={false}\n"
      "  %c = f32[2,3]{1,0} constant({ {1, -2.5, inf}, {-inf, 1e-3, 0} })\n"
      "  %s = f32[2,3]{1,0} multiply(f32[2,3]{1,0} %p, f32[2,3]{1,0} %c), metadata={op_type=\"Mul\" op_name=\"a{b\"}\n"
      "}, execution_thread=\"main\"\n",
      "f32[2,3]", "tf style");
  // No header, no sigils, nested JSON backend_config, fusion, frontend attributes.
  ok1("fused {\n  p0 = f32[4] parameter(0)\n  ROOT e = f32[4] negate(p0)\n}\n"
      "ENTRY e {\n  a = f32[4] parameter(0), frontend_attributes={_xla=\"1\"}\n"
      "  ROOT f = f32[4] fusion(a), kind=kLoop, calls=fused, backend_config={\"a\":{\"b\":[1,2]},\"s\":\"}\"}\n}\n",
      "f32[4]", "fusion");
  // Inline constant operand, scalar literals, pred literals, convert.
  ok1("ENTRY e {\n  p = s32[3] parameter(0)\n  a = s32[3] add(p, s32[3] constant({1, 2, 3}))\n"
      "  ROOT c = f32[3] convert(a)\n}\n",
      "f32[3]", "inline constant");
  char err[IR_ERR_LEN];
  ir_graph *g = imp("ENTRY e {\n  ROOT c = f32[4] constant({nan, -nan, -inf, 1.5})\n}\n", err, sizeof err);
  CHECK(g, "%s", err);
  if (g) {
    ir_value *c = result_src(g, 0);
    CHECK(c->data && isnan(ir_get_float(c->data, IR_DT_F32, 0)) && ir_get_float(c->data, IR_DT_F32, 2) == -INFINITY &&
              ir_get_float(c->data, IR_DT_F32, 3) == 1.5,
          "constant values");
    ir_graph_free(g);
  }
  g = imp("ENTRY e {\n  p = f32[2] parameter(1)\n  q = f32[2] parameter(0)\n  ROOT t = (f32[2], f32[2]) tuple(p, q)\n}\n",
          err, sizeof err);
  CHECK(g && g->ninputs == 2 && !strcmp(g->inputs[0]->name, "1") && !strcmp(g->inputs[1]->name, "0") &&
            g->noutputs == 2 && result_src(g, 0) == g->inputs[0],
        "parameters by number: %s", g ? "" : err);
  ir_graph_free(g);
  CHECK(hlo_public_name("x") && !strcmp(hlo_public_name("x"), "x"), "public name of a plain name");
}

static void test_ops(void) {
  ok1("ENTRY e {\n  p = f32[2,3,4] parameter(0)\n  ROOT t = f32[4,2,3] transpose(p), dimensions={2,0,1}\n}\n", "f32[4,2,3]",
      "transpose");
  ok1("ENTRY e {\n  p = f32[10,6] parameter(0)\n  ROOT s = f32[3,2] slice(p), slice={[1:10:4], [0:6:3]}\n}\n", "f32[3,2]",
      "slice with strides");
  ok1("ENTRY e {\n  p = f32[2,3] parameter(0)\n  q = f32[2,1] parameter(1)\n"
      "  ROOT c = f32[2,4] concatenate(p, q), dimensions={1}\n}\n",
      "f32[2,4]", "concatenate");
  ok1("ENTRY e {\n  p = f32[2,3] parameter(0)\n  z = f32[] constant(0)\n"
      "  ROOT c = f32[5,4] pad(p, z), padding=1_2x0_1\n}\n",
      "f32[5,4]", "pad");
  ok1("ENTRY e {\n  ROOT i = s32[2,3] iota(), iota_dimension=1\n}\n", "i32[2,3]", "iota");
  ok1("ENTRY e {\n  a = f32[5,2,3,4] parameter(0)\n  b = f32[5,4,6] parameter(1)\n"
      "  ROOT d = f32[5,2,3,6] dot(a, b), lhs_batch_dims={0}, lhs_contracting_dims={3}, rhs_batch_dims={0}, "
      "rhs_contracting_dims={1}\n}\n",
      "f32[5,2,3,6]", "batched dot");
  ok1("ENTRY e {\n  a = f32[4,3] parameter(0)\n  b = f32[5,4] parameter(1)\n"
      "  ROOT d = f32[3,5] dot(a, b), lhs_contracting_dims={0}, rhs_contracting_dims={1}\n}\n",
      "f32[3,5]", "dot contracting the first dims");
  ok1("ENTRY e {\n  x = f32[1,3,8,8] parameter(0)\n  w = f32[6,1,3,3] parameter(1)\n"
      "  ROOT c = f32[1,6,4,4] convolution(x, w), window={size=3x3 stride=2x2 pad=1_1x1_1}, dim_labels=bf01_oi01->bf01, "
      "feature_group_count=3\n}\n",
      "f32[1,6,4,4]", "grouped NCHW convolution");
  ok1("ENTRY e {\n  p = f32[2,3] parameter(0)\n  lo = f32[] constant(0)\n  hi = f32[] constant(6)\n"
      "  b = f32[2,3] broadcast(lo), dimensions={}\n  h = f32[2,3] broadcast(hi), dimensions={}\n"
      "  ROOT c = f32[2,3] clamp(b, p, h)\n}\n",
      "f32[2,3]", "clamp (relu6)");
  ok1("ENTRY e {\n  p = f32[2,3] parameter(0)\n  b = f32[3,2,4] broadcast(p), dimensions={1,0}\n"
      "  ROOT m = f32[3,2,4] multiply(b, b)\n}\n",
      "f32[3,2,4]", "broadcast with transposed dims");
  ok1("r {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT m = f32[] add(b, a)\n}\n"
      "ENTRY e {\n  p = f32[2,3,4] parameter(0)\n  z = f32[] constant(0)\n"
      "  ROOT s = f32[3] reduce(p, z), dimensions={0,2}, to_apply=r\n}\n",
      "f32[3]", "reduce add");
  ok1("r {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT m = f32[] maximum(a, b)\n}\n"
      "ENTRY e {\n  p = f32[1,3,8,8] parameter(0)\n  z = f32[] constant(-inf)\n"
      "  ROOT s = f32[1,3,4,4] reduce-window(p, z), window={size=1x1x3x3 stride=1x1x2x2 pad=0_0x0_0x1_1x1_1}, to_apply=r\n}\n",
      "f32[1,3,4,4]", "reduce-window max, NCHW");
  ok1("ENTRY e {\n  p = f32[2] parameter(0)\n  t = (f32[2], f32[2]) tuple(p, p)\n"
      "  ROOT g = f32[2] get-tuple-element(t), index=1\n}\n",
      "f32[2]", "get-tuple-element");
  ok1("ENTRY e {\n  p = f32[2,3] parameter(0)\n  ROOT b = f32[3,2] bitcast(p)\n}\n", "f32[3,2]", "bitcast");
}

static void test_errors(void) {
  bad("", "t.hlo:1:1: the file is empty", "empty");
  bad("HloModule m\n", "no computation", "no computation");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  ROOT a = f32[2] add(p, p", "t.hlo:3:27: expected ')' after the operands, found the end of the file", "truncated");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n", "the file ends inside computation 'e'", "no closing brace");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  ROOT s = f32[2] sort(p)\n}\n", "t.hlo:3:19: 's': unsupported instruction 'sort'",
      "unknown op");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  ROOT a = f32[3] add(p, p)\n}\n",
      "t.hlo:3:19: 'a' (add): shape mismatch: declared f32[3], but the operands give f32[2]", "shape mismatch");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  ROOT a = f32[2] call(p), to_apply=nowhere\n}\n",
      "t.hlo:3:37: computation 'nowhere' is not defined", "missing computation");
  bad("ENTRY e {\n  ROOT a = f32[2] add(p, p)\n}\n", "t.hlo:2:23: operand 'p' is not defined", "missing operand");
  bad("ENTRY e {\n  p = c64[2] parameter(0)\n}\n", "t.hlo:2:7: element type 'c64' is not supported", "complex");
  bad("ENTRY e {\n  p = f32[<=4] parameter(0)\n}\n", "dynamic dimensions", "dynamic dim");
  bad("ENTRY e {\n  ROOT c = f32[3] constant({1, 2})\n}\n", "the literal has 2 values but the shape f32[3] has 3",
      "literal count");
  bad("ENTRY e {\n  ROOT c = f32[300] constant({...})\n}\n", "elided", "elided constant");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  p = f32[2] parameter(1)\n}\n", "'p' is defined twice", "duplicate");
  bad("ENTRY e {\n  p = f32[2] parameter(1)\n}\n", "parameter 1, but the entry has 1 parameters", "parameter gap");
  bad("c {\n  p = f32[2] parameter(0)\n  ROOT x = f32[2] call(p), to_apply=c\n}\nENTRY e {\n  p = f32[2] parameter(0)\n"
      "  ROOT x = f32[2] call(p), to_apply=c\n}\n",
      "calls nest deeper", "recursion");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  ROOT t = f32[2] transpose(p), dimensions={0,1}\n}\n",
      "'dimensions' has 2 values for an operand of rank 1", "bad transpose");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  ROOT c = pred[2] compare(p, p), direction=XX\n}\n",
      "unknown comparison direction 'XX'", "bad direction");
  bad("ENTRY e {\n  a = f32[2,3] parameter(0)\n  b = f32[4,5] parameter(1)\n"
      "  ROOT d = f32[2,5] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n",
      "contracting dimension 0 is 3 in lhs and 4 in rhs", "dot mismatch");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  ROOT a = f32[2] add(p, p), metadata={op_name=\"x}\n}\n", "unterminated string",
      "unterminated attribute");
  bad("ENTRY e {\n  p = f32[2] parameter(0)\n  ROOT a = f32[2] add(p, p)\n}\n ENTRY f {\n  ROOT q = f32[] constant(1)\n}\n",
      "more than one ENTRY", "two entries");
}

// Every prefix and random mutations of a module: a graph or a message.
static void test_fuzz(void) {
  const char *base =
      "HloModule jit_f, entry_computation_layout={(f32[4,8]{1,0}, f32[8]{0})->(f32[4,8]{1,0}, f32[])}\n"
      "region_0.4 {\n  Arg_0.5 = f32[] parameter(0)\n  Arg_1.6 = f32[] parameter(1)\n"
      "  ROOT add.7 = f32[] add(Arg_0.5, Arg_1.6)\n}\n"
      "ENTRY main.9 {\n  Arg_0.1 = f32[4,8]{1,0} parameter(0), sharding={replicated}\n"
      "  Arg_1.2 = f32[8]{0} parameter(1)\n  b = f32[4,8]{1,0} broadcast(Arg_1.2), dimensions={1}\n"
      "  m = f32[4,8]{1,0} multiply(Arg_0.1, b), metadata={op_name=\"jit(f)/mul\"}\n"
      "  c = f32[] constant(0)\n  r = f32[] reduce(m, c), dimensions={0,1}, to_apply=region_0.4\n"
      "  t = f32[8,4]{0,1} transpose(m), dimensions={1,0}\n  s = f32[4,8] slice(m), slice={[0:4], [0:8]}\n"
      "  ROOT tuple.8 = (f32[4,8]{1,0}, f32[]) tuple(s, r)\n}\n";
  size_t n = strlen(base);
  char err[IR_ERR_LEN];
  ir_graph *g = hlo_import_buffer(base, n, "f", err, sizeof err);
  CHECK(g, "the fuzz base imports: %s", err);
  ir_graph_free(g);
  int imported = 0;
  for (size_t k = 0; k < n; k++) {
    err[0] = 0;
    g = hlo_import_buffer(base, k, "f", err, sizeof err); // not NUL-terminated at k
    CHECK(g || err[0], "prefix %zu: no graph and no message", k);
    imported += g != NULL;
    ir_graph_free(g);
  }
  char *buf = malloc(n + 64);
  static const char pool[] = "{}[](),=:%-_.x0123456789\n \"/*abcfsT<>?";
  test_seed(11);
  for (int it = 0; it < 3000; it++) {
    memcpy(buf, base, n);
    size_t len = n;
    int edits = 1 + (int)(test_rand() % 4);
    for (int e = 0; e < edits; e++) {
      size_t at = (size_t)(test_rand() % len);
      switch (test_rand() % 4) {
      case 0: buf[at] = pool[test_rand() % (sizeof pool - 1)]; break;
      case 1: buf[at] = (char)(test_rand() & 0xff); break;
      case 2: { // delete a range
        size_t del = 1 + (size_t)(test_rand() % 8);
        if (at + del > len) del = len - at;
        memmove(buf + at, buf + at + del, len - at - del);
        len -= del;
        if (!len) len = 1, buf[0] = ' ';
        break;
      }
      default: { // duplicate a range
        size_t dup = 1 + (size_t)(test_rand() % 8);
        if (at + dup > len) dup = len - at;
        if (len + dup <= n + 60) {
          memmove(buf + at + dup, buf + at, len - at);
          len += dup;
        }
      }
      }
    }
    err[0] = 0;
    g = hlo_import_buffer(buf, len, "f", err, sizeof err);
    CHECK(g || err[0], "mutation %d: no graph and no message", it);
    imported += g != NULL;
    ir_graph_free(g);
  }
  free(buf);
  CHECK(imported > 0, "some mutations import");
}

int main(void) {
  test_syntax();
  test_ops();
  test_errors();
  test_fuzz();
  return test_done("test_hlo");
}
