"""C helpers shared by the hand-written micro-kernels' sources. Each is guarded, as one
generated C file may hold several kernels that include it."""

LANES_INSIDE = r"""
#include <stdint.h>
#ifndef tw_lanes_inside_defined
#define tw_lanes_inside_defined
/* Lanes j of a 16-wide access at column cs that fall inside [0, w). */
static inline uint32_t tw_lanes_inside(int32_t cs, int32_t w) {
  const int32_t lo = cs < 0 ? -cs : 0, hi = w - cs < 16 ? w - cs : 16;
  return hi <= lo ? 0u : ((1u << hi) - 1u) & ~((1u << lo) - 1u);
}
#endif
"""

TRANSPOSE16 = r"""
#include <immintrin.h>
#if defined(__AVX512F__) && !defined(tw_transpose16_defined)
#define tw_transpose16_defined
/* t[j] lane i = r[i] lane j: pairs, quads within 128-bit lanes, then the lanes. */
static inline void tw_transpose16(__m512* restrict r, __m512* restrict t) {
  #pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  #pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  #pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    __m512 v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
    __m512 w0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    __m512 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
    t[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    t[c + 4] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    t[c + 8] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    t[c + 12] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}
#endif
"""

STREAM_STORES = r"""
#include <immintrin.h>
#include <stdint.h>
#ifndef tw_stream_stores_defined
#define tw_stream_stores_defined
/* Whether rows ``ld`` floats apart, from ``p``, each start on a cache line: where
   non-temporal stores write whole lines. */
static inline int tw_rows_on_lines(const float* p, int32_t ld) {
  return !(((uintptr_t)p | (uintptr_t)ld * sizeof(float)) & 63);
}
/* Makes this thread's non-temporal stores visible to the others: they are weakly
   ordered, and a barrier's atomics need not drain them. */
static inline void tw_store_fence(void) { _mm_sfence(); }
#endif
"""
