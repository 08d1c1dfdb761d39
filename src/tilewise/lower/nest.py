"""Schedule -> loop nests: one nest per stage, attached stages placed inside the
loop they are computed at, guards wherever a split or a region overshoots.

A guard that decides a whole iteration of a loop (a split's tail) also encloses the
stages attached in that loop: they compute only what the iteration reads. Inside it,
the guards of those stages that it implies are dropped, so that a tile that never
overshoots (a register tile under a block split that does not divide) is tensorized."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LowerError
from ..ir import (
    Allocate,
    BinaryOp,
    Buffer,
    Const,
    Expr,
    For,
    ForKind,
    IfThenElse,
    Stmt,
    Var,
    binary,
    collect,
    const,
    implies,
    max_,
    min_,
    seq,
    simplify,
    substitute,
)
from ..schedule import AttachKind, Schedule, Stage
from ..schedule.stage import PrefetchRequest
from ..te.tensor import IterKind, IterVar, Reduce, ReduceKind, Tensor, TensorRead
from .bound import StageBound, enclosing_loops, leaf_owner, normalised_values
from .prefetch import prefetch_stmt
from .tensorize import tensorize_stmt


@dataclass(frozen=True, eq=False, repr=False)
class Provide(Stmt):
    """Write ``value`` to a tensor element; flattened to a Store once buffers are known."""

    tensor: Tensor
    indices: tuple[Expr, ...]
    value: Expr


class NestBuilder:
    """Builds the statement of each stage; holds the lowering state of one schedule."""

    def __init__(
        self,
        sch: Schedule,
        bodies: dict[Stage, Expr],
        bounds: dict[Stage, StageBound],
        buffers: dict[Tensor, Buffer],
        allocated: set[Tensor],
        skipped: frozenset[Stage] = frozenset(),
    ) -> None:
        self.sch, self.bodies, self.bounds = sch, bodies, bounds
        self.buffers, self.allocated = buffers, allocated
        # Stages whose values the caller passes in, and those only they read: no nest.
        self.skipped = skipped
        self.attached: dict[tuple[Stage, IterVar], list[Stage]] = {}
        self.tensorize_info: dict[Stage, tuple[tuple[Expr, ...], list[TensorRead]]] = {}
        self.region_min: dict[Tensor, tuple[Expr, ...]] = {}
        self.extern_sources: dict[str, None] = {}
        self.workspace: list[Buffer] = []  # root buffers the caller places (program)
        self.owner = leaf_owner(sch)
        # Guards of the consumers around the stage being built, true wherever it runs.
        self.facts: list[Expr] = []
        for st in sch.stages:
            if st.attach_kind is AttachKind.SCOPE:
                key = (st.attach_stage, st.attach_ivar)
                self.attached.setdefault(key, []).append(st)  # type: ignore[arg-type]

    def program(self, workspace: bool = False) -> Stmt:
        """The function's body; with ``workspace``, the root stages' buffers are left
        to the caller (:attr:`workspace`) instead of allocated here."""
        roots = [
            st for st in self.sch.stages
            if st.is_compute and st.attach_kind is AttachKind.ROOT and st not in self.skipped
        ]
        body = seq(*(self.stage(st) for st in roots))
        for st in reversed(roots):
            t = st.op.output(0)
            if t in self.allocated and workspace:
                self.workspace.insert(0, self.buffers[t])
            elif t in self.allocated:
                body = Allocate(self.buffers[t], body)
        return body

    # ---- one stage ----------------------------------------------------------

    def _body(self, st: Stage):
        """``st``'s body over its leaf loops, its output's index, the axes' values
        (normalised, and actual); what it reads (:attr:`tensorize_info`) noted."""
        b = self.bounds[st]
        norm = normalised_values(st, b)
        actual = {iv: norm[iv] + b.root_min[iv] for iv in b.root_min}
        sub = {iv.var: actual[iv] for iv in b.root_min}
        body = substitute(self.bodies[st], sub)
        t = st.op.output(0)
        index = tuple(actual[iv] for iv in st.op.axis)
        self.tensorize_info[st] = (
            index,
            [r for r in collect(body, TensorRead) if r.tensor is not t],
        )
        return body, index, norm, actual

    def reads(self, st: Stage) -> list[TensorRead]:
        """What ``st`` reads, over its leaf loops' variables; also before its nest is
        built (a prefetch spread over loops that run inside the loop it is attached at)."""
        if st not in self.tensorize_info:
            self._body(st)
        return self.tensorize_info[st][1]

    def stage(self, st: Stage) -> Stmt:
        b = self.bounds[st]
        body, index, norm, actual = self._body(st)
        t = st.op.output(0)
        guards = self._guards(st, b, norm, actual)
        leaves = st.leaf_iter_vars
        if not isinstance(body, Reduce):
            return self._nest(st, leaves, Provide(t, index, body), guards, mode="body")
        if b.shifted:
            _check_shifted_reduction(st, b)
        first = next((i for i, iv in enumerate(leaves) if iv.kind is IterKind.REDUCE), len(leaves))
        common, rest = leaves[:first], leaves[first:]
        init_leaves = [iv for iv in rest if iv.kind is not IterKind.REDUCE]
        common_vars = {iv.var for iv in common}
        init_vars = common_vars | {iv.var for iv in init_leaves}
        outer_g = [g for g in guards if _leaf_vars(g, leaves) <= common_vars]
        inner_g = [g for g in guards if g not in outer_g]
        init_g = [g for g in inner_g if _leaf_vars(g, leaves) <= init_vars]
        old = TensorRead(t, index, t.dtype)
        init = Provide(t, index, _init_value(body))
        update = Provide(t, index, _combine(body.kind, old, body.source))
        inner = seq(
            self._nest(st, init_leaves, init, init_g, mode="reset", attach=False),
            self._nest(st, rest, update, inner_g, mode="update"),
        )
        return self._nest(st, common, inner, outer_g, mode="body")

    def _guards(
        self,
        st: Stage,
        b: StageBound,
        norm: dict[IterVar, Expr],
        actual: dict[IterVar, Expr],
    ) -> list[Expr]:
        conds: list[Expr] = []
        for parent in st.all_iter_vars:
            if parent in b.overshoot:
                conds.append(norm[parent] < b.extent[parent])
        if st.attach_kind is AttachKind.SCOPE:
            for iv in st.op.axis:
                conds.append(actual[iv] >= 0)
                conds.append(actual[iv] < iv.domain.extent)
        # Drop the checks that the ranges of the stage's loops and of the loops it is
        # attached in already decide, so that they neither reach the code nor stop a
        # tensorize below them.
        ranges = {}
        for iv in enclosing_loops(st) + st.leaf_iter_vars:
            ext = self.bounds[self.owner[iv]].extent.get(iv)
            if ext:
                ranges[iv.var] = (0, ext - 1)
        kept = []
        for c in conds:
            decided = simplify(c, ranges)
            if isinstance(decided, Const) and decided.value:
                continue
            if not any(implies(f, c, ranges) for f in self.facts):
                kept.append(c)
        return kept

    def _nest(
        self,
        st: Stage,
        leaves: list[IterVar],
        inner: Stmt,
        guards: list[Expr],
        mode: str,
        attach: bool = True,
    ) -> Stmt:
        """Wrap ``inner`` in the loops ``leaves``, each guard right inside the deepest
        loop it mentions, attached producers at the top of their loop's body, inside
        that loop's guards."""
        depth = {iv.var: i for i, iv in enumerate(leaves)}
        at_depth: dict[int, list[Expr]] = {}
        for g in guards:
            d = max((depth[v] for v in collect(g, Var) if v in depth), default=-1)
            at_depth.setdefault(d, []).append(g)
        stmt = inner
        b = self.bounds[st]
        for pos in range(len(leaves) - 1, -2, -1):
            conds = at_depth.get(pos, [])
            if pos < 0:
                stmt = _guard(conds, stmt)
                break
            iv = leaves[pos]
            attr = st.iter_attrs.get(iv)
            intrin = attr.tensorize if attr is not None else None
            if intrin is not None:
                if any(d >= pos for d in at_depth):
                    raise LowerError(
                        f"tensorize at {st.name}.{iv.name}: the loops it replaces need bound "
                        "checks (a split that does not divide); choose dividing factors"
                    )
                _no_prefetch_below(st, leaves[pos:])
                stmt = tensorize_stmt(self, st, iv, intrin, mode)
            stmt = self._with_attached(st, iv, stmt, conds) if attach else _guard(conds, stmt)
            if intrin is not None:
                continue  # the micro-kernel call replaces this loop too
            # A reduction builds its data-parallel loops below the first reduction loop
            # twice, to reset and to update; the hints go with the update.
            asks = _prefetches_at(st, iv) if mode != "reset" else []
            if self.skipped:  # what only given stages read is read by nothing here
                asks = [(at, ask) for at, ask in asks
                        if self.sch.stage_map.get(ask.tensor.op) not in self.skipped]
            if asks:
                if attr is not None and attr.kind is ForKind.VECTORIZED:
                    raise LowerError(f"prefetch at {st.name}.{iv.name}: a vectorised loop "
                                     "runs its iterations at once; prefetch in a loop "
                                     "around it")
                stmt = seq(*(prefetch_stmt(self, st, at, ask) for at, ask in asks), stmt)
            kind = attr.kind if attr is not None else ForKind.SERIAL
            tag = attr.thread_tag if attr is not None else None
            pragmas = attr.pragmas if attr is not None else ()
            stmt = For(iv.var, const(b.extent[iv]), kind, stmt, tag, pragmas)
        return stmt

    def _with_attached(self, st: Stage, iv: IterVar, rest: Stmt, conds: list[Expr]) -> Stmt:
        """The producers attached at ``iv`` before ``rest`` (the loop's body), all under
        the loop's guards ``conds``."""
        producers = [p for p in self.attached.get((st, iv), []) if p not in self.skipped]
        if not producers:
            return _guard(conds, rest)
        self.facts.extend(conds)
        try:
            made = [self.stage(p) for p in producers]
        finally:
            del self.facts[len(self.facts) - len(conds):]
        stmt = seq(*made, rest)
        for p in reversed(producers):
            t = p.op.output(0)
            if t in self.allocated:
                stmt = Allocate(self.buffers[t], stmt)
        return _guard(conds, stmt)


