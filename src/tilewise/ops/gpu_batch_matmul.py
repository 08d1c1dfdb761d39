"""``C[b] = A[b] @ B[b]`` on a GPU (CUDA or OpenCL): the template ``gpu_batch_matmul``.

Each batch is :mod:`.gpu_gemm`'s product, with its knobs, constraints and fallback: a
block of ``ty x tx`` threads computes a ``(ty * rm) x (tx * rn)`` tile of one batch's
C, the reduction in steps of ``kt`` through shared tiles of A and B that the block's
threads fill together. The batch index is ``blockIdx.z``.

>>> from tilewise.autotune.space import ConfigSpace
>>> from tilewise.target import Target
>>> cfg = ConfigSpace(Target.from_str("cuda -arch=sm_90"))
>>> s, args = gpu_batch_matmul_schedule(cfg, 12, 128, 128, 64)
>>> print(cfg.fallback)  # doctest: +ELLIPSIS
#...(tile_m=[-1, 16, 4], tile_n=[-1, 16, 4], kt=16, unroll=True)
"""

from __future__ import annotations

from .. import te
from ..autotune import template
from ..ir.dtype import as_dtype
from ..runtime.device import DeviceLimits
from .batch_matmul import batch_matmul_reference
from .gpu_gemm import define_gemm_tiles, schedule_gemm_tiles
from .gpu_tiles import check_grid, limits_of


def gpu_batch_matmul_schedule(cfg, Bt: int, M: int, N: int, K: int, dtype: str = "float32",
                              limits: DeviceLimits | None = None):
    """The template's body, for a device whose ``limits`` are known (an OpenCL
    device's, from :func:`tilewise.runtime.opencl.device_limits`)."""
    as_dtype(dtype)
    check_grid("gpu_batch_matmul", cfg.target, {"z": Bt})
    define_gemm_tiles(cfg, "gpu_batch_matmul", M, N, K, dtype, limits or limits_of(cfg.target))
    cfg.add_flop(2.0 * Bt * M * N * K)

    # the algorithm
    A = te.placeholder((Bt, M, K), dtype, name="A")
    B = te.placeholder((Bt, K, N), dtype, name="B")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((Bt, M, N), lambda b, i, j: te.sum(A[b, i, k] * B[b, k, j], axis=k),
                   name="C")
    return schedule_gemm_tiles(cfg, C), [A, B, C]


@template("gpu_batch_matmul", reference=batch_matmul_reference,
          flop=lambda Bt, M, N, K, dtype="float32": 2.0 * Bt * M * N * K,
          targets=("cuda", "opencl"))
def gpu_batch_matmul(cfg, Bt: int, M: int, N: int, K: int, dtype: str = "float32"):
    """``C[b] = A[b] @ B[b]`` with A (Bt, M, K), B (Bt, K, N) on a CUDA or OpenCL device."""
    return gpu_batch_matmul_schedule(cfg, Bt, M, N, K, dtype)
