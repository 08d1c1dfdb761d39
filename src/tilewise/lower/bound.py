"""Bound inference: the region of each stage that must be computed, and the extent
of every loop.

Stages are visited consumers first. A root stage computes its whole domain. A
stage attached with ``compute_at`` computes the union of the regions its readers
touch during one iteration of the attachment loop: loops outside that point stay
symbolic, loops inside it sweep their range. Region starts are therefore
expressions of outer loop variables; extents are constant upper bounds, and
points beyond the domain are guarded during lowering.

A shared (GPU block) buffer is filled by all the block's threads together: the
loops around it bound to ``threadIdx`` sweep their range too (TVM's rule), so it
holds what every thread of the block reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import LowerError
from ..ir import (
    Const,
    Expr,
    Scope,
    Var,
    collect,
    const,
    const_bound,
    eval_interval,
    min_,
    simplify,
    substitute,
)
from ..ir.interval import Interval
from ..schedule import AttachKind, Fuse, Schedule, Split, Stage, Tail
from ..te.tensor import IterVar, TensorRead


@dataclass
class StageBound:
    """Where a stage's loops start and how far they run."""

    root_min: dict[IterVar, Expr] = field(default_factory=dict)
    extent: dict[IterVar, int] = field(default_factory=dict)
    # splits whose outer*inner overshoots the parent: they need a guard
    overshoot: set[IterVar] = field(default_factory=set)
    # the others that overshoot: their last tile shifts back inside (Stage.split)
    shifted: set[IterVar] = field(default_factory=set)


def enclosing_loops(stage: Stage) -> list[IterVar]:
    """Loops around a stage's own nest, outermost first: its attachment chain."""
    out: list[IterVar] = []
    st = stage
    while st.attach_kind is AttachKind.SCOPE:
        parent, iv = st.attach_stage, st.attach_ivar
        assert parent is not None and iv is not None
        out[:0] = parent.leaf_iter_vars[: parent.leaf_iter_vars.index(iv) + 1]
        st = parent
    return out


def leaf_owner(sch: Schedule) -> dict[IterVar, Stage]:
    """The stage whose loop each leaf iteration variable is."""
    return {iv: st for st in sch.stages for iv in st.leaf_iter_vars}


def normalised_values(stage: Stage, bound: StageBound) -> dict[IterVar, Expr]:
    """Offset of every iteration variable within its range, from the leaf loop vars."""
    val: dict[IterVar, Expr] = {iv: iv.var for iv in stage.leaf_iter_vars}
    for rel in reversed(stage.relations):
        if isinstance(rel, Split):
            start = val[rel.outer] * bound.extent[rel.inner]
            if rel.parent in bound.shifted:
                start = min_(start, const(bound.extent[rel.parent] - bound.extent[rel.inner]))
            val[rel.parent] = start + val[rel.inner]
        else:
            ext = bound.extent[rel.inner]
            val[rel.outer] = val[rel.fused] // ext
            val[rel.inner] = val[rel.fused] % ext
    return val


def root_values(stage: Stage, bound: StageBound) -> dict[IterVar, Expr]:
    """Each root axis as an expression of the leaf loop variables and outer loops."""
    val = normalised_values(stage, bound)
    for iv, m in bound.root_min.items():
        val[iv] = val[iv] + m
    return val


def infer_bounds(sch: Schedule, bodies: dict[Stage, Expr]) -> dict[Stage, StageBound]:
    bounds: dict[Stage, StageBound] = {}
    owner = leaf_owner(sch)
    for st in reversed(sch.stages):
        if not st.is_compute or st.attach_kind is AttachKind.INLINE:
            continue
        b = StageBound()
        op = st.op
        for iv in op.reduce_axis:
            b.root_min[iv] = const(iv.domain.min)
            b.extent[iv] = iv.domain.extent
        if st.attach_kind is AttachKind.ROOT or st.is_output:
            for iv in op.axis:
                b.root_min[iv] = const(0)
                b.extent[iv] = iv.domain.extent
        else:
            _attached_region(sch, st, bodies, bounds, owner, b)
        _derive_extents(st, b)
        bounds[st] = b
    return bounds


