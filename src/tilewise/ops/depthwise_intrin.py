"""A hand-written depthwise-convolution micro-kernel for ``tensorize``: one channel's
``th x tw`` output tile, ``out[i, j] = sum_{r,s} a[i + r, j + s] * w[r, s]``, stride 1.

Left to gcc, each of the tile's ``th*R*S`` FMAs takes its input vector as an
unaligned memory operand (36 line-crossing loads for 36 FMAs on a 4 x 16 tile), so
the loop is bound by loads at ~45% of the FMA peak. The kernel instead loads each
input row once as whole vectors, makes the ``S - 1`` shifted copies in registers
(``valignd`` of two neighbouring vectors on AVX-512; on AVX2, whose byte shifts stay
inside 128-bit halves, one ``vperm2i128`` of the two and a ``vpalignr`` per shift)
and feeds every copy to the up to ``R`` output rows that use it: per input row and
vector, 2 loads and ``S - 1`` shuffles for up to ``R*S`` FMAs. The ``R*S`` weights
stay broadcast in registers (on AVX2's 16, some in L1 as the FMAs' memory operands).

The AVX2 kernel stores each output row as soon as its last input row is in, so only
``R`` rows of sums are live, and it takes plain loads and no row checks on tiles
that lie inside the plane. On the Zen 3 VM, one 8 x 8 tile of mobilenet-dw1 called
over and over from L1 ran 66-70 GFLOP/s (medians of two runs), against 49-54 for the
version that held every row's sums to the end, skipped rows outside with branches
and masked every load.

With ``stream`` the tiles go to the output with non-temporal stores (where its rows
start on cache lines; each thread fences them once): an output larger than L2 is
written once and not read here, and through the cache each of its lines would first
be read from memory.
"""

from __future__ import annotations

from .. import te
from ..ir import Address, ExternCall, simplify
from ..schedule import BufferView, IntrinImpl, TensorIntrin, decl_tensor_intrin
from .simd_c import LANES_INSIDE, LANES_INSIDE8, STREAM_STORES

