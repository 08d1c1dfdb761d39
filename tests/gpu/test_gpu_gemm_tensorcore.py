"""The tensor-core gemm (fp16 in, fp32 sums and out, CUDA's wmma): refused on OpenCL in
one line, each warp's micro-kernel called by all its lanes, a barrier before the block's
tile is copied out; compiled by nvcc for sm_90 into tensor-core instructions, the
fallback without spills. Run against NumPy only where there is a GPU."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_testing import CUDA, needs_nvcc, nvcc_compiles, ptxas_of, sampled, space_of

import tilewise as tw
from tilewise.autotune import Task, get_template
from tilewise.autotune.measure.workload import check_measurable
from tilewise.autotune.space import ConfigSpace
from tilewise.errors import TargetError, TensorError, TuningError
from tilewise.ops.gpu_gemm_tensorcore import gpu_gemm_tensorcore_schedule, tensorcore_reference
from tilewise.runtime.cuda import cuda_unavailable
from tilewise.target import Target

SHAPE = (128, 256, 64)
LARGE = (4096, 4096, 4096)


def _source(config, shape=SHAPE) -> str:
    s, args = gpu_gemm_tensorcore_schedule(config, *shape)
    return tw.generate_source(tw.lower(s, args, "tc"), CUDA)


def test_cuda_only_and_whole_fragments():
    assert get_template("gpu_gemm_tensorcore").targets == ("cuda",)
    opencl = "opencl -local-mem=48K -max-threads=1024"
    with pytest.raises(TuningError, match="schedules for 'cuda' targets, not 'opencl'"):
        check_measurable(Task("gpu_gemm_tensorcore", SHAPE, opencl))
    with pytest.raises(TargetError, match="tensor cores \\(wmma\\) are CUDA's; on an OpenCL "
                                          "device use gpu_gemm"):
        gpu_gemm_tensorcore_schedule(ConfigSpace(Target.from_str(opencl)), *SHAPE)
    with pytest.raises(TensorError, match="multiples of 16 \\(the wmma fragment\\), got 128, "
                                          "100, 64"):
        space_of(gpu_gemm_tensorcore_schedule, (128, 100, 64))


def test_every_lane_of_a_warp_calls_its_micro_kernel_then_the_block_waits():
    space = space_of(gpu_gemm_tensorcore_schedule, SHAPE)
    src = _source(space.fallback)
    kernel = src[src.index('extern "C"'):]
    assert "__shared__ __align__(32) float C_shared[" in kernel
    call = kernel.index("tw_wmma_")
    assert "threadIdx.x" not in kernel[:call]  # the warps' loops: threadIdx.z, .y
    assert call < kernel.index("__syncthreads();") < kernel.index("C[")
    assert "#include <mma.h>" in src and "wmma::mma_sync" in src


@needs_nvcc
def test_cuda_compiles_to_tensor_core_instructions_without_spills():
    from tilewise.runtime.cuda import check_compiles

    fallback = space_of(gpu_gemm_tensorcore_schedule, LARGE).fallback
    assert "wmma.mma.sync" in check_compiles(_source(fallback, LARGE), "sm_90")
    info = ptxas_of(gpu_gemm_tensorcore_schedule, LARGE, fallback)
    assert info.spill_stores == 0 and info.spill_loads == 0, info.text
    (_, wm, fm), (_, wn, fn) = fallback["tile_m"].size, fallback["tile_n"].size
    assert info.shared_bytes == 16 * wm * fm * 16 * wn * fn * 4
    nvcc_compiles(gpu_gemm_tensorcore_schedule, SHAPE,
                  sampled(space_of(gpu_gemm_tensorcore_schedule, SHAPE), 3, seed=0))


@pytest.mark.skipif(bool(cuda_unavailable()), reason="needs nvcc, CuPy and a GPU")
def test_against_numpy_on_the_gpu():
    (a, b, _), (expected,) = tensorcore_reference(*SHAPE)(np.random.default_rng(0))
    space = space_of(gpu_gemm_tensorcore_schedule, SHAPE)
    for config in [space.fallback, *sampled(space, 2, seed=1)]:
        s, args = gpu_gemm_tensorcore_schedule(config, *SHAPE)
        c = np.zeros(expected.shape, np.float32)
        tw.build(s, args, target=CUDA, name="tc")(a, b, c)
        np.testing.assert_allclose(c, expected, rtol=1e-3, atol=1e-3, err_msg=str(config))
