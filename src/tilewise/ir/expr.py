"""Scalar expression nodes: immutable, compared by identity, built with Python operators.

Nodes are frozen dataclasses with identity equality, so a ``Var`` can key a
substitution map. ``a == b`` on expressions builds a comparison node (as in TVM);
use :func:`tilewise.ir.structural_equal` to compare trees.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import IRError
from .dtype import DType, as_dtype, bool_, float32, int32, int64, promote

if TYPE_CHECKING:
    from .buffer import Buffer


class BinaryOp(enum.Enum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    FLOORDIV = "//"
    FLOORMOD = "%"
    # C semantics (round toward zero); lowering rewrites floor ops into these
    # where the dividend is proven non-negative, so codegen stays branch-free.
    TRUNCDIV = "tdiv"
    TRUNCMOD = "tmod"
    MIN = "min"
    MAX = "max"
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    AND = "&&"
    OR = "||"


COMPARISONS = frozenset(
    {BinaryOp.EQ, BinaryOp.NE, BinaryOp.LT, BinaryOp.LE, BinaryOp.GT, BinaryOp.GE}
)
LOGICAL = frozenset({BinaryOp.AND, BinaryOp.OR})


class MathFunc(enum.Enum):
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    ABS = "abs"
    ERF = "erf"
    POW = "pow"


class Expr:
    """Base of scalar expressions; every node has a ``dtype``."""

    __slots__ = ()
    __hash__ = object.__hash__
    dtype: DType

    def __add__(self, other: Any) -> Expr:
        return binary(BinaryOp.ADD, self, other)

    def __radd__(self, other: Any) -> Expr:
        return binary(BinaryOp.ADD, other, self)

    def __sub__(self, other: Any) -> Expr:
        return binary(BinaryOp.SUB, self, other)

    def __rsub__(self, other: Any) -> Expr:
        return binary(BinaryOp.SUB, other, self)

    def __mul__(self, other: Any) -> Expr:
        return binary(BinaryOp.MUL, self, other)

    def __rmul__(self, other: Any) -> Expr:
        return binary(BinaryOp.MUL, other, self)

    def __truediv__(self, other: Any) -> Expr:
        return binary(BinaryOp.DIV, self, other)

    def __rtruediv__(self, other: Any) -> Expr:
        return binary(BinaryOp.DIV, other, self)

    def __floordiv__(self, other: Any) -> Expr:
        return binary(BinaryOp.FLOORDIV, self, other)

    def __rfloordiv__(self, other: Any) -> Expr:
        return binary(BinaryOp.FLOORDIV, other, self)

    def __mod__(self, other: Any) -> Expr:
        return binary(BinaryOp.FLOORMOD, self, other)

    def __rmod__(self, other: Any) -> Expr:
        return binary(BinaryOp.FLOORMOD, other, self)

    def __neg__(self) -> Expr:
        return binary(BinaryOp.SUB, const(0, self.dtype), self)

    def __lt__(self, other: Any) -> Expr:
        return binary(BinaryOp.LT, self, other)

    def __le__(self, other: Any) -> Expr:
        return binary(BinaryOp.LE, self, other)

    def __gt__(self, other: Any) -> Expr:
        return binary(BinaryOp.GT, self, other)

    def __ge__(self, other: Any) -> Expr:
        return binary(BinaryOp.GE, self, other)

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return binary(BinaryOp.EQ, self, other)

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return binary(BinaryOp.NE, self, other)

    def __bool__(self) -> bool:
        raise IRError(
            f"symbolic expression {self} has no Python truth value; "
            "use te.if_then_else / te.all / te.any"
        )

    def astype(self, dtype: str | DType) -> Expr:
        target = as_dtype(dtype)
        return self if target == self.dtype else Cast(self, target)

    def __str__(self) -> str:
        from .printer import expr_str

        return expr_str(self)

    __repr__ = __str__


@dataclass(frozen=True, eq=False, repr=False)
class Const(Expr):
    value: int | float | bool
    dtype: DType


@dataclass(frozen=True, eq=False, repr=False)
class Var(Expr):
    name: str
    dtype: DType = int32


@dataclass(frozen=True, eq=False, repr=False)
class Binary(Expr):
    op: BinaryOp
    a: Expr
    b: Expr
    dtype: DType

    def __bool__(self) -> bool:
        # Lets `var in list` and dict lookups on colliding hashes fall back to identity,
        # which is what TVM users expect of `==` between two expressions.
        if self.op is BinaryOp.EQ:
            return self.a is self.b
        if self.op is BinaryOp.NE:
            return self.a is not self.b
        return Expr.__bool__(self)


@dataclass(frozen=True, eq=False, repr=False)
class Not(Expr):
    a: Expr
    dtype: DType = bool_


@dataclass(frozen=True, eq=False, repr=False)
class Select(Expr):
    cond: Expr
    true_value: Expr
    false_value: Expr
    dtype: DType


@dataclass(frozen=True, eq=False, repr=False)
class Cast(Expr):
    value: Expr
    dtype: DType


@dataclass(frozen=True, eq=False, repr=False)
class Call(Expr):
    func: MathFunc
    args: tuple[Expr, ...]
    dtype: DType


@dataclass(frozen=True, eq=False, repr=False)
class Load(Expr):
    """Read ``buffer`` at a flat element ``index``."""

    buffer: Buffer
    index: Expr
    dtype: DType


@dataclass(frozen=True, eq=False, repr=False)
class Address(Expr):
    """Pointer to ``buffer[index]``; only an argument of an extern call."""

    buffer: Buffer
    index: Expr
    dtype: DType


ExprLike = Expr | int | float | bool


def const(value: int | float | bool, dtype: str | DType | None = None) -> Const:
    """A constant; the dtype defaults from the Python type (int32, float32, bool)."""
    if dtype is None:
        if isinstance(value, bool):
            dtype = bool_
        elif isinstance(value, int):
            dtype = int32 if -(2**31) <= value < 2**31 else int64
        elif isinstance(value, float):
            dtype = float32
        else:
            raise IRError(f"cannot make a constant of {value!r}")
    dt = as_dtype(dtype)
    if dt.is_float:
        value = float(value)
    elif dt.is_bool:
        value = bool(value)
    else:
        value = int(value)
    return Const(value, dt)


def convert(value: ExprLike, like: DType | None = None) -> Expr:
    """An expression from an Expr or Python scalar (a scalar takes ``like``'s type)."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, (bool, int, float)):
        if like is not None and not isinstance(value, bool):
            if like.is_float or isinstance(value, int):
                return const(value, like)
        return const(value)
    if hasattr(value, "as_expr"):
        return value.as_expr()
    raise IRError(f"cannot use {value!r} ({type(value).__name__}) as an expression")


def binary(op: BinaryOp, a: ExprLike, b: ExprLike) -> Expr:
    """Build ``a op b`` with type promotion; Python scalars adopt the other side's type."""
    if isinstance(a, Expr):
        a_ = a
        b_ = b if isinstance(b, Expr) else convert(b, a.dtype)
    elif isinstance(b, Expr):
        a_, b_ = convert(a, b.dtype), b
    else:
        a_ = convert(a)
        b_ = convert(b, a_.dtype)
    if op is BinaryOp.AND or op is BinaryOp.OR:
        return Binary(op, _as_bool(a_), _as_bool(b_), bool_)
    # Index arithmetic builds these by the hundred thousand while lowering: the common
    # case (both sides of one type) skips promotion.
    ad, bd = a_.dtype, b_.dtype
    dt = ad if ad is bd else promote(ad, bd)
    if op is BinaryOp.DIV and not dt.is_float:
        raise IRError(f"'/' on integers ({a_} / {b_}) is ambiguous; use // (floor division)")
    if (op is BinaryOp.FLOORDIV or op is BinaryOp.FLOORMOD) and dt.is_float:
        raise IRError(f"'{op.value}' needs integers, got {dt} in ({a_} {op.value} {b_})")
    if ad is not dt:
        a_ = _cast_to(a_, dt)
    if bd is not dt:
        b_ = _cast_to(b_, dt)
    return Binary(op, a_, b_, bool_ if op in COMPARISONS else dt)


def _cast_to(e: Expr, dt: DType) -> Expr:
    if e.dtype == dt:
        return e
    if isinstance(e, Const):
        return const(e.value, dt)
    return Cast(e, dt)


def _as_bool(e: Expr) -> Expr:
    return e if e.dtype == bool_ else binary(BinaryOp.NE, e, 0)


def min_(a: ExprLike, b: ExprLike) -> Expr:
    return binary(BinaryOp.MIN, a, b)


def max_(a: ExprLike, b: ExprLike) -> Expr:
    return binary(BinaryOp.MAX, a, b)


def select(cond: ExprLike, t: ExprLike, f: ExprLike) -> Expr:
    c = _as_bool(convert(cond))
    t_, f_ = convert(t), convert(f)
    if not isinstance(t, Expr) and isinstance(f, Expr):
        t_ = convert(t, f_.dtype)
    elif isinstance(t, Expr) and not isinstance(f, Expr):
        f_ = convert(f, t_.dtype)
    dt = promote(t_.dtype, f_.dtype)
    return Select(c, _cast_to(t_, dt), _cast_to(f_, dt), dt)


def call(func: MathFunc, *args: ExprLike) -> Expr:
    conv = tuple(convert(a) for a in args)
    dt = conv[0].dtype
    if func is not MathFunc.ABS and not dt.is_float:
        dt = float32
        conv = tuple(_cast_to(a, dt) for a in conv)
    return Call(func, conv, dt)


def index_const(v: int) -> Const:
    return const(v, int32 if -(2**31) <= v < 2**31 else int64)


def is_const(e: Expr, value: int | float | None = None) -> bool:
    return isinstance(e, Const) and (value is None or e.value == value)
