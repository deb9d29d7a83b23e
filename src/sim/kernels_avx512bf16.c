// MXU kernels for AVX512-BF16 and AVX512-VNNI (VDPBF16PS, VPDPWSSD), for hosts
// without AMX. Compiled with those flags (CMakeLists.txt) and used only on CPUs
// that have them (kernels.c).
//
// VDPBF16PS computes per 32-bit lane c = (c + a.hi * b.hi) + a.lo * b.lo: two
// fp32 additions of exact products, each rounded to nearest even, with
// subnormal inputs and results flushed (DAZ and FTZ implied, whatever MXCSR
// says; measured: the same flush rule as vfmadd under FTZ). That is two steps
// of one fma chain of docs/numerics.md section 4.2 if a lane's high half holds
// product k and its low half product k + 2. So the weights are laid out per
// 16-column block and 32-deep slice as 16 vectors: 8 for the even chain (hi
// w[s + 4i], lo w[s + 4i + 2]) and 8 for the odd chain (hi w[s + 4i + 1], lo
// w[s + 4i + 3]), and each input row as the same pairs of its elements. The
// slice is padded past k with +0 weights and -0 inputs: a product of -0
// leaves a chain as it was, even a -0 that the flush to zero left (+0 * +0
// would turn that +0, and with it a result of -0: test_kernels'
// test_flushed_zero_sign).
// int8 is kernels_vec.h's, with VPDPWSSD for the madd and add (exact).
#include "sim/kernels.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__) && defined(__FMA__) && defined(__AVX512BF16__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#include <string.h>

#define VW 16
#define V __m512
#define VI __m512i
#define V_ZERO _mm512_setzero_ps()
#define V_LOAD(p) _mm512_load_ps(p)
#define V_SET1(f) _mm512_set1_ps(f)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define MASK(n) ((__mmask16)((1u << (n)) - 1u))
#define V_LOADN(p, n) _mm512_maskz_loadu_ps(MASK(n), p)
#define V_STOREN(p, n, v) _mm512_mask_storeu_ps(p, MASK(n), v)
#define V_CANON(v) \
  _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v, _mm512_castsi512_ps(_mm512_set1_epi32(0x7fc00000)))
#define VI_ZERO _mm512_setzero_si512()
#define VI_LOAD(p) _mm512_load_si512((const void *)(p))
#define VI_SET1(i) _mm512_set1_epi32(i)
#define VI_MADD16(a, b) _mm512_madd_epi16(a, b)
#define VI_ADD(a, b) _mm512_add_epi32(a, b)
#define VI_DPADD(s, a, b) _mm512_dpwssd_epi32(s, a, b)
#define VI_LOADN(p, n) _mm512_maskz_loadu_epi32(MASK(n), p)
#define VI_STOREN(p, n, v) _mm512_mask_storeu_epi32(p, MASK(n), v)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define VI_LOADU(p) _mm512_loadu_si512((const void *)(p))
#define VI_STOREU(p, v) _mm512_storeu_si512((void *)(p), v)
#define IMPL num_mxu_avx512bf16
#define BF16_DP 1

#define DP_MAX_K 4096
#define DP_RB 4

// The pair of slice s's element positions in vector v (0..15) of the layout.
static inline int pair_hi(int v) { return v < 8 ? 4 * v : 4 * (v - 8) + 1; }

// Row j's 16 columns from col (ncols valid; zeros past them, or for j >= k).
static inline __m512i wrow(const void *w, size_t w_stride, int j, int k, int col, int ncols) {
  if (j >= k) return _mm512_setzero_si512();
  __mmask16 m = ncols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << ncols) - 1u);
  __m256i r = _mm256_maskz_loadu_epi16(m, (const char *)w + (size_t)j * w_stride + (size_t)col * 2);
  return _mm512_cvtepu16_epi32(r);
}

static size_t bytes_bf16_dp(int k, int n) { return (size_t)((n + VW - 1) / VW) * (size_t)((k + 31) / 32) * 16 * VW * 4; }

static void load_bf16_dp(num_tile_hdr *t, const void *w, size_t w_stride) {
  int k = t->k, n = t->n, nb = (n + VW - 1) / VW, ns = (k + 31) / 32;
  uint32_t *d = NUM_TILE_DATA(t);
  for (int b = 0; b < nb; b++)
    for (int s = 0; s < ns; s++)
      for (int v = 0; v < 16; v++) {
        int jh = s * 32 + pair_hi(v), jl = jh + 2;
        __m512i hi = wrow(w, w_stride, jh, k, b * VW, n - b * VW), lo = wrow(w, w_stride, jl, k, b * VW, n - b * VW);
        _mm512_store_si512((void *)(d + (((size_t)b * ns + s) * 16 + v) * VW),
                           _mm512_or_si512(_mm512_slli_epi32(hi, 16), lo));
      }
}

