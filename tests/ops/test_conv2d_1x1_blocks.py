"""The pointwise GEMM with its data or output (and residual) in channel blocks
(NCHW16c): every side against conv2d_reference, the fallback and seeded random configs;
the space offers the blocks to the channels GEMM alone; blocks that do not fit are
refused in one line."""

from __future__ import annotations

import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.errors import TensorError
from tw_testing import accepted_configs, check_config, config_with

pytestmark = pytest.mark.compiles

TARGET = "c -cores=2"
LANES = tw.target.Target.from_str(TARGET).vector_lanes(4)
SIDES = [(0, 0), (LANES, 0), (0, LANES), (LANES, LANES)]
SHAPES = [(1, 32, 28, 28, 64), (1, 16, 7, 9, 48), (1, 64, 5, 5, 32)]
EPILOGUES = ["bias+relu6", "bias+residual", ""]


def _task(shape, epilogue: str, in_block: int, out_block: int) -> Task:
    N, C, H, W, K = shape
    return Task("conv2d_nchw", (N, C, H, W, K, 1, 1, 1, 0, 1, "float32", epilogue,
                                in_block, out_block), TARGET)


@pytest.mark.parametrize("epilogue", EPILOGUES, ids=lambda e: e or "none")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("blocks", SIDES, ids=lambda b: f"in{b[0]}-out{b[1]}")
def test_blocks_match_reference(blocks, shape, epilogue):
    """The fallback and two random configs of the space, built and compared, the data,
    output and residual packed as the blocks say (the odd 7x9 map: tiles that do not
    divide the 63 positions; 48 channels: three blocks, tiles of two)."""
    task = _task(shape, epilogue, *blocks)
    for config in [task.config_space.fallback, *accepted_configs(task, 2)]:
        check_config(task, config)


def test_blocks_offer_only_the_channels_gemm():
    """Blocks on either side: every config tiles over output channels, the fallback
    too; with none the space is today's."""
    plain = _task(SHAPES[0], "bias", 0, 0).config_space
    for blocks in SIDES[1:]:
        space = _task(SHAPES[0], "bias", *blocks).config_space
        assert [e.val for e in space.knob("vectors").entities] == ["channels"]
        assert space.fallback["vectors"].val == "channels"
    assert "pixels" in [e.val for e in plain.knob("vectors").entities]


@pytest.mark.skipif(LANES != 16, reason="tile widths of 16-lane vectors")
def test_tiles_wider_than_a_block_store_it_whole():
    """Blocks of 8 (half a vector) under tiles of 16 and 32 channels, each tile row
    stored a block at a time; a block of 32 only under tiles of whole blocks."""
    task = _task((1, 16, 7, 9, 64), "bias+residual", 8, 8)
    for nr in (16, 32):
        check_config(task, config_with(task, nr=nr, mr=7, kernel="ukr", block_m=1, kc=0))
    wide = _task((1, 16, 7, 9, 64), "", 0, 32)
    assert {e.val for e in wide.config_space.knob("nr").entities} >= {32, 64}
    check_config(wide, wide.config_space.fallback)
    assert wide.config_space.fallback["nr"].val % 32 == 0


@pytest.mark.parametrize("shape,blocks,message", [
    ((1, 16, 7, 7, 24), (0, 16), "out_block 16 must be 0"),
    ((1, 16, 7, 7, 24), (12, 0), "in_block 12 must be 0"),
    ((1, 16, 7, 7, 40), (0, 5), "out_block 5 must divide a tile"),
], ids=["out-not-dividing", "in-not-dividing", "out-no-tile"])
def test_blocks_that_do_not_fit_are_refused_in_one_line(shape, blocks, message):
    with pytest.raises(TensorError, match=message) as info:
        assert _task(shape, "", *blocks).config_space
    assert "\n" not in str(info.value)
