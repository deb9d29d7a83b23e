// The vector-unit and data-movement lowerings (src/compiler/lower_vpu.c,
// lower_move.c): small graphs built with the IR API, compiled for tpu-v4 and
// for tiny (256 KiB of VMEM, 8 lanes: every tiling path), simulated, and
// compared with a plain-C fp32 reference. The reference does the chip's
// operations in the chip's order (transcendentals with the chip's own
// functions, src/sim/numerics.c), so results must match bit for bit; sums
// the lowering may split across tiles (global average pool) are checked
// against the error bound of fp32 summation instead.
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/compiler.h"
#include "sim/numerics.h"
#include "sim/sim.h"
#include "testlib.h"

static const char *const chips[] = {"tpu-v4", "tiny"};
static char err[CC_ERR_LEN];

static float rnd(void) { return (float)((double)(test_rand() >> 11) * 0x1p-53 * 2 - 1); }

static float *rand_array(int64_t n, float scale) {
  float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
  for (int64_t i = 0; i < n; i++) p[i] = rnd() * scale;
  return p;
}

static ir_type ty(int rank, const int64_t *dims) { return ir_type_make(IR_DT_F32, rank, dims); }
#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define RANK(...) ((int)(sizeof(DIMS(__VA_ARGS__)) / sizeof(int64_t)))
#define TY(...) ty(RANK(__VA_ARGS__), DIMS(__VA_ARGS__))

// ---------------------------------------------------------------- harness

typedef struct {
  ir_graph *g;
  int nin;
  float *in[8]; // data of the graph inputs, in order
} tcase;

static ir_value *tin(tcase *t, const char *name, ir_type tp, float scale) {
  ir_value *v = ir_add_input(t->g, name, &tp);
  t->in[t->nin++] = rand_array(ir_nelems(&tp), scale);
  return v;
}

static ir_node *tnode(tcase *t, ir_op op, ir_value **in, int nin, int nout) {
  return ir_add_node(t->g, op, NULL, in, nin, nout, NULL);
}

// Infers n and makes its outputs graph outputs.
static bool tfinish(tcase *t, ir_node *n, bool output) {
  int rc = ir_infer_node(n, err, sizeof err);
  CHECK(rc == 0, "infer: %s", err);
  if (rc) return false;
  if (output)
    for (int i = 0; i < n->nout; i++) ir_add_output(t->g, n->out[i]);
  return true;
}

// Compiles t's graph for chip and runs it: the outputs (malloc'd, graph
// order) or NULL after a failed check.
static float **trun(tcase *t, const char *chipname, const char *what) {
  chip_config chip;
  if (chip_load(&chip, chipname, err, sizeof err)) {
    CHECK(0, "%s", err);
    return NULL;
  }
  cc_options opt = {0};
  const char *dump = getenv("TEST_LOWER_ASM"); // a substring of `what`: print that program
  if (dump && strstr(what, dump)) opt.dump_asm = stdout;
  cc_executable ex;
  if (cc_compile(t->g, &chip, &opt, &ex, err, sizeof err)) {
    CHECK(0, "%s on %s: compile: %s", what, chipname, err);
    return NULL;
  }
  sim_options so = {0};
  sim *s = sim_create(&chip, &so, err, sizeof err);
  float **outs = NULL;
  bool ok = s && !sim_load(s, &ex.prog, err, sizeof err);
  for (int i = 0; ok && i < t->nin; i++)
    ok = !sim_write(s, sim_io_mem(&ex.prog.io[i]), ex.prog.io[i].addr, t->in[i], isa_io_bytes(&ex.prog.io[i]), err, sizeof err);
  if (ok) ok = !sim_run(s, err, sizeof err);
  CHECK(ok, "%s on %s: run: %s", what, chipname, err);
  if (ok && getenv("TEST_LOWER_VERBOSE")) {
    const sim_stats *st = sim_get_stats(s);
    size_t smem = 0;
    for (size_t i = 0; i < ex.prog.nsegs; i++)
      if (ex.prog.segs[i].kind == SEG_SMEM) smem = ex.prog.segs[i].size;
    printf("%-8s %-72s %6zu instr %6zu smem %9llu cycles  hbm r %8llu w %8llu\n", chipname, what, ex.prog.ncode,
           smem, (unsigned long long)st->cycles, (unsigned long long)st->hbm_read, (unsigned long long)st->hbm_write);
  }
  if (ok) {
    int no = t->g->noutputs;
    outs = calloc((size_t)no, sizeof *outs);
    for (int i = 0; i < no; i++) {
      const isa_io *o = &ex.prog.io[t->nin + i];
      outs[i] = malloc(isa_io_bytes(o) + 4);
      sim_read(s, sim_io_mem(o), o->addr, outs[i], isa_io_bytes(o), err, sizeof err);
    }
  }
  sim_destroy(s);
  cc_executable_free(&ex);
  return outs;
}

static void tfree(tcase *t, float **outs) {
  if (outs) {
    for (int i = 0; i < t->g->noutputs; i++) free(outs[i]);
    free(outs);
  }
  for (int i = 0; i < t->nin; i++) free(t->in[i]);
  ir_graph_free(t->g);
}

static void check_bits(const float *got, const float *want, int64_t n, const char *what, const char *chip) {
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++)
    if (num_bits(got[i]) != num_bits(num_canon(want[i])) && !(isnan(got[i]) && isnan(want[i])))
      if (!bad++) first = i;
  CHECK(bad == 0, "%s on %s: %lld of %lld elements differ, first [%lld]: got %a want %a", what, chip,
        (long long)bad, (long long)n, (long long)first, first >= 0 ? got[first] : 0, first >= 0 ? want[first] : 0);
}

// Flat index of input type `in` broadcast (numpy) to out's flat index o.
static int64_t bidx(const ir_type *in, const ir_type *out, int64_t o) {
  int64_t idx = 0, mul = 1;
  for (int d = out->rank - 1, j = in->rank - 1; d >= 0; d--, j--) {
    int64_t c = o % out->dims[d];
    o /= out->dims[d];
    if (j < 0) continue;
    if (in->dims[j] != 1) idx += c * mul;
    mul *= in->dims[j];
  }
  return idx;
}

// ---------------------------------------------------------------- elementwise

static float fop(ir_op op, float a, float b) {
  switch (op) {
  case IR_OP_ADD: return a + b;
  case IR_OP_SUB: return a - b;
  case IR_OP_MUL: return a * b;
  default: return a / b;
  }
}

// a op b with the shapes given; same_input: b is a itself.
static void binary_test(const char *chip, ir_op op, ir_type at, ir_type bt, bool same_input) {
  tcase t = {.g = ir_graph_new("binary")};
  ir_value *in[2];
  in[0] = tin(&t, "a", at, 4);
  in[1] = same_input ? in[0] : tin(&t, "b", bt, 4);
  if (op == IR_OP_DIV && !same_input)
    for (int64_t i = 0; i < ir_nelems(&bt); i++) t.in[1][i] += t.in[1][i] < 0 ? -0.5f : 0.5f;
  ir_node *n = tnode(&t, op, in, 2, 1);
  char what[256], s1[96], s2[96];
  snprintf(what, sizeof what, "%s %s %s%s", ir_ops[op].name, ir_type_str(&at, s1, sizeof s1),
           ir_type_str(&bt, s2, sizeof s2), same_input ? " (same value)" : "");
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  float **o = trun(&t, chip, what);
  if (o) {
    const ir_type *yt = &n->out[0]->ty;
    int64_t ny = ir_nelems(yt);
    float *want = malloc((size_t)ny * sizeof *want);
    float *b = same_input ? t.in[0] : t.in[1];
    for (int64_t i = 0; i < ny; i++) want[i] = fop(op, t.in[0][bidx(&at, yt, i)], b[bidx(&bt, yt, i)]);
    check_bits(o[0], want, ny, what, chip);
    free(want);
  }
  tfree(&t, o);
}

static float ref_unary(const ir_node *n, float x) {
  const ir_attrs *a = &n->a;
  switch (n->op) {
  case IR_OP_RELU: return x > 0 ? x : 0.0f;
  case IR_OP_SIGMOID: return num_sigmoid(x);
  case IR_OP_TANH: return num_tanh(x);
  case IR_OP_CLIP: {
    float v = x;
    if (!(isinf(a->lo) && a->lo < 0)) v = v > (float)a->lo ? v : (float)a->lo;
    if (!(isinf(a->hi) && a->hi > 0)) v = v < (float)a->hi ? v : (float)a->hi;
    return v;
  }
  default: { // hardsigmoid, hardswish
    bool hs = n->op == IR_OP_HARDSWISH;
    float t = x * (hs ? 1.0f / 6.0f : a->alpha);
    t = t + (hs ? 0.5f : a->beta);
    t = t < 1.0f ? t : 1.0f;
    t = t > 0.0f ? t : 0.0f;
    return hs ? x * t : t;
  }
  }
}

