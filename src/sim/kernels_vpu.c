// The vector unit's loads, stores and operations on rows of elements: the
// bits of num_load, num_store and the simulator's per-element operations
// (docs/numerics.md sections 5 and 6), in loops the compiler vectorises.
// Built with -O3 (CMakeLists.txt) and, on x86-64 Linux, cloned for AVX-512
// and AVX2 with the best picked at load time: the same C, the same IEEE
// operations, so every clone gives the same bits (tests/test_kernels.c).
#include <math.h>
#include <string.h>

#include "sim/kernels.h"
#include "sim/numerics.h"

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

static inline __attribute__((always_inline)) uint32_t fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline __attribute__((always_inline)) float bitsf(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

CLONES void num_vload(int dtype, float *restrict out, const void *restrict src, size_t n) {
  switch (dtype) {
  case 0: memcpy(out, src, n * sizeof *out); break;
  case 1: {
    const uint16_t *s = src;
    for (size_t i = 0; i < n; i++) out[i] = bitsf((uint32_t)s[i] << 16);
    break;
  }
  case 2: {
    const int32_t *s = src;
    for (size_t i = 0; i < n; i++) out[i] = (float)s[i]; // RNE (the default rounding mode)
    break;
  }
  default: {
    const int8_t *s = src;
    for (size_t i = 0; i < n; i++) out[i] = (float)s[i];
    break;
  }
  }
}

// Round to an integer, ties to even, exactly as numerics.c's round_even.
static inline __attribute__((always_inline)) float round_even(float v) {
  float a = fabsf(v);
  float r = bitsf(fbits((a + 0x1p+23f) - 0x1p+23f) | (fbits(v) & 0x80000000u));
  return a < 0x1p+23f ? r : v;
}

CLONES void num_vstore(int dtype, void *restrict dst, const float *restrict in, size_t n) {
  switch (dtype) {
  case 0: {
    uint32_t *d = dst;
    for (size_t i = 0; i < n; i++) {
      uint32_t u = fbits(in[i]);
      d[i] = (u & 0x7fffffffu) > 0x7f800000u ? NUM_CANONICAL_NAN : u;
    }
    break;
  }
  case 1: {
    uint16_t *d = dst;
    for (size_t i = 0; i < n; i++) {
      uint32_t u = fbits(in[i]);
      uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
      d[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? NUM_BF16_NAN : r);
    }
    break;
  }
  case 2: {
    int32_t *d = dst;
    for (size_t i = 0; i < n; i++) {
      float r = round_even(in[i]);
      d[i] = r != r ? 0 : r >= 0x1p+31f ? INT32_MAX : r <= -0x1p+31f ? INT32_MIN : (int32_t)r;
    }
    break;
  }
  default: {
    int8_t *d = dst;
    for (size_t i = 0; i < n; i++) {
      float r = round_even(in[i]);
      r = r >= 127.0f ? 127.0f : r <= -128.0f ? -128.0f : r;
      d[i] = r != r ? 0 : (int8_t)(int)r;
    }
    break;
  }
  }
}

// max and min as the vector unit defines them: NaN if either is NaN;
// max(-0, +0) = +0, min(-0, +0) = -0 (docs/isa.md).
static inline __attribute__((always_inline)) float vmax(float a, float b) {
  float r = a > b ? a : b > a ? b : (fbits(a) >> 31 ? b : a);
  return a != a || b != b ? NAN : r;
}

static inline __attribute__((always_inline)) float vmin(float a, float b) {
  float r = a < b ? a : b < a ? b : (fbits(a) >> 31 ? a : b);
  return a != a || b != b ? NAN : r;
}

CLONES void num_vop(int op, float *out, const float *a, const float *b, size_t n) {
  switch (op) {
  case 0x00: memmove(out, a, n * sizeof *out); break;                     // mov
  case 0x01: for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i]; break;  // add
  case 0x02: for (size_t i = 0; i < n; i++) out[i] = a[i] - b[i]; break;  // sub
  case 0x03: for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i]; break;  // mul
  case 0x04: for (size_t i = 0; i < n; i++) out[i] = a[i] / b[i]; break;  // div
  case 0x05: for (size_t i = 0; i < n; i++) out[i] = vmax(a[i], b[i]); break;
  case 0x06: for (size_t i = 0; i < n; i++) out[i] = vmin(a[i], b[i]); break;
  case 0x08: // relu: relu(-0) = +0, NaN stays NaN
    for (size_t i = 0; i < n; i++) {
      float x = a[i];
      out[i] = x != x ? x : x > 0.0f ? x : 0.0f;
    }
    break;
  case 0x09: for (size_t i = 0; i < n; i++) out[i] = -a[i]; break;
  case 0x0a: for (size_t i = 0; i < n; i++) out[i] = fabsf(a[i]); break;
  case 0x10: for (size_t i = 0; i < n; i++) out[i] = num_exp(a[i]); break;
  case 0x11: for (size_t i = 0; i < n; i++) out[i] = num_log(a[i]); break;
  case 0x12: for (size_t i = 0; i < n; i++) out[i] = num_tanh(a[i]); break;
  case 0x13: for (size_t i = 0; i < n; i++) out[i] = num_sigmoid(a[i]); break;
  case 0x14: for (size_t i = 0; i < n; i++) out[i] = num_erf(a[i]); break;
  case 0x15: for (size_t i = 0; i < n; i++) out[i] = 1.0f / sqrtf(a[i]); break; // rsqrt: two roundings
  case 0x16: for (size_t i = 0; i < n; i++) out[i] = sqrtf(a[i]); break;
  case 0x17: for (size_t i = 0; i < n; i++) out[i] = 1.0f / a[i]; break;
  // comparisons (IEEE: every one but cne is false with a NaN operand)
  case 0x18: for (size_t i = 0; i < n; i++) out[i] = a[i] == b[i] ? 1.0f : 0.0f; break;
  case 0x19: for (size_t i = 0; i < n; i++) out[i] = a[i] != b[i] ? 1.0f : 0.0f; break;
  case 0x1a: for (size_t i = 0; i < n; i++) out[i] = a[i] < b[i] ? 1.0f : 0.0f; break;
  case 0x1b: for (size_t i = 0; i < n; i++) out[i] = a[i] <= b[i] ? 1.0f : 0.0f; break;
  case 0x1c: for (size_t i = 0; i < n; i++) out[i] = a[i] > b[i] ? 1.0f : 0.0f; break;
  case 0x1d: for (size_t i = 0; i < n; i++) out[i] = a[i] >= b[i] ? 1.0f : 0.0f; break;
  // mask, maskn: -0.0 where not selected (x + -0.0 == x for every x)
  case 0x1e: for (size_t i = 0; i < n; i++) out[i] = b[i] != 0.0f ? a[i] : -0.0f; break;
  case 0x1f: for (size_t i = 0; i < n; i++) out[i] = b[i] == 0.0f ? a[i] : -0.0f; break;
  case 0x0b: for (size_t i = 0; i < n; i++) out[i] = truncf(a[i]); break;
  case 0x07: memmove(out, a, n * sizeof *out); break; // movu: the loads and stores differ
  default: memmove(out, a, n * sizeof *out); break; // not elementwise: never called so
  }
}

