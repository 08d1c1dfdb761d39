"""2-D convolution, NCHW or NCHW[x]c in and out, computed in the packed NCHW[x]c layout
(NHWC: :mod:`.conv2d_nhwc`).

NCHW template (``conv2d_nchw``), the structure of the fast hand-written CPU kernels:

- ``data_pack``   (N, C/ic_bn, Hp, Wp, ic_bn): the input, zero padding folded in; with
  the data in blocks (``in_block``, then ``ic_bn``) a plain copy of its rows, a vector
  per column, or no stage at all where no padding is read (conv reads the data);
- ``kernel_pack`` (OC/oc_bn, C/ic_bn, KH, KW, ic_bn, oc_bn): the weights;
- ``conv``        (N, OC/oc_bn, OH, OWp, oc_bn): the convolution, accumulated in a
  ``reg_n x oc_bn`` register tile (``cache_write``), ``oc_bn`` vectorised to the
  target's vector width, ``reg_n`` output columns unrolled (or the tile is the
  hand-written GEMM micro-kernel over one ic block), parallel over the fused
  (n, oc chunk, oh) axis; each tile runs its whole sum, or (``ic_outer``) the ic
  blocks go around all the tiles of a parallel step, whose sums wait in a local
  buffer;
- ``result``      (N, OC/oc_bn, OH, OWp, oc_bn), where there is an epilogue on whole
  fp32 blocks (:func:`unpacked_output`): its steps applied as the register tile
  leaves the accumulator, in place of the tile's plain copy ``conv`` (bias, ReLU,
  ReLU6 and GELU a vector per block, a residual read across its channel planes);
- ``out``         (N, OC, OH, OW): the layout transform back, each row of a block one
  transpose; where the channels do not fill the blocks (or a residual's planes
  alias in L1) the epilogue is inlined into it instead, over a strided read of the
  blocks.

With the output in blocks (``out_block``, then ``oc_bn``) there is no transform back:
the output is ``conv`` itself, or the epilogue's ``result`` on it (any dtype, a
residual in blocks like the output), and its rows are exactly OW wide (``reg_n`` only
tiles that divide OW).

Each layout transform is its own stage, so a network could keep the packed layout
between layers; in fp32 each is a transpose micro-kernel (:mod:`.layout_intrin`).
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template
from ..errors import TensorError
from ..ir.dtype import as_dtype
from ..target import Target
from .blocks import check_blocks, to_blocks
from .conv2d_1x1 import conv2d_1x1, is_pointwise
from .epilogue import (
    accumulator,
    epilogue_inputs,
    epilogue_reference,
    inline_chain,
)
from .gemm_schedule import tile_fits_registers
from .microkernel import gemm_microkernel, simd_fp32
from .nchwc_layout import (
    blocked_output,
    layout_stage,
    packed_data,
    packed_weights,
    padded_blocks,
    schedule_data_pack,
    schedule_unpack,
    schedule_weight_blocks,
    unpacked_blocks,
    unpacked_output,
)
from .window import Pair, divisors, out_size, pair, zero_padded


def conv2d_flop(N, C, H, W, K, R, S, stride=1, pad=0, dilation=1, *_rest) -> float:
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    return 2.0 * N * K * C * R * S * out_size(H, R, sh, ph, dh) * out_size(W, S, sw, pw, dw)


# -- the plain compute (a padding stage, then the reduction) --------------------------

def conv2d_nchw_compute(N, C, H, W, K, R, S, stride=1, pad=0, dilation=1, dtype="float32"):
    """``(data, kernel, padded, out)``: the direct definition, for tests and teaching."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    data = te.placeholder((N, C, H, W), dtype, name="data")
    kernel = te.placeholder((K, C, R, S), dtype, name="kernel")
    padded = zero_padded(data, ph, pw)
    rc = te.reduce_axis((0, C), name="rc")
    ry = te.reduce_axis((0, R), name="ry")
    rx = te.reduce_axis((0, S), name="rx")
    out = te.compute(
        (N, K, OH, OW),
        lambda n, k, y, x: te.sum(
            padded[n, rc, y * sh + ry * dh, x * sw + rx * dw] * kernel[k, rc, ry, rx],
            axis=[rc, ry, rx]),
        name="out")
    return data, kernel, padded, out


