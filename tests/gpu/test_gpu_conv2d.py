"""The GPU direct convolution template: its fallback chosen from the device's limits,
the shared memory its constraint counts, the fallback and sampled configs correct
against NumPy on the OpenCL device (PoCL in CI) at stride 2, padding, dilation and
tiles that do not divide the output, clean under Oclgrind, compiled by nvcc for
sm_90 (the fallback without register spills), and tuned end to end on OpenCL."""

from __future__ import annotations

import json

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
from tilewise.cli import main
from tilewise.codegen import launch_config
from tilewise.errors import InvalidConfigError, TensorError
from tilewise.ops.conv2d import conv2d_nchw_numpy
from tilewise.ops.gpu_conv2d import Geometry, gpu_conv2d_nchw_schedule
from tilewise.runtime.device import DeviceLimits

# (N, C, H, W, K, R, S, stride, pad, dilation): outputs 7 x 6 and 10 x 11, neither
# divided by most tiles, 5 and 6 input channels (a partial last step of ct = 4)
STRIDED = (2, 5, 13, 11, 7, 3, 3, 2, 1, 1)
DILATED = (1, 6, 12, 13, 9, 3, 2, 1, 2, (2, 1))
RESNET_C3 = (1, 128, 28, 28, 128, 3, 3, 1, 1, 1)
SMALL = DeviceLimits("small", 2048, 64)


def _arrays(shape, seed=0):
    N, C, H, W, K, R, S, stride, pad, dilation = shape
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((N, C, H, W)).astype(np.float32)
    k = rng.standard_normal((K, C, R, S)).astype(np.float32)
    return (d, k), conv2d_nchw_numpy(d, k, stride, pad, dilation)


def test_registered_and_fallback_from_limits():
    assert get_template("gpu_conv2d_nchw").targets == ("cuda", "opencl")
    fallback = space_of(gpu_conv2d_nchw_schedule, RESNET_C3).fallback
    assert {n: e.payload() for n, e in fallback.as_dict().items()} == {
        "tile_k": [-1, 16, 2], "tile_y": [-1, 2, 2], "tile_x": [-1, 4, 1], "ct": 8,
        "step": "window", "unroll": True}
    # a device of 64 threads a block and 2 KiB of local memory
    fallback = space_of(gpu_conv2d_nchw_schedule, RESNET_C3, SMALL).fallback
    s, args = gpu_conv2d_nchw_schedule(fallback, *RESNET_C3, limits=SMALL)
    func = tw.lower(s, args)
    assert np.prod(launch_config(func).block) <= 64 and shared_bytes(func) <= 2048


def test_configs_past_the_limits_are_refused():
    space = space_of(gpu_conv2d_nchw_schedule, RESNET_C3, SMALL)
    threads = space.with_choices(space.fallback, tile_k=[-1, 4, 1], tile_y=[-1, 4, 1],
                                 tile_x=[-1, 8, 1])
    with pytest.raises(InvalidConfigError, match="4 x 4 x 8 threads, the device allows 64"):
        gpu_conv2d_nchw_schedule(threads, *RESNET_C3, limits=SMALL)
    shared = space.with_choices(space.fallback, tile_k=[-1, 1, 8], ct=32)
    with pytest.raises(InvalidConfigError, match="bytes of shared tiles, the device has 2048"):
        gpu_conv2d_nchw_schedule(shared, *RESNET_C3, limits=SMALL)


def test_the_constraint_counts_the_shared_memory_the_kernel_declares():
    for shape in (STRIDED, DILATED):
        N, C, H, W, K, R, S, stride, pad, dilation = shape
        space = space_of(gpu_conv2d_nchw_schedule, shape)
        for config in [space.fallback, *sampled(space, 6, seed=2)]:
            s, args = gpu_conv2d_nchw_schedule(config, *shape)
            (_, tk, rk), (_, ty, ry), (_, tx, rx) = (config[n].size for n in
                                                     ("tile_k", "tile_y", "tile_x"))
            out = args[-1].shape
            geo = Geometry(N, K, int(out[2]), int(out[3]), R, S, (stride, stride),
                           dilation if isinstance(dilation, tuple) else (dilation,) * 2)
            counted = geo.shared_bytes(tk * rk, ty * ry, tx * rx, config["ct"].val,
                                       config["step"].val, 4)
            assert shared_bytes(tw.lower(s, args)) <= counted, config


def test_a_grid_past_cuda_limits_is_one_error():
    with pytest.raises(TensorError, match="blocks along z, CUDA's grid allows 65535"):
        space_of(gpu_conv2d_nchw_schedule, (70000, 4, 8, 8, 4, 3, 3))


@needs_opencl
def test_fallback_and_sampled_configs_on_opencl():
    from tilewise.runtime.opencl import device_limits

    limits = device_limits()
    for shape, seed in ((STRIDED, 0), (DILATED, 1)):
        space = space_of(gpu_conv2d_nchw_schedule, shape, limits)
        configs = [space.fallback, *sampled(space, 2, seed)]
        if all(c["step"].val == "window" for c in configs):
            configs.append(space.with_choices(configs[-1], step="row"))
        inputs, expected = _arrays(shape, seed)
        check_on_opencl(gpu_conv2d_nchw_schedule, shape, configs, limits, inputs, expected)


@needs_oclgrind
def test_fallback_and_edge_tiles_are_clean_under_oclgrind():
    """The tiles past the edge skip their outputs, not the barriers: a config whose
    tiles divide none of the axes, one register a thread along x."""
    space = space_of(gpu_conv2d_nchw_schedule, STRIDED)
    edge = space.with_choices(space.fallback, tile_k=[-1, 2, 2], tile_y=[-1, 2, 2],
                              tile_x=[-1, 4, 1], ct=4)
    assert oclgrind_problems(gpu_conv2d_nchw_schedule, STRIDED, [space.fallback, edge]) == []


@needs_nvcc
def test_cuda_fallback_compiles_without_spills():
    info = ptxas_of(gpu_conv2d_nchw_schedule, RESNET_C3,
                    space_of(gpu_conv2d_nchw_schedule, RESNET_C3).fallback)
    assert info.spill_stores == 0 and info.spill_loads == 0, info.text
    # 8 channels of a 6 x 6 patch and 32 x 8 3 x 3 weights
    assert info.shared_bytes == (8 * 6 * 6 + 32 * 8 * 9) * 4


@needs_nvcc
def test_cuda_sampled_configs_compile():
    for shape, seed in ((STRIDED, 3), (DILATED, 4)):
        nvcc_compiles(gpu_conv2d_nchw_schedule, shape,
                      sampled(space_of(gpu_conv2d_nchw_schedule, shape), 2, seed))


@needs_opencl
@pytest.mark.compiles
def test_tune_on_opencl_end_to_end(capsys, tmp_path):
    workload = ["N=1", "C=4", "H=9", "W=9", "K=8", "R=3", "S=3", "stride=2", "pad=1"]
    code = main(["tune", "gpu_conv2d_nchw", *workload, "--target", "opencl", "--trials", "4",
                 "--tuner", "random", "--confirm", "0", "--json",
                 "--db", str(tmp_path / "t.db")])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["trials"] == 4 and summary["errors"] == 0, summary
    assert summary["best_gflops"] > 0
