// MXU kernels for Intel AMX (tiles, BF16, INT8), compiled with those flags and
// AVX-512 (CMakeLists.txt), used only where the CPU has them and Linux granted
// the tile data (kernels.c).
//
// One TDPBF16PS with a 32-deep slice computes, for each of 16 x 16 outputs,
// two fma chains from +0 over the even and odd k, then c = c + (even + odd),
// flushing subnormal inputs and results (tininess after rounding), whatever
// MXCSR says: exactly one slice of docs/numerics.md section 4.2. So a pass is
// one zeroed C tile per 16 x 16 outputs, one TDPBF16PS per slice, the result
// made canonical NaN and, for an accumulating pass, added to the accumulator
// with AVX-512 under DAZ and FTZ. A short last slice is padded with -0 * +0,
// which changes no bit. TDPBSSD (int8) is exact integer arithmetic.
#include "sim/kernels.h"

#if defined(__x86_64__) && defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AMX_INT8__) && \
    defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define PANEL_STACK (16 << 10) // bytes of A panel on the stack (a row block of k <= 256)

typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tile_config;

// Tiles 0-3: C (2 x 2 blocks of 16 x 16), 4-5: A (two 16-row halves), 6-7: B
// (two 16-column blocks); every tile 16 rows of 64 bytes.
// Loading the configuration costs about a hundred cycles, reading it back ten:
// load it only when this thread's tiles are set up otherwise (or not at all).
static void configure(void) {
  _Alignas(64) tile_config cfg, cur;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  _tile_storeconfig(&cur);
  if (memcmp(&cur, &cfg, sizeof cfg)) _tile_loadconfig(&cfg);
}

static __m512 canon(__m512 v) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v,
                              _mm512_castsi512_ps(_mm512_set1_epi32(0x7fc00000)));
}

static __mmask16 first(int n) { return (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u); }

// ---- layouts ----
// bf16: per 16-column block b and 32-deep slice s, one B tile of 16 rows of
// 32-bit words: row p holds for each column the pair k = 32s + 2p (low half)
// and 32s + 2p + 1 (high half), the "VNNI" layout. int8: per block and
// 64-deep slice, row p holds the bytes of k = 64s + 4p .. 4p + 3. Beyond k and
// n: zeros.

static const uint8_t zero_row[4096 * 2]; // a weight row beyond k (n <= 4096)

static void tile_load(num_tile_hdr *t, const void *w, size_t w_stride) {
  int k = t->k, n = t->n, nb = (n + 15) / 16, depth = t->dtype == 1 ? 32 : 64, per = depth / 16;
  int ns = (k + depth - 1) / depth;
  uint32_t *d = NUM_TILE_DATA(t);
  for (int s = 0; s < ns; s++)
    for (int p = 0; p < 16; p++) {
      const uint8_t *row[4];
      for (int q = 0; q < per; q++) {
        int j = depth * s + per * p + q;
        row[q] = j < k ? (const uint8_t *)w + (size_t)j * w_stride : zero_row;
      }
      for (int b = 0; b < nb; b++) {
        uint32_t *o = d + ((size_t)b * ns + s) * 256 + p * 16;
        int c0 = 16 * b;
        __mmask16 m = first(n - c0); // zeros beyond n
        __m512i v;
        if (t->dtype == 1)
          v = _mm512_or_si512(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row[0] + 2 * c0)),
                              _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row[1] + 2 * c0)), 16));
        else
          v = _mm512_or_si512(
              _mm512_or_si512(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, row[0] + c0)),
                              _mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, row[1] + c0)), 8)),
              _mm512_or_si512(_mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, row[2] + c0)), 16),
                              _mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, row[3] + c0)), 24)));
        _mm512_store_si512(o, v);
      }
    }
}

static void tile_unpack(const num_tile_hdr *t, void *raw) {
  int k = t->k, n = t->n, depth = t->dtype == 1 ? 32 : 64, per = depth / 16, ns = (k + depth - 1) / depth;
  const uint32_t *d = NUM_TILE_DATA(t);
  for (int j = 0; j < k; j++)
    for (int c = 0; c < n; c++) {
      uint32_t word = d[((size_t)(c / 16) * ns + j / depth) * 256 + (j % depth) / per * 16 + c % 16];
      int q = j % per;
      if (t->dtype == 1) ((uint16_t *)raw)[(size_t)j * n + c] = (uint16_t)(word >> (16 * q));
      else ((uint8_t *)raw)[(size_t)j * n + c] = (uint8_t)(word >> (8 * q));
    }
}

