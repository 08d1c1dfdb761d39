"""The Schedule: the stages of a dataflow graph, in producer-before-consumer order,
and the primitives that rewrite the graph itself (cache_read, cache_write)."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ScheduleError
from ..ir import Expr, Mutator, Var, substitute
from ..te.operation import ComputeOp, Operation, PlaceholderOp
from ..te.tensor import IterKind, IterVar, Range, Reduce, Tensor, TensorRead
from .stage import AttachKind, Stage


class Schedule:
    """How to compute a set of output operations; index with a tensor to get its Stage."""

    def __init__(self, outputs: Iterable[Operation]) -> None:
        self.outputs = list(outputs)
        self.stages: list[Stage] = []
        self.stage_map: dict[Operation, Stage] = {}
        for op in _post_order(self.outputs):
            st = Stage.of(op, self)
            st.is_output = op in self.outputs
            self.stages.append(st)
            self.stage_map[op] = st

    def __getitem__(self, key: Tensor | Operation) -> Stage:
        op = key.op if isinstance(key, Tensor) else key
        st = self.stage_map.get(op)
        if st is None:
            name = getattr(op, "name", repr(op))
            raise ScheduleError(f"{name} is not part of this schedule")
        return st

    def consumers(self, stage: Stage) -> list[Stage]:
        """Stages whose current op reads ``stage``'s output."""
        t = stage.op.output(0)
        return [s for s in self.stages if t in s.op.input_tensors]

    def reads_transitively(self, consumer: Stage, producer: Stage) -> bool:
        frontier, seen = [consumer], set()
        while frontier:
            st = frontier.pop()
            for t in st.op.input_tensors:
                p = self.stage_map[t.op]
                if p is producer:
                    return True
                if id(p) not in seen:
                    seen.add(id(p))
                    frontier.append(p)
        return False

    # ---- graph rewrites -----------------------------------------------------

    def cache_read(
        self, tensor: Tensor, scope: str, readers: Iterable[Tensor | Operation]
    ) -> Tensor:
        """Copy ``tensor`` into a new stage in ``scope``, which ``readers`` read instead.

        Returns the copy; place it with ``compute_at`` to load tiles (packing).
        """
        src = self[tensor]
        shape = src.op.shape
        axes = tuple(IterVar(Var(f"ax{d}"), Range(0, n)) for d, n in enumerate(shape))
        src_t = src.op.output(0)
        body = TensorRead(src_t, tuple(a.var for a in axes), src_t.dtype)
        copy_op = ComputeOp(f"{src.name}.{scope}", axes, body)
        reader_stages = [self[r] for r in readers]
        for r in reader_stages:
            if src_t not in r.op.input_tensors:
                raise ScheduleError(f"cache_read of {src.name}: {r.name} does not read it")
        copy = Stage.of(copy_op, self)
        copy.set_scope(scope)
        self.stages.insert(self.stages.index(src) + 1, copy)
        self.stage_map[copy_op] = copy
        for r in reader_stages:
            self._rewrite(r, {src_t: copy_op.output(0)})
        return copy_op.output(0)

    def cache_write(self, tensor: Tensor, scope: str) -> Tensor:
        """Compute ``tensor`` into a new stage in ``scope``; the original stage becomes a
        copy of it. Call before scheduling the original stage; returns the new tensor.

        The classic register tile: ``CC = s.cache_write(C, "local")``, then
        ``s[CC].compute_at(s[C], xo)`` accumulates a tile in registers.
        """
        st = self[tensor]
        if not st.is_compute:
            raise ScheduleError(f"cache_write of {st.name}: a placeholder is never written")
        if st.relations or any(s.attach_stage is st for s in self.stages):
            raise ScheduleError(f"cache_write of {st.name}: call it before scheduling the stage")
        op: ComputeOp = st.op  # type: ignore[assignment]
        new_axes = tuple(IterVar(Var(a.name + ".c"), a.dom, a.kind) for a in op.axis)
        vmap: dict[Var, Expr] = {a.var: b.var for a, b in zip(op.axis, new_axes, strict=False)}
        body = op.body
        if isinstance(body, Reduce):
            raxes = tuple(IterVar(Var(a.name + ".c"), a.dom, IterKind.REDUCE) for a in body.axis)
            vmap.update({a.var: b.var for a, b in zip(body.axis, raxes, strict=False)})
            body = Reduce(body.kind, substitute(body.source, vmap), raxes, body.dtype)
        else:
            body = substitute(body, vmap)
        inner_op = ComputeOp(f"{st.name}.{scope}", new_axes, body, op.tag)
        inner = Stage.of(inner_op, self)
        inner.set_scope(scope)
        self.stages.insert(self.stages.index(st), inner)
        self.stage_map[inner_op] = inner
        t = inner_op.output(0)
        copy_body = TensorRead(t, tuple(a.var for a in op.axis), t.dtype)
        self._replace_op(st, op.with_body(copy_body))
        st.reset_axes()
        return t

    def _rewrite(self, stage: Stage, mapping: dict[Tensor, Tensor]) -> None:
        op = stage.op
        assert isinstance(op, ComputeOp)
        self._replace_op(stage, op.with_body(_ReplaceReads(mapping).visit(op.body)))

    def _replace_op(self, stage: Stage, new_op: ComputeOp) -> None:
        """Give ``stage`` a new op and rewrite every consumer to read the new tensor."""
        old_t = stage.op.output(0)
        stage.op = new_op
        self.stage_map[new_op] = stage
        for other in self.stages:
            if other is not stage and old_t in other.op.input_tensors:
                self._rewrite(other, {old_t: new_op.output(0)})
        self.outputs = [new_op if o is old_t.op else o for o in self.outputs]

    def __repr__(self) -> str:
        lines = []
        for st in self.stages:
            where = st.attach_kind.value
            if st.attach_kind is AttachKind.SCOPE:
                where = f"at {st.attach_stage.name}.{st.attach_ivar.name}"  # type: ignore[union-attr]
            leaves = ", ".join(iv.name for iv in st.leaf_iter_vars)
            lines.append(f"stage {st.name} [{where}] ({leaves})")
        return "\n".join(lines)


