"""Prefetch: the hints that :meth:`Stage.prefetch` asks for, placed at the top of a
loop's body.

The region of the tensor that one iteration of the loop reads comes from the reads of
the stage and of the stages computed inside the loop, every loop below swept over its
range (bound inference's interval arithmetic), then moved ``offset`` iterations on. It
is fetched as one contiguous run (:class:`~tilewise.ir.Prefetch`) over its span in the
buffer where that is no longer than the region's rows together, else as loops over
its leading dimensions around a run over the rest (the trailing dimensions it covers
whole, and the one before them). The last ``offset`` iterations ask for nothing (there
is no iteration that far on to read for).

Spread over the loops inside, down to a loop ``spread``, the hints go at the top of
that loop's body instead: the loops' iterations, counted as one index ``t`` of ``T``,
each ask for a ``1/T`` share, the ``t``-th, of the region's rows (of the one run where
the region is contiguous).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from ..errors import LowerError
from ..ir import (
    Expr,
    For,
    ForKind,
    IfThenElse,
    Interval,
    Prefetch,
    Stmt,
    Var,
    const,
    const_bound,
    convert,
    eval_interval,
    max_,
    min_,
    seq,
    simplify,
    substitute,
)
from ..schedule import AttachKind, Stage
from ..schedule.stage import PrefetchRequest
from ..te.tensor import IterVar
from .bound import enclosing_loops

if TYPE_CHECKING:
    from .nest import NestBuilder


def prefetch_stmt(nb: NestBuilder, st: Stage, iv: IterVar, ask: PrefetchRequest) -> Stmt:
    """The hints for what the iteration of ``iv`` that runs ``ask.offset`` after this
    one reads of ``ask.tensor``, or, spread, this iteration's share of them."""
    tensor, offset = ask.tensor, ask.offset
    where = f"prefetch of {tensor.name} at {st.name}.{iv.name}"
    buf = nb.buffers.get(tensor)
    if buf is None:
        raise LowerError(f"{where}: {tensor.name} is inlined and has no buffer to fetch")
    mins = nb.region_min[tensor]
    # Each read: its indices, the loops below ``iv`` it sweeps, the range of every loop.
    reads = []
    ranges: dict[Var, tuple[int, int]] = {}
    for reader in _readers(nb, st, iv):
        loops = enclosing_loops(reader) + reader.leaf_iter_vars
        own = {}
        for loop in loops:
            ext = nb.bounds[nb.owner[loop]].extent.get(loop)
            if ext:
                own[loop.var] = (0, ext - 1)
        ranges.update(own)
        relax = {loop.var: Interval(const(0), const(own[loop.var][1]))
                 for loop in loops[loops.index(iv) + 1:] if loop.var in own}
        reads += [(r.indices, relax, own) for r in nb.reads(reader) if r.tensor is tensor]
    if not reads:
        raise LowerError(f"{where}: neither {st.name} nor a stage computed inside that loop "
                         f"reads {tensor.name} itself (a cache_read copy of it, or a stage "
                         "inlined into them, may)")

    def span(pick, what: str) -> tuple[Expr, int]:
        """(first, count) of the values ``pick(indices)`` takes in one iteration."""
        whole = functools.reduce(Interval.union, (
            eval_interval(simplify(pick(ix), own), relax, own) for ix, relax, own in reads))
        lo = simplify(whole.lo, ranges)
        size = const_bound(simplify(whole.hi - lo, ranges), ranges)[1]
        if size is None:
            raise LowerError(f"{where}: cannot bound the {what} that one iteration reads")
        return lo, size + 1

    def flat(ix) -> Expr:
        return sum(((i - m) * stride for i, m, stride in zip(ix, mins, buf.strides,
                                                            strict=False)), const(0))

    first, count = span(flat, "elements")
    count = min(count, buf.size)
    box = [span(lambda ix, d=d: ix[d], f"dimension {d}") for d in range(len(tensor.shape))]
    box = [(lo, min(size, n)) for (lo, size), n in zip(box, buf.shape, strict=True)]
    # The run: the trailing dimensions the region covers whole, and the one before.
    lead = len(box) - 1
    while lead > 0 and box[lead][1] == buf.shape[lead]:
        lead -= 1
    run = box[lead][1] * math.prod(buf.shape[lead + 1:])
    # The iteration ``offset`` on, where it exists; under that test the index is held
    # inside the buffer wherever it cannot be shown to be (a read the stage guards).
    ext = ranges[iv.var][1] + 1
    if offset >= ext:
        return seq()
    ranges[iv.var] = (0, ext - 1 - offset)
    ahead = {iv.var: iv.var + offset}
    share, shares = _share(nb, st, iv, ask.spread, where)
    if count <= run * math.prod(size for _, size in box[:lead]):
        # One run over the region's flat span: its rows are contiguous (a fused index,
        # as a 1x1 convolution's H*W), or it is one row.
        piece = -(-count // shares)
        start = _held(substitute(first, ahead) + share * piece, 0, buf.size - piece)
        stmt: Stmt = Prefetch(buf, simplify(start, ranges), piece, ask.level)
    else:
        # A loop over each leading dimension of the region, or spread, one over this
        # iteration's share of its rows counted as one index.
        sizes = [size for _, size in box[:lead]]
        row_loops: list[tuple[Var, int]]
        within: list[Expr]
        if shares == 1:
            row_loops = [(Var(f"{tensor.name}_pf{d}"), size) for d, size in enumerate(sizes)]
            within = [v for v, _ in row_loops]
        else:
            each = -(-math.prod(sizes) // shares)
            row_loops = [(Var(f"{tensor.name}_pf"), each)]
            row = _held(share * each + row_loops[0][0], 0, math.prod(sizes) - 1)
            within = [(row // math.prod(sizes[d + 1:])) % size if d else
                      row // math.prod(sizes[1:]) for d, size in enumerate(sizes)]
        index: Expr = const(0)
        for d, ((lo, _), w) in enumerate(zip(box[:lead], within, strict=True)):
            at = _held(substitute(lo, ahead) + w, mins[d], mins[d] + buf.shape[d] - 1)
            index = index + (at - mins[d]) * buf.strides[d]
        lo = box[lead][0]
        col = _held(substitute(lo, ahead), mins[lead],
                    mins[lead] + buf.shape[lead] - box[lead][1])
        index = index + (col - mins[lead]) * buf.strides[lead]
        ranges.update((v, (0, size - 1)) for v, size in row_loops)
        stmt = Prefetch(buf, simplify(index, ranges), run, ask.level)
        for v, size in reversed(row_loops):
            stmt = For(v, const(size), ForKind.SERIAL, stmt)
    # A test loop partitioning turns into a last ``offset`` iterations without hints.
    return IfThenElse(iv.var + offset < ext, stmt)


def _share(nb: NestBuilder, st: Stage, iv: IterVar, spread: IterVar | None,
           where: str) -> tuple[Expr, int]:
    """(t, T): which share of the hints an iteration of the loops from inside ``iv``
    down to ``spread`` asks for, of how many; (0, 1) unspread."""
    if spread is None:
        return const(0), 1
    leaves = st.leaf_iter_vars
    index: Expr = const(0)
    shares = 1
    for loop in reversed(leaves[leaves.index(iv) + 1:leaves.index(spread) + 1]):
        ext = nb.bounds[nb.owner[loop]].extent.get(loop)
        if not ext:
            raise LowerError(f"{where}: the loop {loop.name} it is spread over has no "
                             "constant extent")
        index = index + loop.var * shares
        shares *= ext
    return index, shares


def _readers(nb: NestBuilder, st: Stage, iv: IterVar) -> list[Stage]:
    """``st`` and the stages whose nests run inside its loop ``iv``."""
    inside = [p for p in nb.sch.stages
              if p.attach_kind is AttachKind.SCOPE and iv in enclosing_loops(p)]
    return [st, *inside]


def _held(x: Expr, lo: Expr | int, hi: Expr | int) -> Expr:
    """``x`` held inside ``[lo, hi]``."""
    return min_(max_(x, convert(lo)), convert(hi))
