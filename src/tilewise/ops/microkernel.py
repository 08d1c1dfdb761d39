"""A hand-written GEMM micro-kernel for ``tensorize``: ``C[mr, nr] += A[mr, kc] @ B[kc, nr]``
in C with AVX-512 or AVX2 intrinsics, as wide as the target's vectors, a plain C loop
elsewhere.

The framework keeps scheduling the loops around it (tiling, packing, parallelism);
the kernel owns the register tile.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..errors import LowerError
from ..ir import Const, Expr, ExternCall, const
from ..schedule import BufferView, IntrinImpl, TensorIntrin, decl_tensor_intrin
from ..target import Target
from .simd_c import STREAM_STORES

_SOURCE = r"""
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
/* ``zero``: the tile starts from 0 in registers (body), else from c (update).
   ``rows``, ``cols``: the tile's first rows and columns that are computed (MR and NR,
   or fewer at the edge of the result; columns in whole vectors; the rest of the tile
   untouched). All three are constants wherever the kernel is inlined, so each call
   site gets its own copy. LANES: the target's vector width, which picks the
   intrinsics. */
static inline __attribute__((always_inline)) void NAME_run(
    const float* restrict a, const float* restrict b, float* restrict c,
    int32_t lda, int32_t ldb, int32_t ldc, const int zero, const int rows,
    const int cols) {
#if LANES == 16 && defined(__AVX512F__) && (NR % 16 == 0)
  enum { V = NR / 16 };
  const int nv = (cols + 15) / 16;
  __m512 acc[MR][V];
  #pragma GCC unroll 64
  for (int i = 0; i < rows; ++i)
    #pragma GCC unroll 64
    for (int v = 0; v < nv; ++v)
      acc[i][v] = zero ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * ldc + 16 * v);
  #pragma GCC unroll 4
  for (int k = 0; k < KC; ++k) {
    __m512 bv[V];
    #pragma GCC unroll 64
    for (int v = 0; v < nv; ++v) bv[v] = _mm512_loadu_ps(b + k * ldb + 16 * v);
#if PF
    #pragma GCC unroll 64
    for (int v = 0; v < nv; ++v)
      _mm_prefetch((const char*)(b + PF + (k + PF_AHEAD) * ldb + 16 * v), _MM_HINT_T2);
#endif
    #pragma GCC unroll 64
    for (int i = 0; i < rows; ++i) {
      __m512 av = _mm512_set1_ps(a[A_AT]);
      #pragma GCC unroll 64
      for (int v = 0; v < nv; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
#if STREAM
  /* Around the cache: C is written once and not read here again, and its lines would
     otherwise evict the A that the next tiles read (gemm-512, one core: 1.07x). */
  if (tw_rows_on_lines(c, ldc)) {
    #pragma GCC unroll 64
    for (int i = 0; i < rows; ++i)
      #pragma GCC unroll 64
      for (int v = 0; v < nv; ++v) _mm512_stream_ps(c + i * ldc + 16 * v, acc[i][v]);
    return;
  }
#endif
  #pragma GCC unroll 64
  for (int i = 0; i < rows; ++i)
    #pragma GCC unroll 64
    for (int v = 0; v < nv; ++v) _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
#elif LANES == 8 && defined(__AVX2__) && defined(__FMA__) && (NR % 8 == 0)
  enum { V = NR / 8 };
  const int nv = (cols + 7) / 8;
  __m256 acc[MR][V];
  #pragma GCC unroll 64
  for (int i = 0; i < rows; ++i)
    #pragma GCC unroll 64
    for (int v = 0; v < nv; ++v)
      acc[i][v] = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(c + i * ldc + 8 * v);
  #pragma GCC unroll 4
  for (int k = 0; k < KC; ++k) {
    __m256 bv[V];
    #pragma GCC unroll 64
    for (int v = 0; v < nv; ++v) bv[v] = _mm256_loadu_ps(b + k * ldb + 8 * v);
#if PF
    #pragma GCC unroll 64
    for (int v = 0; v < nv; v += 2)
      _mm_prefetch((const char*)(b + PF + (k + PF_AHEAD) * ldb + 8 * v), _MM_HINT_T2);
#endif
    #pragma GCC unroll 64
    for (int i = 0; i < rows; ++i) {
      __m256 av = _mm256_set1_ps(a[A_AT]);
      #pragma GCC unroll 64
      for (int v = 0; v < nv; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
#if STREAM
  if (tw_rows_on_lines(c, ldc)) {
    #pragma GCC unroll 64
    for (int i = 0; i < rows; ++i)
      #pragma GCC unroll 64
      for (int v = 0; v < nv; ++v) _mm256_stream_ps(c + i * ldc + 8 * v, acc[i][v]);
    return;
  }
#endif
  #pragma GCC unroll 64
  for (int i = 0; i < rows; ++i)
    #pragma GCC unroll 64
    for (int v = 0; v < nv; ++v) _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
#else
  if (zero)
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) c[i * ldc + j] = 0.0f;
  for (int k = 0; k < KC; ++k)
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) c[i * ldc + j] += a[A_AT] * b[k * ldb + j];
#endif
}
static inline void NAME_reset(float* restrict c, int32_t ldc) {
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = 0.0f;
}
"""

# Every tile whole.
_WHOLE_SOURCE = r"""
static inline void NAME_update(const float* restrict a, const float* restrict b,
                               float* restrict c, int32_t lda, int32_t ldb, int32_t ldc) {
  NAME_run(a, b, c, lda, ldb, ldc, 0, MR, NR);
}
static inline void NAME_body(const float* restrict a, const float* restrict b,
                             float* restrict c, int32_t lda, int32_t ldb, int32_t ldc) {
  NAME_run(a, b, c, lda, ldb, ldc, 1, MR, NR);
}
"""

# Rows or columns padded to whole tiles: ``rows`` and ``cols`` of a tile's rows and
# columns lie inside the result (MR and NR or more in every tile but the last), and
# only those rows and the vectors holding those columns are computed. One copy of the
# kernel per count (CUT: the switch over them, from _cut_cases).
_EDGE_SOURCE = r"""
static inline __attribute__((always_inline)) void NAME_cut(
    const float* restrict a, const float* restrict b, float* restrict c,
    int32_t lda, int32_t ldb, int32_t ldc, const int zero, int32_t rows, int32_t cols) {
CUT
}
static inline void NAME_update(const float* restrict a, const float* restrict b,
                               float* restrict c, int32_t lda, int32_t ldb, int32_t ldc,
                               int32_t rows, int32_t cols) {
  NAME_cut(a, b, c, lda, ldb, ldc, 0, rows, cols);
}
static inline void NAME_body(const float* restrict a, const float* restrict b,
                             float* restrict c, int32_t lda, int32_t ldb, int32_t ldc,
                             int32_t rows, int32_t cols) {
  NAME_cut(a, b, c, lda, ldb, ldc, 1, rows, cols);
}
"""


def _cut_cases(mr: int, nr: int, lanes: int, cut_rows: bool, cut_cols: bool) -> str:
    """The C switch of ``NAME_cut``: a copy of the kernel for each count of rows (where
    ``cut_rows``) and of column vectors (where ``cut_cols``) that an edge tile holds."""
    def columns(r: int) -> str:
        if not cut_cols:
            return f"NAME_run(a, b, c, lda, ldb, ldc, zero, {r}, {nr}); return;"
        cases = "".join(f" case {g}: NAME_run(a, b, c, lda, ldb, ldc, zero, {r}, {lanes * g});"
                        " return;" for g in range(1, nr // lanes))
        return (f"switch (cols < {nr} ? (cols + {lanes - 1}) / {lanes} : {nr // lanes}) {{"
                f"{cases} default: NAME_run(a, b, c, lda, ldb, ldc, zero, {r}, {nr}); return; }}")
    if not cut_rows:
        return "  " + columns(mr)
    cases = "\n".join(f"    case {r}: {columns(r)}" for r in range(1, mr))
    return (f"  switch (rows < {mr} ? rows : {mr}) {{\n{cases}\n"
            f"    default: {columns(mr)}\n  }}")


def simd_fp32(target: Target, dtype: str) -> bool:
    """Whether the templates offer the micro-kernel: fp32 on the vectors its
    intrinsics are written for, 16 lanes (AVX-512) or 8 (AVX2 with FMA)."""
    lanes = target.vector_lanes(4)
    return np.dtype(dtype) == np.float32 and (
        lanes == 16 or lanes == 8 and {"avx2", "fma"} <= target.features)


def micro_tile_width(target: Target, lanes: int) -> int:
    """The micro-kernel's columns in the fallbacks' tiles: four vectors where the ISA
    has 32 registers (6x64 on AVX-512: 24 accumulators), else two (6x16 on AVX2: 12
    of 16)."""
    return (4 if target.vector_registers >= 32 else 2) * lanes


# Rows of B ahead of the row being read that each k step prefetches (of 0, 8 and 32,
# 8 was fastest on resnet-c2-1x1 with an 8x32 tile).
_PREFETCH_AHEAD = 8


def gemm_microkernel(mr: int, nr: int, kc: int, lanes: int, prefetch: int = 0,
                     a_packed: bool = False, cols: int = 0,
                     stream: bool = False, rows: int = 0) -> TensorIntrin:
    """``C[mr, nr] (+)= sum_k A[i, k] * B[k, j]`` over ``kc`` values of ``k``, in
    vectors of ``lanes`` (the target's: 16 or 8; ``nr`` a multiple of them).

    A is read by rows of k, B and C by rows of j: each view's last axis stride must be
    1 and its first affine, in whatever buffer layout the stage reads them. With
    ``a_packed`` A is read from a tile-packed copy instead, each k's ``mr`` values side
    by side (axis strides (1, mr)): one contiguous stream that the hardware prefetcher
    follows, where rows of A read in place are ``mr`` streams far apart.

    ``prefetch`` (elements, 0 for none): where, from this tile's B, the tiles that come
    next read theirs. Each k step then asks for that B's row a few steps ahead, into
    L2, so the next panel arrives while this one computes. It pays where B is read in
    place from a buffer larger than L2: its rows are far apart, too many streams for
    the hardware prefetcher, and each panel's first tile would otherwise wait on them
    one row at a time. A packed, contiguous B the hardware prefetcher follows by itself;
    there the extra loads cost (gemm-1024, 8x32 tile: 159 -> 146 GFLOP/s).

    ``cols`` (0 where every tile is whole): the columns of the result, where its tiles
    run past them into columns padded with zeros. The last tile of each row then
    computes only the vectors that hold result columns (the others' values are never
    read); 197 columns in 64-wide tiles of 16 lanes: 208 computed instead of 256.
    ``rows`` likewise for the rows: the last tile of each column computes only the
    rows inside the result (a convolution's 14-wide output rows in 5-row tiles: 5, 5
    and 4 rows, not 15).

    ``stream``: the tile goes to C with non-temporal stores where C's rows start on
    cache lines (else as usual), for a C summed in place, written once and read later.
    Each thread fences them once, after its share of the parallel loop (``fence`` of
    :class:`~tilewise.ir.ExternCall`): a fence per tile waits for the stores to reach
    memory (resnet-c2-1x1, 8x32 tiles copied out this way: 0.90 -> 0.75x PyTorch).
    """
    a = te.placeholder((mr, kc), "float32", name="a")
    b = te.placeholder((kc, nr), "float32", name="b")
    k = te.reduce_axis((0, kc), name="k")
    c = te.compute((mr, nr), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="c")
    if nr % lanes:
        raise LowerError(f"the micro-kernel's tile is whole vectors; {nr} columns are "
                         f"not a multiple of {lanes} lanes")
    if nr <= lanes:
        cols = 0  # one vector: nothing to leave out
    if mr == 1:
        rows = 0
    name = (f"tw_gemm_ukr_{mr}x{nr}x{kc}" + (f"_pf{prefetch}" if prefetch else "")
            + ("_ap" if a_packed else "") + ("_edge" if cols else "")
            + ("_redge" if rows else "") + ("_nt" if stream else ""))
    source = _SOURCE + _WHOLE_SOURCE
    if cols or rows:
        cut = _cut_cases(mr, nr, lanes, bool(rows), bool(cols))
        source = _SOURCE + _EDGE_SOURCE.replace("CUT", cut)
    source = (source.replace("NAME", name)
              .replace("A_AT", f"k * {mr} + i" if a_packed else "i * lda + k")
              .replace("MR", str(mr)).replace("NR", str(nr)).replace("LANES", str(lanes))
              .replace("KC", str(kc)).replace("PF_AHEAD", str(_PREFETCH_AHEAD))
              .replace("STREAM", str(int(stream)))
              .replace("PF", str(prefetch)))
    if stream:
        source = STREAM_STORES + source

    def impl(ins: list[BufferView], outs: list[BufferView]) -> IntrinImpl:
        (av, bv), (cv,) = ins, outs
        lda = packed_a_stride(av, mr, name) if a_packed else row_stride(av, name, kc)
        lds = (lda, row_stride(bv, name), row_stride(cv, name))
        args: tuple[Expr, ...] = (av.ptr, bv.ptr, cv.ptr, *lds)
        if cols or rows:  # the tile's rows and columns inside the result
            *_, i, j = cv.index
            args = (*args, const(rows, i.dtype) - i if rows else const(mr, i.dtype),
                    const(cols, j.dtype) - j if cols else const(nr, j.dtype))
        fence = "tw_store_fence" if stream else ""
        return IntrinImpl(
            body=ExternCall(f"{name}_body", args, fence),
            reset=ExternCall(f"{name}_reset", (cv.ptr, lds[2])),
            update=ExternCall(f"{name}_update", args, fence),
        )

    return decl_tensor_intrin(c.op, impl, source=source, name=name)


_STREAM_TILE = r"""
/* dst[i * ldd + j] = src[i * lds + j] for i < MR, j < NR. */
static inline void NAME(const float* restrict src, float* restrict dst, int32_t lds,
                        int32_t ldd) {
#if defined(__AVX512F__) && (NR % 16 == 0)
  if (tw_rows_on_lines(dst, ldd)) {
    #pragma GCC unroll 64
    for (int i = 0; i < MR; ++i)
      #pragma GCC unroll 64
      for (int j = 0; j < NR; j += 16)
        _mm512_stream_ps(dst + i * ldd + j, _mm512_loadu_ps(src + i * lds + j));
    return;
  }
#elif defined(__AVX__) && (NR % 8 == 0)
  if (tw_rows_on_lines(dst, ldd)) {
    #pragma GCC unroll 64
    for (int i = 0; i < MR; ++i)
      #pragma GCC unroll 64
      for (int j = 0; j < NR; j += 8)
        _mm256_stream_ps(dst + i * ldd + j, _mm256_loadu_ps(src + i * lds + j));
    return;
  }
#endif
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) dst[i * ldd + j] = src[i * lds + j];
}
"""


def stream_tile_intrin(mr: int, nr: int) -> TensorIntrin:
    """``dst[i, j] = src[i, j]`` over an ``mr x nr`` tile, stored with non-temporal
    stores where the destination's rows start on cache lines (else as usual): a
    finished register tile copied out of its local buffer to a result that is written
    once and not read again here. Through the cache, each line of the result would
    first be read, then evict data that the next tiles read (resnet-c2-1x1 on one
    core: 1.06x). Both views' rows must be contiguous."""
    src = te.placeholder((mr, nr), "float32", name="src")
    dst = te.compute((mr, nr), lambda i, j: src[i, j], name="dst")
    name = f"tw_stream_tile_{mr}x{nr}"
    source = STREAM_STORES + (_STREAM_TILE.replace("NAME", name).replace("MR", str(mr))
                            .replace("NR", str(nr)))

    def impl(ins: list[BufferView], outs: list[BufferView]) -> IntrinImpl:
        (sv,), (dv,) = ins, outs
        args = (sv.ptr, dv.ptr, row_stride(sv, name), row_stride(dv, name))
        return IntrinImpl(body=ExternCall(name, args, fence="tw_store_fence"))

    return decl_tensor_intrin(dst.op, impl, source=source, name=name)


def row_stride(view: BufferView, name: str, cols: int = 0) -> Expr:
    """The view's row stride; its rows must be contiguous, unless they are ``cols`` = 1
    element long (a one-channel block of a convolution's input)."""
    row, col = view.axis_strides
    if row is None or not (cols == 1 or isinstance(col, Const) and col.value == 1):
        raise LowerError(f"tensorize {name}: {view.ptr.buffer.name} is not read as "
                         f"contiguous rows at a fixed stride (axis strides {row}, {col})")
    return row


def packed_a_stride(view: BufferView, mr: int, name: str) -> Expr:
    """A tile-packed view's (unused) row stride: 1, its k values ``mr`` apart. A one-row
    tile's row stride is the step to the next tile's, which it never takes."""
    row, col = view.axis_strides
    rows_side_by_side = mr == 1 or (isinstance(row, Const) and row.value == 1)
    if not (rows_side_by_side and isinstance(col, Const) and col.value == mr):
        raise LowerError(f"tensorize {name}: {view.ptr.buffer.name} is not read tile-packed, "
                         f"each k's {mr} values side by side (axis strides {row}, {col})")
    return row
