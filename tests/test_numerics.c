// The chip's arithmetic against exact expected bits and independent
// references (docs/numerics.md). References here may use the host's libm and
// long double: they are the yardstick, never the definition.
//
// SYSTOLE_NUMERICS_EXHAUSTIVE=1 in the environment also measures every
// transcendental over all 2^32 inputs (minutes) and prints the maxima.
#include "sim/numerics.h"
#include "testlib.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// AMX intrinsics need gcc 11 or clang 12 or later.
#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11))
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define HAVE_AMX_PROBE 1
#endif

#define BF(x) num_f32_to_bf16(x) // for values exactly representable in bf16
#define F(u) num_f32(u)
#define B(f) num_bits(f)

// ---------------------------------------------------------------- bf16

// Independent fp32 -> bf16: pick the nearer of the two bf16 neighbours in
// double (exact for these magnitudes), ties to the even pattern.
static uint16_t ref_bf16(float f) {
  uint32_t u = B(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return NUM_BF16_NAN;
  uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
  if ((u & 0xffffu) == 0) return lo;
  double x = fabs((double)f), a = fabs((double)num_bf16_to_f32(lo));
  double b = (hi & 0x7fffu) == 0x7f80u ? 0x1p128 : fabs((double)num_bf16_to_f32(hi)); // inf as 2^128
  double da = x - a, db = b - x;
  if (da < db) return lo;
  if (db < da) return hi;
  return (lo & 1u) ? hi : lo;
}

static void test_bf16(void) {
  static const struct { uint32_t in; uint16_t out; const char *what; } cases[] = {
      {0x3f800000u, 0x3f80, "1.0"},
      {0x3f808000u, 0x3f80, "tie, even below"},
      {0x3f818000u, 0x3f82, "tie, even above"},
      {0x3f808001u, 0x3f81, "just above the tie"},
      {0x3f807fffu, 0x3f80, "just below the tie"},
      {0xbf818000u, 0xbf82, "negative tie, even above"},
      {0x3fff8000u, 0x4000, "tie carries into the exponent"},
      {0x3fffc000u, 0x4000, "carry into the exponent"},
      {0x7f7f0000u, 0x7f7f, "max finite bf16"},
      {0x7f7f7fffu, 0x7f7f, "rounds down to max finite"},
      {0x7f7f8000u, 0x7f80, "tie above max finite -> inf"},
      {0x7f7fffffu, 0x7f80, "FLT_MAX -> inf"},
      {0xff7fffffu, 0xff80, "-FLT_MAX -> -inf"},
      {0x7f800000u, 0x7f80, "inf"},
      {0xff800000u, 0xff80, "-inf"},
      {0x7fc00000u, 0x7fc0, "quiet NaN"},
      {0x7f800001u, 0x7fc0, "signalling NaN"},
      {0x7fbfffffu, 0x7fc0, "signalling NaN, full payload"},
      {0xffc00000u, 0x7fc0, "negative NaN (x86 default)"},
      {0xffffffffu, 0x7fc0, "all ones"},
      {0x7fff8000u, 0x7fc0, "NaN that would round into the sign"},
      {0x00000000u, 0x0000, "+0"},
      {0x80000000u, 0x8000, "-0"},
      {0x00000001u, 0x0000, "smallest subnormal"},
      {0x80000001u, 0x8000, "smallest negative subnormal -> -0"},
      {0x00008000u, 0x0000, "subnormal tie, even below"},
      {0x00018000u, 0x0002, "subnormal tie, even above"},
      {0x00008001u, 0x0001, "subnormal above the tie"},
      {0x80008001u, 0x8001, "negative subnormal above the tie"},
      {0x007fffffu, 0x0080, "largest subnormal -> smallest normal"},
      {0x00800000u, 0x0080, "smallest normal"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK_BITS(num_f32_to_bf16(F(cases[i].in)), cases[i].out, "bf16 of 0x%08x (%s)", cases[i].in,
               cases[i].what);
  // bf16 -> fp32 is exact, NaN payloads included; and round trips.
  CHECK_BITS(B(num_bf16_to_f32(0x7f81)), 0x7f810000u, "bf16 NaN widens unchanged");
  CHECK_BITS(B(num_bf16_to_f32(0x8001)), 0x80010000u, "bf16 subnormal widens unchanged");
  int trips = 0;
  for (uint32_t b = 0; b < 0x10000u; b++) {
    uint16_t h = (uint16_t)b;
    float f = num_bf16_to_f32(h);
    if (f != f) continue;
    if (num_f32_to_bf16(f) != h) trips++;
  }
  CHECK(trips == 0, "%d bf16 values do not round-trip", trips);
  // Random fp32 patterns and values near bf16 midpoints against the reference.
  int bad = 0;
  for (int i = 0; i < 1 << 20; i++) {
    uint32_t u = (uint32_t)test_rand();
    if (i & 1) u = (u & 0xffff0000u) | 0x8000u | ((u & 3u) == 0 ? 0u : (u & 0x1u)); // ties
    float f = F(u);
    if (num_f32_to_bf16(f) != ref_bf16(f) && bad++ < 5)
      CHECK(0, "bf16 of 0x%08x: 0x%04x, reference 0x%04x", u, num_f32_to_bf16(f), ref_bf16(f));
  }
  CHECK(bad == 0, "%d random fp32 -> bf16 mismatches", bad);
}

static void test_canon_flush(void) {
  CHECK_BITS(B(num_canon(F(0x7f800001u))), NUM_CANONICAL_NAN, "sNaN");
  CHECK_BITS(B(num_canon(F(0xffc00000u))), NUM_CANONICAL_NAN, "negative NaN");
  CHECK_BITS(B(num_canon(F(0x7f800000u))), 0x7f800000u, "inf unchanged");
  CHECK_BITS(B(num_canon(F(0x80000001u))), 0x80000001u, "subnormal unchanged");
  CHECK_BITS(B(num_flush(F(0x00000001u))), 0x00000000u, "smallest subnormal");
  CHECK_BITS(B(num_flush(F(0x807fffffu))), 0x80000000u, "negative subnormal -> -0");
  CHECK_BITS(B(num_flush(F(0x00800000u))), 0x00800000u, "FLT_MIN kept");
  CHECK_BITS(B(num_flush(F(0x80000000u))), 0x80000000u, "-0 kept");
  CHECK_BITS(B(num_flush(F(0x7fc00001u))), 0x7fc00001u, "flush leaves NaN alone");
}

// ---------------------------------------------------------------- MXU edges

// One dot product of k pairs given as x0, w0, x1, w1, ... (bf16 patterns).
static float dot_pairs(int k, const uint16_t *pairs) {
  uint16_t x[80], w[80];
  for (int i = 0; i < k; i++) {
    x[i] = pairs[2 * i];
    w[i] = pairs[2 * i + 1];
  }
  return num_mxu_dot_bf16(x, w, 1, k);
}
#define DOT(k, ...) dot_pairs((k), (const uint16_t[]){__VA_ARGS__})

static void test_mxu_edges(void) {
  const uint16_t one = 0x3f80, two = 0x4000, inf = 0x7f80, ninf = 0xff80;
  // The fp32 steps on their own.
  CHECK_BITS(B(num_mxu_fma(F(0x00400000u), 0x1p100f, 0.0f)), 0x00000000u, "DAZ on a");
  CHECK_BITS(B(num_mxu_fma(0x1p100f, F(0x80400000u), -0.0f)), 0x80000000u,
             "DAZ on b keeps the sign: -0 + -0");
  CHECK_BITS(B(num_mxu_fma(0x1p100f, F(0x80400000u), 0.0f)), 0x00000000u, "-0 + +0");
  CHECK_BITS(B(num_mxu_fma(1.0f, 1.0f, F(0x00000001u))), 0x3f800000u, "DAZ on c");
  CHECK_BITS(B(num_mxu_fma(0x1p-70f, 0x1p-60f, 0.0f)), 0x00000000u, "FTZ: 2^-130 -> +0");
  CHECK_BITS(B(num_mxu_fma(-0x1p-70f, 0x1p-60f, 0.0f)), 0x80000000u, "FTZ: -2^-130 -> -0");
  CHECK_BITS(B(num_mxu_fma(0x1p127f, 2.0f, -0x1.fep127f)), 0x7b800000u,
             "fused: 2^128 - bf16 max = 2^120, no overflow in the product");
  CHECK_BITS(B(num_mxu_fma(0x1p-70f, 0x1p-70f, 0x1p-126f)), 0x00800200u,
             "fused: exact tiny product added to FLT_MIN");
  CHECK_BITS(B(num_mxu_fma(F(0x7f7f0000u), F(0x7f7f0000u), 0.0f)), 0x7f800000u, "overflow");
  CHECK_BITS(B(num_mxu_fma(F(0xff7f0000u), F(0x7f7f0000u), 0.0f)), 0xff800000u, "-overflow");
  CHECK_BITS(B(num_mxu_fma(INFINITY, 0.0f, 1.0f)), NUM_CANONICAL_NAN, "inf * 0");
  CHECK_BITS(B(num_mxu_fma(INFINITY, 1.0f, -INFINITY)), NUM_CANONICAL_NAN, "inf - inf");
  CHECK_BITS(B(num_mxu_fma(F(0xff812345u), 1.0f, 0.0f)), NUM_CANONICAL_NAN, "NaN payload");
  CHECK_BITS(B(num_mxu_add(0x1.8p-126f, -0x1p-126f)), 0x00000000u, "add FTZ -> +0");
  CHECK_BITS(B(num_mxu_add(-0x1.8p-126f, 0x1p-126f)), 0x80000000u, "add FTZ -> -0");
  CHECK_BITS(B(num_mxu_add(-0.0f, 0.0f)), 0x00000000u, "-0 + +0");
  CHECK_BITS(B(num_mxu_add(-0.0f, -0.0f)), 0x80000000u, "-0 + -0");
  CHECK_BITS(B(num_mxu_add(F(0x7f7fffffu), F(0x7f7fffffu))), 0x7f800000u, "add overflow");

  // Whole dot products. The expected bits of this block were also checked
  // against AMX TDPBF16PS on a Sapphire Rapids host (NaN aside, which the
  // hardware gives as 0xffc00000 or with payload; we canonicalise).
  CHECK_BITS(B(DOT(2, one, two, 0x4040, one)), 0x40a00000u, "1*2 + 3*1");
  CHECK_BITS(B(DOT(2, 0x0040, 0x7180, 0, 0)), 0x00000000u, "DAZ: bf16 subnormal * 2^100");
  CHECK_BITS(B(DOT(2, BF(-0x1p-70f), BF(0x1p-60f), BF(-0x1p-70f), BF(0x1p-60f))), 0x00000000u,
             "both chains flush to -0, +0 running sum makes +0");
  CHECK_BITS(B(DOT(4, BF(0x1p-65f), BF(0x1p-65f), 0, 0, BF(0x1p-63f), BF(0x1p-63f), 0, 0)),
             0x00800000u, "FTZ inside the even chain: 2^-130 lost before 2^-126 is added");
  CHECK_BITS(B(DOT(4, 0, 0, BF(0x1p-65f), BF(0x1p-65f), 0, 0, BF(0x1p-63f), BF(0x1p-63f))),
             0x00800000u, "FTZ inside the odd chain");
  CHECK_BITS(B(DOT(2, BF(0x1.8p-63f), BF(0x1p-63f), BF(-0x1p-63f), BF(0x1p-63f))), 0x00000000u,
             "even + odd = 2^-127 flushed");
  CHECK_BITS(B(DOT(4, 0xff7f, one, 0, 0, BF(0x1p127f), two, 0, 0)), 0x7b800000u,
             "fused in the chain: -max + 2^127*2");
  CHECK_BITS(B(DOT(4, BF(0x1p-63f), BF(0x1p-63f), 0, 0, BF(0x1p-70f), BF(0x1p-70f), 0, 0)),
             0x00800200u, "tiny exact product kept by the fma");
  CHECK_BITS(B(DOT(2, 0x7f7f, 0x7f7f, 0, 0)), 0x7f800000u, "overflow");
  CHECK_BITS(B(DOT(2, inf, 0, 0, 0)), NUM_CANONICAL_NAN, "inf * 0");
  CHECK_BITS(B(DOT(2, inf, one, ninf, one)), NUM_CANONICAL_NAN,
             "inf in the even chain meets -inf in the odd one");
  CHECK_BITS(B(DOT(4, inf, one, 0, 0, ninf, one, 0, 0)), NUM_CANONICAL_NAN, "inf - inf in a chain");
  CHECK_BITS(B(DOT(2, 0x7f81, one, 0, 0)), NUM_CANONICAL_NAN, "sNaN input");
  CHECK_BITS(B(DOT(2, 0xffa5, one, 0, 0)), NUM_CANONICAL_NAN, "negative NaN input");
  CHECK_BITS(B(DOT(1, 0x8000, one)), 0x00000000u, "k = 1: -0 * 1 + +0 = +0");
  CHECK_BITS(B(DOT(1, BF(-3.0f), BF(0.5f))), 0xbfc00000u, "k = 1");
  CHECK_BITS(B(num_mxu_dot_bf16(NULL, NULL, 1, 0)), 0x00000000u, "k = 0 is +0");

  // The order. Products 2^-24 against 1: which of them meet 1 first decides
  // whether they are lost to ties-to-even.
  const uint16_t e24 = BF(0x1p-24f);
  CHECK_BITS(B(DOT(4, one, one, e24, one, 0, 0, e24, one)), 0x3f800001u,
             "odd chain sums 2^-24 + 2^-24 before meeting 1 (sequential gives 1.0)");
  CHECK_BITS(B(DOT(4, e24, one, e24, one, one, one, 0, 0)), 0x3f800000u,
             "even chain 2^-24 then 1 loses it (sequential and pairwise give 1 + 2^-23)");
  // Slices of 32: the 33rd and 34th products start new chains.
  uint16_t p[2 * 34] = {0};
  p[0] = one;
  p[1] = one;
  p[64] = e24, p[65] = one, p[66] = e24, p[67] = one;
  CHECK_BITS(B(dot_pairs(34, p)), 0x3f800001u,
             "slice 2 sums its two 2^-24 first (one chain over 34 would give 1.0)");
  CHECK_BITS(B(dot_pairs(33, p)), 0x3f800000u, "k = 33: the last slice holds one product");
  // Running sum from +0: a slice sum of -0 gives +0.
  uint16_t q[2 * 33] = {0};
  q[64] = 0x8000, q[65] = one;
  CHECK_BITS(B(dot_pairs(33, q)), 0x00000000u, "-0 products sum to +0");
}

// ------------------------------------------- MXU order: exact reference

// Values that are integer multiples of 2^-FX, kept in __int128. The random
// inputs below keep every intermediate such a multiple and below 2^60, so
// integer arithmetic is exact and the only rounding is ref_round's.
#define FX 40

typedef struct {
  __int128 v;   // value * 2^FX
  bool negzero; // v == 0 and the zero is -0
} fixed;

static float from_fixed(fixed a) {
  if (a.v == 0) return a.negzero ? -0.0f : 0.0f;
  return (float)ldexp((double)a.v, -FX); // exact: callers pass fp32 values
}

// Round to fp32 with ties to even, by integer arithmetic on the significand.
static fixed ref_round(__int128 v, bool negzero) {
  fixed r = {0, negzero};
  if (v == 0) return r;
  unsigned __int128 mag = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
  int len = 0;
  while ((mag >> len) != 0) len++;
  if (len > 24) {
    int sh = len - 24;
    unsigned __int128 keep = mag >> sh, rem = mag & (((unsigned __int128)1 << sh) - 1);
    unsigned __int128 half = (unsigned __int128)1 << (sh - 1);
    if (rem > half || (rem == half && (keep & 1))) keep++;
    mag = keep << sh;
  }
  r.v = v < 0 ? -(__int128)mag : (__int128)mag;
  r.negzero = false;
  return r;
}

// a*b + c with one rounding; IEEE zero signs (x + y = -0 only for -0 + -0).
static fixed ref_fma(float a, float b, fixed c) {
  __int128 pa = (__int128)ldexp((double)a, 20), pb = (__int128)ldexp((double)b, 20);
  __int128 prod = pa * pb; // * 2^40 = 2^FX
  bool prod_negzero = prod == 0 && (signbit(a) != signbit(b));
  return ref_round(prod + c.v, prod_negzero && c.negzero && c.v == 0);
}

static fixed ref_add(fixed a, fixed b) {
  return ref_round(a.v + b.v, a.v == 0 && b.v == 0 && a.negzero && b.negzero);
}

// The defined order, written again from docs/numerics.md.
static float ref_dot_defined(const uint16_t *x, const uint16_t *w, int k) {
  fixed running = {0, false};
  for (int s = 0; s < k; s += 32) {
    fixed even = {0, false}, odd = {0, false};
    for (int j = s; j < k && j < s + 32; j++) {
      fixed *chain = ((j - s) % 2 == 0) ? &even : &odd;
      *chain = ref_fma(num_bf16_to_f32(x[j]), num_bf16_to_f32(w[j]), *chain);
    }
    running = ref_add(running, ref_add(even, odd));
  }
  return from_fixed(running);
}

static float ref_dot_sequential(const uint16_t *x, const uint16_t *w, int k) {
  fixed c = {0, false};
  for (int j = 0; j < k; j++) c = ref_fma(num_bf16_to_f32(x[j]), num_bf16_to_f32(w[j]), c);
  return from_fixed(c);
}

static fixed ref_pairwise_rec(const uint16_t *x, const uint16_t *w, int k) {
  if (k == 1) return ref_fma(num_bf16_to_f32(x[0]), num_bf16_to_f32(w[0]), (fixed){0, false});
  int h = k / 2;
  return ref_add(ref_pairwise_rec(x, w, h), ref_pairwise_rec(x + h, w + h, k - h));
}

static float ref_dot_exact(const uint16_t *x, const uint16_t *w, int k) {
  __int128 sum = 0;
  for (int j = 0; j < k; j++)
    sum += (__int128)ldexp((double)num_bf16_to_f32(x[j]), 20) *
           (__int128)ldexp((double)num_bf16_to_f32(w[j]), 20);
  return from_fixed(ref_round(sum, false));
}

// A random bf16 with exponent in [-8, 8] (so products are multiples of 2^-30
// below 2^18), random sign, or zero now and then.
static uint16_t rand_bf16_mid(void) {
  uint64_t r = test_rand();
  if (r % 23 == 0) return (r >> 8) & 1 ? 0x8000 : 0x0000;
  uint32_t e = (uint32_t)(127 - 8 + (r >> 8) % 17);
  return (uint16_t)(((r >> 16) & 1) << 15 | e << 7 | ((r >> 24) & 0x7f));
}

static void test_mxu_order(void) {
  static const int ks[] = {1, 2, 3, 7, 31, 32, 33, 34, 63, 64, 65, 100, 128, 256};
  uint16_t x[256], w[256];
  int bad = 0, diff_seq = 0, diff_pair = 0, diff_exact = 0, total = 0;
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
    int k = ks[ki];
    for (int rep = 0; rep < 400; rep++) {
      for (int j = 0; j < k; j++) {
        x[j] = rand_bf16_mid();
        w[j] = rand_bf16_mid();
      }
      float got = num_mxu_dot_bf16(x, w, 1, k);
      float want = ref_dot_defined(x, w, k);
      total++;
      if (B(got) != B(want) && bad++ < 5)
        CHECK(0, "k=%d rep=%d: 0x%08x, reference 0x%08x", k, rep, B(got), B(want));
      diff_seq += B(ref_dot_sequential(x, w, k)) != B(want);
      diff_pair += B(from_fixed(ref_pairwise_rec(x, w, k))) != B(want);
      diff_exact += B(ref_dot_exact(x, w, k)) != B(want);
    }
  }
  CHECK(bad == 0, "%d of %d dot products differ from the exact reference", bad, total);
  // The inputs must tell the orders apart, or the check above proves little.
  CHECK(diff_seq > total / 20 && diff_pair > total / 20 && diff_exact > total / 20,
        "orders not distinguished: sequential %d, pairwise %d, exact %d of %d", diff_seq,
        diff_pair, diff_exact, total);
  printf("order: of %d dot products, sequential differs in %d, pairwise in %d, one rounding in "
         "%d\n", total, diff_seq, diff_pair, diff_exact);
}

static void test_mxu_pass(void) {
  enum { M = 3, K = 40, N = 5, LS = 43, WS = 7, AS = 6 };
  uint16_t lhs[M * LS], w[K * WS];
  float acc[M * AS], init[M * AS];
  for (int i = 0; i < M * LS; i++) lhs[i] = rand_bf16_mid();
  for (int i = 0; i < K * WS; i++) w[i] = rand_bf16_mid();
  for (int i = 0; i < M * AS; i++) init[i] = (float)(int)(test_rand() % 1000) - 500.0f;
  for (int pass = 0; pass < 2; pass++) {
    bool accumulate = pass == 1;
    memcpy(acc, init, sizeof acc);
    num_mxu_pass_bf16(acc, AS, lhs, LS, w, WS, M, K, N, accumulate);
    for (int i = 0; i < M; i++)
      for (int j = 0; j < AS; j++) {
        float got = acc[i * AS + j];
        if (j >= N) {
          CHECK_BITS(B(got), B(init[i * AS + j]), "padding column %d touched", j);
          continue;
        }
        float p = num_mxu_dot_bf16(lhs + i * LS, w + j, WS, K);
        float want = accumulate ? num_mxu_add(init[i * AS + j], p) : p;
        CHECK_BITS(B(got), B(want), "pass acc=%d (%d,%d)", accumulate, i, j);
      }
  }
  // Accumulate adds the whole pass result: 1 + (2^-24 + 2^-24) = 1 + 2^-23,
  // where continuing the running sum from 1 would lose both halves.
  uint16_t x[33] = {0}, wc[33] = {0};
  x[0] = BF(0x1p-24f), wc[0] = 0x3f80;
  x[32] = BF(0x1p-24f), wc[32] = 0x3f80;
  float a = 1.0f;
  num_mxu_pass_bf16(&a, 1, x, 33, wc, 1, 1, 33, 1, true);
  CHECK_BITS(B(a), 0x3f800001u, "accumulate adds P once");
  num_mxu_pass_bf16(&a, 1, x, 33, wc, 1, 1, 33, 1, false);
  CHECK_BITS(B(a), 0x34000000u, "overwrite");
  a = F(0x80000000u);
  num_mxu_pass_bf16(&a, 1, x, 1, wc, 1, 1, 0, 1, true);
  CHECK_BITS(B(a), 0x00000000u, "accumulate -0 + (k = 0) +0");
}

// ---------------------------------------------------------------- int8

static void test_int8(void) {
  int8_t a[4] = {-128, -128, 127, -1}, b[4] = {-128, 127, 127, 1};
  CHECK(num_mxu_dot_i8(a, b, 1, 1) == 16384, "-128 * -128");
  CHECK(num_mxu_dot_i8(a, b, 1, 4) == 16384 - 16256 + 16129 - 1, "mixed");
  CHECK(num_mxu_dot_i8(a + 1, b + 1, 1, 1) == -16256, "-128 * 127");
  CHECK(num_mxu_dot_i8(a, b, 2, 2) == 16384 - 128 * 127, "weight stride");
  // 131072 products of 16384 sum to 2^31: wraps to INT32_MIN.
  enum { BIG = 131073 };
  int8_t *x = malloc(BIG), *w = malloc(BIG);
  CHECK(x && w, "malloc");
  if (x && w) {
    memset(x, 0x80, BIG);
    memset(w, 0x80, BIG);
    CHECK(num_mxu_dot_i8(x, w, 1, BIG - 1) == INT32_MIN, "2^31 wraps");
    CHECK(num_mxu_dot_i8(x, w, 1, BIG) == INT32_MIN + 16384, "2^31 + 16384 wraps");
    w[0] = 127; // -128 * 127 first: the sum passes through negatives, ends the same mod 2^32
    CHECK(num_mxu_dot_i8(x, w, 1, BIG) == INT32_MAX - 16255, "2^31 - 16256 fits again");
  }
  free(x);
  free(w);
  int32_t acc[2] = {INT32_MAX, INT32_MIN};
  int8_t one[1] = {1}, neg[1] = {-1}, wt[2] = {1, 1};
  num_mxu_pass_i8(&acc[0], 1, one, 1, wt, 1, 1, 1, 1, true);
  CHECK(acc[0] == INT32_MIN, "accumulate wraps up: %d", acc[0]);
  num_mxu_pass_i8(&acc[1], 1, neg, 1, wt, 1, 1, 1, 1, true);
  CHECK(acc[1] == INT32_MAX, "accumulate wraps down: %d", acc[1]);
  num_mxu_pass_i8(&acc[1], 1, neg, 1, wt, 1, 1, 1, 1, false);
  CHECK(acc[1] == -1, "overwrite");
  // Random passes against int64 arithmetic.
  enum { M = 4, K = 70, N = 6 };
  int8_t l[M * K], wr[K * N];
  int32_t out[M * N];
  for (int i = 0; i < M * K; i++) l[i] = (int8_t)(test_rand() & 0xff);
  for (int i = 0; i < K * N; i++) wr[i] = (int8_t)(test_rand() & 0xff);
  num_mxu_pass_i8(out, N, l, K, wr, N, M, K, N, false);
  int bad = 0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      int64_t s = 0;
      for (int t = 0; t < K; t++) s += (int64_t)l[i * K + t] * wr[t * N + j];
      bad += out[i * N + j] != s;
    }
  CHECK(bad == 0, "%d int8 pass mismatches", bad);
}

// ------------------------------------------------------- loads and stores

static void test_loads_stores(void) {
  float f;
  uint32_t nanp = 0x7f812345u;
  f = num_load(0, &nanp);
  CHECK_BITS(B(f), NUM_CANONICAL_NAN, "f32 load canonicalises NaN");
  uint32_t sub = 0x80000003u;
  CHECK_BITS(B(num_load(0, &sub)), 0x80000003u, "f32 load keeps subnormals");
  uint16_t h = 0xff81;
  CHECK_BITS(B(num_load(1, &h)), NUM_CANONICAL_NAN, "bf16 load canonicalises NaN");
  h = 0xbfc0;
  CHECK_BITS(B(num_load(1, &h)), 0xbfc00000u, "bf16 load");
  static const struct { int32_t in; uint32_t out; } i32s[] = {
      {16777217, 0x4b800000u}, // 2^24 + 1: tie, to even 2^24
      {16777219, 0x4b800002u}, // 2^24 + 3: tie, to even 2^24 + 4
      {-16777217, 0xcb800000u},
      {INT32_MAX, 0x4f000000u},
      {INT32_MIN, 0xcf000000u},
      {0, 0x00000000u},
  };
  for (size_t i = 0; i < sizeof i32s / sizeof i32s[0]; i++)
    CHECK_BITS(B(num_load(2, &i32s[i].in)), i32s[i].out, "i32 load %d", (int)i32s[i].in);
  int8_t b8 = -128;
  CHECK_BITS(B(num_load(3, &b8)), 0xc3000000u, "i8 load -128");

  uint32_t o32;
  num_store(0, &o32, F(0xffc00001u));
  CHECK_BITS(o32, NUM_CANONICAL_NAN, "f32 store canonicalises NaN");
  num_store(0, &o32, F(0x80000001u));
  CHECK_BITS(o32, 0x80000001u, "f32 store keeps subnormals");
  uint16_t o16;
  num_store(1, &o16, F(0x3f818000u));
  CHECK_BITS(o16, 0x3f82u, "bf16 store rounds to even");
  num_store(1, &o16, F(0x7f800001u));
  CHECK_BITS(o16, 0x7fc0u, "bf16 store NaN");

  static const struct { float in; int32_t out; } st32[] = {
      {0.5f, 0},          {1.5f, 2},           {2.5f, 2},
      {-0.5f, 0},         {-1.5f, -2},         {-2.5f, -2},
      {0.49999997f, 0},   {8388607.5f, 8388608}, {8388606.5f, 8388606},
      {2147483520.0f, 2147483520}, {0x1p31f, INT32_MAX}, {1e30f, INT32_MAX},
      {-0x1p31f, INT32_MIN}, {-2147483904.0f, INT32_MIN}, {INFINITY, INT32_MAX},
      {-INFINITY, INT32_MIN}, {NAN, 0}, {-0.0f, 0}, {0x1p-149f, 0},
  };
  for (size_t i = 0; i < sizeof st32 / sizeof st32[0]; i++) {
    int32_t o;
    num_store(2, &o, st32[i].in);
    CHECK(o == st32[i].out, "i32 store %a: %d, want %d", st32[i].in, (int)o, (int)st32[i].out);
  }
  static const struct { float in; int8_t out; } st8[] = {
      {126.5f, 126}, {127.5f, 127}, {127.49f, 127}, {128.0f, 127}, {1e9f, 127},
      {-128.5f, -128}, {-127.5f, -128}, {-126.5f, -126}, {-129.0f, -128}, {-1e9f, -128},
      {INFINITY, 127}, {-INFINITY, -128}, {NAN, 0}, {0.5f, 0}, {1.5f, 2},
      {-0.5f, 0}, {-2.5f, -2}, {3.7f, 4}, {-3.7f, -4},
  };
  for (size_t i = 0; i < sizeof st8 / sizeof st8[0]; i++) {
    int8_t o;
    num_store(3, &o, st8[i].in);
    CHECK(o == st8[i].out, "i8 store %a: %d, want %d", st8[i].in, o, st8[i].out);
  }
  // Round trip of every int8 and a sweep of i32 stores against llrint.
  for (int v = -128; v <= 127; v++) {
    int8_t in = (int8_t)v, o;
    num_store(3, &o, num_load(3, &in));
    CHECK(o == in, "i8 round trip %d", v);
  }
  int bad = 0;
  for (int i = 0; i < 1 << 18; i++) {
    float v = F((uint32_t)test_rand() & 0xcfffffffu); // |v| < 2^32 or tiny
    if (v != v) continue;
    int32_t o;
    num_store(2, &o, v);
    long long want = llrint((double)v); // default rounding mode: ties to even
    if (want > INT32_MAX) want = INT32_MAX;
    if (want < INT32_MIN) want = INT32_MIN;
    bad += o != want;
  }
  CHECK(bad == 0, "%d i32 store mismatches against llrint", bad);
}

// ---------------------------------------------------------------- requant

// Independent: long double holds the 63-bit product exactly, the scaling is
// exact, and roundl rounds half away from zero.
static int8_t ref_requant(int32_t x, int32_t mult, int shift, int32_t zp) {
  long double v = roundl(ldexpl((long double)((int64_t)x * mult), -shift)) + zp;
  return v > 127 ? 127 : v < -128 ? -128 : (int8_t)v;
}

// docs/numerics.md 7.1's examples.
static void test_iadd(void) {
  int32_t a[6] = {100, 16777217, INT32_MAX, INT32_MAX, 0, 0}, b[6] = {-228, 0, 1, 1, -128, 0};
  int8_t d8;
  int32_t d32;
  float f;
  num_viadd(&d8, 3, &a[0], 2, &b[0], 2, false, 1, 0);
  CHECK(d8 == -128, "i32 100 + -228 to i8 = %d", d8);
  uint8_t u[2] = {200, 0xff}, u100 = 100, du;
  num_viadd(&du, 3, &u[0], 3, &u100, 3, false, 1, NUM_IADD_A_U8 | NUM_IADD_B_U8 | NUM_IADD_D_U8);
  CHECK(du == 255, "u8 200 + 100 to u8 = %d", du);
  num_viadd(&d8, 3, &u[1], 3, &b[4], 2, false, 1, NUM_IADD_A_U8);
  CHECK(d8 == 127, "u8 255 + -128 to i8 = %d", d8);
  num_viadd(&d8, 3, &u[1], 3, &b[4], 2, false, 1, 0);
  CHECK(d8 == -128, "i8 -1 + -128 to i8 = %d", d8);
  num_viadd(&d32, 2, &a[2], 2, &b[2], 2, false, 1, 0);
  CHECK(d32 == INT32_MAX, "INT32_MAX + 1 to i32 = %d", (int)d32);
  num_viadd(&f, 0, &a[3], 2, &b[3], 2, false, 1, 0);
  CHECK(f == 2147483648.0f, "INT32_MAX + 1 to f32 = %g", (double)f);
  num_viadd(&f, 0, &a[1], 2, &b[1], 2, false, 1, 0);
  CHECK(f == 16777216.0f, "16777217 to f32 = %.1f", (double)f);
  int32_t many[300], one = -3, out[300]; // longer than one staging chunk, b broadcast, in place
  for (int i = 0; i < 300; i++) many[i] = i;
  num_viadd(many, 2, many, 2, &one, 2, true, 300, 0);
  memcpy(out, many, sizeof out);
  int bad = 0;
  for (int i = 0; i < 300; i++) bad += out[i] != i - 3;
  CHECK(bad == 0, "in place, b broadcast over 300 elements: %d wrong", bad);
}

static void test_requant(void) {
  static const struct { int32_t x, mult; int shift; int32_t zp; int8_t out; } c[] = {
      {5, 3, 0, 0, 15},       {5, 3, 0, -20, -5},     {1, 3, 1, 0, 2},   // 1.5 -> 2
      {-1, 3, 1, 0, -2},      {5, 1, 1, 0, 3},        {-5, 1, 1, 0, -3}, // ties away
      {1, 1, 1, 0, 1},        {-1, 1, 1, 0, -1},      {7, 1, 2, 0, 2},   // 0.5 -> 1, 1.75 -> 2
      {-7, 1, 2, 0, -2},      {5, 1, 2, 0, 1},        {-5, 1, 2, 0, -1}, // 1.25 -> 1
      {-6, 1, 2, 0, -2},      {6, 1, 2, 0, 2},                           // 1.5 -> 2
      {INT32_MIN, INT32_MIN, 63, 0, 1},   // 2^62 / 2^63 = 0.5 -> 1
      {INT32_MIN, INT32_MAX, 63, 0, 0},   // just above -0.5 -> 0
      {INT32_MAX, INT32_MAX, 63, 0, 0},   // just below 0.5 -> 0
      {INT32_MIN, INT32_MIN, 62, 0, 1},   {INT32_MIN, INT32_MAX, 62, 0, -1},
      {INT32_MIN, INT32_MIN, 0, 0, 127},  {INT32_MIN, INT32_MAX, 0, 0, -128},
      {INT32_MIN, INT32_MAX, 0, INT32_MIN, -128}, {INT32_MIN, INT32_MIN, 0, INT32_MAX, 127},
      {0, 0, 10, 200, 127},   {0, 0, 10, -200, -128}, {0, 5, 3, 127, 127},
      {100, 1, 0, 27, 127},   {100, 1, 0, 28, 127},   {-100, 1, 0, -28, -128},
      {-100, 1, 0, -29, -128},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    CHECK(num_requant(c[i].x, c[i].mult, c[i].shift, c[i].zp) == c[i].out,
          "requant(%d, %d, %d, %d) = %d, want %d", (int)c[i].x, (int)c[i].mult, c[i].shift,
          (int)c[i].zp, num_requant(c[i].x, c[i].mult, c[i].shift, c[i].zp), c[i].out);
  CHECK(num_requant(1000, 1 << 20, 23, 3) == 127, "1000 * 2^20 / 2^23 = 125, + 3 saturates");
  CHECK(num_requant(1000, 1 << 20, 23, 2) == 127, "125 + 2 = 127");
  CHECK(num_requant(1000, 1 << 20, 23, 1) == 126, "125 + 1");
  CHECK(num_requant(5, 1, -3, 0) == 5, "negative shift clamps to 0");
  CHECK(num_requant(INT32_MIN, INT32_MIN, 64, 0) == 1, "shift 64 clamps to 63");
  CHECK(num_requant(INT32_MIN, INT32_MIN, 1000, 0) == 1, "shift 1000 clamps to 63");
#if LDBL_MANT_DIG >= 64
  int bad = 0;
  for (int i = 0; i < 200000; i++) {
    uint64_t r = test_rand();
    int32_t x = (int32_t)(uint32_t)r, mult = (int32_t)(uint32_t)(r >> 32);
    if (i % 3 == 0) x /= (int32_t)1 << (r >> 5) % 31; // smaller magnitudes too
    if (i % 5 == 0) mult /= (int32_t)1 << (r >> 10) % 31;
    int shift = (int)(test_rand() % 64);
    int32_t zp = (int32_t)(test_rand() % 301) - 150;
    if (i % 7 == 0) { // make exact ties likely
      x = (int32_t)(test_rand() % 2001) - 1000;
      mult = 1;
      shift = 1 + (int)(test_rand() % 3);
    }
    if (num_requant(x, mult, shift, zp) != ref_requant(x, mult, shift, zp) && bad++ < 5)
      CHECK(0, "requant(%d, %d, %d, %d) = %d, reference %d", (int)x, (int)mult, shift, (int)zp,
            num_requant(x, mult, shift, zp), ref_requant(x, mult, shift, zp));
  }
  CHECK(bad == 0, "%d random requant mismatches", bad);
#endif
}

// ------------------------------------------------------- transcendentals

static double ulp_of(double y) { // the fp32 ulp at |y|
  y = fabs(y);
  if (y < 0x1p-126) return 0x1p-149;
  if (y >= 0x1p127) return 0x1p104;
  int e;
  frexp(y, &e);
  return ldexp(1.0, e - 24);
}
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

typedef struct {
  const char *name;
  float (*fn)(float);
  double (*ref)(double);
  double bound; // ulp, asserted
  double max;   // measured here
  float worst;
  long bad;
} fn_case;

static void measure(fn_case *c, float x) {
  float got = c->fn(x);
  if (x != x) {
    if (B(got) != NUM_CANONICAL_NAN && c->bad++ < 3)
      CHECK(0, "%s(NaN 0x%08x) = 0x%08x", c->name, B(x), B(got));
    return;
  }
  double r = c->ref((double)x);
  if (r != r) {
    if (B(got) != NUM_CANONICAL_NAN && c->bad++ < 3)
      CHECK(0, "%s(%a) = %a, want canonical NaN", c->name, x, got);
    return;
  }
  if (isinf(got) || fabs(r) >= 0x1p128) {
    if (got != (float)r && c->bad++ < 3) CHECK(0, "%s(%a) = %a, want %a", c->name, x, got, r);
    return;
  }
  double e = fabs((double)got - r) / ulp_of(r);
  if (e > c->max) {
    c->max = e;
    c->worst = x;
  }
}

static float uniform(float lo, float hi) {
  return lo + (hi - lo) * (float)((double)(test_rand() >> 11) * 0x1p-53);
}

static void test_transcendentals(void) {
  fn_case cases[] = {
      {"exp", num_exp, exp, 1.0, 0, 0, 0},
      {"log", num_log, log, 1.0, 0, 0, 0},
      {"tanh", num_tanh, tanh, 1.5, 0, 0, 0},
      {"sigmoid", num_sigmoid, ref_sigmoid, 2.5, 0, 0, 0},
      {"erf", num_erf, erf, 1.5, 0, 0, 0},
  };
  static const float ranges[][2] = {{-104.5f, 89.0f}, {0.0f, 4.0f}, {-12.0f, 12.0f},
                                    {-110.0f, 30.0f}, {-4.5f, 4.5f}};
  bool exhaustive = getenv("SYSTOLE_NUMERICS_EXHAUSTIVE") != NULL;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fn_case *c = &cases[i];
    if (exhaustive) {
      for (uint64_t u = 0; u < 0x100000000ull; u++) measure(c, F((uint32_t)u));
    } else {
      for (int j = 0; j < 1 << 19; j++) measure(c, F((uint32_t)test_rand()));
      for (int j = 0; j < 1 << 19; j++) measure(c, uniform(ranges[i][0], ranges[i][1]));
      // Every float in [0.5, 1) and [1, 2) at a stride, and around the branch points.
      for (uint32_t u = 0x3f000000u; u < 0x40000000u; u += 61) {
        measure(c, F(u));
        measure(c, F(u | 0x80000000u));
      }
      static const float pts[] = {0x1p-12f, 0.625f, 1.0f, 4.0f, 10.0f, 88.72283f, -103.97208f,
                                  -87.33654f, 0x1p-126f, 0x1p-149f};
      for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++)
        for (int d = -300; d <= 300; d++) {
          measure(c, F((uint32_t)((int64_t)B(pts[p]) + d)));
          measure(c, F((uint32_t)((int64_t)B(pts[p]) + d) | 0x80000000u));
        }
    }
    CHECK(c->bad == 0, "%s: %ld special-value failures", c->name, c->bad);
    CHECK(c->max <= c->bound, "%s: max error %.4f ulp at %a exceeds %.2f", c->name, c->max,
          c->worst, c->bound);
    printf("%s: max error %.4f ulp at %a (%s, bound %.2f)\n", c->name, c->max, c->worst,
           exhaustive ? "all 2^32 inputs" : "sampled", c->bound);
  }
  // Odd functions are odd bit for bit.
  for (int j = 0; j < 100000; j++) {
    float x = F((uint32_t)test_rand() & 0x7fffffffu);
    if (x != x) continue;
    CHECK_BITS(B(num_tanh(-x)), B(num_tanh(x)) ^ 0x80000000u, "tanh(-%a)", x);
    CHECK_BITS(B(num_erf(-x)), B(num_erf(x)) ^ 0x80000000u, "erf(-%a)", x);
  }
}

