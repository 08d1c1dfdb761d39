"""A schedule derived from a compute's structure, for the kernels that no operator
template covers (whole-model compilation's element-wise, injective and reduction
groups). The rules read the stages, never an operator's name (Ansor's way):

1. inline every stage that is neither an output nor a reduction;
2. order a reduction's loops so that the data axes indexing its inputs' innermost
   dimensions (closer than any reduction axis does) run inside the reduction loops:
   a sum over the rows of a matrix vectorises along each row;
3. compute a reduction inside its consumer, at the loop over the leading axes that
   index it (a softmax row's max and sum, once per row, while the row is in cache);
   at the root where its consumers share no such loop;
4. on every root stage, fuse leading data loops into one parallel loop until it has
   an iteration per core, then more (up to four per core) while each iteration
   keeps :data:`CHUNK_BYTES` of work; no parallel loop below that much work in all;
5. vectorise the innermost data loop (fused with the loops before it while shorter
   than a vector), split by the target's vector width, the last step shifted back
   inside the loop (a reduction's loop whole: an element must not be added twice).

:class:`ScheduleChoices` overrides the rules' picks one knob at a time: it is the
search space a tuner will walk.

>>> from tilewise import te
>>> from tilewise.ops import nn
>>> x = te.placeholder((64, 1000), name="x")
>>> y = nn.softmax(x, axis=1)
>>> s = generated_schedule([y], Target.from_str("c"))
>>> print(s)                                  # doctest: +NORMALIZE_WHITESPACE
stage x [root] ()
stage softmax_max [at softmax.i0] (i0, k1)
stage softmax_exp [inline] (i0, i1)
stage softmax_sum [at softmax.i0] (i0, k2)
stage softmax [root] (i0, i1.outer, i1.inner)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ScheduleError
from ..ir import Var, collect
from ..lower.inline import effective_bodies
from ..schedule import AttachKind, Schedule, Stage, create_schedule
from ..target import Target
from ..te.tensor import IterVar, Tensor, TensorRead

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
    - ``attach_reductions``: compute reductions inside their consumer (rule 3) rather
      than each at the root.
    """

    parallel_axes: int | None = None
    vectorize: bool = True
    vector_split: bool = True
    unroll: int = 1
    shift_tail: bool = True
    attach_reductions: bool = True

    def __post_init__(self) -> None:
        if self.parallel_axes is not None and self.parallel_axes < 0:
            raise ScheduleError(f"parallel_axes must be >= 0, got {self.parallel_axes}")
        if self.unroll < 1:
            raise ScheduleError(f"unroll must be >= 1, got {self.unroll}")


@dataclass(frozen=True)
class _Layout:
    """A stage's loops by role: data loops outside the reduction, the reduction loops,
    data loops inside them (none but for a reduction that rule 2 reorders)."""

    outer: tuple[IterVar, ...]
    reduce: tuple[IterVar, ...]
    inner: tuple[IterVar, ...]


def generated_schedule(
    outputs: Sequence[Tensor], target: str | Target = "c", choices: ScheduleChoices | None = None
) -> Schedule:
    """A schedule of ``outputs`` (one kernel; several outputs each get a loop nest)
    by the rules of this module.

    >>> s = generated_schedule([y], Target.from_str("c"))
    >>> mod = tw.build(s, [x, y])                # doctest: +SKIP
    """
    tgt = Target.from_str(target)
    ch = choices or ScheduleChoices()
    if not outputs:
        raise ScheduleError("generated_schedule: no outputs")
    s = create_schedule([t.op for t in outputs])
    for st in s.stages:
        if st.is_compute and not st.is_output and not st.op.reduce_axis:
            st.compute_inline()
    bodies = effective_bodies(s)
    live = [st for st in s.stages if st.is_compute and st.attach_kind is not AttachKind.INLINE]
    layout = {st: _layout(st, bodies[st]) for st in live}
    for st in live:
        lay = layout[st]
        if st.op.reduce_axis:
            st.reorder(*lay.outer, *lay.reduce, *lay.inner)
    place = _placements(live, bodies, layout, ch)
    loops: dict[Stage, dict[int, IterVar]] = {}
    for st in live:
        if st in place:
            continue
        mine = [r for r, (h, _) in place.items() if h is st]
        depths = [place[r][1] for r in mine]
        work = (_work(st) + sum(_work(r) for r in mine)) * _widest(st, bodies[st])
        loops[st] = _schedule_root(st, layout[st], min(depths, default=len(layout[st].outer)),
                                   max(depths, default=0), work, tgt, ch, bodies[st])
    for r, (host, depth) in place.items():
        r.compute_at(host, loops[host][depth])
        _vectorize(r, list(layout[r].inner), _lanes(tgt, r, bodies[r]), ch)
    return s


