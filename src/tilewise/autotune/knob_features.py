"""Feature extraction for cost models: the FeatureExtractor contract, the knob-value
extractor, and the resolver from a name ("knob" or "ir") to an extractor for a task.

Example::

    extract = KnobFeatureExtractor(space)
    extract([0, 5, 9]).shape                          # (3, n_features): one row per config
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from tilewise.autotune.space import ConfigSpace
from tilewise.errors import TuningError

if TYPE_CHECKING:
    from tilewise.autotune.task import Task


@runtime_checkable
class FeatureExtractor(Protocol):
    """Maps config indices of one task's space to a float matrix, one row per config."""

    def __call__(self, indices: Sequence[int]) -> np.ndarray: ...


class KnobFeatureExtractor:
    """Per knob: the choice's position, then the entity's numeric form (log2 of split
    factors, permutation, annotation codes, a numeric knob value)."""

    def __init__(self, space: ConfigSpace) -> None:
        self.space = space
        self._tables = [self._table(k) for k in space.knobs]

    @staticmethod
    def _table(knob) -> np.ndarray:  # type: ignore[no-untyped-def]
        rows = [e.features() for e in knob.entities]
        if len({len(r) for r in rows}) != 1:  # mixed value types: position only
            rows = [() for _ in rows]
        return np.array([(float(i), *r) for i, r in enumerate(rows)], dtype=np.float64).reshape(
            len(knob), -1
        )

    def __call__(self, indices: Sequence[int]) -> np.ndarray:
        digits = self.space.digit_matrix(list(indices))
        width = sum(t.shape[1] for t in self._tables)
        if not len(digits) or not self._tables:
            return np.zeros((len(digits), width))
        return np.concatenate([t[digits[:, j]] for j, t in enumerate(self._tables)], axis=1)


FeatureSpec = str | Callable[["Task"], FeatureExtractor]


def make_feature_extractor(spec: FeatureSpec, task: Task) -> FeatureExtractor:
    """``"knob"``, ``"ir"`` (loop-IR features, from :mod:`tilewise.autotune.features`), or
    a factory ``task -> FeatureExtractor``."""
    if callable(spec):
        return spec(task)
    if spec == "knob":
        return KnobFeatureExtractor(task.config_space)
    if spec == "ir":
        try:
            from tilewise.autotune.features import IRFeatureExtractor  # type: ignore
        except ImportError as err:
            raise TuningError(f"loop-IR features are not available ({err}); use 'knob'") from None
        return IRFeatureExtractor(task)
    raise TuningError(f"unknown feature kind {spec!r} (expected 'knob' or 'ir')")