static void test_special_values(void) {
  const uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0xffc00000u, 0xffffffffu, 0x7fa00000u};
  float (*fns[])(float) = {num_exp, num_log, num_tanh, num_sigmoid, num_erf,
                           num_sqrt, num_rsqrt, num_recip};
  for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++)
    for (size_t n = 0; n < sizeof nans / sizeof nans[0]; n++)
      CHECK_BITS(B(fns[f](F(nans[n]))), NUM_CANONICAL_NAN, "function %zu of NaN 0x%08x", f,
                 nans[n]);
  static const struct { float (*fn)(float); float in; uint32_t out; const char *what; } c[] = {
      {num_exp, -INFINITY, 0x00000000u, "exp(-inf)"},
      {num_exp, INFINITY, 0x7f800000u, "exp(inf)"},
      {num_exp, 0.0f, 0x3f800000u, "exp(0)"},
      {num_exp, -0.0f, 0x3f800000u, "exp(-0)"},
      {num_exp, 1.0f, 0x402df854u, "exp(1)"},
      {num_exp, 0x1.62e42ep+6f, 0x7f7fff84u, "exp(largest finite case)"},
      {num_exp, 0x1.62e430p+6f, 0x7f800000u, "exp overflows"},
      {num_exp, 1000.0f, 0x7f800000u, "exp(1000)"},
      {num_exp, -0x1.9d1da0p+6f, 0x00000001u, "exp(-103.279) = 2^-149"},
      {num_exp, -0x1.9fe368p+6f, 0x00000001u, "exp(-103.97207) rounds up to 2^-149"},
      {num_exp, -0x1.9fe36ap+6f, 0x00000000u, "exp(-103.97208) rounds to 0"},
      {num_exp, -0x1.5d589ep+6f, 0x00800026u, "exp near FLT_MIN"},
      {num_exp, -1000.0f, 0x00000000u, "exp(-1000)"},
      {num_exp, 0x1p-149f, 0x3f800000u, "exp(subnormal)"},
      {num_log, 0.0f, 0xff800000u, "log(0)"},
      {num_log, -0.0f, 0xff800000u, "log(-0)"},
      {num_log, -1.0f, NUM_CANONICAL_NAN, "log(-1)"},
      {num_log, -0x1p-149f, NUM_CANONICAL_NAN, "log(negative subnormal)"},
      {num_log, -INFINITY, NUM_CANONICAL_NAN, "log(-inf)"},
      {num_log, INFINITY, 0x7f800000u, "log(inf)"},
      {num_log, 1.0f, 0x00000000u, "log(1) = +0"},
      {num_log, 2.0f, 0x3f317218u, "log(2)"},
      {num_log, 0x1p-149f, 0xc2ce8ed0u, "log(2^-149)"},
      {num_log, FLT_MAX, 0x42b17218u, "log(FLT_MAX)"},
      {num_tanh, INFINITY, 0x3f800000u, "tanh(inf)"},
      {num_tanh, -INFINITY, 0xbf800000u, "tanh(-inf)"},
      {num_tanh, -0.0f, 0x80000000u, "tanh(-0)"},
      {num_tanh, 0.0f, 0x00000000u, "tanh(0)"},
      {num_tanh, -0x1p-149f, 0x80000001u, "tanh(subnormal)"},
      {num_tanh, 9.0f, 0x3f7fffffu, "tanh(9) just below 1"},
      {num_tanh, 9.1f, 0x3f800000u, "tanh(9.1) rounds to 1"},
      {num_sigmoid, -INFINITY, 0x00000000u, "sigmoid(-inf)"},
      {num_sigmoid, INFINITY, 0x3f800000u, "sigmoid(inf)"},
      {num_sigmoid, 0.0f, 0x3f000000u, "sigmoid(0)"},
      {num_sigmoid, -0.0f, 0x3f000000u, "sigmoid(-0)"},
      {num_sigmoid, -100.0f, 0x0000001bu, "sigmoid(-100) is subnormal"},
      {num_sigmoid, -200.0f, 0x00000000u, "sigmoid(-200)"},
      {num_sigmoid, 20.0f, 0x3f800000u, "sigmoid(20)"},
      {num_erf, INFINITY, 0x3f800000u, "erf(inf)"},
      {num_erf, -INFINITY, 0xbf800000u, "erf(-inf)"},
      {num_erf, -0.0f, 0x80000000u, "erf(-0)"},
      {num_erf, 0.0f, 0x00000000u, "erf(0)"},
      {num_erf, 0x1p-149f, 0x00000001u, "erf(2^-149) = 1.128 * 2^-149 rounds to 2^-149"},
      {num_erf, 0x1p-148f, 0x00000002u, "erf(2^-148)"},
      {num_erf, 3.9f, 0x3f7fffffu, "erf(3.9) just below 1"},
      {num_erf, 4.0f, 0x3f800000u, "erf(4)"},
      {num_sqrt, -1.0f, NUM_CANONICAL_NAN, "sqrt(-1)"},
      {num_sqrt, -0.0f, 0x80000000u, "sqrt(-0)"},
      {num_sqrt, 2.0f, 0x3fb504f3u, "sqrt(2)"},
      {num_sqrt, INFINITY, 0x7f800000u, "sqrt(inf)"},
      {num_rsqrt, 0.0f, 0x7f800000u, "rsqrt(0)"},
      {num_rsqrt, -0.0f, 0xff800000u, "rsqrt(-0)"},
      {num_rsqrt, INFINITY, 0x00000000u, "rsqrt(inf)"},
      {num_rsqrt, -4.0f, NUM_CANONICAL_NAN, "rsqrt(-4)"},
      {num_rsqrt, 4.0f, 0x3f000000u, "rsqrt(4)"},
      {num_rsqrt, 2.0f, 0x3f3504f3u, "rsqrt(2): 1 / 1.4142135 rounded"},
      {num_recip, 0.0f, 0x7f800000u, "recip(0)"},
      {num_recip, -0.0f, 0xff800000u, "recip(-0)"},
      {num_recip, 3.0f, 0x3eaaaaabu, "recip(3)"},
      {num_recip, -INFINITY, 0x80000000u, "recip(-inf)"},
      {num_recip, 0x1p-128f, 0x7f800000u, "recip(subnormal) overflows"},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    CHECK_BITS(B(c[i].fn(c[i].in)), c[i].out, "%s", c[i].what);
}

