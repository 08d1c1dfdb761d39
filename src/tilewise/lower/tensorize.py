"""Tensorize: replace the loops at and below an axis by a micro-kernel call.

The loops replaced must match the intrinsic's declared computation axis for
axis (data-parallel extents in order, then reduction extents). Each tensor the
kernel touches is passed as a view: the address of the first element of the
tile (every replaced loop at zero), the strides of its buffer, and the address step
per dimension of the intrinsic's own tensor (its axis strides).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import LowerError
from ..ir import Address, Const, Expr, Stmt, Var, collect, const, simplify, substitute
from ..ir.simplify import linear_form
from ..schedule import BufferView, Stage, TensorIntrin
from ..te.tensor import IterKind, IterVar, TensorRead

if TYPE_CHECKING:
    from .nest import NestBuilder


def tensorize_stmt(
    nb: NestBuilder, st: Stage, at: IterVar, intrin: TensorIntrin, mode: str
) -> Stmt:
    """The statement replacing the loops at and below ``at``; ``mode`` says which part of
    a reduction they compute: ``body`` (all of it), ``reset`` (init) or ``update``."""
    leaves = st.leaf_iter_vars
    sub = below = leaves[leaves.index(at) :]
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
    # The intrinsic's axes, data then reduction, are the loops below ``at`` in that
    # order (a reset leaves the reduction loops out, but the views' strides keep them).
    axis_loop = dict(zip(
        [iv.var for iv in (*intrin.op.axis, *intrin.op.reduce_axis)],
        [iv.var for iv in below if iv.kind is not IterKind.REDUCE]
        + [iv.var for iv in below if iv.kind is IterKind.REDUCE],
        strict=False,
    ))
    ranges = {iv.var: (0, ext[iv] - 1) for iv in below}
    intrin_reads = {r.tensor: r.indices for r in collect(intrin.op.body, TensorRead)}
    ins = [
        _view(nb, t, idx, zero, intrin_reads.get(p, ()), axis_loop, ranges)
        for (t, idx), p in zip(tensors, intrin.op.input_tensors, strict=True)
    ]
    out_index = tuple(iv.var for iv in intrin.op.axis)
    outs = [_view(nb, st.op.output(0), index, zero, out_index, axis_loop, ranges)]
    impl = intrin.impl(ins, outs)
    stmt = {"body": impl.body, "reset": impl.reset, "update": impl.update}[mode]
    if stmt is None:
        raise LowerError(f"tensorize {intrin.name}: the schedule needs its {mode} form")
    if intrin.source:
        nb.extern_sources[intrin.source] = None
    return stmt


def _view(
    nb: NestBuilder,
    tensor,
    indices: tuple[Expr, ...],
    zero: dict,
    intrin_index: tuple[Expr, ...],
    axis_loop: dict[Var, Var],
    ranges: dict[Var, tuple[int, int]],
) -> BufferView:
    buf = nb.buffers.get(tensor)
    if buf is None:
        raise LowerError(f"tensorize: {tensor.name} has no buffer (is it inlined?)")
    mins = nb.region_min[tensor]
    address: Expr = const(0)
    for ix, m, stride in zip(indices, mins, buf.strides, strict=False):
        address = address + (ix - m) * stride
    index = tuple(substitute(ix, zero) for ix in indices)
    origin = tuple(simplify(ix - m) for ix, m in zip(index, mins, strict=False))
    steps = _steps(simplify(address, ranges))  # ranges fold (32 * jo + ji) // 32 to jo
    axis_strides = tuple(_axis_stride(e, steps, axis_loop, address.dtype) for e in intrin_index)
    # The first element's offset from the simplified origins: simplifying the address
    # with the loops at zero again took a third of this function's time.
    first: Expr = const(0)
    for o, stride in zip(origin, buf.strides, strict=False):
        first = first + o * stride
    return BufferView(
        Address(buf, simplify(first), buf.dtype),
        tuple(Const(s, address.dtype) for s in buf.strides), origin, axis_strides, index,
    )


def _steps(address: Expr) -> dict[Var, int | None]:
    """Each loop variable's coefficient in ``address``; None where it also occurs
    inside a non-affine part (a division, a product of loops)."""
    steps: dict[Var, int | None] = {}
    for atom, coeff in linear_form(address):
        if isinstance(atom, Var):
            if atom in steps and steps[atom] is None:
                continue
            steps[atom] = (steps.get(atom) or 0) + coeff
        else:
            for v in collect(atom, Var):
                steps[v] = None
    return steps


def _axis_stride(
    index: Expr, steps: dict[Var, int | None], axis_loop: dict[Var, Var], dtype
) -> Expr | None:
    """The address step per unit of one of the intrinsic tensor's indices (``i + r``,
    say): the same through every intrinsic axis in it, else None."""
    found: set[int | None] = set()
    for atom, coeff in linear_form(index):
        loop = axis_loop.get(atom) if isinstance(atom, Var) else None
        if loop is None:
            continue
        step = steps.get(loop, 0)
        found.add(None if step is None or step % coeff else step // coeff)
    (step, *others) = found or {None}
    return None if step is None or others else Const(step, dtype)
