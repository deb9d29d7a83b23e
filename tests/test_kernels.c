// The host kernels (kernels.h) against the reference (numerics.c) bit for bit:
// every MXU kernel this host has (ref, avx2, avx512, amx) on randomised passes
// rich in edge cases, with one and with several threads; the vector unit's row
// functions against num_load / num_store and the operations' definitions;
// random vector instructions run by the simulator against a plain model of
// docs/isa.md; the thread pool; and a whole model whose outputs, cycles and
// statistics must not depend on the kernel, the thread count or timing-only
// mode. A host without AMX (or AVX) runs what it has and says what it skipped.
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isa/isa.h"
#include "runtime/systole.h"
#include "sim/chip.h"
#include "sim/kernels.h"
#include "sim/numerics.h"
#include "sim/sim.h"
#include "testlib.h"

#define F(u) num_f32(u)
#define B(f) num_bits(f)

static int rnd(int lo, int hi) { return lo + (int)(test_rand() % (uint64_t)(hi - lo + 1)); } // inclusive

// ---------------------------------------------------------------- the fma's flush

// The MXU flushes a result when it is below FLT_MIN once rounded to 24 bits
// with an unbounded exponent (x86 and AMX: "tininess after rounding"), which
// differs from "the result rounded to fp32 is subnormal" just below FLT_MIN.
static void test_fma_flush(void) {
  const float m = 0x1p-126f;
  // a*b + c exactly = FLT_MIN - 1.5 * 2^-151: fp32 rounding gives FLT_MIN, the
  // unbounded one FLT_MIN - 2^-150, tiny: flushed (AMX gives 0 here).
  CHECK_BITS(B(num_mxu_fma(0x1.8p-76f, -0x1p-75f, m)), 0x00000000u, "just below the tie");
  CHECK_BITS(B(num_mxu_fma(-0x1.8p-76f, -0x1p-75f, -m)), 0x80000000u, "the same, negative");
  // FLT_MIN - 2^-151 is the tie between FLT_MIN - 2^-150 and FLT_MIN: even, FLT_MIN.
  CHECK_BITS(B(num_mxu_fma(0x1p-76f, -0x1p-75f, m)), 0x00800000u, "the tie rounds up");
  CHECK_BITS(B(num_mxu_fma(0x1p-75f, -0x1p-75f, m)), 0x00000000u, "FLT_MIN - 2^-150");
  CHECK_BITS(B(num_mxu_fma(0x1p-77f, -0x1p-75f, m)), 0x00800000u, "FLT_MIN - 2^-152");
  CHECK_BITS(B(num_mxu_fma(0x1.4p-76f, -0x1p-75f, m)), 0x00000000u, "FLT_MIN - 1.25 * 2^-151");
  // Far from the edge nothing changed.
  CHECK_BITS(B(num_mxu_fma(0x1p-76f, 0x1p-75f, m)), 0x00800000u, "above FLT_MIN");
  CHECK_BITS(B(num_mxu_fma(0x1p-64f, -0x1p-63f, m)), 0x00000000u, "FLT_MIN / 2: subnormal");
  CHECK_BITS(B(num_mxu_fma(1.0f, 2.0f, 3.0f)), B(5.0f), "ordinary");
  // The same through a dot product: even chain FLT_MIN, then the tiny product.
  uint16_t x[3] = {num_f32_to_bf16(0x1p-63f), 0x8000, num_f32_to_bf16(0x1.8p-76f)};
  uint16_t w[3] = {num_f32_to_bf16(0x1p-63f), 0x0000, num_f32_to_bf16(-0x1p-75f)};
  CHECK_BITS(B(num_mxu_dot_bf16(x, w, 1, 3)), 0x00000000u, "dot product");
}

// ---------------------------------------------------------------- MXU kernels

// bf16 values by kind. 0: ordinary; 1: zeros, subnormals, tiny, huge, max;
// 2: also infinities and NaNs with payloads; 3: products near FLT_MIN, so
// sums cross into the subnormals; 4: see edge_value; 5: see zero_sign_value.
static uint16_t rand_bf16(int kind) {
  uint64_t r = test_rand();
  uint16_t sign = (uint16_t)(((r >> 40) & 1) << 15), man = (uint16_t)((r >> 41) & 0x7f);
  unsigned pick = (unsigned)(r % 1000);
  if (kind == 3) return (uint16_t)(sign | (uint16_t)(127 - 63 - 2 + (r >> 50) % 5) << 7 | man);
  if (kind >= 1) {
    if (pick < 40) return sign;                                                           // +-0
    if (pick < 80) return (uint16_t)(sign | (man ? man : 1));                             // subnormal
    if (pick < 130) return (uint16_t)(sign | (uint16_t)(1 + (r >> 50) % 40) << 7 | man);  // tiny
    if (pick < 170) return (uint16_t)(sign | (uint16_t)(200 + (r >> 50) % 55) << 7 | man); // huge
    if (pick < 175) return 0x7f7f | sign;                                                 // max finite
  }
  if (kind == 2) {
    if (pick >= 990) return (uint16_t)(sign | 0x7f80);                  // inf
    if (pick >= 985) return (uint16_t)(0x7f80 | sign | (man ? man : 1)); // NaN, payloads
  }
  return (uint16_t)(sign | (uint16_t)(127 - 12 + (r >> 50) % 25) << 7 | man);
}

// Kind 4: the flush edge. Row/column 0 give a product of about FLT_MIN (even
// chain), the others products with bits far below 2^-149, so the chain lands
// within an ulp of FLT_MIN again and again.
static uint16_t edge_value(int j, bool lhs) {
  if (j % 32 == 0) return (uint16_t)(((127 - 63) << 7) | (lhs ? (test_rand() % 4 ? 0 : test_rand() & 3) : 0));
  uint16_t sign = (uint16_t)((test_rand() & 1) << 15), man = (uint16_t)(test_rand() & 0x7f);
  int e = lhs ? 127 - 70 - rnd(0, 11) : 127 - 66 - rnd(0, 11);
  return (uint16_t)(sign | e << 7 | man);
}

// Kind 5: the zeros that the flush leaves, and their signs. Input 0's product
// is about +FLT_MIN and input 32's about -FLT_MIN (random mantissas), so the
// running sum often cancels to a negative subnormal after the second slice
// and flushes to -0; every other product is -0 (a -0 input) or, from input 64
// on, mostly a negative one far below FLT_MIN that flushes its chain to -0.
// So many results are -0, and any +0 a kernel adds (padding, say) shows.
static uint16_t zero_sign_value(int j, bool lhs) {
  uint16_t man = (uint16_t)(test_rand() & 0x7f);
  uint16_t near_min = (uint16_t)((127 - 63) << 7 | man), tiny = (uint16_t)((127 - 72 + rnd(0, 4)) << 7 | man);
  if (!lhs) return j == 0 || j == 32 ? near_min : tiny; // weights are positive
  if (j == 0) return near_min;
  if (j == 32) return (uint16_t)(near_min | 0x8000);
  unsigned pick = (unsigned)(test_rand() % 16);
  if (j < 64 || pick < 6) return 0x8000;
  return (uint16_t)(tiny | (pick == 15 ? 0 : 0x8000)); // now and then a positive one
}