static void unary_test(const char *chip, ir_op op, ir_type xt, double lo, double hi) {
  tcase t = {.g = ir_graph_new("unary")};
  ir_value *x = tin(&t, "x", xt, 8);
  int64_t nx = ir_nelems(&xt);
  if (nx > 4) t.in[0][0] = -0.0f, t.in[0][1] = 0.0f, t.in[0][2] = 3.0f, t.in[0][3] = -3.0f;
  ir_node *n = tnode(&t, op, &x, 1, 1);
  n->a.lo = lo, n->a.hi = hi, n->a.alpha = 0.2f, n->a.beta = 0.5f;
  char what[256], s1[96];
  snprintf(what, sizeof what, "%s %s lo %g hi %g", ir_ops[op].name, ir_type_str(&xt, s1, sizeof s1), lo, hi);
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  float **o = trun(&t, chip, what);
  if (o) {
    float *want = calloc((size_t)nx + 1, sizeof *want);
    for (int64_t i = 0; i < nx; i++) want[i] = ref_unary(n, t.in[0][i]);
    check_bits(o[0], want, nx, what, chip);
    // The transcendental ones are also within a few ulp of the true function.
    if (op == IR_OP_SIGMOID || op == IR_OP_TANH) {
      double worst = 0;
      for (int64_t i = 0; i < nx; i++) {
        double xv = t.in[0][i], tv = op == IR_OP_TANH ? tanh(xv) : 1 / (1 + exp(-xv));
        int ex;
        frexp(tv, &ex);
        double ulp = ldexp(1, (ex - 24 < -149 ? -149 : ex - 24)), e = fabs(o[0][i] - tv) / ulp;
        worst = e > worst ? e : worst;
      }
      CHECK(worst <= 3, "%s on %s: %g ulp from the true function", what, chip, worst);
    }
    free(want);
  }
  tfree(&t, o);
}

// ---------------------------------------------------------------- softmax

static void softmax_test(const char *chip, ir_type xt, int axis) {
  tcase t = {.g = ir_graph_new("softmax")};
  ir_value *x = tin(&t, "x", xt, 6);
  ir_node *n = tnode(&t, IR_OP_SOFTMAX, &x, 1, 1);
  n->a.axis = axis;
  char what[256], s1[96];
  snprintf(what, sizeof what, "softmax %s axis %d", ir_type_str(&xt, s1, sizeof s1), axis);
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  float **o = trun(&t, chip, what);
  if (o) {
    int64_t outer = 1, len = xt.dims[axis], inner = 1, nx = ir_nelems(&xt);
    for (int i = 0; i < axis; i++) outer *= xt.dims[i];
    for (int i = axis + 1; i < xt.rank; i++) inner *= xt.dims[i];
    float *want = malloc((size_t)nx * sizeof *want), *xv = t.in[0];
    for (int64_t a = 0; a < outer; a++)
      for (int64_t c = 0; c < inner; c++) {
        int64_t b = a * len * inner + c;
        float m = xv[b], s;
        for (int64_t l = 1; l < len; l++) m = xv[b + l * inner] > m ? xv[b + l * inner] : m;
        for (int64_t l = 0; l < len; l++) want[b + l * inner] = num_exp(xv[b + l * inner] - m);
        s = want[b];
        for (int64_t l = 1; l < len; l++) s += want[b + l * inner];
        float r = num_recip(s);
        for (int64_t l = 0; l < len; l++) want[b + l * inner] *= r;
      }
    check_bits(o[0], want, nx, what, chip);
    free(want);
  }
  tfree(&t, o);
}

// ---------------------------------------------------------------- pools

typedef struct {
  int rank; // 4: [N, H, W, C]; 3: [N, W, C]
  int64_t N, H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
  bool ceil, cip;
} pool_case;

static void pool_test(const char *chip, ir_op op, pool_case p) {
  tcase t = {.g = ir_graph_new("pool")};
  ir_type xt = p.rank == 4 ? TY(p.N, p.H, p.W, p.C) : TY(p.N, p.W, p.C);
  if (p.rank == 3) p.H = 1, p.KH = p.SH = p.DH = 1, p.PT = p.PB = 0;
  ir_value *x = tin(&t, "x", xt, 4);
  ir_node *n = tnode(&t, op, &x, 1, 1);
  ir_attrs *a = &n->a;
  a->nhwc = true, a->ceil_mode = p.ceil, a->count_include_pad = p.cip;
  if (p.rank == 4) {
    a->kernel[0] = p.KH, a->kernel[1] = p.KW, a->stride[0] = p.SH, a->stride[1] = p.SW;
    a->dilation[0] = p.DH, a->dilation[1] = p.DW;
    a->pads[0] = p.PT, a->pads[1] = p.PL, a->pads[2] = p.PB, a->pads[3] = p.PR;
  } else {
    a->kernel[0] = p.KW, a->stride[0] = p.SW, a->dilation[0] = p.DW, a->pads[0] = p.PL, a->pads[1] = p.PR;
  }
  char what[256], s1[96];
  snprintf(what, sizeof what, "%s %s k%lldx%lld s%lldx%lld d%lldx%lld p%lld,%lld,%lld,%lld%s%s", ir_ops[op].name,
           ir_type_str(&xt, s1, sizeof s1), (long long)p.KH, (long long)p.KW, (long long)p.SH, (long long)p.SW,
           (long long)p.DH, (long long)p.DW, (long long)p.PT, (long long)p.PL, (long long)p.PB, (long long)p.PR,
           p.ceil ? " ceil" : "", p.cip ? " count_include_pad" : "");
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  float **o = trun(&t, chip, what);
  if (o) {
    const ir_type *yt = &n->out[0]->ty;
    int64_t OH = p.rank == 4 ? yt->dims[1] : 1, OW = yt->dims[p.rank - 2], ny = ir_nelems(yt);
    float *want = malloc((size_t)ny * sizeof *want), *xv = t.in[0];
    for (int64_t b = 0; b < p.N; b++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++)
          for (int64_t c = 0; c < p.C; c++) {
            float acc = op == IR_OP_MAXPOOL ? -INFINITY : 0.0f;
            int64_t cin = 0, cpad_h = 0, cpad_w = 0;
            for (int64_t kh = 0; kh < p.KH; kh++) {
              int64_t ih = oh * p.SH - p.PT + kh * p.DH;
              cpad_h += ih < p.H + p.PB;
              for (int64_t kw = 0; kw < p.KW; kw++) {
                int64_t iw = ow * p.SW - p.PL + kw * p.DW;
                if (kh == 0) cpad_w += iw < p.W + p.PR;
                if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
                float v = xv[((b * p.H + ih) * p.W + iw) * p.C + c];
                acc = op == IR_OP_MAXPOOL ? (v > acc ? v : acc) : acc + v;
                cin++;
              }
            }
            if (op == IR_OP_AVGPOOL) {
              int64_t cnt = p.cip ? cpad_h * cpad_w : cin;
              acc = acc / (float)(cnt ? cnt : 1);
            }
            want[((b * OH + oh) * OW + ow) * p.C + c] = acc;
          }
    check_bits(o[0], want, ny, what, chip);
    free(want);
  }
  tfree(&t, o);
}

static void global_pool_test(const char *chip, ir_type xt, bool nhwc) {
  tcase t = {.g = ir_graph_new("gap")};
  ir_value *x = tin(&t, "x", xt, 4);
  ir_node *n = tnode(&t, IR_OP_GLOBAL_AVGPOOL, &x, 1, 1);
  n->a.nhwc = nhwc;
  char what[256], s1[96];
  snprintf(what, sizeof what, "global_avgpool %s%s", ir_type_str(&xt, s1, sizeof s1), nhwc ? " nhwc" : "");
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  float **o = trun(&t, chip, what);
  if (o) {
    int64_t N = xt.dims[0], C = xt.dims[nhwc ? xt.rank - 1 : 1], P = ir_nelems(&xt) / (N * C);
    int64_t bad = 0;
    for (int64_t b = 0; b < N; b++)
      for (int64_t c = 0; c < C; c++) {
        double s = 0, sa = 0;
        for (int64_t i = 0; i < P; i++) {
          float v = t.in[0][nhwc ? (b * P + i) * C + c : (b * C + c) * P + i];
          s += v, sa += fabs(v);
        }
        double want = s / P, got = o[0][b * C + c];
        // fp32 summation in any order: within (P-1) u sum|x|, then the division.
        double tol = ldexp(1, -24) * (sa + fabs(want)) + 1e-30;
        if (!(fabs(got - want) <= tol) && !bad++)
          CHECK(0, "%s on %s: [%lld,%lld] got %.9g want %.9g", what, chip, (long long)b, (long long)c, got, want);
      }
    CHECK(bad == 0, "%s on %s: %lld outputs off", what, chip, (long long)bad);
  }
  tfree(&t, o);
}