static void unpack_bf16_dp(const num_tile_hdr *t, void *raw) {
  int k = t->k, n = t->n, ns = (k + 31) / 32;
  const uint32_t *d = NUM_TILE_DATA(t);
  for (int j = 0; j < k; j++) {
    int s = j / 32, q = j % 32, v, hi;
    // q = 4i + (0 hi even, 2 lo even, 1 hi odd, 3 lo odd)
    int i = q / 4, r = q % 4;
    v = (r & 1) ? 8 + i : i;
    hi = r < 2;
    for (int c = 0; c < n; c++) {
      uint32_t u = d[(((size_t)(c / VW) * ns + s) * 16 + v) * VW + c % VW];
      ((uint16_t *)raw)[(size_t)j * n + c] = (uint16_t)(hi ? u >> 16 : u & 0xffff);
    }
  }
}

static inline __attribute__((always_inline)) void block_bf16_dp(const uint32_t *x, size_t xs, const uint32_t *w,
                                                                int ns, float *out, size_t out_stride, int ncols,
                                                                bool accumulate, const int rb, const int cb) {
  V run[DP_RB][2];
  for (int r = 0; r < rb; r++)
    for (int c = 0; c < cb; c++) run[r][c] = V_ZERO;
  for (int s = 0; s < ns; s++) {
    V e[DP_RB][2], o[DP_RB][2];
    for (int r = 0; r < rb; r++)
      for (int c = 0; c < cb; c++) e[r][c] = V_ZERO, o[r][c] = V_ZERO;
    const uint32_t *ws = w + (size_t)s * 16 * VW;
    const uint32_t *xsl = x + (size_t)s * 16;
    for (int i = 0; i < 8; i++) {
      __m512bh we[2], wo[2];
      for (int c = 0; c < cb; c++) {
        we[c] = (__m512bh)_mm512_load_si512((const void *)(ws + (size_t)c * ns * 16 * VW + i * VW));
        wo[c] = (__m512bh)_mm512_load_si512((const void *)(ws + (size_t)c * ns * 16 * VW + (8 + i) * VW));
      }
      for (int r = 0; r < rb; r++) {
        __m512bh xe = (__m512bh)_mm512_set1_epi32((int)xsl[r * xs + i]);
        __m512bh xo = (__m512bh)_mm512_set1_epi32((int)xsl[r * xs + 8 + i]);
        for (int c = 0; c < cb; c++) {
          e[r][c] = _mm512_dpbf16_ps(e[r][c], xe, we[c]);
          o[r][c] = _mm512_dpbf16_ps(o[r][c], xo, wo[c]);
        }
      }
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
      if (accumulate) v = V_ADD(V_LOADN(p, cols), v); // DAZ flushes a subnormal accumulator
      V_STOREN(p, cols, V_CANON(v));
    }
}

// One input row as the layout's pairs: per slice 16 words, as the weights (one
// permutation of the slice's 32 elements; -0 past k, see the top).
static void pack_row(uint32_t *x, const uint16_t *src, int k, int ns) {
  _Alignas(64) uint16_t idx[32];
  for (int v = 0; v < 16; v++) idx[2 * v] = (uint16_t)(pair_hi(v) + 2), idx[2 * v + 1] = (uint16_t)pair_hi(v);
  __m512i perm = _mm512_load_si512((const void *)idx);
  for (int s = 0; s < ns; s++) {
    int left = k - s * 32;
    __mmask32 m = left >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << left) - 1);
    __m512i row = _mm512_mask_loadu_epi16(_mm512_set1_epi16((short)0x8000), m, src + s * 32);
    _mm512_store_si512((void *)(x + s * 16), _mm512_permutexvar_epi16(perm, row));
  }
}

static void pass_bf16_dp(const num_tile_hdr *t, float *acc, size_t acc_stride, const char *lhs, size_t lhs_stride,
                         int r0, int r1, bool accumulate) {
  _Alignas(64) uint32_t x[DP_RB * (DP_MAX_K / 2)];
  int k = t->k, n = t->n, nb = (n + VW - 1) / VW, ns = (k + 31) / 32;
  size_t xs = (size_t)ns * 16;
  const uint32_t *w = NUM_TILE_DATA(t);
  for (int i = r0; i < r1; i += DP_RB) {
    int rb = r1 - i < DP_RB ? r1 - i : DP_RB;
    for (int r = 0; r < rb; r++)
      pack_row(x + r * xs, (const uint16_t *)(const void *)(lhs + (size_t)(i + r) * lhs_stride), k, ns);
    float *out = acc + (size_t)i * acc_stride;
    for (int b = 0; b < nb; b += 2) {
      const uint32_t *wb = w + (size_t)b * ns * 16 * VW;
      int ncols = n - b * VW;
      bool two = b + 1 < nb;
      if (rb == DP_RB) {
        if (two) block_bf16_dp(x, xs, wb, ns, out + b * VW, acc_stride, ncols, accumulate, DP_RB, 2);
        else block_bf16_dp(x, xs, wb, ns, out + b * VW, acc_stride, ncols, accumulate, DP_RB, 1);
      } else
        for (int r = 0; r < rb; r++) {
          float *o = out + r * acc_stride + b * VW;
          if (two) block_bf16_dp(x + r * xs, xs, wb, ns, o, acc_stride, ncols, accumulate, 1, 2);
          else block_bf16_dp(x + r * xs, xs, wb, ns, o, acc_stride, ncols, accumulate, 1, 1);
        }
    }
  }
}

#include "sim/kernels_vec.h"
#else
const num_mxu_impl num_mxu_avx512bf16; // not built for AVX512-BF16: never available
#endif