typedef struct {
  int m, k, n, lstride, astride; // strides in elements
  bool bf16, accumulate;
  void *lhs, *w, *acc0, *want, *got;
} pass_case;

static void fill_case(pass_case *c, int kind) {
  size_t es = c->bf16 ? 2 : 1;
  // Rows may overlap (a window pass's rows do when the convolution's stride is under its kernel's).
  size_t lhs_elems = (size_t)(c->m - 1) * c->lstride + (size_t)(c->lstride > c->k ? c->lstride : c->k);
  c->lhs = malloc(lhs_elems * es + 64);
  c->w = malloc((size_t)c->k * c->n * es + 64);
  size_t accb = (size_t)c->m * c->astride * 4;
  c->acc0 = malloc(accb), c->want = malloc(accb), c->got = malloc(accb);
  for (size_t at = 0; at < lhs_elems; at++) {
    int j = (int)(at % (size_t)c->lstride);
    if (c->bf16)
      ((uint16_t *)c->lhs)[at] = kind == 4 ? edge_value(j, true) : kind == 5 ? zero_sign_value(j, true) : rand_bf16(kind);
    else ((int8_t *)c->lhs)[at] = (int8_t)(kind == 1 ? (test_rand() & 1 ? -128 : 127) : rnd(-128, 127));
  }
  for (int j = 0; j < c->k; j++)
    for (int i = 0; i < c->n; i++) {
      size_t at = (size_t)j * c->n + i;
      if (c->bf16)
        ((uint16_t *)c->w)[at] = kind == 4 ? edge_value(j, false) : kind == 5 ? zero_sign_value(j, false) : rand_bf16(kind);
      else ((int8_t *)c->w)[at] = (int8_t)(kind == 1 ? -128 : rnd(-128, 127));
    }
  for (size_t i = 0; i < accb / 4; i++) {
    uint32_t v;
    if (c->bf16) {
      unsigned pick = (unsigned)rnd(0, 99);
      v = pick < 5 ? (uint32_t)rnd(1, 0x7fffff) | (uint32_t)(test_rand() & 1) << 31 // subnormal
          : pick < 8 ? 0x7f800001u | (uint32_t)(test_rand() & 0xffff)              // NaN payload
          : pick < 10 ? 0xff800000u                                                // -inf
          : pick < 15 ? 0x80000000u
          : (uint32_t)num_f32_to_bf16((float)rnd(-1000, 1000)) << 16;
    } else {
      unsigned pick = (unsigned)rnd(0, 9);
      v = pick == 0 ? 0x7fffffffu : pick == 1 ? 0x80000000u : (uint32_t)test_rand();
    }
    memcpy((char *)c->acc0 + 4 * i, &v, 4);
  }
}

static void free_case(pass_case *c) { free(c->lhs), free(c->w), free(c->acc0), free(c->want), free(c->got); }

static void reference(pass_case *c) {
  memcpy(c->want, c->acc0, (size_t)c->m * c->astride * 4);
  if (c->bf16)
    num_mxu_pass_bf16(c->want, (size_t)c->astride, c->lhs, (size_t)c->lstride, c->w, (size_t)c->n, c->m, c->k, c->n,
                      c->accumulate);
  else
    num_mxu_pass_i8(c->want, (size_t)c->astride, c->lhs, (size_t)c->lstride, c->w, (size_t)c->n, c->m, c->k, c->n,
                    c->accumulate);
}

// Runs the case with the current kernel; the number of differing words.
static int run_case(pass_case *c, void *tile) {
  size_t es = c->bf16 ? 2 : 1;
  memcpy(c->got, c->acc0, (size_t)c->m * c->astride * 4);
  num_tile_load(tile, c->bf16 ? 1 : 3, c->w, (size_t)c->n * es, c->k, c->n);
  num_tile_pass(tile, c->got, (size_t)c->astride, c->lhs, (size_t)c->lstride * es, c->m, c->accumulate);
  int bad = 0;
  for (int i = 0; i < c->m; i++)
    for (int j = 0; j < c->astride; j++) {
      size_t at = ((size_t)i * c->astride + j) * 4;
      bad += memcmp((char *)c->got + at, (char *)c->want + at, 4) != 0;
    }
  // The reference on the same tile (a pass whose input overlaps its output
  // runs so): the kernel's layout unpacked to the raw weights.
  if (c->m <= 5) {
    memcpy(c->got, c->acc0, (size_t)c->m * c->astride * 4);
    num_tile_pass_ref(tile, c->got, (size_t)c->astride, c->lhs, (size_t)c->lstride * es, c->m, c->accumulate);
    bad += memcmp(c->got, c->want, (size_t)c->m * c->astride * 4) != 0;
  }
  return bad;
}

static void test_mxu_kernels(void) {
  enum { R = 160, C = 144 }; // not multiples of the kernels' blocks
  void *tile = num_tile_alloc(R, C);
  int threads = num_threads();
  int ran = 0, edge_outputs = 0, negative_zeros = 0;
  num_kernel best = num_kernel_current();
  for (int kernel = 0; kernel < NUM_KERNELS; kernel++) {
    if (num_kernel_use((num_kernel)kernel)) {
      printf("mxu: kernel %s: not on this host, skipped\n", num_kernel_names[kernel]);
      continue;
    }
    test_seed(1000 + (uint64_t)kernel);
    int cases = kernel == NUM_KERNEL_REF ? 24 : 84, outputs = 0, bad = 0;
    for (int round = 0; round < cases; round++) {
      static const int ks[] = {1, 2, 3, 31, 32, 33, 64, 65, 96, 127, 128, 129, 160};
      // 300 rows: more than the avx2 kernel converts at once (24,576 floats) for k >= 83
      static const int ms[] = {1, 2, 5, 15, 16, 17, 31, 32, 33, 300, 64, 97};
      pass_case c = {.bf16 = round % 4 != 3, .accumulate = round % 3 == 1};
      int kind = round % 6;
      c.k = round % 7 == 0 ? rnd(1, R) : ks[round % 13];
      if (kind == 5 && c.k < 65) c.k = rnd(65, R); // its -0 results take three slices
      c.m = ms[round % 12];
      c.n = round % 5 == 0 ? rnd(1, C) : (int[]){1, 16, 17, 128, 144}[round % 5];
      c.lstride = round % 8 == 5 ? rnd(1, c.k) : c.k + rnd(0, 3); // overlapping rows, or apart
      c.astride = c.n + rnd(0, 5);
      fill_case(&c, kind);
      reference(&c);
      // Single-threaded, then the pool: the same bits either way.
      num_set_threads(1);
      int b1 = run_case(&c, tile);
      num_set_threads(threads > 1 ? threads : 2);
      int b2 = run_case(&c, tile);
      // A tile of just the layout's size (the simulator's cache of packed tiles).
      void *exact = num_tile_alloc_exact(c.bf16 ? 1 : 3, c.k, c.n);
      int b3 = exact ? run_case(&c, exact) : 1;
      free(exact);
      if ((b1 || b2 || b3) && bad < 5)
        CHECK(0, "kernel %s: %s pass m %d k %d n %d%s kind %d: %d / %d / %d words differ (1 thread / pool / exact tile)",
              num_kernel_names[kernel], c.bf16 ? "bf16" : "i8", c.m, c.k, c.n, c.accumulate ? " acc" : "", kind,
              b1, b2, b3);
      bad += b1 + b2 + b3;
      outputs += c.m * c.n;
      if (c.bf16 && kind == 4)
        for (int i = 0; i < c.m * c.astride; i++) edge_outputs += (B(((float *)c.want)[i]) & 0x7fffffffu) == 0x00800000u;
      if (c.bf16 && kind == 5 && !c.accumulate)
        for (int i = 0; i < c.m; i++)
          for (int j = 0; j < c.n; j++) negative_zeros += B(((float *)c.want)[i * c.astride + j]) == 0x80000000u;
      free_case(&c);
    }
    num_set_threads(threads);
    CHECK(bad == 0, "kernel %s: %d words differ from numerics.c", num_kernel_names[kernel], bad);
    printf("mxu: kernel %s: %d cases, %d outputs, %d differ from numerics.c\n", num_kernel_names[kernel], cases,
           outputs, bad);
    ran++;
  }
  // The inputs reach the flush edge (outputs of exactly +-FLT_MIN).
  CHECK(edge_outputs > 50, "only %d outputs at FLT_MIN", edge_outputs);
  // and results of -0, which only flushes make (the running sum starts at +0).
  CHECK(negative_zeros > 20, "only %d results of -0", negative_zeros);
  printf("mxu: %d results at FLT_MIN, %d of -0 (the flush edges)\n", edge_outputs, negative_zeros);
  num_kernel_use(best);
  free(tile);
  CHECK(ran >= 1, "no kernel ran");
}