// ---------------------------------------------------------------- data movement

static void transpose_test(const char *chip, ir_type xt, const int *perm) {
  tcase t = {.g = ir_graph_new("transpose")};
  ir_value *x = tin(&t, "x", xt, 1);
  ir_node *n = tnode(&t, IR_OP_TRANSPOSE, &x, 1, 1);
  char what[256], s1[96];
  int len = snprintf(what, sizeof what, "transpose %s perm", ir_type_str(&xt, s1, sizeof s1));
  for (int i = 0; i < xt.rank; i++) n->a.perm[i] = perm[i], len += snprintf(what + len, sizeof what - (size_t)len, " %d", perm[i]);
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  float **o = trun(&t, chip, what);
  if (o) {
    const ir_type *yt = &n->out[0]->ty;
    int64_t ny = ir_nelems(yt), xs[IR_MAX_DIMS], m = 1;
    for (int i = xt.rank - 1; i >= 0; i--) xs[i] = m, m *= xt.dims[i];
    float *want = malloc((size_t)ny * sizeof *want);
    for (int64_t i = 0; i < ny; i++) {
      int64_t r = i, src = 0;
      for (int d = yt->rank - 1; d >= 0; d--) src += (r % yt->dims[d]) * xs[perm[d]], r /= yt->dims[d];
      want[i] = t.in[0][src];
    }
    check_bits(o[0], want, ny, what, chip);
    free(want);
  }
  tfree(&t, o);
}

static void concat_test(const char *chip, int axis, int nin, const ir_type *ts) {
  tcase t = {.g = ir_graph_new("concat")};
  ir_value *in[4];
  char name[16];
  for (int i = 0; i < nin; i++) snprintf(name, sizeof name, "x%d", i), in[i] = tin(&t, name, ts[i], 1);
  ir_node *n = tnode(&t, IR_OP_CONCAT, in, nin, 1);
  n->a.axis = axis;
  char what[256], s1[96];
  snprintf(what, sizeof what, "concat of %d along %d into", nin, axis);
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  snprintf(what + strlen(what), sizeof what - strlen(what), " %s", ir_type_str(&n->out[0]->ty, s1, sizeof s1));
  float **o = trun(&t, chip, what);
  if (o) {
    const ir_type *yt = &n->out[0]->ty;
    int64_t ny = ir_nelems(yt), inner = 1;
    for (int i = axis + 1; i < yt->rank; i++) inner *= yt->dims[i];
    float *want = malloc((size_t)ny * sizeof *want);
    for (int64_t i = 0; i < ny; i++) {
      int64_t outer = i / (inner * yt->dims[axis]), a = i / inner % yt->dims[axis], c = i % inner, k = 0;
      while (a >= ts[k].dims[axis]) a -= ts[k++].dims[axis];
      want[i] = t.in[k][(outer * ts[k].dims[axis] + a) * inner + c];
    }
    check_bits(o[0], want, ny, what, chip);
    free(want);
  }
  tfree(&t, o);
}

static void split_test(const char *chip, ir_type xt, int axis, int nout, const int64_t *sizes) {
  tcase t = {.g = ir_graph_new("split")};
  ir_value *x = tin(&t, "x", xt, 1);
  ir_node *n = tnode(&t, IR_OP_SPLIT, &x, 1, nout);
  n->a.axis = axis, n->a.nsizes = nout, n->a.sizes = malloc((size_t)nout * sizeof *n->a.sizes);
  memcpy(n->a.sizes, sizes, (size_t)nout * sizeof *sizes);
  char what[256], s1[96];
  snprintf(what, sizeof what, "split %s along %d in %d", ir_type_str(&xt, s1, sizeof s1), axis, nout);
  if (!tfinish(&t, n, false)) {
    tfree(&t, NULL);
    return;
  }
  for (int i = 0; i < nout; i++) ir_add_output(t.g, n->out[i]);
  float **o = trun(&t, chip, what);
  if (o) {
    int64_t inner = 1, outer = 1, off = 0;
    for (int i = axis + 1; i < xt.rank; i++) inner *= xt.dims[i];
    for (int i = 0; i < axis; i++) outer *= xt.dims[i];
    for (int k = 0; k < nout; k++) {
      int64_t ny = outer * sizes[k] * inner;
      float *want = malloc((size_t)(ny ? ny : 1) * sizeof *want);
      for (int64_t i = 0; i < ny; i++) {
        int64_t a = i / inner % sizes[k], b = i / (inner * sizes[k]), c = i % inner;
        want[i] = t.in[0][(b * xt.dims[axis] + off + a) * inner + c];
      }
      check_bits(o[k], want, ny, what, chip);
      free(want);
      off += sizes[k];
    }
  }
  tfree(&t, o);
}

// start, end, step per dim (normalised as the IR keeps them).
static void slice_test(const char *chip, ir_type xt, const int64_t *sse) {
  tcase t = {.g = ir_graph_new("slice")};
  ir_value *x = tin(&t, "x", xt, 1);
  ir_node *n = tnode(&t, IR_OP_SLICE, &x, 1, 1);
  char what[256], s1[96];
  int len = snprintf(what, sizeof what, "slice %s", ir_type_str(&xt, s1, sizeof s1));
  for (int d = 0; d < xt.rank; d++) {
    n->a.start[d] = sse[3 * d], n->a.end[d] = sse[3 * d + 1], n->a.step[d] = sse[3 * d + 2];
    len += snprintf(what + len, sizeof what - (size_t)len, " %lld:%lld:%lld", (long long)sse[3 * d],
                    (long long)sse[3 * d + 1], (long long)sse[3 * d + 2]);
  }
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  float **o = trun(&t, chip, what);
  if (o) {
    const ir_type *yt = &n->out[0]->ty;
    int64_t ny = ir_nelems(yt), xs[IR_MAX_DIMS], m = 1;
    for (int i = xt.rank - 1; i >= 0; i--) xs[i] = m, m *= xt.dims[i];
    float *want = malloc((size_t)ny * sizeof *want);
    for (int64_t i = 0; i < ny; i++) {
      int64_t r = i, src = 0;
      for (int d = yt->rank - 1; d >= 0; d--) src += (sse[3 * d] + r % yt->dims[d] * sse[3 * d + 2]) * xs[d], r /= yt->dims[d];
      want[i] = t.in[0][src];
    }
    check_bits(o[0], want, ny, what, chip);
    free(want);
  }
  tfree(&t, o);
}

static void pad_test(const char *chip, ir_type xt, ir_pad_mode mode, const int64_t *pads, double value) {
  tcase t = {.g = ir_graph_new("pad")};
  ir_value *x = tin(&t, "x", xt, 1);
  ir_node *n = tnode(&t, IR_OP_PAD, &x, 1, 1);
  int r = xt.rank;
  n->a.pad_mode = mode, n->a.pad_value = value;
  char what[256], s1[96];
  int len = snprintf(what, sizeof what, "pad %s %s", ir_pad_mode_names[mode], ir_type_str(&xt, s1, sizeof s1));
  for (int i = 0; i < 2 * r; i++)
    n->a.pads[i] = pads[i], len += snprintf(what + len, sizeof what - (size_t)len, " %lld", (long long)pads[i]);
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  float **o = trun(&t, chip, what);
  if (o) {
    const ir_type *yt = &n->out[0]->ty;
    int64_t ny = ir_nelems(yt), xs[IR_MAX_DIMS], m = 1;
    for (int i = r - 1; i >= 0; i--) xs[i] = m, m *= xt.dims[i];
    float *want = malloc((size_t)ny * sizeof *want);
    for (int64_t i = 0; i < ny; i++) {
      int64_t rem = i, src = 0;
      bool inside = true;
      for (int d = r - 1; d >= 0; d--) {
        int64_t c = rem % yt->dims[d] - pads[d], D = xt.dims[d];
        rem /= yt->dims[d];
        if (c < 0 || c >= D) {
          if (mode == IR_PAD_CONSTANT) inside = false;
          else if (mode == IR_PAD_EDGE) c = c < 0 ? 0 : D - 1;
          else if (mode == IR_PAD_REFLECT) c = c < 0 ? -c : 2 * (D - 1) - c;
          else c = ((c % D) + D) % D;
        }
        src += c * xs[d];
      }
      want[i] = inside ? t.in[0][src] : (float)value;
    }
    check_bits(o[0], want, ny, what, chip);
    free(want);
  }
  tfree(&t, o);
}

