"""SourceBuilder: instantiate each candidate's template, lower it and generate its C
source, several candidates at once in a process pool; compiling is left to the device.

Example::

    builder = SourceBuilder(n_parallel=2)
    builds = builder.build([MeasureInput(task, task.config_space.get(0))])
    builds[0].artifact.source  # C text for a DaskRunner's device to compile
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tilewise.autotune.measure.builder import LocalBuilder, build_job, kernel_name
from tilewise.autotune.measure.packed import candidate_artifact
from tilewise.autotune.record import BuildResult
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task
from tilewise.distributed.device import KernelSource
from tilewise.driver import generate_source
from tilewise.errors import BuildError
from tilewise.lower import lower
from tilewise.runtime import ArgSpec
from tilewise.schedule import Schedule
from tilewise.target import Target, TargetKind
from tilewise.te.tensor import Tensor


def generate_candidate(task: Task, config: ConfigEntity, timeout: float) -> BuildResult:
    """One source job (runs in a pool worker): template, lowering, code generation."""
    return build_job(task, config, timeout, _generate)


def _generate(task: Task, schedule: Schedule, tensors: list[Tensor], timeout: float):
    return candidate_artifact(task, schedule, tensors, kernel_name(task),
                              lambda s, args, name, given: generate_kernel(
                                  task, s, args, name=name, given=given))


def generate_kernel(task: Task, schedule: Schedule, tensors: Sequence[Tensor],
                    name: str | None = None, given: Collection[Tensor] = ()) -> KernelSource:
    """Lower and generate C for the task's target, with the flags to compile it."""
    target = Target.from_str(task.target)
    if target.kind is not TargetKind.C:
        raise BuildError(f"the device farm compiles the 'c' target, not {target.kind.value!r}")
    name = name or kernel_name(task)
    func = lower(schedule, list(tensors), name, given=given)
    specs = tuple(ArgSpec(b.name, b.shape, b.dtype.name) for b in func.params)
    return KernelSource(name, generate_source(func, target), target.cflags, specs, str(target))


class SourceBuilder(LocalBuilder):
    """Generates source in ``n_parallel`` processes (a :class:`LocalBuilder` whose job
    stops before the compiler); its artifacts are :class:`KernelSource` (two of them in a
    :class:`~tilewise.autotune.measure.packed.PackedArtifact` where weights are packed)."""

    job = staticmethod(generate_candidate)

    def __repr__(self) -> str:
        return f"SourceBuilder(n_parallel={self.n_parallel}, timeout={self.timeout:g})"