def _derive_extents(st: Stage, b: StageBound) -> None:
    for rel in st.relations:
        if isinstance(rel, Split):
            ext = b.extent[rel.parent]
            inner = min(rel.factor, ext)
            outer = -(-ext // inner)
            b.extent[rel.inner], b.extent[rel.outer] = inner, outer
            if inner * outer != ext:
                (b.shifted if rel.tail is Tail.SHIFT_INWARDS else b.overshoot).add(rel.parent)
        elif isinstance(rel, Fuse):
            b.extent[rel.fused] = b.extent[rel.outer] * b.extent[rel.inner]


def _attached_region(
    sch: Schedule,
    st: Stage,
    bodies: dict[Stage, Expr],
    bounds: dict[Stage, StageBound],
    owner: dict[IterVar, Stage],
    b: StageBound,
) -> None:
    anchor, at = st.attach_stage, st.attach_ivar
    assert anchor is not None and at is not None
    fixed = set(enclosing_loops(st))
    if st.scope is Scope.SHARED:
        # The block's threads fill a shared buffer together: it holds what all of them
        # read, so the loops bound to threadIdx around it sweep their range (TVM's rule).
        fixed -= {iv for iv in fixed if _thread_of(owner[iv], iv).startswith("threadIdx")}
    tensor = st.op.output(0)
    region: list[Interval | None] = [None] * len(st.op.axis)
    const_ranges: dict[Var, tuple[int, int]] = {}
    for reader in _readers(sch, st, bodies):
        chain = enclosing_loops(reader)
        if reader is not anchor and at not in chain:
            raise LowerError(
                f"{st.name} is computed at {anchor.name}.{at.name}, but its reader "
                f"{reader.name} runs outside that loop; attach {reader.name} inside it too "
                f"or compute {st.name} at root"
            )
        rb = bounds[reader]
        vals = root_values(reader, rb)
        sub = {iv.var: vals[iv] for iv in list(reader.op.axis) + list(reader.op.reduce_axis)}
        relax: dict[Var, Interval] = {}
        for iv in chain + reader.leaf_iter_vars:
            ext = bounds[owner[iv]].extent[iv]
            const_ranges[iv.var] = (0, ext - 1)
            if iv not in fixed:
                relax[iv.var] = Interval(const(0), const(ext - 1))
        for read in collect(bodies[reader], TensorRead):
            if read.tensor is not tensor:
                continue
            for d, ix in enumerate(read.indices):
                iv_ = eval_interval(simplify(substitute(ix, sub)), relax, const_ranges)
                prev = region[d]
                region[d] = iv_ if prev is None else prev.union(iv_)
    for d, iv in enumerate(st.op.axis):
        r = region[d]
        if r is None:  # nobody reads this tensor: nothing to compute
            b.root_min[iv], b.extent[iv] = const(0), 1
            continue
        lo = simplify(r.lo, const_ranges)
        span = simplify(r.hi - r.lo + 1, const_ranges)
        hi = const_bound(span, const_ranges)[1]
        if hi is None:
            raise LowerError(f"cannot bound the region of {st.name} along {iv.name}: {span}")
        if isinstance(lo, Const) and lo.value >= 0:
            hi = min(hi, iv.domain.extent - int(lo.value))
        b.root_min[iv] = lo
        b.extent[iv] = max(1, hi)


def _readers(sch: Schedule, st: Stage, bodies: dict[Stage, Expr]) -> list[Stage]:
    t = st.op.output(0)
    return [
        r
        for r, body in bodies.items()
        if r.attach_kind is not AttachKind.INLINE
        and any(x.tensor is t for x in collect(body, TensorRead))
    ]


def _thread_of(stage: Stage, iv: IterVar) -> str:
    """The GPU thread index a loop is bound to, "" where none."""
    attr = stage.iter_attrs.get(iv)
    return (attr.thread_tag or "") if attr is not None else ""
