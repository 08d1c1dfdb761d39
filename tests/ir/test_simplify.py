"""The arithmetic simplifier: folding, identities, floor div/mod under bounds, comparisons."""

from __future__ import annotations

import itertools

import pytest

from tilewise import ir
from tilewise.ir import BinaryOp, Const, Var, binary, const, float32, simplify, structural_equal

x, y, z = Var("x"), Var("y"), Var("z")
R = {x: (0, 31), y: (0, 7), z: (-5, 5)}


def _is(e, value):
    return isinstance(e, Const) and e.value == value


def _same(a, b):
    return structural_equal(a, b)


# ---- constant folding --------------------------------------------------------

@pytest.mark.parametrize(
    "op,a,b,want",
    [
        (BinaryOp.ADD, 3, 4, 7), (BinaryOp.SUB, 3, 4, -1), (BinaryOp.MUL, 3, -4, -12),
        (BinaryOp.FLOORDIV, 7, 2, 3), (BinaryOp.FLOORDIV, -7, 2, -4),
        (BinaryOp.FLOORDIV, 7, -2, -4),
        (BinaryOp.FLOORMOD, -7, 2, 1), (BinaryOp.FLOORMOD, 7, -2, -1),
        (BinaryOp.TRUNCDIV, -7, 2, -3), (BinaryOp.TRUNCMOD, -7, 2, -1),
        (BinaryOp.MIN, 3, -4, -4), (BinaryOp.MAX, 3, -4, 3),
        (BinaryOp.LT, 3, 4, True), (BinaryOp.GE, 3, 4, False), (BinaryOp.EQ, 4, 4, True),
    ],
)
def test_fold_int(op, a, b, want):
    assert _is(simplify(ir.Binary(op, const(a), const(b), _dt(op))), want)


def _dt(op):
    return ir.bool_ if op in (BinaryOp.LT, BinaryOp.GE, BinaryOp.EQ) else ir.int32


def test_fold_float_and_division_by_zero_kept():
    assert _is(simplify(const(2.0) * const(3.5)), 7.0)
    e = ir.Binary(BinaryOp.FLOORDIV, const(1), const(0), ir.int32)
    assert simplify(e) is e  # never folded into a Python exception


def test_fold_logical_and_select():
    t, f = const(True), const(False)
    assert _is(simplify(binary(BinaryOp.AND, t, f)), False)
    assert _is(simplify(binary(BinaryOp.OR, t, y < 3)), True)
    assert _same(simplify(binary(BinaryOp.AND, t, y < 3)), y < 3)
    assert simplify(ir.select(x < 32, y, z), R) is y
    assert simplify(ir.select(x < 0, y, z), R) is z
    assert _is(simplify(ir.Not(f)), True)


# ---- identities ----------------------------------------------------------------

def test_int_identities():
    assert simplify(x + 0) is x
    assert simplify(x * 1) is x
    assert simplify(0 + x) is x
    assert _is(simplify(x * 0), 0)
    assert _is(simplify(x - x), 0)
    assert simplify((x + 1) - 1) is x
    assert simplify((x * 32 + y) - x * 32) is y
    assert _same(simplify((x * 2) * 3), x * 6)
    assert _same(simplify(3 * (x + 2)), x * 3 + 6)


def test_float_identities_keep_nan_semantics():
    f = Var("f", float32)
    assert simplify(f + 0.0) is f
    assert simplify(f * 1.0) is f
    assert simplify(f / 1.0) is f
    assert simplify(f - 0.0) is f
    assert not isinstance(simplify(f * 0.0), Const)  # NaN * 0 is NaN


def test_min_max_decided_by_bounds():
    assert simplify(ir.min_(x, 40), R) is x
    assert simplify(ir.max_(x, 40), R).value == 40
    assert _same(simplify(ir.max_(x, y + 32), R), y + 32)
    assert _same(simplify(ir.min_(x, y), R), ir.min_(x, y))
    assert simplify(ir.min_(x, x)) is x


# ---- floor division and modulo under bounds --------------------------------------

