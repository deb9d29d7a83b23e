// MXU kernels for AVX2 with FMA. Compiled with those flags (CMakeLists.txt)
// and used only on CPUs that have them (kernels.c). int8 is kernels_vec.h's
// with 8 lanes; bf16 has a layout of its own, because 16 ymm registers do not
// hold kernels_vec.h's block (16 chains, 4 weights, 2 broadcasts: it spilled
// and ran at 31% of the FMA peak on Zen 3).
//
// bf16: a lane pair per output column, the even chain in the low lane and the
// odd chain in the high one (docs/numerics.md 4.2), so one vfmadd advances
// both chains of four columns: the weights per block of 4 columns and pair of
// rows (2p, 2p+1) as w[2p][c0], w[2p+1][c0], w[2p][c1], ..., each input row
// as fp32 with the pair (x[2p], x[2p+1]) broadcast to every lane pair. At a
// slice's end vhaddps adds each column's even and odd lanes (addition
// commutes bit for bit) and the running sum takes the result. A block is 3
// rows by 4 column blocks: 12 accumulators and 3 broadcasts, with one weight
// vector in flight, the 16 registers. Past k (odd k) the weight is +0 and
// the input -0: a product of -0 leaves the odd chain as it was, even a -0
// that the flush to zero left (+0 * +0 would turn that +0, and with it a
// result of -0: test_kernels' test_flushed_zero_sign).
#include "sim/kernels.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <string.h>

// Lane masks for the first n of 8 lanes (n = 1..8).
static __m256i lanes(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }

#define VW 8
#define V __m256
#define VI __m256i
#define V_ZERO _mm256_setzero_ps()
#define V_LOAD(p) _mm256_load_ps(p)
#define V_SET1(f) _mm256_set1_ps(f)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_LOADN(p, n) _mm256_maskload_ps(p, lanes(n))
#define V_STOREN(p, n, v) _mm256_maskstore_ps(p, lanes(n), v)
#define V_CANON(v) \
  _mm256_blendv_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000)), _mm256_cmp_ps(v, v, _CMP_UNORD_Q))
#define VI_ZERO _mm256_setzero_si256()
#define VI_LOAD(p) _mm256_load_si256((const __m256i *)(const void *)(p))
#define VI_SET1(i) _mm256_set1_epi32(i)
#define VI_MADD16(a, b) _mm256_madd_epi16(a, b)
#define VI_ADD(a, b) _mm256_add_epi32(a, b)
#define VI_LOADN(p, n) _mm256_maskload_epi32(p, lanes(n))
#define VI_STOREN(p, n, v) _mm256_maskstore_epi32(p, lanes(n), v)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps(p, v)
#define VI_LOADU(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define VI_STOREU(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), v)
#define IMPL num_mxu_avx2
#define ROW_BLOCK 12 // bf16 blocks of 3 rows, int8 of 4
#define BF16_DP 1

#define PR_RB 3          // rows per block
#define PR_CB 4          // column blocks (of 4 columns) per block
#define PR_X_FLOATS 24576 // input rows converted at a time: 96 KiB, 24 rows of k <= 1024

static inline int pairs_of(int k) { return (k + 1) / 2; }
static inline int cblocks_of(int n) { return (n + 3) / 4; }

static size_t bytes_bf16_dp(int k, int n) { return (size_t)cblocks_of(n) * (size_t)pairs_of(k) * 8 * 4; }

