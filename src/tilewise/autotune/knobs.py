"""Knobs of a config space and the entities they choose (split, reorder, annotate, other).

A knob is a named, finite, ordered tuple of entities; an entity is one immutable choice
that knows how to apply itself to a schedule stage:

>>> knob = split_knob("tile_y", 64, num_outputs=2, policy=SplitPolicy.FACTORS)
>>> len(knob), knob.entities[3]
(7, SplitEntity(size=(-1, 8)))
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from tilewise.errors import TuningError


class KnobKind(Enum):
    """What a knob chooses; also the tag of an entity in JSON."""

    SPLIT = "split"
    REORDER = "reorder"
    ANNOTATE = "annotate"
    OTHER = "other"


class SplitPolicy(Enum):
    """Which inner factors a split knob offers."""

    FACTORS = "factors"  # inner factors whose product divides the extent
    POWER2 = "power2"  # powers of two whose product is at most the extent
    CANDIDATE = "candidate"  # exactly the sizes the template lists


class ReorderPolicy(Enum):
    """Which loop orders a reorder knob offers."""

    ALL = "all"
    CANDIDATE = "candidate"


class AnnotatePolicy(Enum):
    """Which annotations an annotate knob offers per axis."""

    TRY_UNROLL = "try_unroll"  # each axis: none or unroll
    TRY_VEC = "try_vec"  # last axis: none or vectorize
    TRY_UNROLL_VEC = "try_unroll_vec"  # each axis none/unroll, last also vectorize


class Annotation(Enum):
    """One annotation on one axis."""

    NONE = "none"
    UNROLL = "unroll"
    VEC = "vec"


@dataclass(frozen=True)
class SplitEntity:
    """Split sizes, outermost first; the outermost is -1 (whatever remains).

    ``SplitEntity((-1, 4, 8)).apply(s, C, y)`` returns ``[y_outer, y_mid, y_inner]``
    with extents ``(extent / 32, 4, 8)``.
    """

    size: tuple[int, ...]
    kind: ClassVar[KnobKind] = KnobKind.SPLIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(f) for f in self.size))

    def apply(self, s: Any, tensor: Any, axis: Any) -> list[Any]:
        """Split ``axis`` of stage ``s[tensor]``; return the new axes, outermost first."""
        inner_axes = []
        for factor in reversed(self.size[1:]):
            axis, inner = s[tensor].split(axis, factor=factor)
            inner_axes.append(inner)
        return [axis, *reversed(inner_axes)]

    def payload(self) -> list[int]:
        return list(self.size)

    def features(self) -> tuple[float, ...]:
        return tuple(math.log2(f) for f in self.size[1:])


@dataclass(frozen=True)
class ReorderEntity:
    """A permutation of the axes given to ``apply``: ``perm[i]`` is the axis placed i-th."""

    perm: tuple[int, ...]
    kind: ClassVar[KnobKind] = KnobKind.REORDER

    def __post_init__(self) -> None:
        object.__setattr__(self, "perm", tuple(int(p) for p in self.perm))

    def apply(self, s: Any, tensor: Any, axes: Sequence[Any]) -> list[Any]:
        if len(axes) != len(self.perm):
            raise TuningError(f"reorder of {len(self.perm)} axes applied to {len(axes)} axes")
        ordered = [axes[p] for p in self.perm]
        s[tensor].reorder(*ordered)
        return ordered

    def payload(self) -> list[int]:
        return list(self.perm)

    def features(self) -> tuple[float, ...]:
        return tuple(float(p) for p in self.perm)


@dataclass(frozen=True)
class AnnotateEntity:
    """One annotation per axis given to ``apply``."""

    anns: tuple[Annotation, ...]
    kind: ClassVar[KnobKind] = KnobKind.ANNOTATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "anns", tuple(Annotation(a) for a in self.anns))

    def apply(self, s: Any, tensor: Any, axes: Sequence[Any]) -> None:
        if len(axes) != len(self.anns):
            raise TuningError(f"annotation of {len(self.anns)} axes applied to {len(axes)} axes")
        for axis, ann in zip(axes, self.anns, strict=True):
            if ann is Annotation.UNROLL:
                s[tensor].unroll(axis)
            elif ann is Annotation.VEC:
                s[tensor].vectorize(axis)

    def payload(self) -> list[str]:
        return [a.value for a in self.anns]

    def features(self) -> tuple[float, ...]:
        order = list(Annotation)
        return tuple(float(order.index(a)) for a in self.anns)


@dataclass(frozen=True)
class OtherOptionEntity:
    """A value chosen by ``define_knob``; read it as ``cfg[name].val``."""

    val: Any
    kind: ClassVar[KnobKind] = KnobKind.OTHER

    def payload(self) -> Any:
        return self.val

    def features(self) -> tuple[float, ...]:
        if isinstance(self.val, bool | int | float):
            return (float(self.val),)
        return ()


Entity = SplitEntity | ReorderEntity | AnnotateEntity | OtherOptionEntity

_ENTITY_OF_KIND: dict[KnobKind, type] = {
    KnobKind.SPLIT: SplitEntity,
    KnobKind.REORDER: ReorderEntity,
    KnobKind.ANNOTATE: AnnotateEntity,
    KnobKind.OTHER: OtherOptionEntity,
}


def entity_to_json(entity: Entity) -> list[Any]:
    """``[kind, payload]``, e.g. ``["split", [-1, 32]]``."""
    return [entity.kind.value, entity.payload()]


def entity_from_json(obj: Sequence[Any]) -> Entity:
    kind, payload = KnobKind(obj[0]), obj[1]
    if kind is KnobKind.OTHER:
        return OtherOptionEntity(_freeze(payload))
    return _ENTITY_OF_KIND[kind](tuple(payload))


def _freeze(value: Any) -> Any:
    """JSON lists back to tuples so knob values stay hashable."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Knob:
    """A named, ordered tuple of choices; its position in the space sets its radix."""

    name: str
    kind: KnobKind
    entities: tuple[Entity, ...]
    _positions: dict[Entity, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.entities:
            raise TuningError(f"knob {self.name!r} has no choices")
        object.__setattr__(self, "_positions", {e: i for i, e in enumerate(self.entities)})

    def __len__(self) -> int:
        return len(self.entities)

    def index_of(self, entity: Entity) -> int:
        try:
            return self._positions[entity]
        except KeyError:
            raise TuningError(f"{entity} is not a choice of knob {self.name!r}") from None


def axis_extent(axis: Any) -> int:
    """The extent of an IterVar (``iv.dom.extent``) or of a plain int."""
    if isinstance(axis, int):
        return axis
    extent = getattr(getattr(axis, "dom", None), "extent", None)
    if isinstance(extent, int):
        return extent
    raise TuningError(f"cannot find a constant extent for axis {axis!r}")


def split_knob(
    name: str,
    extent: int,
    num_outputs: int,
    policy: SplitPolicy,
    candidate: Sequence[Sequence[int]] | None = None,
    max_factor: int | None = None,
) -> Knob:
    """All splits of ``extent`` into ``num_outputs`` loops that ``policy`` allows."""
    if not 2 <= num_outputs <= 4:
        raise TuningError(f"split {name!r}: num_outputs must be 2..4, got {num_outputs}")
    if policy is SplitPolicy.CANDIDATE:
        if not candidate:
            raise TuningError(f"split {name!r}: policy 'candidate' needs candidate sizes")
        sizes = [(-1, *tuple(c)[1:]) for c in candidate]
        if any(len(s) != num_outputs for s in sizes):
            raise TuningError(f"split {name!r}: each candidate needs {num_outputs} sizes")
        return Knob(name, KnobKind.SPLIT, tuple(dict.fromkeys(SplitEntity(s) for s in sizes)))
    limit = extent if max_factor is None else min(extent, max_factor)
    if policy is SplitPolicy.FACTORS:
        choices = [f for f in range(1, limit + 1) if extent % f == 0]
    else:
        choices = [2**i for i in range(limit.bit_length()) if 2**i <= limit]
    combos = itertools.product(choices, repeat=num_outputs - 1)
    inner = [c for c in combos if _fits(c, extent, policy)]
    return Knob(name, KnobKind.SPLIT, tuple(SplitEntity((-1, *c)) for c in inner))


def _fits(inner: tuple[int, ...], extent: int, policy: SplitPolicy) -> bool:
    product = math.prod(inner)
    return extent % product == 0 if policy is SplitPolicy.FACTORS else product <= extent


def reorder_knob(
    name: str,
    axes: Sequence[Any],
    policy: ReorderPolicy,
    candidate: Sequence[Sequence[Any]] | None = None,
) -> Knob:
    """Loop orders of ``axes``; candidates may name axes by object or by position."""
    n = len(axes)
    if policy is ReorderPolicy.ALL:
        if n > 8:
            raise TuningError(f"reorder {name!r}: {n}! orders is too many; list candidates")
        perms = list(itertools.permutations(range(n)))
    else:
        if not candidate:
            raise TuningError(f"reorder {name!r}: policy 'candidate' needs candidate orders")
        perms = [tuple(_position(axes, a) for a in order) for order in candidate]
        if any(sorted(p) != list(range(n)) for p in perms):
            raise TuningError(f"reorder {name!r}: each candidate must order all {n} axes")
    return Knob(name, KnobKind.REORDER, tuple(dict.fromkeys(ReorderEntity(p) for p in perms)))


def _position(axes: Sequence[Any], axis: Any) -> int:
    if isinstance(axis, int):
        return axis
    for i, a in enumerate(axes):
        if a is axis:
            return i
    raise TuningError(f"reorder candidate names an axis {axis!r} that is not among the axes")


def annotate_knob(name: str, n_axes: int, policy: AnnotatePolicy) -> Knob:
    """Annotation combinations over ``n_axes`` axes."""
    none, unroll, vec = Annotation.NONE, Annotation.UNROLL, Annotation.VEC
    if policy is AnnotatePolicy.TRY_UNROLL:
        per_axis = [(none, unroll)] * n_axes
    elif policy is AnnotatePolicy.TRY_VEC:
        per_axis = [(none,)] * (n_axes - 1) + [(none, vec)]
    else:
        per_axis = [(none, unroll)] * (n_axes - 1) + [(none, unroll, vec)]
    combos = itertools.product(*per_axis)
    return Knob(name, KnobKind.ANNOTATE, tuple(AnnotateEntity(c) for c in combos))


def other_knob(name: str, values: Sequence[Any]) -> Knob:
    return Knob(name, KnobKind.OTHER, tuple(OtherOptionEntity(_freeze(v)) for v in values))