// The bits are the specification: any change to an algorithm or coefficient
// changes these digests, on every host. Update them only with the docs.
static uint64_t digest(float (*fn)(float)) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t u = 0; u < 0xffff0000u; u += 0x10001u) { // 65535 patterns over all classes
    h ^= B(fn(F(u)));
    h *= 0x100000001b3ull;
  }
  return h;
}

static void test_digests(void) {
  static const struct { const char *name; float (*fn)(float); uint64_t want; } d[] = {
      {"exp", num_exp, 0xf673d45b722b2a14ull},
      {"log", num_log, 0x48c25acc5bdc314dull},
      {"tanh", num_tanh, 0x903507fe59b61cfaull},
      {"sigmoid", num_sigmoid, 0x1581935864358c90ull},
      {"erf", num_erf, 0xa5c2b993f19b4186ull},
  };
  for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
    uint64_t h = digest(d[i].fn);
    CHECK(h == d[i].want, "%s digest 0x%016llx, want 0x%016llx", d[i].name,
          (unsigned long long)h, (unsigned long long)d[i].want);
  }
}

// ----------------------------------------------------- AMX (when present)

#ifdef HAVE_AMX_PROBE
typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_config;

enum { AMX_KMAX = 96 };

// C[16][16] = the dot products of a[16][kpad] and the weight columns, kpad a
// multiple of 32, one TDPBF16PS per slice of 32 into a zeroed C tile.
// bv is the weights in the pair-interleaved ("VNNI") layout:
// bv[r][2j + t] = w[2r + t][j].
__attribute__((target("amx-tile,amx-bf16"))) static void
amx_tiles(float c[16][16], const uint16_t a[16][AMX_KMAX], const uint16_t bv[AMX_KMAX / 2][32],
          int kpad) {
  amx_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 3; t++) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
  _tile_zero(0);
  for (int s = 0; s < kpad; s += 32) {
    _tile_loadd(1, &a[0][s], AMX_KMAX * 2);
    _tile_loadd(2, &bv[s / 2][0], 64);
    _tile_dpbf16ps(0, 1, 2);
  }
  _tile_stored(0, c, 64);
  _tile_release();
}

