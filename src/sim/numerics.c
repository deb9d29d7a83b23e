// The chip's arithmetic, bit for bit. docs/numerics.md is the specification;
// this file is its reference implementation.
//
// Host independence rests on three things: every operation below is a single
// IEEE binary32 operation rounded to nearest even (+ - * / sqrtf, and fmaf,
// which C and glibc define as correctly rounded), the compiler fuses nothing
// (-ffp-contract=off), and float expressions are evaluated in float
// (FLT_EVAL_METHOD == 0, checked below). The rounding mode must stay the
// default one: nothing in the simulator calls fesetround.
#include "sim/numerics.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "numerics.c needs float arithmetic evaluated in float (FLT_EVAL_METHOD 0, e.g. SSE2, not x87)"
#endif

// ---- Bits, bf16, NaN and subnormals ----

float num_f32(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t num_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static bool is_nan_bits(uint32_t u) { return (u & 0x7fffffffu) > 0x7f800000u; }

uint16_t num_f32_to_bf16(float f) {
  uint32_t u = num_bits(f);
  if (is_nan_bits(u)) return NUM_BF16_NAN;
  // Round to nearest even on bit 16: add 0x7fff plus the lowest kept bit.
  // Cannot wrap: the largest non-NaN pattern is 0xff800000. A carry out of
  // the significand moves into the exponent, which is exactly right (up to
  // infinity for values at or above 0x7f7f8000).
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

float num_bf16_to_f32(uint16_t b) { return num_f32((uint32_t)b << 16); }

float num_canon(float f) {
  return is_nan_bits(num_bits(f)) ? num_f32(NUM_CANONICAL_NAN) : f;
}

float num_flush(float f) {
  uint32_t u = num_bits(f);
  if ((u & 0x7f800000u) == 0) return num_f32(u & 0x80000000u); // zero or subnormal
  return f;
}

// ---- Matrix unit ----

static float abs_f(float f) { return num_f32(num_bits(f) & 0x7fffffffu); }

static float copy_sign(float mag, float sign_of) {
  return num_f32((num_bits(mag) & 0x7fffffffu) | (num_bits(sign_of) & 0x80000000u));
}


// Whether a*b + c, exactly, is below FLT_MIN in magnitude once rounded to 24
// bits with an unbounded exponent: the x86 (and AMX) test for FTZ, "tininess
// after rounding". Called only when fmaf gave +-FLT_MIN, the one result where
// this differs from "the rounded result is subnormal": the exact value may lie
// in (FLT_MIN - 2^-150, FLT_MIN - 2^-151), which rounds up to FLT_MIN on the
// subnormal grid but below it on the finer unbounded one. Inputs are flushed.
static bool tiny_after_rounding(float a, float b, float c, float r) {
  // a*b is exact in double (48 bits) and so is the error of the sum (TwoSum;
  // nothing here comes near double's underflow), so v = s + e exactly.
  double p = (double)a * (double)b, cd = (double)c, s = p + cd, bb = s - p;
  double e = (p - (s - bb)) + (cd - bb);
  if (r < 0.0f) s = -s, e = -e;
  // The tie point FLT_MIN - 2^-151 rounds (to even) up to FLT_MIN. s is
  // within a factor 2 of it, so s - tie is exact (Sterbenz).
  return s - (0x1p-126 - 0x1p-151) < -e;
}

float num_mxu_fma(float a, float b, float c) {
  a = num_flush(a), b = num_flush(b), c = num_flush(c);
  float r = fmaf(a, b, c);
  if (abs_f(r) == FLT_MIN && tiny_after_rounding(a, b, c, r)) r = copy_sign(0.0f, r);
  return num_flush(num_canon(r));
}

float num_mxu_add(float a, float b) {
  return num_flush(num_canon(num_flush(a) + num_flush(b)));
}

float num_mxu_dot_bf16(const uint16_t *x, const uint16_t *w, size_t wstride, int k) {
  float running = 0.0f;
  for (int s = 0; s < k; s += NUM_MXU_SLICE) {
    int end = k - s < NUM_MXU_SLICE ? k : s + NUM_MXU_SLICE;
    float even = 0.0f, odd = 0.0f;
    for (int j = s; j < end; j += 2) {
      even = num_mxu_fma(num_bf16_to_f32(x[j]), num_bf16_to_f32(w[(size_t)j * wstride]), even);
      if (j + 1 < end)
        odd = num_mxu_fma(num_bf16_to_f32(x[j + 1]), num_bf16_to_f32(w[(size_t)(j + 1) * wstride]),
                          odd);
    }
    running = num_mxu_add(running, num_mxu_add(even, odd));
  }
  return running;
}

// uint32 -> int32 two's complement without implementation-defined casts.
static int32_t wrap_i32(uint32_t u) {
  return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

int32_t num_mxu_dot_i8(const int8_t *x, const int8_t *w, size_t wstride, int k) {
  uint32_t sum = 0; // int32 arithmetic modulo 2^32, without signed overflow
  for (int j = 0; j < k; j++) sum += (uint32_t)((int32_t)x[j] * (int32_t)w[(size_t)j * wstride]);
  return wrap_i32(sum);
}

void num_mxu_pass_bf16(float *acc, size_t acc_stride, const uint16_t *lhs, size_t lhs_stride,
                       const uint16_t *w, size_t w_stride, int m, int k, int n, bool accumulate) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      float p = num_mxu_dot_bf16(lhs + (size_t)i * lhs_stride, w + j, w_stride, k);
      float *a = &acc[(size_t)i * acc_stride + (size_t)j];
      *a = accumulate ? num_mxu_add(*a, p) : p;
    }
}

void num_mxu_pass_i8(int32_t *acc, size_t acc_stride, const int8_t *lhs, size_t lhs_stride,
                     const int8_t *w, size_t w_stride, int m, int k, int n, bool accumulate) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      int32_t p = num_mxu_dot_i8(lhs + (size_t)i * lhs_stride, w + j, w_stride, k);
      int32_t *a = &acc[(size_t)i * acc_stride + (size_t)j];
      *a = accumulate ? wrap_i32((uint32_t)*a + (uint32_t)p) : p;
    }
}

