"""Weights packed once, at compile time: the stages of a template's schedule that read
only constants (a conv's ``kernel_pack``, Winograd's transformed weights ``U``, a dense
layer's panels ``Bp``) are computed ahead of time by a kernel of their own, and the
template's kernel takes their values as arguments (``lower(..., given=...)``), where
it would otherwise re-pack the same weights on every call.

    sch, tensors = task.instantiate(config)          # data, kernel, bias, out
    pre = prepack(sch, tensors, {1: w, 2: b}, target)
    mod = tw.build(sch, pre.args, target, given=pre.given)
    mod(*pre.bind([x, y]))                           # x, y: the runtime arrays
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import te
from ..driver import build
from ..errors import ModelError
from ..schedule import AttachKind, Schedule, Stage
from ..target import Target
from ..te.operation import PlaceholderOp
from ..te.tensor import Tensor


@dataclass(frozen=True, eq=False)
class Prepacked:
    """A template kernel's arguments once its weights are packed.

    ``args``: the template's tensors in order, each constant placeholder that only
    weight-only stages read replaced by the frontier tensors computed from it (in the
    schedule's stage order, at the place of the first constant each one reads; one
    that is also read directly stays, followed by them). ``given``: the frontier
    tensors, for ``lower``/``build``. ``arrays``: per argument, the array to bind (a
    frontier's value, or a constant still read directly, such as a bias), or None for
    the tensors supplied at run time (the data, the output)."""

    args: tuple[Tensor, ...]
    given: frozenset[Tensor]
    arrays: tuple[np.ndarray | None, ...]

    def bind(self, runtime: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The full argument list: ``runtime`` fills the None slots, in order."""
        slots = sum(a is None for a in self.arrays)
        if len(runtime) != slots:
            raise ModelError(f"prepacked kernel: {slots} run-time arrays, got {len(runtime)}")
        it = iter(runtime)
        return [next(it) if a is None else a for a in self.arrays]


def prepack(
    sch: Schedule,
    tensors: Sequence[Tensor],
    constants: Mapping[int, np.ndarray],
    target: str | Target,
) -> Prepacked:
    """Compute the weight-only frontier of ``sch`` from ``constants`` (positions in
    ``tensors`` -> the arrays bound to them) with a kernel built for ``target``."""
    tensors = list(tensors)
    for pos in constants:
        if not 0 <= pos < len(tensors) or not isinstance(tensors[pos].op, PlaceholderOp):
            raise ModelError(f"prepack: position {pos} is not an input placeholder of "
                             f"{[t.name for t in tensors]}")
    const_stage = {sch[tensors[p]]: p for p in constants}
    weight_only = _weight_only(sch, set(const_stage))
    frontier = [st for st in sch.stages if st in weight_only
                and any(r not in weight_only for r in sch.consumers(st))]
    if not frontier:
        return Prepacked(tuple(tensors), frozenset(),
                         tuple(constants.get(i) for i in range(len(tensors))))
    values = _compute(frontier, {st.op.output(0): constants[p] for st, p in const_stage.items()},
                      target)
    # Each frontier tensor goes where the first constant it reads was.
    sources = {st: min(const_stage[c] for c in _constant_sources(sch, st, const_stage))
               for st in frontier}
    args: list[Tensor] = []
    arrays: list[np.ndarray | None] = []
    for i, t in enumerate(tensors):
        st = sch[t]
        if i not in constants:
            args.append(t)
            arrays.append(None)
            continue
        if any(r not in weight_only for r in sch.consumers(st)):  # also read directly
            args.append(t)
            arrays.append(constants[i])
        for f in frontier:
            if sources[f] == i:
                args.append(f.op.output(0))
                arrays.append(values[f.op.output(0)])
    return Prepacked(tuple(args), frozenset(f.op.output(0) for f in frontier), tuple(arrays))


def _weight_only(sch: Schedule, constant: set[Stage]) -> set[Stage]:
    """Computed, not inlined, not an output, and reading only ``constant`` placeholders
    and other such stages (stages order producers first)."""
    found: set[Stage] = set()
    for st in sch.stages:
        if not st.is_compute or st.is_output or st.attach_kind is AttachKind.INLINE:
            continue
        inputs = [sch[t] for t in st.op.input_tensors]
        if inputs and all(p in constant or p in found for p in inputs):
            found.add(st)
    return found


def _constant_sources(sch: Schedule, st: Stage, const_stage: Mapping[Stage, int]) -> set[Stage]:
    out, todo = set(), [st]
    while todo:
        for t in todo.pop().op.input_tensors:
            p = sch[t]
            if p in const_stage:
                out.add(p)
            elif p.is_compute:
                todo.append(p)
    return out


def _compute(frontier: list[Stage], constants: Mapping[Tensor, np.ndarray],
             target: str | Target) -> dict[Tensor, np.ndarray]:
    """The frontier's values: a kernel of their ops alone, every stage at the root and
    its outer loop parallel, run once on the constants."""
    outs = [st.op.output(0) for st in frontier]
    s = te.create_schedule([t.op for t in outs])
    inputs = [st.op.output(0) for st in s.stages if isinstance(st.op, PlaceholderOp)]
    for st in s.stages:
        if st.is_compute and st.op.axis:
            st.parallel(st.op.axis[0])
    mod = build(s, [*inputs, *outs], target, name="tw_prepack")
    results = [np.empty([int(d) for d in t.shape], str(t.dtype)) for t in outs]
    mod(*(np.ascontiguousarray(constants[t], str(t.dtype)) for t in inputs), *results)
    return dict(zip(outs, results, strict=True))


__all__ = ["Prepacked", "prepack"]
