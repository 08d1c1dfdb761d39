"""Placing stored records in today's spaces: a record's config is its knob values
(:meth:`~tilewise.autotune.space.ConfigSpace.place` finds them in the space), stored
with its template's version; a record that no longer fits is an :class:`Orphan`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tilewise.autotune.record import Record
from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task


class StaleRecordsWarning(UserWarning):
    """Records of a task no longer fit its template; they are kept but not used."""


@dataclass(frozen=True)
class Orphan:
    """A stored record that today's template cannot place, and why."""

    record: Record
    reason: str


def summary(orphans: Sequence[Orphan]) -> str:
    """``"3 x recorded with template version 1, now 2; 1 x knob 'k' ..."``"""
    return "; ".join(f"{n} x {reason}" for reason, n in
                     Counter(o.reason for o in orphans).most_common())


class Placer:
    """Places stored configs (canonical JSON of a record's ``config``) in one task's
    space of today, each distinct text once: ``(config, "")`` or ``(None, why not)``."""

    def __init__(self, task: Task) -> None:
        self.space = task.config_space
        self.version = task.template.version
        self._done: dict[tuple[str, int], tuple[ConfigEntity | None, str]] = {}

    def __call__(self, config: str, version: int) -> tuple[ConfigEntity | None, str]:
        if (config, version) not in self._done:
            self._done[config, version] = self._place(config, version)
        return self._done[config, version]

    def _place(self, config: str, version: int) -> tuple[ConfigEntity | None, str]:
        if version != self.version:
            return None, f"recorded with template version {version}, now {self.version}"
        obj = json.loads(config)
        stored = ConfigEntity.from_json(obj)
        return self.space.place(stored.entities, obj.get("at_fallback", ()))
