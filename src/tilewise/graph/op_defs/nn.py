"""Neural-network operators other than convolution and pooling: batch_norm (inference),
matmul, softmax and layer_norm. Normalisations compute in float64 and round once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir import Node, TensorType
from ..ops import (
    FLOATS,
    NUMERIC,
    InType,
    OpDef,
    OpPattern,
    broadcast,
    check_dtype,
    need_attr,
    node_error,
    register,
    take_inputs,
)


def _axis(node: Node, rank: int) -> int:
    axis = need_attr(node, "axis")
    if not isinstance(axis, int) or not 0 <= axis < max(rank, 1):
        raise node_error(node, f"axis {axis!r} is outside 0..{rank - 1}")
    return axis


def _batch_norm_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x, *params = take_inputs(node, types, 5)
    assert x is not None
    check_dtype(node, x, FLOATS)
    if len(x.shape) < 2:
        raise node_error(node, f"takes an input with a channel axis, not {x}")
    for name, p in zip(("scale", "bias", "mean", "var"), params, strict=True):
        assert p is not None
        if p.shape != (x.shape[1],) or p.dtype != x.dtype:
            raise node_error(node, f"{name} is {p}, not {x.dtype}[{x.shape[1]}]")
    need_attr(node, "epsilon")
    return [x]


def _batch_norm(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale, bias, mean, var = (np.asarray(a, np.float64).reshape(shape) for a in args[1:])
    y = (x - mean) / np.sqrt(var + node.attrs["epsilon"]) * scale + bias
    return [y.astype(x.dtype)]


register(OpDef("batch_norm", OpPattern.BROADCAST, _batch_norm_infer, _batch_norm))


def _matmul_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    a, b = take_inputs(node, types, 2)
    assert a is not None and b is not None
    check_dtype(node, a, NUMERIC)
    if a.dtype != b.dtype:
        raise node_error(node, f"mixes element types {a.dtype} and {b.dtype}")
    if not a.shape or not b.shape:
        raise node_error(node, "takes operands of rank 1 or more")
    sa = (1,) + a.shape if len(a.shape) == 1 else a.shape
    sb = b.shape + (1,) if len(b.shape) == 1 else b.shape
    if sa[-1] != sb[-2]:
        raise node_error(node, f"multiplies {a.shape} by {b.shape}: inner sizes differ")
    shape = broadcast(node, sa[:-2], sb[:-2]) + (sa[-2], sb[-1])
    if len(a.shape) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(b.shape) == 1:
        shape = shape[:-1]
    return [TensorType(shape, a.dtype)]


def _matmul(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    a, b = np.asarray(args[0]), np.asarray(args[1])
    return [np.asarray(np.matmul(a, b), dtype=a.dtype)]


register(OpDef("matmul", OpPattern.ANCHOR, _matmul_infer, _matmul))


def _softmax_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    (x,) = take_inputs(node, types, 1)
    assert x is not None
    check_dtype(node, x, FLOATS)
    _axis(node, len(x.shape))
    return [x]


def _softmax(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    axis = node.attrs["axis"]
    e = np.exp(x.astype(np.float64) - np.max(x, axis=axis, keepdims=True))
    return [(e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype)]


register(OpDef("softmax", OpPattern.REDUCTION, _softmax_infer, _softmax))


def _layer_norm_infer(node: Node, types: Sequence[InType]) -> list[TensorType]:
    x, scale, bias = take_inputs(node, types, 2, 3)
    assert x is not None and scale is not None
    check_dtype(node, x, FLOATS)
    axis = _axis(node, len(x.shape))
    need_attr(node, "epsilon")
    normalized = x.shape[axis:]
    for name, p in (("scale", scale), ("bias", bias)):
        if p is None:
            continue
        if p.dtype != x.dtype or broadcast(node, p.shape, normalized) != normalized:
            raise node_error(node, f"{name} is {p}; it must broadcast to the normalised "
                                   f"shape {normalized} and be {x.dtype}")
    return [x]


def _layer_norm(node: Node, args: Sequence[Any]) -> list[np.ndarray]:
    x = np.asarray(args[0])
    axes = tuple(range(node.attrs["axis"], x.ndim))
    wide = x.astype(np.float64)
    mean = wide.mean(axis=axes, keepdims=True)
    var = np.square(wide - mean).mean(axis=axes, keepdims=True)
    y = (wide - mean) / np.sqrt(var + node.attrs["epsilon"]) * np.asarray(args[1], np.float64)
    if len(args) > 2 and args[2] is not None:
        y = y + np.asarray(args[2], np.float64)
    return [y.astype(x.dtype)]


register(OpDef("layer_norm", OpPattern.REDUCTION, _layer_norm_infer, _layer_norm))
