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
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..target import Target
from .epilogue import accumulator, apply_epilogue
from .gemm import whole_tiles
from .gemm_schedule import (
    TilePlan,
    fallback_rows,
    next_panel_offset,
    register_tile,
    schedule_packs,
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
                            epilogue: bool = False) -> None:
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    cfg.define_knob("nr", [lanes, 2 * lanes, 3 * lanes, 4 * lanes])
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
