"""The tuner contract (``has_next / next_batch / update``) and the tuning loop that every
tuner shares: resume from the database, measure a batch, store it, learn from it.

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

#: Template rejections (and twins skipped) taken per trial asked for. Templates declare
#: the knob combinations they build and the space offers no other, so a rejection is a
#: template refusing what it declared valid or a twin: this only bounds a run where they
#: are most of what is left.
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
    twins: int = 0  # configs that build a kernel already measured (no trial spent)
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
        # Proposed configs by the choices their template instantiation read (-1: a
        # knob not read); a config that agrees with one builds the same kernel.
        self._kernels: dict[tuple[int, ...], int] = {}
        self.twins: dict[int, int] = {}  # config -> the measured config of its kernel
        self._keys: dict[int, tuple[int, ...] | None] = {}  # memo of _kernel_key
        self.best_config: ConfigEntity | None = None
        self.best_cost = math.inf
        # Wall seconds spent measuring, and the trials they measured: what a trial
        # costs, which a tuner may weigh its own work against.
        self.measure_wall_s = 0.0
        self.measure_trials = 0

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
        out = []
        for index in indices:
            if index not in self.seen:
                self.seen.add(index)
                out.append(self.space.get(index))
        return out

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
            index = config.index
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
        started, measured_before = time.perf_counter(), self.measure_wall_s
        resumed = self.resume(database) if database is not None else 0
        batch_size = measure_option.effective_batch_size
        measured = errors = rejected = last_improvement = 0
        twins_before = len(self.twins)  # skipped here or left out of a plan

        def within_limit() -> bool:
            skipped = rejected + len(self.twins) - twins_before
            return skipped <= REJECTIONS_PER_TRIAL * n_trial

        while measured < n_trial and within_limit() and self.has_next():
            # A batch is filled with new kernels: twins taken out leave no hole in it
            # (a smaller batch builds on fewer cores, and the model tuner learns and
            # replans after each).
            want = min(batch_size, n_trial - measured)
            fresh: list[ConfigEntity] = []
            while len(fresh) < want and within_limit():
                configs = self.next_batch(want - len(fresh))
                if not configs:
                    break
                fresh += self._new_kernels(configs)
            if not fresh:
                break
            inputs = [MeasureInput(self.task, c) for c in fresh]
            t0 = time.perf_counter()
            results = measure_option.measure(inputs)
            self.measure_wall_s += time.perf_counter() - t0
            self.measure_trials += len(results)
            if database is not None:
                database.add_batch(Record.of(i, r) for i, r in zip(inputs, results, strict=True))
            before = self.best_cost
            self.update(inputs, results)
            refused = sum(r.rejected for r in results)
            rejected += refused
            measured += len(results) - refused
            errors += sum(not r.ok for r in results) - refused
            if self.best_cost < before:
                last_improvement = measured
            for callback in callbacks:
                callback(self, inputs, results)
            if early_stopping is not None and measured - last_improvement >= early_stopping:
                break
        seconds = time.perf_counter() - started
        confirmed = 0
        if confirm:
            confirmed = self.confirm(measure_option, confirm, confirm_rounds, database)
        flop = self.task.flop
        best_flops = flop / self.best_cost if flop and math.isfinite(self.best_cost) else None
        return TuneSummary(measured, resumed, errors, self.best_config, self.best_cost, best_flops,
                           rejected, confirmed, len(self.twins) - twins_before, seconds,
                           self.measure_wall_s - measured_before)

    def _new_kernels(self, configs: Sequence[ConfigEntity]) -> list[ConfigEntity]:
        """``configs`` less those that build a kernel already measured, or proposed
        before (noted in :attr:`twins`): configs that differ only in knobs their
        template does not read on their path (a register tile's ``unroll_k`` where the
        micro-kernel replaces the tile). In compare.py's gemm runs, before this, 26-56%
        of the 200 trials measured such a twin again. A config the template refuses is
        kept: measuring it records why."""
        fresh = []
        for config in configs:
            if self._skip_twin(config.index):
                continue
            key = self._kernel_key(config.index)
            if key is not None:
                self._kernels[key] = config.index
            fresh.append(config)
        return fresh

    def _distinct_kernels(self, indices: Iterable[int]) -> list[int]:
        """``indices`` less those whose kernel was proposed before or comes earlier in
        ``indices`` (refused configs kept), for a tuner to plan with."""
        out, keys = [], set()
        for index in indices:
            if self._skip_twin(index):
                continue
            key = self._kernel_key(index)
            if key is None or key not in keys:
                keys.add(key)
                out.append(index)
        return out

    def _skip_twin(self, index: int) -> bool:
        """Whether config ``index`` builds a kernel proposed before; if so it is noted
        in :attr:`twins` and as seen, so that no later plan, scoring it as the kernel
        measured, finds it again."""
        twin = self._twin_of(index)
        if twin is None:
            return False
        self.seen.add(index)
        self.twins[index] = twin
        return True

    def _kernel_key(self, index: int) -> tuple[int, ...] | None:
        """The choices of config ``index`` on the knobs its template reads (-1 for the
        rest): configs with the same key build the same kernel. None where the template
        refuses the config."""
        if index in self._keys:
            return self._keys[index]
        try:
            read = self.task.knobs_read(self.space.get(index))
        except Exception:  # noqa: BLE001 - refused or broken: the measurement says
            key = None
        else:
            key = self.space.kernel_key(index, read)
        self._keys[index] = key
        return key

    def _twin_of(self, index: int) -> int | None:
        """The config proposed or measured before that builds the kernel ``index``
        builds (a twin measured before a resume found through the space), else None."""
        key = self._kernel_key(index)
        if key is None:
            return None
        twin = self._kernels.get(key)
        if twin is None:
            config = self.space.get(index)
            read = {k.name for k, d in zip(self.space.knobs, key, strict=True) if d >= 0}
            twin = next((i for i in self.space.twins(config, read) if i in self.measured), None)
        return None if twin == index else twin

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
        fallback = self.twins.get(fallback, fallback)  # its kernel, where measured as a twin
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
