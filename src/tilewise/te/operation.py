"""Operations: placeholders (inputs) and computes (a body over an iteration domain)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..errors import TensorError
from ..ir import DType, Expr, Var, as_dtype, collect, convert
from .tensor import IterKind, IterVar, Range, Reduce, Tensor, TensorRead


@dataclass(frozen=True, eq=False)
class Operation:
    name: str

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def dtype(self) -> DType:
        raise NotImplementedError

    @property
    def axis(self) -> tuple[IterVar, ...]:
        """The data-parallel axes; a placeholder has none (it is not computed)."""
        return ()

    @property
    def reduce_axis(self) -> tuple[IterVar, ...]:
        return ()

    def output(self, index: int = 0) -> Tensor:
        if index != 0:
            raise TensorError(f"operation {self.name} has a single output")
        return self._output

    @cached_property
    def _output(self) -> Tensor:
        return Tensor(self)

    @property
    def input_tensors(self) -> tuple[Tensor, ...]:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


@dataclass(frozen=True, eq=False, repr=False)
class PlaceholderOp(Operation):
    shape_: tuple[int, ...] = ()
    dtype_: DType = field(default_factory=lambda: as_dtype("float32"))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shape_

    @property
    def dtype(self) -> DType:
        return self.dtype_


@dataclass(frozen=True, eq=False, repr=False)
class ComputeOp(Operation):
    """``out[axis] = body``; ``body`` is a Reduce over ``reduce_axis`` or has none."""

    axis: tuple[IterVar, ...] = ()
    body: Expr = field(default=None)  # type: ignore[assignment]
    tag: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(iv.dom.extent for iv in self.axis)  # type: ignore[union-attr]

    @property
    def dtype(self) -> DType:
        return self.body.dtype

    @property
    def reduce_axis(self) -> tuple[IterVar, ...]:
        return self.body.axis if isinstance(self.body, Reduce) else ()

    @cached_property
    def input_tensors(self) -> tuple[Tensor, ...]:  # type: ignore[override]
        seen: dict[Tensor, None] = {}
        for r in collect(self.body, TensorRead):
            seen.setdefault(r.tensor, None)
        return tuple(seen)

    def with_body(self, body: Expr, name: str | None = None) -> ComputeOp:
        """The same axes with a new body (schedules rewrite data flow this way)."""
        return ComputeOp(name or self.name, self.axis, body, self.tag)


def _check_shape(shape: Any, what: str) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TensorError(
            f"{what}: shape must be a tuple of positive integers, got {shape!r}"
        ) from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
            raise TensorError(f"{what}: shape must be positive integers, got {shape!r}")
    return dims


def placeholder(shape: Any, dtype: str | DType = "float32", name: str = "placeholder") -> Tensor:
    """An input tensor of the given shape and dtype."""
    dims = _check_shape(shape, f"placeholder {name}")
    return PlaceholderOp(name, dims, as_dtype(dtype)).output(0)


def compute(
    shape: Any, fcompute: Callable[..., Any], name: str = "compute", tag: str = ""
) -> Tensor:
    """A tensor whose element at ``(i, j, ...)`` is ``fcompute(i, j, ...)``.

    >>> C = compute((4, 4), lambda i, j: A[i, j] * 2, name="C")
    """
    dims = _check_shape(shape, f"compute {name}")
    params = list(inspect.signature(fcompute).parameters.values())
    if len(params) == 1 and params[0].kind is inspect.Parameter.VAR_POSITIONAL:
        names = [f"i{d}" for d in range(len(dims))]
    else:
        names = [p.name for p in params]
        if len(names) != len(dims):
            raise TensorError(
                f"compute {name}: fcompute takes {len(names)} index argument(s) "
                f"but the shape has {len(dims)} dimension(s)"
            )
    axis = tuple(
        IterVar(Var(n), Range(0, d), IterKind.DATA_PAR) for n, d in zip(names, dims, strict=False)
    )
    body = convert(fcompute(*(iv.var for iv in axis)))
    nested = [r for r in collect(body, Reduce) if r is not body]
    if nested:
        raise TensorError(
            f"compute {name}: a reduction must be the whole body, not part of an expression; "
            "compute it as its own tensor"
        )
    _check_free_vars(name, axis, body)
    return ComputeOp(name, axis, body, tag).output(0)


def _check_free_vars(name: str, axis: tuple[IterVar, ...], body: Expr) -> None:
    """Every variable in the body must be an index of this compute or an axis of its
    reduction; a reduce_axis used without a reduction would compile to garbage."""
    bound = {iv.var for iv in axis}
    if isinstance(body, Reduce):
        bound |= {iv.var for iv in body.axis}
    for v in collect(body, Var):
        if v not in bound:
            raise TensorError(
                f"compute {name}: variable {v.name} is not an index of {name} nor an axis "
                "of its reduction (a reduce_axis must be used inside te.sum/max/min over it)"
            )
