// The MXU kernel for a vector instruction set, written once: kernels_avx2.c
// and kernels_avx512.c define the vector operations below and include this.
//
// One vector lane per output column. Each output's arithmetic is exactly
// num_mxu_dot_bf16's (docs/numerics.md section 4.2): per slice of 32 along k,
// an even and an odd fma chain from +0, then running = running + (even + odd).
// The MXU flushes subnormals (DAZ on inputs, FTZ on results, tininess after
// rounding); the vector unit's MXCSR does exactly that with DAZ and FTZ set,
// so the kernels set them for their duration and restore the caller's.
// Results are made canonical NaN on the way out.
//
// The including file defines: VW (lanes), V (fp32 vector), VI (int32 vector),
// V_ZERO, V_LOAD(p) (aligned), V_SET1(f), V_FMA(a, b, c) (a*b + c), V_ADD,
// V_LOADN(p, n) and V_STOREN(p, n, v) (the first n lanes, n <= VW), V_LOADU(p)
// and V_STOREU(p, v) (all lanes, unaligned), VI_LOADU and VI_STOREU likewise,
// V_CANON(v), VI_ZERO, VI_LOAD(p) (aligned), VI_SET1(i), VI_MADD16(a, b)
// (pairs of int16 products summed into int32), VI_ADD (wrapping),
// VI_LOADN(p, n), VI_STOREN(p, n, v), and IMPL, the num_mxu_impl to define;
// optionally ROW_BLOCK, the multiple of rows passes are split at (RB).
#include <immintrin.h>
#include <string.h>

#define MXCSR_DAZ_FTZ 0x8040u
#define MAX_K 4096 // num_tile_alloc's rows are at most the chip's, which chip.c caps at 4096
#define RB 4       // rows per block

#ifndef VI_DPADD
#define VI_DPADD(s, a, b) VI_ADD(s, VI_MADD16(a, b))
#endif

#ifndef BF16_DP
// ---- bf16: weights as fp32, column blocks of VW, k rows each ----

static void load_bf16(num_tile_hdr *t, const void *w, size_t w_stride) {
  int k = t->k, n = t->n, nb = (n + VW - 1) / VW;
  float *d = NUM_TILE_DATA(t);
  for (int b = 0; b < nb; b++)
    for (int j = 0; j < k; j++) {
      const uint16_t *row = (const uint16_t *)(const void *)((const char *)w + (size_t)j * w_stride);
      float *o = d + ((size_t)b * k + j) * VW;
      for (int c = 0; c < VW; c++) o[c] = b * VW + c < n ? num_bf16_bits_f32(row[b * VW + c]) : 0.0f;
    }
}

// rb rows (x, row stride xs) by cb column blocks (w) into out (valid columns
// ncols from the block's first). rb and cb are constants after inlining.
static inline __attribute__((always_inline)) void block_bf16(const float *x, size_t xs, const float *w, int k,
                                                             float *out, size_t out_stride, int ncols,
                                                             bool accumulate, const int rb, const int cb) {
  V run[RB][2];
  for (int r = 0; r < rb; r++)
    for (int c = 0; c < cb; c++) run[r][c] = V_ZERO;
  for (int s = 0; s < k; s += 32) {
    int end = k - s < 32 ? k : s + 32;
    V e[RB][2], o[RB][2];
    for (int r = 0; r < rb; r++)
      for (int c = 0; c < cb; c++) e[r][c] = V_ZERO, o[r][c] = V_ZERO;
    int j = s;
    for (; j + 1 < end; j += 2) {
      V we[2], wo[2];
      for (int c = 0; c < cb; c++) {
        we[c] = V_LOAD(w + ((size_t)c * k + j) * VW);
        wo[c] = V_LOAD(w + ((size_t)c * k + j + 1) * VW);
      }
      for (int r = 0; r < rb; r++) {
        V xe = V_SET1(x[r * xs + j]), xo = V_SET1(x[r * xs + j + 1]);
        for (int c = 0; c < cb; c++) {
          e[r][c] = V_FMA(xe, we[c], e[r][c]);
          o[r][c] = V_FMA(xo, wo[c], o[r][c]);
        }
      }
    }
    if (j < end) // an odd slice length: the last product joins the even chain
      for (int r = 0; r < rb; r++) {
        V xe = V_SET1(x[r * xs + j]);
        for (int c = 0; c < cb; c++) e[r][c] = V_FMA(xe, V_LOAD(w + ((size_t)c * k + j) * VW), e[r][c]);
      }
    for (int r = 0; r < rb; r++)
      for (int c = 0; c < cb; c++) run[r][c] = V_ADD(run[r][c], V_ADD(e[r][c], o[r][c]));
  }
  for (int r = 0; r < rb; r++)
    for (int c = 0; c < cb; c++) {
      int cols = ncols - c * VW;
      if (cols <= 0) continue;
      if (cols > VW) cols = VW;
      float *p = out + r * out_stride + c * VW;
      V v = run[r][c];
      if (cols == VW) { // masked stores are slow on AMD's AVX2
        if (accumulate) v = V_ADD(V_LOADU(p), v); // DAZ flushes a subnormal accumulator
        V_STOREU(p, V_CANON(v));
      } else {
        if (accumulate) v = V_ADD(V_LOADN(p, cols), v);
        V_STOREN(p, cols, V_CANON(v));
      }
    }
}

