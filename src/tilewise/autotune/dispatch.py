"""Dispatch: make templates return their best tuned schedule.

Inside ``with apply_history_best(db):`` a task (or ``dispatch(name, *args, target=...)``)
is instantiated with its best record's config; a workload without records uses the
template's fallback config and warns. The context is an explicit object; ``with`` only
makes it the default for code that does not pass one.

Example::

    with apply_history_best(db) as ctx:
        s, tensors = dispatch("gemm", 512, 512, 512, target="c")

Where other templates implement the named one (:func:`~tilewise.autotune.implementations`:
the Winograd convolution for ``conv2d_nchw``), ``dispatch`` picks among those that
compute the arguments: the fastest best record of any of them, else, untuned, the
fallback of the first that asks to run first (``untuned_first``), else the named
template's own.
"""

from __future__ import annotations

import contextvars
import warnings
from collections.abc import Sequence
from typing import Any

from tilewise.autotune.database import Database
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task, TaskKey, get_template
from tilewise.errors import TuningError


class FallbackConfigWarning(UserWarning):
    """A workload has no tuning record; its template's fallback config is used."""


class HistoryBest:
    """Answers "which config for this task?" from a database, caching the answers."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._cache: dict[TaskKey, ConfigEntity] = {}
        self._chosen: dict[TaskKey, tuple[Task, ConfigEntity]] = {}
        self._token: contextvars.Token[HistoryBest | None] | None = None

    def query(self, task: Task) -> ConfigEntity:
        """The best recorded config of ``task``, else its fallback (with a warning)."""
        key = task.key
        if key not in self._cache:
            self._cache[key] = self._lookup(task)
        return self._cache[key]

    def choose(self, task: Task) -> tuple[Task, ConfigEntity]:
        """Of ``task`` and the tasks of templates implementing its own
        (:meth:`Task.implementations`), the one whose best record ran fastest, with
        that config; with no records, the fallback of the first whose template runs
        first untuned, else ``task``'s own (with a warning)."""
        key = task.key
        if key not in self._chosen:
            self._chosen[key] = self._pick(task)
        return self._chosen[key]

    def _pick(self, task: Task) -> tuple[Task, ConfigEntity]:
        options = task.implementations()
        best: tuple[float, Task, ConfigEntity] | None = None
        for option in options:  # the first of equally fast records wins
            seconds, config = self._recorded(option)
            if config is not None and (best is None or seconds < best[0]):
                best = (seconds, option, config)
        if best is not None:
            return best[1], best[2]
        first = untuned_choice(options)
        return first, _fallback(first, "no tuning record", stacklevel=5)

    def _recorded(self, task: Task) -> tuple[float, ConfigEntity | None]:
        """The best record's mean seconds and config (placed in the task's space of
        today by its knob values; None without a record that still fits)."""
        record = self.database.best(task)
        if record is None:
            return 0.0, None
        return record.result.mean, record.config

    def _lookup(self, task: Task) -> ConfigEntity:
        _, config = self._recorded(task)
        return config if config is not None else _fallback(task, "no tuning record",
                                                           stacklevel=5)

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
        return _fallback(task, "no dispatch context", stacklevel=4)
    return context.query(task)


def _fallback(task: Task, why: str, stacklevel: int) -> ConfigEntity:
    """``task``'s fallback config, with a :class:`FallbackConfigWarning` saying ``why``
    (``stacklevel`` counted from here)."""
    warnings.warn(f"{why} for {task}; using the template's fallback config",
                  FallbackConfigWarning, stacklevel=stacklevel)
    return task.config_space.fallback


def best_implementation(task: Task, context: HistoryBest | None = None
                        ) -> tuple[Task, ConfigEntity]:
    """The task and config that ``task`` dispatches to in ``context`` (default: the
    active one): its own or an implementing template's (:meth:`HistoryBest.choose`)."""
    context = context if context is not None else _ACTIVE.get()
    if context is not None:
        return context.choose(task)
    first = untuned_choice(task.implementations())
    return first, _fallback(first, "no dispatch context", stacklevel=4)


def untuned_choice(options: Sequence[Task]) -> Task:
    """Of a task and its implementations (:meth:`Task.implementations`), the one to
    run untuned: the first implementation whose template asks to run first on its
    arguments, else the task itself."""
    return next((t for t in options[1:] if t.template.untuned_first is not None
                 and t.template.untuned_first(*t.args)), options[0])


def dispatch(
    name: str, *args: Any, target: str = "c", context: HistoryBest | None = None,
    **kwargs: Any,
) -> tuple[Any, Sequence[Any]]:
    """Instantiate template ``name`` for ``args`` (and the template's parameters named
    in ``kwargs``) with its best config, or the template implementing it that ran
    fastest (:func:`best_implementation`): (schedule, tensors). Defaulted arguments may
    be left out or spelt out: the task's key is the same (:meth:`Template.bind`)."""
    if not name:
        raise TuningError("dispatch needs a template name")
    bound = get_template(name).bind(args, kwargs) if kwargs else args
    task, config = best_implementation(Task(name, bound, target), context)
    return task.instantiate(config)