def test_floordiv_mod_split_index():
    assert simplify((x * 32 + y) // 32, R) is x
    assert simplify((x * 32 + y) % 32, R) is y
    assert _same(simplify((x * 32 + y + 40) // 32, R), x + 1)
    assert _same(simplify((x * 32 + y + 40) % 32, R), y + 8)
    assert _same(simplify((x * 4 + y) // 4, R), x + y // 4)
    assert _is(simplify((2 * x + 1) % 2, R), 1)
    assert _is(simplify((y - 8) // 8, R), -1)


def test_floordiv_not_simplified_without_bounds():
    e = simplify((x * 8 + y) // 8)  # y unbounded: the remainder may be anything
    assert not structural_equal(e, x)
    assert not structural_equal(simplify((x + y) // 4, R), x // 4)


def test_nested_div_mod():
    assert _same(simplify((x // 4) // 8), x // 32)
    assert _same(simplify((x % 16) % 4), x % 4)
    assert _same(simplify(x // 1), x)
    assert _is(simplify(x % 1), 0)


def test_fused_index_recombined():
    """``(f // c) * c + f % c`` is ``f``: the row-major address of a fused axis."""
    f = x * 16 + y
    assert _same(simplify((f // 56) * 56 + f % 56), f)
    assert _same(simplify(((z // 7) * 7 + z % 7) * 3 + y), z * 3 + y)
    assert simplify(((f // 56) * 56 + f % 56) // 16, {x: (0, 9), y: (0, 15)}) is x
    # Only the exact pair recombines: other multiples are left alone.
    assert not structural_equal(simplify((z // 7) * 6 + z % 7), z)


def test_sum_form_does_not_depend_on_nesting():
    """A sum is one canonical form however its ``+`` nest: terms in order of first
    appearance, positive before negative, and a recombined fused axis where its pair
    stood (outer loops lead the address as they led the index)."""
    f = (z // 7) * 7 * 4 + (z % 7) * 4
    want = "(((z * 4) + y) + (x * 2))"
    assert str(simplify((f + y) + x * 2)) == str(simplify(f + (y + x * 2))) == want
    want = "((y + (x * 2)) + 5)"
    assert str(simplify(y - x + x * 3 + 5)) == str(simplify(y + (x * 2 + 5))) == want
    assert str(simplify(x * 0 + (y - y) + 3)) == "3"


def test_div_mod_semantics_exhaustive():
    """Every rewrite agrees with Python's floor semantics over small ranges."""
    exprs = [
        (x * 3 + y) // 3, (x * 3 + y) % 3, (-x - 1) // 4, (-x - 1) % 4, (z * 4 + 2) // 4,
        (z * 4 + y) % 4, ((x // 4) // 8), (x % 16) % 4, (2 * z + y + 9) // 2,
        ((z * 6 + y) // 2) % 3, (z // 3) * 3 + z % 3 + y, ((z * 4 + y) // 7) * 14 + (z * 4 + y) % 7,
        ((x // 5) * 5 + x % 5) // 2,
    ]
    ranges = {x: (0, 9), y: (0, 3), z: (-5, 5)}
    for e in exprs:
        s = simplify(e, ranges)
        for vx, vy, vz in itertools.product(range(10), range(4), range(-5, 6)):
            env = {x: vx, y: vy, z: vz}
            assert _eval(s, env) == _eval(e, env), (e, s, env)


def _eval(e, env):
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Var):
        return env[e]
    if isinstance(e, ir.Cast):
        return _eval(e.value, env)
    a, b = _eval(e.a, env), _eval(e.b, env)
    from tilewise.ir.simplify import _FOLD

    return _FOLD[e.op](a, b)


# ---- comparisons -------------------------------------------------------------------

def test_comparisons_decided_by_bounds():
    assert _is(simplify(x < 32, R), True)
    assert _is(simplify(x >= 0, R), True)
    assert _is(simplify(x > 31, R), False)
    assert _is(simplify(y + 1 <= 8, R), True)
    assert _is(simplify(x * 2 == x * 2, R), True)
    assert _is(simplify(x + 1 != x, R), True)
    assert _is(simplify(x * 8 + y < x * 8 + 8, R), True)


def test_comparisons_left_when_undecided():
    assert not isinstance(simplify(x < 31, R), Const)
    assert not isinstance(simplify(z < 0, R), Const)
    assert not isinstance(simplify(x < y, {}), Const)


def test_simplify_stmt_drops_and_inlines_loops():
    buf = ir.Buffer("B", (8,), ir.float32, ir.Scope.GLOBAL)
    i, j = Var("i"), Var("j")
    inner = ir.For(j, const(1), ir.ForKind.SERIAL, ir.Store(buf, i + j, const(1.0)))
    guarded = ir.IfThenElse(i < 8, inner)
    s = ir.simplify_stmt(ir.For(i, const(8), ir.ForKind.SERIAL, guarded))
    assert isinstance(s, ir.For) and isinstance(s.body, ir.Store)  # guard and j loop gone
    assert s.body.index is i
    empty = ir.simplify_stmt(ir.For(i, const(0), ir.ForKind.SERIAL, inner))
    assert isinstance(empty, ir.Seq) and not empty.stmts


# ---- implication from a guard ------------------------------------------------

def test_a_block_guard_implies_its_tiles_rows():
    """Under ``16 * o + i < 126`` (the block split's tail guard), a 4-row tile's rows
    ``4 * (16 * o + i) + ii`` stay below 504; without the guard they reach 511."""
    o, i, ii = Var("o"), Var("i"), Var("ii")
    ranges = {o: (0, 7), i: (0, 15), ii: (0, 3)}
    guard = (o * 16 + i) < 126
    rows = (o * 16 + i) * 4 + ii
    assert not _is(simplify(rows < 504, ranges), True)
    assert ir.implies(guard, rows < 504, ranges)
    assert ir.implies(guard, rows <= 503, ranges)
    assert ir.implies(o * 16 + i >= 0, rows >= 0, ranges)
    assert not ir.implies(guard, rows < 503, ranges)  # row 503 is reached
    assert not ir.implies(guard, rows + o < 504, ranges)  # not a multiple of the guard


def test_implication_needs_integer_comparisons():
    o, f = Var("o"), Var("f", float32)
    assert not ir.implies(f < 4.0, f < 5.0, {o: (0, 7)})
    assert not ir.implies(o == 3, o < 4, {o: (0, 7)})
