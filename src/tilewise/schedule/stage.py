"""A Stage: how one operation's loops are split, ordered, annotated and placed.

Each primitive is one method, documented with the loop nest before and after.
Relations are recorded as frozen data; lowering derives extents and index
expressions from them, so a primitive never computes anything eagerly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ScheduleError
from ..ir import ForKind, Scope, Var
from ..te.operation import ComputeOp, Operation
from ..te.tensor import IterKind, IterVar, Range, Tensor

if TYPE_CHECKING:
    from .schedule import Schedule
    from .tensorize import TensorIntrin


class Tail(enum.Enum):
    """How a split that its factor does not divide ends (:meth:`Stage.split`)."""

    GUARD = "guard"
    SHIFT_INWARDS = "shift_inwards"


@dataclass(frozen=True)
class Split:
    parent: IterVar
    outer: IterVar
    inner: IterVar
    factor: int
    tail: Tail = Tail.GUARD


@dataclass(frozen=True)
class Fuse:
    outer: IterVar
    inner: IterVar
    fused: IterVar


Relation = Split | Fuse


class AttachKind(enum.Enum):
    ROOT = "root"
    INLINE = "inline"
    SCOPE = "scope"


@dataclass(frozen=True)
class PrefetchRequest:
    """One :meth:`Stage.prefetch` of a loop: what the iteration ``offset`` on reads of
    ``tensor``, asked for at the top of each iteration, or spread over the iterations
    of the loops inside it down to ``spread``; into cache ``level``."""

    tensor: Tensor
    offset: int
    spread: IterVar | None = None
    level: int = 1


@dataclass
class IterAttr:
    """What a leaf loop becomes: its kind, a GPU thread, pragmas, a micro-kernel."""

    kind: ForKind = ForKind.SERIAL
    thread_tag: str | None = None
    pragmas: tuple[tuple[str, str], ...] = ()
    tensorize: TensorIntrin | None = None
    prefetch: tuple[PrefetchRequest, ...] = ()


@dataclass(eq=False)
class Stage:
    """The schedule state of one operation; obtained as ``s[tensor]``."""

    op: Operation
    schedule: Schedule
    origin_op: Operation
    leaf_iter_vars: list[IterVar] = field(default_factory=list)
    all_iter_vars: list[IterVar] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    attach_kind: AttachKind = AttachKind.ROOT
    attach_stage: Stage | None = None
    attach_ivar: IterVar | None = None
    iter_attrs: dict[IterVar, IterAttr] = field(default_factory=dict)
    scope: Scope = Scope.GLOBAL
    is_output: bool = False

    @classmethod
    def of(cls, op: Operation, schedule: Schedule) -> Stage:
        st = cls(op, schedule, op)
        st.reset_axes()
        return st

    def reset_axes(self) -> None:
        axes = list(self.op.axis) + list(self.op.reduce_axis) if self.is_compute else []
        self.leaf_iter_vars = list(axes)
        self.all_iter_vars = list(axes)
        self.relations = []
        self.iter_attrs = {}

    @property
    def is_compute(self) -> bool:
        return isinstance(self.op, ComputeOp)

    @property
    def name(self) -> str:
        return self.op.name

    def __repr__(self) -> str:
        return f"Stage({self.name})"

    # ---- checks -------------------------------------------------------------

    def _leaf(self, iv: IterVar, what: str) -> IterVar:
        if not isinstance(iv, IterVar):
            raise ScheduleError(f"{what} on stage {self.name}: {iv!r} is not an axis (IterVar)")
        if iv in self.leaf_iter_vars:
            return iv
        if iv in self.all_iter_vars:
            raise ScheduleError(
                f"{what} on stage {self.name}: axis {iv.name} was already split or fused; "
                "use the axes that replaced it"
            )
        raise ScheduleError(f"{what} on stage {self.name}: axis {iv.name} is not an axis of it")

    def _not_attach_point(self, iv: IterVar, what: str) -> None:
        """Refuse to replace a loop that another stage is computed at: its region
        would refer to a loop that no longer exists."""
        for other in self.schedule.stages:
            if other.attach_stage is self and other.attach_ivar is iv:
                raise ScheduleError(
                    f"{what} of {iv.name} on stage {self.name}: stage {other.name} is computed "
                    f"at this axis; {what} first, then compute_at one of the new axes"
                )

    def _need_compute(self, what: str) -> None:
        if not self.is_compute:
            raise ScheduleError(f"{what}: {self.name} is a placeholder and has no loops")

    def _attr(self, iv: IterVar) -> IterAttr:
        return self.iter_attrs.setdefault(iv, IterAttr())

    # ---- loop structure -----------------------------------------------------

    def split(
        self, parent: IterVar, factor: int | None = None, nparts: int | None = None,
        tail: str | Tail = "guard",
    ) -> tuple[IterVar, IterVar]:
        """Split ``parent`` into ``(outer, inner)``; inner has ``factor`` iterations.

        Before: ``for i in [0, 100): S(i)``. After ``split(i, factor=32)``:
        ``for io in [0, 4): for ii in [0, 32): if io*32+ii < 100: S(io*32+ii)``.

        Where ``factor`` does not divide the extent, ``tail`` says how the last
        iteration of ``outer`` stays inside it: ``"guard"`` (above) checks each
        element; ``"shift_inwards"`` (Halide's tail strategy of that name) moves the
        last tile back to end at the edge, ``S(min(io*32, 100 - 32) + ii)``, so every
        tile is whole, and a register tile or a micro-kernel stays one, at the cost
        of computing a few elements twice. Those must come out the same each time: a
        reduction stage can shift only the tiles that a micro-kernel computes whole
        (``tensorize`` above every reduction loop, below the split), as lowering checks.
        """
        self._need_compute("split")
        self._leaf(parent, "split")
        self._not_attach_point(parent, "split")
        if (factor is None) == (nparts is None):
            raise ScheduleError(f"split of {parent.name} on {self.name}: give factor or nparts")
        extent = parent.dom.extent if parent.dom else None
        given = factor if factor is not None else nparts
        if isinstance(given, bool) or not isinstance(given, int) or given <= 0:
            raise ScheduleError(
                f"split of {parent.name} on {self.name}: factor/nparts must be a positive "
                f"integer, got {given!r}"
            )
        try:
            tail = Tail(tail)
        except ValueError:
            raise ScheduleError(f"split of {parent.name} on {self.name}: tail must be one "
                                f"of {[t.value for t in Tail]}, got {tail!r}") from None
        if tail is Tail.SHIFT_INWARDS and parent.kind is IterKind.REDUCE:
            raise ScheduleError(f"split of {parent.name} on {self.name}: a reduction axis "
                                "cannot shift its last tile inwards (the overlap would be "
                                "summed twice)")
        if factor is None:
            factor = -(-extent // nparts) if extent and nparts else 1
        outer_ext = -(-extent // factor) if extent else None
        outer = _derived(parent, "outer", outer_ext)
        inner = _derived(parent, "inner", factor)
        self.relations.append(Split(parent, outer, inner, factor, tail))
        self._replace_leaf(parent, [outer, inner])
        self.all_iter_vars += [outer, inner]
        return outer, inner

    def fuse(self, *axes: IterVar) -> IterVar:
        """Fuse adjacent axes, outermost first, into one loop.

        Before: ``for i in [0, 4): for j in [0, 8): S(i, j)``. After ``fuse(i, j)``:
        ``for f in [0, 32): S(f // 8, f % 8)``.
        """
        self._need_compute("fuse")
        if len(axes) < 2:
            raise ScheduleError(f"fuse on {self.name}: needs at least two axes")
        for a in axes:
            self._leaf(a, "fuse")
            self._not_attach_point(a, "fuse")
        if len(set(axes)) != len(axes):
            raise ScheduleError(f"fuse on {self.name}: an axis is given twice")
        pos = [self.leaf_iter_vars.index(a) for a in axes]
        if pos != list(range(pos[0], pos[0] + len(pos))):
            names = ", ".join(a.name for a in axes)
            raise ScheduleError(
                f"fuse on {self.name}: axes {names} must be adjacent and outermost first"
            )
        kinds = {a.kind for a in axes}
        if len(kinds) > 1:
            raise ScheduleError(f"fuse on {self.name}: cannot fuse reduction with data axes")
        fused = axes[0]
        for nxt in axes[1:]:
            ext = None
            if fused.dom and nxt.dom:
                ext = fused.dom.extent * nxt.dom.extent
            new = IterVar(Var(f"{fused.name}.{nxt.name}.fused"), Range(0, ext or 0), fused.kind)
            self.relations.append(Fuse(fused, nxt, new))
            i = self.leaf_iter_vars.index(fused)
            self.leaf_iter_vars[i : i + 2] = [new]
            self.all_iter_vars.append(new)
            fused = new
        return fused

    def reorder(self, *axes: IterVar) -> None:
        """Put the given axes in this order, in the positions they occupy now.

        Before: ``for i: for j: S``. After ``reorder(j, i)``: ``for j: for i: S``.
        """
        self._need_compute("reorder")
        for a in axes:
            self._leaf(a, "reorder")
        if len(set(axes)) != len(axes):
            dup = next(a for a in axes if axes.count(a) > 1)
            raise ScheduleError(f"reorder on {self.name}: axis {dup.name} is given twice")
        slots = sorted(self.leaf_iter_vars.index(a) for a in axes)
        for slot, a in zip(slots, axes, strict=False):
            self.leaf_iter_vars[slot] = a

    def tile(
        self, x: IterVar, y: IterVar, x_factor: int, y_factor: int
    ) -> tuple[IterVar, IterVar, IterVar, IterVar]:
        """Split ``x`` and ``y`` and order them ``xo, yo, xi, yi``."""
        xo, xi = self.split(x, factor=x_factor)
        yo, yi = self.split(y, factor=y_factor)
        self.reorder(xo, yo, xi, yi)
        return xo, yo, xi, yi

    def _replace_leaf(self, old: IterVar, new: list[IterVar]) -> None:
        i = self.leaf_iter_vars.index(old)
        self.leaf_iter_vars[i : i + 1] = new
        if old in self.iter_attrs:
            self.iter_attrs.pop(old)

    # ---- annotations --------------------------------------------------------

    def vectorize(self, iv: IterVar) -> None:
        """Run this (innermost, data-parallel) loop in SIMD lanes."""
        self._annotate(iv, ForKind.VECTORIZED, "vectorize")

    def unroll(self, iv: IterVar) -> None:
        """Unroll this loop fully (its extent must be a constant)."""
        self._annotate(iv, ForKind.UNROLLED, "unroll")

    def parallel(self, iv: IterVar) -> None:
        """Run this loop's iterations on the target's cores (OpenMP)."""
        self._annotate(iv, ForKind.PARALLEL, "parallel")

    def _annotate(self, iv: IterVar, kind: ForKind, what: str) -> None:
        self._need_compute(what)
        self._leaf(iv, what)
        if iv.kind is IterKind.REDUCE and kind in (ForKind.VECTORIZED, ForKind.PARALLEL):
            raise ScheduleError(
                f"{what} on stage {self.name}: axis {iv.name} is a reduction axis; its "
                "iterations depend on each other"
            )
        self._attr(iv).kind = kind

    def bind(self, iv: IterVar, thread: IterVar) -> None:
        """Map this loop onto a GPU thread index (``te.thread_axis("threadIdx.x")``)."""
        self._need_compute("bind")
        self._leaf(iv, "bind")
        if not isinstance(thread, IterVar) or thread.kind is not IterKind.THREAD:
            raise ScheduleError(f"bind on {self.name}: {thread!r} is not a te.thread_axis")
        if iv.kind is IterKind.REDUCE:
            raise ScheduleError(f"bind on {self.name}: {iv.name} is a reduction axis")
        attr = self._attr(iv)
        attr.kind, attr.thread_tag = ForKind.THREAD_BINDING, thread.thread_tag

    def pragma(self, iv: IterVar, key: str, value: str | int = "") -> None:
        """Attach a compiler pragma to a loop (emitted verbatim as ``#pragma key value``
        right before it; not on a parallel or vectorised loop, whose OpenMP pragma must
        stand there: building such a loop is refused)."""
        self._need_compute("pragma")
        self._leaf(iv, "pragma")
        attr = self._attr(iv)
        attr.pragmas = attr.pragmas + ((str(key), str(value)),)

    def prefetch(self, tensor: Tensor, iv: IterVar, offset: int,
                 spread: IterVar | None = None, level: int = 1) -> None:
        """Ask the cache, at the top of each iteration of ``iv``, for what the iteration
        ``offset`` steps later reads of ``tensor`` (TVM's ``prefetch``).

        Before: ``for k in [0, 768): for j in [0, 16): P[k, j] = B[k, 16*jo + j]``.
        After ``prefetch(B, k, 8)``: ``for k in [0, 768): if k + 8 < 768:
        prefetch(B[k + 8, 16*jo : 16*jo + 16]); for j ...``, one hint per cache line
        of the target (lowering peels the last 8 iterations, which ask for nothing).
        For reads the hardware prefetcher does not foresee: rows of a wide matrix, each
        in another page. The region is what the reads of ``tensor`` below ``iv`` touch,
        this stage's and those of stages computed inside the loop (a copy packed there:
        ``tensor`` may be read upstream); a hint never reaches outside ``tensor``, and a
        target without the hint (GPU shared memory) leaves it out.

        ``spread``, a loop of this stage inside ``iv``: the hints are not asked for at
        once but a share at the top of each iteration of the loops inside ``iv`` down to
        ``spread`` (their iterations counted as one), so that a large region, the next
        block of a matrix, arrives while this iteration computes rather than as one
        burst of hints at its top. ``level`` 2 fetches into the
        second cache level only, where a region read later would evict what the first
        level holds for the loop now running."""
        self._need_compute("prefetch")
        self._leaf(iv, "prefetch")
        source = self.schedule.stage_map.get(tensor.op) if isinstance(tensor, Tensor) else None
        if source is None or not self.schedule.reads_transitively(self, source):
            name = getattr(tensor, "name", repr(tensor))
            raise ScheduleError(f"prefetch on stage {self.name}: neither it nor a stage it "
                                f"reads from reads {name}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset <= 0:
            raise ScheduleError(f"prefetch of {tensor.name} at {self.name}.{iv.name}: the "
                                f"offset must be a positive number of iterations, got "
                                f"{offset!r}")
        if level not in (1, 2):
            raise ScheduleError(f"prefetch of {tensor.name} at {self.name}.{iv.name}: cache "
                                f"level 1 or 2, not {level!r}")
        if spread is not None:
            self._leaf(spread, "prefetch")
        attr = self._attr(iv)
        attr.prefetch = attr.prefetch + (PrefetchRequest(tensor, offset, spread, level),)

    def tensorize(self, iv: IterVar, intrin: TensorIntrin) -> None:
        """Replace the loop nest at and below ``iv`` by a call to a micro-kernel."""
        self._need_compute("tensorize")
        self._leaf(iv, "tensorize")
        self._attr(iv).tensorize = intrin

    def set_scope(self, scope: str) -> None:
        """Storage scope of this stage's output: "global", "local" or "shared"."""
        try:
            self.scope = Scope(scope)
        except ValueError:
            raise ScheduleError(f"set_scope on {self.name}: unknown scope {scope!r}") from None

    # ---- placement ----------------------------------------------------------

    def compute_at(self, parent: Stage, iv: IterVar) -> None:
        """Compute this stage inside loop ``iv`` of ``parent``, only the region that
        one iteration of ``iv`` reads.

        Before: ``for i: P[i] = f(i)`` then ``for y: for x: C[y, x] = g(P)``.
        After ``compute_at(s[C], y)``: ``for y: {for i in region(y): P[i] = f(i)};
        for x: C[y, x] = g(P)``.
        """
        self._need_compute("compute_at")
        if not isinstance(parent, Stage):
            raise ScheduleError(f"compute_at of {self.name}: target must be a Stage (s[T])")
        parent._leaf(iv, f"compute_at of {self.name}")
        if parent is self:
            raise ScheduleError(f"compute_at of {self.name}: cannot attach a stage to itself")
        if not self.schedule.reads_transitively(parent, self):
            raise ScheduleError(
                f"compute_at of {self.name} at {parent.name}.{iv.name}: {parent.name} does not "
                f"consume {self.name}, so no region of it is known there"
            )
        anc: Stage | None = parent
        while anc is not None:
            if anc.attach_kind is AttachKind.INLINE:
                raise ScheduleError(f"compute_at of {self.name}: {anc.name} is inlined")
            anc = anc.attach_stage
        self.attach_kind, self.attach_stage, self.attach_ivar = AttachKind.SCOPE, parent, iv

    def compute_inline(self) -> None:
        """Substitute this stage's body into its consumers; it gets no loops or buffer."""
        self._need_compute("compute_inline")
        if self.op.reduce_axis:
            raise ScheduleError(f"compute_inline of {self.name}: a reduction cannot be inlined")
        if self.is_output:
            raise ScheduleError(f"compute_inline of {self.name}: it is an output of the schedule")
        for other in self.schedule.stages:
            if other.attach_stage is self:
                raise ScheduleError(
                    f"compute_inline of {self.name}: stage {other.name} is attached to it"
                )
        self.attach_kind, self.attach_stage, self.attach_ivar = AttachKind.INLINE, None, None

    def compute_root(self) -> None:
        """Compute this stage in full, at the top level, before its consumers."""
        self._need_compute("compute_root")
        self.attach_kind, self.attach_stage, self.attach_ivar = AttachKind.ROOT, None, None


def _derived(parent: IterVar, suffix: str, extent: int | None) -> IterVar:
    return IterVar(Var(f"{parent.name}.{suffix}"), Range(0, extent or 0), parent.kind)


