"""The arithmetic simplifier: constant folding, linear canonical form, and
floor-division / comparison rules that hold for the known variable bounds.

Integer sums are put in a canonical linear form (``sum(coeff * atom) + c``), which
cancels the index arithmetic that splitting and fusing produce, such as
``(io*32 + ii) - io*32``. Division rules use :func:`const_bound`:
``(32*q + r) // 32 == q`` when ``0 <= r < 32`` for the current loop ranges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeGuard

from .buffer import Buffer
from .dtype import bool_
from .expr import (
    Binary,
    BinaryOp,
    Cast,
    Const,
    Expr,
    Not,
    Select,
    Var,
    const,
)
from .functor import map_children, structural_equal
from .interval import Bounds, const_bound
from .stmt import Allocate, For, IfThenElse, LetStmt, Seq, Stmt, seq

_FOLD: dict[BinaryOp, Callable[[Any, Any], Any]] = {
    BinaryOp.ADD: lambda a, b: a + b,
    BinaryOp.SUB: lambda a, b: a - b,
    BinaryOp.MUL: lambda a, b: a * b,
    BinaryOp.DIV: lambda a, b: a / b if b != 0 else None,
    BinaryOp.FLOORDIV: lambda a, b: a // b if b != 0 else None,
    BinaryOp.FLOORMOD: lambda a, b: a % b if b != 0 else None,
    BinaryOp.TRUNCDIV: lambda a, b: _tdiv(a, b) if b != 0 else None,
    BinaryOp.TRUNCMOD: lambda a, b: a - b * _tdiv(a, b) if b != 0 else None,
    BinaryOp.MIN: min,
    BinaryOp.MAX: max,
    BinaryOp.EQ: lambda a, b: a == b,
    BinaryOp.NE: lambda a, b: a != b,
    BinaryOp.LT: lambda a, b: a < b,
    BinaryOp.LE: lambda a, b: a <= b,
    BinaryOp.GT: lambda a, b: a > b,
    BinaryOp.GE: lambda a, b: a >= b,
    BinaryOp.AND: lambda a, b: bool(a) and bool(b),
    BinaryOp.OR: lambda a, b: bool(a) or bool(b),
}


def _tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


_KEY_FIELDS: dict[type, tuple[str, ...]] = {}


def _key(e: Any) -> Any:
    """A hashable structural key; variables and buffers by identity."""
    cls = type(e)
    if cls is Var:
        return ("var", id(e))
    if cls is Const:
        return ("c", e.value, e.dtype)
    if cls is Binary:  # the common case, spelled out: the simplifier's hot path
        return ("Binary", e.op, _key(e.a), _key(e.b), e.dtype)
    if isinstance(e, Buffer):
        return ("buf", id(e))
    if cls is tuple:
        return tuple(_key(x) for x in e)
    names = _KEY_FIELDS.get(cls)
    if names is None and dataclasses.is_dataclass(e) and not isinstance(e, type):
        names = _KEY_FIELDS[cls] = tuple(f.name for f in dataclasses.fields(e))
    if names is not None:
        return (cls.__name__,) + tuple(_key(getattr(e, n)) for n in names)
    if isinstance(e, (Expr,)):
        return ("id", id(e))
    try:
        hash(e)
        return e
    except TypeError:
        return ("id", id(e))


class _Linear:
    """``sum(coeff * atom) + const`` over integer atoms, keyed structurally."""

    __slots__ = ("terms", "const", "dtype")

    def __init__(self, dtype: Any) -> None:
        self.terms: dict[Any, list[Any]] = {}  # key -> [atom, coeff]
        self.const = 0
        self.dtype = dtype

    def add(self, e: Expr, scale: int) -> None:
        if isinstance(e, Const):
            self.const += int(e.value) * scale
        elif isinstance(e, Binary) and e.op is BinaryOp.ADD:
            self.add(e.a, scale)
            self.add(e.b, scale)
        elif isinstance(e, Binary) and e.op is BinaryOp.SUB:
            self.add(e.a, scale)
            self.add(e.b, -scale)
        elif isinstance(e, Binary) and e.op is BinaryOp.MUL and isinstance(e.b, Const):
            self.add(e.a, scale * int(e.b.value))
        elif isinstance(e, Binary) and e.op is BinaryOp.MUL and isinstance(e.a, Const):
            self.add(e.b, scale * int(e.a.value))
        else:
            k = _key(e)
            if k in self.terms:
                self.terms[k][1] += scale
            else:
                self.terms[k] = [e, scale]

    def split(self, c: int) -> tuple[_Linear, _Linear]:
        """(terms whose coefficient ``c`` divides, divided by c; the rest)."""
        q, r = _Linear(self.dtype), _Linear(self.dtype)
        for k, (atom, coeff) in self.terms.items():
            if coeff % c == 0:
                q.terms[k] = [atom, coeff // c]
            else:
                r.terms[k] = [atom, coeff]
        q.const, r.const = self.const // c, self.const % c
        return q, r

    def build(self) -> Expr:
        pos: Expr | None = None
        neg: Expr | None = None
        for atom, coeff in self.terms.values():
            if coeff == 0:
                continue
            mag = abs(coeff)
            t = atom if mag == 1 else Binary(BinaryOp.MUL, atom, const(mag, self.dtype), self.dtype)
            if coeff > 0:
                pos = t if pos is None else Binary(BinaryOp.ADD, pos, t, self.dtype)
            else:
                neg = t if neg is None else Binary(BinaryOp.ADD, neg, t, self.dtype)
        out = pos
        if out is None:
            if neg is None:
                return const(self.const, self.dtype)
            out = const(self.const, self.dtype)
            return Binary(BinaryOp.SUB, out, neg, self.dtype)
        if neg is not None:
            out = Binary(BinaryOp.SUB, out, neg, self.dtype)
        if self.const > 0:
            out = Binary(BinaryOp.ADD, out, const(self.const, self.dtype), self.dtype)
        elif self.const < 0:
            out = Binary(BinaryOp.SUB, out, const(-self.const, self.dtype), self.dtype)
        return out


def _linear(e: Expr) -> _Linear:
    lin = _Linear(e.dtype)
    lin.add(e, 1)
    _merge_div_mod(lin)
    return lin


def _merge_div_mod(lin: _Linear) -> None:
    """``k*c*(x // c) + k*(x % c)`` -> ``k*x``: the index of a fused axis, split back
    into its parts and flattened again (``fuse`` then a row-major address), becomes
    the fused variable itself, so loads and stores through it stay contiguous."""
    changed = True
    while changed:
        changed = False
        for key, (atom, coeff) in list(lin.terms.items()):
            if not (isinstance(atom, Binary) and atom.op is BinaryOp.FLOORMOD
                    and isinstance(atom.b, Const) and coeff):
                continue
            c = int(atom.b.value)
            div = _key(Binary(BinaryOp.FLOORDIV, atom.a, atom.b, atom.dtype))
            if c > 0 and div in lin.terms and lin.terms[div][1] == coeff * c:
                _replace_pair(lin, key, div, atom.a, coeff)
                changed = True
                break


def _replace_pair(lin: _Linear, first: Any, second: Any, e: Expr, coeff: int) -> None:
    """Drop the terms keyed ``first`` and ``second`` and add ``coeff * e`` where the
    earlier of them stood, so the form does not depend on where in a nested sum
    the pair was found."""
    part = _Linear(lin.dtype)
    part.add(e, coeff)
    terms: dict[Any, list[Any]] = {}
    placed = False
    for k, (atom, c) in lin.terms.items():
        if k == first or k == second:
            if not placed:
                for pk, (patom, pc) in part.terms.items():
                    terms[pk] = [patom, terms[pk][1] + pc] if pk in terms else [patom, pc]
                placed = True
            continue
        terms[k] = [atom, terms[k][1] + c] if k in terms else [atom, c]
    lin.terms = terms
    lin.const += part.const


def structural_key(e: Expr) -> Any:
    """A hashable key equal for structurally equal expressions."""
    return _key(e)


def linear_form(e: Expr) -> list[tuple[Expr, int]]:
    """``e`` as ``[(atom, coeff), ...]`` plus a constant term keyed by ``Const(1)``;
    atoms are variables or non-linear sub-expressions."""
    lin = _linear(e)
    out = [(atom, coeff) for atom, coeff in lin.terms.values() if coeff != 0]
    if lin.const:
        out.append((const(1, e.dtype), lin.const))
    return out


_LINEAR_OPS = frozenset({BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL})


def _is_int_linear(e: Expr) -> TypeGuard[Binary]:
    """An integer ``+``, ``-`` or ``*``: the simplifier puts these in linear form."""
    return type(e) is Binary and e.op in _LINEAR_OPS and e.dtype.is_int


class _Simplifier:
    def __init__(self, ranges: Bounds) -> None:
        self.ranges = ranges

    def expr(self, e: Expr) -> Expr:
        if isinstance(e, (Const, Var)):
            return e
        if _is_int_linear(e):
            return self.linear(e)
        e = map_children(e, self.expr)
        if isinstance(e, Binary):
            return self.binary(e)
        if isinstance(e, Select):
            if isinstance(e.cond, Const):
                return e.true_value if e.cond.value else e.false_value
            if structural_equal(e.true_value, e.false_value):
                return e.true_value
            return e
        if isinstance(e, Not) and isinstance(e.a, Const):
            return const(not e.a.value, bool_)
        if isinstance(e, Cast):
            if isinstance(e.value, Const):
                return const(e.value.value, e.dtype)
            if e.value.dtype == e.dtype:
                return e.value
        return e

    def linear(self, e: Binary) -> Expr:
        """An integer sum in one pass: its atoms simplified, then put in linear form
        once (bottom-up, every ``+`` of a long index would redo the form below it)."""
        lin = _Linear(e.dtype)
        self._add_terms(lin, e, 1)
        _merge_div_mod(lin)
        return lin.build()

    def _add_terms(self, lin: _Linear, e: Expr, scale: int) -> None:
        if _is_int_linear(e):
            if e.op is BinaryOp.ADD:
                self._add_terms(lin, e.a, scale)
                self._add_terms(lin, e.b, scale)
                return
            if e.op is BinaryOp.SUB:
                self._add_terms(lin, e.a, scale)
                self._add_terms(lin, e.b, -scale)
                return
            a, b = self.expr(e.a), self.expr(e.b)
            if isinstance(a, Const) or isinstance(b, Const):
                lin.add(Binary(BinaryOp.MUL, a, b, e.dtype), scale)
            else:  # a product of two unknowns is an atom
                same = a is e.a and b is e.b
                lin.add(e if same else Binary(BinaryOp.MUL, a, b, e.dtype), scale)
            return
        lin.add(self.expr(e), scale)

    def bound(self, e: Expr) -> tuple[int | None, int | None]:
        return const_bound(e, self.ranges)

    def binary(self, e: Binary) -> Expr:
        a, b, op = e.a, e.b, e.op
        if isinstance(a, Const) and isinstance(b, Const):
            v = _FOLD[op](a.value, b.value)
            if v is not None:
                return const(v, e.dtype)
        if e.dtype.is_float:
            return self.float_identity(e)
        if op in (BinaryOp.FLOORDIV, BinaryOp.FLOORMOD) and isinstance(b, Const):
            return self.floor_div_mod(e, int(b.value))
        if op in (BinaryOp.MIN, BinaryOp.MAX):
            return self.min_max(e)
        if op in (BinaryOp.LT, BinaryOp.LE, BinaryOp.GT, BinaryOp.GE, BinaryOp.EQ, BinaryOp.NE):
            return self.compare(e)
        if op in (BinaryOp.AND, BinaryOp.OR):
            return self.logical(e)
        return e

    def float_identity(self, e: Binary) -> Expr:
        a, b, op = e.a, e.b, e.op
        if op is BinaryOp.ADD:
            if isinstance(b, Const) and b.value == 0:
                return a
            if isinstance(a, Const) and a.value == 0:
                return b
        if op is BinaryOp.SUB and isinstance(b, Const) and b.value == 0:
            return a
        if op is BinaryOp.MUL:
            if isinstance(b, Const) and b.value == 1:
                return a
            if isinstance(a, Const) and a.value == 1:
                return b
        if op is BinaryOp.DIV and isinstance(b, Const) and b.value == 1:
            return a
        return e

    def floor_div_mod(self, e: Binary, c: int) -> Expr:
        if c == 1:
            return e.a if e.op is BinaryOp.FLOORDIV else const(0, e.dtype)
        if c <= 0:
            return e
        a = e.a
        # (x // m) // c == x // (m*c) for positive m, c
        if e.op is BinaryOp.FLOORDIV and isinstance(a, Binary) and a.op is BinaryOp.FLOORDIV:
            if isinstance(a.b, Const) and int(a.b.value) > 0:
                m = int(a.b.value) * c
                merged = Binary(BinaryOp.FLOORDIV, a.a, const(m, e.dtype), e.dtype)
                return self.floor_div_mod(merged, m)
        q, r = _linear(a).split(c)
        r_expr = r.build()
        lo, hi = self.bound(r_expr)
        if lo is not None and hi is not None and lo // c == hi // c:
            m = lo // c
            if e.op is BinaryOp.FLOORDIV:
                q.const += m
                return q.build()
            r.const -= c * m
            return r.build()
        if e.op is BinaryOp.FLOORMOD:
            # (x % (c*k)) % c == x % c
            if isinstance(r_expr, Binary) and r_expr.op is BinaryOp.FLOORMOD:
                inner = r_expr.b
                if isinstance(inner, Const) and int(inner.value) % c == 0:
                    return Binary(BinaryOp.FLOORMOD, r_expr.a, const(c, e.dtype), e.dtype)
            return Binary(BinaryOp.FLOORMOD, r_expr, const(c, e.dtype), e.dtype)
        div = Binary(BinaryOp.FLOORDIV, r_expr, const(c, e.dtype), e.dtype)
        if not q.terms and q.const == 0:
            return div
        lin = q
        lin.add(div, 1)
        return lin.build()

    def min_max(self, e: Binary) -> Expr:
        a, b = e.a, e.b
        if structural_equal(a, b):
            return a
        diff = _linear(Binary(BinaryOp.SUB, a, b, e.dtype)).build() if e.dtype.is_int else None
        if diff is not None:
            lo, hi = self.bound(diff)
            a_le_b = hi is not None and hi <= 0
            a_ge_b = lo is not None and lo >= 0
            if e.op is BinaryOp.MIN:
                if a_le_b:
                    return a
                if a_ge_b:
                    return b
            else:
                if a_ge_b:
                    return a
                if a_le_b:
                    return b
        return e

    def compare(self, e: Binary) -> Expr:
        if not e.a.dtype.is_int:
            return e
        diff = _linear(Binary(BinaryOp.SUB, e.a, e.b, e.a.dtype)).build()
        lo, hi = self.bound(diff)
        verdict = _decide(e.op, lo, hi)
        return e if verdict is None else const(verdict, bool_)

    def logical(self, e: Binary) -> Expr:
        a, b = e.a, e.b
        for x, y in ((a, b), (b, a)):
            if isinstance(x, Const):
                if e.op is BinaryOp.AND:
                    return y if x.value else const(False, bool_)
                return const(True, bool_) if x.value else y
        return e


def _decide(op: BinaryOp, lo: int | None, hi: int | None) -> bool | None:
    """Truth of ``d op 0`` for d in [lo, hi], or None when undecided."""
    if op is BinaryOp.LT:
        return True if hi is not None and hi < 0 else False if lo is not None and lo >= 0 else None
    if op is BinaryOp.LE:
        return True if hi is not None and hi <= 0 else False if lo is not None and lo > 0 else None
    if op is BinaryOp.GT:
        return True if lo is not None and lo > 0 else False if hi is not None and hi <= 0 else None
    if op is BinaryOp.GE:
        return True if lo is not None and lo >= 0 else False if hi is not None and hi < 0 else None
    if op is BinaryOp.EQ:
        if lo is not None and lo == hi:
            return lo == 0
        if (lo is not None and lo > 0) or (hi is not None and hi < 0):
            return False
        return None
    if op is BinaryOp.NE:
        v = _decide(BinaryOp.EQ, lo, hi)
        return None if v is None else not v
    return None


def implies(fact: Expr, cond: Expr, ranges: Bounds) -> bool:
    """Whether the integer comparison ``fact`` proves ``cond`` over ``ranges``.

    Each is read as ``d <= 0``; it proves ``cond`` when ``cond``'s ``d`` is ``m`` times
    ``fact``'s, for a positive integer ``m``, plus a rest that is at most 0 over the
    ranges. The case it is for: a tile's rows under its block's guard,
    ``4 * (16 * o + i) + ii < 504`` from ``16 * o + i < 126`` with ``ii < 4``.
    """
    f, c = _at_most_zero(fact), _at_most_zero(cond)
    if f is None or c is None:
        return False
    fterms = {_key(a): k for a, k in linear_form(f) if not isinstance(a, Const)}
    tried = set()
    for atom, k in linear_form(c):
        kf = fterms.get(_key(atom))
        if not kf or k % kf or k // kf <= 0 or k // kf in tried:
            continue
        m = k // kf
        tried.add(m)
        scaled = Binary(BinaryOp.MUL, const(m, f.dtype), f, f.dtype)
        rest = _linear(Binary(BinaryOp.SUB, c, scaled, c.dtype)).build()
        hi = const_bound(rest, ranges)[1]
        if hi is not None and hi <= 0:
            return True
    return False


def _at_most_zero(e: Expr) -> Expr | None:
    """``d`` with ``e`` equivalent to ``d <= 0``, for an integer ``<``, ``<=``, ``>``,
    ``>=``; else None."""
    if type(e) is not Binary or not (e.a.dtype.is_int and e.b.dtype.is_int):
        return None
    if e.op in (BinaryOp.LT, BinaryOp.LE):
        lhs, rhs = e.a, e.b
    elif e.op in (BinaryOp.GT, BinaryOp.GE):
        lhs, rhs = e.b, e.a
    else:
        return None
    offset = 1 if e.op in (BinaryOp.LT, BinaryOp.GT) else 0
    d = Binary(BinaryOp.SUB, lhs, rhs, lhs.dtype)
    return Binary(BinaryOp.ADD, d, const(offset, lhs.dtype), lhs.dtype) if offset else d


def simplify(e: Expr, ranges: Bounds | None = None) -> Expr:
    """Simplify ``e``; ``ranges`` gives inclusive bounds of loop variables."""
    return _Simplifier(ranges or {}).expr(e)


def simplify_stmt(s: Stmt, ranges: Bounds | None = None) -> Stmt:
    """Simplify every expression, using enclosing loop extents as variable bounds;
    drop loops of extent 0, inline loops of extent 1, and fold decided branches."""
    return _stmt(s, dict(ranges or {}))


def _stmt(s: Stmt, ranges: Bounds) -> Stmt:
    simp = _Simplifier(ranges)
    if isinstance(s, For):
        ext = simp.expr(s.extent)
        if isinstance(ext, Const) and ext.value <= 0:
            return Seq(())
        if isinstance(ext, Const) and ext.value == 1 and s.thread_tag is None:
            from .functor import substitute

            return _stmt(substitute(s.body, {s.var: const(0, s.var.dtype)}), ranges)
        lo_hi = simp.bound(ext)
        inner = dict(ranges)
        if lo_hi[1] is not None:
            inner[s.var] = (0, lo_hi[1] - 1)
        body = _stmt(s.body, inner)
        if isinstance(body, Seq) and not body.stmts:
            return body
        return dataclasses.replace(s, extent=ext, body=body)
    if isinstance(s, IfThenElse):
        cond = simp.expr(s.cond)
        if isinstance(cond, Const):
            if cond.value:
                return _stmt(s.then_case, ranges)
            return Seq(()) if s.else_case is None else _stmt(s.else_case, ranges)
        then = _stmt(s.then_case, ranges)
        other = None if s.else_case is None else _stmt(s.else_case, ranges)
        return IfThenElse(cond, then, other)
    if isinstance(s, Seq):
        return seq(*(_stmt(c, ranges) for c in s.stmts)) if s.stmts else s
    if isinstance(s, LetStmt):
        value = simp.expr(s.value)
        inner = dict(ranges)
        lo, hi = const_bound(value, ranges)
        if lo is not None and hi is not None:
            inner[s.var] = (lo, hi)
        return LetStmt(s.var, value, _stmt(s.body, inner))
    if isinstance(s, Allocate):
        return map_children(s, lambda n: _stmt(n, ranges) if isinstance(n, Stmt) else simp.expr(n))
    return map_children(s, lambda n: simp.expr(n) if isinstance(n, Expr) else _stmt(n, ranges))
