// SCALE-Sim's reports reproduced: every COMPUTE_REPORT.csv that SCALE-Sim v2
// shipped for ResNet-50 (ws, os, is) and the GPT-2 and NCF GEMMs (ws, os),
// rebuilt from its configuration and topology files by Systole's MXU model
// under SCALE-Sim's assumptions, must be identical line for line: cycles and
// the utilisation figures to the last digit Python prints. Then the pieces:
// Python's float repr, exact integer division, the parsers' errors, and the
// closed form of every dataflow against the MXU model on random layers.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalesim/scalesim.h"
#include "testlib.h"

#define DATA "tests/data/scalesim/"

// Runs a topology on a config and compares the report with SCALE-Sim's.
static void reproduce(const char *cfg, const char *topo, bool gemm, const char *ref) {
  char err[SCALESIM_ERR_LEN];
  scalesim_config c;
  scalesim_topology t;
  char path[256];
  snprintf(path, sizeof path, DATA "%s", cfg);
  CHECK(scalesim_load_config(&c, path, err, sizeof err) == 0, "%s: %s", cfg, err);
  snprintf(path, sizeof path, DATA "%s", topo);
  if (scalesim_load_topology(&t, path, gemm, err, sizeof err)) {
    CHECK(0, "%s: %s", topo, err);
    return;
  }
  scalesim_result *r = calloc((size_t)t.n, sizeof *r);
  for (int i = 0; i < t.n; i++) CHECK(scalesim_run_layer(&c, &t.layers[i], &r[i], err, sizeof err) == 0, "%s", err);
  char *got = NULL;
  size_t gotlen = 0;
  FILE *f = open_memstream(&got, &gotlen);
  scalesim_write_compute_report(f, r, t.n);
  fclose(f);
  snprintf(path, sizeof path, DATA "%s", ref);
  size_t wantlen;
  char *want = test_read_file(path, &wantlen);
  CHECK(want != NULL, "cannot read %s", path);
  // Line by line, so a difference names its layer.
  int lines = 0, diffs = 0;
  for (const char *g = got, *w = want ? want : ""; *g || *w; lines++) {
    size_t gn = strcspn(g, "\n"), wn = strcspn(w, "\n");
    if (gn != wn || memcmp(g, w, gn)) {
      if (diffs++ < 3) CHECK(0, "%s line %d:\n  got:  %.*s\n  want: %.*s", ref, lines + 1, (int)gn, g, (int)wn, w);
    }
    g += gn + (g[gn] == '\n'), w += wn + (w[wn] == '\n');
  }
  CHECK(diffs == 0, "%s: %d of %d lines differ", ref, diffs, lines);
  CHECK(lines == t.n + 1, "%s: %d lines for %d layers", ref, lines, t.n);
  printf("test_scalesim: %-32s %2d layers, %d lines identical\n", ref, t.n, lines - diffs);
  free(want);
  free(got);
  free(r);
  scalesim_topology_free(&t);
}

