"""Transfer: a ModelTuner seeded with other workloads' records plans its first batch
from the model, and ranks within each workload only."""

import numpy as np
import pytest

from tilewise import autotune as at
from tilewise.autotune.tuners.cost_model import LightGBMCostModel
from tilewise.errors import TuningError


def test_groups_rank_within_each_workload():
    rng = np.random.default_rng(0)
    x = rng.random((200, 3))
    # Two workloads whose throughputs differ by 1000x but share the same ranking rule.
    y = 1.0 + x[:, 0]
    groups = np.repeat([0, 1], 100)
    y[groups == 1] *= 1000
    model = LightGBMCostModel(seed=0, n_estimators=30)
    model.fit(x, y, groups)
    test = rng.random((50, 3))
    pred = model.predict(test)
    assert np.corrcoef(pred, test[:, 0])[0, 1] > 0.7


def test_transfer_needs_ir_features(tmp_path):
    from tests.autotune import toy_templates  # noqa: F401

    task = at.Task("toy_matmul", (64, 64))
    with pytest.raises(TuningError, match="feature='ir'"):
        at.ModelTuner(task, feature="knob", transfer=at.Database(tmp_path / "t.db"))


def test_prior_skips_records_of_an_older_template(tmp_path):
    """A record whose index now names another config (its template's space changed
    since) is not featurised as that other config."""
    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise.autotune import ConfigEntity
    from tilewise.autotune.record import MeasureInput, MeasureResult, Record
    from tilewise.autotune.tuners.model_tuner import _prior_data

    db = at.Database(tmp_path / "t.db")
    other = at.Task("gemm", (32, 32, 32), "c")
    space = other.config_space
    moved = ConfigEntity(index=0, entities=space.get(1).entities)
    db.add_batch(Record.of(MeasureInput(other, c), MeasureResult(costs=(1e-3,)))
                 for c in (space.get(0), moved))
    prior = _prior_data(db, at.Task("gemm", (64, 64, 64), "c"), "ir")
    assert prior.x.shape[0] == 1
