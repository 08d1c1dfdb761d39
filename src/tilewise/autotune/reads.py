"""What a template reads of a config, remembered so that it need not run again.

A template is a deterministic function of the knob values it reads: which knob it
reads next depends only on the values read before it. So each instantiation is a
path through a tree whose nodes are knobs and whose branches are their choices, and
it ends where the template returned (the knobs on the path are all it read: configs
that agree on them build one kernel) or refused the config. A config whose path was
walked before is answered from the tree, without running the template: annealing asks
this of thousands of configs per plan, most of them refused (gemm-512: about four in
five of the configs annealing visits), and each costs the template's compute
definition and part of its schedule (about a millisecond) where the walk costs
microseconds.

Example::

    made, trace = task.trace(config)      # runs the template, remembers the path
    task.known_trace(twin)                # the same Trace, for a config on that path
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tilewise.autotune.constraints import Constraint, check
from tilewise.autotune.space import ConfigEntity


@dataclass(frozen=True)
class Trace:
    """One instantiation's path: the knobs the template read, in the order first read,
    with the choice (index into the knob's values) it found; why it refused, if so.
    ``whole``: it looked at the config as a whole (its index or every entity), so
    every knob counts as read and the path says nothing about other configs."""

    steps: tuple[tuple[str, int], ...]
    refusal: str | None = None
    whole: bool = False

    @property
    def read(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.steps)


@dataclass
class _Branch:
    knob: str
    next: dict[int, _Branch | Trace] = field(default_factory=dict)


class ReadTree:
    """The paths of one task's instantiations (see the module's docstring).

    Paths that disagree (two configs with the same choices on the knobs read so far,
    yet a different knob read next) mean that the template reads something besides the
    config's knobs; the tree then forgets everything and stays empty.
    """

    def __init__(self) -> None:
        self._root: _Branch | Trace | None = None
        self.broken = False

    def lookup(self, digits: Sequence[int], positions: dict[str, int]) -> Trace | None:
        """The trace of the config with choices ``digits`` (one per knob, at
        ``positions[name]``) if its path was walked, else None."""
        node = self._root
        while isinstance(node, _Branch):
            node = node.next.get(digits[positions[node.knob]])
        return node

    def add(self, trace: Trace) -> None:
        if self.broken or trace.whole:
            return
        if self._root is None:
            self._root = _chain(trace, 0)
            return
        node = self._root
        for depth, (knob, digit) in enumerate(trace.steps):
            if not isinstance(node, _Branch) or node.knob != knob:
                self._break()
                return
            child = node.next.get(digit)
            if child is None:
                node.next[digit] = _chain(trace, depth + 1)
                return
            node = child
        if not isinstance(node, Trace) or (node.refusal is None) != (trace.refusal is None):
            self._break()

    def _break(self) -> None:
        self._root, self.broken = None, True


def _chain(trace: Trace, depth: int) -> _Branch | Trace:
    """The branches for ``trace``'s steps from ``depth`` on, ending in the trace."""
    node: _Branch | Trace = trace
    for knob, digit in reversed(trace.steps[depth:]):
        node = _Branch(knob, {digit: node})
    return node


class ReadingConfig:
    """A config that notes the knobs read from it, in order (:meth:`Task.trace`)."""

    def __init__(self, config: ConfigEntity, digits: Sequence[int],
                 positions: dict[str, int]) -> None:
        self._config = config
        self._digits = digits
        self._positions = positions
        self.steps: list[tuple[str, int]] = []
        self._read: set[str] = set()
        self.whole = False

    def __getitem__(self, name: str) -> Any:
        entity = self._config[name]  # raises for a knob the space lacks
        if name not in self._read:
            self._read.add(name)
            self.steps.append((name, self._digits[self._positions[name]]))
        return entity

    def require(self, knobs: Sequence[str], valid: Callable[..., bool],
                why: str | Callable[..., str]) -> None:
        """As :meth:`ConfigBase.require`: reads the knobs it checks."""
        check(Constraint(tuple(knobs), valid, why), self.__getitem__)

    def __getattr__(self, attr: str) -> Any:
        if attr in ("entities", "as_dict", "index", "to_json"):
            self.whole = True
        return getattr(self._config, attr)
