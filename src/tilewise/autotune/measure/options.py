"""How candidates are measured: the builder and runner contracts and their pairing."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tilewise.autotune.record import BuildResult, MeasureInput, MeasureResult


@runtime_checkable
class Builder(Protocol):
    """Turns candidates into runnable artifacts (or build errors), in order."""

    n_parallel: int

    def build(self, inputs: Sequence[MeasureInput]) -> list[BuildResult]: ...


@runtime_checkable
class Runner(Protocol):
    """Runs built candidates and times them, in order."""

    def run(
        self, inputs: Sequence[MeasureInput], builds: Sequence[BuildResult]
    ) -> list[MeasureResult]: ...


@dataclass(frozen=True)
class MeasureOption:
    """A builder and a runner; a tuner measures ``batch_size`` candidates per round
    (default: as many as the builder compiles at once)."""

    builder: Builder
    runner: Runner
    batch_size: int | None = None
    #: The result of each kernel run by :meth:`measure`, by :func:`kernel_identity`.
    runs: dict[str, MeasureResult] = field(default_factory=dict, compare=False, repr=False)

    @property
    def effective_batch_size(self) -> int:
        return max(1, self.batch_size or getattr(self.builder, "n_parallel", 1) or 1)

    def measure(self, inputs: Sequence[MeasureInput]) -> list[MeasureResult]:
        """Build every candidate, then run them (never a run beside a compile). A
        candidate that builds a kernel this option ran before, or that an earlier one
        of the batch builds (configs whose choices differ where the schedule does not
        tell them apart: a row tile as tall as a matrix of few rows, whatever its
        knob), is not run again: it takes that run's result."""
        return self.run_built(inputs, self.builder.build(inputs))

    def run_built(self, inputs: Sequence[MeasureInput],
                  builds: Sequence[BuildResult]) -> list[MeasureResult]:
        """The second half of :meth:`measure`: run what was built, each kernel once.
        Several threads may call it at once where the runner allows it (the
        whole-model tuner's rounds in flight on a farm: their tasks' kernels differ)."""
        keys = [kernel_identity(b.artifact) if b.ok else None for b in builds]
        first: dict[str, int] = {}
        fresh = [i for i, key in enumerate(keys)
                 if key is None or (key not in self.runs and first.setdefault(key, i) == i)]
        ran = self.runner.run([inputs[i] for i in fresh], [builds[i] for i in fresh])
        out: dict[int, MeasureResult] = dict(zip(fresh, ran, strict=True))
        for i in fresh:
            if keys[i] is not None:
                self.runs[keys[i]] = out[i]
        return [out[i] if i in out else dataclasses.replace(self.runs[keys[i]], run_s=0.0)
                for i in range(len(inputs))]

    def measure_rounds(
        self, inputs: Sequence[MeasureInput], rounds: int
    ) -> list[list[MeasureResult]]:
        """Build every candidate once, then run all of them ``rounds`` times, one round
        after the other, so that the machine's drift falls on every candidate alike.
        Each round starts a further ``len(inputs) / rounds`` candidates in, so that
        each is read early in one round and late in another: where the machine's speed
        changed within rounds, the candidates read last in every round were otherwise
        read in the slower spell each time (gemm-1024 on one Xeon core: the fallback,
        read last in each round, 70-100 GFLOP/s against 97-122 for those read first).
        Results come back in the order of ``inputs``."""
        builds = self.builder.build(inputs)
        n = len(inputs)
        out = []
        for r in range(rounds):
            start = r * n // rounds
            order = [(start + k) % n for k in range(n)]
            results = self.runner.run([inputs[i] for i in order], [builds[i] for i in order])
            by_input = dict(zip(order, results, strict=True))
            out.append([by_input[i] for i in range(n)])
        return out


def measure_option(
    builder: Builder | str = "local",
    runner: Runner | str = "local",
    batch_size: int | None = None,
) -> MeasureOption:
    """``measure_option()`` is a :class:`LocalBuilder` with a :class:`LocalRunner`."""
    if isinstance(builder, str):
        if builder != "local":
            raise ValueError(f"unknown builder {builder!r} (expected 'local' or a Builder)")
        from tilewise.autotune.measure.builder import LocalBuilder

        builder = LocalBuilder()
    if isinstance(runner, str):
        if runner != "local":
            raise ValueError(f"unknown runner {runner!r} (expected 'local' or a Runner)")
        from tilewise.autotune.measure.runner import LocalRunner

        runner = LocalRunner()
    return MeasureOption(builder, runner, batch_size)


def kernel_identity(artifact: Any) -> str | None:
    """What makes a built candidate the kernel it is: its fields (its source, launch and
    target), less where its files lie and what building it took; None for what is not
    a dataclass."""
    if not dataclasses.is_dataclass(artifact) or isinstance(artifact, type):
        return None
    parts = [type(artifact).__name__]
    for f in dataclasses.fields(artifact):
        if f.name.endswith(("_path", "_s")):
            continue
        value = getattr(artifact, f.name)
        nested = kernel_identity(value)
        parts.append(nested if nested is not None else repr(value))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
