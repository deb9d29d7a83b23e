// Matmul and convolution lowered onto the MXU (src/compiler/lower_mxu.c),
// compiled and simulated, against a reference in double precision.
//
// default: operands rounded to bf16, products exact, so the only difference
// from the reference is the MXU's fp32 accumulation: relative error (to the
// largest output) within 1e-5. highest: three bf16 parts each, against the
// exact fp32 product: within 1e-6.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/compiler.h"
#include "sim/numerics.h"
#include "sim/sim.h"
#include "testlib.h"

static float rnd(void) { return (float)((double)(test_rand() >> 11) * 0x1p-53 * 2 - 1); }
static float b16(float x) { return num_bf16_to_f32(num_f32_to_bf16(x)); }

static float *rand_array(int64_t n) {
  float *p = malloc((size_t)n * sizeof *p);
  for (int64_t i = 0; i < n; i++) p[i] = rnd();
  return p;
}

typedef struct {
  const char *chip;
  int prec;
  int N, H, W, C, M, K, S, P, D, G;
  ir_act act;
  bool res, bias;
  bool w_input; // weights are a graph input (as JAX passes parameters)
} conv_case;

// Compiles g, runs it with the given inputs, returns output 0 (malloc'd).
static float *compile_and_run(ir_graph *g, const char *chipname, int prec, float **inputs, int ninputs,
                              uint64_t *cycles, char *err, size_t errlen) {
  chip_config chip;
  if (chip_load(&chip, chipname, err, errlen)) return NULL;
  cc_options opt = {.precision = (cc_precision)prec};
  cc_executable ex;
  if (cc_compile(g, &chip, &opt, &ex, err, errlen)) return NULL;
  sim_options so = {0};
  sim *s = sim_create(&chip, &so, err, errlen);
  float *out = NULL;
  if (s && !sim_load(s, &ex.prog, err, errlen)) {
    for (int i = 0; i < ninputs; i++)
      sim_write(s, sim_io_mem(&ex.prog.io[i]), ex.prog.io[i].addr, inputs[i], isa_io_bytes(&ex.prog.io[i]), err, errlen);
    if (!sim_run(s, err, errlen)) {
      const isa_io *o = &ex.prog.io[ninputs];
      out = malloc(isa_io_bytes(o));
      sim_read(s, sim_io_mem(o), o->addr, out, isa_io_bytes(o), err, errlen);
      *cycles = sim_get_stats(s)->cycles;
    }
  }
  sim_destroy(s);
  cc_executable_free(&ex);
  return out;
}

static void check_close(const float *got, const double *want, int64_t n, double tol, const char *what) {
  double maxerr = 0, maxref = 0;
  int64_t worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs(got[i] - want[i]);
    if (!(e <= maxerr)) maxerr = e, worst = i;
    if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
  }
  CHECK(maxerr <= tol * maxref, "%s: error %.3g of max %.3g (element %lld: got %g want %g)", what, maxerr / maxref,
        maxref, (long long)worst, got[worst], want[worst]);
}

static double apply_act(double v, ir_act act) {
  if (act == IR_ACT_RELU) return v < 0 ? 0 : v;
  if (act == IR_ACT_CLIP) return v < -0.5 ? -0.5 : v > 0.75 ? 0.75 : v;
  return v;
}

static void conv_test(conv_case t) {
  int OH = (t.H + 2 * t.P - t.D * (t.K - 1) - 1) / t.S + 1, OW = (t.W + 2 * t.P - t.D * (t.K - 1) - 1) / t.S + 1;
  int cg = t.C / t.G, mg = t.M / t.G;
  ir_graph *g = ir_graph_new("conv");
  ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){t.N, t.H, t.W, t.C});
  ir_type yt = ir_type_make(IR_DT_F32, 4, (int64_t[]){t.N, OH, OW, t.M});
  ir_value *x = ir_add_input(g, "x", &xt);
  ir_type wt = ir_type_make(IR_DT_F32, 4, (int64_t[]){t.M, cg, t.K, t.K});
  float *w = rand_array(ir_nelems(&wt)), *b = rand_array(t.M); // the graph owns them
  ir_value *wv = t.w_input ? ir_add_input(g, "w", &wt) : ir_add_const(g, "w", &wt, w);
  ir_value *r = t.res ? ir_add_input(g, "r", &yt) : NULL;
  ir_value *in[4] = {x, wv};
  int nin = 2;
  ir_type bt = ir_type_make(IR_DT_F32, 1, (int64_t[]){t.M});
  if (t.bias) in[nin++] = ir_add_const(g, "b", &bt, b);
  if (t.res) in[nin++] = r;
  ir_node *n = ir_add_node(g, IR_OP_CONV, "conv", in, nin, 1, NULL);
  n->a.nhwc = true, n->a.group = t.G, n->a.act = t.act, n->a.residual = t.res;
  n->a.lo = -0.5, n->a.hi = 0.75;
  for (int d = 0; d < 2; d++) n->a.kernel[d] = t.K, n->a.stride[d] = t.S, n->a.dilation[d] = t.D;
  for (int d = 0; d < 4; d++) n->a.pads[d] = t.P;
  n->out[0]->ty = yt;
  ir_add_output(g, n->out[0]);
  float *xv = rand_array(ir_nelems(&xt)), *rv = rand_array(ir_nelems(&yt));
  float *inputs[3] = {xv, t.w_input ? w : rv, rv};
  char err[CC_ERR_LEN], what[200];
  uint64_t cycles = 0;
  snprintf(what, sizeof what, "%s %s conv N%d %dx%dx%d -> %d k%d s%d p%d d%d g%d act %d res %d", t.chip,
           t.prec ? "highest" : "default", t.N, t.H, t.W, t.C, t.M, t.K, t.S, t.P, t.D, t.G, t.act, t.res);
  float *y = compile_and_run(g, t.chip, t.prec, inputs, 1 + t.w_input + t.res, &cycles, err, sizeof err);
  CHECK(y != NULL, "%s: %s", what, err);
  if (y) {
    int64_t ny = ir_nelems(&yt);
    double *want = malloc((size_t)ny * sizeof *want);
    for (int nn = 0; nn < t.N; nn++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++)
          for (int m = 0; m < t.M; m++) {
            double acc = 0;
            int gi = m / mg;
            for (int kh = 0; kh < t.K; kh++)
              for (int kw = 0; kw < t.K; kw++) {
                int ih = oh * t.S - t.P + kh * t.D, iw = ow * t.S - t.P + kw * t.D;
                if (ih < 0 || ih >= t.H || iw < 0 || iw >= t.W) continue;
                for (int ci = 0; ci < cg; ci++) {
                  float xa = xv[((nn * t.H + ih) * t.W + iw) * t.C + gi * cg + ci];
                  float wa = w[((m * cg + ci) * t.K + kh) * t.K + kw];
                  if (!t.prec) xa = b16(xa), wa = b16(wa);
                  acc += (double)xa * wa;
                }
              }
            int64_t o = ((int64_t)(nn * OH + oh) * OW + ow) * t.M + m;
            if (t.bias) acc += b[m];
            if (t.res) acc += rv[o];
            want[o] = apply_act(acc, t.act);
          }
    check_close(y, want, ny, t.prec ? 1e-6 : 1e-5, what);
    free(want);
  }
  free(y), free(xv), free(rv);
  if (!t.bias) free(b);
  if (t.w_input) free(w);
  ir_graph_free(g);
}

