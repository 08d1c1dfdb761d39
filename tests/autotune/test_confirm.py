"""Re-measuring the leading configs after a search: a lucky reading does not crown a
config, the re-measurements spend no trial, and the database agrees on the best."""

import math
from collections import Counter

from toy_templates import bowl_cost

from tilewise.autotune import (
    Database,
    FakeBuilder,
    FakeRunner,
    MeasureInput,
    MeasureOption,
    MeasureResult,
    RandomTuner,
    Record,
    Task,
)


def task():
    return Task("toy_matmul", (256, 256), "c")


class LuckyOnce:
    """bowl_cost, except that the first reading of each config of ``lucky`` (one index
    or several) is ``by`` times too fast."""

    def __init__(self, lucky, by=10):
        self.lucky = {lucky} if isinstance(lucky, int) else set(lucky)
        self.by, self.reads = by, Counter()

    def __call__(self, cfg):
        if cfg.index in self.lucky:
            self.reads[cfg.index] += 1
            if self.reads[cfg.index] == 1:
                return bowl_cost(cfg) / self.by
        return bowl_cost(cfg)


def lucky_run(tmp_path, confirm):
    probe = RandomTuner(task(), 3)
    probe.tune(40, MeasureOption(FakeBuilder(), FakeRunner(bowl_cost), 8))
    # the slowest config this seed measures becomes the lucky one
    lucky = max(probe.costs, key=lambda i: probe.costs[i][0])
    db = Database(tmp_path / "t.db")
    runner = FakeRunner(LuckyOnce(lucky))
    summary = RandomTuner(task(), 3).tune(
        40, MeasureOption(FakeBuilder(), runner, 8), database=db, confirm=confirm
    )
    return lucky, db, runner, summary


def test_a_lucky_reading_is_found_out(tmp_path):
    lucky, db, runner, summary = lucky_run(tmp_path, confirm=5)
    honest = {i: bowl_cost(task().config_space.get(i)) for i in set(runner.measured)}
    assert summary.best_config.index != lucky
    assert summary.best_cost == min(c for i, c in honest.items() if i != lucky)
    assert db.best(task()).config.index == summary.best_config.index
    # 40 trials, then 5 leaders read three times more: 55 runs, 40 distinct configs
    assert summary.measured == 40 and summary.confirmed == 15
    assert len(runner.measured) == 55 and len(db.measured_indices(task())) == 40


def test_without_confirmation_the_lucky_reading_wins(tmp_path):
    lucky, db, _, summary = lucky_run(tmp_path, confirm=0)
    assert summary.best_config.index == lucky == db.best(task()).config.index
    assert summary.confirmed == 0


def test_confirmations_resume(tmp_path):
    _, db, _, summary = lucky_run(tmp_path, confirm=5)
    again = RandomTuner(task(), 3)
    assert again.resume(db) == 40
    assert again.best_config.index == summary.best_config.index
    assert again.best_cost == summary.best_cost
    assert sum(len(r) for r in again.costs.values()) == 55


def test_confirming_nothing_measures_nothing():
    tuner = RandomTuner(task(), 0)
    runner = FakeRunner(bowl_cost)
    assert tuner.confirm(MeasureOption(FakeBuilder(), runner, 8)) == 0
    assert runner.measured == [] and math.isinf(tuner.best_cost)


def test_the_fallback_is_re_measured_beside_the_leaders():
    t = task()
    option = MeasureOption(FakeBuilder(), FakeRunner(bowl_cost), 8)
    tuner = RandomTuner(t, 3)
    first = [MeasureInput(t, t.config_space.fallback)]
    tuner.update(first, option.measure(first))
    tuner.tune(16, option)
    fallback = t.config_space.fallback.index
    leaders = sorted(tuner.costs, key=lambda i: (tuner.costs[i][0], i))[:5]
    assert tuner.confirm(option, top=5, rounds=3) == 3 * len({*leaders, fallback})
    assert len(tuner.costs[fallback]) == 4


