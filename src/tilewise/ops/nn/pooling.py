"""Window pooling over NCHW (ONNX's ``MaxPool`` and ``AveragePool``): per-side pads,
strides, dilations, ``ceil_mode`` and ``count_include_pad``. A window's elements
outside the input are left out of a maximum; an average divides by the elements inside
the input (and, with ``count_include_pad``, inside the explicit pads).

>>> y = pool2d("max", x, (3, 3), strides=(2, 2), pads=(1, 1, 1, 1))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ... import te
from ...errors import TensorError
from ...te import Tensor


def pooled_size(size: int, k: int, s: int, p0: int, p1: int, d: int, ceil_mode: bool) -> int:
    """Windows along one axis; with ``ceil_mode`` a partial last window counts if it
    starts inside the input or its leading pad (as ONNX Runtime computes it)."""
    span = size + p0 + p1 - (d * (k - 1) + 1)
    if span < 0:
        raise TensorError(f"pooling window ({k} wide, dilation {d}) is larger than the "
                          f"padded input ({size} + {p0} + {p1})")
    if not ceil_mode:
        return span // s + 1
    n = -(-span // s) + 1
    return n - 1 if (n - 1) * s >= size + p0 else n


def pool2d(kind: str, x: Tensor, kernel: Sequence[int], strides: Sequence[int] = (1, 1),
           pads: Sequence[int] = (0, 0, 0, 0), dilations: Sequence[int] = (1, 1),
           ceil_mode: bool = False, count_include_pad: bool = False,
           name: str = "pool") -> Tensor:
    """``kind`` ("max" or "avg") over the windows of ``x`` (N, C, H, W); ``pads`` are
    (top, left, bottom, right). An average sums in a stage ``<name>_sum``."""
    if kind not in ("max", "avg"):
        raise TensorError(f"pool2d {name}: kind is 'max' or 'avg', not {kind!r}")
    if x.ndim != 4:
        raise TensorError(f"pool2d {name}: pools a 4-D NCHW input")
    N, C, H, W = (int(d) for d in x.shape)
    (R, S), (sh, sw), (dh, dw) = tuple(kernel), tuple(strides), tuple(dilations)
    pt, pl, pb, pr = tuple(pads)
    OH = pooled_size(H, R, sh, pt, pb, dh, ceil_mode)
    OW = pooled_size(W, S, sw, pl, pr, dw, ceil_mode)
    dtype = str(x.dtype)
    ry = te.reduce_axis((0, R), name="ry")
    rx = te.reduce_axis((0, S), name="rx")

    def window(n, c, y, v, outside):
        h, w = y * sh - pt + ry * dh, v * sw - pl + rx * dw
        inside = te.all(h >= 0, h < H, w >= 0, w < W)
        return te.if_then_else(inside, x[n, c, h, w],
                               te.const(outside, dtype))

    if kind == "max":
        lowest = float(np.finfo(np.dtype(dtype)).min)
        return te.compute((N, C, OH, OW), lambda n, c, y, v: te.max(
            window(n, c, y, v, lowest), axis=[ry, rx]), name=name)
    total = te.compute((N, C, OH, OW), lambda n, c, y, v: te.sum(
        window(n, c, y, v, 0.0), axis=[ry, rx]), name=f"{name}_sum")
    lo_h, hi_h = (-pt, H + pb) if count_include_pad else (0, H)
    lo_w, hi_w = (-pl, W + pr) if count_include_pad else (0, W)

    def count(start, k: int, d: int, lo: int, hi: int):
        """Window positions ``start + r * d`` (r < k) in [lo, hi)."""
        first = te.max((lo - start + d - 1) // d, 0)
        end = te.min((hi - start + d - 1) // d, k)
        return end - first

    def mean(n, c, y, v):
        elements = (count(y * sh - pt, R, dh, lo_h, hi_h)
                    * count(v * sw - pl, S, dw, lo_w, hi_w))
        return total[n, c, y, v] / elements.astype(dtype)

    return te.compute((N, C, OH, OW), mean, name=name)


__all__ = ["pool2d", "pooled_size"]
