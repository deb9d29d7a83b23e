// Runs an example program of examples/asm on a simulated chip with random
// inputs and checks every output bit against a plain C computation of the
// same thing (and, loosely, against float64 arithmetic), then prints the
// simulator's statistics. Used by `make demo` and by the tests.
//
//   asm_check matmul --chip tpu-v4 [--size M,K,N] [--json FILE] [--trace FILE]
//   asm_check fc     --chip tiny   [--size BATCH,K,N]
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isa/isa.h"
#include "sim/chip.h"
#include "sim/sim.h"

// ---------------------------------------------------------------- the chip's arithmetic, written out plainly
// (docs/numerics.md): deliberately not calling src/sim/numerics.c, so that
// the check is independent of the code it checks.

static float f32_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bf16_value(uint16_t b) { return f32_of((uint32_t)b << 16); }
static uint16_t bf16_round(float f) {
  uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}
static float flush(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }
static float mxu_fma(float a, float b, float c) { return flush(fmaf(flush(a), flush(b), flush(c))); }
static float mxu_add(float a, float b) { return flush(flush(a) + flush(b)); }

// One pass's contribution to output (i, j): a (row of A) against b (column
// of B, here a row of B transposed), k = R deep, in slices of 32 with
// interleaved even and odd partial sums.
static float pass_value(const uint16_t *a, const uint16_t *b, int k) {
  float run = 0.0f;
  for (int s0 = 0; s0 < k; s0 += 32) {
    float even = 0.0f, odd = 0.0f;
    for (int kk = s0; kk < s0 + 32 && kk < k; kk += 2) {
      even = mxu_fma(bf16_value(a[kk]), bf16_value(b[kk]), even);
      if (kk + 1 < k) odd = mxu_fma(bf16_value(a[kk + 1]), bf16_value(b[kk + 1]), odd);
    }
    run = mxu_add(run, mxu_add(even, odd));
  }
  return run;
}

// C[i][j] over K in blocks of R: the first block overwrites the accumulator,
// later ones are added to it. Bt is B transposed (N x K).
static float matmul_value(const uint16_t *A, const uint16_t *Bt, int K, int R, int i, int j) {
  float acc = 0.0f;
  for (int kt = 0; kt < K / R; kt++) {
    float p = pass_value(A + (size_t)i * K + (size_t)kt * R, Bt + (size_t)j * K + (size_t)kt * R, R);
    acc = kt ? mxu_add(acc, p) : p;
  }
  return acc;
}

static double exact_dot(const uint16_t *A, const uint16_t *Bt, int K, int i, int j) {
  double s = 0;
  for (int k = 0; k < K; k++) s += (double)bf16_value(A[(size_t)i * K + k]) * bf16_value(Bt[(size_t)j * K + k]);
  return s;
}

static uint16_t *transpose(const uint16_t *B, int K, int N) {
  uint16_t *t = malloc((size_t)K * N * 2);
  if (t)
    for (int k = 0; k < K; k++)
      for (int j = 0; j < N; j++) t[(size_t)j * K + k] = B[(size_t)k * N + j];
  return t;
}

static uint64_t rng = 0x853c49e6748fea9bull;
static uint16_t random_bf16(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  double u = (double)(rng >> 11) / 9007199254740992.0; // [0, 1)
  return bf16_round((float)(u * 2.0 - 1.0));
}

// ---------------------------------------------------------------- the run

typedef struct {
  const char *example, *chip, *json, *trace;
  int d0, d1, d2; // M,K,N or BATCH,K,N
} options;

