"""The GPU batched matmul template: gpu_gemm's tiles, knobs and fallback per batch,
the batch on blockIdx.z; correct against NumPy on the OpenCL device (PoCL in CI),
clean under Oclgrind, compiled by nvcc for sm_90 (the fallback without spills); and
the GPU templates' docstring examples hold."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
from gpu_testing import (
    check_on_opencl,
    needs_nvcc,
    needs_oclgrind,
    needs_opencl,
    nvcc_compiles,
    oclgrind_problems,
    ptxas_of,
    sampled,
    space_of,
)

import tilewise as tw
from tilewise.codegen import launch_config
from tilewise.errors import InvalidConfigError, TensorError
from tilewise.ops.batch_matmul import batch_matmul_reference
from tilewise.ops.gpu_batch_matmul import gpu_batch_matmul_schedule
from tilewise.ops.gpu_gemm import gpu_gemm_schedule
from tilewise.runtime.device import DeviceLimits

SHAPE = (3, 32, 48, 20)  # K leaves a partial last step for kt = 8, 16
ATTENTION = (12, 128, 128, 64)


def test_the_gemm_space_per_batch_on_blockIdx_z():
    assert space_of(gpu_batch_matmul_schedule, SHAPE).fallback == \
        space_of(gpu_gemm_schedule, SHAPE[1:]).fallback
    small = DeviceLimits("small", 2048, 64)
    space = space_of(gpu_batch_matmul_schedule, ATTENTION, small)
    s, args = gpu_batch_matmul_schedule(space.fallback, *ATTENTION, limits=small)
    launch = launch_config(tw.lower(s, args))
    assert launch.grid[2] == 12 and np.prod(launch.block) <= 64
    big = space.with_choices(space.fallback, tile_m=[-1, 16, 1], tile_n=[-1, 16, 1])
    with pytest.raises(InvalidConfigError, match="gpu_batch_matmul: 16 x 16 threads"):
        gpu_batch_matmul_schedule(big, *ATTENTION, limits=small)
    with pytest.raises(TensorError, match="70000 blocks along z"):
        space_of(gpu_batch_matmul_schedule, (70000, 16, 16, 16))


@needs_opencl
def test_fallback_and_sampled_configs_on_opencl():
    from tilewise.runtime.opencl import device_limits

    limits = device_limits()
    space = space_of(gpu_batch_matmul_schedule, SHAPE, limits)
    (a, b, _), (expected,) = batch_matmul_reference(*SHAPE)(np.random.default_rng(0))
    check_on_opencl(gpu_batch_matmul_schedule, SHAPE,
                    [space.fallback, *sampled(space, 2, seed=0)], limits, [a, b], expected)


@needs_oclgrind
def test_fallback_is_clean_under_oclgrind():
    assert oclgrind_problems(gpu_batch_matmul_schedule, SHAPE,
                             [space_of(gpu_batch_matmul_schedule, SHAPE).fallback]) == []


@needs_nvcc
def test_cuda_fallback_without_spills_and_sampled_configs_compile():
    info = ptxas_of(gpu_batch_matmul_schedule, ATTENTION,
                    space_of(gpu_batch_matmul_schedule, ATTENTION).fallback)
    assert info.spill_stores == 0 and info.spill_loads == 0, info.text
    nvcc_compiles(gpu_batch_matmul_schedule, SHAPE,
                  sampled(space_of(gpu_batch_matmul_schedule, SHAPE), 2, seed=1))


@pytest.mark.parametrize("module", ["gpu_gemm", "gpu_batch_matmul", "gpu_conv2d",
                                    "gpu_depthwise_conv2d", "gpu_gemm_tensorcore"])
def test_the_templates_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"tilewise.ops.{module}"))
    assert result.attempted and not result.failed