// out[b..., M, N] = A[b..., M, K] @ B[b..., K, N] (+ bias), B constant rank 2 or computed.
static void matmul_test(const char *chip, int prec, int ra, const int64_t *ad, int rb, const int64_t *bd,
                        bool b_const, bool bias) {
  ir_graph *g = ir_graph_new("mm");
  ir_type at = ir_type_make(IR_DT_F32, ra, ad), bt = ir_type_make(IR_DT_F32, rb, bd);
  ir_value *a = ir_add_input(g, "a", &at);
  float *bv = rand_array(ir_nelems(&bt));
  ir_value *b = b_const ? ir_add_const(g, "b", &bt, bv) : ir_add_input(g, "b", &bt);
  int64_t K = ad[ra - 1], M = ad[ra - 2], N = bd[rb - 1];
  float *biasv = rand_array(N);
  ir_type biast = ir_type_make(IR_DT_F32, 1, &N);
  ir_value *in[3] = {a, b, bias ? ir_add_const(g, "bias", &biast, biasv) : NULL};
  ir_node *n = ir_add_node(g, IR_OP_MATMUL, "mm", in, bias ? 3 : 2, 1, NULL);
  char err[CC_ERR_LEN];
  CHECK(ir_infer_node(n, err, sizeof err) == 0, "%s", err);
  ir_add_output(g, n->out[0]);
  const ir_type *yt = &n->out[0]->ty;
  float *av = rand_array(ir_nelems(&at));
  float *inputs[2] = {av, bv};
  uint64_t cycles;
  char what[200];
  snprintf(what, sizeof what, "%s %s matmul rank %d x rank %d %s, K %lld N %lld", chip, prec ? "highest" : "default",
           ra, rb, b_const ? "const" : "runtime", (long long)K, (long long)N);
  float *y = compile_and_run(g, chip, prec, inputs, b_const ? 1 : 2, &cycles, err, sizeof err);
  CHECK(y != NULL, "%s: %s", what, err);
  if (y) {
    int64_t ny = ir_nelems(yt), nbatch = ny / (M * N);
    double *want = malloc((size_t)ny * sizeof *want);
    int nb = yt->rank - 2;
    for (int64_t bi = 0; bi < nbatch; bi++) {
      // batch offsets with broadcasting (right-aligned)
      int64_t rem = bi, ao = 0, bo = 0, sa = M * K, sb = K * N;
      for (int d = nb - 1; d >= 0; d--) {
        int64_t idx = rem % yt->dims[d];
        rem /= yt->dims[d];
        int da = d - (nb - (ra - 2)), db = d - (nb - (rb - 2));
        int64_t na = da >= 0 ? ad[da] : 1, nbd = db >= 0 ? bd[db] : 1;
        ao += (na == 1 ? 0 : idx) * sa, bo += (nbd == 1 ? 0 : idx) * sb;
        sa *= na, sb *= nbd;
      }
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
          double acc = 0;
          for (int64_t k = 0; k < K; k++) {
            float x = av[ao + i * K + k], w = bv[bo + k * N + j];
            if (!prec) x = b16(x), w = b16(w);
            acc += (double)x * w;
          }
          want[(bi * M + i) * N + j] = acc + (bias ? biasv[j] : 0);
        }
    }
    check_close(y, want, ny, prec ? 1e-6 : 1e-5, what);
    free(want);
  }
  free(y), free(av);
  if (!b_const) free(bv);
  if (!bias) free(biasv);
  ir_graph_free(g);
}

// Three chained matmuls: the second and third layers' weights are prefetched
// into VMEM while the layer before them runs (compile.c); the values must not
// notice. highest precision, so the reference is plain fp64.
static void chain_test(const char *chip) {
  ir_graph *g = ir_graph_new("chain");
  int64_t dims[4] = {6, 64, 48, 30};
  ir_type at = ir_type_make(IR_DT_F32, 2, (int64_t[]){dims[0], dims[1]});
  ir_value *v = ir_add_input(g, "a", &at);
  float *w[3]; // owned by the graph
  int64_t K = dims[1];
  int nl = 3;
  int64_t outs[3] = {dims[2], dims[3], 20};
  for (int l = 0; l < nl; l++) {
    ir_type wt = ir_type_make(IR_DT_F32, 2, (int64_t[]){K, outs[l]});
    w[l] = rand_array(K * outs[l]);
    ir_value *in[2] = {v, ir_add_const(g, "w", &wt, w[l])};
    ir_node *n = ir_add_node(g, IR_OP_MATMUL, "mm", in, 2, 1, NULL);
    n->a.act = l < nl - 1 ? IR_ACT_RELU : IR_ACT_NONE;
    char err[CC_ERR_LEN];
    CHECK(ir_infer_node(n, err, sizeof err) == 0, "%s", err);
    v = n->out[0], K = outs[l];
  }
  ir_add_output(g, v);
  float *av = rand_array(ir_nelems(&at));
  float *inputs[1] = {av};
  uint64_t cycles;
  char err[CC_ERR_LEN];
  float *y = compile_and_run(g, chip, 1, inputs, 1, &cycles, err, sizeof err);
  CHECK(y != NULL, "%s chain: %s", chip, err);
  if (y) {
    double h[6 * 64], h2[6 * 64];
    int64_t k = dims[1];
    for (int i = 0; i < 6 * 64; i++) h[i] = av[i];
    for (int l = 0; l < nl; l++) {
      for (int64_t i = 0; i < dims[0]; i++)
        for (int64_t j = 0; j < outs[l]; j++) {
          double acc = 0;
          for (int64_t q = 0; q < k; q++) acc += h[i * k + q] * w[l][q * outs[l] + j];
          h2[i * outs[l] + j] = l < nl - 1 && acc < 0 ? 0 : (double)(float)acc;
        }
      memcpy(h, h2, sizeof h);
      k = outs[l];
    }
    check_close(y, h, dims[0] * outs[nl - 1], 1e-5, chip);
  }
  free(y), free(av);
  ir_graph_free(g);
}

// softmax(Q K^T op c) over the last axis, c a scalar constant (op: * or /);
// keep: the scores are a graph output too, so nothing can be fused.
static ir_graph *scores_graph(int64_t B, int64_t S, int64_t D, bool div, float c, bool keep, ir_node **mm) {
  ir_graph *g = ir_graph_new("scores");
  ir_type qt = ir_type_make(IR_DT_F32, 3, (int64_t[]){B, S, D}), kt = ir_type_make(IR_DT_F32, 3, (int64_t[]){B, D, S});
  ir_type st = ir_type_make(IR_DT_F32, 0, NULL);
  ir_value *in[2] = {ir_add_input(g, "q", &qt), ir_add_input(g, "kt", &kt)};
  char err[CC_ERR_LEN];
  *mm = ir_add_node(g, IR_OP_MATMUL, "qk", in, 2, 1, NULL);
  CHECK(ir_infer_node(*mm, err, sizeof err) == 0, "%s", err);
  float *cv = malloc(sizeof *cv); // the graph owns it
  *cv = c;
  ir_value *sc[2] = {(*mm)->out[0], ir_add_const(g, "c", &st, cv)};
  ir_node *scale = ir_add_node(g, div ? IR_OP_DIV : IR_OP_MUL, "scale", sc, 2, 1, NULL);
  CHECK(ir_infer_node(scale, err, sizeof err) == 0, "%s", err);
  ir_node *sm = ir_add_node(g, IR_OP_SOFTMAX, "softmax", scale->out, 1, 1, NULL);
  sm->a.axis = 2;
  CHECK(ir_infer_node(sm, err, sizeof err) == 0, "%s", err);
  ir_add_output(g, sm->out[0]);
  if (keep) ir_add_output(g, (*mm)->out[0]);
  CHECK(cc_optimize(g, &(cc_options){0}, err, sizeof err) == 0, "optimize: %s", err);
  return g;
}

