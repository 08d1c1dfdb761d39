"""The tuner contract (``has_next / next_batch / update``) and the tuning loop that every
tuner shares: resume from the database, measure a batch, store it, learn from it. The
loop's steps are a :class:`TuneRound`, so that a driver may measure several tasks'
rounds at once (the whole-model tuner on a farm).

Example::

    tuner = RandomTuner(task, seed=0)
    summary = tuner.tune(64, at.measure_option(), database=at.Database("t.db"))
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tilewise.autotune.database import Database
from tilewise.autotune.measure.options import MeasureOption
from tilewise.autotune.ranking import leader, standing
from tilewise.autotune.record import MeasureInput, MeasureResult, Record
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task

#: Template rejections taken per trial asked for. Templates declare the knob
#: combinations they build and the space offers no other, so a rejection is a template
#: refusing what it declared valid: this only bounds a run where that is most of what
#: is left.
REJECTIONS_PER_TRIAL = 50

#: Called after each measured batch with ``(tuner, inputs, results)``.
Callback = Callable[["Tuner", Sequence[MeasureInput], Sequence[MeasureResult]], None]


@dataclass(frozen=True)
class TuneSummary:
    """What one ``tune`` call did."""

    measured: int  # configs built and run by this call (the trials)
    resumed: int  # configs loaded from the database first
    errors: int  # failed measurements in this call
    best_config: ConfigEntity | None
    best_cost: float  # seconds; inf when nothing succeeded
    best_flops: float | None  # FLOP/s of the best config, if the task counts FLOPs
    rejected: int = 0  # configs the template refused before any build (no trial spent)
    confirmed: int = 0  # re-measurements of the leading configs (no trial spent)
    #: Wall seconds of the search (before any confirmation), and of them those spent
    #: building and running candidates: the rest is the tuner's own work (planning,
    #: features, model fitting, annealing, bookkeeping, the database).
    seconds: float = 0.0
    measure_s: float = 0.0

    @property
    def tuner_s(self) -> float:
        return max(0.0, self.seconds - self.measure_s)


class Tuner(ABC):
    """Proposes configs of one task's space and learns from their measurements.

    Subclasses implement :meth:`next_batch` (never proposing a config twice; use
    :meth:`_propose`) and may extend :meth:`update`.
    """

    def __init__(self, task: Task, seed: int = 0) -> None:
        self.task = task
        self.space = task.config_space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.seen: set[int] = set()  # proposed or measured
        self.measured: dict[int, MeasureResult] = {}
        self.costs: dict[int, list[float]] = {}  # every successful reading of a config
        self._confirmed: set[int] = set()  # configs read more than once
        self.best_config: ConfigEntity | None = None
        self.best_cost = math.inf
        # Wall seconds spent measuring, and the trials they measured: what a trial
        # costs, which a tuner may weigh its own work against.
        self.measure_wall_s = 0.0
        self.measure_trials = 0

    def count_measuring(self, seconds: float, trials: int) -> None:
        """``trials`` were measured in ``seconds`` of wall time (what a trial costs)."""
        self.measure_wall_s += seconds
        self.measure_trials += trials

    # -- contract -----------------------------------------------------------------
    def has_next(self) -> bool:
        return len(self.seen) < self.space.size

    @abstractmethod
    def next_batch(self, n: int) -> list[ConfigEntity]:
        """Up to ``n`` configs not proposed before."""

    def update(self, inputs: Sequence[MeasureInput], results: Sequence[MeasureResult]) -> None:
        """Learn from measurements (also called with database records on resume)."""
        for inp, res in zip(inputs, results, strict=True):
            index = inp.config.index
            self.seen.add(index)
            self.measured[index] = res
            if res.ok:
                self._add_reading(index, res.mean)

    def _add_reading(self, index: int, cost: float) -> None:
        readings = self.costs.setdefault(index, [])
        readings.append(cost)
        if len(readings) == 1:
            # Read once: it leads only while nothing was re-measured (ranking.leader).
            if not self._confirmed and cost < self.best_cost:
                self.best_cost, self.best_config = cost, self.space.get(index)
            return
        self._confirmed.add(index)
        confirmed = {i: self.costs[i] for i in self._confirmed}
        best = leader(confirmed)
        self.best_cost, self.best_config = standing(self.costs[best]), self.space.get(best)

    # -- helpers for subclasses ------------------------------------------------------
    def _propose(self, indices: Iterable[int]) -> list[ConfigEntity]:
        """``indices`` not proposed before, each once, as configs; those the space does
        not offer (a crossover that breaks a constraint, or differs from a kernel's
        config only where a knob does not matter) are dropped and count as seen."""
        fresh = [i for i in dict.fromkeys(indices) if i not in self.seen]
        self.seen.update(fresh)
        if not fresh:
            return []
        offered = self.space.offered(fresh).tolist()
        return [self.space.get(i) for i, ok in zip(fresh, offered, strict=True) if ok]

    def throughput(self, result: MeasureResult) -> float:
        """FLOP/s when the task counts FLOPs, else runs per second; 0 for a failure."""
        if not result.ok or result.mean <= 0:
            return 0.0
        return (self.task.flop or 1.0) / result.mean

    # -- the loop ----------------------------------------------------------------------
    def resume(self, database: Database) -> int:
        """Feed this task's records to :meth:`update`; return how many configs."""
        inputs, results = [], []
        loaded: set[int] = set()
        again: list[tuple[int, float]] = []  # confirming re-measurements, oldest first
        for record in database.records(self.task):
            config = self.space.lookup(record.config)
            if config is None:
                continue  # recorded against an older version of the template
            index = self.space.canonical_index(config.index)  # its kernel's config
            if index != config.index:
                config = self.space.get(index)
            if index in loaded and record.result.ok:
                again.append((index, record.result.mean))
            if index in self.measured or index in loaded:
                continue
            loaded.add(index)
            inputs.append(MeasureInput(self.task, config))
            results.append(record.result)
        if inputs:
            self.update(inputs, results)
        for index, cost in again:  # after the first readings: the latest ones judge
            self._add_reading(index, cost)
        return len(inputs)

    def tune(
        self,
        n_trial: int,
        measure_option: MeasureOption,
        early_stopping: int | None = None,
        callbacks: Sequence[Callback] = (),
        database: Database | None = None,
        confirm: int = 0,
        confirm_rounds: int = 3,
    ) -> TuneSummary:
        """Measure up to ``n_trial`` new configs in batches; store every batch in
        ``database`` before the next one, after first resuming from it. Then, with
        ``confirm``, re-measure the leading configs (see :meth:`confirm`).

        A config the template rejects (an ``INSTANTIATION`` error: nothing was built
        or run) is recorded and learnt from but spends no trial, as a restriction of
        the space would; at most ``REJECTIONS_PER_TRIAL * n_trial`` such rejections are
        taken per call, so a template that rejects everything still ends.
        """
        rnd = TuneRound(self, n_trial, measure_option.effective_batch_size, database,
                        early_stopping, callbacks)
        while inputs := rnd.next_inputs():
            t0 = time.perf_counter()
            results = measure_option.measure(inputs)
            rnd.land(inputs, results, time.perf_counter() - t0)
        seconds = time.perf_counter() - rnd.started
        confirmed = 0
        if confirm:
            confirmed = self.confirm(measure_option, confirm, confirm_rounds, database)
        return rnd.summary(confirmed, seconds)

    def confirm(
        self,
        measure_option: MeasureOption,
        top: int = 5,
        rounds: int = 3,
        database: Database | None = None,
        passes: int = 3,
    ) -> int:
        """Re-measure the ``top`` leading configs ``rounds`` more times each and rank
        them again by their latest readings (:func:`~tilewise.autotune.ranking.standing`);
        return how many measurements that took. The template's fallback, when it was
        measured, is re-measured beside them in every pass: tuning then never hands back
        a config that reads slower than the untuned default in the same rounds.

        The best of hundreds of noisy readings is biased upward: the leader is often a
        config that was read on a lucky run, and its re-measured median is what a user
        of the tuned kernel gets. Re-measured leaders fall back to their medians, so a
        config read once may now stand above all of them, and so may one re-measured in
        an earlier pass, in a faster spell of the machine; such challengers (up to
        ``top`` at a time) are re-measured in turn, beside the leader and the fallback,
        for up to ``passes`` passes in all. Whatever is still unconfirmed then does not
        lead (:func:`~tilewise.autotune.ranking.leader`). The readings are stored in
        ``database`` as records of configs already measured, so they spend no trial and
        resume like any other.
        """
        if rounds < 1:
            return 0
        ranked = sorted(self.costs, key=lambda i: (standing(self.costs[i]), i))[:top]
        fallback = self.space.fallback.index
        # On this shared machine a re-measured leader read below the fallback
        # (compare.py, resnet-c4-3x3 on 2 threads: 346.9 against 361.3 GFLOP/s): the
        # fallback is read in every pass, in the same rounds as the leader.
        beside = [fallback] if fallback in self.costs else []
        ranked = list(dict.fromkeys([*ranked, *beside])) if ranked else []
        count = 0
        for _ in range(passes):
            if not ranked:
                break
            count += self._remeasure(ranked, measure_option, rounds, database)
            if self.best_config is None:  # every reading failed
                break
            # Configs not read in this pass that stand above the leader: read once and
            # faster, or re-measured in an earlier, faster spell.
            challengers = sorted(
                (i for i in self.costs
                 if i not in ranked and standing(self.costs[i]) < self.best_cost),
                key=lambda i: (standing(self.costs[i]), i))[:top]
            # The leader and the fallback are read again beside them: the same rounds
            # judge all of them.
            ranked = list(dict.fromkeys([*challengers, self.best_config.index, *beside]))
            if not challengers:
                break
        return count

    def _remeasure(self, indices: list[int], measure_option: MeasureOption, rounds: int,
                   database: Database | None) -> int:
        """Read the configs ``indices`` ``rounds`` more times, round after round."""
        inputs = [MeasureInput(self.task, self.space.get(i)) for i in indices]
        count = 0
        for results in measure_option.measure_rounds(inputs, rounds):
            if database is not None:
                database.add_batch(Record.of(i, r) for i, r in zip(inputs, results, strict=True))
            count += len(results)
            for inp, res in zip(inputs, results, strict=True):
                if res.ok:  # as in Database.best, only successful readings rank a config
                    self._add_reading(inp.config.index, res.mean)
        return count


