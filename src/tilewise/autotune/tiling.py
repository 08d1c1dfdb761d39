"""Multi-level tiling of contractions, the generated schedule's rule for the sums that
operator templates schedule by hand (Ansor's sketch rule for CPUs). The rule reads the
compute's index structure, never an operator's name.

A *contraction* is a sum of products whose two factors are read along different data
axes (each factor reads a reduction axis; one varies along a data axis the other does
not): a matrix product, a batch of them, a dense layer, a convolution, a depthwise one.
Along the axis one factor lacks, its values are reused, and tiles keep them in
registers and caches. Its loops, for data axes ``a`` and reduction axes ``r``::

    parallel for (a.outer ...) fused         # tiles spread over the cores
      for a.middle ...                       # (the accumulator at the outer loop instead:
        acc = 0                              #  the middle tile accumulates, the reduction's
        for r.outer ...                      #  outer loops outside or inside its loops)
          unrolled for r.inner ...
            unrolled for a.inner ...         # the register tile,
              vectorized for last.inner      # the output's contiguous axis in vectors
        out[tile] = epilogue(acc)            # bias, activation, residual: at the tile

The accumulator is the sum itself in local scope where its one reader is an
element-wise output reading it in place (the epilogue, inlined there: as
``ops.epilogue.accumulator`` does for the hand templates), else a ``cache_write`` copy
of it. :class:`TileChoices` are the loops' extents and the choices between placements;
:func:`fallback_tiles` is the rule's pick from the target's vector width and registers
(:mod:`.tile_space` declares the choices as a template's knobs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ScheduleError
from ..ir import Binary, BinaryOp, Cast, Expr, Var, collect
from ..lower.inline import effective_bodies
from ..schedule import AttachKind, Schedule, Stage, create_schedule
from ..target import Target
from ..te.tensor import IterVar, Reduce, ReduceKind, Tensor, TensorRead

#: Vector multiply-adds an unrolled register tile may hold (register-tile rows times
#: the unrolled reduction steps): gcc compiles more slowly past it, and gains little.
UNROLL_LIMIT = 128
#: Rows of the fallback's register tile at most (the hand templates' fallback too).
FALLBACK_ROWS = 8
#: Reduction steps the fallback unrolls at most.
FALLBACK_UNROLL = 4


@dataclass(frozen=True)
class TileChoices:
    """How one contraction is tiled.

    - ``spatial``: per data axis (in the output's order), the extents of its middle and
      inner (register tile) loops; the outer loop takes the rest. Where their product
      does not divide the axis, its last outer tile is shifted back inside it (a few
      elements computed twice, every tile whole).
    - ``reduce``: per reduction axis, the extent of its inner loop.
    - ``at_outer``: the accumulator holds the whole middle tile, computed at the
      parallel loop (else the register tile alone, at the last middle loop).
    - ``reduce_outer``: with ``at_outer``, the reduction's outer loops run outside the
      middle tile's loops (each slice of the operands read once per middle tile),
      else inside them.
    - ``unroll``: unroll the register tile's rows and the inner reduction loops.
    - ``inputs_at_root``: the element-wise stages computing its factors (a padding)
      are computed whole first, rather than inlined into the register tile's loads.
    - ``reuse_inner``: the outer and middle loops over the axes along which the factor
      read along the last axis is reused (:attr:`Contraction.reuse`: a matrix
      product's rows) run inside those over the other axes, so that consecutive tiles
      read the same panel of that factor (a column panel of B, strided by a whole row
      for each step of the reduction) while it is in cache; else in the output's order.
    """

    spatial: tuple[tuple[int, int], ...]
    reduce: tuple[int, ...]
    at_outer: bool = False
    reduce_outer: bool = True
    unroll: bool = True
    inputs_at_root: bool = False
    reuse_inner: bool = True


@dataclass(frozen=True)
class Contraction:
    """What the rule reads of a contraction: its name, the extents of its data and
    reduction axes, the lanes of a vector of its widest element, the bytes of its
    element, the data axes that the factor read along the contiguous (last) axis
    does not vary along (where values are reused across a register tile's rows), and
    how many element-wise stages compute its factors (inlined into it by rule 2)."""

    name: str
    data: tuple[int, ...]
    reduce: tuple[int, ...]
    lanes: int
    bytes: int
    reuse: tuple[int, ...]
    producers: int = 0


@dataclass(frozen=True)
class Tiled:
    """A contraction placed by :func:`plan_tiles`: the stage writing the tiles (its host:
    the epilogue's output, or the copy out of the accumulator) and the accumulator."""

    host: Stage
    acc: Stage
    info: Contraction
    chain: tuple[Stage, ...]  # the inlined stages between them (the epilogue)


# ---- recognising a contraction --------------------------------------------------------


def is_contraction(st: Stage, body: Expr) -> bool:
    """``st`` (its body ``body``, inlined producers substituted) sums a product whose
    factors each read a reduction axis and vary along different data axes."""
    if not isinstance(body, Reduce) or body.kind is not ReduceKind.SUM:
        return False
    src = body.source
    while isinstance(src, Cast):
        src = src.value
    if not isinstance(src, Binary) or src.op is not BinaryOp.MUL:
        return False
    data = {a.var for a in st.op.axis if a.domain.extent > 1}
    red = {k.var for k in body.axis}
    sides = []
    for side in (src.a, src.b):
        used = _vars_read(side)
        if not used & red:
            return False
        sides.append(used & data)
    return sides[0] != sides[1]


def _vars_read(e: Expr) -> set[Var]:
    """The variables indexing the reads in ``e``."""
    return {v for rd in collect(e, TensorRead) for ix in rd.indices for v in collect(ix, Var)}


def describe(s: Schedule, st: Stage, body: Reduce, target: Target) -> Contraction:
    """The :class:`Contraction` of a stage of ``s`` that :func:`is_contraction`."""
    axes = st.op.axis
    width = max([st.op.dtype.bytes] + [rd.dtype.bytes for rd in collect(body, TensorRead)])
    last = axes[-1].var
    along = set()
    for rd in collect(body.source, TensorRead):
        vs = {v for ix in rd.indices for v in collect(ix, Var)}
        if last in vs:
            along |= vs
    reuse = tuple(d for d, a in enumerate(axes[:-1]) if a.var not in along)
    return Contraction(st.op.name, tuple(a.domain.extent for a in axes),
                       tuple(k.domain.extent for k in body.axis), target.vector_lanes(width),
                       st.op.dtype.bytes, reuse, len(producers(s, st)))


def producers(s: Schedule, st: Stage) -> list[Stage]:
    """The inlined stages that ``st`` reads, through inlined stages."""
    out: list[Stage] = []
    todo = [st]
    while todo:
        for t in todo.pop().op.input_tensors:
            p = s[t]
            if p.is_compute and p.attach_kind is AttachKind.INLINE and p not in out:
                out.append(p)
                todo.append(p)
    return out


def contractions(outputs: Sequence[Tensor], target: Target) -> list[Contraction]:
    """The contractions computing ``outputs``, in the order the schedule lists them (as
    the generated schedule sees them: every other element-wise stage inlined)."""
    s = create_schedule([t.op for t in outputs])
    inline_elementwise(s)
    bodies = effective_bodies(s)
    return [describe(s, st, bodies[st], target) for st in s.stages
            if st.is_compute and is_contraction(st, bodies[st])]


def inline_elementwise(s: Schedule) -> None:
    """Inline what the generated schedule's rule 2 inlines first: every stage that is
    neither an output nor a reduction."""
    for st in s.stages:
        if st.is_compute and not st.is_output and not st.op.reduce_axis:
            st.compute_inline()


def readers(s: Schedule, e: Stage) -> list[Stage]:
    """The stages with loops of their own that read ``e``, through inlined stages."""
    out: list[Stage] = []
    todo = [e]
    while todo:
        for c in s.consumers(todo.pop()):
            if c.attach_kind is AttachKind.INLINE:
                todo.append(c)
            elif c not in out:
                out.append(c)
    return out


# ---- the fallback --------------------------------------------------------------------


def divisors(n: int) -> list[int]:
    low = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*low, *(n // d for d in low)})


def tile_fits(rows: int, last: int, lanes: int, registers: int) -> bool:
    """Whether ``rows`` x ``last`` accumulators fit the vector registers beside a vector
    row of one factor and a broadcast of the other."""
    vectors = -(-last // lanes)
    return rows * vectors + vectors + 1 <= registers


def unroll_fits(rows: int, reduce_inner: Sequence[int]) -> bool:
    return rows * math.prod(reduce_inner) <= UNROLL_LIMIT


def fallback_tiles(c: Contraction, target: Target) -> TileChoices:
    """The rule's tile: along the last axis two whole vectors (one where the axis is
    shorter; the whole axis where it is shorter than a vector); rows along an axis
    whose values the last axis's factor reuses (else the nearest axis before it), as
    many as fit the registers, up to :data:`FALLBACK_ROWS`; the innermost reduction
    axis unrolled by up to :data:`FALLBACK_UNROLL`; every middle loop of one iteration
    (the register tiles themselves spread over the cores); the element-wise stages
    computing the factors (a padding) computed first, which keeps their conditions out
    of the register tile's loads."""
    n, lanes, regs = len(c.data), c.lanes, target.vector_registers
    width = c.data[-1]
    last = 2 * lanes if width >= 2 * lanes else lanes if width >= lanes else width
    inner = [1] * n
    inner[-1] = last
    wide = [d for d in range(n - 1) if c.data[d] > 1]
    row = next((d for d in reversed(wide) if d in c.reuse), wide[-1] if wide else None)
    if row is not None:
        inner[row] = max(r for r in divisors(c.data[row])
                         if r <= FALLBACK_ROWS and tile_fits(r, last, lanes, regs))
    reduce = [1] * len(c.reduce)
    rows = math.prod(inner[:-1])
    if c.reduce:
        k = max(d for d in divisors(c.reduce[-1]) if d <= FALLBACK_UNROLL)
        reduce[-1] = k if unroll_fits(rows, [k]) else 1
    return TileChoices(tuple((1, i) for i in inner), tuple(reduce),
                       inputs_at_root=c.producers > 0)


# ---- placing and scheduling the tiles ----------------------------------------------------


def plan_tiles(s: Schedule, target: Target) -> list[Tiled]:
    """The contractions of ``s`` (rule 2's inlining done) with their hosts: the one
    element-wise output reading a contraction in place, through inlined stages (its
    epilogue), with nothing else computed; else a ``cache_write`` copy of it. The
    contraction becomes the accumulator, in local scope."""
    bodies = effective_bodies(s)
    found = [st for st in s.stages if st.is_compute and is_contraction(st, bodies[st])]
    plans = []
    for st in found:
        info = describe(s, st, bodies[st], target)
        host = _epilogue_host(s, st, bodies)
        if host is None:
            t = s.cache_write(st.op.output(0), "local")
            plans.append(Tiled(st, s[t], info, ()))
            continue
        st.set_scope("local")
        plans.append(Tiled(host, st, info, tuple(_chain(s, st, host))))
    return plans


def _epilogue_host(s: Schedule, st: Stage, bodies: dict) -> Stage | None:
    if st.is_output:
        return None
    found = readers(s, st)
    if len(found) != 1:
        return None
    (host,) = found
    if not host.is_output or host.op.reduce_axis or tuple(host.op.shape) != tuple(st.op.shape):
        return None
    t = st.op.output(0)
    own = [a.var for a in host.op.axis]
    for rd in collect(bodies[host], TensorRead):
        if rd.tensor is t:
            if len(rd.indices) != len(own) or any(ix is not v for ix, v in
                                                  zip(rd.indices, own, strict=True)):
                return None
        elif s[rd.tensor].is_compute:
            return None  # a value computed apart: it would need the host's loops
    return host


def _chain(s: Schedule, st: Stage, host: Stage) -> list[Stage]:
    """The inlined stages between ``st`` and ``host``."""
    out: list[Stage] = []
    todo = [st]
    while todo:
        for c in s.consumers(todo.pop()):
            if c.attach_kind is AttachKind.INLINE and c not in out:
                out.append(c)
                todo.append(c)
    return out


def schedule_tiles(plan: Tiled, tc: TileChoices, parallel: bool) -> None:
    """Tile ``plan``'s host and accumulator by ``tc`` (the module's loop nest);
    ``parallel``: make the fused outer loop parallel."""
    c, host, acc = plan.info, plan.host, plan.acc
    _check(c, tc)
    outer, middle, inner = [], [], []
    for a, (m, i), n in zip(host.op.axis, tc.spatial, c.data, strict=True):
        ao, rest = host.split(a, factor=m * i, tail="shift_inwards" if n % (m * i) else "guard")
        am, ai = host.split(rest, factor=i)
        outer.append(ao)
        middle.append(am)
        inner.append(ai)
    order = _tile_order(c, tc)
    outer, middle = [outer[d] for d in order], [middle[d] for d in order]
    host.reorder(*outer, *middle, *inner)
    top = host.fuse(*outer) if len(outer) > 1 else outer[0]
    if parallel and _extent(top) > 1:
        host.parallel(top)
    _annotate(host, inner, tc.unroll)
    acc.compute_at(host, top if tc.at_outer else middle[-1])
    ro, ri = [], []
    for k, f in zip(acc.op.reduce_axis, tc.reduce, strict=True):
        ko, ki = acc.split(k, factor=f)
        ro.append(ko)
        ri.append(ki)
    if tc.at_outer:
        cm, ci = [], []
        for a, (_, i) in zip(acc.op.axis, tc.spatial, strict=True):
            am, ai = acc.split(a, factor=i)
            cm.append(am)
            ci.append(ai)
        cm = [cm[d] for d in order]
        order = (*ro, *cm, *ri, *ci) if tc.reduce_outer else (*cm, *ro, *ri, *ci)
    else:
        ci = list(acc.op.axis)
        order = (*ro, *ri, *ci)
    acc.reorder(*order)
    if tc.unroll:
        for k in ri:
            if _extent(k) > 1:
                acc.unroll(k)
    _annotate(acc, ci, tc.unroll, [i for _, i in tc.spatial])


def _tile_order(c: Contraction, tc: TileChoices) -> list[int]:
    """The order of a tiling's outer (and middle) loops, as data axis numbers."""
    axes = list(range(len(c.data)))
    if not tc.reuse_inner:
        return axes
    return [d for d in axes if d not in c.reuse] + [d for d in axes if d in c.reuse]


def _annotate(st: Stage, tile: list[IterVar], unroll: bool,
              extents: list[int] | None = None) -> None:
    """The register tile's loops: the last vectorised, the rest unrolled."""
    sizes = extents or [_extent(a) for a in tile]
    if sizes[-1] > 1:
        st.vectorize(tile[-1])
    if unroll:
        for a, n in zip(tile[:-1], sizes[:-1], strict=True):
            if n > 1:
                st.unroll(a)


def _extent(iv: IterVar) -> int:
    return iv.dom.extent if iv.dom is not None else 0


def _check(c: Contraction, tc: TileChoices) -> None:
    if len(tc.spatial) != len(c.data) or len(tc.reduce) != len(c.reduce):
        raise ScheduleError(f"tiles of {c.name}: {len(tc.spatial)} data and "
                            f"{len(tc.reduce)} reduction axes given, it has {len(c.data)} "
                            f"and {len(c.reduce)}")
    for n, (m, i) in zip(c.data, tc.spatial, strict=True):
        if m < 1 or i < 1 or m * i > n:
            raise ScheduleError(f"tiles of {c.name}: {m} x {i} does not fit an axis of {n}")
    for n, i in zip(c.reduce, tc.reduce, strict=True):
        if i < 1 or n % i:
            raise ScheduleError(f"tiles of {c.name}: {i} does not divide a reduction of {n}")


__all__ = ["Contraction", "TileChoices", "Tiled", "contractions", "divisors", "fallback_tiles",
           "is_contraction", "plan_tiles", "producers", "readers", "schedule_tiles",
           "tile_fits", "unroll_fits"]