// ---------------------------------------------------------------- a chain of layers

// transpose (NCHW -> NHWC) -> add bias -> reshape (a view) -> softmax over
// the last axis -> relu: layers that hand tensors to each other through HBM.
static void chain_test(const char *chip) {
  tcase t = {.g = ir_graph_new("chain")};
  ir_value *x = tin(&t, "x", TY(2, 8, 6, 10), 3);
  ir_type bt = TY(8);
  float *bias = rand_array(8, 1);
  float *bcopy = malloc(8 * sizeof *bcopy);
  memcpy(bcopy, bias, 8 * sizeof *bcopy);
  ir_value *b = ir_add_const(t.g, "b", &bt, bias);
  ir_node *tr = tnode(&t, IR_OP_TRANSPOSE, &x, 1, 1);
  int perm[4] = {0, 2, 3, 1};
  memcpy(tr->a.perm, perm, sizeof perm);
  tfinish(&t, tr, false);
  ir_value *ab[2] = {tr->out[0], b};
  ir_node *ad = tnode(&t, IR_OP_ADD, ab, 2, 1);
  tfinish(&t, ad, false);
  ir_node *rs = tnode(&t, IR_OP_RESHAPE, &ad->out[0], 1, 1);
  rs->a.ndims = 2, rs->a.dims[0] = 120, rs->a.dims[1] = 8;
  tfinish(&t, rs, false);
  ir_node *sm = tnode(&t, IR_OP_SOFTMAX, &rs->out[0], 1, 1);
  sm->a.axis = 1;
  tfinish(&t, sm, false);
  ir_node *rl = tnode(&t, IR_OP_RELU, &sm->out[0], 1, 1);
  tfinish(&t, rl, true);
  float **o = trun(&t, chip, "chain");
  if (o) {
    float want[960];
    for (int i = 0; i < 120; i++) { // rows (n, h, w), columns c
      int nn = i / 60, h = i / 10 % 6, w = i % 10;
      float v[8], m, s;
      for (int c = 0; c < 8; c++) v[c] = t.in[0][((nn * 8 + c) * 6 + h) * 10 + w] + bcopy[c];
      m = v[0];
      for (int c = 1; c < 8; c++) m = v[c] > m ? v[c] : m;
      for (int c = 0; c < 8; c++) v[c] = num_exp(v[c] - m);
      s = v[0];
      for (int c = 1; c < 8; c++) s += v[c];
      float r = num_recip(s);
      for (int c = 0; c < 8; c++) want[i * 8 + c] = v[c] * r;
    }
    check_bits(o[0], want, 960, "chain", chip);
  }
  free(bcopy);
  tfree(&t, o);
}

// Values outside the Unified Buffer share HBM once dead (compile.c's HBM
// arena): v1 = relu(x), v2 = v1 + x, v3 = relu(v2), v4 = v3 * v1,
// v5 = relu(v4), v6 = v5 + v3, of 256 KiB each. At most four are live at
// once (x, v1, v2 and v3 when v3 is written), so the program needs at most
// five values' HBM where seven without reuse; and a write into a dead
// value's bytes must wait for its readers, or the bits below change.
static void hbm_reuse_test(const char *chip) {
  enum { R = 64, C = 1024, N = R * C };
  tcase t = {.g = ir_graph_new("hbm reuse")};
  ir_value *x = tin(&t, "x", TY(R, C), 2);
  ir_op ops[6] = {IR_OP_RELU, IR_OP_ADD, IR_OP_RELU, IR_OP_MUL, IR_OP_RELU, IR_OP_ADD};
  int src[6][2] = {{0, -1}, {1, 0}, {2, -1}, {3, 1}, {4, -1}, {5, 3}}; // operands: value indices (0: x)
  ir_value *v[7] = {x};
  for (int i = 0; i < 6; i++) {
    ir_value *in[2] = {v[src[i][0]], src[i][1] >= 0 ? v[src[i][1]] : NULL};
    ir_node *n = tnode(&t, ops[i], in, in[1] ? 2 : 1, 1);
    if (!tfinish(&t, n, i == 5)) {
      tfree(&t, NULL);
      return;
    }
    v[i + 1] = n->out[0];
  }
  chip_config cc;
  cc_options opt = {0};
  cc_executable ex;
  if (chip_load(&cc, chip, err, sizeof err) || cc_compile(t.g, &cc, &opt, &ex, err, sizeof err)) {
    CHECK(0, "hbm reuse on %s: %s", chip, err);
    tfree(&t, NULL);
    return;
  }
  uint64_t consts = 0;
  for (size_t i = 0; i < ex.prog.nsegs; i++)
    if (ex.prog.segs[i].kind == SEG_HBM) consts += ex.prog.segs[i].size;
  CHECK(ex.hbm_bytes <= consts + 5ull * N * 4 + 4096, "hbm reuse on %s: %llu bytes of HBM (constants %llu)", chip,
        (unsigned long long)ex.hbm_bytes, (unsigned long long)consts);
  cc_executable_free(&ex);
  float **o = trun(&t, chip, "hbm reuse");
  if (o) {
    float *w[7] = {t.in[0]};
    for (int i = 0; i < 6; i++) {
      w[i + 1] = malloc(N * sizeof(float));
      for (int k = 0; k < N; k++) {
        float a = w[src[i][0]][k], b = src[i][1] >= 0 ? w[src[i][1]][k] : 0;
        w[i + 1][k] = ops[i] == IR_OP_RELU ? (a > 0 ? a : 0.0f) : ops[i] == IR_OP_ADD ? a + b : a * b;
      }
    }
    check_bits(o[0], w[6], N, "hbm reuse", chip);
    for (int i = 1; i < 7; i++) free(w[i]);
  }
  tfree(&t, o);
}

// ---------------------------------------------------------------- other types, gather

// An input of any type with the given bytes (copied).
static ir_value *tin_raw(tcase *t, const char *name, ir_type tp, const void *data) {
  ir_value *v = ir_add_input(t->g, name, &tp);
  t->in[t->nin] = malloc(ir_nbytes(&tp) + 4);
  memcpy(t->in[t->nin++], data, ir_nbytes(&tp));
  return v;
}

static float **tcompile_run(tcase *t, const char *chip, const char *what) {
  cc_options opt = {0};
  int rc = cc_optimize(t->g, &opt, err, sizeof err);
  CHECK(rc == 0, "%s: optimize: %s", what, err);
  return rc ? NULL : trun(t, chip, what);
}

static void cast_test(const char *chip, ir_dtype from, ir_dtype to, int n, const void *x, const void *want) {
  tcase t = {.g = ir_graph_new("cast")};
  ir_value *a = tin_raw(&t, "x", ir_type_make(from, 1, (int64_t[]){n}), x);
  ir_node *c = tnode(&t, IR_OP_CAST, &a, 1, 1);
  c->a.to = to;
  char what[64];
  snprintf(what, sizeof what, "cast %s to %s", ir_dtypes[from].name, ir_dtypes[to].name);
  if (tfinish(&t, c, true)) {
    float **o = trun(&t, chip, what);
    CHECK(o && !memcmp(o[0], want, (size_t)n * (size_t)ir_dtypes[to].bytes), "%s on %s: wrong bits", what, chip);
    tfree(&t, o);
  } else tfree(&t, NULL);
}

// Empty tensors (a dimension 0): a node with only empty outputs computes
// nothing and compiles to no layer; one making data from an empty input is
// refused, naming it.
static void empty_tests(const char *chip) {
  tcase t = {.g = ir_graph_new("empty")};
  ir_value *x = tin(&t, "x", ty(2, (int64_t[]){0, 3}), 1);
  ir_node *r = tnode(&t, IR_OP_RELU, &x, 1, 1);
  if (tfinish(&t, r, true)) {
    float **o = trun(&t, chip, "relu of f32[0,3]");
    CHECK(o != NULL && r->out[0]->ty.dims[0] == 0, "relu of an empty tensor on %s", chip);
    tfree(&t, o);
  } else tfree(&t, NULL);

  t = (tcase){.g = ir_graph_new("empty_concat")};
  ir_value *ab[2] = {tin(&t, "a", ty(2, (int64_t[]){0, 3}), 1), tin(&t, "b", ty(2, (int64_t[]){2, 3}), 1)};
  ir_node *c = tnode(&t, IR_OP_CONCAT, ab, 2, 1);
  c->a.axis = 0;
  if (tfinish(&t, c, true)) {
    chip_config cfg;
    cc_executable ex;
    cc_options opt = {0};
    CHECK(chip_load(&cfg, chip, err, sizeof err) == 0, "%s", err);
    int rc = cc_compile(t.g, &cfg, &opt, &ex, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "input 0 'a' is empty (f32[0,3]) and an output is not: not supported"),
          "concat with an empty piece on %s: %s", chip, rc ? err : "compiled");
    if (!rc) cc_executable_free(&ex);
  }
  tfree(&t, NULL);
}

