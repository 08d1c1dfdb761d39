"""Whole-model tuning end to end with fake measurements (exact counts, no compiler):
trials and time budgets, resuming, and the tuned records reaching compile_model."""

import subprocess
import sys
import textwrap
import time

import pytest

import tilewise as tw
from tilewise import autotune as at
from tilewise import models
from tilewise.errors import TilewiseError

SMALL_BERT = dict(seq=16, hidden=64, heads=4, ffn=128)


def fake(seconds_per_trial: float = 0.0, devices: int | None = None) -> at.MeasureOption:
    """Fake measurements here, or (``devices``) on a fake farm of that many devices."""

    def cost(config):
        time.sleep(seconds_per_trial)
        return 1e-4 * (1 + config.index % 13)

    runner = at.FakeRunner(cost) if devices is None else at.FakeFarmRunner(cost, devices)
    return at.measure_option(at.FakeBuilder(), runner)


def overlapping_tasks(calls) -> bool:
    """Whether two calls of a FakeFarmRunner, for different tasks, were out at once."""
    return any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2]
               for i, a in enumerate(calls) for b in calls[i + 1:])


def trials_in(path) -> int:
    """Stored measurements, less the configs the templates refused (no trial)."""
    return sum(not r.result.rejected for r in at.Database(path).all_records())


@pytest.fixture(scope="module")
def small_bert():
    return models.build("bert_layer", **SMALL_BERT)


def test_trials_are_spent_exactly_and_every_task_starts_from_its_fallback(small_bert,
                                                                          tmp_path):
    """On the template tasks alone (the generated ones' small spaces end early)."""
    db = at.Database(tmp_path / "t.db")
    report = tw.tune_model(small_bert, db, "c -cores=1", trials=40, tuner="random",
                           measure=fake(), generated=False, confirm=False)
    tasks = tw.extract_tasks(small_bert, "c -cores=1")
    assert report.trials == 40 and report.rounds == 5  # rounds of 8
    assert len(report.units) == len(tasks)
    for (task, count), unit in zip(tasks, report.units, strict=True):
        assert unit.weight == count
        fallback = task.config_space.fallback
        assert any(r.config.index == fallback.index for r in db.records(task))
    assert sum(u.trials for u in report.units) == 40 + len(tasks)  # and the fallbacks
    assert report.estimate_s <= report.untuned_s
    assert sum(u.share for u in report.units) == pytest.approx(1.0)
    assert report.measure_s > 0 and report.tuner_s > 0
    assert report.measure_s + report.tuner_s <= report.seconds


def test_a_second_run_resumes_every_task(small_bert, tmp_path):
    path = tmp_path / "t.db"
    first = tw.tune_model(small_bert, path, "c -cores=1", trials=24, tuner="random",
                          measure=fake(), confirm=False)
    again = tw.tune_model(small_bert, path, "c -cores=1", trials=16, tuner="random",
                          measure=fake(), confirm=False)
    assert again.resumed == sum(u.trials for u in first.units)
    assert sum(u.trials for u in again.units) == sum(u.trials for u in first.units) + 16
    assert again.estimate_s <= first.estimate_s
    assert trials_in(path) == sum(u.trials for u in again.units)


@pytest.mark.parametrize("confirm", [False, True])
def test_lucky_readings_are_re_measured_beside_the_fallback(small_bert, tmp_path, confirm):
    """Every config but the fallback reads fast once, then slower than the fallback:
    re-measured, the fallback leads again, and it is what compile_model would run."""
    seen: dict[tuple, int] = {}

    def cost(config):
        key = tuple(str(v) for _, v in config.entities)
        seen[key] = seen.get(key, 0) + 1
        if config.index == fallbacks.get(key):
            return 5e-4
        return 1e-5 if seen[key] == 1 else 1e-3

    tasks = tw.extract_tasks(small_bert, "c -cores=1")
    fallbacks = {tuple(str(v) for _, v in t.config_space.fallback.entities):
                 t.config_space.fallback.index for t, _ in tasks}
    db = at.Database(tmp_path / "t.db")
    report = tw.tune_model(small_bert, db, "c -cores=1", trials=24, tuner="random",
                           generated=False, confirm=confirm,
                           measure=at.measure_option(at.FakeBuilder(), at.FakeRunner(cost)))
    tried = [t for t, _ in tasks if len({r.config.index for r in db.records(t)}) > 1]
    assert tried
    at_fallback = [db.best(t).config.index == t.config_space.fallback.index for t in tried]
    assert all(at_fallback) if confirm else not any(at_fallback)
    assert (report.confirmed > 0) == confirm


def test_the_time_budget_is_honoured(small_bert, tmp_path):
    """Rounds of 8 trials of 20 ms: the budget holds many, and its last would overrun."""
    report = tw.tune_model(small_bert, tmp_path / "t.db", "c -cores=1", budget_s=3.0,
                           tuner="random", measure=fake(0.02), generated=False)
    assert report.trials > 8
    assert report.seconds <= 3.0 * 1.1


