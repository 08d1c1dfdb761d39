"""Whether this machine can measure a task at all, asked before anything is built or
allocated: a target the local builder compiles for, a thread count a machine has,
and buffers that fit in memory (a mistyped shape is one line, not a MemoryError or a
machine brought down by swapping an hour into a run).

>>> check_measurable(Task("gemm", (512, 512, 512), "c"))   # passes, or raises
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from tilewise.autotune.space import ConfigSpace
from tilewise.autotune.task import Task
from tilewise.errors import BuildError, TuningError
from tilewise.runtime.device import NoDeviceError
from tilewise.target import Target, TargetKind

#: A measured workload is held about three times over: its inputs and the reference's
#: outputs in the tuner, and their copy in the measuring child.
COPIES = 3

#: More threads than any machine has; OpenMP crashes when asked for many more.
MAX_THREADS = 1024

#: The target kinds whose kernels :class:`LocalBuilder` builds and :class:`LocalRunner`
#: runs: C compiled here (for another architecture, run under its emulator), OpenCL C
#: on an OpenCL device here, CUDA C on a GPU here.
MEASURED_KINDS = frozenset({TargetKind.C, TargetKind.OPENCL, TargetKind.CUDA})


def check_measurable(task: Task) -> None:
    """Raise :class:`~tilewise.errors.TuningError` where ``task`` cannot be measured
    here by :class:`LocalBuilder` and :class:`LocalRunner`."""
    target = Target.from_str(task.target)
    kind = target.kind.value
    if kind not in task.template.targets:
        made_for = ", ".join(repr(k) for k in task.template.targets)
        raise TuningError(f"template {task.name} schedules for {made_for} targets, not "
                          f"{kind!r} ({task.target})")
    if target.kind not in MEASURED_KINDS:
        kinds = ", ".join(sorted(repr(k.value) for k in MEASURED_KINDS))
        raise TuningError(f"no template of {task.name} is measured here for target "
                          f"{task.target!r}: this machine builds and runs {kinds} targets")
    if target.kind is TargetKind.OPENCL:
        from tilewise.runtime.opencl import device_limits

        try:
            device_limits(target.device)
        except NoDeviceError as err:
            raise TuningError(f"cannot measure on {task.target!r}: {err}") from None
    if target.kind is TargetKind.CUDA:
        from tilewise.runtime.cuda import cuda_unavailable

        if why := cuda_unavailable():
            raise TuningError(f"cannot measure on {task.target!r}: {why}")
    if target.cores > MAX_THREADS:
        raise TuningError(f"-cores={target.cores} is more threads than a machine has "
                          f"(at most {MAX_THREADS})")
    if target.triple:
        from tilewise.runtime.executable import require_programs

        try:
            require_programs(target.compiler, target.emulator)
        except BuildError as err:
            raise TuningError(f"cannot measure on {task.target!r}: {err}") from None
    _, tensors = task.template.func(ConfigSpace(target), *task.args)
    require_memory(task, tensors)


def require_memory(task: Task, buffers: Iterable[Any]) -> None:
    """Raise where ``buffers`` (anything with a ``shape`` and a ``dtype``) held
    :data:`COPIES` times do not fit in the memory available now."""
    size = sum(math.prod(int(d) for d in b.shape) * np.dtype(str(b.dtype)).itemsize
               for b in buffers)
    have = available_memory()
    if COPIES * size > have:
        raise TuningError(f"{task.name}{tuple(task.args)} is too large to measure here: its "
                          f"buffers take {_size(size)}, {COPIES} copies while measured, and "
                          f"this machine has {_size(have)} available")


def available_memory() -> int:
    """Bytes that can be allocated without swapping: Linux's MemAvailable, else the
    physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63  # unknown: let the allocation itself decide


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")
