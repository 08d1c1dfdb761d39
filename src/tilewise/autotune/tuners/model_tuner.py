"""ModelTuner: the AutoTVM method. Measure a random batch, fit a ranking cost model on
the measurements, search the space with simulated annealing scored by the model, and
measure the most promising (diverse) configs, with an epsilon of random picks.

Example::

    tuner = ModelTuner(task, seed=0, feature="knob", plan_size=32)
    tuner.tune(128, at.measure_option(), database=db)
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tilewise.autotune.database import Database
from tilewise.autotune.knob_features import FeatureSpec, make_feature_extractor
from tilewise.autotune.record import MeasureInput, MeasureResult, Record
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task, TaskKey
from tilewise.autotune.tuners.base import Tuner
from tilewise.autotune.tuners.cost_model import CostModel, LightGBMCostModel
from tilewise.autotune.tuners.sa import AnnealingOptions, anneal
from tilewise.errors import TilewiseError, TuningError

#: Random configs measured before the model plans (with the fallback, a batch of 8).
N_INITIAL = 8
#: With loop-IR features: ``overhead``, and the annealing chains. The search
#: comparisons behind both: benchmarks/results/2026-12-07-zen4/search_defaults.md.
IR_PLAN_OVERHEAD = 0.12
IR_CHAINS = 16


class ModelTuner(Tuner):
    """A cost-model-guided tuner.

    The template's fallback config comes first (a known good point for the model and
    for annealing to start from; the search then never ends below it), then
    ``n_initial`` random configs (default: a batch of 8, or ``plan_size`` where that is
    smaller); after that, every ``replan_every`` results (and
    whenever the plan runs out) the model is refit, annealing finds ``2 * plan_size``
    high-scoring unseen configs, and a diversity filter keeps ``plan_size`` of them as
    the plan that batches are drawn from.
    Each pick is random with probability ``epsilon``.

    ``overhead``: the share of the search that planning may take. Annealing then stops
    once the plan has cost ``overhead / (1 - overhead)`` of what measuring the
    ``replan_every`` trials it plans for costs at the rate measured so far. The plans
    then depend on the machine's speed; None plans alike on every run of a seed.
    ``"auto"`` (the default): ``IR_PLAN_OVERHEAD`` with loop-IR features, which lower
    every config annealing visits, and None with knob features, which cost
    microseconds.
    """

    def __init__(
        self,
        task: Task,
        seed: int = 0,
        feature: FeatureSpec = "knob",
        cost_model: CostModel | None = None,
        plan_size: int = 32,
        n_initial: int | None = None,
        epsilon: float = 0.05,
        diversity: float = 0.5,
        annealing: AnnealingOptions | None = None,
        transfer: Database | None = None,
        replan_every: int | None = None,
        overhead: float | str | None = "auto",
    ) -> None:
        super().__init__(task, seed)
        self.extract = make_feature_extractor(feature, task)
        self.prior = _prior_data(transfer, task, feature) if transfer is not None else None
        self.model = cost_model if cost_model is not None else LightGBMCostModel(seed=seed)
        self.plan_size = plan_size
        self.n_initial = min(N_INITIAL, plan_size) if n_initial is None else n_initial
        self.epsilon = epsilon
        self.diversity = diversity
        if annealing is None and feature == "ir":
            # Each config annealing visits is lowered for its features, and planning is
            # held to a share of the search (``overhead``): few chains, half of them
            # started from the best measured, go deeper in the steps that fit.
            annealing = AnnealingOptions(parallel_size=IR_CHAINS, early_stop=25)
        self.annealing = annealing or AnnealingOptions()
        self.xs: list[int] = []
        self.ys: list[float] = []
        self.plan: list[int] = []
        # Loop-IR features lower every config annealing visits (ms each, most of a
        # tuning run's time on 2 cores); knob features cost microseconds. gemm-512, 64
        # trials, median of 3 seeds: the IR model replanning after every batch reached
        # 286 GFLOP/s in 271 s per seed, after every 8 results 302 in 234 s (and 322 in
        # 205 s once the fallback came first). The knob model lost when it replanned
        # less (319 -> 291), so it replans every batch.
        if replan_every is None:
            replan_every = max(1, plan_size // 4) if feature == "ir" else 1
        self.replan_every = replan_every
        self._since_plan = 0
        self._plan_due = False
        self.overhead = _plan_share(overhead, feature)

    def _next_batch(self, n: int) -> list[ConfigEntity]:
        batch: list[int] = []
        if not self.seen and n > 0:  # the very first batch, not one after a resume
            batch.append(self.space.fallback.index)
        while len(batch) < n and len(self.seen) + len(batch) < self.space.size:
            from_plan = self.model.trained and self.rng.random() >= self.epsilon
            index = self._from_plan(batch) if from_plan else None
            if index is None:
                picks = self.space.sample(1, self.rng, exclude=self.seen | set(batch))
                if not picks:  # every config the space offers was proposed
                    break
                index = picks[0]
            batch.append(index)
        return self._propose(batch)

    def _from_plan(self, batch: list[int]) -> int | None:
        while self.plan:
            index = self.plan.pop(0)
            if index not in self.seen and index not in batch:
                return index
        return None

    def next_batch(self, n: int) -> list[ConfigEntity]:
        # Plans are made when a batch is asked for, not as results land: a network's
        # scheduler may measure a task's fallback and never give it a round. A
        # transferred model plans the very first batch too.
        first = self.prior is not None and not self.model.trained and not self.xs
        if (self._plan_due or first) and self.has_next():
            self._refit_and_plan()
        return self._next_batch(n)

    def update(self, inputs: Sequence[MeasureInput], results: Sequence[MeasureResult]) -> None:
        super().update(inputs, results)
        for inp, res in zip(inputs, results, strict=True):
            self.xs.append(inp.config.index)
            self.ys.append(self.throughput(res))
        self._since_plan += len(inputs)
        ready = len(self.xs) >= self.n_initial or self.prior is not None
        self._plan_due = ready and (self._since_plan >= self.replan_every or not self.plan)

    def _plan_deadline(self, started: float) -> float | None:
        """When annealing stops: the plan's share of the search (``overhead``) against
        the measurements it plans for (``replan_every`` trials at the cost measured so
        far), counted from ``started``. None before anything was measured, or without
        an ``overhead``."""
        if self.overhead is None or not self.measure_trials:
            return None
        per_trial = self.measure_wall_s / self.measure_trials
        return started + self.overhead / (1 - self.overhead) * per_trial * self.replan_every

    def _refit_and_plan(self) -> None:
        started = time.perf_counter()
        self._since_plan, self._plan_due = 0, False
        x = self.extract(self.xs) if self.xs else np.zeros((0, 0))
        y = np.asarray(self.ys, dtype=np.float64)
        groups = np.zeros(len(y), dtype=np.int64)
        if self.prior is not None and len(self.prior.y):
            x = np.vstack([x, self.prior.x]) if len(y) else self.prior.x
            y = np.concatenate([y, self.prior.y])
            groups = np.concatenate([groups, self.prior.groups + 1])
        self.model.fit(x, y, groups)
        if not self.model.trained:
            return
        order = np.argsort(-np.asarray(self.ys), kind="stable")
        best_measured = [self.xs[i] for i in order[: self.annealing.parallel_size // 2]]
        candidates = anneal(
            self.space,
            self._score,
            num=2 * self.plan_size,
            exclude=self.seen,
            rng=self.rng,
            options=self.annealing,
            init=best_measured,
            deadline=self._plan_deadline(started),
        )
        self.plan = self._diverse(candidates, self.plan_size)

    def _score(self, indices: Sequence[int]) -> np.ndarray:
        return self.model.predict(self.extract(indices))

    def _diverse(self, candidates: list[int], k: int) -> list[int]:
        """Greedy pick: normalised score plus a bonus for knob values not yet picked."""
        if len(candidates) <= k or self.diversity <= 0:
            return candidates[:k]
        scores = self._score(candidates)
        span = float(scores.max() - scores.min()) or 1.0
        norm = (scores - scores.min()) / span
        vectors = [self.space.knob_index_vector(c) for c in candidates]
        n_knobs = max(len(self.space.knobs), 1)
        taken: list[set[int]] = [set() for _ in range(n_knobs)]
        chosen: list[int] = []
        remaining = list(range(len(candidates)))
        while remaining and len(chosen) < k:

            def gain(i: int) -> float:
                new = sum(d not in taken[j] for j, d in enumerate(vectors[i]))
                return float(norm[i]) + self.diversity * new / n_knobs

            best = max(remaining, key=lambda i: (gain(i), -i))
            remaining.remove(best)
            chosen.append(candidates[best])
            for j, d in enumerate(vectors[best]):
                taken[j].add(d)
        return chosen


def _plan_share(overhead: float | str | None, feature: FeatureSpec) -> float | None:
    """``overhead`` as a share (None: planning unbounded); ``"auto"`` by ``feature``."""
    if overhead == "auto":
        return IR_PLAN_OVERHEAD if feature == "ir" else None
    if overhead is None:
        return None
    if isinstance(overhead, bool) or not isinstance(overhead, float | int) \
            or not 0 < overhead < 1:
        raise TuningError(f"overhead must be a share between 0 and 1 (or 'auto'), "
                          f"got {overhead!r}")
    return float(overhead)


@dataclass(frozen=True)
class PriorData:
    """Measurements of other workloads, featurised for this task's cost model."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray


