"""2-D max and average pooling, NCHW, any window, stride and padding.

Padding is inlined (max pads with -inf; average divides by the count of in-bounds
taps, ``count_include_pad=False``); the template parallelises over (n, c, row
block) and vectorises along the output row.
"""

from __future__ import annotations

import numpy as np

from .. import te
from ..autotune import template
from .window import Pair, out_size, pair


def pool2d_compute(kind: str, N, C, H, W, R, S, stride=1, pad=0, dtype="float32"):
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    OH, OW = out_size(H, R, sh, ph, 1), out_size(W, S, sw, pw, 1)
    data = te.placeholder((N, C, H, W), dtype, name="data")
    ry = te.reduce_axis((0, R), name="ry")
    rx = te.reduce_axis((0, S), name="rx")

    def inside(y, x):
        h, w = y * sh + ry - ph, x * sw + rx - pw
        return te.all(h >= 0, h < H, w >= 0, w < W), h, w

    if kind == "max":
        def fmax(n, c, y, x):
            ok, h, w = inside(y, x)
            return te.max(te.if_then_else(ok, data[n, c, h, w], te.const(-3.0e38, dtype)),
                          axis=[ry, rx])
        out = te.compute((N, C, OH, OW), fmax, name="out")
        return data, out, None
    def fsum(n, c, y, x):
        ok, h, w = inside(y, x)
        return te.sum(te.if_then_else(ok, data[n, c, h, w], te.const(0.0, dtype)), axis=[ry, rx])
    total = te.compute((N, C, OH, OW), fsum, name="pool_sum")

    def count(y, x):
        h0, w0 = y * sh - ph, x * sw - pw
        hs = te.min(h0 + R, H) - te.max(h0, 0)
        ws = te.min(w0 + S, W) - te.max(w0, 0)
        return hs * ws

    out = te.compute((N, C, OH, OW),
                     lambda n, c, y, x: total[n, c, y, x] / count(y, x).astype(dtype),
                     name="out")
    return data, out, total


def _pool_reference(kind):
    def factory(N, C, H, W, R, S, stride=1, pad=0, dtype="float32"):
        def make(rng: np.random.Generator):
            d = rng.standard_normal((N, C, H, W)).astype(dtype)
            (sh, sw), (ph, pw) = pair(stride), pair(pad)
            OH, OW = out_size(H, R, sh, ph, 1), out_size(W, S, sw, pw, 1)
            fill = -np.inf if kind == "max" else 0.0
            x = np.pad(d.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)),
                       constant_values=fill)
            ones = np.pad(np.ones((H, W)), ((ph, ph), (pw, pw)))
            acc = np.full((N, C, OH, OW), fill)
            cnt = np.zeros((OH, OW))
            for r in range(R):
                for c in range(S):
                    win = x[:, :, r: r + (OH - 1) * sh + 1: sh, c: c + (OW - 1) * sw + 1: sw]
                    cnt += ones[r: r + (OH - 1) * sh + 1: sh, c: c + (OW - 1) * sw + 1: sw]
                    acc = np.maximum(acc, win) if kind == "max" else acc + win
            y = acc if kind == "max" else acc / cnt
            return [d, np.zeros(y.shape, dtype)], [y.astype(dtype)]
        return make
    return factory


def _pool_flop(N, C, H, W, R, S, stride=1, pad=0, *_rest) -> float:
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    return 1.0 * N * C * R * S * out_size(H, R, sh, ph, 1) * out_size(W, S, sw, pw, 1)


def _schedule_pool(cfg, out, total):
    s = te.create_schedule(out.op)
    n, c, y, x = s[out].op.axis
    OH = int(out.shape[2])
    cfg.define_knob("oh_bn", [d for d in (1, 2, 4, 8) if d <= OH])
    cfg.define_knob("vec", [True, False])
    cfg.fallback_with(oh_bn=1, vec=True)
    yo, yi = s[out].split(y, cfg["oh_bn"].val)
    outer = s[out].fuse(n, c, yo)
    s[out].parallel(outer)
    if total is None:  # max: the window's taps outside the row, so the row vectorises
        ry, rx = s[out].op.reduce_axis
        s[out].reorder(outer, yi, ry, rx, x)
    else:
        s[total].compute_at(s[out], yi)
        _, _, _, tx = s[total].op.axis
        ry, rx = s[total].op.reduce_axis
        s[total].reorder(ry, rx, tx)
        if cfg["vec"].val:
            s[total].vectorize(tx)
    if cfg["vec"].val:
        s[out].vectorize(x)
    return s


@template("max_pool2d", reference=_pool_reference("max"), flop=_pool_flop)
def max_pool2d(cfg, N: int, C: int, H: int, W: int, R: int, S: int, stride: Pair = 1,
               pad: Pair = 0, dtype: str = "float32"):
    """Max pooling over R x S windows, NCHW."""
    data, out, _ = pool2d_compute("max", N, C, H, W, R, S, stride, pad, dtype)
    return _schedule_pool(cfg, out, None), [data, out]


@template("avg_pool2d", reference=_pool_reference("avg"), flop=_pool_flop)
def avg_pool2d(cfg, N: int, C: int, H: int, W: int, R: int, S: int, stride: Pair = 1,
               pad: Pair = 0, dtype: str = "float32"):
    """Average pooling over R x S windows, NCHW, padding excluded from the count."""
    data, out, total = pool2d_compute("avg", N, C, H, W, R, S, stride, pad, dtype)
    return _schedule_pool(cfg, out, total), [data, out]
