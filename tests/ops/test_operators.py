"""Every operator template against NumPy on odd shapes: the fallback config and a few
seeded random configs of each space, built and compared."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tilewise as tw
import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise.autotune import Task
from tilewise.errors import InvalidConfigError
from tilewise.ir import Prefetch, collect
from tw_testing import accepted_configs, config_with

pytestmark = pytest.mark.compiles

TARGET = "c -cores=2"
#: The host's fp32 lanes: 16 on AVX-512, 8 on AVX2 (tile widths are multiples of it).
LANES = tw.target.Target.from_str(TARGET).vector_lanes(4)

# (template, args): prime sizes, stride 2, padding 0/1/2, 1x1, 5x5 and 1x7 kernels,
# dilation, batch > 1, channel counts that are not a multiple of the vector width.
CASES = [
    ("conv2d_nchw", (2, 5, 13, 11, 7, 3, 3, 2, 1)),
    ("conv2d_nchw", (1, 6, 9, 10, 20, 5, 5, 1, 2)),
    ("conv2d_nchw", (1, 4, 8, 11, 17, 1, 7, 1, (0, 3))),
    ("conv2d_nchw", (1, 16, 7, 7, 33, 1, 1, 1, 0)),
    ("conv2d_nchw", (2, 19, 5, 7, 11, 1, 1, 1, 0, 1, "float32", "bias+relu")),
    ("conv2d_nchw", (1, 6, 9, 9, 10, 1, 1, 2, 0)),
    ("conv2d_nchw", (1, 8, 12, 13, 16, 3, 3, 1, 2, 2)),
    ("conv2d_nchw", (2, 8, 11, 11, 16, 3, 3, 1, 1, 1, "float32", "bias+residual+relu")),
    ("conv2d_nhwc", (2, 13, 11, 5, 7, 3, 3, 2, 1)),
    ("conv2d_nhwc", (1, 9, 10, 6, 32, 5, 5, 1, 2)),
    ("conv2d_nhwc", (1, 8, 11, 4, 17, 1, 7, 1, (0, 3))),
    ("conv2d_nhwc", (1, 7, 7, 3, 16, 1, 1, 1, 0, 1, "float32", "bias+gelu")),
    ("depthwise_conv2d_nchw", (2, 5, 13, 11, 3, 3, 2, 1)),
    ("depthwise_conv2d_nchw", (1, 3, 9, 37, 5, 5, 1, 2)),
    ("depthwise_conv2d_nchw", (1, 4, 8, 11, 1, 7, 1, (0, 3), 1, "float32", "bias+relu")),
    ("depthwise_conv2d_nchw", (1, 32, 14, 16, 3, 3, 1, 1, 1, "float32", "bias+relu6")),
    ("max_pool2d", (2, 3, 13, 11, 3, 3, 2, 1)),
    ("max_pool2d", (1, 4, 9, 10, 2, 2, 2, 0)),
    ("avg_pool2d", (2, 3, 13, 11, 3, 3, 2, 1)),
    ("avg_pool2d", (1, 3, 8, 11, 5, 5, 1, 2)),
    ("softmax", (13, 37)),
    ("softmax", (1, 5)),
    ("layer_norm", (13, 37)),
    ("layer_norm", (3, 128)),
    ("batch_matmul", (3, 13, 37, 11)),
    ("gemm", (13, 37, 11)),
    ("dense", (13, 37, 11)),
    ("dense", (9, 33, 16, "bias+gelu")),
    ("dense", (7, 20, 5, "residual+relu")),
    ("dense", (7, 20, 5, "bias+relu6")),
    # whole micro-kernel tiles under a block of tiles that does not divide the rows,
    # columns or channels (25 row tiles in blocks of 16, 12 of 8 output channels)
    ("gemm", (100, 128, 64)),
    ("dense", (80, 256, 16, "bias")),
    ("batch_matmul", (2, 12, 128, 3)),
    ("conv2d_nchw", (1, 32, 28, 40, 96, 1, 1, 1, 0)),
    # an output row of a prime width over 14 beside 64 channels (19 x 32 would not fit)
    ("conv2d_nhwc", (1, 30, 35, 32, 64, 5, 3, 2, 2)),
]


def _configs(task: Task, n_random: int = 2):
    """The fallback and ``n_random`` seeded random configs that the template accepts."""
    return [task.config_space.fallback, *accepted_configs(task, n_random)]


def _check(task: Task, config) -> None:
    """Build ``config`` (a refusal fails the test) and compare every output with NumPy."""
    s, tensors = task.instantiate(config)
    mod = tw.build(s, tensors, target=task.target)
    arrays, expected = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    for got, want in zip(arrays[len(arrays) - len(expected):], expected, strict=True):
        scale = float(np.abs(want).max()) or 1.0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=f"{task} {config}")


@pytest.mark.parametrize("name,args", [pytest.param(n, a, id=f"{n}{a}") for n, a in CASES])
def test_operator_matches_numpy(name, args):
    task = Task(name, args, TARGET)
    assert task.flop and task.flop > 0
    for config in _configs(task):
        _check(task, config)


def test_every_template_is_registered_with_reference_and_flop():
    from tilewise.autotune.task import list_templates

    names = {t.name for t in list_templates() if t.reference and t.flop}
    assert {"conv2d_nchw", "conv2d_nhwc", "depthwise_conv2d_nchw", "max_pool2d", "avg_pool2d",
            "softmax", "layer_norm", "batch_matmul", "dense", "gemm",
            "conv2d_nchw_winograd"} <= names


def test_gemm_fallback_for_a_few_rows_streams_b():
    """Up to 8 rows: one row tile as tall as the rows, B streamed past it in place (no
    pass over all of B to pack it for them), in runs of 16 * nr columns."""
    for M in (1, 3, 8):
        task = Task("gemm", (M, 4096, 64), TARGET)
        fb = task.config_space.fallback
        assert (fb["stream_b"].val, fb["mr"].val, fb["pack"].val) == (True, M, "none")
        text = str(tw.lower(*task.instantiate(fb)))
        assert f"vectorized for j.c in [0, {16 * fb['nr'].val})" in text
    assert not Task("gemm", (9, 4096, 64), TARGET).config_space.fallback["stream_b"].val
    dense = Task("dense", (3, 1000, 37, "bias+relu"), TARGET)
    _check(dense, config_with(dense, stream_b=True, mr=3, pack="none", kernel="loops"))


def test_streaming_b_needs_it_in_place_and_few_rows():
    task = Task("gemm", (3, 256, 64), TARGET)
    with pytest.raises(InvalidConfigError, match="streaming B reads it in place"):
        task.instantiate(config_with(task, stream_b=True, pack="root"))
    tall = Task("gemm", (17, 256, 64), TARGET)
    with pytest.raises(InvalidConfigError, match="at most 16 rows: C has 17"):
        tall.instantiate(config_with(tall, stream_b=True, pack="none", kernel="loops", kc=0,
                                     pack_a=False, stream_c=False, pack_prefetch=0))
    # streaming B makes no register tile: mr does not matter there
    space = task.config_space
    streamed = config_with(task, stream_b=True, mr=2)
    _check(task, streamed)
    assert space.canonical_index(streamed.index) == space.canonical_index(
        config_with(task, stream_b=True, mr=12).index)


def test_conv2d_fallback_is_a_full_register_tile():
    """The untuned config of a ResNet layer uses 2 vectors of output channels (one
    where a core starts one full-width FMA a cycle) and a register tile that divides
    the output width and fits the vector registers as two vectors would."""
    task = Task("conv2d_nchw", (1, 128, 28, 28, 128, 3, 3, 1, 1), TARGET)
    fb = task.config_space.fallback
    target = tw.target.Target.from_str(TARGET)
    lanes = target.vector_lanes(4)
    assert fb["oc_bn"].val == (2 if target.fma_per_cycle >= 2 else 1) * lanes
    assert 28 % fb["reg_n"].val == 0 and fb["reg_n"].val * 2 <= 28


def test_conv2d_fallback_pads_a_row_it_cannot_divide_least():
    """resnet-c4-3x3's rows are 14 wide: where no tile of at least half the widest
    that fits divides them (AVX2: 6 columns of two vectors), the fallback takes the one
    that pads them least (5 columns over 15, not 4 over 16)."""
    task = Task("conv2d_nchw", (1, 256, 14, 14, 256, 3, 3, 1, 1), TARGET)
    target = tw.target.Target.from_str(TARGET)
    widest = min(14, (target.vector_registers - 4) // 2)
    reg_n = task.config_space.fallback["reg_n"].val
    padded = -(-14 // reg_n) * reg_n
    assert padded == min(-(-14 // r) * r for r in range(-(-widest // 2), widest + 1))


def test_conv2d_edge_tiles_compute_only_the_row_inside():
    """Rows the tiles do not divide (14 in tiles of 5): the last tile of each row runs
    the micro-kernel on its 4 columns inside (the ``_redge`` copy), with kw fused into
    its sum or not, each tile's whole sum or the ic blocks outermost; a row the tiles
    divide keeps the plain kernel."""
    task = Task("conv2d_nchw", (1, 16, 14, 14, 32, 3, 3, 1, 1), TARGET)
    if "ukr" not in [e.val for e in task.config_space.knob("kernel").entities]:
        pytest.skip("no micro-kernel on this host")
    for fuse_kw, ic_outer in itertools.product((False, True), (False, True)):
        config = config_with(task, kernel="ukr", reg_n=5, oc_bn=2 * LANES,
                             fuse_kw=fuse_kw, ic_outer=ic_outer, order="ic_khkw")
        s, tensors = task.instantiate(config)
        assert "_redge_" in tw.build(s, tensors, target=task.target).source
        _check(task, config)
    s, tensors = task.instantiate(config_with(task, kernel="ukr", reg_n=2, oc_bn=2 * LANES))
    assert "_redge_" not in tw.build(s, tensors, target=task.target).source


def test_pointwise_conv2d_is_a_gemm_with_and_without_packing():
    """1x1 stride-1 convolutions take the GEMM path: every (pack, nr, order, pack_weights)
    choice of the loop kernel is right, including panels that do not divide the 35
    positions, weights packed into 2-row tiles that do not divide the 11 channels, and
    a batch of 2."""
    task = Task("conv2d_nchw", (2, 19, 5, 7, 11, 1, 1, 1, 0, 1, "float32", "residual"), TARGET)
    assert {k.name for k in task.config_space.knobs} >= {"mr", "nr", "pack", "pack_weights"}
    # pack none / root / per panel; packed weights with the one panel wider than 35
    for pack, nr, order, packed in itertools.product(("none", "root", "panel"),
                                                     (LANES, 2 * LANES, 3 * LANES, 4 * LANES),
                                                     ("kf", "fk"), (False, True)):
        if packed and nr != 3 * LANES:
            continue
        _check(task, config_with(task, pack=pack, nr=nr, order=order, pack_weights=packed,
                                 mr=2, block_m=2, kernel="loops", unroll_k=1))


def test_pointwise_conv2d_stores_whole_vectors():
    """The fused (h, w) index folds back into one flat position: no division left in
    the inner loops of the generated C."""
    task = Task("conv2d_nchw", (1, 32, 6, 6, 16, 1, 1, 1, 0), TARGET)
    s, tensors = task.instantiate(config_with(task, vectors="pixels", kernel="loops",
                                              pack="panel", prefetch=False, kc=0))
    src = tw.build(s, tensors, target=task.target).source
    inner = src[src.index("rc_outer"):]
    assert "/ 6" not in inner and "% 6" not in inner


@pytest.mark.parametrize("args", [
    (2, 19, 5, 7, 40, 1, 1, 1, 0, 1, "float32", "bias+residual+relu6"),
    (1, 128, 7, 7, 48, 1, 1, 1, 0),
    (1, 13, 3, 5, 11, 1, 1, 1, 0, 1, "float32", "bias+gelu"),
], ids=["batch2-residual", "kc", "narrow"])
def test_pointwise_conv2d_tiles_over_output_channels(args):
    """``vectors="channels"``: tiles of positions by output channels, the output summed
    as NHWC, the epilogue applied there, then transposed back. Right where the tiles
    divide neither the 35 positions nor the 40 channels (the transpose in blocks of 8),
    with the micro-kernel or the loops, either order, blocks of row tiles, C in blocks
    (kc), a batch of 2; 11 channels (no block) and 15 positions under one tile."""
    task = Task("conv2d_nchw", args, TARGET)
    if "channels" not in [e.val for e in task.config_space.knob("vectors").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    C, K = args[1], args[4]
    picks = [dict(kernel="loops", mr=4, nr=LANES, order="fk", block_m=2, unroll_k=2),
             dict(kernel="loops", mr=3, nr=2 * LANES, order="kf", block_m=1, unroll_k=1)]
    if K >= LANES:  # the micro-kernel's tile lies inside the result
        picks += [dict(kernel="ukr", mr=7, nr=LANES, order="kf", block_m=2),
                  dict(kernel="ukr", mr=4, nr=2 * LANES, order="fk", block_m=1)]
    if C == 128:
        picks += [dict(kernel="ukr", mr=7, nr=LANES, order="fk", block_m=1, kc=64)]
    for pick in picks:
        config = config_with(task, vectors="channels", pack_weights=True, **{"kc": 0, **pick})
        task.instantiate(config)  # not rejected
        _check(task, config)
    # over the channels both operands are packed whole: pack_weights does not matter
    space = task.config_space
    unpacked = config_with(task, vectors="channels", pack_weights=False)
    assert space.canonical_index(unpacked.index) == space.canonical_index(
        config_with(task, vectors="channels", pack_weights=True).index)


def test_conv2d_accepts_only_tiles_it_can_lower():
    """A 1x1 convolution over 28x40 positions, tiles of 3 positions by output channels
    through the micro-kernel, in blocks of 8 row tiles that 374 tiles do not fill: the
    template refuses what lowering cannot do."""
    task = Task("conv2d_nchw", (1, 32, 28, 40, 96, 1, 1, 1, 0), TARGET)
    space = task.config_space
    if "channels" not in [e.val for e in space.knob("vectors").entities] or \
            "ukr" not in [e.val for e in space.knob("kernel").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    try:
        made = task.instantiate(config_with(task, vectors="channels", kernel="ukr", mr=3))
    except InvalidConfigError:
        return
    tw.lower(*made)


def test_conv2d_fallback_packs_weights_larger_than_l2_per_chunk():
    """Weights larger than one core's L2 (resnet-c5's 9.4 MB) are packed chunk by chunk
    inside the parallel loop, those that fit (resnet-c2's 0.15 MB) once up front."""
    target = tw.target.Target.from_str(TARGET)
    for args in [(1, 512, 7, 7, 512, 3, 3, 1, 1), (1, 128, 28, 28, 128, 3, 3, 1, 1),
                 (1, 64, 56, 56, 64, 3, 3, 1, 1)]:
        weights = args[1] * args[4] * 9 * 4
        fb = Task("conv2d_nchw", args, TARGET).config_space.fallback
        assert fb["kernel_pack"].val == ("per_chunk" if weights > target.l2_bytes else "root")


@pytest.mark.parametrize("args", [
    (2, 8, 11, 11, 20, 3, 3, 1, 1, 1, "float32", "bias+relu"),
    (1, 12, 13, 9, 16, 5, 3, 2, (2, 1)),
    (1, 16, 8, 10, 24, 3, 3, 1, 2, 2),
], ids=["batch2-epilogue", "stride2-5x3", "dilation2"])
def test_conv2d_ic_blocks_outermost(args):
    """``ic_outer``: one buffer of sums per chunk, each weight block packed just before
    the tiles read it; right with the micro-kernel and the loops, kw fused into its sum
    or not, tiles that pad the row, several rows per outer step, weights packed up
    front or per block, output channels that do not fill the last block."""
    task = Task("conv2d_nchw", args, TARGET)
    space = task.config_space
    kernels = [e.val for e in space.knob("kernel").entities]
    dilated = len(args) > 9 and args[9] != 1  # kw is not fused where dilated
    fuse = [e.val for e in space.knob("fuse_kw").entities if not (e.val and dilated)]
    ic = [e.val for e in space.knob("ic_bn").entities]
    for kernel, fuse_kw, reg_n, oh_tile, kernel_pack, ic_bn in [
            (kernels[-1], fuse[-1], 4, 1, "per_chunk", ic[0]),
            (kernels[-1], False, 3, 2, "root", ic[-1]),
            ("loops", False, 2, 4, "per_chunk", ic[0])]:
        config = config_with(task, ic_outer=True, kernel=kernel, fuse_kw=fuse_kw,
                             reg_n=reg_n, oh_tile=oh_tile, kernel_pack=kernel_pack,
                             ic_bn=ic_bn, order="ic_khkw")
        task.instantiate(config)  # not rejected
        _check(task, config)
    # with the ic blocks outermost the schedule orders the sum itself: order does not matter
    assert space.canonical_index(config_with(task, ic_outer=True, order="khkw_ic").index) == (
        space.canonical_index(config_with(task, ic_outer=True, order="ic_khkw").index))


def test_conv2d_fallback_puts_ic_blocks_outermost_where_a_row_outgrows_l2():
    """Where one row of tiles reads more than half of L2 (its chunk's weights and the
    input rows under it: resnet-c5's 342 KiB on AVX2), the ic blocks go outermost;
    where it reads little (resnet-c3's 117 KiB), each tile runs its whole sum."""
    target = tw.target.Target.from_str(TARGET)
    lanes = target.vector_lanes(4)
    for args in [(1, 512, 7, 7, 512, 3, 3, 1, 1), (1, 128, 28, 28, 128, 3, 3, 1, 1)]:
        C, W = args[1], args[3]
        row_reads = 4 * C * 3 * (3 * 2 * lanes + W + 2)
        fb = Task("conv2d_nchw", args, TARGET).config_space.fallback
        assert fb["ic_outer"].val == (2 * row_reads > target.l2_bytes)


def test_gemm_packs_b_per_panel_in_either_order():
    """``pack="panel"``: each column panel of B is packed inside the parallel loop, just
    before its tiles; right for ragged panels (37 columns) and an epilogue."""
    task = Task("dense", (13, 37, 11, "bias+relu"), TARGET)
    for order, nr in itertools.product(("ij", "ji"), (LANES, 2 * LANES, 3 * LANES, 4 * LANES)):
        _check(task, config_with(task, pack="panel", mr=2, block_m=2, kernel="loops",
                                 pack_panels=1, order=order, nr=nr, unroll_k=1))


def test_gemm_reads_a_tile_packed():
    """``pack_a``: A copied row tile by row tile, each k's mr values side by side; right
    where the tiles do not divide the 13 rows, with B packed or in place, and an epilogue."""
    task = Task("dense", (13, 37, 11, "bias+relu"), TARGET)
    for mr, order, pack in [(4, "ij", "none"), (5, "ji", "panel"), (3, "ji", "root")]:
        config = config_with(task, pack_a=True, kernel="loops", mr=mr, order=order, pack=pack,
                             nr=16, unroll_k=1, pack_prefetch=8 * (pack == "panel"))
        s, tensors = task.instantiate(config)
        assert "Ap" in {stage.op.name for stage in s.stages}
        _check(task, config)


def test_gemm_copy_of_each_panel_asks_for_rows_of_b_ahead():
    """``pack_prefetch``: copying a panel, each row of B (N apart, its own page) is asked
    for 8 rows before it is read; refused where B is not copied panel by panel."""
    task = Task("gemm", (24, 300, 40), TARGET)
    config = config_with(task, pack="panel", pack_prefetch=8, pack_panels=1, kernel="loops",
                         order="ji", stream_b=False, stream_c=False, mr=4, nr=16)
    s, tensors = task.instantiate(config)
    hints = collect(tw.lower(s, tensors).body, Prefetch)
    assert hints and {h.buffer.name for h in hints} == {"B"}
    _check(task, config)
    for pack in ("root", "none"):
        with pytest.raises(InvalidConfigError, match="panel by panel"):
            task.instantiate(config_with(task, pack=pack, pack_prefetch=8))


def test_gemm_fetches_the_next_groups_rows_of_b_while_computing():
    """``fetch_next``: while a group of panels computes, the rows of B that the next
    group's copy reads are asked into L2, a share before each row block; right on ragged
    groups and rows (101 columns, 13 rows), with the loops or the micro-kernel; not read
    where B is not copied per group, columns outermost."""
    for name, args in [("dense", (13, 101, 11, "bias+relu")), ("gemm", (24, 300, 40))]:
        task = Task(name, args, TARGET)
        kernels = [e.val for e in task.config_space.knob("kernel").entities][:2]
        # the micro-kernel takes whole groups only: 7 and 19 panels
        for kernel, group in [("loops", 1), ("loops", 2), (kernels[-1], 1)]:
            config = config_with(task, pack="panel", pack_panels=group, order="ji",
                                 kernel=kernel, fetch_next=True, pack_prefetch=0, nr=LANES,
                                 mr=2, block_m=2,
                                 unroll_k=1, stream_c=False)
            s, tensors = task.instantiate(config)
            hints = collect(tw.lower(s, tensors).body, Prefetch)
            assert {(h.buffer.name, h.level) for h in hints} == {("B", 2)}
            _check(task, config)
    task = Task("gemm", (24, 300, 40), TARGET)
    space = task.config_space
    for choices in (dict(pack="root"), dict(pack="panel", order="ij", pack_panels=1)):
        config = config_with(task, fetch_next=True, pack_prefetch=0, **choices)
        kernel = space.get(space.canonical_index(config.index))  # fetch_next does not matter
        assert kernel.as_dict() == {**config.as_dict(), "fetch_next": kernel["fetch_next"]}
        assert kernel["fetch_next"].val is False


def test_batch_matmul_schedules_match_numpy():
    """batch_matmul: the gemm schedule per batch (rows or columns outermost, blocks of
    row tiles, A packed or in place) and the batches-across-the-cores schedule, on ragged
    tiles (13 rows, 37 columns)."""
    task = Task("batch_matmul", (3, 13, 37, 11), TARGET)
    picks = [dict(pack="at_batch", order="ij", block_m=1),
             dict(pack="root", order="ji", block_m=2),
             dict(pack="root", order="ij", block_m=4, pack_a=True),
             dict(pack="root", order="ji", pack_a=True, mr=6, nr=2 * LANES)]
    for choices in picks:
        config = config_with(task, kernel="loops", **{"mr": 4, "nr": LANES, "unroll_k": 1,
                                                      **choices})
        s, tensors = task.instantiate(config)
        assert ("Ap" in {stage.op.name for stage in s.stages}) == choices.get("pack_a", False)
        _check(task, config)
    with pytest.raises(InvalidConfigError, match="a batch at a time"):
        task.instantiate(config_with(task, kernel="loops", pack="at_batch", pack_a=True))


@pytest.mark.parametrize("name,args", [("dense", (13, 101, 11, "bias+relu")),
                                       ("conv2d_nchw", (2, 19, 5, 7, 11, 1, 1, 1, 0))])
def test_panels_packed_in_groups(name, args):
    """``pack_panels``: several column panels packed at once, the last group short
    (101 columns are 7 panels of 16, 3 of 48 on AVX-512) with the loops; the
    micro-kernel takes whole groups only; only with columns outermost."""
    task = Task(name, args, TARGET)
    space = task.config_space
    orders = [e.val for e in space.knob("order").entities]
    kernels = [e.val for e in space.knob("kernel").entities]
    for order, nr, group in itertools.product(orders, (LANES, 2 * LANES, 3 * LANES), (2, 4, 8)):
        config = config_with(task, pack="panel", pack_panels=group, order=order, nr=nr,
                             mr=2, unroll_k=1, kernel="loops")
        if order in ("ij", "kf"):
            with pytest.raises(InvalidConfigError, match="several panels"):
                task.instantiate(config)
            continue
        _check(task, config)
        if name == "dense" and "ukr" in kernels:
            ukr = space.with_choices(config, kernel="ukr")
            panels = -(-args[1] // nr)
            if panels % group:
                with pytest.raises(InvalidConfigError, match=f"whole groups of {group} panels"):
                    task.instantiate(ukr)
            else:
                _check(task, ukr)
