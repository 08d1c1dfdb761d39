"""Normalisations: inference batch norm (per channel, axis 1) and layer norm (over
the trailing axes, with its mean and variance as two reduction stages and the
reciprocal of its standard deviation as a third stage, a value a row)."""

from __future__ import annotations

import math

from ... import te
from ...errors import TensorError
from ...te import Tensor
from .broadcast import broadcast_read, broadcast_shape


def batch_norm(x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, var: Tensor,
               eps: float = 1e-5, name: str = "batch_norm") -> Tensor:
    """``(x - mean) / sqrt(var + eps) * scale + bias``, the four per channel (axis 1 of
    ``x``, each of shape ``(C,)``)."""
    if x.ndim < 2:
        raise TensorError(f"batch_norm: {x.name} has rank {x.ndim}; the channel axis is 1")
    c = x.shape[1]
    for t in (scale, bias, mean, var):
        if t.shape != (c,):
            raise TensorError(f"batch_norm: {t.name} has shape {t.shape}, expected ({c},)")
    e = te.const(eps, x.dtype.name)

    def body(*i):
        ch = i[1]
        return (x[i] - mean[ch]) / te.sqrt(var[ch] + e) * scale[ch] + bias[ch]

    return te.compute(x.shape, body, name=name)


def layer_norm(x: Tensor, scale: Tensor, bias: Tensor | None = None, axis: int = -1,
               eps: float = 1e-5, name: str = "layer_norm") -> Tensor:
    """Normalise ``x`` over the axes ``axis..rank-1``: ``(x - mean) / sqrt(var + eps) *
    scale + bias``, ``scale`` and ``bias`` broadcast against those axes.

    The variance is the mean of squared deviations from the mean (two passes over
    the row, which a schedule keeps in cache), not ``E[x^2] - E[x]^2``, which cancels.
    """
    if not -x.ndim <= axis < x.ndim:
        raise TensorError(f"layer_norm: axis {axis} is out of range for rank {x.ndim}")
    axis %= x.ndim
    if not x.dtype.is_float:
        raise TensorError(f"layer_norm: needs a float tensor, {x.name} is {x.dtype}")
    inner = x.shape[axis:]
    for t in (scale, bias):
        if t is not None and broadcast_shape(t.shape, inner) != inner:
            raise TensorError(f"layer_norm: {t.name} {t.shape} does not broadcast to the "
                              f"normalised axes {inner}")
    outer = x.shape[:axis]
    inv_n = te.const(1.0 / math.prod(inner), x.dtype.name)
    e = te.const(eps, x.dtype.name)

    def ks(tag: str):
        return [te.reduce_axis((0, n), name=f"{tag}{d}") for d, n in enumerate(inner)]

    k1 = ks("k")
    total = te.compute(outer, lambda *o: te.sum(x[(*o, *k1)], axis=k1), name=f"{name}_sum")
    k2 = ks("j")

    def dev2(*o):
        d = x[(*o, *k2)] - total[o] * inv_n
        return te.sum(d * d, axis=k2)

    sq = te.compute(outer, dev2, name=f"{name}_sqsum")

    one = te.const(1.0, x.dtype.name)
    # A reciprocal square root a row, a product an element.
    rstd = te.compute(outer, lambda *o: one / te.sqrt(sq[o] * inv_n + e), name=f"{name}_rstd")

    def body(*i):
        o, r = i[:axis], i[axis:]
        v = (x[i] - total[o] * inv_n) * rstd[o] * broadcast_read(scale, r)
        return v + broadcast_read(bias, r) if bias is not None else v

    return te.compute(x.shape, body, name=name)
