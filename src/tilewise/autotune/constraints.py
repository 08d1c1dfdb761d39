"""What a template declares on its knobs: which combinations of values it builds
(constraints), and which knobs matter only under others (conditions).

A template says, once, in terms of knob values (and the workload's own numbers, which
its predicate closes over), what it would otherwise refuse while scheduling::

    cfg.require(("stream_b", "pack"), lambda stream_b, pack: not stream_b or pack == "none",
                "streaming B reads it in place")

The space evaluates a constraint without running the template: once per combination of
its knobs' choices, into a table, so that checking a batch of configs is a lookup per
constraint (:meth:`Constraints.valid`). Sampling, annealing's steps and the tuners then
visit valid configs only; a chosen config that breaks one is refused with its reason
when the template runs it (:func:`check`).

A condition names a knob that the template reads only on some paths::

    cfg.conditional("unroll_k", ("kernel",), lambda kernel: kernel == "loops")

Elsewhere every choice of it builds one kernel. The space then offers each kernel
once: where a knob does not matter it takes its fallback choice (the config is
*canonical*), and configs that differ only there are one config
(:meth:`Conditions.canonical`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tilewise.autotune.knobs import Entity, Knob, KnobKind
from tilewise.errors import InvalidConfigError, TuningError

#: A constraint's knobs may have at most this many combinations (its table's size).
MAX_TABLE = 1 << 20


@dataclass(frozen=True)
class Constraint:
    """``valid(*values)`` of the knobs ``knobs`` (each a ``cfg[name].val``, or the
    entity of a split, reorder or annotate knob); ``why`` says what breaks it (or
    ``why(*values)`` does, naming the values)."""

    knobs: tuple[str, ...]
    valid: Callable[..., bool]
    why: str | Callable[..., str]

    def holds(self, entities: Sequence[Entity]) -> bool:
        return bool(self.valid(*(knob_value(e) for e in entities)))

    def reason(self, entities: Sequence[Entity]) -> str:
        if isinstance(self.why, str):
            return self.why
        return self.why(*(knob_value(e) for e in entities))


def knob_value(entity: Entity) -> Any:
    """What a predicate is given for a knob: an option's value, else the entity."""
    return entity.val if entity.kind is KnobKind.OTHER else entity


def check(constraint: Constraint, read: Callable[[str], Entity]) -> None:
    """Raise :class:`InvalidConfigError` where the config that ``read`` reads from breaks
    ``constraint`` (the template's refusal, with the declared reason)."""
    entities = [read(name) for name in constraint.knobs]
    if not constraint.holds(entities):
        raise InvalidConfigError(constraint.reason(entities))


