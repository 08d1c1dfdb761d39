"""Tensor intrinsics: a hand-written micro-kernel that ``Stage.tensorize`` drops into
a loop nest in place of the loops it computes.

The intrinsic declares its computation in te (so lowering can check the loops it
replaces) and its implementation as code: a function that receives views of the
buffers it touches (pointer to the first element and row strides) and returns
the statements to emit, plus the C or CUDA source of the kernel it calls.

>>> def impl(ins, outs):
...     a, b = ins; c, = outs
...     call = lambda f: ExternCall(f, (a.ptr, b.ptr, c.ptr, a.strides[0], c.strides[0]))
...     return IntrinImpl(body=call("mk_full"), reset=call("mk_zero"), update=call("mk_acc"))
>>> intrin = te.decl_tensor_intrin(C.op, impl, source=C_SOURCE)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ScheduleError
from ..ir import Expr, Stmt
from ..te.operation import ComputeOp, Operation


@dataclass(frozen=True)
class BufferView:
    """A window of a buffer: address of its first element and the buffer's row-major
    strides; ``origin`` is that element's index in the buffer, for kernels that handle
    the buffer's borders themselves (an index may then lie outside it, in the padding);
    ``index`` the same element's index in the tensor, where the buffer may hold only
    the region around the tile (for kernels that stop at the tensor's edge).

    ``axis_strides`` has one entry per dimension of the intrinsic's own tensor: how far
    the address moves when that dimension's index grows by one, whatever the buffer's
    rank and layout (a (K, C, 1, 1) weight read as a[k, c] has axis strides (C, 1));
    ``None`` where the stage's address is not affine in that dimension's loop."""

    ptr: Expr
    strides: tuple[Expr, ...]
    origin: tuple[Expr, ...] = ()
    axis_strides: tuple[Expr | None, ...] = ()
    index: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class IntrinImpl:
    """``body`` computes the whole result; ``reset`` and ``update`` split a reduction
    whose outer part stays in the framework's loops."""

    body: Stmt
    reset: Stmt | None = None
    update: Stmt | None = None


@dataclass(frozen=True, eq=False)
class TensorIntrin:
    name: str
    op: ComputeOp
    impl: Callable[[list[BufferView], list[BufferView]], IntrinImpl]
    source: str = ""


def decl_tensor_intrin(
    op: Operation,
    impl: Callable[[list[BufferView], list[BufferView]], IntrinImpl],
    source: str = "",
    name: str | None = None,
) -> TensorIntrin:
    """Declare a micro-kernel computing ``op`` (a te compute over placeholders)."""
    if not isinstance(op, ComputeOp):
        raise ScheduleError("decl_tensor_intrin: the intrinsic must be declared by a te.compute")
    return TensorIntrin(name or op.name, op, impl, source)
