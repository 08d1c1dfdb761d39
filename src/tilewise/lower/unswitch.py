"""Loop unswitching: a bound check that holds for a whole loop nest whenever it holds
at the nest's extreme iteration is tested once, above the nest.

A register tile whose split does not divide its extent checks each row:

    for k in [0, 1024):                        # serial
      for i in [0, 12):                        # unrolled
        if (t * 12 + i < 1000) acc[i] += ...
becomes
    if (t * 12 + 11 < 1000)
      for k in [0, 1024): for i in [0, 12): acc[i] += ...     (branch-free)
    else
      for k in [0, 1024): for i in [0, 12): if (t * 12 + i < 1000) acc[i] += ...

Loop partitioning (:mod:`.partition`) already splits a loop on tests of its own
variable; what it leaves are tests of loops it does not partition (unrolled and
parallel ones) and tests that no loop of the nest changes. Those are lifted here
when they are linear in the nest's constant-extent loops: the nest's worst case is
then its corner, so one test above the nest decides every iteration. Each lift
copies the nest once (the copy that keeps the tests runs for the edge tiles only),
so only nests with enough work per entry are lifted: a tile's reduction, not its
initialisation or its write-back, which would double the compile time for nothing.
"""

from __future__ import annotations

from functools import reduce

from ..ir import (
    Allocate,
    Binary,
    BinaryOp,
    Const,
    Expr,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    Select,
    Stmt,
    Var,
    binary,
    children,
    collect,
    const,
    map_children,
    simplify,
)
from ..ir.simplify import linear_form, structural_key
from .partition import assume_true, conjuncts

# Loops a test may be lifted above; parallel and GPU-thread loops keep their one body.
_LIFT_OVER = (ForKind.SERIAL, ForKind.UNROLLED, ForKind.VECTORIZED)
# A test that must hold for every iteration must hold where its left side peaks
# (``<``, ``<=``) or bottoms out (``>``, ``>=``).
_NEEDS_MAX = {BinaryOp.LT: True, BinaryOp.LE: True, BinaryOp.GT: False, BinaryOp.GE: False}
# A nest is copied when one entry runs at least _MIN_WORK statements (vector statements
# count once), each statement of its source at least _MIN_REUSE times, and the copy adds
# at most _MAX_CODE statements (after unrolling) to the source: a fully unrolled nest
# would double gcc's time for one pass over its branches.
_MIN_WORK = 256
_MIN_REUSE = 4
_MAX_CODE = 256


def unswitch_loops(s: Stmt, lifted: frozenset = frozenset()) -> Stmt:
    """Lift loop-invariant bound checks above the outermost loop they hold for.

    ``lifted`` holds the (structural keys of the) tests already decided above ``s``:
    the copy that keeps them must not lift them again.
    """
    if (isinstance(s, For) and s.kind in _LIFT_OVER and _worth_copying(s)
            and not collect(s.body, Allocate)):
        tests = _liftable(s, lifted)
        if tests:
            keys = lifted | set(tests)
            ids = {id(a) for a in _atoms_in(s) if structural_key(a) in tests}
            fast = map_children(assume_true(s, ids), lambda n: _recurse(n, keys))
            needed = [t for t in tests.values() if not isinstance(t, Const)]  # Consts: true
            if not needed:
                return fast  # true at the corner: true everywhere, no test needed
            slow = map_children(s, lambda n: _recurse(n, keys))
            return IfThenElse(reduce(lambda a, b: binary(BinaryOp.AND, a, b), needed), fast, slow)
    return map_children(s, lambda n: _recurse(n, lifted))


def _recurse(n, lifted: frozenset):
    return unswitch_loops(n, lifted) if isinstance(n, Stmt) else n


def _worth_copying(loop: For) -> bool:
    work, code = _size(loop)
    return work >= _MIN_WORK and work >= _MIN_REUSE * code and code <= _MAX_CODE


def _size(s: Stmt) -> tuple[int, int]:
    """(statements one entry of ``s`` executes, statements in its source once its
    unrolled loops are unrolled); a loop of unknown extent counts once."""
    if isinstance(s, For):
        work, code = _size(s.body)
        trips = int(s.extent.value) if isinstance(s.extent, Const) else 1
        return (work if s.kind is ForKind.VECTORIZED else trips * work,
                trips * code if s.kind is ForKind.UNROLLED else code)
    sizes = [_size(c) for c in children(s) if isinstance(c, Stmt)]
    return (sum(w for w, _ in sizes), sum(c for _, c in sizes)) if sizes else (1, 1)


def _atoms_in(s: Stmt) -> list[Expr]:
    return [a for n in collect(s, (Select, IfThenElse)) for a in conjuncts(n.cond)]


def _liftable(loop: For, lifted: frozenset) -> dict:
    """structural key -> the test that decides the atom for the whole of ``loop``."""
    loops = [loop, *collect(loop.body, For)]
    corner = {id(f.var): int(f.extent.value) - 1 for f in loops if isinstance(f.extent, Const)}
    local = {id(f.var) for f in loops} | {id(n.var) for n in collect(loop.body, LetStmt)}
    out: dict = {}
    for atom in _atoms_in(loop):
        key = structural_key(atom)
        if key in lifted or key in out:
            continue
        test = _corner_test(atom, corner, local)
        if test is not None and not (isinstance(test, Const) and not test.value):
            out[key] = test
    return out


def _corner_test(atom: Expr, corner: dict[int, int], local: set[int]) -> Expr | None:
    """The atom at the nest's worst corner, in terms of variables bound outside it; None
    when the atom is not a linear comparison of such variables and swept loops."""
    if not (isinstance(atom, Binary) and atom.op in _NEEDS_MAX and atom.a.dtype.is_int):
        return None
    peak = _NEEDS_MAX[atom.op]
    rest: Expr = const(0, atom.a.dtype)
    shift = 0
    for term, coeff in linear_form(atom.a - atom.b):  # atom: sum(terms) op 0
        inside = [v for v in collect(term, Var) if id(v) in local]
        if not inside:
            unit = isinstance(term, Const) and term.value == 1
            rest = rest + (const(coeff, atom.a.dtype) if unit else term * coeff)
        elif isinstance(term, Var) and id(term) in corner:
            if (coeff > 0) == peak:
                shift += coeff * corner[id(term)]
        else:
            return None  # a loop of the nest enters non-linearly or has no fixed extent
    return simplify(Binary(atom.op, rest + shift, const(0, atom.a.dtype), atom.dtype))