// Attention's scale and softmax fused into the Q K^T matmul's epilogue
// (passes.c, lower_mxu.c) give exactly the bits of the unfused graph: on the
// output tile when a row fits one n-tile, in HBM after the matmul when it
// spans several (tiny's 8 columns); and the softmax's values.
static void attention_fusion_test(const char *chip, int prec, int64_t B, int64_t S, int64_t D, bool div) {
  float c = div ? 3.0f : 0.125f; // 1/3 is inexact: Div must stay a division
  ir_node *fm, *um;
  ir_graph *fused = scores_graph(B, S, D, div, c, false, &fm), *plain = scores_graph(B, S, D, div, c, true, &um);
  char what[160], err[CC_ERR_LEN];
  snprintf(what, sizeof what, "%s %s scores [%lld,%lld,%lld] %s", chip, prec ? "highest" : "default", (long long)B,
           (long long)S, (long long)D, div ? "div" : "mul");
  int nmm = 0;
  for (int i = 0; i < fused->nnodes; i++) {
    const ir_node *n = fused->nodes[i];
    nmm += n->op == IR_OP_MATMUL && n->a.act == IR_ACT_SOFTMAX && n->a.pscale_on && n->a.pscale_div == div;
  }
  CHECK(fused->nnodes == 1 && nmm == 1, "%s: not fused into one matmul (%d nodes)", what, fused->nnodes);
  CHECK(plain->nnodes == 3, "%s: the graph with the scores as output was fused (%d nodes)", what, plain->nnodes);
  float *q = rand_array(B * S * D), *k = rand_array(B * D * S);
  for (int64_t i = 0; i < B * S * D; i++) q[i] *= 4; // scores of a few units: softmax far from uniform
  float *inputs[2] = {q, k};
  uint64_t cf, cu;
  float *yf = compile_and_run(fused, chip, prec, inputs, 2, &cf, err, sizeof err);
  CHECK(yf != NULL, "%s fused: %s", what, err);
  float *yu = compile_and_run(plain, chip, prec, inputs, 2, &cu, err, sizeof err);
  CHECK(yu != NULL, "%s unfused: %s", what, err);
  if (yf && yu) {
    int64_t n = B * S * S, bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(&yf[i], &yu[i], 4) != 0;
    CHECK(bad == 0, "%s: %lld of %lld values differ from the unfused graph's", what, (long long)bad, (long long)n);
    double *want = malloc((size_t)n * sizeof *want);
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < S; i++) {
        double *row = want + (b * S + i) * S, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < S; j++) {
          double acc = 0;
          for (int64_t d = 0; d < D; d++) {
            float x = q[(b * S + i) * D + d], w = k[(b * D + d) * S + j];
            if (!prec) x = b16(x), w = b16(w);
            acc += (double)x * w;
          }
          row[j] = div ? acc / c : acc * c;
          mx = row[j] > mx ? row[j] : mx;
        }
        for (int64_t j = 0; j < S; j++) sum += row[j] = exp(row[j] - mx);
        for (int64_t j = 0; j < S; j++) row[j] /= sum;
      }
    check_close(yf, want, n, 1e-5, what);
    free(want);
  }
  free(yf), free(yu), free(q), free(k);
  ir_graph_free(fused), ir_graph_free(plain);
}

// cc_defer_dma: the emitter holds a DMA back past work that does not touch
// its memory (a vector op that only reads its source) and emits it right
// before the first instruction that does (a vector op reading its
// destination), which then sees its data.
static void deferred_dma_test(void) {
  char err[CC_ERR_LEN];
  chip_config chip;
  if (chip_load(&chip, "tpu-v1", err, sizeof err)) {
    CHECK(0, "%s", err);
    return;
  }
  enum { NF = 1024, B = NF * 4 };
  float v[NF], got[NF];
  for (int i = 0; i < NF; i++) v[i] = (float)(i % 97) - 40.5f;
  cc_emit *e = cc_emit_new(&chip, err, sizeof err);
  uint64_t h = cc_hbm_const(e, v, B), out = cc_hbm_alloc(e, B);
  uint64_t a = cc_vmem_alloc(e, B, "a"), b = cc_vmem_alloc(e, B, "b"), c = cc_vmem_alloc(e, B, "c");
  uint64_t n[2] = {1, B};
  int64_t ss[2] = {0, 1}, ds[2] = {0, 1};
  cc_vblock blk = {.rows = 1, .cols = NF};
  cc_copy(e, SPACE_LOCAL, a, SPACE_HBM, h, B);
  cc_defer_dma(e, SPACE_LOCAL, b, SPACE_LOCAL, a, 1, n, ss, ds);  // b = a, held back
  cc_vpu(e, VOP_MOV, DT_F32, c, DT_F32, a, DT_F32, 0, &blk);      // reads a too: goes first
  cc_vpu(e, VOP_RELU, DT_F32, c, DT_F32, b, DT_F32, 0, &blk);     // reads b: after the copy
  cc_copy(e, SPACE_HBM, out, SPACE_LOCAL, c, B);
  cc_executable ex;
  if (cc_emit_finish(e, &ex, err, sizeof err)) {
    CHECK(0, "deferred DMA: %s", err);
    cc_emit_free(e);
    return;
  }
  cc_emit_free(e);
  char order[8] = "", *o = order; // the tile instructions in program order
  for (size_t i = 0; i < ex.prog.ncode && o < order + 7; i++) {
    isa_inst in;
    if (isa_decode(ex.prog.code[i], &in, err, sizeof err) && (in.op == OP_DMA || in.op == OP_VPU))
      *o++ = in.op == OP_DMA ? 'd' : 'v';
  }
  *o = 0;
  CHECK(!strcmp(order, "dvdvd"), "deferred DMA: tile instructions %s, want dvdvd", order);
  sim_options so = {0};
  sim *s = sim_create(&chip, &so, err, sizeof err);
  if (s && !sim_load(s, &ex.prog, err, sizeof err) && !sim_run(s, err, sizeof err) &&
      !sim_read(s, MEM_HBM, out, got, B, err, sizeof err)) {
    int bad = 0;
    for (int i = 0; i < NF; i++) bad += got[i] != (v[i] > 0 ? v[i] : 0.0f);
    CHECK(!bad, "deferred DMA: %d of %d values differ from relu(x)", bad, NF);
  } else CHECK(0, "deferred DMA: run: %s", err);
  sim_destroy(s);
  cc_executable_free(&ex);
}

static void error_tests(void) {
  // An output row wider than the accumulators hold: a clear compile error.
  ir_graph *g = ir_graph_new("wide");
  ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){1, 3, 3000, 2});
  ir_type wt = ir_type_make(IR_DT_F32, 4, (int64_t[]){2, 2, 3, 3});
  ir_value *in[2] = {ir_add_input(g, "x", &xt), ir_add_const(g, "w", &wt, NULL)};
  ir_node *n = ir_add_node(g, IR_OP_CONV, "wideconv", in, 2, 1, NULL);
  n->a.nhwc = true, n->a.group = 1;
  for (int d = 0; d < 2; d++) n->a.kernel[d] = 3, n->a.stride[d] = 1, n->a.dilation[d] = 1;
  for (int d = 0; d < 4; d++) n->a.pads[d] = 1;
  n->out[0]->ty = ir_type_make(IR_DT_F32, 4, (int64_t[]){1, 3, 3000, 2});
  ir_add_output(g, n->out[0]);
  chip_config chip;
  char err[CC_ERR_LEN];
  CHECK(chip_load(&chip, "tiny", err, sizeof err) == 0, "%s", err);
  cc_executable ex;
  cc_options opt = {0};
  CHECK(cc_compile(g, &chip, &opt, &ex, err, sizeof err) == -1, "wide conv compiled on tiny");
  CHECK(strstr(err, "wideconv") && strstr(err, "accumulator"), "message: %s", err);
  ir_graph_free(g);
}

// TPU v1 (configs/tpu-v1.ini): int8 products, weights streamed tile by tile
// through the weight FIFO, the tensors between layers in the Unified Buffer
// stored int8, convolutions over several whole images per m-tile (compile.c,
// lower_mxu.c). The same bits as with the weights resident in VMEM and f32
// tensors in HBM ("plain"), and the HBM traffic each implies: the FIFO reads
// every weight tile once per m-tile (fifo_wbytes in all), the plain chip the
// weights once (wbytes) and writes and reads back the tensors between layers.
// On tpu-v1 the input and output cross the host link instead (compile.c).
static sim_stats ub_v1; // the tpu-v1 run's figures of the last ub_check

