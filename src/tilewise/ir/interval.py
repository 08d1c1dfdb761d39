"""Interval analysis: bounds of integer expressions over ranges of their variables.

Two flavours. :func:`const_bound` gives inclusive integer bounds (or None when
unbounded); the simplifier uses it to prove facts. :func:`eval_interval` gives
symbolic bounds: variables listed in ``relax`` range over an interval, all
others stay as themselves; bound inference uses it to find the region of a
tensor that a loop nest touches below an attachment point.
"""

from __future__ import annotations

from dataclasses import dataclass

from .expr import Binary, BinaryOp, Cast, Const, Expr, Select, Var, max_, min_

Bounds = dict[Var, tuple[int, int]]


def _fdiv(a: int, b: int) -> int:
    return a // b


def const_bound(e: Expr, ranges: Bounds) -> tuple[int | None, int | None]:
    """Inclusive integer bounds of ``e`` given inclusive bounds of variables."""
    if isinstance(e, Const):
        if e.dtype.is_float:
            return None, None
        v = int(e.value)
        return v, v
    if isinstance(e, Var):
        return ranges.get(e, (None, None))
    if isinstance(e, Cast) and not e.dtype.is_float and not e.value.dtype.is_float:
        return const_bound(e.value, ranges)
    if isinstance(e, Select):
        a, b = const_bound(e.true_value, ranges), const_bound(e.false_value, ranges)
        lo = None if a[0] is None or b[0] is None else min(a[0], b[0])
        hi = None if a[1] is None or b[1] is None else max(a[1], b[1])
        return lo, hi
    if not isinstance(e, Binary) or e.dtype.is_float:
        return None, None
    (alo, ahi), (blo, bhi) = const_bound(e.a, ranges), const_bound(e.b, ranges)
    op = e.op
    if op is BinaryOp.ADD:
        return _opt(alo, blo, int.__add__), _opt(ahi, bhi, int.__add__)
    if op is BinaryOp.SUB:
        return _opt(alo, bhi, int.__sub__), _opt(ahi, blo, int.__sub__)
    if op is BinaryOp.MUL:
        if alo is None or ahi is None or blo is None or bhi is None:
            if blo is not None and blo == bhi and blo >= 0 and alo is not None:
                return alo * blo, None if ahi is None else ahi * blo
            return None, None
        p = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
        return min(p), max(p)
    if op in (BinaryOp.FLOORDIV, BinaryOp.TRUNCDIV) and blo is not None and blo == bhi:
        if blo > 0 and alo is not None and ahi is not None:
            if op is BinaryOp.FLOORDIV or alo >= 0:
                return _fdiv(alo, blo), _fdiv(ahi, blo)
        if blo > 0 and alo is not None and alo >= 0:
            return 0, None
        return None, None
    if op in (BinaryOp.FLOORMOD, BinaryOp.TRUNCMOD) and blo is not None and blo == bhi and blo > 0:
        if alo is not None and alo >= 0 and ahi is not None and ahi < blo:
            return alo, ahi
        if op is BinaryOp.FLOORMOD or (alo is not None and alo >= 0):
            return 0, blo - 1
        return -(blo - 1), blo - 1
    if op is BinaryOp.MIN:
        return _opt(alo, blo, min), _opt2(ahi, bhi, min)
    if op is BinaryOp.MAX:
        return _opt2(alo, blo, max), _opt(ahi, bhi, max)
    return None, None


def _opt(a, b, f):
    return None if a is None or b is None else f(a, b)


def _opt2(a, b, f):
    """Like _opt, but an unbounded side leaves the other side's bound (for min-hi / max-lo)."""
    if a is None:
        return b
    if b is None:
        return a
    return f(a, b)


@dataclass(frozen=True)
class Interval:
    """Inclusive symbolic bounds ``[lo, hi]``."""

    lo: Expr
    hi: Expr

    @staticmethod
    def point(e: Expr) -> Interval:
        return Interval(e, e)

    @property
    def is_point(self) -> bool:
        return self.lo is self.hi

    def union(self, other: Interval) -> Interval:
        return Interval(min_(self.lo, other.lo), max_(self.hi, other.hi))


def eval_interval(e: Expr, relax: dict[Var, Interval], ranges: Bounds) -> Interval:
    """Symbolic bounds of ``e`` when each variable in ``relax`` sweeps its interval.

    ``ranges`` holds constant bounds of every loop variable; they are the fallback
    when a non-linear form (a product of two relaxed terms) has no tight symbolic
    answer.
    """
    if isinstance(e, Var):
        return relax.get(e) or Interval.point(e)
    if not _touches(e, relax):
        return Interval.point(e)
    if isinstance(e, Cast):
        v = eval_interval(e.value, relax, ranges)
        return Interval(Cast(v.lo, e.dtype), Cast(v.hi, e.dtype))
    if isinstance(e, Binary):
        a = eval_interval(e.a, relax, ranges)
        b = eval_interval(e.b, relax, ranges)
        op = e.op
        if op is BinaryOp.ADD:
            return Interval(a.lo + b.lo, a.hi + b.hi)
        if op is BinaryOp.SUB:
            return Interval(a.lo - b.hi, a.hi - b.lo)
        if op is BinaryOp.MUL:
            for x, y in ((a, b), (b, a)):
                if y.is_point and isinstance(y.lo, Const):
                    c = y.lo.value
                    return Interval(x.lo * c, x.hi * c) if c >= 0 else Interval(x.hi * c, x.lo * c)
        if op is BinaryOp.FLOORDIV and b.is_point and isinstance(b.lo, Const) and b.lo.value > 0:
            return Interval(a.lo // b.lo, a.hi // b.lo)
        if op is BinaryOp.FLOORMOD and b.is_point and isinstance(b.lo, Const) and b.lo.value > 0:
            return Interval(_zero(e), b.lo - 1)
        if op is BinaryOp.MIN:
            return Interval(min_(a.lo, b.lo), min_(a.hi, b.hi))
        if op is BinaryOp.MAX:
            return Interval(max_(a.lo, b.lo), max_(a.hi, b.hi))
    if isinstance(e, Select):
        t = eval_interval(e.true_value, relax, ranges)
        f = eval_interval(e.false_value, relax, ranges)
        return Interval(min_(t.lo, f.lo), max_(t.hi, f.hi))
    return _const_fallback(e, relax, ranges)


def _zero(e: Expr) -> Expr:
    return Const(0, e.dtype)


def _touches(e: Expr, relax: dict[Var, Interval]) -> bool:
    from .functor import children

    if isinstance(e, Var):
        return e in relax
    return any(_touches(c, relax) for c in children(e))


def _const_fallback(e: Expr, relax: dict[Var, Interval], ranges: Bounds) -> Interval:
    from ..errors import IRError

    lo, hi = const_bound(e, ranges)
    if lo is None or hi is None:
        raise IRError(f"cannot bound {e}: no interval rule and no constant bounds")
    return Interval(Const(lo, e.dtype), Const(hi, e.dtype))
