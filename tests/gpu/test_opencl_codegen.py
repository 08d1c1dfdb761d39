"""OpenCL C from the GPU renderer: the OpenCL table's spellings, shared buffers at
kernel scope with barriers after their fill and after their use. No device needed."""

from __future__ import annotations

import re

import pytest
from gpu_testing import matmul_gpu

import tilewise as tw
from tilewise import te
from tilewise.codegen import launch_config
from tilewise.errors import CodegenError, TargetError


def _source(target: str) -> str:
    s, args = matmul_gpu()
    return tw.generate_source(tw.lower(s, args, "mm"), target)


def test_opencl_spellings():
    src = _source("opencl")
    assert src.startswith("__kernel void mm(__global float* restrict A, ")
    assert "(int)get_group_id(1)" in src and "(int)get_local_id(0)" in src
    assert "int32_t" not in src and "blockIdx" not in src
    # __local arrays may be declared only at kernel scope
    assert src.splitlines()[1] == "  __local float A_shared[512];"
    assert src.count("barrier(CLK_LOCAL_MEM_FENCE);") == 2


def test_cuda_and_opencl_are_one_renderer():
    """The two languages differ in tables only: the same kernel, token for token,
    once their spellings are mapped onto each other."""
    cuda, ocl = _source("cuda -arch=sm_90"), _source("opencl")
    body = cuda.split("__global__ ", 1)[1]
    for a, b in (("float* __restrict__", "__global float* restrict"),
                 ("__syncthreads();", "barrier(CLK_LOCAL_MEM_FENCE);"),
                 ("__shared__", "__local"), ("int32_t", "int")):
        body = body.replace(a, b)
    body = re.sub(r"blockIdx\.([xyz])", lambda m: f"get_group_id({'xyz'.index(m[1])})", body)
    body = re.sub(r"threadIdx\.([xyz])", lambda m: f"get_local_id({'xyz'.index(m[1])})", body)
    assert ocl == "__kernel " + body


def test_barrier_after_every_fill():
    """Two tiles filled at one loop: the barrier follows the second fill (it followed
    the first before issue 40, so B's tile was read while being written)."""
    from tilewise.autotune.space import ConfigSpace
    from tilewise.ops.gpu_gemm import gpu_gemm_schedule
    from tilewise.target import Target

    cfg = ConfigSpace(Target.from_str("cuda -arch=sm_90"))
    gpu_gemm_schedule(cfg, 64, 64, 32)
    s, args = gpu_gemm_schedule(cfg.fallback, 64, 64, 32)
    src = tw.generate_source(tw.lower(s, args, "gemm"), "opencl")
    loop = src[src.index("for (int k_c_outer"):]
    assert loop.index("B_shared[") < loop.index("barrier(") < loop.index("for (int k_c_inner")



def test_a_register_tile_among_the_shared_tiles_still_waits_for_their_fill():
    """Shared tiles and a register tile attached at one loop (the depthwise template):
    the barrier falls between the fills and the sum that reads them."""
    from tilewise.autotune.space import ConfigSpace
    from tilewise.ops.gpu_depthwise_conv2d import gpu_depthwise_conv2d_nchw_schedule
    from tilewise.target import Target

    args = (1, 2, 10, 10, 3, 3, 1, 1)
    cfg = ConfigSpace(Target.from_str("cuda -arch=sm_90"))
    gpu_depthwise_conv2d_nchw_schedule(cfg, *args)
    s, tensors = gpu_depthwise_conv2d_nchw_schedule(cfg.fallback, *args)
    src = tw.generate_source(tw.lower(s, tensors, "dw"), "opencl")
    assert "float out_local[" in src and src.count("barrier(") == 2
    fill, read = src.index("kernel_shared[("), src.index("out_local[0] = (out_local")
    assert fill < src.index("barrier(") < read


def test_no_test_where_a_loop_covers_its_launch_dimension():
    """A loop over all the launch's blocks or threads along its index reads the index
    and needs no test; a copy spread over fewer threads keeps one."""
    A = te.placeholder((64,), name="A")
    B = te.compute((64,), lambda i: A[i] + 1, name="B")
    C = te.compute((32,), lambda i: A[i] * 2, name="C")
    s = te.create_schedule([B.op, C.op])
    for T in (B, C):
        bx, tx = s[T].split(s[T].op.axis[0], 16)
        s[T].bind(bx, te.thread_axis("blockIdx.x"))
        s[T].bind(tx, te.thread_axis("threadIdx.x"))
    src = tw.generate_source(tw.lower(s, [A, B, C], "f"), "cuda -arch=sm_90")
    assert src.count("if (") == 1 and "if (i_outer_1 < 2) {" in src

def test_math_types_and_literals():
    A = te.placeholder((8,), "float32", name="A")
    L = te.placeholder((8,), "int64", name="L")
    B = te.compute((8,), lambda i: te.exp(A[i]) + te.sqrt(A[i]), name="B")
    M = te.compute((8,), lambda i: L[i] + te.const(3, "int64"), name="M")
    s = te.create_schedule([B.op, M.op])
    for T in (B, M):
        s[T].bind(s[T].op.axis[0], te.thread_axis("threadIdx.x"))
    ocl = tw.generate_source(tw.lower(s, [A, L, B, M], "f"), "opencl")
    assert "exp(A[" in ocl and "sqrt(A[" in ocl and "expf" not in ocl
    assert "__global long* restrict L" in ocl and "3L" in ocl
    cuda = tw.generate_source(tw.lower(s, [A, L, B, M], "f"), "cuda")
    assert "expf(A[" in cuda and "INT64_C(3)" in cuda
    assert launch_config(tw.lower(s, [A, L, B, M], "f")).global_size == (8, 1, 1)


def test_parallel_loop_is_rejected():
    A = te.placeholder((64,), name="A")
    B = te.compute((64,), lambda i: A[i] + 1, name="B")
    s = te.create_schedule(B.op)
    s[B].parallel(s[B].op.axis[0])
    with pytest.raises(CodegenError, match="blockIdx/threadIdx"):
        tw.generate_source(tw.lower(s, [A, B]), "opencl")


def test_opencl_target_options():
    with pytest.raises(TargetError, match="unknown target option.*-device, -local-mem"):
        _source("opencl -arch=x")