static bool amx_available(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!((d >> 22) & 1) || !((d >> 24) & 1)) return false; // AMX-BF16, AMX-TILE
  // The kernel lists the flag only if it manages the tile state.
  FILE *f = fopen("/proc/cpuinfo", "r"); // size unknown in advance: read by lines
  bool listed = false;
  char line[8192];
  while (f && !listed && fgets(line, sizeof line, f)) listed = strstr(line, " amx_bf16") != NULL;
  if (f) fclose(f);
  if (!listed) return false;
  return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
}

// Edge-heavy bf16 values. kind 0: moderate normals only; 1: with zeros,
// subnormals, tiny and huge values; 2: also inf and NaN; 3: everything near
// FLT_MIN after multiplication, so sums cross the subnormal boundary; 4:
// products mostly below FLT_MIN, so chains flush to +0 and -0.
static uint16_t rand_bf16_edge(int kind) {
  uint64_t r = test_rand();
  uint16_t sign = (uint16_t)(((r >> 40) & 1) << 15), man = (uint16_t)((r >> 41) & 0x7f);
  unsigned pick = (unsigned)(r % 1000);
  if (kind == 4) return (uint16_t)(sign | (uint16_t)(127 - 64 - 2 + (r >> 50) % 4) << 7 | man);
  if (kind == 3) return (uint16_t)(sign | (uint16_t)(127 - 63 - 2 + (r >> 50) % 5) << 7 | man);
  if (kind >= 1) {
    if (pick < 40) return sign;                                       // +-0
    if (pick < 80) return (uint16_t)(sign | (man ? man : 1));         // subnormal
    if (pick < 130) return (uint16_t)(sign | (uint16_t)(1 + (r >> 50) % 40) << 7 | man); // tiny
    if (pick < 170) return (uint16_t)(sign | (uint16_t)(200 + (r >> 50) % 55) << 7 | man); // huge
    if (pick < 175) return 0x7f7f | sign;                             // max finite
  }
  if (kind == 2) {
    if (pick >= 995) return (uint16_t)(sign | 0x7f80);              // inf
    if (pick == 994) return (uint16_t)(0x7f80 | sign | (man ? man : 1)); // NaN, payloads
  }
  return (uint16_t)(sign | (uint16_t)(127 - 12 + (r >> 50) % 25) << 7 | man);
}