// Resize with tf_crop_and_resize: roi [0.5, 1.5] of the last axis (4 long)
// puts the sources of outputs 0..3 at 1.5, 2.5, 3.5, 4.5: two interpolated,
// two beyond the input that take the extrapolation value. Exact in bf16.
static void crop_resize_test(const char *chip) {
  tcase t = {.g = ir_graph_new("crop")};
  float xv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ir_value *x = tin_raw(&t, "x", TY(1, 1, 2, 4), xv);
  ir_node *n = tnode(&t, IR_OP_RESIZE, &x, 1, 1);
  n->a.ndims = 4, n->a.resize_mode = IR_RESIZE_LINEAR, n->a.coord_mode = IR_COORD_TF_CROP_AND_RESIZE;
  n->a.extrapolation = -1;
  for (int d = 0; d < 4; d++) n->a.dims[d] = d == 2 ? 2 : d == 3 ? 4 : 1, n->a.scales[d] = 1, n->a.roi_end[d] = 1;
  n->a.roi_start[3] = 0.5f, n->a.roi_end[3] = 1.5f;
  if (tfinish(&t, n, true)) {
    float **o = tcompile_run(&t, chip, "tf_crop_and_resize");
    float want[8] = {2.5f, 3.5f, -1, -1, 6.5f, 7.5f, -1, -1};
    if (o) check_bits(o[0], want, 8, "tf_crop_and_resize", chip);
    tfree(&t, o);
  } else tfree(&t, NULL);
}

// 3-D pools (split into two 2-D pools) against a direct reference: strides,
// uneven pads, and the average over the elements inside the input.
static void pool3d_test(const char *chip, ir_op op) {
  tcase t = {.g = ir_graph_new("pool3d")};
  const int64_t C = 2, D = 5, H = 6, W = 7, k[3] = {2, 3, 2}, s[3] = {2, 1, 2}, pb[3] = {1, 0, 1}, pe[3] = {0, 1, 1};
  ir_value *x = tin(&t, "x", TY(1, C, D, H, W), 1);
  ir_node *n = tnode(&t, op, &x, 1, 1);
  for (int i = 0; i < 3; i++)
    n->a.kernel[i] = k[i], n->a.stride[i] = s[i], n->a.dilation[i] = 1, n->a.pads[i] = pb[i], n->a.pads[3 + i] = pe[i];
  const char *what = op == IR_OP_MAXPOOL ? "maxpool 3-D" : "avgpool 3-D";
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  const int64_t *o = n->out[0]->ty.dims;
  CHECK(o[2] == 3 && o[3] == 5 && o[4] == 4, "%s: output dims", what);
  float **out = tcompile_run(&t, chip, what);
  int bad = 0;
  for (int64_t c = 0; out && c < C; c++)
    for (int64_t od = 0; od < o[2]; od++)
      for (int64_t oh = 0; oh < o[3]; oh++)
        for (int64_t ow = 0; ow < o[4]; ow++) {
          double mx = -INFINITY, sum = 0;
          int cnt = 0;
          for (int64_t a = 0; a < k[0]; a++)
            for (int64_t b = 0; b < k[1]; b++)
              for (int64_t e = 0; e < k[2]; e++) {
                int64_t d = od * s[0] + a - pb[0], h = oh * s[1] + b - pb[1], w = ow * s[2] + e - pb[2];
                if (d < 0 || d >= D || h < 0 || h >= H || w < 0 || w >= W) continue;
                float v = t.in[0][((c * D + d) * H + h) * W + w];
                mx = v > mx ? v : mx, sum += v, cnt++;
              }
          double want = op == IR_OP_MAXPOOL ? mx : sum / cnt;
          float got = out[0][((c * o[2] + od) * o[3] + oh) * o[4] + ow];
          if (op == IR_OP_MAXPOOL ? got != (float)want : fabs(got - want) > 1e-6 + 1e-5 * fabs(want)) bad++;
        }
  CHECK(out && bad == 0, "%s on %s: %d values wrong", what, chip, bad);
  tfree(&t, out);
}

// A 3-D convolution (split into depth taps and one 2-D convolution) against a
// direct reference: depth stride, dilation and uneven pads, a bias. Small
// integers, so that bf16 products and f32 sums are exact.
static void conv3d_test(const char *chip) {
  tcase t = {.g = ir_graph_new("conv3d")};
  enum { C = 2, D = 5, H = 4, W = 5, M = 3, KD = 3, KH = 2, KW = 2 };
  const int64_t s[3] = {2, 1, 2}, dl[3] = {2, 1, 1}, pb[3] = {1, 0, 1}, pe[3] = {2, 1, 0};
  static float xv[C * D * H * W], wv[M * C * KD * KH * KW], bv[M] = {0.5f, -1, 2};
  for (int i = 0; i < C * D * H * W; i++) xv[i] = (float)((i * 7 + 3) % 5 - 2);
  for (int i = 0; i < M * C * KD * KH * KW; i++) wv[i] = (float)((i * 5 + 1) % 7 - 3);
  ir_value *x = tin_raw(&t, "x", TY(1, C, D, H, W), xv);
  ir_type wt = TY(M, C, KD, KH, KW), bt = TY(M);
  float *wc = malloc(sizeof wv), *bc = malloc(sizeof bv);
  memcpy(wc, wv, sizeof wv), memcpy(bc, bv, sizeof bv);
  ir_value *in[3] = {x, ir_add_const(t.g, "w", &wt, wc), ir_add_const(t.g, "b", &bt, bc)};
  ir_node *n = tnode(&t, IR_OP_CONV, in, 3, 1);
  n->a.group = 1;
  const int64_t k[3] = {KD, KH, KW};
  for (int i = 0; i < 3; i++)
    n->a.kernel[i] = k[i], n->a.stride[i] = s[i], n->a.dilation[i] = dl[i], n->a.pads[i] = pb[i], n->a.pads[3 + i] = pe[i];
  if (!tfinish(&t, n, true)) {
    tfree(&t, NULL);
    return;
  }
  const int64_t *o = n->out[0]->ty.dims;
  CHECK(o[1] == M && o[2] == 2 && o[3] == 4 && o[4] == 3, "conv 3-D: output dims");
  float **out = tcompile_run(&t, chip, "conv 3-D");
  int bad = 0;
  for (int64_t m = 0; out && m < M; m++)
    for (int64_t od = 0; od < o[2]; od++)
      for (int64_t oh = 0; oh < o[3]; oh++)
        for (int64_t ow = 0; ow < o[4]; ow++) {
          float sum = bv[m];
          for (int64_t c = 0; c < C; c++)
            for (int64_t a = 0; a < KD; a++)
              for (int64_t b = 0; b < KH; b++)
                for (int64_t e = 0; e < KW; e++) {
                  int64_t d = od * s[0] + a * dl[0] - pb[0], h = oh * s[1] + b * dl[1] - pb[1],
                          w = ow * s[2] + e * dl[2] - pb[2];
                  if (d < 0 || d >= D || h < 0 || h >= H || w < 0 || w >= W) continue;
                  sum += xv[((c * D + d) * H + h) * W + w] * wv[(((m * C + c) * KD + a) * KH + b) * KW + e];
                }
          bad += out[0][((m * o[2] + od) * o[3] + oh) * o[4] + ow] != sum;
        }
  CHECK(out && bad == 0, "conv 3-D on %s: %d values wrong", chip, bad);
  tfree(&t, out);
}

