"""The space of :mod:`.tiling`: each contraction's tiles as a template's knobs, the
constraints that make every offered config build, and the choices a config makes.

>>> tiles = define_tiles(cfg, contractions(outputs, cfg.target), cfg.target)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import ScheduleError
from ..target import Target
from .constraints import MAX_TABLE
from .tiling import (
    UNROLL_LIMIT,
    Contraction,
    TileChoices,
    divisors,
    fallback_tiles,
    tile_fits,
    unroll_fits,
)

#: Whole vectors along the last axis that its split offers at most, beside the
#: divisors of its extent (a part of a vector makes gcc shuffle lanes between vectors).
LAST_VECTORS = 4


def last_axis_tiles(n: int, lanes: int, cap: int | None = None) -> list[tuple[int, int]]:
    """The (middle, inner) extents that a split of the last axis (``n`` long, vectors
    of ``lanes``) offers: inner tiles of whole vectors, up to :data:`LAST_VECTORS`, and
    of the divisors of ``n``; middle tiles that divide what is left, or powers of two;
    no extent above ``cap``."""
    inner = {k * lanes for k in range(1, LAST_VECTORS + 1) if k * lanes <= n}
    out = []
    for i in sorted(inner | set(divisors(n))):
        if cap is not None and i > cap:
            continue
        for m in range(1, n // i + 1):
            if cap is not None and m > cap:
                break
            if n % (m * i) == 0 or m & (m - 1) == 0:
                out.append((m, i))
    return out


def knob_names(t: int, c: Contraction) -> dict[str, list[str | None]]:
    """The knobs of contraction number ``t``: a split per data and reduction axis (None
    for an axis of one iteration, which has nothing to split), the placement, the
    order, the unrolling and (None where it has none) where its factors' element-wise
    stages are computed."""
    return {
        "spatial": [f"tile{t}_s{d}" if e > 1 else None for d, e in enumerate(c.data)],
        "reduce": [f"tile{t}_r{d}" if e > 1 else None for d, e in enumerate(c.reduce)],
        "at": [f"tile{t}_at"], "order": [f"tile{t}_order"], "unroll": [f"tile{t}_unroll"],
        "inputs": [f"tile{t}_inputs" if c.producers else None],
    }


def define_tiles(cfg, cons: Sequence[Contraction], target: Target) -> tuple[TileChoices, ...]:
    """Declare the knobs of each contraction's tiling on ``cfg`` (three-level splits of
    the data axes, two-level of the reductions, where the tile accumulates, the order
    of the reduction's outer loops there, the unrolling), the constraints that make
    every offered config build (a register tile that fits the vector registers, an
    unrolled body of at most :data:`UNROLL_LIMIT` multiply-adds, a middle tile that
    fits half the second-level cache), that the order matters only with the middle tile
    accumulated, and the fallback (:func:`fallback_tiles`); returns the choices ``cfg``
    makes (:func:`tile_choices`)."""
    for t, c in enumerate(cons):
        _declare(cfg, knob_names(t, c), c, target)
    return tile_choices(cfg, cons)


def _declare(cfg, names: dict[str, list[str | None]], c: Contraction, target: Target) -> None:
    """:func:`define_tiles` of one contraction, its knobs named ``names``."""
    regs, budget = target.vector_registers, target.l2_bytes // 2
    spatial = [n for n in names["spatial"] if n]
    reduce = [n for n in names["reduce"] if n]
    fallback = fallback_tiles(c, target)
    caps = _caps(c, [max(mi) for mi in fallback.spatial] + list(fallback.reduce))
    for d, (name, extent, cap) in enumerate(zip(names["spatial"], c.data, caps[:len(c.data)],
                                                strict=True)):
        if name and d == len(c.data) - 1:
            tiles = last_axis_tiles(extent, c.lanes, cap)
            cfg.define_split(name, extent, num_outputs=3, policy="candidate",
                             candidate=[[-1, m, i] for m, i in tiles])
        elif name:
            cfg.define_split(name, extent, num_outputs=3, max_factor=cap)
    for name, extent, cap in zip(names["reduce"], c.reduce, caps[len(c.data):], strict=True):
        if name:
            cfg.define_split(name, extent, num_outputs=2, max_factor=cap)
    (at,), (order,), (unroll,) = names["at"], names["order"], names["unroll"]
    cfg.define_knob(at, ["inner", "outer"])
    cfg.define_knob(order, ["reduce_outer", "reduce_inner"])
    cfg.define_knob(unroll, [True, False])
    if names["inputs"][0]:
        cfg.define_knob(names["inputs"][0], ["inline", "root"])
    cfg.fallback_with(**_raw(names, fallback))
    rows_of = _rows_reader(names["spatial"])
    ns = len(spatial)
    wide = names["spatial"][-1] is not None  # else the last axis is one long

    def fits(*e) -> bool:
        return tile_fits(rows_of(e), e[-1].size[-1] if wide else 1, c.lanes, regs)

    def why_not(*e) -> str:
        return (f"register tile of {rows_of(e)} rows x {e[-1].size[-1] if wide else 1} "
                f"needs more than {regs} vector registers ({c.lanes} lanes)")

    def unrolled(*e) -> bool:
        n = ns - 1 if wide else ns  # the row knobs
        return not e[-1] or unroll_fits(math.prod(r.size[-1] for r in e[:n]),
                                        [r.size[-1] for r in e[n:-1]])

    def middle_fits(*e) -> bool:
        return e[-1] == "inner" or math.prod(x.size[-1] * x.size[-2] for x in e[:-1]) * (
            c.bytes) <= budget

    rows = spatial[:-1] if wide else spatial
    if spatial:
        cfg.require(tuple(spatial), fits, why_not)
    if rows or reduce:
        cfg.require((*rows, *reduce, unroll), unrolled,
                    f"an unrolled register tile holds at most {UNROLL_LIMIT} multiply-adds")
    if spatial:
        cfg.require((*spatial, at), middle_fits,
                    f"a middle tile accumulated whole fits half the L2 cache ({budget} bytes)")
    cfg.conditional(order, (at,), lambda at: at == "outer")


def split_count(n: int, levels: int, cap: int | None = None) -> int:
    """Choices of a ``levels``-level split of ``n`` (:meth:`define_split`'s factors
    policy, no factor above ``cap``)."""
    ok = [d for d in divisors(n) if cap is None or d <= cap]
    if levels == 2:
        return len(ok)
    return sum(1 for m in ok for i in ok if n % (m * i) == 0)


def _caps(c: Contraction, floors: Sequence[int]) -> list[int | None]:
    """A largest factor per axis (data axes, then reduction axes; None: none) keeping
    each declared constraint's table within :data:`~.constraints.MAX_TABLE`: the widest
    axis's split loses its largest factors first (those tiles are the least likely to
    pay), never those of ``floors`` (the fallback's, per axis)."""
    extents = [*c.data, *c.reduce]
    levels = [3] * len(c.data) + [2] * len(c.reduce)
    caps: list[int | None] = [None] * len(extents)

    def counts() -> list[int]:
        sizes = [split_count(n, lv, cap) if n > 1 else 1
                 for n, lv, cap in zip(extents, levels, caps, strict=True)]
        if c.data[-1] > 1:
            sizes[len(c.data) - 1] = len(last_axis_tiles(c.data[-1], c.lanes,
                                                         caps[len(c.data) - 1]))
        return sizes

    while True:
        sizes = counts()
        spatial, rows = sizes[:len(c.data)], sizes[:len(c.data) - 1]
        if max(math.prod(spatial), math.prod(rows) * math.prod(sizes[len(c.data):])) * 2 \
                <= MAX_TABLE:
            return caps
        cut = [a for a in range(len(sizes)) if (caps[a] or extents[a]) > floors[a]]
        if not cut:
            return caps
        widest = max(cut, key=lambda a: sizes[a])
        largest = caps[widest] or extents[widest]
        caps[widest] = max(max(d for d in divisors(extents[widest]) if d < largest),
                           floors[widest])


def _rows_reader(spatial_names: Sequence[str | None]):
    """Rows of a register tile from the entities of the spatial knobs defined (those
    of axes longer than one), in order: every one but the last axis's."""
    last_defined = spatial_names[-1] is not None

    def rows(entities) -> int:
        row_entities = entities[:-1] if last_defined else entities
        return math.prod(e.size[-1] for e in row_entities)

    return rows


def _raw(names: dict[str, list[str | None]], tc: TileChoices) -> dict[str, object]:
    """``tc`` as ``fallback_with`` takes it."""
    raw: dict[str, object] = {}
    for name, (m, i) in zip(names["spatial"], tc.spatial, strict=True):
        if name:
            raw[name] = [-1, m, i]
    for name, i in zip(names["reduce"], tc.reduce, strict=True):
        if name:
            raw[name] = [-1, i]
    raw[names["at"][0]] = "outer" if tc.at_outer else "inner"
    raw[names["order"][0]] = "reduce_outer" if tc.reduce_outer else "reduce_inner"
    raw[names["unroll"][0]] = tc.unroll
    if names["inputs"][0]:
        raw[names["inputs"][0]] = "root" if tc.inputs_at_root else "inline"
    return raw


def tile_choices(cfg, cons: Sequence[Contraction], known: set[str] | None = None,
                 target: Target | None = None) -> tuple[TileChoices, ...]:
    """The tiles a config chooses, one per contraction. ``known``: the knob names the
    config has (None: all of them); a contraction whose knobs it lacks keeps the
    rule's tile (``target`` gives it)."""
    out = []
    for t, c in enumerate(cons):
        names = knob_names(t, c)
        if known is not None and names["at"][0] not in known:
            if target is None:
                raise ScheduleError(f"no tiling knobs for contraction {c.name}")
            out.append(fallback_tiles(c, target))
            continue
        spatial = tuple((1, 1) if n is None else tuple(cfg[n].size[1:])
                        for n in names["spatial"])
        reduce = tuple(1 if n is None else cfg[n].size[1] for n in names["reduce"])
        inputs = names["inputs"][0]
        out.append(TileChoices(spatial, reduce, cfg[names["at"][0]].val == "outer",
                               cfg[names["order"][0]].val == "reduce_outer",
                               bool(cfg[names["unroll"][0]].val),
                               inputs is not None and cfg[inputs].val == "root"))
    return tuple(out)


__all__ = ["LAST_VECTORS", "define_tiles", "knob_names", "last_axis_tiles", "split_count",
           "tile_choices"]
