"""ONNX operators whose values are known at import time: Constant,
ConstantOfShape, Shape."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import numpy_helper

from .registry import ints, to_array, translates

if TYPE_CHECKING:
    from ..onnx import NodeContext


@translates("Constant")
def _constant(ctx: NodeContext) -> list[Any]:
    if len(ctx.attrs) != 1:
        raise ctx.error(f"needs exactly one value attribute, not {sorted(ctx.attrs)}")
    (key, value), = ctx.attrs.items()
    if key == "value":
        array = to_array(value, f"Constant node {ctx.name!r}'s value")
    elif key == "sparse_value":
        array = _dense(ctx, value)
    elif key in ("value_float", "value_floats"):
        array = np.array(value, np.float32)
    elif key in ("value_int", "value_ints"):
        array = np.array(value, np.int64)
    else:
        raise ctx.error(f"its {key} is not a numeric tensor")
    return [ctx.constant(array, "value")]


def _dense(ctx: NodeContext, sparse: Any) -> np.ndarray:
    values = to_array(sparse.values, f"Constant node {ctx.name!r}'s sparse values")
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    shape = tuple(int(d) for d in sparse.dims)
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), values.dtype)
    flat = indices if indices.ndim == 1 else np.ravel_multi_index(indices.T, shape)
    dense[flat] = values.reshape(-1)
    return dense.reshape(shape)


@translates("ConstantOfShape")
def _constant_of_shape(ctx: NodeContext) -> list[Any]:
    shape = ctx.required_const_input(0, "shape")
    dims = ints(shape)
    if any(d < 0 for d in dims) or math.prod(dims) > 1 << 31:
        raise ctx.error(f"shape {dims} is negative or too large")
    fill = ctx.attrs.get("value")
    value = np.zeros(1, np.float32) if fill is None else to_array(fill, "its value")
    if value.size != 1:
        raise ctx.error("its value must hold one element")
    return [ctx.constant(np.full(dims, value.reshape(-1)[0], value.dtype), "value")]


@translates("Shape")
def _shape(ctx: NodeContext) -> list[Any]:
    src = ctx.type(ctx.input(0)).shape
    rank = len(src)

    def clamp(v: int) -> int:
        return min(max(v + rank if v < 0 else v, 0), rank)

    start, end = clamp(int(ctx.attr("start", 0))), clamp(int(ctx.attr("end", rank)))
    return [ctx.constant(np.array(src[start:end], np.int64), "shape")]
