"""Depthwise 2-D convolution computed across channels: template
``depthwise_conv2d_nchwc``, an implementation of ``depthwise_conv2d_nchw`` (the same
arguments and tensors), vectorised along cb channels (the target's lanes) whatever the
map's width or the stride, as ONNX Runtime's NCHW16c kernels are. Its data and output
are NCHW, or NCHW[cb]c where ``in_block`` / ``out_block`` is cb (:mod:`.blocks`); the
row template computes those blocked edges by this template's body.

Stages, per (image, block of cb channels, block of ``oh_bn`` output rows), the
parallel loop:

- ``data_pack``   (N, C/cb, Hp, Wp, cb): the rows the block reads (or, ``pack=whole``,
  all of it first) in NCHW[x]c, zero padded, each row one transpose micro-kernel
  (:mod:`.layout_intrin`); channels past C zero where cb does not divide C. Blocked
  data: a zero-padded copy of its rows, a vector at a time, or none where the window
  needs no zeros (``conv`` reads the data itself);
- ``kernel_pack`` (C/cb, R, S, cb): the block's weights, a stage that reads only
  ``kernel`` (a model compiler computes it once, :mod:`tilewise.graph.prepack`);
- ``conv``        (N, C/cb, OH, OWp, cb): the window's sum in a register tile of
  ``reg_w`` columns by one vector of channels, the taps unrolled; the epilogue
  (bias a vector per block, ReLU, ReLU6, GELU) applied as the tile leaves the
  registers, into the block's local buffer (``result``). A blocked output is that
  result itself, written from the registers (a residual blocked like it), so its
  tiles divide the row (``reg_w`` a divisor of OW);
- ``out``         (N, C, OH, OW): the buffer transposed back into NCHW, the block's
  rows one transpose per channel block where they are whole. A residual (an NCHW
  tensor) or channels that do not fill the blocks take the general way: the blocks
  transposed into a local buffer first, then the epilogue in NCHW.

Where the time goes (mobilenet's 384 x 14 x 14, one Zen 4 core, 45 GFLOP/s against
16 for the row template): the FMAs a third, the two transposes (in and out: a 16 x 16
transpose per 16 columns, 4 shuffle passes) most of the rest, as many cycles per
element as the 9 FMAs per 16 lanes. At stride 2 the input is four times the output, so
its packing dominates; those layers run near the memory roof (26 GFLOP/s on 112x112).
Blocked edges drop those transposes.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template
from ..errors import TensorError
from ..ir.dtype import as_dtype
from ..target import Target
from .blocks import check_blocks
from .depthwise_conv2d import depthwise_flop, depthwise_reference
from .epilogue import (
    apply_epilogue,
    blocked_epilogue,
    epilogue_on_blocks,
    inline_chain,
)
from .layout_intrin import data_pack_intrin, data_unpack_intrin
from .nchwc_layout import blocked_output, layout_stage, padded_blocks
from .window import Pair, divisors, out_size, pair


def depthwise_nchwc_compute(N, C, H, W, R, S, stride, pad, dilation, dtype, epilogue,
                            cb: int, reg_w: int, in_block: int = 0, out_block: int = 0):
    """``(inputs, out, stages)``; ``conv``'s rows padded to whole ``reg_w`` tiles (none
    where ``out_block``: ``reg_w`` divides the row). ``in_block``, ``out_block``: 0, or
    ``cb``, the data's and the output's blocks."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    OWp = -(-OW // reg_w) * reg_w
    KC = -(-C // cb)
    Hp = (OH - 1) * sh + (R - 1) * dh + 1
    Wp = (OWp - 1) * sw + (S - 1) * dw + 1
    kernel = te.placeholder((C, 1, R, S), dtype, name="kernel")
    zero = te.const(0.0, dtype)

    def inside(c, ci, *more):
        # The channel test only where cb does not divide C.
        return te.all(c * cb + ci < C, *more) if C % cb else te.all(*more)

    if in_block:
        data, data_pack = blocked_data(N, KC, H, W, cb, (ph, pw), (Hp, Wp), dtype)
    else:
        data = te.placeholder((N, C, H, W), dtype, name="data")
        data_pack = te.compute(
            (N, KC, Hp, Wp, cb),
            lambda n, c, h, w, ci: te.if_then_else(
                inside(c, ci, h >= ph, h < H + ph, w >= pw, w < W + pw),
                data[n, c * cb + ci, h - ph, w - pw], zero),
            name="data_pack")
    if C % cb:
        def kfn(c, r, s_, ci):
            return te.if_then_else(c * cb + ci < C, kernel[c * cb + ci, 0, r, s_], zero)
    else:
        def kfn(c, r, s_, ci):
            return kernel[c * cb + ci, 0, r, s_]
    kernel_pack = te.compute((KC, R, S, cb), kfn, name="kernel_pack")
    ry = te.reduce_axis((0, R), name="ry")
    rx = te.reduce_axis((0, S), name="rx")
    conv = te.compute(
        (N, KC, OH, OWp, cb),
        lambda n, c, y, x, ci: te.sum(
            data_pack[n, c, y * sh + ry * dh, x * sw + rx * dw, ci]
            * kernel_pack[c, ry, rx, ci], axis=[ry, rx]),
        name="out" if out_block and not epilogue else "conv")
    stages = {"data_pack": data_pack, "kernel_pack": kernel_pack, "conv": conv}
    if out_block:
        # The output is the blocks: the epilogue as the tile leaves the registers.
        out, extra = blocked_output(conv, epilogue, name="out")
        return [data, kernel, *extra], out, {**stages, "result": out}
    if blocked_epilogue(C, cb, dtype, epilogue):
        # The epilogue on the blocks (bias a vector per block), then each row of a
        # block one transpose into the output.
        result, extra = epilogue_on_blocks(conv, epilogue, cb)
        out = te.compute((N, C, OH, OW),
                         lambda n, c, y, x: result[n, c // cb, y, x, c % cb], name="out")
        return [data, kernel, *extra], out, {**stages, "result": result}
    # Else each block back to channel-major rows, every channel of the block (a whole
    # transpose), then the NCHW output, with the epilogue, reads the channels that exist.
    rows = te.compute((N, KC, cb, OH, OW), lambda n, c, ci, y, x: conv[n, c, y, x, ci],
                      name="conv_rows")
    unpacked = te.compute((N, C, OH, OW),
                          lambda n, c, y, x: rows[n, c // cb, c % cb, y, x],
                          name="out" if not epilogue else "conv_nchw")
    out, extra = apply_epilogue(unpacked, epilogue, channel_axis=1)
    return [data, kernel, *extra], out, {**stages, "conv_rows": rows}


def blocked_data(N: int, KC: int, H: int, W: int, cb: int, pad: tuple[int, int],
                 size: tuple[int, int], dtype: str):
    """``(data, data_pack)``: the NCHW[cb]c placeholder (N, KC, H, W, cb) and the
    ``size`` (Hp, Wp) rows the window reads, zero padded by ``pad`` (a copy of whole
    vectors, no transpose); ``data`` itself where the rows need no zeros."""
    (ph, pw), (Hp, Wp) = pad, size
    data = te.placeholder((N, KC, H, W, cb), dtype, name="data")
    return data, padded_blocks(data, Hp, Wp, ph, pw)


def define_nchwc_space(cfg, target: Target, N: int, KC: int, OH: int, OW: int,
                       blocked_out: bool = False) -> None:
    """The knobs; ``blocked_out``: the output is the blocks, exactly OW wide, so the
    tiles are the divisors of the row."""
    room = target.vector_registers - 4  # the tile's sums, beside a weight and inputs
    regs = sorted({d for d in divisors(OW) if d <= room}
                  | (set() if blocked_out else
                     {n for n in (4, 6, 8, 12, 14, 16, 24, 28) if n <= min(room, OW)}
                     | {min(OW, room)}))
    cfg.define_knob("reg_w", regs)
    rows = sorted({d for d in divisors(OH) if d <= 32} | {d for d in (1, 2, 4, 8, 16, 32)
                                                          if d <= OH} | {OH})
    cfg.define_knob("oh_bn", rows)
    cfg.define_knob("pack", ["rows", "whole"])
    # A tile of at most 14 columns: wider ones leave too few registers beside the
    # epilogue's constants (mobilenet's 144 x 56 x 56, one Zen 4 core, 9 rounds: 28
    # columns 37.5 GFLOP/s, 14 43.7, 7 44.8, 8 38.3). One that divides the row, else
    # the one that pads it least.
    fits = [r for r in regs if r <= 14]
    whole = [r for r in fits if OW % r == 0 and 2 * r > max(fits)]
    reg_w = max(whole) if whole else min(fits, key=lambda r: (-(-OW // r) * r, -r))
    if blocked_out and reg_w < 4:
        # Every tile divides the row; under 4 columns (a prime row past 14: 17, 19)
        # too few independent sums, so the whole row where the registers hold it.
        reg_w = min([r for r in regs if r > 14] or [reg_w])
    # Whole planes up to 16 rows, each row packed once (384 x 14 x 14: 14 rows 44,
    # 4 rows 40, 1 row 33 GFLOP/s); else blocks of at most 8 rows that divide the
    # plane (192 x 28 x 28: 8 rows 42, 28 rows 39); fewer where the blocks would not
    # give each core two.
    cap = OH if OH <= 16 else 8
    fb_rows = [d for d in rows if d <= cap and (OH <= 16 or OH % d == 0)]
    busy = [d for d in fb_rows if N * KC * -(-OH // d) >= 2 * target.cores]
    cfg.fallback_with(reg_w=reg_w, oh_bn=max(busy or fb_rows[:1]), pack="rows")


def schedule_nchwc(cfg, out, stages) -> te.Schedule:
    """The schedule of :func:`depthwise_nchwc_compute`'s stages (see the module)."""
    conv, result = stages["conv"], stages.get("result", stages["conv"])
    s = te.create_schedule(out.op)
    if result is conv:  # no epilogue on the blocks: the sums' registers a copy of conv
        sums = s.cache_write(conv, "local")
    else:  # the epilogue's stages inlined into the result, which reads the sums
        inline_chain(s, result, conv)
        s[conv].set_scope("local")
        sums = conv
    if result is out:  # the output is the blocks: parallel over blocks of its rows
        n, c, cy, cx, cc = s[out].op.axis
        cyo, cy = s[out].split(cy, cfg["oh_bn"].val)
        outer = s[out].fuse(n, c, cyo)
        s[out].parallel(outer)
    else:
        outer = _schedule_output(s, cfg, out, stages)
        # The block's rows of the result in a local buffer (the epilogue applied on
        # the way in), then transformed into the output.
        s[result].set_scope("local")
        s[result].compute_at(s[out], outer)
        _, _, cy, cx, cc = s[result].op.axis
    # A reg_w x cb tile at a time summed in registers, the taps unrolled.
    cxo, cxi = s[result].split(cx, cfg["reg_w"].val)
    s[result].reorder(cy, cxo, cxi, cc)
    s[result].unroll(cxi)
    s[result].vectorize(cc)
    s[sums].compute_at(s[result], cxo)
    _, _, _, tx, tc = s[sums].op.axis
    ry, rx = s[sums].op.reduce_axis
    s[sums].reorder(ry, rx, tx, tc)
    for axis in (ry, rx, tx):
        s[sums].unroll(axis)
    s[sums].vectorize(tc)
    _schedule_packs(s, cfg, out, outer, stages)
    return s


def _schedule_output(s, cfg, out, stages):
    """``out`` parallel over (n, channel block, block of rows): the loop returned."""
    n, c, y, x = s[out].op.axis
    OH, OW = (int(d) for d in out.shape[2:])
    cb, oh_bn = int(stages["conv"].shape[-1]), cfg["oh_bn"].val
    co, ci = s[out].split(c, cb)
    yo, yi = s[out].split(y, oh_bn)
    if "result" in stages and OH % oh_bn == 0 and OW % cfg["reg_w"].val == 0:
        # Each channel's rows of the block are one run in the result's buffer as in
        # the output's: one transpose for the block (a 7x7 plane: 4 of 16 columns,
        # where row by row takes 7; mobilenet's 7x7 layer 34 -> 37 GFLOP/s).
        s[out].reorder(n, co, yo, ci, yi, x)
        outer = s[out].fuse(n, co, yo)
        s[out].fuse(yi, x)
        s[out].tensorize(ci, data_unpack_intrin(cb, oh_bn * OW))
    elif "result" in stages:  # each row of the block one transpose
        s[out].reorder(n, co, yo, yi, ci, x)
        outer = s[out].fuse(n, co, yo)
        s[out].tensorize(ci, data_unpack_intrin(cb, OW))
    else:  # the block's rows channel-major first, then the epilogue over them
        rows = stages["conv_rows"]
        unpacked = layout_stage(out, rows)
        if out is not unpacked:
            inline_chain(s, out, unpacked)
            s[unpacked].compute_inline()
        s[out].reorder(n, co, yo, ci, yi, x)
        outer = s[out].fuse(n, co, yo)
        s[out].vectorize(x)
        s[rows].set_scope("local")
        s[rows].compute_at(s[out], outer)
        _, _, rci, ry, rx = s[rows].op.axis
        s[rows].reorder(ry, rci, rx)
        if str(rows.dtype) == "float32":
            s[rows].tensorize(rci, data_unpack_intrin(cb, OW))
        else:
            s[rows].vectorize(rci)
    s[out].parallel(outer)
    return outer


def _schedule_packs(s, cfg, out, outer, stages) -> None:
    """The input packed for each block of rows (its halo rows again for the next
    block) or whole first; each row one transpose where fp32 and the blocks whole.
    The block's weights just before its sums, R x S vectors (no pass of their own; a
    model compiler computes them ahead wherever they are attached, graph.prepack)."""
    data_pack, kernel_pack = stages["data_pack"], stages["kernel_pack"]
    if data_pack.op.input_tensors:  # else blocked data that needs no zeros, read as is
        _schedule_data_pack(s, cfg, out, outer, data_pack)
    s[kernel_pack].compute_at(s[out], outer)
    s[kernel_pack].vectorize(s[kernel_pack].op.axis[-1])


def _schedule_data_pack(s, cfg, out, outer, data_pack) -> None:
    dn, dc, dy, dx, dci = s[data_pack].op.axis
    if cfg["pack"].val == "rows":
        s[data_pack].compute_at(s[out], outer)
    else:
        s[data_pack].parallel(s[data_pack].fuse(dn, dc, dy))
    data = data_pack.op.input_tensors[0]
    if len(data.shape) == 5:  # blocked data: a copy of whole vectors
        s[data_pack].vectorize(dci)
    elif str(data.dtype) == "float32" and int(data.shape[1]) % int(dci.domain.extent) == 0:
        plane = (int(data.shape[2]), int(data.shape[3]))
        s[data_pack].tensorize(dx, data_pack_intrin(int(dci.domain.extent),
                                                    int(dx.domain.extent), plane))
    else:
        s[data_pack].vectorize(dci)


def _refusal(dtype: str) -> str | None:
    if np.dtype(dtype) not in (np.float32, np.float64):
        return f"depthwise_conv2d_nchwc: float32 or float64, not {dtype}"
    return None


def nchwc_applies(N: int, C: int, H: int, W: int, R: int, S: int, stride: Pair = 1,
                  pad: Pair = 0, dilation: Pair = 1, dtype: str = "float32",
                  epilogue: str = "", in_block: int = 0, out_block: int = 0) -> bool:
    """Whether the template computes ``depthwise_conv2d_nchw`` of these arguments: any
    in float32 or float64."""
    return _refusal(dtype) is None


def nchwc_untuned_first(N: int, C: int, H: int, W: int, R: int, S: int, stride: Pair = 1,
                        pad: Pair = 0, dilation: Pair = 1, dtype: str = "float32",
                        epilogue: str = "", in_block: int = 0, out_block: int = 0) -> bool:
    """Whether, untuned, this template's fallback runs rather than the row template's:
    fp32, except where the row template's micro-kernel applies on AVX-512 (stride 1,
    output rows of whole 16-lane vectors) or where each input plane is whole 4 KiB
    pages (the 16 channel rows each packing transpose reads, and the 16 it writes,
    all fall in one L1 set).

    Both fallbacks alternated (1 Zen 4 core, bias+relu6; nchwc / row template):
    MobileNetV2's 3x3 layers at stride 2 (112 to 14) 1.7-4.9x, at stride 1 on 56 to
    7 1.6-3.8x, on 112x112 (7 vectors a row) 0.59x; stride 1 on 64 to 16 (whole
    vectors) 0.17-0.6x; stride 2 on 128 to 32 (whole pages) 0.89-0.95x, on 16x16
    2.7x; 5x5 on 28 and 14 1.2-1.5x. Only measured with 16 lanes: on AVX2 the row
    template's kernel also covers rows of 8-lane vectors.

    Where an edge is blocked, always (fp32 or fp64): the row template computes those
    by this template's body."""
    if in_block or out_block:
        return _refusal(dtype) is None
    (_, sw), (_, pw), (_, dw) = pair(stride), pair(pad), pair(dilation)
    itemsize = np.dtype(dtype).itemsize
    rows_of_vectors = sw == 1 and out_size(W, S, sw, pw, dw) % 16 == 0
    pages = H * W * itemsize % 4096 == 0
    return np.dtype(dtype) == np.float32 and not rows_of_vectors and not pages


def depthwise_nchwc(cfg, N: int, C: int, H: int, W: int, R: int, S: int,
                    stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                    dtype: str = "float32", epilogue: str = "", in_block: int = 0,
                    out_block: int = 0, name: str = "depthwise_conv2d_nchwc"):
    """``(schedule, tensors)``: the template's body, which ``depthwise_conv2d_nchw`` also
    runs where an edge is blocked; ``name`` the template its refusals name. A block
    must be the target's lanes for ``dtype`` (16 fp32 on AVX-512), the template's."""
    as_dtype(dtype)  # an unknown dtype is named in one line, not NumPy's TypeError
    refusal = _refusal(dtype)
    if refusal is not None and name != "depthwise_conv2d_nchwc":
        refusal = f"{name}: channel blocks in float32 or float64, not {dtype}"
    if refusal is not None:
        raise TensorError(refusal)
    check_blocks(name, {"in": C, "out": C}, {"in": in_block, "out": out_block})
    target = cfg.target
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    for side, block in (("in", in_block), ("out", out_block)):
        if block and block != lanes:
            raise TensorError(f"{name}: {side}_block {block}: the template computes in "
                              f"blocks of the target's {lanes} {dtype} lanes")
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    define_nchwc_space(cfg, target, N, -(-C // lanes), OH, OW, blocked_out=bool(out_block))
    inputs, out, stages = depthwise_nchwc_compute(
        N, C, H, W, R, S, stride, pad, dilation, dtype, epilogue, lanes, cfg["reg_w"].val,
        in_block, out_block)
    return schedule_nchwc(cfg, out, stages), [*inputs, out]


@template("depthwise_conv2d_nchwc", reference=depthwise_reference, flop=depthwise_flop,
          implements="depthwise_conv2d_nchw", applies=nchwc_applies,
          untuned_first=nchwc_untuned_first, weights=("kernel", "bias"))
def depthwise_conv2d_nchwc(cfg, N: int, C: int, H: int, W: int, R: int, S: int,
                           stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                           dtype: str = "float32", epilogue: str = "", in_block: int = 0,
                           out_block: int = 0):
    """Depthwise conv2d computed in NCHW[x]c, vectorised across channels; the same
    arguments and tensors as ``depthwise_conv2d_nchw``, which it implements: dispatch
    of that name runs this one where its record is the faster, or untuned where
    :func:`nchwc_untuned_first` says::

        s, (data, kernel, bias, out) = dispatch(
            "depthwise_conv2d_nchw", 1, 384, 14, 14, 3, 3, 1, 1, 1, "float32",
            "bias+relu6", target="c")   # depthwise_conv2d_nchwc's fallback

    ``in_block``, ``out_block`` (0 or the lanes, 16 fp32 on AVX-512): the data and the
    output (and residual) in NCHW16c, read and written as the blocks it computes in."""
    return depthwise_nchwc(cfg, N, C, H, W, R, S, stride, pad, dilation, dtype, epilogue,
                           in_block, out_block)
