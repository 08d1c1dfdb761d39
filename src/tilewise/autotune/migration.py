"""Reading what tilewise 0.1 stored (tuning-database schema 1 and its JSON lines).

Its task keys held the args as the caller spelt them (``gemm(512, 512, 512)`` from
Python, ``gemm(512, 512, 512, 'float32')`` from the command) and a target string that
named only ``-mcpu`` and ``-cores``; its configs carried their index in the space.
:func:`upgrade` gives such a record today's target string, from the description stored
beside it, once, as the file is opened or imported; :func:`legacy_keys` names the
spellings of a task's args that a 0.1 caller may have stored it under, which only the
template's signature can tell, so they are looked up where a task is asked for.
"""

from __future__ import annotations

import dataclasses
import inspect

from tilewise.autotune.record import Record
from tilewise.autotune.task import Task, TaskKey
from tilewise.errors import TargetError
from tilewise.target import Target


def upgrade(record: Record) -> Record:
    """``record`` with its key's target string as today's tilewise writes it: a 0.1
    string (no ``-isa``) becomes :meth:`Target.from_legacy` of the stored description."""
    key = record.task_key
    if key.target.split()[:1] != ["c"] or "-isa=" in key.target:
        return record
    try:
        target = str(Target.from_legacy(key.target, record.target))
    except TargetError:
        return record  # a string no tilewise wrote: kept as it is
    return dataclasses.replace(record, task_key=TaskKey(key.name, key.args, target))


def legacy_keys(task: Task) -> list[TaskKey]:
    """The keys tilewise 0.1 may have stored ``task`` under besides its own: its args
    with trailing arguments left out where they equal their defaults."""
    params = list(inspect.signature(task.template.func).parameters.values())[1:]
    if len(params) != len(task.args) or any(p.kind is p.VAR_POSITIONAL for p in params):
        return []
    out = []
    for n in range(len(params) - 1, -1, -1):
        p = params[n]
        if p.default is p.empty or _frozen(p.default) != task.args[n]:
            break
        out.append(TaskKey(task.name, task.args[:n], task.target))
    return out


def _frozen(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value