// The sign of a zero that the flush to zero leaves. In a pass of k = 67 the
// running sum is 1.5 * 2^-126 after the first slice and flushes to -0 after
// the second; in the last slice (64, 65, 66) both chains flush to -0 as well
// (products of -2^-140, and +0 * -0), so the result is -0 + (-0 + -0) = -0.
// A kernel that pads the odd chain with +0 * +0 (product 68 of a 2-wide or
// 4-wide step) turns that chain +0 and the result +0; padding with -0 * +0
// adds -0, which changes no value.
static void test_flushed_zero_sign(void) {
  enum { K = 67, N = 5, M = 4 };
  void *tile = num_tile_alloc(128, 16);
  num_kernel best = num_kernel_current();
  uint16_t lhs[M * K] = {0}, w[K * N] = {0};
  for (int r = 0; r < M; r++) {
    uint16_t *x = lhs + r * K;
    x[0] = 0x2040;                // 1.5 * 2^-63
    x[32] = 0xa060;               // -1.75 * 2^-63
    x[64] = x[65] = 0x9c80;       // -2^-70
  }
  for (int c = 0; c < N; c++) {
    w[0 * N + c] = w[32 * N + c] = 0x2000; // 2^-63
    w[64 * N + c] = w[65 * N + c] = 0x1c80; // 2^-70
    w[66 * N + c] = 0x8000;                 // -0
  }
  float want[M * N], got[M * N];
  num_mxu_pass_bf16(want, N, lhs, K, w, N, M, K, N, false);
  CHECK(B(want[0]) == 0x80000000u, "the reference gives 0x%08x, not -0", B(want[0]));
  for (int kernel = 0; kernel < NUM_KERNELS; kernel++) {
    if (num_kernel_use((num_kernel)kernel)) continue;
    num_tile_load(tile, 1, w, N * 2, K, N);
    num_tile_pass(tile, got, N, lhs, K * 2, M, false);
    int bad = 0;
    for (int i = 0; i < M * N; i++) bad += B(got[i]) != B(want[i]);
    CHECK(bad == 0, "%s: %d of %d results differ from the reference's -0 (first 0x%08x)", num_kernel_names[kernel],
          bad, M * N, B(got[0]));
  }
  num_kernel_use(best);
  free(tile);
}

// int32 sums wrap: 128 products of -128 * -128 (2^21) added to INT32_MAX - j.
static void test_i8_wrap(void) {
  void *tile = num_tile_alloc(128, 16);
  num_kernel best = num_kernel_current();
  int8_t lhs[128], w[128 * 16];
  memset(lhs, -128, sizeof lhs), memset(w, -128, sizeof w);
  for (int kernel = 0; kernel < NUM_KERNELS; kernel++) {
    if (num_kernel_use((num_kernel)kernel)) continue;
    int32_t acc[16];
    for (int j = 0; j < 16; j++) acc[j] = INT32_MAX - j;
    num_tile_load(tile, 3, w, 16, 128, 16);
    num_tile_pass(tile, acc, 16, lhs, 128, 1, true); // + 128 * 16384 = 2^21
    for (int j = 0; j < 16; j++)
      CHECK(acc[j] == (int32_t)((uint32_t)INT32_MAX - (uint32_t)j + (1u << 21)), "%s: wrap: acc[%d] = %d",
            num_kernel_names[kernel], j, acc[j]);
  }
  num_kernel_use(best);
  free(tile);
}

// ---------------------------------------------------------------- vector rows

static uint32_t rand_f32_bits(void) {
  uint64_t r = test_rand();
  uint32_t sign = (uint32_t)(r >> 63) << 31;
  switch (r % 16) {
  case 0: return sign;                                                  // +-0
  case 1: return sign | ((uint32_t)(r >> 20) % 0x7fffffu + 1);           // subnormal
  case 2: return sign | 0x7f800000u;                                    // inf
  case 3: return sign | 0x7f800000u | ((uint32_t)(r >> 20) % 0x7fffffu + 1); // NaN
  case 4: return sign | (uint32_t)(127 + 23 + (r >> 8) % 10) << 23 | (uint32_t)(r >> 30) % 0x800000u; // >= 2^23
  case 5: return B((float)rnd(-300, 300) * 0.5f);                      // ties for rounding
  case 6: return sign | 0x7f7fffffu;                                    // max
  case 7: return B((float)rnd(-3, 3) * 0x1p31f + (float)rnd(-200, 200)); // near the i32 range
  default: return sign | (uint32_t)(127 - 20 + (r >> 8) % 40) << 23 | (uint32_t)(r >> 30) % 0x800000u;
  }
}

static void rand_elem(int dt, void *p) {
  uint32_t u = rand_f32_bits();
  switch (dt) {
  case 0: memcpy(p, &u, 4); break;
  case 1: { uint16_t b = (uint16_t)(test_rand() % 8 ? u >> 16 : test_rand()); memcpy(p, &b, 2); break; }
  case 2: { int32_t i = test_rand() % 4 ? rnd(-100000, 100000) : (int32_t)(uint32_t)test_rand(); memcpy(p, &i, 4); break; }
  default: *(int8_t *)p = (int8_t)rnd(-128, 127); break;
  }
}

