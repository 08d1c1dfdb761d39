"""depthwise_conv2d_nchwc: the template against NumPy on odd shapes (fallback and
random configs), its place beside depthwise_conv2d_nchw in dispatch, and its packed
weights as the frontier that graph.prepack computes ahead."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.autotune.dispatch import FallbackConfigWarning, dispatch, untuned_choice
from tilewise.errors import TensorError
from tilewise.graph.prepack import prepack
from tw_testing import accepted_configs, check_config

TARGET = "c -cores=2"
NAME = "depthwise_conv2d_nchwc"

# (N, C, H, W, R, S, stride, pad, dilation, dtype, epilogue): channels that are and are
# not whole vector blocks (24, 40, 17), maps 7x7 and 13x11, stride 1 and 2, padding
# 0/1/2 and asymmetric, 5x5 and 1x7 windows, dilation, batch 2, every epilogue step
# (bias, relu and relu6 on the blocks; a residual through the NCHW rows), float64.
CASES = [
    (1, 24, 7, 7, 3, 3, 1, 1, 1, "float32", "bias+relu6"),
    (2, 40, 13, 11, 3, 3, 2, 1, 1, "float32", "bias+relu"),
    (1, 17, 13, 11, 5, 5, 1, 2, 1, "float32", ""),
    (1, 32, 13, 11, 3, 3, 2, 0, 1, "float32", "residual+gelu"),
    (1, 48, 9, 10, 1, 7, 1, (0, 3), 1, "float32", "bias+residual+relu"),
    (1, 16, 14, 14, 3, 3, 1, 2, 2, "float32", "gelu"),
    (1, 20, 8, 9, 3, 3, 1, 1, 1, "float64", "bias+relu6"),
]


@pytest.mark.compiles
@pytest.mark.parametrize("args", CASES, ids=[str(a[:9]) + a[10] for a in CASES])
def test_fallback_and_random_configs_match_numpy(args):
    task = Task(NAME, args, TARGET)
    space = task.config_space
    assert task.flop == Task("depthwise_conv2d_nchw", args, TARGET).flop
    for config in [space.fallback, *accepted_configs(task, 3)]:
        check_config(task, config)


@st.composite
def _shapes(draw):
    r = draw(st.sampled_from([1, 3, 5]))
    s = draw(st.sampled_from([r, 3]))
    h, w = draw(st.integers(max(r, s), 30)), draw(st.integers(max(r, s), 30))
    return (draw(st.sampled_from([1, 2])), draw(st.integers(1, 40)), h, w, r, s,
            draw(st.sampled_from([1, 2])), draw(st.integers(0, 2)), 1, "float32",
            draw(st.sampled_from(["", "bias+relu6", "residual"])))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_shapes(), st.sampled_from([1, 2]))
def test_fallback_lowers_on_any_shape(args, cores):
    task = Task(NAME, args, f"c -cores={cores}")
    tw.lower(*task.instantiate(task.config_space.fallback))


@pytest.mark.compiles
@settings(max_examples=4, deadline=None, derandomize=True)
@given(_shapes(), st.integers(0, 2**31))
def test_random_shapes_and_configs_match_numpy(args, pick):
    task = Task(NAME, args, TARGET)
    (config,) = accepted_configs(task, 1, seed=pick) or [task.config_space.fallback]
    check_config(task, config)


@pytest.mark.compiles
@pytest.mark.parametrize("knobs", [
    {"pack": "whole", "oh_bn": 8, "reg_w": 8},   # packed first; blocks that do not divide
    {"pack": "rows", "oh_bn": 3, "reg_w": 4},    # one transpose per block of 3 rows
    {"pack": "rows", "oh_bn": 1, "reg_w": 12},   # row by row, the row one tile
])
def test_each_way_to_pack_and_unpack_matches_numpy(knobs):
    """Rows packed per block or whole; the result back to NCHW a block at a time (rows
    and tiles whole) or a row at a time."""
    task = Task(NAME, (1, 32, 12, 12, 3, 3, 1, 1, 1, "float32", "bias+relu6"), TARGET)
    space = task.config_space
    check_config(task, space.with_choices(space.fallback, **knobs))


def test_fallbacks_on_mobilenet():
    """Tiles of 14 columns (7 on 7x7), whole planes up to 16 rows, else blocks of up
    to 8 rows that divide the plane, each packed as it is needed."""
    want = {(112, 1): (14, 8), (112, 2): (14, 8), (56, 1): (14, 8), (56, 2): (14, 7),
            (28, 1): (14, 7), (28, 2): (14, 14), (14, 1): (14, 14), (14, 2): (7, 7),
            (7, 1): (7, 7)}
    for (hw, stride), (reg_w, oh_bn) in want.items():
        fb = Task(NAME, (1, 96, hw, hw, 3, 3, stride, 1), TARGET).config_space.fallback
        assert (fb["reg_w"].val, fb["oh_bn"].val, fb["pack"].val) == (reg_w, oh_bn, "rows")
    # Fewer rows a block where the blocks would not keep both cores busy.
    fb = Task(NAME, (1, 16, 14, 14, 3, 3, 1, 1), TARGET).config_space.fallback
    assert fb["oh_bn"].val == 4


def test_implements_depthwise_and_runs_first_untuned_off_whole_vector_rows():
    def untuned(args):
        return untuned_choice(Task("depthwise_conv2d_nchw", args, TARGET)
                              .implementations()).name

    mobilenet = (1, 144, 56, 56, 3, 3, 1, 1, 1, "float32", "bias+relu6")
    assert [t.name for t in Task("depthwise_conv2d_nchw", mobilenet, TARGET)
            .implementations()] == ["depthwise_conv2d_nchw", NAME]
    for args in [mobilenet, (1, 96, 112, 112, 3, 3, 2, 1), (1, 960, 7, 7, 3, 3, 1, 1),
                 (1, 576, 14, 14, 3, 3, 2, 1), (1, 128, 16, 16, 3, 3, 2, 1)]:
        assert untuned(args) == NAME, args
    for args in [(1, 32, 112, 112, 3, 3, 1, 1),   # rows of 7 vectors: the row kernel
                 (1, 64, 32, 32, 3, 3, 1, 1),
                 (1, 32, 64, 64, 3, 3, 2, 1),     # planes of whole 4 KiB pages
                 (1, 144, 56, 56, 3, 3, 1, 1, 1, "float64")]:
        assert untuned(args) == "depthwise_conv2d_nchw", args


def test_dispatch_untuned_instantiates_the_chosen_template():
    with pytest.warns(FallbackConfigWarning, match=NAME):
        _, tensors = dispatch("depthwise_conv2d_nchw", 1, 48, 14, 14, 3, 3, 1, 1, 1,
                              "float32", "bias+relu6", target=TARGET)
    assert [t.name for t in tensors] == ["data", "kernel", "bias", "out"]
    assert [tuple(t.shape) for t in tensors] == [(1, 48, 14, 14), (48, 1, 3, 3), (48,),
                                                 (1, 48, 14, 14)]
    with pytest.warns(FallbackConfigWarning, match=r"depthwise_conv2d_nchw\("):
        dispatch("depthwise_conv2d_nchw", 1, 32, 112, 112, 3, 3, 1, 1, target=TARGET)


def test_refuses_integers():
    with pytest.raises(TensorError, match=NAME):
        Task(NAME, (1, 16, 8, 8, 3, 3, 1, 1, 1, "int32"), TARGET).config_space  # noqa: B018
    assert [t.name for t in Task("depthwise_conv2d_nchw", (1, 16, 8, 8, 3, 3, 1, 1, 1, "int32"),
                                 TARGET).implementations()] == ["depthwise_conv2d_nchw"]


@pytest.mark.compiles
@pytest.mark.parametrize("args, positions", [
    ((1, 32, 14, 14, 3, 3, 1, 1, 1, "float32", "bias+relu6"), (1, 2)),
    ((1, 24, 9, 9, 3, 3, 2, 1, 1, "float32", "residual"), (1,)),
])
def test_prepack_computes_the_packed_weights_ahead(args, positions):
    task = Task(NAME, args, TARGET)
    arrays, (want,) = task.reference()(np.random.default_rng(1))
    s, tensors = task.instantiate(task.config_space.fallback)
    pre = prepack(s, tensors, {p: arrays[p] for p in positions}, task.target)
    assert [t.name for t in pre.given] == ["kernel_pack"]
    assert "kernel" not in [t.name for t in pre.args]
    mod = tw.build(s, list(pre.args), task.target, given=pre.given)
    runtime = [a for i, a in enumerate(arrays) if i not in positions]
    out = np.zeros_like(runtime[-1])
    runtime[-1] = out
    mod(*pre.bind(runtime))
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))


# -- channel blocks at the edges ---------------------------------------------------------

BLOCKS = [(0, 0), (16, 0), (0, 16), (16, 16)]
TEMPLATES = ["depthwise_conv2d_nchw", NAME]
# (N, C, H, W, R, S, stride, pad, dilation, dtype, epilogue): 32 and 48 channels, maps
# 14x14, 15x17 and 7x7; 3x3 at stride 1 and 2 with padding 1, 5x5 with padding 2,
# dilation 2; no padding (blocked data read as is where the tile divides the row).
BLOCK_CASES = [
    (1, 32, 14, 14, 3, 3, 1, 1, 1, "float32", "bias+relu6"),
    (1, 48, 15, 17, 3, 3, 2, 1, 1, "float32", "bias+residual"),
    (1, 48, 7, 7, 3, 3, 2, 1, 1, "float32", "bias+relu6"),
    (1, 32, 15, 17, 5, 5, 1, 2, 1, "float32", "bias+residual"),
    (1, 48, 14, 14, 3, 3, 1, 1, 2, "float32", "bias+relu6"),
    (1, 32, 7, 7, 3, 3, 1, 0, 1, "float32", "bias+residual"),
]


@pytest.mark.compiles
@pytest.mark.parametrize("blocks", BLOCKS, ids=str)
@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("args", BLOCK_CASES, ids=[str(a[:9]) + a[10] for a in BLOCK_CASES])
def test_blocked_edges_match_numpy(args, name, blocks):
    """The data, output and residual in NCHW16c or NCHW as the blocks say (the reference
    packs them so), through either template: the fallback and random configs."""
    task = Task(name, (*args, *blocks), TARGET)
    for config in [task.config_space.fallback, *accepted_configs(task, 2)]:
        check_config(task, config)


@pytest.mark.compiles
def test_blocked_float64_in_blocks_of_its_lanes():
    task = Task(NAME, (1, 16, 8, 9, 3, 3, 1, 1, 1, "float64", "bias+relu6", 8, 8), TARGET)
    check_config(task, task.config_space.fallback)


@pytest.mark.compiles
def test_blocked_edges_are_not_transposed():
    """NCHW16c in and out: no transpose micro-kernel, the output written by the tiles."""
    args = (1, 32, 14, 14, 3, 3, 2, 1, 1, "float32", "bias+relu6")
    sources = {}
    for blocks in BLOCKS:
        task = Task(NAME, (*args, *blocks), TARGET)
        s, tensors = task.instantiate(task.config_space.fallback)
        sources[blocks] = tw.build(s, tensors, target=task.target).source
    assert "tw_pack_nchwc" in sources[0, 16] and "tw_unpack_nchwc" in sources[16, 0]
    assert "tw_pack_nchwc" not in sources[16, 0] and "tw_unpack_nchwc" not in sources[0, 16]
    assert "tw_pack_nchwc" not in sources[16, 16] and "tw_unpack" not in sources[16, 16]


@pytest.mark.parametrize("name", TEMPLATES)
def test_blocked_tensors(name):
    args = (1, 32, 9, 9, 3, 3, 2, 1, 1, "float32", "bias+residual", 16, 16)
    s, tensors = Task(name, args, TARGET).instantiate(
        Task(name, args, TARGET).config_space.fallback)
    assert [(t.name, tuple(t.shape)) for t in tensors] == [
        ("data", (1, 2, 9, 9, 16)), ("kernel", (32, 1, 3, 3)), ("bias", (32,)),
        ("residual", (1, 2, 5, 5, 16)), ("out", (1, 2, 5, 5, 16))]


def test_blocked_output_tiles_divide_the_row():
    """A blocked output is exactly OW wide: every tile divides it; the fallback the
    widest up to 14 columns, or the whole row where that leaves fewer than 4."""
    want = {112: 14, 56: 14, 28: 14, 14: 14, 7: 7, 17: 17, 15: 5}
    for w, reg_w in want.items():
        task = Task(NAME, (1, 32, 8, w, 3, 3, 1, 1, 1, "float32", "", 0, 16), TARGET)
        space = task.config_space
        (knob,) = [k for k in space.knobs if k.name == "reg_w"]
        assert all(w % e.val == 0 for e in knob.entities), w
        assert space.fallback["reg_w"].val == reg_w, w


@settings(max_examples=30, deadline=None, derandomize=True)
@given(_shapes(), st.sampled_from(BLOCKS[1:]), st.sampled_from([16, 32, 48]),
       st.sampled_from(TEMPLATES))
def test_blocked_fallback_lowers_on_any_shape(args, blocks, channels, name):
    args = (args[0], channels, *args[2:], *blocks)
    task = Task(name, args, TARGET)
    tw.lower(*task.instantiate(task.config_space.fallback))


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("blocks, what", [
    ((16, 0), "in_block 16 must be 0 (NCHW) or divide the 40 channels"),
    ((0, 16), "out_block 16 must be 0 (NCHW) or divide the 40 channels"),
    ((8, 8), "in_block 8: the template computes in blocks of the target's 16 float32 lanes"),
    ((0, 4), "out_block 4: the template computes in blocks of the target's 16 float32"),
])
def test_refuses_blocks_other_than_the_lanes_in_one_line(name, blocks, what):
    task = Task(name, (1, 40, 8, 8, 3, 3, 1, 1, 1, "float32", "", *blocks), TARGET)
    with pytest.raises(TensorError, match="^" + re.escape(f"{name}: {what}")) as e:
        task.config_space  # noqa: B018
    assert "\n" not in str(e.value)


def test_blocked_edges_run_the_nchwc_template_first_untuned():
    for args in [(1, 32, 112, 112, 3, 3, 1, 1), (1, 64, 32, 32, 3, 3, 1, 1),
                 (1, 32, 64, 64, 3, 3, 2, 1)]:
        for blocks in BLOCKS[1:]:
            task = Task("depthwise_conv2d_nchw", (*args, 1, "float32", "", *blocks), TARGET)
            assert untuned_choice(task.implementations()).name == NAME, (args, blocks)