@dataclass
class _Featurised:
    """A database's records on one target as loop-IR rows and throughputs, per task
    key (with how many of its records they cover), as of when it held ``size``."""

    size: int
    rows: dict[TaskKey, tuple[int, list, list]]


#: Per database, per target. Every tuner of a network transfers from one database:
#: each record is lowered once in the process, and the database is read again only
#: once it has grown.
_PRIOR_ROWS: weakref.WeakKeyDictionary[Database, dict[str, _Featurised]] = \
    weakref.WeakKeyDictionary()


def _prior_data(db: Database, task: Task, feature: FeatureSpec) -> PriorData:
    """Loop-IR features and throughputs of every other task in ``db`` on the same
    target, one ranking group per task. Knob features do not carry over between
    templates, so transfer needs ``feature="ir"``."""
    if feature != "ir":
        raise TuningError("transfer learning needs feature='ir' (knob features are per template)")
    known = _PRIOR_ROWS.setdefault(db, {})
    done = known.get(task.target)
    size = len(db)
    if done is None or done.size != size:
        rows = {} if done is None else done.rows
        for key in db.tasks():
            if key.target != task.target:
                continue
            records = db.records(key)
            count, x, y = rows.get(key, (0, [], []))
            if count < len(records):
                more = _featurised(key, records[count:])
                if more is not None:  # else its template is not registered here
                    rows[key] = (len(records), x + more[0], y + more[1])
        done = known[task.target] = _Featurised(size, rows)
    xs, ys, gs = [], [], []
    others = (rows for key, rows in done.rows.items() if key != task.key)
    for g, (_, x, y) in enumerate(others):
        xs += x
        ys += y
        gs += [g] * len(y)
    width = xs[0].shape[0] if xs else 0
    return PriorData(np.array(xs).reshape(len(xs), width), np.array(ys),
                     np.array(gs, dtype=np.int64))


def _featurised(key: TaskKey, records: Sequence[Record]) -> tuple[list, list] | None:
    """The loop-IR rows and throughputs of ``records`` of the task ``key`` (those that
    its template of today cannot place are left out); None where the template is not
    registered here."""
    from tilewise.autotune.features import IRFeatureExtractor

    try:
        other = Task.from_key(key)
        extract = IRFeatureExtractor(other, workers=1)
        flop = other.flop or 1.0
    except TilewiseError:
        return None
    space = other.config_space
    xs, ys = [], []
    for rec in records:
        if space.lookup(rec.config) is None:
            continue  # recorded against an older version of the template
        xs.append(extract.one(rec.config.index))
        ys.append(flop / rec.result.mean if rec.result.ok and rec.result.mean > 0 else 0.0)
    return xs, ys
