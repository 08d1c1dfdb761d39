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
from ..target import Target
from .gemm import gemm_reference

_THREADS = (1, 2, 4, 8, 16, 32)
_REGS = (1, 2, 4, 8)
_KT = (4, 8, 16, 32)
# A register tile of more accumulators than this spills on every GPU we target.
_MAX_REG_TILE = 64


def limits_of(target: Target) -> DeviceLimits:
    """The device limits a target describes (an OpenCL device's own; a CUDA target's
    what an sm_xx GPU allows without opting in)."""
    return DeviceLimits(str(target), target.local_mem_bytes, target.max_threads)


def _tile_candidates(extent: int) -> list[list[int]]:
    """``[-1, threads, regs]`` splits of ``extent`` whose block tile divides it."""
    return [[-1, t, r] for t, r in itertools.product(_THREADS, _REGS) if extent % (t * r) == 0]


def refusal(ty: int, rm: int, tx: int, rn: int, kt: int, itemsize: int,
            limits: DeviceLimits) -> str:
    """Why a config cannot run on a device with ``limits``; "" where it can."""
    if ty * tx > limits.max_threads:
        return f"{ty} x {tx} threads, the device allows {limits.max_threads} a block"
    shared = (ty * rm + tx * rn) * kt * itemsize
    if shared > limits.local_mem_bytes:
        return f"{shared} bytes of shared tiles, the device has {limits.local_mem_bytes}"
    if rm * rn > _MAX_REG_TILE:
        return f"a {rm} x {rn} register tile (at most {_MAX_REG_TILE} accumulators)"
    return ""


def fallback_choices(M: int, N: int, K: int, dtype: str, limits: DeviceLimits) -> dict:
    """The config used without tuning records: of those the device can run, the one
    nearest 256 threads, then a 4 x 4 register tile, then kt = 16 (the shape of the
    classic hand-written SGEMM)."""
    itemsize = np.dtype(dtype).itemsize

    def score(c):
        (_, ty, rm), (_, tx, rn), kt = c
        return (min(ty * tx, 256), -abs(ty - tx), min(rm * rn, 16), -abs(rm - rn),
                -abs(kt - 16))

    runnable = [c for c in itertools.product(_tile_candidates(M), _tile_candidates(N),
                                             _kt_values(K))
                if not refusal(c[0][1], c[0][2], c[1][1], c[1][2], c[2], itemsize, limits)]
    tm, tn, kt = max(runnable, key=score)  # one thread, a 1 x 1 tile, kt = 4 fits
    return {"tile_m": tm, "tile_n": tn, "kt": kt, "unroll": True}


def _kt_values(K: int) -> list[int]:
    return [kt for kt in _KT if kt <= K] or [_KT[0]]


def gpu_gemm_schedule(cfg, M: int, N: int, K: int, dtype: str = "float32",
                      limits: DeviceLimits | None = None):
    """The template's body, for a device whose ``limits`` are known (an OpenCL
    device's, from :func:`tilewise.runtime.opencl.device_limits`)."""
    as_dtype(dtype)
    limits = limits or limits_of(cfg.target)
    cfg.define_split("tile_m", M, num_outputs=3, policy="candidate",
                     candidate=_tile_candidates(M))
    cfg.define_split("tile_n", N, num_outputs=3, policy="candidate",
                     candidate=_tile_candidates(N))
    cfg.define_knob("kt", _kt_values(K))
    cfg.define_knob("unroll", [False, True])  # the register tile's loops
    cfg.fallback_with(**fallback_choices(M, N, K, dtype, limits))
    cfg.add_flop(2.0 * M * N * K)
    itemsize = np.dtype(dtype).itemsize

    def why(tile_m, tile_n, kt) -> str:
        (_, ty, rm), (_, tx, rn) = tile_m.size, tile_n.size
        return refusal(ty, rm, tx, rn, kt, itemsize, limits)

    cfg.require(("tile_m", "tile_n", "kt"), lambda *knobs: not why(*knobs),
                lambda *knobs: f"gpu_gemm: {why(*knobs)}")
    _, ty, rm = cfg["tile_m"].size
    _, tx, rn = cfg["tile_n"].size
    kt = cfg["kt"].val

    # the algorithm
    A = te.placeholder((M, K), dtype, name="A")
    B = te.placeholder((K, N), dtype, name="B")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")

    # how it is scheduled
    s = te.create_schedule(C.op)
    CL = s.cache_write(C, "local")  # the register tile
    As = s.cache_read(A, "shared", [CL])
    Bs = s.cache_read(B, "shared", [CL])
    thread_y, thread_x = te.thread_axis("threadIdx.y"), te.thread_axis("threadIdx.x")
    i, j = s[C].op.axis
    by, i = s[C].split(i, ty * rm)
    ti, ri = s[C].split(i, rm)
    bx, j = s[C].split(j, tx * rn)
    tj, rj = s[C].split(j, rn)
    s[C].reorder(by, bx, ti, tj, ri, rj)
    s[C].bind(by, te.thread_axis("blockIdx.y"))
    s[C].bind(bx, te.thread_axis("blockIdx.x"))
    s[C].bind(ti, thread_y)
    s[C].bind(tj, thread_x)
    s[CL].compute_at(s[C], tj)
    ci, cj = s[CL].op.axis
    ko, ki = s[CL].split(s[CL].op.reduce_axis[0], kt)
    s[CL].reorder(ko, ki, ci, cj)
    if cfg["unroll"].val:
        for stage, axes in ((s[CL], (ci, cj)), (s[C], (ri, rj))):
            for ax in axes:
                stage.unroll(ax)
    for tile in (As, Bs):
        # At ko the tile holds what all the block's threads read (bound inference
        # relaxes threadIdx for shared buffers); its copy is spread over them.
        s[tile].compute_at(s[CL], ko)
        fused = s[tile].fuse(*s[tile].op.axis)
        rest, fx = s[tile].split(fused, tx)
        _, fy = s[tile].split(rest, ty)
        s[tile].bind(fy, thread_y)
        s[tile].bind(fx, thread_x)
    return s, [A, B, C]


@template("gpu_gemm", reference=gemm_reference,
          flop=lambda M, N, K, dtype="float32": 2.0 * M * N * K, targets=("cuda", "opencl"))
def gpu_gemm(cfg, M: int, N: int, K: int, dtype: str = "float32"):
    """``C = A @ B`` with A (M, K), B (K, N) on a CUDA or OpenCL device."""
    return gpu_gemm_schedule(cfg, M, N, K, dtype)