_SOURCE = LANES_INSIDE + LANES_INSIDE8 + r"""
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if LANES == 8 && defined(__AVX2__) && defined(__FMA__) && (TW % 8 == 0) && (KS <= 9)
/* The AVX2 tile, specialised on whether every row and column it reads is inside the
   plane (most tiles): then its loads are plain and nothing is checked. Otherwise rows
   outside read a row of zeros, not skipped (no branches in the unrolled stages), and
   the vectors that cross a side of the plane load masked. */
static inline __attribute__((always_inline)) void NAME_avx2(
    const float* restrict plane, const float* restrict w, float* restrict c, int32_t lda,
    int32_t ldw, int32_t ldc, int32_t row0, int32_t col0, const int inside) {
  enum { V = TW / 8 };
#if STREAM && TW % 16 == 0
  /* Rows of whole cache lines: the output goes around the cache. */
  const int stream = tw_rows_on_lines(c, ldc);
#endif
  /* Rows outside the plane: read from 8 floats in, as col0 may be negative. */
  static const float zeros[TW + 16] __attribute__((aligned(32)));
  __m256 acc[TH][V], wv[KR][KS];
  #pragma GCC unroll 64
  for (int r = 0; r < KR; ++r)
    #pragma GCC unroll 64
    for (int s = 0; s < KS; ++s) wv[r][s] = _mm256_set1_ps(w[r * ldw + s]);
  __m256i m[V + 1];
  int whole[V + 1];
  #pragma GCC unroll 64
  for (int v = 0; v <= V; ++v) {
    m[v] = tw_lanes_inside8(col0 + 8 * v, PW);
    /* Whole inside the row; the last vector only where the plane is known, as a
       padded buffer's last row may end before it does. */
    whole[v] = inside || (col0 + 8 * v >= 0 && col0 + 8 * v + 8 <= PW && (v < V || BOUNDED));
  }
  /* The last vector only lends its first KS - 1 values to the shifts. */
  m[V] = _mm256_and_si256(m[V], tw_first_lanes8(KS - 1));
  /* Input row t feeds output rows t - KR + 1 .. t; row i is stored once complete, so
     only KR rows of sums are live at a time, whatever TH. */
  #pragma GCC unroll 64
  for (int t = 0; t < TH + KR - 1; ++t) {
    const int32_t y = row0 + t;
    const float* row = inside || (y >= 0 && y < PH) ? plane + (int64_t)y * lda + col0
                                                    : zeros + 8;
    __m256 x[V + 1];
    #pragma GCC unroll 64
    for (int v = 0; v <= V; ++v)
      x[v] = whole[v] ? _mm256_loadu_ps(row + 8 * v) : _mm256_maskload_ps(row + 8 * v, m[v]);
    #pragma GCC unroll 64
    for (int v = 0; v < V; ++v) {
      /* x[v] shifted by s lanes, x[v + 1] shifting in: byte shifts of (x[v], mid)
         below 4 lanes, of (mid, x[v + 1]) above, where mid is their middle halves. */
      const __m256i lo = _mm256_castps_si256(x[v]), hi = _mm256_castps_si256(x[v + 1]);
      const __m256i mid = _mm256_permute2x128_si256(lo, hi, 0x21);
      #pragma GCC unroll 64
      for (int s = 0; s < KS; ++s) {
        const __m256 xs = s == 0 ? x[v] : s == 4 ? _mm256_castsi256_ps(mid)
            : s == 8 ? x[v + 1]
            : s < 4 ? _mm256_castsi256_ps(_mm256_alignr_epi8(mid, lo, 4 * (s & 3)))
            : _mm256_castsi256_ps(_mm256_alignr_epi8(hi, mid, 4 * (s & 3)));
        #pragma GCC unroll 64
        for (int r = 0; r < KR; ++r) {
          const int i = t - r;
          if (i >= 0 && i < TH)
            acc[i][v] = r == 0 && s == 0 ? _mm256_mul_ps(xs, wv[r][s])
                                         : _mm256_fmadd_ps(xs, wv[r][s], acc[i][v]);
        }
      }
    }
    const int done = t - (KR - 1);
    if (done >= 0) {
#if STREAM && TW % 16 == 0
      if (stream) {
        #pragma GCC unroll 64
        for (int v = 0; v < V; ++v) _mm256_stream_ps(c + done * ldc + 8 * v, acc[done][v]);
        continue;
      }
#endif
      #pragma GCC unroll 64
      for (int v = 0; v < V; ++v) _mm256_storeu_ps(c + done * ldc + 8 * v, acc[done][v]);
    }
  }
}
#endif
/* c[i][j] = sum_{r,s} x(row0 + i + r, col0 + j + s) * w[r][s], where x(y, x) is
   plane[y * lda + x] inside [0, PH) x [0, PW) and 0 outside: the zero padding is
   never stored: border lanes are masked, rows outside skipped (AVX-512) or read
   from a row of zeros (AVX2). */
static inline void NAME(const float* restrict plane, const float* restrict w,
                        float* restrict c, int32_t lda, int32_t ldw, int32_t ldc,
                        int32_t row0, int32_t col0) {
#if LANES == 16 && defined(__AVX512F__) && (TW % 16 == 0) && (KS <= 17)
  enum { V = TW / 16 };
  __m512 acc[TH][V], wv[KR][KS];
  #pragma GCC unroll 64
  for (int i = 0; i < TH; ++i)
    #pragma GCC unroll 64
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  #pragma GCC unroll 64
  for (int r = 0; r < KR; ++r)
    #pragma GCC unroll 64
    for (int s = 0; s < KS; ++s) wv[r][s] = _mm512_set1_ps(w[r * ldw + s]);
  __mmask16 m[V + 1];
  #pragma GCC unroll 64
  for (int v = 0; v <= V; ++v) m[v] = (__mmask16)tw_lanes_inside(col0 + 16 * v, PW);
  /* The last vector only lends its first KS - 1 values to the shifts. */
  m[V] &= (__mmask16)((1u << (KS - 1)) - 1u);
  #pragma GCC unroll 64
  for (int t = 0; t < TH + KR - 1; ++t) {
    const int32_t y = row0 + t;
    if (y < 0 || y >= PH) continue;
    const float* row = plane + (int64_t)y * lda + col0;
    __m512 x[V + 1];
    #pragma GCC unroll 64
    for (int v = 0; v <= V; ++v) x[v] = _mm512_maskz_loadu_ps(m[v], row + 16 * v);
    #pragma GCC unroll 64
    for (int v = 0; v < V; ++v) {
      #pragma GCC unroll 64
      for (int s = 0; s < KS; ++s) {
        const __m512 xs = s == 0 ? x[v] : _mm512_castsi512_ps(_mm512_alignr_epi32(
            _mm512_castps_si512(x[v + 1]), _mm512_castps_si512(x[v]), s));
        #pragma GCC unroll 64
        for (int r = 0; r < KR; ++r) {
          const int i = t - r;
          if (i >= 0 && i < TH) acc[i][v] = _mm512_fmadd_ps(xs, wv[r][s], acc[i][v]);
        }
      }
    }
  }
#if STREAM
  if (tw_rows_on_lines(c, ldc)) {
    #pragma GCC unroll 64
    for (int i = 0; i < TH; ++i)
      #pragma GCC unroll 64
      for (int v = 0; v < V; ++v) _mm512_stream_ps(c + i * ldc + 16 * v, acc[i][v]);
    return;
  }
#endif
  #pragma GCC unroll 64
  for (int i = 0; i < TH; ++i)
    #pragma GCC unroll 64
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
#elif LANES == 8 && defined(__AVX2__) && defined(__FMA__) && (TW % 8 == 0) && (KS <= 9)
  if (BOUNDED && col0 >= 0 && col0 + TW + 8 <= PW && row0 >= 0 && row0 + TH + KR - 1 <= PH)
    NAME_avx2(plane, w, c, lda, ldw, ldc, row0, col0, 1);
  else NAME_avx2(plane, w, c, lda, ldw, ldc, row0, col0, 0);
#else
  for (int i = 0; i < TH; ++i)
    for (int j = 0; j < TW; ++j) {
      float sum = 0.0f;
      for (int r = 0; r < KR; ++r)
        for (int s = 0; s < KS; ++s) {
          const int32_t y = row0 + i + r, x = col0 + j + s;
          if (y >= 0 && y < PH && x >= 0 && x < PW)
            sum += plane[(int64_t)y * lda + x] * w[r * ldw + s];
        }
      c[i * ldc + j] = sum;
    }
#endif
}
"""