// ---- the A operand of a 32-row block ----
// Copied into a panel, slice by slice (32 rows of 64 bytes each), so that
// tile loads read consecutive lines; padded with pad (bf16 -0 or int8 0)
// beyond k. Rows beyond the block are left as they are: they only make
// results that are never stored.
static void pack_a(char *panel, const char *lhs, size_t lhs_stride, int rows, int k, int es, int depth,
                   uint16_t pad) {
  int ns = (k + depth - 1) / depth, kbytes = k * es, full = kbytes / 64;
  __m512i padv = es == 2 ? _mm512_set1_epi16((short)pad) : _mm512_setzero_si512();
  for (int r = 0; r < rows; r++) {
    const char *src = lhs + (size_t)r * lhs_stride;
    char *dst = panel + (size_t)r * 64;
    for (int s = 0; s < full; s++) _mm512_store_si512(dst + (size_t)s * 2048, _mm512_loadu_si512(src + s * 64));
    if (full < ns) { // the short last slice: the row's tail, then padding
      __mmask64 m = (__mmask64)((1ull << (kbytes - 64 * full)) - 1);
      _mm512_store_si512(dst + (size_t)full * 2048, _mm512_mask_loadu_epi8(padv, m, src + full * 64));
    }
  }
}

// The four C tiles of one 32 x 32 block into c[32][32] (fp32 or int32).
static void store_c(void *c) {
  _tile_stored(0, c, 128);
  _tile_stored(1, (char *)c + 64, 128);
  _tile_stored(2, (char *)c + 16 * 128, 128);
  _tile_stored(3, (char *)c + 16 * 128 + 64, 128);
}

// ---- passes ----

// The results of one 32 x 32 block, c[32][32], into the accumulators: rows
// [0, rows) and columns [0, cols) at acc (row stride acc_stride elements).
typedef struct {
  void *acc;
  int rows, cols;
} c_block;

static void epilogue(const float *c, c_block blk, int r0, int r1, size_t acc_stride, bool accumulate, bool bf16) {
  if (r1 > blk.rows) r1 = blk.rows;
  for (int r = r0; r < r1; r++)
    for (int h = 0; h * 16 < blk.cols; h++) {
      __mmask16 m = first(blk.cols - 16 * h);
      if (bf16) {
        float *p = (float *)blk.acc + (size_t)r * acc_stride + 16 * h;
        __m512 v = _mm512_load_ps(c + r * 32 + 16 * h);
        if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, p), v); // MXCSR: DAZ, FTZ
        _mm512_mask_storeu_ps(p, m, canon(v));
      } else {
        int32_t *p = (int32_t *)blk.acc + (size_t)r * acc_stride + 16 * h;
        __m512i v = _mm512_load_si512((const void *)(c + r * 32 + 16 * h));
        if (accumulate) v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, p), v); // wraps
        _mm512_mask_storeu_epi32(p, m, v);
      }
    }
}

