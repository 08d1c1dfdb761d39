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


class _Tabled:
    """Declarations on a space's knobs, each evaluated once per combination of the
    choices of the knobs it reads (:meth:`_read`) into a boolean table."""

    what = "declaration"

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._tables: list[tuple[np.ndarray, np.ndarray]] | None = None

    def add(self, item: Any, knobs: Mapping[str, Knob]) -> None:
        named = self._named(item)
        missing = [n for n in named if n not in knobs]
        if missing:
            raise TuningError(f"a {self.what} names knob(s) {missing} not defined before it")
        combos = math.prod(len(knobs[n]) for n in self._read(item))
        if combos > MAX_TABLE:
            raise TuningError(f"the {self.what} on {self._read(item)} spans {combos} "
                              f"combinations (at most {MAX_TABLE})")
        if item not in self._items:
            self._items.append(item)
            self.forget_tables()

    def forget_tables(self) -> None:
        """A knob was (re)defined: the tables are rebuilt when next asked for."""
        self._tables = None

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self):
        return iter(self._items)

    def tables(self, knobs: Sequence[Knob]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per declaration: the positions in ``knobs`` of the knobs it reads, and its
        table, indexed by their digits."""
        if self._tables is None:
            pos = {k.name: i for i, k in enumerate(knobs)}
            tables = []
            for item in self._items:
                involved = [knobs[pos[n]] for n in self._read(item)]
                table = np.zeros([len(k) for k in involved], dtype=bool)
                for digits in np.ndindex(*table.shape):
                    table[digits] = self._holds(item, [k.entities[d] for k, d in
                                                       zip(involved, digits, strict=True)])
                tables.append((np.array([pos[n] for n in self._read(item)], dtype=np.int64),
                               table))
            self._tables = tables
        return self._tables

    def _named(self, item: Any) -> tuple[str, ...]:
        return self._read(item)

    def _read(self, item: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def _holds(self, item: Any, entities: Sequence[Entity]) -> bool:
        raise NotImplementedError


class Constraints(_Tabled):
    """The constraints of one space, with each one's table of valid digit combinations."""

    what = "constraint"

    def _read(self, item: Constraint) -> tuple[str, ...]:
        return item.knobs

    def _holds(self, item: Constraint, entities: Sequence[Entity]) -> bool:
        return item.holds(entities)

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


class Conditions(_Tabled):
    """The conditions of one space, with each one's table of where its knob matters."""

    what = "condition"

    def __init__(self) -> None:
        super().__init__()
        self._positions: list[int] | None = None  # each condition's knob, in the space

    def forget_tables(self) -> None:
        super().forget_tables()
        self._positions = None

    def add(self, item: Condition, knobs: Mapping[str, Knob]) -> None:
        if item.knob in item.on:
            raise TuningError(f"knob {item.knob!r} cannot be conditional on itself")
        super().add(item, knobs)

    def _named(self, item: Condition) -> tuple[str, ...]:
        return (item.knob, *item.on)

    def _read(self, item: Condition) -> tuple[str, ...]:
        return item.on

    def _holds(self, item: Condition, entities: Sequence[Entity]) -> bool:
        return bool(item.when(*(knob_value(e) for e in entities)))

    def canonical(self, digits: np.ndarray, knobs: Sequence[Knob],
                  rest: Sequence[int]) -> np.ndarray:
        """``digits`` (configs as knob digits, one row each) with every knob that does
        not matter set to its digit in ``rest`` (the fallback's). Conditions apply in
        the order declared, so one may depend on a knob that is itself conditional."""
        out = np.array(digits, dtype=np.int64, copy=True)
        tables = self.tables(knobs)
        if self._positions is None:
            pos = {k.name: i for i, k in enumerate(knobs)}
            self._positions = [pos[item.knob] for item in self._items]
        for knob, (on, table) in zip(self._positions, tables, strict=True):
            idle = ~table[tuple(out[:, on].T)]
            out[idle, knob] = rest[knob]
        return out


__all__ = ["Condition", "Conditions", "Constraint", "Constraints", "MAX_TABLE", "check",
           "knob_value"]
