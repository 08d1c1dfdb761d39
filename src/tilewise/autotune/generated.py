"""A schedule derived from a compute's structure, for the kernels that no operator
template covers (whole-model compilation's element-wise, injective and reduction
groups). The rules read the stages, never an operator's name (Ansor's way):

1. a float reduction along a row (its innermost reduction axis runs with stride 1 along
   the innermost dimension of all it reads; no data axis runs inside it) of at least
   two vectors accumulates lane-wise: ``r_lanes[o, l]``, the fold of every ``L``-th
   element from ``l`` on, is a vector loop over ``l``; ``r[o]`` folds the ``L`` lanes
   in a balanced tree and the ``n % L`` last elements (``r_tail``). Without
   ``-ffast-math`` gcc keeps a float sum in order, and the ``omp simd`` this codegen
   writes has no reduction clause: a row sum stays a scalar chain (and expf in it a
   scalar call), and gcc does not vectorise ``a > b ? a : b`` as a max reduction;
2. inline every other stage that is neither an output nor a reduction, but for an
   element-wise stage with a math call or a division in it (its producers inlined)
   that two or more stages read, one a reduction: it is computed once per row into a
   buffer at the row loop (rule 4), where inlining would compute it again in every
   pass over the row (a softmax's exponentials, read by its sum and its quotient).
   So is such a stage that reads reductions alone (a value a row: a reciprocal square
   root), and a clamp (max, min, select) whose value a buffer's math call takes:
   inlined, gcc calls the function on the unclamped value and selects after;
3. order a reduction's loops so that the data axes indexing its inputs' innermost
   dimensions (closer than any reduction axis does) run inside the reduction loops:
   a sum over the rows of a matrix vectorises along each row;
4. compute a reduction, a lane tree and a row buffer inside their consumer, at the
   loop over the leading axes that index them (a softmax row's max and sum, once per
   row, while the row is in cache); at the root where the consumers share no such loop
   (a row buffer is then inlined after all, as it is where a row outgrows half the
   second-level cache);
5. on every root stage, fuse leading data loops into one parallel loop until it has
   an iteration per core, then more (up to four per core) while each iteration
   keeps :data:`CHUNK_BYTES` of work; no parallel loop below that much work in all;
6. vectorise the innermost data loop (fused with the loops before it while shorter
   than a vector), split by the target's vector width, the last step shifted back
   inside the loop (a reduction's loop whole: an element must not be added twice);
   a row buffer's row and a reduction's lanes likewise;
7. tile a contraction (a sum of products whose factors vary along different data
   axes: a matrix product, a convolution) in levels, its element-wise epilogue
   computed at the tile (:mod:`.tiling`); rules 1 and 3 to 6 leave it alone, and a
   stage it reads is computed at the root.

:class:`ScheduleChoices` overrides the rules' picks one knob at a time: it is the
search space a tuner will walk.

>>> from tilewise import te
>>> from tilewise.ops import nn
>>> x = te.placeholder((64, 1000), name="x")
>>> y = nn.softmax(x, axis=1)
>>> s = generated_schedule([y], Target.from_str("c -mcpu=x86-64-v4"))
>>> print(s)                                  # doctest: +NORMALIZE_WHITESPACE
stage x [root] ()
stage softmax_max_lanes [at softmax.i0] (i0, k1.outer, k1.lane)
stage softmax_max_tail [at softmax.i0] (i0, k1.tail)
stage softmax_max [at softmax.i0] (i0)
stage softmax_shift [at softmax.i0] (i0, i1.outer, i1.inner)
stage softmax_exp [at softmax.i0] (i0, i1.outer, i1.inner)
stage softmax_sum_lanes [at softmax.i0] (i0, k2.outer, k2.lane)
stage softmax_sum_tail [at softmax.i0] (i0, k2.tail)
stage softmax_sum [at softmax.i0] (i0)
stage softmax_inv [at softmax.i0] (i0)
stage softmax [root] (i0, i1.outer, i1.inner)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ScheduleError
from ..ir import (
    Binary,
    BinaryOp,
    Call,
    Expr,
    MathFunc,
    Select,
    Var,
    collect,
)
from ..lower.bound import infer_bounds
from ..lower.inline import effective_bodies
from ..schedule import AttachKind, Schedule, Stage, create_schedule
from ..target import Target
from ..te.operation import ComputeOp, Operation
from ..te.tensor import IterVar, Tensor, TensorRead
from .lane_reduce import LaneGraph, Layout, lane_rewrite, loop_layout, vector_lanes, widest
from .tiling import (
    TileChoices,
    Tiled,
    fallback_tiles,
    plan_tiles,
    producers,
    readers,
    schedule_tiles,
)

#: Bytes of work (elements touched, times their size) that make one parallel
#: iteration worth its share of an OpenMP fork; below it a kernel stays serial.
CHUNK_BYTES = 16 * 1024


@dataclass(frozen=True)
class ScheduleChoices:
    """The knobs of :func:`generated_schedule`; each default is the rules' pick.

    - ``parallel_axes``: how many leading data loops of each root stage are fused into
      its parallel loop (0: none; None: the rule; capped where a reduction is computed).
    - ``vectorize``: vectorise the innermost data loop.
    - ``vector_split``: split the vector loop by the vector width (``unroll`` widths at
      a time) rather than hand the whole loop to ``omp simd``.
    - ``unroll``: vector widths per step of a split vector loop.
    - ``shift_tail``: where the vector width does not divide the loop, its last step
      moves back to end at the loop's end (Halide's ``shift_inwards``: a few elements
      computed twice, every step whole) rather than a guarded, partial last step.
      A reduction's vector loop is never split (``omp simd`` over the whole loop).
    - ``attach_reductions``: compute reductions inside their consumer (rule 4) rather
      than each at the root.
    - ``lane_reduce``: a float row reduction accumulates lane-wise (rule 1).
    - ``accumulators``: vectors of lane accumulators per reduction (None: the rule,
      up to four while each still takes sixteen vectors of the row and the tail stays
      under a vector).
    - ``row_buffers``: compute an element-wise stage read by several passes over a row
      once per row (rule 2) rather than inline it into each.
    - ``tiles``: the tiles of each contraction (rule 7), in the order the schedule
      lists them; those not given (all, by default) take the rule's
      (:func:`.tiling.fallback_tiles`).
    """

    parallel_axes: int | None = None
    vectorize: bool = True
    vector_split: bool = True
    unroll: int = 1
    shift_tail: bool = True
    attach_reductions: bool = True
    lane_reduce: bool = True
    accumulators: int | None = None
    row_buffers: bool = True
    tiles: tuple[TileChoices, ...] = ()

    def __post_init__(self) -> None:
        if self.parallel_axes is not None and self.parallel_axes < 0:
            raise ScheduleError(f"parallel_axes must be >= 0, got {self.parallel_axes}")
        if self.unroll < 1:
            raise ScheduleError(f"unroll must be >= 1, got {self.unroll}")
        if self.accumulators is not None and self.accumulators < 1:
            raise ScheduleError(f"accumulators must be >= 1, got {self.accumulators}")


def generated_schedule(
    outputs: Sequence[Tensor], target: str | Target = "c", choices: ScheduleChoices | None = None
) -> Schedule:
    """A schedule of ``outputs`` (one kernel; several outputs each get a loop nest)
    by the rules of this module. Rule 1 rewrites the compute: the schedule holds stages
    that ``outputs`` do not name, and each output's tensor names the stage computing
    it now (as after :meth:`Schedule.cache_write`), so ``outputs`` are built as given.

    >>> s = generated_schedule([y], Target.from_str("c"))
    >>> mod = tw.build(s, [x, y])                # doctest: +SKIP
    """
    tgt = Target.from_str(target)
    ch = choices or ScheduleChoices()
    if not outputs:
        raise ScheduleError("generated_schedule: no outputs")
    graph = lane_rewrite(list(outputs), tgt, ch.lane_reduce, ch.accumulators)
    refused: set[Operation] = set()
    while True:  # once more for each row buffer that rule 4 cannot place
        s = create_schedule([t.op for t in graph.outputs])
        for old, new in zip(outputs, graph.outputs, strict=True):
            if old.op is not new.op:
                s.stage_map[old.op] = s[new]
        lost = _schedule(s, graph, tgt, ch, refused)
        if not lost:
            return s
        refused |= lost


def _schedule(s: Schedule, graph: LaneGraph, tgt: Target, ch: ScheduleChoices,
              refused: set[Operation]) -> set[Operation]:
    """Schedule ``s`` by rules 2 to 7; the ops of the row buffers it could not place
    (the schedule is then unfinished)."""
    for st in s.stages:
        if (st.is_compute and not st.is_output and not st.op.reduce_axis
                and st.op not in graph.trees):
            st.compute_inline()
    tiled = plan_tiles(s, tgt)
    tiles = _tile_choices(tiled, tgt, ch.tiles)
    for t, tc in zip(tiled, tiles, strict=True):
        if tc.inputs_at_root:
            for p in producers(s, t.acc):
                p.compute_root()
    epilogues = {e.op for t in tiled for e in t.chain}
    rows = (_row_buffers(s, effective_bodies(s), graph.trees, refused | epilogues)
            if ch.row_buffers and ch.attach_reductions else [])
    bodies = effective_bodies(s)
    own = {st for t in tiled for st in (t.host, t.acc)}
    live = [st for st in s.stages if st.is_compute and st.attach_kind is not AttachKind.INLINE
            and st not in own]
    layout = {st: graph.layouts.get(st.op) or loop_layout(st, bodies[st]) for st in live}
    pinned = {rd.tensor.op for st in own for rd in collect(bodies[st], TensorRead)}
    place = _placements([st for st in live if st.op not in pinned], bodies, layout, ch,
                        live)
    lost = {e.op for e in rows if e not in place}
    if lost:
        return lost
    for st in live:
        lay = layout[st]
        if st.op.reduce_axis:
            st.reorder(*lay.outer, *lay.reduce, *lay.inner)
    loops: dict[Stage, dict[int, IterVar]] = {}
    for st in live:
        if st in place:
            continue
        mine = [r for r, (h, _) in place.items() if h is st]
        depths = [place[r][1] for r in mine]
        work = (_work(st) + sum(_work(r) for r in mine)) * widest(st, bodies[st])
        loops[st] = _schedule_root(st, layout[st], min(depths, default=len(layout[st].outer)),
                                   max(depths, default=0), work, tgt, ch, bodies[st])
    for r, (host, depth) in place.items():
        r.compute_at(host, loops[host][depth])
    bounds = infer_bounds(s, bodies) if rows else {}
    for e in rows:
        extent = [bounds[e].extent[a] for a in e.op.axis]
        if math.prod(extent) * e.op.dtype.bytes > tgt.l2_bytes // 2:
            lost.add(e.op)
    if lost:
        return lost
    for r in place:
        inner = list(layout[r].inner)
        if r in rows:  # the row: the innermost axes that the buffer spans
            inner = list(r.op.axis)
            while inner and bounds[r].extent[inner[0]] == 1:
                inner.pop(0)
        _vectorize(r, inner, vector_lanes(tgt, r, bodies[r]), ch)
    for t, tc in zip(tiled, tiles, strict=True):
        work = math.prod(t.info.data) * math.prod(t.info.reduce) * t.info.bytes
        schedule_tiles(t, tc, parallel=tgt.cores > 1 and work >= CHUNK_BYTES)
    return set()


def _tile_choices(tiled: list[Tiled], tgt: Target, given: tuple[TileChoices, ...]
                  ) -> list[TileChoices]:
    """Rule 7's tiles of each contraction: those given, else the rule's."""
    if len(given) > len(tiled):
        raise ScheduleError(f"tiles for {len(given)} contractions; the compute has "
                            f"{len(tiled)}")
    return [given[n] if n < len(given) else fallback_tiles(t.info, tgt)
            for n, t in enumerate(tiled)]


# ---- rule 1: lane-wise accumulation ---------------------------------------------------


def _row_buffers(s: Schedule, bodies: dict, trees: frozenset[Operation],
                 refused: set[Operation]) -> list[Stage]:
    """Take out of the inlined stages those that rule 2 computes into a row buffer
    (consumers first: a buffer read by two passes makes its producer's readers two)."""
    kept: list[Stage] = []
    for e in reversed(s.stages):
        if e.attach_kind is not AttachKind.INLINE or e.op in refused:
            continue
        users = readers(s, e)
        costly = _costly(bodies[e])
        shared = costly and len(users) > 1 and any(r.op.reduce_axis for r in users)
        per_row = costly and _of_rows(s, bodies[e], trees)
        clamp = _clamps(bodies[e]) and any(r in kept and _calls_on(r, e) for r in users)
        if shared or per_row or clamp:
            e.compute_root()
            kept.append(e)
    return kept


def _of_rows(s: Schedule, body: Expr, trees: frozenset[Operation]) -> bool:
    """``body`` reads reductions (or lane trees) alone: a value a row, as a layer norm's
    reciprocal square root. Inlined, its readers would compute it for every element:
    gcc hoists a division out of the loop, but not a square root, whose errno branch
    stays in it."""
    reads = collect(body, TensorRead)
    return bool(reads) and all(
        (st := s[rd.tensor]).is_compute and st.attach_kind is not AttachKind.INLINE
        and (bool(st.op.reduce_axis) or st.op in trees) for rd in reads)


def _clamps(body: Expr) -> bool:
    """A max, min or select: gcc turns ``exp(max(d, c))`` into a select of ``exp(d)``
    and ``exp(c)``, calling exp on ``d`` unclamped, unless ``max(d, c)`` is in memory."""
    return (any(b.op in (BinaryOp.MAX, BinaryOp.MIN) for b in collect(body, Binary))
            or bool(collect(body, Select)))


def _calls_on(reader: Stage, e: Stage) -> bool:
    """``reader`` applies a math function to a value it reads from ``e``."""
    t = e.op.output(0)
    op = reader.op
    assert isinstance(op, ComputeOp)
    return any(rd.tensor is t for c in collect(op.body, Call) for rd in collect(c, TensorRead))


def _costly(body: Expr) -> bool:
    """A math call or a float division: dearer than storing and loading the value."""
    return (any(c.func is not MathFunc.ABS for c in collect(body, Call))
            or any(b.op is BinaryOp.DIV and b.dtype.is_float for b in collect(body, Binary)))


# ---- rule 3: loop order of a reduction -----------------------------------------------


# ---- rule 4: where reductions, lane trees and row buffers are computed -------------


def _placements(movable: list[Stage], bodies: dict, layout: dict[Stage, Layout],
                ch: ScheduleChoices, live: list[Stage]) -> dict[Stage, tuple[Stage, int]]:
    """stage -> (root stage, depth): each non-output stage of ``movable`` (a reduction,
    a lane tree, a row buffer) computed at the loop over the first ``depth`` outer data
    axes of that stage of ``live``. Those not listed are computed at the root."""
    place: dict[Stage, tuple[Stage, int]] = {}
    if not ch.attach_reductions:
        return place
    for r in reversed(movable):  # consumers first
        if r.is_output:
            continue
        t = r.op.output(0)
        needs = []
        for c in live:
            reads = [rd for rd in collect(bodies[c], TensorRead) if rd.tensor is t]
            if c is r or not reads:
                continue
            needs.append(place[c] if c in place else (c, _prefix(r, c, reads, layout)))
        hosts = {id(h) for h, _ in needs}
        depth = min((d for _, d in needs), default=0)
        if len(hosts) == 1 and depth > 0:
            place[r] = (needs[0][0], depth)
    return place


def _prefix(r: Stage, c: Stage, reads: list[TensorRead], layout: dict[Stage, Layout]) -> int:
    """How many of ``c``'s leading outer axes one computation of ``r`` may sit inside:
    each indexes ``r`` (or has one iteration), and none indexes a dimension that ``r``
    computes inside its reduction loops (rule 3)."""
    inner = {r.op.axis.index(a) for a in layout[r].inner}
    used: set[Var] = set()
    blocked: set[Var] = set()
    for rd in reads:
        for d, ix in enumerate(rd.indices):
            vs = set(collect(ix, Var))
            used |= vs
            if d in inner:
                blocked |= vs
    k = 0
    for a in layout[c].outer:
        if a.var in blocked or (a.var not in used and a.domain.extent > 1):
            break
        k += 1
    return k


# ---- rules 5 and 6: the loops of a root stage ----------------------------------------


def _schedule_root(st: Stage, lay: Layout, limit: int, deep: int, work: int,
                   tgt: Target, ch: ScheduleChoices, body) -> dict[int, IterVar]:
    """Parallelise and vectorise a root stage; returns its loop at each depth that a
    reduction may be computed at (depth ``n``: the loop over the first ``n`` outer axes).

    ``limit``: at most this many outer axes are fused (a reduction is computed at that
    depth); ``deep``: axes from this one on may be vectorised."""
    outer = list(lay.outer)
    lanes = vector_lanes(tgt, st, body)
    if lay.inner:
        vec = _vector_axes(list(lay.inner), lanes, ch)
        par = outer[:limit]
    elif lay.reduce:
        vec, par = [], outer[:limit]
    else:
        vec = _vector_axes(outer[deep:], lanes, ch)
        par = outer[:min(limit, len(outer) - len(vec))]
    extents = [a.domain.extent for a in par]
    if ch.parallel_axes is None:
        n = _parallel_count(extents, work, tgt.cores)
    else:
        n = min(ch.parallel_axes, len(par))
    at: dict[int, IterVar] = {d: outer[d - 1] for d in range(n + 1, len(outer) + 1)}
    if n:
        fused = st.fuse(*par[:n]) if n > 1 else par[0]
        st.parallel(fused)
        at[n] = fused
    _vectorize(st, vec, lanes, ch, chosen=True)
    return at


def _parallel_count(extents: list[int], work: int, cores: int) -> int:
    """Rule 5: how many leading loops to fuse into the parallel one."""
    if cores < 2 or work < CHUNK_BYTES:
        return 0
    n, ext = 0, 1
    for e in extents:
        if ext >= cores and (ext >= 4 * cores or work // (ext * e) < CHUNK_BYTES):
            break
        n, ext = n + 1, ext * e
    return n if ext > 1 else 0


def _vector_axes(cand: list[IterVar], lanes: int, ch: ScheduleChoices) -> list[IterVar]:
    """Rule 6's loops: the innermost, with those before it while shorter than a vector;
    none if even then shorter than half a vector."""
    if not ch.vectorize or not cand:
        return []
    vec: list[IterVar] = []
    ext = 1
    for a in reversed(cand):
        vec.insert(0, a)
        ext *= a.domain.extent
        if ext >= lanes:
            break
    return vec if 2 * ext >= lanes and ext > 1 else []


def _vectorize(st: Stage, vec: list[IterVar], lanes: int, ch: ScheduleChoices,
               chosen: bool = False) -> None:
    if not chosen:
        vec = _vector_axes(vec, lanes, ch)
    if not vec:
        return
    v = st.fuse(*vec) if len(vec) > 1 else vec[0]
    step = lanes * ch.unroll
    # A reduction's loop is not split: an element of a shifted step would be added
    # twice, and a guarded step is partitioned into three loops; omp simd peels the
    # tail of the whole loop as well.
    if ch.vector_split and v.domain.extent > step and not st.op.reduce_axis:
        tail = "shift_inwards" if ch.shift_tail else "guard"
        _, v = st.split(v, factor=step, tail=tail)
    st.vectorize(v)


def _work(st: Stage) -> int:
    """Elements a stage visits: its output's times its reduction's extent."""
    n = math.prod(a.domain.extent for a in st.op.axis)
    return n * math.prod(k.domain.extent for k in st.op.reduce_axis)


__all__ = ["CHUNK_BYTES", "ScheduleChoices", "generated_schedule"]