// ---- Vector unit: transcendental functions ----
// Each is a fixed sequence of fp32 operations; docs/numerics.md gives the
// algorithms, where the coefficients come from and the measured errors.

// 2^n for -126 <= n <= 127, exactly.
static float pow2i(int n) {
  assert(n >= -126 && n <= 127);
  return num_f32((uint32_t)(n + 127) << 23);
}

// ln 2 split so that n * LN2_HI is exact for |n| < 512 (15 significant bits).
#define LN2_HI 0x1.62e4p-1f
#define LN2_LO 0x1.7f7d1cp-20f
#define INV_LN2 0x1.715476p+0f

// P(r) ~ (exp(r) - 1 - r) / r^2 on [-0.347, 0.347].
static const float exp_p[6] = {0x1p-1f,         0x1.555556p-3f,  0x1.5554e8p-5f,
                               0x1.1110e0p-7f,  0x1.6d43b0p-10f, 0x1.a1256cp-13f};

float num_exp(float x) {
  if (x != x) return num_f32(NUM_CANONICAL_NAN);
  if (x > 0x1.62e42ep+6f) return INFINITY; // above ln(FLT_MAX + ulp/2): overflows
  if (x < -104.0f) return 0.0f;            // exp(-104) < 2^-150: rounds to zero
  // x = n ln2 + r, |r| <= ln2/2 (a little more when x * INV_LN2 rounds).
  // Adding and subtracting 1.5 * 2^23 rounds to an integer, ties to even.
  float kf = (x * INV_LN2 + 0x1.8p+23f) - 0x1.8p+23f;
  int n = (int)kf;
  float r = (x - kf * LN2_HI) - kf * LN2_LO; // first step exact
  // exp(r) = 1 + r + r^2 P(r), P a near-minimax fit (docs/numerics.md),
  // |error| < 2^-31 of exp(r) for |r| <= 0.347.
  float p = exp_p[5];
  for (int i = 4; i >= 0; i--) p = exp_p[i] + r * p;
  float q = r + (r * r) * p;
  float e = 1.0f + q; // in [0.7, 1.42]
  // Scale by 2^n. Outside the normal exponent range split the factor so that
  // only the last multiplication rounds (once, into a subnormal or to inf).
  if (n > 127) return e * pow2i(n - 1) * 2.0f;
  if (n < -126) return e * pow2i(n + 64) * 0x1p-64f;
  return e * pow2i(n);
}

