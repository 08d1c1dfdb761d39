"""The OpenCL runtime on whatever OpenCL device there is (PoCL in CI): build, call
on NumPy arrays, time with events; and, where there is no device, a module that says
so when called. The CUDA test's matmul, its shared-memory fill now spread over the
block's threads, is correct here and clean under Oclgrind (its old schedule is not)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gpu_testing import gemm_arrays, matmul_gpu, needs_nvcc, needs_oclgrind, needs_opencl

import tilewise as tw
from tilewise.driver import build_opencl_artifact
from tilewise.errors import BuildError, RuntimeCallError, TilewiseError
from tilewise.runtime import opencl
from tilewise.runtime.device import NoDeviceError
from tilewise.runtime.oclgrind import oclgrind_check
from tilewise.runtime.opencl import OpenCLModule


@needs_opencl
def test_cuda_test_matmul_runs_on_opencl():
    s, args = matmul_gpu()
    mod = tw.build(s, args, target="opencl", name="mm")
    a, b, c = gemm_arrays(100, 64, 32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    timing = mod.time_evaluator(number=2, repeat=2)(a, b, c)
    assert len(timing.results) == 2 and all(t > 0 for t in timing.results)


@needs_opencl
def test_wrong_arrays_are_refused():
    s, args = matmul_gpu()
    mod = tw.build(s, args, target="opencl", name="mm")
    a, b, c = gemm_arrays(100, 64, 32)
    with pytest.raises(RuntimeCallError, match="takes 3 arrays"):
        mod(a, b)
    with pytest.raises(RuntimeCallError, match=r"argument B: float64\(32, 64\)"):
        mod(a, b.astype(np.float64), c)


@needs_opencl
def test_device_compiler_errors_are_build_errors():
    s, args = matmul_gpu()
    art = build_opencl_artifact(s, args, "mm")
    bad = dataclasses.replace(art, source=art.source.replace("barrier(", "no_such_call("))
    with pytest.raises(BuildError, match="OpenCL build of mm failed"):
        OpenCLModule(bad)


def test_no_platform_builds_a_module_that_says_so(monkeypatch):
    monkeypatch.setattr(opencl, "_devices", lambda: ((), "no OpenCL platform (test)"))
    s, args = matmul_gpu()
    mod = tw.build(s, args, target="opencl", name="mm")
    assert "__kernel void mm(" in mod.source
    with pytest.raises(NoDeviceError, match="without a device.*no OpenCL platform"):
        mod(*gemm_arrays(100, 64, 32))
    with pytest.raises(TilewiseError):
        mod.time_evaluator()(*gemm_arrays(100, 64, 32))


@needs_nvcc
def test_cuda_without_gpu_is_compiled_and_says_so():
    from tilewise.runtime import cuda

    if not cuda._no_gpu():
        pytest.skip("a CUDA GPU is present")
    s, args = matmul_gpu()
    mod = tw.build(s, args, target="cuda -arch=sm_90", name="mm")  # nvcc checked it
    assert mod.artifact.grid == (4, 7, 1) and mod.artifact.block == (16, 16, 1)
    with pytest.raises(NoDeviceError, match="compiled for sm_90 but cannot run here"):
        mod(*gemm_arrays(100, 64, 32))


@needs_oclgrind
def test_oclgrind_finds_the_old_race_and_not_the_fixed_one():
    racy = oclgrind_check(build_opencl_artifact(*matmul_gpu(bind_fill=False), "mm"))
    assert racy and "data race at local memory" in racy[0]
    assert "A_shared[" in racy[0]  # the fill's store
    assert oclgrind_check(build_opencl_artifact(*matmul_gpu(), "mm")) == []
