"""Transfer: a ModelTuner seeded with other workloads' records plans its first batch
from the model, and ranks within each workload only."""

import numpy as np
import pytest
import toy_templates  # noqa: F401  (registers the toy templates, as every test module does)

from tilewise import autotune as at
from tilewise.autotune.record import ErrorKind, MeasureInput, MeasureResult, Record
from tilewise.autotune.tuners import AnnealingOptions
from tilewise.autotune.tuners.cost_model import LightGBMCostModel
from tilewise.errors import InvalidConfigError, TuningError
from tw_testing import accepted_configs


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
    task = at.Task("toy_matmul", (64, 64))
    with pytest.raises(TuningError, match="feature='ir'"):
        at.ModelTuner(task, feature="knob", transfer=at.Database(tmp_path / "t.db"))


def test_prior_skips_records_of_an_older_template(tmp_path):
    """A record whose knob values the template no longer offers (its space changed
    since) is not featurised; one stored with another index is placed by its values."""
    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise.autotune import ConfigEntity
    from tilewise.autotune.record import MeasureInput, MeasureResult, Record
    from tilewise.autotune.tuners.model_tuner import _prior_data

    db = at.Database(tmp_path / "t.db")
    other = at.Task("gemm", (32, 32, 32), "c")
    space = other.config_space
    moved = ConfigEntity(index=0, entities=space.get(1).entities)
    name, _ = space.get(2).entities[-1]
    gone = ConfigEntity(index=2, entities=(*space.get(2).entities[:-1],
                                           (name, at.OtherOptionEntity("no such value"))))
    db.add_batch(Record.of(MeasureInput(other, c), MeasureResult(costs=(1e-3,)))
                 for c in (space.get(0), moved, gone))
    with pytest.warns(at.StaleRecordsWarning, match="1 records of gemm"):
        prior = _prior_data(db, at.Task("gemm", (64, 64, 64), "c"), "ir")
    assert prior.x.shape[0] == 2


def _refused(task: at.Task, n: int) -> list[Record]:
    """Records of ``n`` random configs of ``task`` that its template refuses."""
    space, out = task.config_space, []
    for index in space.sample(40 * n, np.random.default_rng(1)):
        try:
            task.instantiate(space.get(index))
        except InvalidConfigError as e:
            result = MeasureResult(error=ErrorKind.INSTANTIATION, error_msg=str(e))
            out.append(Record.of(MeasureInput(task, space.get(index)), result))
            if len(out) == n:
                break
    return out


def test_a_model_of_another_workload_plans_the_first_batch():
    """Records of gemm 64x64x64 alone, where packing A made a kernel 4x slower and
    most configs were refused, train the model that plans gemm 96x48x80's first batch
    before anything of it is measured: beside the fallback, only configs the template
    accepts and that leave A in place, where a random accepted config packs A about
    half the time."""
    import tilewise.ops  # noqa: F401  (registers the templates)

    def packs_a(config) -> bool:
        return bool(config["pack_a"].val)

    source = at.Task("gemm", (64, 64, 64), "c")
    db = at.Database(":memory:")
    db.add_batch([Record.of(MeasureInput(source, c),
                            MeasureResult(costs=(1e-3 * (4 if packs_a(c) else 1),)))
                  for c in accepted_configs(source, 40, seed=0, max_draws=4000)])
    db.add_batch(_refused(source, 40))
    task = at.Task("gemm", (96, 48, 80), "c")
    tuner = at.ModelTuner(task, 0, feature="ir", transfer=db, plan_size=8, epsilon=0.0,
                          annealing=AnnealingOptions(n_iter=60, parallel_size=16,
                                                     early_stop=25))
    batch = tuner.next_batch(6)
    assert tuner.model.trained and not tuner.xs  # learnt from the other workload only
    space = task.config_space
    assert batch[0].index == space.fallback.index
    planned = [*batch[1:], *(space.get(i) for i in tuner.plan)]
    assert len(planned) == 8
    for config in planned:
        task.instantiate(config)  # accepted: the model learnt what gets refused
    assert sum(map(packs_a, planned)) <= 1
    assert 5 <= sum(map(packs_a, accepted_configs(task, 20, seed=5))) <= 15


def test_each_record_is_featurised_once_for_all_the_tuners_of_a_database(monkeypatch):
    """A network's tuners all transfer from one database: the records are lowered for
    their features once in the process, and the records added since, once more."""
    import tilewise.ops  # noqa: F401  (registers the templates)
    from tilewise.autotune.tuners import model_tuner

    lowered = []
    real = model_tuner._featurised

    def counting(key, records):
        lowered.extend(records)
        return real(key, records)

    monkeypatch.setattr(model_tuner, "_featurised", counting)
    source = at.Task("gemm", (32, 32, 32), "c")
    configs = accepted_configs(source, 6, seed=0, max_draws=2000)
    db = at.Database(":memory:")
    db.add_batch(Record.of(MeasureInput(source, c), MeasureResult(costs=(1e-3,)))
                 for c in configs[:4])
    first = model_tuner._prior_data(db, at.Task("gemm", (64, 64, 64), "c"), "ir")
    second = model_tuner._prior_data(db, at.Task("gemm", (48, 48, 48), "c"), "ir")
    assert len(lowered) == 4 and first.x.shape == second.x.shape == (4, first.x.shape[1])
    np.testing.assert_array_equal(first.x, second.x)
    db.add_batch(Record.of(MeasureInput(source, c), MeasureResult(costs=(2e-3,)))
                 for c in configs[4:6])
    third = model_tuner._prior_data(db, at.Task("gemm", (64, 64, 64), "c"), "ir")
    assert len(lowered) == 6 and third.x.shape[0] == 6
    assert model_tuner._prior_data(db, source, "ir").x.shape[0] == 0  # its own records