class Constraints:
    """The constraints of one space, with each one's table of valid digit combinations."""

    def __init__(self) -> None:
        self._items: list[Constraint] = []
        self._tables: list[tuple[np.ndarray, np.ndarray]] | None = None

    def add(self, constraint: Constraint, knobs: Mapping[str, Knob]) -> None:
        missing = [n for n in constraint.knobs if n not in knobs]
        if missing:
            raise TuningError(f"a constraint names knob(s) {missing} not defined before it")
        combos = math.prod(len(knobs[n]) for n in constraint.knobs)
        if combos > MAX_TABLE:
            raise TuningError(f"the constraint on {constraint.knobs} spans {combos} "
                              f"combinations (at most {MAX_TABLE})")
        if constraint not in self._items:
            self._items.append(constraint)
            self._tables = None

    def forget_tables(self) -> None:
        """A knob was (re)defined: the tables are rebuilt when next asked for."""
        self._tables = None

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self):
        return iter(self._items)

    def tables(self, knobs: Sequence[Knob]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per constraint: the positions of its knobs in ``knobs`` and a boolean table
        indexed by their digits."""
        if self._tables is None:
            pos = {k.name: i for i, k in enumerate(knobs)}
            tables = []
            for c in self._items:
                involved = [knobs[pos[n]] for n in c.knobs]
                table = np.zeros([len(k) for k in involved], dtype=bool)
                for digits in np.ndindex(*table.shape):
                    table[digits] = c.holds([k.entities[d] for k, d in zip(involved, digits,
                                                                           strict=True)])
                tables.append((np.array([pos[n] for n in c.knobs], dtype=np.int64), table))
            self._tables = tables
        return self._tables

    def valid(self, digits: np.ndarray, knobs: Sequence[Knob]) -> np.ndarray:
        """Which rows of ``digits`` (configs as knob digits, one row each) break no
        constraint."""
        ok = np.ones(len(digits), dtype=bool)
        for positions, table in self.tables(knobs):
            ok &= table[tuple(digits[:, positions].T)]
        return ok

    def broken(self, vector: Sequence[int], knobs: Sequence[Knob]) -> str | None:
        """The reason of the first constraint that the config ``vector`` breaks."""
        for c, (positions, table) in zip(self._items, self.tables(knobs), strict=True):
            digits = [int(vector[p]) for p in positions]
            if not table[tuple(digits)]:
                return c.reason([knobs[p].entities[d] for p, d in zip(positions, digits,
                                                                      strict=True)])
        return None


@dataclass(frozen=True)
class Condition:
    """Knob ``knob`` matters only where ``when(*values)`` of the knobs ``on`` holds
    (where a knob has several conditions, only where all of them hold)."""

    knob: str
    on: tuple[str, ...]
    when: Callable[..., bool]


class Conditions:
    """The conditions of one space, with each one's table of where its knob matters."""

    def __init__(self) -> None:
        self._items: list[Condition] = []
        self._tables: list[tuple[int, np.ndarray, np.ndarray]] | None = None

    def add(self, condition: Condition, knobs: Mapping[str, Knob]) -> None:
        named = (condition.knob, *condition.on)
        missing = [n for n in named if n not in knobs]
        if missing:
            raise TuningError(f"a condition names knob(s) {missing} not defined before it")
        if condition.knob in condition.on:
            raise TuningError(f"knob {condition.knob!r} cannot be conditional on itself")
        combos = math.prod(len(knobs[n]) for n in condition.on)
        if combos > MAX_TABLE:
            raise TuningError(f"the condition on {condition.on} spans {combos} "
                              f"combinations (at most {MAX_TABLE})")
        if condition not in self._items:
            self._items.append(condition)
            self._tables = None

    def forget_tables(self) -> None:
        self._tables = None

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self):
        return iter(self._items)

    def tables(self, knobs: Sequence[Knob]) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Per condition: its knob's position in ``knobs``, the positions of the knobs
        it depends on, and a boolean table (indexed by their digits) of where it
        matters."""
        if self._tables is None:
            pos = {k.name: i for i, k in enumerate(knobs)}
            tables = []
            for c in self._items:
                involved = [knobs[pos[n]] for n in c.on]
                table = np.zeros([len(k) for k in involved], dtype=bool)
                for digits in np.ndindex(*table.shape):
                    table[digits] = bool(c.when(*(knob_value(k.entities[d]) for k, d in
                                                  zip(involved, digits, strict=True))))
                tables.append((pos[c.knob], np.array([pos[n] for n in c.on], dtype=np.int64),
                               table))
            self._tables = tables
        return self._tables

    def canonical(self, digits: np.ndarray, knobs: Sequence[Knob],
                  rest: Sequence[int]) -> np.ndarray:
        """``digits`` (configs as knob digits, one row each) with every knob that does
        not matter set to its digit in ``rest`` (the fallback's). Conditions apply in
        the order declared, so one may depend on a knob that is itself conditional."""
        out = np.array(digits, dtype=np.int64, copy=True)
        for knob, on, table in self.tables(knobs):
            idle = ~table[tuple(out[:, on].T)]
            out[idle, knob] = rest[knob]
        return out


__all__ = ["Condition", "Conditions", "Constraint", "Constraints", "MAX_TABLE", "check",
           "knob_value"]
