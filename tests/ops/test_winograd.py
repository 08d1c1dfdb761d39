"""conv2d_nchw_winograd: the transform matrices, the template against NumPy on odd
shapes and random configs, and the shapes it refuses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.autotune.dispatch import untuned_choice
from tilewise.errors import TensorError
from tilewise.ops.conv2d_winograd import TILES, tiles_per_row, winograd_matrices
from tw_testing import accepted_configs

TARGET = "c -cores=2"


@pytest.mark.parametrize("m", TILES)
def test_matrices_compute_the_tile_of_the_correlation(m):
    bt, g, at = winograd_matrices(m)
    rng = np.random.default_rng(m)
    d, w = rng.standard_normal((m + 2, m + 2)), rng.standard_normal((3, 3))
    y = at @ ((g @ w @ g.T) * (bt @ d @ bt.T)) @ at.T
    want = np.array([[np.sum(d[i:i + 3, j:j + 3] * w) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def _tolerance(m: int, dtype: str) -> float:
    # Relative to the result's largest magnitude: F(4x4) sums terms up to ~10x larger.
    return {"float64": 1e-12}.get(dtype, 1e-5 if m == 2 else 1e-4)


def _check(task: Task, config) -> None:
    """Build ``config`` (a refusal fails the test) and compare with NumPy."""
    s, tensors = task.instantiate(config)
    mod = tw.build(s, tensors, target=task.target)
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    scale = float(np.abs(want).max()) or 1.0
    tol = _tolerance(config["tile"].val, str(want.dtype))
    np.testing.assert_allclose(arrays[-1], want, rtol=0, atol=tol * scale,
                               err_msg=f"{task} {config}")


# Prime and odd sizes (tiles cut by the image's edge), padding 0/1/2, batch > 1,
# channels that are not a multiple of the vector width, an epilogue, float64.
CASES = [
    (2, 5, 13, 11, 7, 3, 3, 1, 1),
    (1, 3, 9, 10, 20, 3, 3, 1, 2),
    (1, 16, 7, 7, 33, 3, 3, 1, 0),
    (1, 32, 14, 14, 64, 3, 3, 1, 1),
    (2, 8, 11, 11, 16, 3, 3, 1, 1, 1, "float32", "bias+residual+relu"),
    (1, 6, 5, 9, 10, 3, 3, 1, 1, 1, "float64"),
]


@pytest.mark.compiles
@pytest.mark.parametrize("args", CASES, ids=[str(a) for a in CASES])
def test_matches_numpy_in_either_tile(args):
    task = Task("conv2d_nchw_winograd", args, TARGET)
    space = task.config_space
    _check(task, space.fallback)
    assert task.flop == Task("conv2d_nchw", args, TARGET).flop
    for m in TILES:
        for weights in ("root", "panel"):  # U written whole first, or per GEMM panel
            _check(task, space.with_choices(space.fallback, tile=m, mr=2, weights=weights))


@pytest.mark.compiles
@settings(max_examples=10, deadline=None, derandomize=True)
@given(n=st.sampled_from([1, 2]), c=st.integers(1, 40), k=st.integers(1, 40),
       h=st.integers(3, 17), w=st.integers(3, 17), pad=st.integers(0, 2),
       pick=st.integers(0, 2**31))
def test_random_configs_match_numpy(n, c, k, h, w, pad, pick):
    task = Task("conv2d_nchw_winograd", (n, c, h, w, k, 3, 3, 1, pad), TARGET)
    (config,) = accepted_configs(task, 1, seed=pick) or [task.config_space.fallback]
    _check(task, config)


def test_fallback_fits_its_rows_to_a_few_tiles():
    # 2x2 outputs: one F(2x2) tile, fewer than any micro-kernel's rows
    task = Task("conv2d_nchw_winograd", (1, 16, 2, 2, 32, 3, 3, 1, 1), TARGET)
    s, tensors = task.instantiate(task.config_space.fallback)
    tw.lower(s, tensors)


@pytest.mark.parametrize("args", [
    (1, 8, 9, 9, 8, 3, 3, 2, 1),          # stride 2
    (1, 8, 9, 9, 8, 5, 5, 1, 2),          # 5x5
    (1, 8, 9, 9, 8, 3, 3, 1, 2, 2),       # dilation 2
    (1, 8, 9, 9, 8, 3, 3, 1, 1, 1, "int32"),
])
def test_refuses_what_it_does_not_compute(args):
    with pytest.raises(TensorError, match="conv2d_nchw_winograd"):
        Task("conv2d_nchw_winograd", args, TARGET).config_space  # noqa: B018
    # ... and is no implementation of conv2d_nchw there
    assert [t.name for t in Task("conv2d_nchw", args, TARGET).implementations()] == [
        "conv2d_nchw"]


def test_implements_conv2d_and_runs_first_untuned_from_32_channels():
    def untuned(args):
        return untuned_choice(Task("conv2d_nchw", args, TARGET).implementations()).name

    resnet = (1, 64, 56, 56, 64, 3, 3, 1, 1)
    assert [t.name for t in Task("conv2d_nchw", resnet, TARGET).implementations()] == [
        "conv2d_nchw", "conv2d_nchw_winograd"]
    assert untuned(resnet) == "conv2d_nchw_winograd"
    assert untuned((1, 3, 224, 224, 64, 3, 3, 1, 1)) == "conv2d_nchw"  # an RGB input
    assert untuned((1, 16, 32, 32, 16, 3, 3, 1, 1)) == "conv2d_nchw"


def test_rows_of_tiles_avoid_planes_of_whole_pages():
    # resnet-c2-3x3 in F(2x2): 28 x 28 tiles of 64 channels, fp32 = 49 pages a plane
    assert tiles_per_row(1, 28, 28, (64, 64), 4) == 29
    assert tiles_per_row(1, 7, 7, (128, 128), 4) == 7  # 3.5 pages
    # 4 x 4 tiles of 512 channels: every count of tiles is whole pages
    assert tiles_per_row(1, 4, 4, (512, 512), 4) == 4



@pytest.mark.compiles
@pytest.mark.parametrize("m", TILES)
def test_compute_definition_matches_numpy_unscheduled(m):
    """The stages' te definitions alone (the selects over the matrices, no micro-kernel)."""
    from tilewise import te
    from tilewise.ops.conv2d import conv2d_reference
    from tilewise.ops.conv2d_winograd import conv2d_winograd_compute

    args = (1, 3, 7, 6, 5)
    inputs, out, _ = conv2d_winograd_compute(*args, 1, m, cb=1, nr=16, ob=1)
    mod = tw.build(te.create_schedule(out.op), [*inputs, out], target="c")
    arrays, (want,) = conv2d_reference(*args, 3, 3, 1, 1)(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_fallback_transforms_weights_per_panel_where_they_outgrow_l2():
    target = tw.target.Target.from_str(TARGET)
    for c in (64, 128, 256, 512):
        fb = Task("conv2d_nchw_winograd", (1, c, 14, 14, c, 3, 3, 1, 1), TARGET)\
            .config_space.fallback
        assert fb["weights"].val == ("panel" if 16 * c * c * 4 > 2 * target.l2_bytes
                                     else "root")
