"""Test doubles for measurement: a builder and runners that need no compiler, so tuners
are tested with fixed seeds and exact counts.

>>> option = MeasureOption(FakeBuilder(), FakeRunner(lambda cfg: 1.0 + cfg.index))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from tilewise.autotune.measure.options import MeasureOption  # noqa: F401  (doctest)
from tilewise.autotune.record import (
    BuildResult,
    ErrorKind,
    MeasureInput,
    MeasureResult,
    Record,
)
from tilewise.autotune.space import ConfigEntity

#: A fake cost: seconds for a good config, or the ErrorKind it should fail with.
CostFunction = Callable[[ConfigEntity], "float | ErrorKind"]


class FakeBuilder:
    """'Builds' by running the template (so InvalidConfigError is still reported as
    :attr:`ErrorKind.INSTANTIATION`) and returns the config index as the artifact."""

    def __init__(self, n_parallel: int = 4, instantiate: bool = True) -> None:
        self.n_parallel = n_parallel
        self.instantiate = instantiate
        self.built = 0

    def build(self, inputs: Sequence[MeasureInput]) -> list[BuildResult]:
        out = []
        for inp in inputs:
            self.built += 1
            if self.instantiate:
                try:
                    inp.task.instantiate(inp.config)
                except Exception as err:
                    out.append(BuildResult(error=ErrorKind.INSTANTIATION, error_msg=str(err)))
                    continue
            out.append(BuildResult(artifact=inp.config.index))
        return out


class FakeRunner:
    """Returns ``cost_fn(config)`` seconds (or its ErrorKind) for every built candidate."""

    def __init__(self, cost_fn: CostFunction) -> None:
        self.cost_fn = cost_fn
        self.measured: list[int] = []

    def run(
        self, inputs: Sequence[MeasureInput], builds: Sequence[BuildResult]
    ) -> list[MeasureResult]:
        out = []
        for inp, build in zip(inputs, builds, strict=True):
            if not build.ok:
                out.append(MeasureResult(error=build.error, error_msg=build.error_msg))
                continue
            self.measured.append(inp.config.index)
            cost = self.cost_fn(inp.config)
            if isinstance(cost, ErrorKind):
                out.append(MeasureResult(error=cost, error_msg="fake failure"))
            else:
                out.append(MeasureResult(costs=(float(cost),)))
        return out


class FakeFarmRunner(FakeRunner):
    """A :class:`FakeRunner` that stands for a farm of ``devices`` devices: it says how
    many (``device_count()``, as :class:`~tilewise.distributed.DaskRunner` does), so the
    whole-model tuner keeps that many tasks' rounds in flight, and it may be called from
    several threads at once. :attr:`most_calls` is the most calls it served at once, and
    :attr:`calls` each call's tasks and (start, end) on the monotonic clock."""

    def __init__(self, cost_fn: CostFunction, devices: int = 2) -> None:
        super().__init__(cost_fn)
        self.devices = devices
        self.most_calls = 0
        self.calls: list[tuple[frozenset[object], float, float]] = []
        self._out = 0
        self._lock = threading.Lock()

    def device_count(self) -> int:
        return self.devices

    def run(
        self, inputs: Sequence[MeasureInput], builds: Sequence[BuildResult]
    ) -> list[MeasureResult]:
        with self._lock:
            self._out += 1
            self.most_calls = max(self.most_calls, self._out)
        start = time.monotonic()
        try:
            return super().run(inputs, builds)
        finally:
            with self._lock:
                self._out -= 1
                tasks = frozenset(inp.task.key for inp in inputs)
                self.calls.append((tasks, start, time.monotonic()))


class ReplayRunner:
    """Replays the results of earlier records; a config never measured is a RUNTIME error."""

    def __init__(self, records: Iterable[Record]) -> None:
        self._results = {(r.task_key, r.config.index): r.result for r in records}

    def run(
        self, inputs: Sequence[MeasureInput], builds: Sequence[BuildResult]
    ) -> list[MeasureResult]:
        out = []
        for inp, build in zip(inputs, builds, strict=True):
            if not build.ok:
                out.append(MeasureResult(error=build.error, error_msg=build.error_msg))
                continue
            known = self._results.get((inp.task.key, inp.config.index))
            if known is None:
                out.append(MeasureResult(error=ErrorKind.RUNTIME, error_msg="not in the replay"))
            else:
                out.append(known)
        return out
