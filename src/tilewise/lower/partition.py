"""Loop partitioning: split a loop whose body tests its variable against bounds (the
zero padding of a convolution, the guard of a split that does not divide) into a
head, a body where every such test is known true, and a tail.

    for w in [0, 114):  out[w] = select(w >= 1 && w < 113, in[w - 1], 0)
becomes
    for w in [0, 1):    out[w] = select(...)          (folded to out[0] = 0)
    for w in [0, 112):  out[w + 1] = in[w]            (branch-free, vectorises)
    for w in [0, 1):    out[w + 113] = select(...)

Only tests linear in the loop variable with coefficient +-1 are used; the bounds may
depend on outer loops, so the three extents are computed at run time.
"""

from __future__ import annotations

import dataclasses

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
    collect,
    const,
    map_children,
    max_,
    min_,
    seq,
    simplify,
    substitute,
)
from ..ir.simplify import linear_form, structural_key

_FLIP = {BinaryOp.LT: BinaryOp.GT, BinaryOp.LE: BinaryOp.GE,
         BinaryOp.GT: BinaryOp.LT, BinaryOp.GE: BinaryOp.LE}


def partition_loops(s: Stmt) -> Stmt:
    """Partition serial and vectorised loops, innermost first. Parallel and thread
    loops keep one body (their iterations are distributed), unrolled loops fold their
    tests anyway, and loops holding an allocation are left whole to bound code size."""
    s = map_children(s, lambda n: partition_loops(n) if isinstance(n, Stmt) else n)
    if isinstance(s, For) and s.kind in (ForKind.SERIAL, ForKind.VECTORIZED):
        if not collect(s.body, Allocate):
            return _partition(s)
    return s


def conjuncts(cond: Expr) -> list[Expr]:
    if isinstance(cond, Binary) and cond.op is BinaryOp.AND:
        return conjuncts(cond.a) + conjuncts(cond.b)
    return [cond]


def _bound(atom: Expr, x: Var, inner: set[int]) -> tuple[str, Expr] | None:
    """``("lo", e)`` when the atom means ``x >= e``, ``("hi", e)`` for ``x < e``."""
    if not (isinstance(atom, Binary) and atom.op in _FLIP and atom.a.dtype.is_int):
        return None
    diff = linear_form(atom.a - atom.b)  # atom: diff op 0
    k = sum(c for a, c in diff if a is x)
    rest_terms = [(a, c) for a, c in diff if a is not x]
    rest_vars = {id(v) for a, _ in rest_terms for v in collect(a, Var)}
    if k not in (1, -1) or id(x) in rest_vars or rest_vars & inner:
        return None  # the bound must be known before the loop starts
    rest: Expr = const(0, atom.a.dtype)
    for a, c in rest_terms:
        rest = rest + (a * c if not (isinstance(a, Const) and a.value == 1) else const(c))
    op = atom.op if k == 1 else _FLIP[atom.op]
    # k*x + rest op 0  ->  x op' -rest*k  (k = +-1)
    bound = -rest if k == 1 else rest
    if op is BinaryOp.LT:
        return "hi", bound
    if op is BinaryOp.LE:
        return "hi", bound + 1
    if op is BinaryOp.GT:
        return "lo", bound + 1
    return "lo", bound


def _partition(loop: For) -> Stmt:
    x = loop.var
    conds = [n.cond for n in collect(loop.body, (Select, IfThenElse))]
    inner = {id(n.var) for n in collect(loop.body, (For, LetStmt))}
    los: list[Expr] = []
    his: list[Expr] = []
    known: list[Expr] = []
    for cond in conds:
        for atom in conjuncts(cond):
            b = _bound(atom, x, inner)
            if b is not None:
                (los if b[0] == "lo" else his).append(b[1])
                known.append(atom)
    if not known:
        return loop
    los, his = _unique(los), _unique(his)
    ext = loop.extent
    lo: Expr = const(0)
    for bound in los:
        lo = max_(lo, bound)
    hi: Expr = ext
    for bound in his:
        hi = min_(hi, bound)
    lo_e = simplify(min_(lo, ext))
    lo_v: Expr = lo_e if isinstance(lo_e, Const) else Var(f"{x.name}_lo")
    hi_e = simplify(max_(min_(hi, ext), lo_v))
    hi_v: Expr = hi_e if isinstance(hi_e, Const) else Var(f"{x.name}_hi")
    ids = {id(a) for a in known}
    middle_body = substitute(assume_true(loop.body, ids), {x: x + lo_v})
    stmt = seq(
        dataclasses.replace(loop, extent=lo_v),
        dataclasses.replace(loop, extent=hi_v - lo_v, body=middle_body),
        dataclasses.replace(loop, extent=ext - hi_v, body=substitute(loop.body, {x: x + hi_v})),
    )
    if isinstance(hi_v, Var):
        stmt = LetStmt(hi_v, hi_e, stmt)
    if isinstance(lo_v, Var):
        stmt = LetStmt(lo_v, lo_e, stmt)
    if _ragged_tail(loop, lo_e, hi_e):
        # Most runs of a vector loop at a tile's edge are whole (every tile but the
        # last): test for that once, so that the common case has a constant trip count
        # and gcc vectorises it without a remainder loop (batch_matmul 16x197x197x64,
        # whose every row of C ends in a partial tile: 1.17x).
        whole_run = dataclasses.replace(loop, body=assume_true(loop.body, ids))
        cond = simplify(binary(BinaryOp.GE, his[0], ext))
        for bound in his[1:]:
            cond = binary(BinaryOp.AND, cond, simplify(binary(BinaryOp.GE, bound, ext)))
        stmt = IfThenElse(cond, whole_run, stmt)
    return stmt


def _ragged_tail(loop: For, lo_e: Expr, hi_e: Expr) -> bool:
    """A vector loop of constant extent whose tests cut only its end, by a bound known
    at run time."""
    return (loop.kind is ForKind.VECTORIZED and isinstance(loop.extent, Const)
            and isinstance(lo_e, Const) and lo_e.value == 0 and not isinstance(hi_e, Const))


def _unique(exprs: list[Expr]) -> list[Expr]:
    seen: dict = {}
    for e in exprs:
        seen.setdefault(structural_key(e), e)
    return list(seen.values())


def assume_true(node, ids: set[int]):
    """Replace the given condition atoms (by identity) with ``true``."""
    if isinstance(node, Expr) and id(node) in ids:
        return const(True)
    return map_children(node, lambda n: assume_true(n, ids))
