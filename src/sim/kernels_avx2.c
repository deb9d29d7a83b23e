// MXU kernels for AVX2 with FMA: kernels_vec.h with 8 lanes. Compiled with
// those flags (CMakeLists.txt) and used only on CPUs that have them (kernels.c).
#include "sim/kernels.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

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
#define IMPL num_mxu_avx2
#include "sim/kernels_vec.h"
#else
const num_mxu_impl num_mxu_avx2; // not built for AVX2: never available
#endif
