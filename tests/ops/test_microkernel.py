"""Tensorize with the hand-written GEMM micro-kernel, against NumPy."""

import dataclasses
import re

import numpy as np
import pytest

import tilewise as tw
from tilewise import te
from tilewise.autotune import Task
from tilewise.autotune.space import ConfigSpace
from tilewise.errors import InvalidConfigError, LowerError
from tilewise.ops.gemm import define_gemm_space
from tilewise.ops.microkernel import gemm_microkernel, micro_tile_width, simd_fp32
from tw_testing import accepted_configs, config_with

pytestmark = pytest.mark.compiles

HOST = tw.Target.from_str("c")
#: The host's fp32 lanes. Tiles are sized in vectors: ``W`` columns (32 on AVX-512, 16
#: on AVX2) in at most 6 rows fit both ISAs' registers beside their operands.
L = HOST.vector_lanes(4)
W = 2 * L
needs_ukr = pytest.mark.skipif(not simd_fp32(HOST, "float32"),
                               reason="no micro-kernel for this host's vectors")


def _matches_numpy(task, config, kernel: str) -> None:
    """Build ``config``: the micro-kernel ``kernel`` is in its source, and its result is
    NumPy's."""
    mod = tw.build(*task.instantiate(config), target=task.target)
    assert kernel in mod.source
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4, err_msg=str(config))