// Whole blocks (4 columns, both rows of the pair) interleave the two rows'
// four weights and widen them with vector instructions; the edges go one by
// one (a fresh process packs every tile of a model once: ResNet-50's 25M).
static void load_bf16_dp(num_tile_hdr *t, const void *w, size_t w_stride) {
  int k = t->k, n = t->n, nb = cblocks_of(n), kp = pairs_of(k);
  float *d = NUM_TILE_DATA(t);
  for (int q = 0; q < nb; q++)
    for (int p = 0; p < kp; p++) {
      const char *r0 = (const char *)w + (size_t)(2 * p) * w_stride + (size_t)q * 8;
      float *o = d + ((size_t)q * kp + p) * 8;
      if (4 * q + 4 <= n && 2 * p + 1 < k) {
        __m128i a = _mm_loadl_epi64((const __m128i *)(const void *)r0);
        __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(r0 + w_stride));
        __m256i v = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_unpacklo_epi16(a, b)), 16);
        _mm256_store_ps(o, _mm256_castsi256_ps(v));
        continue;
      }
      for (int l = 0; l < 8; l++) {
        int j = 2 * p + (l & 1), c = 4 * q + l / 2;
        const uint16_t *row = (const uint16_t *)(const void *)((const char *)w + (size_t)j * w_stride);
        o[l] = j < k && c < n ? num_bf16_bits_f32(row[c]) : 0.0f;
      }
    }
}

static void unpack_bf16_dp(const num_tile_hdr *t, void *raw) {
  int k = t->k, n = t->n, kp = pairs_of(k);
  const float *d = NUM_TILE_DATA(t);
  for (int j = 0; j < k; j++)
    for (int c = 0; c < n; c++) {
      uint32_t u;
      memcpy(&u, &d[((size_t)(c / 4) * kp + j / 2) * 8 + (c % 4) * 2 + j % 2], 4);
      ((uint16_t *)raw)[(size_t)j * n + c] = (uint16_t)(u >> 16); // exact: it came from bf16
    }
}

// rb rows of x (pairs, row stride xs floats) by cb column blocks of w into
// out (ncols valid columns from the block's first). rb and cb are constants
// after inlining.
static inline __attribute__((always_inline)) void block_bf16_dp(const float *x, size_t xs, const float *w, int kp,
                                                                float *out, size_t out_stride, int ncols,
                                                                bool accumulate, const int rb, const int cb) {
  // run[r][h]: columns 8h .. 8h + 7 in vhaddps's order 0 1 4 5 2 3 6 7
  V run[PR_RB][PR_CB / 2];
  const int ch = (cb + 1) / 2;
  for (int r = 0; r < rb; r++)
    for (int h = 0; h < ch; h++) run[r][h] = V_ZERO;
  for (int s = 0; s < kp; s += 16) {
    int end = kp - s < 16 ? kp : s + 16;
    V a[PR_RB][PR_CB];
    for (int r = 0; r < rb; r++)
      for (int c = 0; c < cb; c++) a[r][c] = V_ZERO;
    for (int p = s; p < end; p++) {
      V xp[PR_RB];
      for (int r = 0; r < rb; r++) xp[r] = _mm256_castpd_ps(_mm256_broadcast_sd((const double *)(const void *)(x + r * xs + 2 * p)));
      for (int c = 0; c < cb; c++) {
        V wv = V_LOAD(w + ((size_t)c * kp + p) * 8);
        for (int r = 0; r < rb; r++) a[r][c] = V_FMA(xp[r], wv, a[r][c]);
      }
    }
    for (int r = 0; r < rb; r++)
      for (int h = 0; h < ch; h++) {
        V hi = 2 * h + 1 < cb ? a[r][2 * h + 1] : V_ZERO;
        run[r][h] = V_ADD(run[r][h], _mm256_hadd_ps(a[r][2 * h], hi));
      }
  }
  for (int r = 0; r < rb; r++)
    for (int h = 0; h < ch; h++) {
      int cols = ncols - h * 8;
      if (cols <= 0) continue;
      if (cols > 8) cols = 8;
      float *o = out + r * out_stride + h * 8;
      V v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(run[r][h]), 0xd8)); // columns in order
      // vmaskmovps is slow on AMD (a masked store ~12 cycles on Zen 3): whole vectors go plain.
      if (cols == 8) {
        if (accumulate) v = V_ADD(V_LOADU(o), v); // DAZ flushes a subnormal accumulator
        V_STOREU(o, V_CANON(v));
      } else {
        if (accumulate) v = V_ADD(V_LOADN(o, cols), v);
        V_STOREN(o, cols, V_CANON(v));
      }
    }
}

