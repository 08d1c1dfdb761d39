"""Tune a whole model under one budget: its template tasks (``extract_tasks``), each
operator's implementations (a 3x3 convolution: direct and Winograd), one tuner per
task, and a :class:`~tilewise.autotune.task_scheduler.TaskScheduler` that hands out
rounds of trials where the model's latency should fall most.

    report = tw.tune_model("resnet50", "tuning.db", target="c -cores=2", budget_s=900)
    compiled = tw.compile_model("resnet50", db="tuning.db", target="c -cores=2")

Every measurement is stored in the database as its batch lands, so a killed run loses at
most the batches in flight, and a second run resumes each task from its records (its
trials and best) and spends its own budget. Each task's template fallback is measured
first (the untuned model's estimate), then the scheduler's rounds.

On a farm of several devices (a runner with ``device_count()``), up to that many
tasks' rounds are in flight at once (:mod:`tilewise.autotune.rounds_in_flight`): the
scheduler picks the next task among those not in flight while earlier rounds measure,
and each round's results reach its tuner and the database as they land. Measured here,
one round at a time, as ever.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .autotune import (
    Database,
    LocalBuilder,
    LocalRunner,
    MeasureInput,
    Record,
    Task,
    measure_option,
)
from .autotune import tuners as tuner_classes
from .autotune.measure.options import MeasureOption
from .autotune.rounds_in_flight import RoundsInFlight
from .autotune.task_scheduler import STRATEGIES, TaskScheduler, Unit
from .errors import TuningError

TUNERS = ("model", "random", "grid", "ga")
#: Share of a time budget kept for re-measuring each task's leaders beside its fallback
#: at the end: the best of many single readings on a shared machine is often a lucky
#: one.
CONFIRM_SHARE = 0.15
#: Leaders re-measured per task, and readings each, beside the fallback.
CONFIRM_TOP, CONFIRM_ROUNDS = 2, 2
#: Trials a unit gets per round (Ansor measures 64 a round on servers; a 2-core
#: machine's 15-minute budget is about a thousand trials over some thirty tasks).
ROUND_TRIALS = 8


@dataclass
class UnitReport:
    """One task's state for the progress display and the final report."""

    task: str
    operator: int
    weight: float
    trials: int
    best_s: float
    share: float
    leads: bool


@dataclass
class TuneModelReport:
    """What a ``tune_model`` call did: trials and seconds of this run, the model's
    estimated latency (sum of weight x best kernel) before any tuning (the fallbacks)
    and now, and each task's state."""

    target: str
    scheduler: str
    tuner: str
    trials: int = 0
    rounds: int = 0
    resumed: int = 0
    confirmed: int = 0  # re-measurements of leaders beside their fallbacks (no trials)
    in_flight: int = 1  # the most tasks' rounds measured at once (a farm's devices)
    seconds: float = 0.0
    #: Of the rounds' seconds: building and running candidates, and the tuners' own
    #: work (planning, features, model fitting, annealing, bookkeeping).
    measure_s: float = 0.0
    tuner_s: float = 0.0
    untuned_s: float = math.inf
    estimate_s: float = math.inf
    units: list[UnitReport] = field(default_factory=list)
    database: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target, "scheduler": self.scheduler, "tuner": self.tuner,
            "trials": self.trials, "rounds": self.rounds, "resumed": self.resumed,
            "confirmed": self.confirmed, "in_flight": self.in_flight,
            "seconds": round(self.seconds, 2), "database": self.database,
            "measure_s": round(self.measure_s, 2), "tuner_s": round(self.tuner_s, 2),
            "untuned_ms": _ms(self.untuned_s), "estimate_ms": _ms(self.estimate_s),
            "tasks": [{"task": u.task, "operator": u.operator, "weight": u.weight,
                       "trials": u.trials, "best_ms": _ms(u.best_s), "share": u.share,
                       "leads": u.leads} for u in self.units],
        }


def _ms(seconds: float) -> float | None:
    return seconds * 1e3 if math.isfinite(seconds) else None


#: Called after each round with the report so far and the seconds left (None: no limit).
Progress = Callable[[TuneModelReport, "float | None"], None]