static void test_amx(void) {
  if (!amx_available()) {
    printf("amx: no AMX-BF16 here (or the OS refused tile data): skipped\n");
    return;
  }
  static uint16_t a[16][AMX_KMAX], w[AMX_KMAX][16], bv[AMX_KMAX / 2][32];
  static float c[16][16];
  static const int ks[] = {32, 64, 96, 1, 2, 31, 33, 47, 95};
  int outputs = 0, bad = 0, nans = 0, zeros = 0, negzeros = 0, infs = 0;
  for (int round = 0; round < 200; round++) {
    int kind = round % 5, k = ks[round % (sizeof ks / sizeof ks[0])];
    int kpad = (k + 31) / 32 * 32;
    for (int i = 0; i < 16; i++)
      for (int j = 0; j < AMX_KMAX; j++) a[i][j] = rand_bf16_edge(kind);
    for (int j = 0; j < AMX_KMAX; j++)
      for (int n = 0; n < 16; n++) w[j][n] = rand_bf16_edge(kind);
    // Pad k up to a slice with -0 * +0: fma(-0, +0, c) = c for every c,
    // +0 and -0 included, so padding changes no bit.
    for (int i = 0; i < 16; i++)
      for (int j = k; j < kpad; j++) a[i][j] = 0x8000;
    for (int j = k; j < kpad; j++)
      for (int n = 0; n < 16; n++) w[j][n] = 0x0000;
    for (int r = 0; r < kpad / 2; r++)
      for (int n = 0; n < 16; n++) {
        bv[r][2 * n] = w[2 * r][n];
        bv[r][2 * n + 1] = w[2 * r + 1][n];
      }
    amx_tiles(c, (const uint16_t(*)[AMX_KMAX])a, (const uint16_t(*)[32])bv, kpad);
    for (int i = 0; i < 16; i++)
      for (int n = 0; n < 16; n++) {
        float want = num_mxu_dot_bf16(a[i], &w[0][n], 16, k);
        float got = num_canon(c[i][n]);
        outputs++;
        nans += want != want;
        infs += isinf(want) != 0;
        zeros += want == 0.0f;
        negzeros += B(want) == 0x80000000u;
        if (B(got) != B(want) && bad++ < 5)
          CHECK(0, "AMX kind %d k %d (%d,%d): 0x%08x, num_mxu_dot_bf16 0x%08x", kind, k, i, n,
                B(c[i][n]), B(want));
      }
  }
  CHECK(bad == 0, "AMX: %d of %d outputs differ", bad, outputs);
  printf("amx: %d outputs (%d zero of which %d -0, %d inf, %d NaN), %d differ from "
         "num_mxu_dot_bf16\n", outputs, zeros, negzeros, infs, nans, bad);
}
#else
static void test_amx(void) { printf("amx: not an x86-64 Linux build: skipped\n"); }
#endif

int main(void) {
  test_seed(20240611);
  test_bf16();
  test_canon_flush();
  test_mxu_edges();
  test_mxu_order();
  test_mxu_pass();
  test_int8();
  test_loads_stores();
  test_iadd();
  test_requant();
  test_special_values();
  test_transcendentals();
  test_digests();
  test_amx();
  return test_done("test_numerics");
}
