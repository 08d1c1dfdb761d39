"""Element-wise operators: each output element from the same element of one input."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from ... import te
from ...errors import TensorError
from ...te import Tensor

if TYPE_CHECKING:
    from ...ir import DType, Expr

UNARY = ("relu", "sigmoid", "tanh", "erf", "sqrt", "exp", "log", "neg", "abs", "reciprocal")

_FLOAT_ONLY = frozenset({"sigmoid", "tanh", "erf", "sqrt", "exp", "log", "reciprocal"})

_UNARY: dict[str, Callable[[Expr, DType], Expr]] = {
    "relu": lambda v, dt: te.max(v, te.const(0, dt.name)),
    "sigmoid": lambda v, dt: te.sigmoid(v),
    "tanh": lambda v, dt: te.tanh(v),
    "erf": lambda v, dt: te.erf(v),
    "sqrt": lambda v, dt: te.sqrt(v),
    "exp": lambda v, dt: te.exp(v),
    "log": lambda v, dt: te.log(v),
    "neg": lambda v, dt: te.const(0, dt.name) - v,
    "abs": lambda v, dt: te.abs(v),
    "reciprocal": lambda v, dt: te.const(1, dt.name) / v,
}


def unary(kind: str, x: Tensor, name: str | None = None) -> Tensor:
    """``kind`` (one of :data:`UNARY`) of every element of ``x``.

    >>> y = unary("sigmoid", x)
    """
    fn = _UNARY.get(kind)
    if fn is None:
        raise TensorError(f"unary: unknown kind {kind!r}; have {list(UNARY)}")
    dt = x.dtype
    if kind in _FLOAT_ONLY and not dt.is_float:
        raise TensorError(f"unary {kind}: needs a float tensor, {x.name} is {dt}")
    return te.compute(x.shape, lambda *i: fn(x[i], dt), name=name or kind)


def clip(x: Tensor, lo: float | None, hi: float | None, name: str = "clip") -> Tensor:
    """``np.clip(x, lo, hi)``; a bound of None is no bound."""
    dt = x.dtype

    def body(*i):
        v = x[i]
        if lo is not None:
            v = te.max(v, te.const(lo, dt.name))
        if hi is not None:
            v = te.min(v, te.const(hi, dt.name))
        return v

    return te.compute(x.shape, body, name=name)


def gelu(x: Tensor, approximate: str = "none", name: str = "gelu") -> Tensor:
    """``x * Phi(x)``: the erf form (``approximate="none"``) or the tanh one (``"tanh"``)."""
    dt = x.dtype
    if not dt.is_float:
        raise TensorError(f"gelu: needs a float tensor, {x.name} is {dt}")

    def c(v: float) -> Expr:
        return te.const(v, dt.name)

    if approximate == "none":
        def body(*i):
            v = x[i]
            return v * (c(0.5) + c(0.5) * te.erf(v * c(1 / math.sqrt(2))))
    elif approximate == "tanh":
        def body(*i):
            v = x[i]
            inner = c(math.sqrt(2 / math.pi)) * (v + c(0.044715) * v * v * v)
            return c(0.5) * v * (c(1.0) + te.tanh(inner))
    else:
        raise TensorError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return te.compute(x.shape, body, name=name)


def cast(x: Tensor, dtype: str | DType, name: str = "cast") -> Tensor:
    """``x.astype(dtype)``: C's conversions, which are NumPy's (float to int truncates;
    to bool is ``!= 0``)."""
    return te.compute(x.shape, lambda *i: x[i].astype(dtype), name=name)
