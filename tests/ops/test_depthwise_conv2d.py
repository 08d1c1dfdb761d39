"""The depthwise template against NumPy on odd shapes, every pad mode, and its
fallback choice on a MobileNet layer."""

from __future__ import annotations

import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.errors import InvalidConfigError
from tilewise.ops.microkernel import simd_fp32
from tw_testing import accepted_configs, check_config

TARGET = "c -cores=2"

# (N, C, H, W, R, S, stride, pad, dilation, dtype, epilogue): stride 2, padding 0/1/2
# and asymmetric, 5x5, 1x7 and 3x1 kernels, dilation, batch 2, channel counts and
# widths that are not a multiple of the vector width, every epilogue step.
CASES = [
    (2, 5, 13, 11, 3, 3, 2, 1, 1, "float32", ""),
    (1, 17, 9, 37, 5, 5, 1, 2, 1, "float32", ""),
    (1, 4, 8, 11, 1, 7, 1, (0, 3), 1, "float32", "bias+relu"),
    (1, 3, 12, 21, 3, 1, 1, (1, 0), 1, "float32", ""),
    (1, 6, 10, 19, 3, 3, 1, 0, 1, "float32", "residual+gelu"),
    (1, 33, 14, 40, 3, 3, 1, 2, 2, "float32", "bias+residual+relu"),
    (2, 3, 17, 33, 3, 3, 2, 0, 1, "float32", ""),
    (1, 2, 5, 5, 3, 3, 1, 1, 1, "float32", ""),
]


@pytest.mark.compiles
@pytest.mark.parametrize("args", CASES, ids=[str(a[:9]) + a[10] for a in CASES])
def test_fallback_and_sampled_configs_match_numpy(args):
    task = Task("depthwise_conv2d_nchw", args, TARGET)
    for config in [task.config_space.fallback, *accepted_configs(task, 3)]:
        check_config(task, config)


@pytest.mark.compiles
@pytest.mark.parametrize("pad_mode", ["at_rows", "inline"])
def test_both_pad_modes_match_numpy(pad_mode):
    task = Task("depthwise_conv2d_nchw", (1, 5, 11, 35, 3, 3, 1, 1), TARGET)
    space = task.config_space
    fb = {k: e.val for k, e in space.fallback.as_dict().items()}
    picks = [space.get(i) for i in range(len(space))
             if {k: e.val for k, e in space.get(i).as_dict().items()} == fb | {"pad": pad_mode}]
    assert len(picks) == 1
    check_config(task, picks[0])


def test_fallback_on_mobilenet():
    """mobilenet-dw1: on AVX-512 the micro-kernel over whole rows (7 vectors x 2 rows)
    reading the input through the inlined padding (~95 GFLOP/s against 51 for the
    loops, 1 thread, Zen 4); on AVX2's 16 registers the micro-kernel two vectors by
    8 rows, stored around the cache where the output outgrows L2; elsewhere the
    loops, one vector by 4 rows, rows padded 16 at a time."""
    task = Task("depthwise_conv2d_nchw", (1, 32, 112, 112, 3, 3, 1, 1), TARGET)
    fb = task.config_space.fallback
    target = tw.target.Target.from_str(TARGET)
    lanes = target.vector_lanes(4)
    if simd_fp32(target, "float32"):
        wide = target.vector_registers == 32
        assert (fb["kernel"].val, fb["pad"].val) == ("microkernel", "inline")
        assert (fb["w_bn"].val, fb["reg_h"].val, fb["oh_bn"].val) == \
            ((112, 2, 16) if wide else (2 * lanes, 8, 16))
        # Its 1.6 MB output goes around the cache where a thread's share exceeds
        # twice L2.
        assert fb["stream"].val == (32 * 112 * 112 * 4 / target.cores > 2 * target.l2_bytes)
    else:
        assert fb["w_bn"].val == lanes and fb["kernel"].val == "loops"
        assert (fb["reg_h"].val, fb["oh_bn"].val, fb["pad"].val) == (4, 16, "at_rows")