static void ub_check(ir_graph *g, float *x, uint64_t xbytes, uint64_t ybytes, uint64_t wbytes, uint64_t fifo_wbytes,
                     uint64_t between, const char *what) {
  char err[CC_ERR_LEN];
  const void *cal_in[1] = {x};
  cc_calibration cal = {1, cal_in};
  chip_config v1, plain;
  if (chip_load(&v1, "tpu-v1", err, sizeof err)) {
    CHECK(0, "%s", err);
    return;
  }
  plain = v1;
  plain.vmem_activations = false, plain.weight_fifo_tiles = 0;
  CHECK(v1.vmem_activations && v1.weight_fifo_tiles == 4, "tpu-v1: Unified Buffer and weight FIFO");
  CHECK(cc_quantize(g, &v1, &cal, err, sizeof err) == 0, "%s: quantise: %s", what, err);
  float *out[2] = {NULL, NULL};
  sim_stats st[2];
  for (int k = 0; k < 2; k++) {
    const chip_config *c = k ? &plain : &v1;
    cc_options opt = {.quantize = true};
    cc_executable ex;
    if (cc_compile(g, c, &opt, &ex, err, sizeof err)) {
      CHECK(0, "%s: compile (%s): %s", what, k ? "plain" : "tpu-v1", err);
      continue;
    }
    sim_options so = {0};
    sim *s = sim_create(c, &so, err, sizeof err);
    const isa_io *io = ex.prog.io;
    CHECK(io[0].mem == (k ? IO_MEM_HBM : IO_MEM_HOST) && io[1].mem == io[0].mem, "%s: %s I/O in %s memory", what,
          k ? "plain" : "tpu-v1", k ? "HBM" : "host");
    sim_mem in_mem = sim_io_mem(&io[0]), out_mem = sim_io_mem(&io[1]);
    if (s && !sim_load(s, &ex.prog, err, sizeof err) && !sim_write(s, in_mem, io[0].addr, x, xbytes, err, sizeof err) &&
        !sim_run(s, err, sizeof err)) {
      out[k] = malloc(ybytes);
      sim_read(s, out_mem, io[1].addr, out[k], ybytes, err, sizeof err);
      st[k] = *sim_get_stats(s);
    } else CHECK(0, "%s: run: %s", what, err);
    sim_destroy(s);
    cc_executable_free(&ex);
  }
  if (out[0] && out[1]) {
    typedef unsigned long long ull;
    CHECK(!memcmp(out[0], out[1], ybytes), "%s: the Unified Buffer and the FIFO change no bits", what);
    CHECK(st[0].hbm_write == 0 && st[0].host_write == ybytes && st[0].host_read == xbytes,
          "%s: tpu-v1 moves the input and output over the host link, writes no weight memory: %llu, %llu, %llu", what,
          (ull)st[0].hbm_write, (ull)st[0].host_read, (ull)st[0].host_write);
    CHECK(st[0].host_in_cycles > 0 && st[0].host_out_cycles > 0 && st[0].mxu_cycles + st[0].host_in_cycles +
          st[0].host_out_cycles == st[0].cycles, "%s: Table 3 counts the cycles between the host transfers", what);
    CHECK(st[1].hbm_write == ybytes + between, "%s: plain: the tensors between layers too: %llu", what, (ull)st[1].hbm_write);
    uint64_t r0 = fifo_wbytes, r1 = xbytes + wbytes + between;
    CHECK(st[0].hbm_read >= r0 && st[0].hbm_read < r0 + 65536,
          "%s: tpu-v1 reads every weight tile once per m-tile: %llu, want %llu + constants", what,
          (ull)st[0].hbm_read, (ull)r0);
    CHECK(st[1].hbm_read >= r1 && st[1].hbm_read < r1 + 65536,
          "%s: plain reads the weights once, the tensors between layers back: %llu, want %llu + constants", what,
          (ull)st[1].hbm_read, (ull)r1);
    ub_v1 = st[0];
    CHECK(st[0].weight_stall > 0 && st[0].mxu_active + st[0].weight_stall + st[0].weight_shift + st[0].non_matrix ==
          st[0].mxu_cycles, "%s: Table 3 rows", what);
  }
  free(out[0]), free(out[1]);
}

// Three matmuls of 2100 rows (two m-tiles; relu's zero point -128, then 0).
static void unified_buffer_matmul_test(void) {
  ir_graph *g = ir_graph_new("ub");
  enum { ROWS = 2100 };
  int64_t dims[4] = {300, 520, 270, 100};
  ir_type at = ir_type_make(IR_DT_F32, 2, (int64_t[]){ROWS, dims[0]});
  ir_value *v = ir_add_input(g, "a", &at);
  char err[CC_ERR_LEN];
  uint64_t wbytes = 0, between = 0;
  for (int l = 0; l < 3; l++) {
    ir_type wt = ir_type_make(IR_DT_F32, 2, (int64_t[]){dims[l], dims[l + 1]});
    ir_value *in[2] = {v, ir_add_const(g, "w", &wt, rand_array(dims[l] * dims[l + 1]))};
    ir_node *n = ir_add_node(g, IR_OP_MATMUL, "mm", in, 2, 1, NULL);
    n->a.act = l == 0 ? IR_ACT_RELU : IR_ACT_NONE;
    CHECK(ir_infer_node(n, err, sizeof err) == 0, "%s", err);
    v = n->out[0];
    wbytes += (uint64_t)(dims[l] * dims[l + 1]);
    if (l < 2) between += (uint64_t)(ROWS * dims[l + 1]) * 4;
  }
  ir_add_output(g, v);
  float *av = rand_array(ROWS * dims[0]);
  ub_check(g, av, ROWS * 300 * 4, ROWS * 100 * 4, wbytes, 2 * wbytes, between, "matmuls");
  free(av);
  ir_graph_free(g);
}

// A square NHWC convolution layer with random weights and bias appended to g
// after v ([n, hw, hw, cin] -> [n, ohw, ohw, cout]); its weight count in *w.
static ir_value *add_conv_layer(ir_graph *g, ir_value *v, int64_t n, int64_t cin, int64_t cout, int k, int stride,
                                int pad, int64_t ohw, ir_act act, uint64_t *w) {
  ir_type wt = ir_type_make(IR_DT_F32, 4, (int64_t[]){cout, cin, k, k});
  ir_type bt = ir_type_make(IR_DT_F32, 1, (int64_t[]){cout});
  ir_value *in[3] = {v, ir_add_const(g, "w", &wt, rand_array(ir_nelems(&wt))), ir_add_const(g, "b", &bt, rand_array(cout))};
  ir_node *c = ir_add_node(g, IR_OP_CONV, "conv", in, 3, 1, NULL);
  c->a.nhwc = true, c->a.group = 1, c->a.act = act;
  for (int d = 0; d < 2; d++) c->a.kernel[d] = k, c->a.stride[d] = stride, c->a.dilation[d] = 1;
  for (int d = 0; d < 4; d++) c->a.pads[d] = pad;
  c->out[0]->ty = ir_type_make(IR_DT_F32, 4, (int64_t[]){n, ohw, ohw, cout});
  *w = (uint64_t)ir_nelems(&wt);
  return c->out[0];
}

