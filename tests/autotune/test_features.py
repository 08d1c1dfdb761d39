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


def test_rows_answered_without_lowering_are_the_rows_lowered_afresh():
    """A config that differs from its kernel's only in knobs that do not matter takes
    that config's row, one that breaks a declared constraint the invalid row, without
    running the template: the same rows as a fresh task lowers."""
    task = gemm_task()
    space = task.config_space
    loops = space.with_choices(space.fallback, kernel="loops", stream_c=False, kc=0,
                               pack_prefetch=0)
    assert space.is_offered(loops.index)
    other_k = [e.val for e in space.knob("unroll_k").entities if e.val != loops["unroll_k"].val]
    kinds = [e.val for e in space.knob("kernel").entities]
    twins = [space.with_choices(loops, kernel=kinds[-1], unroll_k=u).index for u in other_k]
    broken = next(i for i in range(space.size) if not space.is_valid(i))
    indices = [space.canonical_index(twins[0]), *twins, broken,
               *space.sample(20, np.random.default_rng(3))]
    extract = IRFeatureExtractor(task, workers=1)
    got = extract(indices)
    assert all(extract._known(i) is not None for i in [*twins, broken])
    for index, row in zip(indices, got, strict=True):
        np.testing.assert_array_equal(row, IRFeatureExtractor(gemm_task(), workers=1)([index])[0])


def test_only_the_most_recently_used_extractors_keep_their_workers():
    """A network's tuners each have an extractor: beyond ``WARM_POOLS``, the workers of
    the one used longest ago are stopped, and started again when it is next used."""
    from tilewise.autotune import features

    extractors = [IRFeatureExtractor(at.Task("gemm", (8 * (i + 1), 16, 16), "c"),
                                     workers=2) for i in range(features.WARM_POOLS + 1)]
    rng = np.random.default_rng(4)
    for extract in extractors:
        extract(extract.task.config_space.sample(4, rng))
    assert extractors[0]._pool is None
    assert all(e._pool is not None for e in extractors[1:])
    first = extractors[0]
    rows = first(first.task.config_space.sample(4, rng))
    assert first._pool is not None and extractors[1]._pool is None
    assert rows.shape == (4, feature_width() + 1)
    for extract in extractors:
        extract.close()
    assert all(e._pool is None for e in extractors)