def depthwise_microkernel(th: int, tw: int, R: int, S: int, lanes: int,
                          plane: tuple[int, int] | None = None,
                          stream: bool = False) -> TensorIntrin:
    """``out[th, tw] = sum_{r<R, s<S} a[i + r, j + s] * w[r, s]`` (fp32, stride 1,
    dilation 1) in vectors of ``lanes`` (16 or 8; ``tw`` a multiple of them, ``S`` at
    most ``lanes + 1``); the views' rows are their second-last stride apart. ``a`` may be
    the unpadded input read through an inlined zero padding: its ``plane`` (H, W)
    bounds what exists, the rest reads as zero; ``None``: everything read exists
    (a padded buffer). ``stream``: non-temporal stores, for tiles of whole cache
    lines (plain stores otherwise)."""
    a = te.placeholder((th + R - 1, tw + S - 1), "float32", name="a")
    w = te.placeholder((R, S), "float32", name="w")
    r = te.reduce_axis((0, R), name="r")
    s = te.reduce_axis((0, S), name="s")
    out = te.compute((th, tw), lambda i, j: te.sum(a[i + r, j + s] * w[r, s], axis=[r, s]),
                     name="out")
    ph, pw = plane or (1 << 30, 1 << 30)
    name = f"tw_dw_ukr_{th}x{tw}x{R}x{S}_{ph}x{pw}" + ("_nt" if stream else "")
    source = (_SOURCE.replace("NAME", name).replace("TH", str(th)).replace("TW", str(tw))
              .replace("KR", str(R)).replace("KS", str(S)).replace("PH", str(ph))
              .replace("PW", str(pw)).replace("LANES", str(lanes))
              .replace("BOUNDED", str(int(plane is not None)))
              .replace("STREAM", str(int(stream))))
    if stream:
        source = STREAM_STORES + source

    def impl(ins: list[BufferView], outs: list[BufferView]) -> IntrinImpl:
        (av, wv), (cv,) = ins, outs
        lda = av.strides[-2]
        row0, col0 = av.origin[-2], av.origin[-1]
        # The plane's first element: the tile's address less its (row, column) offset.
        base = Address(av.ptr.buffer, simplify(av.ptr.index - row0 * lda - col0),
                       av.ptr.dtype)
        args = (base, wv.ptr, cv.ptr, lda, wv.strides[-2], cv.strides[-2], row0, col0)
        return IntrinImpl(body=ExternCall(name, args, "tw_store_fence" if stream else ""))

    return decl_tensor_intrin(out.op, impl, source=source, name=name)