// Convolutions over 30 images of 9x9: 3x3 (relu), 3x3 stride 2, then 1x1
// (its int8 input read in place). 25 images of 81 pixels fill the 2048
// accumulator rows: two m-tiles for the first, one (30 x 25 = 750 rows) for
// the others.
static void unified_buffer_conv_test(void) {
  ir_graph *g = ir_graph_new("ubconv");
  enum { N = 30 };
  int64_t ch[4] = {40, 130, 64, 20}, k[3] = {3, 3, 1}, st[3] = {1, 2, 1}, pd[3] = {1, 1, 0};
  ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){N, 9, 9, 40});
  ir_value *v = ir_add_input(g, "x", &xt);
  uint64_t wbytes[3], between = 0;
  for (int l = 0; l < 3; l++) {
    int64_t oh = l == 0 ? 9 : 5;
    v = add_conv_layer(g, v, N, ch[l], ch[l + 1], (int)k[l], (int)st[l], (int)pd[l], oh,
                       l == 0 ? IR_ACT_RELU : IR_ACT_NONE, &wbytes[l]);
    if (l < 2) between += (uint64_t)(N * oh * oh * ch[l + 1]) * 4;
  }
  ir_add_output(g, v);
  float *xv = rand_array(ir_nelems(&xt));
  uint64_t w = wbytes[0] + wbytes[1] + wbytes[2];
  ub_check(g, xv, (uint64_t)ir_nelems(&xt) * 4, N * 25 * 20 * 4, w, w + wbytes[0], between, "convolutions");
  free(xv);
  ir_graph_free(g);
}

// CNN0's middle layers (scripts/make_tpu_v1_apps.py): 3x3 convolutions of
// 256 channels over 8 boards of 19x19, the second reading the first's int8
// output from the Unified Buffer. The second's m-tiles are bounded by VMEM
// (its im2col rows): a LOAD buffer the size of its int8 input and two im2col
// buffers leave room for four boards, so each weight tile streams twice, not
// four times (with f32-sized LOAD buffers and three im2col buffers). The
// first (32 input channels: two weight tiles, the second of 32 rows padded
// to a whole tile) takes all eight boards.
static void unified_buffer_cnn0_test(void) {
  ir_graph *g = ir_graph_new("cnn0");
  enum { N = 8, HW = 19 };
  int64_t ch[3] = {32, 256, 256};
  ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){N, HW, HW, ch[0]});
  ir_value *v = ir_add_input(g, "x", &xt);
  uint64_t wbytes[2], between = 0;
  for (int l = 0; l < 2; l++) {
    v = add_conv_layer(g, v, N, ch[l], ch[l + 1], 3, 1, 1, HW, IR_ACT_RELU, &wbytes[l]);
    if (l < 1) between += (uint64_t)(N * HW * HW * ch[l + 1]) * 4;
  }
  ir_add_output(g, v);
  float *xv = rand_array(ir_nelems(&xt));
  uint64_t w = wbytes[0] + wbytes[1];
  ub_check(g, xv, (uint64_t)ir_nelems(&xt) * 4, N * HW * HW * 256 * 4, w, 2 * 65536 + 2 * wbytes[1], between,
           "CNN0's convolutions");
  // The second layer's first tiles come into the weight FIFO while the first
  // layer runs, so only the first layer's first tiles are waited for.
  CHECK(ub_v1.weight_stall * 20 < ub_v1.mxu_cycles, "CNN0's convolutions: weight stall %llu of %llu cycles",
        (unsigned long long)ub_v1.weight_stall, (unsigned long long)ub_v1.mxu_cycles);
  free(xv);
  ir_graph_free(g);
}

static ir_value *add_maxpool(ir_graph *g, ir_value *v, int64_t n, int64_t c, int k, int stride, int pad, int64_t ohw) {
  ir_node *p = ir_add_node(g, IR_OP_MAXPOOL, "pool", &v, 1, 1, NULL);
  p->a.nhwc = true;
  for (int d = 0; d < 2; d++) p->a.kernel[d] = k, p->a.stride[d] = stride, p->a.dilation[d] = 1;
  for (int d = 0; d < 4; d++) p->a.pads[d] = pad;
  p->out[0]->ty = ir_type_make(IR_DT_F32, 4, (int64_t[]){n, ohw, ohw, c});
  return p->out[0];
}

// tpu-v1 and the same chip without a Unified Buffer for activations and
// without a weight FIFO; then g quantised on tpu-v1, calibrated on x.
static int v1_pair_quantized(ir_graph *g, const float *x, chip_config *v1, chip_config *plain, const char *what) {
  char err[CC_ERR_LEN];
  if (chip_load(v1, "tpu-v1", err, sizeof err)) {
    CHECK(0, "%s", err);
    return -1;
  }
  *plain = *v1;
  plain->vmem_activations = false, plain->weight_fifo_tiles = 0;
  const void *cal_in[1] = {x};
  cc_calibration cal = {1, cal_in};
  int rc = cc_quantize(g, v1, &cal, err, sizeof err);
  CHECK(rc == 0, "%s: quantise: %s", what, err);
  return rc;
}

// A graph quantised for tpu-v1 compiled and run on it (k = 0) and on the
// plain chip (k = 1, no Unified Buffer, no FIFO): each run's output (NULL if
// it failed), statistics, the DMAs of its concatenation layers and (nlocal
// unless NULL) the local-to-local DMAs of its elementwise layers.
static bool elementwise_layer(const char *op) {
  static const char *const ops[] = {"add", "sub", "mul", "sigmoid", "tanh", "hardswish"};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (!strcmp(op, ops[i])) return true;
  return false;
}

static void v1_and_plain(ir_graph *g, const chip_config *v1, const chip_config *plain, const float *xv,
                         uint64_t xbytes, uint64_t ybytes, const char *what, float *out[2], sim_stats st[2],
                         int ncat[2], int *nlocal) {
  char err[CC_ERR_LEN];
  for (int k = 0; k < 2; k++) {
    const chip_config *c = k ? plain : v1;
    cc_options opt = {.quantize = true};
    cc_executable ex;
    out[k] = NULL, ncat[k] = 0;
    if (nlocal) nlocal[k] = 0;
    if (cc_compile(g, c, &opt, &ex, err, sizeof err)) {
      CHECK(0, "%s: compile (%s): %s", what, k ? "plain" : "tpu-v1", err);
      continue;
    }
    for (size_t l = 0; l < ex.prog.nlayers; l++) // its DMAs (the last layer also waits for everything)
      for (uint64_t pc = ex.prog.layers[l].pc_begin; pc < ex.prog.layers[l].pc_end; pc++) {
        isa_inst in;
        char why[160];
        if (!isa_decode(ex.prog.code[pc], &in, why, sizeof why) || in.op != OP_DMA) continue;
        ncat[k] += !strcmp(ex.prog.layers[l].op, "concat");
        if (nlocal && elementwise_layer(ex.prog.layers[l].op))
          nlocal[k] += in.funct == (SPACE_LOCAL << 2 | SPACE_LOCAL);
      }
    sim_options so = {0};
    sim *s = sim_create(c, &so, err, sizeof err);
    const isa_io *io = ex.prog.io;
    if (s && !sim_load(s, &ex.prog, err, sizeof err) &&
        !sim_write(s, sim_io_mem(&io[0]), io[0].addr, xv, xbytes, err, sizeof err) && !sim_run(s, err, sizeof err)) {
      out[k] = malloc(ybytes);
      sim_read(s, sim_io_mem(&io[1]), io[1].addr, out[k], ybytes, err, sizeof err);
      st[k] = *sim_get_stats(s);
    } else CHECK(0, "%s: run: %s", what, err);
    sim_destroy(s);
    cc_executable_free(&ex);
  }
}

