"""The GPU depthwise convolution template: a channel per block row, its fallback from
the device's limits, correct against NumPy on the OpenCL device (PoCL in CI) at
stride 2, padding, dilation and tiles that do not divide the plane, clean under
Oclgrind, compiled by nvcc for sm_90 (the fallback without register spills)."""

from __future__ import annotations

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
    shared_bytes,
    space_of,
)

import tilewise as tw
from tilewise.autotune import get_template
from tilewise.codegen import launch_config
from tilewise.errors import InvalidConfigError, TuningError
from tilewise.ops.depthwise_conv2d import depthwise_reference
from tilewise.ops.gpu_depthwise_conv2d import (
    gpu_depthwise_conv2d_nchw_schedule,
    patch_elements,
)
from tilewise.runtime.device import DeviceLimits

# (N, C, H, W, R, S, stride, pad, dilation): outputs 5 x 6 and 7 x 7
ODD = (2, 3, 13, 11, 5, 3, 2, 2, 2)
PADDED = (1, 4, 9, 10, 3, 3, 1, 1, 1)
MOBILENET = (1, 32, 112, 112, 3, 3, 1, 1)
TINY = DeviceLimits("tiny", 512, 32)


def test_one_channel_per_block_row_and_a_fallback_from_limits():
    assert get_template("gpu_depthwise_conv2d_nchw").targets == ("cuda", "opencl")
    space = space_of(gpu_depthwise_conv2d_nchw_schedule, MOBILENET)
    assert space.fallback["tile_y"].size == (-1, 8, 2)
    s, args = gpu_depthwise_conv2d_nchw_schedule(space.fallback, *MOBILENET)
    grid = launch_config(tw.lower(s, args)).grid
    assert grid == (7 * 7, 32, 1)  # 16 x 16 tiles of the 112 x 112 plane, 32 channels
    # a device of 32 threads a block and 512 bytes of local memory
    fallback = space_of(gpu_depthwise_conv2d_nchw_schedule, MOBILENET, TINY).fallback
    s, args = gpu_depthwise_conv2d_nchw_schedule(fallback, *MOBILENET, limits=TINY)
    func = tw.lower(s, args)
    assert np.prod(launch_config(func).block) <= 32 and shared_bytes(func) <= 512
    (_, ty, ry), (_, tx, rx) = fallback["tile_y"].size, fallback["tile_x"].size
    assert shared_bytes(func) == (patch_elements(ty * ry, tx * rx, 3, 3, (1, 1), (1, 1))
                                  + 9) * 4


def test_configs_past_the_limits_are_refused():
    space = space_of(gpu_depthwise_conv2d_nchw_schedule, MOBILENET, TINY)
    wide = space.with_choices(space.fallback, tile_y=[-1, 1, 8], tile_x=[-1, 16, 2])
    with pytest.raises(InvalidConfigError, match="gpu_depthwise_conv2d_nchw: .* bytes of "
                                                 "shared tiles, the device has 512"):
        gpu_depthwise_conv2d_nchw_schedule(wide, *MOBILENET, limits=TINY)
    # a 7 x 7 window dilated by 8 reads a 49 x 49 patch for one output
    with pytest.raises(TuningError, match="tiny runs no config of this workload; the smallest "
                                          "needs 9800 bytes of shared tiles"):
        space_of(gpu_depthwise_conv2d_nchw_schedule, (1, 2, 60, 60, 7, 7, 1, 0, 8), TINY)


@needs_opencl
def test_fallback_and_sampled_configs_on_opencl():
    from tilewise.runtime.opencl import device_limits

    limits = device_limits()
    for shape, seed in ((ODD, 0), (PADDED, 1)):
        space = space_of(gpu_depthwise_conv2d_nchw_schedule, shape, limits)
        (data, kernel, _), (expected,) = depthwise_reference(*shape)(np.random.default_rng(seed))
        check_on_opencl(gpu_depthwise_conv2d_nchw_schedule, shape,
                        [space.fallback, *sampled(space, 2, seed)], limits, [data, kernel],
                        expected)


@needs_oclgrind
def test_fallback_and_edge_tiles_are_clean_under_oclgrind():
    space = space_of(gpu_depthwise_conv2d_nchw_schedule, ODD)
    edge = space.with_choices(space.fallback, tile_y=[-1, 2, 2], tile_x=[-1, 4, 1])
    assert oclgrind_problems(gpu_depthwise_conv2d_nchw_schedule, ODD,
                             [space.fallback, edge]) == []


@needs_nvcc
def test_cuda_fallback_without_spills_and_sampled_configs_compile():
    info = ptxas_of(gpu_depthwise_conv2d_nchw_schedule, MOBILENET,
                    space_of(gpu_depthwise_conv2d_nchw_schedule, MOBILENET).fallback)
    assert info.spill_stores == 0 and info.spill_loads == 0, info.text
    nvcc_compiles(gpu_depthwise_conv2d_nchw_schedule, ODD,
                  sampled(space_of(gpu_depthwise_conv2d_nchw_schedule, ODD), 2, seed=2))
