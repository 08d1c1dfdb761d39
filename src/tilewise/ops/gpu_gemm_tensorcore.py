"""``C = A @ B`` on an NVIDIA GPU's tensor cores, fp16 in, fp32 sums and out: the
template ``gpu_gemm_tensorcore`` (CUDA only; an OpenCL target is refused).

A block of ``wm x wn`` warps computes a ``(16 * wm * fm) x (16 * wn * fn)`` tile of C,
each warp ``fm x fn`` 16 x 16 fragments of it with CUDA's ``wmma`` API (``mma.h``): a
micro-kernel dropped in by ``tensorize`` keeps the warp's fragments of sums, and over
the whole of K loads 16 x 16 fragments of A and B (``load_matrix_sync``) and multiplies
them on the tensor cores (``mma_sync``), then stores its sums into the block's tile of
C in shared memory (``store_matrix_sync``). Every lane of a warp calls it: the warps'
loops are bound to ``threadIdx.z`` and ``threadIdx.y``, none to ``threadIdx.x``. After
a barrier the block's threads, lanes along ``threadIdx.x``, copy the tile out to C, row
by row.

M, N and K are multiples of 16 and the block tiles divide M and N. The fallback is
chosen from the device's limits (threads per block, shared memory):

>>> from tilewise.autotune.space import ConfigSpace
>>> from tilewise.target import Target
>>> cfg = ConfigSpace(Target.from_str("cuda -arch=sm_90"))
>>> s, args = gpu_gemm_tensorcore_schedule(cfg, 4096, 4096, 4096)
>>> print(cfg.fallback)  # doctest: +ELLIPSIS
#...(tile_m=[-1, 2, 2], tile_n=[-1, 4, 2])
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import te
from ..autotune import template
from ..errors import TargetError, TensorError
from ..ir import ExternCall
from ..runtime.device import DeviceLimits
from ..schedule import IntrinImpl, decl_tensor_intrin
from ..target import TargetKind
from .gpu_tiles import (
    BLOCK_THREADS,
    balance,
    best_runnable,
    bind_threads,
    check_grid,
    define_tiles,
    limits_of,
    limits_refusal,
    tile_candidates,
)

# The wmma fragment's side: 16 x 16 x 16 for fp16 in, fp32 sums.
FRAGMENT = 16
WARP = 32
# Fragments of sums a warp keeps: 8 registers each a lane.
_MAX_FRAGMENTS = 8

_SOURCE = r"""
#include <mma.h>
static __device__ __forceinline__ void NAME(const half* __restrict__ a,
                                            const half* __restrict__ b,
                                            float* __restrict__ c,
                                            int lda, int ldb, int ldc) {
  using namespace nvcuda;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
  #pragma unroll
  for (int i = 0; i < FM; ++i)
    #pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  #pragma unroll 2
  for (int k = 0; k < KSUM; k += 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa[FM];
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> fb[FN];
    #pragma unroll
    for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(fa[i], a + i * 16 * lda + k, lda);
    #pragma unroll
    for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(fb[j], b + k * ldb + j * 16, ldb);
    #pragma unroll
    for (int i = 0; i < FM; ++i)
      #pragma unroll
      for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
  }
  #pragma unroll
  for (int i = 0; i < FM; ++i)
    #pragma unroll
    for (int j = 0; j < FN; ++j)
      wmma::store_matrix_sync(c + i * 16 * ldc + j * 16, acc[i][j], ldc,
                              wmma::mem_row_major);
}
"""


def wmma_tile(fm: int, fn: int, K: int):
    """The micro-kernel computing a warp's ``16 fm x 16 fn`` tile of C over all of K,
    fp16 operands read where they lie (rows of ``lda`` and ``ldb`` elements), fp32
    sums stored in rows of ``ldc``."""
    a = te.placeholder((FRAGMENT * fm, K), "float16", name="a")
    b = te.placeholder((K, FRAGMENT * fn), "float16", name="b")
    k = te.reduce_axis((0, K), name="k")
    c = te.compute((FRAGMENT * fm, FRAGMENT * fn),
                   lambda i, j: te.sum(a[i, k].astype("float32") * b[k, j].astype("float32"),
                                       axis=k), name="c")
    name = f"tw_wmma_{fm}x{fn}_k{K}"
    source = (_SOURCE.replace("NAME", name).replace("FM", str(fm)).replace("FN", str(fn))
              .replace("KSUM", str(K)))

    def impl(ins, outs):
        (av, bv), (cv,) = ins, outs
        return IntrinImpl(body=ExternCall(name, (av.ptr, bv.ptr, cv.ptr, av.strides[0],
                                                 bv.strides[0], cv.strides[0])))

    return decl_tensor_intrin(c.op, impl, source=source, name=name)


def refusal(wm: int, fm: int, wn: int, fn: int, limits: DeviceLimits) -> str:
    """Why a config cannot run on a device with ``limits``; "" where it can."""
    shared = FRAGMENT * wm * fm * FRAGMENT * wn * fn * 4  # the block's tile of fp32 sums
    why = limits_refusal((wm, wn, WARP), (), shared, limits)
    if not why and fm * fn > _MAX_FRAGMENTS:
        return f"{fm} x {fn} fragments of sums a warp (at most {_MAX_FRAGMENTS})"
    return why


def fallback_choices(M: int, N: int, limits: DeviceLimits) -> dict:
    """The config used without tuning records: of those the device can run, the one
    nearest 8 warps (256 threads), then nearest 2 x 2 fragments a warp, squarest."""
    def score(c):
        (_, wm, fm), (_, wn, fn) = c
        return (-balance(wm * wn * WARP, BLOCK_THREADS), -balance(fm * fn, 4),
                -balance(fm, fn), -balance(wm, wn))

    tm, tn = best_runnable("gpu_gemm_tensorcore",
                           itertools.product(_candidates(M), _candidates(N)),
                           lambda c: refusal(c[0][1], c[0][2], c[1][1], c[1][2], limits),
                           score, limits)
    return {"tile_m": tm, "tile_n": tn}


def _candidates(extent: int) -> list[list[int]]:
    return tile_candidates(extent // FRAGMENT)


def gpu_gemm_tensorcore_schedule(cfg, M: int, N: int, K: int,
                                 limits: DeviceLimits | None = None):
    """The template's body, for a device whose ``limits`` are known."""
    if cfg.target.kind is TargetKind.OPENCL:
        raise TargetError("gpu_gemm_tensorcore: tensor cores (wmma) are CUDA's; on an "
                          "OpenCL device use gpu_gemm")
    if any(not isinstance(d, int) or d < FRAGMENT or d % FRAGMENT for d in (M, N, K)):
        raise TensorError(f"gpu_gemm_tensorcore: M, N and K must be positive multiples of "
                          f"{FRAGMENT} (the wmma fragment), got {M}, {N}, {K}")
    limits = limits or limits_of(cfg.target)
    # tiles of 16 x 16 fragments: [-1, warps, fragments a warp]
    define_tiles(cfg, {"tile_m": M // FRAGMENT, "tile_n": N // FRAGMENT})
    cfg.fallback_with(**fallback_choices(M, N, limits))
    cfg.add_flop(2.0 * M * N * K)

    def why(tile_m, tile_n) -> str:
        (_, wm, fm), (_, wn, fn) = tile_m.size, tile_n.size
        return refusal(wm, fm, wn, fn, limits)

    cfg.require(("tile_m", "tile_n"), lambda *knobs: not why(*knobs),
                lambda *knobs: f"gpu_gemm_tensorcore: {why(*knobs)}")
    _, wm, fm = cfg["tile_m"].size
    _, wn, fn = cfg["tile_n"].size
    check_grid("gpu_gemm_tensorcore", cfg.target, {"y": M // (FRAGMENT * wm * fm)})

    # the algorithm: fp16 products summed in fp32
    A = te.placeholder((M, K), "float16", name="A")
    B = te.placeholder((K, N), "float16", name="B")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k].astype("float32")
                                               * B[k, j].astype("float32"), axis=k), name="C")

    # how it is scheduled
    s = te.create_schedule(C.op)
    CS = s.cache_write(C, "shared")  # the block's tile of sums
    i, j = s[C].op.axis
    by, i = s[C].split(i, FRAGMENT * wm * fm)
    bx, j = s[C].split(j, FRAGMENT * wn * fn)
    s[C].reorder(by, bx, i, j)
    bind_threads(s[C], [by, bx], ["blockIdx.y", "blockIdx.x"])
    s[CS].compute_at(s[C], bx)
    ci, cj = s[CS].op.axis
    cwy, ci = s[CS].split(ci, FRAGMENT * fm)
    cwx, cj = s[CS].split(cj, FRAGMENT * fn)
    s[CS].reorder(cwy, cwx, ci, cj, s[CS].op.reduce_axis[0])
    bind_threads(s[CS], [cwy, cwx], ["threadIdx.z", "threadIdx.y"])
    s[CS].tensorize(ci, wmma_tile(fm, fn, K))
    # the copy out: the block's lanes along rows of the tile, its warps down them
    copy = s[C].fuse(i, j)
    for tag, count in (("threadIdx.x", WARP), ("threadIdx.y", wn), ("threadIdx.z", wm)):
        copy, inner = s[C].split(copy, count)
        s[C].bind(inner, te.thread_axis(tag))
    return s, [A, B, C]


def tensorcore_reference(M: int, N: int, K: int):
    def make(rng: np.random.Generator):
        a = rng.standard_normal((M, K)).astype(np.float16)
        b = rng.standard_normal((K, N)).astype(np.float16)
        c = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
        return [a, b, np.zeros((M, N), np.float32)], [c]

    return make


@template("gpu_gemm_tensorcore", reference=tensorcore_reference,
          flop=lambda M, N, K: 2.0 * M * N * K, targets=("cuda",))
def gpu_gemm_tensorcore(cfg, M: int, N: int, K: int):
    """``C = A @ B`` on tensor cores: A (M, K), B (K, N) fp16, C fp32 (CUDA only)."""
    return gpu_gemm_tensorcore_schedule(cfg, M, N, K)
