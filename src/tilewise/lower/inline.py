"""Inlining: the body each stage computes once ``compute_inline`` stages are
substituted into their readers."""

from __future__ import annotations

from ..ir import Expr, Mutator, substitute
from ..schedule import AttachKind, Schedule, Stage
from ..te.operation import ComputeOp
from ..te.tensor import Reduce, Tensor, TensorRead


def effective_bodies(sch: Schedule) -> dict[Stage, Expr]:
    """Body of every compute stage with reads of inlined tensors replaced by their value."""
    inlined: dict[Tensor, ComputeOp] = {}
    bodies: dict[Stage, Expr] = {}
    for st in sch.stages:  # producers first, so an inlined body is ready before its readers
        if not st.is_compute:
            continue
        op: ComputeOp = st.op  # type: ignore[assignment]
        body = _Inliner(inlined, bodies, sch).visit(op.body)
        bodies[st] = body
        if st.attach_kind is AttachKind.INLINE:
            inlined[op.output(0)] = op
    return bodies


class _Inliner(Mutator):
    def __init__(self, inlined: dict[Tensor, ComputeOp], bodies: dict[Stage, Expr], sch: Schedule):
        self.inlined, self.bodies, self.sch = inlined, bodies, sch

    def visit_TensorRead(self, node: TensorRead) -> Expr:
        indices = tuple(self.visit(i) for i in node.indices)
        op = self.inlined.get(node.tensor)
        if op is None:
            return TensorRead(node.tensor, indices, node.dtype)
        body = self.bodies[self.sch.stage_map[op]]
        return substitute(body, {a.var: ix for a, ix in zip(op.axis, indices, strict=False)})

    def visit_Reduce(self, node: Reduce) -> Expr:
        return Reduce(node.kind, self.visit(node.source), node.axis, node.dtype)
