"""LocalRunner: run built candidates one at a time, each in its own child process with a
time limit, check them against the task's NumPy reference, and time them natively.

Example::

    runner = LocalRunner(number=4, repeat=3, timeout=10)
    results = runner.run(inputs, builder.build(inputs))
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tilewise.autotune.measure.isolation import Outcome, run_isolated
from tilewise.autotune.measure.packed import PackedArtifact, kernel_arguments
from tilewise.autotune.measure.workload import require_memory
from tilewise.autotune.record import BuildResult, ErrorKind, MeasureInput, MeasureResult
from tilewise.autotune.task import Task
from tilewise.errors import TuningError


@dataclass(frozen=True)
class TimingOptions:
    """How the child times a kernel (passed to the runtime's ``time_evaluator``)."""

    number: int = 4
    repeat: int = 3
    min_repeat_ms: float = 0
    cache_flush: bool = False

    def __post_init__(self) -> None:
        for name, most in (("number", 10**6), ("repeat", 10**4)):
            value = getattr(self, name)
            whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            if not whole or not 1 <= value <= most:
                raise TuningError(f"{name} must be a whole number from 1 to {most}, "
                                  f"got {value!r}")
        if not 0 <= self.min_repeat_ms <= 60_000:
            raise TuningError(f"min_repeat_ms must be from 0 to 60000, got "
                              f"{self.min_repeat_ms!r}")


@dataclass(frozen=True)
class ChildReport:
    """What the child sends back: seconds per repeat, or why the output is wrong."""

    costs: tuple[float, ...] = ()
    wrong_answer: str | None = None


def make_arrays(task: Task, artifact: Any, seed: int = 0) -> tuple[list[Any], dict[int, Any]]:
    """The kernel's arguments and the expected outputs by argument position."""
    rng = np.random.default_rng(seed)
    make = task.reference()
    if make is None:
        arrays = [
            rng.random(spec.shape, dtype=np.float64).astype(spec.dtype)
            for spec in artifact.arg_specs
        ]
        return arrays, {}
    arrays, expected = make(rng)
    arrays = list(arrays)
    if not isinstance(expected, Mapping):
        expected = list(expected)
        first = len(arrays) - len(expected)
        expected = {first + i: e for i, e in enumerate(expected)}
    return arrays, dict(expected)


def check_outputs(arrays: Sequence[Any], expected: Mapping[int, Any]) -> str | None:
    """Why the outputs differ from ``expected``, or None when they match."""
    for pos, want in expected.items():
        got = np.asarray(arrays[pos])
        want = np.asarray(want)
        if np.issubdtype(want.dtype, np.floating):
            ok = np.allclose(got, want, rtol=1e-3, atol=1e-3, equal_nan=False)
        else:
            ok = np.array_equal(got, want)
        if not ok:
            worst = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
            return f"argument {pos} differs from the reference (max |diff| {worst:g})"
    return None


def measure_in_child(
    artifact: Any,
    arrays: list[Any],
    expected: dict[int, Any],
    timing: TimingOptions,
    check: bool,
) -> ChildReport:
    """The child's job: load (and pack the weights of a :class:`PackedArtifact`),
    check, time. The inputs and the reference come from the
    parent: computing the reference here (NumPy's BLAS threads spin for a while after
    a call) would steal the cores from the kernel being timed."""
    from tilewise.runtime import aligned, load_module

    # Unpickled arrays start wherever NumPy put them; time on cache-line-aligned ones,
    # as a framework would pass them.
    arrays = [aligned(a) if isinstance(a, np.ndarray) else a for a in arrays]
    if isinstance(artifact, PackedArtifact):
        args = kernel_arguments(artifact, arrays, load_module)
        module = load_module(artifact.kernel)
    else:
        args, module = arrays, load_module(artifact)
    checked = check and bool(expected)
    if checked:
        for pos in expected:
            arrays[pos][...] = 0
        module(*args)
        wrong = check_outputs(arrays, expected)
        if wrong is not None:
            return ChildReport(wrong_answer=wrong)
    timer = module.time_evaluator(
        number=timing.number,
        repeat=timing.repeat,
        min_repeat_ms=timing.min_repeat_ms,
        cache_flush=timing.cache_flush,
        warmup=not checked,  # the checking call warmed up; a large kernel runs 0.2 s a call
    )
    return ChildReport(costs=tuple(float(t) for t in timer(*args).results))


class LocalRunner:
    """Runs candidates serially, each isolated: a crash is :attr:`ErrorKind.RUNTIME`, a
    hang past ``timeout`` seconds :attr:`ErrorKind.TIMEOUT` (the child is killed), a
    mismatch with the reference :attr:`ErrorKind.WRONG_ANSWER`."""

    def __init__(
        self,
        number: int = 4,
        repeat: int = 3,
        min_repeat_ms: float = 0,
        timeout: float = 10.0,
        cache_flush: bool = False,
        check_correctness: bool = True,
    ) -> None:
        if not 0 < timeout < float("inf"):
            raise TuningError(f"the run timeout must be a positive number of seconds, "
                              f"got {timeout!r}")
        self.timing = TimingOptions(number, repeat, min_repeat_ms, cache_flush)
        self.timeout = timeout
        self.check_correctness = check_correctness
        self._inputs: dict[Any, tuple[list[Any], dict[int, Any]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The cached inputs stay here; a runner shipped elsewhere rebuilds its own.
        return {k: v for k, v in self.__dict__.items() if k != "_inputs"} | {"_inputs": {}}

    def inputs_for(self, task: Task, artifact: Any) -> tuple[list[Any], dict[int, Any]]:
        """The task's arguments and expected outputs, made once per task."""
        key = (task.key, tuple(getattr(artifact, "arg_specs", ())))
        if key not in self._inputs:
            if len(self._inputs) >= 4:
                self._inputs.pop(next(iter(self._inputs)))
            require_memory(task, getattr(artifact, "arg_specs", ()))
            self._inputs[key] = make_arrays(task, artifact)
        return self._inputs[key]

    def run(
        self, inputs: Sequence[MeasureInput], builds: Sequence[BuildResult]
    ) -> list[MeasureResult]:
        return [self.run_one(inp, b) for inp, b in zip(inputs, builds, strict=True)]

    def run_one(self, inp: MeasureInput, build: BuildResult) -> MeasureResult:
        if not build.ok:
            return MeasureResult(
                error=build.error, error_msg=build.error_msg, build_s=build.build_s
            )
        arrays, expected = self.inputs_for(inp.task, build.artifact)
        start = time.perf_counter()
        out = run_isolated(
            measure_in_child,
            (build.artifact, arrays, expected, self.timing, self.check_correctness),
            self.timeout,
        )
        run_s = time.perf_counter() - start
        if out.outcome is Outcome.RETURNED:
            report: ChildReport = out.value
            if report.wrong_answer is None:
                return MeasureResult(costs=report.costs, build_s=build.build_s, run_s=run_s)
            error, message = ErrorKind.WRONG_ANSWER, report.wrong_answer
        elif out.outcome is Outcome.TIMED_OUT:
            error, message = ErrorKind.TIMEOUT, out.message
        else:  # raised or crashed while loading or running the kernel
            error, message = ErrorKind.RUNTIME, out.message
        return MeasureResult(error=error, error_msg=message, build_s=build.build_s, run_s=run_s)

    def __repr__(self) -> str:
        return f"LocalRunner({self.timing}, timeout={self.timeout:g})"
