"""Helpers of the GPU tests: capability probes (each test skips cleanly where its
device or tool is missing) and the CUDA codegen test's matmul schedule."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tilewise import te
from tilewise.runtime.oclgrind import oclgrind_available
from tilewise.runtime.opencl import opencl_available

needs_opencl = pytest.mark.skipif(not opencl_available(),
                                  reason="no OpenCL platform (install pocl-opencl-icd)")
needs_oclgrind = pytest.mark.skipif(not oclgrind_available(),
                                    reason="oclgrind is not installed")
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")


def matmul_gpu(M: int = 100, N: int = 64, K: int = 32, bind_fill: bool = True):
    """tests/codegen/test_cuda.py's matmul: 16 x 16 blocks, A's rows of a block in
    shared memory. ``bind_fill=False`` is the schedule as it was before issue 40: the
    fill loops bound to no thread, so every thread copies the whole tile (a race)."""
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    AA = s.cache_read(A, "shared", [CC])
    tx, ty = te.thread_axis("threadIdx.x"), te.thread_axis("threadIdx.y")
    i, j = s[C].op.axis
    bi, ti = s[C].split(i, 16)
    bj, tj = s[C].split(j, 16)
    s[C].reorder(bi, bj, ti, tj)
    s[C].bind(bi, te.thread_axis("blockIdx.y"))
    s[C].bind(bj, te.thread_axis("blockIdx.x"))
    s[C].bind(ti, ty)
    s[C].bind(tj, tx)
    s[CC].compute_at(s[C], tj)
    s[AA].compute_at(s[C], bj)
    if bind_fill:
        fused = s[AA].fuse(*s[AA].op.axis)
        rest, fx = s[AA].split(fused, 16)
        _, fy = s[AA].split(rest, 16)
        s[AA].bind(fy, ty)
        s[AA].bind(fx, tx)
    return s, [A, B, C]


def gemm_arrays(M: int, N: int, K: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    return a, b, np.zeros((M, N), np.float32)
