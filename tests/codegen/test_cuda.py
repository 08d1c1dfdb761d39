"""CUDA codegen: thread-bound loops become index reads, shared buffers are synchronised,
and the source compiles with nvcc (skipped without nvcc); it runs only where CuPy and a
GPU are."""

import shutil

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.codegen.cuda import launch_config
from tilewise.errors import CodegenError
from tw_testing import matmul_gpu


def test_cuda_source_and_launch_config():
    s, args = matmul_gpu()
    func = tw.lower(s, args, "mm")
    src = tw.generate_source(func, "cuda -arch=sm_80")
    assert 'extern "C" __global__ void mm(' in src
    assert "blockIdx.y" in src and "threadIdx.x" in src
    assert "__shared__ float A_shared" in src and src.count("__syncthreads();") == 2
    assert "A_shared[(((ax0_ax1_fused_outer_outer * 256) + (ax0_ax1_fused_outer_inner * 16))" in src
    cfg = launch_config(func)
    assert cfg.grid == (4, 7, 1) and cfg.block == (16, 16, 1)


def test_parallel_loop_is_rejected_on_cuda():
    A = te.placeholder((64,), name="A")
    B = te.compute((64,), lambda i: A[i] + 1, name="B")
    s = te.create_schedule(B.op)
    s[B].parallel(s[B].op.axis[0])
    with pytest.raises(CodegenError, match="blockIdx/threadIdx"):
        tw.generate_source(tw.lower(s, [A, B]), "cuda")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_generated_cuda_compiles_with_nvcc():
    from tilewise.driver import build_cuda_artifact

    s, args = matmul_gpu()
    art = build_cuda_artifact(s, args, "cuda -arch=sm_80", "mm")
    assert art.grid == (4, 7, 1)


def _gpu_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means no usable GPU
        return False


@pytest.mark.skipif(not _gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_cuda_matmul_runs_against_numpy():
    s, args = matmul_gpu()
    mod = tw.build(s, args, target="cuda -arch=sm_80", name="mm")
    rng = np.random.default_rng(0)
    a = rng.random((100, 32), dtype=np.float32)
    b = rng.random((32, 64), dtype=np.float32)
    c = np.zeros((100, 64), np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4)