def _ukr_task(name: str, args: tuple) -> Task:
    """The task on this machine, skipped where its space has no micro-kernel choice."""
    import tilewise.ops  # noqa: F401
    task = Task(name, args, "c -mcpu=native -cores=1")
    if "ukr" not in [e.val for e in task.config_space.knob("kernel").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    return task


def _packed_gemm(M, N, K, nr):
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((K, N), name="B")
    Bp = te.compute((N // nr, K, nr), lambda jo, k, ji: B[k, jo * nr + ji], name="Bp")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * Bp[j // nr, k, j % nr], axis=k), name="C")
    return A, B, C


@pytest.mark.parametrize("split_k", [None, 16])
def test_tensorized_gemm_matches_numpy(split_k):
    M, N, K, mr, nr = 36, 2 * W, 48, 6, W
    A, B, C = _packed_gemm(M, N, K, nr)
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    (k,) = s[C].op.reduce_axis
    io, jo, ii, ji = s[C].tile(i, j, mr, nr)
    if split_k is None:
        s[C].reorder(io, jo, ii, ji, k)
        s[C].tensorize(ii, gemm_microkernel(mr, nr, K, L))
    else:
        ko, ki = s[C].split(k, split_k)
        s[C].reorder(io, jo, ko, ii, ji, ki)
        s[C].tensorize(ii, gemm_microkernel(mr, nr, split_k, L))
    s[C].parallel(io)
    mod = tw.build(s, [A, B, C])
    assert "tw_gemm_ukr" in mod.source
    rng = np.random.default_rng(0)
    a = rng.random((M, K), dtype=np.float32)
    b = rng.random((K, N), dtype=np.float32)
    c = np.zeros((M, N), np.float32)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-4)


def _lower_whole_k_tiles(tensors, mr: int, nr: int, intrin):
    """Lower C tiled mr x nr over its whole k, each tile ``intrin``."""
    A, B, C = tensors
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    (k,) = s[C].op.reduce_axis
    io, jo, ii, ji = s[C].tile(i, j, mr, nr)
    s[C].reorder(io, jo, ii, ji, k)
    s[C].tensorize(ii, intrin)
    return tw.lower(s, [A, B, C])


def test_packed_a_kernel_needs_a_tile_packed_view():
    """``a_packed``: A must be read with each k's mr values side by side; A's rows read
    in place are refused by name."""
    with pytest.raises(LowerError, match="tile-packed"):
        _lower_whole_k_tiles(_packed_gemm(16, 32, 16, 32), 8, 32,
                             gemm_microkernel(8, 32, 16, L, a_packed=True))


@needs_ukr
def test_one_row_tiles_read_a_packed():
    """A 1-row tile's packed A is A itself, its row stride the step to the next tile."""
    import tilewise.ops  # noqa: F401

    task = Task("gemm", (8, 2 * W, 256), "c -cores=1")
    s, tensors = task.instantiate(config_with(task, kernel="ukr+prefetch", mr=1, nr=W,
                                              pack="none", pack_a=True, kc=128, block_m=1,
                                              stream_b=False, pack_prefetch=0))
    mod = tw.build(s, tensors, target=task.target)
    assert "_ap_" in mod.source
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4)


def test_tensorize_extent_mismatch_is_an_error():
    with pytest.raises(LowerError, match="tensorize"):
        _lower_whole_k_tiles(_packed_gemm(32, 32, 32, 32), 4, 32, gemm_microkernel(8, 32, 32, L))


@needs_ukr
@pytest.mark.parametrize("name,args,knobs", [
    # B (or the 1x1 conv's NCHW data) packed or read in place; the next panel fetched
    # ahead where a buffer holds it
    ("gemm", (24, 64, 37),
     [{"order": o, "pack": p, "kernel": k, "pack_a": a, "pack_prefetch": 8 * (p == "panel")}
      for o in ("ij", "ji") for p in ("none", "root", "panel")
      for k in ("ukr", "ukr+prefetch") for a in (False, True)
      if not (k == "ukr+prefetch" and p == "panel") and not (a and o == "ij")]),
    ("dense", (16, 32, 19, "bias+gelu"),
     [{"order": o, "pack": p, "pack_prefetch": 8 * (p == "panel")} for o in ("ij", "ji")
      for p in ("none", "panel")]),
    ("batch_matmul", (3, 16, 64, 24),
     [{"order": o, "pack": p, "pack_a": a} for o in ("ij", "ji") for p in ("root", "at_batch")
      for a in (False, True)]),
    ("conv2d_nchw", (2, 24, 8, 12, 16, 1, 1, 1, 0),
     [{"order": o, "pack": p, "prefetch": f, "pack_weights": w} for o in ("kf", "fk")
      for p in ("none", "root", "panel") for f in (False, True) for w in (False, True)
      if not (f and p == "panel") and not (w and o == "kf")]),
    # tiles over output channels: the data tile-packed (the kernel's packed A), 35
    # positions and 40 channels in ragged tiles
    ("conv2d_nchw", (2, 24, 7, 5, 40, 1, 1, 1, 0, 1, "float32", "bias+relu6"),
     [{"vectors": "channels", "pack_weights": True, "order": o, "block_m": b, "kc": 0}
      for o in ("kf", "fk") for b in (1, 2)]),
])
def test_templates_tensorize_their_tile(name, args, knobs):
    """The gemm-shaped templates' ``kernel="ukr"`` choice: the register tile is the
    micro-kernel, the epilogue still runs as the tile is stored."""
    import tilewise.ops  # noqa: F401
    from tilewise.autotune import Task

    task = Task(name, args, "c -cores=2")
    for extra in knobs:
        config = config_with(task, **{"kernel": "ukr", "mr": 4, "nr": W, **extra})
        _matches_numpy(task, config, f"tw_gemm_ukr_4x{W}")


@needs_ukr
@pytest.mark.parametrize("name,args,knobs", [
    # 16 row tiles in blocks of 2 (or 8), k in blocks of 128 or 256; B packed or in place
    ("gemm", (64, 64, 512),
     [{"order": o, "pack": p, "kernel": k, "kc": kc, "block_m": bm, "stream_c": False,
       "pack_prefetch": 8 * (p == "panel")}
      for o in ("ij", "ji") for p in ("none", "root", "panel") for k in ("ukr", "ukr+prefetch")
      for kc, bm in ((128, 2), (256, 8)) if not (k == "ukr+prefetch" and p == "panel")]
     + [{"order": "ji", "pack": "panel", "pack_panels": 2, "kc": 128, "block_m": 2,
         "stream_c": False},
        {"order": "ji", "pack": "panel", "kc": 128, "block_m": 2, "pack_a": True,
         "stream_c": False}]),
    ("dense", (16, 32, 256, "bias+gelu"),
     [{"order": o, "pack": p, "kc": 128, "block_m": 2, "pack_prefetch": 8 * (p == "panel")}
      for o in ("ij", "ji") for p in ("none", "panel")]),
    ("batch_matmul", (2, 16, 32, 256),
     [{"order": o, "pack": p, "kc": 128, "block_m": 2, "direct_c": False}
      for o in ("ij", "ji") for p in ("root", "at_batch")]),
    # a 1x1 convolution's 128 input channels in blocks of 64, weights packed or in place
    ("conv2d_nchw", (2, 128, 4, 16, 16, 1, 1, 1, 0),
     [{"order": o, "pack": p, "kc": 64, "block_m": 2, "pack_weights": w, "prefetch": False}
      for o in ("kf", "fk") for p in ("none", "panel") for w in (False, True)]),
])
def test_k_blocked_tiles_match_numpy(name, args, knobs):
    """``kc``: a block of row tiles summed over k slice by slice in the accumulator,
    the epilogue applied once the last slice is in."""
    import tilewise.ops  # noqa: F401

    task = Task(name, args, "c -cores=2")
    for extra in knobs:
        config = config_with(task, **{"kernel": "ukr", "mr": 4, "nr": W, **extra})
        _matches_numpy(task, config, f"tw_gemm_ukr_4x{W}x{extra['kc']}")


@needs_ukr
def test_batch_matmul_fallback_is_the_micro_kernel_on_whole_tiles():
    import tilewise.ops  # noqa: F401

    wide = micro_tile_width(HOST, L)  # the fallback's tile: 64 on AVX-512, 16 on AVX2
    task = Task("batch_matmul", (2, 8, 64, 16), "c -cores=2")
    s, tensors = task.instantiate(task.config_space.fallback)
    mod = tw.build(s, tensors, target=task.target)
    assert f"tw_gemm_ukr_4x{wide}x16" in mod.source
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4)
    narrow = Task("batch_matmul", (2, 8, wide - 8, 16), "c -cores=2").config_space.fallback
    assert narrow["kernel"].val == "loops"  # narrower than one tile
    # the last panel padded; rows that no 4-row tile divides in 6-row tiles over A in
    # place, the last one of each batch shifted back inside
    for args, mr in [((2, 8, 100, 16), 4), ((2, 13, 197, 16), 6), ((2, 13, 64, 16), 6)]:
        ragged = Task("batch_matmul", args, "c -cores=2")
        fallback = ragged.config_space.fallback
        assert (fallback["kernel"].val, fallback["mr"].val, fallback["pack_a"].val) == \
            ("ukr", mr, False)
        mod = tw.build(*ragged.instantiate(fallback), target=ragged.target)
        arrays, (want,) = ragged.reference()(np.random.default_rng(0))
        mod(*arrays)
        np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("args,knobs", [
    ((2, 8, 64, 16), {"mr": 4, "order": "ji", "pack": "at_batch"}),
    ((2, 8, 64, 16), {"mr": 4, "order": "ij", "pack": "root", "block_m": 2}),
    ((2, 13, 64, 16), {"mr": 6, "order": "ji", "pack": "at_batch"}),  # last tile shifted
    ((3, 12, 128, 20), {"mr": 6, "order": "ji", "pack": "root", "pack_a": True}),
])
def test_batch_matmul_tiles_summed_in_c_itself(args, knobs):
    """``direct_c``: the micro-kernel sums each tile in C, with no local tile to copy
    out; only for the micro-kernel over the whole k, where C is the sum itself."""
    task = _ukr_task("batch_matmul", args)
    config = config_with(task, **{"kernel": "ukr", "nr": W, "kc": 0, "direct_c": True,
                                  **knobs})
    s, tensors = task.instantiate(config)
    assert not any(stage.scope.value == "local" for stage in s.stages)
    _matches_numpy(task, config, f"tw_gemm_ukr_{knobs['mr']}x{W}x{args[3]}")
    with pytest.raises(InvalidConfigError, match="summing each tile in C"):
        task.instantiate(config_with(task, **{**knobs, "direct_c": True, "kernel": "loops"}))
    ragged = _ukr_task("batch_matmul", (2, 8, 3 * L, 16))  # the last panel padded
    with pytest.raises(InvalidConfigError, match="summing each tile in C"):
        ragged.instantiate(config_with(ragged, kernel="ukr", mr=4, nr=W, direct_c=True))


