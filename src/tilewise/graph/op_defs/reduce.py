"""Reductions over a set of axes: reduce_mean, reduce_sum, reduce_max."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir import Node, TensorType
from ..ops import (
    NUMERIC,
    InType,
    OpDef,
    OpPattern,
    check_dtype,
    need_attr,
    node_error,
    register,
    take_inputs,
)


def _infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    (x,) = take_inputs(node, types, 1)
    assert x is not None
    check_dtype(node, x, NUMERIC)
    axes, keepdims = tuple(need_attr(node, "axes")), need_attr(node, "keepdims")
    rank = len(x.shape)
    if list(axes) != sorted(set(axes)) or any(not 0 <= a < rank for a in axes):
        raise node_error(node, f"axes {axes} are not sorted, distinct axes of a rank-{rank} "
                               "input")
    if node.op == "reduce_max" and any(x.shape[a] == 0 for a in axes):
        raise node_error(node, f"takes the maximum over an empty axis of {x}")
    if keepdims:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return [TensorType(shape, x.dtype)]


def _evaluate(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    axes, keepdims = tuple(node.attrs["axes"]), bool(node.attrs["keepdims"])
    if node.op == "reduce_max":
        y = np.max(x, axis=axes, keepdims=keepdims)
    elif node.op == "reduce_sum":
        y = np.sum(x, axis=axes, keepdims=keepdims)
    else:
        y = np.mean(x, axis=axes, keepdims=keepdims,
                    dtype=np.float64 if x.dtype.kind == "f" else None)
        if x.dtype.kind != "f":  # integer mean truncates, as sum / count in C does
            y = np.trunc(y)
    return [np.asarray(y).astype(x.dtype)]


for _name in ("reduce_mean", "reduce_sum", "reduce_max"):
    register(OpDef(_name, OpPattern.REDUCTION, _infer, _evaluate))
