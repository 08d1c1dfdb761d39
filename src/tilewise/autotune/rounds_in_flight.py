"""Several tasks' rounds measured at once, for a runner that measures on several devices
(a farm): while one task's batch is on the devices, the next task's is proposed, built
and sent, so the devices are not left idle while a tuner plans or a batch's last
candidate runs on one device.

The tuners, the database and the builder stay on the calling thread: each round is a
:class:`~tilewise.autotune.tuners.base.TuneRound` whose batches are built here, then
run by ``MeasureOption.run_built`` (each kernel once) on a thread of its own: the
runner must allow calls from several threads at once, as
:class:`~tilewise.distributed.DaskRunner` does. A batch's records
are stored, and its tuner taught, as the batch lands, whatever other rounds are still
out; a killed run loses the batches in flight, never one that landed.

Example::

    rounds = RoundsInFlight(option, db, slots=2)
    rounds.start("a", tuner_a, 8)
    rounds.start("b", tuner_b, 8)
    key, summary, seconds = rounds.wait()   # the first round to end
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from tilewise.autotune.database import Database
from tilewise.autotune.measure.options import MeasureOption
from tilewise.autotune.record import BuildResult, MeasureInput, MeasureResult
from tilewise.autotune.tuners.base import Tuner, TuneRound, TuneSummary


@dataclass
class _Round:
    key: Hashable
    round: TuneRound
    started: float


@dataclass(frozen=True)
class _Landing:
    """What a runner thread hands back: a batch's results, or what it raised."""

    entry: _Round
    inputs: Sequence[MeasureInput]
    results: Sequence[MeasureResult] | None
    measure_s: float
    error: BaseException | None = None


class RoundsInFlight:
    """Rounds of several tuners in flight at once, up to ``slots`` (the devices a farm
    offers; the caller keeps to it). :meth:`start` begins a round, :meth:`wait` returns
    the next round to end. :attr:`most` is the most rounds that were in flight at once;
    :attr:`tuner_s` the seconds this thread spent in the tuners (resuming, proposing,
    storing, learning), the rest of the time being building and waiting on devices."""

    def __init__(self, option: MeasureOption, database: Database | None, slots: int) -> None:
        self.option = option
        self.database = database
        self.slots = max(1, slots)
        self.most = 0
        self.tuner_s = 0.0
        self._rounds: dict[Hashable, _Round] = {}
        self._landed: queue.Queue[_Landing] = queue.Queue()

    def __len__(self) -> int:
        return len(self._rounds)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._rounds

    def start(self, key: Hashable, tuner: Tuner, n_trial: int) -> None:
        """Begin a round of up to ``n_trial`` trials of ``tuner`` (resumed from the
        database first, as ``Tuner.tune`` does); ``key`` names it in :meth:`wait`."""
        if key in self._rounds:
            raise ValueError(f"a round of {key!r} is already in flight")
        t0 = time.perf_counter()
        entry = _Round(key, TuneRound(tuner, n_trial, self.option.effective_batch_size,
                                      self.database), t0)
        inputs = entry.round.next_inputs()
        self.tuner_s += time.perf_counter() - t0
        self._rounds[key] = entry
        self.most = max(self.most, len(self._rounds))
        if inputs:
            self._send(entry, inputs)
        else:  # nothing left to propose: the round ends as it starts
            self._landed.put(_Landing(entry, (), (), 0.0))

    def wait(self) -> tuple[Hashable, TuneSummary, float]:
        """Land batches as they come back (each stored and learnt from at once, and the
        round's next batch sent) until a round ends: its key, summary and wall seconds.
        What a runner thread raised (a farm with no device left) is raised here."""
        if not self._rounds:
            raise ValueError("no round is in flight")
        while True:
            landing = self._landed.get()
            if landing.error is not None:
                raise landing.error
            entry = landing.entry
            t0 = time.perf_counter()
            if landing.inputs:
                entry.round.land(landing.inputs, landing.results or (), landing.measure_s)
            inputs = entry.round.next_inputs()
            self.tuner_s += time.perf_counter() - t0
            if inputs:
                self._send(entry, inputs)
                continue
            del self._rounds[entry.key]
            return entry.key, entry.round.summary(), time.perf_counter() - entry.started

    def _send(self, entry: _Round, inputs: list[MeasureInput]) -> None:
        """Build here (the builder's pool serves one batch at a time, and a build's time
        limit counts from its start), then run on a thread of the batch's own."""
        t0 = time.perf_counter()
        builds = self.option.builder.build(inputs)
        threading.Thread(target=self._run, args=(entry, inputs, builds, t0), daemon=True,
                         name=f"tilewise-round-{entry.key}").start()

    def _run(self, entry: _Round, inputs: list[MeasureInput], builds: list[BuildResult],
             t0: float) -> None:
        try:
            results = self.option.run_built(inputs, builds)
        except BaseException as err:  # handed to the tuner's thread, raised there
            self._landed.put(_Landing(entry, inputs, None, 0.0, err))
            return
        self._landed.put(_Landing(entry, inputs, results, time.perf_counter() - t0))


__all__ = ["RoundsInFlight"]