// An Inception module on tpu-v1 (CNN1's, scripts/make_tpu_v1_apps.py): a
// relu'd map read by three convolutions and a padded 3x3 max pool (then a
// 1x1), their outputs concatenated (one without relu: the class is
// symmetric), then a stride-2 max pool and a 1x1. The values joined by the
// pools and the concatenation share one scale (cc_quantize) and are stored
// int8 in the Unified Buffer; the same bits as f32 storage ("plain": every
// product quantises its f32 input itself, with that scale): a max pool and a
// concatenation of int8 with one scale are exact. In f32 the concatenation
// (12.25 MiB) would not fit the arena (12 MiB); in int8 nothing leaves it.
// The branches write their rows into the concatenation (no copy). With
// cat_out the concatenation is the graph's output instead: f32, its pieces
// still written in place (rows of 4-byte elements).
static void unified_buffer_inception_test(bool cat_out) {
  ir_graph *g = ir_graph_new("inception");
  const int64_t N = cat_out ? 8 : 16; // f32, 6.1 MiB: it fits the arena
  enum { HW = 28, C = 64 };
  ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){N, HW, HW, 16});
  ir_value *x = ir_add_input(g, "x", &xt), *br[4];
  uint64_t w;
  ir_value *a = add_conv_layer(g, x, N, 16, C, 3, 1, 1, HW, IR_ACT_RELU, &w);
  br[0] = add_conv_layer(g, add_maxpool(g, a, N, C, 3, 1, 1, HW), N, C, C, 1, 1, 0, HW, IR_ACT_RELU, &w);
  br[1] = add_conv_layer(g, a, N, C, C, 1, 1, 0, HW, IR_ACT_RELU, &w);
  br[2] = add_conv_layer(g, a, N, C, C, 3, 1, 1, HW, IR_ACT_RELU, &w);
  br[3] = add_conv_layer(g, a, N, C, C, 1, 1, 0, HW, IR_ACT_NONE, &w);
  ir_node *cat = ir_add_node(g, IR_OP_CONCAT, "concat", br, 4, 1, NULL);
  cat->a.axis = 3;
  cat->out[0]->ty = ir_type_make(IR_DT_F32, 4, (int64_t[]){N, HW, HW, 4 * C});
  ir_value *y = cat->out[0];
  if (!cat_out) y = add_conv_layer(g, add_maxpool(g, y, N, 4 * C, 3, 2, 1, HW / 2), N, 4 * C, 32, 1, 1, 0, HW / 2,
                                   IR_ACT_NONE, &w);
  ir_add_output(g, y);
  float *xv = rand_array(ir_nelems(&xt));
  uint64_t xbytes = (uint64_t)ir_nelems(&xt) * 4, ybytes = (uint64_t)ir_nelems(&y->ty) * 4;
  chip_config v1, plain;
  if (v1_pair_quantized(g, xv, &v1, &plain, "inception")) {
    free(xv), ir_graph_free(g);
    return;
  }
  // the readers of a and its pool share a's scale (relu'd: zero point -128);
  // the pooled concatenation's reader the concatenation's (symmetric)
  const ir_node *r[6] = {NULL};
  int nr = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_CONV && nr < 6) r[nr++] = g->nodes[i];
  CHECK(nr == 6 - cat_out && r[0]->a.qzp == 0, "inception: %d convolutions, the first reads the input", nr);
  if (nr == 6 - cat_out) {
    for (int i = 2; i < 5; i++)
      CHECK(r[i]->a.qscale == r[1]->a.qscale && r[i]->a.qzp == -128, "inception: branch %d's scale is the map's", i);
    CHECK(cat_out || r[5]->a.qzp == 0, "inception: the concatenation is symmetric (a branch without relu)");
  }
  float *out[2];
  sim_stats st[2];
  int ncat[2]; // the concatenation's copies: none on tpu-v1, its pieces written in place
  v1_and_plain(g, &v1, &plain, xv, xbytes, ybytes, "inception", out, st, ncat, NULL);
  if (out[0] && out[1]) {
    CHECK(!memcmp(out[0], out[1], ybytes), "inception: int8 pools and concatenation change no bits");
    CHECK(st[0].hbm_write == 0, "inception: every tensor stays in the Unified Buffer: %llu bytes written to weight memory",
          (unsigned long long)st[0].hbm_write);
    CHECK(st[1].hbm_write > 0, "inception: plain writes its tensors to HBM");
    CHECK(ncat[0] == 0 && ncat[1] == 4, "inception: the branches write the concatenation in place on tpu-v1 (%d, %d "
          "copies)", ncat[0], ncat[1]);
  }
  free(out[0]), free(out[1]), free(xv);
  ir_graph_free(g);
}

// A DenseNet-style concatenation on tpu-v1: [x1, conv(x1)] where x1 (a
// convolution's output) is also read by that convolution, so only the second
// piece is written in place and the first is copied; then a 3x3 reads the
// concatenation. The same bits as the plain chip, which copies both.
static void unified_buffer_dense_concat_test(void) {
  ir_graph *g = ir_graph_new("dense");
  enum { N = 4, HW = 14 };
  ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){N, HW, HW, 24});
  ir_value *x = ir_add_input(g, "x", &xt), *pc[2];
  uint64_t w;
  pc[0] = add_conv_layer(g, x, N, 24, 40, 3, 1, 1, HW, IR_ACT_RELU, &w);
  pc[1] = add_conv_layer(g, pc[0], N, 40, 24, 1, 1, 0, HW, IR_ACT_RELU, &w);
  ir_node *cat = ir_add_node(g, IR_OP_CONCAT, "concat", pc, 2, 1, NULL);
  cat->a.axis = 3;
  cat->out[0]->ty = ir_type_make(IR_DT_F32, 4, (int64_t[]){N, HW, HW, 64});
  ir_value *y = add_conv_layer(g, cat->out[0], N, 64, 16, 3, 1, 1, HW, IR_ACT_NONE, &w);
  ir_add_output(g, y);
  float *xv = rand_array(ir_nelems(&xt));
  chip_config v1, plain;
  if (v1_pair_quantized(g, xv, &v1, &plain, "dense")) {
    free(xv), ir_graph_free(g);
    return;
  }
  uint64_t ybytes = (uint64_t)ir_nelems(&y->ty) * 4;
  float *out[2];
  sim_stats st[2];
  int ncat[2];
  v1_and_plain(g, &v1, &plain, xv, (uint64_t)ir_nelems(&xt) * 4, ybytes, "dense", out, st, ncat, NULL);
  if (out[0] && out[1]) {
    CHECK(!memcmp(out[0], out[1], ybytes), "dense: a concatenation partly in place changes no bits");
    CHECK(ncat[0] == 1 && ncat[1] == 2, "dense: tpu-v1 copies the piece that is read twice, only it (%d, %d copies)",
          ncat[0], ncat[1]);
  }
  free(out[0]), free(out[1]), free(xv);
  ir_graph_free(g);
}

// A tensor over half of tpu-v1's Unified Buffer: 1x1 convolutions 4 -> 128
// -> 4 over 100 images of 32x32, the middle tensor 12.5 MiB int8. It does not
// fit the arena of half the Unified Buffer, so the compiler plans again with
// the arena taking all the matrix layers' tiles leave (compile.c): it stays
// on chip. The same bits as the plain chip.
static void unified_buffer_grown_test(void) {
  ir_graph *g = ir_graph_new("grown");
  enum { N = 100, HW = 32 };
  ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){N, HW, HW, 4});
  ir_value *x = ir_add_input(g, "x", &xt);
  uint64_t w;
  ir_value *t = add_conv_layer(g, x, N, 4, 128, 1, 1, 0, HW, IR_ACT_RELU, &w);
  ir_value *y = add_conv_layer(g, t, N, 128, 4, 1, 1, 0, HW, IR_ACT_NONE, &w);
  ir_add_output(g, y);
  float *xv = rand_array(ir_nelems(&xt));
  chip_config v1, plain;
  if (v1_pair_quantized(g, xv, &v1, &plain, "grown")) {
    free(xv), ir_graph_free(g);
    return;
  }
  CHECK((uint64_t)ir_nelems(&t->ty) > v1.vmem_bytes / 2, "grown: the tensor exceeds half the Unified Buffer");
  uint64_t xbytes = (uint64_t)ir_nelems(&xt) * 4, ybytes = (uint64_t)ir_nelems(&y->ty) * 4;
  float *out[2];
  sim_stats st[2];
  int ncat[2];
  v1_and_plain(g, &v1, &plain, xv, xbytes, ybytes, "grown", out, st, ncat, NULL);
  if (out[0] && out[1]) {
    CHECK(!memcmp(out[0], out[1], ybytes), "grown: the larger arena changes no bits");
    CHECK(st[0].hbm_write == 0, "grown: the tensor stays in the Unified Buffer: %llu bytes written to weight memory",
          (unsigned long long)st[0].hbm_write);
  }
  free(out[0]), free(out[1]), free(xv);
  ir_graph_free(g);
}

