"""2-D convolution in NHWC with HWIO weights: no packing, the channel axes are already
innermost. A ``reg_n x oc_bn`` register tile over (output column, output channel), the
channels vectorised, each output row's padded input computed just before it (or
inlined into the reads)."""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template
from ..errors import InvalidConfigError
from ..ir.dtype import as_dtype
from .conv2d import conv2d_flop, conv2d_nchw_numpy
from .epilogue import accumulator, apply_epilogue, epilogue_inputs, epilogue_reference
from .window import Pair, divisors, out_size, pair, zero_padded


def conv2d_nhwc_compute(N, H, W, C, K, R, S, stride=1, pad=0, dilation=1, dtype="float32",
                        epilogue=""):
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    OH, OW = out_size(H, R, sh, ph, dh), out_size(W, S, sw, pw, dw)
    data = te.placeholder((N, H, W, C), dtype, name="data")
    kernel = te.placeholder((R, S, C, K), dtype, name="kernel")
    padded = zero_padded(data, ph, pw, channels_last=True)
    rc = te.reduce_axis((0, C), name="rc")
    ry = te.reduce_axis((0, R), name="ry")
    rx = te.reduce_axis((0, S), name="rx")
    conv = te.compute(
        (N, OH, OW, K),
        lambda n, y, x, k: te.sum(
            padded[n, y * sh + ry * dh, x * sw + rx * dw, rc] * kernel[ry, rx, rc, k],
            axis=[ry, rx, rc]),
        name="conv" if epilogue else "out")
    out, extra = apply_epilogue(conv, epilogue, channel_axis=3)
    return [data, kernel, *extra], out, conv, padded


def conv2d_nhwc_reference(N, H, W, C, K, R, S, stride=1, pad=0, dilation=1, dtype="float32",
                          epilogue=""):
    def make(rng: np.random.Generator):
        d = rng.standard_normal((N, H, W, C)).astype(dtype)
        k = rng.standard_normal((R, S, C, K)).astype(dtype)
        y = conv2d_nchw_numpy(d.transpose(0, 3, 1, 2), k.transpose(3, 2, 0, 1),
                              stride, pad, dilation).transpose(0, 2, 3, 1)
        extra = epilogue_inputs(epilogue, y.shape, 3, rng, dtype)
        y = np.ascontiguousarray(epilogue_reference(y, epilogue, extra, 3))
        return [d, k, *extra, np.zeros(y.shape, dtype)], [y]

    return make


def _conv2d_nhwc_flop(N, H, W, C, K, R, S, stride=1, pad=0, dilation=1, *_rest) -> float:
    return conv2d_flop(N, C, H, W, K, R, S, stride, pad, dilation)


def _nhwc_fallback_tile(oc: list[int], regs: list[int], lanes: int,
                        room: int) -> tuple[int, int]:
    """(oc_bn, reg_n) of the fallback: two vectors of channels, else one, else the
    others, with the widest row tile of at most ``room`` accumulators (the registers
    but four, left for the operands)."""
    for width in sorted(oc, key=lambda d: (d != 2 * lanes, d != lanes, d)):
        fits = [r for r in regs if r * -(-width // lanes) <= room]
        if fits:
            return width, max(fits)
    raise InvalidConfigError(f"no register tile of {regs} x {oc} fits {room} vectors")


@template("conv2d_nhwc", reference=conv2d_nhwc_reference, flop=_conv2d_nhwc_flop,
          weights=("kernel", "bias"))
def conv2d_nhwc(cfg, N: int, H: int, W: int, C: int, K: int, R: int, S: int,
                stride: Pair = 1, pad: Pair = 0, dilation: Pair = 1, dtype: str = "float32",
                epilogue: str = ""):
    """NHWC conv2d with HWIO weights: a ``reg_n x oc_bn`` register tile over (ow, k),
    k vectorised, the padded rows computed per output row (or inlined)."""
    as_dtype(dtype)  # an unknown dtype is named in one line, not NumPy's TypeError
    target = cfg.target
    lanes = target.vector_lanes(np.dtype(dtype).itemsize)
    (_, sw), (_, pw), (_, dw) = pair(stride), pair(pad), pair(dilation)
    OW = out_size(W, S, sw, pw, dw)
    oc = [d for d in (lanes, 2 * lanes, 4 * lanes) if K % d == 0] or [K if K <= 2 * lanes
                                                                      else lanes]
    cfg.define_knob("oc_bn", oc)
    # The widest row tiles of one and two vectors of channels that the registers hold
    # with their operands as well (28 and 14 on AVX-512, 12 and 6 on AVX2), so that a
    # row of a prime width has a tile that fits (19 x 32 would take 38 on AVX-512).
    room = target.vector_registers - 4
    regs = sorted({d for d in divisors(OW) if 2 <= d <= 28}
                  | {min(OW, 28), min(OW, room), min(OW, room // 2)})
    cfg.define_knob("reg_n", regs)
    cfg.define_knob("pad", ["at_row", "inline"])
    cfg.define_knob("unroll_kw", [True, False])
    # Two vectors even where a core starts one FMA a cycle (unlike conv2d_nchw's
    # micro-kernel): on Zen 4, one vector over a row twice as wide read 0.85-1.00x
    # the two-vector tile on the six ResNet layers (one thread; 0.87-1.01x on two;
    # benchmarks/paired.py --template conv2d_nhwc, 5 rounds).
    fb_oc, fb_reg = _nhwc_fallback_tile(oc, regs, lanes, room)
    cfg.fallback_with(oc_bn=fb_oc, reg_n=fb_reg, pad="at_row", unroll_kw=True)
    most = target.vector_registers
    cfg.require(("reg_n", "oc_bn"), lambda reg_n, oc_bn: reg_n * -(-oc_bn // lanes) <= most,
                lambda reg_n, oc_bn: f"register tile {reg_n}x{oc_bn} needs more than {most} "
                                     "vectors")
    oc_bn, reg_n = cfg["oc_bn"].val, cfg["reg_n"].val

    inputs, out, conv, padded = conv2d_nhwc_compute(N, H, W, C, K, R, S, stride, pad,
                                                    dilation, dtype, epilogue)
    s = te.create_schedule(out.op)
    CC = accumulator(s, out, conv)
    n, y, x, k = s[out].op.axis
    ko, ki = s[out].split(k, oc_bn)
    xo, xi = s[out].split(x, reg_n)
    s[out].reorder(n, y, ko, xo, xi, ki)
    row = s[out].fuse(n, y)
    s[out].parallel(row)
    s[out].vectorize(ki)
    s[CC].compute_at(s[out], xo)
    _, _, cx, ck = s[CC].op.axis
    ry, rx, rc = s[CC].op.reduce_axis
    s[CC].reorder(ry, rx, rc, cx, ck)
    if cfg["unroll_kw"].val:
        s[CC].unroll(rx)
    s[CC].unroll(cx)
    s[CC].vectorize(ck)
    if cfg["pad"].val == "inline":
        s[padded].compute_inline()
    else:
        s[padded].compute_at(s[out], row)
        s[padded].vectorize(s[padded].op.axis[3])
    return s, [*inputs, out]
