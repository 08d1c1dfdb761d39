"""The task scheduler's allocation on fake tasks with known latency curves: exact
counts, no measurement."""

import math

import pytest

from tilewise.autotune.task_scheduler import TaskScheduler, Unit
from tilewise.errors import TuningError

ROUND = 8


def drive(sched: TaskScheduler, curves, rounds: int, limits=None) -> dict[str, int]:
    """Run ``rounds`` rounds: the picked unit's best after t trials is its curve(t)."""
    limits = limits or {}
    for _ in range(rounds):
        unit = sched.pick()
        if unit is None:
            break
        trials = min(unit.trials + ROUND, limits.get(unit.name, math.inf))
        sched.record(unit, trials, curves[unit.name](trials),
                     exhausted=trials >= limits.get(unit.name, math.inf))
    return {u.name: u.trials for u in sched.units}


def units(*specs):
    return [Unit(name, group, weight) for name, group, weight in specs]


# A heavy operator that keeps improving; a light one that is flat from the start.
CURVES = {"heavy": lambda t: 10.0 / (1 + 0.05 * t), "flat": lambda t: 1.0,
          "mid": lambda t: 3.0 / (1 + 0.01 * t)}


def test_round_robin_gives_every_task_the_same_rounds():
    sched = TaskScheduler(units(("heavy", 0, 1), ("flat", 1, 1), ("mid", 2, 1)),
                          "round-robin")
    assert drive(sched, CURVES, 12) == {"heavy": 32, "flat": 32, "mid": 32}


def test_gradient_spends_where_the_latency_falls():
    sched = TaskScheduler(units(("heavy", 0, 1), ("flat", 1, 1), ("mid", 2, 1)),
                          "gradient", eps=0)
    counts = drive(sched, CURVES, 30)
    assert sum(counts.values()) == 30 * ROUND
    # the flat task's optimism fades with each round that found nothing faster
    assert counts["flat"] <= 3 * ROUND
    assert counts["heavy"] >= counts["mid"] > 3 * counts["flat"]


def test_every_task_gets_a_first_round_before_any_is_preferred():
    sched = TaskScheduler(units(("heavy", 0, 100), ("flat", 1, 1), ("mid", 2, 1)), eps=0)
    assert drive(sched, CURVES, 3) == {"heavy": 8, "flat": 8, "mid": 8}


def test_weight_counts_how_often_an_operator_runs():
    curves = {"a": lambda t: 2.0 / (1 + 0.02 * t), "b": lambda t: 2.0 / (1 + 0.02 * t)}
    sched = TaskScheduler(units(("a", 0, 1), ("b", 1, 4)), eps=0)
    counts = drive(sched, curves, 20)
    assert counts["b"] > 2 * counts["a"]


def test_a_template_far_behind_its_operator_gets_little():
    """Two templates of one operator: the scheduler spends on the one that leads."""
    curves = {"direct": lambda t: 4.0 / (1 + 0.01 * t), "winograd": lambda t: 2.0 / (1 + 0.01 * t)}
    sched = TaskScheduler(units(("direct", 0, 1), ("winograd", 0, 1)), eps=0)
    counts = drive(sched, curves, 20)
    assert counts["winograd"] > 4 * counts["direct"]
    assert sched.estimate() == pytest.approx(sched.units[1].best)
    assert sched.share(sched.units[0]) == 0 and sched.share(sched.units[1]) == 1


def test_exhausted_tasks_get_nothing_more():
    sched = TaskScheduler(units(("heavy", 0, 1), ("mid", 1, 1)), "round-robin")
    counts = drive(sched, CURVES, 10, limits={"heavy": 12})
    assert counts == {"heavy": 12, "mid": 64}
    assert drive(TaskScheduler(units(("heavy", 0, 1))), CURVES, 5, {"heavy": 8}) == {"heavy": 8}


def test_estimate_is_the_weighted_sum_of_each_operators_best():
    sched = TaskScheduler(units(("a", 0, 2), ("b", 0, 2), ("c", 1, 3)))
    assert sched.estimate() == math.inf
    for unit, best in zip(sched.units, (1.0, 0.5, 2.0), strict=True):
        sched.record(unit, 1, best)
    assert sched.estimate() == pytest.approx(2 * 0.5 + 3 * 2.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(strategy="fastest"), "unknown scheduler"),
    (dict(alpha=2.0), "alpha and eps"),
])
def test_bad_options_are_one_clear_error(kwargs, message):
    with pytest.raises(TuningError, match=message):
        TaskScheduler(units(("a", 0, 1)), **kwargs)
    with pytest.raises(TuningError, match="no tasks"):
        TaskScheduler([])


@pytest.mark.parametrize("strategy", ["gradient", "round-robin"])
def test_a_unit_in_flight_gets_no_second_round(strategy):
    """With rounds in flight (a farm), the pick is the scheduler's among the others,
    and None while every unit left is in flight."""
    sched = TaskScheduler(units(("heavy", 0, 1), ("flat", 1, 1), ("mid", 2, 1)),
                          strategy, eps=0)
    drive(sched, CURVES, 3)  # every unit measured once
    first = sched.pick()
    second = sched.pick(busy=[first])
    assert second is not None and second is not first
    third = sched.pick(busy=[first, second])
    assert third not in (None, first, second)
    assert sched.pick(busy=[first, second, third]) is None
    if strategy == "gradient":  # the same order as one round at a time
        ranked = sorted(sched.units, key=sched.gradient)
        assert [first, second, third] == ranked


def test_gradient_counts_a_units_seconds_per_trial():
    """The budget is wall time: of two operators that improve alike, the one whose
    trials take a quarter of the time gets most rounds; without timings, they share."""
    curves = {"slow": lambda t: 4.0 / (1 + 0.05 * t), "fast": lambda t: 4.0 / (1 + 0.05 * t)}
    seconds = {"slow": 4.0, "fast": 1.0}

    def run(timed: bool) -> dict[str, int]:
        sched = TaskScheduler(units(("slow", 0, 1), ("fast", 1, 1)), eps=0)
        for _ in range(20):
            unit = sched.pick()
            trials = unit.trials + ROUND
            sched.record(unit, trials, curves[unit.name](trials),
                         seconds=seconds[unit.name] * ROUND if timed else None)
        return {u.name: u.trials for u in sched.units}

    timed = run(True)
    assert timed["fast"] >= 2 * timed["slow"], timed
    untimed = run(False)
    assert abs(untimed["fast"] - untimed["slow"]) <= ROUND, untimed
