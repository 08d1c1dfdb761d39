"""The GPU gemm template: its fallback chosen from the device's limits, and the
fallback and sampled configs correct against NumPy on the OpenCL device (PoCL in
CI), clean under Oclgrind, and compiled by nvcc for sm_90 without register spills."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_testing import gemm_arrays, needs_nvcc, needs_oclgrind, needs_opencl

import tilewise as tw
from tilewise.autotune import get_template
from tilewise.autotune.space import ConfigSpace
from tilewise.codegen import launch_config
from tilewise.driver import build_cuda_artifact, build_opencl_artifact
from tilewise.errors import InvalidConfigError
from tilewise.ops.gpu_gemm import fallback_choices, gpu_gemm_schedule
from tilewise.runtime.device import DeviceLimits
from tilewise.runtime.oclgrind import oclgrind_check
from tilewise.target import Target

SHAPE = (64, 96, 40)  # K leaves a partial last step for kt = 16, 32
CUDA = Target.from_str("cuda -arch=sm_90")


def _space(limits: DeviceLimits | None, shape=SHAPE) -> ConfigSpace:
    space = ConfigSpace(CUDA)
    gpu_gemm_schedule(space, *shape, limits=limits)
    return space


def _sampled(limits: DeviceLimits | None, n: int, seed: int) -> list:
    """``n`` configs the template accepts, drawn from the space with ``seed``: a
    refused draw is drawn again, never counted, so every one returned is built."""
    space = _space(limits)
    rng = np.random.default_rng(seed)
    picked = []
    for index in rng.permutation(space.size):
        config = space.get(int(index))
        try:
            gpu_gemm_schedule(config, *SHAPE, limits=limits)
        except InvalidConfigError:
            continue
        picked.append(config)
        if len(picked) == n:
            return picked
    raise AssertionError(f"only {len(picked)} configs of {space.size} are accepted")


def test_registered_and_fallback_from_limits():
    assert get_template("gpu_gemm").func is not None
    big = fallback_choices(256, 256, 256, "float32", DeviceLimits("big", 48 * 1024, 1024))
    assert big == {"tile_m": [-1, 16, 4], "tile_n": [-1, 16, 4], "kt": 16, "unroll": True}
    # a device of 64 threads a block and 2 KiB of local memory
    small = DeviceLimits("small", 2048, 64)
    choices = fallback_choices(256, 256, 256, "float32", small)
    (_, ty, rm), (_, tx, rn), kt = choices["tile_m"], choices["tile_n"], choices["kt"]
    assert ty * tx <= 64 and (ty * rm + tx * rn) * kt * 4 <= 2048
    fallback = _space(small, (256, 256, 256)).fallback
    s, args = gpu_gemm_schedule(fallback, 256, 256, 256, limits=small)
    assert launch_config(tw.lower(s, args)).block == (tx, ty, 1)


def test_configs_past_the_limits_are_refused():
    space = _space(DeviceLimits("tiny", 1024, 16))
    config = space.with_choices(space.fallback, tile_m=[-1, 8, 1], tile_n=[-1, 8, 1])
    with pytest.raises(InvalidConfigError, match="8 x 8 threads, the device allows 16"):
        gpu_gemm_schedule(config, *SHAPE, limits=DeviceLimits("tiny", 1024, 16))


@needs_opencl
def test_fallback_and_sampled_configs_on_opencl():
    from tilewise.runtime.opencl import device_limits

    limits = device_limits()
    configs = [_space(limits).fallback, *_sampled(limits, 3, seed=0)]
    M, N, K = SHAPE
    a, b, _ = gemm_arrays(M, N, K)
    for config in configs:
        s, args = gpu_gemm_schedule(config, *SHAPE, limits=limits)
        c = np.zeros((M, N), np.float32)
        tw.build(s, args, target="opencl", name="gemm")(a, b, c)
        np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4, err_msg=str(config))


@needs_oclgrind
def test_fallback_is_clean_under_oclgrind():
    s, args = gpu_gemm_schedule(_space(None).fallback, *SHAPE)
    assert oclgrind_check(build_opencl_artifact(s, args, "gemm")) == []


@needs_nvcc
def test_cuda_fallback_compiles_without_spills():
    from tilewise.runtime.cuda import ptxas_info

    shape = (1024, 1024, 1024)
    s, args = gpu_gemm_schedule(_space(None, shape).fallback, *shape)
    info = ptxas_info(tw.generate_source(tw.lower(s, args, "gemm"), CUDA), "sm_90")
    assert info.spill_stores == 0 and info.spill_loads == 0, info.text
    assert info.shared_bytes == (64 + 64) * 16 * 4


@needs_nvcc
def test_cuda_sampled_configs_compile():
    for config in _sampled(None, 2, seed=1):
        s, args = gpu_gemm_schedule(config, *SHAPE)
        build_cuda_artifact(s, args, CUDA, "gemm")  # raises BuildError if nvcc refuses