class _ReplaceReads(Mutator):
    def __init__(self, mapping: dict[Tensor, Tensor]) -> None:
        self.mapping = mapping

    def visit_TensorRead(self, node: TensorRead) -> Expr:
        indices = tuple(self.visit(i) for i in node.indices)
        t = self.mapping.get(node.tensor, node.tensor)
        return TensorRead(t, indices, t.dtype)

    def visit_Reduce(self, node: Reduce) -> Expr:
        return Reduce(node.kind, self.visit(node.source), node.axis, node.dtype)


def _post_order(outputs: list[Operation]) -> list[Operation]:
    order: list[Operation] = []
    seen: set[int] = set()

    def visit(op: Operation) -> None:
        if id(op) in seen:
            return
        seen.add(id(op))
        for t in op.input_tensors:
            visit(t.op)
        order.append(op)

    for op in outputs:
        visit(op)
    return order


def create_schedule(ops: Operation | Tensor | Iterable[Operation | Tensor]) -> Schedule:
    """A default schedule (every stage at the root, loops in axis order) for ``ops``."""
    items = [ops] if isinstance(ops, (Operation, Tensor)) else list(ops)
    out = []
    for o in items:
        op = o.op if isinstance(o, Tensor) else o
        if not isinstance(op, Operation):
            raise ScheduleError(f"create_schedule: {o!r} is not an operation or tensor")
        if isinstance(op, PlaceholderOp):
            raise ScheduleError(f"create_schedule: {op.name} is a placeholder; pass a compute")
        out.append(op)
    return Schedule(out)


_THREAD_TAGS = {
    "blockIdx.x",
    "blockIdx.y",
    "blockIdx.z",
    "threadIdx.x",
    "threadIdx.y",
    "threadIdx.z",
}


def thread_axis(tag: str) -> IterVar:
    """A GPU thread index to ``bind`` loops to, e.g. ``thread_axis("threadIdx.x")``."""
    if tag not in _THREAD_TAGS:
        raise ScheduleError(f"thread_axis: unknown tag {tag!r}; use one of {sorted(_THREAD_TAGS)}")
    return IterVar(Var(tag), None, IterKind.THREAD, tag)


__all__ = ["Schedule", "create_schedule", "thread_axis"]
