"""Tensorize: replace the loops at and below an axis by a micro-kernel call.

The loops replaced must match the intrinsic's declared computation axis for
axis (data-parallel extents in order, then reduction extents). Each tensor the
kernel touches is passed as a view: the address of the first element of the
tile (every replaced loop at zero) and the strides of its buffer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import LowerError
from ..ir import Address, Const, Expr, Stmt, const, simplify, substitute
from ..schedule import BufferView, Stage, TensorIntrin
from ..te.tensor import IterKind, IterVar

if TYPE_CHECKING:
    from .nest import NestBuilder


def tensorize_stmt(
    nb: NestBuilder, st: Stage, at: IterVar, intrin: TensorIntrin, mode: str
) -> Stmt:
    """The statement replacing the loops at and below ``at``; ``mode`` says which part of
    a reduction they compute: ``body`` (all of it), ``reset`` (init) or ``update``."""
    leaves = st.leaf_iter_vars
    sub = leaves[leaves.index(at) :]
    if mode == "reset":
        sub = [iv for iv in sub if iv.kind is not IterKind.REDUCE]
    ext = nb.bounds[st].extent
    data = [ext[iv] for iv in sub if iv.kind is not IterKind.REDUCE]
    red = [ext[iv] for iv in sub if iv.kind is IterKind.REDUCE]
    want_data = [iv.domain.extent for iv in intrin.op.axis]
    want_red = [iv.domain.extent for iv in intrin.op.reduce_axis]
    if mode == "reset":
        want_red = []
    if data != want_data or red != want_red:
        raise LowerError(
            f"tensorize {intrin.name} at {st.name}.{sub[0].name}: the loops below have "
            f"extents {data} x reduce {red}, the intrinsic computes {want_data} x reduce "
            f"{want_red}"
        )
    index, reads = nb.tensorize_info[st]
    zero = {iv.var: const(0) for iv in sub}
    tensors: list[tuple[Any, tuple[Expr, ...]]] = []
    for r in reads:
        if r.tensor not in [t for t, _ in tensors]:
            tensors.append((r.tensor, r.indices))
    if len(tensors) != len(intrin.op.input_tensors):
        raise LowerError(
            f"tensorize {intrin.name} at {st.name}: the stage reads {len(tensors)} tensor(s), "
            f"the intrinsic {len(intrin.op.input_tensors)}"
        )
    ins = [_view(nb, t, idx, zero) for t, idx in tensors]
    outs = [_view(nb, st.op.output(0), index, zero)]
    impl = intrin.impl(ins, outs)
    stmt = {"body": impl.body, "reset": impl.reset, "update": impl.update}[mode]
    if stmt is None:
        raise LowerError(f"tensorize {intrin.name}: the schedule needs its {mode} form")
    if intrin.source:
        nb.extern_sources[intrin.source] = None
    return stmt


def _view(nb: NestBuilder, tensor, indices: tuple[Expr, ...], zero: dict) -> BufferView:
    buf = nb.buffers.get(tensor)
    if buf is None:
        raise LowerError(f"tensorize: {tensor.name} has no buffer (is it inlined?)")
    mins = nb.region_min[tensor]
    flat: Expr = const(0)
    origin = []
    for ix, m, stride in zip(indices, mins, buf.strides, strict=False):
        origin.append(simplify(substitute(ix, zero) - m))
        flat = flat + origin[-1] * stride
    return BufferView(
        Address(buf, simplify(flat), buf.dtype), tuple(Const(s, flat.dtype) for s in buf.strides),
        tuple(origin),
    )