static int fail(const char *msg, const char *detail) {
  fprintf(stderr, "asm_check: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
  return 1;
}

static sim *assemble_and_load(const options *o, const chip_config *c, const char *const *defs, char *err, size_t len) {
  char path[600];
  snprintf(path, sizeof path, "%s/examples/asm/%s.s", SYSTOLE_SOURCE_DIR,
           strcmp(o->example, "fc") ? o->example : "fc_relu");
  isa_program p = {0};
  if (isa_assemble_file(path, defs, &p, err, len)) return NULL;
  sim_options so = {.trace = o->trace != NULL};
  sim *s = sim_create(c, &so, err, len);
  if (s && sim_load(s, &p, err, len)) sim_destroy(s), s = NULL;
  isa_program_free(&p);
  return s;
}

static int finish(sim *s, const options *o, char *err, size_t len) {
  if (o->json && sim_write_json(s, o->json, err, len)) return -1;
  if (o->trace && sim_write_trace(s, o->trace, err, len)) return -1;
  return 0;
}

static int run_matmul(const options *o, const chip_config *c) {
  int M = o->d0, K = o->d1, N = o->d2, R = c->mxu_rows, X = c->mxu_count;
  if (c->mxu_rows != c->mxu_cols) return fail("the example needs a square MXU", c->name);
  if (K % R || N % R || K < 2 * R || N < 2 * R || M % (X * 8))
    return fail("sizes must have K, N multiples of the MXU size (at least two tiles) and M a multiple of 8 x MXUs", NULL);
  char defs[5][64];
  snprintf(defs[0], 64, "M=%d", M), snprintf(defs[1], 64, "K=%d", K), snprintf(defs[2], 64, "N=%d", N);
  snprintf(defs[3], 64, "R=%d", R), snprintf(defs[4], 64, "NMXU=%d", X);
  const char *dl[] = {defs[0], defs[1], defs[2], defs[3], defs[4], NULL};
  char err[SIM_ERR_LEN];
  sim *s = assemble_and_load(o, c, dl, err, sizeof err);
  if (!s) return fail(err, NULL);
  size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
  uint16_t *A = malloc(na * 2), *B = malloc(nb * 2), *C = malloc(nc * 2);
  if (!A || !B || !C) return fail("out of memory", NULL);
  for (size_t i = 0; i < na; i++) A[i] = random_bf16();
  for (size_t i = 0; i < nb; i++) B[i] = random_bf16();
  uint64_t ha = 0, hb = na * 2, hc = hb + nb * 2;
  int rc = 0;
  if (sim_write(s, MEM_HBM, ha, A, na * 2, err, sizeof err) || sim_write(s, MEM_HBM, hb, B, nb * 2, err, sizeof err) ||
      sim_run(s, err, sizeof err) || sim_read(s, MEM_HBM, hc, C, nc * 2, err, sizeof err)) {
    rc = fail(err, NULL);
    goto out;
  }
  size_t wrong = 0, loose = 0;
  uint16_t *Bt = transpose(B, K, N);
  if (!Bt) {
    rc = fail("out of memory", NULL);
    goto out;
  }
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      uint16_t want = bf16_round(matmul_value(A, Bt, K, R, i, j)), got = C[(size_t)i * N + j];
      if (got != want && wrong++ < 5)
        fprintf(stderr, "  C[%d][%d] = 0x%04x, the plain C computation gives 0x%04x\n", i, j, got, want);
      double ex = exact_dot(A, Bt, K, i, j);
      if (fabs(bf16_value(got) - ex) > 1e-2 * fabs(ex) + 1e-3 * sqrt((double)K)) loose++;
    }
  free(Bt);
  const sim_stats *st = sim_get_stats(s);
  double macs_per_cycle = (double)X * R * R;
  double ideal = (double)M * K * N / macs_per_cycle + 2.0 * R - 2;
  printf("matmul %dx%dx%d bf16 on %s: %s: %zu of %zu outputs differ from the plain C computation; "
         "%zu outside 1%% of float64\n",
         M, K, N, c->name, wrong || loose ? "FAILED" : "ok", wrong, nc, loose);
  sim_print_stats(s, stdout);
  printf("\n  ideal             %.0f cycles (MACs / %.0f per cycle + one fill and drain of %d)\n", ideal,
         macs_per_cycle, 2 * R - 2);
  printf("  simulated         %" PRIu64 " cycles: %.2f%% above ideal, MXU utilisation %.1f%%\n", st->cycles,
         100.0 * ((double)st->cycles / ideal - 1), 100 * st->mxu_utilization);
  if (wrong || loose) rc = 1;
  else if (finish(s, o, err, sizeof err)) rc = fail(err, NULL);
out:
  free(A), free(B), free(C);
  sim_destroy(s);
  return rc;
}

