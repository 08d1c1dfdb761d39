"""The geometry of a window sliding over an image, shared by the convolutions and the
pools: stride, padding and dilation per spatial axis, the output's size, and the
divisors of an extent that row tiles are cut from."""

from __future__ import annotations

#: A stride, padding or dilation: one value for both spatial axes, or (height, width).
Pair = int | tuple[int, int]


def pair(v: Pair) -> tuple[int, int]:
    """``v`` as (height, width)."""
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def out_size(size: int, k: int, stride: int, pad: int, dil: int) -> int:
    """Outputs along an axis of ``size`` inputs, a window of ``k`` taps ``dil`` apart."""
    return (size + 2 * pad - (k - 1) * dil - 1) // stride + 1


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