# Shapes whose output rows are whole vectors (16 lanes or 8), so the micro-kernel applies:
# 3x3, 5x5 with padding 2, 1x7 (six shifted copies), no padding, batch 2, epilogues
# (the kernel then fills a local tile that the epilogue reads).
MICRO_CASES = [
    (1, 3, 16, 32, 3, 3, 1, 1, 1, "float32", ""),
    (2, 5, 8, 16, 5, 5, 1, 2, 1, "float32", "bias+relu"),
    (1, 4, 8, 48, 1, 7, 1, (0, 3), 1, "float32", ""),
    (1, 2, 12, 34, 3, 3, 1, 0, 1, "float32", "residual"),
]


@pytest.mark.compiles
@pytest.mark.parametrize("args", MICRO_CASES, ids=[str(a[:9]) + a[10] for a in MICRO_CASES])
def test_microkernel_configs_match_numpy(args):
    task = Task("depthwise_conv2d_nchw", args, TARGET)
    space = task.config_space
    if "microkernel" not in [e.val for e in space.knob("kernel").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    for config in accepted_configs(task, 4, seed=0,
                                   where=lambda c: c["kernel"].val == "microkernel"):
        check_config(task, config)
    # The fallback reads the input through the inlined padding: the kernel's own
    # border masks and skipped rows stand in for the zeros.
    assert space.fallback["pad"].val == "inline"
    check_config(task, space.fallback)
    src = tw.build(*task.instantiate(space.fallback), target=task.target).source
    assert "tw_dw_ukr" in src


@pytest.mark.compiles
@pytest.mark.parametrize("kernel_size", [(3, 3), (5, 5), (1, 7)])
def test_microkernel_inside_and_border_tiles_match_numpy(kernel_size):
    """Tiles with every read inside the plane take the kernel's plain loads; the first
    and last row and column of tiles read past a side, through masks and rows of zeros.
    A plane of 5 x 3 tiles of 4 x 2 vectors (or 1 vector) holds both kinds, in both pad
    modes (a padded copy has no sides: masks keep its last vector in bounds), the
    output stored through the cache or around it."""
    R, S = kernel_size
    task = Task("depthwise_conv2d_nchw", (1, 2, 20, 48, R, S, 1, (R // 2, S // 2)), TARGET)
    space = task.config_space
    if "microkernel" not in [e.val for e in space.knob("kernel").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    lanes = tw.target.Target.from_str(TARGET).vector_lanes(4)
    picks = [{"kernel": "microkernel", "reg_h": 4, "oh_bn": 4, "w_bn": w, "pad": pad,
              "stream": stream}
             for w in (lanes, 2 * lanes) if 48 % w == 0 for pad in ("inline", "at_rows")
             for stream in ((False, True) if w * 4 % 64 == 0 else (False,))]
    for choice in picks:
        check_config(task, space.with_choices(space.fallback, **choice))


def test_fallback_width_divides_the_row_or_is_the_row():
    """A width that does not divide the output row would leave a guarded tail tile."""
    for args in [(1, 8, 9, 37, 3, 3, 1, 1), (1, 8, 20, 56, 3, 3, 1, 1),
                 (1, 8, 20, 64, 3, 3, 1, 1), (1, 8, 2, 3, 3, 3, 1, 1)]:
        task = Task("depthwise_conv2d_nchw", args, TARGET)
        fb = task.config_space.fallback
        ow = args[3]  # stride 1, pad 1, 3x3: same width out
        assert ow % fb["w_bn"].val == 0, (args, fb)
        assert fb["oh_bn"].val % fb["reg_h"].val == 0


def test_stream_needs_the_microkernel_writing_whole_lines():
    """``stream`` only changes the micro-kernel's own stores of whole cache lines; with
    the loops (or tiles narrower than a line) it would repeat a config, so it is refused."""
    task = Task("depthwise_conv2d_nchw", (1, 2, 16, 32, 3, 3, 1, 1), TARGET)
    space = task.config_space
    if True not in [e.val for e in space.knob("stream").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    with pytest.raises(InvalidConfigError, match="stream"):
        task.instantiate(space.with_choices(space.fallback, kernel="loops", stream=True))
