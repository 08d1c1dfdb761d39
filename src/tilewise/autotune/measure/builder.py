"""LocalBuilder: instantiate each candidate's template and compile its kernel, several
candidates at once in a process pool.

Example::

    builder = LocalBuilder(n_parallel=2, timeout=10)
    builds = builder.build([MeasureInput(task, task.config_space.get(0))])
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from tilewise.autotune.measure.isolation import process_context
from tilewise.autotune.measure.lifeline import end_with, holding_signals
from tilewise.autotune.record import BuildResult, ErrorKind, MeasureInput
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task
from tilewise.errors import TuningError

#: ``make(task, schedule, tensors, timeout) -> artifact``: the part of a build job after
#: the template ran (compile here; only generate source for a device farm).
MakeArtifact = Callable[[Task, Any, list[Any], float], Any]


def build_job(task: Task, config: ConfigEntity, timeout: float, make: MakeArtifact) -> BuildResult:
    """Run the template with ``config``, then ``make``; classify what fails and when."""
    start = time.perf_counter()
    try:
        schedule, tensors = task.instantiate(config)
    except Exception as err:  # InvalidConfigError, or a template bug on this config
        return BuildResult(
            error=ErrorKind.INSTANTIATION,
            error_msg=f"{type(err).__name__}: {err}",
            build_s=time.perf_counter() - start,
        )
    try:
        artifact = make(task, schedule, list(tensors), timeout)
    except Exception as err:  # BuildError, or any failure of lowering / codegen
        build_s = time.perf_counter() - start
        return BuildResult(
            # a compiler killed at the time limit is a timeout, whatever it said
            error=ErrorKind.TIMEOUT if build_s >= timeout else ErrorKind.COMPILE,
            error_msg=f"{type(err).__name__}: {err}",
            build_s=build_s,
        )
    build_s = time.perf_counter() - start
    if build_s > timeout:
        return BuildResult(
            error=ErrorKind.TIMEOUT, error_msg=f"build took {build_s:.1f} s", build_s=build_s
        )
    return BuildResult(artifact=artifact, build_s=build_s)


def compile_candidate(task: Task, schedule: Any, tensors: list[Any], timeout: float) -> Any:
    """The kernel, or, where the template declares weights with stages of their own, a
    :class:`~tilewise.autotune.measure.packed.PackedArtifact` of the kernel and its
    packing (the model runs them apart: the packing once)."""
    from tilewise import build_artifact
    from tilewise.autotune.measure.packed import candidate_artifact

    return candidate_artifact(task, schedule, tensors, kernel_name(task),
                              lambda s, args, name, given: build_artifact(
                                  s, args, task.target, name, timeout, given))


def build_candidate(task: Task, config: ConfigEntity, timeout: float) -> BuildResult:
    """One build job (runs in a pool worker): template, then code generation + compile."""
    return build_job(task, config, timeout, compile_candidate)


def kernel_name(task: Task) -> str:
    """A C identifier for the task's kernel."""
    return re.sub(r"\W", "_", task.name) or "kernel"


class LocalBuilder:
    """Builds candidates in ``n_parallel`` worker processes; a build past ``timeout``
    seconds is recorded as :attr:`ErrorKind.TIMEOUT`."""

    #: The job each pool worker runs, ``job(task, config, timeout) -> BuildResult``; a
    #: subclass that builds something else (e.g. source only) replaces just this.
    job = staticmethod(build_candidate)

    def __init__(self, n_parallel: int | None = None, timeout: float = 10.0) -> None:
        if n_parallel is not None and not 1 <= n_parallel <= 1024:
            raise TuningError(f"n_parallel must be between 1 and 1024, got {n_parallel}")
        if not 0 < timeout < float("inf"):
            raise TuningError(f"the build timeout must be a positive number of seconds, "
                              f"got {timeout:g}")
        self.n_parallel = n_parallel or os.cpu_count() or 1
        self.timeout = timeout
        self._pool: cf.ProcessPoolExecutor | None = None

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.n_parallel, mp_context=process_context(),
                                                initializer=end_with, initargs=(os.getpid(),))
        return self._pool

    def build(self, inputs: Sequence[MeasureInput]) -> list[BuildResult]:
        if not inputs:
            return []
        with holding_signals():  # submitting starts the workers
            pool = self._executor()
            futures = [
                pool.submit(self.job, inp.task, inp.config, self.timeout) for inp in inputs
            ]
        rounds = -(-len(inputs) // self.n_parallel)
        done, _ = cf.wait(futures, timeout=self.timeout * rounds + 5)
        results = [self._result(f, f in done) for f in futures]
        if len(done) < len(futures):
            self._discard_pool()  # its workers are stuck in a compile; start afresh
        return results

    def _result(self, future: cf.Future[Any], done: bool) -> BuildResult:
        if not done:
            return BuildResult(
                error=ErrorKind.TIMEOUT, error_msg=f"build exceeded {self.timeout:g} s"
            )
        try:
            return future.result()
        except Exception as err:  # the worker died (BrokenProcessPool) or pickling failed
            self._discard_pool()
            return BuildResult(error=ErrorKind.COMPILE, error_msg=f"{type(err).__name__}: {err}")

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # ProcessPoolExecutor cannot cancel a running job; end its workers ourselves.
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self, wait: bool = True) -> None:
        """End the worker processes: after their builds, or at once (``wait=False``, as
        when the tuner is interrupted; the builds under way are lost)."""
        if not wait:
            self._discard_pool()
        elif self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        return {"n_parallel": self.n_parallel, "timeout": self.timeout, "_pool": None}

    def __repr__(self) -> str:
        return f"LocalBuilder(n_parallel={self.n_parallel}, timeout={self.timeout:g})"
