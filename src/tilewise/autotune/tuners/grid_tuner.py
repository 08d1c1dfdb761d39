"""GridSearchTuner: every config the space offers, in index order (skipping those
already measured)."""

from __future__ import annotations

from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task
from tilewise.autotune.tuners.base import Tuner


class GridSearchTuner(Tuner):
    """>>> GridSearchTuner(task).tune(len(task.config_space), option)   # doctest: +SKIP"""

    def __init__(self, task: Task, seed: int = 0) -> None:
        super().__init__(task, seed)
        self._cursor = 0

    def next_batch(self, n: int) -> list[ConfigEntity]:
        picks: list[int] = []
        size = self.space.size
        while len(picks) < n and self._cursor < size:
            # In chunks: most of a space may be configs it does not offer.
            chunk = range(self._cursor, min(size, self._cursor + max(n, 1024)))
            offered = self.space.offered(chunk).tolist()
            for index, ok in zip(chunk, offered, strict=True):
                self._cursor = index + 1
                if ok and index not in self.seen:
                    picks.append(index)
                    if len(picks) == n:
                        break
        return self._propose(picks)
