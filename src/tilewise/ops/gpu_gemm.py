"""``C = A @ B`` on a GPU (CUDA or OpenCL): the template ``gpu_gemm``.

A block of ``ty x tx`` threads computes a ``(ty * rm) x (tx * rn)`` tile of C, each
thread an ``rm x rn`` register tile. The reduction runs in steps of ``kt``: at each,
the block's threads fill shared-memory tiles of A (``BM x kt``) and B (``kt x BN``)
together, each thread copying every ``ty * tx``-th element (the fill loops are bound
to the same thread indices as the tile's), then every thread sums its register tile
over the step. The renderer puts a barrier after the fills and after the sums.

The fallback is chosen from the device's limits (:class:`.DeviceLimits`: shared
memory per block, threads per block), so it builds and runs on any device that can
run the template at all:

>>> from tilewise.autotune.space import ConfigSpace
>>> from tilewise.target import Target
>>> cfg = ConfigSpace(Target.from_str("cuda -arch=sm_90"))
>>> s, args = gpu_gemm_schedule(cfg, 256, 256, 256)
>>> print(cfg.fallback)  # doctest: +ELLIPSIS
#...(tile_m=[-1, 16, 4], tile_n=[-1, 16, 4], kt=16, unroll=True)
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import te
from ..autotune import template
from ..ir.dtype import as_dtype
from ..runtime.device import DeviceLimits
from .gemm import gemm_reference
from .gpu_tiles import (
    best_runnable,
    bind_threads,
    define_tiles,
    fill_cooperatively,
    limits_of,
    limits_refusal,
    split_axis,
    tile_candidates,
    unroll_tile,
)

_KT = (4, 8, 16, 32)


def refusal(ty: int, rm: int, tx: int, rn: int, kt: int, itemsize: int,
            limits: DeviceLimits) -> str:
    """Why a config cannot run on a device with ``limits``; "" where it can."""
    return limits_refusal((ty, tx), (rm, rn), (ty * rm + tx * rn) * kt * itemsize, limits)


def fallback_choices(M: int, N: int, K: int, dtype: str, limits: DeviceLimits,
                     name: str = "gpu_gemm") -> dict:
    """The config used without tuning records: of those the device can run, the one
    nearest 256 threads, then a 4 x 4 register tile, then kt = 16 (the shape of the
    classic hand-written SGEMM)."""
    itemsize = np.dtype(dtype).itemsize

    def score(c):
        (_, ty, rm), (_, tx, rn), kt = c
        return (min(ty * tx, 256), -abs(ty - tx), min(rm * rn, 16), -abs(rm - rn),
                -abs(kt - 16))

    tm, tn, kt = best_runnable(
        name, itertools.product(tile_candidates(M), tile_candidates(N), _kt_values(K)),
        lambda c: refusal(c[0][1], c[0][2], c[1][1], c[1][2], c[2], itemsize, limits),
        score, limits)
    return {"tile_m": tm, "tile_n": tn, "kt": kt, "unroll": True}


def _kt_values(K: int) -> list[int]:
    return [kt for kt in _KT if kt <= K] or [_KT[0]]


def define_gemm_tiles(cfg, name: str, M: int, N: int, K: int, dtype: str,
                      limits: DeviceLimits) -> None:
    """The knobs of a ``M x N`` product summed over ``K`` (``tile_m``, ``tile_n``,
    ``kt``, ``unroll``), their fallback on ``limits`` and what the device refuses,
    named as template ``name``'s."""
    define_tiles(cfg, {"tile_m": M, "tile_n": N})
    cfg.define_knob("kt", _kt_values(K))
    cfg.define_knob("unroll", [False, True])  # the register tile's loops
    cfg.fallback_with(**fallback_choices(M, N, K, dtype, limits, name))
    itemsize = np.dtype(dtype).itemsize

    def why(tile_m, tile_n, kt) -> str:
        (_, ty, rm), (_, tx, rn) = tile_m.size, tile_n.size
        return refusal(ty, rm, tx, rn, kt, itemsize, limits)

    cfg.require(("tile_m", "tile_n", "kt"), lambda *knobs: not why(*knobs),
                lambda *knobs: f"{name}: {why(*knobs)}")


def schedule_gemm_tiles(cfg, C):
    """The schedule of ``C``, a sum over one axis whose last two axes are the
    product's rows and columns (:func:`define_gemm_tiles`' knobs); a leading batch
    axis, where there is one, is bound to ``blockIdx.z``."""
    _, ty, rm = cfg["tile_m"].size
    _, tx, rn = cfg["tile_n"].size
    s = te.create_schedule(C.op)
    CL = s.cache_write(C, "local")  # the register tile
    As, Bs = (s.cache_read(t, "shared", [CL]) for t in CL.op.input_tensors)
    *batch, i, j = s[C].op.axis
    by, ti, ri = split_axis(s[C], i, ty, rm)
    bx, tj, rj = split_axis(s[C], j, tx, rn)
    s[C].reorder(*batch, by, bx, ti, tj, ri, rj)
    bind_threads(s[C], [*batch, by, bx, ti, tj],
                 ["blockIdx.z"][:len(batch)] + ["blockIdx.y", "blockIdx.x", "threadIdx.y",
                                                "threadIdx.x"])
    s[CL].compute_at(s[C], tj)
    *_, ci, cj = s[CL].op.axis
    ko, ki = s[CL].split(s[CL].op.reduce_axis[0], cfg["kt"].val)
    s[CL].reorder(ko, ki, ci, cj)
    if cfg["unroll"].val:
        unroll_tile([(s[CL], (ci, cj)), (s[C], (ri, rj))])
    fill_cooperatively(s, (As, Bs), s[CL], ko, [("threadIdx.y", ty), ("threadIdx.x", tx)])
    return s


def gpu_gemm_schedule(cfg, M: int, N: int, K: int, dtype: str = "float32",
                      limits: DeviceLimits | None = None):
    """The template's body, for a device whose ``limits`` are known (an OpenCL
    device's, from :func:`tilewise.runtime.opencl.device_limits`)."""
    as_dtype(dtype)
    define_gemm_tiles(cfg, "gpu_gemm", M, N, K, dtype, limits or limits_of(cfg.target))
    cfg.add_flop(2.0 * M * N * K)

    # the algorithm
    A = te.placeholder((M, K), dtype, name="A")
    B = te.placeholder((K, N), dtype, name="B")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    return schedule_gemm_tiles(cfg, C), [A, B, C]

@template("gpu_gemm", reference=gemm_reference,
          flop=lambda M, N, K, dtype="float32": 2.0 * M * N * K, targets=("cuda", "opencl"))
def gpu_gemm(cfg, M: int, N: int, K: int, dtype: str = "float32"):
    """``C = A @ B`` with A (M, K), B (K, N) on a CUDA or OpenCL device."""
    return gpu_gemm_schedule(cfg, M, N, K, dtype)