@needs_ukr
@pytest.mark.parametrize("name,args,knobs", [
    # rows and columns that no tile divides: packed, A and B pad them to whole tiles
    ("gemm", (13, 100, 11),
     [{"pack": p, "pack_a": True, "order": o, "pack_prefetch": 8 * (p == "panel")}
      for p in ("root", "panel") for o in ("ij", "ji") if not (p == "panel" and o == "ij")]),
    ("dense", (13, 100, 11, "bias+relu"), [{"pack": "panel", "pack_a": True, "order": "ji"}]),
    ("batch_matmul", (2, 13, 40, 7),
     [{"pack": p, "pack_a": True, "order": "ji"} for p in ("root", "at_batch")]),
    ("conv2d_nchw", (1, 24, 5, 7, 13, 1, 1, 1, 0),
     [{"pack": p, "pack_weights": True, "prefetch": False, "order": "fk"}
      for p in ("root", "panel")]),
])
def test_micro_kernel_tiles_overhang_the_edges_of_packed_operands(name, args, knobs):
    """The sum runs over whole tiles of the zero-padded copies; the tiles at the edges
    are computed whole by the micro-kernel and only their copy out stops at the edge."""
    import tilewise.ops  # noqa: F401

    task = Task(name, args, "c -cores=2")
    for extra in knobs:
        config = config_with(task, **{"kernel": "ukr", "mr": 4, "nr": W, **extra})
        _matches_numpy(task, config, f"tw_gemm_ukr_4x{W}")


