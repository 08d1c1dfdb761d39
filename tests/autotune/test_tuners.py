"""Every tuner end to end with the fake builder and runner: exact counts, no repeats,
reproducible, better than where it started; resume from a database."""

import numpy as np
import pytest
import toy_templates
from toy_templates import bowl_cost

from tilewise.autotune import (
    Database,
    ErrorKind,
    FakeBuilder,
    FakeRunner,
    GATuner,
    GridSearchTuner,
    MeasureInput,
    MeasureOption,
    MeasureResult,
    ModelTuner,
    RandomTuner,
    Record,
    ReplayRunner,
    Task,
)
from tilewise.autotune.tuners import AnnealingOptions
from tilewise.autotune.tuners.base import REJECTIONS_PER_TRIAL
from tilewise.errors import TuningError

TUNERS = {
    "random": lambda task, seed: RandomTuner(task, seed),
    "grid": lambda task, seed: GridSearchTuner(task, seed),
    "ga": lambda task, seed: GATuner(task, seed, pop_size=16, elite_num=2),
    "model": lambda task, seed: ModelTuner(
        task, seed, plan_size=8, annealing=AnnealingOptions(n_iter=40, parallel_size=32)
    ),
}


def task():
    return Task("toy_matmul", (256, 256), "c")


def option(runner=None, batch_size=8):
    return MeasureOption(FakeBuilder(), runner or FakeRunner(bowl_cost), batch_size)


@pytest.mark.parametrize("name", TUNERS)
def test_exact_count_no_duplicates_reproducible(name):
    runs = []
    for _ in range(2):
        runner = FakeRunner(bowl_cost)
        tuner = TUNERS[name](task(), 7)
        summary = tuner.tune(60, option(runner))
        assert summary.measured == 60 and summary.errors == 0
        assert len(runner.measured) == 60 == len(set(runner.measured))
        assert summary.best_cost == min(
            bowl_cost(task().config_space.get(i)) for i in runner.measured
        )
        assert summary.best_flops == pytest.approx(task().flop / summary.best_cost)
        runs.append(runner.measured)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", TUNERS)
def test_each_kernel_is_measured_once(name, tmp_path):
    """Configs that differ only in a knob declared not to matter on their path build
    the same kernel: each kernel is measured once, here and after a resume from the
    database, and a record of such a config (an older database's) counts as its
    kernel's."""
    paths = Task("toy_paths", (3,), "c")
    space = paths.config_space
    db = Database(tmp_path / "t.db")
    twin = space.with_choices(space.fallback, path="plain", detail=3, size=6)
    db.add(Record.of(MeasureInput(paths, twin), MeasureResult((5e-3,))))
    runner = FakeRunner(toy_templates.paths_cost)
    first = TUNERS[name](paths, 1).tune(4, option(runner, batch_size=2), database=db)
    again = TUNERS[name](paths, 2).tune(16, option(runner, batch_size=2), database=db)
    kernels = [paths.instantiate(space.get(i))[0] for i in runner.measured]
    assert len(kernels) == len(set(kernels)) == 9  # 2 plain + 2 x 4 detailed, one recorded
    assert ("plain", 6) not in kernels
    assert first.resumed == 1 and again.resumed == 1 + first.measured
    assert first.measured + again.measured == 9 == len(db.records(paths)) - 1


@pytest.mark.parametrize("name", TUNERS)
def test_batches_asked_for_before_any_result_cover_the_space_once(name):
    """A tuner asked with nothing learnt between proposes each config the space offers
    once (one per kernel), then nothing."""
    paths = Task("toy_paths", (3,), "c")
    space = paths.config_space
    tuner = TUNERS[name](paths, 0)
    proposed = [c.index for _ in range(20) for c in tuner.next_batch(3)]
    offered = [i for i in range(space.size) if space.is_offered(i)]
    assert sorted(proposed) == offered and len(offered) == 10
    assert tuner.next_batch(3) == []


def test_the_model_tuner_plans_each_kernel_once():
    paths = Task("toy_paths", (3,), "c")
    tuner = ModelTuner(paths, 0, plan_size=8, n_initial=2, diversity=0,
                       annealing=AnnealingOptions(n_iter=40, parallel_size=8))
    tuner.tune(4, option(FakeRunner(toy_templates.paths_cost), batch_size=2))
    tuner.next_batch(0)  # plans are made when a batch is asked for: the last results'
    assert tuner.plan
    kernels = [paths.instantiate(paths.config_space.get(i))[0] for i in tuner.plan]
    measured = {paths.instantiate(paths.config_space.get(i))[0] for i in tuner.measured}
    assert len(set(kernels)) == len(kernels) and not measured & set(kernels)


