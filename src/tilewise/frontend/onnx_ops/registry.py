"""The translator table, and what translators share: axis normalisation, constant
inputs and ONNX element types."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import TensorProto, numpy_helper

from ...errors import ModelError

if TYPE_CHECKING:
    from ..onnx import NodeContext

Translator = Callable[["NodeContext"], list[Any]]
TRANSLATORS: dict[str, Translator] = {}

#: ONNX element types the graph holds.
ONNX_DTYPES: dict[int, str] = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64",
                               TensorProto.INT64: "int64", TensorProto.INT32: "int32",
                               TensorProto.BOOL: "bool"}


def dtype_name(elem_type: int, what: str) -> str:
    """The graph dtype of an ONNX element type, or a ModelError naming ``what``."""
    try:
        return ONNX_DTYPES[elem_type]
    except KeyError:
        known = elem_type in TensorProto.DataType.values()
        name = TensorProto.DataType.Name(elem_type) if known else str(elem_type)
        raise ModelError(f"{what} has element type {name}; tilewise imports "
                         f"{', '.join(ONNX_DTYPES.values())}") from None


def to_array(tensor: TensorProto, what: str) -> np.ndarray:
    """A tensor proto as an array of a graph dtype, or a ModelError naming ``what``."""
    dtype_name(tensor.data_type, what)
    try:
        return np.array(numpy_helper.to_array(tensor))
    except (ValueError, TypeError, OSError) as e:
        raise ModelError(f"{what} cannot be read: {e}") from None


def translates(*op_types: str) -> Callable[[Translator], Translator]:
    def add(fn: Translator) -> Translator:
        for op_type in op_types:
            TRANSLATORS[op_type] = fn
        return fn

    return add


def norm_axis(ctx: NodeContext, axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` in 0..rank-1 (negative counts from the end)."""
    if not -rank <= axis < rank:
        raise ctx.error(f"{what} {axis} is outside {-rank}..{rank - 1}")
    return axis + rank if axis < 0 else axis


def norm_axes(ctx: NodeContext, axes: Sequence[int], rank: int) -> tuple[int, ...]:
    out = [norm_axis(ctx, int(a), rank, "axis") for a in axes]
    if len(set(out)) != len(out):
        raise ctx.error(f"axes {list(axes)} repeat an axis")
    return tuple(sorted(out))


def ints(value: Any) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def attr_or_input(ctx: NodeContext, key: str, index: int) -> list[int] | None:
    """A list ONNX passes as an attribute (older opsets) or a constant input (newer)."""
    if key in ctx.attrs:
        return [int(v) for v in ctx.attrs[key]]
    value = ctx.const_input(index, key)
    return None if value is None else ints(value)
