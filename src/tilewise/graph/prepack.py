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

from ..driver import build
from ..errors import ModelError, ScheduleError
from ..schedule import Schedule
from ..schedule.weights import pack_schedule, split_weights
from ..target import Target
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
    ``tensors`` -> the arrays bound to them) with a kernel built for ``target``
    (:mod:`tilewise.schedule.weights`)."""
    try:
        split = split_weights(sch, tensors, set(constants))
    except ScheduleError as exc:
        raise ModelError(f"prepack: {exc}") from None
    if not split.frontier:
        return Prepacked(tuple(tensors), frozenset(),
                         tuple(constants.get(i) for i in range(len(tensors))))
    pack_sch, pack_args = pack_schedule(split)
    mod = build(pack_sch, pack_args, target, name="tw_prepack")
    values = [np.empty([int(d) for d in t.shape], str(t.dtype)) for t in split.frontier]
    mod(*(np.ascontiguousarray(constants[p], str(tensors[p].dtype)) for p in split.pack_inputs),
        *values)
    arrays = [values[-1 - src] if src < 0 else constants.get(src) for src in split.sources]
    return Prepacked(split.args, split.given, tuple(arrays))


__all__ = ["Prepacked", "prepack"]