float num_log(float x) {
  uint32_t ix = num_bits(x);
  if (is_nan_bits(ix)) return num_f32(NUM_CANONICAL_NAN);
  if ((ix & 0x7fffffffu) == 0) return -INFINITY; // log(+-0)
  if (ix >> 31) return num_f32(NUM_CANONICAL_NAN); // negative, -inf included
  if (ix == 0x7f800000u) return INFINITY;
  int k = 0;
  if (ix < 0x00800000u) { // subnormal: scale into the normal range (exact)
    ix = num_bits(x * 0x1p+23f);
    k = -23;
  }
  // x = 2^k m with m in [sqrt(1/2), sqrt(2)): offset the bits so that the
  // exponent field steps where the significand passes sqrt(2).
  ix += 0x3f800000u - 0x3f3504f3u;
  k += (int)(ix >> 23) - 0x7f;
  ix = (ix & 0x007fffffu) + 0x3f3504f3u;
  float f = num_f32(ix) - 1.0f; // exact (Sterbenz), in [-0.293, 0.415)
  // log(1 + f) = 2 atanh(s), s = f / (2 + f), |s| < 0.172:
  // 2 atanh(s) = 2s + s R, R = 2z/3 + 2z^2/5 + ... (z = s^2), and
  // 2s = f - hfsq + s hfsq with hfsq = f^2 / 2, which keeps f exact in front.
  float s = f / (2.0f + f);
  float z = s * s;
  float R = 0x1.745d18p-3f; // 2/11
  R = 0x1.c71c72p-3f + z * R; // 2/9
  R = 0x1.24924ap-2f + z * R; // 2/7
  R = 0x1.99999ap-2f + z * R; // 2/5
  R = 0x1.555556p-1f + z * R; // 2/3
  R = z * R;
  float hfsq = 0.5f * f * f;
  float dk = (float)k;
  return (((s * (hfsq + R) + dk * LN2_LO) - hfsq) + f) + dk * LN2_HI;
}

// tanh(x) = x + x^3 Q(x^2) for |x| < 0.625; near-minimax fit (docs/numerics.md).
static const float tanh_q[6] = {-0x1.555556p-2f, 0x1.1110eap-3f, -0x1.ba08c4p-5f,
                                0x1.64a976p-6f,  -0x1.116a16p-7f, 0x1.2c83c0p-9f};

float num_tanh(float x) {
  if (x != x) return num_f32(NUM_CANONICAL_NAN);
  float a = abs_f(x);
  if (a < 0x1p-12f) return x; // |x^3/3| < ulp(x)/2: includes +-0 and subnormals
  if (a < 0.625f) {
    float t = x * x;
    float q = tanh_q[5];
    for (int i = 4; i >= 0; i--) q = tanh_q[i] + t * q;
    return x + (x * t) * q;
  }
  if (a >= 10.0f) return copy_sign(1.0f, x); // 1 - tanh < 2^-25 from 9.011 on
  float e = num_exp(2.0f * a);
  return copy_sign(1.0f - 2.0f / (e + 1.0f), x);
}

float num_sigmoid(float x) {
  if (x != x) return num_f32(NUM_CANONICAL_NAN);
  if (x < 0.0f) { // e / (1 + e) keeps tiny results, down to subnormals
    float e = num_exp(x);
    return e / (1.0f + e);
  }
  return 1.0f / (1.0f + num_exp(-x));
}

// erf(x) = x + x P(x^2) for |x| < 1, P(t) ~ erf(sqrt t) / sqrt t - 1;
// near-minimax fit (docs/numerics.md). The exact leading x keeps the rounded
// 2/sqrt(pi) - 1 = 0.128 out of most of the result.
static const float erf_p[8] = {0x1.06eba8p-3f,  -0x1.812746p-2f, 0x1.ce2f08p-4f,
                               -0x1.b829c8p-6f, 0x1.562a60p-8f,  -0x1.bccf66p-11f,
                               0x1.d88750p-14f, -0x1.445f48p-17f};
// erfc(x) = exp(-x^2) u R(u - 0.625), u = 1/x, for 1 <= x < 4; near-minimax
// fit, centred on the middle of u's range [0.25, 1] to avoid cancellation.
static const float erfc_r[10] = {0x1.f545fcp-2f,  -0x1.5f684cp-3f, -0x1.539aa8p-10f,
                                 0x1.27545ap-4f,  -0x1.3f6b7cp-4f, 0x1.966c34p-5f,
                                 -0x1.7013f8p-7f, -0x1.931bd2p-6f, 0x1.c1eb20p-5f,
                                 -0x1.87c352p-5f};

float num_erf(float x) {
  if (x != x) return num_f32(NUM_CANONICAL_NAN);
  float a = abs_f(x);
  if (a < 1.0f) {
    float t = x * x;
    float p = erf_p[7];
    for (int i = 6; i >= 0; i--) p = erf_p[i] + t * p;
    return x + x * p;
  }
  if (a >= 4.0f) return copy_sign(1.0f, x); // erfc(4) < 2^-25
  float u = 1.0f / a;
  float w = u - 0.625f; // exact for u >= 0.3125
  float r = erfc_r[9];
  for (int i = 8; i >= 0; i--) r = erfc_r[i] + w * r;
  float erfc = num_exp(-(a * a)) * (u * r);
  return copy_sign(1.0f - erfc, x);
}

float num_sqrt(float x) { return num_canon(sqrtf(x)); }
float num_rsqrt(float x) { return num_canon(1.0f / sqrtf(x)); }
float num_recip(float x) { return num_canon(1.0f / x); }

// ---- Vector unit: loads, stores, requantisation ----