// An LSTM cell's elementwise layers on tpu-v1 (LSTM1's, scripts/
// make_tpu_v1_apps.py): sigmoid and tanh of two gate products, their
// product, a constant row added (broadcast), a hardswish (whose last step
// reads its input again), then a product of that. The vector unit reads its
// operands in the Unified Buffer and writes its results there, as the TPU's
// Activate does: no local-to-local copies, which the plain chip (values in
// HBM) has none of either. The same bits as the plain chip. With fused the
// gates' sigmoid and tanh are their products' epilogues (ir_attrs.act, as
// cc_optimize fuses them for tpu-v1): the v1 output (returned) is the same.
// With small, 384 rows in a Unified Buffer of 2 MiB, whose arena holds one
// of the cell's tensors (900 KiB): the others are in HBM, and a layer reads
// and writes the arena's in place and streams the others.
static float *cell_run(bool fused, bool small) {
  test_seed(11);
  ir_graph *g = ir_graph_new("cell");
  enum { K = 120, H = 600 };
  const int64_t B = small ? 384 : 96;
  ir_type xt = ir_type_make(IR_DT_F32, 2, (int64_t[]){B, K});
  ir_value *x = ir_add_input(g, "x", &xt), *gate[2];
  char err[CC_ERR_LEN];
  for (int i = 0; i < 2; i++) {
    ir_type wt = ir_type_make(IR_DT_F32, 2, (int64_t[]){K, H});
    ir_value *in[2] = {x, ir_add_const(g, "w", &wt, rand_array(K * H))};
    ir_node *mm = ir_add_node(g, IR_OP_MATMUL, "mm", in, 2, 1, NULL);
    CHECK(ir_infer_node(mm, err, sizeof err) == 0, "%s", err);
    gate[i] = mm->out[0];
    if (fused) {
      mm->a.act = i ? IR_ACT_TANH : IR_ACT_SIGMOID;
      continue;
    }
    ir_node *act = ir_add_node(g, i ? IR_OP_TANH : IR_OP_SIGMOID, i ? "tanh" : "sigmoid", mm->out, 1, 1, NULL);
    CHECK(ir_infer_node(act, err, sizeof err) == 0, "%s", err);
    gate[i] = act->out[0];
  }
  ir_node *p = ir_add_node(g, IR_OP_MUL, "mul", gate, 2, 1, NULL);
  ir_type rt = ir_type_make(IR_DT_F32, 1, (int64_t[]){H});
  ir_value *ain[2] = {p->out[0], ir_add_const(g, "row", &rt, rand_array(H))};
  ir_node *a = ir_add_node(g, IR_OP_ADD, "add", ain, 2, 1, NULL);
  ir_node *hs = ir_add_node(g, IR_OP_HARDSWISH, "hardswish", a->out, 1, 1, NULL);
  ir_type wt = ir_type_make(IR_DT_F32, 2, (int64_t[]){H, 40});
  ir_value *yin[2] = {hs->out[0], ir_add_const(g, "w", &wt, rand_array(H * 40))};
  ir_node *y = ir_add_node(g, IR_OP_MATMUL, "mm", yin, 2, 1, NULL);
  ir_node *all[4] = {p, a, hs, y};
  for (int i = 0; i < 4; i++) CHECK(ir_infer_node(all[i], err, sizeof err) == 0, "%s", err);
  ir_add_output(g, y->out[0]);
  const char *what = small ? "cell, 2 MiB" : fused ? "cell, fused gates" : "cell";
  float *xv = rand_array(B * K);
  chip_config v1, plain;
  if (v1_pair_quantized(g, xv, &v1, &plain, what)) {
    free(xv), ir_graph_free(g);
    return NULL;
  }
  if (small) v1.vmem_bytes = plain.vmem_bytes = 2 << 20;
  uint64_t ybytes = (uint64_t)B * 40 * 4;
  float *out[2];
  sim_stats st[2];
  int ncat[2], nlocal[2];
  v1_and_plain(g, &v1, &plain, xv, (uint64_t)B * K * 4, ybytes, what, out, st, ncat, nlocal);
  if (out[0] && out[1]) {
    CHECK(!memcmp(out[0], out[1], ybytes), "%s: elementwise layers in the Unified Buffer change no bits", what);
    CHECK(small || (nlocal[0] == 0 && nlocal[1] == 0), "%s: the elementwise layers copy nothing within the chip "
          "(%d, %d local-to-local DMAs)", what, nlocal[0], nlocal[1]);
    CHECK(small == (st[0].hbm_write > 0), "%s: %llu bytes written to weight memory", what,
          (unsigned long long)st[0].hbm_write);
  }
  free(out[1]), free(xv);
  ir_graph_free(g);
  return out[0];
}

static void unified_buffer_elementwise_test(void) {
  float *y = cell_run(false, false), *yf = cell_run(true, false), *ys = cell_run(false, true); // ys: its own checks
  CHECK(y && yf && !memcmp(y, yf, 96 * 40 * 4), "cell: sigmoid and tanh in the products' epilogues change no bits");
  free(y), free(yf), free(ys);
}

// The number of windowed passes (mxu.mm ..., win) in a program.
static int window_passes(const isa_program *p) {
  int n = 0;
  for (size_t i = 0; i < p->ncode; i++) {
    isa_inst in;
    char why[160];
    if (isa_decode(p->code[i], &in, why, sizeof why) && in.op == OP_MXU_MM && (in.flags & MXU_FLAG_WIN)) n++;
  }
  return n;
}

// A convolution from cin planes (kernel rows of k * cin: partial k-tiles
// unless a multiple of 256) on tpu-v1, with its weight FIFO and windowed
// passes, against the same chip without them (im2col), bit for bit: int8
// (quantised, windows whatever the k-tiles: integer sums are exact in any
// grouping) and with a bf16 MXU, as the calibration run multiplies (windows
// only over whole k-tiles, whose grouping is im2col's: other groups round
// otherwise, and calibration would give other scales).
static void window_vs_im2col_test(int cin, int k, int n, int hw, bool int8) {
  char what[120];
  snprintf(what, sizeof what, "%s %dx%d convolution of %d planes, %d images of %dx%d", int8 ? "int8" : "bf16", k, k,
           cin, n, hw, hw);
  ir_graph *g = ir_graph_new("win");
  ir_type xt = ir_type_make(IR_DT_F32, 4, (int64_t[]){n, hw, hw, cin});
  ir_value *v = ir_add_input(g, "x", &xt);
  uint64_t wb;
  v = add_conv_layer(g, v, n, cin, 256, k, 1, k / 2, hw, IR_ACT_RELU, &wb);
  ir_add_output(g, v);
  float *xv = rand_array(ir_nelems(&xt));
  for (int64_t i = 0; i < ir_nelems(&xt); i++) xv[i] = xv[i] * xv[i] + 0.25f; // an input zero point other than 0
  uint64_t xbytes = (uint64_t)ir_nelems(&xt) * 4, ybytes = (uint64_t)(n * hw * hw * 256) * 4;
  char err[CC_ERR_LEN];
  chip_config v1, plain;
  CHECK(chip_load(&v1, "tpu-v1", err, sizeof err) == 0, "%s", err);
  if (!int8) v1.mxu_bf16 = true;
  plain = v1;
  plain.vmem_activations = false, plain.weight_fifo_tiles = 0;
  const void *cal_in[1] = {xv};
  cc_calibration cal = {1, cal_in};
  CHECK(!int8 || cc_quantize(g, &v1, &cal, err, sizeof err) == 0, "%s: quantise: %s", what, err);
  float *out[2] = {NULL, NULL};
  int wins[2] = {0, 0};
  for (int c = 0; c < 2; c++) {
    cc_options opt = {.quantize = int8, .precision = CC_PRECISION_DEFAULT};
    cc_executable ex;
    if (cc_compile(g, c ? &plain : &v1, &opt, &ex, err, sizeof err)) {
      CHECK(0, "%s: compile: %s", what, err);
      continue;
    }
    wins[c] = window_passes(&ex.prog);
    sim_options so = {0};
    sim *s = sim_create(c ? &plain : &v1, &so, err, sizeof err);
    const isa_io *io = ex.prog.io;
    if (s && !sim_load(s, &ex.prog, err, sizeof err) &&
        !sim_write(s, sim_io_mem(&io[0]), io[0].addr, xv, xbytes, err, sizeof err) && !sim_run(s, err, sizeof err)) {
      out[c] = malloc(ybytes);
      sim_read(s, sim_io_mem(&io[1]), io[1].addr, out[c], ybytes, err, sizeof err);
    } else CHECK(0, "%s: run: %s", what, err);
    sim_destroy(s);
    cc_executable_free(&ex);
  }
  bool whole = (k * cin) % 256 == 0;
  CHECK(wins[1] == 0 && (wins[0] > 0) == (int8 || whole), "%s: %d windowed passes with the FIFO, %d without", what,
        wins[0], wins[1]);
  if (out[0] && out[1]) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < (int64_t)(ybytes / 4); i++)
      if (memcmp(&out[0][i], &out[1][i], 4) && bad++ == 0) first = i;
    CHECK(!bad, "%s: %lld of %lld outputs differ from im2col's, the first %lld: %.9g against %.9g", what,
          (long long)bad, (long long)(ybytes / 4), (long long)first, first >= 0 ? out[0][first] : 0.0,
          first >= 0 ? out[1][first] : 0.0);
  }
  free(out[0]), free(out[1]), free(xv);
  ir_graph_free(g);
}