// Rows [r0, r1), 32-row blocks. The A operand is read by tile loads straight
// from the input rows when the block is whole and every slice full (the next
// block's rows are prefetched meanwhile), else from a padded copy. Each block's
// results go to the accumulators a few rows after each slice of the next
// block's tile dot products, so that the vector work runs while the matrix
// unit works (a tile load waits for the dot products before it: the core has
// nothing else to do then).
static void pass_rows(const num_tile_hdr *t, void *acc, size_t acc_stride, const char *lhs, size_t lhs_stride,
                      int r0, int r1, bool accumulate) {
  bool bf16 = t->dtype == 1;
  int k = t->k, n = t->n, nb = (n + 15) / 16, depth = bf16 ? 32 : 64, es = bf16 ? 2 : 1;
  int ns = (k + depth - 1) / depth;
  size_t block_bytes = (size_t)ns * 32 * 64;
  _Alignas(64) char panel_stack[PANEL_STACK];
  char *panel = block_bytes <= sizeof panel_stack ? panel_stack : aligned_alloc(64, block_bytes);
  if (!panel) abort(); // 256 KiB at most (k <= 4096)
  _Alignas(64) float cf[2][32 * 32];
  int cur = 0;
  c_block pending = {NULL, 0, 0};
  const char *w = NUM_TILE_DATA(t);
  const size_t btile = 1024; // bytes of one B tile
  const size_t osize = 4;    // fp32 or int32 accumulators
  int lines = (k * es + 63) / 64; // cache lines of one input row
  bool whole_k = k % depth == 0;
  for (int i = r0; i < r1; i += 32) {
    int rows = r1 - i < 32 ? r1 - i : 32;
    const char *a; // slice s, half h at a + s * aslice + h * ahalf, rows astride apart
    size_t astride, aslice, ahalf;
    if (rows == 32 && whole_k) {
      a = lhs + (size_t)i * lhs_stride, astride = lhs_stride, aslice = 64, ahalf = 16 * lhs_stride;
    } else {
      pack_a(panel, lhs + (size_t)i * lhs_stride, lhs_stride, rows, k, es, depth, bf16 ? 0x8000 : 0);
      a = panel, astride = 64, aslice = 2048, ahalf = 1024;
    }
    // The next block's rows into the cache, spread over this block's slices.
    int next = i + 32, nrows = r1 - next < 32 ? r1 - next : 32;
    int to_fetch = nrows > 0 ? nrows * lines : 0, fetched = 0;
    int per_iter = (to_fetch + ((nb + 1) / 2) * ns - 1) / (((nb + 1) / 2) * ns);
    bool lower = rows > 16; // the second 16-row half is needed
    for (int b = 0; b < nb; b += 2) {
      bool two = b + 1 < nb;
      const char *b0 = w + (size_t)b * ns * btile, *b1 = b0 + (size_t)ns * btile;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      int step = (pending.rows + ns - 1) / ns; // pending rows per slice
      for (int s = 0; s < ns; s++) {
        const char *as = a + (size_t)s * aslice;
        _tile_loadd(4, as, (long)astride);
        if (lower) _tile_loadd(5, as + ahalf, (long)astride);
        _tile_loadd(6, b0 + (size_t)s * btile, 64);
        if (two) _tile_loadd(7, b1 + (size_t)s * btile, 64);
        if (bf16) {
          _tile_dpbf16ps(0, 4, 6);
          if (two) _tile_dpbf16ps(1, 4, 7);
          if (lower) _tile_dpbf16ps(2, 5, 6);
          if (lower && two) _tile_dpbf16ps(3, 5, 7);
        } else {
          _tile_dpbssd(0, 4, 6);
          if (two) _tile_dpbssd(1, 4, 7);
          if (lower) _tile_dpbssd(2, 5, 6);
          if (lower && two) _tile_dpbssd(3, 5, 7);
        }
        if (pending.acc) epilogue(cf[cur ^ 1], pending, s * step, (s + 1) * step, acc_stride, accumulate, bf16);
        for (int f = 0; f < per_iter && fetched < to_fetch; f++, fetched++)
          _mm_prefetch(lhs + (size_t)(next + fetched / lines) * lhs_stride + (size_t)(fetched % lines) * 64,
                       _MM_HINT_T0);
      }
      store_c(cf[cur]);
      pending = (c_block){(char *)acc + ((size_t)i * acc_stride + 16 * (size_t)b) * osize, rows,
                          n - 16 * b < 32 ? n - 16 * b : 32};
      cur ^= 1;
    }
  }
  if (pending.acc) epilogue(cf[cur ^ 1], pending, 0, 32, acc_stride, accumulate, bf16);
  if (panel != panel_stack) free(panel);
}

// The accumulating add flushes its inputs and result (num_mxu_add): MXCSR's
// DAZ and FTZ do that (for a sum of two fp32 values, rounding with or without
// an exponent limit agrees on "subnormal", so FTZ is exact here).
static void tile_pass(const num_tile_hdr *t, void *acc, size_t acc_stride, const void *lhs, size_t lhs_stride,
                      int r0, int r1, bool accumulate) {
  unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);
  configure();
  pass_rows(t, acc, acc_stride, lhs, lhs_stride, r0, r1, accumulate);
  _mm_setcsr(csr);
}

// Bytes of tile_load's layout for a k x n tile.
static size_t tile_bytes(int dtype, int k, int n) {
  int depth = dtype == 1 ? 32 : 64;
  return (size_t)((n + 15) / 16) * (size_t)((k + depth - 1) / depth) * 256 * 4;
}

const num_mxu_impl num_mxu_amx = {tile_load, tile_unpack, tile_pass, tile_bytes, 32};
#else
const num_mxu_impl num_mxu_amx; // not built for AMX: never available
#endif