// Round to an integer, ties to even, in float (exact: no value changes but
// the fraction). |v| >= 2^23 is already an integer (or inf/NaN).
static float round_even(float v) {
  float a = abs_f(v);
  if (!(a < 0x1p+23f)) return v;
  return copy_sign((a + 0x1p+23f) - 0x1p+23f, v);
}

float num_load(int dtype, const void *p) {
  switch (dtype) {
  case 0: { // f32
    float f;
    memcpy(&f, p, sizeof f);
    return num_canon(f);
  }
  case 1: { // bf16
    uint16_t b;
    memcpy(&b, p, sizeof b);
    return num_canon(num_bf16_to_f32(b));
  }
  case 2: { // i32
    int32_t i;
    memcpy(&i, p, sizeof i);
    return (float)i; // round to nearest even on IEEE hosts
  }
  case 3: return (float)*(const int8_t *)p;
  default: assert(!"num_load: bad dtype"); return 0.0f;
  }
}

void num_store(int dtype, void *p, float v) {
  switch (dtype) {
  case 0: {
    float f = num_canon(v);
    memcpy(p, &f, sizeof f);
    break;
  }
  case 1: {
    uint16_t b = num_f32_to_bf16(v);
    memcpy(p, &b, sizeof b);
    break;
  }
  case 2: {
    float r = round_even(v);
    int32_t i;
    if (r != r) i = 0;
    else if (r >= 0x1p+31f) i = INT32_MAX;
    else if (r <= -0x1p+31f) i = INT32_MIN;
    else i = (int32_t)r; // exact: r is an integer in range
    memcpy(p, &i, sizeof i);
    break;
  }
  case 3: {
    float r = round_even(v);
    int8_t i;
    if (r != r) i = 0;
    else if (r >= 127.0f) i = 127;
    else if (r <= -128.0f) i = -128;
    else i = (int8_t)(int)r;
    *(int8_t *)p = i;
    break;
  }
  default: assert(!"num_store: bad dtype");
  }
}

uint8_t num_store_u8(float v) {
  float r = round_even(v);
  if (r != r || r <= 0.0f) return 0;
  if (r >= 255.0f) return 255;
  return (uint8_t)r;
}

static int64_t iload(const void *p, int dt, bool u8, size_t i) {
  if (dt == 3) return u8 ? (int64_t)((const uint8_t *)p)[i] : (int64_t)((const int8_t *)p)[i];
  int32_t v;
  memcpy(&v, (const uint8_t *)p + 4 * i, 4);
  return v;
}

void num_viadd(void *dst, int dt, const void *a, int dt1, const void *b, int dt2, bool b_one, size_t n,
               unsigned flags) {
  // Sources are read whole first: dst may be the same block as a or b.
  int64_t v[256];
  for (size_t c = 0; c < n; c += 256) {
    size_t len = n - c < 256 ? n - c : 256;
    for (size_t i = 0; i < len; i++)
      v[i] = iload(a, dt1, flags & NUM_IADD_A_U8, c + i) + iload(b, dt2, flags & NUM_IADD_B_U8, b_one ? 0 : c + i);
    for (size_t i = 0; i < len; i++) {
      int64_t x = v[i];
      if (dt == 0) {
        float f = (float)x; // |x| < 2^33: one rounding, to nearest even
        memcpy((uint8_t *)dst + 4 * (c + i), &f, 4);
      } else if (dt == 2) {
        int32_t y = x > INT32_MAX ? INT32_MAX : x < INT32_MIN ? INT32_MIN : (int32_t)x;
        memcpy((uint8_t *)dst + 4 * (c + i), &y, 4);
      } else if (flags & NUM_IADD_D_U8) {
        ((uint8_t *)dst)[c + i] = (uint8_t)(x > 255 ? 255 : x < 0 ? 0 : x);
      } else {
        ((int8_t *)dst)[c + i] = (int8_t)(x > 127 ? 127 : x < -128 ? -128 : x);
      }
    }
  }
}

int8_t num_requant(int32_t x, int32_t mult, int shift, int32_t zp) {
  // Defined for every shift, so a bad operand cannot crash the simulator:
  // values outside 0..63 are clamped into it.
  if (shift < 0) shift = 0;
  if (shift > 63) shift = 63;
  int64_t p = (int64_t)x * (int64_t)mult; // |p| <= 2^62
  bool neg = p < 0;
  uint64_t mag = neg ? (uint64_t)0 - (uint64_t)p : (uint64_t)p;
  if (shift > 0) mag = (mag + ((uint64_t)1 << (shift - 1))) >> shift; // ties away from zero
  // mag <= 2^62 still, so the signed arithmetic below cannot overflow.
  int64_t q = neg ? -(int64_t)mag : (int64_t)mag;
  q += zp;
  if (q > 127) return 127;
  if (q < -128) return -128;
  return (int8_t)q;
}
