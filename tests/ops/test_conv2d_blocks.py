"""conv2d_nchw's direct path with channel blocks at its edges (``in_block``,
``out_block``): every combination of NCHW and NCHW[x]c data and output against NumPy on
odd shapes, the fallback and seeded random configs; the blocks fix the channel tiles,
an output in blocks takes only row tiles that divide it, and nothing transforms it back."""

from __future__ import annotations

import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.errors import TensorError
from tw_testing import accepted_configs, check_config

pytestmark = pytest.mark.compiles

TARGET = "c -cores=2"
#: The host's fp32 lanes: 16 on AVX-512, 8 on AVX2.
LANES = tw.target.Target.from_str(TARGET).vector_lanes(4)
B = 16  # the graph's NCHW16c
F32 = "float32"
COMBINATIONS = [(0, 0), (B, 0), (0, B), (B, B)]

# stride 2, padding 0/1/2, 3x3, 5x5 and 1x7, dilation 2, batch 2, rows of 6, 10, 11,
# 13 and 19 (no multiple of 16), 48 output channels (3 blocks), the epilogues; with
# no padding the blocked data is read in place (Hp < H: stride 2 over 14 rows).
SHAPES = [
    (1, 16, 13, 11, 32, 3, 3, 2, 1),
    (1, 32, 9, 10, 16, 5, 5, 1, 2),
    (1, 16, 8, 19, 32, 1, 7, 1, (0, 3)),
    (2, 16, 12, 13, 16, 3, 3, 1, 0),
    (1, 16, 14, 14, 16, 3, 3, 2, 0),
    (1, 16, 12, 13, 32, 3, 3, 1, 2, 2),
    (2, 32, 11, 11, 32, 3, 3, 1, 1, 1, F32, "bias+residual+relu"),
    (1, 16, 13, 11, 48, 3, 3, 2, 1, 1, F32, "bias+relu6"),
]

CASES = [(a, blocks) for a in SHAPES for blocks in COMBINATIONS] + [
    # the 7x7 stem: 3 channels take no blocks in, 16 out
    ((1, 3, 30, 29, B, 7, 7, 2, 3), (0, B)),
    ((1, 3, 30, 29, 2 * B, 7, 7, 2, 3, 1, F32, "bias+relu"), (0, B)),
    # blocks of two vectors (AVX-512's 32, AVX2's 16), and float64 (the loops)
    ((1, 32, 9, 10, 64, 3, 3, 1, 1, 1, F32, "bias+residual+relu"), (2 * LANES, 2 * LANES)),
    ((1, 32, 9, 10, 64, 3, 3, 1, 1), (B, 2 * LANES)),
    ((1, 16, 9, 9, 16, 3, 3, 1, 1, 1, "float64", "bias+relu"), (B, B)),
]


def _task(args, blocks) -> Task:
    args = tuple(args) + (1, F32, "")[len(args) - 9:]
    return Task("conv2d_nchw", (*args, *blocks), TARGET)


@pytest.mark.parametrize("args,blocks", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_blocks_match_numpy(args, blocks):
    task = _task(args, blocks)
    space = task.config_space
    in_block, out_block = blocks
    if in_block:
        assert [e.val for e in space.knob("ic_bn").entities] == [in_block]
    if out_block:
        assert [e.val for e in space.knob("oc_bn").entities] == [out_block]
    for config in (space.fallback, *accepted_configs(task, 3)):
        check_config(task, config, atol=1e-5)


@pytest.mark.parametrize("blocks", COMBINATIONS)
def test_blocks_need_no_transform(blocks):
    """In blocks, no transpose at that edge: the data read in place where no padding is
    read, and the output written by the register tiles (or the epilogue on them)."""
    in_block, out_block = blocks
    for args in ((1, 32, 9, 10, 32, 3, 3, 1, 0, 1, F32, ""),
                 (1, 32, 9, 10, 32, 3, 3, 1, 1, 1, F32, "bias+residual+relu")):
        task = _task(args, blocks)
        s, tensors = task.instantiate(task.config_space.fallback)
        source = tw.build(s, tensors, target=task.target).source
        padded = args[8] != 0
        assert ("data_pack" in source) == (padded or not in_block)
        assert ("tw_pack_nchwc" in source) == (not in_block)
        assert ("tw_unpack_nchwc" in source) == (not out_block)
        if out_block:
            trim = 0 if padded else 2
            assert tuple(tensors[-1].shape) == (1, 32 // out_block, 9 - trim, 10 - trim,
                                                out_block)


def test_output_in_blocks_takes_row_tiles_that_divide_it():
    """Rows of 14 and 56: tiles 7 and 28 (the widest that fit AVX-512's registers), never
    a padded row; NCHW output keeps its wider choice and padded rows."""
    for W, widest in ((14, 14), (56, 28)):
        blocked = _task((1, 16, W, W, 32, 3, 3, 1, 1), (B, B)).config_space
        regs = [e.val for e in blocked.knob("reg_n").entities]
        assert regs and all(W % r == 0 for r in regs)
        if LANES == 16:
            assert blocked.fallback["reg_n"].val == widest
        plain = _task((1, 16, W, W, 32, 3, 3, 1, 1), (0, 0)).config_space
        assert set(regs) - {1} <= {e.val for e in plain.knob("reg_n").entities}


def test_a_block_that_does_not_divide_the_channels_is_one_line():
    for blocks in ((B, 0), (0, B)):
        with pytest.raises(TensorError) as err:
            _task((1, 24, 9, 9, 24, 3, 3, 1, 1), blocks).config_space  # noqa: B018
        assert "\n" not in str(err.value) and "24 channels" in str(err.value)


def test_an_output_block_other_than_one_or_two_vectors_is_refused_in_one_line():
    with pytest.raises(TensorError) as err:
        _task((1, 16, 9, 9, 4 * LANES, 3, 3, 1, 1), (0, LANES // 2)).config_space  # noqa: B018
    assert "\n" not in str(err.value) and "out_block" in str(err.value)