def _prefetches_at(st: Stage, iv: IterVar) -> list[tuple[IterVar, PrefetchRequest]]:
    """The prefetches whose hints go at the top of loop ``iv``'s body: its own, unless
    spread, and those of loops around it spread down to it, each with its loop."""
    leaves = st.leaf_iter_vars
    asks = []
    for at, attr in st.iter_attrs.items():
        for ask in attr.prefetch:
            if (ask.spread or at) is not iv:
                continue
            if ask.spread is not None and (at not in leaves or ask.spread not in leaves
                                           or leaves.index(at) >= leaves.index(iv)):
                raise LowerError(f"prefetch at {st.name}.{at.name}: the loop it is spread "
                                 f"over, {iv.name}, must run inside it")
            asks.append((at, ask))
    return asks


def _no_prefetch_below(st: Stage, replaced: list[IterVar]) -> None:
    for iv in replaced:
        if _prefetches_at(st, iv):
            raise LowerError(f"prefetch at {st.name}.{iv.name}: the loop is replaced by a "
                             "micro-kernel call (tensorize); prefetch in a loop around it")


def _check_shifted_reduction(st: Stage, b: StageBound) -> None:
    """A shifted tile computes some elements twice; a sum redone in place (zeroed,
    then accumulated in memory) could be zeroed by one tile while the other, on
    another thread, adds to it. Only a micro-kernel holding the whole sum of its tile
    (tensorized above every reduction loop) redoes it safely."""
    leaves = st.leaf_iter_vars
    at = next((n for n, iv in enumerate(leaves)
               if (attr := st.iter_attrs.get(iv)) is not None and attr.tensorize), None)
    if at is None or any(iv.kind is IterKind.REDUCE for iv in leaves[:at]):
        names = ", ".join(sorted(iv.name for iv in b.shifted))
        raise LowerError(
            f"{st.name}: the split of {names} shifts its last tile inwards, which computes "
            "some sums twice; a reduction may do that only in tiles that a micro-kernel "
            "computes whole (tensorize above every reduction loop)")


def _guard(conds: list[Expr], stmt: Stmt) -> Stmt:
    if not conds:
        return stmt
    cond = conds[0]
    for c in conds[1:]:
        cond = binary(BinaryOp.AND, cond, c)
    return IfThenElse(cond, stmt)


def _leaf_vars(e: Expr, leaves: list[IterVar]) -> set[Var]:
    names = {iv.var for iv in leaves}
    return {v for v in collect(e, Var) if v in names}


def _init_value(r: Reduce) -> Expr:
    dt = r.dtype
    if r.kind is ReduceKind.SUM:
        return const(0, dt)
    big = float("inf") if dt.is_float else (2 ** (dt.bits - 1) - 1)
    if r.kind is ReduceKind.MAX:
        return const(-big if dt.is_float else -big - 1, dt)
    return const(big, dt)


def _combine(kind: ReduceKind, old: Expr, new: Expr) -> Expr:
    if kind is ReduceKind.SUM:
        return old + new
    if kind is ReduceKind.MAX:
        return max_(old, new)
    if kind is ReduceKind.MIN:
        return min_(old, new)
    raise LowerError(f"unknown reduction {kind}")
