"""Measurement data: what was measured, how the build and the run went, and the record
that the database keeps (one JSON line per record).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

from tilewise.autotune.space import ConfigEntity
from tilewise.autotune.task import Task, TaskKey


class ErrorKind(Enum):
    """Which stage failed; a failed config counts as infinitely slow."""

    NONE = 0
    INSTANTIATION = 1  # the template rejected the config or raised
    COMPILE = 2  # code generation or the C compiler failed
    RUNTIME = 3  # the kernel crashed (signal, bad exit) or raised while running
    TIMEOUT = 4  # build or run exceeded its time limit
    WRONG_ANSWER = 5  # the kernel's output differs from the NumPy reference


@dataclass(frozen=True)
class MeasureInput:
    """One candidate: a task and a config of its space."""

    task: Task
    config: ConfigEntity


@dataclass(frozen=True)
class BuildResult:
    """A built kernel (``artifact``), or why there is none."""

    artifact: Any = None
    error: ErrorKind = ErrorKind.NONE
    error_msg: str = ""
    build_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is ErrorKind.NONE


@dataclass(frozen=True)
class MeasureResult:
    """Timings of one candidate in seconds (one per repeat), or its error."""

    costs: tuple[float, ...] = ()
    error: ErrorKind = ErrorKind.NONE
    error_msg: str = ""
    build_s: float = 0.0
    run_s: float = 0.0
    timestamp: float = field(default_factory=time.time)
    device: str = ""  # the farm worker that measured it ("" for this machine)

    def __post_init__(self) -> None:
        object.__setattr__(self, "costs", tuple(float(c) for c in self.costs))

    @property
    def ok(self) -> bool:
        return self.error is ErrorKind.NONE and bool(self.costs)

    @property
    def rejected(self) -> bool:
        """The template refused the config: nothing was built or run (no trial spent)."""
        return self.error is ErrorKind.INSTANTIATION

    @property
    def mean(self) -> float:
        """Mean cost in seconds; infinite for a failed candidate."""
        return sum(self.costs) / len(self.costs) if self.ok else math.inf

    def to_json(self) -> dict[str, Any]:
        return {
            "costs": list(self.costs),
            "error": self.error.name,
            "error_msg": self.error_msg,
            "build_s": self.build_s,
            "run_s": self.run_s,
            "timestamp": self.timestamp,
            **({"device": self.device} if self.device else {}),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MeasureResult:
        return cls(
            costs=tuple(obj["costs"]),
            error=ErrorKind[obj["error"]],
            error_msg=obj.get("error_msg", ""),
            build_s=float(obj.get("build_s", 0.0)),
            run_s=float(obj.get("run_s", 0.0)),
            timestamp=float(obj["timestamp"]),
            device=str(obj.get("device", "")),
        )


@cache
def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tilewise")
    except PackageNotFoundError:
        return "0+unknown"


@cache
def describe_target(target: str) -> dict[str, Any]:
    """The core's description of a target, or just its string before the core exists."""
    try:
        from tilewise.target import Target
    except ImportError:
        return {"target": target}
    return dict(Target.from_str(target).describe())


@dataclass(frozen=True)
class Record:
    """One measured config of one task, as stored and exchanged.

    The config is stored as knob names and values, never as a position in the space
    (a record read back has index -1 until a space places it:
    :meth:`~tilewise.autotune.space.ConfigSpace.place`), with the template's version
    and the knobs left at the template's fallback (``at_fallback``: a knob removed
    since still fits where it chose what the template now does without asking).
    """

    task_key: TaskKey
    config: ConfigEntity
    result: MeasureResult
    version: str
    target: dict[str, Any] = field(compare=False, hash=False)
    template_version: int = 1
    at_fallback: frozenset[str] = frozenset()

    @classmethod
    def of(cls, inp: MeasureInput, result: MeasureResult) -> Record:
        task = inp.task
        fallback = task.config_space.fallback.as_dict()
        kept = frozenset(n for n, e in inp.config.entities if fallback.get(n) == e)
        return cls(task.key, inp.config, result, tool_version(), describe_target(task.target),
                   task.template.version, kept)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task_key.to_json(),
            "config": {"entities": self.config.values_json(),
                       "at_fallback": sorted(self.at_fallback)},
            "template_version": self.template_version,
            "result": self.result.to_json(),
            "version": self.version,
            "target": self.target,
        }

    def to_line(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Record:
        """A record from :meth:`to_json`, or from tilewise 0.1, whose configs carried
        an index (dropped: it named a position in a space that may have changed) and
        no template version (read as 1, what every template was then)."""
        config = obj["config"]
        return cls(
            task_key=TaskKey.from_json(obj["task"]),
            config=ConfigEntity.from_json({"entities": config["entities"]}),
            result=MeasureResult.from_json(obj["result"]),
            version=obj["version"],
            target=obj.get("target", {}),
            template_version=int(obj.get("template_version", 1)),
            at_fallback=frozenset(config.get("at_fallback", ())),
        )

    @classmethod
    def from_line(cls, line: str) -> Record:
        return cls.from_json(json.loads(line))

    def placed(self, task_key: TaskKey, config: ConfigEntity) -> Record:
        """This record as read for a task of today: its key as ``task_key`` and its
        config as ``config`` (the same values, with their index in today's space)."""
        return dataclasses.replace(self, task_key=task_key, config=config)
