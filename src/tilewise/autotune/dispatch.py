"""Dispatch: make templates return their best tuned schedule.

Inside ``with apply_history_best(db):`` a task (or ``dispatch(name, *args, target=...)``)
is instantiated with its best record's config; a workload without records uses the
template's fallback config and warns. The context is an explicit object; ``with`` only
makes it the default for code that does not pass one.

Example::

    with apply_history_best(db) as ctx:
        s, tensors = dispatch("gemm", 512, 512, 512, target="c")
"""

from __future__ import annotations

import contextvars
import warnings
from collections.abc import Sequence
from typing import Any

from tilewise.autotune.database import Database
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task, TaskKey
from tilewise.errors import TuningError


class FallbackConfigWarning(UserWarning):
    """A workload has no tuning record; its template's fallback config is used."""


class HistoryBest:
    """Answers "which config for this task?" from a database, caching the answers."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._cache: dict[TaskKey, ConfigEntity] = {}
        self._token: contextvars.Token[HistoryBest | None] | None = None

    def query(self, task: Task) -> ConfigEntity:
        """The best recorded config of ``task``, else its fallback (with a warning)."""
        key = task.key
        if key not in self._cache:
            self._cache[key] = self._lookup(task)
        return self._cache[key]

    def _lookup(self, task: Task) -> ConfigEntity:
        space = task.config_space
        record = self.database.best(task)
        config = space.lookup(record.config) if record is not None else None
        if config is not None:
            return config
        warnings.warn(
            f"no tuning record for {task}; using the template's fallback config",
            FallbackConfigWarning,
            stacklevel=4,
        )
        return space.fallback

    def __enter__(self) -> HistoryBest:
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None


# The context entered by ``with`` (per thread / async task), never set otherwise.
_ACTIVE: contextvars.ContextVar[HistoryBest | None] = contextvars.ContextVar(
    "tilewise_dispatch_context", default=None
)


def apply_history_best(database: Database) -> HistoryBest:
    """A dispatch context over ``database``; use it with ``with`` or pass it explicitly."""
    return HistoryBest(database)


def best_config(task: Task, context: HistoryBest | None = None) -> ConfigEntity:
    """The config ``task`` dispatches to in ``context`` (default: the active one)."""
    context = context if context is not None else _ACTIVE.get()
    if context is None:
        warnings.warn(
            f"no dispatch context for {task}; using the template's fallback config",
            FallbackConfigWarning,
            stacklevel=3,
        )
        return task.config_space.fallback
    return context.query(task)


def dispatch(
    name: str, *args: Any, target: str = "c", context: HistoryBest | None = None
) -> tuple[Any, Sequence[Any]]:
    """Instantiate template ``name`` for ``args`` with its best config: (schedule, tensors)."""
    if not name:
        raise TuningError("dispatch needs a template name")
    task = Task(name, args, target)
    return task.instantiate(best_config(task, context))