def test_the_model_tuners_plans_do_not_run_dry():
    """Where most of a space is configs of kernels already measured, the plans still
    hold new kernels (the model tuner otherwise only samples at random, and meets the
    template's refusals at their rate)."""
    twins = Task("toy_twins", (64,), "c")
    lengths = []

    class Recording(ModelTuner):
        def _refit_and_plan(self):
            super()._refit_and_plan()
            lengths.append(len(self.plan))

    annealing = AnnealingOptions(n_iter=40, parallel_size=32)
    tuner = Recording(twins, 0, plan_size=8, annealing=annealing)
    summary = tuner.tune(60, option(FakeRunner(toy_templates.twins_cost), batch_size=4))
    assert summary.measured == 60 and len(lengths) > 10
    assert np.median(lengths) >= 4, lengths


@pytest.mark.parametrize("name", ["random", "ga", "model"])
def test_improves_on_the_first_batch(name):
    runner = FakeRunner(bowl_cost)
    TUNERS[name](task(), 1).tune(96, option(runner))
    costs = [bowl_cost(task().config_space.get(i)) for i in runner.measured]
    assert min(costs) < min(costs[:8])


def test_seeds_differ():
    a, b = FakeRunner(bowl_cost), FakeRunner(bowl_cost)
    RandomTuner(task(), 1).tune(10, option(a))
    RandomTuner(task(), 2).tune(10, option(b))
    assert a.measured != b.measured


def test_grid_search_covers_a_small_space_once():
    t = Task("toy_invalid", (16,))
    runner = FakeRunner(lambda cfg: 1.0 + cfg.index)
    summary = GridSearchTuner(t).tune(1000, option(runner))
    assert summary.measured + summary.rejected == t.config_space.size == 10
    assert summary.rejected == 5 and summary.errors == 0  # bad=True: refused, not measured
    assert sorted(runner.measured) == [i for i in range(10) if not t.config_space.get(i)["bad"].val]


@pytest.mark.parametrize("name", TUNERS)
def test_invalid_configs_are_recorded_and_skipped(name, tmp_path):
    t = Task("toy_invalid", (5040,))  # 60 valid configs, 60 rejected
    db = Database(tmp_path / "t.db")
    runner = FakeRunner(lambda c: 1.0)
    summary = TUNERS[name](t, 0).tune(20, option(runner), database=db)
    kinds = [r.result.error for r in db.records(t)]
    assert set(kinds) <= {ErrorKind.NONE, ErrorKind.INSTANTIATION}
    # rejected configs are recorded but spend no trial: 20 were measured
    assert summary.measured == 20 == kinds.count(ErrorKind.NONE) == len(runner.measured)
    assert summary.rejected == kinds.count(ErrorKind.INSTANTIATION)
    assert summary.rejected > 0 or name == "grid"  # the grid meets bad=True only after all 60
    assert summary.errors == 0


def test_a_template_that_rejects_everything_still_ends():
    """Rejections spend no trial, but at most REJECTIONS_PER_TRIAL * n_trial of them
    are taken."""
    t = Task("toy_invalid", (5040,))
    space = t.config_space
    tuner = RandomTuner(t, 0)
    tuner.seen.update(i for i in range(space.size) if not space.get(i)["bad"].val)
    summary = tuner.tune(1, option(FakeRunner(lambda c: 1.0)))  # only bad configs left
    cap = REJECTIONS_PER_TRIAL
    assert summary.measured == 0 and cap < summary.rejected <= cap + 8


def test_runtime_errors_count_as_infinitely_slow():
    def cost(cfg):
        return ErrorKind.RUNTIME if cfg["unroll"].val == 4 else bowl_cost(cfg)

    tuner = RandomTuner(task(), 0)
    summary = tuner.tune(40, option(FakeRunner(cost)))
    assert summary.errors > 0 and summary.best_config["unroll"].val != 4