@needs_ukr
@pytest.mark.parametrize("name,args", [("gemm", (12, 100, 256)),
                                       ("batch_matmul", (2, 12, 197, 256))])
def test_the_last_tile_computes_only_the_columns_it_holds(name, args):
    """100 columns in tiles of four vectors (64 wide on AVX-512, in 4 rows; 32 on
    AVX2, in 2): the last tile holds 36 (4) of them, and the kernel computes three
    vectors of it (one), not four (197: 5 of 64 or 32, one vector); whole k or
    blocked, where the tile is summed slice by slice."""
    import tilewise.ops  # noqa: F401

    task = Task(name, args, "c -cores=2")
    mr = 4 if L == 16 else 2
    for extra, form in [({}, "_edge_body("), ({"kc": 128}, "_edge_update(")]:
        config = config_with(task, **{"kernel": "ukr", "mr": mr, "nr": 4 * L, "order": "ji",
                                      "block_m": 1, **extra})
        _matches_numpy(task, config, form)
    whole = Task(name, (*args[:-2], 128, args[-1]), "c -cores=2")
    config = config_with(whole, kernel="ukr", mr=mr, nr=4 * L, order="ji", block_m=1)
    source = tw.build(*whole.instantiate(config), target=whole.target).source
    assert f"tw_gemm_ukr_{mr}x{4 * L}" in source and "_edge" not in source


def test_edge_tiles_stay_register_tiles():
    """gemm 24x100: the last panel has 4 of its 32 (16) columns, yet every loop that accumulates
    the tile has a constant extent (loops of run-time length there took gemm
    1000x1000x1000 from 73 GFLOP/s to 12); only the copy out is cut to the edge."""
    import tilewise.ops  # noqa: F401

    task = Task("gemm", (24, 100, 16), "c -cores=2")
    config = config_with(task, kernel="loops", mr=4, nr=W, pack="root", pack_prefetch=0)
    lines = str(tw.lower(*task.instantiate(config))).splitlines()
    accumulating = [lines[n - 1].strip() for n in range(1, len(lines))
                    if lines[n].strip().startswith("C_acc[")]
    assert accumulating and all(re.fullmatch(r".*for \S+ in \[0, \d+\):", loop)
                                for loop in accumulating), accumulating
    assert any("_hi" in line for line in lines)  # the copy out's edge
    mod = tw.build(*task.instantiate(config), target=task.target)
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    mod(*arrays)
    np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4)


def test_micro_kernel_tile_larger_than_the_output_is_rejected():
    task = _ukr_task("conv2d_nchw", (1, 32, 3, 3, 16, 1, 1, 1, 0))
    with pytest.raises(InvalidConfigError, match=f"4x{W} tile is larger than out's 16x9"):
        task.instantiate(config_with(task, kernel="ukr", mr=4, nr=W, pack="root",
                                     prefetch=False))