static void typed_tests(const char *chip) {
  // Exact int32 <-> int64 for every value; i64 -> i32 wraps; f32 -> int truncates and saturates.
  int32_t i32[5] = {INT32_MAX, INT32_MIN, -1, 5, 16777217};
  int64_t i64[5] = {INT32_MAX, INT32_MIN, -1, 5, 16777217};
  cast_test(chip, IR_DT_I32, IR_DT_I64, 5, i32, i64);
  int64_t big[3] = {(1ll << 33) + 5, -1, -(1ll << 40) - 3};
  int32_t wrapped[3] = {5, -1, -3};
  cast_test(chip, IR_DT_I64, IR_DT_I32, 3, big, wrapped);
  float fx[6] = {-2.7f, 2.7f, 300.0f, NAN, -0.0f, 0.5f};
  int8_t i8[6] = {-2, 2, 127, 0, 0, 0};
  uint8_t bl[6] = {1, 1, 1, 1, 0, 1};
  int64_t l[6] = {-2, 2, 300, 0, 0, 0};
  cast_test(chip, IR_DT_F32, IR_DT_I8, 6, fx, i8);
  cast_test(chip, IR_DT_F32, IR_DT_BOOL, 6, fx, bl);
  cast_test(chip, IR_DT_F32, IR_DT_I64, 6, fx, l);
  uint8_t u8[3] = {255, 0, 128};
  float fu[3] = {255.0f, 0.0f, 128.0f};
  cast_test(chip, IR_DT_U8, IR_DT_F32, 3, u8, fu);

  // i16, u16, u32, u64: widened exactly (u32 and u64 through the low word,
  // read unsigned), narrowed with saturation; equal widths keep the bits.
  int16_t i16[5] = {-32768, 32767, -1, 0, 1234};
  float fi16[5] = {-32768.0f, 32767.0f, -1.0f, 0.0f, 1234.0f};
  cast_test(chip, IR_DT_I16, IR_DT_F32, 5, i16, fi16);
  float f16x[5] = {-40000.5f, 40000.0f, -2.7f, 2.7f, -0.0f};
  int16_t i16s[5] = {-32768, 32767, -2, 2, 0};
  cast_test(chip, IR_DT_F32, IR_DT_I16, 5, f16x, i16s);
  uint16_t u16[3] = {65535, 0, 32768};
  float fu16[3] = {65535.0f, 0.0f, 32768.0f};
  cast_test(chip, IR_DT_U16, IR_DT_F32, 3, u16, fu16);
  float fxu[4] = {70000.0f, -5.0f, 65535.0f, 2.9f};
  uint16_t u16s[4] = {65535, 0, 65535, 2};
  cast_test(chip, IR_DT_F32, IR_DT_U16, 4, fxu, u16s);
  uint32_t u32[5] = {4294967040u, 2147483648u, 16777216u, 0, 7};
  float fu32[5] = {4294967040.0f, 2147483648.0f, 16777216.0f, 0.0f, 7.0f};
  cast_test(chip, IR_DT_U32, IR_DT_F32, 5, u32, fu32);
  float fx32[5] = {4294967040.0f, 3e9f, 2147483648.0f, 1e10f, -1.0f}; // 1e10 saturates at 2^32 - 2^8
  uint32_t u32s[5] = {4294967040u, 3000000000u, 2147483648u, 4294967040u, 0};
  cast_test(chip, IR_DT_F32, IR_DT_U32, 5, fx32, u32s);
  uint64_t u64[2] = {4294967040u, 5};
  float fu64[2] = {4294967040.0f, 5.0f};
  cast_test(chip, IR_DT_U64, IR_DT_F32, 2, u64, fu64);
  float fx64[4] = {0x1p40f + 0x1p20f, 18446742974197923840.0f, 3.5f, 4294967296.0f};
  uint64_t u64s[4] = {(1ull << 40) + (1ull << 20), 18446742974197923840ull, 3, 4294967296ull};
  cast_test(chip, IR_DT_F32, IR_DT_U64, 4, fx64, u64s);
  int16_t i16b[2] = {-1, -32768};
  uint16_t u16b[2] = {65535, 32768};
  cast_test(chip, IR_DT_I16, IR_DT_U16, 2, i16b, u16b);
  uint64_t u64b[2] = {(1ull << 63) + 5, (1ull << 40) + 7};
  int64_t i64b[2] = {(int64_t)((1ull << 63) + 5), (1ll << 40) + 7};
  uint32_t u32b[2] = {5, 7};
  cast_test(chip, IR_DT_U64, IR_DT_I64, 2, u64b, i64b);
  cast_test(chip, IR_DT_U64, IR_DT_U32, 2, u64b, u32b);
  int64_t i64c[3] = {16777216, 0, 7}; // through f32: exact to 2^24
  cast_test(chip, IR_DT_U32, IR_DT_I64, 3, u32 + 2, i64c);

  { // where(c, a, b) with all three broadcast; signed zeros and NaN come through
    tcase t = {.g = ir_graph_new("where")};
    uint8_t cv[3] = {1, 0, 1};
    float av[2] = {-0.0f, NAN}, bv[3] = {7.0f, -0.0f, 8.0f};
    ir_value *c = tin_raw(&t, "c", ir_type_make(IR_DT_BOOL, 2, (int64_t[]){1, 3}), cv);
    ir_value *a = tin_raw(&t, "a", ty(2, (int64_t[]){2, 1}), av);
    ir_value *b = tin_raw(&t, "b", ty(1, (int64_t[]){3}), bv);
    ir_node *w = tnode(&t, IR_OP_WHERE, (ir_value *[]){c, a, b}, 3, 1);
    if (tfinish(&t, w, true)) {
      float **o = trun(&t, chip, "where broadcast");
      float want[6] = {-0.0f, -0.0f, -0.0f, NAN, -0.0f, NAN};
      CHECK(o && !memcmp(o[0], want, 8) && !memcmp(o[0] + 4, want + 4, 4) && isnan(o[0][3]) && isnan(o[0][5]) &&
                !memcmp(o[0] + 2, want + 2, 4),
            "where on %s: wrong bits", chip);
      tfree(&t, o);
    } else tfree(&t, NULL);
  }
  { // gather: embedding (constant data, i64 indices, negatives) at default precision, exact
    tcase t = {.g = ir_graph_new("gather")};
    ir_type dt = ty(2, (int64_t[]){50, 7});
    float *d = rand_array(350, 1000.0f), *dcopy = malloc(350 * sizeof *dcopy);
    memcpy(dcopy, d, 350 * sizeof *d);
    ir_value *data = ir_add_const(t.g, "emb", &dt, d);
    int64_t iv[6] = {0, 49, -1, -50, 7, 3};
    ir_value *idx = tin_raw(&t, "idx", ir_type_make(IR_DT_I64, 2, (int64_t[]){2, 3}), iv);
    ir_node *gn = tnode(&t, IR_OP_GATHER, (ir_value *[]){data, idx}, 2, 1);
    gn->a.axis = 0;
    if (tfinish(&t, gn, true)) {
      float **o = tcompile_run(&t, chip, "gather embedding");
      float want[42];
      for (int i = 0; i < 6; i++) memcpy(want + 7 * i, dcopy + 7 * ((iv[i] + 50) % 50), 7 * sizeof *want);
      if (o) check_bits(o[0], want, 42, "gather embedding", chip);
      tfree(&t, o);
    } else tfree(&t, NULL);
    free(dcopy);
  }
  { // gather along axis 1 of run-time data, i32 indices
    tcase t = {.g = ir_graph_new("gather1")};
    ir_value *data = tin(&t, "x", ty(3, (int64_t[]){3, 5, 2}), 10.0f);
    int32_t iv[4] = {4, -5, 2, 2};
    ir_value *idx = tin_raw(&t, "idx", ir_type_make(IR_DT_I32, 1, (int64_t[]){4}), iv);
    ir_node *gn = tnode(&t, IR_OP_GATHER, (ir_value *[]){data, idx}, 2, 1);
    gn->a.axis = 1;
    float x[30];
    memcpy(x, t.in[0], sizeof x);
    if (tfinish(&t, gn, true)) {
      float **o = tcompile_run(&t, chip, "gather axis 1");
      float want[24];
      for (int a = 0; a < 3; a++)
        for (int i = 0; i < 4; i++)
          for (int b = 0; b < 2; b++) want[(a * 4 + i) * 2 + b] = x[(a * 5 + (iv[i] + 5) % 5) * 2 + b];
      if (o) check_bits(o[0], want, 24, "gather axis 1", chip);
      tfree(&t, o);
    } else tfree(&t, NULL);
  }
}

