"""What a template reads of a config: the oracle for its declared conditions. A knob
the template does not read builds the same kernel whatever its choice, so it must be
one whose condition says it does not matter there."""

from __future__ import annotations

from typing import Any

from tilewise.autotune.constraints import Constraint, check
from tilewise.target import Target


class _Reading:
    """A config that notes the knobs the template builds with (a constraint's check
    reads knobs too, but checking is not building)."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.read.add(name)
        return self._config[name]

    def require(self, knobs, valid, why) -> None:  # type: ignore[no-untyped-def]
        check(Constraint(tuple(knobs), valid, why), self._config.__getitem__)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._config, attr)


def knobs_read(task, config) -> frozenset[str]:  # type: ignore[no-untyped-def]
    """The knobs ``task``'s template reads when it builds ``config``."""
    reading = _Reading(config.for_target(Target.from_str(task.target)))
    task.template.func(reading, *task.args)
    return frozenset(reading.read)


def idle_knobs(task, index: int) -> frozenset[str]:  # type: ignore[no-untyped-def]
    """The knobs that do not matter at config ``index`` by the space's declarations:
    those :meth:`ConfigSpace.canonical` moves to their fallback choice once changed."""
    space = task.config_space
    vector = space.knob_index_vector(index)
    idle = set()
    for pos, knob in enumerate(space.knobs):
        for digit in range(len(knob)):
            other = space.index_of([*vector[:pos], digit, *vector[pos + 1:]])
            if digit != vector[pos] and space.canonical_index(other) == index:
                idle.add(knob.name)
                break
    return frozenset(idle)


def pinned_knobs(task, index: int) -> frozenset[str]:  # type: ignore[no-untyped-def]
    """The knobs whose every other choice breaks a declared constraint at config
    ``index``: the space offers one choice of them there."""
    space = task.config_space
    vector = space.knob_index_vector(index)
    pinned = set()
    for pos, knob in enumerate(space.knobs):
        others = [space.index_of([*vector[:pos], d, *vector[pos + 1:]])
                  for d in range(len(knob)) if d != vector[pos]]
        if others and not space.valid(others).any():
            pinned.add(knob.name)
    return frozenset(pinned)