static inline __attribute__((always_inline)) float canonf(float r) {
  uint32_t u = fbits(r);
  return (u & 0x7fffffffu) > 0x7f800000u ? bitsf(NUM_CANONICAL_NAN) : r;
}

// The fp32 operations num_vop_f32 fuses, on x = a[i] and y = b[i].
#define VOP_F32_CASES(OUT, X, Y)                                                                \
  case 0x00: for (size_t i = 0; i < n; i++) OUT = canonf(X); break;                           \
  case 0x01: for (size_t i = 0; i < n; i++) OUT = canonf(X + Y); break;                       \
  case 0x02: for (size_t i = 0; i < n; i++) OUT = canonf(X - Y); break;                       \
  case 0x03: for (size_t i = 0; i < n; i++) OUT = canonf(X * Y); break;                       \
  case 0x04: for (size_t i = 0; i < n; i++) OUT = canonf(X / Y); break;                       \
  case 0x05: for (size_t i = 0; i < n; i++) OUT = canonf(vmax(X, Y)); break;                  \
  case 0x06: for (size_t i = 0; i < n; i++) OUT = canonf(vmin(X, Y)); break;                  \
  case 0x08:                                                                                  \
    for (size_t i = 0; i < n; i++) {                                                          \
      float x_ = X;                                                                           \
      OUT = canonf(x_ != x_ ? x_ : x_ > 0.0f ? x_ : 0.0f);                                    \
    }                                                                                         \
    break;                                                                                    \
  case 0x09: for (size_t i = 0; i < n; i++) OUT = canonf(-X); break;                          \
  case 0x0a: for (size_t i = 0; i < n; i++) OUT = canonf(fabsf(X)); break;                    \
  case 0x15: for (size_t i = 0; i < n; i++) OUT = canonf(1.0f / sqrtf(X)); break;             \
  case 0x16: for (size_t i = 0; i < n; i++) OUT = canonf(sqrtf(X)); break;                    \
  case 0x17: for (size_t i = 0; i < n; i++) OUT = canonf(1.0f / X); break;                    \
  default: return false;