// Integer pow (widen.c): in f32, rounded, exactly the integers.
static void int_pow_test(const char *chip) {
  tcase t = {.g = ir_graph_new("pow_i32")};
  int32_t xv[5] = {3, 2, 7, 9, 1}, yv[5] = {6, 5, 3, 5, 9}, want[5] = {729, 32, 343, 59049, 1};
  ir_value *x = tin_raw(&t, "x", ir_type_make(IR_DT_I32, 1, (int64_t[]){5}), xv);
  ir_value *y = tin_raw(&t, "y", ir_type_make(IR_DT_I32, 1, (int64_t[]){5}), yv);
  ir_node *p = tnode(&t, IR_OP_POW, (ir_value *[]){x, y}, 2, 1);
  if (tfinish(&t, p, true)) {
    float **o = tcompile_run(&t, chip, "pow i32");
    CHECK(o && !memcmp(o[0], want, sizeof want), "pow i32 on %s: wrong integers (%d %d %d %d %d)", chip,
          o ? ((int32_t *)o[0])[0] : 0, o ? ((int32_t *)o[0])[1] : 0, o ? ((int32_t *)o[0])[2] : 0,
          o ? ((int32_t *)o[0])[3] : 0, o ? ((int32_t *)o[0])[4] : 0);
    tfree(&t, o);
  } else tfree(&t, NULL);
}

// Resize (resize.c): nearest upsampling of NCHW data along H and W at
// default precision copies values bit for bit; linear along the last axis
// with half_pixel gives the reference's weights (0.25/0.75, edges clamped).
static void resize_tests(const char *chip) {
  {
    tcase t = {.g = ir_graph_new("resize_nearest")};
    ir_value *x = tin(&t, "x", ty(4, (int64_t[]){1, 2, 3, 4}), 1000.0f);
    ir_node *rn = tnode(&t, IR_OP_RESIZE, &x, 1, 1);
    rn->a = (ir_attrs){.resize_mode = IR_RESIZE_NEAREST, .coord_mode = IR_COORD_ASYMMETRIC,
                       .nearest_mode = IR_NEAREST_FLOOR, .ndims = 4, .dims = {1, 2, 6, 8}, .scales = {1, 1, 2, 2}};
    float xv[24];
    memcpy(xv, t.in[0], sizeof xv);
    if (tfinish(&t, rn, true)) {
      float **o = tcompile_run(&t, chip, "resize nearest");
      float want[96];
      for (int c = 0; c < 2; c++)
        for (int h = 0; h < 6; h++)
          for (int w = 0; w < 8; w++) want[(c * 6 + h) * 8 + w] = xv[(c * 3 + h / 2) * 4 + w / 2];
      if (o) check_bits(o[0], want, 96, "resize nearest", chip);
      tfree(&t, o);
    } else tfree(&t, NULL);
  }
  {
    tcase t = {.g = ir_graph_new("resize_linear")};
    ir_value *x = tin(&t, "x", ty(2, (int64_t[]){3, 2}), 10.0f);
    ir_node *rn = tnode(&t, IR_OP_RESIZE, &x, 1, 1);
    rn->a = (ir_attrs){.resize_mode = IR_RESIZE_LINEAR, .coord_mode = IR_COORD_HALF_PIXEL, .ndims = 2,
                       .dims = {3, 4}, .scales = {1, 2}};
    float xv[6];
    memcpy(xv, t.in[0], sizeof xv);
    if (tfinish(&t, rn, true)) {
      float **o = tcompile_run(&t, chip, "resize linear");
      bool ok = o != NULL;
      for (int r = 0; ok && r < 3; r++) {
        float a = xv[2 * r], b = xv[2 * r + 1];
        float want[4] = {a, 0.75f * a + 0.25f * b, 0.25f * a + 0.75f * b, b};
        for (int k = 0; k < 4; k++) ok = ok && fabsf(o[0][4 * r + k] - want[k]) <= 2e-2f * (fabsf(want[k]) + 1);
      }
      CHECK(ok, "resize linear on %s: wrong values", chip);
      tfree(&t, o);
    } else tfree(&t, NULL);
  }
}

// ---------------------------------------------------------------- refusals

static void support_tests(void) {
  ir_graph *g = ir_graph_new("support");
  ir_type it = {IR_DT_I64, 2, {3, 4}}, st = {IR_DT_F16, 2, {3, 4}};
  ir_value *a = ir_add_input(g, "a", &it), *ab[2] = {a, a};
  ir_value *h = ir_add_input(g, "h", &st), *hh[2] = {h, h};
  ir_node *add = ir_add_node(g, IR_OP_ADD, "add_i64", ab, 2, 1, NULL);
  ir_infer_node(add, err, sizeof err);
  char why[256];
  CHECK(cc_lower_supported(add, why, sizeof why), "i64 add (converted through f32): %s", why);
  ir_node *add16 = ir_add_node(g, IR_OP_ADD, "add_f16", hh, 2, 1, NULL);
  ir_infer_node(add16, err, sizeof err);
  CHECK(!cc_lower_supported(add16, why, sizeof why), "f16 add supported");
  CHECK(strstr(why, "dtype f16 is not supported by the lowering") != NULL, "%s", why);
  ir_node *tr = ir_add_node(g, IR_OP_TRANSPOSE, "tr_i64", &a, 1, 1, NULL);
  tr->a.perm[0] = 1, tr->a.perm[1] = 0;
  ir_infer_node(tr, err, sizeof err);
  CHECK(cc_lower_supported(tr, why, sizeof why), "i64 transpose: %s", why);
  ir_type ft = TY(1, 3, 8, 8);
  ir_value *f = ir_add_input(g, "f", &ft);
  ir_node *rz = ir_add_node(g, IR_OP_RESIZE, "rz", &f, 1, 1, NULL);
  CHECK(!cc_lower_supported(rz, why, sizeof why) && strstr(why, "op 'resize' is not supported by the lowering"),
        "%s", why);
  ir_node *mp = ir_add_node(g, IR_OP_MAXPOOL, "mp", &f, 1, 1, NULL);
  mp->a.kernel[0] = mp->a.kernel[1] = mp->a.stride[0] = mp->a.stride[1] = 1;
  mp->a.dilation[0] = mp->a.dilation[1] = 1;
  CHECK(ir_infer_node(mp, err, sizeof err) == 0, "%s", err);
  CHECK(!cc_lower_supported(mp, why, sizeof why) && strstr(why, "channels-last"), "%s", why);
  ir_type f5 = TY(1, 3, 4, 8, 8);
  ir_value *v5 = ir_add_input(g, "v5", &f5), *cw[2] = {v5, v5};
  ir_node *cv = ir_add_node(g, IR_OP_CONV, "cv", cw, 2, 1, NULL);
  cv->a.nhwc = true;
  cv->out[0]->ty = f5;
  CHECK(!cc_lower_supported(cv, why, sizeof why) && strstr(why, "rank 5"), "%s", why);
  ir_node *rs = ir_add_node(g, IR_OP_RESHAPE, "rs", &f, 1, 1, NULL);
  CHECK(cc_is_view(rs) && !cc_is_view(mp), "views");
  ir_graph_free(g);

  // A softmax row longer than tiny's VMEM: refused, naming the node.
  tcase t = {.g = ir_graph_new("big")};
  ir_value *x = tin(&t, "x", TY(2, 100000), 1);
  ir_node *sm = ir_add_node(t.g, IR_OP_SOFTMAX, "wide_softmax", &x, 1, 1, NULL);
  sm->a.axis = 1;
  tfinish(&t, sm, true);
  chip_config chip;
  cc_executable ex;
  chip_load(&chip, "tiny", err, sizeof err);
  CHECK(cc_compile(t.g, &chip, NULL, &ex, err, sizeof err) == -1, "wide softmax compiled on tiny");
  CHECK(strstr(err, "'wide_softmax' (softmax)") && strstr(err, "a tile needs"), "message: %s", err);
  tfree(&t, NULL);
}

// ---------------------------------------------------------------- main