int main(void) {
  test_seed(7);
  conv_case cases[] = {
      // chip prec N H W C M K S P D G act res bias
      {"tpu-v4", 0, 1, 5, 7, 3, 4, 3, 2, 1, 1, 1, IR_ACT_RELU, true, true, false},
      {"tiny", 0, 1, 5, 7, 3, 4, 3, 2, 1, 1, 1, IR_ACT_RELU, true, true, false},
      {"tiny", 1, 1, 5, 7, 3, 4, 3, 2, 1, 1, 1, IR_ACT_CLIP, false, true, false},
      {"tpu-v4", 1, 2, 9, 9, 16, 20, 3, 1, 2, 2, 1, IR_ACT_NONE, true, false, false},
      {"tiny", 0, 2, 9, 9, 16, 20, 3, 1, 2, 2, 1, IR_ACT_NONE, true, true, false},
      {"tpu-v4", 0, 1, 8, 8, 32, 32, 3, 1, 1, 1, 32, IR_ACT_RELU, false, true, false},  // depthwise
      {"tiny", 0, 1, 8, 8, 32, 64, 3, 2, 1, 1, 32, IR_ACT_CLIP, false, true, false},    // depthwise x2
      {"tpu-v4", 0, 1, 6, 6, 24, 12, 1, 1, 0, 1, 4, IR_ACT_NONE, false, true, false},   // grouped 1x1
      {"tiny", 1, 1, 6, 6, 24, 12, 3, 1, 1, 1, 3, IR_ACT_RELU, true, true, false},      // grouped 3x3
      {"tpu-v4", 0, 1, 28, 28, 64, 64, 3, 1, 1, 1, 1, IR_ACT_RELU, true, true, false},
      {"tpu-v4", 0, 1, 7, 7, 256, 300, 3, 1, 1, 1, 1, IR_ACT_RELU, false, true, false}, // n-tiles across MXUs
      {"tpu-v4", 0, 1, 28, 28, 64, 256, 1, 1, 0, 1, 1, IR_ACT_NONE, true, true, false}, // flat 1x1
      {"tpu-v4", 0, 1, 13, 13, 16, 8, 1, 2, 0, 1, 1, IR_ACT_NONE, false, true, false},  // strided 1x1
      {"tpu-v4", 0, 1, 20, 20, 3, 8, 7, 2, 3, 1, 1, IR_ACT_RELU, false, true, false},   // a stem
      {"tiny", 0, 1, 8, 40, 5, 3, 3, 1, 0, 3, 1, IR_ACT_NONE, false, false, false},     // dilation 3
      {"tpu-v4", 0, 1, 9, 9, 144, 144, 3, 1, 1, 1, 144, IR_ACT_CLIP, true, true, false}, // depthwise, 144 channels
      {"tiny", 1, 2, 7, 7, 20, 20, 3, 2, 1, 1, 20, IR_ACT_RELU, false, true, false},   // depthwise, highest
      {"tpu-v4", 1, 1, 6, 6, 144, 144, 3, 1, 1, 1, 72, IR_ACT_NONE, false, true, false}, // 2 channels per group
      {"tpu-v4", 0, 1, 6, 6, 130, 260, 3, 2, 1, 1, 130, IR_ACT_RELU, false, true, false}, // last block smaller
      {"tpu-v4", 0, 1, 9, 9, 20, 24, 3, 2, 1, 1, 1, IR_ACT_RELU, true, true, true},  // weights at run time
      {"tiny", 1, 2, 6, 6, 12, 10, 3, 1, 1, 2, 1, IR_ACT_NONE, false, false, true}, // ... highest, tiny
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) conv_test(cases[i]);
  matmul_test("tpu-v4", 0, 2, (int64_t[]){5, 300}, 2, (int64_t[]){300, 7}, true, true);
  matmul_test("tiny", 1, 3, (int64_t[]){2, 3, 20}, 2, (int64_t[]){20, 9}, true, false);
  matmul_test("tpu-v4", 1, 2, (int64_t[]){33, 200}, 2, (int64_t[]){200, 130}, false, true);
  matmul_test("tiny", 0, 4, (int64_t[]){2, 1, 3, 10}, 3, (int64_t[]){3, 10, 4}, false, false);
  matmul_test("tpu-v4", 0, 3, (int64_t[]){2, 4, 6}, 3, (int64_t[]){1, 6, 5}, true, false);
  // weights beyond half of tiny's VMEM: streamed tile by tile
  matmul_test("tiny", 0, 2, (int64_t[]){3, 784}, 2, (int64_t[]){784, 64}, true, true);
  matmul_test("tiny", 1, 2, (int64_t[]){2, 300}, 2, (int64_t[]){300, 20}, true, false);
  chain_test("tpu-v4");
  chain_test("tiny");
  attention_fusion_test("tpu-v4", 0, 2, 50, 32, true);
  attention_fusion_test("tpu-v4", 1, 3, 128, 16, false);
  attention_fusion_test("tpu-v4", 0, 1, 300, 24, false); // rows of 300: over HBM
  attention_fusion_test("tiny", 0, 2, 6, 5, true);
  attention_fusion_test("tiny", 1, 2, 20, 12, true);     // rows of 20 > 8 columns: over HBM
  // CNN0's 5x5 stem of 48 planes (kernel rows of 240: a partial k-tile), a
  // 3x3 of 32 (96) and one of 256 (three whole k-tiles), 8 boards and 1.
  for (int int8 = 0; int8 < 2; int8++) {
    window_vs_im2col_test(48, 5, 8, 19, int8);
    window_vs_im2col_test(48, 5, 1, 19, int8);
    window_vs_im2col_test(32, 3, 2, 9, int8);
    window_vs_im2col_test(256, 3, 1, 19, int8);
  }
  unified_buffer_matmul_test();
  unified_buffer_conv_test();
  unified_buffer_cnn0_test();
  unified_buffer_inception_test(false);
  unified_buffer_inception_test(true);
  unified_buffer_dense_concat_test();
  unified_buffer_grown_test();
  unified_buffer_elementwise_test();
  deferred_dma_test();
  error_tests();
  return test_done("test_lower_mxu");
}
