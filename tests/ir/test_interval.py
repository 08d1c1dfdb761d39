"""Interval analysis: constant bounds and symbolic regions of index expressions."""

from __future__ import annotations

import pytest

from tilewise import ir
from tilewise.errors import IRError
from tilewise.ir import Const, Interval, Var, const, const_bound, eval_interval, simplify

x, y, z, xo = Var("x"), Var("y"), Var("z"), Var("xo")
R = {x: (0, 31), y: (0, 7), z: (-5, 5)}


@pytest.mark.parametrize(
    "expr,want",
    [
        (lambda: x * 2 + y - 3, (-3, 66)),
        (lambda: x // 5, (0, 6)),
        (lambda: z // 4, (-2, 1)),
        (lambda: z % 4, (0, 3)),
        (lambda: y % 8, (0, 7)),
        (lambda: ir.min_(x, 10), (0, 10)),
        (lambda: ir.max_(z, 0), (0, 5)),
        (lambda: x * -2, (-62, 0)),
        (lambda: (x * -2) // 3, (-21, 0)),
        (lambda: ir.select(z < 0, y, x), (0, 31)),
        (lambda: const(7), (7, 7)),
    ],
)
def test_const_bound(expr, want):
    assert const_bound(expr(), R) == want


def test_const_bound_products_contain_truth():
    lo, hi = const_bound(z * z, R)
    assert lo <= 0 and hi >= 25


def test_const_bound_unknown():
    assert const_bound(x * y, {x: (0, 3)}) == (None, None)
    assert const_bound(x + y, {x: (0, 3)}) == (None, None)
    assert const_bound(ir.min_(x, y), {x: (0, 3)}) == (None, 3)
    assert const_bound(x // 4, {}) == (None, None)


def _iv(e, relax, ranges=R):
    r = eval_interval(e, relax, ranges)
    return simplify(r.lo, ranges), simplify(r.hi, ranges)


def _eq(e, want):
    if isinstance(want, int):
        return isinstance(e, Const) and e.value == want
    return ir.structural_equal(e, want)


def test_eval_interval_symbolic_outer():
    """Inner loop relaxed, outer loop stays symbolic: a tile's region."""
    relax = {y: Interval(const(0), const(7))}
    lo, hi = _iv(xo * 8 + y + 1, relax)
    assert _eq(lo, xo * 8 + 1) and _eq(hi, xo * 8 + 8)
    lo, hi = _iv(xo * 8 - y, relax)
    assert _eq(lo, xo * 8 - 7) and _eq(hi, xo * 8)
    lo, hi = _iv(y * -2, relax)
    assert _eq(lo, -14) and _eq(hi, 0)


def test_eval_interval_div_mod():
    relax = {y: Interval(const(0), const(7))}
    lo, hi = _iv((xo * 8 + y) // 4, relax)
    assert _eq(lo, xo * 2) and _eq(hi, xo * 2 + 1)
    lo, hi = _iv(y % 3, relax)
    assert _eq(lo, 0) and _eq(hi, 2)


def test_eval_interval_point_and_min_max():
    assert eval_interval(xo + 1, {}, R).is_point
    lo, hi = _iv(ir.min_(y, 5), {y: Interval(const(0), const(7))})
    assert _eq(lo, 0) and _eq(hi, 5)


def test_eval_interval_nonlinear_falls_back_to_constants():
    relax = {x: Interval(const(0), const(31)), y: Interval(const(0), const(7))}
    r = eval_interval(x * y, relax, R)
    assert r.lo.value == 0 and r.hi.value == 217
    with pytest.raises(IRError, match="cannot bound"):
        eval_interval(x * y, relax, {})


def test_union():
    a = Interval(const(0), const(3))
    b = Interval(const(2), const(9))
    u = a.union(b)
    assert simplify(u.lo).value == 0 and simplify(u.hi).value == 9