static int run_fc(const options *o, const chip_config *c) {
  int Bt = o->d0, K = o->d1, N = o->d2, R = c->mxu_rows;
  if (K % R || N % R) return fail("K and N must be multiples of the MXU size", NULL);
  char defs[4][64];
  snprintf(defs[0], 64, "BATCH=%d", Bt), snprintf(defs[1], 64, "K=%d", K), snprintf(defs[2], 64, "N=%d", N);
  snprintf(defs[3], 64, "R=%d", R);
  const char *dl[] = {defs[0], defs[1], defs[2], defs[3], NULL};
  char err[SIM_ERR_LEN];
  sim *s = assemble_and_load(o, c, dl, err, sizeof err);
  if (!s) return fail(err, NULL);
  size_t nx = (size_t)Bt * K, nw = (size_t)K * N, ny = (size_t)Bt * N;
  uint16_t *Xv = malloc(nx * 2), *W = malloc(nw * 2);
  float *bias = malloc((size_t)N * 4), *Y = malloc(ny * 4);
  if (!Xv || !W || !bias || !Y) return fail("out of memory", NULL);
  for (size_t i = 0; i < nx; i++) Xv[i] = random_bf16();
  for (size_t i = 0; i < nw; i++) W[i] = random_bf16();
  for (int i = 0; i < N; i++) bias[i] = bf16_value(random_bf16()) * 0.5f;
  uint64_t hx = 0, hw = nx * 2, hbias = hw + nw * 2, hy = hbias + (uint64_t)N * 4;
  int rc = 0;
  if (sim_write(s, MEM_HBM, hx, Xv, nx * 2, err, sizeof err) || sim_write(s, MEM_HBM, hw, W, nw * 2, err, sizeof err) ||
      sim_write(s, MEM_HBM, hbias, bias, (uint64_t)N * 4, err, sizeof err) || sim_run(s, err, sizeof err) ||
      sim_read(s, MEM_HBM, hy, Y, ny * 4, err, sizeof err)) {
    rc = fail(err, NULL);
    goto out;
  }
  size_t wrong = 0, loose = 0;
  uint16_t *Wt = transpose(W, K, N);
  if (!Wt) {
    rc = fail("out of memory", NULL);
    goto out;
  }
  for (int i = 0; i < Bt; i++)
    for (int j = 0; j < N; j++) {
      float v = matmul_value(Xv, Wt, K, R, i, j) + bias[j];
      float want = v > 0 ? v : 0.0f, got = Y[(size_t)i * N + j];
      if (bits_of(got) != bits_of(want) && wrong++ < 5)
        fprintf(stderr, "  Y[%d][%d] = %a, the plain C computation gives %a\n", i, j, got, want);
      double ex = exact_dot(Xv, Wt, K, i, j) + bias[j];
      ex = ex > 0 ? ex : 0;
      if (fabs(got - ex) > 1e-4 * fabs(ex) + 1e-5) loose++;
    }
  free(Wt);
  printf("fc_relu batch %d, %d -> %d on %s: %s: %zu of %zu outputs differ from the plain C computation; "
         "%zu outside 1e-4 of float64\n",
         Bt, K, N, c->name, wrong || loose ? "FAILED" : "ok", wrong, ny, loose);
  sim_print_stats(s, stdout);
  if (wrong || loose) rc = 1;
  else if (finish(s, o, err, sizeof err)) rc = fail(err, NULL);
out:
  free(Xv), free(W), free(bias), free(Y);
  sim_destroy(s);
  return rc;
}

int main(int argc, char **argv) {
  options o = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--chip") && v) o.chip = v, i++;
    else if (!strcmp(a, "--json") && v) o.json = v, i++;
    else if (!strcmp(a, "--trace") && v) o.trace = v, i++;
    else if (!strcmp(a, "--size") && v) {
      if (sscanf(v, "%d,%d,%d", &o.d0, &o.d1, &o.d2) != 3 || o.d0 < 1 || o.d1 < 1 || o.d2 < 1)
        return fail("--size wants three positive numbers, e.g. 1024,1024,1024", v);
      i++;
    } else if (!o.example && a[0] != '-') o.example = a;
    else {
      fprintf(stderr, "usage: asm_check matmul|fc --chip NAME [--size A,B,C] [--json FILE] [--trace FILE]\n");
      return 2;
    }
  }
  if (!o.example || !o.chip || (strcmp(o.example, "matmul") && strcmp(o.example, "fc"))) {
    fprintf(stderr, "usage: asm_check matmul|fc --chip NAME [--size A,B,C] [--json FILE] [--trace FILE]\n");
    return 2;
  }
  chip_config c;
  char err[CHIP_ERR_LEN];
  if (chip_load(&c, o.chip, err, sizeof err)) return fail(err, NULL);
  if (!o.d0) {
    bool matmul = !strcmp(o.example, "matmul");
    o.d0 = matmul ? 1024 : 64;
    o.d1 = o.d2 = matmul ? 1024 : 2 * c.mxu_rows;
  }
  return !strcmp(o.example, "matmul") ? run_matmul(&o, &c) : run_fc(&o, &c);
}