static void pass_bf16(const num_tile_hdr *t, float *acc, size_t acc_stride, const char *lhs, size_t lhs_stride,
                      int r0, int r1, bool accumulate) {
  _Alignas(64) float x[RB * MAX_K];
  int k = t->k, n = t->n, nb = (n + VW - 1) / VW;
  const float *w = NUM_TILE_DATA(t);
  for (int i = r0; i < r1; i += RB) {
    int rb = r1 - i < RB ? r1 - i : RB;
    for (int r = 0; r < rb; r++) {
      const uint16_t *src = (const uint16_t *)(const void *)(lhs + (size_t)(i + r) * lhs_stride);
      for (int j = 0; j < k; j++) x[r * k + j] = num_bf16_bits_f32(src[j]);
    }
    float *out = acc + (size_t)i * acc_stride;
    for (int b = 0; b < nb; b += 2) {
      const float *wb = w + (size_t)b * k * VW;
      int ncols = n - b * VW;
      bool two = b + 1 < nb;
      if (rb == RB) {
        if (two) block_bf16(x, k, wb, k, out + b * VW, acc_stride, ncols, accumulate, RB, 2);
        else block_bf16(x, k, wb, k, out + b * VW, acc_stride, ncols, accumulate, RB, 1);
      } else
        for (int r = 0; r < rb; r++) {
          float *o = out + r * acc_stride + b * VW;
          if (two) block_bf16(x + r * k, k, wb, k, o, acc_stride, ncols, accumulate, 1, 2);
          else block_bf16(x + r * k, k, wb, k, o, acc_stride, ncols, accumulate, 1, 1);
        }
    }
  }
}

#endif

// ---- int8: weights as int16 pairs along k, column blocks of VW ----
// Lane c of pair p holds w[2p][c] in its low and w[2p+1][c] in its high half;
// VI_MADD16 with x[2p], x[2p+1] gives both products summed, exactly (at most
// 2 * 2^14). int32 sums wrap, in any order.

static void load_i8(num_tile_hdr *t, const void *w, size_t w_stride) {
  int k = t->k, n = t->n, nb = (n + VW - 1) / VW, kp = (k + 1) / 2;
  int16_t *d = NUM_TILE_DATA(t);
  for (int b = 0; b < nb; b++)
    for (int p = 0; p < kp; p++)
      for (int c = 0; c < VW; c++)
        for (int q = 0; q < 2; q++) {
          int j = 2 * p + q, col = b * VW + c;
          d[(((size_t)b * kp + p) * VW + c) * 2 + q] =
              j < k && col < n ? ((const int8_t *)w)[(size_t)j * w_stride + (size_t)col] : 0;
        }
}

static inline __attribute__((always_inline)) void block_i8(const int32_t *x, size_t xs, const int16_t *w, int kp,
                                                           int32_t *out, size_t out_stride, int ncols,
                                                           bool accumulate, const int rb, const int cb) {
  VI sum[RB][2];
  for (int r = 0; r < rb; r++)
    for (int c = 0; c < cb; c++) sum[r][c] = VI_ZERO;
  for (int p = 0; p < kp; p++) {
    VI wv[2];
    for (int c = 0; c < cb; c++) wv[c] = VI_LOAD(w + ((size_t)c * kp + p) * VW * 2);
    for (int r = 0; r < rb; r++) {
      VI xv = VI_SET1(x[r * xs + p]);
      for (int c = 0; c < cb; c++) sum[r][c] = VI_DPADD(sum[r][c], xv, wv[c]);
    }
  }
  for (int r = 0; r < rb; r++)
    for (int c = 0; c < cb; c++) {
      int cols = ncols - c * VW;
      if (cols <= 0) continue;
      if (cols > VW) cols = VW;
      int32_t *q = out + r * out_stride + c * VW;
      VI v = sum[r][c];
      if (cols == VW) {
        if (accumulate) v = VI_ADD(VI_LOADU(q), v);
        VI_STOREU(q, v);
      } else {
        if (accumulate) v = VI_ADD(VI_LOADN(q, cols), v);
        VI_STOREN(q, cols, v);
      }
    }
}