// The vector unit's operations as the simulator defined them per element.
static float ref_op(int op, float a, float b) {
  switch (op) {
  case VOP_MOV: return a;
  case VOP_ADD: case VOP_RSUM: case VOP_CSUM: return a + b;
  case VOP_SUB: return a - b;
  case VOP_MUL: return a * b;
  case VOP_DIV: return a / b;
  case VOP_MAX: case VOP_RMAX: case VOP_CMAX:
    return isnan(a) || isnan(b) ? NAN : a > b ? a : b > a ? b : (signbit(a) ? b : a);
  case VOP_MIN: case VOP_RMIN: case VOP_CMIN:
    return isnan(a) || isnan(b) ? NAN : a < b ? a : b < a ? b : (signbit(a) ? a : b);
  case VOP_RELU: return isnan(a) ? a : a > 0 ? a : 0.0f;
  case VOP_NEG: return -a;
  case VOP_ABS: return fabsf(a);
  case VOP_EXP: return num_exp(a);
  case VOP_LOG: return num_log(a);
  case VOP_TANH: return num_tanh(a);
  case VOP_SIGMOID: return num_sigmoid(a);
  case VOP_ERF: return num_erf(a);
  case VOP_RSQRT: return num_rsqrt(a);
  case VOP_SQRT: return num_sqrt(a);
  case VOP_RECIP: return num_recip(a);
  }
  return a;
}

static void test_vector_rows(void) {
  enum { N = 1000 };
  static uint8_t src[N * 4], src2[N * 4], want[N * 4], got[N * 4];
  static float fa[N], fb[N];
  int bad = 0;
  // Loads then stores, every pair of types: num_vload + num_vstore against
  // num_load + num_store (which canonicalises on the way in: the same bits).
  for (int round = 0; round < 40; round++)
    for (int dt = 0; dt < 4; dt++)
      for (int dd = 0; dd < 4; dd++) {
        int es = isa_dtype_bytes[dt], ed = isa_dtype_bytes[dd];
        for (int i = 0; i < N; i++) rand_elem(dt, src + i * es);
        for (int i = 0; i < N; i++) num_store(dd, want + i * ed, num_load(dt, src + i * es));
        num_vload(dt, fa, src, N);
        num_vstore(dd, got, fa, N);
        if (memcmp(got, want, (size_t)N * ed) && bad++ < 5) CHECK(0, "load %d store %d differ", dt, dd);
      }
  // Every elementwise operation, f32 in and out (NaNs with payloads included).
  static const int ops[] = {VOP_MOV, VOP_ADD, VOP_SUB, VOP_MUL, VOP_DIV, VOP_MAX, VOP_MIN, VOP_RELU, VOP_NEG,
                            VOP_ABS, VOP_EXP, VOP_LOG, VOP_TANH, VOP_SIGMOID, VOP_ERF, VOP_RSQRT, VOP_SQRT, VOP_RECIP};
  for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
    for (int round = 0; round < 20; round++) {
      int op = ops[o];
      bool binary = isa_vpu_ops[op].kind == VK_BINARY;
      for (int i = 0; i < N; i++) rand_elem(0, src + 4 * i), rand_elem(0, src2 + 4 * i);
      if (round % 2) memcpy(src2, src, 4 * N / 2); // equal operands: max/min ties, x - x
      for (int i = 0; i < N; i++)
        num_store(0, want + 4 * i, num_canon(ref_op(op, num_load(0, src + 4 * i), num_load(0, src2 + 4 * i))));
      num_vload(0, fa, src, N);
      num_vload(0, fb, src2, N);
      num_vop(op, fa, fa, binary ? fb : NULL, N);
      num_vstore(0, got, fa, N);
      if (memcmp(got, want, 4 * N) && bad++ < 5) CHECK(0, "operation %s differs", isa_vpu_ops[op].name);
    }
  // Folds, and requantisation.
  static const int folds[] = {VOP_RSUM, VOP_RMAX, VOP_RMIN, VOP_CSUM, VOP_CMAX, VOP_CMIN};
  for (size_t o = 0; o < sizeof folds / sizeof folds[0]; o++) {
    for (int i = 0; i < N; i++) rand_elem(0, src + 4 * i), rand_elem(0, src2 + 4 * i);
    num_vload(0, fa, src, N), num_vload(0, fb, src2, N);
    num_vfold(folds[o], fa, fb, N);
    float acc = num_load(0, src), racc = acc;
    for (int i = 0; i < N; i++) {
      float v = num_canon(ref_op(folds[o], num_load(0, src + 4 * i), num_load(0, src2 + 4 * i)));
      if (B(num_canon(fa[i])) != B(v) && bad++ < 5) CHECK(0, "fold %s element %d", isa_vpu_ops[folds[o]].name, i);
      racc = ref_op(folds[o], racc, num_load(0, src2 + 4 * i));
    }
    acc = num_vreduce(folds[o], acc, fb, N);
    CHECK_BITS(B(num_canon(acc)), B(num_canon(racc)), "reduce");
  }
  for (int round = 0; round < 50; round++) {
    int32_t x[64];
    int8_t q[64];
    int32_t mult = round % 5 ? (int32_t)(uint32_t)test_rand() : INT32_MIN, zp = rnd(-300, 300);
    int shift = rnd(-2, 66);
    for (int i = 0; i < 64; i++) x[i] = i % 7 ? (int32_t)(uint32_t)test_rand() : rnd(-5, 5);
    num_vrequant(q, x, 64, mult, shift, zp);
    for (int i = 0; i < 64; i++)
      if (q[i] != num_requant(x[i], mult, shift, zp) && bad++ < 5) CHECK(0, "requant %d", x[i]);
  }
  CHECK(bad == 0, "%d vector row checks differ", bad);
  printf("vector rows: loads, stores, %zu operations, folds and requant: %d differ\n", sizeof ops / sizeof ops[0],
         bad);
}

// ---------------------------------------------------------------- thread pool

typedef struct {
  int counts[1000];
  int nested;
} pool_ctx;

static void count_task(void *ctx, int task) { __atomic_fetch_add(&((pool_ctx *)ctx)->counts[task], 1, __ATOMIC_RELAXED); }

static void nested_task(void *ctx, int task) {
  pool_ctx *p = ctx;
  (void)task;
  pool_ctx inner = {{0}, 0};
  num_parallel(10, count_task, &inner); // the pool is busy: runs here
  int ok = 1;
  for (int i = 0; i < 10; i++) ok &= inner.counts[i] == 1;
  __atomic_fetch_add(&p->nested, ok, __ATOMIC_RELAXED);
}

static void test_pool(void) {
  int threads = num_threads();
  for (int t = 1; t <= 4; t++) {
    num_set_threads(t);
    for (int round = 0; round < 300; round++) {
      pool_ctx p = {{0}, 0};
      int n = round % 7 == 0 ? 1000 : rnd(1, 40);
      num_parallel(n, count_task, &p);
      int bad = 0;
      for (int i = 0; i < 1000; i++) bad += p.counts[i] != (i < n);
      if (bad) {
        CHECK(0, "%d threads: %d of %d tasks not run exactly once", t, bad, n);
        break;
      }
    }
    pool_ctx p = {{0}, 0};
    num_parallel(8, nested_task, &p);
    CHECK(p.nested == 8, "%d threads: nested calls", t);
  }
  num_set_threads(threads);
  printf("pool: %d threads by default\n", threads);
}

// ---------------------------------------------------------------- vector instructions

