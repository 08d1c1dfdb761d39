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