def tune_model(model: Any, db: str | Path | Database | None = None, target: str = "c", *,
               budget_s: float | None = None, trials: int | None = None,
               tuner: str = "model", scheduler: str = "gradient", feature: str = "ir",
               transfer: bool = True, round_trials: int = ROUND_TRIALS, seed: int = 0,
               input_shapes: dict[str, tuple[int, ...]] | None = None,
               example_inputs: tuple | None = None, measure: MeasureOption | None = None,
               progress: Progress | None = None, generated: bool = True,
               confirm: bool = True, templates: bool = True,
               layouts: bool = True) -> TuneModelReport:
    """Tune ``model`` (anything :func:`tilewise.compile_model` takes) into ``db`` until
    ``budget_s`` seconds of wall time or ``trials`` new measurements, whichever comes
    first (one of them is required). ``tuner``: each task's tuner (``model``: the
    cost-model tuner, pre-trained on the database's records with ``transfer``);
    ``scheduler``: ``gradient`` or ``round-robin``; ``generated``: tune the kernels
    that no operator template covers too (:mod:`tilewise.graph.generated_task`);
    without ``templates``, every kernel in its generated space, the anchors' too (what
    ``compile_model(..., templates=False)`` then runs); ``layouts`` as
    ``compile_model`` takes it (the tasks are those it then compiles). A
    round is stopped from starting when the time it is expected to take would overrun
    the budget. With ``confirm``, the last part of the time (``CONFIRM_SHARE``; all
    the time it takes under a trials budget) re-measures each task's leaders beside its
    fallback, the tasks that weigh most first, so that a lucky reading does not reach
    the compiled model."""
    from . import ops  # noqa: F401  (registers the operator templates)
    from .model import check_target, extract_tasks

    _check(budget_s, trials, tuner, scheduler, round_trials)
    check_target(target)
    database = db if isinstance(db, Database) else Database(db)
    start = time.perf_counter()
    tasks = extract_tasks(model, target, input_shapes, example_inputs, generated, templates,
                          layouts)
    if not tasks:
        raise TuningError("the model has no kernels to tune")
    # As `tilewise tune` measures: one call a run, raised until a repeat lasts 10 ms.
    option = measure or measure_option(LocalBuilder(), LocalRunner(number=1, repeat=3,
                                                                    min_repeat_ms=10))
    units, tuners = [], {}
    for group, (task, count) in enumerate(tasks):
        for impl in task.implementations():
            unit = Unit(_label(impl), group, float(count))
            units.append(unit)
            tuners[id(unit)] = _tuner(tuner, impl, seed, feature,
                                      database if transfer else None)
    sched = TaskScheduler(units, scheduler, seed=seed)
    report = TuneModelReport(str(tasks[0][0].target), scheduler, tuner,
                             database=str(database.path))
    try:
        report.resumed = _resume(sched, tuners, database)
        first = _measure_fallbacks(sched, tuners, database, option)
        report.untuned_s = _untuned(sched, tuners)
        per_trial = [] if first is None else [first]
        rounds_s = budget_s * (1 - CONFIRM_SHARE) if confirm and budget_s else budget_s
        slots = _devices(option)
        rounds = _rounds if slots == 1 else _rounds_in_flight
        rounds(sched, tuners, database, option, report, start, rounds_s, trials,
               round_trials, progress, per_trial, slots)
        if confirm:
            _confirm(sched, tuners, database, option, report, start, budget_s, per_trial)
    finally:
        if measure is None:
            option.builder.close()
    _fill(report, sched, start)
    return report


def _label(task: Task) -> str:
    """What the display calls a task: a generated kernel by its operators and its
    first input's shape (its arguments spell the whole group)."""
    if task.name != "generated":
        return str(task).split(" @ ")[0]
    inputs, nodes, _ = task.args
    return f"generated({'+'.join(n[0] for n in nodes)}, {tuple(inputs[0][0])})"