def test_early_stopping_and_callbacks():
    seen = []
    summary = RandomTuner(task(), 0).tune(
        500,
        option(FakeRunner(lambda cfg: 1.0)),  # flat: nothing improves after the first batch
        early_stopping=16,
        callbacks=[lambda tuner, inputs, results: seen.append(len(results))],
    )
    assert summary.measured == 24 and seen == [8, 8, 8]


@pytest.mark.parametrize("name", TUNERS)
def test_resume_measures_nothing_twice(name, tmp_path):
    db = Database(tmp_path / "t.db")
    first = FakeRunner(bowl_cost)
    TUNERS[name](task(), 0).tune(24, option(first), database=db)
    second = FakeRunner(bowl_cost)
    summary = TUNERS[name](task(), 0).tune(24, option(second), database=db)
    assert summary.resumed == 24 and summary.measured == 24
    assert not set(first.measured) & set(second.measured)
    assert db.measured_indices(task()) == set(first.measured) | set(second.measured)
    # the resumed tuner knows the earlier best
    assert summary.best_cost == min(
        bowl_cost(task().config_space.get(i)) for i in db.measured_indices(task())
    )


def test_replay_runner_reproduces_a_run(tmp_path):
    db = Database(tmp_path / "t.db")
    runner = FakeRunner(bowl_cost)
    a = RandomTuner(task(), 3).tune(16, option(runner), database=db)
    b = RandomTuner(task(), 3).tune(16, option(ReplayRunner(db.records(task()))))
    assert a.best_config == b.best_config and a.best_cost == b.best_cost


def trials_to_optimum(tuner, limit):
    optimum = min(
        range(task().config_space.size), key=lambda i: bowl_cost(task().config_space.get(i))
    )
    runner = FakeRunner(bowl_cost)
    tuner.tune(limit, option(runner), early_stopping=None, callbacks=[lambda t, i, r: None])
    return runner.measured.index(optimum) + 1 if optimum in runner.measured else limit + 1


@pytest.mark.slow
def test_model_tuner_beats_random():
    limit = 400
    model = [trials_to_optimum(TUNERS["model"](task(), s), limit) for s in range(3)]
    rand = [trials_to_optimum(RandomTuner(task(), s), limit) for s in range(3)]
    assert np.mean(model) < np.mean(rand) / 2, (model, rand)


def test_ga_starts_from_the_best_after_resume(tmp_path):
    db = Database(tmp_path / "t.db")
    RandomTuner(task(), 0).tune(32, option(), database=db)
    tuner = GATuner(task(), 0, pop_size=16)
    tuner.resume(db)
    assert len(tuner.next_batch(8)) == 8


def test_toy_module_is_registered():
    """The toy templates are registered under the module name child processes import."""
    template = task().template
    assert template.func is toy_templates.toy_matmul
    assert template.module == "toy_templates" == task().template_module


def test_feature_extractor_is_pluggable():
    from tilewise.autotune import KnobFeatureExtractor
    from tilewise.autotune.features import IRFeatureExtractor
    from tilewise.errors import TuningError

    calls = []

    def factory(t):
        inner = KnobFeatureExtractor(t.config_space)

        def extract(indices):
            calls.append(len(indices))
            return inner(indices)

        return extract

    runner = FakeRunner(bowl_cost)
    ModelTuner(task(), 0, feature=factory, plan_size=8).tune(24, option(runner))
    assert calls and len(set(runner.measured)) == 24
    assert isinstance(ModelTuner(task(), 0, feature="ir").extract, IRFeatureExtractor)
    with pytest.raises(TuningError, match="unknown feature kind 'nope'"):
        ModelTuner(task(), 0, feature="nope")


def test_model_tuner_measures_the_fallback_first_once():
    """The template's fallback is a known good point: the model tuner measures it in
    its first batch, and not again after a resume."""
    fallback = task().config_space.fallback.index
    runner = FakeRunner(bowl_cost)
    ModelTuner(task(), 3, plan_size=8).tune(8, option(runner))
    assert runner.measured[0] == fallback
    db = Database(":memory:")
    ModelTuner(task(), 3, plan_size=8).tune(8, option(), database=db)
    again = FakeRunner(bowl_cost)
    tuner = ModelTuner(task(), 3, plan_size=8)
    tuner.resume(db)
    tuner.tune(8, option(again), database=db)
    assert fallback not in again.measured and len(again.measured) == 8


class _SlowRunner(FakeRunner):
    """Each measurement takes 2 ms of wall time, as if it built and ran something."""

    def run(self, inputs, builds):
        import time

        time.sleep(0.002 * len(inputs))
        return super().run(inputs, builds)