static void repr_cases(void) {
  static const struct { double v; const char *want; } cases[] = {
    {100.0, "100.0"}, {25.0, "25.0"}, {0.05593623269472801, "0.05593623269472801"}, {1e-05, "1e-05"},
    {0.0001, "0.0001"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {1.5e-7, "1.5e-07"},
    {13.501840021375825, "13.501840021375825"}, {0.1, "0.1"}, {0.0, "0.0"}, {-2.5, "-2.5"},
    {123456789012345678.0, "1.2345678901234568e+17"}, {0.5, "0.5"}, {3.0e300, "3e+300"},
    {0.09555406066536201, "0.09555406066536201"}, {1.0 / 3, "0.3333333333333333"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[64];
    scalesim_float_repr(cases[i].v, buf, sizeof buf);
    CHECK(!strcmp(buf, cases[i].want), "repr(%.17g) = %s, want %s", cases[i].v, buf, cases[i].want);
  }
}

// scalesim_ratio against double division where that is exact (operands
// below 2^53), and ties rounded to even beyond.
static void ratio_cases(void) {
  test_seed(7);
  for (int i = 0; i < 20000; i++) {
    uint64_t a = test_rand() >> (11 + test_rand() % 40), b = 1 + (test_rand() >> (11 + test_rand() % 40));
    double want = (double)a / (double)b, got = scalesim_ratio(a, 1, b, 1);
    CHECK(got == want, "%llu / %llu: %.17g want %.17g", (unsigned long long)a, (unsigned long long)b, got, want);
  }
  // 2^53 + 1 is halfway between two doubles: ties go to the even one.
  CHECK(scalesim_ratio((1ull << 53) + 1, 1, 1, 1) == 9007199254740992.0, "tie to even below");
  CHECK(scalesim_ratio((1ull << 53) + 3, 1, 1, 1) == 9007199254740996.0, "tie to even above");
  CHECK(scalesim_ratio((1ull << 62) + 1, 4, 4, 1) == 4611686018427387904.0, "a product beyond 64 bits");
}

static void expect_cfg_error(const char *text, const char *want) {
  scalesim_config c;
  char err[SCALESIM_ERR_LEN] = "";
  int rc = scalesim_parse_config(&c, text, "x.cfg", err, sizeof err);
  CHECK(rc == -1 && !strcmp(err, want), "rc %d\n  got:  %s\n  want: %s", rc, err, want);
}

static void expect_topo_error(const char *text, bool gemm, const char *want) {
  scalesim_topology t;
  char err[SCALESIM_ERR_LEN] = "";
  int rc = scalesim_parse_topology(&t, text, "t.csv", gemm, err, sizeof err);
  CHECK(rc == -1 && !strcmp(err, want), "rc %d\n  got:  %s\n  want: %s", rc, err, want);
  if (!rc) scalesim_topology_free(&t);
}

static void parse_cases(void) {
  scalesim_config c;
  char err[SCALESIM_ERR_LEN];
  // configparser's freedoms: either separator, any case, blanks, unknown keys.
  const char *ok = "[general]\nrun_name = r1\n[architecture_presets]\narrayheight= 8\nArrayWidth :16 \n"
                   "Dataflow : OS\nFooBar: 3\n[sparsity]\nx = y\n[run_presets]\nInterfaceBandwidth: USER\n";
  CHECK(scalesim_parse_config(&c, ok, "x.cfg", err, sizeof err) == 0, "%s", err);
  CHECK(c.rows == 8 && c.cols == 16 && c.dataflow == MXU_OS && c.user_bandwidth && !strcmp(c.run_name, "r1"),
        "parsed %dx%d df %d user %d %s", c.rows, c.cols, c.dataflow, c.user_bandwidth, c.run_name);
  expect_cfg_error("[architecture_presets]\nArrayHeight: 8\nDataflow: ws\n",
                   "x.cfg: [architecture_presets] ArrayWidth: missing");
  expect_cfg_error("[architecture_presets]\nArrayHeight: 8x\n",
                   "x.cfg:2: [architecture_presets] ArrayHeight: bad number '8x' (expected a whole number)");
  expect_cfg_error("[architecture_presets]\nArrayHeight: 0\n",
                   "x.cfg:2: [architecture_presets] ArrayHeight: 0: must be between 1 and 16384");
  expect_cfg_error("[architecture_presets]\nDataflow: rs\n",
                   "x.cfg:2: [architecture_presets] Dataflow: expected ws, os or is, got 'rs'");
  expect_cfg_error("[architecture_presets\n", "x.cfg:1: unclosed section header '[architecture_presets'");
  expect_cfg_error("[run_presets]\nInterfaceBandwidth: FAST\n",
                   "x.cfg:2: [run_presets] InterfaceBandwidth: expected CALC or USER, got 'FAST'");
  expect_cfg_error("[general]\njust words\n", "x.cfg:2: expected 'key: value' or 'key = value', got 'just words'");

  // Topologies: a header, blank lines, the trailing comma or not, depthwise.
  scalesim_topology t;
  const char *conv = "Layer name, H, W, R, S, C, N, Strides,\n\nc1, 9, 9, 3, 3, 2, 4, 2,\n"
                     "c2, 9, 7, 3, 1, 2, 4, 2, 1\nDP1, 5, 5, 3, 3, 3, 1, 1,\n";
  CHECK(scalesim_parse_topology(&t, conv, "t.csv", false, err, sizeof err) == 0, "%s", err);
  CHECK(t.n == 5, "layers %d (a depthwise layer per channel)", t.n);
  if (t.n == 5) {
    CHECK(t.layers[1].stride_h == 2 && t.layers[1].stride_w == 1, "separate strides");
    CHECK(!strcmp(t.layers[4].name, "DP1Channel_2") && t.layers[4].channels == 1, "depthwise %s", t.layers[4].name);
    scalesim_config cc = {.rows = 4, .cols = 4, .dataflow = MXU_WS};
    scalesim_result r;
    CHECK(scalesim_run_layer(&cc, &t.layers[0], &r, err, sizeof err) == 0, "%s", err);
    CHECK(r.m == 16 && r.k == 18 && r.n == 4, "c1: M %lld K %lld", (long long)r.m, (long long)r.k); // ceil(8/2)=4
  }
  scalesim_topology_free(&t);
  const char *gemm = "Layer,M,N,K,\nL0,100,20,30,\nL1,1,2,3";
  CHECK(scalesim_parse_topology(&t, gemm, "t.csv", true, err, sizeof err) == 0, "%s", err);
  CHECK(t.n == 2 && t.layers[1].ifmap_h == 1 && t.layers[1].filters == 2 && t.layers[1].filt_w == 3, "gemm rows");
  scalesim_topology_free(&t);
  expect_topo_error("h\nL0,1,2,\n", true, "t.csv:2: expected 4 columns (Layer, M, N, K), got 3");
  expect_topo_error("h\nL0,1,x,3,\n", true, "t.csv:2: L0: N: bad number 'x'");
  expect_topo_error("h\nL0,1,0,3,\n", true, "t.csv:2: L0: N: 0: must be between 1 and 100000000");
  expect_topo_error("h\nc, 3, 3, 5, 1, 1, 1, 1,\n", false,
                    "t.csv:2: c: the filter (5x1) is larger than the input (3x3)");
  expect_topo_error("h\n\n", false, "t.csv: no layers (the first line is the header)");
  expect_topo_error("h\nc, 3, 3, 1, 1, 1, 1,\n", false,
                    "t.csv:2: expected 8 columns (Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                    "Channels, Num Filter, Strides) or 9 (a width stride), got 7");
}

// The closed form of docs/validation.md on random layers and arrays, every
// dataflow: SCALE-Sim's count, and preloading never slower.
static void random_layers(void) {
  test_seed(11);
  char err[SCALESIM_ERR_LEN];
  for (int i = 0; i < 3000; i++) {
    scalesim_config c = {.rows = 1 + (int)(test_rand() % 40), .cols = 1 + (int)(test_rand() % 40),
                         .dataflow = (mxu_dataflow)(i % 3)};
    scalesim_layer l = {.ifmap_h = 1 + (int64_t)(test_rand() % 300), .ifmap_w = 1, .filt_h = 1, .filt_w = 1,
                        .channels = 1 + (int64_t)(test_rand() % 200), .filters = 1 + (int64_t)(test_rand() % 200),
                        .stride_h = 1, .stride_w = 1};
    scalesim_result r;
    if (scalesim_run_layer(&c, &l, &r, err, sizeof err)) {
      CHECK(0, "%s", err);
      continue;
    }
    uint64_t folds = (uint64_t)((r.sr + c.rows - 1) / c.rows * ((r.sc + c.cols - 1) / c.cols));
    uint64_t per = c.dataflow == MXU_OS ? (uint64_t)(r.t + c.rows + c.cols - 2)
                                        : (uint64_t)(2 * c.rows + c.cols + r.t - 2);
    CHECK(r.total_cycles == folds * per - 1, "layer %d: %llu want %llu", i, (unsigned long long)r.total_cycles,
          (unsigned long long)(folds * per - 1));
    CHECK(r.preloaded_cycles <= r.total_cycles + 1, "layer %d: preloading slower", i);
    CHECK(r.mapping_eff > 0 && r.mapping_eff <= 100 && r.compute_util <= r.mapping_eff, "layer %d: utilisation", i);
  }
}

int main(void) {
  repr_cases();
  ratio_cases();
  parse_cases();
  random_layers();
  reproduce("google.cfg", "Resnet50.csv", false, "resnet50_ws__COMPUTE_REPORT.csv");
  reproduce("google_os.cfg", "Resnet50.csv", false, "resnet50_os__COMPUTE_REPORT.csv");
  reproduce("google_is.cfg", "Resnet50.csv", false, "resnet50_is__COMPUTE_REPORT.csv");
  reproduce("google.cfg", "gpt2_gemm.csv", true, "gpt2_ws__COMPUTE_REPORT.csv");
  reproduce("google_os.cfg", "gpt2_gemm.csv", true, "gpt2_os__COMPUTE_REPORT.csv");
  reproduce("google.cfg", "NCF_gemm.csv", true, "ncf_ws__COMPUTE_REPORT.csv");
  reproduce("google_os.cfg", "NCF_gemm.csv", true, "ncf_os__COMPUTE_REPORT.csv");
  return test_done("test_scalesim");
}