// A plain model of a vector instruction (docs/isa.md 5.6): elementwise row by
// row, each row read whole before it is written; reductions; transposes.
static void model_vpu(uint8_t *mem, int op, int dd, int d1, int d2, uint64_t ra, uint64_t rb, uint64_t rc,
                      const uint64_t *d) {
  uint64_t rows = d[0], cols = d[1];
  int ed = isa_dtype_bytes[dd], e1 = isa_dtype_bytes[d1], e2 = isa_dtype_bytes[d2];
  isa_vpu_kind kind = isa_vpu_ops[op].kind;
  float *x = malloc(rows * cols * sizeof *x + 4), *y = malloc(rows * cols * sizeof *y + 4);
  if (kind == VK_UNARY || kind == VK_BINARY) {
    for (uint64_t r = 0; r < rows; r++) {
      for (uint64_t c = 0; c < cols; c++) {
        x[c] = num_load(d1, mem + rb + r * d[3] + c * e1);
        y[c] = kind == VK_BINARY ? num_load(d2, mem + rc + r * d[4] + c * d[5] * e2) : 0.0f;
      }
      for (uint64_t c = 0; c < cols; c++) num_store(dd, mem + ra + r * d[2] + c * ed, num_canon(ref_op(op, x[c], y[c])));
    }
  } else if (kind == VK_REDUCE) {
    for (uint64_t r = 0; r < rows; r++) {
      float acc = num_load(d1, mem + rb + r * d[3]);
      for (uint64_t c = 1; c < cols; c++) acc = ref_op(op, acc, num_load(d1, mem + rb + r * d[3] + c * e1));
      x[r] = num_canon(acc);
    }
    for (uint64_t r = 0; r < rows; r++) num_store(dd, mem + ra + r * d[2], x[r]);
  } else if (kind == VK_REDUCE_COL) {
    for (uint64_t c = 0; c < cols; c++) x[c] = num_load(d1, mem + rb + c * e1);
    for (uint64_t r = 1; r < rows; r++)
      for (uint64_t c = 0; c < cols; c++) x[c] = ref_op(op, x[c], num_load(d1, mem + rb + r * d[3] + c * e1));
    for (uint64_t c = 0; c < cols; c++) num_store(dd, mem + ra + c * ed, num_canon(x[c]));
  } else if (kind == VK_TRANSPOSE) {
    for (uint64_t r = 0; r < rows; r++)
      for (uint64_t c = 0; c < cols; c++) x[c * rows + r] = num_load(d1, mem + rb + r * d[3] + c * e1);
    uint8_t *t = malloc(rows * cols * (uint64_t)ed);
    for (uint64_t i = 0; i < rows * cols; i++) num_store(dd, t + i * ed, x[i]);
    for (uint64_t c = 0; c < cols; c++) memcpy(mem + ra + c * d[2], t + c * rows * ed, rows * ed);
    free(t);
  } else { // requant
    for (uint64_t r = 0; r < rows; r++) {
      int32_t *v = (int32_t *)(void *)x;
      memcpy(v, mem + rb + r * d[3], cols * 4);
      for (uint64_t c = 0; c < cols; c++)
        mem[ra + r * d[2] + c] = (uint8_t)num_requant(v[c], (int32_t)d[6], (int)d[7], (int32_t)d[8]);
    }
  }
  free(x), free(y);
}

static void test_vector_instructions(const chip_config *chip) {
  enum { MEM = 1 << 20 };
  uint8_t *init = malloc(MEM), *want = malloc(MEM), *got = malloc(MEM);
  static const int ops[] = {VOP_MOV, VOP_ADD, VOP_MUL, VOP_MAX, VOP_RELU, VOP_EXP, VOP_RSUM, VOP_RMAX,
                            VOP_CSUM, VOP_CMIN, VOP_TRANS, VOP_REQUANT, VOP_SUB, VOP_DIV};
  int threads = num_threads(), runs = 0, bad = 0;
  for (int round = 0; round < 160; round++) {
    int op = ops[round % (sizeof ops / sizeof ops[0])];
    isa_vpu_kind kind = isa_vpu_ops[op].kind;
    int dd = rnd(0, 3), d1 = rnd(0, 3), d2 = rnd(0, 3);
    if (rnd(0, 2) == 0) dd = d1 = d2 = DT_F32; // the fused path (fp32 memory to memory)
    if (kind == VK_REQUANT) dd = DT_I8, d1 = DT_I32;
    int ed = isa_dtype_bytes[dd], e1 = isa_dtype_bytes[d1], e2 = isa_dtype_bytes[d2];
    uint64_t rows = (uint64_t)(round % 9 == 0 ? rnd(1, 3) : rnd(1, 90));
    uint64_t cols = (uint64_t)(round % 4 == 0 ? rnd(500, 3000) : rnd(1, 200));
    if (rows * cols > 60000) rows = 60000 / cols + 1;
    int lay = rnd(0, 3); // 0: apart, 1: in place on src1, 2: in place on src2, 3: dst rows overlap
    uint64_t d[9] = {rows, cols, 0, 0, 0, 1, (uint64_t)(int64_t)rnd(-100000, 100000), (uint64_t)rnd(0, 40),
                     (uint64_t)(int64_t)rnd(-50, 50)};
    uint64_t wide = (uint64_t)(ed > e1 ? ed : e1) * cols;
    d[3] = (cols * (uint64_t)e1 + (uint64_t)rnd(0, 3) * 4 + 3) / 4 * 4;
    d[4] = round % 5 == 0 ? 0 : (cols * (uint64_t)e2 + 7) / 4 * 4;
    d[5] = kind == VK_BINARY && round % 6 == 0 ? 0 : 1;
    d[2] = (cols * (uint64_t)ed + 3) / 4 * 4;
    // Rows that follow each other in every operand (run as one long row), or
    // one src2 row for all (a bias), and with src2 one value for all rows.
    int dense = rnd(0, 5); // 0: every operand's rows follow each other; 1: src2 one row; 2: one value
    if (dense < 3) {
      d[2] = cols * (uint64_t)ed, d[3] = cols * (uint64_t)e1;
      d[4] = dense == 0 ? cols * (uint64_t)e2 : 0;
      if (dense == 2 && kind == VK_BINARY) d[5] = 0;
    }
    uint64_t ra = 0x10000, rb = 0x50000, rc = 0xa0000;
    bool elementwise = kind == VK_UNARY || kind == VK_BINARY || kind == VK_REQUANT;
    if (elementwise && lay == 1)
      ra = rb, d[2] = d[3] = dense < 3 && ed == e1 ? d[3] : (wide + 3) / 4 * 4 - (round % 3 == 0 && rows > 1 ? 4 : 0);
    if (elementwise && lay == 2 && kind == VK_BINARY) {
      d[5] = 1;
      uint64_t w2 = (uint64_t)(ed > e2 ? ed : e2) * cols;
      ra = rc, d[2] = d[4] = dense < 3 && ed == e2 ? d[2] : (w2 + 3) / 4 * 4;
    }
    if (lay == 3 && kind == VK_REDUCE) d[2] = 0; // every row onto one element
    if (d[2] < (uint64_t)ed && kind != VK_REDUCE) d[2] = (uint64_t)ed;
    if (kind == VK_TRANSPOSE) d[2] = (rows * (uint64_t)ed + 3) / 4 * 4;
    if (kind == VK_TRANSPOSE && lay == 3) ra = rb + 4 * (uint64_t)rnd(0, 3); // onto its source: read whole first
    uint64_t fill = test_rand();
    for (int i = 0; i < MEM; i += 8) { // cheap random bits outside the sources
      fill ^= fill << 13, fill ^= fill >> 7, fill ^= fill << 17;
      memcpy(init + i, &fill, 8);
    }
    for (uint64_t i = 0; i < 0x40000; i += (uint64_t)e1) rand_elem(d1, init + rb + i);
    for (uint64_t i = 0; i < 0x40000; i += (uint64_t)e2) rand_elem(d2, init + rc + i);
    memcpy(want, init, MEM);
    model_vpu(want, op, dd, d1, d2, ra, rb, rc, d);
    char src[2048];
    int n = snprintf(src, sizeof src, ".smem\nvd: .vdesc %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                     ", %" PRIu64 ", %" PRId64 ", %" PRIu64 ", %" PRId64 "\n.text\nli r1, %" PRIu64 "\nli r2, %" PRIu64
                     "\nli r3, %" PRIu64 "\nli r4, vd\n",
                     d[0], d[1], d[2], d[3], d[4], d[5], (int64_t)d[6], d[7], (int64_t)d[8], ra, rb, rc);
    if (kind == VK_BINARY)
      n += snprintf(src + n, sizeof src - (size_t)n, "v.%s.%s.%s.%s r1, r2, r3, r4, signal=s1\n", isa_vpu_ops[op].name,
                    isa_dtype_names[dd], isa_dtype_names[d1], isa_dtype_names[d2]);
    else
      n += snprintf(src + n, sizeof src - (size_t)n, "v.%s.%s.%s r1, r2, r4, signal=s1\n", isa_vpu_ops[op].name,
                    isa_dtype_names[dd], isa_dtype_names[d1]);
    snprintf(src + n, sizeof src - (size_t)n, "swait s1\nhalt\n");
    isa_program p = {0};
    char err[SIM_ERR_LEN];
    if (isa_assemble(src, "v.s", NULL, &p, err, sizeof err)) {
      CHECK(0, "assemble: %s\n%s", err, src);
      continue;
    }
    for (int t = 1; t <= 2; t++) {
      num_set_threads(t == 1 ? 1 : threads > 1 ? threads : 2);
      sim *s = sim_create(chip, NULL, err, sizeof err);
      int rc1 = s ? sim_load(s, &p, err, sizeof err) : -1;
      if (!rc1) rc1 = sim_write(s, MEM_LOCAL, 0, init, MEM, err, sizeof err);
      if (!rc1) rc1 = sim_run(s, err, sizeof err);
      if (rc1) {
        // A layout dispatch refuses (a partial overlap) is no test of the values.
        CHECK(strstr(err, "overlaps") != NULL, "%s: %s", src, err);
        sim_destroy(s);
        break;
      }
      sim_read(s, MEM_LOCAL, 0, got, MEM, err, sizeof err);
      sim_destroy(s);
      runs++;
      if (memcmp(got, want, MEM)) {
        size_t at = 0;
        while (got[at] == want[at]) at++;
        if (bad++ < 5) CHECK(0, "threads %d: byte 0x%zx differs (0x%02x, model 0x%02x):\n%s", t, at, got[at], want[at], src);
      }
    }
    isa_program_free(&p);
  }
  num_set_threads(threads);
  CHECK(runs > 150, "only %d vector instructions ran", runs);
  printf("vector instructions: %d runs against the model, %d differ\n", runs, bad);
  free(init), free(want), free(got);
}