def test_the_summary_splits_the_search_time_into_measuring_and_the_tuners_own_work():
    summary = RandomTuner(task(), 0).tune(16, option(_SlowRunner(bowl_cost)))
    assert summary.seconds >= summary.measure_s >= 16 * 0.002
    assert summary.tuner_s == pytest.approx(summary.seconds - summary.measure_s)


def test_the_model_tuners_planning_stops_at_its_share_of_the_search(monkeypatch):
    """With ``overhead``, annealing is given a deadline: the plan's share of what
    measuring the trials it plans for costs at the rate measured so far."""
    import tilewise.autotune.tuners.model_tuner as mt

    deadlines = []
    real = mt.anneal

    def spy(*args, deadline=None, **kwargs):
        deadlines.append(deadline)
        return real(*args, deadline=deadline, **kwargs)

    monkeypatch.setattr(mt, "anneal", spy)
    tuner = ModelTuner(task(), 0, plan_size=8, overhead=0.2,
                       annealing=AnnealingOptions(n_iter=40, parallel_size=32))
    tuner.tune(24, option(_SlowRunner(bowl_cost)))
    assert deadlines and all(d is not None for d in deadlines)
    per_trial = tuner.measure_wall_s / tuner.measure_trials
    assert per_trial >= 0.002
    with pytest.raises(TuningError, match="overhead"):
        ModelTuner(task(), 0, overhead=1.5)


def test_the_model_tuners_defaults_bound_only_the_costly_features():
    """Loop-IR features lower every config they score, so their planning is held to a
    share of the search by default; knob features cost microseconds and plan alike on
    every run of a seed. The model plans after one batch either way."""
    from tilewise.autotune.tuners.model_tuner import IR_PLAN_OVERHEAD, N_INITIAL

    assert ModelTuner(task(), 0, feature="ir").overhead == IR_PLAN_OVERHEAD
    assert ModelTuner(task(), 0, feature="knob").overhead is None
    assert ModelTuner(task(), 0, feature="ir", overhead=None).overhead is None
    assert ModelTuner(task(), 0, overhead=0.3).overhead == 0.3
    assert ModelTuner(task(), 0).n_initial == N_INITIAL
    assert ModelTuner(task(), 0, plan_size=4).n_initial == 4
    for bad in ("often", True, 0, 1):
        with pytest.raises(TuningError, match="overhead must be a share"):
            ModelTuner(task(), 0, overhead=bad)


def test_annealing_starts_no_step_it_expects_to_overrun_its_deadline(monkeypatch):
    """A step is expected to take as long as the one before: with each scoring taking
    one second of a fake clock and 2.5 s to the deadline, the chains' first scoring and
    one step run, and the second step (which would end at 3 s) does not start."""
    from types import SimpleNamespace

    import tilewise.autotune.tuners.sa as sa

    clock = [0.0]
    monkeypatch.setattr(sa, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    space = task().config_space
    calls = []

    def score(indices):
        calls.append(len(indices))
        clock[0] += 1.0
        return np.zeros(len(indices))

    options = AnnealingOptions(n_iter=50, parallel_size=4, early_stop=100)
    sa.anneal(space, score, num=4, exclude=(), rng=np.random.default_rng(0),
              options=options, deadline=2.5)
    assert len(calls) == 2
    calls.clear()
    clock[0] = 0.0
    sa.anneal(space, score, num=4, exclude=(), rng=np.random.default_rng(0),
              options=options, deadline=None)
    assert len(calls) == 51


def test_the_model_tuner_plans_when_a_batch_is_asked_for():
    """A network's scheduler measures every task's fallback and may never give a task
    a round: results landing make a plan due, and the next batch makes it."""
    plans = []

    class Counting(ModelTuner):
        def _refit_and_plan(self):
            plans.append(len(self.xs))
            super()._refit_and_plan()

    tuner = Counting(task(), 0, plan_size=8, n_initial=2)
    space = tuner.space
    inputs = [MeasureInput(tuner.task, space.get(i)) for i in space.sample(2, tuner.rng)]
    tuner.update(inputs, [MeasureResult(costs=(1e-3,)), MeasureResult(costs=(2e-3,))])
    assert plans == []
    assert len(tuner.next_batch(2)) == 2 and plans == [2]
