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


def _matmul_gpu(M=100, N=64, K=32):
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
    # The block's threads copy the tile together, each every 256th element: unbound,
    # every thread copied all of it, racing the others (tests/gpu shows it on PoCL).
    fused = s[AA].fuse(*s[AA].op.axis)
    rest, fx = s[AA].split(fused, 16)
    _, fy = s[AA].split(rest, 16)
    s[AA].bind(fy, ty)
    s[AA].bind(fx, tx)
    return s, [A, B, C]


def test_cuda_source_and_launch_config():
    s, args = _matmul_gpu()
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

    s, args = _matmul_gpu()
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
    s, args = _matmul_gpu()
    mod = tw.build(s, args, target="cuda -arch=sm_80", name="mm")
    rng = np.random.default_rng(0)
    a = rng.random((100, 32), dtype=np.float32)
    b = rng.random((32, 64), dtype=np.float32)
    c = np.zeros((100, 64), np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4)