def test_a_challenger_that_outreads_the_re_measured_leaders_is_re_measured(tmp_path):
    # The five runners-up each read lucky once, so they lead the search; re-measured,
    # they fall back, and the truly best config, read once, now outreads them all.
    probe = RandomTuner(task(), 3)
    probe.tune(40, MeasureOption(FakeBuilder(), FakeRunner(bowl_cost), 8))
    by_cost = sorted(probe.costs, key=lambda i: (probe.costs[i][0], i))
    best, runners_up = by_cost[0], by_cost[1:6]
    runner = FakeRunner(LuckyOnce(runners_up, by=100))
    db = Database(tmp_path / "t.db")
    summary = RandomTuner(task(), 3).tune(
        40, MeasureOption(FakeBuilder(), runner, 8), database=db, confirm=5
    )
    assert summary.best_config.index == best == db.best(task()).config.index
    assert summary.best_cost == probe.costs[best][0]
    # five leaders three times, then the challenger and the leader three times
    assert summary.confirmed == 15 + 6
    # (each round starts a further third of the way in: the third, at the second)
    assert runner.measured[-6:] == [best, runners_up[0]] * 2 + [runners_up[0], best]


def test_a_config_read_once_does_not_lead_re_measured_ones(tmp_path):
    t = task()
    db = Database(tmp_path / "t.db")
    reads = {1: [3e-3, 2e-3, 2e-3], 2: [2.5e-3, 2.6e-3], 3: [1e-3]}
    db.add_batch(Record.of(MeasureInput(t, t.config_space.get(i)), MeasureResult(costs=(c,)))
                 for i, costs in reads.items() for c in costs)
    assert db.best(t).config.index == 1 and db.best(t).result.mean == 2e-3
    tuner = RandomTuner(t, 0)
    tuner.resume(db)
    assert tuner.best_config.index == 1 and tuner.best_cost == 2e-3


class Spells:
    """Each config's cost read from ``slow`` for the first ``slow_reads`` readings of
    the run, from ``fast`` after: a shared machine whose speed moves for minutes."""

    def __init__(self, slow_reads, slow, fast):
        self.slow_reads, self.slow, self.fast, self.reads = slow_reads, slow, fast, 0

    def __call__(self, cfg):
        self.reads += 1
        return (self.slow if self.reads <= self.slow_reads else self.fast)[cfg.index]


def test_the_finalists_are_judged_by_the_rounds_they_shared(tmp_path):
    # The fallback is the fastest config. In the first pass, in a slow spell, the
    # leader reads a little faster than it; in the second, in a fast spell, the
    # challenger reads fastest of the two others. Pooled over both spells, the
    # challenger (read fast only) would win; read beside it, the fallback does.
    t = task()
    fallback = t.config_space.fallback.index
    leader, challenger = [i for i in range(3) if i != fallback][:2]
    searched = {leader: 0.8e-3, challenger: 0.95e-3, fallback: 1.0e-3}
    runner = FakeRunner(Spells(
        6,
        slow={leader: 1.45e-3, fallback: 1.5e-3},
        fast={challenger: 1.01e-3, leader: 1.02e-3, fallback: 1.0e-3},
    ))
    db = Database(tmp_path / "t.db")
    first = [MeasureInput(t, t.config_space.get(i)) for i in searched]
    results = [MeasureResult(costs=(c,)) for c in searched.values()]
    db.add_batch(Record.of(i, r) for i, r in zip(first, results, strict=True))
    tuner = RandomTuner(t, 0)
    tuner.update(first, results)
    confirmed = tuner.confirm(MeasureOption(FakeBuilder(), runner, 8), top=1, database=db)
    # first pass: the leader and the fallback; second: the challenger beside both, each
    # round starting one further in
    assert runner.measured == ([leader, fallback] * 2 + [fallback, leader]
                               + [challenger, leader, fallback] + [leader, fallback, challenger]
                               + [fallback, challenger, leader])
    assert confirmed == 15
    assert tuner.best_config.index == fallback and tuner.best_cost == 1.0e-3
    assert db.best(t).config.index == fallback
    again = RandomTuner(t, 0)
    again.resume(db)
    assert again.best_config.index == fallback and again.best_cost == 1.0e-3


def test_each_round_starts_further_in_and_results_come_back_in_order():
    t = task()
    inputs = [MeasureInput(t, t.config_space.get(i)) for i in (5, 6, 7)]
    runner = FakeRunner(lambda cfg: cfg.index * 1e-3)
    rounds = MeasureOption(FakeBuilder(), runner, 8).measure_rounds(inputs, 3)
    assert runner.measured == [5, 6, 7, 6, 7, 5, 7, 5, 6]
    assert [[r.mean for r in results] for results in rounds] == [[5e-3, 6e-3, 7e-3]] * 3