int main(void) {
  support_tests();
  for (int ci = 0; ci < 2; ci++) {
    const char *c = chips[ci];
    typed_tests(c);
    empty_tests(c);
    crop_resize_test(c);
    pool3d_test(c, IR_OP_MAXPOOL);
    pool3d_test(c, IR_OP_AVGPOOL);
    conv3d_test(c);
    resize_tests(c);
    int_pow_test(c);
    // Broadcasting: NCHW bias, NHWC bias, scalars, both ways, long rows.
    ir_op bops[4] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV};
    for (int i = 0; i < 4; i++) {
      binary_test(c, bops[i], TY(2, 3, 4, 5), TY(3, 1, 1), false);
      binary_test(c, bops[i], TY(3, 1, 1), TY(2, 3, 4, 5), false);
      binary_test(c, bops[i], TY(4, 1, 5), TY(1, 3, 1), false);
      binary_test(c, bops[i], TY(1, 3, 1), TY(4, 1, 5), false);
      binary_test(c, bops[i], TY(2, 3), ir_type_make(IR_DT_F32, 0, NULL), false);
      binary_test(c, bops[i], ir_type_make(IR_DT_F32, 0, NULL), TY(2, 3), false);
      binary_test(c, bops[i], TY(1, 16, 16, 64), TY(64), false);
      binary_test(c, bops[i], TY(1, 64, 32, 33), TY(64, 1, 1), false); // 270 KB: tiles on tiny
      binary_test(c, bops[i], TY(300, 1), TY(300, 41), false);          // a column first
    }
    binary_test(c, IR_OP_ADD, TY(7, 9), TY(7, 9), false);
    binary_test(c, IR_OP_MUL, TY(5, 6), TY(5, 6), true);
    binary_test(c, IR_OP_SUB, TY(5, 6), TY(5, 6), true);
    binary_test(c, IR_OP_MUL, TY(100003), TY(1), false);              // one long row: column pieces
    binary_test(c, IR_OP_SUB, TY(3, 70001), TY(3, 1), false);         // long rows, value per row
    binary_test(c, IR_OP_DIV, TY(2, 40000), TY(40000), false);        // broadcast row too big to stay
    binary_test(c, IR_OP_SUB, TY(30000, 1), TY(30000, 3), false);     // column first, not resident
    binary_test(c, IR_OP_ADD, TY(40, 1, 50), TY(1, 30, 1), false);    // neither full: 40 segments
    binary_test(c, IR_OP_DIV, TY(2, 1, 3, 1, 5), TY(4, 1, 6, 1), false);

    ir_op uops[6] = {IR_OP_RELU, IR_OP_SIGMOID, IR_OP_TANH, IR_OP_HARDSIGMOID, IR_OP_HARDSWISH, IR_OP_CLIP};
    for (int i = 0; i < 6; i++) {
      unary_test(c, uops[i], TY(3, 5, 7), -1.5, 2.25);
      unary_test(c, uops[i], TY(1, 100, 300), -1.5, 2.25); // 120 KB
    }
    unary_test(c, IR_OP_CLIP, TY(4, 33), -INFINITY, 0.5);
    unary_test(c, IR_OP_CLIP, TY(4, 33), 0, INFINITY);
    unary_test(c, IR_OP_CLIP, TY(4, 33), -INFINITY, INFINITY);
    unary_test(c, IR_OP_RELU, ir_type_make(IR_DT_F32, 0, NULL), 0, 0);

    softmax_test(c, TY(3, 7), 0);
    softmax_test(c, TY(3, 7), 1);
    softmax_test(c, TY(2, 3, 4, 5), 0);
    softmax_test(c, TY(2, 3, 4, 5), 1);
    softmax_test(c, TY(2, 3, 4, 5), 3);
    softmax_test(c, TY(200, 1000), 1);   // 800 KB: row tiles
    softmax_test(c, TY(1000, 300), 0);   // column pieces
    softmax_test(c, TY(50, 20, 40), 1);  // several blocks per tile
    softmax_test(c, TY(1, 20000), 1);    // one long row
    softmax_test(c, ir_type_make(IR_DT_F32, 1, DIMS(1)), 0);

    //                         rank N  H   W   C   KH KW SH SW DH DW PT PL PB PR ceil cip
    pool_case pools[] = {{4, 1, 9, 9, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, false},
                         {4, 2, 8, 7, 3, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, false, false},
                         {4, 1, 10, 11, 5, 3, 2, 1, 2, 2, 1, 2, 0, 1, 1, false, false},
                         {4, 1, 9, 10, 3, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, true, false},
                         {4, 1, 9, 10, 3, 3, 3, 2, 3, 1, 1, 1, 1, 1, 0, true, true},
                         {4, 1, 7, 7, 2, 2, 3, 3, 2, 2, 2, 1, 0, 1, 2, true, true},
                         {4, 1, 6, 5, 3, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, false, false},
                         {4, 1, 12, 12, 2, 4, 4, 4, 4, 1, 1, 0, 0, 0, 0, false, true},
                         {3, 2, 1, 11, 3, 0, 3, 0, 2, 0, 1, 0, 1, 0, 1, false, false},
                         {3, 1, 1, 13, 4, 0, 4, 0, 3, 0, 2, 0, 2, 0, 2, true, true},
                         {4, 2, 56, 56, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, false}, // 1.6 MB: tiles
                         {4, 1, 5, 300, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, true}, // channel pieces on tiny
                         {4, 1, 14, 14, 8, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, false, false}};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
      pool_test(c, IR_OP_MAXPOOL, pools[i]);
      pool_test(c, IR_OP_AVGPOOL, pools[i]);
    }
    global_pool_test(c, TY(2, 7, 7, 32), true);
    global_pool_test(c, TY(2, 32, 7, 7), false);
    global_pool_test(c, TY(1, 112, 112, 16), true); // 800 KB: pieces on tiny
    global_pool_test(c, TY(3, 5, 9), true);
    global_pool_test(c, TY(1, 4, 300, 300), false);

    transpose_test(c, TY(2, 3, 4), (int[]){2, 0, 1});
    transpose_test(c, TY(2, 3, 4), (int[]){0, 2, 1});
    transpose_test(c, TY(2, 3, 4), (int[]){1, 0, 2});
    transpose_test(c, TY(2, 3, 4, 5), (int[]){0, 2, 3, 1});
    transpose_test(c, TY(2, 3, 4, 5), (int[]){0, 3, 1, 2});
    transpose_test(c, TY(2, 3, 4, 5, 6), (int[]){4, 1, 3, 0, 2});
    transpose_test(c, TY(3, 1, 4, 1, 5), (int[]){4, 1, 0, 3, 2});
    transpose_test(c, TY(1, 5, 1, 7), (int[]){0, 2, 1, 3}); // a view
    transpose_test(c, TY(300, 500), (int[]){1, 0});         // 600 KB: tiles on tiny
    transpose_test(c, TY(1, 64, 56, 56), (int[]){0, 2, 3, 1});
    transpose_test(c, TY(40, 1000, 3), (int[]){0, 2, 1});

    concat_test(c, 1, 3, (ir_type[]){TY(2, 3, 4), TY(2, 1, 4), TY(2, 5, 4)});
    concat_test(c, 0, 2, (ir_type[]){TY(2, 3), TY(4, 3)});
    concat_test(c, 2, 2, (ir_type[]){TY(2, 3, 4), TY(2, 3, 1)});
    concat_test(c, 0, 1, (ir_type[]){TY(5, 3)});
    split_test(c, TY(2, 10, 3), 1, 3, DIMS(3, 2, 5));
    split_test(c, TY(6, 4), 0, 2, DIMS(1, 5));
    split_test(c, TY(2, 3, 8), 2, 2, DIMS(7, 1));

    slice_test(c, TY(5, 6, 7), DIMS(1, 4, 1, 0, 6, 2, 6, -1, -1));       // steps 1, 2, -1
    slice_test(c, TY(5, 6, 7), DIMS(4, 0, -2, 5, 0, -1, 1, 7, 3));       // negative steps
    slice_test(c, TY(8, 9), DIMS(0, 8, 1, 2, 9, 1));                     // column range
    slice_test(c, TY(4, 100, 30), DIMS(3, -1, -1, 0, 100, 7, 29, 0, -4));
    slice_test(c, TY(3, 4), DIMS(0, 3, 1, 0, 4, 1));                     // a view

    pad_test(c, TY(2, 3, 4), IR_PAD_CONSTANT, DIMS(0, 1, 2, 1, 0, 3), 1.5);
    pad_test(c, TY(2, 3, 4), IR_PAD_CONSTANT, DIMS(1, -1, 2, 0, 2, -1), -2);
    pad_test(c, TY(1, 3, 100, 100), IR_PAD_CONSTANT, DIMS(0, 0, 2, 2, 0, 0, 2, 2), 0);
    pad_test(c, TY(3, 5), IR_PAD_CONSTANT, DIMS(-3, 0, 2, 0), 7); // all rows cropped: only the value
    pad_test(c, TY(3, 5, 4), IR_PAD_REFLECT, DIMS(2, 1, 3, 1, 4, 2), 0);
    pad_test(c, TY(3, 5, 4), IR_PAD_EDGE, DIMS(2, 1, 3, 1, 4, 2), 0);
    pad_test(c, TY(3, 5, 4), IR_PAD_WRAP, DIMS(2, 1, 3, 1, 4, 2), 0);
    pad_test(c, TY(6, 7), IR_PAD_EDGE, DIMS(-2, 3, 1, -3), 0);
    pad_test(c, TY(6, 7), IR_PAD_REFLECT, DIMS(2, -1, -1, 3), 0);

    chain_test(c);
    hbm_reuse_test(c);
  }
  return test_done("test_lower");
}