def test_on_a_farm_several_tasks_are_in_flight_at_once(small_bert, tmp_path):
    """Two devices: two tasks' rounds measure at once, every trial is stored once, and
    the trials budget is spent exactly, as one round at a time would spend it."""
    option = fake(0.01, devices=2)
    db = at.Database(tmp_path / "t.db")
    report = tw.tune_model(small_bert, db, "c -cores=1", trials=40, tuner="random",
                           measure=option, generated=False, confirm=False)
    runner = option.runner
    assert report.in_flight == 2 and runner.most_calls == 2
    assert overlapping_tasks([c for c in runner.calls if len(c[0]) == 1])
    assert report.trials == 40 and report.rounds == 5
    tasks = tw.extract_tasks(small_bert, "c -cores=1")
    assert sum(u.trials for u in report.units) == 40 + len(tasks)  # and the fallbacks
    assert trials_in(db.path) == 40 + len(tasks)
    for task, _ in tasks:  # no config of a task measured twice
        indices = [r.config.index for r in db.records(task)]
        assert len(indices) == len(set(indices))
    assert report.measure_s > 0 and report.tuner_s > 0
    assert report.measure_s + report.tuner_s <= report.seconds
    assert report.to_json()["in_flight"] == 2


def test_on_a_farm_the_rounds_end_within_the_time_budget(small_bert, tmp_path):
    report = tw.tune_model(small_bert, tmp_path / "t.db", "c -cores=1", budget_s=3.0,
                           tuner="random", measure=fake(0.02, devices=2), generated=False)
    assert report.trials > 16 and report.in_flight == 2
    assert report.seconds <= 3.0 * 1.1


def test_on_a_farm_a_second_run_resumes_every_task(small_bert, tmp_path):
    path = tmp_path / "t.db"
    first = tw.tune_model(small_bert, path, "c -cores=1", trials=24, tuner="random",
                          measure=fake(devices=2), confirm=False)
    again = tw.tune_model(small_bert, path, "c -cores=1", trials=16, tuner="random",
                          measure=fake(devices=3), confirm=False)
    assert again.resumed == sum(u.trials for u in first.units)
    assert sum(u.trials for u in again.units) == sum(u.trials for u in first.units) + 16
    assert trials_in(path) == sum(u.trials for u in again.units)


def test_on_a_farm_a_runner_that_raises_stops_the_run(small_bert, tmp_path):
    """What a runner raises on its thread (a farm whose devices all left) reaches the
    caller, and what landed before it stays stored."""
    calls = []

    def cost(config):
        calls.append(config.index)
        if len(calls) > 30:
            raise TilewiseError("every device left the farm")
        return 1e-4

    option = at.measure_option(at.FakeBuilder(), at.FakeFarmRunner(cost, devices=2))
    with pytest.raises(TilewiseError, match="every device left"):
        tw.tune_model(small_bert, tmp_path / "t.db", "c -cores=1", trials=100,
                      tuner="random", measure=option, generated=False, confirm=False)
    assert 0 < trials_in(tmp_path / "t.db") <= 30


def test_the_tuned_records_reach_the_compiled_model(small_bert, tmp_path):
    path = tmp_path / "t.db"
    tw.tune_model(small_bert, path, "c -cores=1", trials=8, tuner="random", measure=fake())
    compiled = tw.compile_model(small_bert, db=str(path), target="c -cores=1")
    assert all(k["tuned"] for k in compiled.manifest["kernels"] if k["task"] is not None)


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "time budget"),
    (dict(trials=0), "at least 1"),
    (dict(budget_s=-1), "positive"),
    (dict(trials=8, tuner="best"), "unknown tuner"),
    (dict(trials=8, scheduler="fastest"), "unknown scheduler"),
    (dict(trials=8, target="cuda"), "models compile for 'c' targets"),
])
def test_mistakes_are_one_clear_error(small_bert, tmp_path, kwargs, message):
    kwargs = {"target": "c -cores=1", **kwargs}
    with pytest.raises(TilewiseError, match=message):
        tw.tune_model(small_bert, tmp_path / "t.db", measure=fake(), **kwargs)


@pytest.mark.parametrize("runner", ["FakeRunner(cost)", "FakeFarmRunner(cost, devices=2)"])
def test_a_killed_run_loses_no_finished_round(tmp_path, runner):
    """SIGKILL in the middle of a model (here, or with two tasks' rounds in flight on a
    farm): every batch stored before it is resumed."""
    path = tmp_path / "t.db"
    script = textwrap.dedent(f"""
        import time, tilewise as tw
        from tilewise import autotune as at, models
        def cost(config):
            time.sleep(0.05)
            return 1e-4 * (1 + config.index % 13)
        option = at.measure_option(at.FakeBuilder(), at.{runner})
        tw.tune_model(models.build("bert_layer", **{SMALL_BERT!r}), {str(path)!r},
                      "c -cores=1", trials=10_000, tuner="random", measure=option,
                      progress=lambda report, left: print(report.trials, flush=True))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    while int(proc.stdout.readline() or 10_000) < 24:  # a few rounds stored
        pass
    proc.kill()
    proc.wait()
    stored = trials_in(path)
    assert stored >= 24
    report = tw.tune_model(models.build("bert_layer", **SMALL_BERT), path, "c -cores=1",
                           trials=8, tuner="random", measure=fake())
    assert report.resumed == stored
