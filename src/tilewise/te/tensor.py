"""Tensors, iteration variables, and the expression nodes that read tensors or reduce."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import TensorError
from ..ir import DType, Expr, Var, convert, int32
from ..ir.expr import ExprLike

if TYPE_CHECKING:
    from .operation import Operation


@dataclass(frozen=True)
class Range:
    """``[min, min + extent)`` with integer bounds."""

    min: int
    extent: int


class IterKind(enum.Enum):
    DATA_PAR = "data_par"
    REDUCE = "reduce"
    THREAD = "thread"


@dataclass(frozen=True, eq=False)
class IterVar:
    """An axis of an operation: a variable, its domain, and whether it reduces."""

    var: Var
    dom: Range | None
    kind: IterKind = IterKind.DATA_PAR
    thread_tag: str | None = None

    @property
    def name(self) -> str:
        return self.var.name

    @property
    def domain(self) -> Range:
        """The axis's range; only GPU thread axes have none."""
        if self.dom is None:
            raise TensorError(f"axis {self.var.name} has no domain (a thread axis)")
        return self.dom

    def as_expr(self) -> Expr:
        return self.var

    def __repr__(self) -> str:
        dom = "" if self.dom is None else f" in [{self.dom.min}, {self.dom.min + self.dom.extent})"
        return f"IterVar({self.var.name}{dom}, {self.kind.value})"


def _delegate(name: str):
    def method(self: IterVar, *args: Any) -> Any:
        return getattr(self.var, name)(*(a.var if isinstance(a, IterVar) else a for a in args))

    return method


for _m in (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __floordiv__ __rfloordiv__ "
    "__mod__ __rmod__ __neg__ __lt__ __le__ __gt__ __ge__"
).split():
    setattr(IterVar, _m, _delegate(_m))


@dataclass(frozen=True, eq=False)
class Tensor:
    """The output of an operation; index it to read an element in a compute body."""

    op: Operation
    value_index: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return self.op.shape

    @property
    def dtype(self) -> DType:
        return self.op.dtype

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def ndim(self) -> int:
        return len(self.op.shape)

    def __getitem__(self, indices: Any) -> TensorRead:
        if not isinstance(indices, tuple):
            indices = (indices,)
        if len(indices) != self.ndim:
            raise TensorError(
                f"tensor {self.name} has {self.ndim} dimension(s) but was indexed with "
                f"{len(indices)}"
            )
        conv = []
        for d, ix in enumerate(indices):
            e = convert(ix)
            if not e.dtype.is_int:
                raise TensorError(f"index {d} of {self.name} must be an integer, got {e.dtype}")
            conv.append(e)
        return TensorRead(self, tuple(conv), self.dtype)

    def __repr__(self) -> str:
        return f"Tensor({self.name}, shape={self.shape}, dtype={self.dtype})"


@dataclass(frozen=True, eq=False, repr=False)
class TensorRead(Expr):
    tensor: Tensor
    indices: tuple[Expr, ...]
    dtype: DType

    def ir_str(self) -> str:
        from ..ir.printer import expr_str

        return f"{self.tensor.name}[{', '.join(expr_str(i) for i in self.indices)}]"


class ReduceKind(enum.Enum):
    SUM = "sum"
    MAX = "max"
    MIN = "min"


@dataclass(frozen=True, eq=False, repr=False)
class Reduce(Expr):
    """The ``kind`` (sum, max, min) of ``source`` over the reduction axes ``axis``."""

    kind: ReduceKind
    source: Expr
    axis: tuple[IterVar, ...] = field(default=())
    dtype: DType = int32

    def ir_str(self) -> str:
        from ..ir.printer import expr_str

        axes = ", ".join(a.name for a in self.axis)
        return f"{self.kind.value}({expr_str(self.source)}, axis=[{axes}])"


def reduce_axis(dom: tuple[int, int], name: str = "rv") -> IterVar:
    """A reduction axis over ``[lo, hi)``."""
    lo, hi = dom
    if not all(isinstance(v, int) for v in (lo, hi)) or hi <= lo:
        raise TensorError(f"reduce_axis {name}: need integers lo < hi, got {dom}")
    return IterVar(Var(name), Range(lo, hi - lo), IterKind.REDUCE)


def make_reduce(kind: ReduceKind, source: ExprLike, axis: Any) -> Reduce:
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    for a in axes:
        if not isinstance(a, IterVar) or a.kind is not IterKind.REDUCE:
            raise TensorError(f"{kind.value}: axis {a!r} is not a reduce_axis")
    src = convert(source)
    return Reduce(kind, src, axes, src.dtype)
