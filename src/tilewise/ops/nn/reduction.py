"""Reductions: sum, mean and max over axes, softmax (max subtracted) and global
average pooling. Each reduction is a stage of its own; a mean divides in a second,
element-wise stage that a schedule inlines into its consumer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ... import te
from ...errors import TensorError
from ...te import Tensor
from .broadcast import trunc_div

if TYPE_CHECKING:
    from ...ir import Expr

REDUCE = ("sum", "mean", "max", "min")

_FOLD: dict[str, Callable] = {"sum": te.sum, "mean": te.sum, "max": te.max, "min": te.min}


def _axes(x: Tensor, axes: Sequence[int] | None, what: str) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(x.ndim))
    out = set()
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise TensorError(f"{what}: axis {a} is out of range for rank {x.ndim}")
        out.add(a % x.ndim)
    return tuple(sorted(out))


def _fold(kind: str, x: Tensor, axes: tuple[int, ...], keepdims: bool, name: str) -> Tensor:
    """One reduction stage: ``kind`` of ``x`` over ``axes``."""
    rks = {a: te.reduce_axis((0, x.shape[a]), name=f"k{a}") for a in axes}
    shape = tuple(1 if d in rks else n for d, n in enumerate(x.shape)
                  if keepdims or d not in rks)

    def body(*i):
        it = iter(i)
        index = []
        for d in range(x.ndim):
            if d in rks:
                index.append(rks[d])
                if keepdims:
                    next(it)
            else:
                index.append(next(it))
        return _FOLD[kind](x[tuple(index)], axis=list(rks.values()))

    return te.compute(shape, body, name=name)


def reduce(kind: str, x: Tensor, axes: Sequence[int] | None = None, keepdims: bool = True,
           name: str | None = None) -> Tensor:
    """``kind`` (one of :data:`REDUCE`) of ``x`` over ``axes``, as ``np.sum / np.mean /
    np.max / np.min(x, axis=axes, keepdims=keepdims)``: None reduces every axis, an
    empty tuple none (a copy; the importer spells out ONNX's "empty means all").

    A sum accumulates in ``x``'s type, in order; an integer mean rounds toward zero.

    >>> m = reduce("mean", x, (1, 2), keepdims=True)
    """
    if kind not in _FOLD:
        raise TensorError(f"reduce: unknown kind {kind!r}; have {list(REDUCE)}")
    axes_ = _axes(x, axes, f"reduce_{kind}")
    name = name or f"reduce_{kind}"
    if not axes_:
        return te.compute(x.shape, lambda *i: x[i], name=name)
    if kind != "mean":
        return _fold(kind, x, axes_, keepdims, name)
    total = _fold("sum", x, axes_, keepdims, f"{name}_sum")
    count = te.const(math.prod(x.shape[a] for a in axes_), x.dtype.name)

    def divide(v: Expr) -> Expr:
        return v / count if v.dtype.is_float else trunc_div(v, count)

    return te.compute(total.shape, lambda *i: divide(total[i]), name=name)


def global_avg_pool(x: Tensor, name: str = "global_avg_pool") -> Tensor:
    """The mean over every axis after the first two: (N, C, H, W) -> (N, C, 1, 1)."""
    if x.ndim < 3:
        raise TensorError(f"global_avg_pool: {x.name} has rank {x.ndim}; needs N, C and "
                          "at least one spatial axis")
    return reduce("mean", x, tuple(range(2, x.ndim)), keepdims=True, name=name)


def softmax(x: Tensor, axis: int = -1, name: str = "softmax") -> Tensor:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``: the row max, the shifted
    row ``max(x - max, low)``, its exponentials, their sum, its reciprocal and the
    quotient (a product by the reciprocal).

    ``low`` is the logarithm of the smallest normal number, rounded up (-87 in float32,
    -708 in float64): glibc's vector ``exp`` computes a whole vector on its scalar path
    when one lane lies below it, which an additive attention mask (-10000) puts in
    every vector (BERT's softmax 12x128x128, one core: 2.4 ns an exponential, not
    0.3). Exponentials under ``exp(low + 1)`` are flushed to 0 in the quotient; the
    result differs from the exact one by less than that (4.5e-38 in float32).
    """
    if not -x.ndim <= axis < x.ndim:
        raise TensorError(f"softmax: axis {axis} is out of range for rank {x.ndim}")
    axis %= x.ndim
    if not x.dtype.is_float:
        raise TensorError(f"softmax: needs a float tensor, {x.name} is {x.dtype}")
    n = x.shape[axis]

    def outer(i: tuple) -> tuple:
        return i[:axis] + i[axis + 1:]

    def at(i: tuple, k) -> tuple:
        return (*i[:axis], k, *i[axis:])

    shape = tuple(m for d, m in enumerate(x.shape) if d != axis)
    dt = x.dtype.name
    # exp runs in float (a float16 too) or double: the bound is theirs.
    bound = math.ceil(math.log(np.finfo(np.float64 if x.dtype.bits == 64 else np.float32).tiny))
    low, small = te.const(float(bound), dt), te.const(math.exp(bound + 1), dt)
    k1 = te.reduce_axis((0, n), name="k1")
    mx = te.compute(shape, lambda *i: te.max(x[at(i, k1)], axis=k1), name=f"{name}_max")
    # max(low, d), not max(d, low): a NaN stays NaN.
    shift = te.compute(x.shape, lambda *i: te.max(low, x[i] - mx[outer(i)]),
                       name=f"{name}_shift")
    ex = te.compute(x.shape, lambda *i: te.exp(shift[i]), name=f"{name}_exp")
    k2 = te.reduce_axis((0, n), name="k2")
    total = te.compute(shape, lambda *i: te.sum(ex[at(i, k2)], axis=k2), name=f"{name}_sum")
    zero, one = te.const(0.0, dt), te.const(1.0, dt)
    inv = te.compute(shape, lambda *i: one / total[i], name=f"{name}_inv")

    def quotient(*i):
        # The flush selects in the quotient's loop: one with the exp call in it is
        # not vectorised by gcc (the call may set errno, so it is not if-converted).
        e = ex[i]
        return te.if_then_else(e < small, zero, e * inv[outer(i)])

    return te.compute(x.shape, quotient, name=name)
