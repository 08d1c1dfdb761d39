"""Cost models: the CostModel contract and a LightGBM lambdarank ranker of throughput
(LightGBM's native training API: the same model as ``LGBMRanker``, without scikit-learn).

Example::

    model = LightGBMCostModel(seed=0)
    model.fit(features, throughputs); model.predict(features[:3])
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from tilewise.errors import TuningError

#: LightGBM's default label gains cover relevance labels 0..30.
_MAX_LABEL = 30
#: LightGBM limits the rows of one ranking query; larger sets are split into queries.
_MAX_QUERY = 5000


@runtime_checkable
class CostModel(Protocol):
    """Learns to rank configs: higher predictions mean faster configs."""

    @property
    def trained(self) -> bool: ...

    def fit(
        self, features: np.ndarray, throughputs: np.ndarray, groups: np.ndarray | None = None
    ) -> None:
        """Learn from measured configs; ``groups`` names the workload of each row, so
        throughputs are compared only within a workload (transfer across tasks)."""
        ...

    def predict(self, features: np.ndarray) -> np.ndarray: ...


def relevance_labels(throughputs: np.ndarray, n_buckets: int = _MAX_LABEL) -> np.ndarray:
    """Throughput / best throughput, binned into ``0..n_buckets`` (failed configs are 0)."""
    y = np.asarray(throughputs, dtype=np.float64)
    best = float(y.max()) if y.size else 0.0
    if best <= 0:
        return np.zeros(y.shape, dtype=np.int32)
    return np.clip(np.floor(y / best * n_buckets), 0, n_buckets).astype(np.int32)


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise TuningError(
            "ModelTuner needs LightGBM: pip install 'lightgbm>=4' (or use RandomTuner)"
        ) from None
    return lightgbm


class LightGBMCostModel:
    """A LightGBM ranker (lambdarank objective) on binned normalised throughput."""

    def __init__(
        self,
        seed: int = 0,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        n_buckets: int = _MAX_LABEL,
    ) -> None:
        if not 1 <= n_buckets <= _MAX_LABEL:
            raise TuningError(f"n_buckets must be in 1..{_MAX_LABEL}")
        self.seed = seed
        self.n_buckets = n_buckets
        self.n_estimators = n_estimators
        self.params = dict(
            objective="lambdarank",
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_data_in_leaf=2,
            min_data_in_bin=1,
            seed=seed,
            deterministic=True,
            force_row_wise=True,
            num_threads=1,
            verbose=-1,
        )
        self._model: Any = None

    @property
    def trained(self) -> bool:
        return self._model is not None

    def fit(
        self, features: np.ndarray, throughputs: np.ndarray, groups: np.ndarray | None = None
    ) -> None:
        y = np.asarray(throughputs, dtype=np.float64)
        g = np.zeros(len(y), dtype=np.int64) if groups is None else np.asarray(groups)
        order = np.argsort(g, kind="stable")  # LightGBM wants each query contiguous
        x, y, g = np.asarray(features, dtype=np.float64)[order], y[order], g[order]
        labels = np.zeros(len(y), dtype=np.int32)
        sizes: list[int] = []
        for group in np.unique(g):
            rows = np.flatnonzero(g == group)
            labels[rows] = relevance_labels(y[rows], self.n_buckets)
            n = len(rows)
            sizes += [min(_MAX_QUERY, n - start) for start in range(0, n, _MAX_QUERY)]
        if len(labels) < 2 or labels.max() == labels.min():
            return  # nothing to rank yet; keep the previous model (or none)
        lgb = _lightgbm()
        data = lgb.Dataset(
            x,
            label=labels,
            group=sizes,
            params={"verbose": -1},
            free_raw_data=True,
        )
        self._model = lgb.train(self.params, data, num_boost_round=self.n_estimators)

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise TuningError("predict() before the cost model was fit")
        return np.asarray(self._model.predict(np.asarray(features, dtype=np.float64)))