// ---------------------------------------------------------------- DMA

// Random blocks between HBM and local memory (and within each), some long
// enough to be split across threads, some with overlapping runs, negative
// strides, or a destination on top of the source, against a model: runs in
// order, each read whole before it is written.
static void test_dma(const chip_config *chip) {
  enum { WIN = 3 << 20 }; // a window of each memory, from address 0
  uint8_t *init[2], *want[2], *got[2];
  for (int m = 0; m < 2; m++) init[m] = malloc(WIN), want[m] = malloc(WIN), got[m] = malloc(WIN);
  int threads = num_threads(), runs = 0, bad = 0;
  uint8_t *run = malloc(WIN);
  for (int round = 0; round < 80; round++) {
    int sm = rnd(0, 1), dm = rnd(0, 1); // 0 HBM, 1 local
    static const int64_t lens[] = {1, 7, 42, 512, 4096, 70000, 300000};
    int64_t L = lens[rnd(0, 6)];
    int64_t n[3] = {rnd(1, 64), rnd(1, 6), rnd(1, 3)}, st[2][3];
    while (L * n[0] * n[1] * n[2] > WIN / 3) n[rnd(0, 2)] = 1, L = L > 4096 ? L / 2 : L;
    for (int j = 0; j < 2; j++) {
      int64_t inner = L, shape = rnd(0, 9);
      for (int i = 0; i < 3; i++) {
        int64_t stv = shape < 6 ? inner + rnd(0, 2) * 64 : shape < 8 ? rnd(1, (int)(inner > 100 ? 100 : inner)) : inner;
        if (shape == 9 && i == 0) stv = -stv; // backwards
        st[j][i] = stv;
        inner = (stv < 0 ? -stv : stv) * (n[i] - 1) + inner;
      }
    }
    // Bases that keep every run inside the window.
    uint64_t base[2];
    for (int j = 0; j < 2; j++) {
      int64_t lo = 0, hi = 0;
      for (int i = 0; i < 3; i++) *(st[j][i] < 0 ? &lo : &hi) += st[j][i] * (n[i] - 1);
      int64_t span = hi - lo + L, room = WIN - span;
      if (room < 0) room = 0;
      base[j] = (uint64_t)(-lo + rnd(0, (int)(room > 4096 ? 4096 : room)) + (room > 8192 ? rnd(0, (int)(room / 2)) : 0));
    }
    if (sm == dm && round % 3 == 0) base[1] = base[0] + (uint64_t)rnd(-64, 64) * (uint64_t)(L > 8 ? L / 8 : 1); // overlap
    if (base[1] > (uint64_t)WIN) base[1] = base[0];
    uint64_t fill = test_rand() | 1;
    for (int m = 0; m < 2; m++)
      for (int i = 0; i < WIN; i += 8) {
        fill ^= fill << 13, fill ^= fill >> 7, fill ^= fill << 17;
        memcpy(init[m] + i, &fill, 8);
      }
    // The model, and whether the block stays inside the windows.
    for (int m = 0; m < 2; m++) memcpy(want[m], init[m], WIN);
    bool inside = true;
    for (int64_t i3 = 0; i3 < n[2]; i3++)
      for (int64_t i2 = 0; i2 < n[1]; i2++)
        for (int64_t i1 = 0; i1 < n[0]; i1++) {
          int64_t so = (int64_t)base[0] + i1 * st[0][0] + i2 * st[0][1] + i3 * st[0][2];
          int64_t doff = (int64_t)base[1] + i1 * st[1][0] + i2 * st[1][1] + i3 * st[1][2];
          if (so < 0 || so + L > WIN || doff < 0 || doff + L > WIN) {
            inside = false;
            continue;
          }
          memcpy(run, want[sm] + so, (size_t)L);
          memcpy(want[dm] + doff, run, (size_t)L);
        }
    if (!inside) continue;
    static const char *const space[] = {"hbm", "local"};
    char src[1024];
    snprintf(src, sizeof src,
             ".smem\ndd: .dmadesc %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
             ", %" PRId64 ", %" PRId64 ", %" PRId64 "\n.text\nli r1, %" PRIu64 "\nli r2, %" PRIu64
             "\nli r3, dd\ndma %s:r1, %s:r2, r3, signal=s1\nswait s1\nhalt\n",
             L, n[0], st[0][0], st[1][0], n[1], st[0][1], st[1][1], n[2], st[0][2], st[1][2], base[1], base[0], space[dm],
             space[sm]);
    isa_program p = {0};
    char err[SIM_ERR_LEN];
    if (isa_assemble(src, "d.s", NULL, &p, err, sizeof err)) {
      CHECK(0, "assemble: %s\n%s", err, src);
      continue;
    }
    for (int t = 1; t <= 2; t++) {
      num_set_threads(t == 1 ? 1 : threads > 1 ? threads : 2);
      sim *sm_ = sim_create(chip, NULL, err, sizeof err);
      int rc = sm_ ? sim_load(sm_, &p, err, sizeof err) : -1;
      if (!rc) rc = sim_write(sm_, MEM_HBM, 0, init[0], WIN, err, sizeof err);
      if (!rc) rc = sim_write(sm_, MEM_LOCAL, 0, init[1], WIN, err, sizeof err);
      if (!rc) rc = sim_run(sm_, err, sizeof err);
      CHECK(rc == 0, "%s: %s", src, err);
      if (!rc) {
        sim_read(sm_, MEM_HBM, 0, got[0], WIN, err, sizeof err);
        sim_read(sm_, MEM_LOCAL, 0, got[1], WIN, err, sizeof err);
        runs++;
        for (int m = 0; m < 2; m++)
          if (memcmp(got[m], want[m], WIN) && bad++ < 5) CHECK(0, "threads %d: %s differs:\n%s", t, space[m], src);
      }
      sim_destroy(sm_);
    }
    isa_program_free(&p);
  }
  num_set_threads(threads);
  CHECK(runs > 100, "only %d DMAs ran", runs);
  printf("dma: %d runs against the model, %d differ\n", runs, bad);
  for (int m = 0; m < 2; m++) free(init[m]), free(want[m]), free(got[m]);
  free(run);
}

