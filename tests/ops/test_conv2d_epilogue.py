"""conv2d_nchw and conv2d_nchw_winograd with epilogues: each step on the NCHW[x]c
blocks as they leave the accumulator (then one transpose per block row, as without an
epilogue), or inlined into the transform where the blocks cannot take it; against
NumPy on odd shapes, the fallback and a few configs."""

from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.errors import InvalidConfigError
from tilewise.ops.epilogue import blocked_epilogue, epilogue_on_blocks
from tilewise.te import placeholder
from tw_testing import accepted_configs

pytestmark = pytest.mark.compiles

TARGET = "c -cores=2"
#: The host's fp32 lanes: 16 on AVX-512, 8 on AVX2.
LANES = tw.target.Target.from_str(TARGET).vector_lanes(4)
F32 = "float32"

# (args, on the blocks?): every step alone and chained, output channels that are and
# are not whole blocks, stride 2 and a 7x7 stem, batch 2, rows the register tiles do not
# divide, a residual whose 16x32 planes (2 KiB apart) stay with the transform.
DIRECT = [
    ((1, 3, 23, 21, 2 * LANES, 3, 3, 2, 1, 1, F32, "bias+relu6"), True),
    ((1, 3, 30, 29, LANES, 7, 7, 2, 3, 1, F32, "bias+relu"), True),
    ((1, 8, 13, 11, 2 * LANES, 3, 3, 1, 1, 1, F32, "gelu"), True),
    ((2, 8, 11, 11, 2 * LANES, 3, 3, 1, 1, 1, F32, "bias"), True),
    ((1, 8, 13, 11, 2 * LANES, 5, 3, 2, 2, 1, F32, "bias+residual+relu"), True),
    ((1, 5, 14, 14, LANES, 3, 3, 1, 1, 2, F32, "relu"), True),
    ((1, 8, 13, 11, LANES + 5, 3, 3, 2, 1, 1, F32, "bias+relu6"), False),
    ((1, 6, 9, 9, LANES + 3, 3, 3, 1, 1, 1, F32, "bias+residual+relu"), False),
    ((1, 8, 16, 32, LANES, 3, 3, 1, 1, 1, F32, "bias+residual+relu"), False),
    ((1, 4, 9, 9, 2 * LANES, 3, 3, 1, 1, 1, "float64", "bias+relu"), False),
]

# Winograd's blocks are the largest power of two up to the lanes that divides K: 20
# output channels in blocks of 4, 7 in blocks of one channel (no transpose to join).
WINOGRAD = [
    ((1, 8, 13, 11, 2 * LANES, 3, 3, 1, 1, 1, F32, "bias+relu6"), True),
    ((1, 8, 9, 10, 20, 3, 3, 1, 1, 1, F32, "gelu"), True),
    ((1, 8, 13, 11, LANES, 3, 3, 1, 0, 1, F32, "bias"), True),
    ((2, 8, 11, 11, 2 * LANES, 3, 3, 1, 1, 1, F32, "bias+residual+relu"), True),
    ((1, 8, 9, 10, 7, 3, 3, 1, 1, 1, F32, "bias+relu"), False),
    ((1, 8, 16, 32, LANES, 3, 3, 1, 1, 1, F32, "bias+residual+relu"), False),
]


def _check(task: Task, config, tol: float) -> str:
    """Build ``config`` (a refusal fails the test) and compare with NumPy; the
    generated C."""
    s, tensors = task.instantiate(config)
    # the tensors, and their order, of the epilogue inlined into the transform
    assert [t.name for t in tensors] == ["data", "kernel", *_extra(task), "out"]
    mod = tw.build(s, tensors, target=task.target)
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=0,
                               atol=tol * (float(np.abs(want).max()) or 1.0),
                               err_msg=f"{task} {config}")
    return mod.source


def _extra(task: Task) -> list[str]:
    """The epilogue's inputs, in the order the steps take them."""
    steps = task.args[11].split("+")
    return [s for s in steps if s in ("bias", "residual")]


def _on_blocks(source: str) -> bool:
    """Whether the kernel wrote the epilogue's ``result`` blocks and transposed them."""
    return "result[" in source and "tw_unpack_nchwc" in source


@pytest.mark.parametrize("args,blocked", DIRECT, ids=[str(a) for a, _ in DIRECT])
def test_direct_epilogue_matches_numpy(args, blocked):
    task = Task("conv2d_nchw", args, TARGET)
    space = task.config_space
    # (epilogue_reference rounds a float64 result to float32)
    assert _on_blocks(_check(task, space.fallback, 1e-5)) == blocked
    (config,) = accepted_configs(task, 1)
    _check(task, config, 1e-5)


@pytest.mark.parametrize("args,blocked", WINOGRAD, ids=[str(a) for a, _ in WINOGRAD])
def test_winograd_epilogue_matches_numpy(args, blocked):
    task = Task("conv2d_nchw_winograd", args, TARGET)
    space = task.config_space
    assert _on_blocks(_check(task, space.fallback, 1e-5)) == blocked
    for m, weights in ((4, "root"), (2, "panel")):
        _check(task, space.with_choices(space.fallback, tile=m, mr=2, weights=weights),
               1e-5 if m == 2 else 1e-4)


def test_blocks_take_every_step_but_a_residual_unless_asked():
    assert blocked_epilogue(32, 16, F32, "bias+relu6")
    assert blocked_epilogue(32, 16, F32, "")
    assert not blocked_epilogue(33, 16, F32, "bias")      # a partial block
    assert not blocked_epilogue(32, 1, F32, "bias")       # no block to transpose
    assert not blocked_epilogue(32, 16, "float64", "relu")
    assert not blocked_epilogue(32, 16, F32, "bias+residual+relu")
    assert blocked_epilogue(32, 16, F32, "bias+residual+relu", residual=True)


def test_blocks_take_the_inputs_in_the_epilogues_order():
    blocks = placeholder((2, 2, 5, 8, 16), F32, name="blocks")
    result, extra = epilogue_on_blocks(blocks, "residual+bias+gelu", 16, (2, 32, 5, 7))
    assert [t.name for t in extra] == ["residual", "bias"]
    assert [tuple(t.shape) for t in extra] == [(2, 32, 5, 7), (32,)]
    assert result.name == "result" and tuple(result.shape) == (2, 2, 5, 8, 16)
    with pytest.raises(InvalidConfigError):
        epilogue_on_blocks(blocks, "residual", 16)


def test_residual_on_blocks_past_the_row():
    """Register tiles that pad the 11-column rows to 12 or 15: the padded columns of
    the blocks read the residual's last column (the transform drops them), with the
    micro-kernel or the loops, each tile's whole sum or the ic blocks outermost."""
    task = Task("conv2d_nchw", (1, 8, 11, 11, 2 * LANES, 3, 3, 1, 1, 1, F32,
                                "bias+residual+relu"), TARGET)
    kernels = [e.val for e in task.config_space.knob("kernel").entities]
    for reg_n, kernel, ic_outer in ((4, kernels[-1], False), (5, kernels[0], True),
                                    (3, "loops", False)):
        config = task.config_space.with_choices(
            task.config_space.fallback, reg_n=reg_n, kernel=kernel, ic_outer=ic_outer,
            order="ic_khkw", fuse_kw=False)
        assert _on_blocks(_check(task, config, 1e-5))
