"""Re-measuring the leading configs after a search: a lucky reading does not crown a
config, the re-measurements spend no trial, and the database agrees on the best."""

import math

from toy_templates import bowl_cost

from tilewise.autotune import (
    Database,
    FakeBuilder,
    FakeRunner,
    MeasureInput,
    MeasureOption,
    RandomTuner,
    Task,
)


def task():
    return Task("toy_matmul", (256, 256), "c")


class LuckyOnce:
    """bowl_cost, except that ``lucky``'s first reading is ten times too fast."""

    def __init__(self, lucky):
        self.lucky, self.reads = lucky, 0

    def __call__(self, cfg):
        if cfg.index == self.lucky:
            self.reads += 1
            if self.reads == 1:
                return bowl_cost(cfg) / 10
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
    # 40 trials, then 5 leaders read twice more: 50 runs, 40 distinct configs
    assert summary.measured == 40 and summary.confirmed == 10
    assert len(runner.measured) == 50 and len(db.measured_indices(task())) == 40


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
    assert sum(len(r) for r in again.costs.values()) == 50


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
    assert tuner.confirm(option, top=5, rounds=2) == 2 * len({*leaders, fallback})
    assert len(tuner.costs[fallback]) == 3