class TuneRound:
    """One :meth:`Tuner.tune` call (before its confirmation) as steps that a driver
    runs: :meth:`next_inputs` proposes a batch, the driver measures it, :meth:`land`
    stores its records and teaches the tuner. ``Tuner.tune`` measures each batch as it
    is proposed; the whole-model tuner on a farm measures several tasks' batches at once
    (:mod:`tilewise.autotune.rounds_in_flight`). The tuner resumes from ``database``
    as the round starts.

    Example::

        rnd = TuneRound(RandomTuner(task), 8, batch_size=4, database=db)
        while inputs := rnd.next_inputs():
            rnd.land(inputs, option.measure(inputs), measure_s=0.1)
    """

    def __init__(self, tuner: Tuner, n_trial: int, batch_size: int,
                 database: Database | None = None, early_stopping: int | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.started = time.perf_counter()
        self.tuner, self.n_trial, self.batch_size = tuner, n_trial, max(1, batch_size)
        self.database, self.early_stopping, self.callbacks = database, early_stopping, callbacks
        self.measured_before = tuner.measure_wall_s
        self.resumed = tuner.resume(database) if database is not None else 0
        self.measured = self.errors = self.rejected = self.last_improvement = 0
        self.stopped = False

    def next_inputs(self) -> list[MeasureInput]:
        """The next batch to measure; empty once the round is over."""
        tuner = self.tuner
        if (self.stopped or self.measured >= self.n_trial
                or self.rejected > REJECTIONS_PER_TRIAL * self.n_trial or not tuner.has_next()):
            return []
        # A batch is filled: configs the space does not offer, dropped from a proposal,
        # leave no hole in it (a smaller batch builds on fewer cores).
        want, fresh = min(self.batch_size, self.n_trial - self.measured), []
        while len(fresh) < want and tuner.has_next():
            seen = len(tuner.seen)
            fresh += tuner.next_batch(want - len(fresh))
            if len(tuner.seen) == seen:
                break
        return [MeasureInput(tuner.task, c) for c in fresh]

    def land(self, inputs: Sequence[MeasureInput], results: Sequence[MeasureResult],
             measure_s: float) -> None:
        """Store a measured batch (one transaction) and learn from it; ``measure_s``:
        the wall seconds its measurement took."""
        tuner = self.tuner
        tuner.count_measuring(measure_s, len(results))
        if self.database is not None:
            self.database.add_batch(Record.of(i, r) for i, r in zip(inputs, results, strict=True))
        before = tuner.best_cost
        tuner.update(inputs, results)
        refused = sum(r.rejected for r in results)
        self.rejected += refused
        self.measured += len(results) - refused
        self.errors += sum(not r.ok for r in results) - refused
        if tuner.best_cost < before:
            self.last_improvement = self.measured
        for callback in self.callbacks:
            callback(tuner, inputs, results)
        if (self.early_stopping is not None
                and self.measured - self.last_improvement >= self.early_stopping):
            self.stopped = True

    def summary(self, confirmed: int = 0, seconds: float | None = None) -> TuneSummary:
        """What the round did; ``seconds``: its search's wall time (default: until now)."""
        tuner = self.tuner
        if seconds is None:
            seconds = time.perf_counter() - self.started
        flop = tuner.task.flop
        best = tuner.best_cost
        best_flops = flop / best if flop and math.isfinite(best) else None
        return TuneSummary(self.measured, self.resumed, self.errors, tuner.best_config, best,
                           best_flops, self.rejected, confirmed, seconds,
                           tuner.measure_wall_s - self.measured_before)
