"""Loop-IR features: rows lowered in worker processes are the rows lowered here."""

import pickle

import numpy as np

import tilewise.ops  # noqa: F401  (registers the templates)
from tilewise import autotune as at
from tilewise.autotune.features import IRFeatureExtractor, feature_width


def gemm_task():
    return at.Task("gemm", (12, 48, 20, "float32"), "c")


def test_rows_lowered_in_workers_match_rows_lowered_here():
    task = gemm_task()
    space = task.config_space
    # the fallback, which the template accepts, among indices drawn past the space's
    # declared constraints, most of which it refuses
    drawn = np.random.default_rng(0).integers(len(space), size=23)
    indices = [space.fallback.index, *drawn.tolist()]
    here = IRFeatureExtractor(task, workers=1)(indices)
    pooled = IRFeatureExtractor(gemm_task(), workers=2)  # a task whose tree knows nothing
    got = pooled(indices)
    assert pooled._pool is not None  # the call did go to the workers
    assert got.shape == (24, feature_width() + 1)
    np.testing.assert_array_equal(got, here)
    # the sample holds configs the template rejects, and they are flagged in both
    assert 0 < got[:, -1].sum() < 24


def test_a_single_unknown_config_is_lowered_here():
    task = gemm_task()
    extract = IRFeatureExtractor(task, workers=2)
    extract([task.config_space.fallback.index])
    assert extract._pool is None


def test_a_pickled_extractor_carries_neither_pool_nor_cache():
    task = gemm_task()
    extract = IRFeatureExtractor(task, workers=2)
    extract(task.config_space.sample(16, np.random.default_rng(2)))
    copy = pickle.loads(pickle.dumps(extract))
    assert copy._pool is None and copy._cache == {} and copy.workers == 2


def test_rows_answered_from_the_read_tree_are_the_rows_lowered_afresh():
    """Twins of a lowered kernel take its row, configs on a refused path the invalid
    row, without running the template: the same rows as a fresh task lowers."""
    task, finder = gemm_task(), gemm_task()
    space = task.config_space
    # which knobs a kernel leaves unread depends on the target's vector width (on AVX2
    # the fallback has twins, on AVX-512 it reads every knob), so the config with twins
    # is looked for, by another task: this one's tree starts empty
    sampled = map(space.get, space.sample(3000, np.random.default_rng(3)))
    accepted = (c for c in [space.fallback, *sampled] if finder.trace(c)[0] is not None)
    kernel, twins = next((c, t) for c in accepted if (t := space.twins(c, finder.knobs_read(c))))
    indices = [kernel.index, *twins, *space.sample(40, np.random.default_rng(3))]
    extract = IRFeatureExtractor(task, workers=1)
    got = extract(indices)
    assert twins and all(extract._known(i) is not None for i in twins)
    for index, row in zip(indices, got, strict=True):
        np.testing.assert_array_equal(row, IRFeatureExtractor(gemm_task(), workers=1)([index])[0])