// Three aliasings, each with restrict so that the loops vectorise: apart,
// in place on a, in place on b (elementwise, so each is safe).
#define INLINE static inline __attribute__((always_inline)) // so that each clone gets its own copy

INLINE bool vop_apart(int op, float *restrict d, const float *restrict a, const float *restrict b, size_t n) {
  switch (op) { VOP_F32_CASES(d[i], a[i], b[i]) }
  return true;
}
INLINE bool vop_on_a(int op, float *restrict d, const float *restrict b, size_t n) {
  switch (op) { VOP_F32_CASES(d[i], d[i], b[i]) }
  return true;
}
INLINE bool vop_on_b(int op, float *restrict d, const float *restrict a, size_t n) {
  switch (op) { VOP_F32_CASES(d[i], a[i], d[i]) }
  return true;
}

// Row by row in one call: ResNet-50's bias additions are rows of 128
// elements, a call and a dispatch each before (7% of a run's vector time).
CLONES bool num_vop_f32(int op, float *d, size_t ds, const float *a, size_t as, const float *b, size_t bs,
                        size_t rows, size_t n) {
  if (!b) b = a, bs = as; // unary: never read
  if (!rows || !n) return vop_apart(op, d, a, b, 0);
  for (size_t r = 0; r < rows; r++) {
    float *dr = d + r * ds;
    const float *ar = a + r * as, *br = b + r * bs;
    if (!(dr == ar ? vop_on_a(op, dr, br, n) : dr == br ? vop_on_b(op, dr, ar, n) : vop_apart(op, dr, ar, br, n)))
      return false;
  }
  return true;
}

CLONES void num_vfold(int op, float *restrict acc, const float *restrict x, size_t n) {
  switch (op) {
  case 0x21: case 0x25: for (size_t i = 0; i < n; i++) acc[i] = vmax(acc[i], x[i]); break;
  case 0x22: case 0x26: for (size_t i = 0; i < n; i++) acc[i] = vmin(acc[i], x[i]); break;
  default: for (size_t i = 0; i < n; i++) acc[i] = acc[i] + x[i]; break; // rsum, csum
  }
}

float num_vreduce(int op, float acc, const float *x, size_t n) {
  switch (op) {
  case 0x21: case 0x25: for (size_t i = 0; i < n; i++) acc = vmax(acc, x[i]); break;
  case 0x22: case 0x26: for (size_t i = 0; i < n; i++) acc = vmin(acc, x[i]); break;
  default: for (size_t i = 0; i < n; i++) acc = acc + x[i]; break; // in order: fp32 sums do not reassociate
  }
  return acc;
}

CLONES void num_vrequant(int8_t *restrict dst, const int32_t *restrict src, size_t n, int32_t mult, int shift,
                         int32_t zp) {
  if (shift < 0) shift = 0;
  if (shift > 63) shift = 63;
  uint64_t half = shift ? (uint64_t)1 << (shift - 1) : 0;
  for (size_t i = 0; i < n; i++) {
    // numerics.c num_requant: exact 64-bit product, ties away from zero on the
    // magnitude, then the zero point and saturation.
    int64_t p = (int64_t)src[i] * (int64_t)mult;
    uint64_t mag = p < 0 ? (uint64_t)0 - (uint64_t)p : (uint64_t)p;
    mag = (mag + half) >> shift;
    int64_t q = (p < 0 ? -(int64_t)mag : (int64_t)mag) + zp;
    dst[i] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
  }
}
