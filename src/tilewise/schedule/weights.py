"""A schedule split at its weights: the stages that read only weights (a convolution's
``kernel_pack``, Winograd's transformed weights ``U``, a dense layer's panels ``Bp``)
are computed ahead, once, by a kernel of their own, and the template's kernel takes
their values as arguments (``lower(..., given=...)``) where it would otherwise pack the
same weights on every call. A compiled model and the tuner's measurements split alike,
so that the tuner times the kernel the model runs.

    split = split_weights(sch, tensors, weights={1, 2})
    pack_sch, pack_args = pack_schedule(split)       # weights in, split.frontier out
    kernel = build(sch, split.args, given=split.given)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..errors import ScheduleError
from ..te.operation import PlaceholderOp
from ..te.tensor import Tensor
from .schedule import Schedule, create_schedule
from .stage import AttachKind, Stage


@dataclass(frozen=True, eq=False)
class WeightSplit:
    """Where a kernel's arguments come from once its weights are packed ahead.

    ``args``: the kernel's arguments, the template's tensors in order with each weight
    that only weight-only stages read replaced by the frontier tensors computed from it
    (in stage order, at the place of the first weight each one reads; a weight also read
    directly stays, followed by them). ``sources``: per argument, the position of the
    template tensor it is (``>= 0``) or ``-1 - k`` for ``frontier[k]``. ``frontier``:
    the weight-only stages' tensors that the kernel reads; ``pack_inputs``: the template
    positions of the weights that :func:`pack_schedule`'s kernel reads, in its order
    (``weights_read``: those tensors)."""

    args: tuple[Tensor, ...]
    sources: tuple[int, ...]
    frontier: tuple[Tensor, ...]
    pack_inputs: tuple[int, ...]
    weights_read: tuple[Tensor, ...]

    @property
    def given(self) -> frozenset[Tensor]:
        return frozenset(self.frontier)


def split_weights(sch: Schedule, tensors: Sequence[Tensor], weights: Collection[int]
                  ) -> WeightSplit:
    """Split ``sch`` at the placeholders in ``tensors`` at positions ``weights``."""
    tensors = list(tensors)
    for pos in weights:
        if not 0 <= pos < len(tensors) or not isinstance(tensors[pos].op, PlaceholderOp):
            raise ScheduleError(f"weights: position {pos} is not an input placeholder of "
                                f"{[t.name for t in tensors]}")
    weight_stage = {sch[tensors[p]]: p for p in weights}
    weight_only = _weight_only(sch, set(weight_stage))
    frontier = [st for st in sch.stages if st in weight_only
                and any(r not in weight_only for r in sch.consumers(st))]
    first = {st: min(weight_stage[w] for w in _weight_sources(sch, st, weight_stage))
             for st in frontier}
    args: list[Tensor] = []
    sources: list[int] = []
    for i, t in enumerate(tensors):
        st = sch[t]
        if i not in weights or any(r not in weight_only for r in sch.consumers(st)):
            args.append(t)
            sources.append(i)
        for k, f in enumerate(frontier):
            if first[f] == i:
                args.append(f.op.output(0))
                sources.append(-1 - k)
    outs = tuple(f.op.output(0) for f in frontier)
    read = {w for f in frontier for w in _weight_sources(sch, f, weight_stage)}
    pack_inputs = tuple(weight_stage[st] for st in sch.stages if st in read)
    return WeightSplit(tuple(args), tuple(sources), outs, pack_inputs,
                       tuple(tensors[p] for p in pack_inputs))


def pack_schedule(split: WeightSplit) -> tuple[Schedule, list[Tensor]]:
    """A schedule computing ``split.frontier`` from the weights alone, each stage at
    the root with its outer loop parallel, and its arguments: the weights (in
    ``split.pack_inputs`` order), then the frontier."""
    if not split.frontier:
        raise ScheduleError("pack_schedule: the split has no weight-only stages")
    s = create_schedule([t.op for t in split.frontier])
    for st in s.stages:
        if st.is_compute and st.op.axis:
            st.parallel(st.op.axis[0])
    return s, [*split.weights_read, *split.frontier]


def _weight_only(sch: Schedule, weights: set[Stage]) -> set[Stage]:
    """Computed, not inlined, not an output, and reading only ``weights`` placeholders
    and other such stages (stages order producers first)."""
    found: set[Stage] = set()
    for st in sch.stages:
        if not st.is_compute or st.is_output or st.attach_kind is AttachKind.INLINE:
            continue
        inputs = [sch[t] for t in st.op.input_tensors]
        if inputs and all(p in weights or p in found for p in inputs):
            found.add(st)
    return found


def _weight_sources(sch: Schedule, st: Stage, weight_stage: Collection[Stage]) -> set[Stage]:
    out, todo = set(), [st]
    while todo:
        for t in todo.pop().op.input_tensors:
            p = sch[t]
            if p in weight_stage:
                out.add(p)
            elif p.is_compute:
                todo.append(p)
    return out


__all__ = ["WeightSplit", "pack_schedule", "split_weights"]