def _check(budget_s, trials, tuner, scheduler, round_trials) -> None:
    if budget_s is None and trials is None:
        raise TuningError("give a time budget (seconds) or a number of trials")
    if budget_s is not None and not budget_s > 0:
        raise TuningError(f"the time budget must be positive, got {budget_s}")
    if trials is not None and trials < 1:
        raise TuningError(f"trials must be at least 1, got {trials}")
    if tuner not in TUNERS:
        raise TuningError(f"unknown tuner {tuner!r}; choose one of {', '.join(TUNERS)}")
    if scheduler not in STRATEGIES:
        raise TuningError(f"unknown scheduler {scheduler!r}; choose one of "
                          f"{', '.join(STRATEGIES)}")
    if round_trials < 1:
        raise TuningError(f"a round needs at least one trial, got {round_trials}")


def _tuner(name: str, task: Task, seed: int, feature: str, transfer: Database | None):
    if name == "model":
        return tuner_classes.ModelTuner(task, seed=seed, feature=feature, transfer=transfer)
    return {"random": tuner_classes.RandomTuner, "grid": tuner_classes.GridSearchTuner,
            "ga": tuner_classes.GATuner}[name](task, seed=seed)


def _resume(sched: TaskScheduler, tuners: dict, database: Database) -> int:
    """Each unit's trials and best from its records; returns how many trials (configs
    built and run; those the template refused are no trial)."""
    total = 0
    for unit in sched.units:
        tuner = tuners[id(unit)]
        if tuner.resume(database):
            total += _trials(tuner)
            sched.record(unit, _trials(tuner), tuner.best_cost, not tuner.has_next())
    return total


def _trials(tuner) -> int:
    return sum(not r.rejected for r in tuner.measured.values())


def _measure_fallbacks(sched: TaskScheduler, tuners: dict, database: Database,
                       option: MeasureOption) -> float | None:
    """One batch of every unmeasured unit's fallback config (the untuned model);
    returns the seconds a trial took in it."""
    fresh = [u for u in sched.units if not u.history]
    if not fresh:
        return None
    inputs = [MeasureInput(tuners[id(u)].task, tuners[id(u)].task.config_space.fallback)
              for u in fresh]
    t0 = time.perf_counter()
    results = option.measure(inputs)
    seconds = (time.perf_counter() - t0) / len(inputs)
    database.add_batch(Record.of(i, r) for i, r in zip(inputs, results, strict=True))
    for unit, inp, res in zip(fresh, inputs, results, strict=True):
        tuner = tuners[id(unit)]
        tuner.count_measuring(seconds, 1)  # what a trial costs, for its planning share
        tuner.update([inp], [res])
        sched.record(unit, _trials(tuner), tuner.best_cost, not tuner.has_next())
    return seconds


def _untuned(sched: TaskScheduler, tuners: dict) -> float:
    """The model's estimate with each operator's fallbacks: what compiling it untuned
    runs (the best of its templates' fallbacks, as dispatch's first choice may not be)."""
    best: dict[int, float] = {}
    weight: dict[int, float] = {}
    for unit in sched.units:
        tuner = tuners[id(unit)]
        fb = tuner.space.fallback.index
        res = tuner.measured.get(fb)
        cost = res.mean if res is not None else math.inf
        best[unit.group] = min(best.get(unit.group, math.inf), cost)
        weight[unit.group] = unit.weight
    return sum(weight[g] * best[g] for g in best)


def _devices(option: MeasureOption) -> int:
    """How many candidates the option's runner measures at once: a farm's devices of
    its kind (``device_count()``), else one."""
    count = getattr(option.runner, "device_count", None)
    return 1 if count is None else max(1, int(count()))


def _fits(n: int, start: float, budget_s: float | None, per_trial: list[float]) -> bool:
    """Whether a round of ``n`` trials is expected to end within the budget."""
    if budget_s is None:
        return True
    guess = n * (sum(per_trial) / len(per_trial) if per_trial else 1.0)
    return time.perf_counter() - start + guess <= budget_s


