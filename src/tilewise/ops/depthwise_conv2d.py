"""Depthwise 2-D convolution, NCHW, weights (C, 1, KH, KW) (channel multiplier 1).

The CPU template vectorises along the output row (W): per (n, c, block of ``oh_bn``
rows) it pads the rows it needs into a small buffer (``compute_at``, so the padding
costs no global pass and no branch in the inner loop; the halo rows are amortised
over ``oh_bn`` rows), then accumulates a ``reg_h x w_bn`` tile in registers
(``cache_write``), taps unrolled, the weights broadcast once per tap. One read of
the input and one write of the output: packing to NCHW[x]c would add two passes.

Where the time goes (mobilenet-dw1, C=32, 112x112, 3x3, Zen 4, 1 thread): the loops
reach ~50 GFLOP/s, 43% of the FMA peak; gcc folds every input load into its FMA as
a memory operand (36 unaligned loads for 36 FMAs of a 4 x 16 tile, though the 18
distinct vectors could each serve up to 3 rows), so the tile is bound by
line-crossing vector loads. On AVX-512 and AVX2 targets the ``kernel`` knob can instead
tensorize the tile with a hand-written micro-kernel (:mod:`.depthwise_intrin`) that
loads each input row once and shifts it in registers; with ``pad="inline"`` it
reads the input itself, masking the border lanes and skipping rows outside, so no
padded copy is made (74 GFLOP/s with the copy, ~95 without it).

Blocked edges (``in_block`` or ``out_block``, NCHW[x]c: :mod:`.blocks`) are computed by
``depthwise_conv2d_nchwc``'s body (:mod:`.depthwise_nchwc`), which works in those blocks.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template
from ..ir.dtype import as_dtype
from ..target import Target
from .blocks import check_blocks, to_blocks
from .depthwise_intrin import depthwise_microkernel
from .epilogue import accumulator, apply_epilogue, epilogue_inputs, epilogue_reference
from .microkernel import simd_fp32
from .window import Pair, divisors, out_size, pair, zero_padded


def depthwise_conv2d_compute(N, C, H, W, R, S, stride=1, pad=0, dilation=1,
                             dtype="float32", epilogue=""):
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    data = te.placeholder((N, C, H, W), dtype, name="data")
    kernel = te.placeholder((C, 1, R, S), dtype, name="kernel")
    padded = zero_padded(data, ph, pw)
    ry = te.reduce_axis((0, R), name="ry")
    rx = te.reduce_axis((0, S), name="rx")
    conv = te.compute(
        (N, C, OH, OW),
        lambda n, c, y, x: te.sum(padded[n, c, y * sh + ry * dh, x * sw + rx * dw]
                                  * kernel[c, 0, ry, rx], axis=[ry, rx]),
        name="conv" if epilogue else "out")
    out, extra = apply_epilogue(conv, epilogue, channel_axis=1)
    return [data, kernel, *extra], out, conv, padded


def depthwise_flop(N, C, H, W, R, S, stride=1, pad=0, dilation=1, *_rest) -> float:
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    return 2.0 * N * C * R * S * out_size(H, R, sh, ph, dh) * out_size(W, S, sw, pw, dw)


def depthwise_reference(N, C, H, W, R, S, stride=1, pad=0, dilation=1, dtype="float32",
                        epilogue="", in_block=0, out_block=0):
    def make(rng: np.random.Generator):
        d = rng.standard_normal((N, C, H, W)).astype(dtype)
        k = rng.standard_normal((C, 1, R, S)).astype(dtype)
        (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
        OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
        x = np.pad(d.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        y = np.zeros((N, C, OH, OW))
        for r in range(R):
            for c in range(S):
                win = x[:, :, r * dh: r * dh + (OH - 1) * sh + 1: sh,
                        c * dw: c * dw + (OW - 1) * sw + 1: sw]
                y += win * k[None, :, 0, r, c, None, None]
        y = y.astype(dtype)
        extra = epilogue_inputs(epilogue, y.shape, 1, rng, dtype)
        y = epilogue_reference(y, epilogue, extra, 1)
        extra = [to_blocks(e, out_block) if e.ndim == 4 else e for e in extra]
        y = to_blocks(y, out_block)
        return [to_blocks(d, in_block), k, *extra, np.zeros(y.shape, dtype)], [y]

    return make


def define_depthwise_space(cfg, target: Target, OH: int, OW: int, dtype: str,
                           microkernel: bool = False) -> None:
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    w_bn = sorted({d for d in divisors(OW) if d % lanes == 0 and d <= 8 * lanes}
                  | {min(OW, 8 * lanes)} | ({lanes} if OW > lanes else set()))
    cfg.define_knob("w_bn", w_bn)
    cfg.define_knob("reg_h", [d for d in (1, 2, 4, 8) if d <= OH])
    cfg.define_knob("oh_bn", [d for d in (1, 2, 4, 8, 16, 32) if d <= OH])
    cfg.define_knob("pad", ["at_rows", "inline"])
    cfg.define_knob("kernel", ["loops", "microkernel"] if microkernel else ["loops"])
    if microkernel:
        # The micro-kernel, reading the input through the inlined padding (no padded
        # copy), as wide as the row allows with 2 rows (4 for narrow tiles): ~95
        # GFLOP/s against 51 for the loops at 1 thread on mobilenet-dw1 (Zen 4; a
        # padded copy costs a quarter of that).
        fb_w = max(w for w in w_bn if w % lanes == 0 and OW % w == 0)
        prefer = (2, 4, 1) if fb_w // lanes > 4 else (4, 2, 1)
        if target.vector_registers < 32:
            # 16 registers (AVX2): two vectors by 8 rows. The kernel keeps only R rows
            # of sums live (6 vectors for two) beside the 9 weights of a 3x3, so its
            # tiles can be tall; two vectors wide doubles the independent FMA chains.
            # mobilenet-dw1 on the Zen 3 VM beside PyTorch (benchmarks/paired.py, 9
            # rounds), one thread / two: 8 x 16 3.22x / 3.74x, 8 x 8 2.62x / 3.03x,
            # 4 x 16 2.84x / 3.63x, 2 x 56 2.48x / 3.12x.
            fb_w = 2 * lanes if OW % (2 * lanes) == 0 else lanes
            prefer = (8, 4, 2, 1)
        reg_h = next(d for d in prefer if OH % d == 0)  # the kernel's tiles are whole
        oh_bn = max(d for d in (1, 2, 4, 8, 16) if OH % d == 0 and d % reg_h == 0)
        cfg.fallback_with(w_bn=fb_w, reg_h=reg_h, oh_bn=oh_bn, pad="inline",
                          kernel="microkernel")
        return
    # One vector wide, 4 rows tall: four independent FMA chains (the FMA latency
    # is 4 cycles) and each padded row vector read by 3 rows' taps; rows padded 16
    # at a time, so the halo costs (16 + R - 1) / 16 of a pass. Measured best of
    # the loops on mobilenet-dw1 (1 thread, Zen 4: 50 GFLOP/s, against 46 for 2 x
    # 112 and 30 for PyTorch in the same run). A width that does not divide the
    # row leaves a guarded tail tile: the whole row then.
    fb_w = min((w for w in w_bn if OW % w == 0), default=max(w_bn))
    reg_h = max(d for d in (1, 2, 4) if d <= OH)
    oh_bn = max(d for d in (1, 2, 4, 8, 16) if d <= OH)
    cfg.fallback_with(w_bn=fb_w, reg_h=reg_h, oh_bn=oh_bn, pad="at_rows", kernel="loops")


@template("depthwise_conv2d_nchw", reference=depthwise_reference, flop=depthwise_flop,
          weights=("kernel", "bias"))
def depthwise_conv2d_nchw(cfg, N: int, C: int, H: int, W: int, R: int, S: int,
                          stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1,
                          dtype: str = "float32", epilogue: str = "", in_block: int = 0,
                          out_block: int = 0):
    """Depthwise NCHW conv2d, vectorised along output rows; ``epilogue`` e.g.
    ``"bias+relu"``. ``in_block`` and ``out_block``: the data's and the output's
    layout, 0 for NCHW, else NCHW[x]c in blocks of that many channels (:mod:`.blocks`),
    the target's lanes (16 fp32 on AVX-512): computed by ``depthwise_conv2d_nchwc``'s
    body, whose knobs they take."""
    as_dtype(dtype)  # an unknown dtype is named in one line, not NumPy's TypeError
    check_blocks("depthwise_conv2d_nchw", {"in": C, "out": C},
                 {"in": in_block, "out": out_block})
    if in_block or out_block:  # the rows would be transposed: computed in the blocks
        from .depthwise_nchwc import depthwise_nchwc  # it imports this module

        return depthwise_nchwc(cfg, N, C, H, W, R, S, stride, pad, dilation, dtype,
                               epilogue, in_block, out_block, name="depthwise_conv2d_nchw")
    target = cfg.target
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    # The micro-kernel: fp32 on AVX-512 or AVX2, stride 1, no dilation, rows of whole
    # vectors, a window row that one vector's shifts cover (see depthwise_intrin).
    ukr_fits = (simd_fp32(target, dtype) and (sh, sw, dh, dw) == (1, 1, 1, 1)
                and OW % lanes == 0 and S <= lanes + 1)
    define_depthwise_space(cfg, target, OH, OW, dtype, microkernel=ukr_fits)
    # Defined last, so that databases written before it keep their indices. The
    # micro-kernel's output rows stored around the cache (non-temporal) where it
    # writes the result itself: through the cache each output line is first read,
    # then evicts input that later tiles read. Where each thread's share of the
    # output is not far beyond its L2 it stays cached (L2, L3) for the next layer, so
    # the fallback streams only where the share is more than twice L2. mobilenet-dw1
    # (1.6 MB) on the Zen 3 VM, 512 KiB of L2 per core, benchmarks/paired.py: one
    # thread (3.1x L2) 2.77x -> 3.07x PyTorch (11 rounds), 2.72x -> 2.97x (9); two
    # threads (1.6x L2) streaming costs: 3.87x -> 3.17x, 6.82x -> 5.98x (9 and 11
    # rounds), and the tuner left it off there in two compare.py runs of three.
    cfg.define_knob("stream", [False, True] if ukr_fits and not epilogue else [False])
    share = N * C * OH * OW * np.dtype(dtype).itemsize / target.cores
    cfg.fallback_with(stream=ukr_fits and not epilogue and share > 2 * target.l2_bytes)
    itemsize = np.dtype(dtype).itemsize
    # What the schedule below builds (no epilogue: the micro-kernel writes the output).
    cfg.require(("stream", "kernel", "w_bn"),
                lambda stream, kernel, w_bn: not stream or (
                    kernel == "microkernel" and not epilogue and w_bn * itemsize % 64 == 0),
                "stream: the micro-kernel's stores of whole cache lines, so its tiles must be "
                "a multiple of 64 bytes wide")
    cfg.require(("oh_bn", "reg_h"), lambda oh_bn, reg_h: oh_bn % reg_h == 0,
                lambda oh_bn, reg_h: f"row block {oh_bn} is not a multiple of reg_h={reg_h}")
    cfg.require(("kernel", "w_bn", "oh_bn", "reg_h"),
                lambda kernel, w_bn, oh_bn, reg_h: kernel != "microkernel" or (
                    w_bn % lanes == 0 and OW % w_bn == 0 and OH % oh_bn == 0),
                lambda kernel, w_bn, oh_bn, reg_h:
                    f"the depthwise micro-kernel needs whole {reg_h} x {w_bn} tiles of "
                    f"{lanes}-lane vectors in {oh_bn}-row blocks (output {OH} x {OW})")
    inputs, out, conv, padded = depthwise_conv2d_compute(N, C, H, W, R, S, stride, pad,
                                                         dilation, dtype, epilogue)
    s = te.create_schedule(out.op)
    ukr = cfg["kernel"].val == "microkernel"
    direct = ukr and out is conv  # no epilogue: the micro-kernel writes the output rows
    CC = out if direct else accumulator(s, out, conv)
    n, c, y, x = s[out].op.axis
    reg_h, oh_bn = cfg["reg_h"].val, cfg["oh_bn"].val
    yo, yi = s[out].split(y, oh_bn)
    ym, yi = s[out].split(yi, reg_h)
    xo, xi = s[out].split(x, cfg["w_bn"].val)
    s[out].reorder(n, c, yo, ym, xo, yi, xi)
    outer = s[out].fuse(n, c, yo)
    s[out].parallel(outer)
    if not direct:
        s[out].vectorize(xi)
        s[CC].compute_at(s[out], xo)
    _, _, cy, cx = s[CC].op.axis
    ry, rx = s[CC].op.reduce_axis
    if ukr:
        w_bn = cfg["w_bn"].val
        # Inlined padding: the kernel reads the input itself, zero outside its plane.
        ukr_intrin = depthwise_microkernel(
            reg_h, w_bn, R, S, lanes, (H, W) if cfg["pad"].val == "inline" else None,
            stream=cfg["stream"].val)
        if direct:
            s[out].tensorize(yi, ukr_intrin)
        else:
            s[CC].reorder(cy, cx, ry, rx)
            s[CC].tensorize(cy, ukr_intrin)
    else:
        if cfg["w_bn"].val % lanes == 0:  # one register per vector of the tile, all unrolled
            cxo, cxi = s[CC].split(cx, lanes)
            s[CC].reorder(ry, rx, cy, cxo, cxi)
            s[CC].unroll(cxo)
        else:
            cxi = cx
            s[CC].reorder(ry, rx, cy, cx)
        s[CC].unroll(ry)
        s[CC].unroll(rx)
        s[CC].unroll(cy)
        s[CC].vectorize(cxi)
    if cfg["pad"].val == "inline":
        s[padded].compute_inline()
    else:
        s[padded].compute_at(s[out], outer)
        s[padded].vectorize(s[padded].op.axis[3])
    return s, [*inputs, out]
