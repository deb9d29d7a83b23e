// The chip's arithmetic, bit for bit (docs/numerics.md is the specification).
// Owner: numerics.c. Everything here is plain C that gives the same bits on any
// host: no libm transcendental is called, and fp contraction is off (CMake).
#ifndef SYSTOLE_NUMERICS_H
#define SYSTOLE_NUMERICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NUM_CANONICAL_NAN 0x7fc00000u // every NaN the chip produces
#define NUM_BF16_NAN 0x7fc0u
#define NUM_MXU_SLICE 32 // depth of one group of interleaved partial sums

// Bits <-> float without aliasing trouble.
float num_f32(uint32_t bits);
uint32_t num_bits(float f);

// fp32 -> bf16, round to nearest even; NaN -> NUM_BF16_NAN; infinities and
// overflow to infinity as IEEE; subnormals rounded like any other value.
uint16_t num_f32_to_bf16(float f);
float num_bf16_to_f32(uint16_t b); // exact

// NaN -> canonical NaN, anything else unchanged.
float num_canon(float f);
// Subnormal -> zero of the same sign (the MXU's DAZ on inputs, FTZ on results).
float num_flush(float f);

// The MXU's two fp32 steps: fma(a, b, c) with inputs flushed, rounded once
// (RNE), result flushed and NaN canonical; and the same for a + b.
float num_mxu_fma(float a, float b, float c);
float num_mxu_add(float a, float b);

// One MXU output element of a bf16 pass: x[0..k) of the input row against
// w[0], w[wstride], ... w[(k-1)*wstride] of a weight column. Slices of
// NUM_MXU_SLICE along k; within a slice two partial sums from +0, even and odd
// k interleaved; each slice's (even + odd) is added to a running sum from +0.
float num_mxu_dot_bf16(const uint16_t *x, const uint16_t *w, size_t wstride, int k);
int32_t num_mxu_dot_i8(const int8_t *x, const int8_t *w, size_t wstride, int k); // wraps

// A whole pass: for m rows of lhs (row stride lhs_stride elements, k used) and
// a k x n weight tile (row stride w_stride elements), writes acc[i*acc_stride + j]
// for i < m, j < n: acc = P, or acc = num_mxu_add(acc, P) when accumulate.
// int8: acc = P or acc + P, wrapping.
void num_mxu_pass_bf16(float *acc, size_t acc_stride, const uint16_t *lhs, size_t lhs_stride,
                       const uint16_t *w, size_t w_stride, int m, int k, int n, bool accumulate);
void num_mxu_pass_i8(int32_t *acc, size_t acc_stride, const int8_t *lhs, size_t lhs_stride,
                     const int8_t *w, size_t w_stride, int m, int k, int n, bool accumulate);

// Vector unit: fp32 IEEE arithmetic (subnormals kept), NaN results canonical.
// Documented approximations with error bounds in docs/numerics.md.
float num_exp(float x);
float num_log(float x);
float num_tanh(float x);
float num_sigmoid(float x);
float num_erf(float x);
float num_sqrt(float x);  // IEEE sqrt, correctly rounded
float num_rsqrt(float x); // 1 / sqrt(x), two roundings
float num_recip(float x); // 1 / x, correctly rounded

// Vector-unit loads and stores of the four element types (isa_dtype order:
// f32, bf16, i32, i8). Loads convert to fp32 (i32 rounds to nearest even);
// stores convert from fp32: bf16 RNE; i32 and i8 round to nearest even and
// saturate, NaN -> 0.
float num_load(int dtype, const void *p);
void num_store(int dtype, void *p, float v);
// v.movu's store of an i8 operand as an unsigned byte: round to nearest
// even, saturate to [0, 255], NaN -> 0.
uint8_t num_store_u8(float v);

// Requantisation int32 -> int8: round((x * mult) / 2^shift) with ties away
// from zero, plus zp, saturated to [-128, 127]. shift in 0..63 (other values
// are clamped into that range).
int8_t num_requant(int32_t x, int32_t mult, int shift, int32_t zp);

// Integer add (v.iadd, docs/numerics.md section 7.1): element i of a (type
// dt1: 3 i8, 2 i32) plus element i of b (dt2; b[0] for every i when
// b_one), exact, stored as dt (3 i8 or 2 i32: saturated; 0 f32: rounded to
// nearest even). flags: bit 0 a is u8, bit 1 b is u8, bit 2 dst is u8
// (saturated to 0..255); for i8 elements only.
#define NUM_IADD_A_U8 1u
#define NUM_IADD_B_U8 2u
#define NUM_IADD_D_U8 4u
void num_viadd(void *dst, int dt, const void *a, int dt1, const void *b, int dt2, bool b_one, size_t n,
               unsigned flags);

#endif
