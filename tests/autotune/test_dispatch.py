"""apply_history_best: the best record's config, or the fallback with a warning."""

import warnings

import pytest
import toy_templates  # noqa: F401
from toy_templates import bowl_cost

from tilewise.autotune import (
    Database,
    FakeBuilder,
    FakeRunner,
    FallbackConfigWarning,
    MeasureOption,
    RandomTuner,
    Task,
    apply_history_best,
    dispatch,
)


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