def test_k_blocking_needs_the_micro_kernel_and_whole_blocks():
    task = _ukr_task("gemm", (48, 64, 384))
    with pytest.raises(InvalidConfigError, match="micro-kernel's"):
        task.instantiate(config_with(task, kernel="loops", mr=4, nr=W, kc=128,
                                     stream_c=False))
    with pytest.raises(InvalidConfigError, match="12 row tiles, in blocks of 8"):
        task.instantiate(config_with(task, kernel="ukr", mr=4, nr=W, kc=128, block_m=8,
                                     stream_c=False))
    # the space offers only the sizes that cut k into two or more whole blocks, and only
    # beside the micro-kernel
    for K, sizes in [(384, [0, 128]), (512, [0, 128, 256]), (128, [0]), (37, [0])]:
        space = Task("gemm", (48, 64, K), "c -cores=1").config_space
        assert [e.val for e in space.knob("kc").entities] == sizes
    sse = dataclasses.replace(tw.Target.from_str("c -cores=1"), vector_bits=128)
    space = ConfigSpace(sse)
    define_gemm_space(space, sse, "float32", 48, 64, 512)
    assert [e.val for e in space.knob("kc").entities] == [0]


@pytest.mark.parametrize("name,args,knobs", [
    ("gemm", (22, 64, 16), {"mr": 4, "nr": W, "pack": "root", "pack_prefetch": 0}),  # rows in
    ("gemm", (22, 72, 16), {"mr": 4, "nr": W, "pack": "none", "pack_prefetch": 0}),  # place, cols
    ("gemm", (38, 128, 40), {"mr": 6, "nr": W, "pack": "panel", "stream_c": True}),
    ("gemm", (38, 128, 40), {"mr": 6, "nr": W, "kernel": "ukr+prefetch", "pack": "root",
                             "pack_prefetch": 0}),
    ("dense", (20, 64, 16, "bias+relu"), {"mr": 6, "nr": W, "pack": "root",
                                          "pack_prefetch": 0}),
    ("batch_matmul", (2, 20, 64, 16), {"mr": 6, "nr": W, "pack_a": False}),
    ("conv2d_nchw", (1, 16, 5, 10, 20, 1, 1), {"mr": 6, "nr": L, "pack": "none", "kc": 0,
                                               "prefetch": False, "pack_weights": False}),
])
def test_micro_kernel_tiles_past_an_edge_read_in_place_shift_inwards(name, args, knobs):
    """Where the operand along an axis is read in place (not padded to whole tiles by
    a packed copy), the last tile moves back inside the edge and recomputes a few rows
    or columns: the tile stays whole, so the micro-kernel takes it."""
    task = _ukr_task(name, args)
    config = config_with(task, **{"kernel": "ukr", "kc": 0, **knobs})
    s, tensors = task.instantiate(config)
    assert "min((" in str(tw.lower(s, tensors))
    _matches_numpy(task, config, f"tw_gemm_ukr_{knobs['mr']}x{knobs['nr']}")


def test_micro_kernel_tiles_do_not_shift_where_k_is_blocked():
    """Blocked k sums each block of row tiles slice by slice in a local buffer of whole
    tiles; a shifted tile there would overlap its neighbour inside the block."""
    task = _ukr_task("gemm", (20, 64, 256))
    with pytest.raises(InvalidConfigError, match=f"whole 6x{W} tiles"):
        task.instantiate(config_with(task, kernel="ukr", mr=6, nr=W, kc=128, block_m=1,
                                     pack="root", stream_c=False))


def test_prefetch_needs_the_micro_kernel_and_a_buffer_holding_the_next_panel():
    task = _ukr_task("conv2d_nchw", (1, 24, 8, 8, 16, 1, 1, 1, 0))
    with pytest.raises(InvalidConfigError, match="packed panel by panel"):
        task.instantiate(config_with(task, kernel="ukr", mr=4, nr=W, pack="panel",
                                     prefetch=True))
    with pytest.raises(InvalidConfigError, match="micro-kernel's"):
        task.instantiate(config_with(task, kernel="loops", mr=4, nr=W, pack="none",
                                     prefetch=True))
    s, tensors = task.instantiate(config_with(task, kernel="ukr", mr=4, nr=W, pack="none",
                                              prefetch=True))
    # unpacked, the next panel is the next W positions of each data row
    source = tw.build(s, tensors, target=task.target).source
    assert f"_mm_prefetch((const char*)(b + {W} +" in source


