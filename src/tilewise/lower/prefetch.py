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
from ..te.tensor import IterVar, Tensor
from .bound import enclosing_loops

if TYPE_CHECKING:
    from .nest import NestBuilder


def prefetch_stmt(nb: NestBuilder, st: Stage, iv: IterVar, tensor: Tensor,
                  offset: int) -> Stmt:
    """The hints for what the iteration of ``iv`` that runs ``offset`` after this one
    reads of ``tensor``."""
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
        reads += [(r.indices, relax, own) for r in nb.tensorize_info.get(reader, ((), []))[1]
                  if r.tensor is tensor]
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
    if count <= run * math.prod(size for _, size in box[:lead]):
        # One run over the region's flat span: its rows are contiguous (a fused index,
        # as a 1x1 convolution's H*W), or it is one row.
        start = _held(substitute(first, ahead), 0, buf.size - count)
        stmt: Stmt = Prefetch(buf, simplify(start, ranges), count)
    else:
        index: Expr = const(0)
        rows = []
        for d, (lo, size) in enumerate(box[:lead]):
            v = Var(f"{tensor.name}_pf{d}")
            rows.append((v, size))
            at = _held(substitute(lo, ahead) + v, mins[d], mins[d] + buf.shape[d] - 1)
            index = index + (at - mins[d]) * buf.strides[d]
        lo = box[lead][0]
        col = _held(substitute(lo, ahead), mins[lead],
                    mins[lead] + buf.shape[lead] - box[lead][1])
        index = index + (col - mins[lead]) * buf.strides[lead]
        stmt = Prefetch(buf, simplify(index, ranges), run)
        for v, size in reversed(rows):
            stmt = For(v, const(size), ForKind.SERIAL, stmt)
    # A test loop partitioning turns into a last ``offset`` iterations without hints.
    return IfThenElse(iv.var + offset < ext, stmt)


def _readers(nb: NestBuilder, st: Stage, iv: IterVar) -> list[Stage]:
    """``st`` and the stages whose nests run inside its loop ``iv``."""
    inside = [p for p in nb.sch.stages
              if p.attach_kind is AttachKind.SCOPE and iv in enclosing_loops(p)]
    return [st, *inside]


def _held(x: Expr, lo: Expr | int, hi: Expr | int) -> Expr:
    """``x`` held inside ``[lo, hi]``."""
    return min_(max_(x, convert(lo)), convert(hi))
