"""C helpers shared by the hand-written micro-kernels' sources. Each is guarded, as one
generated C file may hold several kernels that include it. Their x86 intrinsics are
used only where the compiler targets the ISA that has them (``__AVX2__``...); on other
architectures (aarch64) the kernels' plain C runs, and x86's header is not included."""

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
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
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

TRANSPOSE8 = r"""
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__AVX2__) && !defined(tw_transpose8_defined)
#define tw_transpose8_defined
/* t[j] lane i = r[i] lane j: pairs, quads within 128-bit halves, then the halves. */
static inline void tw_transpose8(__m256* restrict r, __m256* restrict t) {
  #pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  #pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  #pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm256_permute2f128_ps(r[c], r[4 + c], 0x20);
    t[c + 4] = _mm256_permute2f128_ps(r[c], r[4 + c], 0x31);
  }
}
#endif
"""

LANES_INSIDE8 = r"""
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <stdint.h>
#if defined(__AVX2__) && !defined(tw_lanes_inside8_defined)
#define tw_lanes_inside8_defined
/* AVX2's masks are vectors: lane j of an 8-wide access is on where it lies in
   [lo, hi) (columns cs + j inside [0, w); the first n lanes). */
static inline __m256i tw_lanes_between8(int32_t lo, int32_t hi) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), lane),
                             _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane));
}
static inline __m256i tw_lanes_inside8(int32_t cs, int32_t w) {
  return tw_lanes_between8(-cs, w - cs);
}
static inline __m256i tw_first_lanes8(int32_t n) { return tw_lanes_between8(0, n); }
/* The first n <= 8 lanes at p (the rest 0), and a store of them: plain where all 8
   are, as a masked store costs many times a plain one on AMD cores (vmaskmovps,
   Zen 3: 72% of a layout transpose's time). */
static inline __m256 tw_load_first8(const float* p, int32_t n) {
  return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tw_first_lanes8(n));
}
static inline void tw_store_first8(float* p, int32_t n, __m256 v) {
  if (n == 8) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, tw_first_lanes8(n), v);
}
#endif
"""

STREAM_STORES = r"""
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
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
#if defined(__x86_64__) || defined(__i386__)
static inline void tw_store_fence(void) { _mm_sfence(); }
#else
static inline void tw_store_fence(void) {}  /* only x86 code stores non-temporally */
#endif
#endif
"""