// ---------------------------------------------------------------- many instructions at once

// Random programs of DMAs, vector instructions and MXU passes on a few
// regions of memory, issued without semaphores so that the units run them at
// once and their effects conflict all over: local memory, the accumulators
// and HBM must come out the same with one host thread (every effect at its
// instruction's start, the definition) and with several (effects deferred,
// split and run as their conflicts allow).
static void test_conflicts(const chip_config *chip) {
  // Regions big enough that effects are split into pieces (DMAs of 512 KiB
  // and more, vector blocks of 128k elements, passes of 4M MACs).
  // Enough instructions that their effects fill the engine's ring (64).
  enum { REG = 1 << 20, NREG = 8, HBMWIN = NREG * REG, ACCWIN = 8 * 256 << 10, NINST = 100 };
  uint8_t *vinit = malloc(NREG * REG), *hinit = malloc(HBMWIN);
  uint8_t *base[3] = {malloc(NREG * REG), malloc(ACCWIN), malloc(HBMWIN)};
  uint8_t *got[3] = {malloc(NREG * REG), malloc(ACCWIN), malloc(HBMWIN)};
  int threads = num_threads(), programs = 0, bad = 0;
  for (int round = 0; round < 12; round++) {
    char *src = malloc(1 << 16);
    int n = snprintf(src, 1 << 16, ".smem\n");
    // Descriptors first (SMEM), then the instructions.
    char text[1 << 15];
    int tn = 0;
    bool loaded[4] = {0};
    for (int i = 0; i < NINST; i++) {
      int what = rnd(0, 9), ra = rnd(0, NREG - 1), rb = rnd(0, NREG - 1);
      if (what < 4) { // DMA: local <-> local, HBM <-> local, long or short runs
        static const int lens[] = {64, 4096, 65536, 262144};
        int L = lens[rnd(0, 3)], cnt = REG / L / rnd(1, 2), dir = rnd(0, 2);
        const char *ds = dir == 2 ? "hbm" : "local", *ss = dir == 1 ? "hbm" : "local";
        int sstride = L * rnd(1, 2) > REG / cnt ? L : L * rnd(1, 2), dstride = L;
        if ((int64_t)cnt * sstride > REG) cnt = REG / sstride;
        n += snprintf(src + n, (1 << 16) - (size_t)n, "d%d: .dmadesc %d, %d, %d, %d\n", i, L, cnt, sstride, dstride);
        tn += snprintf(text + tn, sizeof text - (size_t)tn,
                       "li r1, %d\nli r2, %d\nli r3, d%d\ndma %s:r1, %s:r2, r3, q=%d\n", ra * REG + rnd(0, 8) * 64,
                       rb * REG, i, ds, ss, rnd(0, 3));
      } else if (what < 7) { // vector: in place or region to region, f32 or bf16
        static const char *const ops[] = {"add", "relu", "mov", "mul", "max"};
        int op = rnd(0, 4), rows = rnd(0, 1) ? 64 : 256, cols = rnd(0, 1) ? 128 : 512, inplace = rnd(0, 1);
        bool binary = op == 0 || op == 3 || op == 4;
        const char *t = rnd(0, 1) ? "f32" : "bf16";
        int es = t[0] == 'f' ? 4 : 2, rc = rnd(0, NREG - 1);
        if (!inplace && ra == rb) rb = (rb + 1) % NREG;
        if (binary && rc == ra) rc = inplace ? ra : (rc + 2) % NREG;
        if (binary && rc == ra && !inplace) rc = (rc + 1) % NREG;
        n += snprintf(src + n, (1 << 16) - (size_t)n, "v%d: .vdesc %d, %d, %d, %d\n", i, rows, cols, cols * es, cols * es);
        if (binary)
          tn += snprintf(text + tn, sizeof text - (size_t)tn, "li r1, %d\nli r2, %d\nli r3, %d\nli r4, v%d\nv.%s.%s r1, r2, r3, r4\n",
                         ra * REG, inplace ? ra * REG : rb * REG, rc * REG, i, ops[op], t);
        else
          tn += snprintf(text + tn, sizeof text - (size_t)tn, "li r1, %d\nli r2, %d\nli r4, v%d\nv.%s.%s r1, r2, r4\n",
                         ra * REG, inplace ? ra * REG : rb * REG, i, ops[op], t);
      } else { // MXU: a weight load and a pass into one of eight accumulator blocks
        int u = rnd(0, 3), m = rnd(0, 1) ? rnd(1, 64) : rnd(256, 512), acc = rnd(0, 1), ablk = rnd(0, 7);
        if (!loaded[u] || rnd(0, 1)) {
          tn += snprintf(text + tn, sizeof text - (size_t)tn,
                         "li r5, %d\nli r6, 256\nli r7, 128\nmxu.ldw.bf16 r5, r6, r7, r7, mxu=%d\n", rb * REG, u);
          loaded[u] = true;
        }
        tn += snprintf(text + tn, sizeof text - (size_t)tn,
                       "li r8, 0x100000000 + %d\nli r9, %d\nli r10, %d\nli r11, 256\nmxu.mm.bf16 r8, r9, r10, r11, mxu=%d%s\n",
                       ablk * (256 << 10), ra * REG, m, u, acc ? ", acc" : "");
      }
    }
    n += snprintf(src + n, (1 << 16) - (size_t)n, ".text\n%shalt\n", text);
    isa_program p = {0};
    char err[SIM_ERR_LEN];
    if (isa_assemble(src, "c.s", NULL, &p, err, sizeof err)) {
      CHECK(0, "assemble: %s", err);
      free(src);
      continue;
    }
    uint64_t x = test_rand() | 1;
    for (int i = 0; i < NREG * REG; i += 2) { // bf16-friendly values, some NaN and subnormal
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      uint16_t v = (uint16_t)(x % 16 ? 0x3c00 | ((x >> 8) & 0x81ff) : x >> 16);
      memcpy(vinit + i, &v, 2);
    }
    for (int i = 0; i < HBMWIN; i += 2) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      uint16_t v = (uint16_t)(0x3c00 | ((x >> 8) & 0x81ff));
      memcpy(hinit + i, &v, 2);
    }
    for (int t = 1; t <= 4; t++) {
      num_set_threads(t);
      sim *sm_ = sim_create(chip, NULL, err, sizeof err);
      int rc = sm_ ? sim_load(sm_, &p, err, sizeof err) : -1;
      if (!rc) rc = sim_write(sm_, MEM_LOCAL, 0, vinit, NREG * REG, err, sizeof err);
      if (!rc) rc = sim_write(sm_, MEM_HBM, 0, hinit, HBMWIN, err, sizeof err);
      if (!rc) rc = sim_run(sm_, err, sizeof err);
      CHECK(rc == 0, "program %d: %s", round, err);
      if (!rc) {
        uint8_t **dst = t == 1 ? base : got;
        sim_read(sm_, MEM_LOCAL, 0, dst[0], NREG * REG, err, sizeof err);
        sim_read(sm_, MEM_LOCAL, ISA_ACC_BASE, dst[1], ACCWIN, err, sizeof err);
        sim_read(sm_, MEM_HBM, 0, dst[2], HBMWIN, err, sizeof err);
        if (t > 1) {
          bool same = !memcmp(got[0], base[0], NREG * REG) && !memcmp(got[1], base[1], ACCWIN) &&
                      !memcmp(got[2], base[2], HBMWIN);
          if (!same && bad++ < 3) CHECK(0, "program %d: %d threads differ from one", round, t);
        }
      }
      sim_destroy(sm_);
    }
    programs++;
    isa_program_free(&p);
    free(src);
  }
  num_set_threads(threads);
  // Up to 4 threads: as many as tpu-v4 has MXUs, whose effects each run on one.
  printf("conflicts: %d random programs of %d instructions, the same memory with 1 to 4 threads: %s\n", programs,
         NINST, bad ? "no" : "yes");
  free(vinit), free(hinit);
  for (int i = 0; i < 3; i++) free(base[i]), free(got[i]);
}