// One column group (cb blocks) for rows [0, rows) of the converted inputs.
static inline __attribute__((always_inline)) void group_bf16_dp(const float *x, size_t xs, const float *w, int kp,
                                                                float *out, size_t out_stride, int ncols, int rows,
                                                                bool accumulate, const int cb, const char *next,
                                                                size_t next_bytes) {
  int i = 0;
  size_t blocks = (size_t)(rows / PR_RB) + 1, step = (next_bytes / 64 + blocks - 1) / blocks * 64, at = 0;
  for (; i + PR_RB <= rows; i += PR_RB) {
    for (size_t e = at + step < next_bytes ? at + step : next_bytes; at < e; at += 64) _mm_prefetch(next + at, _MM_HINT_T0);
    block_bf16_dp(x + i * xs, xs, w, kp, out + i * out_stride, out_stride, ncols, accumulate, PR_RB, cb);
  }
  if (rows - i == 2) block_bf16_dp(x + i * xs, xs, w, kp, out + i * out_stride, out_stride, ncols, accumulate, 2, cb);
  if (rows - i == 1) block_bf16_dp(x + i * xs, xs, w, kp, out + i * out_stride, out_stride, ncols, accumulate, 1, cb);
}

// Rows are converted a few dozen at a time; each column group then sweeps
// them with its 4 x 4 x k weights (8 KiB at k = 128) staying in L1.
static void pass_bf16_dp(const num_tile_hdr *t, float *acc, size_t acc_stride, const char *lhs, size_t lhs_stride,
                         int r0, int r1, bool accumulate) {
  _Alignas(64) float x[PR_X_FLOATS];
  int k = t->k, n = t->n, nb = cblocks_of(n), kp = pairs_of(k);
  size_t xs = (size_t)kp * 2;
  int sb = (int)(PR_X_FLOATS / xs) / PR_RB * PR_RB; // k <= 4096: at least 6 rows
  const float *w = NUM_TILE_DATA(t);
  for (int i = r0; i < r1; i += sb) {
    int rows = r1 - i < sb ? r1 - i : sb;
    for (int r = 0; r < rows; r++) {
      const uint16_t *src = (const uint16_t *)(const void *)(lhs + (size_t)(i + r) * lhs_stride);
      float *xr = x + r * xs;
      for (int j = 0; j < k; j++) xr[j] = num_bf16_bits_f32(src[j]);
      if (k & 1) xr[k] = -0.0f; // see the top
    }
    float *out = acc + (size_t)i * acc_stride;
    for (int q = 0; q < nb; q += PR_CB) {
      const float *wq = w + (size_t)q * kp * 8;
      int ncols = n - q * 4, cb = nb - q < PR_CB ? nb - q : PR_CB;
      int nq = nb - q - cb < PR_CB ? nb - q - cb : PR_CB; // the next group's blocks
      const char *next = (const char *)(wq + (size_t)cb * kp * 8);
      size_t nbytes = i == r0 ? (size_t)nq * kp * 32 : 0; // later row blocks find them in L2
      switch (cb) {
      case 4: group_bf16_dp(x, xs, wq, kp, out + q * 4, acc_stride, ncols, rows, accumulate, 4, next, nbytes); break;
      case 3: group_bf16_dp(x, xs, wq, kp, out + q * 4, acc_stride, ncols, rows, accumulate, 3, next, nbytes); break;
      case 2: group_bf16_dp(x, xs, wq, kp, out + q * 4, acc_stride, ncols, rows, accumulate, 2, next, nbytes); break;
      default: group_bf16_dp(x, xs, wq, kp, out + q * 4, acc_stride, ncols, rows, accumulate, 1, next, nbytes); break;
      }
    }
  }
}

#include "sim/kernels_vec.h"
#else
const num_mxu_impl num_mxu_avx2; // not built for AVX2: never available
#endif
