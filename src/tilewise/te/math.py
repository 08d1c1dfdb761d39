"""Elementwise intrinsics, reductions and logical helpers of the te language."""

from __future__ import annotations

from functools import reduce as _fold
from typing import Any

from ..errors import TensorError
from ..ir import BinaryOp, Expr, MathFunc, binary, call, convert, max_, min_, select
from ..ir import const as _const
from ..ir.expr import ExprLike
from .tensor import Reduce, ReduceKind, make_reduce


def const(value: int | float | bool, dtype: str | None = None) -> Expr:
    return _const(value, dtype)


def exp(x: ExprLike) -> Expr:
    return call(MathFunc.EXP, x)


def log(x: ExprLike) -> Expr:
    return call(MathFunc.LOG, x)


def sqrt(x: ExprLike) -> Expr:
    return call(MathFunc.SQRT, x)


def tanh(x: ExprLike) -> Expr:
    return call(MathFunc.TANH, x)


def sigmoid(x: ExprLike) -> Expr:
    return call(MathFunc.SIGMOID, x)


def erf(x: ExprLike) -> Expr:
    return call(MathFunc.ERF, x)


def abs(x: ExprLike) -> Expr:  # noqa: A001 - te's name
    return call(MathFunc.ABS, x)


def power(x: ExprLike, y: ExprLike) -> Expr:
    return call(MathFunc.POW, x, y)


def if_then_else(cond: ExprLike, t: ExprLike, f: ExprLike) -> Expr:
    return select(cond, t, f)


def all(*conds: ExprLike) -> Expr:  # noqa: A001 - te's name
    if not conds:
        raise TensorError("te.all needs at least one condition")
    return _fold(lambda a, b: binary(BinaryOp.AND, a, b), (convert(c) for c in conds))


def any(*conds: ExprLike) -> Expr:  # noqa: A001 - te's name
    if not conds:
        raise TensorError("te.any needs at least one condition")
    return _fold(lambda a, b: binary(BinaryOp.OR, a, b), (convert(c) for c in conds))


def sum(expr: ExprLike, axis: Any) -> Reduce:  # noqa: A001 - te's name
    """Sum of ``expr`` over one reduce_axis or a list of them."""
    return make_reduce(ReduceKind.SUM, expr, axis)


def max(a: ExprLike, b: ExprLike | None = None, axis: Any = None) -> Expr:  # noqa: A001
    """``max(expr, axis=k)`` reduces; ``max(a, b)`` is elementwise."""
    if axis is not None:
        return make_reduce(ReduceKind.MAX, a, axis)
    if b is None:
        raise TensorError("te.max needs axis= (a reduction) or two operands")
    return max_(a, b)


def min(a: ExprLike, b: ExprLike | None = None, axis: Any = None) -> Expr:  # noqa: A001
    """``min(expr, axis=k)`` reduces; ``min(a, b)`` is elementwise."""
    if axis is not None:
        return make_reduce(ReduceKind.MIN, a, axis)
    if b is None:
        raise TensorError("te.min needs axis= (a reduction) or two operands")
    return min_(a, b)
