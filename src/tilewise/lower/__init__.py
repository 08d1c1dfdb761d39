"""Lowering: a schedule becomes a loop-IR function (``tw.lower``).

Pipeline: inline -> bound inference -> loop nests per stage -> buffer
flattening -> simplification -> loop partitioning -> unswitching -> loop
legalisation -> bounded unrolling -> division lowering.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..errors import LowerError
from ..ir import Buffer, Expr, PrimFunc, Scope, const, simplify, simplify_stmt
from ..schedule import AttachKind, Schedule, Stage
from ..te.operation import PlaceholderOp
from ..te.tensor import Tensor, TensorRead
from .bound import StageBound, infer_bounds
from .inline import effective_bodies
from .nest import NestBuilder
from .partition import partition_loops
from .passes import Flatten, legalize_loops, limit_unrolling, lower_division
from .unswitch import unswitch_loops


def lower(
    sch: Schedule,
    args: Sequence[Tensor],
    name: str = "default_function",
    optimize_loops: bool = True,
    given: Collection[Tensor] = (),
    workspace: bool = False,
) -> PrimFunc:
    """Lower ``sch`` to a function whose parameters are ``args`` in order.

    ``optimize_loops=False`` skips loop partitioning and unswitching: the nest as
    scheduled, guards in place, at about half the cost; for analyses such as the
    cost model's features, which score hundreds of configs per plan.

    ``given``: compute tensors of ``args`` whose values the caller passes in (weights
    packed once, ahead of time): no nest computes them, wherever they are attached,
    nor the stages that only they read, and the tensors that only those read need not
    be arguments.

    ``workspace``: the buffers of the whole call (stages at the root that are not
    arguments) become parameters after ``args``, for the caller to place (a model's
    arena), instead of buffers the function allocates itself.

    >>> print(tw.lower(s, [A, B, C]))
    >>> f = tw.lower(s, [A, kernel_pack, C], given=[kernel_pack])
    """
    if not isinstance(sch, Schedule):
        raise LowerError(f"lower: expected a Schedule, got {type(sch).__name__}")
    bodies = effective_bodies(sch)
    bounds = infer_bounds(sch, bodies)
    skipped = _not_computed(sch, list(args), given)
    buffers, mins, allocated, params = _plan_buffers(sch, list(args), bounds, bodies, skipped)
    nb = NestBuilder(sch, bodies, bounds, buffers, allocated, skipped)
    nb.region_min = mins
    body = nb.program(workspace)
    params = [*params, *nb.workspace]
    body = Flatten(buffers, mins).visit(body)
    body = simplify_stmt(body)
    if optimize_loops:
        body = simplify_stmt(partition_loops(body))
        body = simplify_stmt(unswitch_loops(body))
    body = limit_unrolling(legalize_loops(body))
    body = lower_division(body)
    return PrimFunc(name, tuple(params), body, tuple(nb.extern_sources))


def _plan_buffers(
    sch: Schedule,
    args: list[Tensor],
    bounds: dict,
    bodies: dict,
    skipped: frozenset[Stage] = frozenset(),
) -> tuple[dict[Tensor, Buffer], dict[Tensor, tuple[Expr, ...]], set[Tensor], list[Buffer]]:
    buffers: dict[Tensor, Buffer] = {}
    mins: dict[Tensor, tuple[Expr, ...]] = {}
    params: list[Buffer] = []
    seen: set[int] = set()
    for a in args:
        if not isinstance(a, Tensor):
            raise LowerError(f"build arguments must be tensors, got {a!r}")
        st = sch.stage_map.get(a.op)
        if st is None:
            raise LowerError(f"argument {a.name} is not part of this schedule")
        if id(st) in seen:
            raise LowerError(f"argument {a.name} is given twice")
        seen.add(id(st))
        if st.attach_kind is AttachKind.INLINE:
            raise LowerError(f"argument {a.name} is inlined and has no buffer to pass")
        t = st.op.output(0)
        buf = Buffer(_unique(a.name, params), t.shape, t.dtype, Scope.GLOBAL)
        buffers[t] = buf
        mins[t] = tuple(const(0) for _ in t.shape)
        params.append(buf)
    allocated: set[Tensor] = set()
    read = {r.tensor for st, body in bodies.items() if st not in skipped
            for r in _reads(body)}
    for st in sch.stages:
        t = st.op.output(0)
        if t in buffers or st.attach_kind is AttachKind.INLINE or st in skipped:
            continue
        if isinstance(st.op, PlaceholderOp):
            if t in read:
                raise LowerError(f"input tensor {t.name} is read but not in the argument list")
            continue
        if st.is_output:
            raise LowerError(f"output tensor {t.name} is not in the argument list")
        b: StageBound = bounds[st]
        shape = tuple(b.extent[iv] for iv in st.op.axis)
        buffers[t] = Buffer(t.name, shape, t.dtype, st.scope)
        mins[t] = tuple(simplify(b.root_min[iv]) for iv in st.op.axis)
        allocated.add(t)
    return buffers, mins, allocated, params


def _not_computed(
    sch: Schedule, args: list[Tensor], given: Collection[Tensor]
) -> frozenset[Stage]:
    """The stages that compute nothing: the ``given`` ones, and those whose every
    reader computes nothing (not arguments, nor outputs)."""
    if not given:
        return frozenset()
    arg_ops = {a.op for a in args if isinstance(a, Tensor)}
    skipped: set[Stage] = set()
    for g in given:
        if not isinstance(g, Tensor) or g.op not in arg_ops:
            name = g.name if isinstance(g, Tensor) else repr(g)
            raise LowerError(f"given tensor {name} is not in the argument list: a given "
                             "tensor is one the caller passes in")
        st = sch.stage_map.get(g.op)
        if st is None:
            raise LowerError(f"given tensor {g.name} is not part of this schedule")
        if not st.is_compute or st.is_output:
            raise LowerError(f"given tensor {g.name} must be a computed stage, not "
                             f"{'the output' if st.is_compute else 'a placeholder'}")
        skipped.add(st)
    arg_stages = {sch.stage_map[op] for op in arg_ops if op in sch.stage_map}
    changed = True
    while changed:
        changed = False
        for st in sch.stages:
            if st in skipped or st in arg_stages or st.is_output:
                continue
            readers = sch.consumers(st)
            if readers and all(r in skipped for r in readers):
                skipped.add(st)
                changed = True
    for st in sch.stages:  # a stage that is computed inside a loop that no longer runs
        where = st.attach_stage if st.attach_kind is AttachKind.SCOPE else None
        if where in skipped and st not in skipped:
            raise LowerError(f"{st.name} is computed at a loop of {where.name}, which is "
                             "given and has no loops; compute it elsewhere")
    return frozenset(skipped)


def _reads(body: Expr) -> list[TensorRead]:
    from ..ir import collect

    return collect(body, TensorRead)


def _unique(name: str, params: list[Buffer]) -> str:
    names = {p.name for p in params}
    if name not in names:
        return name
    i = 1
    while f"{name}_{i}" in names:
        i += 1
    return f"{name}_{i}"


__all__ = ["lower"]