def test_gemm_prefetches_the_next_panel_of_b_in_place_or_packed_whole():
    task = _ukr_task("gemm", (16, 64, 24))
    with pytest.raises(InvalidConfigError, match="packed panel by panel"):
        task.instantiate(config_with(task, kernel="ukr+prefetch", mr=4, nr=W, pack="panel"))
    # in place, the next panel is the next W columns of each row of B; packed whole,
    # the next 24 x W block
    for pack, ahead in [("none", W), ("root", 24 * W)]:
        s, tensors = task.instantiate(config_with(task, kernel="ukr+prefetch", mr=4, nr=W,
                                                  pack=pack, pack_prefetch=0))
        source = tw.build(s, tensors, target=task.target).source
        assert f"_mm_prefetch((const char*)(b + {ahead} +" in source


def test_views_follow_the_stage_layout_not_the_buffer_rank():
    """A (K, C, 1, 1) weight read as a[k, c] and an NCHW image read as b[c, h*W + w]:
    the kernel's row strides are C and H*W, not the buffers' second-last strides."""
    K, C, H, W, mr, nr = 16, 24, 4, 8, 8, 32
    wt = te.placeholder((K, C, 1, 1), name="wt")
    data = te.placeholder((C, H, W), name="data")
    rc = te.reduce_axis((0, C), name="rc")
    out = te.compute((K, H * W), lambda k, f: te.sum(wt[k, rc, 0, 0] * data[rc, f // W, f % W],
                                                     axis=rc), name="out")
    s = te.create_schedule(out.op)
    k, f = s[out].op.axis
    ko, fo, ki, fi = s[out].tile(k, f, mr, nr)
    s[out].reorder(ko, fo, ki, fi, rc)
    s[out].tensorize(ki, gemm_microkernel(mr, nr, C, L))
    mod = tw.build(s, [wt, data, out])
    rng = np.random.default_rng(0)
    w = rng.random((K, C, 1, 1), dtype=np.float32)
    x = rng.random((C, H, W), dtype=np.float32)
    y = np.zeros((K, H * W), np.float32)
    mod(w, x, y)
    np.testing.assert_allclose(y, w[:, :, 0, 0] @ x.reshape(C, H * W), rtol=1e-5, atol=1e-4)


def test_a_view_without_contiguous_rows_is_an_error():
    M, N, K = 8, 32, 16
    A = te.placeholder((M, K), name="A")
    B = te.placeholder((N, K), name="B")  # read transposed: b[k, j] steps K along j
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[j, k], axis=k), name="C")
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    s[C].reorder(i, j, k)
    s[C].tensorize(i, gemm_microkernel(M, N, K, L))
    with pytest.raises(LowerError, match="B is not read as contiguous rows"):
        tw.lower(s, [A, B, C])


@pytest.mark.parametrize("args", [
    (1, 16, 9, 11, 32, 3, 3, 1, 1),          # rows of the tile past the output's width
    (2, 8, 12, 13, 32, 5, 5, 2, 2),          # stride 2, padding 2, batch 2
    (1, 12, 8, 11, 16, 1, 7, 1, (0, 3)),     # a 1x7 kernel, ic blocks of 3, 4, 6 or 12
    (1, 16, 12, 12, 32, 3, 3, 1, 2, 2),      # dilation 2
])
def test_conv2d_register_tile_as_the_micro_kernel_matches_numpy(args):
    """The NCHW[x]c convolution's tile over (columns, output channels) is a GEMM over
    one block of input channels: every sampled config with ``kernel=ukr``."""
    task = Task("conv2d_nchw", args, "c -cores=2")
    space = task.config_space
    if "ukr" not in [e.val for e in space.knob("kernel").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    arrays, (want,) = task.reference()(np.random.default_rng(0))
    for cfg in accepted_configs(task, 3, seed=1, where=lambda c: c["kernel"].val == "ukr"):
        mod = tw.build(*task.instantiate(cfg), target=task.target)
        assert "tw_gemm_ukr" in mod.source
        arrays[-1][...] = 0
        mod(*arrays)
        np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4, err_msg=str(cfg))


