// MXU kernels for AVX-512 (F, DQ, BW, VL, with FMA): kernels_vec.h with 16
// lanes. Compiled with those flags (CMakeLists.txt) and used only on CPUs that
// have them (kernels.c).
#include "sim/kernels.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__) && defined(__FMA__)
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
#define VI_LOADN(p, n) _mm512_maskz_loadu_epi32(MASK(n), p)
#define VI_STOREN(p, n, v) _mm512_mask_storeu_epi32(p, MASK(n), v)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define VI_LOADU(p) _mm512_loadu_si512((const void *)(p))
#define VI_STOREU(p, v) _mm512_storeu_si512((void *)(p), v)
#define IMPL num_mxu_avx512
#include "sim/kernels_vec.h"
#else
const num_mxu_impl num_mxu_avx512; // not built for AVX-512: never available
#endif