def _rounds(sched, tuners, database, option, report, start, budget_s, trials,
            round_trials, progress, per_trial: list[float], slots: int = 1) -> None:
    """Rounds until the budget or the trials are spent; ``per_trial``: seconds a trial
    took, round by round, which predict whether the next round fits the budget."""
    while trials is None or report.trials < trials:
        unit = sched.pick()
        if unit is None:
            break
        n = round_trials if trials is None else min(round_trials, trials - report.trials)
        if not _fits(n, start, budget_s, per_trial):
            break
        tuner = tuners[id(unit)]
        t0 = time.perf_counter()
        summary = tuner.tune(n, option, database=database)
        report.measure_s += summary.measure_s
        report.tuner_s += summary.tuner_s
        _landed(sched, unit, tuner, summary, time.perf_counter() - t0, report, start,
                budget_s, progress, per_trial)


def _rounds_in_flight(sched, tuners, database, option, report, start, budget_s, trials,
                      round_trials, progress, per_trial: list[float], slots: int) -> None:
    """As :func:`_rounds`, with up to ``slots`` tasks' rounds in flight at once: the
    scheduler picks among the tasks not in flight, and a round that lands is recorded
    before the next pick. The trials of the rounds in flight are counted against the
    trials budget as they start; a round starts only where it is expected to end within
    the time budget, and those in flight are waited for."""
    rounds = RoundsInFlight(option, database, slots)
    units = {id(u): u for u in sched.units}
    reserved: dict[int, int] = {}  # trials each round in flight may spend
    t_phase, stop = time.perf_counter(), False
    while True:
        while not stop and len(rounds) < rounds.slots:
            left = None if trials is None else trials - report.trials - sum(reserved.values())
            if left is not None and left <= 0:
                break
            unit = sched.pick(busy=[units[k] for k in reserved])
            if unit is None:
                break
            n = round_trials if left is None else min(round_trials, left)
            if not _fits(n, start, budget_s, per_trial):
                stop = True
                break
            reserved[id(unit)] = n
            rounds.start(id(unit), tuners[id(unit)], n)
        if not len(rounds):
            break
        key, summary, spent = rounds.wait()
        del reserved[key]
        _landed(sched, units[key], tuners[key], summary, spent, report, start, budget_s,
                progress, per_trial)
        rounds.slots = _devices(option)  # devices may have joined or left the farm
    report.in_flight = max(report.in_flight, rounds.most)
    report.tuner_s += rounds.tuner_s
    report.measure_s += max(0.0, time.perf_counter() - t_phase - rounds.tuner_s)


def _landed(sched, unit, tuner, summary, spent, report, start, budget_s, progress,
            per_trial: list[float]) -> None:
    """A round is over: count it, tell the scheduler, show the progress."""
    if summary.measured:
        per_trial.append(spent / summary.measured)
    report.trials += summary.measured
    report.rounds += 1
    sched.record(unit, _trials(tuner), tuner.best_cost,
                 exhausted=not tuner.has_next() or summary.measured == 0, seconds=spent)
    if progress is not None:
        _fill(report, sched, start)
        left = None if budget_s is None else max(0.0, budget_s - report.seconds)
        progress(report, left)


def _confirm(sched, tuners, database, option, report, start, budget_s,
             per_trial: list[float]) -> None:
    """Re-measure the leaders of each task measured more than once beside its fallback
    (``Tuner.confirm``), heaviest operators first, while the budget lasts."""
    each = sum(per_trial) / len(per_trial) if per_trial else 1.0
    measured = [u for u in sched.units if len(tuners[id(u)].costs) >= 2]
    for unit in sorted(measured, key=lambda u: -u.weight * u.best):
        tuner = tuners[id(unit)]
        guess = (CONFIRM_TOP + 1) * CONFIRM_ROUNDS * each
        if budget_s is not None and time.perf_counter() - start + guess > budget_s:
            break
        report.confirmed += tuner.confirm(option, top=CONFIRM_TOP, rounds=CONFIRM_ROUNDS,
                                          database=database, passes=1)
        sched.record(unit, _trials(tuner), tuner.best_cost, unit.exhausted)


def _fill(report: TuneModelReport, sched: TaskScheduler, start: float) -> None:
    report.seconds = time.perf_counter() - start
    report.estimate_s = sched.estimate()
    report.units = [UnitReport(u.name, u.group, u.weight, u.trials, u.best, sched.share(u),
                               u.best <= sched.group_best(u.group))
                    for u in sched.units]


__all__ = ["TUNERS", "TuneModelReport", "UnitReport", "tune_model"]
