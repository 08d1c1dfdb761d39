"""The pointwise convolution's GEMM over the channels (``conv2d_1x1``'s knob
``vectors="channels"``): tiles of ``mr`` positions by ``nr`` output channels, the data
tile-packed (from NCHW, or block by block from NCHW[x]c), the weights in ``nr``-wide
panels, the epilogue as each tile leaves the accumulator; the (H*W, K) result
transposed back to NCHW, or written straight into NCHW[x]c blocks."""

from __future__ import annotations

import math

import numpy as np

from .. import te
from ..target import Target
from .blocks import blocked_shape
from .epilogue import accumulator, gelu, parse_epilogue
from .gemm import whole_tiles
from .gemm_schedule import (
    TilePlan,
    register_tile,
)
from .layout_intrin import data_unpack_intrin
from .nchwc_layout import packed_weights, schedule_weight_blocks


def conv2d_1x1_nhwc_compute(N, C, H, W, K, dtype, mr: int, nr: int, epilogue: str = "",
                            in_block: int = 0, out_block: int = 0):
    """``(inputs, out, result, conv, data_pack, kernel_pack)`` of the transposed GEMM
    (vectors over the channels): ``conv`` (N, H*W, K) summed over whole ``mr x nr`` tiles,
    ``result`` its (N, H*W, K) corner with the epilogue, ``out`` the NCHW transform of
    ``result``, or with ``out_block`` the NCHW[x]c output read straight from it (``out``
    then the stage that the tiles write, ``result`` inlined into it). ``data_pack``
    (N, ceil(H*W / mr), C, mr): each tile's positions side by side, read from NCHW or
    (``in_block``) NCHW[x]c data; ``kernel_pack``: the weights in ``nr``-wide panels of
    output channels (the NCHW[x]c blocks with the whole C as one input block, zeros
    past K)."""
    HW = H * W
    data = te.placeholder(blocked_shape((N, C, H, W), in_block), dtype, name="data")
    kernel = te.placeholder((K, C, 1, 1), dtype, name="kernel")
    zero = te.const(0.0, dtype)

    def positions(n, fo, c, fi):
        f = fo * mr + fi
        value = _at(data, in_block, n, c, f // W, f % W)
        return value if HW % mr == 0 else te.if_then_else(f < HW, value, zero)

    data_pack = dp = te.compute((N, -(-HW // mr), C, mr), positions, name="data_pack")
    kernel_pack = kp = packed_weights(kernel, C, nr)
    rc = te.reduce_axis((0, C), name="rc")
    conv = te.compute(
        whole_tiles((N, HW, K), (0, mr, nr)),
        lambda n, f, k: te.sum(dp[n, f // mr, rc, f % mr] * kp[k // nr, 0, 0, 0, rc, k % nr],
                               axis=rc),
        name="conv")
    steps = parse_epilogue(epilogue)
    result = te.compute((N, HW, K), lambda n, f, k: conv[n, f, k],
                        name="result" if not steps else "conv_nhwc")
    extra = []
    for i, step in enumerate(steps):
        operand = None
        if step == "bias":
            operand = te.placeholder((K,), dtype, name="bias")
        elif step == "residual":
            operand = te.placeholder(blocked_shape((N, K, H, W), out_block), dtype,
                                     name="residual")
        extra += [operand] if operand is not None else []
        result = te.compute((N, HW, K), _nhwc_step(step, result, operand, W, out_block),
                            name="result" if i == len(steps) - 1 else f"result_{step}")
    if out_block:
        b = out_block
        out = te.compute(blocked_shape((N, K, H, W), b),
                         lambda n, kb, h, w, ki: result[n, h * W + w, kb * b + ki], name="out")
    else:
        out = te.compute((N, K, H, W), lambda n, k, h, w: result[n, h * W + w, k], name="out")
    return [data, kernel, *extra], out, result, conv, data_pack, kernel_pack


def _at(t, block: int, n, c, h, w):
    """Element (n, c, h, w) of ``t``, NCHW or (``block``) NCHW[x]c."""
    return t[n, c // block, h, w, c % block] if block else t[n, c, h, w]


def _nhwc_step(step: str, prev, operand, W: int, block: int = 0):
    """One epilogue step on the (N, H*W, K) result; ``operand``: the bias, or the NCHW
    residual (read across its channel planes; NCHW[x]c with ``block``)."""
    dtype = str(prev.dtype)
    zero, six = te.const(0.0, dtype), te.const(6.0, dtype)
    if step == "bias":
        return lambda n, f, k: prev[n, f, k] + operand[k]
    if step == "residual":
        return lambda n, f, k: prev[n, f, k] + _at(operand, block, n, k, f // W, f % W)
    if step == "relu":
        return lambda n, f, k: te.max(prev[n, f, k], zero)
    if step == "relu6":
        return lambda n, f, k: te.min(te.max(prev[n, f, k], zero), six)
    return lambda n, f, k: gelu(prev[n, f, k], dtype)


def schedule_conv2d_1x1_nhwc(cfg, target: Target, out, result, conv, data_pack,
                             kernel_pack, in_block: int = 0, out_block: int = 0):
    """The transposed GEMM's schedule: gemm's register tiles over (positions, output
    channels) into ``result``, the epilogue inlined there; the data and the weights
    packed first (parallel over tiles and panels; the weights by the NCHW[x]c transpose
    micro-kernel); then ``out`` transposed back, a block of channels at a time. With
    ``out_block`` the tiles write ``out``'s blocks themselves: its (h, w) fused back
    into the positions and its (block, lane) into the channels, each tile's row
    stored a block's run at a time."""
    s = te.create_schedule(out.op)
    tiled = out if out_block else result
    CC = accumulator(s, tiled, conv)
    if out_block:
        n, kb, h, w, ki = s[out].op.axis
        f = s[out].fuse(h, w)
        s[out].reorder(n, f, kb, ki)
        k = s[out].fuse(kb, ki)
    else:
        n, f, k = s[result].op.axis
    register_tile(s, cfg, target, tiled, CC, f, k, TilePlan(
        batch=(n,), rows_outer=cfg["order"].val == "fk",
        micro_kernel=cfg["kernel"].val == "ukr", kc=cfg["kc"].val, a_packed=True,
        store_runs=out_block))
    schedule_tile_pack(s, data_pack, in_block)
    panel, *_ = s[kernel_pack].op.axis
    s[kernel_pack].parallel(panel)
    schedule_weight_blocks(s, kernel_pack, target)
    if not out_block:
        schedule_nchw_transform(s, out, target)
    return s


def schedule_tile_pack(s, data_pack, in_block: int) -> None:
    """The data's tile packing, parallel over the tiles. From NCHW[x]c data
    (``in_block``), each block's ``mr`` positions are an ``mr x in_block`` row-major
    matrix: in fp32, where the tiles divide the positions, one transpose micro-kernel
    each (:func:`.layout_intrin.data_unpack_intrin`)."""
    dn, tile, c, fi = s[data_pack].op.axis
    s[data_pack].parallel(s[data_pack].fuse(dn, tile))
    if not in_block:
        return
    co, ci = s[data_pack].split(c, in_block)
    data = data_pack.op.input_tensors[0]
    HW = int(data.shape[2]) * int(data.shape[3])
    mr = int(fi.domain.extent)
    if str(data.dtype) == "float32" and HW % mr == 0:
        s[data_pack].tensorize(ci, data_unpack_intrin(in_block, mr))


def schedule_nchw_transform(s, out, target: Target) -> None:
    """``out`` (N, K, H, W) from the (N, H*W, K) result: per image, blocks of ``lanes``
    channels (or the largest power of two that divides K) each one transpose of all
    H*W positions where fp32; else the positions vectorised over strided reads."""
    on, ok, oh, ow = s[out].op.axis
    K, f = int(ok.domain.extent), s[out].fuse(oh, ow)
    lanes = target.vector_lanes(np.dtype(str(out.dtype)).itemsize)
    block = math.gcd(K, lanes)
    if str(out.dtype) != "float32" or block < 4:
        s[out].parallel(s[out].fuse(on, ok))
        s[out].vectorize(f)
        return
    oko, oki = s[out].split(ok, block)
    s[out].reorder(on, oko, oki, f)
    s[out].parallel(s[out].fuse(on, oko))
    s[out].tensorize(oki, data_unpack_intrin(block, int(f.domain.extent)))
