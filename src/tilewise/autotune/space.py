"""Config spaces and configs: what a template may choose, and one choice of it.

A template is called twice. With a :class:`ConfigSpace` the ``define_*`` calls record
knobs and ``cfg[name]`` returns a default choice so the schedule can still be built; with
a :class:`ConfigEntity` the ``define_*`` calls do nothing and ``cfg[name]`` returns the
chosen entity. The space is the mixed-radix product of its knobs (knob 0 varies fastest):

>>> space = ConfigSpace()
>>> space.define_split("tile", 64)
>>> space.define_knob("unroll", [0, 1])
>>> len(space), space.get(9)["tile"], space.get(9)["unroll"].val
(14, SplitEntity(size=(-1, 4)), 1)
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tilewise.autotune.constraints import Condition, Conditions, Constraint, Constraints, check
from tilewise.autotune.knobs import (
    AnnotatePolicy,
    Entity,
    Knob,
    KnobKind,
    OtherOptionEntity,
    ReorderPolicy,
    SplitEntity,
    SplitPolicy,
    annotate_knob,
    axis_extent,
    entity_from_json,
    entity_to_json,
    other_knob,
    reorder_knob,
    split_knob,
)
from tilewise.errors import TuningError
from tilewise.target import Target

#: Spaces up to this size are sampled by permutation; larger ones by rejection.
_SMALL_SPACE = 1 << 20
#: Spaces up to this size have their indices converted in int64 arithmetic.
_NUMPY_SPACE = 1 << 62
#: Batches of random draws :meth:`ConfigSpace.sample` makes before it gives up.
_DRAW_ROUNDS = 64
#: Draws of a step that breaks no declared constraint, per annealing chain and step.
_NEIGHBOUR_TRIES = 8


class ConfigBase(ABC):
    """The template-facing API shared by the recording space and a chosen config."""

    def define_split(
        self,
        name: str,
        axis: Any,
        num_outputs: int = 2,
        policy: str = "factors",
        candidate: Sequence[Sequence[int]] | None = None,
        max_factor: int | None = None,
    ) -> None:
        """Split ``axis`` (an IterVar or an int extent) into ``num_outputs`` loops."""
        self._define(
            name,
            lambda: split_knob(
                name, axis_extent(axis), num_outputs, SplitPolicy(policy), candidate, max_factor
            ),
        )

    def define_reorder(
        self,
        name: str,
        axes: Sequence[Any],
        policy: str = "all",
        candidate: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        """Choose an order of ``axes``; apply with ``cfg[name].apply(s, T, axes)``."""
        self._define(name, lambda: reorder_knob(name, axes, ReorderPolicy(policy), candidate))

    def define_annotate(self, name: str, axes: Sequence[Any], policy: str = "try_unroll") -> None:
        """Choose unroll / vectorize annotations for ``axes``."""
        self._define(name, lambda: annotate_knob(name, len(axes), AnnotatePolicy(policy)))

    def define_knob(self, name: str, values: Sequence[Any]) -> None:
        """Choose one of ``values``; read it as ``cfg[name].val``."""
        self._define(name, lambda: other_knob(name, values))

    def require(self, knobs: Sequence[str], valid: Callable[..., bool],
                why: str | Callable[..., str]) -> None:
        """Declare that the template builds only configs where ``valid(*values)`` holds
        for the knobs ``knobs`` (defined before): the space then offers no other
        (:mod:`tilewise.autotune.constraints`), and a config that breaks it is refused
        here with ``why`` (or ``why(*values)``)."""
        check(Constraint(tuple(knobs), valid, why), self.__getitem__)

    def conditional(self, knob: str, on: Sequence[str], when: Callable[..., bool]) -> None:
        """Declare that the template reads knob ``knob`` only where ``when(*values)`` of
        the knobs ``on`` (defined before) holds: elsewhere every choice of it builds
        one kernel, and the space offers only its fallback choice there
        (:mod:`tilewise.autotune.constraints`). Nothing to check for a chosen config."""
        return None  # a chosen config: the template reads the knob or not

    @abstractmethod
    def _define(self, name: str, make_knob: Callable[[], Knob]) -> None: ...

    @abstractmethod
    def __getitem__(self, name: str) -> Entity: ...

    @abstractmethod
    def add_flop(self, n: float) -> None:
        """Count ``n`` floating-point operations of the workload (recorded by the space)."""

    @abstractmethod
    def fallback_with(self, **choices: Any) -> None:
        """Name the config to use when no tuning record exists (recorded by the space).

        Values are raw: split sizes as lists, reorder permutations, knob values.
        """

    @property
    @abstractmethod
    def flop(self) -> float: ...

    @property
    def target(self) -> Target:
        """The target the template schedules for (vector lanes, cores, caches); the
        host C target when a template is called outside a Task."""
        return self._target if self._target is not None else Target.from_str("c")


class ConfigSpace(ConfigBase):
    """The recording config: collects knobs while a template runs, then indexes them."""

    def __init__(self, target: Target | None = None) -> None:
        self._target = target
        self._knobs: dict[str, Knob] = {}
        self._flop = 0.0
        self._fallback: dict[str, Any] = {}
        self._positions: dict[str, int] | None = None
        # Kept, not recomputed: annealing converts millions of indices per tuning run.
        self._radices: tuple[int, ...] | None = None
        self._size: int | None = None
        self._constraints = Constraints()
        self._conditions = Conditions()
        self._rest: np.ndarray | None = None  # the fallback's digits, for idle knobs

    # -- recording -----------------------------------------------------------------
    def _define(self, name: str, make_knob: Callable[[], Knob]) -> None:
        knob = make_knob()
        old = self._knobs.get(name)
        if old is not None and old != knob:
            raise TuningError(f"knob {name!r} is defined twice with different choices")
        self._knobs[name] = knob
        self._positions = self._radices = self._size = self._rest = None
        self._constraints.forget_tables()
        self._conditions.forget_tables()

    def require(self, knobs: Sequence[str], valid: Callable[..., bool],
                why: str | Callable[..., str]) -> None:
        self._constraints.add(Constraint(tuple(knobs), valid, why), self._knobs)

    def conditional(self, knob: str, on: Sequence[str], when: Callable[..., bool]) -> None:
        self._conditions.add(Condition(knob, tuple(on), when), self._knobs)

    def __getitem__(self, name: str) -> Entity:
        knob = self.knob(name)
        if name in self._fallback:
            return knob.entities[knob.index_of(_raw_to_entity(knob, self._fallback[name]))]
        return knob.entities[0]

    def add_flop(self, n: float) -> None:
        self._flop += float(n)

    def fallback_with(self, **choices: Any) -> None:
        self._fallback.update(choices)
        self._rest = None

    @property
    def flop(self) -> float:
        return self._flop

    # -- indexing ------------------------------------------------------------------
    @property
    def knobs(self) -> tuple[Knob, ...]:
        return tuple(self._knobs.values())

    @property
    def positions(self) -> dict[str, int]:
        """Each knob's position in :meth:`knob_index_vector`, by name."""
        if self._positions is None:
            self._positions = {name: pos for pos, name in enumerate(self._knobs)}
        return self._positions

    def knob(self, name: str) -> Knob:
        try:
            return self._knobs[name]
        except KeyError:
            raise TuningError(f"no knob named {name!r} in this space") from None

    @property
    def radices(self) -> tuple[int, ...]:
        """The number of choices of each knob, in order: the digits' radices."""
        if self._radices is None:
            self._radices = tuple(len(k) for k in self._knobs.values())
        return self._radices

    @property
    def size(self) -> int:
        """The number of configs (a Python int: it may exceed what ``len`` can return)."""
        if self._size is None:
            self._size = math.prod(self.radices)
        return self._size

    def __len__(self) -> int:
        return self.size

    def knob_index_vector(self, index: int) -> tuple[int, ...]:
        """Per-knob choice indices of config ``index`` (knob 0 is the fastest digit)."""
        size = self.size
        if not 0 <= index < size:
            raise TuningError(f"config index {index} is outside a space of {size}")
        digits = []
        for radix in self.radices:
            index, digit = divmod(index, radix)
            digits.append(digit)
        return tuple(digits)

    def digit_matrix(self, indices: Sequence[int]) -> np.ndarray:
        """:meth:`knob_index_vector` of many configs at once: one row per index."""
        radices, size = self.radices, self.size
        if size > _NUMPY_SPACE:
            return np.array([self.knob_index_vector(int(i)) for i in indices],
                            dtype=np.int64).reshape(len(indices), len(radices))
        x = np.asarray(indices, dtype=np.int64)
        if x.size and (x.min() < 0 or x.max() >= size):
            bad = int(x[(x < 0) | (x >= size)][0])
            raise TuningError(f"config index {bad} is outside a space of {size}")
        sizes = np.array(radices, dtype=np.int64)
        return (x[:, None] // self._strides(sizes)) % sizes

    @staticmethod
    def _strides(sizes: np.ndarray) -> np.ndarray:
        """The index step of one choice of each knob."""
        return np.concatenate(([1], np.cumprod(sizes)[:-1]))[:len(sizes)].astype(np.int64)

    def index_of(self, vector: Sequence[int]) -> int:
        """Inverse of :meth:`knob_index_vector`."""
        index, radix = 0, 1
        for digit, size in zip(vector, self.radices, strict=True):
            index += int(digit) * radix
            radix *= size
        return index

    def get(self, index: int) -> ConfigEntity:
        vector = self.knob_index_vector(int(index))
        entities = tuple(
            (k.name, k.entities[d]) for k, d in zip(self._knobs.values(), vector, strict=True)
        )
        return ConfigEntity(index=int(index), entities=entities, flop_count=self._flop)

    def lookup(self, config: ConfigEntity, at_fallback: Iterable[str] = ()
               ) -> ConfigEntity | None:
        """This space's config with ``config``'s knob values (a config read back from a
        database, or of another space), or None where :meth:`place` cannot say."""
        return self.place(config.entities, at_fallback)[0]

    def place(self, entities: Iterable[tuple[str, Entity]], at_fallback: Iterable[str] = ()
              ) -> tuple[ConfigEntity | None, str]:
        """The config of this space that chooses the knob values ``entities`` (as a
        record stores them, by knob name), with ``""``; or None and why not.

        Values are matched, never positions, so a record outlives a template's edits:
        a knob the record lacks (added since) takes its fallback choice; a value the
        knob no longer offers cannot be placed, nor a record's choice on a knob the
        space no longer has, unless it was that knob's fallback then (``at_fallback``
        names those), which is what the template now does without asking.
        """
        chosen = dict(entities)
        kept = set(at_fallback)
        vector = list(self.knob_index_vector(self.fallback.index))
        for pos, knob in enumerate(self._knobs.values()):
            if knob.name not in chosen:
                continue
            try:
                vector[pos] = knob.index_of(chosen[knob.name])
            except TuningError:
                return None, f"knob {knob.name!r} has no choice {_shown(chosen[knob.name])} now"
        gone = sorted(set(chosen) - set(self._knobs) - kept)
        if gone:
            return None, (f"knob {gone[0]!r} is gone and the record chose "
                          f"{_shown(chosen[gone[0]])}, not its fallback")
        return self.get(self.index_of(vector)), ""

    @property
    def fallback(self) -> ConfigEntity:
        """The template's fallback config, or the first choice of every knob."""
        vector = [
            knob.index_of(_raw_to_entity(knob, self._fallback[knob.name]))
            if knob.name in self._fallback
            else 0
            for knob in self._knobs.values()
        ]
        return self.get(self.index_of(vector))

    def with_choices(self, config: ConfigEntity, **choices: Any) -> ConfigEntity:
        """``config`` with some knobs' choices replaced (knob name -> value, as
        ``fallback_with`` takes them): ``space.with_choices(space.fallback, mr=4)``."""
        unknown = sorted(set(choices) - set(self._knobs))
        if unknown:
            raise TuningError(f"no knob named {', '.join(map(repr, unknown))} in this space "
                              f"(knobs: {', '.join(self._knobs)})")
        vector = list(self.knob_index_vector(config.index))
        for pos, knob in enumerate(self._knobs.values()):
            if knob.name in choices:
                vector[pos] = knob.index_of(_raw_to_entity(knob, choices[knob.name]))
        return self.get(self.index_of(vector))

    # -- constraints and conditions ------------------------------------------------
    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return tuple(self._constraints)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(self._conditions)

    def valid(self, indices: Sequence[int]) -> np.ndarray:
        """Which of ``indices`` break none of the template's declared constraints."""
        if not self._constraints:
            return np.ones(len(indices), dtype=bool)
        return self._constraints.valid(self.digit_matrix(indices), self.knobs)

    def is_valid(self, index: int) -> bool:
        return self.broken(index) is None

    def broken(self, index: int) -> str | None:
        """Why config ``index`` is not built (a declared constraint's reason), or None."""
        if not self._constraints:
            return None
        return self._constraints.broken(self.knob_index_vector(int(index)), self.knobs)

    def canonical(self, indices: Sequence[int]) -> np.ndarray:
        """Each of ``indices`` with the knobs that do not matter there at their
        fallback choice: the config the space offers for the kernel it builds."""
        if not self._conditions or not len(indices):
            return np.array(indices, dtype=self._index_dtype)
        digits = self._conditions.canonical(self.digit_matrix(indices), self.knobs,
                                            self._rest_digits())
        if self.size > _NUMPY_SPACE:
            return np.array([self.index_of(row) for row in digits.tolist()], dtype=object)
        return digits @ self._strides(np.array(self.radices, dtype=np.int64))

    def canonical_index(self, index: int) -> int:
        return int(self.canonical([int(index)])[0])

    def offered(self, indices: Sequence[int]) -> np.ndarray:
        """Which of ``indices`` the space offers: valid (:meth:`valid`) and canonical
        (:meth:`canonical`), so no two of them build the same kernel."""
        if not self._conditions or not len(indices):
            return self.valid(indices)
        digits = self.digit_matrix(indices)
        ok = (self._conditions.canonical(digits, self.knobs, self._rest_digits())
              == digits).all(axis=1)
        if self._constraints:
            ok &= self._constraints.valid(digits, self.knobs)
        return ok

    def is_offered(self, index: int) -> bool:
        return bool(self.offered([int(index)])[0])

    def _rest_digits(self) -> np.ndarray:
        if self._rest is None:
            self._rest = np.array(self.knob_index_vector(self.fallback.index), dtype=np.int64)
        return self._rest

    @property
    def _index_dtype(self) -> type:
        return np.int64 if self.size <= _NUMPY_SPACE else object

    @property
    def _declared(self) -> bool:
        return bool(self._constraints) or bool(self._conditions)

    # -- search helpers ------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, exclude: Iterable[int] = ()) -> list[int]:
        """Up to ``n`` distinct configs the space offers (:meth:`offered`), none in
        ``exclude``; fewer where they are exhausted or too rare to find (one in a
        million)."""
        excluded = set(exclude)
        size = self.size
        if size <= _SMALL_SPACE:
            picks: list[int] = []
            order = rng.permutation(size)
            for start in range(0, size, 1 << 14):
                chunk = order[start:start + (1 << 14)]
                for i in chunk[self.offered(chunk)].tolist():
                    if len(picks) == n:
                        return picks
                    if i not in excluded:
                        picks.append(i)
            return picks
        chosen: dict[int, None] = {}
        for _ in range(_DRAW_ROUNDS):
            if len(chosen) >= n:
                break
            for index in self._draw(max(64, 4 * (n - len(chosen))), rng):
                if index not in excluded and len(chosen) < n:
                    chosen[index] = None
        return list(chosen)

    def _draw(self, count: int, rng: np.random.Generator) -> list[int]:
        """Up to ``count`` random offered indices (repeats possible), from ``count``
        draws."""
        if self.size > _NUMPY_SPACE:
            picks = [self.index_of([int(rng.integers(len(k))) for k in self._knobs.values()])
                     for _ in range(count)]
            return [i for i in picks if self.is_offered(i)]
        sizes = np.array(self.radices, dtype=np.int64)
        digits = rng.integers(0, sizes, size=(count, len(sizes)))
        if self._conditions:  # an idle knob's draw is its fallback choice
            digits = self._conditions.canonical(digits, self.knobs, self._rest_digits())
        indices = digits @ self._strides(sizes)
        if self._constraints:
            indices = indices[self._constraints.valid(digits, self.knobs)]
        return indices.tolist()

    def random_index(self, rng: np.random.Generator) -> int:
        """A random offered config (the fallback where none is found)."""
        for _ in range(_DRAW_ROUNDS):
            picks = self._draw(64 if self._constraints else 1, rng)
            if picks:
                return picks[0]
        return self.fallback.index

    def neighbours(
        self, x: int | ConfigEntity, rng: np.random.Generator | None = None, k: int | None = None
    ) -> list[int]:
        """The offered configs that differ from ``x`` in one knob (and in the knobs
        that change stops or starts to matter).

        All of them in a fixed order, or (with ``rng``) shuffled and cut to ``k``.
        """
        index = _index(x)
        vector = list(self.knob_index_vector(index))
        out = []
        for pos, knob in enumerate(self._knobs.values()):
            for digit in range(len(knob)):
                if digit != vector[pos]:
                    out.append(self.index_of(vector[:pos] + [digit] + vector[pos + 1 :]))
        if self._declared and out:
            out = [int(i) for i in dict.fromkeys(self.canonical(out).tolist()) if i != index]
            out = [i for i, ok in zip(out, self.valid(out).tolist(), strict=True) if ok]
        if rng is not None:
            out = [out[i] for i in rng.permutation(len(out))]
        return out if k is None else out[:k]

    def random_neighbour(self, x: int | ConfigEntity, rng: np.random.Generator) -> int:
        """One offered config that differs from ``x`` in one knob (``x`` itself if none
        is found)."""
        return self.random_neighbours([_index(x)], rng)[0]

    def random_neighbours(self, points: Sequence[int], rng: np.random.Generator) -> list[int]:
        """A random neighbour (:meth:`random_neighbour`) of each of ``points``, drawn
        at once: annealing asks this of every chain at every step, millions of times in
        a tuning run. Where a step breaks a declared constraint, or changes a knob that
        does not matter there, it is drawn again, up to :data:`_NEIGHBOUR_TRIES` times,
        then the point stays."""
        radices = self.radices
        movable = np.array([i for i, n in enumerate(radices) if n > 1], dtype=np.int64)
        if not len(movable) or not len(points):
            return [int(p) for p in points]
        if self.size > _NUMPY_SPACE:
            return [self._python_neighbour(int(p), movable, rng) for p in points]
        x = np.asarray(points, dtype=np.int64)
        out = x.copy()
        todo = np.arange(len(x))
        all_sizes = np.array(radices, dtype=np.int64)
        strides = self._strides(all_sizes)
        digits = self.digit_matrix(x)
        for _ in range(_NEIGHBOUR_TRIES if self._declared else 1):
            pos = movable[rng.integers(len(movable), size=len(todo))]
            rows = digits[todo]
            moved = np.arange(len(todo))
            rows[moved, pos] = (rows[moved, pos] + 1 + rng.integers(all_sizes[pos] - 1)
                                ) % all_sizes[pos]
            if self._conditions:
                rows = self._conditions.canonical(rows, self.knobs, self._rest_digits())
            step = rows @ strides
            ok = step != x[todo]
            if self._constraints:
                ok &= self._constraints.valid(rows, self.knobs)
            out[todo[ok]] = step[ok]
            todo = todo[~ok]
            if not len(todo):
                break
        return out.tolist()

    def _python_neighbour(self, x: int, movable: np.ndarray, rng: np.random.Generator) -> int:
        for _ in range(_NEIGHBOUR_TRIES):
            vector = list(self.knob_index_vector(x))
            pos = int(movable[int(rng.integers(len(movable)))])
            size = self.radices[pos]
            vector[pos] = (vector[pos] + 1 + int(rng.integers(size - 1))) % size
            step = self.canonical_index(self.index_of(vector))
            if step != x and self.is_valid(step):
                return step
        return x

    def __repr__(self) -> str:
        lines = [f"ConfigSpace(size={self.size})"]
        lines += [f"  {k.name}: {k.kind.value} x{len(k)}" for k in self._knobs.values()]
        return "\n".join(lines)


def _shown(entity: Entity) -> str:
    return str(entity.val if entity.kind is KnobKind.OTHER else list(entity.payload()))


def _index(x: int | ConfigEntity) -> int:
    return x.index if isinstance(x, ConfigEntity) else int(x)


def _raw_to_entity(knob: Knob, raw: Any) -> Entity:
    if isinstance(raw, Entity):
        return raw
    if knob.kind is KnobKind.SPLIT:
        return SplitEntity((-1, *tuple(raw)[1:]))
    if knob.kind is KnobKind.OTHER:
        return OtherOptionEntity(raw)
    return entity_from_json([knob.kind.value, raw])


@dataclass(frozen=True)
class ConfigEntity(ConfigBase):
    """One point of a space: its index and the chosen entity of every knob.

    Immutable and JSON round-trippable without the space:

    >>> cfg = ConfigEntity.from_json({"index": 3, "entities": [["t", "split", [-1, 8]]]})
    >>> cfg["t"].size, ConfigEntity.from_json(cfg.to_json()) == cfg
    ((-1, 8), True)
    """

    index: int
    entities: tuple[tuple[str, Entity], ...]
    flop_count: float = field(default=0.0, compare=False)
    _target: Target | None = field(default=None, compare=False, repr=False)

    def for_target(self, target: Target) -> ConfigEntity:
        """The same choices, bound to the target a Task instantiates them for."""
        return dataclasses.replace(self, _target=target)

    def _define(self, name: str, make_knob: Callable[[], Knob]) -> None:
        # The space already recorded this knob; nothing to do when replaying a choice.
        pass

    def add_flop(self, n: float) -> None:
        pass  # the space counted the workload's FLOPs; ``flop_count`` carries them

    def fallback_with(self, **choices: Any) -> None:
        pass  # recorded by the space

    def __getitem__(self, name: str) -> Entity:
        for knob_name, entity in self.entities:
            if knob_name == name:
                return entity
        raise TuningError(f"config has no knob named {name!r}")

    @property
    def flop(self) -> float:
        return self.flop_count

    def as_dict(self) -> Mapping[str, Entity]:
        return dict(self.entities)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "entities": [[name, *entity_to_json(e)] for name, e in self.entities],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ConfigEntity:
        """A config from :meth:`to_json`; without an ``index`` (as records store
        configs: by values) its index is -1 until a space places it
        (:meth:`ConfigSpace.place`)."""
        entities = tuple((e[0], entity_from_json(e[1:])) for e in obj["entities"])
        return cls(index=int(obj.get("index", -1)), entities=entities)

    def values_json(self) -> list[list[Any]]:
        """The knob values alone, by name, as records store them."""
        return [[name, *entity_to_json(e)] for name, e in self.entities]

    def __str__(self) -> str:
        parts = [
            f"{name}={list(e.payload()) if e.kind is not KnobKind.OTHER else e.val}"
            for name, e in self.entities
        ]
        return f"#{self.index}(" + ", ".join(parts) + ")"
