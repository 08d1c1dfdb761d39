"""How candidates are measured: the builder and runner contracts and their pairing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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

    @property
    def effective_batch_size(self) -> int:
        return max(1, self.batch_size or getattr(self.builder, "n_parallel", 1) or 1)

    def measure(self, inputs: Sequence[MeasureInput]) -> list[MeasureResult]:
        """Build every candidate, then run them (never a run beside a compile)."""
        builds = self.builder.build(inputs)
        return self.runner.run(inputs, builds)

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