static void pass_i8(const num_tile_hdr *t, int32_t *acc, size_t acc_stride, const char *lhs, size_t lhs_stride,
                    int r0, int r1, bool accumulate) {
  _Alignas(64) int32_t x[RB * (MAX_K / 2)];
  int k = t->k, n = t->n, nb = (n + VW - 1) / VW, kp = (k + 1) / 2;
  const int16_t *w = NUM_TILE_DATA(t);
  for (int i = r0; i < r1; i += RB) {
    int rb = r1 - i < RB ? r1 - i : RB;
    for (int r = 0; r < rb; r++) {
      const int8_t *src = (const int8_t *)(lhs + (size_t)(i + r) * lhs_stride);
      for (int p = 0; p < kp; p++) {
        uint32_t lo = (uint16_t)(int16_t)src[2 * p], hi = 2 * p + 1 < k ? (uint16_t)(int16_t)src[2 * p + 1] : 0;
        uint32_t pair = lo | hi << 16;
        memcpy(&x[r * kp + p], &pair, sizeof pair);
      }
    }
    int32_t *out = acc + (size_t)i * acc_stride;
    for (int b = 0; b < nb; b += 2) {
      const int16_t *wb = w + (size_t)b * kp * VW * 2;
      int ncols = n - b * VW;
      bool two = b + 1 < nb;
      if (rb == RB) {
        if (two) block_i8(x, kp, wb, kp, out + b * VW, acc_stride, ncols, accumulate, RB, 2);
        else block_i8(x, kp, wb, kp, out + b * VW, acc_stride, ncols, accumulate, RB, 1);
      } else
        for (int r = 0; r < rb; r++) {
          int32_t *o = out + r * acc_stride + b * VW;
          if (two) block_i8(x + r * kp, kp, wb, kp, o, acc_stride, ncols, accumulate, 1, 2);
          else block_i8(x + r * kp, kp, wb, kp, o, acc_stride, ncols, accumulate, 1, 1);
        }
    }
  }
}

// ---- the raw weights back (for the reference, when a pass must run in its order) ----

static void tile_unpack(const num_tile_hdr *t, void *raw) {
  int k = t->k, n = t->n;
#ifdef BF16_DP
  if (t->dtype == 1) {
    unpack_bf16_dp(t, raw);
    return;
  }
#else
  if (t->dtype == 1) {
    const float *d = NUM_TILE_DATA(t);
    for (int j = 0; j < k; j++)
      for (int c = 0; c < n; c++) {
        uint32_t u;
        memcpy(&u, &d[((size_t)(c / VW) * k + j) * VW + c % VW], 4);
        ((uint16_t *)raw)[(size_t)j * n + c] = (uint16_t)(u >> 16); // exact: it came from bf16
      }
    return;
  }
#endif
  {
    const int16_t *d = NUM_TILE_DATA(t);
    int kp = (k + 1) / 2;
    for (int j = 0; j < k; j++)
      for (int c = 0; c < n; c++)
        ((int8_t *)raw)[(size_t)j * n + c] = (int8_t)d[(((size_t)(c / VW) * kp + j / 2) * VW + c % VW) * 2 + j % 2];
  }
}

// ---- entry points ----

static void tile_load(num_tile_hdr *t, const void *w, size_t w_stride) {
#ifdef BF16_DP
  if (t->dtype == 1) load_bf16_dp(t, w, w_stride);
#else
  if (t->dtype == 1) load_bf16(t, w, w_stride);
#endif
  else load_i8(t, w, w_stride);
}

static void tile_pass(const num_tile_hdr *t, void *acc, size_t acc_stride, const void *lhs, size_t lhs_stride,
                      int r0, int r1, bool accumulate) {
  unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | MXCSR_DAZ_FTZ);
#ifdef BF16_DP
  if (t->dtype == 1) pass_bf16_dp(t, acc, acc_stride, lhs, lhs_stride, r0, r1, accumulate);
#else
  if (t->dtype == 1) pass_bf16(t, acc, acc_stride, lhs, lhs_stride, r0, r1, accumulate);
#endif
  else pass_i8(t, acc, acc_stride, lhs, lhs_stride, r0, r1, accumulate);
  _mm_setcsr(csr);
}

// Bytes of the layouts above for a k x n tile.
static size_t tile_bytes(int dtype, int k, int n) {
  size_t nb = (size_t)(n + VW - 1) / VW;
#ifdef BF16_DP
  if (dtype == 1) return bytes_bf16_dp(k, n);
#else
  if (dtype == 1) return nb * (size_t)k * VW * 4;
#endif
  return nb * (size_t)((k + 1) / 2) * VW * 2 * 2;
}

#ifndef ROW_BLOCK
#define ROW_BLOCK RB
#endif
const num_mxu_impl IMPL = {tile_load, tile_unpack, tile_pass, tile_bytes, ROW_BLOCK};
