"""GridSearchTuner: every config in index order (skipping those already measured)."""

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
            if self._cursor not in self.seen:
                picks.append(self._cursor)
            self._cursor += 1
        return self._propose(picks)
