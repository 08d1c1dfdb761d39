"""Candidates measured as a compiled model runs them: where a template declares weights
(``@template(..., weights=...)``), its stages that read only them are split off
(:mod:`tilewise.schedule.weights`). The candidate is then two kernels: the packing one
runs once on the reference's weights, and the kernel is checked and timed on what it
made. A model computes those stages once, at compile time, so timing them on every call
would rank candidates by a cost the model never pays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tilewise.autotune.task import Task
from tilewise.errors import BuildError
from tilewise.runtime import ArgSpec, empty
from tilewise.schedule import Schedule
from tilewise.schedule.weights import WeightSplit, pack_schedule, split_weights
from tilewise.te.operation import PlaceholderOp
from tilewise.te.tensor import Tensor


@dataclass(frozen=True)
class PackedArtifact:
    """A candidate split at its weights: ``kernel`` (what is timed) and ``pack`` (its
    weight-only stages), each an artifact of the builder's kind. ``pack`` reads the
    template's arguments at ``pack_inputs``; the kernel's argument ``j`` is the template's
    argument ``sources[j]`` where that is ``>= 0``, else ``pack``'s output ``-1 -
    sources[j]``. ``arg_specs``: the template's arguments, as its reference makes them."""

    kernel: Any
    pack: Any
    pack_inputs: tuple[int, ...]
    sources: tuple[int, ...]
    arg_specs: tuple[ArgSpec, ...]

    def with_parts(self, make: Callable[[Any], Any]) -> PackedArtifact:
        """The same split with ``make`` applied to both kernels (compile a farm's source)."""
        return replace(self, kernel=make(self.kernel), pack=make(self.pack))


#: ``make(schedule, args, name, given) -> artifact``: a builder's kernel of ``args``.
MakeKernel = Callable[[Schedule, list[Tensor], str, frozenset[Tensor]], Any]


def candidate_artifact(task: Task, schedule: Schedule, tensors: Sequence[Tensor], name: str,
                       make: MakeKernel) -> Any:
    """What a builder hands the runner for one candidate: ``make``'s kernel of
    ``tensors``, or where the template's weights have stages of their own a
    :class:`PackedArtifact` of ``make``'s kernel and packing; an OpenCL target's
    candidate is OpenCL C with its launch, built by the device's driver where it runs;
    a CUDA target's is CUDA C checked by nvcc, with its launch. A target of a kind the
    template does not schedule for is a BuildError."""
    from tilewise.driver import build_cuda_artifact, build_opencl_artifact
    from tilewise.target import Target, TargetKind

    target = Target.from_str(task.target)
    if target.kind.value not in task.template.targets:
        made_for = ", ".join(repr(k) for k in task.template.targets)
        raise BuildError(f"template {task.name} schedules for {made_for} targets, not "
                         f"{target.kind.value!r} ({task.target})")
    if target.kind is TargetKind.OPENCL:
        return build_opencl_artifact(schedule, tensors, name, target.device)
    if target.kind is TargetKind.CUDA:
        return build_cuda_artifact(schedule, tensors, target, name)
    split = weight_split(task, schedule, tensors)
    if split is None:
        return make(schedule, list(tensors), name, frozenset())
    pack_sch, pack_args = pack_schedule(split)
    return PackedArtifact(make(schedule, list(split.args), name, split.given),
                          make(pack_sch, pack_args, f"{name}_pack", frozenset()),
                          split.pack_inputs, split.sources, tensor_specs(tensors))


def weight_split(task: Task, schedule: Schedule, tensors: Sequence[Tensor]
                 ) -> WeightSplit | None:
    """The split of ``schedule`` at the template's declared weights, or None where it
    has no weight-only stages (nothing to pack: the kernel is measured whole)."""
    names = set(task.template.weights)
    positions = {i for i, t in enumerate(tensors)
                 if t.name in names and isinstance(t.op, PlaceholderOp)}
    if not positions:
        return None
    split = split_weights(schedule, tensors, positions)
    return split if split.frontier else None


def tensor_specs(tensors: Sequence[Tensor]) -> tuple[ArgSpec, ...]:
    return tuple(ArgSpec(t.name, tuple(int(d) for d in t.shape), str(t.dtype))
                 for t in tensors)


def kernel_arguments(artifact: PackedArtifact, arrays: Sequence[np.ndarray],
                     load: Callable[[Any], Any]) -> list[np.ndarray]:
    """Run ``artifact.pack`` (loaded by ``load``) on the weights among ``arrays`` (the
    template's arguments); the kernel's arguments: the same array objects, so its
    outputs land in ``arrays``, with the packed weights in place of those consumed."""
    pack = load(artifact.pack)
    made = [empty(spec.shape, spec.dtype)
            for spec in artifact.pack.arg_specs[len(artifact.pack_inputs):]]
    pack(*(arrays[i] for i in artifact.pack_inputs), *made)
    return [arrays[s] if s >= 0 else made[-1 - s] for s in artifact.sources]


__all__ = ["PackedArtifact", "candidate_artifact", "kernel_arguments", "tensor_specs",
           "weight_split"]
