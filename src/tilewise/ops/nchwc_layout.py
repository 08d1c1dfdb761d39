"""The packed NCHW[x]c layout that the convolution templates compute in: the data
and weights packed into channel blocks (or data already in blocks, zero-padded), the
blocked result back to NCHW (with or without an epilogue on the blocks) or kept in
blocks, and the schedules of those copies (transpose micro-kernels where fp32)."""

from __future__ import annotations

import numpy as np

from .. import te
from ..target import Target
from .epilogue import (
    apply_epilogue,
    block_step,
    blocked_epilogue,
    epilogue_on_blocks,
    parse_epilogue,
)
from .layout_intrin import data_pack_intrin, data_unpack_intrin, weight_pack_intrin
from .microkernel import simd_fp32


def unpacked_output(blocks, shape, epilogue: str):
    """``(out, extra_inputs)``: ``out`` (N, K, OH, OW) from the NCHW[x]c ``blocks``, the
    epilogue on the blocks where :func:`.epilogue.blocked_epilogue` allows (``out``
    then a plain transform of its ``result``), else inlined into the transform. The
    extra inputs are :func:`.epilogue.apply_epilogue`'s either way.

    On the blocks, the epilogue costs about nothing beside the transform (fallbacks,
    one Zen 4 core, 9 rounds, bias+relu, inlined into the transform / on the blocks /
    no epilogue: MobileNetV2's stem 0.57 / 0.30 / 0.32 ms, ResNet's 7x7 stem 2.74 /
    2.20 / 2.24, resnet-c2-3x3 2.16 / 2.05 / 2.05, c3-3x3 by Winograd 1.12 / 1.07 /
    1.07)."""
    N, K, OH, OW = shape
    cb, dtype = int(blocks.shape[-1]), str(blocks.dtype)
    extra = []
    # A residual too, read across the block's cb channel planes (a line of each),
    # but where the planes lie a multiple of 2 KiB apart: those lines then fall in one
    # or two L1 sets and thrash. One Zen 4 core, bias+residual+relu, 7 rounds, on the
    # blocks / inlined into the transform: 56x56 1.04x, 28x28 1.02-1.04x (direct and
    # Winograd), 24x32 1.04x; 32x32 0.93x (Winograd 0.89x), 64x64 0.93x, 16x32 0.99x.
    aliased = OH * OW * np.dtype(dtype).itemsize % 2048 == 0
    if blocked_epilogue(K, cb, dtype, epilogue, residual=not aliased):
        blocks, extra = epilogue_on_blocks(blocks, epilogue, cb, shape)
        epilogue = ""
    unpacked = te.compute(shape, lambda n, k, y, x: blocks[n, k // cb, y, x, k % cb],
                          name="out" if not epilogue else "conv_nchw")
    out, more = apply_epilogue(unpacked, epilogue, channel_axis=1)
    return out, extra + more


def blocked_output(blocks, epilogue: str, name: str = "result"):
    """``(out, extra_inputs)``: the output kept in the NCHW[x]c ``blocks`` (N, K/cb, OH,
    OW, cb), ``blocks`` itself or the epilogue's ``result`` on them (inner steps
    ``result_<step>``, to be inlined; ``name`` for ``result``), any dtype. The extra inputs are
    :func:`.epilogue.apply_epilogue`'s, in its order: the bias (K,), a residual in
    blocks like the output and read as blocks."""
    shape, dtype = tuple(blocks.shape), str(blocks.dtype)
    cb = int(shape[-1])
    steps = parse_epilogue(epilogue)
    extra, out = [], blocks
    for i, step in enumerate(steps):
        stage = name if i == len(steps) - 1 else f"{name}_{step}"
        if step == "residual":
            r = te.placeholder(shape, dtype, name="residual")
            extra.append(r)
            out = te.compute(shape, _plus(out, r), name=stage)
            continue
        operand = None
        if step == "bias":
            operand = te.placeholder((int(shape[1]) * cb,), dtype, name="bias")
            extra.append(operand)
        out = te.compute(shape, block_step(step, out, operand, cb), name=stage)
    return out, extra


def _plus(blocks, residual):
    return lambda n, c, y, x, ci: blocks[n, c, y, x, ci] + residual[n, c, y, x, ci]


def unpacked_blocks(out):
    """The NCHW[x]c tensor of which ``out`` is the plain transform (``conv``, or the
    epilogue's ``result`` on its blocks), or None where an epilogue is inlined into
    ``out``."""
    first, *more = out.op.input_tensors
    return first if not more and len(first.shape) == 5 else None


def packed_data(data, ic_bn: int, Hp: int, Wp: int, ph: int, pw: int):
    """``data`` (N, C, H, W) in NCHW[x]c, (N, C / ic_bn, Hp, Wp, ic_bn), with ``ph``
    rows and ``pw`` columns of zeros before each plane and zeros after it up to
    (Hp, Wp): the stage ``data_pack``."""
    N, C, H, W = (int(d) for d in data.shape)
    zero = te.const(0.0, str(data.dtype))
    return te.compute(
        (N, C // ic_bn, Hp, Wp, ic_bn),
        lambda n, c, h, w, cb: te.if_then_else(
            te.all(h >= ph, h < H + ph, w >= pw, w < W + pw),
            data[n, c * ic_bn + cb, h - ph, w - pw], zero),
        name="data_pack")


def padded_blocks(data, Hp: int, Wp: int, ph: int, pw: int):
    """``data`` already in NCHW[x]c (N, C / cb, H, W, cb), with ``ph`` rows and ``pw``
    columns of zeros before each plane and zeros after it up to (Hp, Wp): the stage
    ``data_pack``, a plain copy of rows; ``data`` itself where the rows read need no
    zeros."""
    N, CB, H, W, cb = (int(d) for d in data.shape)
    if ph == pw == 0 and Hp <= H and Wp <= W:
        return data
    zero = te.const(0.0, str(data.dtype))
    return te.compute(
        (N, CB, Hp, Wp, cb),
        lambda n, c, h, w, ci: te.if_then_else(
            te.all(h >= ph, h < H + ph, w >= pw, w < W + pw),
            data[n, c, h - ph, w - pw, ci], zero),
        name="data_pack")


def packed_weights(kernel, ic_bn: int, oc_bn: int):
    """OIHW ``kernel`` (K, C, R, S) in blocks, (ceil(K / oc_bn), C / ic_bn, R, S, ic_bn,
    oc_bn), output channels innermost, zeros past K: the stage ``kernel_pack``."""
    K, C, R, S = (int(d) for d in kernel.shape)
    zero = te.const(0.0, str(kernel.dtype))
    if K % oc_bn:
        def kfn(o, c, r, s_, ib, ob):
            return te.if_then_else(o * oc_bn + ob < K,
                                   kernel[o * oc_bn + ob, c * ic_bn + ib, r, s_], zero)
    else:
        def kfn(o, c, r, s_, ib, ob):
            return kernel[o * oc_bn + ob, c * ic_bn + ib, r, s_]
    return te.compute((-(-K // oc_bn), C // ic_bn, R, S, ic_bn, oc_bn), kfn,
                      name="kernel_pack")


def schedule_weight_blocks(s, kernel_pack, target: Target) -> None:
    """Each block of :func:`packed_weights` one transpose micro-kernel where fp32 on the
    micro-kernels' vectors and the blocks are whole vectors of output channels, none
    past K; else the output channels vectorised."""
    _, _, kr, _, ib, ob = s[kernel_pack].op.axis
    R, S, K = (int(kernel_pack.shape[2]), int(kernel_pack.shape[3]),
               int(kernel_pack.op.input_tensors[0].shape[0]))
    ic_bn, oc_bn = int(ib.domain.extent), int(ob.domain.extent)
    lanes = target.vector_lanes(np.dtype(str(kernel_pack.dtype)).itemsize)
    if simd_fp32(target, str(kernel_pack.dtype)) and K % oc_bn == 0 and oc_bn % lanes == 0:
        s[kernel_pack].tensorize(kr, weight_pack_intrin(R, S, ic_bn, oc_bn))
    else:
        s[kernel_pack].vectorize(ob)


def schedule_data_pack(s, data_pack) -> None:
    """The NCHW -> NCHW[x]c copy (:func:`packed_data`): parallel over its rows, each row
    one transpose micro-kernel where fp32. The copy of data already in blocks
    (:func:`padded_blocks`): parallel over its rows, a vector per column."""
    dn, dc, dy, dx, dcb = s[data_pack].op.axis
    s[data_pack].parallel(s[data_pack].fuse(dn, dc, dy))
    data = data_pack.op.input_tensors[0]
    if len(data.shape) == 5:
        s[data_pack].vectorize(dcb)
        return
    if str(data.dtype) == "float32":
        plane = (int(data.shape[2]), int(data.shape[3]))
        s[data_pack].tensorize(dx, data_pack_intrin(int(dcb.domain.extent),
                                                    int(dx.domain.extent), plane))


def schedule_unpack(s, out, oc_bn: int, plain: bool) -> None:
    """``out`` (N, K, OH, OW), read from an NCHW[x]c result in blocks of ``oc_bn``
    channels: where it is that copy alone (``plain``, no epilogue), fp32 and the blocks
    whole (of more than one channel), channel block by channel block, each output row
    one transpose."""
    on, ok, oy, ox = s[out].op.axis
    whole = oc_bn > 1 and int(ok.domain.extent) % oc_bn == 0
    if str(out.dtype) == "float32" and plain and whole:
        oko, oki = s[out].split(ok, oc_bn)
        s[out].reorder(on, oko, oy, oki, ox)
        s[out].parallel(s[out].fuse(on, oko, oy))
        s[out].tensorize(oki, data_unpack_intrin(oc_bn, int(ox.domain.extent)))
    else:
        s[out].parallel(s[out].fuse(on, ok, oy))
        s[out].vectorize(ox)


def layout_stage(out, conv):
    """The stage that reads ``conv`` (the NCHW[x]c -> NCHW transform) under ``out``."""
    t = out
    while conv not in t.op.input_tensors:
        t = next(x for x in t.op.input_tensors if x.op.input_tensors)
    return t
