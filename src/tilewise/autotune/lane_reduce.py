"""Rule 1 of the generated schedule: a float row reduction rewritten to accumulate
lane-wise (a vector of partial results over the row, folded by a balanced tree, and a
tail), since the C the codegen writes cannot express a vector reduction itself."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..ir import (
    Const,
    Expr,
    Mutator,
    Var,
    collect,
    max_,
    min_,
    simplify,
    substitute,
)
from ..lower.inline import effective_bodies
from ..schedule import Stage, create_schedule
from ..target import Target
from ..te.operation import ComputeOp, Operation
from ..te.tensor import IterKind, IterVar, Range, Reduce, ReduceKind, Tensor, TensorRead
from .tiling import is_contraction


@dataclass(frozen=True)
class Layout:
    """A stage's loops by role: data loops outside the reduction, the reduction loops,
    data loops inside them (none but for a reduction that rule 3 reorders, and the
    lanes of a lane accumulator)."""

    outer: tuple[IterVar, ...]
    reduce: tuple[IterVar, ...]
    inner: tuple[IterVar, ...]


@dataclass(frozen=True)
class LaneGraph:
    """The kernel's tensors after rule 1: its outputs (rebuilt where they read a split
    reduction), the ops that fold lanes (kept, not inlined) and the loops of each lane
    accumulator."""

    outputs: tuple[Tensor, ...]
    trees: frozenset[Operation]
    layouts: Mapping[Operation, Layout]


def lane_rewrite(outputs: list[Tensor], tgt: Target, lane_reduce: bool = True,
                 accumulators: int = 0) -> LaneGraph:
    """The compute with each row reduction (:func:`_lane_splits`) in three ops: lane
    accumulators, the tail, the tree folding both."""
    splits = _lane_splits(outputs, tgt, accumulators) if lane_reduce else {}
    if not splits:
        return LaneGraph(tuple(outputs), frozenset(), {})
    made: dict[Tensor, Tensor] = {}
    trees: set[Operation] = set()
    layouts: dict[Operation, Layout] = {}

    def rebuild(t: Tensor) -> Tensor:
        if t in made:
            return made[t]
        op = t.op
        new = t
        if isinstance(op, ComputeOp):
            inputs = [rebuild(u) for u in op.input_tensors]
            body = op.body
            if any(u is not v for u, v in zip(op.input_tensors, inputs, strict=True)):
                body = _Reads(made).visit(body)
            if op in splits:
                assert isinstance(body, Reduce)
                new = _split(op, body, *splits[op], layouts)
                trees.add(new.op)
            elif body is not op.body:
                new = op.with_body(body).output(0)
        made[t] = new
        return new

    return LaneGraph(tuple(rebuild(t) for t in outputs), frozenset(trees), layouts)


def _lane_splits(outputs: list[Tensor], tgt: Target,
                 accumulators: int) -> dict[Operation, tuple[tuple[IterVar, ...], int]]:
    """reduction -> (its reduction axes in rule 3's order, ``L``): the float reductions
    that rule 1 splits, the last of those axes into ``L`` lanes."""
    s = create_schedule([t.op for t in outputs])
    for st in s.stages:
        if st.is_compute and not st.is_output and not st.op.reduce_axis:
            st.compute_inline()
    bodies = effective_bodies(s)
    out = {}
    for st in s.stages:
        if not st.is_compute or not st.op.reduce_axis or not st.op.dtype.is_float:
            continue
        if is_contraction(st, bodies[st]):
            continue  # tiled instead (rule 7)
        lay = loop_layout(st, bodies[st])
        k = lay.reduce[-1]
        if lay.inner or not _unit_stride(k, bodies[st]):
            continue
        width = vector_lanes(tgt, st, bodies[st])
        n = k.domain.extent
        acc = accumulators or max(a for a in (1, 2, 4) if a == 1 or (
            n >= 16 * a * width and n % (a * width) < width))
        if width > 1 and n >= 2 * width * acc:
            out[st.op] = (lay.reduce, width * acc)
    return out


def _unit_stride(k: IterVar, body: Expr) -> bool:
    """``k`` indexes only the innermost dimension of the reads using it, with stride 1
    (and at least one read uses it)."""
    used = False
    step = {k.var: k.var + 1}
    for rd in collect(body, TensorRead):
        hits = [d for d, ix in enumerate(rd.indices) if k.var in collect(ix, Var)]
        if not hits:
            continue
        last = rd.indices[-1]
        delta = simplify(substitute(last, step) - last)
        if hits != [len(rd.indices) - 1] or not isinstance(delta, Const) or delta.value != 1:
            return False
        used = True
    return used


def _split(op: ComputeOp, body: Reduce, order: tuple[IterVar, ...], lanes: int,
           layouts: dict[Operation, Layout]) -> Tensor:
    """``op``'s reduction over ``k = order[-1]`` (of extent ``n``) in ``lanes`` lanes,
    the other reduction axes kept in both folds:

        op_lanes[o, l] = fold(src[k = ko * lanes + l] for ko < n // lanes)  (vector in l)
        op_tail[o]     = fold(src[k = n // lanes * lanes + t] for t < n % lanes)
        op[o]          = tree(op_lanes[o, 0], ..., op_lanes[o, lanes - 1]) (+ op_tail[o])

    ``layouts`` gets the loops of ``op_lanes``: the lanes inside the reduction.
    """
    k, kind = order[-1], body.kind
    q, r = divmod(k.domain.extent, lanes)

    def fold(name: str, index: Expr, red: IterVar, lane: IterVar | None = None) -> Tensor:
        o = tuple(IterVar(Var(a.name), a.dom, a.kind) for a in op.axis)
        others = tuple(IterVar(Var(a.name), a.dom, a.kind) for a in order[:-1])
        vmap: dict[Var, Expr] = {a.var: b.var for a, b in zip(op.axis, o, strict=True)}
        vmap.update({a.var: b.var for a, b in zip(order[:-1], others, strict=True)})
        vmap[k.var] = index + k.domain.min
        data = (*o, lane) if lane else o
        folded = Reduce(kind, substitute(body.source, vmap), (*others, red), body.dtype)
        t = ComputeOp(f"{op.name}_{name}", data, folded, op.tag).output(0)
        if lane:
            layouts[t.op] = Layout(o, (*others, red), (lane,))
        return t

    lane = IterVar(Var(f"{k.name}.lane"), Range(0, lanes), IterKind.DATA_PAR)
    ko = IterVar(Var(f"{k.name}.outer"), Range(0, q), IterKind.REDUCE)
    part = fold("lanes", ko.var * lanes + lane.var, ko, lane)
    idx = tuple(a.var for a in op.axis)
    value = _tree(kind, [part[(*idx, j)] for j in range(lanes)])
    if r:
        t = IterVar(Var(f"{k.name}.tail"), Range(0, r), IterKind.REDUCE)
        value = _fold(kind, value, fold("tail", t.var + q * lanes, t)[idx])
    return ComputeOp(op.name, op.axis, value, op.tag).output(0)


def _tree(kind: ReduceKind, values: list[Expr]) -> Expr:
    """Fold ``values`` in a balanced tree, halves first (the accumulators' vectors lane
    by lane, then each vector's halves): log2(L) operations deep, not L."""
    while len(values) > 1:
        h = (len(values) + 1) // 2
        values = [_fold(kind, values[j], values[j + h]) if j + h < len(values) else values[j]
                  for j in range(h)]
    return values[0]


def _fold(kind: ReduceKind, a: Expr, b: Expr) -> Expr:
    if kind is ReduceKind.SUM:
        return a + b
    return max_(a, b) if kind is ReduceKind.MAX else min_(a, b)


class _Reads(Mutator):
    """Reads of the tensors ``made`` maps, redirected to what it maps them to."""

    def __init__(self, made: Mapping[Tensor, Tensor]) -> None:
        self.made = made

    def visit_TensorRead(self, node: TensorRead) -> Expr:
        t = self.made.get(node.tensor, node.tensor)
        return TensorRead(t, tuple(self.visit(i) for i in node.indices), t.dtype)

    def visit_Reduce(self, node: Reduce) -> Expr:
        return Reduce(node.kind, self.visit(node.source), node.axis, node.dtype)


# ---- rule 2: row buffers -------------------------------------------------------------


def loop_layout(st: Stage, body) -> Layout:
    """The stage's loops by role (rule 3: data loops nearer the reads' innermost
    dimension than every reduction loop run inside it)."""
    axes = tuple(st.op.axis)
    red = tuple(st.op.reduce_axis)
    if not red:
        return Layout(axes, (), ())
    # How close each variable comes to a read's innermost dimension (0: it indexes it).
    dist: dict[Var, int] = {}
    for rd in collect(body, TensorRead):
        n = len(rd.indices)
        for d, ix in enumerate(rd.indices):
            for v in collect(ix, Var):
                dist[v] = min(dist.get(v, n), n - 1 - d)
    far = math.inf
    red = tuple(sorted(red, key=lambda k: -dist.get(k.var, far)))  # stable: ties keep order
    closest = min(dist.get(k.var, far) for k in red)
    k = len(axes)
    while k and (axes[k - 1].domain.extent == 1 or dist.get(axes[k - 1].var, far) < closest):
        k -= 1
    while k < len(axes) and axes[k].domain.extent == 1:
        k += 1  # size-1 axes gain nothing inside; keep them out with the outer ones
    return Layout(axes[:k], red, axes[k:])


def vector_lanes(tgt: Target, st: Stage, body) -> int:
    return tgt.vector_lanes(widest(st, body))


def widest(st: Stage, body) -> int:
    """The widest element (bytes) the stage writes or reads: the vector's width in
    elements is set by it."""
    return max([st.op.dtype.bytes] + [rd.dtype.bytes for rd in collect(body, TensorRead)])
