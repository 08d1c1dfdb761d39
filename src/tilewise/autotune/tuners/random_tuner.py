"""RandomTuner: configs drawn uniformly from the space, without repeats."""

from __future__ import annotations

from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.tuners.base import Tuner


class RandomTuner(Tuner):
    """>>> RandomTuner(task, seed=1).tune(32, option)   # doctest: +SKIP"""

    def next_batch(self, n: int) -> list[ConfigEntity]:
        return self._propose(self.space.sample(n, self.rng, exclude=self.seen))
