"""apply_history_best: the best record's config, or the fallback with a warning; among
templates implementing one another, the fastest record."""

import warnings

import pytest
import toy_templates  # noqa: F401
from toy_templates import alt_cost, bowl_cost

from tilewise.autotune import (
    Database,
    FakeBuilder,
    FakeRunner,
    FallbackConfigWarning,
    MeasureOption,
    RandomTuner,
    Task,
    apply_history_best,
    best_implementation,
    dispatch,
    implementations,
    template,
)
from tilewise.errors import UnknownTemplateError


@pytest.fixture
def tuned_db(tmp_path):
    db = Database(tmp_path / "t.db")
    task = Task("toy_matmul", (256, 256))
    RandomTuner(task, 0).tune(32, MeasureOption(FakeBuilder(), FakeRunner(bowl_cost)), database=db)
    return db


def test_best_record_is_dispatched(tuned_db):
    task = Task("toy_matmul", (256, 256))
    best = tuned_db.best(task).config
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with apply_history_best(tuned_db):
            cfg, _ = task.instantiate_best()
            cfg2, _ = dispatch("toy_matmul", 256, 256, target="c")
    assert cfg.index == best.index == cfg2.index


def test_explicit_context(tuned_db):
    task = Task("toy_matmul", (256, 256))
    ctx = apply_history_best(tuned_db)
    cfg, _ = task.instantiate_best(ctx)
    assert cfg.index == tuned_db.best(task).config.index


def test_unknown_workload_falls_back_with_a_warning(tuned_db):
    with apply_history_best(tuned_db), pytest.warns(FallbackConfigWarning):
        cfg, _ = dispatch("toy_matmul", 64, 64)
    assert cfg["tile_y"].size == (-1, 4) and cfg["unroll"].val == 2  # the template's fallback


def test_no_context_falls_back(tuned_db):
    with pytest.warns(FallbackConfigWarning):
        cfg, _ = Task("toy_matmul", (256, 256)).instantiate_best()
    assert cfg == Task("toy_matmul", (256, 256)).config_space.fallback


# -- templates implementing another: dispatch picks the fastest record --------------------

def tune_alt(db, n=256, m=256):
    task = Task("toy_matmul_alt", (n, m))
    RandomTuner(task, 0).tune(4, MeasureOption(FakeBuilder(), FakeRunner(alt_cost)), database=db)


def test_implementations_are_the_template_and_those_that_apply():
    assert [t.name for t in implementations("toy_matmul")] == ["toy_matmul", "toy_matmul_alt"]
    assert [t.name for t in Task("toy_matmul", (256, 256)).implementations()] == [
        "toy_matmul", "toy_matmul_alt"]
    assert [t.name for t in Task("toy_matmul", (256, 128)).implementations()] == ["toy_matmul"]
    # an implementation dispatches to itself only
    assert [t.name for t in Task("toy_matmul_alt", (256, 256)).implementations()] == [
        "toy_matmul_alt"]


def test_dispatch_picks_the_implementation_whose_record_ran_fastest(tuned_db):
    task = Task("toy_matmul", (256, 256))
    assert tuned_db.best(task).result.mean >= 1e-3  # the bowl's floor
    tune_alt(tuned_db)
    alt = Task("toy_matmul_alt", (256, 256))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with apply_history_best(tuned_db):
            cfg, _ = dispatch("toy_matmul", 256, 256)
            chosen, config = best_implementation(task)
            own, _ = task.instantiate_best()  # the task's own template still
    assert chosen == alt and cfg["alt"].val == config["alt"].val == 1
    assert own.index == tuned_db.best(task).config.index


def test_a_slower_implementation_is_not_picked(tmp_path):
    db = Database(tmp_path / "t.db")
    tune_alt(db)
    task = Task("toy_matmul", (256, 256))
    RandomTuner(task, 0).tune(4, MeasureOption(FakeBuilder(), FakeRunner(lambda c: 1e-4)),
                              database=db)
    chosen, config = apply_history_best(db).choose(task)
    assert chosen == task and config.index == db.best(task).config.index


def test_untuned_the_implementation_that_asks_runs_first(tmp_path):
    ctx = apply_history_best(Database(tmp_path / "empty.db"))
    with pytest.warns(FallbackConfigWarning, match="toy_matmul_alt"):
        chosen, config = ctx.choose(Task("toy_matmul", (256, 256)))
    assert chosen.name == "toy_matmul_alt" and config["alt"].val == 3
    with pytest.warns(FallbackConfigWarning, match=r"toy_matmul\(128"):
        chosen, _ = ctx.choose(Task("toy_matmul", (128, 128)))  # it does not ask there
    assert chosen.name == "toy_matmul"
    with pytest.warns(FallbackConfigWarning, match="no dispatch context"):
        cfg, _ = dispatch("toy_matmul", 512, 512)
    assert cfg["alt"].val == 3


def test_a_template_cannot_implement_itself():
    with pytest.raises(UnknownTemplateError, match="itself"):
        template("toy_loop", implements="toy_loop")