// ---------------------------------------------------------------- a whole model

typedef struct {
  sy_profile prof;
  sy_tensor out;
  bool ok;
} model_run;

static model_run run_model(sy_client *c, sy_executable *x, bool timing_only) {
  model_run r = {0};
  sy_tensor in;
  sy_executable_input(x, 0, &in);
  in.data = NULL;
  sy_tensor_fill_random(&in, 7);
  sy_execute_options eo = {.timing_only = timing_only};
  r.ok = sy_execute(c, x, &in, 1, &r.out, &r.prof, &eo) == 0;
  CHECK(r.ok, "execute: %s", sy_last_error(c));
  sy_tensor_free(&in);
  return r;
}

static bool same_profile(const sy_profile *a, const sy_profile *b) {
  if (a->cycles != b->cycles || a->macs != b->macs || a->hbm_read != b->hbm_read || a->hbm_write != b->hbm_write ||
      a->energy_j != b->energy_j || a->nlayers != b->nlayers)
    return false;
  for (int i = 0; i < a->nlayers; i++)
    if (a->layers[i].start != b->layers[i].start || a->layers[i].end != b->layers[i].end ||
        a->layers[i].macs != b->layers[i].macs || a->layers[i].hbm_bytes != b->layers[i].hbm_bytes)
      return false;
  return true;
}

static void test_model(void) {
  char err[SY_ERR_LEN];
  sy_client *c = sy_client_create("tpu-v4", err, sizeof err);
  CHECK(c != NULL, "client: %s", err);
  if (!c) return;
  sy_executable *x = sy_compile_file(c, "examples/fashion/fashion_cnn.onnx", NULL);
  CHECK(x != NULL, "compile: %s", sy_last_error(c));
  if (!x) {
    sy_client_destroy(c);
    return;
  }
  int threads = num_threads(), compared = 0;
  num_kernel best = num_kernel_current();
  num_set_threads(1);
  num_kernel_use(NUM_KERNEL_REF);
  model_run base = run_model(c, x, false);
  for (int kernel = 0; kernel < NUM_KERNELS && base.ok; kernel++)
    for (int t = 1; t <= 4; t++) {
      if (num_kernel_use((num_kernel)kernel)) continue;
      num_set_threads(t);
      model_run r = run_model(c, x, false);
      bool same = r.ok && !memcmp(r.out.data, base.out.data, sy_tensor_bytes(&base.out));
      CHECK(same, "kernel %s, %d threads: outputs differ from the reference", num_kernel_names[kernel], t);
      CHECK(r.ok && same_profile(&r.prof, &base.prof), "kernel %s, %d threads: cycles or statistics differ",
            num_kernel_names[kernel], t);
      compared++;
      sy_tensor_free(&r.out), sy_profile_free(&r.prof);
    }
  model_run t = run_model(c, x, true);
  CHECK(t.ok && base.ok && same_profile(&t.prof, &base.prof), "timing-only: cycles or statistics differ");
  printf("model: fashion CNN, %llu cycles, the same outputs and statistics with %d kernel/thread settings and "
         "timing-only\n", (unsigned long long)base.prof.cycles, compared);
  sy_tensor_free(&t.out), sy_profile_free(&t.prof);
  sy_tensor_free(&base.out), sy_profile_free(&base.prof);
  num_set_threads(threads);
  num_kernel_use(best);
  sy_executable_destroy(x);
  sy_client_destroy(c);
}

int main(void) {
  chip_config chip;
  char err[512];
  if (chip_load(&chip, "tpu-v4", err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  printf("kernels: best on this host %s (SYSTOLE_KERNEL may choose a lower one), %d threads\n",
         num_kernel_names[num_kernel_current()], num_threads());
  test_fma_flush();
  test_pool();
  test_mxu_kernels();
  test_flushed_zero_sign();
  test_i8_wrap();
  test_vector_rows();
  test_vector_instructions(&chip);
  test_dma(&chip);
  test_conflicts(&chip);
  test_model();
  return test_done("test_kernels");
}
