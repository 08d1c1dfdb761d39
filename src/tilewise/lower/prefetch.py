"""Prefetch: the hints that :meth:`Stage.prefetch` asks for, placed at the top of a
loop's body.

The region of the tensor that one iteration of the loop reads comes from the stage's
own reads, every loop below swept over its range (bound inference's interval
arithmetic), then moved ``offset`` iterations on. It is fetched as one contiguous run
(:class:`~tilewise.ir.Prefetch`) over its span in the buffer where that is no longer
than the region's rows together, else as loops over all but its last dimension around
a run along the last. The last ``offset`` iterations ask for nothing (there is no
iteration that far on to read for).
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
from ..schedule import Stage
from ..te.tensor import IterVar, Tensor
from .bound import enclosing_loops

if TYPE_CHECKING:
    from .nest import NestBuilder


def prefetch_stmt(nb: NestBuilder, st: Stage, iv: IterVar, tensor: Tensor,
                  offset: int) -> Stmt:
    """The hints for what the iteration of ``iv`` that runs ``offset`` after this one
    reads of ``tensor``."""
    where = f"prefetch of {tensor.name} at {st.name}.{iv.name}"
    reads = [r for r in nb.tensorize_info[st][1] if r.tensor is tensor]
    if not reads:
        raise LowerError(f"{where}: {st.name} does not read {tensor.name} itself (a "
                         "cache_read copy of it, or a stage inlined into it, does)")
    buf = nb.buffers.get(tensor)
    if buf is None:
        raise LowerError(f"{where}: {tensor.name} is inlined and has no buffer to fetch")
    leaves = st.leaf_iter_vars
    below = leaves[leaves.index(iv) + 1:]
    ranges = {}
    for loop in enclosing_loops(st) + leaves:
        ext = nb.bounds[nb.owner[loop]].extent.get(loop)
        if ext:
            ranges[loop.var] = (0, ext - 1)
    relax = {loop.var: Interval(const(0), const(ranges[loop.var][1])) for loop in below}
    mins = nb.region_min[tensor]

    def span(exprs: list[Expr], what: str) -> tuple[Expr, int]:
        """(first, count) of the values ``exprs`` take in one iteration of ``iv``."""
        whole = functools.reduce(Interval.union, (
            eval_interval(simplify(e, ranges), relax, ranges) for e in exprs))
        lo = simplify(whole.lo, ranges)
        size = const_bound(simplify(whole.hi - lo, ranges), ranges)[1]
        if size is None:
            raise LowerError(f"{where}: cannot bound the {what} that one iteration reads")
        return lo, size + 1

    flat = [sum(((ix - m) * stride for ix, m, stride in zip(r.indices, mins, buf.strides,
                                                            strict=False)), const(0))
            for r in reads]
    first, count = span(flat, "elements")
    box = [span([r.indices[d] for r in reads], f"dimension {d}")
           for d in range(len(tensor.shape))]
    count = min(count, buf.size)
    *outer, (row_lo, run) = box
    run = min(run, buf.shape[-1])
    # The iteration ``offset`` on, where it exists; under that test the index is held
    # inside the buffer wherever it cannot be shown to be (a read the stage guards).
    ext = ranges[iv.var][1] + 1
    if offset >= ext:
        return seq()
    ranges[iv.var] = (0, ext - 1 - offset)
    ahead = {iv.var: iv.var + offset}
    if count <= run * math.prod(size for _, size in outer):
        # One run over the region's flat span: its rows are contiguous (a fused index,
        # as a 1x1 convolution's H*W), or it is one row.
        start = _held(substitute(first, ahead), 0, buf.size - count)
        stmt: Stmt = Prefetch(buf, simplify(start, ranges), count)
    else:
        index: Expr = const(0)
        loops = []
        for d, (lo, size) in enumerate(outer):
            v = Var(f"{tensor.name}_pf{d}")
            loops.append((v, min(size, buf.shape[d])))
            row = _held(substitute(lo, ahead) + v, mins[d], mins[d] + buf.shape[d] - 1)
            index = index + (row - mins[d]) * buf.strides[d]
        col = _held(substitute(row_lo, ahead), mins[-1], mins[-1] + buf.shape[-1] - run)
        index = index + (col - mins[-1]) * buf.strides[-1]
        stmt = Prefetch(buf, simplify(index, ranges), run)
        for v, size in reversed(loops):
            stmt = For(v, const(size), ForKind.SERIAL, stmt)
    # A test loop partitioning turns into a last ``offset`` iterations without hints.
    return IfThenElse(iv.var + offset < ext, stmt)


def _held(x: Expr, lo: Expr | int, hi: Expr | int) -> Expr:
    """``x`` held inside ``[lo, hi]``."""
    return min_(max_(x, convert(lo)), convert(hi))
