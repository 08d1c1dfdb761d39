"""The device side of the farm: what one Dask worker does with one candidate. It
compiles the generated C with its own toolchain (a cross compiler, for a device of
another architecture run under an emulator), then measures the kernel exactly as a
:class:`~tilewise.autotune.measure.LocalRunner` would: in an isolated child with a time
limit, checked against the task's reference (so a segfault kills the child, never the
worker). Nothing here imports Dask.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass

from tilewise.autotune.measure.packed import PackedArtifact
from tilewise.autotune.measure.runner import LocalRunner
from tilewise.autotune.record import BuildResult, ErrorKind, MeasureInput, MeasureResult
from tilewise.driver import compile_c
from tilewise.errors import BuildError, TilewiseError, TuningError
from tilewise.runtime import ArgSpec, ExecutableArtifact, KernelArtifact
from tilewise.runtime.opencl import OpenCLArtifact
from tilewise.target import Target


class FarmError(TilewiseError):
    """The farm cannot measure at all (no device, a device that cannot run isolated
    children or import the template): a setup error, raised, never recorded."""


def device_resource(device: str) -> str:
    """The Dask worker resource that marks a device of kind ``device``: ``device-zen4``."""
    return f"device-{device}"


@dataclass(frozen=True)
class KernelSource:
    """What a :class:`~tilewise.distributed.SourceBuilder` produces: the generated C
    (without the timing harness, which the device's runtime adds) and how to compile it."""

    name: str
    source: str
    flags: tuple[str, ...]
    arg_specs: tuple[ArgSpec, ...]
    target: str


@dataclass(frozen=True)
class DeviceJob:
    """One candidate for a device: the task (for its reference), the kernel source, and
    the LocalRunner whose timing, time limit and correctness check the device applies."""

    inp: MeasureInput
    kernel: KernelSource | PackedArtifact | OpenCLArtifact  # a PackedArtifact of sources
    runner: LocalRunner
    compile_timeout: float

    @property
    def target(self) -> str:
        """The target the candidate was generated for (its task's)."""
        return self.inp.task.target


def measure_on_device(job: DeviceJob) -> MeasureResult:
    """Compile and measure one candidate on this machine; every failure of the candidate
    is an error record, a broken device raises :class:`FarmError`."""
    check_device(job)
    start = time.perf_counter()
    try:
        if isinstance(job.kernel, PackedArtifact):
            artifact = job.kernel.with_parts(lambda k: compile_kernel(k, job.compile_timeout))
        elif isinstance(job.kernel, OpenCLArtifact):
            artifact = job.kernel  # the OpenCL driver builds it when the runner loads it
        else:
            artifact = compile_kernel(job.kernel, job.compile_timeout)
    except BuildError as err:
        compile_s = time.perf_counter() - start
        # a compiler killed at the time limit is a timeout, whatever it said
        error = ErrorKind.TIMEOUT if compile_s >= job.compile_timeout else ErrorKind.COMPILE
        return MeasureResult(error=error, error_msg=f"on the device: {err}", build_s=compile_s)
    compile_s = time.perf_counter() - start
    return job.runner.run_one(job.inp, BuildResult(artifact=artifact, build_s=compile_s))


def compile_kernel(kernel: KernelSource,
                   timeout: float) -> KernelArtifact | ExecutableArtifact:
    """Compile with this machine's ``$CC`` (into its own kernel cache) and the device
    runtime's timing harness; for a target of another architecture, with its cross
    compiler into a program that its emulator runs."""
    return compile_c(kernel.name, kernel.source, kernel.arg_specs,
                     Target.from_str(kernel.target), timeout, kernel.flags)


def check_device(job: DeviceJob) -> None:
    """Raise :class:`FarmError` where no candidate could be measured here."""
    if multiprocessing.current_process().daemon:
        raise FarmError(
            "this Dask worker is a daemonic process, so it cannot start the isolated "
            "child that runs a kernel; start workers with distributed.worker.daemon=False "
            "(e.g. DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker ...)"
        )
    try:
        job.inp.task.template  # noqa: B018  (imports the template's module)
    except (ImportError, TuningError) as err:
        raise FarmError(
            f"the device cannot import template {job.inp.task.name!r} "
            f"(module {job.inp.task.template_module!r}): install it on the workers or "
            f"client.upload_file() it ({err})"
        ) from None