# ---- rule 2: loop order of a reduction -----------------------------------------------


def _layout(st: Stage, body) -> _Layout:
    axes = tuple(st.op.axis)
    red = tuple(st.op.reduce_axis)
    if not red:
        return _Layout(axes, (), ())
    # How close each variable comes to a read's innermost dimension (0: it indexes it).
    dist: dict[Var, int] = {}
    for rd in collect(body, TensorRead):
        n = len(rd.indices)
        for d, ix in enumerate(rd.indices):
            for v in collect(ix, Var):
                dist[v] = min(dist.get(v, n), n - 1 - d)
    far = math.inf
    red = tuple(sorted(red, key=lambda k: -dist.get(k.var, far)))  # stable: ties keep order
    closest = min(dist.get(k.var, far) for k in red)
    k = len(axes)
    while k and (axes[k - 1].domain.extent == 1 or dist.get(axes[k - 1].var, far) < closest):
        k -= 1
    while k < len(axes) and axes[k].domain.extent == 1:
        k += 1  # size-1 axes gain nothing inside; keep them out with the outer ones
    return _Layout(axes[:k], red, axes[k:])


# ---- rule 3: where each reduction is computed ----------------------------------------


def _placements(live: list[Stage], bodies: dict, layout: dict[Stage, _Layout],
                ch: ScheduleChoices) -> dict[Stage, tuple[Stage, int]]:
    """reduction -> (root stage, depth): computed at the loop over the first ``depth``
    outer data axes of that stage. Reductions not listed are computed at the root."""
    place: dict[Stage, tuple[Stage, int]] = {}
    if not ch.attach_reductions:
        return place
    for r in reversed(live):  # consumers first
        if not r.op.reduce_axis or r.is_output:
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


def _prefix(r: Stage, c: Stage, reads: list[TensorRead], layout: dict[Stage, _Layout]) -> int:
    """How many of ``c``'s leading outer axes one computation of ``r`` may sit inside:
    each indexes ``r`` (or has one iteration), and none indexes a dimension that ``r``
    computes inside its reduction loops (rule 2)."""
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


# ---- rules 4 and 5: the loops of a root stage ----------------------------------------


def _schedule_root(st: Stage, lay: _Layout, limit: int, deep: int, work: int,
                   tgt: Target, ch: ScheduleChoices, body) -> dict[int, IterVar]:
    """Parallelise and vectorise a root stage; returns its loop at each depth that a
    reduction may be computed at (depth ``n``: the loop over the first ``n`` outer axes).

    ``limit``: at most this many outer axes are fused (a reduction is computed at that
    depth); ``deep``: axes from this one on may be vectorised."""
    outer = list(lay.outer)
    lanes = _lanes(tgt, st, body)
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
    """Rule 4: how many leading loops to fuse into the parallel one."""
    if cores < 2 or work < CHUNK_BYTES:
        return 0
    n, ext = 0, 1
    for e in extents:
        if ext >= cores and (ext >= 4 * cores or work // (ext * e) < CHUNK_BYTES):
            break
        n, ext = n + 1, ext * e
    return n if ext > 1 else 0


def _vector_axes(cand: list[IterVar], lanes: int, ch: ScheduleChoices) -> list[IterVar]:
    """Rule 5's loops: the innermost, with those before it while shorter than a vector;
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


def _lanes(tgt: Target, st: Stage, body) -> int:
    return tgt.vector_lanes(_widest(st, body))


def _widest(st: Stage, body) -> int:
    """The widest element (bytes) the stage writes or reads: the vector's width in
    elements is set by it."""
    return max([st.op.dtype.bytes] + [rd.dtype.bytes for rd in collect(body, TensorRead)])


def _work(st: Stage) -> int:
    """Elements a stage visits: its output's times its reduction's extent."""
    n = math.prod(a.domain.extent for a in st.op.axis)
    return n * math.prod(k.domain.extent for k in st.op.reduce_axis)


__all__ = ["CHUNK_BYTES", "ScheduleChoices", "generated_schedule"]