# -- NCHW through the packed NCHW[x]c layout ------------------------------------------

def conv2d_nchwc_compute(N, C, H, W, K, R, S, stride, pad, dilation, dtype,
                         ic_bn: int, oc_bn: int, reg_n: int, epilogue: str = "",
                         in_block: int = 0, out_block: int = 0):
    """``(inputs, out, conv, data_pack, kernel_pack)``; conv's width is padded up to a
    multiple of ``reg_n`` and its channels up to a multiple of ``oc_bn``. ``out`` reads
    the blocks alone (``conv``, or the epilogue's ``result`` on them) or, where the
    epilogue does not run on the blocks, is the end of its chain over the transform.

    ``in_block`` (= ``ic_bn``): the data is in those blocks, ``data_pack`` its padded
    copy, or the data itself where no padding is read. ``out_block`` (= ``oc_bn``, with
    ``reg_n`` dividing the row): ``out`` is the blocks, ``conv`` or its ``result``."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    OWp = -(-OW // reg_n) * reg_n
    KC = -(-K // oc_bn)
    Hp = (OH - 1) * sh + (R - 1) * dh + 1
    Wp = (OWp - 1) * sw + (S - 1) * dw + 1
    kernel = te.placeholder((K, C, R, S), dtype, name="kernel")
    if in_block:
        data = te.placeholder((N, C // in_block, H, W, in_block), dtype, name="data")
        data_pack = padded_blocks(data, Hp, Wp, ph, pw)
    else:
        data = te.placeholder((N, C, H, W), dtype, name="data")
        data_pack = packed_data(data, ic_bn, Hp, Wp, ph, pw)
    kernel_pack = packed_weights(kernel, ic_bn, oc_bn)
    ic = te.reduce_axis((0, C), name="ic")
    kh = te.reduce_axis((0, R), name="kh")
    kw = te.reduce_axis((0, S), name="kw")
    conv = te.compute(
        (N, KC, OH, OWp, oc_bn),
        lambda n, o, y, x, ob: te.sum(
            data_pack[n, ic // ic_bn, y * sh + kh * dh, x * sw + kw * dw, ic % ic_bn]
            * kernel_pack[o, ic // ic_bn, kh, kw, ic % ic_bn, ob],
            axis=[ic, kh, kw]),
        name="conv")
    if out_block:
        out, extra = blocked_output(conv, epilogue)
    else:
        out, extra = unpacked_output(conv, (N, K, OH, OW), epilogue)
    return [data, kernel, *extra], out, conv, data_pack, kernel_pack


def define_conv2d_nchw_space(cfg, target: Target, C, K, R, S, OW, dtype,
                             dilation_w: int, in_w: int, in_block: int = 0,
                             out_block: int = 0) -> None:
    """The knobs and fallback; ``in_w``: the width of the padded input rows. Channel
    blocks at the edges fix ``ic_bn`` (``in_block``) and ``oc_bn`` (``out_block``), and
    an output in blocks takes only row tiles that divide its width."""
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    ic = ([in_block] if in_block
          else [d for d in divisors(C) if d <= 64 and d >= min(4, C)] or [C])
    cfg.define_knob("ic_bn", ic)
    cfg.define_knob("oc_bn", [out_block] if out_block
                    else [lanes, 2 * lanes] if K > lanes else [lanes])
    # Beside the divisors, every row tile of two vectors of channels that the
    # registers hold with their operands (up to 14 on AVX-512, 6 on AVX2), so that
    # a row the wide tiles do not divide has one that pads it little (resnet-c4-3x3,
    # OW=14, on AVX2: 5 columns over 15).
    room = target.vector_registers - 4
    regs = sorted({d for d in divisors(OW) if 2 <= d <= 28}
                  | {n for n in (4, 8, 12, 16) if n < OW} | {min(OW, 28)}
                  | set(range(2, min(OW, room // 2) + 1)))
    if out_block:  # the blocks are the output, exactly OW wide: no padded row
        regs = [d for d in divisors(OW) if d <= 28]
    cfg.define_knob("reg_n", regs)
    cfg.define_knob("unroll_kw", [True, False])
    cfg.define_knob("order", ["ic_khkw", "khkw_ic"])
    cfg.define_knob("oh_tile", [1, 2, 4])
    cfg.define_knob("kernel_pack", ["root", "per_chunk"])
    fp32_simd = simd_fp32(target, dtype)
    cfg.define_knob("kernel", ["loops", "ukr"] if fp32_simd else ["loops"])
    # Good without tuning: the largest ic block up to 16, two vectors of output
    # channels, the widest register tile that divides OW and leaves four registers
    # for the operands (28 accumulators on AVX-512, 12 on AVX2);
    # weights larger than L2 packed chunk by chunk (resnet-c4/c5: 2-7% faster).
    fb_ic = max([d for d in ic if d <= 16] or ic[:1])
    fb_oc = out_block or (2 * lanes if K >= 2 * lanes else lanes)
    fits = [r for r in regs if r * (fb_oc // lanes) <= room] or regs[:1]
    whole = [r for r in fits if OW % r == 0]
    # A tile that divides the row, unless it is less than half the widest that fits;
    # else, of the tiles at least that wide, the one that pads the row least
    # (resnet-c4-3x3, OW=14, on one Zen 3 core: 2 columns 12 GFLOP/s; 4 or 6 over a
    # padded row, 49-50; beside PyTorch, 5 over 15 1.00x, 4 over 16 0.94x, 6 over 18
    # 0.86x, benchmarks/paired.py, 9 rounds). The last tile computes only the
    # columns inside the row (the micro-kernel's ``rows``), and the least padding
    # still wins: tiles 5, 5, 4 read 1.08x PyTorch, 6, 6, 2 0.96x, 4, 4, 4, 2 0.94x
    # (7 rounds); against 5 over a padded 15, 1.03x faster (one process, 9 rounds).
    # (With the output in blocks every tile divides the row: the widest that fits.)
    widest = max(fits)
    if whole and 2 * max(whole) > widest:
        reg_n = max(whole)
    else:
        reg_n = min((r for r in fits if 2 * r >= widest), key=lambda r: (-(-OW // r) * r, -r))
    big = K * C * R * S * np.dtype(dtype).itemsize > target.l2_bytes
    # Two vectors of channels keep a tile's loads at about one per two FMAs, which a
    # core starting two FMAs a cycle needs; one that starts one (Zen 4) does better
    # with one vector, the row tile and ic_outer still chosen as for two: twice the
    # channel chunks to share out, weight blocks half as wide. Zen 4, beside PyTorch
    # (benchmarks/paired.py, 7 rounds), 1 / 2 threads: resnet-c5-3x3 1.27 -> 1.48 /
    # 1.51 -> 1.77, c4-3x3 0.98 -> 0.99 / 1.05 -> 1.09, c3-down 1.04 -> 1.05 / 1.14 ->
    # 1.18, c2-3x3 and c3-3x3 within 0.02 (c5 with ic_outer off, as the one-vector
    # row's reads would have it: 1.29 / 1.32); benchmarks/odd_shapes.py: the 7x7 stem
    # 0.94 -> 1.00 / 0.89 -> 0.95, Inception's 1x7 1.13 -> 1.41 / 1.56 -> 1.94, the
    # others within 0.01. Tuning picked one vector on every ResNet 3x3 layer there,
    # and two on every one on Zen 5.
    # The hand-written micro-kernel for the register tile: gcc keeps one address
    # register per row of the tile and spills them; the kernel's rows are constant
    # offsets from one (one core: resnet-c2-3x3 158 -> 169 GFLOP/s, c5 120 -> 128,
    # c3-down 143 -> 155).
    one_vector = target.fma_per_cycle < 2 and not out_block
    cfg.fallback_with(ic_bn=fb_ic, oc_bn=lanes if one_vector else fb_oc,
                      reg_n=reg_n, unroll_kw=True,
                      order="ic_khkw", oh_tile=1, kernel_pack="per_chunk" if big else "root",
                      kernel="ukr" if fp32_simd else "loops")
    # Defined last, so that databases written before it keep their indices. The
    # micro-kernel's sum over one ic block, or over a whole row of the kernel window
    # (kw and the ic block fused, S * ic_bn values of k): with unit dilation both
    # operands read that row as one contiguous run, and the tile is loaded and stored
    # S times less often. One core: ResNet's 7x7 stem (3 channels, a k of 3 per call)
    # 0.42 -> 0.90x PyTorch, resnet-c3-3x3 1.11 -> 1.16x, c2-3x3 1.25 -> 1.27x
    # (benchmarks/paired.py, 7-11 rounds).
    cfg.define_knob("fuse_kw", [False, True] if fp32_simd else [False])
    cfg.fallback_with(fuse_kw=fp32_simd and dilation_w == 1)
    # Defined last as well. The sum's ic blocks outermost, around every register tile
    # of the parallel loop's step (a chunk of output channels, or its oh_tile rows
    # where the weights are packed up front): the sums of all its outputs stay in a
    # local buffer (L1 or L2) between blocks, where each tile otherwise runs its whole
    # sum in turn. Each block of weights is then packed just before its use and read
    # from L1 by every tile, where the tiles otherwise stream the whole chunk's
    # weights from L2 again for each row: for the small planes of deep layers. The
    # fallback turns it on where one row of tiles reads more than half of L2 (its
    # chunk's weights and the R input rows under it): resnet-c5-3x3 on one Zen 3
    # core, 512 KiB of L2, 342 KiB per row: 1.09x -> 1.24x PyTorch (paired, 9
    # rounds); c4 (192 KiB) and c3 (117 KiB) read alike either way (1.03 / 1.05x,
    # 1.13 / 1.12x).
    cfg.define_knob("ic_outer", [False, True])
    itemsize = np.dtype(dtype).itemsize
    row_reads = itemsize * C * R * (S * fb_oc + in_w)
    cfg.fallback_with(ic_outer=2 * row_reads > target.l2_bytes)
    require_conv2d_nchwc_constraints(cfg, target, lanes, dilation_w != 1)
    # With the ic blocks outermost the schedule fixes the order of the sum itself.
    cfg.conditional("order", ("ic_outer",), lambda ic_outer: not ic_outer)


def require_conv2d_nchwc_constraints(cfg, target: Target, lanes: int, dilated: bool) -> None:
    """What :func:`schedule_conv2d_nchwc` builds, declared on the knobs."""
    regs = target.vector_registers
    cfg.require(("reg_n", "oc_bn"), lambda reg_n, oc_bn: reg_n * -(-oc_bn // lanes) <= regs,
                lambda reg_n, oc_bn: f"register tile {reg_n}x{oc_bn} needs more than {regs} "
                                     "vectors")
    cfg.require(("kernel", "reg_n", "oc_bn"),
                lambda kernel, reg_n, oc_bn: kernel != "ukr"
                or tile_fits_registers(reg_n, -(-oc_bn // lanes), target),
                lambda kernel, reg_n, oc_bn: f"the micro-kernel's {reg_n}x{oc_bn} tile leaves "
                                             "no registers for its operands")
    cfg.require(("fuse_kw", "kernel", "order", "ic_outer"),
                lambda fuse_kw, kernel, order, ic_outer: not fuse_kw or (
                    kernel == "ukr" and (ic_outer or order == "ic_khkw") and not dilated),
                "fusing kw into the micro-kernel's sum needs the micro-kernel, the ic_khkw "
                "order (or the ic blocks outermost) and no dilation")


def schedule_conv2d_nchwc(cfg, target: Target, out, conv, data_pack, kernel_pack):
    """The schedule of a config that breaks none of the constraints
    :func:`require_conv2d_nchwc_constraints` declares."""
    lanes = target.vector_lanes(np.dtype(str(conv.dtype)).itemsize)
    oc_bn, reg_n, ic_bn = cfg["oc_bn"].val, cfg["reg_n"].val, cfg["ic_bn"].val
    ukr = cfg["kernel"].val == "ukr"
    ic_outer = cfg["ic_outer"].val
    s = te.create_schedule(out.op)
    # The stage that writes the blocks from the register tile (CC, the sums): a plain
    # copy, or the epilogue's steps on the blocks (the sums then conv itself); the
    # output itself where it is in blocks.
    in_blocks = len(out.shape) == 5
    blocks = out if in_blocks else unpacked_blocks(out)
    if blocks is None:  # an epilogue follows the layout transform: both inside out's loops
        unpacked = layout_stage(out, conv)
        inline_chain(s, out, unpacked)
        s[unpacked].compute_inline()
        blocks = conv
    CC = accumulator(s, blocks, conv)
    n, o, y, x, ob = s[blocks].op.axis
    xo, xi = s[blocks].split(x, reg_n)
    yo, yi = s[blocks].split(y, cfg["oh_tile"].val)
    s[blocks].reorder(n, o, yo, yi, xo, xi, ob)
    per_chunk = cfg["kernel_pack"].val == "per_chunk"
    outer = s[blocks].fuse(n, o) if per_chunk else s[blocks].fuse(n, o, yo)
    s[blocks].parallel(outer)
    s[blocks].vectorize(ob)
    ric, rkh, rkw = s[CC].op.reduce_axis
    ico, ici = s[CC].split(ric, ic_bn)
    if ic_outer:  # one buffer of sums for the step, the ic blocks around its tiles
        s[CC].compute_at(s[blocks], outer)
        _, _, cy, cx, cob = s[CC].op.axis
        cxo, cx = s[CC].split(cx, reg_n)
        s[CC].reorder(ico, cy, cxo, rkh, rkw, ici, cx, cob)
    else:
        s[CC].compute_at(s[blocks], xo)
        _, _, _, cx, cob = s[CC].op.axis
        if cfg["order"].val == "ic_khkw":
            s[CC].reorder(ico, rkh, rkw, ici, cx, cob)
        else:
            s[CC].reorder(rkh, rkw, ico, ici, cx, cob)
    if cfg["unroll_kw"].val:
        s[CC].unroll(rkw)
    # A row that the tiles do not divide is padded to whole tiles; the last tile of
    # each row computes only the columns inside it.
    OW = int(out.shape[3])  # (N, K, OH, OW) or (N, K/cb, OH, OW, cb)
    edge = OW if OW % reg_n else 0
    if cfg["fuse_kw"].val:
        window_row = int(rkw.domain.extent) * ic_bn
        s[CC].tensorize(s[CC].fuse(rkw, ici),
                        gemm_microkernel(reg_n, oc_bn, window_row, lanes, rows=edge))
    elif ukr:  # the tile over (columns, output channels), one ic block of the sum
        s[CC].tensorize(ici, gemm_microkernel(reg_n, oc_bn, ic_bn, lanes, rows=edge))
    else:
        s[CC].unroll(cx)
        s[CC].vectorize(cob)
    # Layout transforms: parallel outer; a row at a time by the transpose micro-kernels
    # of layout_intrin where fp32, else vector inner where the inner axis is contiguous.
    if data_pack.op.input_tensors:  # not the data itself, read in blocks
        schedule_data_pack(s, data_pack)
    ko, kc, *_ = s[kernel_pack].op.axis
    if per_chunk and ic_outer:  # each block of weights just before the tiles read it
        s[kernel_pack].compute_at(s[CC], ico)
    elif per_chunk:
        # Each chunk's weights are packed just before its convolution, into a buffer
        # that stays in L2: the weights cross memory once, not three times.
        s[kernel_pack].compute_at(s[blocks], outer)
    else:
        s[kernel_pack].parallel(s[kernel_pack].fuse(ko, kc))
    schedule_weight_blocks(s, kernel_pack, target)
    if not in_blocks:
        schedule_unpack(s, out, oc_bn, unpacked_blocks(out) is not None)
    return s


def conv2d_reference(N, C, H, W, K, R, S, stride=1, pad=0, dilation=1, dtype="float32",
                     epilogue="", in_block=0, out_block=0):
    def make(rng: np.random.Generator):
        d = rng.standard_normal((N, C, H, W)).astype(dtype)
        k = rng.standard_normal((K, C, R, S)).astype(dtype)
        y = conv2d_nchw_numpy(d, k, stride, pad, dilation)
        extra = epilogue_inputs(epilogue, y.shape, 1, rng, dtype)
        y = epilogue_reference(y, epilogue, extra, 1)
        extra = [to_blocks(e, out_block) if e.ndim == 4 else e for e in extra]
        y = to_blocks(y, out_block)
        return [to_blocks(d, in_block), k, *extra, np.zeros(y.shape, dtype)], [y]

    return make


def conv2d_nchw_numpy(d: np.ndarray, k: np.ndarray, stride=1, pad=0, dilation=1) -> np.ndarray:
    """Direct NumPy convolution (float64 accumulation), NCHW x OIHW -> NCHW."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    N, C, H, W = d.shape
    K, _, R, S = k.shape
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    x = np.pad(d.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((N, K, OH, OW))
    for r in range(R):
        for c in range(S):
            win = x[:, :, r * dh: r * dh + (OH - 1) * sh + 1: sh,
                    c * dw: c * dw + (OW - 1) * sw + 1: sw]
            out += np.einsum("nchw,kc->nkhw", win, k[:, :, r, c].astype(np.float64))
    return out.astype(d.dtype)


@template("conv2d_nchw", reference=conv2d_reference, flop=conv2d_flop,
          weights=("kernel", "bias"))
def conv2d_nchw(cfg, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1, dtype: str = "float32",
                epilogue: str = "", in_block: int = 0, out_block: int = 0):
    """NCHW conv2d (OIHW weights) through the packed NCHW[x]c layout, any stride,
    padding, dilation and kernel size (pointwise 1x1 convolutions as a GEMM per image,
    see :mod:`.conv2d_1x1`); ``epilogue`` e.g. ``"bias+relu"``. ``in_block`` and
    ``out_block``: the data's and the output's (and residual's) layout, 0 for NCHW,
    else NCHW[x]c in blocks of that many channels (:mod:`.blocks`)."""
    as_dtype(dtype)  # an unknown dtype is named in one line, not NumPy's TypeError
    check_blocks("conv2d_nchw", {"in": C, "out": K}, {"in": in_block, "out": out_block})
    target = cfg.target
    if is_pointwise(R, S, stride, pad, dilation):  # a GEMM per image
        return conv2d_1x1(cfg, N, C, H, W, K, dtype, epilogue, in_block, out_block)
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    if out_block not in (0, lanes, 2 * lanes):
        raise TensorError(f"conv2d_nchw: out_block {out_block} is not built; the direct "
                          f"convolution writes blocks of {lanes} or {2 * lanes} {dtype} "
                          f"channels (one or two {target.vector_bits}-bit vectors)")
    (_, sw), (_, pw), (_, dw) = pair(stride), pair(pad), pair(dilation)
    OW = out_size(W, S, sw, pw, dw)
    define_conv2d_nchw_space(cfg, target, C, K, R, S, OW, dtype, dw, W + 2 * pw,
                             in_block, out_block)
    inputs, out, conv, dp, kp = conv2d_nchwc_compute(
        N, C, H, W, K, R, S, stride, pad, dilation, dtype,
        cfg["ic_bn"].val, cfg["oc_bn"].val, cfg["reg_n"].val, epilogue,
        in_block, out_block)
    return (schedule_conv2d_nchwc(cfg, target, out, conv, dp, kp),
            [*inputs, out])
