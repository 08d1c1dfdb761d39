"""Pointwise NCHW convolution (1x1 kernel, stride 1, no padding) as a GEMM per image.

With ``f = h * W + w`` the flat spatial index, ``out[n, k, f] = sum_c kernel[k, c] *
data[n, c, f]``: A is the (K, C) weight matrix and B the image's (C, H*W) rows, both
row-major as they are, so unlike the direct NCHW[x]c path nothing needs a layout
transform. The template is the gemm template's: an ``mr x nr`` register tile over
(output channels, flat positions) accumulated in a local buffer, the rows unrolled,
the positions vectorised, blocks of row tiles, tiles spread over the cores; the data
optionally packed into ``nr``-wide panels (one contiguous stream per tile instead
of C rows ``H*W`` apart), all of it first or each panel just before its tiles; the
tile optionally the hand-written micro-kernel. The output's (h, w) loops are fused
back into ``f``: the simplifier turns ``(f // W) * W + f % W`` into ``f``, so the
stores stay contiguous vectors.

Or (knob ``vectors``, "channels") the transposed GEMM, the output's NHWC form: a tile
of ``mr`` positions by ``nr`` output channels, the vectors along the channels; the data
tile-packed (each c's ``mr`` positions side by side, the micro-kernel's packed A), the
weights in ``nr``-wide panels (a model packs them once); the epilogue applied as each
tile leaves the accumulator, then the (H*W, K) result transposed back to NCHW, ``lanes``
channels at a time (:mod:`.conv2d_1x1_channels`). For the small maps of deep layers,
where H*W is not whole vectors: 7x7 = 49 positions fill 4 vectors of 16 lanes to 77%,
7 rows of 16 channels whole.

Channel blocks at the edges (``in_block``, ``out_block``: NCHW[x]c, :mod:`.blocks`) are
the channels GEMM's alone (the ``vectors`` knob then offers nothing else): a tile's
``mr`` rows of ``nr`` channels land in blocks ``k // out_block`` as rows of contiguous
channels, so with ``out_block`` the tiles write the output's blocks themselves (``nr``
whole blocks, each row stored a block at a time), the epilogue and a residual (blocked
like the output) applied on the way, and nothing is transposed back; with ``in_block``
the tile packing reads the blocks, each block of a tile's positions one ``mr x
in_block`` transpose. The pixels GEMM would read or write each channel's positions a
block apart, one lane at a time.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..errors import TensorError
from ..target import Target
from .conv2d_1x1_channels import conv2d_1x1_nhwc_compute, schedule_conv2d_1x1_nhwc
from .epilogue import accumulator, apply_epilogue
from .gemm import whole_tiles
from .gemm_schedule import (
    TilePlan,
    cut_tiles,
    edge_tail,
    fallback_rows,
    next_panel_offset,
    register_tile,
    schedule_packs,
    tile_fits_registers,
)
from .microkernel import simd_fp32


def is_pointwise(R, S, stride, pad, dilation) -> bool:
    return (R, S) == (1, 1) and stride in (1, (1, 1)) and pad in (0, (0, 0))


def conv2d_1x1_compute(N, C, H, W, K, dtype, nr: int, pack: bool, epilogue: str = "",
                       mr: int = 0):
    """``(inputs, out, conv, data_pack or None, kernel_pack or None)``; ``conv`` is the
    (N, K, H*W) accumulation, ``out`` the NCHW result (with the epilogue). With ``mr``
    the weights are read from a tile-packed copy, (ceil(K / mr), C, mr): each row tile's
    weights one contiguous stream, each c's mr values side by side."""
    HW = H * W
    data = te.placeholder((N, C, H, W), dtype, name="data")
    kernel = te.placeholder((K, C, 1, 1), dtype, name="kernel")
    rc = te.reduce_axis((0, C), name="rc")
    zero = te.const(0.0, dtype)
    kernel_pack = None
    if mr:
        def weight(ko, c, ki):
            if K % mr == 0:
                return kernel[ko * mr + ki, c, 0, 0]
            return te.if_then_else(ko * mr + ki < K, kernel[ko * mr + ki, c, 0, 0], zero)

        kernel_pack = kp = te.compute((-(-K // mr), C, mr), weight, name="kernel_pack")

        def w_at(k, c):
            return kp[k // mr, c, k % mr]
    else:
        def w_at(k, c):
            return kernel[k, c, 0, 0]
    data_pack = None
    if pack:
        def panel(n, jo, c, ji):
            f = jo * nr + ji
            if HW % nr == 0:
                return data[n, c, f // W, f % W]
            return te.if_then_else(f < HW, data[n, c, f // W, f % W], zero)

        data_pack = te.compute((N, -(-HW // nr), C, nr), panel, name="data_pack")
        dp = data_pack

        def body(n, k, f):
            return te.sum(w_at(k, rc) * dp[n, f // nr, rc, f % nr], axis=rc)
    else:
        def body(n, k, f):
            return te.sum(w_at(k, rc) * data[n, rc, f // W, f % W], axis=rc)

    # Whole tiles where the copies pad them (see gemm.sum_over_whole_tiles); the NCHW
    # stage below reads the (K, H*W) corner.
    conv = te.compute(whole_tiles((N, K, HW), (0, mr, nr if pack else 0)), body, name="conv")
    spatial = te.compute((N, K, H, W), lambda n, k, h, w: conv[n, k, h * W + w],
                         name="out" if not epilogue else "conv_nchw")
    out, extra = apply_epilogue(spatial, epilogue, channel_axis=1)
    return [data, kernel, *extra], out, conv, data_pack, kernel_pack



def define_conv2d_1x1_space(cfg, target: Target, C: int, K: int, HW: int, dtype: str,
                            epilogue: bool = False, in_block: int = 0,
                            out_block: int = 0) -> None:
    """The knobs and fallback; ``in_block``, ``out_block``: the data or the output in
    channel blocks, which only the tiles over output channels read and write (the
    "channels" GEMM)."""
    blocked = bool(in_block or out_block)
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    widths = [lanes, 2 * lanes, 3 * lanes, 4 * lanes]
    if out_block and not any(nr % out_block == 0 for nr in widths):
        raise TensorError(f"conv2d_nchw (1x1): out_block {out_block} must divide a tile "
                          f"of {lanes}, {2 * lanes}, {3 * lanes} or {4 * lanes} channels")
    cfg.define_knob("nr", widths)
    cfg.define_knob("mr", [d for d in (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16) if d <= K])
    cfg.define_knob("unroll_k", [1, 2, 4, 8])
    cfg.define_knob("block_m", [1, 2, 4, 8])
    cfg.define_knob("order", ["kf", "fk"])
    # "panel": each nr-wide panel (or pack_panels of them) is packed just before its
    # tiles, inside the parallel loop. The copy issues its C short row reads at once,
    # where the first tile of an unpacked panel stalls on them one FMA row at a time;
    # the data (C x H*W) often exceeds one core's L2, so that first touch comes from
    # L3. resnet-c2-1x1 (fallback tile): 107 -> 131 GFLOP/s on 1 thread, 203 -> 278 on 2.
    cfg.define_knob("pack", ["none", "root", "panel"])
    cfg.define_knob("pack_panels", [1, 2, 4, 8])
    fp32_simd = simd_fp32(target, dtype)
    cfg.define_knob("kernel", ["loops", "ukr"] if fp32_simd else ["loops"])
    # The micro-kernel fetches the next panel of data into L2 while it computes on this
    # one: unpacked, the data's rows are H*W apart, more streams than the hardware
    # prefetcher follows. resnet-c2-1x1, 8x32 tile, 1 thread: 139 -> 160 GFLOP/s.
    cfg.define_knob("prefetch", [False, True])
    # Defined last, so that databases written before them keep their indices. kc: the
    # reduction over C blocked as gemm's kc (a block of row tiles summed slice by slice,
    # each slice of the panel passed by all of them while in L1); only the sizes that
    # cut C into whole blocks. pack_weights: each row tile's weights copied to one
    # contiguous stream, each c's mr values side by side, where in place they are mr
    # rows C apart. resnet-c2-1x1, 8x32 tile, on the 2-core Xeon VM, medians of 41
    # rounds (benchmarks/paired.py): 2 threads 180 GFLOP/s in place, 195 packed, 194
    # packed with kc=128; 1 thread within 1% of each other (0.84-0.89x PyTorch).
    blocks = [kc for kc in (64, 128) if kc < C and C % kc == 0] if fp32_simd else []
    cfg.define_knob("kc", [0, *blocks])
    cfg.define_knob("pack_weights", [False, True])
    # Each finished tile copied out with non-temporal stores (gemm's stream_c): the
    # output is written once, and through the cache each of its lines would first be
    # read, then evict data the next panels read. Where the output is the sum itself
    # (no epilogue) and its rows start on cache lines.
    can_stream = fp32_simd and not epilogue and HW % lanes == 0
    cfg.define_knob("stream_out", [False, True] if can_stream else [False])
    # "channels": the tile's vectors along the output channels, its rows over
    # positions (mr, nr: positions and channels), the output computed as NHWC and
    # transposed back (conv2d_1x1_nhwc_compute).
    # In channel blocks, the pixels' tiles would read each c's positions (or write each
    # k's) a block apart, one lane at a time: the channels' tiles take the blocks
    # whole, as rows of the tile (out) and of its packed data (in).
    if blocked:
        cfg.define_knob("vectors", ["channels"])
    else:
        cfg.define_knob("vectors", ["pixels", "channels"] if fp32_simd else ["pixels"])
    rows = fallback_rows(target, 2)
    cfg.fallback_with(nr=2 * lanes, mr=min(rows, K), unroll_k=4,
                      block_m=1, order="fk", pack="panel", pack_panels=1, kernel="loops",
                      prefetch=False)
    whole_columns = HW % (2 * lanes) == 0
    if fp32_simd and target.vector_registers < 32 and K % 4 == 0 and whole_columns:
        # 16 registers (AVX2): 4x16 tiles, each panel packed just before its tiles,
        # streamed out. resnet-c2-1x1 on one Zen 3 core beside PyTorch
        # (benchmarks/paired.py, 5 rounds): the loops' 6x16 0.83x; the micro-kernel
        # 4x16 1.16x, 6x16 with the last row tile shifted 1.11x, 4x16 in place with
        # AVX-512's fetching ahead and packed weights 0.91x (k in blocks of 128: 1.02x).
        cfg.fallback_with(mr=4, block_m=4, kernel="ukr", stream_out=can_stream)
    elif fp32_simd and K % rows == 0 and whole_columns:
        # Whole tiles (8x32 on AVX-512): the micro-kernel on the data in place, fetching ahead
        # (resnet-c2-1x1: 140 -> 160 GFLOP/s on one core, 310 -> 300 on two).
        cfg.fallback_with(block_m=8, pack="none", kernel="ukr", prefetch=True,
                          pack_weights=True)
        if 128 in blocks and K % (8 * rows) == 0:  # whole blocks of 8 row tiles
            cfg.fallback_with(kc=128)
        if can_stream:
            # 2-core Xeon VM, beside PyTorch (benchmarks/paired.py): resnet-c2-1x1
            # 0.88 -> 0.93x on one core (15 rounds), 1.66 -> 1.72x on two (11).
            cfg.fallback_with(stream_out=True)
    elif fp32_simd and K % rows == 0:
        _ragged_columns_fallback(cfg, target, HW, lanes)
    if blocked:
        _channel_tiles_fallback(cfg, target, C, K, HW, dtype, True, out_block)
    elif fp32_simd and target.vector_registers >= 32:
        _channel_tiles_fallback(cfg, target, C, K, HW, dtype)


def _ragged_columns_fallback(cfg, target: Target, HW: int, lanes: int) -> None:
    """32 registers, positions that whole 2-vector panels do not divide (28x28, 14x14):
    the micro-kernel on the data in place all the same, the last panel shifted back
    inside the row (gemm_schedule.edge_tails), where the loops over packed panels ran
    before. One vector wide where that pads the row less and the core starts one FMA
    a cycle (196 positions: 13 vectors, not 14; on two FMAs a cycle, one vector
    would load a row of B and ``mr`` broadcasts for every ``mr`` FMAs). Measured in
    benchmarks/results/2026-12-07-zen4/pointwise-fallbacks.md."""
    nr = 2 * lanes
    if target.fma_per_cycle < 2 and _wasted(HW, lanes) < _wasted(HW, nr):
        nr = lanes
    if HW > nr:  # else the tile is wider than the row
        cfg.fallback_with(nr=nr, block_m=8, pack="none", kernel="ukr", prefetch=True,
                          pack_weights=True)


def _channel_tiles_fallback(cfg, target: Target, C: int, K: int, HW: int, dtype: str,
                            always: bool = False, out_block: int = 0) -> None:
    """Tiles over output channels (``vectors``) where the pixels' tiles would compute
    more lanes in vain than the two copies cost: the data's tile packing and the
    transpose back each move a value in about half a cycle, against C / (lanes x
    FMAs a cycle) cycles of FMAs per output (and K per input). One vector of channels
    on a core that starts one FMA a cycle, as conv2d_nchw's tiles; rows that pad the
    positions least, of at most 8. Small maps gain most (7x7: 49 positions in 64
    lanes); at 14x14 (196 in 208) only where C and K are large enough to pay for the
    copies (ResNet-50's, not MobileNetV2's). Measured in
    benchmarks/results/2026-12-07-zen4/pointwise-fallbacks.md. ``always``: the data or
    output in channel blocks, which only these tiles take (one vector of channels
    where K is narrower than two; whole ``out_block`` blocks of them)."""
    fmas, lanes = target.fma_per_cycle, target.vector_lanes(np.dtype(dtype).itemsize)
    wide = lanes if fmas < 2 or (always and K < 2 * lanes) else 2 * lanes
    if out_block:  # a whole number of blocks
        wide = -(-wide // out_block) * out_block
    px = cfg["nr"].val if cfg["kernel"].val == "ukr" else 2 * lanes
    copies = lanes * fmas * (1 / C + 1 / K) / 2
    if not always and (K < wide or _wasted(HW, px) - _wasted(K, wide) <= copies):
        return
    most = min(HW, fallback_rows(target, wide // lanes))
    mr = min(range(1, most + 1), key=lambda r: (-(-HW // r) * r, -r))
    ukr = simd_fp32(target, dtype)
    cfg.fallback_with(vectors="channels", mr=mr, nr=wide, order="fk", block_m=1, kc=0,
                      pack_weights=True,
                      kernel="ukr" if ukr and K >= wide and HW >= mr else "loops")


def _wasted(n: int, width: int) -> float:
    """The share of lanes that tiles ``width`` wide compute in vain over ``n`` values."""
    return 1 - n / (-(-n // width) * width)


def schedule_conv2d_1x1(cfg, target: Target, out, conv, data_pack, kernel_pack=None):
    s = te.create_schedule(out.op)
    CC = accumulator(s, out, conv)
    n, k, h, w = s[out].op.axis
    per_panel = data_pack is not None and cfg["pack"].val == "panel"
    prefetch = 0
    if cfg["prefetch"].val:
        prefetch = next_panel_offset(cfg["nr"].val, data_pack, per_panel)
    register_tile(s, cfg, target, out, CC, k, s[out].fuse(h, w), TilePlan(
        batch=(n,), rows_outer=cfg["order"].val == "kf",
        micro_kernel=cfg["kernel"].val == "ukr",
        panel_stage=s[data_pack] if per_panel else None,
        panels_per_pack=cfg["pack_panels"].val, prefetch=prefetch, kc=cfg["kc"].val,
        a_packed=kernel_pack is not None, stream_out=cfg["stream_out"].val))
    # The weights are gemm's A, the data its B (with the image axis leading).
    schedule_packs(s, kernel_pack, data_pack, per_panel)
    return s



def declare_conv2d_1x1_conditions(cfg) -> None:
    """Over the channels both operands are always packed whole, so the knobs of the
    pixels GEMM's copies do not matter there; the micro-kernel unrolls k itself."""
    for knob in ("pack", "pack_panels", "prefetch", "pack_weights", "stream_out"):
        cfg.conditional(knob, ("vectors",), lambda vectors: vectors == "pixels")
    cfg.conditional("unroll_k", ("kernel",), lambda kernel: kernel == "loops")


def require_conv2d_1x1_constraints(cfg, target: Target, N: int, K: int, HW: int,
                                   dtype: str, out_block: int = 0) -> None:
    """What the two schedules build, declared on the knobs of
    :func:`define_conv2d_1x1_space`: gemm's register tile (:func:`.gemm_schedule.register_tile`)
    with the output channels as its rows and the positions as its columns ("pixels"),
    or the other way round ("channels", both operands packed to whole tiles). With
    ``out_block`` the channels' tiles are whole blocks wide."""
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    regs = target.vector_registers
    if out_block:
        cfg.require(("nr",), lambda nr: nr % out_block == 0,
                    lambda nr: f"a tile of {nr} channels is not whole blocks of {out_block}")

    def pixels_tiles_whole(kernel, kc, mr, nr, pack_weights, pack, stream_out):
        """The tile checks of the pixels GEMM: (K, HW) summed over (K', HW')."""
        rows, cols = whole_tiles((K, HW), (mr if pack_weights else 0,
                                           nr if pack != "none" else 0))
        ukr = kernel == "ukr"
        tails = (edge_tail(K, rows, mr, ukr and not kc), edge_tail(HW, cols, nr, ukr and not kc))
        if stream_out and cut_tiles((K, HW), (mr, nr), tails):
            return False
        return not ukr or not cut_tiles((rows, cols), (mr, nr), tails)

    def pixels(vectors):
        return vectors == "pixels"

    cfg.require(("vectors", "mr", "nr"),
                lambda vectors, mr, nr: tile_fits_registers(mr, -(-nr // lanes), target),
                lambda vectors, mr, nr: f"register tile {mr}x{nr} with its operands needs "
                                        f"more than {regs} vector registers")
    cfg.require(("vectors", "kc", "kernel"), lambda vectors, kc, kernel: not kc or kernel == "ukr",
                "blocking k (kc) is the micro-kernel's")
    # One image and the blocks of row tiles the outermost loop (rows first, or a single
    # column panel): a last block short of block_m row tiles is left to a guard that
    # the micro-kernel cannot take (lowering refuses it).
    def gemm_shape(vectors):  # (rows, their name, columns, rows-first order)
        return ((K, "output channels", HW, "kf") if pixels(vectors)
                else (HW, "positions", K, "fk"))

    def blocks_whole(vectors, kernel, order, nr, mr, block):
        rows, _, cols, rows_first = gemm_shape(vectors)
        return (kernel != "ukr" or not (order == rows_first or cols <= nr) or N != 1
                or -(-rows // mr) % block == 0)

    def short_block(vectors, kernel, order, nr, mr, block):
        rows, name, *_ = gemm_shape(vectors)
        return (f"the micro-kernel over one image, row blocks outermost, sums whole blocks "
                f"of {block} row tiles; {rows} {name} make {-(-rows // mr)} tiles of {mr}")

    cfg.require(("vectors", "kernel", "order", "nr", "mr", "block_m"), blocks_whole,
                short_block)
    cfg.require(("vectors", "kernel", "mr", "nr"),
                lambda vectors, kernel, mr, nr: pixels(vectors) or kernel != "ukr"
                or (HW >= mr and K >= nr),
                lambda vectors, kernel, mr, nr: f"the micro-kernel's {mr}x{nr} tile is larger "
                                                f"than the {HW} positions x {K} channels")
    cfg.require(("vectors", "kernel", "kc", "mr", "block_m"),
                lambda vectors, kernel, kc, mr, block: pixels(vectors) or kernel != "ukr"
                or not kc or -(-HW // mr) % block == 0,
                lambda vectors, kernel, kc, mr, block: f"blocking k by {kc} needs whole blocks "
                                                       f"of {block} row tiles")
    cfg.require(("vectors", "prefetch", "pack", "kernel"),
                lambda vectors, prefetch, pack, kernel: not pixels(vectors) or not prefetch
                or (pack != "panel" and kernel == "ukr"),
                "prefetching the next panel is the micro-kernel's, on the data read in place "
                "or packed whole, not packed panel by panel")
    cfg.require(("vectors", "pack_panels", "pack", "order"),
                lambda vectors, panels, pack, order: not pixels(vectors) or panels == 1
                or (pack == "panel" and order == "fk"),
                "packing several panels at once needs per-panel packing with columns outermost")
    cfg.require(("vectors", "kernel", "mr", "nr"),
                lambda vectors, kernel, mr, nr: not pixels(vectors) or kernel != "ukr"
                or (K >= mr and HW >= nr),
                lambda vectors, kernel, mr, nr: f"the micro-kernel's {mr}x{nr} tile is larger "
                                                f"than out's {K}x{HW}")
    cfg.require(("vectors", "kernel", "kc", "mr", "nr", "pack_weights", "pack", "stream_out"),
                lambda vectors, *knobs: not pixels(vectors) or pixels_tiles_whole(*knobs),
                lambda vectors, kernel, kc, mr, nr, *_:
                    f"the micro-kernel (or storing around the cache) needs whole {mr}x{nr} "
                    f"tiles; the output is {K} channels x {HW} positions")
    cfg.require(("vectors", "kernel", "nr", "pack", "pack_panels"),
                lambda vectors, kernel, nr, pack, panels: not pixels(vectors)
                or kernel != "ukr"
                or (whole_tiles((HW,), (nr if pack != "none" else 0,))[0] // nr) % panels == 0,
                lambda vectors, kernel, nr, pack, panels:
                    f"the micro-kernel needs whole groups of {panels} panels")
    cfg.require(("vectors", "kernel", "kc", "mr", "pack_weights", "block_m"),
                lambda vectors, kernel, kc, mr, pack_weights, block: not pixels(vectors)
                or kernel != "ukr" or not kc
                or (whole_tiles((K,), (mr if pack_weights else 0,))[0] // mr) % block == 0,
                lambda vectors, kernel, kc, mr, pack_weights, block:
                    f"blocking k by {kc} needs whole blocks of {block} row tiles")


def conv2d_1x1(cfg, N, C, H, W, K, dtype: str = "float32", epilogue: str = "",
               in_block: int = 0, out_block: int = 0):
    """conv2d_nchw's pointwise case, ``(schedule, tensors)``: the space, then the GEMM
    with its vectors over the positions (NCHW) or over the channels (NHWC, transposed
    back, or written into ``out_block`` blocks) as the ``vectors`` knob says; data in
    ``in_block`` blocks and any output block take the channels GEMM."""
    target = cfg.target
    define_conv2d_1x1_space(cfg, target, C, K, H * W, dtype, bool(epilogue), in_block,
                            out_block)
    require_conv2d_1x1_constraints(cfg, target, N, K, H * W, dtype, out_block)
    declare_conv2d_1x1_conditions(cfg)
    if cfg["vectors"].val == "channels":
        inputs, out, result, conv, dp, kp = conv2d_1x1_nhwc_compute(
            N, C, H, W, K, dtype, cfg["mr"].val, cfg["nr"].val, epilogue, in_block,
            out_block)
        return (schedule_conv2d_1x1_nhwc(cfg, target, out, result, conv, dp, kp, in_block,
                                         out_block),
                [*inputs, out])
    inputs, out, conv, dp, kp = conv2d_1x1_compute(
        N, C, H, W, K, dtype, cfg["nr"].val, cfg["pack"].val != "none", epilogue,
        mr=cfg["mr"].val if cfg["pack_weights"].val else 0)
    return schedule_conv2d_1x1(cfg, target, out, conv, dp, kp), [*inputs, out]