@pytest.mark.parametrize("args", [
    (1, 3, 23, 21, 16, 7, 7, 2, 3),          # a stem: 3 channels, the 7-wide row is k=21
    (2, 8, 12, 13, 32, 5, 5, 2, 2),          # stride 2, padding 2, batch 2
    (1, 12, 8, 11, 16, 1, 7, 1, (0, 3)),     # a 1x7 kernel
])
def test_conv2d_micro_kernel_sums_a_whole_kernel_row(args):
    """``fuse_kw``: kw and the ic block fused into one k of the micro-kernel, read as one
    contiguous run of the packed input and weights."""
    task = Task("conv2d_nchw", args, "c -cores=2")
    if "ukr" not in [e.val for e in task.config_space.knob("kernel").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    assert task.config_space.fallback["fuse_kw"].val
    for ic_bn in task.config_space.knob("ic_bn").entities[:2]:
        config = config_with(task, fuse_kw=True, ic_bn=ic_bn.val)
        tile = f"{config['reg_n'].val}x{config['oc_bn'].val}x{args[6] * ic_bn.val}"
        _matches_numpy(task, config, f"tw_gemm_ukr_{tile}")


def test_fusing_kw_needs_the_micro_kernel_its_order_and_no_dilation():
    task = Task("conv2d_nchw", (1, 16, 12, 12, 32, 3, 3, 1, 2, 2), "c -cores=2")
    if "ukr" not in [e.val for e in task.config_space.knob("kernel").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    assert not task.config_space.fallback["fuse_kw"].val  # dilation 2
    with pytest.raises(InvalidConfigError, match="no dilation"):
        task.instantiate(config_with(task, fuse_kw=True))
    plain = Task("conv2d_nchw", (1, 16, 12, 12, 32, 3, 3, 1, 1), "c -cores=2")
    for knobs in ({"kernel": "loops"}, {"order": "khkw_ic"}):
        with pytest.raises(InvalidConfigError, match="fusing kw"):
            plain.instantiate(config_with(plain, fuse_kw=True, **knobs))


@needs_ukr
def test_streaming_c_sums_each_tile_in_place():
    """``stream_c``: no local tile; the micro-kernel sums C's tile over the whole k and
    stores it around the cache where C's rows start on cache lines, as usual where not
    (a NumPy array may start anywhere on 16 bytes)."""
    import tilewise.ops  # noqa: F401

    task = Task("gemm", (48, 128, 64), "c -cores=2")
    for extra in ({}, {"pack": "root", "pack_prefetch": 0}, {"pack": "none", "pack_prefetch": 0},
                  {"order": "ij", "pack_a": True}):
        config = config_with(task, kernel="ukr", mr=4, nr=W, kc=0, stream_c=True, **extra)
        s, tensors = task.instantiate(config)
        assert "C.local" not in str(tw.lower(s, tensors))
        mod = tw.build(s, tensors, target=task.target)
        assert "_nt_body(" in mod.source
        _matches_numpy_aligned_or_not(task, mod, str(extra))
    assert Task("gemm", (512, 512, 512), "c -cores=2").config_space.fallback["stream_c"].val


def _matches_numpy_aligned_or_not(task, mod, what) -> None:
    """Against NumPy, with the result on a cache line and off one (a NumPy array may
    start anywhere on 16 bytes), where the non-temporal stores give way to plain ones."""
    from tilewise.runtime import aligned

    arrays, (want,) = task.reference()(np.random.default_rng(0))
    for c in (aligned(arrays[-1]), np.empty(arrays[-1].size + 4, np.float32)[4:]):
        c = c.reshape(arrays[-1].shape)
        c[...] = 0
        mod(*arrays[:-1], c)
        np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-4, err_msg=what)


@needs_ukr
@pytest.mark.parametrize("args,knobs", [
    ((48, 128, 256), {"kernel": "loops", "mr": 6, "nr": W}),
    ((48, 128, 256), {"kc": 128, "block_m": 4}),
    ((48, 128, 256), {"kc": 128, "block_m": 2, "pack": "root", "pack_a": True,
                      "pack_prefetch": 0}),
])
def test_streaming_c_copies_a_local_tile_out_around_the_cache(args, knobs):
    """With a local tile (the loops kernel, or k blocked), ``stream_c`` copies each
    finished tile out of it with non-temporal stores; every thread fences its stores
    once, after its share of the parallel loop."""
    import tilewise.ops  # noqa: F401

    task = Task("gemm", args, "c -cores=2")
    config = config_with(task, **{"kernel": "ukr", "mr": 4, "nr": W, "kc": 0,
                                  "stream_c": True, **knobs})
    s, tensors = task.instantiate(config)
    mod = tw.build(s, tensors, target=task.target)
    assert "C.local" in str(tw.lower(s, tensors))
    assert f"tw_stream_tile_{config['mr'].val}x{config['nr'].val}(" in mod.source
    assert mod.source.count("_mm_sfence") == 1  # in the fence, not in the tile's copy
    assert mod.source.count("tw_store_fence();") == 1
    _matches_numpy_aligned_or_not(task, mod, str(knobs))


@pytest.mark.parametrize("args,knobs,what", [
    ((48, 120, 64), {}, "streaming C"),  # the columns padded to whole tiles
    ((50, 128, 64), {"kernel": "loops", "mr": 4, "nr": W, "pack": "none"},
     f"whole 4x{W} tiles"),  # a row tile past C's edge
    ((4, 128, 64), {"kernel": "loops", "mr": 4, "nr": 32, "pack": "none",
                    "stream_b": True}, "streaming B"),
])
def test_streaming_c_needs_c_in_whole_tiles_of_its_own_sum(args, knobs, what):
    import tilewise.ops  # noqa: F401

    task = Task("gemm", args, "c -cores=2")
    if True not in [e.val for e in task.config_space.knob("stream_c").entities]:
        pytest.skip("no micro-kernel for this host's vectors")
    config = config_with(task, **{"kernel": "ukr", "mr": 4, "nr": W, "kc": 0,
                                  "stream_c": True, "pack_a": False, **knobs})
    with pytest.raises(InvalidConfigError, match=what):
        task.instantiate(config)


@needs_ukr
@pytest.mark.parametrize("knobs", [{}, {"kc": 0}, {"kernel": "loops", "prefetch": False,
                                                   "kc": 0, "pack": "panel"}])
def test_pointwise_conv_streams_its_output(knobs):
    """``stream_out``: the 1x1 convolution's tiles copied out around the cache."""
    import tilewise.ops  # noqa: F401

    task = Task("conv2d_nchw", (1, 64, 8, 12, 48, 1, 1), "c -cores=2")
    config = config_with(task, stream_out=True, **knobs)
    s, tensors = task.instantiate(config)
    mod = tw.build(s, tensors, target=task.target)
    assert f"tw_stream_tile_{config['mr'].val}x{config['nr'].val}(" in mod.source
    _matches_numpy_aligned_or_not(task, mod, str(knobs))


def test_pointwise_conv_streams_only_a_plain_output():
    """Not after an epilogue (the output stage computes it), nor where the output's
    rows do not start on cache lines."""
    import tilewise.ops  # noqa: F401

    def choices(*args):
        space = Task("conv2d_nchw", args, "c -cores=2").config_space
        return [e.val for e in space.knob("stream_out").entities]

    assert choices(1, 64, 8, 12, 48, 1, 1, 1, 0, 1, "float32", "bias+relu") == [False]
    assert choices(1, 64, 7, 7, 16, 1, 1) == [False]
    if simd_fp32(HOST, "float32"):
        assert choices(1, 64, 8, 12, 48, 1, 1) == [False, True]


def test_streaming_c_is_offered_where_c_can_be_the_sum():
    """Not after an epilogue, nor where C's rows end inside a vector."""
    import tilewise.ops  # noqa: F401

    def choices(name, args):
        space = Task(name, args, "c -cores=2").config_space
        return [e.val for e in space.knob("stream_c").entities]

    assert choices("dense", (48, 128, 64, "bias")) == [False]
    assert choices("gemm", (48, 100, 64)) == [False]
    if simd_fp32(HOST, "float32"):
        assert choices("dense", (48, 128, 64, "")) == [False, True]
