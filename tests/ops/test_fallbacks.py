"""The untuned config of every template works on any shape: random shapes, sizes that
are and are not multiples of the vector width and of the register tiles, on 1 and 2
cores; lowered on many, built and checked against NumPy on a few small ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
BUILT = settings(SETTINGS, max_examples=12)

# Small sizes, multiples of 4, 16 and 64 (whole register tiles and panels, and blocks
# of them that may not divide), and larger odd ones.
SIZE = st.one_of(st.integers(1, 20), st.integers(1, 8).map(lambda n: 4 * n),
                 st.integers(1, 6).map(lambda n: 16 * n),
                 st.integers(1, 4).map(lambda n: 64 * n), st.integers(20, 200))
# The same kinds of sizes, small enough to build and run quickly.
SMALL = st.one_of(st.integers(1, 20), st.integers(1, 8).map(lambda n: 4 * n),
                  st.sampled_from([16, 32, 64, 128]))


@st.composite
def _windowed(draw, name: str, size):
    if name == "conv2d_nchw_winograd":  # 3x3 at stride 1 only
        h, w, pad = draw(st.integers(3, 40)), draw(st.integers(3, 40)), draw(st.integers(0, 2))
        return name, (draw(st.sampled_from([1, 2])), draw(size), h, w, draw(size), 3, 3, 1,
                      pad)
    r = draw(st.sampled_from([1, 3, 5, 7]))
    s = draw(st.sampled_from([r, 1, 3]))
    h, w = draw(st.integers(max(r, s), 40)), draw(st.integers(max(r, s), 40))
    n, stride = draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2]))
    pad = draw(st.integers(0, 2))
    c, k = draw(size), draw(size)
    if name == "conv2d_nchw":
        return name, (n, c, h, w, k, r, s, stride, pad)
    if name == "conv2d_nhwc":
        return name, (n, h, w, c, k, r, s, stride, pad)
    if name == "depthwise_conv2d_nchw":
        return name, (n, c, h, w, r, s, stride, pad)
    return name, (n, c, h, w, r, s, stride, min(pad, r // 2, s // 2))


@st.composite
def tasks(draw, size=SIZE):
    name = draw(st.sampled_from(["gemm", "dense", "batch_matmul", "softmax", "layer_norm",
                                 "conv2d_nchw", "conv2d_nhwc", "depthwise_conv2d_nchw",
                                 "max_pool2d", "avg_pool2d", "conv2d_nchw_winograd"]))
    if name in ("gemm", "dense"):
        return name, (draw(size), draw(size), draw(size))
    if name == "batch_matmul":
        return name, (draw(st.integers(1, 4)), draw(size), draw(size), draw(size))
    if name in ("softmax", "layer_norm"):
        return name, (draw(size), draw(size))
    return draw(_windowed(name, size))


@SETTINGS
@given(tasks(), st.sampled_from([1, 2]))
def test_fallback_lowers_on_any_shape(task_args, cores):
    name, args = task_args
    task = Task(name, args, f"c -cores={cores}")
    s, tensors = task.instantiate(task.config_space.fallback)
    tw.lower(s, tensors)


@pytest.mark.compiles
@BUILT
@given(tasks(SMALL))
def test_fallback_matches_numpy_on_small_shapes(task_args):
    name, args = task_args
    task = Task(name, args, "c -cores=2")
    mod = tw.build(*task.instantiate(task.config_space.fallback), target=task.target)
    arrays, expected = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    for got, want in zip(arrays[len(arrays) - len(expected):], expected, strict=True):
        scale = float(np.abs(want).max()) or 1.0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale, err_msg=str(task))


@pytest.mark.parametrize("fma_per_cycle, vectors", [(1, 1), (2, 2)])
def test_conv_fallback_takes_one_vector_of_channels_where_a_core_starts_one_fma(
        fma_per_cycle, vectors):
    """resnet-c5-3x3: two vectors of output channels where a core starts two full-width
    FMAs a cycle, one where it starts one (Zen 4); the row tile and ic_outer alike."""
    import dataclasses

    from tilewise.autotune.space import ConfigSpace
    from tilewise.ops.conv2d import define_conv2d_nchw_space
    from tilewise.target import Target

    target = dataclasses.replace(Target.from_str("c"), vector_bits=512,
                                 fma_per_cycle=fma_per_cycle)
    space = ConfigSpace(target)
    define_conv2d_nchw_space(space, target, C=512, K=512, R=3, S=3, OW=7, dtype="float32",
                             dilation_w=1, in_w=9)
    fallback = space.fallback
    assert fallback["oc_bn"].val == 16 * vectors
    assert fallback["reg_n"].val == 7 and fallback["ic_outer"].val


@pytest.mark.parametrize("fma_per_cycle", [1, 2])
def test_pointwise_fallback_tiles_small_maps_over_output_channels(fma_per_cycle):
    """On 32 registers of 16 lanes: 49 positions (7x7) fill 4 vectors to 77%, so the
    tiles run over 7 positions by one vector of output channels (two where a core
    starts two FMAs a cycle); 196 (14x14) fill 13 vectors to 94%: over the channels
    where C and K are large enough that the two copies cost less (ResNet-50's 1024 ->
    256), over the positions where they are not (MobileNetV2's 96 -> 576), the
    micro-kernel on the data in place, one vector wide on one FMA a cycle; 3136
    (56x56) whole panels as before."""
    import dataclasses

    from tilewise.autotune.space import ConfigSpace
    from tilewise.ops.conv2d_1x1 import define_conv2d_1x1_space
    from tilewise.target import Target

    target = dataclasses.replace(Target.from_str("c"), vector_bits=512,
                                 fma_per_cycle=fma_per_cycle)
    wide = 16 * (1 if fma_per_cycle < 2 else 2)

    def fallback(C, K, HW):
        space = ConfigSpace(target)
        define_conv2d_1x1_space(space, target, C, K, HW, "float32", epilogue=True)
        fb = space.fallback
        return {k: fb[k].val for k in ("vectors", "mr", "nr", "kernel", "pack")}

    channels = dict(vectors="channels", mr=7, nr=wide, kernel="ukr")
    assert fallback(320, 1280, 49).items() >= channels.items()
    assert fallback(960, 160, 49).items() >= channels.items()
    assert fallback(1024, 256, 196).items() >= channels.items()
    in_place = dict(vectors="pixels", kernel="ukr", pack="none", nr=wide, mr=8)
    assert fallback(96, 576, 196) == in_place
    assert fallback(128, 512, 784) == in_place
    assert fallback(64, 256, 3136) == {**in_place, "nr": 32}
