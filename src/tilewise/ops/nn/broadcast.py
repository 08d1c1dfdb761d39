"""Broadcasting operators: binary arithmetic and comparisons, ``where`` and ``expand``,
with NumPy's broadcasting rules (shapes aligned on the right, size-1 axes stretched)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ... import te
from ...errors import TensorError
from ...te import Tensor

if TYPE_CHECKING:
    from ...ir import Expr

BINARY = ("add", "sub", "mul", "div", "pow", "max", "min", "equal", "less", "greater")


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...]:
    """NumPy's ``broadcast_shapes``, raising TensorError on a mismatch."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for d in range(rank):
        sizes = {s[len(s) - rank + d] for s in shapes if len(s) - rank + d >= 0} - {1}
        if len(sizes) > 1:
            raise TensorError(f"shapes {[tuple(s) for s in shapes]} do not broadcast "
                              f"(axis {d} of the result)")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcast_read(t: Tensor, index: Sequence[Expr]) -> Expr:
    """``t`` read at an index of a shape it broadcasts to: its axes are the last ones of
    ``index``; a size-1 axis is read at 0."""
    tail = index[len(index) - t.ndim:]
    return t[tuple(0 if n == 1 else ix for n, ix in zip(t.shape, tail, strict=True))]


def trunc_div(a: Expr, b: Expr) -> Expr:
    """Integer division rounding toward zero (C's, ONNX's) from te's floor division."""
    q = a // b
    inexact = te.all(a % b != 0, (a < 0) != (b < 0))
    return te.if_then_else(inexact, q + 1, q)


def _div(a: Expr, b: Expr) -> Expr:
    return a / b if a.dtype.is_float or b.dtype.is_float else trunc_div(a, b)


def _pow(a: Expr, b: Expr) -> Expr:
    if a.dtype.is_float:
        return te.power(a, b.astype(a.dtype))
    return te.power(a.astype("float64"), b.astype("float64")).astype(a.dtype)


_BINARY: dict[str, Callable[[Expr, Expr], Expr]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": _div,
    "pow": _pow,
    "max": lambda a, b: te.max(a, b),
    "min": lambda a, b: te.min(a, b),
    "equal": lambda a, b: a == b,
    "less": lambda a, b: a < b,
    "greater": lambda a, b: a > b,
}


def binary(kind: str, a: Tensor, b: Tensor, name: str | None = None) -> Tensor:
    """``kind`` (one of :data:`BINARY`) of ``a`` and ``b``, broadcast.

    Integer ``div`` rounds toward zero (ONNX's ``Div``, C's ``/``; NumPy's ``//``
    floors: they differ on operands of opposite signs); ``pow`` has ``a``'s type;
    ``equal``, ``less`` and ``greater`` produce ``bool``.

    >>> c = binary("add", x, y)      # x (3, 1, 5), y (4, 1) -> (3, 4, 5)
    """
    fn = _BINARY.get(kind)
    if fn is None:
        raise TensorError(f"binary: unknown kind {kind!r}; have {list(BINARY)}")
    shape = broadcast_shape(a.shape, b.shape)
    return te.compute(shape, lambda *i: fn(broadcast_read(a, i), broadcast_read(b, i)),
                      name=name or kind)


def where(cond: Tensor, x: Tensor, y: Tensor, name: str = "where") -> Tensor:
    """``np.where(cond, x, y)``, the three broadcast; a non-bool ``cond`` is ``!= 0``."""
    shape = broadcast_shape(cond.shape, x.shape, y.shape)
    return te.compute(shape, lambda *i: te.if_then_else(
        broadcast_read(cond, i), broadcast_read(x, i), broadcast_read(y, i)), name=name)


def expand(x: Tensor, shape: Sequence[int], name: str = "expand") -> Tensor:
    """``x`` broadcast to ``shape`` (ONNX ``Expand``: the result has the broadcast of
    both shapes, which is ``shape`` where ``shape`` is the output's)."""
    out = broadcast_shape(x.shape, tuple(shape))
    return te.compute(out, lambda *i: broadcast_read(x, i), name=name)
