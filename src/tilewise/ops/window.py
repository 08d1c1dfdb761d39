"""The geometry of a window sliding over an image, shared by the convolutions and the
pools: stride, padding and dilation per spatial axis, the output's size, and the
divisors of an extent that row tiles are cut from, and the zero-padded input the
window reads."""

from __future__ import annotations

import math

from .. import te
from ..errors import TensorError
from ..te.tensor import Tensor

#: A stride, padding or dilation: one value for both spatial axes, or (height, width).
Pair = int | tuple[int, int]


def pair(v: Pair) -> tuple[int, int]:
    """``v`` as (height, width)."""
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def out_size(size: int, k: int, stride: int, pad: int, dil: int) -> int:
    """Outputs along an axis of ``size`` inputs, a window of ``k`` taps ``dil`` apart.

    Every window template asks this first, so a geometry that has no output is refused
    here, in one line, before it reaches a schedule."""
    if min(size, k, stride, dil) < 1 or pad < 0:
        raise TensorError(f"a window needs a positive size, window, stride and dilation and "
                          f"a padding of at least 0; got size {size}, window {k}, stride "
                          f"{stride}, dilation {dil}, padding {pad}")
    span = (k - 1) * dil + 1
    if span > size + 2 * pad:
        raise TensorError(f"a window of {span} (size {k}, dilation {dil}) is larger than its "
                          f"padded input of {size + 2 * pad} (size {size}, padding {pad})")
    return (size + 2 * pad - span) // stride + 1


def divisors(n: int) -> list[int]:
    # In pairs up to sqrt(n): an extent of 2**31 is answered at once, not in minutes.
    low = [d for d in range(1, math.isqrt(max(n, 0)) + 1) if n % d == 0]
    return sorted({*low, *(n // d for d in low)})


def zero_padded(data: Tensor, ph: int, pw: int, channels_last: bool = False) -> Tensor:
    """``data`` (N, C, H, W), or (N, H, W, C) where ``channels_last``, with ``ph`` rows
    and ``pw`` columns of zeros on each side of its planes: the stage ``padded``."""
    zero = te.const(0.0, str(data.dtype))
    if channels_last:
        N, H, W, C = (int(d) for d in data.shape)
        return te.compute(
            (N, H + 2 * ph, W + 2 * pw, C),
            lambda n, h, w, c: te.if_then_else(
                te.all(h >= ph, h < H + ph, w >= pw, w < W + pw), data[n, h - ph, w - pw, c],
                zero),
            name="padded")
    N, C, H, W = (int(d) for d in data.shape)
    return te.compute(
        (N, C, H + 2 * ph, W + 2 * pw),
        lambda n, c, h, w: te.if_then_else(
            te.all(h >= ph, h < H + ph, w >= pw, w < W + pw), data[n, c, h - ph, w - pw],
            zero),
        name="padded")
