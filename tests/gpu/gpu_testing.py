"""Helpers of the GPU tests: capability probes (each test skips cleanly where its
device or tool is missing), and the CUDA codegen test's matmul schedule
(``tw_testing.matmul_gpu``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tilewise.runtime.oclgrind import oclgrind_available
from tilewise.runtime.opencl import opencl_available
from tw_testing import matmul_gpu  # noqa: F401  (the GPU tests import it from here)

needs_opencl = pytest.mark.skipif(not opencl_available(),
                                  reason="no OpenCL platform (install pocl-opencl-icd)")
needs_oclgrind = pytest.mark.skipif(not oclgrind_available(),
                                    reason="oclgrind is not installed")
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")


def gemm_arrays(M: int, N: int, K: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    return a, b, np.zeros((M, N), np.float32)
